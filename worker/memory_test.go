package worker

import (
	"testing"
	"time"

	"github.com/clockwork-go/clockwork/internal/pinned"
	"github.com/clockwork-go/clockwork/wire"
)

// TestHostClasses: every size gets a buffer at least as large and at most 25 % larger (past
// 4 KiB), and every class size maps back to its class.
func TestHostClasses(t *testing.T) {
	for c := range numClasses {
		if got := classOf(int(classBytes(c))); got != c {
			t.Fatalf("classOf(classBytes(%d) = %d) = %d", c, classBytes(c), got)
		}
	}
	for _, n := range []int{1, 4096, 4097, 5120, 5121, 1 << 20, 602112 + 4000, 16*602112 + 16*4000, 1<<30 + 1} {
		sz := classBytes(classOf(n))
		if sz < int64(n) || (n > 4096 && float64(sz) > 1.25*float64(n)) {
			t.Errorf("%d bytes get a %d-byte buffer", n, sz)
		}
	}
}

// TestHostPoolSharesTheLimit: a pool that grew to its limit for one size still serves another
// by releasing idle buffers. Before, a class with no idle buffer failed for good once other
// classes held the limit (no-memory for every INFER of that size while memory sat idle).
func TestHostPoolSharesTheLimit(t *testing.T) {
	p := &hostPool{limit: 3 << 20, pinned: pinned.NewPool(pinned.Config{})}
	defer p.close()
	a, b := p.get(1<<20), p.get(1<<20)
	if a == nil || b == nil {
		t.Fatal("two 1 MiB buffers within 3 MiB refused")
	}
	p.put(a)
	p.put(b)
	big := p.get(2<<20 + 1) // 2.5 MiB class: needs both idle 1 MiB buffers released
	if big == nil {
		t.Fatal("2.5 MiB buffer refused while 2 MiB sat idle under a 3 MiB limit")
	}
	if _, _, carves, releases := p.stats(); carves != 3 || releases != 2 {
		t.Fatalf("carves %d releases %d, want 3 and 2", carves, releases)
	}
	if p.get(1<<20) != nil {
		t.Fatal("1 MiB buffer over the limit: 0.5 MiB free and nothing idle")
	}
	if c := p.get(512 << 10); c == nil {
		t.Fatal("0.5 MiB buffer refused with 0.5 MiB free")
	}
	p.put(big)
	if p.used > p.limit {
		t.Fatalf("used %d over limit %d", p.used, p.limit)
	}
}

// TestSynthInferTakesNoHostBuffer: INFERs with synthesised input and no output carry no bytes
// over the socket, so they take no host buffer. Before, each took one of input + output bytes
// from decode to answer; in BenchmarkSimCluster (resnet18, batches up to 16) the reader mapped
// and locked ~350 MiB per worker on the action path, and INFERs missed their windows.
func TestSynthInferTakesNoHostBuffer(t *testing.T) {
	cfg := testConfig(1)
	cfg.HostIOBytes = 4 << 10 // one 4 KiB buffer: real INFERs would contend for it
	w := startWorker(t, cfg)
	k := dial(t, w)
	k.register(1, "fast")
	k.load(1, 0)
	_, _, carved, _ := w.host.stats()
	const n = 16
	for range n { // held in the queue together: 50 ms ahead
		k.send(&wire.Infer{Window: k.window(1, 0, 50*time.Millisecond, time.Second), Batch: 4, Flags: wire.InferSynthInput | wire.InferNoOutput}, nil)
	}
	for i := range n {
		k.mustRecv(wire.TypeResult)
		if k.res.Status != wire.StatusOK || len(k.out) != 0 {
			t.Fatalf("synthesised INFER %d: %s, %d output bytes", i, &k.res, len(k.out))
		}
	}
	if _, _, c, _ := w.host.stats(); c != carved {
		t.Fatalf("synthesised INFERs carved %d host buffers", c-carved)
	}
	// Synthesised input with an output: a buffer of the output only (4 × 16 bytes).
	r := k.do(&wire.Infer{Window: k.window(1, 0, 0, time.Second), Batch: 4, Flags: wire.InferSynthInput}, nil)
	if r.Status != wire.StatusOK || len(k.out) != 4*16 {
		t.Fatalf("synthesised INFER with output: %s, %d output bytes", r, len(k.out))
	}
}

// TestHostIOWarm: with HostIOWarm, registration carves one buffer per size class its batch
// sizes need ("fast" and "big": 80 to 320 bytes, all in the one 4 KiB class, so one buffer);
// without it, none until the first INFER.
func TestHostIOWarm(t *testing.T) {
	for _, warm := range []bool{false, true} {
		cfg := testConfig(1)
		cfg.HostIOWarm = warm
		w := startWorker(t, cfg)
		k := dial(t, w)
		k.register(1, "fast")
		k.register(5, "big")
		_, _, carves, _ := w.host.stats()
		if want := map[bool]int{false: 0, true: 1}[warm]; carves != want {
			t.Errorf("HostIOWarm %v: %d buffers carved at registration, want %d", warm, carves, want)
		}
		k.load(1, 0)
		if r := k.infer(1, 0, 4, make([]byte, 4*64)); r.Status != wire.StatusOK {
			t.Fatal(r)
		}
		if _, _, carves, _ = w.host.stats(); carves != 1 {
			t.Errorf("HostIOWarm %v: %d buffers after an INFER, want 1", warm, carves)
		}
	}
}
