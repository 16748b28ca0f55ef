package sched

import (
	"testing"
)

// FuzzStep feeds the scheduler arbitrary event sequences, including nonsense (unknown ids,
// results for actions never issued, duplicate requests, out-of-range classes and GPUs). It
// must never panic (under the invariants tag every Step also checks its invariants) and must
// answer each accepted request exactly once.
func FuzzStep(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	f.Add([]byte{1, 1, 1, 1, 2, 2, 2, 3, 3, 0, 0, 4, 5, 6, 1, 1, 1, 7, 200, 100})
	f.Fuzz(fuzzBody)
}

func fuzzBody(t *testing.T, ops []byte) {
	{
		s, err := New(DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		now := int64(0)
		answered := map[uint64]int{}
		submitted := map[uint64]bool{}
		var issued []uint64
		step := func(ev *Event) {
			for _, a := range s.Step(now, ev) {
				switch a.Kind {
				case ActRespond:
					answered[a.Request]++
					if answered[a.Request] > 1 {
						t.Fatalf("request %d answered twice", a.Request)
					}
				case ActInfer, ActLoad, ActEvict:
					issued = append(issued, a.ID)
				}
			}
		}
		for m := range 3 {
			step(&Event{Kind: EvAddModel, Spec: &ModelSpec{ID: int32(m), Batches: []int32{1, 4}, ExecNs: []int64{1e6, 2e6}, LoadNs: 2e6, Pages: int32(1 + m)}})
		}
		step(&Event{Kind: EvAddGPU, GPU: 0, Worker: 0, Pages: 4})
		var id uint64
		for i := 0; i+1 < len(ops); i += 2 {
			op, arg := ops[i]%8, ops[i+1]
			now += int64(arg) * 100e3
			switch op {
			case 0, 1:
				id++
				submitted[id] = true
				step(&Event{Kind: EvSubmit, Request: id, Model: int32(arg % 4), Class: arg % 5, DeadlineNs: now + int64(arg)*1e6})
			case 2:
				step(&Event{Kind: EvTick})
			case 3, 4:
				if len(issued) > 0 {
					a := issued[int(arg)%len(issued)]
					step(&Event{Kind: EvResult, Action: a, OK: op == 3, DurNs: int64(arg) * 20e3, EndNs: now})
				} else {
					step(&Event{Kind: EvResult, Action: uint64(arg) << 32})
				}
			case 5:
				step(&Event{Kind: EvCancel, Request: uint64(arg)})
			case 6:
				step(&Event{Kind: EvWorkerLost, Worker: int32(arg % 2)})
			case 7:
				step(&Event{Kind: EvAddGPU, GPU: int32(arg % 3), Worker: int32(arg % 2), Pages: int32(arg % 8)})
			}
		}
		// Lose every worker and let time pass: everything left must be answered.
		step(&Event{Kind: EvWorkerLost, Worker: 0})
		step(&Event{Kind: EvWorkerLost, Worker: 1})
		now += 1e12
		step(&Event{Kind: EvTick})
		for r := range submitted {
			if answered[r] != 1 {
				t.Fatalf("request %d answered %d times", r, answered[r])
			}
		}
		if s.Live() != 0 {
			t.Fatalf("%d requests still live", s.Live())
		}
	}
}
