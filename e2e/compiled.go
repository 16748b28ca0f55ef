package e2e

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/clockwork-go/clockwork/client"
	"github.com/clockwork-go/clockwork/controller"
	"github.com/clockwork-go/clockwork/worker"
)

// CompiledConfig configures an in-process cluster on a backend that runs ONNX models (cpu,
// cuda): one controller and len(Workers) workers.
type CompiledConfig struct {
	// Workers are the workers' configurations, each with its Backend (and Compile), ModelRoot
	// and Batches set; Addr is replaced by a loopback port.
	Workers []worker.Config
	// Instances are the model instances: Name is registered, Base is the ONNX path under the
	// workers' model root. Instances of one path compile once per worker.
	Instances []Instance
	// Controller is the controller's configuration (Workers, Dial and Models are filled in);
	// start from controller.DefaultConfig.
	Controller controller.Config
	// Parallel bounds registrations in flight (0: 8). The worker compiles one file at a time;
	// more in flight overlap the instances' host weight copies.
	Parallel int
	Logger   *slog.Logger
}

// Registration is how one instance's registration ended: Err is nil and Model its controller
// id, or Err holds the controller's status and reason (a file that does not import, say).
type Registration struct {
	Instance
	ModelID uint32
	Err     error
}

// Compiled is a running controller with its ONNX workers.
//
// Unlike Cluster, models are registered after the controller starts, through the client API,
// one call per instance: a file that fails to import fails its instances with a status and the
// rest are served (a controller started with Config.Models would wait for every one).
type Compiled struct {
	Ctl     *controller.Controller
	Workers []*worker.Worker
	// Registered has one entry per instance, in CompiledConfig.Instances order.
	Registered []Registration

	stop []context.CancelFunc // per worker
	done []chan struct{}      // closed when the worker's Run returned
	group

	mu     sync.Mutex
	killed map[string]bool       // worker addresses killed: redials fail
	conns  map[string][]net.Conn // the controller's connections to each worker
}

// StartCompiled starts the workers and the controller, registers every instance (at most 10
// minutes: compiling a zoo takes seconds per model), and returns once all have answered. An
// instance that failed is in Registered with its error; StartCompiled fails only when none
// registered.
func StartCompiled(ctx context.Context, cfg CompiledConfig) (*Compiled, error) {
	if len(cfg.Workers) == 0 || len(cfg.Instances) == 0 {
		return nil, fmt.Errorf("cannot start a cluster of %d workers with %d model instances; both must be >= 1", len(cfg.Workers), len(cfg.Instances))
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(ctx)
	c := &Compiled{group: group{cancel: cancel}, killed: map[string]bool{}, conns: map[string][]net.Conn{}}
	fail := func(err error) (*Compiled, error) {
		c.Close()
		return nil, err
	}
	ccfg := cfg.Controller
	ccfg.Workers, ccfg.Models = nil, nil
	for i, wc := range cfg.Workers {
		wc.Addr = "127.0.0.1:0"
		if wc.Logger == nil {
			wc.Logger = logger.With("role", "worker", "worker", i)
		}
		w, err := worker.New(wc)
		if err != nil {
			return fail(fmt.Errorf("cannot start worker %d: %w", i, err))
		}
		c.Workers = append(c.Workers, w)
		ccfg.Workers = append(ccfg.Workers, w.Addr().String())
		wctx, stop := context.WithCancel(ctx)
		wdone := make(chan struct{})
		c.stop, c.done = append(c.stop, stop), append(c.done, wdone)
		c.goRun(func() error { defer close(wdone); return w.Run(wctx) })
	}
	if ccfg.Listen == "" && ccfg.Listener == nil {
		ccfg.Listen = "127.0.0.1:0"
	}
	ccfg.Dial = c.dial
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
	if err := c.register(ctx, cfg.Instances, cfg.Parallel); err != nil {
		return fail(err)
	}
	return c, nil
}

// register registers every instance through a client, Parallel at a time.
func (c *Compiled) register(ctx context.Context, inst []Instance, parallel int) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cli, err := client.Dial(ctx, client.Config{Addr: c.Addr()})
	if err != nil {
		return fmt.Errorf("cannot reach the in-process controller at %s: %w", c.Addr(), err)
	}
	defer cli.Close()
	if parallel <= 0 {
		parallel = 8
	}
	// The controller dials its workers once it listens and refuses registrations until one is
	// connected. It clears a worker's cache as soon as the link is up, so a worker that has
	// answered an action is connected.
	for _, w := range c.Workers {
		for w.Telemetry().Count() == 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("worker %s never heard from the controller: %w (%v)", w.Addr(), ctx.Err(), c.Err())
			case <-time.After(2 * time.Millisecond):
			}
		}
	}
	c.Registered = make([]Registration, len(inst))
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, in := range inst {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			d, err := cli.LoadModel(ctx, in.Name, in.Base)
			if err != nil {
				err = fmt.Errorf("cannot register %s (%s): %w", in.Name, in.Base, err)
			}
			c.Registered[i] = Registration{Instance: in, ModelID: d.ModelID, Err: err}
		}()
	}
	wg.Wait()
	var errs []error
	for _, r := range c.Registered {
		if r.Err == nil {
			return nil
		}
		if len(errs) < 3 {
			errs = append(errs, r.Err)
		}
	}
	return fmt.Errorf("no model instance registered: %w", errors.Join(errs...))
}

// dial is the controller's dialer: a plain TCP dial, refused for killed workers, with the
// connection remembered so Kill can cut it.
func (c *Compiled) dial(ctx context.Context, addr string) (net.Conn, error) {
	c.mu.Lock()
	dead := c.killed[addr]
	c.mu.Unlock()
	if dead {
		return nil, fmt.Errorf("cannot dial worker %s: killed by the test", addr)
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.killed[addr] {
		nc.Close()
		return nil, fmt.Errorf("cannot dial worker %s: killed by the test", addr)
	}
	c.conns[addr] = append(c.conns[addr], nc)
	return nc, nil
}

// Kill makes worker i vanish as a crashed process would for the controller: its connections
// are cut without a goodbye (actions in flight get no Result), redials fail, and the worker
// is then stopped. Any goroutine; returns once the worker has stopped.
func (c *Compiled) Kill(i int) error {
	if i < 0 || i >= len(c.Workers) {
		return fmt.Errorf("cannot kill worker %d of %d", i, len(c.Workers))
	}
	addr := c.Workers[i].Addr().String()
	c.mu.Lock()
	c.killed[addr] = true
	for _, nc := range c.conns[addr] {
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // RST, as the kernel sends for a killed process's socket
		}
		_ = nc.Close()
	}
	c.conns[addr] = nil
	c.mu.Unlock()
	c.stop[i]()
	<-c.done[i]
	return nil
}

// Addr is the controller's client address.
func (c *Compiled) Addr() string { return c.Ctl.Addr().String() }

// Close stops the controller and the workers and waits for them (at most 30 s: a cuda worker
// frees its GPU memory). Idempotent.
func (c *Compiled) Close() error {
	c.shutdown(30*time.Second, nil)
	return c.Err()
}
