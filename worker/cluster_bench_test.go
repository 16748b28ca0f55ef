package worker_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clockwork-go/clockwork/client"
	"github.com/clockwork-go/clockwork/controller"
	"github.com/clockwork-go/clockwork/e2e"
	"github.com/clockwork-go/clockwork/wire"
)

// BenchmarkCluster is the end-to-end rate of issue 6 measured from the worker side: a real
// controller over loopback with in-process sim workers (Clockwork's V100 zoo), synthesised
// inputs, 100 ms SLO, closed-loop clients. Sub-benchmarks vary workers × GPUs per worker and the
// model. The sim GPUs bound the rate: resnet18_v2 at batch 16 runs 7.12 ms, so 32 GPUs serve at
// most 71,900 r/s and 64 GPUs 143,800 r/s; past that bound the rest is CPU (2 cores here).
func BenchmarkCluster(b *testing.B) {
	for _, c := range []struct {
		workers, gpus, instances, clients, inflight int
		model                                       string
	}{
		{8, 4, 64, 4, 512, "resnet18_v2"},
		{8, 8, 64, 4, 1024, "resnet18_v2"},
		{16, 4, 64, 4, 1024, "resnet18_v2"},
		{16, 8, 128, 4, 2048, "resnet18_v2"},
	} {
		b.Run(fmt.Sprintf("workers=%d/gpus=%d/%s/inflight=%d", c.workers, c.workers*c.gpus, c.model, c.clients*c.inflight), func(b *testing.B) {
			benchCluster(b, c.workers, c.gpus, c.instances, c.clients, c.inflight, c.model)
		})
	}
}

func benchCluster(b *testing.B, workers, gpus, instances, clients, inflight int, model string) {
	ctx := context.Background()
	cfg := controller.DefaultConfig()
	cfg.SynthInput = true
	cl, err := e2e.Start(ctx, e2e.ClusterConfig{Workers: workers, GPUsPerWorker: gpus, Instances: e2e.Instances(instances, model), Controller: cfg})
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	var cs []*client.Client
	for range clients {
		c, err := client.Dial(ctx, client.Config{Addr: cl.Addr()})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		cs = append(cs, c)
	}
	for i := range instances { // load every instance somewhere
		_, _ = cs[0].Infer(ctx, "", nil, client.InferOptions{SLO: 100 * time.Millisecond, ModelID: uint32(i + 1)})
	}
	var next, okN atomic.Int64
	n := int64(b.N)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range cs {
		for g := range inflight {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := next.Add(1); i <= n; i = next.Add(1) {
					m := uint32((i*7+int64(g))%int64(instances)) + 1
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
	// What the GPUs did in the timed part: INFERs, mean batch, busy fraction (exec time / wall).
	var infers, items, execNs int64
	from := start.UnixNano()
	for _, w := range cl.Workers {
		recs, _ := w.Telemetry().Since(nil, 0)
		for _, r := range recs {
			if r.Type == wire.TypeInfer && r.Status == wire.StatusOK && r.Phases[wire.PhaseExec].StartNs >= from {
				infers++
				items += int64(r.Batch)
				execNs += r.ExecNs
			}
		}
	}
	if infers > 0 {
		b.ReportMetric(float64(items)/float64(infers), "mean-batch")
		b.ReportMetric(float64(execNs)/float64(el.Nanoseconds())/float64(workers*gpus), "gpu-busy")
	}
}
