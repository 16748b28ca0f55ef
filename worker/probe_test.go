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
		if os.Getenv("CI") == "true" { // CI runs as root on a BTF kernel: the probes must work there
			t.Fatalf("eBPF probes unavailable here: %v", err)
		}
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
// -benchtime=1000000x: 50 rounds). Each round runs three blocks in rotated order and reports
// the paired losses' median and quartiles: total (on vs off), kernel (side 1 attached vs
// detached) and worker side (side 1 detached vs off). PROBE_BENCH_AA=1: everything detached
// (the noise floor); PROBE_BENCH_LATE=200us: Probe's threshold (default 0: every INFER is
// queued for explaining, up to ProbeMaxPerSec).
func BenchmarkProbe(b *testing.B) {
	p, err := probe.Open(probe.Config{})
	if errors.Is(err, probe.ErrUnavailable) {
		b.Skipf("eBPF probes unavailable here: %v", err)
	}
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	lateNs := int64(0) // worst case: every INFER queued for explaining (rate-limited)
	if v := os.Getenv("PROBE_BENCH_LATE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("PROBE_BENCH_LATE=%q: %v", v, err)
		}
		lateNs = int64(d)
	}
	pr := NewProbe(p, lateNs, nil)
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
	const block, window, lateN = 20000, 64, 50
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
		for range lateN {
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
	// Each round runs three blocks, order rotated: side 0 detached ("off"), side 1 attached
	// ("on"), side 1 detached ("on-side, kernel off"). Paired ratios within a round cancel the
	// machine's drift (others' builds): total loss = on vs off, kernel = on vs side 1 detached,
	// worker side (queueing explanations, no kernel) = side 1 detached vs off.
	type blk struct {
		side   int
		attach bool
	}
	blocks := [3]blk{{0, false}, {1, true}, {1, false}}
	var total, kernel, workerSide []float64
	b.ResetTimer()
	for round := 0; round*block < max(b.N, 2*block); round++ {
		var tp [3]float64
		for j := range 3 {
			bi := (j + round) % 3
			bl := blocks[bi]
			if !bl.attach || os.Getenv("PROBE_BENCH_AA") != "" { // AA: all off, to see the noise
				p.Detach()
			} else if err := p.Attach(); err != nil {
				b.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond) // let the attach/detach settle
			s := sides[bl.side]
			runBlock(s)
			tp[bi] = s.tput[len(s.tput)-1]
			if bl.side == 1 && !bl.attach {
				s.tput = s.tput[:len(s.tput)-1] // side 1's figures: attached blocks only
				s.late = s.late[:len(s.late)-lateN]
			}
		}
		total = append(total, 100*(tp[0]-tp[1])/tp[0])
		kernel = append(kernel, 100*(tp[2]-tp[1])/tp[2])
		workerSide = append(workerSide, 100*(tp[0]-tp[2])/tp[0])
	}
	b.StopTimer()
	med := func(v []float64) float64 { slices.Sort(v); return v[len(v)/2] }
	off, on := med(sides[0].tput), med(sides[1].tput)
	b.ReportMetric(off, "infers/s-off")
	b.ReportMetric(on, "infers/s-on")
	b.ReportMetric(100*(off-on)/off, "loss-%")
	// Paired losses: median and interquartile range over rounds.
	for _, m := range []struct {
		name string
		v    []float64
	}{{"paired-loss", total}, {"kernel-loss", kernel}, {"workerside-loss", workerSide}} {
		slices.Sort(m.v)
		n := len(m.v)
		b.ReportMetric(m.v[n/2], m.name+"-%-med")
		b.ReportMetric(m.v[n/4], m.name+"-%-q1")
		b.ReportMetric(m.v[(3*n)/4], m.name+"-%-q3")
	}
	b.ReportMetric(float64(len(total)), "rounds")
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
