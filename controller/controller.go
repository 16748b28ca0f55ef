package controller

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clockwork-go/clockwork/controller/sched"
	"github.com/clockwork-go/clockwork/wire"
)

// Controller is a running controller. Create it with New and run it with Run.
//
// The path of a request:
//
//  1. A client link's reader decodes the Request, resolves a model name to its id from a
//     published snapshot, reads the input into a fresh buffer and posts an event.
//  2. The event loop checks the request (model registered, input size, SLO or deadline),
//     gives it an internal id and submits it to the scheduler; anything wrong is answered at
//     once with a distinct status and never reaches the scheduler.
//  3. The scheduler's INFER actions become wire Infer frames: windows converted to the worker's
//     clock, inputs concatenated in batch order. LOAD and EVICT likewise.
//  4. A worker link's reader posts each Result with its output; the loop hands it to the
//     scheduler, whose answers give each request its slot of the output.
//  5. A timer wakes the loop at the scheduler's WakeNs, so drops and overdue answers go out
//     on time even when no frame arrives.
type Controller struct {
	cfg    Config
	log    *slog.Logger
	sch    *sched.Scheduler
	events chan event
	ready  chan struct{}
	addr   net.Addr
	names  atomic.Pointer[map[string]uint32] // model name → wire id, read by client readers
	wg     sync.WaitGroup

	// Owned by the event loop.
	models    []*modelEntry // by scheduler id; wire id = scheduler id + 1
	workers   []*workerLink
	gpus      []gpuRef // by scheduler GPU id
	reqs      []pending
	freeReqs  []int32
	flights   map[uint64]*flight
	freeFl    []*flight
	clients   map[*clientConn]struct{}
	ctlSeq    uint64
	batchBuf  []byte
	resp      wire.Response
	inferMsg  wire.Infer
	reqLog    *tsv
	actLog    *tsv
	curAction uint64 // the result being applied, with its output
	curOut    []byte
	curOutLen int64
	curExecNs int64
	stats     Stats
}

// Stats counts answers by status; read it with Controller.Stats after Run returns, or from
// the loop's telemetry.
type Stats struct {
	Answered [32]int64 // by wire.Status
	Late     int64     // answers after the request's deadline
	Ticks    int64     // scheduler ticks (wake-ups with no event)
}

type modelEntry struct {
	id      int32
	name    string
	path    string
	upload  []byte // the model file's bytes when registered by upload, else nil
	desc    wire.ModelDesc
	ready   bool // desc known and registered with the scheduler
	copies  int32
	waiters []waiter // clients waiting for LoadModel
	pending int      // workers yet to answer its LoadModel
}

type waiter struct {
	cl  *clientConn
	req uint64
}

type gpuRef struct {
	wk     *workerLink
	index  uint16
	loaded []bool // by scheduler model id: resident according to LOAD results and EVICTs
}

type pending struct {
	gen        uint32
	live       bool
	cl         *clientConn
	clientID   uint64
	model      int32
	input      []byte
	arrived    int64
	deadline   int64
	slo        int64
	dispatched int64
	batch      uint16
	arrCount   int32
}

type flight struct {
	kind     sched.ActionKind
	wk       *workerLink
	gpu      int32
	model    int32
	batch    int32
	sent     int64
	expected int64
	queued   int64
}

type evKind uint8

const (
	evRequest evKind = iota + 1
	evCancel
	evListModels
	evLoadModel
	evClientUp
	evClientGone
	evWorkerUp
	evWorkerDown
	evResult
	evModelInfo
	evWorkerState
)

type event struct {
	kind    evKind
	cl      *clientConn
	wk      *workerLink
	conn    *wire.Conn
	id      uint64 // client request id, or action id
	model   uint32
	prio    wire.Priority
	slo     int64
	dead    int64
	arrived int64
	input   []byte
	res     wire.Result
	info    wire.ModelInfo
	hello   *wire.Hello
	name    string
	path    string
	err     error
}

// New checks cfg and returns a controller ready to Run.
func New(cfg Config) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cannot start controller: %w", err)
	}
	s, err := sched.New(cfg.Sched)
	if err != nil {
		return nil, fmt.Errorf("cannot start controller: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c := &Controller{cfg: cfg, log: log, sch: s, events: make(chan event, 4096), ready: make(chan struct{}),
		flights: map[uint64]*flight{}, clients: map[*clientConn]struct{}{}}
	c.reqLog = newTSV(cfg.RequestLog, requestLogHeader)
	c.actLog = newTSV(cfg.ActionLog, actionLogHeader)
	for _, m := range cfg.Models {
		c.models = append(c.models, &modelEntry{id: int32(len(c.models)), name: m.Name, path: m.Path})
	}
	for i, a := range cfg.Workers {
		c.workers = append(c.workers, &workerLink{idx: int32(i), addr: a})
	}
	c.publishNames()
	return c, nil
}

// Ready is closed once the client listener (if any) is listening.
func (c *Controller) Ready() <-chan struct{} { return c.ready }

// Addr is the client listener's address, valid after Ready; nil without a listener.
func (c *Controller) Addr() net.Addr { return c.addr }

// Run serves until ctx is done, then answers every pending request with shutting-down, says
// goodbye on every link and returns nil; or returns an error if it cannot start.
func (c *Controller) Run(ctx context.Context) error {
	ln := c.cfg.Listener
	if ln == nil && c.cfg.Listen != "" {
		var err error
		ln, err = net.Listen("tcp", c.cfg.Listen)
		if err != nil {
			return fmt.Errorf("cannot listen for clients on %s: %w; pick a free port with -listen", c.cfg.Listen, err)
		}
	}
	if ln != nil {
		c.addr = ln.Addr()
	}
	close(c.ready)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if ln != nil {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.acceptLoop(ctx, ln)
		}()
		go func() {
			<-ctx.Done()
			_ = ln.Close()
		}()
	}
	for _, wk := range c.workers {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.workerLoop(ctx, wk)
		}()
	}
	c.loop(ctx)
	cancel()
	c.shutdown()
	c.wg.Wait()
	c.drain()
	c.reqLog.flush()
	c.actLog.flush()
	return nil
}

// Stats returns the answer counts; call after Run returns.
func (c *Controller) Stats() Stats { return c.stats }

func (c *Controller) post(ctx context.Context, ev event) bool {
	if ctx.Err() != nil {
		return false
	}
	select {
	case c.events <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}

// loop is the event loop: the only goroutine that touches the scheduler and loop-owned state.
func (c *Controller) loop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	house := time.NewTicker(c.cfg.WorkerTimeout / 4)
	defer house.Stop()
	var tick sched.Event
	for {
		wake := c.sch.WakeNs()
		if wake != math.MaxInt64 {
			d := wake - WireNow()
			if d <= 0 {
				c.stats.Ticks++
				c.step(&tick)
				continue
			}
			timer.Reset(time.Duration(d))
		}
		select {
		case ev := <-c.events:
			c.handle(ctx, &ev)
			for range 255 { // drain a burst before looking at timers again
				select {
				case ev := <-c.events:
					c.handle(ctx, &ev)
					continue
				default:
				}
				break
			}
		case <-timer.C:
			c.stats.Ticks++
			c.step(&tick)
		case <-house.C:
			c.housekeeping()
		case <-ctx.Done():
			return
		}
	}
}

func (c *Controller) step(ev *sched.Event) {
	now := WireNow()
	c.apply(now, c.sch.Step(now, ev))
}

func (c *Controller) handle(ctx context.Context, ev *event) {
	switch ev.kind {
	case evRequest:
		c.onRequest(ev)
	case evCancel:
		c.onCancel(ev)
	case evListModels:
		c.onListModels(ev)
	case evLoadModel:
		c.onLoadModel(ev)
	case evClientUp:
		c.clients[ev.cl] = struct{}{}
	case evClientGone:
		c.onClientGone(ev.cl)
	case evWorkerUp:
		c.onWorkerUp(ev)
	case evWorkerDown:
		c.onWorkerDown(ev)
	case evResult:
		c.onResult(ev)
	case evModelInfo:
		c.onModelInfo(ev)
	case evWorkerState:
		// Heartbeat reply; the reader has stamped the link's last-frame time.
	}
	_ = ctx
}

// housekeeping runs every quarter of WorkerTimeout: heartbeats, silent-worker detection,
// telemetry flush.
func (c *Controller) housekeeping() {
	now := WireNow()
	for _, wk := range c.workers {
		if wk.conn == nil {
			continue
		}
		if now-wk.lastFrame.Load() > int64(c.cfg.WorkerTimeout) {
			c.log.Warn("worker silent; declaring it lost", "worker", wk.addr, "silent", time.Duration(now-wk.lastFrame.Load()))
			wk.conn.Abort() // its reader fails and posts evWorkerDown
			continue
		}
		c.ctlSeq++
		_ = wk.conn.TrySend(&wire.GetWorkerState{ActionID: ctlBit | c.ctlSeq}, nil)
	}
	c.reqLog.flush()
	c.actLog.flush()
}

// ctlBit marks the ids of control messages (GetWorkerState, ClearCache, LoadModel) on the
// worker link; scheduler action ids never have it (sched ids use bit 63 for evicts only and
// generation counts far below 2^30 in bits 32..61).
const ctlBit = 1 << 62

// shutdown answers everything pending with shutting-down before closing the client links, then
// waits for the readers and answers what they posted meanwhile.
func (c *Controller) shutdown() {
	c.drain()
	now := WireNow()
	for i := range c.reqs {
		p := &c.reqs[i]
		if p.live {
			c.answer(now, p, wire.StatusShuttingDown, nil, "controller shutting down")
			c.freeReq(int32(i))
		}
	}
	for cl := range c.clients {
		_ = cl.conn.Close()
	}
	for _, wk := range c.workers {
		if wk.conn != nil {
			_ = wk.conn.Close()
		}
	}
}

// drain handles queued events, answering new requests with shutting-down.
func (c *Controller) drain() {
	for {
		select {
		case ev := <-c.events:
			if ev.kind == evRequest {
				if !ev.cl.gone {
					c.reject(ev.cl, ev.id, ev.model, wire.StatusShuttingDown, "controller shutting down")
				}
				continue
			}
			c.handle(context.Background(), &ev)
		default:
			return
		}
	}
}

func (c *Controller) publishNames() {
	m := make(map[string]uint32, len(c.models))
	for _, e := range c.models {
		m[e.name] = uint32(e.id + 1)
	}
	c.names.Store(&m)
}

// ---- requests ----

func reqID(slot int32, gen uint32) uint64 { return uint64(gen)<<32 | uint64(uint32(slot)) }

func (c *Controller) lookup(id uint64) (*pending, int32) {
	slot := int32(uint32(id))
	if slot < 0 || int(slot) >= len(c.reqs) {
		return nil, -1
	}
	p := &c.reqs[slot]
	if !p.live || p.gen != uint32(id>>32) {
		return nil, -1
	}
	return p, slot
}

func (c *Controller) freeReq(slot int32) {
	p := &c.reqs[slot]
	if p.cl != nil && p.cl.pending != nil {
		delete(p.cl.pending, p.clientID)
	}
	p.live, p.cl, p.input = false, nil, nil
	c.freeReqs = append(c.freeReqs, slot)
}

// reject answers a request that never reached the scheduler.
func (c *Controller) reject(cl *clientConn, id uint64, model uint32, st wire.Status, reason string) {
	now := WireNow()
	c.resp = wire.Response{RequestID: id, Status: st, ModelID: model, ArrivedNs: now, CompletedNs: now, Reason: []byte(reason)}
	_ = cl.conn.Send(&c.resp, nil)
	c.stats.Answered[st]++
	if c.reqLog != nil {
		c.reqLog.row(now, int64(id), int64(st), 0, int64(model), 0, 0, -1, 0, 0, 0, 0)
	}
}

func (c *Controller) onRequest(ev *event) {
	cl := ev.cl
	if cl.gone {
		return
	}
	if ev.model == 0 || int(ev.model) > len(c.models) {
		c.reject(cl, ev.id, ev.model, wire.StatusUnknownModel, "no model with that id or name is registered; list them with ListModels")
		return
	}
	if !c.models[ev.model-1].ready {
		c.reject(cl, ev.id, ev.model, wire.StatusUnknownModel, "the model is still registering on the workers (or no worker could register it); retry shortly")
		return
	}
	m := c.models[ev.model-1]
	if !c.cfg.SynthInput && uint64(len(ev.input)) != m.desc.InputBytes {
		c.reject(cl, ev.id, ev.model, wire.StatusBadInput, fmt.Sprintf("input is %d bytes; model %s takes %d", len(ev.input), m.name, m.desc.InputBytes))
		return
	}
	slo, dead := ev.slo, ev.dead
	switch {
	case slo != 0 && dead != 0, slo < 0:
		c.reject(cl, ev.id, ev.model, wire.StatusBadInput, "set exactly one of SLO and deadline, SLO positive")
		return
	case slo == 0 && dead == 0:
		slo = int64(c.cfg.DefaultSLO)
	}
	if dead == 0 {
		dead = ev.arrived + slo
	}
	if _, dup := cl.pending[ev.id]; dup {
		c.reject(cl, ev.id, ev.model, wire.StatusBadInput, "request id already pending on this connection")
		return
	}
	var slot int32
	if n := len(c.freeReqs); n > 0 {
		slot = c.freeReqs[n-1]
		c.freeReqs = c.freeReqs[:n-1]
	} else {
		c.reqs = append(c.reqs, pending{})
		slot = int32(len(c.reqs) - 1)
	}
	p := &c.reqs[slot]
	*p = pending{gen: p.gen + 1, live: true, cl: cl, clientID: ev.id, model: m.id, input: ev.input,
		arrived: ev.arrived, deadline: dead, slo: dead - ev.arrived, arrCount: m.copies}
	cl.pending[ev.id] = reqID(slot, p.gen)
	class := min(int(ev.prio), c.cfg.Sched.Classes-1)
	se := sched.Event{Kind: sched.EvSubmit, Request: reqID(slot, p.gen), Model: m.id, Class: uint8(class), DeadlineNs: dead}
	c.step(&se)
}

func (c *Controller) onCancel(ev *event) {
	id, ok := ev.cl.pending[ev.id]
	if !ok {
		return // answered already, or never sent: the request's one answer stands
	}
	se := sched.Event{Kind: sched.EvCancel, Request: id}
	c.step(&se)
}

func (c *Controller) onClientGone(cl *clientConn) {
	cl.gone = true
	delete(c.clients, cl)
	for _, id := range cl.pending {
		se := sched.Event{Kind: sched.EvCancel, Request: id}
		c.step(&se)
	}
}

// answer sends a request's one response and logs it.
func (c *Controller) answer(now int64, p *pending, st wire.Status, out []byte, reason string) {
	c.resp = wire.Response{RequestID: p.clientID, Status: st, ModelID: uint32(p.model + 1), ArrivedNs: p.arrived,
		DispatchedNs: p.dispatched, CompletedNs: now}
	if st == wire.StatusOK {
		c.resp.Batch, c.resp.ExecNs = p.batch, c.curExecNs
	}
	if reason != "" {
		c.resp.Reason = []byte(reason)
	}
	if p.cl != nil && !p.cl.gone {
		_ = p.cl.conn.Send(&c.resp, out)
	}
	c.stats.Answered[st]++
	met := st == wire.StatusOK && now <= p.deadline
	if now > p.deadline {
		c.stats.Late++
	}
	if c.reqLog != nil {
		dep := c.models[p.model].copies
		c.reqLog.row(now, int64(p.clientID), int64(st), 0, int64(p.model+1), 0, now-p.arrived, p.slo, b2i(met),
			int64(p.arrCount), int64(dep), b2i(dep > p.arrCount && p.arrCount == 0))
	}
}

var schedStatus = [...]wire.Status{
	sched.StatusOK:            wire.StatusOK,
	sched.StatusCannotMeetSLO: wire.StatusCannotMeetSLO,
	sched.StatusUnknownModel:  wire.StatusUnknownModel,
	sched.StatusBadInput:      wire.StatusBadInput,
	sched.StatusOverloaded:    wire.StatusOverloaded,
	sched.StatusCancelled:     wire.StatusCancelled,
	sched.StatusWorkerLost:    wire.StatusWorkerLost,
}

// apply carries out the scheduler's actions.
//
// Timing: event loop; no allocation in steady state.
func (c *Controller) apply(now int64, acts []sched.Action) {
	for i := range acts {
		a := &acts[i]
		switch a.Kind {
		case sched.ActRespond:
			p, slot := c.lookup(a.Request)
			if p == nil {
				panic(fmt.Sprintf("BUG: scheduler answered unknown request %#x", a.Request))
			}
			st := schedStatus[a.Status]
			var out []byte
			if st == wire.StatusOK && a.ID == c.curAction && c.curOutLen > 0 {
				lo := int64(a.Slot) * c.curOutLen
				if hi := lo + c.curOutLen; hi <= int64(len(c.curOut)) {
					out = c.curOut[lo:hi]
				}
			}
			c.answer(now, p, st, out, "")
			c.freeReq(slot)
		case sched.ActInfer:
			c.sendInfer(now, a)
		case sched.ActLoad, sched.ActEvict:
			c.sendWeights(now, a)
		}
	}
}

func (c *Controller) newFlight() *flight {
	if n := len(c.freeFl); n > 0 {
		f := c.freeFl[n-1]
		c.freeFl = c.freeFl[:n-1]
		return f
	}
	return new(flight)
}

func (c *Controller) sendInfer(now int64, a *sched.Action) {
	g := &c.gpus[a.GPU]
	wk := g.wk
	c.batchBuf = c.batchBuf[:0]
	for _, id := range a.Requests {
		p, _ := c.lookup(id)
		if p == nil {
			panic(fmt.Sprintf("BUG: INFER %#x for unknown request %#x", a.ID, id))
		}
		// p.input stays until the request is answered: a failed INFER puts its requests back
		// in their queues (sched.requeueBatch) and the retry sends the bytes again.
		c.batchBuf = append(c.batchBuf, p.input...)
		p.dispatched, p.batch = now, uint16(a.Batch)
	}
	c.inferMsg = wire.Infer{Window: wire.Window{ActionID: a.ID, ModelID: uint32(a.Model + 1), GPU: g.index,
		EarliestNs: a.EarliestNs - wk.offset, LatestNs: a.LatestNs - wk.offset, ExpectedNs: a.ExpectedNs},
		Batch: uint16(a.Batch)}
	if c.cfg.SynthInput {
		c.inferMsg.Flags = wire.InferSynthInput | wire.InferNoOutput
	}
	f := c.newFlight()
	*f = flight{kind: sched.ActInfer, wk: wk, gpu: a.GPU, model: a.Model, batch: a.Batch, sent: now,
		expected: a.ExpectedNs, queued: int64(c.sch.Live())}
	c.flights[a.ID] = f
	if wk.conn != nil {
		_ = wk.conn.Send(&c.inferMsg, c.batchBuf) // a failed link posts evWorkerDown
	}
}

func (c *Controller) sendWeights(now int64, a *sched.Action) {
	g := &c.gpus[a.GPU]
	wk := g.wk
	w := wire.Window{ActionID: a.ID, ModelID: uint32(a.Model + 1), GPU: g.index,
		EarliestNs: a.EarliestNs - wk.offset, LatestNs: a.LatestNs, ExpectedNs: a.ExpectedNs}
	if a.LatestNs != math.MaxInt64 {
		w.LatestNs -= wk.offset
	}
	f := c.newFlight()
	*f = flight{kind: a.Kind, wk: wk, gpu: a.GPU, model: a.Model, batch: 1, sent: now, expected: a.ExpectedNs,
		queued: int64(c.sch.Live())}
	c.flights[a.ID] = f
	var m wire.Message
	if a.Kind == sched.ActLoad {
		m = &wire.LoadWeights{Window: w}
	} else {
		m = &wire.EvictWeights{Window: w}
		c.setLoaded(a.GPU, a.Model, false)
	}
	if wk.conn != nil {
		_ = wk.conn.Send(m, nil)
	}
}

func (c *Controller) setLoaded(gpu, model int32, on bool) {
	g := &c.gpus[gpu]
	for int(model) >= len(g.loaded) {
		g.loaded = append(g.loaded, false)
	}
	if g.loaded[model] == on {
		return
	}
	g.loaded[model] = on
	if on {
		c.models[model].copies++
	} else {
		c.models[model].copies--
	}
}

func (c *Controller) onResult(ev *event) {
	now := WireNow()
	r := &ev.res
	f, ok := c.flights[r.ActionID]
	if !ok || f.wk != ev.wk {
		return // a control message's result, or one from a link already declared lost
	}
	delete(c.flights, r.ActionID)
	wk := ev.wk
	if off, _, ok := ev.conn.ClockOffset(); ok {
		wk.offset = off
	}
	var endNs, durNs int64
	switch f.kind {
	case sched.ActInfer:
		sp := r.Phases[wire.PhaseExec]
		if sp.EndNs != 0 {
			endNs = sp.EndNs + wk.offset
		}
		durNs = r.ExecNs
		if durNs <= 0 {
			durNs = sp.EndNs - sp.StartNs
		}
	case sched.ActLoad:
		sp := r.Phases[wire.PhaseWeights]
		if sp.EndNs != 0 {
			endNs = sp.EndNs + wk.offset
		}
		durNs = sp.EndNs - sp.StartNs
		if r.Status == wire.StatusOK {
			c.setLoaded(f.gpu, f.model, true)
		}
	}
	se := sched.Event{Kind: sched.EvResult, Action: r.ActionID, OK: r.Status == wire.StatusOK, DurNs: durNs, EndNs: endNs}
	c.curAction, c.curOut, c.curExecNs = r.ActionID, ev.input, durNs
	c.curOutLen = 0
	if f.kind == sched.ActInfer && f.batch > 0 {
		c.curOutLen = int64(c.models[f.model].desc.OutputBytes)
	}
	c.apply(now, c.sch.Step(now, &se))
	c.curAction, c.curOut = 0, nil
	if c.actLog != nil {
		c.logAction(now, r, f, durNs)
	}
	f.wk = nil
	c.freeFl = append(c.freeFl, f)
}

func (c *Controller) logAction(now int64, r *wire.Result, f *flight, durNs int64) {
	typ := int64(2)
	switch f.kind {
	case sched.ActLoad:
		typ = 1
	case sched.ActEvict:
		typ = 3
	}
	rel := func(t int64) int64 {
		if t == 0 {
			return 0
		}
		return t + f.wk.offset - f.sent
	}
	execEnd := r.Phases[wire.PhaseExec].EndNs
	if f.kind == sched.ActLoad {
		execEnd = r.Phases[wire.PhaseWeights].EndNs
	}
	var goodput int64
	if f.kind == sched.ActInfer && r.Status == wire.StatusOK {
		goodput = durNs // the batch's answers were sent before their deadlines or counted late
	}
	copies := int64(c.models[f.model].copies)
	if f.kind == sched.ActEvict {
		copies++
	}
	c.actLog.row(now, int64(r.ActionID), typ, int64(r.Status), int64(f.wk.idx), int64(c.gpus[f.gpu].index), int64(f.model+1),
		int64(f.batch), f.expected, durNs, f.expected+(max(0, r.Phases[wire.PhaseExec].StartNs+f.wk.offset-f.sent)), rel(execEnd),
		0, 0, 0, rel(r.Phases[wire.PhaseOutput].EndNs), rel(r.ReceivedNs), rel(execEnd), now-f.sent, WireNow()-f.sent,
		goodput, f.queued, copies)
}
