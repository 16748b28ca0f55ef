package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/clockwork-go/clockwork/runtime/sim"
	"github.com/clockwork-go/clockwork/worker"
)

func init() {
	register(command{name: "worker", summary: "run a worker: executes a controller's actions on this machine's GPUs (sim, cpu or cuda backend)", run: runWorker})
}

// parseCPUs parses "0,2,4-7".
func parseCPUs(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(strings.TrimSpace(lo))
		if err != nil {
			return nil, fmt.Errorf("CPU list %q: %q is not a number", s, lo)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(strings.TrimSpace(hi)); err != nil || b < a {
				return nil, fmt.Errorf("CPU list %q: bad range %q", s, part)
			}
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	return out, nil
}

// parseBatches parses "1,2,4,8".
func parseBatches(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		b, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || b < 1 || b > 65535 || (len(out) > 0 && b <= out[len(out)-1]) {
			return nil, fmt.Errorf("-batches %q: want increasing sizes in 1..65535, e.g. 1,2,4,8,16", s)
		}
		out = append(out, b)
	}
	return out, nil
}

func runWorker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("worker", "worker [flags]", stderr)
	addr := fs.String("addr", worker.DefaultAddr, "TCP address to listen on for the controller (\":0\" picks a free port and prints it)")
	var be backendFlags
	be.register(fs)
	gpus := fs.Int("gpus", 1, "GPUs: emulated (sim) or cpu devices, 1 to 64 (the wire's limit per worker); cuda: the first N GPUs, 0 all visible")
	batches := fs.String("batches", "1,2,4,8,16", "batch sizes ONNX models are compiled at (cpu, cuda), increasing")
	profile := fs.String("profile", "", "sim profile JSON (cw tools profile writes one); empty: the embedded Clockwork V100 zoo")
	noise := fs.Float64("sim-noise", 0, "sim exec-time spread towards the profile's p99/p99.99 (0: always p50; 1: the profile's spread)")
	seed := fs.Uint64("sim-seed", 1, "sim random seed: the same seed gives the same exec times")
	pageMiB := fs.Int64("page-mib", worker.DefaultPageBytes>>20, "weights cache page size in MiB (Clockwork: 16; a larger page wastes more per model)")
	regionMiB := fs.Int64("region-mib", 0, "device memory the worker takes per GPU in MiB (0: the backend's default, all of it on sim)")
	ioMiB := fs.Int64("io-mib", worker.DefaultIOBytes>>20, "device IO arena per GPU in MiB (inputs+outputs of INFERs in flight; Clockwork: 512)")
	slotMiB := fs.Int64("io-slot-mib", worker.DefaultIOSlotBytes>>20, "largest input+output of one INFER in MiB (the IO arena is cut into slots of it)")
	wsMiB := fs.Int64("workspace-mib", worker.DefaultWorkspace>>20, "device workspace per GPU in MiB (activations of the one running INFER; Clockwork: 512)")
	hostMiB := fs.Int64("host-io-mib", worker.DefaultHostIOBytes>>20, "host IO buffers in MiB, all GPUs (mlock'd when the memlock limit allows)")
	root := fs.String("model-root", "", "directory LoadModel paths must lie under (empty: refuse every path; uploads still work)")
	cpus := fs.String("cpus", "", "CPUs to pin executor threads to, round-robin, e.g. \"2-5\" (empty: not pinned; see cw tools check)")
	fifo := fs.Bool("fifo", false, "run executor threads SCHED_FIFO (needs -cpus leaving a CPU free, RT throttling on and an rtprio limit)")
	prio := fs.Int("fifo-priority", 10, "SCHED_FIFO priority 1..99 with -fifo")
	spin := fs.Duration("spin", 50_000, "executors spin this long before an action's start after a coarse sleep (0: sleep only; timers wake ~70µs late on a loaded box)")
	lead := fs.Duration("input-lead", worker.DefaultInputLeadNs, "an INFER's input copy may start this long before its earliest (Clockwork: 5ms)")
	secretFile := fs.String("secret-file", "", "file holding the shared secret for the HMAC hello (empty: no authentication)")
	tsv := fs.String("telemetry", "", "append one TSV line per action to this file (empty: in-memory ring only)")
	probeOn := fs.Bool("probe", false, "explain late INFERs with eBPF (needs root or CAP_BPF+CAP_PERFMON and kernel BTF; without them the worker says what is missing and runs without probes); forces executor threads to be locked")
	probeLate := fs.Duration("probe-late", worker.DefaultProbeLateNs, "with -probe: explain INFERs whose exec started this late, or ran this much over the expected time")
	probeLog := fs.String("probe-log", "", "with -probe: append one TSV line per explained INFER to this file (empty: stderr)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := worker.Config{Addr: *addr, SimGPUs: *gpus, SimNoise: *noise, SimSeed: *seed, PageBytes: *pageMiB << 20, RegionBytes: *regionMiB << 20,
		IOBytes: *ioMiB << 20, IOSlotBytes: *slotMiB << 20, WorkspaceBytes: *wsMiB << 20, HostIOBytes: *hostMiB << 20,
		FIFO: *fifo, FIFOPriority: *prio, SpinNs: int64(*spin), InputLeadNs: int64(*lead), HostIOWarm: true,
		Logger: slog.New(slog.NewTextHandler(stderr, nil))}
	if *gpus < 0 || *gpus > 64 || (*gpus == 0 && be.name != "cuda") {
		return fmt.Errorf("-gpus %d outside 1..64 (0, all GPUs, only with -backend cuda)", *gpus)
	}
	if be.name == "cpu" {
		// The cpu backend's region is Go heap: unless set, take 1 GiB per device with smaller
		// arenas than a GPU's.
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for _, d := range []struct {
			name string
			v    *int64
			mib  int64
		}{{"region-mib", &cfg.RegionBytes, 1024}, {"io-mib", &cfg.IOBytes, 64}, {"workspace-mib", &cfg.WorkspaceBytes, 256}, {"io-slot-mib", &cfg.IOSlotBytes, 8}} {
			if !set[d.name] {
				*d.v = d.mib << 20
			}
		}
	}
	if err := be.apply(&cfg, *gpus); err != nil {
		return err
	}
	var err error
	if cfg.Batches, err = parseBatches(*batches); err != nil {
		return err
	}
	if cfg.CPUs, err = parseCPUs(*cpus); err != nil {
		return err
	}
	if *root != "" {
		if cfg.ModelRoot, err = filepath.Abs(*root); err != nil {
			return err
		}
	}
	if *profile != "" {
		if cfg.Profile, err = sim.LoadProfile(*profile); err != nil {
			return err
		}
	}
	if *secretFile != "" {
		s, err := os.ReadFile(*secretFile)
		if err != nil {
			return fmt.Errorf("cannot read the secret: %w", err)
		}
		cfg.Secret = []byte(strings.TrimSpace(string(s)))
	}
	if *tsv != "" {
		f, err := os.OpenFile(*tsv, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("cannot open the telemetry file: %w", err)
		}
		defer f.Close()
		cfg.TelemetryTSV = f
	}
	if *probeOn {
		pr, closeProbe, err := openWorkerProbe(int64(*probeLate), *probeLog, stderr)
		if err != nil {
			return err
		}
		defer closeProbe()
		cfg.Probe = pr
	}
	w, err := worker.New(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "worker listening on %s (%d %s GPUs)\n", w.Addr(), len(w.Hello().GPUs), be.name)
	return w.Run(ctx)
}
