package worker

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/clockwork-go/clockwork/wire"
)

// inBubble runs a worker and a controller over net.Pipe inside a synctest bubble, where the
// clock moves only when everything waits: sleeps are exact, so window bounds can be tested to
// the nanosecond.
func inBubble(t *testing.T, gpus int, f func(k *ctl)) {
	synctest.Test(t, func(t *testing.T) {
		clock := func() int64 { return time.Now().UnixNano() }
		cfg := testConfig(gpus)
		cfg.Clock = clock
		w, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		a, b := bufPipe()
		done := make(chan error, 1)
		go func() { done <- w.ServeConn(ctx, a) }()
		k := dialConn(t, b, clock)
		f(k)
		cancel()
		k.c.Abort()
		<-done
		if err := w.Close(); err != nil {
			t.Error(err)
		}
	})
}

// collect reads n Results, keyed by action id.
func (k *ctl) collect(n int) map[uint64]wire.Result {
	k.t.Helper()
	out := map[uint64]wire.Result{}
	for range n {
		k.mustRecv(wire.TypeResult)
		out[k.res.ActionID] = k.res
	}
	return out
}

func TestWindowBounds(t *testing.T) {
	inBubble(t, 1, func(k *ctl) {
		t := k.t
		k.register(1, "fast")
		if st := k.load(1, 0); st != wire.StatusOK {
			t.Fatal(st)
		}
		in := make([]byte, 4*64)
		E := k.clock() + int64(10*time.Millisecond)
		const execB4 = 200_000 // "fast" at batch 4
		type inf struct {
			earliest, latest int64
			batch            int
			want             wire.Status
			start            int64 // expected exec start; 0: not run
		}
		cases := []inf{
			// A single action starts exactly at earliest, even when latest == earliest.
			{E, E, 4, wire.StatusOK, E},
			// Behind A on the exec lane it could start only at E+200µs: one ns too late.
			{E, E + execB4 - 1, 1, wire.StatusWindowPassed, 0},
			// Round 2: the same with latest exactly at the reachable start: it runs, then.
			{E + 1e7, E + 1e7, 4, wire.StatusOK, E + 1e7},
			{E + 1e7, E + 1e7 + execB4, 1, wire.StatusOK, E + 1e7 + execB4},
			// Far from others: never before earliest.
			{E + 5e7, E + 6e7, 2, wire.StatusOK, E + 5e7},
		}
		ids := make([]uint64, len(cases))
		for i, c := range cases {
			k.id++
			ids[i] = k.id
			k.send(&wire.Infer{Window: wire.Window{ActionID: k.id, ModelID: 1, EarliestNs: c.earliest, LatestNs: c.latest}, Batch: uint16(c.batch)}, in[:64*c.batch])
		}
		got := k.collect(len(cases))
		for i, c := range cases {
			r := got[ids[i]]
			if r.Status != c.want {
				t.Errorf("case %d: %s, want %s", i, &r, c.want)
				continue
			}
			if c.start != 0 {
				if s := r.Phases[wire.PhaseExec].StartNs; s != c.start {
					t.Errorf("case %d: exec started at E%+d ns, want E%+d", i, s-E, c.start-E)
				}
				// The input copy is eligible InputLeadNs before earliest (later by at most the
				// copy ahead of it on the input lane: 26 ns here).
				if s := r.Phases[wire.PhaseInput].StartNs; s < c.earliest-DefaultInputLeadNs || s > c.earliest-DefaultInputLeadNs+100 {
					t.Errorf("case %d: input started at earliest%+d ns, want -%d", i, s-c.earliest, DefaultInputLeadNs)
				}
			}
		}
		// LOAD is held to its window too: latest already passed, and a future earliest is met
		// exactly.
		now := k.clock()
		if r := k.do(&wire.EvictWeights{Window: wire.Window{ActionID: 900, ModelID: 1, EarliestNs: now - 2, LatestNs: now - 1}}, nil); r.Status != wire.StatusWindowPassed {
			t.Fatalf("late UNLOAD: %s", r)
		}
		if r := k.do(&wire.EvictWeights{Window: wire.Window{ActionID: 901, ModelID: 1, EarliestNs: now + 1e6, LatestNs: now + 1e6}}, nil); r.Status != wire.StatusOK || r.Phases[wire.PhaseWeights].StartNs != now+1e6 {
			t.Fatalf("UNLOAD at its exact window: %s", r)
		}
	})
}

// TestLaterActionWakesExecutor: an executor sleeping towards a far action wakes for an earlier
// one that arrives meanwhile.
func TestLaterActionWakesExecutor(t *testing.T) {
	inBubble(t, 1, func(k *ctl) {
		k.register(1, "fast")
		k.load(1, 0)
		now := k.clock()
		in := make([]byte, 64)
		k.send(&wire.Infer{Window: wire.Window{ActionID: 1, ModelID: 1, EarliestNs: now + 1e9, LatestNs: now + 2e9}, Batch: 1}, in)
		synctest.Wait()
		k.send(&wire.Infer{Window: wire.Window{ActionID: 2, ModelID: 1, EarliestNs: now + 1e7, LatestNs: now + 2e7}, Batch: 1}, in)
		k.mustRecv(wire.TypeResult)
		if k.res.ActionID != 2 || k.res.Status != wire.StatusOK || k.res.Phases[wire.PhaseExec].StartNs != now+1e7 {
			k.t.Fatalf("first result: %s", &k.res)
		}
		k.mustRecv(wire.TypeResult)
		if k.res.ActionID != 1 || k.res.Phases[wire.PhaseExec].StartNs != now+1e9 {
			k.t.Fatalf("second result: %s", &k.res)
		}
	})
}

// TestUnloadWhilePinned: UNLOAD during a running INFER answers OK at once, makes the model
// not-loaded for new INFERs, and frees its pages (alloc.Cache eviction) when the INFER ends.
func TestUnloadWhilePinned(t *testing.T) {
	inBubble(t, 1, func(k *ctl) {
		t := k.t
		k.register(5, "big") // 5 pages, 100 µs exec
		if st := k.load(5, 0); st != wire.StatusOK {
			t.Fatal(st)
		}
		E := k.clock() + int64(10*time.Millisecond)
		k.send(&wire.Infer{Window: wire.Window{ActionID: 1, ModelID: 5, EarliestNs: E, LatestNs: E}, Batch: 1}, make([]byte, 64))
		k.send(&wire.EvictWeights{Window: wire.Window{ActionID: 2, ModelID: 5, EarliestNs: E + 50_000, LatestNs: E + 50_000}}, nil)
		k.send(&wire.GetWorkerState{ActionID: 3}, nil)
		// The UNLOAD answers first (at E+50µs), while the INFER still holds the pages.
		k.mustRecv(wire.TypeWorkerState)
		k.mustRecv(wire.TypeResult)
		if k.res.ActionID != 2 || k.res.Status != wire.StatusOK {
			t.Fatalf("unload: %s", &k.res)
		}
		k.send(&wire.GetWorkerState{ActionID: 4}, nil)
		k.mustRecv(wire.TypeWorkerState)
		if g := k.state.GPUs[0]; g.FreePages != 2 || len(g.Models) != 0 {
			t.Fatalf("during the INFER: %s (want 2 free pages, no model ready)", &k.state)
		}
		k.mustRecv(wire.TypeResult)
		if k.res.ActionID != 1 || k.res.Status != wire.StatusOK {
			t.Fatalf("infer: %s", &k.res)
		}
		k.send(&wire.GetWorkerState{ActionID: 5}, nil)
		k.mustRecv(wire.TypeWorkerState)
		if g := k.state.GPUs[0]; g.FreePages != 7 {
			t.Fatalf("after the INFER: %s (want all 7 pages free)", &k.state)
		}
		if st := k.load(5, 0); st != wire.StatusOK {
			t.Fatalf("reload: %s", st)
		}
	})
}

// TestShutdownMidInfer: at shutdown an INFER already executing completes and is answered with
// its output; one not yet started is answered shutting-down; then the worker says goodbye.
func TestShutdownMidInfer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := func() int64 { return time.Now().UnixNano() }
		cfg := testConfig(1)
		cfg.Clock = clock
		w, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		a, b := bufPipe()
		done := make(chan error, 1)
		go func() { done <- w.ServeConn(ctx, a) }()
		k := dialConn(t, b, clock)
		k.register(1, "fast")
		k.load(1, 0)
		E := clock() + int64(10*time.Millisecond)
		k.send(&wire.Infer{Window: wire.Window{ActionID: 1, ModelID: 1, EarliestNs: E, LatestNs: E}, Batch: 4}, make([]byte, 256))
		k.send(&wire.Infer{Window: wire.Window{ActionID: 2, ModelID: 1, EarliestNs: E + 1e9, LatestNs: E + 2e9}, Batch: 1}, make([]byte, 64))
		time.Sleep(time.Duration(E + 100_000 - clock())) // halfway through action 1's 200 µs exec
		cancel()
		got := k.collect(2)
		if r := got[1]; r.Status != wire.StatusOK || r.Phases[wire.PhaseOutput].EndNs == 0 {
			t.Errorf("running INFER: %s", &r)
		}
		if r := got[2]; r.Status != wire.StatusShuttingDown {
			t.Errorf("queued INFER: %s", &r)
		}
		if _, err := k.recv(); err == nil {
			t.Error("no goodbye")
		}
		<-done
		w.Close()
	})
}
