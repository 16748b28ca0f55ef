// Package pinned allocates page-locked host memory off the Go heap: every model's weights and
// the IO staging buffers that the wire reader fills (DESIGN.md §6).
//
// A Buffer is an anonymous private mapping (mmap), locked in RAM (mlock) and pre-faulted at
// Alloc, so no page fault or swap-in happens on the action path, and the GC never scans or
// moves it. Transparent or hugetlbfs huge pages are optional (Config.Huge).
//
// Before locking, Alloc checks RLIMIT_MEMLOCK (unless the process holds CAP_IPC_LOCK, which
// lifts the limit) and fails with an error naming the limit, the need and the fix.
//
// # Ownership
//
// A Buffer's memory belongs to whoever called Alloc until Free. Bytes returns a slice valid
// until Free; after Free any use faults: the mapping is poisoned (kept, inaccessible) under
// the invariants build tag (kept reserved so its address is never reused and a stale slice
// cannot alias a later buffer), and unmapped otherwise. Slices of a Buffer given to a device
// for DMA must not outlive the copy.
//
// # Accounting
//
// A Pool counts bytes by Purpose (weights, IO staging, other); Locked reports the bytes locked
// by all pools of the process, which tests check is zero at the end (no leak).
//
// # DMA registration
//
// A device that must register host memory before DMA (the cuda backend: cuMemHostRegister)
// is set on the pool with SetRegistrar; the pool registers every live buffer at once and every
// later one at Alloc, and unregisters at Free.
//
// # Concurrency
//
// Pool and Buffer methods are safe for concurrent use. Alloc and Free are control-path calls:
// they make system calls, and Alloc takes time proportional to the size (pre-faulting).
package pinned
