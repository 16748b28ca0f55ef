package controller

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync/atomic"
	"time"

	"github.com/clockwork-go/clockwork/controller/sched"
	"github.com/clockwork-go/clockwork/wire"
)

// workerLink is one worker: its dialler/reader goroutine and the loop's view of it.
type workerLink struct {
	idx       int32
	addr      string
	lastFrame atomic.Int64 // wire clock of the last frame read; written by the reader

	// Owned by the event loop.
	conn     *wire.Conn // nil while down
	hello    wire.Hello
	gpuIDs   []int32 // scheduler GPU ids, assigned on first connection, kept across reconnects
	waiting  int     // LoadModel answers outstanding before the GPUs join
	joined   bool    // GPUs added to the scheduler
	offset   int64   // controller clock − worker clock
	modelAck []bool  // by scheduler model id: registered on this connection
}

func (c *Controller) wireConfig(role wire.Role, accept ...wire.Role) wire.Config {
	hello := wire.Hello{Role: role, Clock: wire.ClockUnixMono, Agent: []byte("cw controller")}
	return wire.Config{Hello: hello, AcceptRoles: accept, Secret: c.cfg.Secret, WireClock: WireNow, Now: time.Now,
		WriteTimeout: 10 * time.Second, QueueBytes: 64 << 20, InlinePayload: 64 << 20}
}

func (c *Controller) dial(ctx context.Context, addr string) (net.Conn, error) {
	if c.cfg.Dial != nil {
		return c.cfg.Dial(ctx, addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// workerLoop dials the worker, runs its link until it fails, and redials, until ctx is done.
func (c *Controller) workerLoop(ctx context.Context, wk *workerLink) {
	logged := false
	for ctx.Err() == nil {
		err := c.runWorker(ctx, wk)
		if ctx.Err() != nil {
			return
		}
		if !logged || !errors.Is(err, errDial) {
			c.log.Warn("worker link down; redialling", "worker", wk.addr, "err", err)
		}
		logged = errors.Is(err, errDial)
		t := time.NewTimer(c.cfg.RedialEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

var errDial = errors.New("cannot dial worker")

func (c *Controller) runWorker(ctx context.Context, wk *workerLink) error {
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	nc, err := c.dial(dctx, wk.addr)
	cancel()
	if err != nil {
		return fmt.Errorf("%w %s: %w; is `cw worker` running there?", errDial, wk.addr, err)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	conn, err := wire.NewConn(nc, c.wireConfig(wire.RoleController, wire.RoleWorker))
	if err != nil {
		_ = nc.Close()
		return err
	}
	hello, err := conn.Handshake(time.Now().Add(5 * time.Second))
	if err != nil {
		return fmt.Errorf("cannot greet worker %s: %w", wk.addr, err)
	}
	if c.cfg.SynthInput && hello.Flags&wire.HelloSynthInput == 0 {
		_ = conn.CloseWithStatus(wire.StatusBadInput, "controller runs with synthetic inputs; start the worker with synthetic input support")
		return fmt.Errorf("worker %s cannot synthesise inputs, which this controller's -synth needs", wk.addr)
	}
	writeErr := make(chan error, 1)
	go func() { writeErr <- conn.WriteLoop() }()
	wk.lastFrame.Store(WireNow())
	h := *hello
	h.GPUs = slices.Clone(hello.GPUs)
	if !c.post(ctx, event{kind: evWorkerUp, wk: wk, conn: conn, hello: &h, name: string(hello.Backend)}) {
		conn.Abort()
		return ctx.Err()
	}
	err = c.readWorker(ctx, wk, conn)
	conn.Abort()
	<-writeErr
	c.post(ctx, event{kind: evWorkerDown, wk: wk, conn: conn, err: err})
	return err
}

// readWorker reads frames until the link fails.
//
// Timing: reader goroutine; one allocation per result with output (its buffer).
func (c *Controller) readWorker(ctx context.Context, wk *workerLink, conn *wire.Conn) error {
	var res wire.Result
	var info wire.ModelInfo
	var state wire.WorkerState
	for {
		h, err := conn.Next()
		if err != nil {
			return err
		}
		wk.lastFrame.Store(WireNow())
		switch h.Type {
		case wire.TypeResult:
			if err := conn.DecodeInto(&res); err != nil {
				return err
			}
			var out []byte
			if h.PayloadLen > 0 {
				out = make([]byte, h.PayloadLen)
				if err := conn.ReadPayload(out); err != nil {
					return err
				}
			}
			ev := event{kind: evResult, wk: wk, conn: conn, res: res, input: out}
			ev.res.Reason = nil // the decoder reuses it
			if !c.post(ctx, ev) {
				return ctx.Err()
			}
		case wire.TypeModelInfo:
			if err := conn.DecodeInto(&info); err != nil {
				return err
			}
			ev := event{kind: evModelInfo, wk: wk, conn: conn, info: info, name: string(info.Reason)}
			ev.info.Model.Name = bytes.Clone(info.Model.Name)
			ev.info.Model.Batches = slices.Clone(info.Model.Batches)
			ev.info.Reason = nil
			if !c.post(ctx, ev) {
				return ctx.Err()
			}
		case wire.TypeWorkerState:
			if err := conn.DecodeInto(&state); err != nil {
				return err
			}
		default:
			if err := conn.Discard(); err != nil {
				return err
			}
		}
	}
}

func (c *Controller) onWorkerUp(ev *event) {
	wk := ev.wk
	h := *ev.hello
	if wk.conn != nil {
		panic(fmt.Sprintf("BUG: worker %s up twice", wk.addr))
	}
	if len(wk.gpuIDs) > 0 && len(wk.gpuIDs) != len(h.GPUs) {
		c.log.Warn("worker came back with another GPU count; using the new ones", "worker", wk.addr, "before", len(wk.gpuIDs), "now", len(h.GPUs))
	}
	for len(wk.gpuIDs) < len(h.GPUs) {
		i := len(wk.gpuIDs)
		wk.gpuIDs = append(wk.gpuIDs, int32(len(c.gpus)))
		c.gpus = append(c.gpus, gpuRef{wk: wk, index: uint16(i)})
	}
	wk.conn, wk.hello, wk.offset, wk.joined = ev.conn, h, 0, false
	if off, _, ok := ev.conn.ClockOffset(); ok {
		wk.offset = off
	}
	c.log.Info("worker connected", "worker", wk.addr, "backend", ev.name, "gpus", len(h.GPUs))
	// Start from a known state: no weights resident, every model registered.
	c.ctlSeq++
	_ = wk.conn.Send(&wire.ClearCache{ActionID: ctlBit | c.ctlSeq, GPU: wire.AllGPUs}, nil)
	wk.modelAck = wk.modelAck[:0]
	wk.waiting = 0
	for _, m := range c.models {
		c.registerOn(wk, m)
	}
	c.maybeJoin(wk)
}

func (c *Controller) registerOn(wk *workerLink, m *modelEntry) {
	for int(m.id) >= len(wk.modelAck) {
		wk.modelAck = append(wk.modelAck, false)
	}
	wk.waiting++
	m.pending++
	lm := wire.LoadModel{RequestID: ctlBit | uint64(m.id), ModelID: uint32(m.id + 1), Source: wire.SourcePath,
		Name: []byte(m.name), Path: []byte(m.path)}
	if m.upload != nil {
		lm.Source, lm.Path = wire.SourceUpload, nil
	}
	_ = wk.conn.Send(&lm, m.upload) // copied into the queue: InlinePayload > MaxUploadBytes
}

// maybeJoin adds the worker's GPUs to the scheduler once every model is registered on it.
func (c *Controller) maybeJoin(wk *workerLink) {
	if wk.joined || wk.conn == nil || wk.waiting > 0 {
		return
	}
	wk.joined = true
	for i, g := range wk.hello.GPUs {
		if i >= len(wk.gpuIDs) {
			break
		}
		gid := wk.gpuIDs[i]
		c.gpus[gid].wk = wk
		clear(c.gpus[gid].loaded)
		se := sched.Event{Kind: sched.EvAddGPU, GPU: gid, Worker: wk.idx, Pages: int32(min(g.Pages, 1<<30))}
		c.step(&se)
	}
	c.log.Info("worker joined", "worker", wk.addr, "gpus", len(wk.hello.GPUs))
}

func (c *Controller) onWorkerDown(ev *event) {
	wk := ev.wk
	if wk.conn != ev.conn {
		return
	}
	wk.conn = nil
	for _, m := range c.models {
		if int(m.id) < len(wk.modelAck) && !wk.modelAck[m.id] && m.pending > 0 {
			m.pending--
			c.finishRegistration(m)
		}
	}
	for id, f := range c.flights {
		if f.wk == wk {
			delete(c.flights, id)
			f.wk = nil
			c.freeFl = append(c.freeFl, f)
		}
	}
	for _, gid := range wk.gpuIDs {
		for m, on := range c.gpus[gid].loaded {
			if on {
				c.setLoaded(gid, int32(m), false)
			}
		}
	}
	if wk.joined {
		wk.joined = false
		se := sched.Event{Kind: sched.EvWorkerLost, Worker: wk.idx}
		c.step(&se)
	}
}

func (c *Controller) onModelInfo(ev *event) {
	wk := ev.wk
	if wk.conn != ev.conn {
		return
	}
	in := &ev.info
	if in.RequestID&ctlBit == 0 {
		return
	}
	id := int32(in.RequestID &^ ctlBit)
	if id < 0 || int(id) >= len(c.models) || int(id) >= len(wk.modelAck) || wk.modelAck[id] {
		return
	}
	m := c.models[id]
	wk.modelAck[id] = true
	wk.waiting--
	m.pending--
	ok := in.Status == wire.StatusOK || (in.Status == wire.StatusModelExists && in.Model.WeightsPages > 0)
	switch {
	case !ok:
		c.log.Error("worker cannot register model", "worker", wk.addr, "model", m.name, "status", in.Status, "reason", ev.name)
	case !m.ready:
		if err := c.addModel(m, &in.Model); err != nil {
			c.log.Error("cannot schedule model", "model", m.name, "err", err)
		}
	case !sameDesc(&m.desc, &in.Model):
		c.log.Error("worker describes a model differently from the others; dropping the worker", "worker", wk.addr, "model", m.name)
		wk.conn.Abort()
	}
	c.finishRegistration(m)
	c.maybeJoin(wk)
}

func sameDesc(a, b *wire.ModelDesc) bool {
	return a.InputBytes == b.InputBytes && a.OutputBytes == b.OutputBytes && a.WeightsPages == b.WeightsPages &&
		slices.Equal(a.Batches, b.Batches)
}

// addModel registers a model with the scheduler, seeding estimates from the profile.
func (c *Controller) addModel(m *modelEntry, d *wire.ModelDesc) error {
	if len(d.Batches) == 0 || d.Batches[0] != 1 {
		return fmt.Errorf("model %s: batch sizes %v must start at 1", m.name, d.Batches)
	}
	spec := &sched.ModelSpec{ID: m.id, Pages: int32(max(1, min(d.WeightsPages, 1<<30)))}
	var exec []int64
	var load int64
	ok := false
	if c.cfg.Profile != nil {
		exec, load, ok = c.cfg.Profile(m.name, d)
		ok = ok && len(exec) == len(d.Batches)
	}
	for i, b := range d.Batches {
		if i >= 8 || int32(b) > c.cfg.Sched.MaxBatch {
			break
		}
		spec.Batches = append(spec.Batches, int32(b))
		e := c.cfg.DefaultExecNs + c.cfg.DefaultExecNs*int64(b-1)/2
		if ok {
			e = exec[i]
		}
		spec.ExecNs = append(spec.ExecNs, e)
	}
	spec.LoadNs = int64(d.WeightsBytes) / 12 // 12 GB/s = 12 bytes/ns
	if ok && load > 0 {
		spec.LoadNs = load
	}
	spec.LoadNs = max(spec.LoadNs, 1000)
	if err := spec.Validate(); err != nil {
		return err
	}
	m.desc = *d
	m.ready = true
	se := sched.Event{Kind: sched.EvAddModel, Spec: spec}
	c.step(&se)
	return nil
}

// finishRegistration answers clients waiting on a LoadModel once every worker has answered.
func (c *Controller) finishRegistration(m *modelEntry) {
	if m.pending > 0 || len(m.waiters) == 0 {
		return
	}
	info := wire.ModelInfo{Status: wire.StatusOK, Model: m.desc}
	info.Model.ModelID = uint32(m.id + 1)
	if !m.ready {
		info.Status, info.Reason = wire.StatusInternal, []byte("no worker could register the model; see the workers' logs")
	}
	for _, w := range m.waiters {
		info.RequestID = w.req
		if !w.cl.gone {
			_ = w.cl.conn.Send(&info, nil)
		}
	}
	m.waiters = nil
}
