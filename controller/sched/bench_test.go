package sched

import (
	"math/rand/v2"
	"testing"
)

// loopDriver feeds a scheduler Poisson arrivals over many models on many GPUs and answers its
// actions after their expected durations, with no allocation of its own in steady state, so
// benchmarks and AllocsPerRun measure the scheduler alone.
type loopDriver struct {
	s       *Scheduler
	rng     *rand.Rand
	now     int64
	due     []due // min-heap by at
	models  int
	ev      Event
	nextID  uint64
	answers int
}

type due struct {
	at  int64
	id  uint64
	dur int64
}

func (d *loopDriver) push(x due) {
	d.due = append(d.due, x)
	i := len(d.due) - 1
	for i > 0 {
		p := (i - 1) / 2
		if d.due[p].at <= d.due[i].at {
			break
		}
		d.due[p], d.due[i] = d.due[i], d.due[p]
		i = p
	}
}

func (d *loopDriver) pop() due {
	x := d.due[0]
	last := len(d.due) - 1
	d.due[0] = d.due[last]
	d.due = d.due[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= len(d.due) {
			break
		}
		m := l
		if r := l + 1; r < len(d.due) && d.due[r].at < d.due[l].at {
			m = r
		}
		if d.due[i].at <= d.due[m].at {
			break
		}
		d.due[i], d.due[m] = d.due[m], d.due[i]
		i = m
	}
	return x
}

func newLoopDriver(tb testing.TB, gpus, models int) *loopDriver {
	s, err := New(DefaultConfig())
	if err != nil {
		tb.Fatal(err)
	}
	d := &loopDriver{s: s, rng: rand.New(rand.NewPCG(1, 2)), models: models, due: make([]due, 0, 1<<16)}
	for g := range gpus {
		d.step(&Event{Kind: EvAddGPU, GPU: int32(g), Worker: int32(g / 4), Pages: 1 << 20})
	}
	for m := range models {
		d.step(&Event{Kind: EvAddModel, Spec: &ModelSpec{ID: int32(m), Batches: []int32{1, 2, 4, 8, 16},
			ExecNs: []int64{1e6, 1.3e6, 1.8e6, 3e6, 5.5e6}, LoadNs: 2e6, Pages: 4}})
	}
	return d
}

func (d *loopDriver) step(ev *Event) {
	acts := d.s.Step(d.now, ev)
	for i := range acts {
		a := &acts[i]
		switch a.Kind {
		case ActInfer, ActLoad:
			d.push(due{at: max(d.now, a.EarliestNs) + a.ExpectedNs, id: a.ID, dur: a.ExpectedNs})
		case ActRespond:
			d.answers++
		}
	}
}

// request submits one request at gapNs after the last, delivering due results first.
func (d *loopDriver) request(gapNs int64) {
	d.now += gapNs
	for len(d.due) > 0 && d.due[0].at <= d.now {
		x := d.pop()
		d.ev = Event{Kind: EvResult, Action: x.id, OK: true, DurNs: x.dur, EndNs: x.at}
		d.step(&d.ev)
	}
	d.nextID++
	d.ev = Event{Kind: EvSubmit, Request: d.nextID, Model: int32(d.rng.IntN(d.models)), DeadlineNs: d.now + 100e6}
	d.step(&d.ev)
}

func TestStepAllocs(t *testing.T) {
	d := newLoopDriver(t, 32, 64)
	for range 20000 { // warm up: load every model, grow every buffer
		d.request(20e3)
	}
	allocs := testing.AllocsPerRun(5000, func() { d.request(20e3) })
	if allocs > 0.01 {
		t.Fatalf("%.3f allocations per request in steady state, want 0", allocs)
	}
}

// BenchmarkStep measures scheduler decisions: one submit plus its share of results per op,
// at 50,000 requests/s offered to 32 GPUs over 256 models.
func BenchmarkStep(b *testing.B) {
	d := newLoopDriver(b, 32, 256)
	for range 50000 {
		d.request(20e3)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := d.answers
	for b.Loop() {
		d.request(20e3)
	}
	b.ReportMetric(float64(d.answers-start)/float64(b.N), "answers/op")
}
