package probe

import (
	"fmt"
	"github.com/cilium/ebpf"
	"os"
	"runtime"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkOverhead runs short timed actions on a pinned, registered thread, alternating blocks
// with the programs attached and detached in the same run (the machine is shared and noisy, so
// only the ratio means something). Two loops, as a worker's executor runs them:
//
//   - throughput: back-to-back actions of a 20 µs nanosleep then work (20 µs: a worst case; 200
//     µs: a small INFER) (every action switches out and in, so the sched programs run twice per
//     action); reports actions/s with probes off and on (median of blocks) and the loss in %.
//   - lateness: actions due every 200 µs + work; the thread sleeps until 50 µs before and spins
//     to the start (the worker's sleep-then-spin); reports p99 lateness off and on.
//
// b.N is the number of actions per loop and mode; run it as -benchtime=20000x or more.
func BenchmarkOverhead(b *testing.B) {
	for _, work := range []int64{20_000, 200_000} {
		b.Run(fmt.Sprintf("work=%dus", work/1000), func(b *testing.B) { benchOverhead(b, work) })
	}
}

func benchOverhead(b *testing.B, work int64) {
	p := openOrSkip(b, Config{})
	// BPF run-time stats cost two clock reads per program run; only on request.
	withStats := os.Getenv("PROBE_BENCH_STATS") != ""
	if withStats {
		stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
		if err != nil {
			b.Fatalf("cannot enable BPF run-time stats: %v", err)
		}
		defer stats.Close()
	}
	// Blocks of ~100 ms (20 µs work): attaching or detaching disturbs the machine for a few ms
	// (static keys, RCU); with 10 ms blocks that transient doubled the measured loss.
	const block = 1000
	n := max(b.N, 2*block)
	type result struct {
		blockNs  []int64 // wall time of each throughput block
		lateness []int64
	}
	var res [2]result // 0 off, 1 on
	done := make(chan struct{})
	go func() {
		defer close(done)
		tid := pinSelf(b, runtime.NumCPU()-1)
		if err := p.RegisterThread(tid, "bench"); err != nil {
			b.Error(err)
			return
		}
		for i := 0; i < n; i += block {
			for _, on := range []int{0, 1} {
				if on == 1 && os.Getenv("PROBE_BENCH_AA") == "" {
					if err := p.attach(); err != nil {
						b.Error(err)
						return
					}
				} else {
					p.detach()
				}
				// Let attach/detach settle (static keys, RCU grace periods) before timing.
				_ = unix.Nanosleep(&unix.Timespec{Nsec: 5e6}, nil)
				r := &res[on]
				t0 := Now()
				for range block {
					_ = unix.Nanosleep(&unix.Timespec{Nsec: 20_000}, nil)
					spinFor(work)
				}
				r.blockNs = append(r.blockNs, Now()-t0)
				due := Now() + 200_000 + work
				for range block {
					if d := due - 50_000 - Now(); d > 0 {
						_ = unix.Nanosleep(&unix.Timespec{Nsec: d}, nil)
					}
					for Now() < due {
					}
					r.lateness = append(r.lateness, Now()-due)
					spinFor(work)
					due += 200_000 + work
				}
			}
		}
	}()
	<-done
	if b.Failed() {
		return
	}
	// Median block: robust to other processes' bursts on the shared machine.
	tput := func(r *result) float64 {
		slices.Sort(r.blockNs)
		return block / (float64(r.blockNs[len(r.blockNs)/2]) / 1e9)
	}
	p99 := func(r *result) float64 {
		slices.Sort(r.lateness)
		return float64(r.lateness[len(r.lateness)*99/100])
	}
	off, on := tput(&res[0]), tput(&res[1])
	b.ReportMetric(off, "actions/s-off")
	b.ReportMetric(on, "actions/s-on")
	b.ReportMetric(100*(off-on)/off, "loss-%")
	b.ReportMetric(p99(&res[0]), "p99-late-ns-off")
	b.ReportMetric(p99(&res[1]), "p99-late-ns-on")
	b.ReportMetric(float64(p.Dropped()), "dropped")
	if !withStats {
		return
	}
	// In-kernel cost of all programs (machine-wide, all CPUs) per action of the on blocks.
	onActions := float64(len(res[1].lateness) + len(res[1].blockNs)*block)
	var runNs, runs uint64
	for _, prog := range p.programs() {
		if st, err := prog.Stats(); err == nil {
			runNs += uint64(st.Runtime)
			runs += st.RunCount
		}
	}
	if testing.Verbose() {
		for name, prog := range p.programs() {
			if st, err := prog.Stats(); err == nil && st.RunCount > 0 {
				b.Logf("%-18s %6.2f runs/action %6.0f ns/run", name, float64(st.RunCount)/onActions, float64(st.Runtime)/float64(st.RunCount))
			}
		}
	}
	b.ReportMetric(float64(runNs)/onActions, "bpf-ns/action")
	b.ReportMetric(float64(runs)/onActions, "bpf-runs/action")
}

// spinFor burns d ns of CPU.
func spinFor(d int64) {
	end := Now() + d
	for Now() < end {
	}
}

// BenchmarkFaults touches 16 MiB of fresh anonymous memory (4096 faults) on a registered thread,
// alternating rounds with the programs attached and detached (one episode per fault goes
// through the ring buffer when attached). Reports ns per fault off and on (median round).
func BenchmarkFaults(b *testing.B) {
	p := openOrSkip(b, Config{})
	const size = 16 << 20
	psz := os.Getpagesize()
	var ns [2][]float64
	done := make(chan struct{})
	go func() {
		defer close(done)
		tid := pinSelf(b, runtime.NumCPU()-1)
		if err := p.RegisterThread(tid, "faulter"); err != nil {
			b.Error(err)
			return
		}
		for i := 0; i < max(b.N, 4); i++ {
			on := i & 1
			if on == 1 {
				if err := p.Attach(); err != nil {
					b.Error(err)
					return
				}
			} else {
				p.Detach()
			}
			_ = unix.Nanosleep(&unix.Timespec{Nsec: 5e6}, nil) // settle
			mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
			if err != nil {
				b.Error(err)
				return
			}
			t0 := Now()
			for off := 0; off < size; off += psz {
				mem[off] = 1
			}
			ns[on] = append(ns[on], float64(Now()-t0)/float64(size/psz))
			_ = unix.Munmap(mem)
			p.drain() // as the background poll would
		}
	}()
	<-done
	if b.Failed() {
		return
	}
	med := func(v []float64) float64 { slices.Sort(v); return v[len(v)/2] }
	off, on := med(ns[0]), med(ns[1])
	b.ReportMetric(off, "ns/fault-off")
	b.ReportMetric(on, "ns/fault-on")
	b.ReportMetric(100*(on-off)/off, "cost-%")
	b.ReportMetric(float64(p.Dropped()), "dropped")
}
