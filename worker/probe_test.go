package worker

import (
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

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
	var infers, explained, blamed int
	for _, r := range recs {
		if r.Type.String() != "infer" {
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
	if n := strings.Count(log.b.String(), "\n"); n != infers+1 {
		t.Errorf("probe log has %d lines, want a header and %d", n, infers)
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}
