package bench

import (
	"fmt"
	"math"
	"math/bits"
)

// subBits sets the histogram's precision: 2^subBits linear sub-buckets per power of two, so a
// recorded value is known to within 2^-subBits (< 0.1 %) of itself, at every percentile. Values
// below 2^subBits are exact.
const subBits = 10

// Histogram is an HDR-style log-linear histogram of non-negative int64 values (nanoseconds here).
//
// Why our own and not HdrHistogram-go: the well-kept Go port is archived and brings a dependency
// for about 100 lines; this one keeps the same idea (log buckets split linearly, fixed relative
// error, exact min/max/count) with no configuration to get wrong, grows only as far as the largest
// value recorded (≈ 31 K buckets for 100 s in ns), and merges by adding counts.
//
// The zero value is ready to use. Not safe for concurrent use.
type Histogram struct {
	counts   []uint64
	total    uint64
	min, max int64
	sum      float64
}

func bucketOf(v int64) int {
	if v < 1<<subBits {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - subBits - 1
	return (shift+1)<<subBits + int(uint64(v)>>shift) - 1<<subBits
}

// bucketRange returns the lowest value in bucket i and the bucket's width.
func bucketRange(i int) (lo, width int64) {
	block := i >> subBits
	if block == 0 {
		return int64(i), 1
	}
	shift := block - 1
	return (int64(i&(1<<subBits-1)) + 1<<subBits) << shift, 1 << shift
}

// Record adds v; negative values are recorded as 0.
//
// Timing: allocates only when v exceeds every value so far by a power of two.
func (h *Histogram) Record(v int64) {
	v = max(v, 0)
	i := bucketOf(v)
	if i >= len(h.counts) {
		n := max(2*len(h.counts), i+1, 1<<(subBits+1))
		c := make([]uint64, n)
		copy(c, h.counts)
		h.counts = c
	}
	h.counts[i]++
	if h.total == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.total++
	h.sum += float64(v)
}

// Merge adds o's values to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.total == 0 {
		return
	}
	if len(o.counts) > len(h.counts) {
		c := make([]uint64, len(o.counts))
		copy(c, h.counts)
		h.counts = c
	}
	for i, n := range o.counts {
		h.counts[i] += n
	}
	if h.total == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.total += o.total
	h.sum += o.sum
}

// Count is the number of values recorded.
func (h *Histogram) Count() uint64 { return h.total }

// Min and Max are exact.
func (h *Histogram) Min() int64 { return h.min }

// Max is the largest value recorded, exactly.
func (h *Histogram) Max() int64 { return h.max }

// Mean is the exact mean (0 when empty).
func (h *Histogram) Mean() float64 {
	if h.total == 0 {
		return 0
	}
	return h.sum / float64(h.total)
}

// Quantile returns the value at quantile q (0..1): the smallest recorded value v such that at
// least q of the values are ≤ v, to within the bucket's relative error 2^-subBits. Quantile(1) is
// Max exactly and Quantile(0) Min. Empty: 0.
func (h *Histogram) Quantile(q float64) int64 {
	if h.total == 0 {
		return 0
	}
	if q <= 0 {
		return h.min
	}
	if q >= 1 {
		return h.max
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	rank = max(rank, 1)
	var cum uint64
	for i, n := range h.counts {
		cum += n
		if cum >= rank {
			lo, w := bucketRange(i)
			return min(max(lo+w/2, h.min), h.max)
		}
	}
	panic(fmt.Sprintf("BUG: histogram of %d values ran out of buckets at rank %d", h.total, rank))
}

// CDF calls fn for every non-empty bucket in increasing order with the bucket's value and the
// fraction of values at or below it.
func (h *Histogram) CDF(fn func(v int64, frac float64)) {
	var cum uint64
	for i, n := range h.counts {
		if n == 0 {
			continue
		}
		cum += n
		lo, w := bucketRange(i)
		fn(min(max(lo+w/2, h.min), h.max), float64(cum)/float64(h.total))
	}
}
