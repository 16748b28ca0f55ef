package worker

import (
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/clockwork-go/clockwork/runtime/sim"
	"github.com/clockwork-go/clockwork/wire"
)

func pct(s []int64, f float64) float64 { return float64(s[int(f*float64(len(s)-1))]) }

// BenchmarkLateness measures exec start − earliest of INFERs on sim ("fast", batch 1, 100 µs),
// one at a time with earliest 1 ms after sending, with executors unpinned or pinned to the last
// CPU (and SCHED_FIFO where allowed), sleeping only or spinning before the start. Report:
// p50/p99/p99.9/max in ns.
func BenchmarkLateness(b *testing.B) {
	last := runtime.NumCPU() - 1
	for _, c := range []struct {
		name string
		cpus []int
		spin int64
		fifo bool
	}{{fmt.Sprintf("pinned-cpu%d-fifo/spin50us", last), []int{last}, sim.DefaultSpinNs, true}, {"unpinned/sleep", nil, 0, false}, {"unpinned/spin50us", nil, sim.DefaultSpinNs, false}, {"unpinned/spin250us", nil, 250_000, false}, {fmt.Sprintf("pinned-cpu%d/sleep", last), []int{last}, 0, false}, {fmt.Sprintf("pinned-cpu%d/spin50us", last), []int{last}, sim.DefaultSpinNs, false}, {fmt.Sprintf("pinned-cpu%d/spin250us", last), []int{last}, 250_000, false}} {
		b.Run(c.name, func(b *testing.B) {
			cfg := testConfig(1)
			cfg.CPUs, cfg.SpinNs = c.cpus, c.spin
			if c.fifo {
				cfg.FIFO, cfg.FIFOPriority = true, 10
				w, err := New(cfg)
				if err != nil {
					b.Skipf("no SCHED_FIFO here: %v", err)
				}
				w.Close()
			}
			w := startWorker(b, cfg)
			k := dial(b, w)
			k.register(1, "fast")
			k.load(1, 0)
			in := make([]byte, 64)
			m := &wire.Infer{Batch: 1}
			late := make([]int64, 0, b.N)
			for b.Loop() {
				k.id++
				now := UnixMonoClock()
				m.Window = wire.Window{ActionID: k.id, ModelID: 1, EarliestNs: now + 1e6, LatestNs: now + 1e9}
				k.send(m, in)
				k.mustRecv(wire.TypeResult)
				if k.res.Status != wire.StatusOK {
					b.Fatal(&k.res)
				}
				late = append(late, k.res.Phases[wire.PhaseExec].StartNs-m.EarliestNs)
			}
			slices.Sort(late)
			b.ReportMetric(pct(late, 0.5), "p50-late-ns")
			b.ReportMetric(pct(late, 0.99), "p99-late-ns")
			b.ReportMetric(pct(late, 0.999), "p99.9-late-ns")
			b.ReportMetric(float64(late[len(late)-1]), "max-late-ns")
		})
	}
}

// BenchmarkActions16GPUs measures INFERs per second one worker sustains with 16 emulated GPUs
// over one controller connection ("tiny": 8-byte input and output, 1 µs exec), with up to 4096
// actions outstanding, and heap allocations per action in the whole process (worker and the
// benchmark's controller together).
//
// Sub-benchmarks: executors on locked OS threads with precise waits (spin 50 µs, the default),
// and sleep-only executors, which run as plain goroutines (Worker.lockThreads).
func BenchmarkActions16GPUs(b *testing.B) {
	b.Run("locked-spin50us", func(b *testing.B) { benchActions16(b, sim.DefaultSpinNs) })
	b.Run("unlocked-sleep", func(b *testing.B) { benchActions16(b, 0) })
}

func benchActions16(b *testing.B, spin int64) {
	cfg := testConfig(16)
	cfg.IOSlotBytes = 4 << 10
	cfg.HostIOBytes = 64 << 20 // 16384 4-KiB buffers: more than the 4096 outstanding
	cfg.SpinNs = spin
	w := startWorker(b, cfg)
	k := dial(b, w)
	k.register(2, "tiny")
	for g := range 16 {
		if st := k.load(2, g); st != wire.StatusOK {
			b.Fatal(st)
		}
	}
	in := make([]byte, 8)
	const window = 4096
	credits := make(chan struct{}, window)
	recvDone := make(chan error, 1)
	run := func(n int) {
		go func() {
			for i := 0; i < n; i++ {
				if _, err := k.recv(); err != nil {
					recvDone <- err
					return
				}
				if k.res.Status != wire.StatusOK {
					recvDone <- fmt.Errorf("%s", &k.res)
					return
				}
				<-credits
			}
			recvDone <- nil
		}()
		m := &wire.Infer{Batch: 1}
		for i := 0; i < n; i++ {
			select {
			case credits <- struct{}{}:
			case err := <-recvDone:
				b.Fatalf("receiver stopped: %v", err)
			}
			k.id++
			now := UnixMonoClock()
			m.Window = wire.Window{ActionID: k.id, ModelID: 2, GPU: uint16(i % 16), EarliestNs: now, LatestNs: now + int64(time.Minute)}
			if err := k.c.Send(m, in); err != nil {
				b.Fatal(err)
			}
		}
		if err := <-recvDone; err != nil {
			b.Fatal(err)
		}
	}
	run(20000) // warm the pools
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	b.ResetTimer()
	start := time.Now()
	run(b.N)
	el := time.Since(start)
	b.StopTimer()
	runtime.ReadMemStats(&ms1)
	b.ReportMetric(float64(b.N)/el.Seconds(), "actions/s")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(b.N), "allocs/action")
}
