package alloc

import "testing"

// The hot paths allocate nothing: page alloc/free, pin/unpin, page addresses into a reused
// slice, state into a reused CacheState, arena alloc/free.
func TestAllocsPerRun(t *testing.T) {
	c := mustCache(t, 64)
	r, err := c.Load(1, 8, []Run{{First: 2, Pages: 3}})
	if err != nil {
		t.Fatal(err)
	}
	addrs := make([]uint64, 0, 8)
	var st CacheState
	c.State(&st)
	a, err := NewArena(ArenaConfig{Name: "io", Size: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	keep, _ := a.Alloc(1000) // so the arena's scan has something to step over
	for name, f := range map[string]func(){
		"page alloc+free": func() {
			p, err := c.Alloc()
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Free(p); err != nil {
				t.Fatal(err)
			}
		},
		"pin+unpin+addrs": func() {
			if err := c.Pin(r); err != nil {
				t.Fatal(err)
			}
			var err error
			if addrs, err = c.AppendAddrs(addrs[:0], r); err != nil {
				t.Fatal(err)
			}
			if err := c.Unpin(r); err != nil {
				t.Fatal(err)
			}
		},
		"state": func() { c.State(&st) },
		"evict+load": func() {
			if err := c.Evict(1); err != nil {
				t.Fatal(err)
			}
			var err error
			if r, err = c.Load(1, 8, []Run{{First: 2, Pages: 3}}); err != nil {
				t.Fatal(err)
			}
		},
		"arena alloc+free": func() {
			b, err := a.Alloc(4096)
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Free(b); err != nil {
				t.Fatal(err)
			}
		},
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocs per run, want 0", name, n)
		}
	}
	_ = a.Free(keep)
}
