// Package lint holds tests that enforce the architecture of DESIGN.md §3 on the source tree:
// imports point one way, and the leaf packages wire, alloc and controller/sched read no clock,
// start no goroutines and never log. It has no non-test code.
package lint
