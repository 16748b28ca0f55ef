// Package e2e runs clockwork end to end in one process: a controller and sim workers on loopback
// (Cluster, which `cw serve` uses), or a controller and workers on an ONNX backend, cpu or cuda
// (Compiled, which `cw serve -backend cpu|cuda` uses), and the end-to-end tests: a
// time-compressed slice of the Azure Functions sample (SLO attainment, every request answered
// exactly once) and faults on the cpu backend (a file that does not import, a model larger than
// the cache, cache churn, a worker killed mid-run).
//
// # Concurrency
//
// Start and StartCompiled return a running cluster; Close (from any one goroutine) stops the
// controller, then the workers, and waits for them. Compiled.Kill may run beside a workload.
package e2e
