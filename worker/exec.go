package worker

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clockwork-go/clockwork/alloc"
	"github.com/clockwork-go/clockwork/internal/invariants"
	"github.com/clockwork-go/clockwork/runtime/device"
	"github.com/clockwork-go/clockwork/runtime/sim"
	"github.com/clockwork-go/clockwork/wire"
)

// action is one LOAD, UNLOAD or INFER from its decode to its Result. Actions are pooled: the
// reader takes one from the worker's free list, executors pass it lane to lane, and whoever sends
// its Result puts it back. One goroutine owns an action at a time.
type action struct {
	typ      wire.Type
	id       uint64
	link     *link
	model    *model
	gpu      int
	batch    int
	flags    wire.InferFlags
	earliest int64
	latest   int64
	expected int64
	received int64
	seq      uint64 // FIFO among equal eligible times
	eligible int64  // on the lane it is queued on
	started  int64  // first phase's start, for lateness
	phases   [wire.NumPhases]wire.Span
	execNs   int64
	status   wire.Status
	reason   string
	host     []byte          // input (unless synthesised) then output (unless not wanted), from the host pool
	outOff   int64           // where the output starts in host
	slot     int32           // device IO slot, -1 when none
	pinned   bool            // holds a pin on res
	res      alloc.Residency // pinned weights on gpu
	ptrs     []device.Ptr    // their page addresses
}

// output is the INFER's output in its host buffer. Owner of a.
func (a *action) output() []byte {
	return a.host[a.outOff : a.outOff+a.model.outputBytes(a.batch)]
}

// input is the INFER's input: read from the socket into its host buffer, or, synthesised, the
// worker's zeros. Owner of a.
func (w *Worker) input(a *action) []byte {
	in := a.model.inputBytes(a.batch)
	if a.flags&wire.InferSynthInput != 0 {
		return w.synthBuf[:in]
	}
	return a.host[:in]
}

func (a *action) reset() {
	*a = action{slot: -1}
}

// executor is one lane of one GPU: a goroutine (locked to an OS thread unless sleep-only) that
// takes actions in eligible-time order. See Worker for the design.
type executor struct {
	w    *Worker
	gpu  int
	lane device.Lane
	cpu  int // -1: not pinned
	tid  int // Linux thread id when locked (see Probe)

	mu     sync.Mutex
	heap   []*action
	closed bool
	wake   chan struct{}
	timer  *time.Timer

	res    wire.Result
	reason []byte
}

func newExecutor(w *Worker, gpu int, lane device.Lane, cpu int) *executor {
	e := &executor{w: w, gpu: gpu, lane: lane, cpu: cpu, wake: make(chan struct{}, 1), timer: time.NewTimer(time.Hour)}
	e.timer.Stop()
	e.heap = make([]*action, 0, 64)
	e.reason = make([]byte, 0, wire.MaxReasonLen)
	return e
}

func less(a, b *action) bool {
	return a.eligible < b.eligible || (a.eligible == b.eligible && a.seq < b.seq)
}

// push queues a; false when the queue is full or closed.
//
// Timing: reader or executor; does not allocate once the heap has grown.
func (e *executor) push(a *action) bool {
	e.mu.Lock()
	if e.closed || len(e.heap) >= e.w.cfg.QueueDepth {
		e.mu.Unlock()
		return false
	}
	a.seq = e.w.seq.Add(1)
	e.heap = append(e.heap, a)
	i := len(e.heap) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !less(e.heap[i], e.heap[p]) {
			break
		}
		e.heap[i], e.heap[p] = e.heap[p], e.heap[i]
		i = p
	}
	top := i == 0
	e.mu.Unlock()
	if top {
		select {
		case e.wake <- struct{}{}:
		default:
		}
	}
	return true
}

// popLocked removes the top; e.mu held.
func (e *executor) popLocked() *action {
	h := e.heap
	a := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h[n] = nil
	h = h[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && less(h[r], h[l]) {
			m = r
		}
		if !less(h[m], h[i]) {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	e.heap = h
	return a
}

// removeIf takes out every queued action for which f is true and returns them (control path).
func (e *executor) removeIf(f func(*action) bool) []*action {
	e.mu.Lock()
	var out []*action
	kept := e.heap[:0]
	for _, a := range e.heap {
		if f(a) {
			out = append(out, a)
		} else {
			kept = append(kept, a)
		}
	}
	for i := len(kept); i < len(e.heap); i++ {
		e.heap[i] = nil
	}
	e.heap = kept
	// Re-heapify.
	for i := len(kept)/2 - 1; i >= 0; i-- {
		j := i
		for {
			l := 2*j + 1
			if l >= len(kept) {
				break
			}
			m := l
			if r := l + 1; r < len(kept) && less(kept[r], kept[l]) {
				m = r
			}
			if !less(kept[m], kept[j]) {
				break
			}
			kept[j], kept[m] = kept[m], kept[j]
			j = m
		}
	}
	e.mu.Unlock()
	return out
}

func (e *executor) close() {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// next blocks until the top action is eligible (sleeping, then spinning the last SpinNs), and
// returns it with the clock reading at its start; nil when closed and drained.
//
// Timing: executor thread; does not allocate.
func (e *executor) next() (*action, int64) {
	clock, spin := e.w.cfg.Clock, e.w.cfg.SpinNs
	for {
		e.mu.Lock()
		if len(e.heap) == 0 {
			closed := e.closed
			e.mu.Unlock()
			if closed {
				return nil, 0
			}
			<-e.wake
			continue
		}
		a := e.heap[0]
		now := clock()
		closed := e.closed || e.w.stopping.Load() // stopping: answer everything queued now
		wait := a.eligible - now
		if !closed && (wait > sim.CoarseNs || (spin == 0 && wait > 0)) {
			// Far, or sleep-only mode (synctest-friendly): a Go timer, interruptible by an
			// earlier arrival or close.
			d := wait - sim.CoarseNs
			if spin == 0 {
				d = wait
			}
			e.mu.Unlock()
			e.timer.Reset(time.Duration(d))
			select {
			case <-e.timer.C:
			case <-e.wake: // an earlier action arrived, or close
			}
			e.timer.Stop()
			continue
		}
		if !closed && wait > spin {
			// Near: nanosleep (precise; Go timers wake up to 1 ms late) in slices of at most
			// nearSliceNs, re-checking the queue between them for an earlier arrival.
			e.mu.Unlock()
			sim.Nanosleep(min(wait-spin, nearSliceNs))
			continue
		}
		e.popLocked()
		e.mu.Unlock()
		if a.eligible > now && spin > 0 && !closed {
			now = sim.WaitUntil(clock, a.eligible, spin)
		}
		return a, now
	}
}

// nearSliceNs bounds one nanosleep in the last CoarseNs before an action, so an earlier arrival
// waits at most this long to be noticed.
const nearSliceNs = 200_000

// loop is the executor thread.
func (e *executor) loop(ready chan<- error) {
	if e.w.lockThreads() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine if pinned
		if err := e.pin(); err != nil {
			ready <- err
			return
		}
		e.tid = e.w.cfg.Probe.threadStart(e.gpu, e.lane.String()) // names the thread; registers it if probing
		defer e.w.cfg.Probe.threadEnd(e.tid)
	}
	ready <- nil
	for {
		a, now := e.next()
		if a == nil {
			return
		}
		// Cancel what has not started; an INFER that executed still gets its output.
		if a.link.dead.Load() || (e.w.stopping.Load() && e.lane != device.LaneOutput) {
			st := wire.StatusCancelled
			if e.w.stopping.Load() {
				st = wire.StatusShuttingDown
			}
			e.finish(a, st, "cancelled before it started: controller gone or worker stopping")
			continue
		}
		switch e.lane {
		case device.LaneWeights:
			e.w.runWeights(e, a, now)
		case device.LaneInput:
			e.w.runInput(e, a, now)
		case device.LaneExec:
			e.w.runExec(e, a, now)
		case device.LaneOutput:
			e.w.runOutput(e, a, now)
		}
	}
}

// pin sets the calling (locked) thread's timer slack, CPU affinity and, if configured,
// SCHED_FIFO.
func (e *executor) pin() error {
	// Timer slack 1 ns: nanosleep on this thread wakes on time instead of up to 50 µs late.
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
	if e.cpu < 0 {
		return nil
	}
	var set unix.CPUSet
	set.Set(e.cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("cannot pin gpu %d %s thread to CPU %d: %w; check the CPU list against nproc and the cgroup's cpuset", e.gpu, e.lane, e.cpu, err)
	}
	if e.w.cfg.FIFO {
		attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: 1 /* SCHED_FIFO */, Priority: uint32(e.w.cfg.FIFOPriority)}
		if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
			return fmt.Errorf("cannot set SCHED_FIFO on gpu %d %s thread: %w; raise the rtprio limit (ulimit -r) or drop -fifo", e.gpu, e.lane, err)
		}
	}
	return nil
}

// fifoGuard refuses SCHED_FIFO where a spinning executor could starve the machine: the kernel's
// RT throttling must be on (sched_rt_runtime_us != -1, so RT threads get at most that share of
// each period) and at least one online CPU must be left out of cpus.
func fifoGuard(cpus []int) error {
	b, err := os.ReadFile("/proc/sys/kernel/sched_rt_runtime_us")
	if err != nil {
		return fmt.Errorf("cannot check RT throttling for SCHED_FIFO: %w", err)
	}
	if v, _ := strconv.Atoi(strings.TrimSpace(string(b))); v < 0 {
		return fmt.Errorf("refusing SCHED_FIFO: kernel.sched_rt_runtime_us is -1 (RT throttling off), so a spinning executor could starve the machine; set it to 950000 or drop -fifo")
	}
	seen := map[int]bool{}
	for _, c := range cpus {
		seen[c] = true
	}
	if len(seen) >= runtime.NumCPU() {
		return fmt.Errorf("refusing SCHED_FIFO: CPUs %v cover all %d CPUs; leave at least one for the rest of the machine", cpus, runtime.NumCPU())
	}
	return nil
}

// finish answers a and returns its resources. Any goroutine that owns a.
//
// Timing: executor thread; does not allocate.
func (e *executor) finish(a *action, st wire.Status, reason string) {
	e.w.finish(a, st, reason, &e.res, &e.reason)
}

// execGuard checks C2 (one INFER executing per GPU) under invariants.
type execGuard struct{ n atomic.Int32 }

func (g *execGuard) enter(gpu int) {
	if invariants.Enabled {
		if n := g.n.Add(1); n != 1 {
			panic(fmt.Sprintf("BUG: worker: %d INFERs executing at once on gpu %d", n, gpu))
		}
	}
}

func (g *execGuard) exit() {
	if invariants.Enabled {
		g.n.Add(-1)
	}
}
