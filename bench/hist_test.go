package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestHistogramBuckets(t *testing.T) {
	// Every value maps to a bucket whose range holds it, and buckets are contiguous.
	prevEnd := int64(0)
	for i := range 30 << subBits {
		lo, w := bucketRange(i)
		if lo != prevEnd {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevEnd)
		}
		if bucketOf(lo) != i || bucketOf(lo+w-1) != i {
			t.Fatalf("bucket %d [%d,+%d): bucketOf gives %d and %d", i, lo, w, bucketOf(lo), bucketOf(lo+w-1))
		}
		prevEnd = lo + w
	}
	if b := bucketOf(math.MaxInt64); b < 0 {
		t.Fatalf("bucketOf(MaxInt64) = %d", b)
	}
}

// TestHistogramQuantiles checks every reported percentile against the exact order statistic of a
// heavy-tailed sample: relative error within 2^-subBits (plus one unit for small values).
func TestHistogramQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h Histogram
	vals := make([]int64, 200_000)
	for i := range vals {
		vals[i] = int64(math.Exp(rng.NormFloat64()*2+14)) + rng.Int64N(3)
		h.Record(vals[i])
	}
	slices.Sort(vals)
	for _, q := range []float64{0, 0.001, 0.25, 0.5, 0.9, 0.99, 0.999, 0.9999, 0.99999, 1} {
		rank := max(int(math.Ceil(q*float64(len(vals)))), 1)
		want := vals[rank-1]
		got := h.Quantile(q)
		if math.Abs(float64(got-want)) > float64(want)/(1<<subBits)+1 {
			t.Errorf("q%g: got %d, exact %d (error %.4f%%)", q, got, want, 100*math.Abs(float64(got-want))/float64(want))
		}
	}
	if h.Max() != vals[len(vals)-1] || h.Min() != vals[0] || h.Count() != uint64(len(vals)) {
		t.Errorf("min/max/count %d/%d/%d, want %d/%d/%d", h.Min(), h.Max(), h.Count(), vals[0], vals[len(vals)-1], len(vals))
	}
}

func TestHistogramMerge(t *testing.T) {
	var a, b, all Histogram
	for i := range int64(10000) {
		v := i * i
		all.Record(v)
		if i%3 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
	}
	a.Merge(&b)
	for _, q := range []float64{0.1, 0.5, 0.99, 1} {
		if a.Quantile(q) != all.Quantile(q) {
			t.Errorf("q%g merged %d, direct %d", q, a.Quantile(q), all.Quantile(q))
		}
	}
	var empty Histogram
	if empty.Quantile(0.5) != 0 || empty.Mean() != 0 {
		t.Error("empty histogram not zero")
	}
}

func TestHistogramRecordAllocs(t *testing.T) {
	var h Histogram
	h.Record(1 << 40)
	if n := testing.AllocsPerRun(1000, func() { h.Record(12345678) }); n != 0 {
		t.Errorf("Record allocates %v times", n)
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	var h Histogram
	b.ReportAllocs()
	for i := range b.N {
		h.Record(int64(i) * 7919 % 200_000_000)
	}
}
