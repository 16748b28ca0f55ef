// Package wire is clockwork's binary protocol: the frame format, every message of the worker
// link (controller ↔ worker) and the client link (client ↔ controller), their zero-allocation
// codecs, and the framed connection that carries them.
//
// # Wire format
//
// Little-endian everywhere. A frame is a fixed 40-byte frame header, then a typed message header
// of hdr_len bytes (fixed-layout fields; variable fields are a uint16 length and bytes, or a
// uint16 count and elements), then an optional raw payload of pay_len bytes (tensor bytes, or an
// uploaded model file).
//
//	0      2    3    4       6       8               16              24              32        36        40
//	+------+----+----+-------+-------+---------------+---------------+---------------+---------+---------+
//	|magic |ver |type| flags | rsvd  |      id       |    sent_ns    | min_delta_ns  | hdr_len | pay_len |
//	|"CW"  | 1  |    | 0     | 0     |  request or   | sender's wire | sender's min  |  ≤ 2 MiB| ≤ 1 GiB |
//	|u16   |u8  |u8  | u16   | u16   |  action id    | clock, i64 ns | rx delta, i64 |  u32    |  u32    |
//	+------+----+----+-------+-------+---------------+---------------+---------------+---------+---------+
//	| message header (hdr_len bytes): the fields of the message type, in declaration order      |
//	+-------------------------------------------------------------------------------------------+
//	| payload (pay_len bytes): raw bytes, read by the consumer straight into its own buffer       |
//	+-------------------------------------------------------------------------------------------+
//
// The message types and their fields are the exported structs (Hello … Response); the exact bytes
// of each are pinned by testdata/golden. A connection begins with Hello each way (magic and
// version are in its frame header; another version is answered with Goodbye{StatusVersionMismatch}
// and a close), then Auth each way when either side has a shared secret, then anything. It ends
// with Goodbye.
//
// Times on the wire are int64 nanoseconds, named …Ns, in a named clock domain: frame headers carry
// the sender's clock (ClockUnixMono); worker-link actions carry the worker's clock; client-link
// messages the controller's. ClockSync estimates a peer's offset from the frame headers.
//
// # Codecs
//
// Each message type X has AppendX(dst, *X) []byte and (*X).Decode(src) (tail, error), and
// implements Message. Decoding into a reused message allocates nothing once its slices have
// grown. Every length and count is checked against a named maximum (MaxHeaderLen, MaxPayloadLen,
// MaxNameLen, MaxModels, …) and against the bytes present before anything is copied; a decode
// error leaves the message unspecified and wraps one sentinel from errors.go. Encoders panic
// (BUG) on values over a maximum: validating input is the caller's job, silently truncating is
// never right.
//
// # Connections
//
// Conn carries frames over a net.Conn (TCP, or TLS by wrapping the net.Conn in crypto/tls first):
// Handshake (hello, version check, optional HMAC challenge-response both ways), then Send /
// TrySend from any goroutine into one bounded, coalescing writer queue drained by WriteLoop with
// one writev per batch, and Next / DecodeInto / ReadPayload on one reader goroutine, where the
// consumer learns a payload's length before choosing its destination. Conn's doc comment has the
// path of a frame, backpressure and close; FrameReader reads frames from any stream (captures).
// ClockSync estimates a peer's clock offset from the minimum one-way deltas in frame headers.
//
// # Concurrency
//
// Codecs are pure functions of their arguments: no clock, no goroutines, no logging, no globals.
// Conn and FrameReader start no goroutines and read no clock: the owner runs WriteLoop on a
// goroutine of its choice and passes the clocks in Config (DESIGN.md §3 keeps wire a leaf).
//
// # Performance
//
// On the shared 2-core development machine (docs/wire.md has the commands, every run, and a
// 16-core host for comparison): INFER encode+decode 47–60 ns with 0 allocations; header-only
// frames over one loopback TCP connection 5.4–9.3 million/s (goal 2 million); 602,112-byte
// payloads at 0.96–1.20× a raw io.CopyBuffer over the same socket pair, and 0.90–0.99× over TLS
// (which costs 3–4× in throughput). gnet/v2 against Conn as a server: equal within noise on 2
// cores; on 16 cores gnet is 5–35 % faster for one pipelined connection that replies inside its
// read callback and 2× slower with 1,000 connections. Both links therefore use Conn, and gnet is
// only in wire/wirebench's tests.
package wire
