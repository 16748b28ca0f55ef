// Package probe explains why a registered thread was late, with eBPF programs on the scheduler,
// page faults and interrupts (DESIGN.md §10).
//
// The worker registers each executor thread (RegisterThread) when it starts; the BPF programs
// then keep, for registered threads only, log2 histograms of run-queue wait, off-CPU time, hard
// IRQ and softirq time, counts of involuntary preemptions and page faults, and send every
// episode at least Config.MinEpisode long (and every page fault) through a ring buffer. Explain
// returns the episodes that overlapped an interval on one thread and a one-line text such as
// "preempted by pid 4121 (kworker/3:1) for 310µs on CPU 3; 2 page faults; IRQ 45 (virtio0) 80µs".
//
// Programs are tp_btf (BTF-typed raw tracepoints): they attach without tracefs and work on the
// Firecracker kernels we run, where kprobes and fentry do not (reference/feasibility.md). The
// BPF source is probe.bpf.c; bpf2go output (bpf_bpfel.go, bpf_bpfel.o) is committed and
// `go generate` (make generate) rebuilds it with clang and libbpf-dev.
//
// # Clock
//
// Episode times are bpf_ktime_get_ns(): CLOCK_MONOTONIC, the clock Go's runtime nanotime reads.
// Now reads the same clock with clock_gettime. The worker's telemetry uses its own wire clock
// (ns since the Unix epoch, advanced by the monotonic clock); CalibrateClock measures the
// offset between the two once, and Clock converts in both directions.
//
// # Privileges
//
// Open needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN, or root) and kernel BTF
// (/sys/kernel/btf/vmlinux). tracefs is not needed. Without them it returns an error that
// wraps ErrUnavailable and names what is missing, so the caller runs without probes.
//
// # Concurrency
//
// All Probes methods may be called from any goroutine. One goroutine started by Open drains the
// ring buffer every Config.Poll; Explain drains it first itself, so an episode that ended
// before Explain was called is always seen.
//
// # Ownership
//
// Slices returned by Explain, Snapshot and Worst are the caller's.
package probe
