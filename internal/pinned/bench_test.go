package pinned

import "testing"

// BenchmarkAlloc1GiB: map, mlock and pre-fault 1 GiB, then free it; with 4 KiB pages, with
// transparent huge pages. The pre-fault (the kernel zeroing and locking every page) dominates.
func BenchmarkAlloc1GiB(b *testing.B) {
	const n = 1 << 30
	if err := CheckLimit(n); err != nil {
		b.Skipf("cannot lock 1 GiB here: %v", err)
	}
	for _, c := range []struct {
		name string
		huge Huge
	}{{"4k", HugeNone}, {"thp", HugeTransparent}} {
		b.Run(c.name, func(b *testing.B) {
			p := NewPool(Config{Huge: c.huge})
			b.SetBytes(n)
			for b.Loop() {
				buf, err := p.Alloc(n, Weights)
				if err != nil {
					b.Fatal(err)
				}
				if err := buf.Free(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
