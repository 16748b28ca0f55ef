// Package sched is clockwork's scheduler: a deterministic core that turns events (requests,
// cancellations, action results, GPUs and models appearing or vanishing, the passage of time)
// into actions (INFER, LOAD, EVICT, and answers to requests).
//
// The core reads no clock, does no I/O, starts no goroutines and never logs: time is the now
// argument of Step, and the same events at the same times always give the same actions. The
// controller owns the clock, the sockets and the telemetry; it feeds Step and carries out what
// it returns.
//
// # Policy
//
// Scheduler follows Clockwork's INFER4 (reference/clockwork.md §D) with the known bugs of the
// original left out (§K.2) and three additions: priority classes, cancellation and models
// registered at any time. The long comment on Scheduler walks the path step by step.
//
// # Concurrency
//
// A Scheduler is not safe for concurrent use: one goroutine (the controller's event loop) calls
// Step. Step never blocks.
//
// # Ownership
//
// The slice Step returns, and every Requests slice inside it, stay valid until the next call to
// Step; the caller copies what it needs to keep.
//
// # Invariants
//
// Under the invariants build tag, Step checks after every event that GPU pages are conserved
// (free + held by loaded or loading instances = total), that each request is in exactly one
// place, and that every INFER's window lets it finish by its requests' deadlines.
package sched
