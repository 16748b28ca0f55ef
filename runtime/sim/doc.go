// Package sim is the timing-emulation backend: a GPU without a GPU, after Clockwork's
// worker_dummy (clockwork.md §H), so a controller can be built and tested against a real worker,
// and one process can emulate hundreds of GPUs.
//
// What it emulates:
//
//   - memory: each device has a region of a configured size (default 32 GiB, a V100) with no
//     backing store; every address passed to a copy or a run is checked against it, so a worker
//     that overruns its region fails as on a real card;
//   - copies: CopyIn and CopyOut take CopyLatencyNs + bytes / bandwidth (default the profile's
//     measured 12.3 GB/s) on the calling lane;
//   - execution: Program.Run takes a duration drawn from the profile entry for (model, batch),
//     p50 with a configurable spread towards the profiled p99 and p99.99, deterministic per seed.
//
// A model on sim is its profile entry (*ModelProfile implements device.Model). The profile file
// format (Profile, JSON) is shared with the controller, which reads its estimates from it, and
// with `cw tools profile`, which writes it from real GPU runs. DefaultProfile is the Clockwork
// model zoo on a V100, embedded; its source lines say where every number came from.
//
// # Timing
//
// Spans are in the caller's clock (Config.Clock). Waits sleep until DefaultSpinNs before their end
// and spin the rest (WaitUntil): Go timers wake tens of µs late, which on a real GPU would be
// lateness the device did not cause. BenchmarkWaitUntil measures the error of both modes.
//
// # Concurrency
//
// As package device: one goroutine per lane per device; Prepare and Close on the control path.
// Under the invariants build tag a second concurrent Run on one device panics (C2: one INFER at a
// time per GPU). Profiles are immutable once parsed; DefaultProfile is shared (Clone to edit).
package sim
