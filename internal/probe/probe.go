package probe

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/clockwork-go/clockwork/internal/invariants"
	"golang.org/x/sys/unix"
)

// Defaults.
const (
	// DefaultMinEpisode: shorter episodes only go to the histograms. 50 µs is above a normal
	// context switch and IRQ on these VMs (1-10 µs) and below the lateness worth explaining.
	DefaultMinEpisode = 50 * time.Microsecond
	// DefaultHistory episodes are kept per thread for Explain (64 B each).
	DefaultHistory = 4096
	// DefaultPoll is how often the ring buffer is drained in the background.
	DefaultPoll = 20 * time.Millisecond
	// MaxThreads is the number of threads that can be registered at once (the BPF maps' size).
	MaxThreads = 1024
	// worstKept is how many of the longest episodes Worst can return.
	worstKept = 64
)

// Config configures Open.
type Config struct {
	// MinEpisode is the shortest preemption, run-queue wait, off-CPU or IRQ episode sent to
	// user space (0: DefaultMinEpisode). Page faults are always sent.
	MinEpisode time.Duration
	// History is the number of episodes kept per thread (0: DefaultHistory).
	History int
	// Poll is the background drain period (0: DefaultPoll).
	Poll time.Duration
}

// Validate fills defaults and checks limits.
func (c *Config) Validate() error {
	if c.MinEpisode == 0 {
		c.MinEpisode = DefaultMinEpisode
	}
	if c.History == 0 {
		c.History = DefaultHistory
	}
	if c.Poll == 0 {
		c.Poll = DefaultPoll
	}
	if c.MinEpisode < time.Microsecond {
		return fmt.Errorf("probe: MinEpisode %v below 1µs would send every context switch; use 1µs or more", c.MinEpisode)
	}
	if c.History < 1 || c.History > 1<<20 {
		return fmt.Errorf("probe: History %d out of range 1..%d", c.History, 1<<20)
	}
	if c.Poll < time.Millisecond {
		return fmt.Errorf("probe: Poll %v below 1ms", c.Poll)
	}
	return nil
}

// Probes are loaded and attached BPF programs plus the episodes read from them. See the package
// doc. All methods: any goroutine.
//
// Invariants (checked under the invariants build tag where cheap):
//  1. A tid is a key of the BPF `threads` map iff it is a key of p.threads.
//  2. Each registered thread owns one stats slot; the others are in p.free, so
//     len(p.threads)+len(p.free) == MaxThreads.
//  3. Episodes are kept only for registered threads; unregistering forgets them.
//  4. drain holds readMu from consuming a record to storing it, so under readMu an empty ring
//     means every episode submitted so far is stored: Explain drains first and therefore sees
//     every episode that ended before it was called.
//
// Alternatives rejected: kprobes/fentry (do not attach on our kernels); a perf buffer (per-CPU,
// unordered, more copies than the ring buffer); a reader goroutine blocked in ringbuf.Read
// (it holds the reader's lock while waiting, so Explain could not drain; we poll instead, and
// the BPF side submits without wakeups); looking up BPF maps from the worker's exec thread per
// action (a syscall each; Explain runs on the worker's Probe goroutine instead).
type Probes struct {
	cfg     Config
	objs    bpfObjects
	links   []link.Link
	rd      *ringbuf.Reader
	missing []string

	readMu sync.Mutex // serializes drains: consuming a record and storing it are one step
	rec    ringbuf.Record
	batch  []Episode

	mu         sync.Mutex
	threads    map[int]*thread
	filt       map[uint32]uint32 // tidfilt counts by index, mirrored (see filter)
	free       []uint32
	worst      []Episode // longest first, at most worstKept
	decodeErrs uint64
	closed     bool

	stop chan struct{}
	done chan struct{}
}

type thread struct {
	label string
	slot  uint32
	ring  []Episode // circular, next is the oldest once full
	next  int
}

// required programs; the others are optional and reported by Missing when they do not attach.
var required = map[string]bool{"sched_switch": true, "sched_wakeup": true}

// Open checks privileges and kernel support, loads and attaches the programs and starts the
// background drain. An error wraps ErrUnavailable when probes cannot run here (the message
// names what is missing); the caller should then run without them.
func Open(cfg Config) (*Probes, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if miss := missingPrereqs(); len(miss) > 0 {
		return nil, &unavailableError{missing: miss}
	}
	spec, err := loadBpf()
	if err != nil {
		return nil, fmt.Errorf("%w: cannot parse embedded BPF object: %w", ErrUnavailable, err)
	}
	if err := spec.Variables["min_episode_ns"].Set(uint64(cfg.MinEpisode)); err != nil {
		return nil, fmt.Errorf("BUG: probe: cannot set min_episode_ns: %w", err)
	}
	p := &Probes{cfg: cfg, threads: map[int]*thread{}, stop: make(chan struct{}), done: make(chan struct{})}
	if err := spec.LoadAndAssign(&p.objs, nil); err != nil {
		return nil, fmt.Errorf("%w: cannot load BPF programs: %w; the kernel may forbid BPF (lockdown=confidentiality, an LSM, or kernel.unprivileged_bpf_disabled without CAP_BPF)", ErrUnavailable, err)
	}
	if err := p.attach(); err != nil {
		p.closeKernel()
		return nil, err
	}
	for i := range MaxThreads {
		p.free = append(p.free, uint32(MaxThreads-1-i))
	}
	if p.rd, err = ringbuf.NewReader(p.objs.Events); err != nil {
		p.closeKernel()
		return nil, fmt.Errorf("%w: cannot open the episode ring buffer: %w", ErrUnavailable, err)
	}
	go p.poll()
	return p, nil
}

// Missing lists the optional programs that did not attach, with the reason; their episodes
// and counters stay empty.
func (p *Probes) Missing() []string { return append([]string(nil), p.missing...) }

// RegisterThread starts measuring thread tid (a Linux thread id, unix.Gettid on the thread
// itself) under label. Registering a registered tid only relabels it. Interrupts and faults
// count from the thread's next switch-in; a thread registering itself sleeps 1 µs so that is
// now. May block briefly.
func (p *Probes) RegisterThread(tid int, label string) error {
	if tid <= 0 {
		return fmt.Errorf("cannot register thread %d: not a thread id", tid)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("cannot register thread %d: %w", tid, ErrClosed)
	}
	if t := p.threads[tid]; t != nil {
		t.label = label
		return nil
	}
	if len(p.free) == 0 {
		return fmt.Errorf("cannot register thread %d: all %d slots in use; unregister threads that ended", tid, MaxThreads)
	}
	slot := p.free[len(p.free)-1]
	if err := p.objs.Stats.Put(slot, &bpfThreadStats{}); err != nil {
		return fmt.Errorf("cannot register thread %d: clear stats slot %d: %w", tid, slot, err)
	}
	if err := p.filter(tid, +1); err != nil {
		return fmt.Errorf("cannot register thread %d: %w", tid, err)
	}
	if err := p.objs.Threads.Put(uint32(tid), &bpfThreadState{Slot: slot}); err != nil {
		_ = p.filter(tid, -1)
		return fmt.Errorf("cannot register thread %d: %w", tid, err)
	}
	p.free = p.free[:len(p.free)-1]
	p.threads[tid] = &thread{label: label, slot: slot}
	p.checkSlots()
	if tid == unix.Gettid() {
		// Switch out and in once, so sched_switch marks this thread as on its CPU (the
		// interrupt and fault programs filter on that).
		_ = unix.Nanosleep(&unix.Timespec{Nsec: 1000}, nil)
	}
	return nil
}

// UnregisterThread stops measuring tid and forgets its episodes and counters. Unknown tids are
// ignored.
func (p *Probes) UnregisterThread(tid int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.threads[tid]
	if t == nil || p.closed {
		return nil
	}
	delete(p.threads, tid)
	p.free = append(p.free, t.slot)
	p.checkSlots()
	if err := p.objs.Threads.Delete(uint32(tid)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("cannot unregister thread %d: %w", tid, err)
	}
	if err := p.filter(tid, -1); err != nil {
		return fmt.Errorf("cannot unregister thread %d: %w", tid, err)
	}
	return nil
}

// tidFilterSize is NTIDFILT in probe.bpf.c.
const tidFilterSize = 1024

// filter adds d to the count of registered threads in tid's tidfilt entry (the kernel programs
// skip the threads hash where it is 0). Caller holds p.mu.
func (p *Probes) filter(tid int, d int32) error {
	k := uint32(tid) & (tidFilterSize - 1)
	if p.filt == nil {
		p.filt = map[uint32]uint32{}
	}
	n := uint32(int32(p.filt[k]) + d)
	if int32(n) < 0 {
		panic("BUG: probe: tid filter count below zero")
	}
	if err := p.objs.Tidfilt.Put(k, n); err != nil {
		return fmt.Errorf("update the tid filter: %w", err)
	}
	if n == 0 {
		delete(p.filt, k)
	} else {
		p.filt[k] = n
	}
	return nil
}

// Explain returns the episodes on thread tid that overlapped [startNs, endNs] (CLOCK_MONOTONIC;
// convert other clocks with Clock) and the time each cause took inside it. It first drains the
// ring buffer, so every episode that ended before the call is seen.
//
// Timing: may block on a concurrent drain (< 100 µs); allocates the result.
func (p *Probes) Explain(tid int, startNs, endNs int64) Explanation {
	p.drain()
	x := Explanation{TID: tid, StartNs: startNs, EndNs: endNs}
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.threads[tid]
	if t == nil {
		return x
	}
	n := len(t.ring)
	for i := range n {
		e := &t.ring[(t.next+i)%n] // oldest first
		if e.EndNs >= startNs && e.StartNs <= endNs {
			x.add(e)
		}
	}
	sort.SliceStable(x.Episodes, func(i, j int) bool { return x.Episodes[i].StartNs < x.Episodes[j].StartNs })
	return x
}

// Snapshot returns every registered thread's counters, by tid.
func (p *Probes) Snapshot() ([]ThreadStats, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	out := make([]ThreadStats, 0, len(p.threads))
	var b bpfThreadStats
	for tid, t := range p.threads {
		if err := p.objs.Stats.Lookup(t.slot, &b); err != nil {
			return nil, fmt.Errorf("cannot read stats of thread %d: %w", tid, err)
		}
		s := ThreadStats{TID: tid, Label: t.label}
		s.fromBPF(&b)
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TID < out[j].TID })
	return out, nil
}

// Worst returns up to n of the longest preemption, run-queue and IRQ episodes seen since Open,
// longest first (blocked time and faults are left out: sleeping is usually meant).
func (p *Probes) Worst(n int) []Episode {
	p.drain()
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Episode(nil), p.worst[:min(n, len(p.worst))]...)
}

// Dropped is the number of episodes lost because the ring buffer was full.
func (p *Probes) Dropped() uint64 {
	var v uint64
	if err := p.objs.Counters.Lookup(uint32(0), &v); err != nil {
		return 0
	}
	return v
}

// Close detaches the programs and stops the drain. Further calls are no-ops.
func (p *Probes) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	close(p.stop)
	<-p.done
	p.readMu.Lock()
	defer p.readMu.Unlock()
	err := p.rd.Close()
	p.rd = nil // drain after Close is a no-op
	p.closeKernel()
	return err
}

// attach attaches every program; a required one that fails fails it all, an optional one is
// listed in p.missing.
func (p *Probes) attach() error {
	progs := p.programs()
	names := make([]string, 0, len(progs))
	for n := range progs {
		names = append(names, n)
	}
	sort.Strings(names)
	p.missing = p.missing[:0]
	for _, name := range names {
		l, err := link.AttachTracing(link.TracingOptions{Program: progs[name], AttachType: ebpf.AttachTraceRawTp})
		if err != nil {
			if required[name] {
				return fmt.Errorf("%w: cannot attach tp_btf/%s: %w; the kernel needs BTF-typed raw tracepoints (Linux 5.5+ with CONFIG_DEBUG_INFO_BTF)", ErrUnavailable, name, err)
			}
			p.missing = append(p.missing, fmt.Sprintf("tp_btf/%s: %v", name, err))
			continue
		}
		p.links = append(p.links, l)
	}
	return nil
}

// programs names every program by its tracepoint.
func (p *Probes) programs() map[string]*ebpf.Program {
	return map[string]*ebpf.Program{
		"sched_switch": p.objs.SchedSwitch, "sched_wakeup": p.objs.SchedWakeup,
		"page_fault_user": p.objs.PageFaultUser, "page_fault_kernel": p.objs.PageFaultKernel,
		"irq_handler_entry": p.objs.IrqHandlerEntry, "irq_handler_exit": p.objs.IrqHandlerExit,
		"local_timer_entry": p.objs.LocalTimerEntry, "local_timer_exit": p.objs.LocalTimerExit,
		"softirq_entry": p.objs.SoftirqEntry, "softirq_exit": p.objs.SoftirqExit,
	}
}

// Detach detaches every program, keeping maps, registrations and episodes: nothing runs in
// the kernel until Attach. Benchmarks use it to compare on with off in one run.
func (p *Probes) Detach() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.detach()
}

// Attach re-attaches the programs after Detach (a no-op while attached).
func (p *Probes) Attach() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if len(p.links) > 0 {
		return nil
	}
	return p.attach()
}

func (p *Probes) detach() {
	for _, l := range p.links {
		_ = l.Close()
	}
	p.links = nil
}

func (p *Probes) closeKernel() {
	for _, l := range p.links {
		_ = l.Close()
	}
	p.links = nil
	_ = p.objs.Close()
}

func (p *Probes) poll() {
	defer close(p.done)
	t := time.NewTicker(p.cfg.Poll)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.drain()
		}
	}
}

// drain moves every record in the ring buffer into the per-thread histories.
func (p *Probes) drain() {
	p.readMu.Lock()
	defer p.readMu.Unlock()
	if p.rd == nil || p.rd.AvailableBytes() == 0 {
		return
	}
	p.rd.SetDeadline(time.Unix(1, 0)) // in the past: read what is there, never wait
	p.batch = p.batch[:0]
	var bad uint64
	for {
		if err := p.rd.ReadInto(&p.rec); err != nil {
			break // os.ErrDeadlineExceeded once empty; ErrClosed after Close
		}
		var e Episode
		if err := decodeEpisode(p.rec.RawSample, &e); err != nil {
			bad++
			continue
		}
		p.batch = append(p.batch, e)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.decodeErrs += bad
	for i := range p.batch {
		p.store(&p.batch[i])
	}
}

// store files e under its thread. p.mu held.
func (p *Probes) store(e *Episode) {
	t := p.threads[e.TID]
	if t == nil {
		return // unregistered since
	}
	if len(t.ring) < p.cfg.History {
		t.ring = append(t.ring, *e)
	} else {
		t.ring[t.next] = *e
		t.next = (t.next + 1) % len(t.ring)
	}
	if e.Kind == KindBlocked || e.Kind == KindFault {
		return
	}
	d := e.EndNs - e.StartNs
	if len(p.worst) == worstKept && d <= p.worst[worstKept-1].EndNs-p.worst[worstKept-1].StartNs {
		return
	}
	i := sort.Search(len(p.worst), func(i int) bool { return p.worst[i].EndNs-p.worst[i].StartNs < d })
	if len(p.worst) < worstKept {
		p.worst = append(p.worst, Episode{})
	}
	copy(p.worst[i+1:], p.worst[i:])
	p.worst[i] = *e
}

// checkSlots checks invariant 2. p.mu held.
func (p *Probes) checkSlots() {
	if invariants.Enabled && len(p.threads)+len(p.free) != MaxThreads {
		panic(fmt.Sprintf("BUG: probe: %d registered threads + %d free slots != %d", len(p.threads), len(p.free), MaxThreads))
	}
}

// Label returns the label tid was registered under.
func (p *Probes) Label(tid int) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t := p.threads[tid]; t != nil {
		return t.label, true
	}
	return "", false
}
