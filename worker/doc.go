// Package worker is clockwork's worker: it listens for a controller, announces its GPUs in the
// hello, and executes the actions it is sent (LOAD, UNLOAD, INFER, ClearCache, model
// registration, state queries) on per-GPU executor threads, inside each action's window or not
// at all. It decides nothing (DESIGN.md §1, §5); the design is on the Worker type.
//
// Use it in-process with New (which listens, so Addr is known at once) and Run(ctx), or serve a
// connection you already have with ServeConn; `cw worker` is a thin flag wrapper.
//
// # Concurrency
//
// Per GPU four executor goroutines: weights (LOAD/UNLOAD), input, exec, output. Each is locked
// to an OS thread when something is set per thread: a CPU (sched_setaffinity), SCHED_FIFO
// behind a guard, or the timer slack of precise waits (SpinNs > 0); sleep-only executors stay
// plain goroutines (see Worker.lockThreads). Per connection a reader goroutine (decodes, validates, reads inputs into host
// buffers, queues) and the wire writer goroutine. Results are sent by whichever goroutine
// finishes an action. Telemetry is a lock-free ring; a TSV writer drains it on its own goroutine.
//
// # Ownership
//
// Actions, host IO buffers (mmap'd, off the Go heap), device IO slots and page pins are pooled;
// whoever sends an action's Result returns them. Inputs are read from the socket straight into
// the action's host buffer; outputs are copied into the same buffer and sent from it. A
// synthesised input is copied from one shared read-only mapping of zeros.
//
// # Invariants
//
// See Worker. Under the invariants build tag, a second INFER executing on a GPU panics with BUG.
//
// # Statuses
//
// Bad input is answered, never fatal: no such GPU or wrong input length: StatusBadInput (the
// reason says which); inverted window: StatusBadWindow; unknown model: StatusUnknownModel; batch not prepared:
// StatusBadBatch; LOAD without enough free pages or no host/IO memory: StatusNoMemory; INFER or
// UNLOAD of a model not loaded: StatusModelNotLoaded; reached after latest:
// StatusWindowPassed; queue full: StatusOverloaded; shutting down: StatusShuttingDown. A
// malformed frame ends that connection (wire's rule), never the worker.
package worker
