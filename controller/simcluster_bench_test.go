package controller_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clockwork-go/clockwork/client"
	"github.com/clockwork-go/clockwork/controller"
	"github.com/clockwork-go/clockwork/e2e"
)

// BenchmarkSimCluster is BenchmarkEndToEnd against the real worker (package worker with the
// runtime/sim backend, Clockwork's V100 zoo) instead of the controller's test worker: 8 workers
// × 4 emulated GPUs, 64 instances of resnet18_v2, synthetic inputs, 4 client connections × 512
// requests in flight, 100 ms SLO.
func BenchmarkSimCluster(b *testing.B) {
	ctx := context.Background()
	cfg := controller.DefaultConfig()
	cfg.SynthInput = true
	cl, err := e2e.Start(ctx, e2e.ClusterConfig{Workers: 8, GPUsPerWorker: 4, Instances: e2e.Instances(64, "resnet18_v2"), Controller: cfg})
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	var clients []*client.Client
	for range 4 {
		c, err := client.Dial(ctx, client.Config{Addr: cl.Addr()})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	for i := range 64 { // load every instance somewhere
		_, _ = clients[0].Infer(ctx, "", nil, client.InferOptions{SLO: 100 * time.Millisecond, ModelID: uint32(i + 1)})
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
					m := uint32((i*7+int64(g))%64) + 1
					if _, err := c.Infer(ctx, "", nil, client.InferOptions{SLO: 100 * time.Millisecond, ModelID: m}); err == nil {
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
}
