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
