package cuda

import (
	"fmt"
	"runtime"
	"time"
)

// Graph-level algorithm choice. Timing each convolution alone picks algorithms that are not
// always fastest inside the graph (caches, clocks and neighbours differ), and a choice that
// flips on noise between prepares made ResNet-50 batch 1 run 2.3 ms after one prepare and
// 2.7-3.0 ms after others with the same 67 kernels. So Prepare captures the whole batch graph
// with up to three algorithm sets (what compile kept, the heuristic's first choices, the fastest
// measured choices), times each as a graph on real-sized buffers in interleaved rounds and
// keeps the fastest set; only then is the graph captured for relocation.

// Graph variants chooseGraph times, in order of preference on a tie.
const (
	variantCompiled  = iota // heuristic unless a candidate measured 5% faster alone
	variantHeuristic        // cuDNN's first choice everywhere
	variantMeasured         // the fastest measured alone everywhere
	numVariants
)

// VariantNames name the graph variants in PrepareStats.
var VariantNames = [numVariants]string{"compiled", "heuristic", "measured"}

// graphRounds interleaved rounds time each variant; each round runs a variant's graph
// graphRunsPerRound times (fewer for a slow graph: about graphRoundBudget of device time).
const (
	graphRounds       = 5
	graphRunsPerRound = 20
	graphRoundBudget  = 20 * time.Millisecond
)

// algoSet is one algorithm (and workspace) per convolution of a batch.
type algoSet struct {
	algo []int
	ws   []int64
}

// variantSets returns the algorithm sets of the variants for convs (nil where a variant equals
// an earlier one). Pinned convolutions keep their compiled algorithm in every set.
func variantSets(convs []*convPlan) [numVariants]*algoSet {
	var sets [numVariants]*algoSet
	for v := range numVariants {
		s := &algoSet{algo: make([]int, len(convs)), ws: make([]int64, len(convs))}
		for i, cp := range convs {
			s.algo[i], s.ws[i] = cp.Algo, cp.WorkspaceBytes
			if cp.pinned {
				continue
			}
			switch v {
			case variantHeuristic:
				s.algo[i], s.ws[i] = cp.heurAlgo, cp.heurWs
			case variantMeasured:
				s.algo[i], s.ws[i] = cp.measAlgo, cp.measWs
			}
		}
		dup := false
		for _, e := range sets[:v] {
			if e != nil && equalInts(e.algo, s.algo) {
				dup = true
			}
		}
		if !dup {
			sets[v] = s
		}
	}
	return sets
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (s *algoSet) apply(convs []*convPlan) {
	for i, cp := range convs {
		cp.Algo, cp.WorkspaceBytes = s.algo[i], s.ws[i]
	}
}

// pickVariant returns the variant with the smallest time (ns < 0: not timed), the earliest on
// a tie, and variantCompiled when none was timed.
func pickVariant(ns [numVariants]int64) int {
	best := variantCompiled
	for v := range numVariants {
		if ns[v] >= 0 && (ns[best] < 0 || ns[v] < ns[best]) {
			best = v
		}
	}
	return best
}

// chooseGraph times the batch's graph variants and leaves convs set to the fastest. Variants
// that cannot be captured or launched (cuDNN refuses some algorithms only at run time) are
// skipped. It returns each variant's best per-run device time (-1: not timed) and the pick.
// Control path; the prepare lock is held; bp.cur is left pointing at the fake bases it had.
func (p *Program) chooseGraph(ps *prepState, bp *batchProg, convs []*convPlan, run func(s uintptr) error) (ns [numVariants]int64, pick int, err error) {
	for v := range ns {
		ns[v] = -1
	}
	sets := variantSets(convs)
	n := 0
	for _, s := range sets {
		if s != nil {
			n++
		}
	}
	if n < 2 {
		return ns, variantCompiled, nil
	}
	d := p.d
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := d.drv.setCurrent(nil, d.ctx); err != nil {
		return ns, variantCompiled, err
	}
	// Real buffers at every base: pages, input, output, activations (filled with 0.01f, not
	// zeros: some kernels run faster on zeros).
	align := func(n int64) int64 { return (n + 255) &^ 255 }
	sizes := make([]int64, p.numBases())
	for k := range p.nPages {
		sizes[k] = p.pageBytes
	}
	sizes[p.baseIn()], sizes[p.baseOut()], sizes[p.baseWork()] = bp.in, bp.out, bp.work
	var total int64
	for _, sz := range sizes {
		total += align(max(sz, 256))
	}
	buf, err := d.drv.memAlloc(total)
	if err != nil {
		return ns, variantCompiled, fmt.Errorf("cannot allocate %d bytes to time graph variants: %w", total, err)
	}
	saved := bp.cur
	defer func() {
		bp.cur = saved
		if ferr := d.drv.memFree(buf); ferr != nil && err == nil {
			err = ferr
		}
	}()
	if err := d.drv.memsetD32Async(buf, 0x3c23d70a, int(total/4), ps.stream); err != nil {
		return ns, variantCompiled, err
	}
	bases := make([]uint64, len(sizes))
	at := buf
	for k, sz := range sizes {
		bases[k] = at
		at += uint64(align(max(sz, 256)))
	}
	bp.cur = bases
	var graphs [numVariants]*graph
	defer func() {
		for _, g := range graphs {
			if g != nil {
				g.close()
			}
		}
	}()
	for v, s := range sets {
		if s == nil {
			continue
		}
		s.apply(convs)
		g, cerr := d.captureOn(ps.stream, run)
		if cerr != nil {
			continue
		}
		graphs[v] = g
	}
	if time.Since(ps.warmAt) > 200*time.Millisecond {
		if err := ps.warmUp(d, 30*time.Millisecond); err != nil {
			return ns, variantCompiled, err
		}
		ps.warmAt = time.Now()
	}
	// timeRuns launches g k times between the prepare events; -1 if it cannot launch.
	timeRuns := func(g *graph, k int) (int64, error) {
		if err := d.drv.eventRecord(ps.c, ps.ev0, ps.stream); err != nil {
			return 0, err
		}
		for range k {
			if d.drv.graphLaunch(ps.c, g.exec, ps.stream) != nil {
				d.drv.streamSynchronize(ps.c, ps.stream)
				return -1, nil
			}
		}
		if err := d.drv.eventRecord(ps.c, ps.ev1, ps.stream); err != nil {
			return 0, err
		}
		if err := d.drv.eventSynchronize(ps.c, ps.ev1); err != nil {
			return 0, err
		}
		return d.drv.elapsedNs(ps.c, ps.ms, ps.ev0, ps.ev1)
	}
	runs := graphRunsPerRound
	for v, g := range graphs {
		if g == nil {
			continue
		}
		t, err := timeRuns(g, 1) // warm-up; also sizes the rounds
		if err != nil {
			return ns, variantCompiled, err
		}
		if t < 0 {
			g.close()
			graphs[v] = nil
			continue
		}
		runs = min(runs, max(3, int(int64(graphRoundBudget)/max(t, 1))))
	}
	for range graphRounds {
		for v, g := range graphs {
			if g == nil {
				continue
			}
			t, err := timeRuns(g, runs)
			if err != nil {
				return ns, variantCompiled, err
			}
			if t < 0 {
				continue
			}
			if t /= int64(runs); ns[v] < 0 || t < ns[v] {
				ns[v] = t
			}
		}
	}
	pick = pickVariant(ns)
	if sets[pick] == nil {
		pick = variantCompiled
	}
	sets[pick].apply(convs)
	return ns, pick, nil
}
