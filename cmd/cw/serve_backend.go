package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/clockwork-go/clockwork/controller"
	"github.com/clockwork-go/clockwork/e2e"
	"github.com/clockwork-go/clockwork/runtime/sim"
	"github.com/clockwork-go/clockwork/worker"
)

// servingCluster is what `cw serve` needs of a running controller and its workers: the sim
// cluster of package e2e, or its Compiled.
type servingCluster interface {
	Addr() string
	Close() error
}

// parseFileInstances reads -models for ONNX backends: "path:copies,..." with paths under the
// model root; the instances of tiny.onnx are tiny.0000, tiny.0001, ... (the Base is the path).
// Instances of one file compile once on the worker and each get their own weights.
func parseFileInstances(spec string) ([]e2e.Instance, error) {
	var out []e2e.Instance
	seen := map[string]bool{}
	for _, part := range strings.Split(spec, ",") {
		path, n, err := splitCopies(part)
		if err != nil {
			return nil, err
		}
		if path == "" || seen[path] {
			return nil, fmt.Errorf("-models entry %q: want a distinct ONNX path under -model-root, e.g. resnet50/model.onnx:4", part)
		}
		seen[path] = true
		name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
		if name == "model" && filepath.Dir(path) != "." {
			name = filepath.Base(filepath.Dir(path))
		}
		for i := range n {
			out = append(out, e2e.Instance{Name: fmt.Sprintf("%s.%04d", name, i), Base: path})
		}
	}
	return out, nil
}

// compiledFlags are cw serve's worker options for ONNX backends (cpu, cuda); sim clusters
// size themselves from the profile.
type compiledFlags struct {
	cpus                      string
	regionMiB, pageMiB, wsMiB int64
	ioMiB, slotMiB, hostIOMiB int64
	workerTSV                 bool
	parallel                  int
}

func (f *compiledFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.cpus, "cpus", "", "with -backend cpu or cuda: CPUs to pin the worker's executor threads to, round-robin, e.g. \"2-9\" (empty: not pinned)")
	fs.Int64Var(&f.regionMiB, "region-mib", 0, "with -backend cpu or cuda: device memory the worker takes per GPU in MiB (0: cuda all free memory, cpu 1024); smaller makes GPU memory a tighter cache")
	fs.Int64Var(&f.pageMiB, "page-mib", worker.DefaultPageBytes>>20, "with -backend cpu or cuda: weights cache page in MiB (Clockwork: 16)")
	fs.Int64Var(&f.wsMiB, "workspace-mib", 0, "with -backend cpu or cuda: device workspace per GPU in MiB (0: cuda 512, cpu 256)")
	fs.Int64Var(&f.ioMiB, "io-mib", 0, "with -backend cpu or cuda: device IO arena per GPU in MiB (0: cuda 512, cpu 64)")
	fs.Int64Var(&f.slotMiB, "io-slot-mib", 0, "with -backend cpu or cuda: largest input+output of one INFER in MiB (0: cuda 32, cpu 8)")
	fs.Int64Var(&f.hostIOMiB, "host-io-mib", 0, "with -backend cpu or cuda: host IO buffers in MiB, all GPUs (0: 512)")
	fs.BoolVar(&f.workerTSV, "worker-telemetry", false, "with -backend cpu or cuda and a workload: the worker writes one line per action (phase spans, device exec time) to -out/worker_actions.tsv")
	fs.IntVar(&f.parallel, "register-parallel", 8, "with -backend cpu or cuda: model registrations in flight at start (each instance copies its weights into pinned host memory)")
}

// workerConfig is the worker's configuration for an ONNX backend: be's backend on gpus
// devices, models under root.
func (f *compiledFlags) workerConfig(be *backendFlags, root string, gpus int, batches []int, spinNs int64) (worker.Config, error) {
	if root == "" {
		return worker.Config{}, errors.New("-backend " + be.name + " needs -model-root: the directory the -models paths are under")
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return worker.Config{}, err
	}
	cfg := worker.Config{ModelRoot: root, Batches: batches, HostIOWarm: true, SpinNs: spinNs, PageBytes: f.pageMiB << 20,
		RegionBytes: f.regionMiB << 20, WorkspaceBytes: f.wsMiB << 20, IOBytes: f.ioMiB << 20, IOSlotBytes: f.slotMiB << 20, HostIOBytes: f.hostIOMiB << 20}
	if be.name == "cpu" {
		// The cpu backend's region is Go heap: keep it modest unless asked.
		for _, d := range []struct {
			v   *int64
			mib int64
		}{{&cfg.RegionBytes, 1024}, {&cfg.IOBytes, 64}, {&cfg.WorkspaceBytes, 256}, {&cfg.IOSlotBytes, 8}} {
			if *d.v == 0 {
				*d.v = d.mib << 20
			}
		}
	}
	if cfg.CPUs, err = parseCPUs(f.cpus); err != nil {
		return worker.Config{}, err
	}
	if err := be.apply(&cfg, gpus); err != nil {
		return worker.Config{}, err
	}
	return cfg, nil
}

// startCompiled starts one worker with wcfg and a controller, and registers every instance of
// inst on it; it returns the cluster and the instances that registered (an instance whose file
// does not import is reported on stderr and left out). models.tsv in outDir (if not empty)
// lists every instance with its controller model id (the action log's model_id) and status.
func startCompiled(ctx context.Context, wcfg worker.Config, inst []e2e.Instance, ccfg controller.Config, parallel int, outDir string, lg *slog.Logger, stderr io.Writer) (*e2e.Compiled, []e2e.Instance, error) {
	cl, err := e2e.StartCompiled(ctx, e2e.CompiledConfig{Workers: []worker.Config{wcfg}, Instances: inst, Controller: ccfg, Parallel: parallel, Logger: lg})
	if err != nil {
		return nil, nil, err
	}
	var ok []e2e.Instance
	var tsv strings.Builder
	tsv.WriteString("model_id\tinstance\tpath\tstatus\n")
	failed := 0
	for _, r := range cl.Registered {
		st := "ok"
		if r.Err != nil {
			st = r.Err.Error()
			if failed++; failed <= 5 {
				fmt.Fprintf(stderr, "%v\n", r.Err)
			}
		} else {
			ok = append(ok, r.Instance)
		}
		fmt.Fprintf(&tsv, "%d\t%s\t%s\t%s\n", r.ModelID, r.Name, r.Base, strings.ReplaceAll(st, "\t", " "))
	}
	if failed > 0 {
		fmt.Fprintf(stderr, "%d of %d model instances failed to register (models.tsv lists each); serving the other %d\n", failed, len(inst), len(ok))
	}
	if outDir != "" {
		if err := os.WriteFile(filepath.Join(outDir, "models.tsv"), []byte(tsv.String()), 0o644); err != nil {
			cl.Close()
			return nil, nil, fmt.Errorf("cannot write models.tsv: %w", err)
		}
	}
	return cl, ok, nil
}

// compiledServing is cw serve's cluster on an ONNX backend, with the files it writes.
type compiledServing struct {
	*e2e.Compiled
	files []*os.File
}

// Close stops the cluster, then closes its files (the worker flushes telemetry as it stops).
func (c *compiledServing) Close() error {
	err := c.Compiled.Close()
	for _, f := range c.files {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	c.files = nil
	return err
}

// startServeCompiled is cw serve's -backend cpu|cuda path: one worker driving gpus devices,
// the instances of inst registered on it; it returns the instances that registered.
func startServeCompiled(ctx context.Context, be *backendFlags, cf *compiledFlags, root, batches string, workers, gpus int, spinNs int64,
	seed bool, prof *sim.Profile, inst []e2e.Instance, ccfg controller.Config, w *workloadFlags, verbose bool, stderr io.Writer) (*compiledServing, []e2e.Instance, error) {
	bs, err := parseBatches(batches)
	if err != nil {
		return nil, nil, err
	}
	if workers != 1 {
		return nil, nil, fmt.Errorf("-workers %d: -backend %s runs one worker driving -gpus devices", workers, be.name)
	}
	if seed { // e.g. the committed H100 profile: estimates by the file's base name
		ccfg.Profile = controller.SimProfile(prof)
	}
	wcfg, err := cf.workerConfig(be, root, gpus, bs, spinNs)
	if err != nil {
		return nil, nil, err
	}
	out := ""
	cs := &compiledServing{}
	if w.kind != "none" {
		out = w.out
		if err := os.MkdirAll(out, 0o755); err != nil {
			return nil, nil, fmt.Errorf("cannot create -out directory: %w", err)
		}
		if cf.workerTSV {
			f, err := os.Create(filepath.Join(out, "worker_actions.tsv"))
			if err != nil {
				return nil, nil, fmt.Errorf("cannot create the worker telemetry file: %w", err)
			}
			cs.files = append(cs.files, f)
			wcfg.TelemetryTSV = f
		}
	}
	// Errors (a model a worker cannot register, and why) always reach stderr; -v adds the rest.
	level := slog.LevelError
	if verbose {
		level = slog.LevelInfo
	}
	lg := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cl, ok, err := startCompiled(ctx, wcfg, inst, ccfg, cf.parallel, out, lg, stderr)
	if err != nil {
		for _, f := range cs.files {
			f.Close()
		}
		return nil, nil, err
	}
	cs.Compiled = cl
	return cs, ok, nil
}
