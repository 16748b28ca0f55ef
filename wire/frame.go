package wire

import (
	"encoding/binary"
	"fmt"
)

// Wire constants. They define the protocol: changing any of them is a new ProtocolVersion.
const (
	// Magic is the first two bytes of every frame, "CW" on the wire.
	Magic uint16 = 'C' | 'W'<<8
	// ProtocolVersion is the version this package speaks; a peer with another version is refused.
	ProtocolVersion uint8 = 1
	// HeaderSize is the size of the fixed frame header.
	HeaderSize = 40

	// MaxHeaderLen bounds a message header (the typed fields after the frame header). The largest
	// legal one is a ModelList or WorkerState at their maximum counts.
	MaxHeaderLen = 2 << 20
	// MaxPayloadLen bounds a frame's raw payload: tensors, or model bytes uploaded by LoadModel
	// (the largest model in the zoo, vgg19 fp32, is 548 MB).
	MaxPayloadLen = 1 << 30

	// NoDelta in Header.MinDeltaNs means the sender has not yet received a frame.
	NoDelta int64 = -1 << 63
)

// Type is a message type. The set is closed: a frame with another value is ErrUnknownType.
type Type uint8

// Message types. Values are wire constants. 1–15: both links; 16–47: worker link; 48–79: client link.
const (
	TypeHello          Type = 1  // both: first frame each way
	TypeAuth           Type = 2  // both: HMAC answer to the peer's hello nonce
	TypeGoodbye        Type = 3  // both: last frame, with a status and reason
	TypePing           Type = 4  // both
	TypePong           Type = 5  // both
	TypeResult         Type = 16 // worker → controller: outcome of any worker-link action
	TypeLoadModel      Type = 17 // controller → worker and client → controller
	TypeModelInfo      Type = 18 // reply to LoadModel on both links
	TypeLoadWeights    Type = 19 // controller → worker: LOAD
	TypeEvictWeights   Type = 20 // controller → worker: UNLOAD
	TypeInfer          Type = 21 // controller → worker: INFER
	TypeClearCache     Type = 22 // controller → worker
	TypeGetWorkerState Type = 23 // controller → worker
	TypeWorkerState    Type = 24 // worker → controller
	TypeListModels     Type = 48 // client → controller
	TypeModelList      Type = 49 // controller → client
	TypeRequest        Type = 50 // client → controller: an inference request
	TypeCancel         Type = 51 // client → controller
	TypeResponse       Type = 52 // controller → client: the one answer to a Request
)

var typeNames = [...]string{
	TypeHello: "hello", TypeAuth: "auth", TypeGoodbye: "goodbye", TypePing: "ping", TypePong: "pong",
	TypeResult: "result", TypeLoadModel: "load-model", TypeModelInfo: "model-info",
	TypeLoadWeights: "load-weights", TypeEvictWeights: "evict-weights", TypeInfer: "infer",
	TypeClearCache: "clear-cache", TypeGetWorkerState: "get-worker-state", TypeWorkerState: "worker-state",
	TypeListModels: "list-models", TypeModelList: "model-list", TypeRequest: "request",
	TypeCancel: "cancel", TypeResponse: "response",
}

// Valid reports whether t is a type this version defines.
func (t Type) Valid() bool { return int(t) < len(typeNames) && typeNames[t] != "" }

func (t Type) String() string {
	if t.Valid() {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Header is the fixed frame header. Little-endian, as everything on the wire:
//
//	0      2    3    4       6       8               16              24              32        36        40
//	+------+----+----+-------+-------+---------------+---------------+---------------+---------+---------+
//	|magic |ver |type| flags | rsvd  |      id       |    sent_ns    | min_delta_ns  | hdr_len | pay_len |
//	|u16   |u8  |u8  | u16   | u16=0 |      u64      |  i64 sender   | i64 sender's  |  u32    |  u32    |
//	|"CW"  |    |    |       |       |               |  wire clock   | min rx delta  |         |         |
//	+------+----+----+-------+-------+---------------+---------------+---------------+---------+---------+
//	then hdr_len bytes of the typed message header, then pay_len bytes of raw payload.
type Header struct {
	Version uint8 // ProtocolVersion when encoding; decoding checks it
	Type    Type
	Flags   uint16 // no flags are defined in version 1; must be zero
	// ID is the request or action id the message is about (a copy of the message's own id, so
	// wirecat and routers need not decode the message); 0 for link messages.
	ID uint64
	// SentNs is the sender's wire clock when the frame was queued (the sender's clock domain).
	SentNs int64
	// MinDeltaNs is the smallest (receive time − SentNs) the sender has seen on this connection
	// in its own clock, or NoDelta; the receiver combines it with its own minimum to estimate
	// the clock offset (see ClockSync).
	MinDeltaNs int64
	HeaderLen  uint32 // length of the message header that follows
	PayloadLen uint32 // length of the raw payload after the message header
}

// AppendHeader appends h's 40 bytes to dst. The Version field is written as given.
//
// Timing: every frame; must not allocate when dst has room; ~5ns.
func AppendHeader(dst []byte, h *Header) []byte {
	var b [HeaderSize]byte
	binary.LittleEndian.PutUint16(b[0:], Magic)
	b[2] = h.Version
	b[3] = uint8(h.Type)
	binary.LittleEndian.PutUint16(b[4:], h.Flags)
	binary.LittleEndian.PutUint64(b[8:], h.ID)
	binary.LittleEndian.PutUint64(b[16:], uint64(h.SentNs))
	binary.LittleEndian.PutUint64(b[24:], uint64(h.MinDeltaNs))
	binary.LittleEndian.PutUint32(b[32:], h.HeaderLen)
	binary.LittleEndian.PutUint32(b[36:], h.PayloadLen)
	return append(dst, b[:]...)
}

// Decode reads a frame header from src and checks magic, version, type, flags and both lengths
// against MaxHeaderLen and MaxPayloadLen. On error h is unspecified.
//
// Timing: every frame; allocates only on error.
func (h *Header) Decode(src []byte) ([]byte, error) {
	if len(src) < HeaderSize {
		return src, truncated("frame header", HeaderSize, len(src))
	}
	if m := binary.LittleEndian.Uint16(src); m != Magic {
		return src, fmt.Errorf("frame header: magic %#04x, want %#04x (is the peer a cw process on the right port?): %w", m, Magic, ErrBadMagic)
	}
	h.Version = src[2]
	if h.Version != ProtocolVersion {
		return src, &VersionError{Local: ProtocolVersion, Remote: h.Version}
	}
	h.Type = Type(src[3])
	if !h.Type.Valid() {
		return src, fmt.Errorf("frame header: type %d: %w", src[3], ErrUnknownType)
	}
	h.Flags = binary.LittleEndian.Uint16(src[4:])
	if h.Flags != 0 {
		return src, badValue("frame header flags", uint64(h.Flags))
	}
	if r := binary.LittleEndian.Uint16(src[6:]); r != 0 {
		return src, badValue("frame header reserved", uint64(r))
	}
	h.ID = binary.LittleEndian.Uint64(src[8:])
	h.SentNs = int64(binary.LittleEndian.Uint64(src[16:]))
	h.MinDeltaNs = int64(binary.LittleEndian.Uint64(src[24:]))
	h.HeaderLen = binary.LittleEndian.Uint32(src[32:])
	h.PayloadLen = binary.LittleEndian.Uint32(src[36:])
	if h.HeaderLen > MaxHeaderLen {
		return src, tooLong("frame header_len", uint64(h.HeaderLen), MaxHeaderLen)
	}
	if h.PayloadLen > MaxPayloadLen {
		return src, tooLong("frame payload_len", uint64(h.PayloadLen), MaxPayloadLen)
	}
	return src[HeaderSize:], nil
}

func (h *Header) String() string {
	return fmt.Sprintf("%s id=%d sent=%d mindelta=%d hdr=%d payload=%d", h.Type, h.ID, h.SentNs, h.MinDeltaNs, h.HeaderLen, h.PayloadLen)
}
