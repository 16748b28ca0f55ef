package worker

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clockwork-go/clockwork/internal/probe"
	"github.com/clockwork-go/clockwork/runtime/device"
	"github.com/clockwork-go/clockwork/wire"
)

// Probe explains late INFERs and LOADs with eBPF (internal/probe): executor threads are named
// cw-g<gpu>-<lane> and registered when they start, and an INFER whose exec (a LOAD whose copy)
// started more than LateNs after its earliest, or ran LateNs longer than its expected time,
// gets the kernel episodes that overlapped [earliest, end] on its exec (weights) thread (and an
// INFER's input copy on the input thread, when that ended LateNs after earliest) as one line, in
// Record.Probe and (if Log is set) as a TSV line "action_id gpu lateness_ns run_ns
// explanation" (run_ns: exec or weights copy). Explaining happens on Probe's own goroutine: the exec thread only queues the
// action (non-blocking, no allocation; a full queue, or more than ProbeMaxPerSec late INFERs in
// one second, drops it and counts it in Dropped).
//
// Create with NewProbe, put in Config.Probe (one Probe may serve several workers), Close after
// the workers.
type Probe struct {
	p      *probe.Probes
	lateNs int64
	log    io.Writer
	offs   sync.Map // *Worker -> int64: its clock − CLOCK_MONOTONIC, calibrated at first use

	reqs    chan probeReq
	dropped atomic.Uint64
	limited atomic.Uint64
	sec     atomic.Int64 // current second of the rate limit (worker clock / 1e9)
	inSec   atomic.Int64 // explanations queued in it
	done    chan struct{}
	once    sync.Once
}

// ProbeMaxPerSec bounds explanations per second per Probe: each costs an Explain (a scan of
// the thread's episode history) on Probe's goroutine, and when a backlog makes most actions
// late, explaining every one would take a CPU from the worker.
const ProbeMaxPerSec = 200

type probeReq struct {
	tele               *Telemetry
	id                 uint64
	gpu, tid, inTid    int
	earliest, start    int64 // worker clock
	end                int64
	in                 wire.Span // the input copy, on the input thread (inTid)
	offsetNs, lateness int64
}

// DefaultProbeLateNs is the lateness (or overrun) from which an INFER is explained: above the
// spin-wait's normal error (tens of µs on a loaded VM).
const DefaultProbeLateNs = 200_000

// NewProbe wraps open probes (probe.Open; the caller keeps ownership and closes them after
// Probe.Close). lateNs 0: DefaultProbeLateNs. log may be nil.
func NewProbe(p *probe.Probes, lateNs int64, log io.Writer) *Probe {
	if lateNs <= 0 {
		lateNs = DefaultProbeLateNs
	}
	pr := &Probe{p: p, lateNs: lateNs, log: log, reqs: make(chan probeReq, 1024), done: make(chan struct{})}
	if log != nil {
		fmt.Fprintln(log, "action_id\tgpu\tlateness_ns\trun_ns\texplanation")
	}
	go pr.run()
	return pr
}

// Dropped counts late INFERs not explained because the queue was full or more than
// ProbeMaxPerSec were late in one second.
func (pr *Probe) Dropped() uint64 { return pr.dropped.Load() + pr.limited.Load() }

// Close stops explaining (what is queued is finished first). Call after the workers closed.
func (pr *Probe) Close() {
	pr.once.Do(func() {
		close(pr.reqs)
		<-pr.done
	})
}

// threadStart names the calling (locked) executor thread and, when pr is not nil, registers
// it; it returns its tid. Any pr, nil included.
func (pr *Probe) threadStart(gpu int, lane string) int {
	name := fmt.Sprintf("cw-g%d-%s", gpu, lane)
	_ = probe.NameThread(name) // best effort: only cw tools probe's default filter needs it
	tid := unix.Gettid()
	if pr != nil {
		_ = pr.p.RegisterThread(tid, name) // full table: this thread goes unexplained
	}
	return tid
}

func (pr *Probe) threadEnd(tid int) {
	if pr != nil {
		_ = pr.p.UnregisterThread(tid)
	}
}

// execDone queues an INFER's exec (on the exec thread) or a LOAD (on the weights thread) for
// explaining when it was late or ran long.
//
// Timing: executor thread; does not block or allocate.
func (pr *Probe) execDone(w *Worker, e *executor, a *action, start, end int64) {
	late := start - a.earliest
	over := int64(0)
	if a.expected > 0 {
		over = end - start - a.expected
	}
	if late < pr.lateNs && over < pr.lateNs {
		return
	}
	if s := end / 1e9; pr.sec.Load() != s {
		pr.sec.Store(s) // racy reset across exec threads: at worst a few extra in one second
		pr.inSec.Store(0)
	}
	if pr.inSec.Add(1) > ProbeMaxPerSec {
		pr.limited.Add(1)
		return
	}
	select {
	case pr.reqs <- probeReq{tele: w.tele, id: a.id, gpu: a.gpu, tid: e.tid, inTid: w.gpus[a.gpu].exec[device.LaneInput].tid,
		earliest: a.earliest, start: start, end: end, in: a.phases[wire.PhaseInput], offsetNs: pr.offset(w), lateness: late}: // in is zero for a LOAD
	default:
		pr.dropped.Add(1)
	}
}

func (pr *Probe) run() {
	defer close(pr.done)
	for r := range pr.reqs {
		from := min(r.earliest, r.start)
		x := pr.p.Explain(r.tid, from-r.offsetNs, r.end-r.offsetNs)
		// Sleeping until the action was due is the executor's design, not a cause: keep blocked
		// time only where it reached past earliest (an oversleep, or waiting for the input).
		due := r.earliest - r.offsetNs
		x = x.Filter(func(e *probe.Episode) bool { return e.Kind != probe.KindBlocked || e.EndNs > due })
		text := x.String()
		// An input copy that ended LateNs after earliest held the exec back: explain it too.
		if r.in.EndNs-r.earliest >= pr.lateNs && r.inTid != 0 {
			ix := pr.p.Explain(r.inTid, r.in.StartNs-r.offsetNs, r.in.EndNs-r.offsetNs)
			it := fmt.Sprintf("input copy ended %s after earliest", time.Duration(r.in.EndNs-r.earliest))
			if s := ix.String(); s != "" {
				it += ": " + s
			}
			if text == "" {
				text = it
			} else {
				text = "exec: " + text + " | " + it
			}
		}
		if text == "" {
			text = "no scheduler, IRQ or fault episode on the exec thread (late for another reason: queueing behind earlier actions, the GPU, or a Go pause)"
		}
		r.tele.note(r.id, text)
		if pr.log != nil {
			fmt.Fprintf(pr.log, "%d\t%d\t%d\t%d\t%s\n", r.id, r.gpu, r.lateness, r.end-r.start, text)
		}
	}
}

// offset is w's clock minus CLOCK_MONOTONIC, calibrated at the first call. Does not allocate
// after that.
func (pr *Probe) offset(w *Worker) int64 {
	if v, ok := pr.offs.Load(w); ok {
		return v.(int64)
	}
	off := probe.CalibrateClock(w.cfg.Clock).OffsetNs
	pr.offs.Store(w, off)
	return off
}
