package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/clockwork-go/clockwork/bench"
	"github.com/clockwork-go/clockwork/client"
)

func init() {
	register(command{name: "bench", summary: "run a workload against a controller and report latency, goodput and SLO attainment", run: runBench})
}

// workloadFlags are the workload options shared by cw bench and cw serve.
type workloadFlags struct {
	kind                     string
	rate                     float64
	duration, slo            time.Duration
	seed                     uint64
	clients                  int
	on, off                  time.Duration
	sloStart, sloInt, sloEnd time.Duration
	sloFactor                float64
	trace                    string
	functions                int
	loadFactor, compression  float64
	startMinute, minutes     int
	leadIn, step             time.Duration
	minorRate                float64
	out                      string
	progress                 string
}

func (w *workloadFlags) register(fs *flag.FlagSet, kinds string) {
	fs.StringVar(&w.kind, "workload", w.kind, "workload: "+kinds)
	fs.Float64Var(&w.rate, "rate", 200, "total requests/s over all models (poisson, bursty while ON, sweep, ramp's major models; azure: scales the trace to this rate unless -load-factor is set)")
	fs.DurationVar(&w.duration, "duration", 30*time.Second, "run length (azure: at most the replayed minutes / compression)")
	fs.DurationVar(&w.slo, "slo", 100*time.Millisecond, "request SLO; 0 uses the controller's default (Clockwork: 100ms)")
	fs.Uint64Var(&w.seed, "seed", 1, "random seed; the same seed gives the same workload")
	fs.IntVar(&w.clients, "clients", 4, "closed: requests kept in flight per model")
	fs.DurationVar(&w.on, "on", time.Second, "bursty: mean ON period (exponential)")
	fs.DurationVar(&w.off, "off", 3*time.Second, "bursty: mean OFF period (exponential)")
	fs.DurationVar(&w.sloStart, "slo-start", 3*time.Millisecond, "sweep: first SLO (Clockwork §6.3 starts at the batch-1 exec time, 2.9ms for resnet50)")
	fs.Float64Var(&w.sloFactor, "slo-factor", 1.5, "sweep: SLO multiplier per interval (> 1)")
	fs.DurationVar(&w.sloInt, "slo-interval", 5*time.Second, "sweep: interval between SLO steps (the original: 30s)")
	fs.DurationVar(&w.sloEnd, "slo-end", 300*time.Millisecond, "sweep: last SLO; the run ends after it")
	fs.StringVar(&w.trace, "trace", "", "azure: an invocations_per_function CSV of the Azure Functions 2019 trace; empty: a synthetic Azure-like trace")
	fs.IntVar(&w.functions, "functions", 0, "azure without -trace: synthetic functions (0: 4 per model, as the original's ~4-5 per instance)")
	fs.Float64Var(&w.loadFactor, "load-factor", 0, "azure: multiply the trace's counts (0: derived from -rate)")
	fs.Float64Var(&w.compression, "compression", 60, "azure: time compression; a trace minute lasts 60s / this")
	fs.IntVar(&w.startMinute, "start-minute", 0, "azure: first trace minute (column name; 0: the trace's first)")
	fs.IntVar(&w.minutes, "minutes", 0, "azure: trace minutes to replay (0: as many as -duration covers)")
	fs.DurationVar(&w.leadIn, "lead-in", 5*time.Second, "ramp: time before active models start being added")
	fs.DurationVar(&w.step, "step", time.Second, "ramp: one more active model every step (§6.2: 1s)")
	fs.Float64Var(&w.minorRate, "minor-rate", 200, "ramp: steady Poisson rate of the minor model (model 0)")
	fs.StringVar(&w.out, "out", "cw-bench-out", "directory for requests.tsv, summary.json and the plots (created)")
	fs.StringVar(&w.progress, "progress", "auto", "progress bar on stderr: auto (only on a terminal), on, off")
}

// arrivals builds the open-loop workload over n models; nil, nil for closed and none.
func (w *workloadFlags) arrivals(n int) ([]bench.Arrival, error) {
	dur, slo := int64(w.duration), int64(w.slo)
	even := func(total float64) []float64 {
		r := make([]float64, n)
		for i := range r {
			r[i] = total / float64(n)
		}
		return r
	}
	switch w.kind {
	case "poisson":
		return bench.Poisson(even(w.rate), dur, slo, w.seed)
	case "bursty":
		return bench.Bursty(even(w.rate), int64(w.on), int64(w.off), dur, slo, w.seed)
	case "sweep":
		a, err := bench.Poisson(even(w.rate), dur, slo, w.seed)
		if err != nil {
			return nil, err
		}
		return bench.SLOSweep(a, int64(w.sloStart), w.sloFactor, int64(w.sloInt), int64(w.sloEnd))
	case "ramp":
		if n < 2 {
			return nil, fmt.Errorf("ramp needs at least 2 models (1 minor, the rest major); have %d", n)
		}
		return bench.Ramp(bench.RampConfig{Models: n - 1, LeadInNs: int64(w.leadIn), StepNs: int64(w.step), MajorRate: w.rate,
			MinorRate: w.minorRate, DurNs: dur, SLONs: slo, Seed: w.seed})
	case "azure":
		if w.compression <= 0 {
			return nil, fmt.Errorf("-compression %v must be > 0", w.compression)
		}
		minutes := w.minutes
		if minutes == 0 {
			minutes = max(1, int(float64(w.duration)*w.compression/60e9+0.999))
		}
		var tr *bench.Trace
		var err error
		if w.trace != "" {
			tr, err = bench.LoadAzure(w.trace)
		} else {
			nf := w.functions
			if nf == 0 {
				nf = 4 * n
			}
			cfg := bench.DefaultSynth(nf, minutes, w.seed)
			if w.startMinute != 0 {
				cfg.StartMinute = w.startMinute
			}
			tr, err = bench.Synth(cfg)
		}
		if err != nil {
			return nil, err
		}
		lf := w.loadFactor
		if lf == 0 {
			r := tr.RatePerSecond(w.startMinute, minutes)
			if r == 0 {
				return nil, errors.New("the trace has no invocations in the chosen minutes; pick others with -start-minute")
			}
			lf = w.rate / (r * w.compression)
		}
		a, err := bench.Replay(tr, bench.ReplayConfig{Models: n, LoadFactor: lf, Compression: w.compression, StartMinute: w.startMinute,
			Minutes: minutes, SLONs: slo, Seed: w.seed})
		if err != nil {
			return nil, err
		}
		end := len(a)
		for end > 0 && a[end-1].AtNs >= dur {
			end--
		}
		return a[:end], nil
	case "closed", "none":
		return nil, nil
	}
	return nil, fmt.Errorf("unknown -workload %q; pick one of poisson, closed, bursty, sweep, ramp, azure", w.kind)
}

func (w *workloadFlags) progressOut(stderr io.Writer) io.Writer {
	switch w.progress {
	case "on":
		return stderr
	case "off":
		return nil
	}
	if f, ok := stderr.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			return f
		}
	}
	return nil
}

// run runs the workload against t and writes the reports (even when the run ended early).
// loads, if set, is called after the run for the LOAD times (ns from the run's start).
func (w *workloadFlags) run(ctx context.Context, t bench.Target, names []string, defaultSLO int64, stdout, stderr io.Writer, loads func(startUnixNs int64) ([]int64, error)) error {
	if err := os.MkdirAll(w.out, 0o755); err != nil {
		return fmt.Errorf("cannot create -out directory: %w", err)
	}
	arr, err := w.arrivals(len(names))
	if err != nil {
		return fmt.Errorf("cannot build the workload: %w", err)
	}
	opt := bench.RunOptions{Progress: w.progressOut(stderr), DefaultSLONs: defaultSLO}
	var res *bench.Result
	var runErr error
	if w.kind == "closed" {
		ms := make([]int32, len(names))
		for i := range ms {
			ms[i] = int32(i)
		}
		res, runErr = bench.RunClosed(ctx, t, names, bench.ClosedConfig{Models: ms, Clients: w.clients, DurNs: int64(w.duration), SLONs: int64(w.slo)}, opt)
	} else {
		fmt.Fprintf(stderr, "workload %s: %d requests over %d models in %v\n", w.kind, len(arr), len(names), w.duration)
		res, runErr = bench.RunOpen(ctx, t, names, arr, opt)
	}
	if res == nil {
		return runErr
	}
	if loads != nil {
		l, err := loads(res.Start.UnixNano())
		if err != nil {
			fmt.Fprintf(stderr, "cannot read cold starts: %v\n", err)
		} else {
			res.Loads = l
		}
	}
	s := res.Summarize()
	s.WriteTable(stdout)
	var errs []error
	errs = append(errs, runErr)
	write := func(name string, f func(io.Writer) error) {
		fh, err := os.Create(filepath.Join(w.out, name))
		if err == nil {
			err = f(fh)
			if cerr := fh.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("cannot write %s: %w", name, err))
		}
	}
	write("summary.json", s.WriteJSON)
	write("requests.tsv", res.WriteRequestTSV)
	files, err := res.Plots(w.out, s)
	errs = append(errs, err)
	fmt.Fprintf(stdout, "  %-22s %s (summary.json, requests.tsv, %d plot files: %s)\n", "reports in", w.out, len(files), plotNames(files))
	return errors.Join(errs...)
}

func plotNames(files []string) string {
	var n []string
	for _, f := range files {
		if strings.HasSuffix(f, ".png") {
			n = append(n, strings.TrimSuffix(filepath.Base(f), ".png"))
		}
	}
	return strings.Join(n, ", ") + " as .png and .svg"
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", "bench -addr host:port [flags]", stderr)
	w := &workloadFlags{kind: "poisson"}
	addr := fs.String("addr", "127.0.0.1:12346", "controller client address (host:port)")
	models := fs.String("models", "", "comma-separated model names to send to; empty: every model the controller lists")
	synth := fs.Bool("synth", false, "send no input bytes (the controller must run with -synth)")
	secret := fs.String("secret-file", "", "file holding the controller's shared secret; empty: none")
	w.register(fs, "poisson, closed, bursty, sweep, ramp, azure")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := client.Config{Addr: *addr}
	if *secret != "" {
		b, err := os.ReadFile(*secret)
		if err != nil {
			return fmt.Errorf("cannot read the secret: %w", err)
		}
		cfg.Secret = []byte(strings.TrimSpace(string(b)))
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := client.Dial(dctx, cfg)
	if err != nil {
		return fmt.Errorf("cannot reach the controller at %s: %w; start one (cw serve, or cw controller) or fix -addr", *addr, err)
	}
	defer c.Close()
	var names []string
	if *models != "" {
		names = strings.Split(*models, ",")
	} else {
		list, err := c.ListModels(dctx)
		if err != nil {
			return fmt.Errorf("cannot list models at %s: %w", *addr, err)
		}
		for _, d := range list {
			names = append(names, string(d.Name))
		}
		if len(names) == 0 {
			return fmt.Errorf("the controller at %s has no models; register some (cw controller -models) or pass -models", *addr)
		}
	}
	t, err := bench.NewClientTarget(dctx, c, *addr, names, *synth)
	if err != nil {
		return err
	}
	return w.run(ctx, t, names, int64(w.slo), stdout, stderr, nil)
}
