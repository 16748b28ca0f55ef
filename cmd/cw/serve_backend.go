package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/clockwork-go/clockwork/client"
	"github.com/clockwork-go/clockwork/controller"
	"github.com/clockwork-go/clockwork/e2e"
	"github.com/clockwork-go/clockwork/worker"
)

// servingCluster is what `cw serve` needs of a running controller and its workers: the sim
// cluster of package e2e, or compiledCluster.
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
		path, cnt, ok := strings.Cut(strings.TrimSpace(part), ":")
		n := 1
		if ok {
			var err error
			if n, err = strconv.Atoi(cnt); err != nil || n < 1 || n > 100_000 {
				return nil, fmt.Errorf("-models entry %q: copies must be 1..100000", part)
			}
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

// compiledCluster is a controller and one worker on a real backend (cpu, cuda) in this process.
type compiledCluster struct {
	ctl    *controller.Controller
	w      *worker.Worker
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	err    error
}

// startCompiled starts a worker on be's backend serving the ONNX files of inst from root, and a
// controller registering every instance on it; it returns once the controller lists them all.
func startCompiled(ctx context.Context, be *backendFlags, root string, gpus int, batches []int, inst []e2e.Instance, ccfg controller.Config, logger *slog.Logger) (*compiledCluster, error) {
	if root == "" {
		return nil, errors.New("-backend " + be.name + " needs -model-root: the directory the -models paths are under")
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	wcfg := worker.Config{Addr: "127.0.0.1:0", ModelRoot: root, Batches: batches, HostIOWarm: true, Logger: logger.With("role", "worker")}
	if be.name == "cpu" {
		// The cpu backend's region is Go heap: keep it modest.
		wcfg.RegionBytes, wcfg.IOBytes, wcfg.WorkspaceBytes = 1<<30, 64<<20, 256<<20
	}
	if err := be.apply(&wcfg, gpus); err != nil {
		return nil, err
	}
	w, err := worker.New(wcfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	c := &compiledCluster{w: w, cancel: cancel}
	c.goRun(func() error { return w.Run(ctx) })
	ccfg.Workers = []string{w.Addr().String()}
	ccfg.Models = nil
	for _, in := range inst {
		ccfg.Models = append(ccfg.Models, controller.ModelSource{Name: in.Name, Path: in.Base})
	}
	if ccfg.Listen == "" && ccfg.Listener == nil {
		ccfg.Listen = "127.0.0.1:0"
	}
	ccfg.Logger = logger.With("role", "controller")
	if c.ctl, err = controller.New(ccfg); err != nil {
		c.Close()
		return nil, err
	}
	c.goRun(func() error { return c.ctl.Run(ctx) })
	select {
	case <-c.ctl.Ready():
	case <-ctx.Done():
		c.Close()
		return nil, ctx.Err()
	}
	if err := c.waitModels(ctx, len(inst)); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *compiledCluster) goRun(f func() error) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if err := f(); err != nil {
			c.once.Do(func() { c.err = err })
		}
	}()
}

// waitModels polls the controller until it lists n models (compiling takes seconds).
func (c *compiledCluster) waitModels(ctx context.Context, n int) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cli, err := client.Dial(ctx, client.Config{Addr: c.Addr()})
	if err != nil {
		return err
	}
	defer cli.Close()
	tk := time.NewTicker(50 * time.Millisecond)
	defer tk.Stop()
	for {
		ms, err := cli.ListModels(ctx)
		if err != nil {
			return fmt.Errorf("cannot list models: %w", err)
		}
		if len(ms) >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the worker registered %d of %d models: %w; run with -v to see why", len(ms), n, ctx.Err())
		case <-tk.C:
		}
	}
}

// Addr is the controller's client address.
func (c *compiledCluster) Addr() string { return c.ctl.Addr().String() }

// Close stops the controller and the worker. Idempotent.
func (c *compiledCluster) Close() error {
	c.cancel()
	c.wg.Wait()
	return c.err
}
