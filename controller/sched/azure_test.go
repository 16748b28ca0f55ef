package sched

import (
	"bufio"
	"cmp"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// zoo holds exec times (ms, CUDA graph, tf32, batch 1 and 16) and parameter counts (M) of
// torchvision models measured on the H100 (reference/anchors-h100.md). Batch sizes between
// are interpolated linearly.
var zoo = []struct {
	b1, b16, params float64
}{
	{0.506, 1.141, 11.69}, {0.947, 3.052, 25.56}, {1.870, 4.880, 44.55}, {2.754, 6.851, 60.19},
	{0.941, 3.801, 25.03}, {1.269, 4.534, 68.88}, {2.060, 5.009, 7.98}, {3.010, 9.662, 28.68},
	{0.460, 1.527, 3.50}, {0.556, 1.345, 5.48}, {1.871, 4.762, 23.83}, {0.857, 1.903, 6.62},
	{0.324, 0.908, 1.24}, {0.475, 0.939, 2.28}, {0.766, 2.205, 5.29}, {0.482, 1.448, 4.38},
	{0.979, 1.753, 4.34}, {0.731, 4.414, 138.36}, {0.246, 0.462, 61.10}, {0.729, 3.131, 28.59},
	{1.052, 4.502, 86.57},
}

// azureSpecs returns n model instances cycling through the zoo: 16 MiB pages, LOAD at the
// measured 54.5 GB/s.
func azureSpecs(n int) []*ModelSpec {
	specs := make([]*ModelSpec, n)
	for i := range specs {
		z := zoo[i%len(zoo)]
		pages := int32(math.Ceil(z.params * 4e6 / (16 << 20)))
		s := &ModelSpec{ID: int32(i), Pages: pages, LoadNs: int64(float64(pages) * (16 << 20) / 54.5)}
		for _, b := range []int32{1, 2, 4, 8, 16} {
			ms := z.b1 + (z.b16-z.b1)*float64(b-1)/15
			s.Batches = append(s.Batches, b)
			s.ExecNs = append(s.ExecNs, int64(ms*1e6))
		}
		specs[i] = s
	}
	return specs
}

// azureRows returns per-minute invocation counts of real Azure Functions (the 2019 trace
// sample committed in testdata/).
func azureRows(tb testing.TB) [][]float64 {
	f, err := os.Open("../../testdata/azure-functions-2019/invocations_per_function.sample500.min0480-0959.csv")
	if err != nil {
		tb.Fatalf("the committed Azure sample is missing: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var rows [][]float64
	for first := true; sc.Scan(); first = false {
		if first {
			continue
		}
		cols := strings.Split(sc.Text(), ",")
		if len(cols) < 5 {
			tb.Fatalf("azure trace row with %d columns", len(cols))
		}
		row := make([]float64, 0, len(cols)-4)
		for _, c := range cols[4:] {
			v, err := strconv.ParseFloat(c, 64)
			if err != nil {
				tb.Fatalf("azure trace: %v", err)
			}
			row = append(row, v)
		}
		rows = append(rows, row)
	}
	return rows
}

// azureWorkload gives each model instance the per-interval counts of a trace row chosen at
// random and started at a random minute (Clockwork's azure_fast: one trace minute per
// interval), or, without the trace, lognormal rates with lognormal per-interval bursts.
func azureWorkload(tb testing.TB, rng *rand.Rand, models, intervals int) [][]float64 {
	rows := azureRows(tb)
	w := make([][]float64, models)
	for m := range w {
		w[m] = make([]float64, intervals)
		if rows != nil {
			row := rows[rng.IntN(len(rows))]
			off := rng.IntN(len(row))
			for i := range w[m] {
				w[m][i] = row[(off+i)%len(row)]
			}
			continue
		}
		base := math.Exp(rng.NormFloat64() * 2)
		for i := range w[m] {
			w[m][i] = base * math.Exp(rng.NormFloat64()*0.5)
		}
	}
	return w
}

// runAzure replays the workload scaled so the mean offered rate is rate req/s, with
// intervalNs per trace minute, and returns the simulated world.
func runAzure(tb testing.TB, seed uint64, load [][]float64, rate float64, intervalNs int64) *simWorld {
	cfg := DefaultConfig()
	cfg.Classes = 1
	w := newSimWorldSpecs(tb, seed, cfg, 6, 6, 4500, azureSpecs(len(load))) // 4,500 16-MiB pages ≈ 70 GiB per GPU
	w.spikePermille, w.spikePercent = 1, 110                                // anchors-h100.md: p99.99 ≈ 1.1 × median
	total := 0.0
	for _, m := range load {
		for _, c := range m {
			total += c
		}
	}
	intervals := len(load[0])
	scale := rate * float64(intervals) * float64(intervalNs) / 1e9 / total
	type arrival struct {
		at    int64
		model int32
	}
	var id uint64
	var arr []arrival
	for i := range intervals {
		arr = arr[:0]
		for m := range load {
			mean := load[m][i] * scale
			// Poisson count by summing exponential gaps over the interval.
			for t := w.rng.ExpFloat64() / mean; mean > 0 && t < 1; t += w.rng.ExpFloat64() / mean {
				arr = append(arr, arrival{at: int64(i)*intervalNs + int64(t*float64(intervalNs)), model: int32(m)})
			}
		}
		slices.SortFunc(arr, func(a, b arrival) int { return cmp.Compare(a.at, b.at) })
		for _, a := range arr {
			w.advance(a.at)
			id++
			w.submit(id, a.model, 0, 100e6)
		}
	}
	w.advance(w.now + 1e9)
	if w.s.Live() != 0 || w.answered != len(w.reqs) {
		tb.Fatalf("%d requests, %d answered, %d live", len(w.reqs), w.answered, w.s.Live())
	}
	return w
}

// BenchmarkAzureSLO measures SLO attainment on an Azure-like workload over 4,026 model
// instances and 6 emulated GPUs with a 100 ms SLO (Clockwork §6.5): first the capacity, as the
// goodput when offered 3× more than a rough estimate; then attainment at 80 % of it.
func BenchmarkAzureSLO(b *testing.B) {
	const models, intervals, intervalNs = 4026, 60, int64(1e9)
	rng := rand.New(rand.NewPCG(7, 7))
	load := azureWorkload(b, rng, models, intervals)
	for b.Loop() {
		sat := runAzure(b, 1, load, 40000, intervalNs)
		capacity := float64(sat.ok) / (float64(intervals*int(intervalNs)) / 1e9)
		w := runAzure(b, 2, load, 0.8*capacity, intervalNs)
		b.ReportMetric(capacity, "capacity-req/s")
		b.ReportMetric(float64(len(w.reqs))/float64(intervals), "offered-req/s")
		b.ReportMetric(100*float64(w.ok-w.late)/float64(len(w.reqs)), "%within-slo")
		b.ReportMetric(float64(w.late), "late-ok")
		b.ReportMetric(float64(len(w.reqs)-(w.ok-w.late)), "missed")
		b.ReportMetric(float64(len(w.reqs)), "requests")
		b.ReportMetric(float64(w.statuses[StatusCannotMeetSLO]), "dropped")
		b.ReportMetric(float64(w.rejected), "worker-rejected")
		// Saturated goodput understates what the scheduler sustains (overload wastes work on
		// LOADs and drops), so show where attainment breaks.
		for _, f := range []float64{1, 1.25, 1.5, 2} {
			x := runAzure(b, 3, load, f*capacity, intervalNs)
			b.ReportMetric(100*float64(x.ok-x.late)/float64(len(x.reqs)), "%within-slo@"+strconv.Itoa(int(f*100))+"%")
		}
	}
}
