// Package bench drives workloads at a clockwork controller and reports what happened: open-loop
// Poisson, closed loop, bursty on/off and SLO sweeps after the original's workload client
// (reference clockwork.md §F), replay of the Azure Functions 2019 trace in its real CSV layout, a
// seeded synthetic Azure-like trace generator, HDR-style latency histograms, and reports (console
// table, request TSV, JSON summary, PNG and SVG plots).
//
// # Open loop without coordinated omission
//
// A workload is a list of Arrivals fixed before the run. RunOpen sends each at its scheduled time
// from one dispatcher goroutine that never waits on a response (every request gets its own
// goroutine), and measures latency from the scheduled time, not the send: if the dispatcher or the
// client falls behind, that delay is counted against the system, as a user would see it.
//
// # Concurrency
//
// RunOpen and RunClosed start and join their own goroutines; a Result is owned by the caller once
// they return. Histogram is not safe for concurrent use; Summarize builds them after the run from
// the per-request records, which each request goroutine writes into its own slot.
//
// # Errors
//
// A target that goes away mid-run (the controller's address stops answering) ends the run early:
// requests not yet sent are recorded as not sent, RunOpen returns what was measured together with an
// error naming the address, and the reports are still written.
package bench
