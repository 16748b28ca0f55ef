package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/clockwork-go/clockwork/controller/sched"
	"github.com/clockwork-go/clockwork/wire"
)

// ModelSource names a model to register on every worker at start-up.
type ModelSource struct {
	Name string // unique; clients may address the model by it
	Path string // on the workers, relative to their model root
}

// Profile gives the scheduler's first estimates for a model: exec time per batch size (same
// order as desc.Batches) and LOAD time. Measurements replace them after the first runs.
type Profile func(name string, desc *wire.ModelDesc) (execNs []int64, loadNs int64, ok bool)

// Config configures a Controller. Start from DefaultConfig.
type Config struct {
	// Workers are the worker addresses to dial (host:port).
	Workers []string
	// Listen is the client address (host:port; port 0 picks one, see Controller.Addr). Empty
	// with a nil Listener: no client listener (tests drive the controller in-process).
	Listen   string
	Listener net.Listener
	// Dial dials a worker; nil uses net.Dialer. `cw serve` passes an in-process dialer.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// Models are registered on every worker before clients are served.
	Models []ModelSource
	// Profile seeds the exec estimates; nil or !ok uses DefaultExecNs (batch 1) growing by
	// half of it per extra item, and LOAD at 12 GB/s.
	Profile       Profile
	DefaultExecNs int64
	// Sched is the scheduler's configuration.
	Sched sched.Config
	// DefaultSLO applies to requests that carry neither SLO nor deadline.
	DefaultSLO time.Duration
	// SynthInput: workers synthesise inputs and send no outputs (controller-throughput tests;
	// the workers must announce HelloSynthInput). Requests then carry no input.
	SynthInput bool
	// Secret, when set, authenticates both links (HMAC in the hello).
	Secret []byte
	// WorkerTimeout: a worker that has sent no frame for this long (it is pinged every quarter
	// of it) is declared lost and redialled.
	WorkerTimeout time.Duration
	// RedialEvery is the pause between dials of an unreachable worker.
	RedialEvery time.Duration
	// RequestLog and ActionLog receive TSV telemetry with Clockwork's columns; nil: none.
	RequestLog, ActionLog io.Writer
	// Logger receives lifecycle events (never per-request ones); nil discards.
	Logger *slog.Logger
}

// DefaultConfig returns a configuration with Clockwork's scheduler defaults, a 100 ms default
// SLO, workers declared lost after 1 s of silence, and the client port 12346.
func DefaultConfig() Config {
	return Config{
		Listen:        ":12346",
		Sched:         sched.DefaultConfig(),
		DefaultSLO:    100 * time.Millisecond,
		DefaultExecNs: 5e6,
		WorkerTimeout: time.Second,
		RedialEvery:   200 * time.Millisecond,
	}
}

// Validate reports a configuration that cannot run, naming the fix.
func (c *Config) Validate() error {
	if err := c.Sched.Validate(); err != nil {
		return fmt.Errorf("scheduler config: %w", err)
	}
	if c.DefaultSLO <= 0 {
		return fmt.Errorf("default SLO %v must be positive", c.DefaultSLO)
	}
	if c.DefaultExecNs <= 0 {
		return fmt.Errorf("default exec time %d ns must be positive", c.DefaultExecNs)
	}
	if c.WorkerTimeout < 10*time.Millisecond || c.RedialEvery <= 0 {
		return fmt.Errorf("worker timeout %v must be >= 10ms and redial interval %v positive", c.WorkerTimeout, c.RedialEvery)
	}
	if len(c.Workers) > 1024 {
		return fmt.Errorf("%d workers; at most 1024", len(c.Workers))
	}
	names := map[string]bool{}
	for _, m := range c.Models {
		if m.Name == "" || len(m.Name) > wire.MaxNameLen || len(m.Path) > wire.MaxPathLen {
			return fmt.Errorf("model %q: name must be 1..%d bytes and path at most %d", m.Name, wire.MaxNameLen, wire.MaxPathLen)
		}
		if names[m.Name] {
			return fmt.Errorf("model %q listed twice; names must be unique", m.Name)
		}
		names[m.Name] = true
	}
	if c.Listen != "" && c.Listener != nil {
		return errors.New("both Listen and Listener set; pass one")
	}
	return nil
}
