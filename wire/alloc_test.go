package wire

import (
	"testing"

	"github.com/clockwork-go/clockwork/internal/invariants"
)

func TestCodecAllocs(t *testing.T) {
	if invariants.Enabled && testing.Short() {
		t.Skip("short")
	}
	typical, _ := examples()
	buf := make([]byte, 0, 64<<10)
	for _, e := range typical {
		enc := AppendFrame(nil, e.msg, 1, 2, 0)
		reused := New(e.msg.Type())
		var h Header
		// First decode grows the reused message's slices.
		if _, err := h.Decode(enc); err != nil {
			t.Fatal(err)
		}
		if err := DecodeMessage(reused, enc[HeaderSize:]); err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(100, func() { buf = AppendFrame(buf[:0], e.msg, 1, 2, 0) }); n != 0 {
			t.Errorf("%s: encode allocates %.1f times", e.name, n)
		}
		if n := testing.AllocsPerRun(100, func() {
			rest, err := h.Decode(enc)
			if err != nil {
				t.Fatal(err)
			}
			if err := DecodeMessage(reused, rest[:h.HeaderLen]); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: decode into a reused message allocates %.1f times", e.name, n)
		}
	}
}

func BenchmarkInferCodec(b *testing.B) {
	m := &Infer{Window: Window{ActionID: 77, ModelID: 3, GPU: 1, EarliestNs: 1 << 60, LatestNs: 1<<60 + 2e6, ExpectedNs: 1.8e6}, Batch: 8}
	buf := make([]byte, 0, 256)
	var h Header
	var out Infer
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendFrame(buf[:0], m, 123, 45, 8*602112)
		rest, err := h.Decode(buf)
		if err != nil {
			b.Fatal(err)
		}
		if err := DecodeMessage(&out, rest[:h.HeaderLen]); err != nil {
			b.Fatal(err)
		}
	}
	if out != *m {
		b.Fatalf("round trip: %v != %v", out, m)
	}
}

// TestConnAllocs: sending and receiving frames over a Conn, including reading a payload into the
// consumer's destination, allocates nothing in steady state (both sides, all goroutines: the
// counter is process-wide).
func TestConnAllocs(t *testing.T) {
	a, b := connectedPair(t, cfgFor(RoleController, ""), cfgFor(RoleWorker, ""))
	small := make([]byte, 4096)
	big := make([]byte, 602112)
	dst := make([]byte, len(big))
	m := &Infer{Window: Window{ActionID: 1, ModelID: 2}, Batch: 1}
	var got Infer
	bigSent := make(chan struct{})
	bigGo := make(chan struct{})
	go func() {
		for range bigGo {
			a.Send(m, big)
			bigSent <- struct{}{}
		}
	}()
	defer close(bigGo)
	roundTrip := func(payload []byte) {
		if len(payload) == len(big) {
			bigGo <- struct{}{}
		} else if err := a.Send(m, payload); err != nil {
			t.Fatal(err)
		}
		h, err := b.Next()
		if err != nil {
			t.Fatal(err)
		}
		if err := b.DecodeInto(&got); err != nil {
			t.Fatal(err)
		}
		if err := b.ReadPayload(dst[:h.PayloadLen]); err != nil {
			t.Fatal(err)
		}
		if len(payload) == len(big) {
			<-bigSent
		}
	}
	for _, p := range [][]byte{nil, small, big} {
		roundTrip(p) // warm up: queues and buffers grow
		if n := testing.AllocsPerRun(200, func() { roundTrip(p) }); n != 0 {
			t.Errorf("%d-byte payload: %.2f allocations per frame", len(p), n)
		}
	}
}
