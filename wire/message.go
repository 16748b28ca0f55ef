package wire

import (
	"encoding/binary"
	"fmt"
	"strconv"
)

// Message is implemented by a pointer to every message type. The methods are the codec:
// AppendTo appends the message header (the typed fields, not the frame header or payload) and
// Decode reads it back, reusing the message's slices, so decoding into a reused message
// allocates nothing once its slices have grown.
type Message interface {
	Type() Type
	// FrameID is the id copied into the frame header: the request or action id, or 0.
	FrameID() uint64
	// AppendTo appends the message header to dst.
	AppendTo(dst []byte) []byte
	// Decode reads the message header from src and returns what follows it. On error the
	// message's contents are unspecified.
	Decode(src []byte) ([]byte, error)
	String() string
}

// New returns a zero message of type t, or nil if t is not defined.
func New(t Type) Message {
	switch t {
	case TypeHello:
		return new(Hello)
	case TypeAuth:
		return new(Auth)
	case TypeGoodbye:
		return new(Goodbye)
	case TypePing:
		return new(Ping)
	case TypePong:
		return new(Pong)
	case TypeResult:
		return new(Result)
	case TypeLoadModel:
		return new(LoadModel)
	case TypeModelInfo:
		return new(ModelInfo)
	case TypeLoadWeights:
		return new(LoadWeights)
	case TypeEvictWeights:
		return new(EvictWeights)
	case TypeInfer:
		return new(Infer)
	case TypeClearCache:
		return new(ClearCache)
	case TypeGetWorkerState:
		return new(GetWorkerState)
	case TypeWorkerState:
		return new(WorkerState)
	case TypeListModels:
		return new(ListModels)
	case TypeModelList:
		return new(ModelList)
	case TypeRequest:
		return new(Request)
	case TypeCancel:
		return new(Cancel)
	case TypeResponse:
		return new(Response)
	}
	return nil
}

// AppendFrame appends a whole frame's header part: the frame header for m followed by m's message
// header. The payload (payloadLen bytes) is the caller's to append or write after it.
// sentNs and minDeltaNs go into the frame header as given (see Header).
//
// Timing: every frame; must not allocate when dst has room.
func AppendFrame(dst []byte, m Message, sentNs, minDeltaNs int64, payloadLen int) []byte {
	if payloadLen < 0 || payloadLen > MaxPayloadLen {
		panic("BUG: wire: payload length " + strconv.Itoa(payloadLen) + " outside [0, MaxPayloadLen]; check before sending")
	}
	start := len(dst)
	h := Header{Version: ProtocolVersion, Type: m.Type(), ID: m.FrameID(), SentNs: sentNs, MinDeltaNs: minDeltaNs, PayloadLen: uint32(payloadLen)}
	dst = AppendHeader(dst, &h)
	dst = m.AppendTo(dst)
	n := len(dst) - start - HeaderSize
	if n > MaxHeaderLen {
		panic("BUG: wire: " + m.Type().String() + " message header of " + strconv.Itoa(n) + " bytes over MaxHeaderLen")
	}
	binary.LittleEndian.PutUint32(dst[start+32:], uint32(n))
	return dst
}

// DecodeMessage decodes a message header of exactly len(src) bytes (a frame's HeaderLen) into m.
//
// Timing: every frame; allocates only on error or when m's slices must grow.
func DecodeMessage(m Message, src []byte) error {
	tail, err := m.Decode(src)
	if err != nil {
		return err
	}
	if len(tail) != 0 {
		return fmt.Errorf("%s: %d bytes after the last field: %w", m.Type(), len(tail), ErrTrailing)
	}
	return nil
}

// Sizes and limits of variable fields. Wire constants: encoders refuse longer values, decoders
// check them before copying.
const (
	NonceSize     = 32   // Hello.Nonce
	MACSize       = 32   // Auth.MAC: HMAC-SHA256
	MaxNameLen    = 255  // model names, backend and GPU names
	MaxAgentLen   = 64   // Hello.Agent
	MaxPathLen    = 4096 // LoadModel.Path (PATH_MAX)
	MaxReasonLen  = 1024 // Reason texts
	MaxGPUs       = 64   // GPUs per worker
	MaxModels     = 4096 // models in a WorkerState or ModelList
	MaxBatchSizes = 32   // ModelDesc.Batches
	AllGPUs       = 0xFFFF
)

func quote(b []byte) string { return strconv.Quote(string(b)) }
