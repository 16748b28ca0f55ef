package sim

import "time"

// DefaultSpinNs is how long WaitUntil spins before its deadline after a coarse sleep. The Go
// timer wakes a sleeping goroutine some tens of µs late on a loaded Linux box (timer slack,
// scheduler latency); spinning the last 50 µs removes most of that at the cost of one busy core
// for 50 µs per wait. BenchmarkWaitUntil measures both modes.
const DefaultSpinNs = 50_000

// Clock returns the process's monotonic clock in nanoseconds since an arbitrary start: the clock
// sim reports spans in unless Config.Clock says otherwise. It does not allocate.
func Clock() int64 { return int64(time.Since(clockBase)) }

var clockBase = time.Now()

// WaitUntil returns at or after deadline on clock now. It sleeps while more than spinNs remain,
// then busy-spins on the clock. spinNs 0 means sleep only (coarse: returns late by the timer's
// wake-up latency, but right for testing/synctest, whose clock does not move while a goroutine
// spins). It returns the clock reading at return.
//
// Timing: executor threads; does not allocate.
func WaitUntil(now func() int64, deadline, spinNs int64) int64 {
	t := now()
	for t < deadline {
		left := deadline - t
		if left > spinNs {
			time.Sleep(time.Duration(left - spinNs))
		}
		t = now()
	}
	return t
}
