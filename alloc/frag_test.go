package alloc

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

// fragStats is what one churn simulation measured.
type fragStats struct {
	loads, fragmented int // loads, and loads that found enough pages but no run (ErrFragmented)
	extraPages        int // pages evicted beyond what the load needed, to open a run
}

// churn replays requests for instances of the zoo's models (instance i is zoo model i mod 32)
// on a cache of the given pages, evicting least recently used models the way the controller
// would (until enough pages are free), and then more while the load fails with ErrFragmented.
// Layouts are paged (runs for tensors larger than a page), the policy that can fragment.
func churn(t testing.TB, z map[string][]Tensor, pageSize int64, pages, instances, requests int, rng *rand.Rand) fragStats {
	names := sortedNames(z)
	layouts := make([]*Layout, len(names))
	for i, n := range names {
		l, err := NewLayout(pageSize, z[n])
		if err != nil {
			t.Fatal(err)
		}
		layouts[i] = l
	}
	c, err := NewCache(CacheConfig{Size: int64(pages) * pageSize, PageSize: pageSize})
	if err != nil {
		t.Fatal(err)
	}
	var s fragStats
	var st CacheState
	evictLRU := func() int {
		c.State(&st)
		m := st.Models[len(st.Models)-1]
		if err := c.Evict(m.ID); err != nil {
			t.Fatal(err)
		}
		return m.Pages
	}
	for range requests {
		// Skewed popularity: a few hot instances, a long tail (min of two uniforms).
		id := ModelID(min(rng.IntN(instances), rng.IntN(instances)))
		if r, ok := c.Resident(id); ok {
			_ = c.Pin(r) // use: moves it to the front
			_ = c.Unpin(r)
			continue
		}
		l := layouts[int(id)%len(layouts)]
		for c.FreePages() < l.Pages {
			evictLRU()
		}
		s.loads++
		_, err := c.Load(id, l.Pages, l.Runs)
		if errors.Is(err, ErrFragmented) {
			s.fragmented++
			for errors.Is(err, ErrFragmented) {
				s.extraPages += evictLRU()
				_, err = c.Load(id, l.Pages, l.Runs)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestChurn(t *testing.T) {
	z := zoo(t)
	rng := rand.New(rand.NewPCG(testSeed(t), 3))
	s := churn(t, z, 16<<20, 1000, 640, 3000, rng)
	if s.loads == 0 {
		t.Fatal("no loads")
	}
	t.Logf("%d loads, %d fragmented, %d extra pages evicted", s.loads, s.fragmented, s.extraPages)
}

// BenchmarkChurn measures how often paged layouts' runs make a load fail for fragmentation on
// an 80 GB cache (H100) with 4× more model instances than fit.
func BenchmarkChurn(b *testing.B) {
	z := zoo(b)
	for _, ps := range []int64{4 << 20, 16 << 20} {
		b.Run(fmt.Sprintf("page=%dMiB", ps>>20), func(b *testing.B) {
			pages := int((80 << 30) / ps)
			var tot fragStats
			i := uint64(0)
			for b.Loop() {
				i++
				s := churn(b, z, ps, pages, 32*15*4, 20000, rand.New(rand.NewPCG(i, 4)))
				tot.loads += s.loads
				tot.fragmented += s.fragmented
				tot.extraPages += s.extraPages
			}
			b.ReportMetric(100*float64(tot.fragmented)/float64(tot.loads), "frag-%-of-loads")
			b.ReportMetric(float64(tot.extraPages)/float64(tot.loads), "extra-evict-pages/load")
		})
	}
}
