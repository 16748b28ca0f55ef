package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/clockwork-go/clockwork/client"
	"github.com/clockwork-go/clockwork/controller"
	"github.com/clockwork-go/clockwork/runtime/sim"
	"github.com/clockwork-go/clockwork/worker"
)

// Instance is one model instance: a registered name whose behaviour is the profile entry Base.
type Instance struct{ Name, Base string }

// Instances returns n instances of each base, named base.0000, base.0001, ... (the original's
// copies of the zoo models).
func Instances(n int, bases ...string) []Instance {
	out := make([]Instance, 0, n*len(bases))
	for _, b := range bases {
		for i := range n {
			out = append(out, Instance{Name: fmt.Sprintf("%s.%04d", b, i), Base: b})
		}
	}
	return out
}

// ClusterConfig configures an in-process cluster.
type ClusterConfig struct {
	Workers, GPUsPerWorker int
	// Profile holds the base models (nil: sim.DefaultProfile, the Clockwork V100 zoo).
	Profile   *sim.Profile
	Instances []Instance
	// GPUMemBytes is each emulated GPU's memory (0: the sim default, a 32 GB V100).
	GPUMemBytes int64
	// SimNoise is the sim backend's exec-time spread (0: none; see sim.Config).
	SimNoise float64
	// SpinNs is the worker executors' spin before each action (see worker.Config; 0 sleeps
	// only, which keeps a small machine usable at the cost of tens of µs of timer lateness).
	SpinNs int64
	// Controller is the controller's configuration (Workers, Dial, Models and Profile are
	// filled in); start from controller.DefaultConfig.
	Controller controller.Config
	Logger     *slog.Logger
}

// Cluster is a running controller with its sim workers.
type Cluster struct {
	Ctl     *controller.Controller
	Workers []*worker.Worker
	Profile *sim.Profile // the instances' profile (one entry per instance)
	group
	root string
}

// Start builds the instances' profile, starts the workers on loopback ports and the controller,
// and returns once the controller serves clients (cfg.Controller.Listen, or port 0).
func Start(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	if cfg.Workers < 1 || cfg.GPUsPerWorker < 1 || len(cfg.Instances) == 0 {
		return nil, fmt.Errorf("cannot start a cluster of %d workers × %d GPUs with %d models; all must be >= 1", cfg.Workers, cfg.GPUsPerWorker, len(cfg.Instances))
	}
	base := cfg.Profile
	if base == nil {
		base = sim.DefaultProfile()
	}
	prof := &sim.Profile{Version: base.Version, Device: base.Device, H2DBytesPerSec: base.H2DBytesPerSec, D2HBytesPerSec: base.D2HBytesPerSec,
		Source: []string{"instances of " + base.Device}, Models: make([]sim.ModelProfile, 0, len(cfg.Instances))}
	byName := map[string]*sim.ModelProfile{}
	for i := range base.Models {
		byName[base.Models[i].ModelName] = &base.Models[i]
	}
	// Workers register models from files under their model root: each instance's profile entry
	// is written to <root>/<name>.json (a sim model is its profile entry).
	root, err := os.MkdirTemp("", "cw-serve-models-")
	if err != nil {
		return nil, fmt.Errorf("cannot create the model directory: %w", err)
	}
	ccfg := cfg.Controller
	ccfg.Models = nil
	for _, in := range cfg.Instances {
		b := byName[in.Base]
		if b == nil {
			return nil, fmt.Errorf("cannot start the cluster: model %q is not in the profile %q; pick one of its %d models (cw tools profile lists them)", in.Base, base.Device, len(base.Models))
		}
		m := *b
		m.ModelName = in.Name
		m.Batches = append(m.Batches[:0:0], b.Batches...)
		prof.Models = append(prof.Models, m)
		js, err := json.Marshal(&m)
		if err == nil {
			err = os.WriteFile(filepath.Join(root, in.Name+".json"), js, 0o644)
		}
		if err != nil {
			os.RemoveAll(root)
			return nil, fmt.Errorf("cannot write model %q under %s: %w", in.Name, root, err)
		}
		ccfg.Models = append(ccfg.Models, controller.ModelSource{Name: in.Name, Path: in.Name + ".json"})
	}
	if err := prof.Validate(); err != nil {
		os.RemoveAll(root)
		return nil, fmt.Errorf("cannot start the cluster: %w", err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ctx, cancel := context.WithCancel(ctx)
	c := &Cluster{Profile: prof, group: group{cancel: cancel}, root: root}
	fail := func(err error) (*Cluster, error) {
		c.Close()
		return nil, err
	}
	ccfg.Workers = nil
	for i := range cfg.Workers {
		w, err := worker.New(worker.Config{Addr: "127.0.0.1:0", SimGPUs: cfg.GPUsPerWorker, SimNoise: cfg.SimNoise, SimSeed: uint64(i + 1),
			Profile: prof, ModelRoot: root, RegionBytes: cfg.GPUMemBytes, SpinNs: cfg.SpinNs, Logger: logger.With("worker", i)})
		if err != nil {
			return fail(fmt.Errorf("cannot start sim worker %d: %w", i, err))
		}
		c.Workers = append(c.Workers, w)
		ccfg.Workers = append(ccfg.Workers, w.Addr().String())
		c.goRun(func() error { return w.Run(ctx) })
	}
	if ccfg.Listen == "" && ccfg.Listener == nil {
		ccfg.Listen = "127.0.0.1:0"
	}
	ccfg.Profile = controller.SimProfile(prof)
	ccfg.Logger = logger.With("role", "controller")
	ctl, err := controller.New(ccfg)
	if err != nil {
		return fail(fmt.Errorf("cannot start the controller: %w", err))
	}
	c.Ctl = ctl
	done := make(chan struct{})
	c.goRun(func() error { defer close(done); return ctl.Run(ctx) })
	select {
	case <-ctl.Ready():
	case <-done:
		return fail(fmt.Errorf("controller stopped at start: %w", c.Err()))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	if err := c.waitModels(ctx, len(ccfg.Models)); err != nil {
		return fail(err)
	}
	return c, nil
}

// waitModels polls ListModels until the controller lists all n models (it registers them on
// every worker first), for at most 60 s.
func (c *Cluster) waitModels(ctx context.Context, n int) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cli, err := client.Dial(ctx, client.Config{Addr: c.Addr()})
	if err != nil {
		return fmt.Errorf("cannot reach the in-process controller at %s: %w", c.Addr(), err)
	}
	defer cli.Close()
	tk := time.NewTicker(20 * time.Millisecond)
	defer tk.Stop()
	got := 0
	for {
		ms, err := cli.ListModels(ctx)
		if err != nil {
			return fmt.Errorf("cannot list models at %s: %w", c.Addr(), err)
		}
		if got = len(ms); got >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("controller registered %d of %d models before the deadline: %w (%v)", got, n, ctx.Err(), c.Err())
		case <-tk.C:
		}
	}
}

// Addr is the controller's client address.
func (c *Cluster) Addr() string { return c.Ctl.Addr().String() }

// Dial connects to the controller (for client.Config.Dial users: a plain TCP dial).
func (c *Cluster) Dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", c.Addr())
}

// Close stops the controller and workers and waits for them (at most 10 s).
func (c *Cluster) Close() error {
	c.shutdown(10*time.Second, func() {
		for _, w := range c.Workers {
			_ = w.Close()
		}
		os.RemoveAll(c.root)
	})
	return c.Err()
}
