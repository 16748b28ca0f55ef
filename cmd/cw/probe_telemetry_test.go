package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clockwork-go/clockwork/internal/probe"
	"github.com/clockwork-go/clockwork/worker"
)

// TestToolsProbeTelemetry attaches cw tools probe -telemetry to this process while a thread
// named like a worker's exec thread (cw-g0-exec) runs actions on a CPU it shares with a
// spinning competitor (nice -20) and appends their records, in the worker's TSV format and wire clock
// (worker.UnixMonoClock), to a telemetry file. Each action sleeps 50 µs past its earliest, so it starts late
// when the competitor holds the CPU; the tool's lines for late actions must name it.
func TestToolsProbeTelemetry(t *testing.T) {
	p, err := probe.Open(probe.Config{})
	if errors.Is(err, probe.ErrUnavailable) {
		skipOrFailInCI(t, "eBPF probes unavailable here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	path := filepath.Join(t.TempDir(), "telemetry.tsv")
	if err := os.WriteFile(path, []byte(worker.TSVHeader+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb syncBuffer
	done := make(chan int)
	go func() {
		args := []string{"tools", "probe", "-pid", strconv.Itoa(os.Getpid()), "-duration", "900ms", "-interval", "100ms",
			"-min", "20us", "-telemetry", path, "-late", "150us"}
		done <- runMain(context.Background(), args, &out, &errb)
	}()
	for !strings.Contains(errb.String(), "probe: following") {
		select {
		case code := <-done:
			t.Fatalf("exit %d: %s", code, errb.String())
		default:
		}
		time.Sleep(5 * time.Millisecond) // real kernel time: the tool attaches its probes
	}

	var stop atomic.Bool
	defer stop.Store(true)
	cpu := runtime.NumCPU() - 1
	ready := make(chan int)
	go func() { // competitor
		runtime.LockOSThread() // never unlocked: the pinned thread exits with the goroutine
		var set unix.CPUSet
		set.Set(cpu)
		_ = unix.SchedSetaffinity(0, &set)
		_ = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafePtr("competitor\x00")), 0, 0, 0)
		_ = unix.Setpriority(unix.PRIO_PROCESS, 0, -20) // outweighs the other tests on this machine
		ready <- unix.Gettid()
		for !stop.Load() {
		}
	}()
	comp := <-ready
	execDone := make(chan error)
	go func() { // the executor: named, then the tool's next rescan (100 ms) registers it
		runtime.LockOSThread()
		var set unix.CPUSet
		set.Set(cpu)
		_ = unix.SchedSetaffinity(0, &set)
		_ = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafePtr("cw-g0-exec\x00")), 0, 0, 0)
		time.Sleep(250 * time.Millisecond) // let the tool register this thread
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			execDone <- err
			return
		}
		defer f.Close()
		var sb strings.Builder
		for id, end := 1, time.Now().Add(300*time.Millisecond); time.Now().Before(end); id++ {
			earliest := worker.UnixMonoClock() // the worker's wire clock, as in its telemetry
			_ = unix.Nanosleep(&unix.Timespec{Nsec: 50_000}, nil)
			start := worker.UnixMonoClock()
			for worker.UnixMonoClock()-start < 100_000 {
			}
			stop := worker.UnixMonoClock()
			fmt.Fprintf(&sb, "%d\tinfer\tsuccess\t7\t0\t1\t%d\t%d\t%d\t%d\t0\t0\t%d\t%d\t%d\t%d\t0\t0\t%d\n",
				id, earliest, earliest+10_000_000, earliest, start-earliest, earliest, earliest, start, stop, stop-start)
			if id%16 == 0 {
				if _, err := f.WriteString(sb.String()); err != nil {
					execDone <- err
					return
				}
				sb.Reset()
			}
		}
		_, err = f.WriteString(sb.String())
		execDone <- err
		for !stop.Load() { // stay alive, as a worker's exec thread does, until the tool is done
			_ = unix.Nanosleep(&unix.Timespec{Nsec: 1_000_000}, nil)
		}
	}()
	if err := <-execDone; err != nil {
		t.Fatal(err)
	}
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s%s", code, out.String(), errb.String())
	}
	var late, named, big, bigExplained int
	for _, l := range strings.Split(out.String(), "\n") {
		if !strings.HasPrefix(l, "late ") {
			continue
		}
		late++
		if late <= 5 {
			t.Logf("%s", l)
		}
		if !strings.Contains(l, "infer ") || !strings.Contains(l, "model 7 gpu 0 tid ") {
			t.Errorf("line does not name the action: %q", l)
		}
		if strings.Contains(l, fmt.Sprintf("pid %d (competitor)", comp)) {
			named++
		}
		// An action over 1 ms late on this thread waited for its CPU: if the tool's clock
		// conversion were off by more than the action, its window would hold no such episode.
		if i := strings.Index(l, ": late "); i >= 0 {
			ls, _, _ := strings.Cut(l[i+len(": late "):], ",")
			if d, err := time.ParseDuration(ls); err == nil && d >= time.Millisecond {
				big++
				if strings.Contains(l, "for CPU") || strings.Contains(l, "preempted by") {
					bigExplained++
				}
			}
		}
	}
	t.Logf("%d late actions explained, %d name the competitor (pid %d), %d of %d over 1 ms late name a CPU wait or preemption", late, named, comp, bigExplained, big)
	if late < 5 {
		t.Fatalf("%d late actions explained, want >= 5 (a 50µs sleep on a CPU shared with a spinner):\n%s%s", late, out.String(), errb.String())
	}
	// Other tests share this machine and preempt the thread too: the competitor need not be
	// behind every late action, but it holds the CPU most of the time.
	if named < 3 {
		t.Errorf("%d of %d late actions name the competitor, want >= 3:\n%s", named, late, out.String())
	}
	if bigExplained*5 < big*4 {
		t.Errorf("%d of %d actions over 1 ms late explained by a run-queue wait or preemption, want >= 80 %%:\n%s", bigExplained, big, out.String())
	}
}
