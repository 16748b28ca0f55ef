package probe

import (
	"golang.org/x/sys/unix"
)

// Now reads CLOCK_MONOTONIC in ns: the clock of every Episode time (bpf_ktime_get_ns) and of Go's
// runtime nanotime. Any goroutine; does not allocate.
func Now() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic("BUG: probe: clock_gettime(CLOCK_MONOTONIC): " + err.Error())
	}
	return ts.Nano()
}

// Clock converts between another clock (such as the worker's wire clock) and CLOCK_MONOTONIC.
// Both must advance at the monotonic rate; only their origins differ.
type Clock struct {
	// OffsetNs is other − monotonic.
	OffsetNs int64
	// ErrorNs bounds the offset's error: half the narrowest bracket of the calibration reads.
	ErrorNs int64
}

// CalibrateClock measures other − Now() by bracketing other() between two reads of Now, 16
// times, keeping the narrowest bracket. Any goroutine.
func CalibrateClock(other func() int64) Clock {
	best := Clock{ErrorNs: -1}
	for range 16 {
		a := Now()
		o := other()
		b := Now()
		half := (b - a) / 2
		if best.ErrorNs < 0 || half < best.ErrorNs {
			best = Clock{OffsetNs: o - (a + half), ErrorNs: half}
		}
	}
	return best
}

// ToMono converts a time in the other clock to CLOCK_MONOTONIC.
func (c Clock) ToMono(otherNs int64) int64 { return otherNs - c.OffsetNs }

// FromMono converts a CLOCK_MONOTONIC time to the other clock.
func (c Clock) FromMono(monoNs int64) int64 { return monoNs + c.OffsetNs }
