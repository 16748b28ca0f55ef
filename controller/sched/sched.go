package sched

import (
	"fmt"
	"math"

	"github.com/clockwork-go/clockwork/internal/invariants"
)

// Config holds the scheduler's parameters; start from DefaultConfig.
type Config struct {
	// ScheduleAheadNs bounds how much predicted work each GPU's timeline may hold: INFERs are
	// issued only while the GPU is predicted free before now+ScheduleAheadNs. Longer keeps
	// GPUs busier across controller hiccups; shorter keeps choices late, so batches are larger
	// and priorities fresher. Clockwork: 10 ms.
	ScheduleAheadNs int64
	// MarginNs is taken off each request's deadline for planning: it covers exec-time noise
	// beyond the p99 estimate and the trip of the result back to the client. Clockwork: 5 ms.
	MarginNs int64
	// FutureNs is the expected controller→worker delay: nothing is planned to start sooner.
	FutureNs int64
	// LagNs: a lane whose head is overdue by more than this is assumed to be running late.
	LagNs int64
	// MaxLoadsPerGPU bounds LOADs in flight per GPU (Clockwork: 2).
	MaxLoadsPerGPU int
	// MaxQueued bounds live requests (queued or in flight); beyond it requests are rejected
	// as overloaded.
	MaxQueued int
	// LateBoundNs: a request whose INFER result has not come back by its deadline plus this
	// is answered StatusWorkerLost; it is the bound on how late any answer can be.
	LateBoundNs int64
	// MaxBatch caps batch sizes (Clockwork: 16).
	MaxBatch int32
	// Classes is the number of priority classes, 1 to 4.
	Classes int
	// ReplicateNs is the queued exec work (ns at batch 1) per copy above which a model is
	// loaded on another GPU; a model with no copy is loaded as soon as it has demand.
	ReplicateNs int64
	// PressureNs: once a GPU drops MaxBatch/2 requests of a priority class that could not
	// finish in time within PressureNs, that class is under pressure there until PressureNs
	// after its last drop: its INFERs use the largest batch whose requests can all meet
	// their deadlines, dropping queue-front requests that only a smaller batch could serve
	// (they would expire anyway while the GPU runs inefficient small batches), so goodput
	// stays at the largest batch's ceiling under overload instead of collapsing.
	PressureNs int64
}

// DefaultConfig returns Clockwork's parameters (§D.2), adapted: FutureNs is 0.5 ms (a
// loopback or LAN controller→worker trip, not a 2020 cluster's 1 ms), LateBoundNs 2 ms.
func DefaultConfig() Config {
	return Config{
		ScheduleAheadNs: 10e6,
		MarginNs:        5e6,
		FutureNs:        500e3,
		LagNs:           10e6,
		MaxLoadsPerGPU:  2,
		MaxQueued:       1 << 20,
		LateBoundNs:     2e6,
		MaxBatch:        16,
		Classes:         3, // wire.PriorityBatch, Normal, Interactive
		ReplicateNs:     20e6,
		PressureNs:      50e6,
	}
}

// Validate reports a parameter out of range.
func (c Config) Validate() error {
	switch {
	case c.ScheduleAheadNs <= 0 || c.ScheduleAheadNs > 1e9:
		return fmt.Errorf("schedule-ahead %d ns out of range (0, 1s]", c.ScheduleAheadNs)
	case c.MarginNs < 0 || c.FutureNs < 0 || c.LagNs <= 0 || c.LateBoundNs <= 0 || c.ReplicateNs <= 0 || c.PressureNs < 0:
		return fmt.Errorf("margin %d, future %d, pressure %d must be >= 0 and lag %d, late bound %d, replicate %d ns > 0",
			c.MarginNs, c.FutureNs, c.PressureNs, c.LagNs, c.LateBoundNs, c.ReplicateNs)
	case c.MaxLoadsPerGPU < 1:
		return fmt.Errorf("max loads per GPU %d must be >= 1", c.MaxLoadsPerGPU)
	case c.MaxQueued < 1:
		return fmt.Errorf("max queued %d must be >= 1", c.MaxQueued)
	case c.MaxBatch < 1:
		return fmt.Errorf("max batch %d must be >= 1", c.MaxBatch)
	case c.Classes < 1 || c.Classes > maxClasses:
		return fmt.Errorf("priority classes %d out of range [1, %d]", c.Classes, maxClasses)
	}
	return nil
}

// Scheduler is clockwork's scheduling policy, after Clockwork's INFER4.
//
// The path of a request:
//
//  1. EvSubmit: the request gets a planning deadline D = deadline − MarginNs and joins its
//     model's queue for its priority class, kept in deadline order. It is rejected at once if
//     D cannot be met even on an idle GPU, if its model is unknown, or if MaxQueued requests
//     are live. Its queued work adds to the model's load demand.
//  2. Each GPU keeps, per class, a heap of the models loaded on it that have queued requests,
//     keyed by the latest start of the model's best strategy: D of the queue's front minus
//     the estimated exec time of the largest batch the queue can fill. This is Clockwork's
//     one-strategy-per-batch-size, collapsed to the strategy that dominates.
//  3. While a GPU's predicted free time t (its timeline) is before now+ScheduleAheadNs, the
//     most urgent model across classes is picked, unless running it first would make the top
//     model of a higher class miss its deadline, in which case that one runs (a higher class
//     is never starved by a lower one while its SLO holds). Queue-front requests that cannot
//     finish by D starting at t are dropped (StatusCannotMeetSLO); then the largest supported
//     batch b whose estimate still meets the front's D is issued as an INFER with window
//     [now, D_front − est(b) + MarginNs/2]: the plan meets D, and a start that slips (the
//     previous batch ran long) may use half the margin; the other half covers this batch's
//     own noise and the trip back, so any start inside the window meets every real deadline.
//     Under pressure (Config.PressureNs: the class keeps dropping requests on this GPU) the
//     batch is instead the largest that enough queued requests can all meet, and the front
//     requests only a smaller batch could serve are dropped: goodput stays at the largest
//     batch's ceiling under overload instead of collapsing into batches of 1.
//  4. A timer drops each queued request as soon as it could not finish even if started
//     at now+FutureNs, not at its deadline as the original did (§K.2).
//  5. Results re-anchor the GPU's timeline at the measured end and feed the estimate window
//     (p99 of the last 10 per model, batch and GPU). Each request in a successful batch is
//     answered StatusOK unless it was cancelled meanwhile (its output is then dropped). A
//     failed INFER, or one lost with its worker, puts its requests back in their queues when
//     their deadlines still allow, else answers them.
//  6. LOADs go to models by unmet demand (queued work beyond ReplicateNs per copy; a model
//     with no copy and any demand first), to the GPU that holds it not, has a free LOAD slot
//     (MaxLoadsPerGPU) and the least exec backlog, evicting least-recently-used models that
//     have no demand and no INFER in flight. INFERs for a copy are issued only after its LOAD
//     result arrives. A LOAD is issued only for requests that can still be served once it
//     completes; a model with no copy drops at once the requests that cannot wait for one.
//
// Alternatives rejected: one strategy heap entry per (request, batch size, GPU), as INFER4
// does, costs O(batches × GPUs) heap work per request and limits throughput; INFER5's
// per-model queues per batch size make batch choice cheaper but copy every request into each.
// Here a request is queued once and a model holds one heap entry per (GPU, class).
type Scheduler struct {
	cfg Config

	models  []*model
	gpus    []*gpu
	insts   []instance
	freeIns []int32

	reqs    []request
	freeReq []int32
	byID    map[uint64]int32

	flights  []flight
	freeFl   []int32
	evictSeq uint64
	timers   timerHeap
	unmet    modelHeap
	// loadRatio: the last LOADs' measured time over their profile's, in thousandths (p99):
	// the estimate of a model never loaded yet is its profile's time scaled by it.
	loadRatio window
	lastNow   int64
	out       []Action
	idbuf     []uint64
	skipped   []*model
	candGPU   []int32
	candAt    []int64
	numFlight int
}

type model struct {
	id      int32
	spec    ModelSpec
	w1      window             // batch-1 exec estimate across GPUs, for drops and demand
	wb      [maxBatches]window // per batch size, measurements across GPUs: seeds new copies
	wload   window
	queues  [maxClasses]queue
	pending int32 // live queued requests
	copies  int32 // instances loaded or loading
	// coldAt is when a request was last rejected for want of a copy (coldSeen: ever).
	coldAt   int64
	coldSeen bool
	unmet    int64
	uidx     int32
	insts    []int32
}

type instance struct {
	model, gpu int32
	state      uint8
	inflight   int32
	est        [maxBatches]window
	key        [maxClasses]int64
	hidx       [maxClasses]int32
	prev, next int32 // LRU list of the GPU, most recent at head
}

const (
	instFree uint8 = iota
	instLoading
	instLoaded
)

type gpu struct {
	id, worker  int32
	alive       bool
	total, free int32
	exec, pcie  tracker
	loads       int
	pressed     [maxClasses]int64 // per class, under pressure until then (see Config.PressureNs)
	drops       [maxClasses]dropWindow
	ready       [maxClasses]instHeap
	head, tail  int32
}

type request struct {
	id       uint64
	deadline int64 // planning deadline: real − margin
	real     int64 // the client's deadline
	model    int32
	gen      uint32
	state    uint8
	class    uint8
}

const (
	reqFree uint8 = iota
	reqQueued
	reqFlight
)

type flight struct {
	kind     ActionKind
	gen      uint32
	gpu      int32
	inst     int32
	batchIdx int32
	reqs     []int32
	rgens    []uint32
	live     bool
}

// New returns a scheduler with no GPUs and no models. cfg is used as given (see DefaultConfig).
func New(cfg Config) (*Scheduler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cannot create scheduler: %w", err)
	}
	return &Scheduler{cfg: cfg, byID: make(map[uint64]int32)}, nil
}

// Config returns the configuration in use, defaults applied.
func (s *Scheduler) Config() Config { return s.cfg }

// Step applies ev at time now and returns the resulting actions, valid until the next Step.
// now must not go backwards.
//
// Timing: controller event loop; no allocation in steady state; target < 2 µs per request.
func (s *Scheduler) Step(now int64, ev *Event) []Action {
	if now < s.lastNow {
		now = s.lastNow // a caller's clock hiccup must not reorder decisions
	}
	s.lastNow = now
	s.out = s.out[:0]
	s.idbuf = s.idbuf[:0]
	s.expire(now)
	switch ev.Kind {
	case EvTick:
		s.scheduleAll(now)
	case EvSubmit:
		s.submit(now, ev)
	case EvCancel:
		s.cancel(ev.Request)
	case EvResult:
		s.result(now, ev)
	case EvAddGPU:
		s.addGPU(now, ev)
	case EvWorkerLost:
		s.workerLost(now, ev.Worker)
	case EvAddModel:
		s.addModel(now, ev.Spec)
	}
	if invariants.Enabled {
		s.check()
	}
	return s.out
}

// WakeNs is when the scheduler next wants an EvTick: the next request timer, the next time a
// GPU with queued work falls inside the schedule-ahead window, or soon when LOADs are waiting.
func (s *Scheduler) WakeNs() int64 {
	w := int64(math.MaxInt64)
	for len(s.timers) > 0 {
		t := s.timers[0]
		if r := &s.reqs[t.slot]; r.gen == t.gen && r.state == t.state {
			break
		}
		s.timers.pop()
	}
	if len(s.timers) > 0 {
		w = s.timers[0].at
	}
	for _, g := range s.gpus {
		if !g.alive {
			continue
		}
		if g.hasWork(s.cfg.Classes) {
			w = min(w, g.exec.wake(s.lastNow, s.cfg.ScheduleAheadNs, s.cfg.LagNs))
		}
	}
	if len(s.unmet.items) > 0 {
		w = min(w, s.lastNow+s.cfg.ScheduleAheadNs/4)
	}
	return w
}

// Live is the number of requests not yet answered.
func (s *Scheduler) Live() int { return len(s.byID) }

func (s *Scheduler) respond(id uint64, st Status, action uint64, slot int32) {
	s.out = append(s.out, Action{Kind: ActRespond, Request: id, Status: st, ID: action, Slot: slot})
}

func (s *Scheduler) addModel(now int64, spec *ModelSpec) {
	if spec == nil || spec.Validate() != nil {
		return // the controller validates and reports; a bad spec is never scheduled
	}
	for int(spec.ID) >= len(s.models) {
		s.models = append(s.models, nil)
	}
	if s.models[spec.ID] != nil {
		return // registered already: ids are assigned once
	}
	m := &model{id: spec.ID, uidx: -1}
	m.spec = ModelSpec{ID: spec.ID, Batches: append([]int32(nil), spec.Batches...),
		ExecNs: append([]int64(nil), spec.ExecNs...), LoadNs: spec.LoadNs, Pages: spec.Pages}
	m.w1.seed(spec.ExecNs[0])
	m.wload.seed(spec.LoadNs)
	s.models[spec.ID] = m
	_ = now
}

func (s *Scheduler) addGPU(now int64, ev *Event) {
	if ev.GPU < 0 || ev.GPU > 1<<16 || ev.Pages < 0 {
		return
	}
	for int(ev.GPU) >= len(s.gpus) {
		g := &gpu{id: int32(len(s.gpus)), head: -1, tail: -1}
		for c := range g.ready {
			g.ready[c].class = c
		}
		s.gpus = append(s.gpus, g)
	}
	g := s.gpus[ev.GPU]
	if g.alive {
		s.killGPU(now, g)
	}
	g.worker, g.alive, g.total, g.free = ev.Worker, true, ev.Pages, ev.Pages
	g.exec.reset()
	g.pcie.reset()
	g.loads, g.pressed, g.drops = 0, [maxClasses]int64{}, [maxClasses]dropWindow{}
	s.scheduleAll(now)
}

func (s *Scheduler) workerLost(now int64, w int32) {
	for _, g := range s.gpus {
		if g.alive && g.worker == w {
			s.killGPU(now, g)
		}
	}
	s.scheduleAll(now)
}

// killGPU forgets everything on g: its copies, its timeline, its actions in flight. Requests
// of lost INFERs are retried elsewhere when their deadlines allow.
func (s *Scheduler) killGPU(now int64, g *gpu) {
	g.alive = false
	for i := range s.flights {
		f := &s.flights[i]
		if !f.live || f.gpu != g.id {
			continue
		}
		if f.kind == ActInfer {
			s.requeueBatch(now, f, StatusWorkerLost)
		}
		s.freeFlight(int32(i))
	}
	for g.head >= 0 {
		s.dropInstance(g, g.head)
	}
	g.loads, g.pressed, g.drops = 0, [maxClasses]int64{}, [maxClasses]dropWindow{}
	g.exec.reset()
	g.pcie.reset()
	g.free = g.total
}

func (s *Scheduler) submit(now int64, ev *Event) {
	if ev.Model < 0 || int(ev.Model) >= len(s.models) || s.models[ev.Model] == nil {
		s.respond(ev.Request, StatusUnknownModel, 0, -1)
		return
	}
	if int(ev.Class) >= s.cfg.Classes || ev.DeadlineNs <= 0 {
		s.respond(ev.Request, StatusBadInput, 0, -1)
		return
	}
	if _, dup := s.byID[ev.Request]; dup {
		s.respond(ev.Request, StatusBadInput, 0, -1)
		return
	}
	if len(s.byID) >= s.cfg.MaxQueued {
		s.respond(ev.Request, StatusOverloaded, 0, -1)
		return
	}
	m := s.models[ev.Model]
	d := ev.DeadlineNs - s.cfg.MarginNs
	if d-m.w1.p99-s.cfg.FutureNs < now {
		s.respond(ev.Request, StatusCannotMeetSLO, 0, -1)
		return
	}
	if m.copies == 0 && d-m.w1.p99-2*s.cfg.FutureNs-s.loadEst(m) < now { // no copy: it needs a LOAD first
		s.respond(ev.Request, StatusCannotMeetSLO, 0, -1)
		s.loadForRecurringDemand(now, m)
		return
	}
	var slot int32
	if n := len(s.freeReq); n > 0 {
		slot = s.freeReq[n-1]
		s.freeReq = s.freeReq[:n-1]
	} else {
		s.reqs = append(s.reqs, request{})
		slot = int32(len(s.reqs) - 1)
	}
	r := &s.reqs[slot]
	r.gen++
	r.id, r.deadline, r.real, r.model, r.class = ev.Request, d, ev.DeadlineNs, ev.Model, ev.Class
	s.byID[ev.Request] = slot
	s.enqueue(m, slot)
	s.scheduleModel(now, m)
	s.scheduleLoads(now)
}

// enqueue puts a live request in its model's queue and arms its drop timer.
func (s *Scheduler) enqueue(m *model, slot int32) {
	r := &s.reqs[slot]
	r.state = reqQueued
	q := &m.queues[r.class]
	front := q.frontSlot(s.reqs)
	q.insert(s.reqs, slot)
	m.pending++
	s.timers.push(timer{at: r.deadline - m.w1.p99 - s.cfg.FutureNs + 1, slot: slot, gen: r.gen, state: reqQueued})
	s.updateUnmet(m)
	if q.frontSlot(s.reqs) != front || batchStep(m, q.live) {
		s.rekey(m, int(r.class))
	}
}

// batchStep reports whether a queue of n live requests just reached a new batch size, so
// the model's strategy (and heap key) changed.
func batchStep(m *model, n int32) bool {
	for _, b := range m.spec.Batches {
		if b == n {
			return true
		}
	}
	return false
}

func (s *Scheduler) cancel(id uint64) {
	slot, ok := s.byID[id]
	if !ok {
		return // answered already
	}
	r := &s.reqs[slot]
	if r.state == reqQueued {
		s.unqueue(slot)
	}
	// In flight: freeing the slot bumps its generation, so the batch's output for it is
	// dropped when the result comes.
	s.respond(id, StatusCancelled, 0, -1)
	s.freeRequest(slot)
}

// unqueue removes a queued request (lazily: its queue entry goes stale).
func (s *Scheduler) unqueue(slot int32) {
	r := &s.reqs[slot]
	m := s.models[r.model]
	q := &m.queues[r.class]
	q.live--
	m.pending--
	r.state = reqFree
	q.trim(s.reqs)
	s.updateUnmet(m)
	s.rekey(m, int(r.class))
}

func (s *Scheduler) freeRequest(slot int32) {
	r := &s.reqs[slot]
	delete(s.byID, r.id)
	r.gen++
	r.state = reqFree
	s.freeReq = append(s.freeReq, slot)
}

// expire fires due timers: queued requests that can no longer finish in time are dropped;
// in-flight requests whose answer is overdue are answered StatusWorkerLost.
func (s *Scheduler) expire(now int64) {
	for len(s.timers) > 0 && s.timers[0].at <= now {
		t := s.timers.pop()
		r := &s.reqs[t.slot]
		if r.gen != t.gen || r.state != t.state {
			continue
		}
		switch t.state {
		case reqQueued:
			m := s.models[r.model]
			if at := r.deadline - m.w1.p99 - s.cfg.FutureNs + 1; at > now {
				// The estimate fell since the timer was armed: check again later.
				s.timers.push(timer{at: at, slot: t.slot, gen: t.gen, state: reqQueued})
				continue
			}
			s.unqueue(t.slot)
			s.respond(r.id, StatusCannotMeetSLO, 0, -1)
			s.freeRequest(t.slot)
			for _, x := range m.insts {
				if in := &s.insts[x]; in.state == instLoaded {
					s.dropped(s.gpus[in.gpu], int(r.class), now)
				}
			}
		case reqFlight:
			s.respond(r.id, StatusWorkerLost, 0, -1)
			s.freeRequest(t.slot)
		}
	}
}

// rekey recomputes model m's heap key for class c on every GPU that holds it loaded.
func (s *Scheduler) rekey(m *model, c int) {
	q := &m.queues[c]
	front := q.frontSlot(s.reqs)
	for _, x := range m.insts {
		in := &s.insts[x]
		if in.state != instLoaded {
			continue
		}
		h := &s.gpus[in.gpu].ready[c]
		if front < 0 {
			h.remove(s.insts, x)
			continue
		}
		bi := batchIndex(m, min(q.live, s.cfg.MaxBatch))
		h.set(s.insts, x, s.reqs[front].deadline-in.est[bi].p99)
	}
}

// batchIndex is the index of the largest supported batch size <= n (n >= 1).
func batchIndex(m *model, n int32) int {
	i := 0
	for i+1 < len(m.spec.Batches) && m.spec.Batches[i+1] <= n {
		i++
	}
	return i
}

func (s *Scheduler) updateUnmet(m *model) {
	work := int64(m.pending) * m.w1.p99
	var u int64
	if m.pending > 0 {
		if m.copies == 0 {
			u = work + 1<<40 // a model with no copy comes before any replica
		} else {
			u = work - int64(m.copies)*s.cfg.ReplicateNs
		}
	}
	m.unmet = u
	if u > 0 {
		s.unmet.fix(m)
	} else {
		s.unmet.remove(m)
	}
}

// scheduleAll fills every live GPU's timeline up to the schedule-ahead bound, always serving
// the GPU that is free first, so a request is not judged on a busy GPU while another idles.
func (s *Scheduler) scheduleAll(now int64) {
	s.candGPU = s.candGPU[:0]
	for _, g := range s.gpus {
		if g.alive && g.hasWork(s.cfg.Classes) {
			s.candGPU = append(s.candGPU, g.id)
		}
	}
	s.fill(now)
	s.scheduleLoads(now)
}

func (g *gpu) hasWork(classes int) bool {
	for c := range classes {
		if len(g.ready[c].items) > 0 {
			return true
		}
	}
	return false
}

// scheduleGPU fills one GPU (after its result), then looks for LOADs.
func (s *Scheduler) scheduleGPU(now int64, g *gpu) {
	s.candGPU = append(s.candGPU[:0], g.id)
	s.fill(now)
	s.scheduleLoads(now)
}

// scheduleModel fills the GPUs holding m.
func (s *Scheduler) scheduleModel(now int64, m *model) {
	s.candGPU = s.candGPU[:0]
	for _, x := range m.insts {
		if s.insts[x].state == instLoaded {
			s.candGPU = append(s.candGPU, s.insts[x].gpu)
		}
	}
	s.fill(now)
}

// fill issues INFERs on the candidate GPUs (candGPU), always on the one predicted free first,
// until each is full up to the schedule-ahead horizon or has no work.
//
// Timing: Step; no allocation; O(candidates) per INFER issued.
func (s *Scheduler) fill(now int64) {
	horizon := now + s.cfg.ScheduleAheadNs
	s.candAt = s.candAt[:0]
	n := 0
	for _, gi := range s.candGPU {
		if at := s.gpus[gi].exec.available(now, s.cfg.FutureNs, s.cfg.LagNs); at < horizon {
			s.candGPU[n] = gi
			s.candAt = append(s.candAt, at)
			n++
		}
	}
	s.candGPU = s.candGPU[:n]
	for len(s.candGPU) > 0 {
		best := 0
		for i, at := range s.candAt {
			if at < s.candAt[best] {
				best = i
			}
		}
		g := s.gpus[s.candGPU[best]]
		if s.inferOne(now, g, s.candAt[best]) {
			if at := g.exec.available(now, s.cfg.FutureNs, s.cfg.LagNs); at < horizon {
				s.candAt[best] = at
				continue
			}
		}
		last := len(s.candGPU) - 1
		s.candGPU[best], s.candAt[best] = s.candGPU[last], s.candAt[last]
		s.candGPU, s.candAt = s.candGPU[:last], s.candAt[:last]
	}
}

// inferOne issues one INFER on g to start at at, if any model loaded there has work.
//
// Timing: Step; no allocation in steady state.
func (s *Scheduler) inferOne(now int64, g *gpu, at int64) bool {
	for {
		pick, pc := int32(-1), -1
		for c := s.cfg.Classes - 1; c >= 0; c-- {
			h := &g.ready[c]
			if len(h.items) == 0 {
				continue
			}
			x := h.items[0]
			if pick < 0 || s.insts[x].key[c] < s.insts[pick].key[pc] {
				pick, pc = x, c
			}
		}
		if pick < 0 {
			return false
		}
		// A higher class goes first if the pick's batch would make its most urgent model miss.
		if pc < s.cfg.Classes-1 {
			pm := s.models[s.insts[pick].model]
			pickEst := s.insts[pick].est[batchIndex(pm, min(pm.queues[pc].live, s.cfg.MaxBatch))].p99
			for c := s.cfg.Classes - 1; c > pc; c-- {
				h := &g.ready[c]
				if len(h.items) == 0 {
					continue
				}
				// key: the latest start of the model's largest batch that its queue fills.
				x := h.items[0]
				if at+pickEst > s.insts[x].key[c] {
					pick, pc = x, c
					break
				}
			}
		}
		if s.dequeue(now, g, pick, pc, at) {
			return true
		}
	}
}

// dequeue drops the requests at the front of the model's class-c queue that cannot finish
// starting at at, then issues the largest batch that meets the new front's deadline.
// It returns false if the queue emptied.
func (s *Scheduler) dequeue(now int64, g *gpu, x int32, c int, at int64) bool {
	in := &s.insts[x]
	m := s.models[in.model]
	q := &m.queues[c]
	for {
		f := q.frontSlot(s.reqs)
		if f < 0 {
			s.rekey(m, c)
			return false
		}
		if s.reqs[f].deadline >= at+in.est[0].p99 {
			break
		}
		id := s.reqs[f].id
		s.unqueue(f)
		s.respond(id, StatusCannotMeetSLO, 0, -1)
		s.freeRequest(f)
		s.dropped(g, c, at)
	}
	front := q.frontSlot(s.reqs)
	d := s.reqs[front].deadline
	full := batchIndex(m, min(q.live, s.cfg.MaxBatch))
	bi := full
	for bi > 0 && at+in.est[bi].p99 > d {
		bi--
	}
	if bi < full && at < g.pressed[c] {
		bi = s.pressedBatch(q, in, bi, full, at)
		front = q.frontSlot(s.reqs)
		d = s.reqs[front].deadline
	}
	b := m.spec.Batches[bi]
	exp := in.est[bi].p99

	fi := s.newFlight(ActInfer, g.id, x)
	f := &s.flights[fi]
	f.batchIdx = int32(bi)
	id := flightID(fi, f.gen)
	start := len(s.idbuf)
	for range b {
		slot := q.popFront(s.reqs)
		r := &s.reqs[slot]
		r.state = reqFlight
		f.reqs = append(f.reqs, slot)
		f.rgens = append(f.rgens, r.gen)
		s.idbuf = append(s.idbuf, r.id)
		s.timers.push(timer{at: r.real + s.cfg.LateBoundNs, slot: slot, gen: r.gen, state: reqFlight})
	}
	q.live -= b
	m.pending -= b
	q.trim(s.reqs)
	g.exec.add(id, exp, at)
	in.inflight++
	s.lruTouch(g, x)
	s.updateUnmet(m)
	s.rekey(m, c)
	s.out = append(s.out, Action{Kind: ActInfer, ID: id, Worker: g.worker, GPU: g.id, Model: m.id,
		Batch: b, EarliestNs: now, LatestNs: d - exp + s.cfg.MarginNs/2, ExpectedNs: exp,
		Requests: s.idbuf[start:len(s.idbuf):len(s.idbuf)]})
	return true
}

// dropWindow counts a class's drops on a GPU in windows of Config.PressureNs.
type dropWindow struct {
	start int64
	n     int32
}

// dropped records that g dropped a request of class c that could not finish in time at t. A
// class that drops half as many requests as the largest batch within PressureNs is under
// pressure for PressureNs after its last drop: a few drops (a burst, a cold start) do not make it give up requests that a
// small batch would serve, which near capacity costs more than it gains (measured end to
// end: 142 misses after warm-up with pressure on the first drop, 28 with none).
func (s *Scheduler) dropped(g *gpu, c int, t int64) {
	w := &g.drops[c]
	if t-w.start > s.cfg.PressureNs {
		w.start, w.n = t, 0
	}
	w.n++
	if w.n >= max(1, s.cfg.MaxBatch/2) || g.pressed[c] > t {
		g.pressed[c] = t + s.cfg.PressureNs // once under pressure, each drop extends it
	}
}

// pressedBatch, on a GPU under pressure, looks for a batch larger than bi (up to full) that
// enough queued requests can all meet starting at at; if one exists, it drops the requests
// ahead of them (StatusCannotMeetSLO) and returns its index, else bi. Dropping them trades
// requests that a small, inefficient batch could serve for a batch that serves more in the
// GPU time it costs; under pressure they would expire anyway.
//
// Timing: Step; no allocation; O(queue front dropped) per call.
func (s *Scheduler) pressedBatch(q *queue, in *instance, bi, full int, at int64) int {
	m := s.models[in.model]
	for b := full; b > bi; b-- {
		need := at + in.est[b].p99
		skip := int32(0) // live requests ahead of the first that meets need
		for i := 0; i < q.n; i++ {
			e := q.at(i)
			if !e.alive(s.reqs) {
				continue
			}
			if s.reqs[e.slot].deadline >= need {
				break
			}
			skip++
		}
		if q.live-skip < m.spec.Batches[b] {
			continue
		}
		for range skip {
			f := q.frontSlot(s.reqs)
			id := s.reqs[f].id
			s.unqueue(f)
			s.respond(id, StatusCannotMeetSLO, 0, -1)
			s.freeRequest(f)
		}
		return b
	}
	return bi
}

func flightID(fi int32, gen uint32) uint64 { return uint64(gen)<<32 | uint64(fi) }

func (s *Scheduler) newFlight(k ActionKind, g, x int32) int32 {
	var fi int32
	if n := len(s.freeFl); n > 0 {
		fi = s.freeFl[n-1]
		s.freeFl = s.freeFl[:n-1]
	} else {
		s.flights = append(s.flights, flight{})
		fi = int32(len(s.flights) - 1)
	}
	f := &s.flights[fi]
	f.gen++
	f.kind, f.gpu, f.inst, f.live = k, g, x, true
	f.reqs, f.rgens = f.reqs[:0], f.rgens[:0]
	s.numFlight++
	return fi
}

func (s *Scheduler) freeFlight(fi int32) {
	f := &s.flights[fi]
	f.live = false
	s.numFlight--
	s.freeFl = append(s.freeFl, fi)
}

// requeueBatch puts the still-live requests of a failed or lost INFER back in their queues if
// they can still meet their deadlines, and answers the others with st.
func (s *Scheduler) requeueBatch(now int64, f *flight, st Status) {
	for i, slot := range f.reqs {
		r := &s.reqs[slot]
		if r.gen != f.rgens[i] || r.state != reqFlight {
			continue
		}
		m := s.models[r.model]
		if r.deadline-m.w1.p99-s.cfg.FutureNs >= now {
			s.enqueue(m, slot)
			continue
		}
		s.respond(r.id, st, 0, -1)
		s.freeRequest(slot)
	}
}

func (s *Scheduler) result(now int64, ev *Event) {
	if ev.Action>>63 == 1 {
		return // EVICT: nothing to do; its pages were reclaimed when it was issued
	}
	fi := int32(uint32(ev.Action))
	if fi < 0 || int(fi) >= len(s.flights) {
		return
	}
	f := &s.flights[fi]
	if !f.live || f.gen != uint32(ev.Action>>32) {
		return // unknown or already settled (e.g. its GPU was lost)
	}
	g := s.gpus[f.gpu]
	in := &s.insts[f.inst]
	m := s.models[in.model]
	end := ev.EndNs
	if end <= 0 || end > now {
		end = now
	}
	switch f.kind {
	case ActInfer:
		in.inflight--
		if ev.OK {
			g.exec.done(ev.Action, end)
			if ev.DurNs > 0 {
				in.est[f.batchIdx].add(ev.DurNs)
				m.wb[f.batchIdx].add(ev.DurNs)
				if f.batchIdx == 0 {
					m.w1.add(ev.DurNs)
				}
			}
			for i, slot := range f.reqs {
				r := &s.reqs[slot]
				if r.gen != f.rgens[i] || r.state != reqFlight {
					continue // cancelled or timed out: output dropped
				}
				s.respond(r.id, StatusOK, ev.Action, int32(i))
				s.freeRequest(slot)
			}
		} else {
			g.exec.done(ev.Action, now)
			s.requeueBatch(now, f, StatusCannotMeetSLO)
			s.freeFlight(fi)
			s.scheduleAll(now) // requeued requests may go to any GPU
			return
		}
		s.freeFlight(fi)
	case ActLoad:
		g.loads--
		s.freeFlight(fi)
		if !ev.OK {
			g.pcie.done(ev.Action, now)
			s.dropInstance(g, f.inst)
			break
		}
		g.pcie.done(ev.Action, end)
		if ev.DurNs > 0 {
			m.wload.add(ev.DurNs)
			s.loadRatio.add(min(ev.DurNs, 1<<40) * 1000 / m.spec.LoadNs)
		}
		in.state = instLoaded
		s.lruTouch(g, f.inst)
		for c := 0; c < s.cfg.Classes; c++ {
			s.rekey(m, c)
		}
	}
	s.scheduleGPU(now, g)
}

// scheduleLoads issues LOADs for the models with the most unmet demand while GPUs have LOAD
// slots free.
func (s *Scheduler) scheduleLoads(now int64) {
	if len(s.unmet.items) == 0 || !s.loadSlotFree(now) {
		return
	}
	s.skipped = s.skipped[:0]
	for len(s.unmet.items) > 0 && len(s.skipped) < 16 {
		m := s.unmet.items[0]
		g, relaxed := s.pickLoadGPU(now, m)
		if g == nil {
			s.unmet.remove(m)
			s.skipped = append(s.skipped, m)
			continue
		}
		// A LOAD is worth it only for requests that can still be served once it completes:
		// the earliest a batch of 1 can end after a LOAD on g.
		ready := g.pcie.available(now, s.cfg.FutureNs, s.cfg.LagNs) + s.loadEst(m) + s.cfg.FutureNs + m.w1.p99
		if m.copies == 0 {
			// Nothing else can serve the requests that cannot wait for it: drop them now.
			recur := false
			if s.dropBefore(m, ready) {
				recur = m.coldSeen && now-m.coldAt <= ColdRecurNs
				m.coldAt, m.coldSeen = now, true
			}
			if m.pending == 0 { // unqueue took it off the unmet heap
				if recur && !relaxed { // see loadForRecurringDemand
					s.issueLoad(now, g, m, false)
					if !s.loadSlotFree(now) {
						break
					}
				}
				continue
			}
		} else if s.newestDeadline(m) < ready {
			s.unmet.remove(m) // the copies it has serve what a new one could
			s.skipped = append(s.skipped, m)
			continue
		}
		s.issueLoad(now, g, m, relaxed)
		if !s.loadSlotFree(now) {
			break
		}
	}
	for _, m := range s.skipped {
		s.updateUnmet(m)
	}
}

// dropBefore answers StatusCannotMeetSLO to m's queued requests whose planning deadline is
// before ready, and reports whether it dropped any.
func (s *Scheduler) dropBefore(m *model, ready int64) (dropped bool) {
	for c := range s.cfg.Classes {
		q := &m.queues[c]
		for {
			f := q.frontSlot(s.reqs)
			if f < 0 || s.reqs[f].deadline >= ready {
				break
			}
			id := s.reqs[f].id
			s.unqueue(f)
			s.respond(id, StatusCannotMeetSLO, 0, -1)
			s.freeRequest(f)
			dropped = true
		}
	}
	return dropped
}

// ColdRecurNs is how soon a second request that had to be rejected because its model has no
// copy (its SLO is shorter than a LOAD) must follow the first for the model to be loaded anyway.
const ColdRecurNs = 1_000_000_000

// loadForRecurringDemand records that a request of m (no copy) was rejected because it could
// not wait for a LOAD. When that recurs within ColdRecurNs, m is loaded anyway where a GPU has
// a LOAD slot and room without evicting a model that has demand: otherwise a model whose SLO is
// shorter than its LOAD time would never get a copy and every request would be rejected.
func (s *Scheduler) loadForRecurringDemand(now int64, m *model) {
	recur := m.coldSeen && now-m.coldAt <= ColdRecurNs
	m.coldAt, m.coldSeen = now, true
	if !recur || m.copies != 0 || !s.loadSlotFree(now) {
		return
	}
	if g, relaxed := s.pickLoadGPU(now, m); g != nil && !relaxed {
		s.issueLoad(now, g, m, false)
	}
}

// newestDeadline is the latest planning deadline among m's queued requests (0 if none).
func (s *Scheduler) newestDeadline(m *model) int64 {
	var d int64
	for c := range s.cfg.Classes {
		q := &m.queues[c]
		for i := q.n - 1; i >= 0; i-- {
			if e := q.at(i); e.alive(s.reqs) {
				d = max(d, s.reqs[e.slot].deadline)
				break
			}
		}
	}
	return d
}

func (s *Scheduler) loadSlotFree(now int64) bool {
	for _, g := range s.gpus {
		if g.alive && g.loads < s.cfg.MaxLoadsPerGPU && g.pcie.available(now, s.cfg.FutureNs, s.cfg.LagNs) < now+s.cfg.ScheduleAheadNs {
			return true
		}
	}
	return false
}

// pickLoadGPU picks where to load m: a GPU without a copy, with a LOAD slot and room (free
// pages, or pages of idle models it may evict); among those the one whose exec lane frees
// first, preferring no eviction, then evicting only models without demand. relaxed reports
// that room needs evicting models that have demand but another copy elsewhere.
func (s *Scheduler) pickLoadGPU(now int64, m *model) (best *gpu, relaxed bool) {
	bestCost, bestAt := 3, int64(math.MaxInt64)
	for _, g := range s.gpus {
		if !g.alive || g.loads >= s.cfg.MaxLoadsPerGPU || g.total < m.spec.Pages ||
			g.pcie.available(now, s.cfg.FutureNs, s.cfg.LagNs) >= now+s.cfg.ScheduleAheadNs || s.holds(m, g.id) {
			continue
		}
		cost := 0 // 0: free pages, 1: evict idle models, 2: evict replicated models with demand
		if need := m.spec.Pages - g.free; need > 0 {
			switch {
			case s.canEvict(g, need, false):
				cost = 1
			case s.canEvict(g, need, true):
				cost = 2
			default:
				continue
			}
		}
		at := g.exec.available(now, s.cfg.FutureNs, s.cfg.LagNs)
		if cost < bestCost || (cost == bestCost && at < bestAt) {
			best, bestCost, bestAt = g, cost, at
		}
	}
	return best, bestCost == 2
}

func (s *Scheduler) holds(m *model, g int32) bool {
	for _, x := range m.insts {
		if s.insts[x].gpu == g {
			return true
		}
	}
	return false
}

// evictable: loaded, no INFER in flight (its pages are in use), and no queued demand; or,
// relaxed, demand but another loaded copy that serves it.
func (s *Scheduler) evictable(x int32, relaxed bool) bool {
	in := &s.insts[x]
	if in.state != instLoaded || in.inflight != 0 {
		return false
	}
	m := s.models[in.model]
	if m.pending == 0 {
		return true
	}
	if !relaxed {
		return false
	}
	for _, y := range m.insts {
		if y != x && s.insts[y].state == instLoaded {
			return true
		}
	}
	return false
}

func (s *Scheduler) canEvict(g *gpu, need int32, relaxed bool) bool {
	for x := g.tail; x >= 0 && need > 0; x = s.insts[x].prev {
		if s.evictable(x, relaxed) {
			need -= s.models[s.insts[x].model].spec.Pages
		}
	}
	return need <= 0
}

func (s *Scheduler) issueLoad(now int64, g *gpu, m *model, relaxed bool) {
	for x := g.tail; x >= 0 && g.free < m.spec.Pages; {
		prev := s.insts[x].prev
		if s.evictable(x, relaxed) {
			s.evictSeq++
			s.out = append(s.out, Action{Kind: ActEvict, ID: 1<<63 | s.evictSeq, Worker: g.worker, GPU: g.id,
				Model: s.insts[x].model, EarliestNs: now, LatestNs: math.MaxInt64})
			s.dropInstance(g, x)
		}
		x = prev
	}
	if g.free < m.spec.Pages {
		panic(fmt.Sprintf("BUG: GPU %d has %d free pages after eviction, model %d needs %d", g.id, g.free, m.id, m.spec.Pages))
	}
	x := s.newInstance(m, g)
	g.free -= m.spec.Pages
	g.loads++
	fi := s.newFlight(ActLoad, g.id, x)
	id := flightID(fi, s.flights[fi].gen)
	at := g.pcie.available(now, s.cfg.FutureNs, s.cfg.LagNs)
	est := s.loadEst(m)
	g.pcie.add(id, est, at)
	s.out = append(s.out, Action{Kind: ActLoad, ID: id, Worker: g.worker, GPU: g.id, Model: m.id,
		EarliestNs: now, LatestNs: at + s.cfg.ScheduleAheadNs, ExpectedNs: est})
}

// loadEst is the expected LOAD time of m: its own measurements, or, before it has any, its
// profile's time scaled by how the last LOADs of any model compared with their profiles.
func (s *Scheduler) loadEst(m *model) int64 {
	if m.wload.n > 0 || s.loadRatio.n == 0 {
		return m.wload.p99
	}
	return max(1, m.spec.LoadNs*s.loadRatio.p99/1000)
}

func (s *Scheduler) newInstance(m *model, g *gpu) int32 {
	var x int32
	if n := len(s.freeIns); n > 0 {
		x = s.freeIns[n-1]
		s.freeIns = s.freeIns[:n-1]
	} else {
		s.insts = append(s.insts, instance{})
		x = int32(len(s.insts) - 1)
	}
	in := &s.insts[x]
	*in = instance{model: m.id, gpu: g.id, state: instLoading, prev: -1, next: -1}
	for c := range in.hidx {
		in.hidx[c] = -1
	}
	// Seed from the model's measurements at each batch size on any GPU, else from its latest
	// batch-1 estimate scaled by the profile's batch ratios: a copy reloaded many times (or
	// one whose profile is off) does not start from the profile again.
	for i, e := range m.spec.ExecNs {
		if m.wb[i].n > 0 {
			in.est[i].seed(m.wb[i].p99)
		} else {
			in.est[i].seed(max(1, e*m.w1.p99/m.spec.ExecNs[0]))
		}
	}
	m.insts = append(m.insts, x)
	m.copies++
	s.updateUnmet(m)
	// Link at the head of the LRU list.
	in.next = g.head
	if g.head >= 0 {
		s.insts[g.head].prev = x
	}
	g.head = x
	if g.tail < 0 {
		g.tail = x
	}
	return x
}

// dropInstance forgets a copy: unlinks it, returns its pages, removes it from the heaps.
func (s *Scheduler) dropInstance(g *gpu, x int32) {
	in := &s.insts[x]
	m := s.models[in.model]
	for c := range g.ready {
		g.ready[c].remove(s.insts, x)
	}
	if in.prev >= 0 {
		s.insts[in.prev].next = in.next
	} else {
		g.head = in.next
	}
	if in.next >= 0 {
		s.insts[in.next].prev = in.prev
	} else {
		g.tail = in.prev
	}
	g.free += m.spec.Pages
	for i, y := range m.insts {
		if y == x {
			m.insts = append(m.insts[:i], m.insts[i+1:]...)
			break
		}
	}
	m.copies--
	in.state = instFree
	s.freeIns = append(s.freeIns, x)
	s.updateUnmet(m)
}

func (s *Scheduler) lruTouch(g *gpu, x int32) {
	if g.head == x {
		return
	}
	in := &s.insts[x]
	s.insts[in.prev].next = in.next // in.prev >= 0: x is not the head
	if in.next >= 0 {
		s.insts[in.next].prev = in.prev
	} else {
		g.tail = in.prev
	}
	in.prev, in.next = -1, g.head
	s.insts[g.head].prev = x
	g.head = x
}
