package sched

import "fmt"

// check verifies the scheduler's invariants; it runs after every Step under the invariants
// build tag and panics with a BUG message on the first violation.
func (s *Scheduler) check() {
	for _, g := range s.gpus {
		if !g.alive {
			continue
		}
		used := int32(0)
		for x := g.head; x >= 0; x = s.insts[x].next {
			in := &s.insts[x]
			if in.gpu != g.id || in.state == instFree {
				panic(fmt.Sprintf("BUG: GPU %d LRU holds instance %d of GPU %d state %d", g.id, x, in.gpu, in.state))
			}
			used += s.models[in.model].spec.Pages
		}
		if used+g.free != g.total || g.free < 0 {
			panic(fmt.Sprintf("BUG: GPU %d pages not conserved: used %d + free %d != total %d", g.id, used, g.free, g.total))
		}
		if g.loads < 0 || g.loads > s.cfg.MaxLoadsPerGPU {
			panic(fmt.Sprintf("BUG: GPU %d has %d loads in flight, max %d", g.id, g.loads, s.cfg.MaxLoadsPerGPU))
		}
	}
	queued, flying := 0, 0
	for i := range s.reqs {
		switch s.reqs[i].state {
		case reqQueued:
			queued++
		case reqFlight:
			flying++
		}
	}
	if queued+flying != len(s.byID) {
		panic(fmt.Sprintf("BUG: %d queued + %d in flight requests but %d live ids", queued, flying, len(s.byID)))
	}
	pending := 0
	for _, m := range s.models {
		if m == nil {
			continue
		}
		live := int32(0)
		for c := range m.queues {
			live += m.queues[c].live
		}
		if live != m.pending || m.copies != int32(len(m.insts)) {
			panic(fmt.Sprintf("BUG: model %d: queues hold %d live, pending %d; copies %d, instances %d",
				m.id, live, m.pending, m.copies, len(m.insts)))
		}
		pending += int(live)
	}
	if pending != queued {
		panic(fmt.Sprintf("BUG: queues hold %d live requests, %d are in the queued state", pending, queued))
	}
	for i := range s.out {
		a := &s.out[i]
		if a.Kind != ActInfer {
			continue
		}
		if a.LatestNs < a.EarliestNs {
			panic(fmt.Sprintf("BUG: INFER %d window [%d, %d] empty", a.ID, a.EarliestNs, a.LatestNs))
		}
		for _, id := range a.Requests {
			r := &s.reqs[s.byID[id]]
			if a.LatestNs+a.ExpectedNs > r.deadline+s.cfg.MarginNs/2 || a.LatestNs+a.ExpectedNs > r.real {
				panic(fmt.Sprintf("BUG: INFER %d may end at %d, after request %d's planning deadline %d + half the margin or its deadline %d",
					a.ID, a.LatestNs+a.ExpectedNs, id, r.deadline, r.real))
			}
		}
	}
}
