package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clockwork-go/clockwork/wire"
)

// Config configures Dial. Only Addr is required.
type Config struct {
	Addr   string // controller host:port
	Secret []byte // shared secret, if the controller has one
	// Dial dials the controller; nil uses net.Dialer (tests pass an in-process pipe).
	Dial func(ctx context.Context, addr string) (net.Conn, error)
}

// StatusError is a rejection from the controller.
type StatusError struct {
	Status wire.Status
	Reason string
}

func (e *StatusError) Error() string {
	if e.Reason == "" {
		return "clockwork: " + e.Status.String()
	}
	return "clockwork: " + e.Status.String() + ": " + e.Reason
}

// Is matches another *StatusError with the same status, so errors.Is(err, client.ErrCannotMeetSLO)
// works.
func (e *StatusError) Is(target error) bool {
	t, ok := target.(*StatusError)
	return ok && t.Status == e.Status
}

// Sentinels for errors.Is.
var (
	ErrCannotMeetSLO = &StatusError{Status: wire.StatusCannotMeetSLO}
	ErrUnknownModel  = &StatusError{Status: wire.StatusUnknownModel}
	ErrBadInput      = &StatusError{Status: wire.StatusBadInput}
	ErrOverloaded    = &StatusError{Status: wire.StatusOverloaded}
	ErrCancelled     = &StatusError{Status: wire.StatusCancelled}
	ErrWorkerLost    = &StatusError{Status: wire.StatusWorkerLost}
	ErrShuttingDown  = &StatusError{Status: wire.StatusShuttingDown}
)

// ErrClosed is returned by calls on a closed Client, or pending when it closes.
var ErrClosed = errors.New("clockwork client closed")

// Client is a connection to a controller.
type Client struct {
	conn    *wire.Conn
	nextID  atomic.Uint64
	mu      sync.Mutex
	calls   map[uint64]*call
	closed  bool
	err     error
	done    chan struct{}
	writeEr chan error
}

type call struct {
	done chan struct{}
	resp wire.Response
	out  []byte // caller's buffer, or allocated
	list wire.ModelList
	info wire.ModelInfo
	kind wire.Type
}

var callPool = sync.Pool{New: func() any { return &call{done: make(chan struct{}, 1)} }}

var wireStart = time.Now()

func wireNow() int64 { return wireStart.UnixNano() + int64(time.Since(wireStart)) }

// Dial connects to the controller and greets it.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	var nc net.Conn
	var err error
	if cfg.Dial != nil {
		nc, err = cfg.Dial(ctx, cfg.Addr)
	} else {
		var d net.Dialer
		nc, err = d.DialContext(ctx, "tcp", cfg.Addr)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot dial controller %s: %w; is `cw controller` running?", cfg.Addr, err)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	conn, err := wire.NewConn(nc, wire.Config{
		Hello:     wire.Hello{Role: wire.RoleClient, Clock: wire.ClockUnixMono, Agent: []byte("cw client")},
		Secret:    cfg.Secret,
		WireClock: wireNow, Now: time.Now, WriteTimeout: 10 * time.Second,
		QueueBytes: 16 << 20, InlinePayload: 1 << 20,
	})
	if err != nil {
		_ = nc.Close()
		return nil, err
	}
	deadline := time.Now().Add(5 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if _, err := conn.Handshake(deadline); err != nil {
		return nil, fmt.Errorf("cannot greet controller %s: %w", cfg.Addr, err)
	}
	c := &Client{conn: conn, calls: map[uint64]*call{}, done: make(chan struct{}), writeEr: make(chan error, 1)}
	go func() { c.writeEr <- conn.WriteLoop() }()
	go c.readLoop()
	return c, nil
}

// Close says goodbye and fails calls still pending with ErrClosed.
func (c *Client) Close() error {
	err := c.conn.Close()
	<-c.done
	return err
}

// InferOptions are an Infer call's options.
type InferOptions struct {
	// SLO is the latency objective from the controller's receipt; Deadline an absolute
	// deadline. Set at most one; neither uses the controller's default SLO.
	SLO      time.Duration
	Deadline time.Time
	Priority wire.Priority
	// ModelID addresses the model by id instead of name (faster: no name on the wire).
	ModelID uint32
	// Output, if long enough, receives the output; otherwise a buffer is allocated.
	Output []byte
}

// Result is a successful inference.
type Result struct {
	Output []byte
	// Controller-clock times (ns) of arrival, dispatch to a worker and completion; the batch
	// size it ran in and its device exec time.
	ArrivedNs, DispatchedNs, CompletedNs, ExecNs int64
	Batch                                        int
}

// Infer runs one inference of model (by name, or opts.ModelID) on input and waits for its one
// answer. If ctx is cancelled first, a Cancel is sent and ctx's error returned.
//
// Timing: any goroutine; blocks until the answer; allocates the output unless opts.Output fits.
func (c *Client) Infer(ctx context.Context, model string, input []byte, opts InferOptions) (Result, error) {
	id := c.nextID.Add(1)
	req := wire.Request{RequestID: id, ModelID: opts.ModelID, Priority: opts.Priority, SLONs: int64(opts.SLO)}
	if opts.ModelID == 0 {
		req.Name = []byte(model)
	}
	if !opts.Deadline.IsZero() {
		req.DeadlineNs = c.controllerTime(opts.Deadline)
	}
	cl := c.start(id, wire.TypeRequest, opts.Output)
	if cl == nil {
		return Result{}, c.closedErr()
	}
	if err := c.conn.Send(&req, input); err != nil {
		c.forget(id)
		return Result{}, fmt.Errorf("cannot send request: %w", err)
	}
	if err := c.wait(ctx, id, cl); err != nil {
		return Result{}, err
	}
	r := &cl.resp
	res := Result{Output: cl.out, ArrivedNs: r.ArrivedNs, DispatchedNs: r.DispatchedNs, CompletedNs: r.CompletedNs,
		ExecNs: r.ExecNs, Batch: int(r.Batch)}
	var err error
	if r.Status != wire.StatusOK {
		err = &StatusError{Status: r.Status, Reason: string(r.Reason)}
		res = Result{}
	}
	c.release(cl)
	return res, err
}

// controllerTime converts a local time into the controller's wire clock.
func (c *Client) controllerTime(t time.Time) int64 {
	local := wireNow() + int64(time.Until(t))
	if off, _, ok := c.conn.ClockOffset(); ok {
		return local - off // offset = local − controller
	}
	return local
}

// LoadModel registers a model (a file under the workers' model root) on every worker.
func (c *Client) LoadModel(ctx context.Context, name, path string) (wire.ModelDesc, error) {
	id := c.nextID.Add(1)
	cl := c.start(id, wire.TypeLoadModel, nil)
	if cl == nil {
		return wire.ModelDesc{}, c.closedErr()
	}
	if err := c.conn.Send(&wire.LoadModel{RequestID: id, Source: wire.SourcePath, Name: []byte(name), Path: []byte(path)}, nil); err != nil {
		c.forget(id)
		return wire.ModelDesc{}, err
	}
	if err := c.wait(ctx, id, cl); err != nil {
		return wire.ModelDesc{}, err
	}
	defer c.release(cl)
	if cl.info.Status != wire.StatusOK {
		return wire.ModelDesc{}, &StatusError{Status: cl.info.Status, Reason: string(cl.info.Reason)}
	}
	return cl.info.Model, nil
}

// UploadModel registers a model from the bytes of its file (at most the controller's
// MaxUploadBytes); the controller forwards it to every worker.
func (c *Client) UploadModel(ctx context.Context, name string, data []byte) (wire.ModelDesc, error) {
	id := c.nextID.Add(1)
	cl := c.start(id, wire.TypeLoadModel, nil)
	if cl == nil {
		return wire.ModelDesc{}, c.closedErr()
	}
	if err := c.conn.Send(&wire.LoadModel{RequestID: id, Source: wire.SourceUpload, Name: []byte(name)}, data); err != nil {
		c.forget(id)
		return wire.ModelDesc{}, err
	}
	if err := c.wait(ctx, id, cl); err != nil {
		return wire.ModelDesc{}, err
	}
	defer c.release(cl)
	if cl.info.Status != wire.StatusOK {
		return wire.ModelDesc{}, &StatusError{Status: cl.info.Status, Reason: string(cl.info.Reason)}
	}
	return cl.info.Model, nil
}

// ListModels returns the registered models.
func (c *Client) ListModels(ctx context.Context) ([]wire.ModelDesc, error) {
	id := c.nextID.Add(1)
	cl := c.start(id, wire.TypeListModels, nil)
	if cl == nil {
		return nil, c.closedErr()
	}
	if err := c.conn.Send(&wire.ListModels{RequestID: id}, nil); err != nil {
		c.forget(id)
		return nil, err
	}
	if err := c.wait(ctx, id, cl); err != nil {
		return nil, err
	}
	models := cl.list.Models
	cl.list.Models = nil
	c.release(cl)
	return models, nil
}

func (c *Client) start(id uint64, kind wire.Type, out []byte) *call {
	cl := callPool.Get().(*call)
	cl.kind, cl.out = kind, out
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		callPool.Put(cl)
		return nil
	}
	c.calls[id] = cl
	c.mu.Unlock()
	return cl
}

func (c *Client) forget(id uint64) {
	c.mu.Lock()
	delete(c.calls, id)
	c.mu.Unlock()
}

func (c *Client) release(cl *call) {
	cl.out = nil
	callPool.Put(cl)
}

func (c *Client) closedErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return fmt.Errorf("%w: %w", ErrClosed, c.err)
	}
	return ErrClosed
}

// wait waits for call id's answer. On ctx's end it sends Cancel and returns ctx's error; the
// call is then owned by the reader, which drops the late answer.
func (c *Client) wait(ctx context.Context, id uint64, cl *call) error {
	select {
	case <-cl.done:
		if cl.kind == 0 {
			c.release(cl)
			return c.closedErr()
		}
		return nil
	case <-ctx.Done():
		c.mu.Lock()
		_, still := c.calls[id]
		if still {
			c.calls[id] = nil // the reader drops its answer
		}
		c.mu.Unlock()
		if !still {
			<-cl.done // answered meanwhile
			if cl.kind == 0 {
				c.release(cl)
				return c.closedErr()
			}
			return nil
		}
		if cl.kind == wire.TypeRequest {
			_ = c.conn.TrySend(&wire.Cancel{RequestID: id}, nil)
		}
		return ctx.Err()
	}
}

func (c *Client) readLoop() {
	defer close(c.done)
	var resp wire.Response
	var list wire.ModelList
	var info wire.ModelInfo
	var err error
	for {
		var h *wire.Header
		h, err = c.conn.Next()
		if err != nil {
			break
		}
		var id uint64
		switch h.Type {
		case wire.TypeResponse:
			if err = c.conn.DecodeInto(&resp); err != nil {
				break
			}
			id = resp.RequestID
		case wire.TypeModelList:
			if err = c.conn.DecodeInto(&list); err != nil {
				break
			}
			id = list.RequestID
		case wire.TypeModelInfo:
			if err = c.conn.DecodeInto(&info); err != nil {
				break
			}
			id = info.RequestID
		default:
			if err = c.conn.Discard(); err != nil {
				break
			}
			continue
		}
		if err != nil {
			break
		}
		c.mu.Lock()
		cl, ok := c.calls[id]
		delete(c.calls, id)
		c.mu.Unlock()
		if !ok || cl == nil { // unknown, or its caller gave up
			if err = c.conn.Discard(); err != nil {
				break
			}
			continue
		}
		switch h.Type {
		case wire.TypeResponse:
			cl.resp = resp
			cl.resp.Reason = append([]byte(nil), resp.Reason...)
			n := int(h.PayloadLen)
			if cap(cl.out) >= n {
				cl.out = cl.out[:n]
			} else {
				cl.out = make([]byte, n)
			}
			if err = c.conn.ReadPayload(cl.out); err != nil {
				cl.kind = 0
			}
		case wire.TypeModelList:
			cl.list.Models = append([]wire.ModelDesc(nil), list.Models...)
			for i := range cl.list.Models {
				d := &cl.list.Models[i]
				d.Name = append([]byte(nil), d.Name...)
				d.Batches = append([]uint16(nil), d.Batches...)
			}
		case wire.TypeModelInfo:
			cl.info = info
			cl.info.Reason = append([]byte(nil), info.Reason...)
			cl.info.Model.Name = append([]byte(nil), info.Model.Name...)
			cl.info.Model.Batches = append([]uint16(nil), info.Model.Batches...)
		}
		cl.done <- struct{}{}
		if err != nil {
			break
		}
	}
	c.mu.Lock()
	c.closed = true
	if !errors.Is(err, wire.ErrPeerClosed) || c.err == nil {
		c.err = err
	}
	calls := c.calls
	c.calls = nil
	c.mu.Unlock()
	for _, cl := range calls {
		if cl != nil {
			cl.kind = 0
			cl.done <- struct{}{}
		}
	}
	c.conn.Abort()
	<-c.writeEr
}
