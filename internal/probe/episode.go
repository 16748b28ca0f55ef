package probe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Kind is what took a thread's time. The values are probe.bpf.c's enum episode_kind.
type Kind uint8

const (
	// KindPreempt: switched out while runnable; Other is the task switched in.
	KindPreempt Kind = 1
	// KindRunQueue: woken, then waited for a CPU; Other is the task that held it last.
	KindRunQueue Kind = 2
	// KindBlocked: slept (voluntary switch-out); State is the task state at switch-out.
	KindBlocked Kind = 3
	// KindIRQ: a hard IRQ (IRQ >= 0, Name its handler) or the local timer (IRQ -1) ran on top.
	KindIRQ Kind = 4
	// KindSoftIRQ: softirq work (IRQ is the vector) ran on top.
	KindSoftIRQ Kind = 5
	// KindFault: one page fault (Start == End; Addr, Kernel).
	KindFault Kind = 6
)

var kindNames = [...]string{"?", "preempt", "runqueue", "blocked", "irq", "softirq", "fault"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// softirqNames are the kernel's softirq vectors (include/linux/interrupt.h).
var softirqNames = [...]string{"HI", "TIMER", "NET_TX", "NET_RX", "BLOCK", "IRQ_POLL", "TASKLET", "SCHED", "HRTIMER", "RCU"}

// Episode is one event on a registered thread. Times are CLOCK_MONOTONIC ns (see Now).
type Episode struct {
	Kind    Kind
	TID     int
	StartNs int64
	EndNs   int64
	CPU     int
	// Other is the task that held the CPU (KindPreempt, KindRunQueue): pid and comm.
	OtherPID int
	Other    string
	// IRQ is the interrupt number (KindIRQ; -1 for the local timer) or softirq vector.
	IRQ int
	// Name is the IRQ handler's name (KindIRQ).
	Name string
	// Addr and Kernel describe a fault (KindFault): the address, and whether it hit in kernel mode.
	Addr   uint64
	Kernel bool
	// State is the task state at a voluntary switch-out (KindBlocked): 1 interruptible, 2 not.
	State uint32
}

// Duration is End − Start.
func (e *Episode) Duration() time.Duration { return time.Duration(e.EndNs - e.StartNs) }

// String is one line, e.g. "preempted by pid 4121 (kworker/3:1) for 310µs on CPU 3".
func (e *Episode) String() string {
	d := fmtDur(e.Duration())
	switch e.Kind {
	case KindPreempt:
		return fmt.Sprintf("preempted by pid %d (%s) for %s on CPU %d", e.OtherPID, e.Other, d, e.CPU)
	case KindRunQueue:
		return fmt.Sprintf("waited %s for CPU %d behind pid %d (%s) after wakeup", d, e.CPU, e.OtherPID, e.Other)
	case KindBlocked:
		return fmt.Sprintf("blocked %s off CPU (state %d)", d, e.State)
	case KindIRQ:
		if e.IRQ < 0 {
			return fmt.Sprintf("timer interrupt for %s on CPU %d", d, e.CPU)
		}
		return fmt.Sprintf("IRQ %d (%s) for %s on CPU %d", e.IRQ, e.Name, d, e.CPU)
	case KindSoftIRQ:
		return fmt.Sprintf("softirq %s for %s on CPU %d", softirqName(e.IRQ), d, e.CPU)
	case KindFault:
		mode := "user"
		if e.Kernel {
			mode = "kernel"
		}
		return fmt.Sprintf("page fault (%s) at %#x on CPU %d", mode, e.Addr, e.CPU)
	}
	return fmt.Sprintf("%s for %s on CPU %d", e.Kind, d, e.CPU)
}

func softirqName(v int) string {
	if v >= 0 && v < len(softirqNames) {
		return softirqNames[v]
	}
	return strconv.Itoa(v)
}

func fmtDur(d time.Duration) string {
	switch {
	case d < 10*time.Microsecond:
		return fmt.Sprintf("%.1fµs", float64(d)/1e3)
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%dµs", d/time.Microsecond)
	}
	return fmt.Sprintf("%.1fms", float64(d)/1e6)
}

// episodeSize is sizeof(struct episode) in probe.bpf.c.
const episodeSize = 64

var errShortEpisode = errors.New("episode record shorter than 64 bytes")

// decodeEpisode decodes a ring buffer record (struct episode, little-endian as the BPF target).
func decodeEpisode(b []byte, e *Episode) error {
	if len(b) < episodeSize {
		return fmt.Errorf("cannot decode episode: %w (got %d)", errShortEpisode, len(b))
	}
	le := binary.LittleEndian
	kind := le.Uint32(b[28:])
	if kind == 0 || kind > uint32(KindFault) {
		return fmt.Errorf("cannot decode episode: kind %d out of range 1..%d", kind, KindFault)
	}
	start, end := int64(le.Uint64(b[0:])), int64(le.Uint64(b[8:]))
	if end < start {
		return fmt.Errorf("cannot decode episode: end %d before start %d", end, start)
	}
	aux := le.Uint64(b[16:])
	*e = Episode{Kind: Kind(kind), TID: int(le.Uint32(b[24:])), StartNs: start, EndNs: end, CPU: int(le.Uint32(b[32:])),
		OtherPID: int(le.Uint32(b[36:]))}
	name := cstr(b[48:64])
	switch e.Kind {
	case KindPreempt, KindRunQueue:
		e.Other = name
	case KindBlocked:
		e.State = uint32(aux)
	case KindIRQ, KindSoftIRQ:
		e.IRQ = int(int64(aux))
		e.Name = name
	case KindFault:
		e.Addr = aux
		e.Kernel = le.Uint32(b[40:])&1 != 0
	}
	return nil
}

func cstr(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// Explanation is what Explain found on one thread in one interval.
type Explanation struct {
	TID            int
	StartNs, EndNs int64
	// Episodes overlapping the interval, in start order.
	Episodes []Episode
	// Time lost inside the interval, by cause (each episode clipped to the interval).
	Preempted, RunQueue, Blocked, IRQ, SoftIRQ time.Duration
	Faults                                     int
}

// Empty reports whether nothing was found.
func (x *Explanation) Empty() bool { return len(x.Episodes) == 0 }

// String is one line naming the biggest causes first, e.g. "preempted by pid 4121 (stress) for
// 310µs on CPU 3; 2 page faults; IRQ 45 (virtio0) for 80µs"; "" when nothing overlapped.
func (x *Explanation) String() string {
	if len(x.Episodes) == 0 {
		return ""
	}
	type part struct {
		d time.Duration
		s string
	}
	var parts []part
	// Scheduling episodes one by one; interrupts summed by source.
	type irqKey struct {
		kind Kind
		irq  int
	}
	irqs := map[irqKey]*part{}
	for i := range x.Episodes {
		e := &x.Episodes[i]
		d := clip(e, x.StartNs, x.EndNs)
		switch e.Kind {
		case KindPreempt:
			parts = append(parts, part{d, fmt.Sprintf("preempted by pid %d (%s) for %s on CPU %d", e.OtherPID, e.Other, fmtDur(d), e.CPU)})
		case KindRunQueue:
			parts = append(parts, part{d, fmt.Sprintf("waited %s for CPU %d behind pid %d (%s)", fmtDur(d), e.CPU, e.OtherPID, e.Other)})
		case KindBlocked:
			parts = append(parts, part{d, fmt.Sprintf("blocked %s off CPU", fmtDur(d))})
		case KindIRQ, KindSoftIRQ:
			k := irqKey{e.Kind, e.IRQ}
			p := irqs[k]
			if p == nil {
				p = &part{}
				irqs[k] = p
			}
			p.d += d
			switch {
			case e.Kind == KindSoftIRQ:
				p.s = "softirq " + softirqName(e.IRQ)
			case e.IRQ < 0:
				p.s = "timer interrupt"
			default:
				p.s = fmt.Sprintf("IRQ %d (%s)", e.IRQ, e.Name)
			}
		}
	}
	for _, p := range irqs {
		parts = append(parts, part{p.d, p.s + " for " + fmtDur(p.d)})
	}
	sort.SliceStable(parts, func(i, j int) bool { return parts[i].d > parts[j].d })
	const maxParts = 4
	var sb strings.Builder
	for i, p := range parts {
		if i == maxParts {
			fmt.Fprintf(&sb, "; +%d more", len(parts)-maxParts)
			break
		}
		if i > 0 {
			sb.WriteString("; ")
		}
		sb.WriteString(p.s)
	}
	if x.Faults > 0 {
		if sb.Len() > 0 {
			sb.WriteString("; ")
		}
		if x.Faults == 1 {
			sb.WriteString("1 page fault")
		} else {
			fmt.Fprintf(&sb, "%d page faults", x.Faults)
		}
	}
	return sb.String()
}

// clip is the part of e inside [start, end].
func clip(e *Episode, start, end int64) time.Duration {
	s, t := max(e.StartNs, start), min(e.EndNs, end)
	if t < s {
		return 0
	}
	return time.Duration(t - s)
}

// add accounts e (already known to overlap) to x.
func (x *Explanation) add(e *Episode) {
	x.Episodes = append(x.Episodes, *e)
	d := clip(e, x.StartNs, x.EndNs)
	switch e.Kind {
	case KindPreempt:
		x.Preempted += d
	case KindRunQueue:
		x.RunQueue += d
	case KindBlocked:
		x.Blocked += d
	case KindIRQ:
		x.IRQ += d
	case KindSoftIRQ:
		x.SoftIRQ += d
	case KindFault:
		x.Faults++
	}
}

// Filter returns the explanation of the same interval with only the episodes keep accepts,
// causes recomputed. Allocates.
func (x *Explanation) Filter(keep func(*Episode) bool) Explanation {
	y := Explanation{TID: x.TID, StartNs: x.StartNs, EndNs: x.EndNs}
	for i := range x.Episodes {
		if keep(&x.Episodes[i]) {
			y.add(&x.Episodes[i])
		}
	}
	return y
}
