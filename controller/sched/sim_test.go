package sched

import (
	"container/heap"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
)

// simWorld replays a random trace through a Scheduler against an in-test timing model of
// workers: per GPU a FIFO exec lane and a FIFO PCIe lane, a fixed network delay each way, exec
// times a little under the profile with rare spikes, and page accounting of its own. Because
// lanes are FIFO, every action's fate is known when it is issued; results are delivered later
// as events. It checks the scheduler's promises as it goes.
type simWorld struct {
	t       testing.TB
	rng     *rand.Rand
	s       *Scheduler
	now     int64
	netNs   int64
	specs   []*ModelSpec
	gpus    []*simGPU
	workers int
	pending simEvents
	seq     int64

	reqs     map[uint64]*simReq
	answered int
	ok, late int
	statuses [numStatus]int
	rejected int // actions the worker rejected (window missed)
	// delayEvery > 0 delays one result in delayEvery by 15-45 ms (past the tracker's lag).
	delayEvery int
	delayed    int
	ticks      int
	// spikePermille runs in 1000 take spikePercent % of their usual time.
	spikePermille, spikePercent int
	spiked                      int // INFERs that ran spikePercent % long
	// Results due in [stallFrom, stallTo) arrive at stallTo, in order.
	stallFrom, stallTo int64
	infers             int
	okByBatch          map[int32]int // successful requests by the batch size that served them
	loads              int           // LOADs run (not rejected)
	loadPercent        int64         // LOADs take this % of the profile's time (0: 100)
}

type simReq struct {
	deadline int64
	answered bool
	ok       bool
	model    int32
}

type simGPU struct {
	worker   int32
	epoch    int // bumped on loss: results of older epochs are never delivered
	execFree int64
	pcieFree int64
	free     int32
	loadedAt map[int32]int64 // model → when its LOAD ends on the worker
	busyTill map[int32]int64 // model → end of its last INFER
}

type simEvent struct {
	at    int64
	seq   int64
	ev    Event
	gpu   int32
	epoch int
}

type simEvents []simEvent

func (h simEvents) Len() int { return len(h) }
func (h simEvents) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h simEvents) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *simEvents) Push(x any)   { *h = append(*h, x.(simEvent)) }
func (h *simEvents) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// tickLateNs bounds how late the simulated event loop wakes for a tick.
const tickLateNs = 50e3

func testSeed(t testing.TB) uint64 {
	if v := os.Getenv("TEST_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("TEST_SEED=%q: %v", v, err)
		}
		return n
	}
	return rand.Uint64()
}

func newSimWorld(t testing.TB, seed uint64, cfg Config, gpus, workers, models, pages int) *simWorld {
	rng := rand.New(rand.NewPCG(seed, 3))
	var specs []*ModelSpec
	for m := range models {
		b1 := int64(500e3 + rng.Int64N(5e6))
		spec := &ModelSpec{ID: int32(m), LoadNs: int64(2e6 + rng.Int64N(8e6)), Pages: int32(1 + rng.IntN(pages/4))}
		for i, b := range []int32{1, 2, 4, 8, 16} {
			spec.Batches = append(spec.Batches, b)
			spec.ExecNs = append(spec.ExecNs, b1+b1*int64(b-1)*int64(3+i)/20)
		}
		specs = append(specs, spec)
	}
	return newSimWorldSpecs(t, seed, cfg, gpus, workers, pages, specs)
}

func newSimWorldSpecs(t testing.TB, seed uint64, cfg Config, gpus, workers, pages int, specs []*ModelSpec) *simWorld {
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w := &simWorld{t: t, rng: rand.New(rand.NewPCG(seed, 1)), s: s, netNs: 100e3, workers: workers,
		reqs: map[uint64]*simReq{}, spikePermille: 1, spikePercent: 130}
	for g := range gpus {
		w.gpus = append(w.gpus, &simGPU{worker: int32(g % workers)})
		w.addGPU(int32(g), int32(pages))
	}
	for _, spec := range specs {
		w.specs = append(w.specs, spec)
		w.step(&Event{Kind: EvAddModel, Spec: spec})
	}
	return w
}

func (w *simWorld) addGPU(g int32, pages int32) {
	sg := w.gpus[g]
	sg.epoch++
	sg.execFree, sg.pcieFree, sg.free = w.now, w.now, pages
	sg.loadedAt, sg.busyTill = map[int32]int64{}, map[int32]int64{}
	w.step(&Event{Kind: EvAddGPU, GPU: g, Worker: sg.worker, Pages: pages})
}

func (w *simWorld) deliver(at int64, g int32, ev Event) {
	if w.delayEvery > 0 && w.rng.IntN(w.delayEvery) == 0 {
		at += int64(15e6 + w.rng.IntN(30e6)) // a result stuck in a slow network or a busy host
		w.delayed++
	}
	if at >= w.stallFrom && at < w.stallTo { // a stalled host: results pile up, then arrive in order
		at = w.stallTo + (at-w.stallFrom)/100
	}
	w.seq++
	heap.Push(&w.pending, simEvent{at: at, seq: w.seq, ev: ev, gpu: g, epoch: w.gpus[g].epoch})
}

// step feeds one event to the scheduler and carries out its actions on the timing model.
func (w *simWorld) step(ev *Event) {
	acts := w.s.Step(w.now, ev)
	for i := range acts {
		a := &acts[i]
		switch a.Kind {
		case ActRespond:
			r, ok := w.reqs[a.Request]
			if !ok || r.answered {
				w.t.Fatalf("request %d answered twice or unknown (status %v) at %d", a.Request, a.Status, w.now)
			}
			r.answered = true
			w.answered++
			w.statuses[a.Status]++
			if w.now > r.deadline+w.s.cfg.LateBoundNs+tickLateNs {
				w.t.Fatalf("request %d answered %v at %d, after deadline %d + bound", a.Request, a.Status, w.now, r.deadline)
			}
			if a.Status == StatusOK {
				r.ok = true
				w.ok++
				if w.now > r.deadline {
					w.late++
				}
			}
		case ActEvict:
			g := w.gpus[a.GPU]
			arrive := w.now + w.netNs
			if g.busyTill[a.Model] > arrive {
				w.t.Fatalf("EVICT of model %d on GPU %d at %d while its INFER runs until %d", a.Model, a.GPU, arrive, g.busyTill[a.Model])
			}
			if _, ok := g.loadedAt[a.Model]; !ok {
				w.t.Fatalf("EVICT of model %d not on GPU %d", a.Model, a.GPU)
			}
			delete(g.loadedAt, a.Model)
			g.free += w.specs[a.Model].Pages
		case ActLoad:
			g := w.gpus[a.GPU]
			spec := w.specs[a.Model]
			if g.free < spec.Pages {
				w.t.Fatalf("LOAD of model %d (%d pages) on GPU %d with %d free", a.Model, spec.Pages, a.GPU, g.free)
			}
			g.free -= spec.Pages
			start := max(w.now+w.netNs, g.pcieFree)
			dur := spec.LoadNs * int64(90+w.rng.IntN(10)) / 100
			if w.loadPercent > 0 {
				dur = dur * w.loadPercent / 100
			}
			if start > a.LatestNs {
				g.free += spec.Pages
				w.rejected++
				w.deliver(start+w.netNs, a.GPU, Event{Kind: EvResult, Action: a.ID})
				break
			}
			g.pcieFree = start + dur
			g.loadedAt[a.Model] = start + dur
			w.loads++
			w.deliver(start+dur+w.netNs, a.GPU, Event{Kind: EvResult, Action: a.ID, OK: true, DurNs: dur, EndNs: start + dur})
		case ActInfer:
			w.infers++
			g := w.gpus[a.GPU]
			if int(a.Batch) != len(a.Requests) || a.Batch < 1 {
				w.t.Fatalf("INFER batch %d with %d requests", a.Batch, len(a.Requests))
			}
			if a.LatestNs < w.now || a.EarliestNs > a.LatestNs {
				w.t.Fatalf("INFER window [%d, %d] cannot be met at %d", a.EarliestNs, a.LatestNs, w.now)
			}
			start := max(w.now+w.netNs, g.execFree, a.EarliestNs)
			if start > a.LatestNs {
				w.rejected++
				w.deliver(start+w.netNs, a.GPU, Event{Kind: EvResult, Action: a.ID})
				break
			}
			if at, ok := g.loadedAt[a.Model]; !ok || at > start {
				w.t.Fatalf("INFER of model %d on GPU %d at %d: not loaded (loaded %v at %d)", a.Model, a.GPU, start, ok, at)
			}
			spec := w.specs[a.Model]
			bi := 0
			for spec.Batches[bi] != a.Batch {
				bi++
			}
			dur := spec.ExecNs[bi] * int64(970+w.rng.IntN(30)) / 1000
			if w.rng.IntN(1000) < w.spikePermille {
				dur = dur * int64(w.spikePercent) / 100 // a rare slow run
				w.spiked++
			}
			g.execFree = start + dur // one INFER at a time: the lane is serial by construction
			g.busyTill[a.Model] = start + dur
			w.deliver(start+dur+w.netNs, a.GPU, Event{Kind: EvResult, Action: a.ID, OK: true, DurNs: dur, EndNs: start + dur})
			if w.okByBatch != nil {
				w.okByBatch[a.Batch] += int(a.Batch)
			}
		}
	}
}

func (w *simWorld) submit(id uint64, model int32, class uint8, slo int64) {
	w.reqs[id] = &simReq{deadline: w.now + slo, model: model}
	w.step(&Event{Kind: EvSubmit, Request: id, Model: model, Class: class, DeadlineNs: w.now + slo})
}

// advance runs deliveries and ticks due before t, then sets the clock to t.
func (w *simWorld) advance(t int64) {
	for {
		next := t
		if len(w.pending) > 0 && w.pending[0].at < next {
			next = w.pending[0].at
		}
		wake := w.s.WakeNs()
		if wake < math.MaxInt64-100e3 {
			wake += w.rng.Int64N(tickLateNs) // a real event loop wakes a little late
		}
		if wake < next {
			next = max(wake, w.now)
		}
		if next >= t {
			break
		}
		w.now = next
		if len(w.pending) > 0 && w.pending[0].at == next {
			e := heap.Pop(&w.pending).(simEvent)
			if e.epoch != w.gpus[e.gpu].epoch {
				continue // the worker was lost: its results never arrive
			}
			w.step(&e.ev)
			continue
		}
		w.step(&Event{Kind: EvTick})
		w.ticks++
		if w.s.WakeNs() <= w.now {
			w.t.Fatalf("scheduler wants a tick at %d right after one at %d", w.s.WakeNs(), w.now)
		}
		if w.ticks > 20*(len(w.reqs)+100) {
			w.t.Fatalf("%d ticks for %d requests: the scheduler keeps asking to be woken with nothing to do", w.ticks, len(w.reqs))
		}
	}
	w.now = t
}

func (w *simWorld) loseWorker(wk int32) {
	for _, g := range w.gpus {
		if g.worker == wk {
			g.epoch++
		}
	}
	w.step(&Event{Kind: EvWorkerLost, Worker: wk})
}

// TestSimRandom replays random traces: skewed model popularity, mixed SLOs and classes,
// cancellations and worker losses.
func TestSimRandom(t *testing.T) {
	seed := testSeed(t)
	t.Logf("seed %d (rerun with TEST_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	traces := 40
	if testing.Short() {
		traces = 5
	}
	for trace := range traces {
		cfg := DefaultConfig()
		cfg.Classes = 1 + rng.IntN(3)
		cfg.ScheduleAheadNs = int64(2e6 + rng.IntN(10e6))
		gpus := 1 + rng.IntN(6)
		w := newSimWorld(t, rng.Uint64(), cfg, gpus, 1+rng.IntN(gpus), 1+rng.IntN(40), 40+rng.IntN(100))
		if trace%2 == 1 {
			w.delayEvery = 500
			w.stallFrom = int64(rng.IntN(1e9))
			w.stallTo = w.stallFrom + int64(20e6+rng.IntN(60e6))
		}
		rate := float64(gpus) * (0.2 + rng.Float64()*2) / 2e6 // requests per ns
		var id uint64
		for w.now < 2e9 {
			w.advance(w.now + int64(rng.ExpFloat64()/rate) + 1)
			id++
			model := int32(min(rng.ExpFloat64()*float64(len(w.specs))/4, float64(len(w.specs)-1)))
			slo := int64(10e6 + rng.IntN(200e6))
			w.submit(id, model, uint8(rng.IntN(cfg.Classes)), slo)
			if rng.IntN(50) == 0 {
				w.step(&Event{Kind: EvCancel, Request: uint64(1 + rng.IntN(int(id)))})
			}
			if rng.IntN(2000) == 0 {
				wk := int32(rng.IntN(w.workers))
				w.loseWorker(wk)
				w.advance(w.now + 5e6)
				for g, sg := range w.gpus {
					if sg.worker == wk {
						w.addGPU(int32(g), int32(40))
					}
				}
			}
		}
		w.advance(w.now + 1e9)
		if w.s.Live() != 0 || w.answered != len(w.reqs) {
			t.Fatalf("trace %d: %d requests, %d answered, %d live in the scheduler", trace, len(w.reqs), w.answered, w.s.Live())
		}
		// Only a delayed result or a run far over its estimate (a spike) can make a success
		// late (by at most LateBoundNs, checked as answers are given); each such INFER holds
		// at most 16 requests.
		if w.late > 16*(w.delayed+w.spiked) && w.stallTo == 0 {
			t.Fatalf("trace %d: %d successful answers after their deadlines with %d delayed results and %d spiked INFERs", trace, w.late, w.delayed, w.spiked)
		}
		t.Logf("trace %d: gpus=%d models=%d requests=%d ok=%d statuses=%v infers=%d rejected-by-worker=%d delayed=%d late-ok=%d",
			trace, gpus, len(w.specs), len(w.reqs), w.ok, w.statuses, w.infers, w.rejected, w.delayed, w.late)
	}
}

// TestIdealBound compares small single-GPU traces with an offline bound. Underloaded, every
// request that could meet its deadline alone must succeed; overloaded, successes must reach a
// fair share of the bound given by batching at the largest size back to back (85 %: goodput must
// not collapse under overload), and never pass it.
func TestIdealBound(t *testing.T) {
	seed := testSeed(t)
	t.Logf("seed %d (rerun with TEST_SEED=%d)", seed, seed)
	for _, tc := range []struct {
		load     float64 // offered batch-1 work per unit time
		minRatio float64
	}{{0.3, 0.999}, {0.8, 0.99}, {3, 0.85}} {
		cfg := DefaultConfig()
		w := newSimWorld(t, seed, cfg, 1, 1, 1, 100)
		spec := w.specs[0]
		rate := tc.load / float64(spec.ExecNs[0])
		const span = 2e9
		var id uint64
		for w.now < span {
			w.advance(w.now + int64(w.rng.ExpFloat64()/rate) + 1)
			id++
			w.submit(id, 0, 0, 100e6)
		}
		w.advance(w.now + 1e9)
		last := len(spec.Batches) - 1
		// The timing model runs batches in 97-100 % of the profile's time: the bound assumes 97 %.
		capacity := int((span + 100e6) / (spec.ExecNs[last] * 97 / 100) * int64(spec.Batches[last]))
		bound := min(int(id), capacity)
		ratio := float64(w.ok) / float64(bound)
		t.Logf("load %.1f: requests %d, ok %d, bound %d (capacity %d), ratio %.4f", tc.load, id, w.ok, bound, capacity, ratio)
		if w.ok > bound {
			t.Fatalf("load %.1f: %d successes exceed the offline bound %d", tc.load, w.ok, bound)
		}
		if ratio < tc.minRatio {
			t.Fatalf("load %.1f: %d successes are %.4f of the bound %d, want >= %.3f", tc.load, w.ok, ratio, bound, tc.minRatio)
		}
	}
}

// TestPriorityIsolation: a high class within the GPU's capacity keeps its SLO while a low
// class offers ten times the capacity on the same GPU.
func TestPriorityIsolation(t *testing.T) {
	seed := testSeed(t)
	t.Logf("seed %d (rerun with TEST_SEED=%d)", seed, seed)
	cfg := DefaultConfig()
	w := newSimWorld(t, seed, cfg, 1, 1, 2, 100)
	hi, lo := int32(0), int32(1)
	rateHi := 0.3 / float64(w.specs[hi].ExecNs[0])
	rateLo := 10 / float64(w.specs[lo].ExecNs[0])
	var id uint64
	high := map[uint64]bool{}
	for w.now < 2e9 {
		w.advance(w.now + int64(w.rng.ExpFloat64()/(rateHi+rateLo)) + 1)
		id++
		if w.rng.Float64() < rateHi/(rateHi+rateLo) {
			high[id] = true
			w.submit(id, hi, 2, 100e6)
		} else {
			w.submit(id, lo, 0, 100e6)
		}
	}
	w.advance(w.now + 1e9)
	okHi := 0
	for r := range high {
		if w.reqs[r].ok {
			okHi++
		}
	}
	frac := float64(okHi) / float64(len(high))
	t.Logf("high class: %d of %d ok (%.4f); low class: %d requests, %d ok overall", okHi, len(high), frac, len(w.reqs)-len(high), w.ok)
	if frac < 0.999 {
		t.Fatalf("high class met %.4f of its requests under low-class overload, want >= 0.999", frac)
	}
}
