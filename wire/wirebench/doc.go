// Package wirebench compares serving wire frames with github.com/panjf2000/gnet/v2 against the
// net.Conn server that wire.Conn gives (benchmark 4 of issue 3). It holds only tests, so that
// package wire stays free of dependencies; results are in docs/wire.md.
//
// Both servers answer each header-only INFER with a RESULT frame, parsed and built with the same
// wire codecs. The gnet server handles every complete frame of one OnTraffic call and writes all
// replies with one c.Write (per-frame writes are known to be 5–6× slower; see
// reference/feasibility.md). The net.Conn server is a wire.Conn per connection: a reader
// goroutine and a batching WriteLoop goroutine. Clients are wire.Conns too, pipelining up to a
// window of frames per connection and timing each reply.
package wirebench
