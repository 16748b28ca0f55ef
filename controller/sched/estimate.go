package sched

import "math"

// window holds the last windowSize measurements of one duration and their p99.
//
// Clockwork keeps 10 samples and takes the interpolated 99th percentile, which is close to the
// maximum: one slow run raises the estimate for the next ten runs, so a burst of slow runs is
// met with caution, and the estimate falls again once it leaves the window.
type window struct {
	samples [windowSize]int64
	n, pos  uint8
	p99     int64
}

const windowSize = 10

func (w *window) seed(d int64) {
	*w = window{}
	w.p99 = d
}

// add records a measurement and recomputes the p99.
//
// Timing: Step (result path); no allocation; ~50 ns.
func (w *window) add(d int64) {
	w.samples[w.pos] = d
	w.pos = (w.pos + 1) % windowSize
	if w.n < windowSize {
		w.n++
	}
	var s [windowSize]int64
	n := int(w.n)
	copy(s[:n], w.samples[:n])
	for i := 1; i < n; i++ { // insertion sort: n <= 10
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	// Interpolated rank 0.99·(n−1), in integer hundredths.
	r := 99 * (n - 1)
	lo, frac := r/100, int64(r%100)
	if lo+1 < n {
		w.p99 = s[lo] + (s[lo+1]-s[lo])*frac/100
	} else {
		w.p99 = s[lo]
	}
}

// tracker predicts when one lane of a GPU (exec or PCIe) is free: a FIFO of outstanding
// actions with their expected durations, anchored at begin, the predicted start of the head
// (Clockwork's WorkerTracker, §D.6). Completions re-anchor it, so errors do not accumulate.
type tracker struct {
	items []trackItem
	total int64 // sum of items' durations
	begin int64 // predicted (or, after a completion, actual) start of items[0]
}

type trackItem struct {
	id  uint64
	dur int64
}

// available is when the lane can start new work: after everything outstanding, and not
// before now+future (the time an action takes to reach the worker). A head overdue by more
// than lag is assumed to be running late by lag, so a lost result cannot stall the lane
// forever; the controller's liveness check handles workers that stopped answering.
func (t *tracker) available(now, future, lag int64) int64 {
	if len(t.items) > 0 {
		if end := t.begin + t.items[0].dur; end < now-lag {
			t.begin = now - lag - t.items[0].dur
		}
	}
	return max(t.begin+t.total, now+future)
}

// wake is the earliest time after now at which available falls inside a schedule-ahead
// window of ahead. While the head is overdue by more than lag, available moves with the clock,
// so no tick helps: the lane waits for a result (or for its worker to be declared lost).
func (t *tracker) wake(now, ahead, lag int64) int64 {
	if len(t.items) > 0 && t.begin+t.items[0].dur <= now-lag {
		return math.MaxInt64
	}
	return max(t.begin+t.total-ahead+1, now+1)
}

// add appends an action predicted to start at start (the value available returned).
func (t *tracker) add(id uint64, dur, start int64) {
	if len(t.items) == 0 {
		t.begin = start
	}
	t.items = append(t.items, trackItem{id, dur})
	t.total += dur
}

// done removes a finished action. end is when it ended (success) or when the failure became
// known (error); the next action is assumed to start then.
func (t *tracker) done(id uint64, end int64) {
	for i := range t.items {
		if t.items[i].id != id {
			continue
		}
		t.total -= t.items[i].dur
		copy(t.items[i:], t.items[i+1:])
		t.items = t.items[:len(t.items)-1]
		if i == 0 {
			t.begin = end
		}
		return
	}
}

func (t *tracker) reset() {
	t.items = t.items[:0]
	t.total = 0
	t.begin = 0
}
