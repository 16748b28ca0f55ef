// Package controller is clockwork's controller: it dials the workers, registers models on all
// of them, accepts clients, and runs the scheduler (package sched) on one event loop, carrying
// out its actions over the worker links and answering every request exactly once.
//
// # Concurrency
//
// One event-loop goroutine owns the scheduler, the model registry, the pending requests and the
// telemetry writers. Every connection has a reader goroutine and a writer goroutine (the
// wire.Conn WriteLoop); readers decode frames, read payloads into fresh buffers and post events
// to the loop; the loop sends with wire.Conn.Send, which queues and returns (payloads are copied
// into the connection's queue, so the loop never waits for a socket except under backpressure).
// Worker links redial after a loss; each has a pinger so a silent worker is noticed.
//
// # Ownership
//
// A request's input buffer belongs to the loop from the event that carries it until its INFER
// is sent (the bytes are copied into the worker connection's queue); a result's output buffer
// until the loop has answered the batch's requests.
//
// # Invariants
//
//  1. Every request accepted from a client is answered exactly once: with the output, or with a
//     rejection of a distinct status (cannot-meet-slo, unknown-model, bad-input, overloaded,
//     cancelled, worker-lost, shutting-down).
//  2. No answer leaves later than the request's deadline plus sched.Config.LateBoundNs plus the
//     event loop's delay (its timer wakes at the scheduler's WakeNs): an INFER whose result has
//     not come back by then is answered worker-lost, and its late output is dropped.
//  3. A worker's GPUs join the scheduler only after every registered model is registered on it
//     and its cache is cleared, so the scheduler's view of pages matches the worker's.
package controller
