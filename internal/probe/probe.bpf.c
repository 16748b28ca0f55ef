//go:build ignore

/* probe.bpf.c: why was a registered thread late? (internal/probe, DESIGN.md §10)
 *
 * Programs on sched_switch, sched_wakeup, page faults, hard IRQs, the local timer
 * interrupt and softirqs, all tp_btf (BTF-typed raw tracepoints: they attach without tracefs and
 * work on the kernels we run; kprobes and fentry do not, see reference/feasibility.md).
 *
 * Only threads whose tid is a key of `threads` are measured; Go inserts a thread when an
 * executor starts and deletes it when it ends. Each has a slot in `stats` (histograms and
 * counters, read by Go at any time), and every episode at least min_episode_ns long goes to
 * `events` (a ring buffer). All times are bpf_ktime_get_ns(): CLOCK_MONOTONIC.
 *
 * Episodes:
 *   PREEMPT  switched out while runnable (involuntary): from switch-out to switch-in;
 *            other = the task switched in at switch-out (the preemptor).
 *   RUNQ     woken after sleeping, then waited for a CPU: from wakeup to switch-in;
 *            other = the task that held the CPU last (prev at our switch-in).
 *   BLOCKED  slept (voluntary switch-out): from switch-out to the wakeup (to switch-in if no
 *            wakeup was seen), so BLOCKED and RUNQ never overlap; aux = prev_state.
 *   IRQ      a hard IRQ or the local timer interrupted the thread; aux = irq (-1 timer);
 *            name = irqaction->name.
 *   SOFTIRQ  softirq work ran on top of the thread; aux = vector.
 *   FAULT    one page fault (always sent, min_episode_ns does not apply); aux = address,
 *            flags bit 0 = kernel-mode fault.
 *
 * Concurrency: a thread's switch events run on its own CPU, its wakeup on the waker's CPU, so
 * state fields are written by at most two CPUs; counters use atomic adds. A lost race costs one
 * sample, never a wrong pointer.
 */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define MAX_THREADS 1024
#define NBUCKETS 32 /* log2(ns): bucket b holds [2^b, 2^(b+1)) ns; the last holds the rest */
#define TASK_COMM_LEN 16

enum hist_kind {
	HIST_RUNQ = 0,    /* wakeup or preemption to switch-in */
	HIST_OFFCPU = 1,  /* switch-out to switch-in, any reason */
	HIST_IRQ = 2,     /* hard IRQ and timer interrupt time on the thread */
	HIST_SOFTIRQ = 3, /* softirq time on the thread */
	NHIST = 4,
};

enum episode_kind {
	EP_PREEMPT = 1,
	EP_RUNQ = 2,
	EP_BLOCKED = 3,
	EP_IRQ = 4,
	EP_SOFTIRQ = 5,
	EP_FAULT = 6,
};

/* thread_state: the value of `threads`; Go writes slot and zeros, BPF the rest. */
struct thread_state {
	u32 slot;
	u32 out_cpu;
	u64 out_ns;       /* switch-out time; 0 while on CPU */
	u64 wake_ns;      /* wakeup time after a voluntary switch-out; 0 otherwise */
	u32 out_state;    /* prev_state at switch-out */
	u32 involuntary;  /* 1 when switched out runnable */
	u32 other_pid;    /* preemptor at switch-out */
	u32 _pad;
	char other_comm[TASK_COMM_LEN];
};

struct thread_stats {
	u64 hist[NHIST][NBUCKETS];
	u64 sum_ns[NHIST];
	u64 max_ns[NHIST];
	u64 preemptions;   /* involuntary switch-outs */
	u64 switches;      /* all switch-outs */
	u64 faults_user;
	u64 faults_kernel;
	u64 irqs;
	u64 softirqs;
};

/* episode: one ring buffer record; mirrored by probe.Episode's decoder. */
struct episode {
	u64 start_ns;
	u64 end_ns;
	u64 aux;
	u32 tid;
	u32 kind;
	u32 cpu;
	u32 other_pid;
	u32 flags;
	u32 _pad;
	char name[TASK_COMM_LEN];
};

/* irq_start: per-CPU, one for each of hard IRQ, timer, softirq. */
struct irq_start {
	u64 start_ns;
	u32 tid;
	s32 num;
	char name[TASK_COMM_LEN];
};

enum {
	IRQ_SLOT_HARD = 0,
	IRQ_SLOT_TIMER = 1,
	IRQ_SLOT_SOFT = 2,
	NIRQSLOTS = 3,
};

enum counter {
	CNT_DROPS = 0, /* ring buffer full */
	CNT_EVENTS = 1,
	NCOUNTERS = 2,
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_THREADS);
	__type(key, u32);
	__type(value, struct thread_state);
} threads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_THREADS);
	__type(key, u32);
	__type(value, struct thread_stats);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NIRQSLOTS);
	__type(key, u32);
	__type(value, struct irq_start);
} irqs SEC(".maps");

/* oncpu: the registered thread running on this CPU (0: none), set by sched_switch, so the
 * interrupt and fault programs, which run far more often than any registered thread is on CPU,
 * filter with one inlined per-CPU array read instead of a hash lookup. A thread registered
 * while running is seen from its next switch-in (Go's RegisterThread sleeps 1 µs when a
 * thread registers itself). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u32);
} oncpu SEC(".maps");

/* tidfilt: how many registered threads have tid & (NTIDFILT-1) == index. sched_switch (next)
 * and sched_wakeup run on every switch and wakeup of the machine; an inlined array read that
 * is almost always 0 spares them the threads hash lookup. Go updates it around the hash. */
#define NTIDFILT 1024
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NTIDFILT);
	__type(key, u32);
	__type(value, u32);
} tidfilt SEC(".maps");

static __always_inline int maybe_registered(u32 tid)
{
	u32 k = tid & (NTIDFILT - 1);
	u32 *n = bpf_map_lookup_elem(&tidfilt, &k);
	return n && *n;
}

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NCOUNTERS);
	__type(key, u32);
	__type(value, u64);
} counters SEC(".maps");

/* Episodes shorter than this go to the histograms only. Set from Go before loading. */
const volatile u64 min_episode_ns = 100000;

/* Unused globals so the BTF keeps these types and bpf2go emits Go types for them. */
const struct episode *unused_episode __attribute__((unused));
const struct thread_stats *unused_stats __attribute__((unused));

static __always_inline u32 log2_bucket(u64 v)
{
	u32 b = 0;
	if (v >= (1ULL << 32)) { v >>= 32; b += 32; }
	if (v >= (1ULL << 16)) { v >>= 16; b += 16; }
	if (v >= (1ULL << 8)) { v >>= 8; b += 8; }
	if (v >= (1ULL << 4)) { v >>= 4; b += 4; }
	if (v >= (1ULL << 2)) { v >>= 2; b += 2; }
	if (v >= (1ULL << 1)) { b += 1; }
	if (b >= NBUCKETS)
		b = NBUCKETS - 1;
	return b;
}

static __always_inline void count(enum counter c)
{
	u32 k = c;
	u64 *v = bpf_map_lookup_elem(&counters, &k);
	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline struct thread_stats *stats_of(struct thread_state *ts)
{
	u32 slot = ts->slot;
	return bpf_map_lookup_elem(&stats, &slot);
}

static __always_inline void observe(struct thread_stats *st, u32 h, u64 d)
{
	if (!st || h >= NHIST)
		return;
	u32 b = log2_bucket(d);
	__sync_fetch_and_add(&st->hist[h][b], 1);
	__sync_fetch_and_add(&st->sum_ns[h], d);
	if (d > st->max_ns[h])
		st->max_ns[h] = d; /* racy max: a concurrent larger value may be lost, never a wrong one kept */
}

static __always_inline void emit(u32 tid, u32 kind, u64 start, u64 end, u32 cpu, u32 other,
				 const char *name, u64 aux, u32 flags, bool always)
{
	if (!always && end - start < min_episode_ns)
		return;
	struct episode *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(CNT_DROPS);
		return;
	}
	e->start_ns = start;
	e->end_ns = end;
	e->aux = aux;
	e->tid = tid;
	e->kind = kind;
	e->cpu = cpu;
	e->other_pid = other;
	e->flags = flags;
	e->_pad = 0;
	__builtin_memset(e->name, 0, sizeof(e->name));
	if (name)
		__builtin_memcpy(e->name, name, TASK_COMM_LEN);
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP); /* Go polls; no wakeup IPI per episode */
	count(CNT_EVENTS);
}

static __always_inline u32 current_tid(void)
{
	return (u32)bpf_get_current_pid_tgid();
}

/* running_registered: the current task's tid if it is the registered thread on this CPU, else 0. */
static __always_inline u32 running_registered(void)
{
	u32 zero = 0;
	u32 *cur = bpf_map_lookup_elem(&oncpu, &zero);
	if (!cur || !*cur)
		return 0;
	u32 tid = current_tid();
	return *cur == tid ? tid : 0;
}

/* ---- scheduler ---- */

/* sched_wakeup, not sched_waking too: one program per wakeup is enough and each costs ~0.3 µs
 * on every wakeup of the machine. */
SEC("tp_btf/sched_wakeup")
int BPF_PROG(sched_wakeup, struct task_struct *p)
{
	u32 tid = p->pid; /* tp_btf: BTF-typed pointer, read directly (no probe_read) */
	if (!maybe_registered(tid))
		return 0;
	struct thread_state *ts = bpf_map_lookup_elem(&threads, &tid);
	if (!ts)
		return 0;
	/* Only a sleeper's wakeup starts the run-queue wait. */
	if (ts->out_ns && !ts->involuntary && !ts->wake_ns)
		ts->wake_ns = bpf_ktime_get_ns();
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	u32 prev_tid = prev->pid;
	u32 next_tid = next->pid;
	u64 now = 0;
	u32 zero = 0;
	u32 *cur = bpf_map_lookup_elem(&oncpu, &zero);
	struct thread_state *ts = 0;

	/* prev can only be registered if oncpu says so (or it was registered while running,
	 * which RegisterThread covers by making the thread switch): saves a hash lookup. */
	if (cur && *cur == prev_tid)
		ts = bpf_map_lookup_elem(&threads, &prev_tid);
	if (ts) {
		struct thread_stats *st = stats_of(ts);
		u32 inv = preempt || prev_state == 0; /* TASK_RUNNING: still runnable */
		now = bpf_ktime_get_ns();
		ts->out_ns = now;
		ts->out_cpu = bpf_get_smp_processor_id();
		ts->out_state = prev_state;
		ts->involuntary = inv;
		ts->wake_ns = 0;
		ts->other_pid = next_tid;
		if (inv)
			__builtin_memcpy(ts->other_comm, next->comm, TASK_COMM_LEN);
		if (st) {
			__sync_fetch_and_add(&st->switches, 1);
			if (inv)
				__sync_fetch_and_add(&st->preemptions, 1);
		}
	}

	ts = maybe_registered(next_tid) ? bpf_map_lookup_elem(&threads, &next_tid) : 0;
	if (cur)
		*cur = ts ? next_tid : 0;
	if (ts && ts->out_ns) {
		struct thread_stats *st = stats_of(ts);
		u32 cpu = bpf_get_smp_processor_id();
		u64 out = ts->out_ns;
		if (!now)
			now = bpf_ktime_get_ns();
		u64 off = now - out;
		observe(st, HIST_OFFCPU, off);
		if (ts->involuntary) {
			observe(st, HIST_RUNQ, off);
			emit(next_tid, EP_PREEMPT, out, now, cpu, ts->other_pid, ts->other_comm, 0, 0, false);
		} else {
			u64 w = ts->wake_ns;
			if (!w || w < out || w > now)
				w = 0; /* wakeup not seen (or raced): the whole gap counts as blocked */
			emit(next_tid, EP_BLOCKED, out, w ? w : now, cpu, 0, 0, ts->out_state, 0, false);
			if (w) {
				char comm[TASK_COMM_LEN];
				observe(st, HIST_RUNQ, now - w);
				__builtin_memcpy(comm, prev->comm, TASK_COMM_LEN);
				emit(next_tid, EP_RUNQ, w, now, cpu, prev_tid, comm, 0, 0, false);
			}
		}
		ts->out_ns = 0;
		ts->wake_ns = 0;
	}
	return 0;
}

/* ---- page faults ---- */

static __always_inline void on_fault(unsigned long address, u32 kernel)
{
	u32 tid = running_registered();
	if (!tid)
		return;
	struct thread_state *ts = bpf_map_lookup_elem(&threads, &tid);
	if (!ts)
		return;
	struct thread_stats *st = stats_of(ts);
	if (st) {
		if (kernel)
			__sync_fetch_and_add(&st->faults_kernel, 1);
		else
			__sync_fetch_and_add(&st->faults_user, 1);
	}
	u64 now = bpf_ktime_get_ns();
	emit(tid, EP_FAULT, now, now, bpf_get_smp_processor_id(), 0, 0, address, kernel, true);
}

SEC("tp_btf/page_fault_user")
int BPF_PROG(page_fault_user, unsigned long address, struct pt_regs *regs, unsigned long error_code)
{
	on_fault(address, 0);
	return 0;
}

SEC("tp_btf/page_fault_kernel")
int BPF_PROG(page_fault_kernel, unsigned long address, struct pt_regs *regs, unsigned long error_code)
{
	on_fault(address, 1);
	return 0;
}

/* ---- interrupts ---- */

static __always_inline void irq_enter(u32 slot, s32 num, const char *kname)
{
	u32 tid = running_registered();
	struct irq_start *s = bpf_map_lookup_elem(&irqs, &slot);
	if (!s)
		return;
	if (!tid) {
		s->start_ns = 0;
		return;
	}
	s->start_ns = bpf_ktime_get_ns();
	s->tid = tid;
	s->num = num;
	__builtin_memset(s->name, 0, sizeof(s->name));
	if (kname)
		bpf_probe_read_kernel_str(s->name, sizeof(s->name), kname);
}

static __always_inline void irq_exit(u32 slot, u32 hist, u32 kind)
{
	struct irq_start *s = bpf_map_lookup_elem(&irqs, &slot);
	if (!s || !s->start_ns)
		return;
	u64 now = bpf_ktime_get_ns();
	u64 start = s->start_ns;
	u32 tid = s->tid;
	s->start_ns = 0;
	struct thread_state *ts = bpf_map_lookup_elem(&threads, &tid);
	if (!ts)
		return;
	struct thread_stats *st = stats_of(ts);
	if (st) {
		if (hist == HIST_SOFTIRQ)
			__sync_fetch_and_add(&st->softirqs, 1);
		else
			__sync_fetch_and_add(&st->irqs, 1);
	}
	observe(st, hist, now - start);
	emit(tid, kind, start, now, bpf_get_smp_processor_id(), 0, s->name, (u64)(s64)s->num, 0, false);
}

SEC("tp_btf/irq_handler_entry")
int BPF_PROG(irq_handler_entry, int irq, struct irqaction *action)
{
	irq_enter(IRQ_SLOT_HARD, irq, action->name);
	return 0;
}

SEC("tp_btf/irq_handler_exit")
int BPF_PROG(irq_handler_exit, int irq, struct irqaction *action, int ret)
{
	irq_exit(IRQ_SLOT_HARD, HIST_IRQ, EP_IRQ);
	return 0;
}

SEC("tp_btf/local_timer_entry")
int BPF_PROG(local_timer_entry, int vector)
{
	u32 tid = running_registered();
	u32 slot = IRQ_SLOT_TIMER;
	struct irq_start *s = bpf_map_lookup_elem(&irqs, &slot);
	if (!s)
		return 0;
	if (!tid) {
		s->start_ns = 0;
		return 0;
	}
	s->start_ns = bpf_ktime_get_ns();
	s->tid = tid;
	s->num = -1;
	__builtin_memset(s->name, 0, sizeof(s->name));
	s->name[0] = 't';
	s->name[1] = 'i';
	s->name[2] = 'm';
	s->name[3] = 'e';
	s->name[4] = 'r';
	return 0;
}

SEC("tp_btf/local_timer_exit")
int BPF_PROG(local_timer_exit, int vector)
{
	irq_exit(IRQ_SLOT_TIMER, HIST_IRQ, EP_IRQ);
	return 0;
}

SEC("tp_btf/softirq_entry")
int BPF_PROG(softirq_entry, unsigned int vec)
{
	irq_enter(IRQ_SLOT_SOFT, vec, 0);
	return 0;
}

SEC("tp_btf/softirq_exit")
int BPF_PROG(softirq_exit, unsigned int vec)
{
	irq_exit(IRQ_SLOT_SOFT, HIST_SOFTIRQ, EP_SOFTIRQ);
	return 0;
}
