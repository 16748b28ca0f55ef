package alloc

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
)

// testSeed returns TEST_SEED if set, else a fresh seed, and logs it so a failure can be
// replayed with TEST_SEED=<seed>.
func testSeed(t testing.TB) uint64 {
	t.Helper()
	if s := os.Getenv("TEST_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("bad TEST_SEED %q: %v", s, err)
		}
		return v
	}
	v := rand.Uint64()
	t.Logf("TEST_SEED=%d", v)
	return v
}

// cacheModel drives a Cache with a byte stream of operations and checks it against what the
// operations imply: every invariant in Cache's comment after every step, plus the behaviour
// of each call (stale handles rejected, pinned models never evicted, loads that fit succeed).
type cacheModel struct {
	t      testing.TB
	c      *Cache
	raw    []Page      // live Alloc handles
	stale  []Page      // freed Alloc handles
	res    []Residency // live residencies
	oldRes []Residency // evicted residencies
	pins   map[ModelID]int
	pages  map[ModelID]int
}

func newCacheModel(t testing.TB, n int) *cacheModel {
	c, err := NewCache(CacheConfig{Base: 1 << 40, Size: int64(n) * 4096, PageSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	return &cacheModel{t: t, c: c, pins: map[ModelID]int{}, pages: map[ModelID]int{}}
}

func (m *cacheModel) step(op, a, b byte) {
	t, c := m.t, m.c
	switch op % 8 {
	case 0: // alloc
		free := c.FreePages()
		p, err := c.Alloc()
		if (free > 0) != (err == nil) || (err != nil && !errors.Is(err, ErrNoSpace)) {
			t.Fatalf("alloc with %d free: %v", free, err)
		}
		if err == nil {
			m.raw = append(m.raw, p)
		}
	case 1: // free
		if len(m.raw) == 0 {
			return
		}
		i := int(a) % len(m.raw)
		p := m.raw[i]
		if err := c.Free(p); err != nil {
			t.Fatalf("free of live %v: %v", p, err)
		}
		m.raw = append(m.raw[:i], m.raw[i+1:]...)
		m.stale = append(m.stale, p)
	case 2, 3: // load
		id := ModelID(a % 16)
		n := 1 + int(b%8)
		var runs []Run
		if b&0x80 != 0 && n >= 2 {
			runs = []Run{{First: n / 2, Pages: n - n/2}}
		}
		free := c.FreePages()
		_, loaded := m.pages[id]
		r, err := c.Load(id, n, runs)
		switch {
		case loaded:
			if !errors.Is(err, ErrLoaded) {
				t.Fatalf("load of loaded model %d: %v", id, err)
			}
		case n > free:
			if !errors.Is(err, ErrNoSpace) {
				t.Fatalf("load of %d pages with %d free: %v", n, free, err)
			}
		case runs == nil && err != nil:
			t.Fatalf("load of %d pages with %d free and no runs: %v", n, free, err)
		case err != nil && !errors.Is(err, ErrFragmented):
			t.Fatalf("load with runs: %v", err)
		case err == nil:
			m.pages[id] = n
			m.res = append(m.res, r)
			addrs, err := c.AppendAddrs(nil, r)
			if err != nil || len(addrs) != n {
				t.Fatalf("addrs of fresh load: %v %v", addrs, err)
			}
			for _, run := range runs {
				for j := run.First + 1; j < run.First+run.Pages; j++ {
					if addrs[j] != addrs[j-1]+4096 {
						t.Fatalf("run %+v not contiguous: %#x", run, addrs)
					}
				}
			}
		}
		if err != nil && c.FreePages() != free {
			t.Fatalf("failed load changed free pages %d → %d", free, c.FreePages())
		}
	case 4: // evict
		id := ModelID(a % 16)
		err := c.Evict(id)
		_, loaded := m.pages[id]
		switch {
		case !loaded:
			if !errors.Is(err, ErrNotLoaded) {
				t.Fatalf("evict of unloaded %d: %v", id, err)
			}
		case m.pins[id] > 0:
			if !errors.Is(err, ErrPinned) {
				t.Fatalf("evict of pinned %d (%d pins): %v", id, m.pins[id], err)
			}
		case err != nil:
			t.Fatalf("evict of %d: %v", id, err)
		default:
			delete(m.pages, id)
			for i, r := range m.res {
				if r.Model == id {
					m.oldRes = append(m.oldRes, r)
					m.res = append(m.res[:i], m.res[i+1:]...)
					break
				}
			}
		}
	case 5: // pin
		if len(m.res) == 0 {
			return
		}
		r := m.res[int(a)%len(m.res)]
		if err := c.Pin(r); err != nil {
			t.Fatalf("pin of live residency: %v", err)
		}
		m.pins[r.Model]++
	case 6: // unpin
		if len(m.res) == 0 {
			return
		}
		r := m.res[int(a)%len(m.res)]
		err := c.Unpin(r)
		if m.pins[r.Model] == 0 {
			if !errors.Is(err, ErrNotPinned) {
				t.Fatalf("unpin of unpinned: %v", err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		m.pins[r.Model]--
	case 7: // use a stale handle
		if len(m.stale) > 0 {
			p := m.stale[int(a)%len(m.stale)]
			if err := c.Free(p); !errors.Is(err, ErrStale) {
				t.Fatalf("free of stale %v: %v", p, err)
			}
			if _, err := c.Addr(p); !errors.Is(err, ErrStale) {
				t.Fatalf("addr of stale %v: %v", p, err)
			}
		}
		if len(m.oldRes) > 0 {
			r := m.oldRes[int(b)%len(m.oldRes)]
			if err := c.Pin(r); !errors.Is(err, ErrStale) {
				t.Fatalf("pin of evicted %+v: %v", r, err)
			}
		}
	}
	if err := c.Check(); err != nil {
		t.Fatalf("after op %d: %v\n%v", op%8, err, c)
	}
	used := len(m.raw)
	for _, n := range m.pages {
		used += n
	}
	if used+c.FreePages() != c.TotalPages() {
		t.Fatalf("used %d + free %d != total %d", used, c.FreePages(), c.TotalPages())
	}
}

func FuzzCacheOps(f *testing.F) {
	f.Add([]byte{2, 1, 3, 5, 0, 0, 4, 1, 0, 6, 0, 0, 4, 1, 0, 7, 0, 0})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 1, 0, 0, 7, 0, 0, 2, 3, 0x87, 2, 4, 0x83})
	f.Fuzz(func(t *testing.T, ops []byte) {
		m := newCacheModel(t, 24)
		for i := 0; i+2 < len(ops); i += 3 {
			m.step(ops[i], ops[i+1], ops[i+2])
		}
	})
}

// TestCacheRandom runs long random operation sequences through the same checks as the fuzz
// test; TEST_SEED replays one.
func TestCacheRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(testSeed(t), 1))
	for range 20 {
		m := newCacheModel(t, 8+rng.IntN(64))
		for range 2000 {
			m.step(byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()))
		}
	}
}

// arenaModel drives an Arena and checks it the same way.
type arenaModel struct {
	t     testing.TB
	a     *Arena
	live  []Buf
	stale []Buf
}

func (m *arenaModel) step(op byte, size uint16) {
	t, a := m.t, m.a
	switch op % 3 {
	case 0:
		n := int64(size%2048) + 1
		b, err := a.Alloc(n)
		if err != nil {
			if !errors.Is(err, ErrNoSpace) {
				t.Fatalf("alloc %d: %v", n, err)
			}
			// Exhaustion must be real: no gap of the aligned size, or no slot.
			if a.Live() < len(a.gen) && a.largestGap() >= (n+ArenaAlign-1)&^(ArenaAlign-1) {
				t.Fatalf("alloc %d failed with a gap of %d: %v", n, a.largestGap(), err)
			}
			break
		}
		if b.Addr%ArenaAlign != 0 || b.Bytes != n {
			t.Fatalf("alloc %d gave %v", n, b)
		}
		m.live = append(m.live, b)
	case 1:
		if len(m.live) == 0 {
			return
		}
		i := int(size) % len(m.live)
		if err := a.Free(m.live[i]); err != nil {
			t.Fatalf("free of live %v: %v", m.live[i], err)
		}
		m.stale = append(m.stale, m.live[i])
		m.live = append(m.live[:i], m.live[i+1:]...)
	case 2:
		if len(m.stale) == 0 {
			return
		}
		b := m.stale[int(size)%len(m.stale)]
		if err := a.Free(b); !errors.Is(err, ErrStale) {
			t.Fatalf("free of stale %v: %v", b, err)
		}
	}
	if err := a.Check(); err != nil {
		t.Fatal(err)
	}
	if a.Live() != len(m.live) {
		t.Fatalf("arena has %d live, want %d", a.Live(), len(m.live))
	}
}

// largestGap is the longest free stretch, for checking that an exhaustion error is real.
func (a *Arena) largestGap() int64 {
	var at, g int64
	for _, s := range a.live {
		g = max(g, a.off[s]-at)
		at = a.off[s] + a.len[s]
	}
	return max(g, a.size-at)
}

func FuzzArenaOps(f *testing.F) {
	f.Add([]byte{0, 10, 0, 0, 200, 0, 1, 0, 0, 2, 0, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		a, err := NewArena(ArenaConfig{Name: "fuzz", Base: 1 << 20, Size: 8192, MaxBufs: 6})
		if err != nil {
			t.Fatal(err)
		}
		m := &arenaModel{t: t, a: a}
		for i := 0; i+2 < len(ops); i += 3 {
			m.step(ops[i], binary.LittleEndian.Uint16(ops[i+1:]))
		}
	})
}

func TestArenaRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(testSeed(t), 2))
	for range 20 {
		a, err := NewArena(ArenaConfig{Name: "rand", Base: 1 << 20, Size: int64(1+rng.IntN(16)) * 1024, MaxBufs: 1 + rng.IntN(16)})
		if err != nil {
			t.Fatal(err)
		}
		m := &arenaModel{t: t, a: a}
		for range 2000 {
			m.step(byte(rng.Uint32()), uint16(rng.Uint32()))
		}
	}
}

// FuzzLayout: any tensor list either fails with ErrConfig or lays out with no overlap, no
// misalignment and no span (paged), never a panic.
func FuzzLayout(f *testing.F) {
	f.Add(uint8(1), []byte{1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0x10, 0, 0, 8})
	f.Fuzz(func(t *testing.T, pageShift uint8, data []byte) {
		pageSize := int64(4096) << (pageShift % 4)
		var ts []Tensor
		for i := 0; i+4 < len(data) && len(ts) < 256; i += 5 {
			n := int64(binary.LittleEndian.Uint32(data[i:])) % (8 * pageSize)
			ts = append(ts, Tensor{Bytes: n - 1, Align: int64(1) << (data[i+4] % 14)})
		}
		for _, packed := range []bool{false, true} {
			newLayout := NewLayout
			if packed {
				newLayout = NewPackedLayout
			}
			l, err := newLayout(pageSize, ts)
			if err != nil {
				if !errors.Is(err, ErrConfig) {
					t.Fatalf("error not ErrConfig: %v", err)
				}
				continue
			}
			if err := l.Check(ts); err != nil {
				t.Fatalf("packed=%v: %v", packed, err)
			}
		}
	})
}
