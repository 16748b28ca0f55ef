package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/clockwork-go/clockwork/bench"
	"github.com/clockwork-go/clockwork/client"
	"github.com/clockwork-go/clockwork/controller"
	"github.com/clockwork-go/clockwork/e2e"
	"github.com/clockwork-go/clockwork/runtime/sim"
)

func init() {
	register(command{name: "serve", summary: "controller + workers (sim, or one cpu/cuda worker) (+ an optional workload) in one process", run: runServe})
}

// splitCopies splits one -models entry "name[:copies]" (copies 1..100000, default 1).
func splitCopies(part string) (name string, n int, err error) {
	name, cnt, ok := strings.Cut(strings.TrimSpace(part), ":")
	if !ok {
		return name, 1, nil
	}
	if n, err = strconv.Atoi(cnt); err != nil || n < 1 || n > 100_000 {
		return "", 0, fmt.Errorf("-models entry %q: copies must be 1..100000", part)
	}
	return name, n, nil
}

// parseInstances reads "model:copies,model:copies"; "all:k" is k copies of every profile model.
func parseInstances(spec string, prof *sim.Profile) ([]e2e.Instance, error) {
	var out []e2e.Instance
	for _, part := range strings.Split(spec, ",") {
		name, n, err := splitCopies(part)
		if err != nil {
			return nil, err
		}
		if name == "all" {
			for _, m := range prof.Models {
				out = append(out, e2e.Instances(n, m.ModelName)...)
			}
			continue
		}
		if prof.Model(name) == nil {
			return nil, fmt.Errorf("-models entry %q: no model %q in the profile (%s); e.g. resnet50_v2", part, name, prof.Device)
		}
		out = append(out, e2e.Instances(n, name)...)
	}
	return out, nil
}

// interleave orders instances copy by copy (copy 0 of every model, then copy 1, ...), so a prefix
// keeps the models balanced.
func interleave(in []e2e.Instance) []e2e.Instance {
	byBase := map[string][]e2e.Instance{}
	var bases []string
	for _, x := range in {
		if byBase[x.Base] == nil {
			bases = append(bases, x.Base)
		}
		byBase[x.Base] = append(byBase[x.Base], x)
	}
	out := make([]e2e.Instance, 0, len(in))
	for k := 0; len(out) < len(in); k++ {
		for _, b := range bases {
			if k < len(byBase[b]) {
				out = append(out, byBase[b][k])
			}
		}
	}
	return out
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", "serve [flags]", stderr)
	w := &workloadFlags{kind: "none"}
	workers := fs.Int("workers", 1, "in-process sim workers")
	gpus := fs.Int("gpus", 1, "emulated GPUs per worker")
	models := fs.String("models", "resnet50_v2:4", "model instances: name:copies,... from the profile; all:k is k copies of every model (all:66 is the original's 4,026 instances)")
	profile := fs.String("profile", "", "sim profile JSON (cw tools profile writes one); empty: the embedded Clockwork V100 zoo. With -backend cpu or cuda it seeds the controller's estimates (models found by name, e.g. resnet50 for resnet50/model.onnx); empty: the controller's defaults")
	gpuMem := fs.Int64("gpu-mem-mib", 0, "memory of each emulated GPU in MiB (0: 32768, a V100)")
	noise := fs.Float64("sim-noise", 0, "sim exec-time spread towards the profile's p99 (0: exact p50; see runtime/sim)")
	spin := fs.Duration("spin", 0, "worker executors wait precisely and spin this long before each action (negative: the worker's default, 50µs); 0: Go timers only, up to ~1ms late, but no spinning threads: on a shared 2-core machine with 6 emulated GPUs (24 executors) 0 measured 99.8% SLO attainment where the default measured 95.6% (docs/experiments-sim.md)")
	maxInst := fs.Int("instances", 0, "keep only this many instances, taken copy by copy across the models (all:66 -instances 4026: the original's §6.5 count from our 64-model zoo); 0: all")
	listen := fs.String("listen", "127.0.0.1:12346", "client address (host:port)")
	synth := fs.Bool("synth", true, "workers synthesise inputs (no input bytes on the links, as the original's §6 experiments)")
	ahead := fs.Duration("schedule-ahead", 0, "controller schedule-ahead (0: the scheduler's default)")
	verbose := fs.Bool("v", false, "log lifecycle events to stderr")
	var be backendFlags
	be.register(fs)
	root := fs.String("model-root", "", "with -backend cpu or cuda: the directory holding the -models ONNX files (then -models is path:copies,...)")
	batches := fs.String("batches", "1,2,4,8,16", "with -backend cpu or cuda: batch sizes the models are compiled at")
	var cf compiledFlags
	cf.register(fs)
	w.register(fs, "none (serve until interrupted), poisson, closed, bursty, sweep, ramp, azure")
	if err := fs.Parse(args); err != nil {
		return err
	}
	prof := sim.DefaultProfile()
	if *profile != "" {
		var err error
		if prof, err = sim.LoadProfile(*profile); err != nil {
			return fmt.Errorf("cannot load -profile: %w", err)
		}
	}
	var inst []e2e.Instance
	var err error
	if be.name == "sim" {
		inst, err = parseInstances(*models, prof)
	} else {
		inst, err = parseFileInstances(*models)
	}
	if err != nil {
		return err
	}
	if *maxInst > 0 && *maxInst < len(inst) {
		inst = interleave(inst)[:*maxInst]
	}
	ccfg := controller.DefaultConfig()
	ccfg.Listen = *listen
	ccfg.SynthInput = *synth
	if *ahead > 0 {
		ccfg.Sched.ScheduleAheadNs = int64(*ahead)
	}
	if w.slo > 0 {
		ccfg.DefaultSLO = w.slo
	}
	var actPath string
	if w.kind != "none" {
		if err := os.MkdirAll(w.out, 0o755); err != nil {
			return fmt.Errorf("cannot create -out directory: %w", err)
		}
		actPath = filepath.Join(w.out, "actions.tsv")
		fa, err := os.Create(actPath)
		if err != nil {
			return fmt.Errorf("cannot create the action log: %w", err)
		}
		defer fa.Close()
		fr, err := os.Create(filepath.Join(w.out, "controller_requests.tsv"))
		if err != nil {
			return fmt.Errorf("cannot create the request log: %w", err)
		}
		defer fr.Close()
		ccfg.ActionLog, ccfg.RequestLog = fa, fr
	}
	var logger *slog.Logger
	if *verbose {
		logger = slog.New(slog.NewTextHandler(stderr, nil))
	}
	start := time.Now()
	var cl servingCluster
	if be.name == "sim" {
		cl, err = e2e.Start(ctx, e2e.ClusterConfig{Workers: *workers, GPUsPerWorker: *gpus, Profile: prof, Instances: inst,
			GPUMemBytes: *gpuMem << 20, SimNoise: *noise, SpinNs: int64(*spin), Controller: ccfg, Logger: logger})
	} else {
		cl, inst, err = startServeCompiled(ctx, &be, &cf, *root, *batches, *workers, *gpus, int64(*spin), *profile != "", prof, inst, ccfg, w, *verbose, stderr)
	}
	if err != nil {
		return err
	}
	defer cl.Close()
	fmt.Fprintf(stderr, "serving %d model instances on %d workers × %d %s GPUs at %s (ready in %.1fs)\n",
		len(inst), *workers, *gpus, be.name, cl.Addr(), time.Since(start).Seconds())
	if w.kind == "none" {
		<-ctx.Done()
		return cl.Close()
	}
	c, err := client.Dial(ctx, client.Config{Addr: cl.Addr()})
	if err != nil {
		return fmt.Errorf("cannot reach the in-process controller at %s: %w", cl.Addr(), err)
	}
	defer c.Close()
	names := make([]string, len(inst))
	for i, in := range inst {
		names[i] = in.Name
	}
	t, err := bench.NewClientTarget(ctx, c, cl.Addr(), names, *synth)
	if err != nil {
		return err
	}
	loads := func(startUnix int64) ([]int64, error) {
		// Stop the controller first so its action log is flushed and complete.
		c.Close()
		cerr := cl.Close()
		f, err := os.Open(actPath)
		if err != nil {
			return nil, errors.Join(cerr, err)
		}
		defer f.Close()
		l, err := bench.LoadTimes(f, actPath, startUnix)
		return l, errors.Join(cerr, err)
	}
	return w.run(ctx, t, names, int64(ccfg.DefaultSLO), stdout, stderr, loads)
}
