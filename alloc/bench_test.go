package alloc

import (
	"strconv"
	"testing"
)

// BenchmarkPageAllocFree: one Alloc and one Free of a page in a cache of 80 GiB / 16 MiB.
// Goal: ≤ 50 ns, 0 allocs.
func BenchmarkPageAllocFree(b *testing.B) {
	c, err := NewCache(CacheConfig{Size: 80 << 30})
	if err != nil {
		b.Fatal(err)
	}
	// Hold half the pages so the free stack is not trivially at its start.
	for range c.TotalPages() / 2 {
		if _, err := c.Alloc(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		p, err := c.Alloc()
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Free(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPinUnpin: what an INFER does to the cache: pin, read its page addresses, unpin.
func BenchmarkPinUnpin(b *testing.B) {
	c, err := NewCache(CacheConfig{Size: 80 << 30})
	if err != nil {
		b.Fatal(err)
	}
	r, err := c.Load(1, 7, nil) // ResNet-50
	if err != nil {
		b.Fatal(err)
	}
	addrs := make([]uint64, 0, 7)
	b.ReportAllocs()
	for b.Loop() {
		_ = c.Pin(r)
		addrs, _ = c.AppendAddrs(addrs[:0], r)
		_ = c.Unpin(r)
	}
}

// BenchmarkLoadEvict: a 7-page load and evict (no runs), and a 26-page load with a 25-page run
// (VGG-16) in a cache that is 1/3 full of small models, which scans the page table.
func BenchmarkLoadEvict(b *testing.B) {
	for _, bc := range []struct {
		name  string
		pages int
		runs  []Run
	}{{"resnet50-7p", 7, nil}, {"vgg16-run25", 35, []Run{{First: 0, Pages: 25}}}} {
		b.Run(bc.name, func(b *testing.B) {
			c, err := NewCache(CacheConfig{Size: 80 << 30})
			if err != nil {
				b.Fatal(err)
			}
			for id := ModelID(100); c.FreePages() > 2*c.TotalPages()/3; id++ {
				if _, err := c.Load(id, 3, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Load(1, bc.pages, bc.runs); err != nil {
					b.Fatal(err)
				}
				if err := c.Evict(1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkArenaAllocFree: one Alloc and one Free with live buffers already in the arena (the
// IO arena with a few INFERs in flight).
func BenchmarkArenaAllocFree(b *testing.B) {
	for _, live := range []int{0, 4, 16} {
		b.Run("live="+strconv.Itoa(live), func(b *testing.B) {
			a, err := NewArena(ArenaConfig{Name: "io", Size: 1 << 30})
			if err != nil {
				b.Fatal(err)
			}
			for range live {
				if _, err := a.Alloc(602112); err != nil { // one 224×224×3 fp32 input
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				buf, err := a.Alloc(602112)
				if err != nil {
					b.Fatal(err)
				}
				if err := a.Free(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
