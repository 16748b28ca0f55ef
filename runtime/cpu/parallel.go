package cpu

import (
	"runtime"
	"sync"
)

// Parallel kernels run on a fixed pool of worker goroutines (started on first use, one per
// core). A kernel is a task: a struct, allocated once when its node is compiled, holding the
// kernel's arguments and a WaitGroup, with a run method over a range of work items. Sending a
// pointer to it through the pool's channel allocates nothing, and each worker owns its scratch
// memory, so a steady-state Run allocates nothing on the Go heap.

// scratch is one worker's reusable memory.
type scratch struct {
	f64 []float64
	i   []int
}

// float64s returns n zeroed float64s, reusing the worker's buffer.
func (s *scratch) float64s(n int) []float64 {
	if cap(s.f64) < n {
		s.f64 = make([]float64, n)
	}
	b := s.f64[:n]
	clear(b)
	return b
}

// task is a parallel kernel invocation. run handles work items [lo, hi) with the calling
// worker's scratch.
type task interface {
	run(s *scratch, lo, hi int)
}

type job struct {
	t      task
	lo, hi int
	wg     *sync.WaitGroup
}

var workers struct {
	once sync.Once
	n    int
	jobs chan job
}

func startWorkers() {
	workers.n = max(1, runtime.NumCPU(), runtime.GOMAXPROCS(0))
	workers.jobs = make(chan job, 4*workers.n)
	for range workers.n {
		go func() {
			var s scratch
			for j := range workers.jobs {
				j.t.run(&s, j.lo, j.hi)
				j.wg.Done()
			}
		}()
	}
}

// parallel splits [0, n) into at most GOMAXPROCS contiguous chunks of at least grain items,
// runs t on each in the worker pool, and returns when all are done. wg must belong to t (a
// field of the task struct), so nothing escapes per call; one task runs one parallel call at a
// time. Each index is handled by exactly one run, so kernels that write disjoint outputs per
// index need no locks, and every result is the same whatever the split.
// Timing: exec thread; no allocation; blocks until the chunks are done.
func parallel(t task, wg *sync.WaitGroup, n, grain int) {
	if n <= 0 {
		return
	}
	workers.once.Do(startWorkers)
	grain = max(grain, 1)
	chunks := min(runtime.GOMAXPROCS(0), workers.n, (n+grain-1)/grain)
	chunk := (n + chunks - 1) / chunks
	for lo := 0; lo < n; lo += chunk {
		wg.Add(1)
		workers.jobs <- job{t: t, lo: lo, hi: min(lo+chunk, n), wg: wg}
	}
	wg.Wait()
}

// ints returns n zeroed ints, reusing the worker's buffer.
func (s *scratch) ints(n int) []int {
	if cap(s.i) < n {
		s.i = make([]int, n)
	}
	b := s.i[:n]
	clear(b)
	return b
}

// bound is a task whose range function reads its arguments from a struct set before each
// exec. A kernel allocates its bound once at compile time; exec then allocates nothing.
type bound[A any] struct {
	args A
	fn   func(a *A, s *scratch, lo, hi int)
	wg   sync.WaitGroup
}

func (b *bound[A]) run(s *scratch, lo, hi int) { b.fn(&b.args, s, lo, hi) }

// exec runs fn over [0, n) in the pool with args. Not safe for concurrent use of one bound.
// Timing: exec thread; no allocation.
func (b *bound[A]) exec(args A, n, grain int) {
	b.args = args
	parallel(b, &b.wg, n, grain)
	var zero A
	b.args = zero // drop references to the caller's buffers
}

// runOnce runs fn once over [0, n) (tests and one-off calls; allocates).
func runOnce[A any](fn func(a *A, s *scratch, lo, hi int), args A, n, grain int) {
	(&bound[A]{fn: fn}).exec(args, n, grain)
}
