package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// FrameReader reads frames from a byte stream (a connection or a captured file). It hands the
// consumer each frame in three steps, so the consumer can choose where a payload goes before any
// of it is read:
//
//  1. Next reads the frame header and the message header and returns the header;
//  2. the consumer decodes the message from Message() (or DecodeInto), looks at PayloadLen and
//     finds a destination (a pinned buffer, a tensor slot);
//  3. ReadPayload(dst) copies the few payload bytes already buffered and reads the rest from the
//     stream straight into dst, with no intermediate copy; or Discard skips it.
//
// Next skips any payload the consumer left unread. Small frames are read many per system call
// through an internal buffer.
//
// # Concurrency
//
// One goroutine at a time. Slices it returns (Message) are valid until the next call.
type FrameReader struct {
	r   io.Reader
	buf []byte // buf[off:end] is buffered, unconsumed input
	off int
	end int

	hdr         Header
	msg         []byte // the current frame's message header, aliasing buf
	payloadLeft int    // bytes of the current frame's payload not yet consumed
	maxPayload  int
	err         error // sticky

	// midFrame is called before a blocking read that continues a frame already begun, and
	// idle before one that waits for a new frame; a Conn uses them to arm and clear its stall
	// deadline. Either may be nil.
	midFrame, idle func()
	armed          bool

	// afterBig is set after a frame whose payload was larger than the buffer: the next reads
	// take only a little more than the headers, so that most of a following large payload goes
	// from the socket straight to its destination instead of through the buffer.
	afterBig bool
}

// smallRead is how far past the needed bytes a read goes after a large frame.
const smallRead = 512

// DefaultReadBuffer is the read buffer size when none is given: many small frames per read(2).
const DefaultReadBuffer = 64 << 10

// NewFrameReader returns a reader of r with a bufSize-byte buffer (DefaultReadBuffer if 0).
// maxPayload (≤ MaxPayloadLen; 0 means MaxPayloadLen) bounds the payloads it accepts.
func NewFrameReader(r io.Reader, bufSize, maxPayload int) *FrameReader {
	if bufSize <= 0 {
		bufSize = DefaultReadBuffer
	}
	bufSize = max(bufSize, HeaderSize)
	if maxPayload <= 0 || maxPayload > MaxPayloadLen {
		maxPayload = MaxPayloadLen
	}
	return &FrameReader{r: r, buf: make([]byte, bufSize), maxPayload: maxPayload}
}

// fill makes at least n bytes available in buf[off:end], n ≤ MaxHeaderLen+HeaderSize.
func (f *FrameReader) fill(n int, frameStarted bool) error {
	if f.end-f.off >= n {
		return nil
	}
	if n > len(f.buf) {
		// Only a message header longer than the buffer gets here; n is bounded by MaxHeaderLen.
		nb := make([]byte, n)
		f.end = copy(nb, f.buf[f.off:f.end])
		f.off = 0
		f.buf = nb
	} else if f.off+n > len(f.buf) {
		f.end = copy(f.buf, f.buf[f.off:f.end])
		f.off = 0
	}
	lim := len(f.buf)
	if f.afterBig {
		lim = min(lim, f.off+n+smallRead)
	}
	for f.end-f.off < n {
		f.arm(frameStarted || f.end > f.off)
		m, err := f.r.Read(f.buf[f.end:lim])
		f.end += m
		if err != nil {
			if f.end-f.off >= n {
				return nil
			}
			if errors.Is(err, io.EOF) {
				if f.end == f.off && !frameStarted {
					return io.EOF
				}
				return truncated("frame", n, f.end-f.off)
			}
			return err
		}
	}
	return nil
}

func (f *FrameReader) arm(mid bool) {
	if mid && !f.armed && f.midFrame != nil {
		f.midFrame()
		f.armed = true
	} else if !mid && f.armed && f.idle != nil {
		f.idle()
		f.armed = false
	}
}

// Next reads the next frame's header and message header. It returns io.EOF at a clean end of
// stream (between frames), an error wrapping ErrTruncated if the stream ends inside a frame, a
// decode error for a bad header, or the stream's own error. After an error the reader is done:
// every later call returns the same error.
//
// Timing: reader goroutine, every frame; must not allocate (except growing the buffer once for a
// message header longer than it).
func (f *FrameReader) Next() (*Header, error) {
	if f.err != nil {
		return nil, f.err
	}
	if f.payloadLeft > 0 {
		if err := f.Discard(); err != nil {
			return nil, err
		}
	}
	// Check the magic as soon as two bytes are in: a peer that speaks another protocol (an HTTP
	// client on the port) is refused at once, not after its request fails to fill a header.
	if err := f.fill(2, false); err != nil {
		return nil, f.fail(err)
	}
	if m := binary.LittleEndian.Uint16(f.buf[f.off:]); m != Magic {
		return nil, f.fail(fmt.Errorf("frame header: magic %#04x, want %#04x (is the peer a cw process on the right port?): %w", m, Magic, ErrBadMagic))
	}
	if err := f.fill(HeaderSize, true); err != nil {
		return nil, f.fail(err)
	}
	if _, err := f.hdr.Decode(f.buf[f.off:f.end]); err != nil {
		return nil, f.fail(err)
	}
	if int(f.hdr.PayloadLen) > f.maxPayload {
		return nil, f.fail(tooLong("frame payload_len", uint64(f.hdr.PayloadLen), uint64(f.maxPayload)))
	}
	f.off += HeaderSize
	hl := int(f.hdr.HeaderLen)
	if err := f.fill(hl, true); err != nil {
		return nil, f.fail(err)
	}
	f.msg = f.buf[f.off : f.off+hl]
	f.off += hl
	f.payloadLeft = int(f.hdr.PayloadLen)
	f.afterBig = f.payloadLeft > len(f.buf)
	return &f.hdr, nil
}

func (f *FrameReader) fail(err error) error {
	f.err = err
	f.msg = nil
	return err
}

// Header returns the current frame's header; valid until the next Next.
func (f *FrameReader) Header() *Header { return &f.hdr }

// Message returns the current frame's message header bytes; valid until the next call.
func (f *FrameReader) Message() []byte { return f.msg }

// DecodeInto decodes the current frame's message header into m, which must be of the frame's type.
//
// Timing: reader goroutine; allocates only when m's slices must grow.
func (f *FrameReader) DecodeInto(m Message) error {
	if m.Type() != f.hdr.Type {
		return fmt.Errorf("cannot decode a %s frame into a %s: %w", f.hdr.Type, m.Type(), ErrUnexpected)
	}
	if err := DecodeMessage(m, f.msg); err != nil {
		return f.fail(err)
	}
	return nil
}

// PayloadLeft is how many payload bytes of the current frame are still unread.
func (f *FrameReader) PayloadLeft() int { return f.payloadLeft }

// ReadPayload reads the next len(dst) payload bytes of the current frame into dst: first those
// already buffered, then straight from the stream into dst. len(dst) may be less than the payload
// (read it in parts) but not more.
//
// Timing: reader goroutine; must not allocate; one copy for buffered bytes, none for the rest.
func (f *FrameReader) ReadPayload(dst []byte) error {
	if f.err != nil {
		return f.err
	}
	if len(dst) > f.payloadLeft {
		return fmt.Errorf("cannot read %d payload bytes: the frame has %d left", len(dst), f.payloadLeft)
	}
	n := copy(dst, f.buf[f.off:f.end])
	f.off += n
	f.payloadLeft -= n
	if n == len(dst) {
		return nil
	}
	// Restart the stall clock: the consumer may have taken its time to find dst.
	if f.midFrame != nil {
		f.midFrame()
		f.armed = true
	}
	m, err := io.ReadFull(f.r, dst[n:])
	f.payloadLeft -= m
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			err = truncated("frame payload", len(dst)-n, m)
		}
		return f.fail(err)
	}
	return nil
}

// Discard skips the rest of the current frame's payload.
func (f *FrameReader) Discard() error {
	for f.payloadLeft > 0 {
		if f.off == f.end {
			f.off, f.end = 0, 0
			if err := f.fill(1, true); err != nil {
				if errors.Is(err, io.EOF) {
					err = truncated("frame payload", f.payloadLeft, 0)
				}
				return f.fail(err)
			}
		}
		n := min(f.payloadLeft, f.end-f.off)
		f.off += n
		f.payloadLeft -= n
	}
	return nil
}
