package worker

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/clockwork-go/clockwork/internal/invariants"
	"github.com/clockwork-go/clockwork/wire"
)

func testSeed(t testing.TB) uint64 {
	if s := os.Getenv("TEST_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	v := uint64(time.Now().UnixNano())
	t.Logf("TEST_SEED=%d", v)
	return v
}

// TestOneInferPerGPU floods 4 GPUs with INFERs all eligible at once from two controllers and
// checks that no two executions on one GPU overlap (the exec guard also panics under
// invariants if they do).
func TestOneInferPerGPU(t *testing.T) {
	if !invariants.Enabled {
		t.Log("without -tags invariants only the result spans are checked")
	}
	cfg := testConfig(4)
	cfg.IOSlotBytes = 4 << 10 // 2048 slots: every INFER may have its input copied at once
	w := startWorker(t, cfg)
	ks := []*ctl{dial(t, w), dial(t, w)}
	ks[0].register(1, "fast")
	for g := range 4 {
		if st := ks[0].load(1, g); st != wire.StatusOK {
			t.Fatal(st)
		}
	}
	rng := rand.New(rand.NewPCG(testSeed(t), 1))
	const n = 400
	in := make([]byte, 4*64)
	done := make(chan []wire.Result, 2)
	for _, k := range ks {
		go func() {
			var out []wire.Result
			for range n {
				r, err := k.recv()
				if err != nil || r != wire.TypeResult {
					break
				}
				out = append(out, k.res)
			}
			done <- out
		}()
	}
	for i := range 2 * n {
		k := ks[i%2]
		b := []int{1, 2, 4}[rng.IntN(3)]
		now := UnixMonoClock()
		k.send(&wire.Infer{Window: wire.Window{ActionID: uint64(i + 1), ModelID: 1, GPU: uint16(rng.IntN(4)), EarliestNs: now, LatestNs: now + int64(time.Minute)}, Batch: uint16(b)}, in[:64*b])
	}
	spans := map[uint16][]wire.Span{}
	for range 2 {
		rs := <-done
		if len(rs) != n {
			t.Fatalf("%d results, want %d", len(rs), n)
		}
		for _, r := range rs {
			if r.Status != wire.StatusOK {
				t.Fatalf("%s", &r)
			}
			spans[r.GPU] = append(spans[r.GPU], r.Phases[wire.PhaseExec])
		}
	}
	for g, ss := range spans {
		for i := range ss {
			for j := range i {
				a, b := ss[i], ss[j]
				if a.StartNs < b.EndNs && b.StartNs < a.EndNs {
					t.Fatalf("gpu %d: exec spans %v and %v overlap", g, a, b)
				}
			}
		}
	}
}

// TestInferAllocs: a whole INFER (send, decode, queue, three lanes, result, receive) over
// loopback TCP allocates nothing in steady state, in the worker or the test's controller.
func TestInferAllocs(t *testing.T) {
	cfg := testConfig(1)
	cfg.SpinNs = 0
	w := startWorker(t, cfg)
	k := dial(t, w)
	k.register(1, "fast")
	k.load(1, 0)
	in := make([]byte, 4*64)
	m := &wire.Infer{Batch: 4}
	run := func() {
		k.id++
		now := UnixMonoClock()
		m.Window = wire.Window{ActionID: k.id, ModelID: 1, EarliestNs: now, LatestNs: now + int64(time.Minute)}
		if err := k.c.Send(m, in); err != nil {
			t.Fatal(err)
		}
		if typ, err := k.recv(); err != nil || typ != wire.TypeResult || k.res.Status != wire.StatusOK {
			t.Fatalf("%v %v %s", typ, err, &k.res)
		}
	}
	for range 200 {
		run()
	}
	if n := testing.AllocsPerRun(300, run); n != 0 {
		t.Fatalf("%v allocations per INFER", n)
	}
	// Synthesised input, no output: no payload either way, no host buffer.
	m.Flags, in = wire.InferSynthInput|wire.InferNoOutput, nil
	for range 50 {
		run()
	}
	if n := testing.AllocsPerRun(300, run); n != 0 {
		t.Fatalf("%v allocations per synthesised INFER", n)
	}
}

// FuzzActions throws arbitrary action streams (valid frames, arbitrary fields) and then raw
// bytes at a worker. Every windowed action must be answered exactly once, and the worker must
// still answer a state query afterwards.
func FuzzActions(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20})
	f.Add([]byte("\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x01\x00"))
	var w *Worker
	f.Fuzz(func(t *testing.T, data []byte) {
		if w == nil {
			cfg := testConfig(2)
			cfg.InputLeadNs = 1000
			var err error
			if w, err = New(cfg); err != nil {
				t.Fatal(err)
			}
			go w.Run(context.Background()) //nolint: the fuzz worker lives for the process
		}
		k := dial(t, w)
		k.register(1, "fast")
		k.register(2, "big")
		answered := map[uint64]int{}
		want := 0
		rd := func(n int) uint64 {
			var b [8]byte
			copy(b[:], data)
			if len(data) > n {
				data = data[n:]
			} else {
				data = nil
			}
			return binary.LittleEndian.Uint64(b[:])
		}
		in := make([]byte, 8*64)
		for i := 0; len(data) > 0 && i < 64; i++ {
			op := rd(1) % 6
			model := uint32(rd(1) % 4)
			gpu := uint16(rd(1) % 3)
			now := UnixMonoClock()
			e := now + int64(rd(1)%32-8)*int64(time.Millisecond)/4
			l := e + int64(rd(1)%32-4)*int64(time.Millisecond)/4
			k.id++
			win := wire.Window{ActionID: k.id, ModelID: model, GPU: gpu, EarliestNs: e, LatestNs: l}
			switch op {
			case 0:
				k.send(&wire.LoadWeights{Window: win}, nil)
			case 1:
				k.send(&wire.EvictWeights{Window: win}, nil)
			case 2, 3:
				b := int(rd(1) % 6)
				n := 64 * b
				if x := rd(1) % 8; x == 0 {
					n = int(rd(1) % 512)
				}
				flags := wire.InferFlags(rd(1) % 4)
				if flags&wire.InferSynthInput != 0 {
					n = 0
				}
				k.send(&wire.Infer{Window: win, Batch: uint16(b), Flags: flags}, in[:n])
			case 4:
				k.send(&wire.ClearCache{ActionID: k.id, GPU: []uint16{0, 1, 5, wire.AllGPUs}[rd(1)%4]}, nil)
			case 5:
				k.send(&wire.LoadWeights{Window: wire.Window{ActionID: k.id, ModelID: model, GPU: gpu, EarliestNs: now, LatestNs: now + 1e9}}, nil)
			}
			want++
		}
		deadline := time.Now().Add(30 * time.Second)
		for len(answered) < want && time.Now().Before(deadline) {
			typ, err := k.recv()
			if err != nil {
				t.Fatal(err)
			}
			if typ == wire.TypeResult {
				answered[k.res.ActionID]++
				if answered[k.res.ActionID] > 1 {
					t.Fatalf("action %d answered twice", k.res.ActionID)
				}
			}
		}
		if len(answered) != want {
			t.Fatalf("%d of %d actions answered", len(answered), want)
		}
		k.send(&wire.ClearCache{ActionID: 1 << 60, GPU: wire.AllGPUs}, nil)
		k.mustRecv(wire.TypeResult)
		// Raw bytes after a valid hello end this connection, never the worker.
		if len(data) > 0 {
			_, _ = k.c.NetConn().Write(data)
		}
		k.c.Abort()
		k2 := dial(t, w)
		k2.send(&wire.GetWorkerState{ActionID: 1}, nil)
		k2.mustRecv(wire.TypeWorkerState)
		if len(k2.state.GPUs) != 2 {
			t.Fatal(fmt.Sprint(&k2.state))
		}
		k2.c.Abort()
	})
}
