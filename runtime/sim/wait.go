package sim

import (
	"time"

	"golang.org/x/sys/unix"
)

// DefaultSpinNs is how long WaitUntil spins before its deadline. Go's timers are coarse when the
// process is idle: the netpoller sleeps in epoll_pwait with a millisecond timeout, so a sub-ms
// time.Sleep wakes up to ~1 ms late (measured: p50 74–90 µs, p99 0.5–1.5 ms late for a 1 ms
// sleep on the shared 2-core CI box). WaitUntil therefore sleeps with time.Sleep only until
// CoarseNs before the deadline, then with nanosleep(2) (a kernel hrtimer, blocking only this
// thread) until SpinNs before it, then spins. BenchmarkWaitUntil measures the modes.
const DefaultSpinNs = 50_000

// CoarseNs is where WaitUntil switches from Go timers to nanosleep.
const CoarseNs = 2_000_000

// Clock returns the process's monotonic clock in nanoseconds since an arbitrary start: the clock
// sim reports spans in unless Config.Clock says otherwise. It does not allocate.
func Clock() int64 { return int64(time.Since(clockBase)) }

var clockBase = time.Now()

// WaitUntil returns at or after deadline on clock now: time.Sleep until CoarseNs before it,
// nanosleep until spinNs before it, then a busy spin. spinNs 0 means time.Sleep only (coarse,
// but right for testing/synctest, whose clock moves only while goroutines are blocked in Go,
// never in nanosleep or a spin). It returns the clock reading at return.
//
// Timing: executor threads; does not allocate.
func WaitUntil(now func() int64, deadline, spinNs int64) int64 {
	t := now()
	for t < deadline {
		left := deadline - t
		switch {
		case spinNs == 0:
			time.Sleep(time.Duration(left))
		case left > CoarseNs:
			time.Sleep(time.Duration(left - CoarseNs))
		case left > spinNs:
			Nanosleep(left - spinNs)
		}
		t = now()
	}
	return t
}

// Nanosleep blocks the calling thread for ns with nanosleep(2): precise to the kernel's timer
// slack (50 µs by default), unlike a sub-ms time.Sleep. Use it on threads that may block (locked
// executor threads). Does not allocate.
func Nanosleep(ns int64) {
	ts := unix.NsecToTimespec(ns)
	for unix.Nanosleep(&ts, &ts) == unix.EINTR {
	}
}
