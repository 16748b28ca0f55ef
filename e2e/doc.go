// Package e2e runs clockwork end to end in one process: a controller and sim workers on loopback
// (Cluster, which `cw serve` uses), and the end-to-end tests that replay a time-compressed slice of
// the Azure Functions sample through it and check SLO attainment and that every request got
// exactly one answer.
//
// # Concurrency
//
// Start returns a running Cluster; Close (from any one goroutine) stops the controller, then the
// workers, and waits for them.
package e2e
