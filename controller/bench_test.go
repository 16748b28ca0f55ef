package controller

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clockwork-go/clockwork/client"
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
