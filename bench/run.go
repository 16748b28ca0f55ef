package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clockwork-go/clockwork/client"
	"github.com/clockwork-go/clockwork/wire"
)

// Target is what a workload sends to: one inference of model (an index into the run's model list)
// with an SLO (0: the controller's default), blocking until its one answer. Err set means no
// answer came (the connection is gone): the run stops.
type Target interface {
	Infer(ctx context.Context, model int32, sloNs int64) Answer
}

// Answer is a Target's reply.
type Answer struct {
	Status wire.Status
	Batch  int32
	Err    error
}

// Outcome says whether a request was sent and answered.
type Outcome uint8

const (
	Answered Outcome = iota
	NotSent          // the run ended (error or cancel) before its time
	Lost             // sent, but the connection went away before the answer
)

// Record is one request of a run. Times are ns from the run's start.
type Record struct {
	SchedNs, SentNs, DoneNs int64
	SLONs                   int64
	Model                   int32
	Batch                   int32
	Status                  wire.Status
	Outcome                 Outcome
}

// LatencyNs is the latency a user sees: from the scheduled send time to the answer.
func (r *Record) LatencyNs() int64 { return r.DoneNs - r.SchedNs }

// Result is what a run measured; it is the caller's once Run* returns.
type Result struct {
	Models  []string
	Start   time.Time
	DurNs   int64
	Records []Record
	// DefaultSLONs is the SLO of records with SLONs 0 (the controller's default).
	DefaultSLONs int64
	// Loads are the times (ns from Start) of successful LOADs (cold starts), when known; nil:
	// unknown (a remote controller).
	Loads []int64
	// Err is why the run ended early, if it did.
	Err error
}

// RunOptions are options common to runs.
type RunOptions struct {
	// Progress, if set, gets a one-line progress bar redrawn with \r about 5 times a second;
	// pass a terminal only.
	Progress io.Writer
	// DefaultSLONs is the controller's default SLO (for arrivals with none).
	DefaultSLONs int64
}

// RunOpen sends arr at their scheduled times and waits for every answer. The dispatcher never
// waits on a response: each request has its own goroutine. It returns early if ctx is done or
// the target goes away (Result.Err and the returned error say why); the records of requests not
// sent say so.
func RunOpen(ctx context.Context, t Target, models []string, arr []Arrival, opt RunOptions) (*Result, error) {
	res := &Result{Models: models, Records: make([]Record, len(arr)), DefaultSLONs: opt.DefaultSLONs}
	for i, a := range arr {
		if a.Model < 0 || int(a.Model) >= len(models) {
			return nil, fmt.Errorf("cannot run the workload: arrival %d names model %d of %d", i, a.Model, len(models))
		}
		res.Records[i] = Record{SchedNs: a.AtNs, SLONs: a.SLONs, Model: a.Model, Outcome: NotSent}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	var sent, done atomic.Int64
	total := int64(0)
	if len(arr) > 0 {
		total = arr[len(arr)-1].AtNs
	}
	res.Start = time.Now()
	stopBar := progress(opt.Progress, res.Start, total, int64(len(arr)), &sent, &done)
	mono := res.Start
	for i := range arr {
		at := mono.Add(time.Duration(arr[i].AtNs))
		if d := time.Until(at); d > 0 {
			tm := time.NewTimer(d)
			select {
			case <-ctx.Done():
				tm.Stop()
			case <-tm.C:
			}
		}
		if ctx.Err() != nil {
			break
		}
		r := &res.Records[i]
		r.SentNs = int64(time.Since(mono))
		sent.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ans := t.Infer(ctx, r.Model, r.SLONs)
			r.DoneNs = int64(time.Since(mono))
			done.Add(1)
			if ans.Err != nil {
				r.Outcome = Lost
				if !errors.Is(ans.Err, context.Canceled) {
					cancel(ans.Err)
				}
				return
			}
			r.Outcome, r.Status, r.Batch = Answered, ans.Status, ans.Batch
		}()
	}
	wg.Wait()
	res.DurNs = int64(time.Since(mono))
	stopBar()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		res.Err = err
	} else if err != nil {
		res.Err = err
	}
	return res, res.Err
}

// ClosedConfig is a closed-loop workload: Clients goroutines per model, each sending its next
// request when the previous one is answered, for DurNs.
type ClosedConfig struct {
	Models  []int32
	Clients int
	DurNs   int64
	SLONs   int64
}

// RunClosed runs cfg against t. Latency is from each send (a closed loop has no schedule).
func RunClosed(ctx context.Context, t Target, models []string, cfg ClosedConfig, opt RunOptions) (*Result, error) {
	if cfg.Clients < 1 || cfg.DurNs <= 0 || len(cfg.Models) == 0 {
		return nil, fmt.Errorf("cannot run a closed loop of %d clients × %d models for %d ns; all must be > 0", cfg.Clients, len(cfg.Models), cfg.DurNs)
	}
	for _, m := range cfg.Models {
		if m < 0 || int(m) >= len(models) {
			return nil, fmt.Errorf("cannot run the closed loop: model %d of %d", m, len(models))
		}
	}
	res := &Result{Models: models, DefaultSLONs: opt.DefaultSLONs}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var mu sync.Mutex
	var wg sync.WaitGroup
	var sent, done atomic.Int64
	res.Start = time.Now()
	mono := res.Start
	stopBar := progress(opt.Progress, mono, cfg.DurNs, 0, &sent, &done)
	for _, m := range cfg.Models {
		for range cfg.Clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var local []Record
				for ctx.Err() == nil {
					now := int64(time.Since(mono))
					if now >= cfg.DurNs {
						break
					}
					r := Record{SchedNs: now, SentNs: now, SLONs: cfg.SLONs, Model: m}
					sent.Add(1)
					ans := t.Infer(ctx, m, cfg.SLONs)
					r.DoneNs = int64(time.Since(mono))
					done.Add(1)
					if ans.Err != nil {
						r.Outcome = Lost
						if !errors.Is(ans.Err, context.Canceled) {
							cancel(ans.Err)
						}
					} else {
						r.Status, r.Batch = ans.Status, ans.Batch
					}
					local = append(local, r)
				}
				mu.Lock()
				res.Records = append(res.Records, local...)
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	res.DurNs = int64(time.Since(mono))
	stopBar()
	if err := context.Cause(ctx); err != nil {
		res.Err = err
	}
	return res, res.Err
}

func progress(w io.Writer, start time.Time, totalNs, totalReq int64, sent, done *atomic.Int64) (stop func()) {
	if w == nil {
		return func() {}
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	draw := func() {
		el := time.Since(start)
		frac := 1.0
		if totalNs > 0 {
			frac = min(float64(el)/float64(totalNs), 1)
		}
		const width = 30
		bar := make([]byte, width)
		for i := range bar {
			bar[i] = ' '
			if float64(i) < frac*width {
				bar[i] = '#'
			}
		}
		fmt.Fprintf(w, "\r[%s] %3.0f%% %6.1fs  sent %d  answered %d  in flight %d ", bar, 100*frac, el.Seconds(), sent.Load(), done.Load(), sent.Load()-done.Load())
	}
	go func() {
		defer wg.Done()
		tk := time.NewTicker(200 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-quit:
				draw()
				fmt.Fprintln(w)
				return
			case <-tk.C:
				draw()
			}
		}
	}()
	return func() { close(quit); wg.Wait() }
}

// ClientTarget sends to a controller through a client.Client, addressing models by id.
type ClientTarget struct {
	C      *client.Client
	Addr   string
	ids    []uint32
	inputs [][]byte // per model, zeros of its input size; nil with synthesised inputs
}

// NewClientTarget resolves names to the controller's model ids; a name it does not know is an
// error naming it and the address. Unless synth (the workers synthesise inputs), every request
// carries an input of the model's size (zeros, shared read-only by all requests of a model).
func NewClientTarget(ctx context.Context, c *client.Client, addr string, names []string, synth bool) (*ClientTarget, error) {
	descs, err := c.ListModels(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot list models at %s: %w", addr, err)
	}
	byName := make(map[string]*wire.ModelDesc, len(descs))
	for i := range descs {
		byName[string(descs[i].Name)] = &descs[i]
	}
	t := &ClientTarget{C: c, Addr: addr, ids: make([]uint32, len(names))}
	if !synth {
		t.inputs = make([][]byte, len(names))
	}
	bySize := map[uint64][]byte{}
	for i, n := range names {
		d, ok := byName[n]
		if !ok {
			return nil, fmt.Errorf("controller at %s has no model %q (it has %d models); register it or fix the model list", addr, n, len(descs))
		}
		t.ids[i] = d.ModelID
		if !synth {
			if bySize[d.InputBytes] == nil {
				bySize[d.InputBytes] = make([]byte, d.InputBytes)
			}
			t.inputs[i] = bySize[d.InputBytes]
		}
	}
	return t, nil
}

// Infer implements Target.
func (t *ClientTarget) Infer(ctx context.Context, model int32, sloNs int64) Answer {
	var in []byte
	if t.inputs != nil {
		in = t.inputs[model]
	}
	res, err := t.C.Infer(ctx, "", in, client.InferOptions{ModelID: t.ids[model], SLO: time.Duration(sloNs)})
	if err == nil {
		return Answer{Status: wire.StatusOK, Batch: int32(res.Batch)}
	}
	var se *client.StatusError
	if errors.As(err, &se) {
		return Answer{Status: se.Status}
	}
	if ctx.Err() != nil {
		return Answer{Err: ctx.Err()}
	}
	return Answer{Err: fmt.Errorf("controller at %s went away mid-run: %w", t.Addr, err)}
}
