// Package client is the Go library applications use to talk to a clockwork controller: Infer
// with an SLO or a deadline and a priority, LoadModel and ListModels, many requests in flight
// on one connection.
//
// # Concurrency
//
// A Client is safe for concurrent use by any number of goroutines. It runs two goroutines: a
// reader that matches responses to calls by request id, and the connection's writer, which
// batches frames from all callers into few system calls.
//
// # Errors
//
// A request the controller rejects returns a *StatusError carrying the wire status (test it
// with errors.As, or errors.Is against the Err* values); a cancelled context returns the
// context's error after the cancel has been sent (the controller still answers the request
// once; that answer is discarded).
package client
