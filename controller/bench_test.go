package controller

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clockwork-go/clockwork/client"
	"github.com/clockwork-go/clockwork/wire"
)

// BenchmarkEndToEnd drives a real controller over loopback with 8 in-process test workers of
// 4 GPUs each (32 emulated GPUs, INFER 1 ms + 0.2 ms per extra item), 64 models, synthetic
// inputs (no input or output bytes cross the links: this measures the controller), closed loop
// with 4 client connections × 512 requests in flight. Reports requests/s and the share of
// requests that succeeded.
func BenchmarkEndToEnd(b *testing.B) {
	models := make([]string, 64)
	for i := range models {
		models[i] = fmt.Sprintf("m%d", i)
	}
	r := newRig(b, 8, 4, true, models...)
	defer func() {
		if !r.closed {
			r.close()
		}
	}()
	ctx := context.Background()
	clients := []*client.Client{r.cli}
	for range 3 {
		c, err := client.Dial(ctx, client.Config{Addr: r.ctl.Addr().String()})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	// Warm up: load every model somewhere.
	for i, m := range models {
		_, _ = r.cli.Infer(ctx, m, nil, client.InferOptions{SLO: 100 * time.Millisecond, ModelID: uint32(i + 1)})
	}
	var next, okN atomic.Int64
	n := int64(b.N)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range clients {
		for g := range 512 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := next.Add(1); i <= n; i = next.Add(1) {
					m := uint32((i*7 + int64(g)) % int64(len(models)))
					if _, err := c.Infer(ctx, "", nil, client.InferOptions{SLO: 100 * time.Millisecond, ModelID: m + 1}); err == nil {
						okN.Add(1)
					}
				}
			}()
		}
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "req/s")
	b.ReportMetric(float64(okN.Load())/float64(b.N), "ok-frac")
	r.close()
	r.closed = true
	b.ReportMetric(float64(r.ctl.Stats().Ticks)/float64(b.N), "ticks/req")
}

// BenchmarkAzureEndToEnd replays an Azure-like open-loop workload through a real controller
// over loopback: 4,026 model instances, 6 test workers with one emulated GPU each (room for
// ~3,000 models, so LOADs and EVICTs happen), 100 ms SLO, lognormal model popularity with
// per-second bursts, Poisson arrivals at 8,000 req/s for 20 s, synthetic inputs. Reports the
// share answered OK within the SLO as measured by the client (which counts its own goroutine
// wake-up delays), successes the client saw late, and answers the controller sent late.
func BenchmarkAzureEndToEnd(b *testing.B) {
	const models, seconds, rate = 4026, 20, 8000.0
	names := make([]string, models)
	for i := range names {
		names[i] = fmt.Sprintf("m%d", i)
	}
	for b.Loop() {
		r := newRigPages(b, 6, 1, true, 1000, names...)
		ctx := context.Background()
		rng := rand.New(rand.NewPCG(1, 2))
		weights := make([]float64, models)
		var wg sync.WaitGroup
		var ok, late, total atomic.Int64
		var worst atomic.Int64
		start := time.Now()
		for s := range seconds {
			sum := 0.0
			for m := range weights {
				weights[m] = math.Exp(rng.NormFloat64()*2) * math.Exp(rng.NormFloat64()*0.5)
				sum += weights[m]
			}
			cum := make([]float64, models)
			acc := 0.0
			for m, w := range weights {
				acc += w / sum
				cum[m] = acc
			}
			for t := rng.ExpFloat64() / rate; t < 1; t += rng.ExpFloat64() / rate {
				at := start.Add(time.Duration((float64(s) + t) * 1e9))
				time.Sleep(time.Until(at)) // open loop: send at the trace's times
				m, _ := slices.BinarySearch(cum, rng.Float64())
				m = min(m, models-1)
				wg.Add(1)
				total.Add(1)
				go func() {
					defer wg.Done()
					t0 := time.Now()
					_, err := r.cli.Infer(ctx, "", nil, client.InferOptions{SLO: 100 * time.Millisecond, ModelID: uint32(m + 1)})
					el := time.Since(t0)
					for w := worst.Load(); int64(el) > w && !worst.CompareAndSwap(w, int64(el)); w = worst.Load() {
					}
					if err == nil {
						if el > 100*time.Millisecond {
							late.Add(1)
						} else {
							ok.Add(1)
						}
					}
				}()
			}
		}
		wg.Wait()
		r.close()
		st := r.ctl.Stats()
		b.ReportMetric(100*float64(ok.Load())/float64(total.Load()), "%within-slo")
		b.ReportMetric(float64(late.Load()), "late-ok")
		b.ReportMetric(float64(total.Load())/seconds, "offered-req/s")
		b.ReportMetric(float64(st.Answered[wire.StatusCannotMeetSLO]), "dropped")
		b.ReportMetric(float64(worst.Load())/1e6, "max-latency-ms")
		b.ReportMetric(float64(st.Late), "ctl-late") // answers the controller sent after the deadline
	}
}
