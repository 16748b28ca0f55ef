package wire

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error a decoder or a Conn returns wraps exactly one of them, so callers
// classify with errors.Is; the wrapping text carries the offending values.
var (
	// ErrTruncated: the input ended inside a frame header, a message header or a payload.
	ErrTruncated = errors.New("truncated input")
	// ErrTooLong: a length or count is over its named maximum (see LengthError).
	ErrTooLong = errors.New("length over maximum")
	// ErrBadMagic: the first bytes of a frame are not Magic; the peer does not speak this protocol.
	ErrBadMagic = errors.New("bad magic")
	// ErrVersion: the peer speaks another protocol version (see VersionError).
	ErrVersion = errors.New("protocol version mismatch")
	// ErrUnknownType: a frame carries a message type this version does not define.
	ErrUnknownType = errors.New("unknown message type")
	// ErrBadValue: a field holds a value outside its closed set (status, role, source, flags).
	ErrBadValue = errors.New("bad field value")
	// ErrTrailing: a message header is longer than its fields.
	ErrTrailing = errors.New("trailing bytes after message")
	// ErrUnexpected: a well-formed message arrived where the protocol does not allow it
	// (e.g. an INFER before the hello finished).
	ErrUnexpected = errors.New("unexpected message")
	// ErrAuth: the peer failed the HMAC challenge, or one side has a secret and the other not.
	ErrAuth = errors.New("authentication failed")
	// ErrClosed: the Conn was closed by this side.
	ErrClosed = errors.New("connection closed")
	// ErrPeerClosed: the peer said goodbye; the wrapping error carries its status and reason.
	ErrPeerClosed = errors.New("peer closed the connection")
	// ErrQueueFull: a non-blocking send found the writer's queue full (backpressure).
	ErrQueueFull = errors.New("send queue full")
)

// LengthError reports a length or count over its maximum. It matches ErrTooLong.
type LengthError struct {
	Field string // e.g. "Hello.Backend", "frame payload"
	Len   uint64
	Max   uint64
}

func (e *LengthError) Error() string {
	return fmt.Sprintf("%s: length %d over maximum %d", e.Field, e.Len, e.Max)
}

// Is makes errors.Is(err, ErrTooLong) true.
func (e *LengthError) Is(target error) bool { return target == ErrTooLong }

// VersionError reports a peer speaking another protocol version. It matches ErrVersion.
type VersionError struct {
	Local, Remote uint8
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("peer speaks wire protocol version %d, this side %d; run the same cw release on both ends", e.Remote, e.Local)
}

// Is makes errors.Is(err, ErrVersion) true.
func (e *VersionError) Is(target error) bool { return target == ErrVersion }

func truncated(what string, need, have int) error {
	return fmt.Errorf("%s: need %d more bytes, have %d: %w", what, need, have, ErrTruncated)
}

func tooLong(field string, n, max uint64) error {
	return &LengthError{Field: field, Len: n, Max: max}
}

func badValue(field string, v uint64) error {
	return fmt.Errorf("%s: value %d: %w", field, v, ErrBadValue)
}
