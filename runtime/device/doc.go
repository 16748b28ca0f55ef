// Package device defines the interface every backend implements: cuda (a real GPU), cpu (the
// exact pure-Go reference) and sim (timing emulation from measured profiles).
//
// A worker opens a Backend, which yields one Device per GPU. Each Device owns:
//
//   - a memory region [Base, Base+Size) that package alloc splits into the weights page cache,
//     the IO arena and the workspace arena; the backend only sees addresses (Ptr);
//   - lanes: independent queues of work that run concurrently with each other (on CUDA, one stream
//     each: weights H2D, inputs H2D, exec, outputs D2H), so copies overlap with execution;
//   - prepared models (Program): a model compiled for that device at a set of batch sizes.
//
// # Concurrency
//
// A Device is used by the worker's executor threads, one thread per Lane. Calls on different
// lanes may run concurrently; calls on one lane are made by one thread at a time. Prepare and
// Close are control-path calls and must not race with lane calls for the same Program.
//
// # Ownership
//
// Host buffers passed to copies are pinned host memory (internal/pinned) owned by the caller;
// the device keeps no reference after the call returns. Device memory is never allocated by the
// backend after Open except inside Prepare (compiled code, constants); everything per request
// lives at addresses the caller provides from alloc.
//
// # Timing
//
// Every lane call is synchronous: it returns when the work is complete, with the device-side
// start and end of the work in the caller's monotonic clock (nanoseconds, the same clock as
// the worker's telemetry), so the worker records phase times without a second clock.
package device
