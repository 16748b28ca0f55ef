package worker

import (
	"errors"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clockwork-go/clockwork/runtime/device"
	"github.com/clockwork-go/clockwork/wire"

	"github.com/clockwork-go/clockwork/internal/probe"
)

// TestProbeExplainsLateInfers pins the exec thread to a CPU shared with a spinning competitor
// and checks that late INFERs' records name the competitor, and that executor threads carry
// their cw-g<gpu>-<lane> names.
func TestProbeExplainsLateInfers(t *testing.T) {
	p, err := probe.Open(probe.Config{MinEpisode: 10 * time.Microsecond})
	if errors.Is(err, probe.ErrUnavailable) {
		t.Skipf("eBPF probes unavailable here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cpu := runtime.NumCPU() - 1
	var stop atomic.Bool
	defer stop.Store(true)
	compTid := make(chan int)
	go func() {
		runtime.LockOSThread() // never unlocked: the pinned thread exits with the goroutine
		var set unix.CPUSet
		set.Set(cpu)
		_ = unix.SchedSetaffinity(0, &set)
		// nice -20: about 87x the exec thread's weight, so the exec thread queues behind it
		// after each wakeup instead of preempting it at once.
		_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), -20)
		compTid <- unix.Gettid()
		for !stop.Load() {
		}
	}()
	comp := <-compTid

	var log lockedBuf
	pr := NewProbe(p, 1, &log) // 1 ns: explain every INFER
	cfg := testConfig(1)
	cfg.CPUs = []int{cpu}
	cfg.SpinNs = 50_000
	cfg.Probe = pr
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	go w.Run(t.Context())
	k := dial(t, w)
	k.register(1, "fast")
	if st := k.load(1, 0); st.String() != "ok" {
		t.Fatalf("load: %v", st)
	}
	for range 40 {
		k.infer(1, 0, 1, make([]byte, 64))
	}
	tasks, err := probe.Tasks(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tk := range tasks {
		if strings.HasPrefix(tk.Comm, "cw-g0-") {
			names = append(names, tk.Comm)
		}
	}
	if len(names) < 4 {
		t.Errorf("executor threads named cw-g0-*: %v; want one per lane (4)", names)
	}
	k.c.Abort()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	pr.Close()
	recs, _ := w.Telemetry().Since(nil, 0)
	var infers, explained, blamed, loads int
	for _, r := range recs {
		if r.Type == wire.TypeLoadWeights && r.Probe != "" {
			loads++ // with LateNs 1 ns the LOAD is explained too
		}
		if r.Type != wire.TypeInfer {
			continue
		}
		infers++
		if r.Probe != "" {
			explained++
		}
		if strings.Contains(r.Probe, "pid "+strconv.Itoa(comp)+" (") {
			blamed++
		}
	}
	t.Logf("%d INFERs, %d explained, %d name the competitor (tid %d); log:\n%s", infers, explained, blamed, comp, firstLines(log.b.String(), 40))
	if infers != 40 || explained != infers {
		t.Errorf("%d of %d INFERs explained; with LateNs 1 ns every one must be", explained, infers)
	}
	if blamed == 0 {
		t.Errorf("no INFER explanation names the competitor pid %d on the exec thread's CPU", comp)
	}
	if loads != 1 {
		t.Errorf("%d LOADs explained, want 1", loads)
	}
	if n := strings.Count(log.b.String(), "\n"); n != infers+loads+1 {
		t.Errorf("probe log has %d lines, want a header and %d", n, infers+loads)
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

// BenchmarkProbe compares two sim workers in one process, one with Config.Probe (executor
// threads registered, late INFERs explained) and one without, in alternating blocks; in the
// "off" blocks the BPF programs are detached, so nothing runs in the kernel. Both lock their
// executors (spin 50 µs). Reports: INFERs/s ("tiny", 1 µs exec, 64 outstanding; median of
// blocks) off and on and the loss in %, and p99 lateness of one-at-a-time INFERs ("fast", 100
// µs exec, earliest 1 ms after sending) off and on. b.N: INFERs per mode (blocks of 20000; run
// -benchtime=200000x or more).
func BenchmarkProbe(b *testing.B) {
	p, err := probe.Open(probe.Config{})
	if errors.Is(err, probe.ErrUnavailable) {
		b.Skipf("eBPF probes unavailable here: %v", err)
	}
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	pr := NewProbe(p, 0, nil)
	defer pr.Close()
	type side struct {
		k     *ctl
		tput  []float64
		late  []int64
		probe bool
	}
	var sides [2]*side
	for i := range sides {
		cfg := testConfig(1)
		cfg.IOSlotBytes = 4 << 10
		cfg.SpinNs = 50_000
		if i == 1 {
			cfg.Probe = pr
		}
		w := startWorker(b, cfg)
		k := dial(b, w)
		k.register(1, "fast")
		k.register(2, "tiny")
		k.load(1, 0)
		k.load(2, 0)
		sides[i] = &side{k: k, probe: i == 1}
	}
	// Blocks of ~100 ms: attaching or detaching disturbs the machine for a few ms (static
	// keys, RCU), which shorter blocks would measure instead of the steady state.
	const block, window = 20000, 64
	in := make([]byte, 64)
	runBlock := func(s *side) {
		k := s.k
		// Throughput: keep window INFERs of "tiny" outstanding.
		m := &wire.Infer{Batch: 1}
		t0 := time.Now()
		sent, got := 0, 0
		for got < block {
			for sent < block && sent-got < window {
				k.id++
				now := UnixMonoClock()
				m.Window = wire.Window{ActionID: k.id, ModelID: 2, EarliestNs: now, LatestNs: now + int64(time.Minute)}
				if err := k.c.Send(m, in[:8]); err != nil {
					b.Fatal(err)
				}
				sent++
			}
			k.mustRecv(wire.TypeResult)
			if k.res.Status != wire.StatusOK {
				b.Fatal(&k.res)
			}
			got++
		}
		s.tput = append(s.tput, block/time.Since(t0).Seconds())
		// Lateness: a few one-at-a-time INFERs of "fast".
		for range 50 {
			k.id++
			now := UnixMonoClock()
			m.Window = wire.Window{ActionID: k.id, ModelID: 1, EarliestNs: now + 1e6, LatestNs: now + 1e9}
			if err := k.c.Send(m, in); err != nil {
				b.Fatal(err)
			}
			k.mustRecv(wire.TypeResult)
			if k.res.Status != wire.StatusOK {
				b.Fatal(&k.res)
			}
			s.late = append(s.late, k.res.Phases[wire.PhaseExec].StartNs-m.EarliestNs)
		}
	}
	b.ResetTimer()
	for round := 0; round*block < max(b.N, 2*block); round++ {
		for j := range 2 {
			i := j ^ round&1                                 // alternate which side goes first: no order bias
			if i == 0 || os.Getenv("PROBE_BENCH_AA") != "" { // AA: both sides off, to see the noise
				p.Detach()
			} else if err := p.Attach(); err != nil {
				b.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond) // let the attach/detach settle
			runBlock(sides[i])
		}
	}
	b.StopTimer()
	med := func(v []float64) float64 { slices.Sort(v); return v[len(v)/2] }
	off, on := med(sides[0].tput), med(sides[1].tput)
	b.ReportMetric(off, "infers/s-off")
	b.ReportMetric(on, "infers/s-on")
	b.ReportMetric(100*(off-on)/off, "loss-%")
	for _, s := range sides {
		slices.Sort(s.late)
	}
	b.ReportMetric(pct(sides[0].late, 0.99), "p99-late-ns-off")
	b.ReportMetric(pct(sides[1].late, 0.99), "p99-late-ns-on")
	b.ReportMetric(float64(pr.Dropped()), "unexplained")
}

// TestProbeExecDoneAllocs: the exec thread's part (threshold check, rate limit, queueing)
// allocates nothing.
func TestProbeExecDoneAllocs(t *testing.T) {
	pr := &Probe{lateNs: 1000, reqs: make(chan probeReq, 1)}
	w, err := New(testConfig(1))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	e := w.gpus[0].exec[device.LaneExec]
	a := &action{id: 1, earliest: 0, expected: 100}
	pr.offset(w) // calibrate once, as the first late INFER does
	n := testing.AllocsPerRun(1000, func() {
		pr.execDone(w, e, a, 5000, 6000) // late: queued, or dropped when the queue is full
		pr.execDone(w, e, a, 10, 20)     // on time: ignored
	})
	if n != 0 {
		t.Errorf("execDone allocates %.1f times per call", n)
	}
	if len(pr.reqs) != 1 || pr.Dropped() == 0 {
		t.Errorf("queued %d, dropped %d: want 1 queued and the rest dropped", len(pr.reqs), pr.Dropped())
	}
}
