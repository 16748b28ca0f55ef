package probe

import (
	"fmt"
	"strings"
	"time"
)

// NumBuckets is the histograms' size: bucket b counts values in [2^b, 2^(b+1)) ns (bucket 0 also
// holds 0), the last one everything from 2^31 ns (2.1 s) up.
const NumBuckets = 32

// Histogram is a log2 histogram of durations in ns.
type Histogram struct {
	Buckets [NumBuckets]uint64
	SumNs   uint64
	MaxNs   uint64
}

// Count is the number of samples.
func (h *Histogram) Count() uint64 {
	var n uint64
	for _, c := range h.Buckets {
		n += c
	}
	return n
}

// Quantile returns an upper bound for quantile q in (0, 1]: the top of the bucket holding it,
// capped at the maximum seen; 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.Count()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for b, c := range h.Buckets {
		seen += c
		if seen >= rank {
			top := uint64(1)<<(b+1) - 1
			return time.Duration(min(top, h.MaxNs))
		}
	}
	return time.Duration(h.MaxNs)
}

// Mean is Sum/Count; 0 when empty.
func (h *Histogram) Mean() time.Duration {
	if n := h.Count(); n > 0 {
		return time.Duration(h.SumNs / n)
	}
	return 0
}

// Sub returns h − o bucket by bucket (for the change between two snapshots); Max stays h's.
func (h Histogram) Sub(o *Histogram) Histogram {
	for i := range h.Buckets {
		h.Buckets[i] -= min(o.Buckets[i], h.Buckets[i])
	}
	h.SumNs -= min(o.SumNs, h.SumNs)
	return h
}

// Summary is "n=12 mean=40µs p50<=63µs p99<=511µs max=480µs".
func (h *Histogram) Summary() string {
	n := h.Count()
	if n == 0 {
		return "n=0"
	}
	return fmt.Sprintf("n=%d mean=%s p50<=%s p99<=%s max=%s", n, fmtDur(h.Mean()), fmtDur(h.Quantile(0.5)), fmtDur(h.Quantile(0.99)), fmtDur(time.Duration(h.MaxNs)))
}

// Bars draws the non-empty buckets as text bars, one line each.
func (h *Histogram) Bars(width int) string {
	lo, hi, peak := -1, -1, uint64(0)
	for b, c := range h.Buckets {
		if c > 0 {
			if lo < 0 {
				lo = b
			}
			hi = b
			peak = max(peak, c)
		}
	}
	if lo < 0 {
		return ""
	}
	var sb strings.Builder
	for b := lo; b <= hi; b++ {
		c := h.Buckets[b]
		n := int(c * uint64(width) / peak)
		if c > 0 && n == 0 {
			n = 1
		}
		fmt.Fprintf(&sb, "%10s .. %-10s %8d %s\n", fmtDur(time.Duration(uint64(1)<<b)), fmtDur(time.Duration(uint64(1)<<(b+1))), c, strings.Repeat("#", n))
	}
	return sb.String()
}

// ThreadStats is a registered thread's counters since it was registered.
type ThreadStats struct {
	TID   int
	Label string
	// RunQueue: waiting runnable for a CPU (after a wakeup or a preemption).
	// OffCPU: switch-out to switch-in, any reason.
	// IRQ, SoftIRQ: interrupt time on top of the thread.
	RunQueue, OffCPU, IRQ, SoftIRQ Histogram
	Preemptions                    uint64 // involuntary switch-outs
	Switches                       uint64 // all switch-outs
	FaultsUser, FaultsKernel       uint64
	IRQs, SoftIRQs                 uint64
}

func (s *ThreadStats) fromBPF(b *bpfThreadStats) {
	hs := [...]*Histogram{&s.RunQueue, &s.OffCPU, &s.IRQ, &s.SoftIRQ}
	for i, h := range hs {
		h.Buckets = b.Hist[i]
		h.SumNs = b.SumNs[i]
		h.MaxNs = b.MaxNs[i]
	}
	s.Preemptions, s.Switches = b.Preemptions, b.Switches
	s.FaultsUser, s.FaultsKernel = b.FaultsUser, b.FaultsKernel
	s.IRQs, s.SoftIRQs = b.Irqs, b.Softirqs
}
