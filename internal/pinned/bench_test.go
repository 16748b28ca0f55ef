package pinned

import (
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkAlloc1GiB: map, mlock and pre-fault 1 GiB, then free it; with 4 KiB pages, with
// transparent huge pages; and, as the baseline, an unlocked mapping faulted in by writing one
// byte per 4 KiB page. The pre-fault (the kernel zeroing every page) dominates all three.
func BenchmarkAlloc1GiB(b *testing.B) {
	const n = 1 << 30
	if err := CheckLimit(n); err != nil {
		b.Skipf("cannot lock 1 GiB here: %v", err)
	}
	b.Run("baseline-touch", func(b *testing.B) {
		b.SetBytes(n)
		for b.Loop() {
			m, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
			if err != nil {
				b.Fatal(err)
			}
			for i := 0; i < n; i += 4096 {
				m[i] = 1
			}
			if err := unix.Munmap(m); err != nil {
				b.Fatal(err)
			}
		}
	})
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
