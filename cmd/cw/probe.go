package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clockwork-go/clockwork/internal/probe"
	"github.com/clockwork-go/clockwork/worker"
)

func init() {
	registerTool(command{name: "probe", summary: "eBPF: why a running worker's threads were late: live run-queue, off-CPU, IRQ histograms and the worst episodes", run: runToolsProbe})
}

// executorComm matches the names cw worker gives its executor threads (cw-g<gpu>-<lane>).
var executorComm = regexp.MustCompile(`^cw-g\d+-`)

func runToolsProbe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tools probe", "tools probe -pid PID [flags]", stderr)
	pid := fs.Int("pid", 0, "process to watch (a cw worker); its threads are read from /proc/PID/task and rescanned every interval")
	threads := fs.String("threads", "", "regexp on thread names (/proc/PID/task/TID/comm) to watch; empty: the worker's executor threads (named cw-g<gpu>-<lane>) if it has any, else every thread")
	dur := fs.Duration("duration", 10*time.Second, "how long to watch (0: until interrupted)")
	every := fs.Duration("interval", time.Second, "refresh period, 100ms or more")
	minEp := fs.Duration("min", probe.DefaultMinEpisode, "shortest episode (preemption, run-queue wait, IRQ) listed among the worst; shorter ones only count in the histograms")
	top := fs.Int("top", 10, "worst episodes shown")
	tele := fs.String("telemetry", "", "the worker's telemetry TSV file (cw worker -telemetry FILE): followed from its end, one line per action that started late or ran long, explained by the episodes on its executor thread")
	lateF := fs.Duration("late", 200*time.Microsecond, "with -telemetry: explain actions that started at least this long after their earliest")
	longF := fs.Duration("long", 0, "with -telemetry: also explain actions whose exec (a LOAD's copy) ran at least this long (0: off)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *pid <= 0 {
		return fmt.Errorf("-pid is required: the pid of a running worker (pgrep -f 'cw worker')")
	}
	if *every < 100*time.Millisecond {
		return fmt.Errorf("-interval %v below 100ms", *every)
	}
	var filter *regexp.Regexp
	if *threads != "" {
		re, err := regexp.Compile(*threads)
		if err != nil {
			return fmt.Errorf("-threads %q: %w", *threads, err)
		}
		filter = re
	}
	if _, err := probe.Tasks(*pid); err != nil {
		return err
	}
	p, err := probe.Open(probe.Config{MinEpisode: *minEp})
	if err != nil {
		return err
	}
	defer p.Close()
	for _, m := range p.Missing() {
		fmt.Fprintf(stderr, "probe: not attached (its episodes stay empty): %s\n", m)
	}
	term := isTerminal(stdout)
	watched := map[int]string{}
	var tail *telemetryTail
	if *tele != "" {
		if tail, err = openTelemetryTail(*tele, int64(*lateF), int64(*longF)); err != nil {
			return err
		}
		defer tail.Close()
		fmt.Fprintf(stderr, "probe: following %s; worker clock = CLOCK_MONOTONIC %+d ns (±%d ns, assuming the wall clock was not stepped since the worker started)\n", *tele, tail.clock.OffsetNs, tail.clock.ErrorNs)
	}
	execTid := func(gpu int, lane string) int {
		name := fmt.Sprintf("cw-g%d-%s", gpu, lane)
		for tid, comm := range watched {
			if comm == name {
				return tid
			}
		}
		return 0
	}
	rescan := func() error {
		tasks, err := probe.Tasks(*pid)
		if err != nil {
			return err
		}
		re := filter
		if re == nil {
			for _, t := range tasks {
				if executorComm.MatchString(t.Comm) {
					re = executorComm
					break
				}
			}
		}
		alive := map[int]bool{}
		for _, t := range tasks {
			if re != nil && !re.MatchString(t.Comm) {
				continue
			}
			alive[t.TID] = true
			if watched[t.TID] != t.Comm {
				if err := p.RegisterThread(t.TID, t.Comm); err != nil {
					return err
				}
				watched[t.TID] = t.Comm
			}
		}
		for tid := range watched {
			if !alive[tid] {
				_ = p.UnregisterThread(tid)
				delete(watched, tid)
			}
		}
		return nil
	}
	if err := rescan(); err != nil {
		return err
	}
	start := time.Now()
	prev := map[int]probe.Histogram{} // run-queue histogram at the last report, by tid
	var deadline <-chan time.Time
	if *dur > 0 {
		tm := time.NewTimer(*dur)
		defer tm.Stop()
		deadline = tm.C
	}
	tick := time.NewTicker(*every)
	defer tick.Stop()
	for {
		last := false
		select {
		case <-ctx.Done():
			last = true
		case <-deadline:
			last = true
		case <-tick.C:
		}
		var sb strings.Builder
		if term {
			sb.WriteString("\x1b[H\x1b[2J")
		}
		if tail != nil { // before the rescan: an exited thread's actions are still explained
			if err := tail.poll(&sb, p, execTid); err != nil {
				return err
			}
		}
		if err := rescan(); err != nil && !last {
			return err // the process exited
		}
		stats, err := p.Snapshot()
		if err != nil {
			return err
		}
		writeProbeReport(&sb, *pid, time.Since(start), stats, prev, p.Worst(*top), p.Dropped(), term)
		clear(prev)
		for _, st := range stats {
			prev[st.TID] = st.RunQueue
		}
		if _, err := io.WriteString(stdout, sb.String()); err != nil {
			return err
		}
		if last {
			return nil
		}
	}
}

// writeProbeReport: counters and histograms since attach, plus the run-queue wait of the last
// interval (from prev).
func writeProbeReport(w *strings.Builder, pid int, elapsed time.Duration, stats []probe.ThreadStats, prev map[int]probe.Histogram, worst []probe.Episode, dropped uint64, term bool) {
	fmt.Fprintf(w, "probe pid %d: %d threads, %v, %d episodes dropped\n", pid, len(stats), elapsed.Round(time.Millisecond), dropped)
	fmt.Fprintf(w, "%-8s %-16s %8s %8s %8s  %-24s %-44s %-10s %-30s\n", "TID", "NAME", "SWITCH", "PREEMPT", "FAULTS", "RUNQ LAST INTERVAL", "RUNQ WAIT (SINCE ATTACH)", "OFFCPU p99", "IRQ+SOFTIRQ")
	var runq probe.Histogram
	for i := range stats {
		s := &stats[i]
		var irq probe.Histogram
		for b := range irq.Buckets {
			irq.Buckets[b] = s.IRQ.Buckets[b] + s.SoftIRQ.Buckets[b]
			runq.Buckets[b] += s.RunQueue.Buckets[b]
		}
		irq.SumNs, irq.MaxNs = s.IRQ.SumNs+s.SoftIRQ.SumNs, max(s.IRQ.MaxNs, s.SoftIRQ.MaxNs)
		runq.SumNs += s.RunQueue.SumNs
		runq.MaxNs = max(runq.MaxNs, s.RunQueue.MaxNs)
		last := s.RunQueue
		if p, ok := prev[s.TID]; ok {
			last = last.Sub(&p)
		}
		lastS := fmt.Sprintf("n=%d p99<=%s", last.Count(), last.Quantile(0.99).Round(time.Microsecond))
		fmt.Fprintf(w, "%-8d %-16s %8d %8d %8d  %-24s %-44s %-10s %-30s\n", s.TID, s.Label, s.Switches, s.Preemptions, s.FaultsUser+s.FaultsKernel,
			lastS, s.RunQueue.Summary(), s.OffCPU.Quantile(0.99).Round(time.Microsecond), irq.Summary())
	}
	if term && runq.Count() > 0 {
		w.WriteString("run-queue wait, all threads:\n")
		w.WriteString(runq.Bars(40))
	}
	fmt.Fprintf(w, "worst episodes:\n")
	if len(worst) == 0 {
		w.WriteString("  none\n")
	}
	for i := range worst {
		e := &worst[i]
		fmt.Fprintf(w, "  %10v  tid %d: %s\n", e.Duration().Round(time.Microsecond), e.TID, e.String())
	}
}

// openWorkerProbe opens eBPF probes for cw worker -probe. Where probes cannot run (no
// privileges, no BTF) it says why on stderr and returns a nil Probe: the worker runs without.
// close closes them after the worker.
func openWorkerProbe(lateNs int64, logPath string, stderr io.Writer) (pr *worker.Probe, close func(), err error) {
	p, err := probe.Open(probe.Config{})
	if errors.Is(err, probe.ErrUnavailable) {
		fmt.Fprintf(stderr, "worker: -probe: running without probes: %v\n", err)
		return nil, func() {}, nil
	}
	if err != nil {
		return nil, nil, err
	}
	log := stderr
	var f *os.File
	if logPath != "" {
		if f, err = os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err != nil {
			p.Close()
			return nil, nil, fmt.Errorf("cannot open the -probe-log file: %w", err)
		}
		log = f
	}
	for _, m := range p.Missing() {
		fmt.Fprintf(stderr, "worker: -probe: not attached (those episodes stay empty): %s\n", m)
	}
	pr = worker.NewProbe(p, lateNs, log)
	return pr, func() {
		pr.Close()
		p.Close()
		if f != nil {
			f.Close()
		}
	}, nil
}

// isTerminal reports whether w is a terminal (then the report redraws in place).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
