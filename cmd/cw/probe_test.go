package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/clockwork-go/clockwork/internal/probe"
)

// TestToolsProbe watches this test process while a thread named like an executor (cw-g0-exec)
// sleeps and spins on a CPU shared with a spinning competitor, and checks the report.
func TestToolsProbe(t *testing.T) {
	var out, errb bytes.Buffer
	if code := runMain(context.Background(), []string{"tools", "probe"}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "-pid is required") {
		t.Errorf("no -pid: exit %d, %q", code, errb.String())
	}
	p, err := probe.Open(probe.Config{})
	if errors.Is(err, probe.ErrUnavailable) {
		skipOrFailInCI(t, "eBPF probes unavailable here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	var stop atomic.Bool
	defer stop.Store(true)
	cpu := runtime.NumCPU() - 1
	// GPU 5: a name no other test in this process gives a thread (a locked thread that exits can
	// stay behind under its name when it is the main thread), so the tool must find exactly one.
	const execName = "cw-g5-exec"
	named := make(chan int, 2)
	var execTid atomic.Int64
	for _, name := range []string{execName, "competitor"} {
		go func() {
			runtime.LockOSThread() // never unlocked: the pinned thread exits with the goroutine
			var set unix.CPUSet
			set.Set(cpu)
			_ = unix.SchedSetaffinity(0, &set)
			_ = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafePtr(name+"\x00")), 0, 0, 0)
			if name == execName {
				execTid.Store(int64(unix.Gettid()))
			}
			named <- unix.Gettid()
			for !stop.Load() {
				if name == execName {
					_ = unix.Nanosleep(&unix.Timespec{Nsec: 100_000}, nil)
				}
			}
		}()
	}
	<-named
	<-named
	exec := int(execTid.Load())
	out.Reset()
	errb.Reset()
	args := []string{"tools", "probe", "-pid", strconv.Itoa(os.Getpid()), "-duration", "400ms", "-interval", "100ms", "-min", "20us"}
	if code := runMain(context.Background(), args, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s%s", code, out.String(), errb.String())
	}
	t.Logf("%s", out.String())
	reports := strings.Count(out.String(), "probe pid ")
	if reports < 3 {
		t.Errorf("%d reports in 400ms at 100ms intervals, want >= 3", reports)
	}
	last := out.String()[strings.LastIndex(out.String(), "probe pid "):]
	// Watched: the executor thread (and any other cw-g* thread this test process still has, e.g.
	// the main thread renamed by another test); never the competitor.
	if !strings.Contains(last, strconv.Itoa(exec)+" ") || !strings.Contains(last, execName) || regexp.MustCompile(`(?m)^\s*\d+\s+competitor\s`).MatchString(last) {
		t.Errorf("last report does not watch the executor thread %d alone of the two:\n%s", exec, last)
	}
	if !strings.Contains(last, "RUNQ LAST INTERVAL") {
		t.Errorf("no last-interval column:\n%s", last)
	}
	if strings.Contains(last, "worst episodes:\n  none") {
		t.Errorf("no episodes for a thread sharing its CPU with a spinner:\n%s", last)
	}
}
