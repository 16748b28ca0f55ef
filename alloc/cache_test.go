package alloc

import (
	"errors"
	"testing"
)

func mustCache(t testing.TB, pages int) *Cache {
	t.Helper()
	c, err := NewCache(CacheConfig{Base: 1 << 32, Size: int64(pages) * 4096, PageSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCacheBasic(t *testing.T) {
	c := mustCache(t, 8)
	r, err := c.Load(1, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.FreePages() != 5 {
		t.Fatalf("free %d, want 5", c.FreePages())
	}
	addrs, err := c.AppendAddrs(nil, r)
	if err != nil || len(addrs) != 3 || addrs[0] != 1<<32 || addrs[2] != 1<<32+2*4096 {
		t.Fatalf("addrs %#x, %v", addrs, err)
	}
	if _, err := c.Load(2, 6, nil); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("load of 6 with 5 free: %v", err)
	}
	if err := c.Pin(r); err != nil {
		t.Fatal(err)
	}
	if err := c.Evict(1); !errors.Is(err, ErrPinned) {
		t.Fatalf("evict pinned: %v", err)
	}
	if err := c.Unpin(r); err != nil {
		t.Fatal(err)
	}
	if err := c.Evict(1); err != nil {
		t.Fatal(err)
	}
	if err := c.Pin(r); !errors.Is(err, ErrStale) {
		t.Fatalf("pin after evict: %v", err)
	}
	// Reloading the same model gives a new residency; the old one stays stale.
	r2, err := c.Load(1, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Pin(r); !errors.Is(err, ErrStale) {
		t.Fatalf("pin of old residency after reload: %v", err)
	}
	if err := c.Pin(r2); err != nil {
		t.Fatal(err)
	}
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestCachePageStale(t *testing.T) {
	c := mustCache(t, 2)
	p, err := c.Alloc()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Free(p); err != nil {
		t.Fatal(err)
	}
	if err := c.Free(p); !errors.Is(err, ErrStale) {
		t.Fatalf("double free: %v", err)
	}
	q, _ := c.Alloc()
	q2, _ := c.Alloc()
	if q.Index() != p.Index() {
		t.Fatalf("want page %d reused, got %d", p.Index(), q.Index())
	}
	if _, err := c.Addr(p); !errors.Is(err, ErrStale) {
		t.Fatalf("addr of stale handle to reused page: %v", err)
	}
	if _, err := c.Alloc(); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("alloc from full cache: %v", err)
	}
	if err := c.Free(Page{}); !errors.Is(err, ErrStale) {
		t.Fatalf("free of zero page: %v", err)
	}
	_ = c.Free(q)
	_ = c.Free(q2)
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestCacheRuns(t *testing.T) {
	c := mustCache(t, 10)
	// Fragment: models on pages 0-1, 2, 3-4; evict the middle one.
	for id, n := range []int{2, 1, 2} {
		if _, err := c.Load(ModelID(id), n, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Evict(1); err != nil {
		t.Fatal(err)
	}
	// A 4-page run must skip the one-page hole at 2 and land at 5-8.
	r, err := c.Load(9, 5, []Run{{First: 1, Pages: 4}})
	if err != nil {
		t.Fatal(err)
	}
	addrs, _ := c.AppendAddrs(nil, r)
	for j := 2; j <= 4; j++ {
		if addrs[j] != addrs[j-1]+4096 {
			t.Fatalf("run not contiguous: %#x", addrs)
		}
	}
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	// The single page came from the hole at 2; evicting model 0 frees 0-1, so 0, 1 and 9 are
	// free: three pages, but no run of three.
	if err := c.Evict(0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Load(7, 3, []Run{{First: 0, Pages: 3}}); !errors.Is(err, ErrFragmented) {
		t.Fatalf("want ErrFragmented, got %v\n%v", err, c)
	}
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
}
