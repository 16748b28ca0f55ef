package wire

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Conn. Only WireClock is required.
type Config struct {
	// Hello is what this side announces. Handshake fills Nonce and sets HelloAuth when Secret
	// is set; Role must be set.
	Hello Hello
	// AcceptRoles lists the peer roles this side talks to (a worker: controller and tool); empty
	// accepts any role but its own.
	AcceptRoles []Role
	// Secret, when set, makes the hello run an HMAC-SHA256 challenge-response both ways; a
	// peer without the same secret is refused with StatusUnauthenticated.
	Secret []byte
	// WireClock returns the local wire clock (ClockUnixMono ns). wire reads no clock itself.
	WireClock func() int64
	// Now returns the time for socket deadlines; nil disables StallTimeout, WriteTimeout and
	// the close linger (tests under testing/synctest pass time.Now).
	Now func() time.Time
	// StallTimeout bounds how long a frame, once begun, may take to arrive completely; a peer
	// that stalls mid-frame gets the connection closed with a timeout error. Idle time between
	// frames is not bounded here (use Ping). 0: no bound. With it set, the Conn owns the read
	// deadline: do not set one on NetConn().
	StallTimeout time.Duration
	// WriteTimeout bounds one flush; a peer that stops reading fails the writer. 0: no bound.
	WriteTimeout time.Duration
	// QueueBytes bounds the bytes queued for the writer (frames, and payloads held by
	// reference); 0 means 4 MiB. See Conn's Backpressure.
	QueueBytes int
	// InlinePayload: payloads up to this many bytes are copied into the queue and Send returns
	// at once; longer ones are written from the caller's memory and Send waits until they have
	// been written. 0 means 16 KiB.
	InlinePayload int
	// ReadBuffer is the reader's buffer size; 0 means DefaultReadBuffer.
	ReadBuffer int
	// MaxPayload bounds accepted payloads (≤ MaxPayloadLen); 0 means MaxPayloadLen.
	MaxPayload int
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.WireClock == nil {
		return errors.New("wire config: WireClock is nil; pass the process's wire clock")
	}
	if c.Hello.Role < RoleController || c.Hello.Role > RoleTool {
		return fmt.Errorf("wire config: Hello.Role %d is not a role", c.Hello.Role)
	}
	if err := Validate(&c.Hello); err != nil {
		return fmt.Errorf("wire config: %w", err)
	}
	if (c.StallTimeout > 0 || c.WriteTimeout > 0) && c.Now == nil {
		return errors.New("wire config: StallTimeout or WriteTimeout set without Now")
	}
	if c.QueueBytes < 0 || c.InlinePayload < 0 || c.MaxPayload < 0 || c.MaxPayload > MaxPayloadLen {
		return fmt.Errorf("wire config: negative size or MaxPayload %d over %d", c.MaxPayload, MaxPayloadLen)
	}
	return nil
}

// PeerError is returned when the peer says goodbye; it matches ErrPeerClosed.
type PeerError struct {
	Status Status
	Reason string
}

func (e *PeerError) Error() string {
	return fmt.Sprintf("peer closed the connection: %s: %s", e.Status, e.Reason)
}

// Is makes errors.Is(err, ErrPeerClosed) true.
func (e *PeerError) Is(target error) bool { return target == ErrPeerClosed }

// Conn is a framed, optionally authenticated connection over a net.Conn (TCP, or a *tls.Conn
// for TLS: wrap before NewConn; the protocol is the same inside).
//
// # The path of a frame
//
//  1. Send encodes the frame header and message header into the writer queue under a mutex,
//     copies a small payload after them, or records a reference to a large one; it stamps
//     SentNs from WireClock and MinDeltaNs from the reader's ClockSync.
//  2. The writer (WriteLoop, on a goroutine the owner starts: wire starts none) swaps the queue
//     for an empty one and writes everything queued with one writev, while senders fill the
//     other queue. Frames sent while a write is in flight therefore go out together: small
//     actions cost far less than one system call each.
//  3. The reader (Next, on the owner's reader goroutine) reads frames through a FrameReader,
//     feeds ClockSync, answers Ping, turns Goodbye into a PeerError, and returns every other
//     frame; the consumer decodes it and reads its payload into a destination of its choice.
//
// # Backpressure
//
// At most QueueBytes are queued (a single frame larger than that is admitted alone into an empty
// queue). Send blocks while the queue is full; TrySend returns ErrQueueFull instead. A peer that
// stops reading fills the socket buffer, then the queue, then blocks Send: set WriteTimeout to
// turn that into an error.
//
// # Concurrency
//
// Send, TrySend, Close and the accessors may be called from any goroutine. Next, DecodeInto,
// ReadPayload and Discard from one reader goroutine. WriteLoop from one goroutine. Handshake
// before any of them.
//
// # Close
//
// Close sends Goodbye{StatusOK} after everything queued, flushes, half-closes the socket and
// closes it; the peer's Next returns a PeerError with StatusOK. Abort closes at once.
type Conn struct {
	nc  net.Conn
	cfg Config
	rd  *FrameReader

	clock        ClockSync // reader goroutine only
	minDelta     atomic.Int64
	peerMinDelta atomic.Int64
	rttNs        atomic.Int64
	peer         Hello

	mu        sync.Mutex
	dataReady sync.Cond // writer waits for frames
	space     sync.Cond // senders wait for room or for their payload to be written
	q, spare  queue
	queued    int    // bytes in q plus bytes being written
	seq       uint64 // frames enqueued
	written   uint64 // frames written
	closing   bool
	looping   bool
	flushing  bool // a goroutine is writing c.spare
	loopDone  bool
	werr      error // sticky writer error
	closeOnce sync.Once
	ping      Ping
	pong      Pong
}

type seg struct {
	off, end int    // inline bytes q.buf[off:end]
	ext      []byte // or a payload by reference
}

type queue struct {
	buf   []byte
	segs  []seg
	bytes int
	iov   net.Buffers
	// cursor is what writev consumes; a field, so taking its address does not allocate.
	cursor net.Buffers
}

func (q *queue) reset() {
	q.buf = q.buf[:0]
	q.segs = q.segs[:0]
	q.bytes = 0
}

// NewConn wraps nc. It does no I/O; call Handshake next.
func NewConn(nc net.Conn, cfg Config) (*Conn, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.QueueBytes == 0 {
		cfg.QueueBytes = 4 << 20
	}
	if cfg.InlinePayload == 0 {
		cfg.InlinePayload = 16 << 10
	}
	c := &Conn{nc: nc, cfg: cfg}
	c.rd = NewFrameReader(nc, cfg.ReadBuffer, cfg.MaxPayload)
	if cfg.StallTimeout > 0 {
		c.rd.midFrame = func() { _ = nc.SetReadDeadline(cfg.Now().Add(cfg.StallTimeout)) }
		c.rd.idle = func() { _ = nc.SetReadDeadline(time.Time{}) }
	}
	c.dataReady.L = &c.mu
	c.space.L = &c.mu
	c.q.buf = make([]byte, 0, 64<<10)
	c.spare.buf = make([]byte, 0, 64<<10)
	c.minDelta.Store(NoDelta)
	c.peerMinDelta.Store(NoDelta)
	return c, nil
}

// NetConn returns the underlying connection.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Peer returns the peer's Hello; valid after Handshake, read-only.
func (c *Conn) Peer() *Hello { return &c.peer }

// ClockOffset returns the estimate of (local wire clock − peer wire clock) and its error bound,
// from the minimum one-way deltas (see ClockSync); ok is false until frames went both ways.
// A peer time t is local time t + offset. Any goroutine.
func (c *Conn) ClockOffset() (offsetNs, errNs int64, ok bool) {
	dL, dR := c.minDelta.Load(), c.peerMinDelta.Load()
	if dL == NoDelta || dR == NoDelta {
		return 0, 0, false
	}
	return (dL - dR) / 2, (dL + dR + 1) / 2, true
}

// RTT returns the last Ping round trip in ns, or 0.
func (c *Conn) RTT() int64 { return c.rttNs.Load() }

// Send queues m and its payload for the writer, blocking while the queue is full. A payload up
// to Config.InlinePayload is copied and may be reused when Send returns; a longer one is written
// from payload itself, and Send returns only after it has been written (so it too may be reused
// then). len(payload) ≤ MaxPayload.
//
// Timing: any goroutine; does not allocate once the queue has grown; ~50ns for a header-only frame
// when the queue has room; blocks on backpressure.
func (c *Conn) Send(m Message, payload []byte) error { return c.send(m, payload, nil, true) }

// SendParts is Send with a payload gathered from parts, in order, without joining them first
// (e.g. one INFER's batch from several clients' inputs). The same copy-or-wait rule applies to
// the parts' total length.
func (c *Conn) SendParts(m Message, parts [][]byte) error { return c.send(m, nil, parts, true) }

// TrySend is Send that returns ErrQueueFull instead of blocking for room. It still waits for a
// long payload to be written once queued.
func (c *Conn) TrySend(m Message, payload []byte) error { return c.send(m, payload, nil, false) }

// send queues m with payload, or with parts when payload is nil.
func (c *Conn) send(m Message, payload []byte, parts [][]byte, block bool) error {
	maxP := c.cfg.MaxPayload
	if maxP == 0 {
		maxP = MaxPayloadLen
	}
	total := len(payload)
	for _, p := range parts {
		total += len(p)
	}
	if total > maxP {
		return fmt.Errorf("cannot send %s: %w", m.Type(), tooLong("payload", uint64(total), uint64(maxP)))
	}
	if err := Validate(m); err != nil {
		return err
	}
	inline := total <= c.cfg.InlinePayload
	c.mu.Lock()
	for {
		if c.werr != nil {
			err := c.werr
			c.mu.Unlock()
			return err
		}
		if c.closing {
			c.mu.Unlock()
			return fmt.Errorf("cannot send %s: %w", m.Type(), ErrClosed)
		}
		if c.queued == 0 || c.queued+HeaderSize+total <= c.cfg.QueueBytes {
			break
		}
		if !block {
			c.mu.Unlock()
			return ErrQueueFull
		}
		c.space.Wait()
	}
	seq := c.enqueue(m, payload, parts, total, inline)
	if !inline {
		// Write it from this goroutine unless a flush is under way: the caller waits for the
		// write anyway, and this saves two goroutine handoffs per large payload.
		if err := c.flushUntilLocked(seq); err != nil {
			c.mu.Unlock()
			return err
		}
	}
	c.mu.Unlock()
	return nil
}

// flushUntilLocked returns when frame seq has been written, doing the writes on the calling
// goroutine whenever no other flush is under way; c.mu is held.
func (c *Conn) flushUntilLocked(seq uint64) error {
	for c.written < seq && c.werr == nil {
		if c.flushing {
			c.space.Wait()
			continue
		}
		_ = c.flushLocked()
	}
	if c.written < seq {
		// Failed or aborted: a flush may still be reading the caller's payload (pinned memory
		// the caller frees once Send returns); wait until none is.
		for c.flushing {
			c.space.Wait()
		}
	}
	return c.werr
}

// enqueue appends one frame to c.q, its payload being payload or, if nil, parts (total bytes);
// c.mu is held.
func (c *Conn) enqueue(m Message, payload []byte, parts [][]byte, total int, inline bool) uint64 {
	q := &c.q
	start := len(q.buf)
	q.buf = AppendFrame(q.buf, m, c.cfg.WireClock(), c.minDelta.Load(), total)
	if inline {
		q.buf = append(q.buf, payload...)
		for _, p := range parts {
			q.buf = append(q.buf, p...)
		}
	}
	if n := len(q.segs); n > 0 && q.segs[n-1].ext == nil {
		q.segs[n-1].end = len(q.buf) // extend the previous inline segment
	} else {
		q.segs = append(q.segs, seg{off: start, end: len(q.buf)})
	}
	if !inline {
		if len(payload) > 0 {
			q.segs = append(q.segs, seg{ext: payload})
		}
		for _, p := range parts {
			if len(p) > 0 {
				q.segs = append(q.segs, seg{ext: p})
			}
		}
	}
	n := len(q.buf) - start
	if !inline {
		n += total
	}
	q.bytes += n
	c.queued += n
	c.seq++
	if inline {
		c.dataReady.Signal()
	}
	return c.seq
}

// WriteLoop writes queued frames until Close has flushed them or a write fails, then returns
// nil after a clean close or the write error. The owner runs it on its own goroutine (wire starts
// none), after Handshake.
//
// Timing: writer goroutine; does not allocate in steady state; one writev per batch of frames.
func (c *Conn) WriteLoop() error {
	c.mu.Lock()
	if c.looping {
		c.mu.Unlock()
		return errors.New("BUG: wire: WriteLoop called twice")
	}
	c.looping = true
	for {
		if c.werr == nil && !c.closing && (c.q.bytes == 0 || c.flushing) {
			c.dataReady.Wait()
			continue
		}
		if c.flushing {
			c.space.Wait() // closing: let the other flush finish
			continue
		}
		if c.werr != nil || (c.q.bytes == 0 && c.closing) {
			err := c.werr
			c.loopDone = true
			c.space.Broadcast()
			c.mu.Unlock()
			if err == nil {
				c.closeSocket() // everything, the goodbye last, is written
			}
			return err
		}
		if err := c.flushLocked(); err != nil {
			continue // werr is set; the loop exits above
		}
	}
}

// flushLocked writes everything queued; c.mu is held on entry and exit, released during I/O.
// Only one flush runs at a time (c.flushing); the caller checks it is false.
func (c *Conn) flushLocked() error {
	if c.flushing {
		panic("BUG: wire: two flushes at once")
	}
	c.flushing = true
	c.q, c.spare = c.spare, c.q
	w := &c.spare
	seq := c.seq
	c.mu.Unlock()

	w.iov = w.iov[:0]
	for _, s := range w.segs {
		if s.ext != nil {
			w.iov = append(w.iov, s.ext)
		} else {
			w.iov = append(w.iov, w.buf[s.off:s.end])
		}
	}
	if c.cfg.WriteTimeout > 0 {
		_ = c.nc.SetWriteDeadline(c.cfg.Now().Add(c.cfg.WriteTimeout))
	}
	var err error
	if len(w.iov) == 1 {
		_, err = c.nc.Write(w.iov[0])
	} else {
		w.cursor = w.iov // WriteTo consumes its receiver; keep w.iov's backing array
		_, err = w.cursor.WriteTo(c.nc)
	}
	clear(w.iov) // drop references to callers' payloads
	n := w.bytes
	w.reset()

	c.mu.Lock()
	c.queued -= n
	if err != nil {
		if c.werr == nil {
			c.werr = fmt.Errorf("cannot write to %v: %w", c.nc.RemoteAddr(), err)
		}
		_ = c.nc.Close()
	} else {
		c.written = seq
	}
	c.flushing = false
	c.space.Broadcast()
	if c.q.bytes > 0 || c.closing {
		c.dataReady.Signal() // frames queued during a direct flush
	}
	return err
}

// Flush writes everything queued from the calling goroutine, for use before WriteLoop runs
// (handshakes) or by owners that run no WriteLoop.
func (c *Conn) Flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flushUntilLocked(c.seq)
}

// Next returns the next application frame. It answers Ping itself, records Pong round trips,
// feeds the clock estimate from every frame, and returns a *PeerError at the peer's Goodbye
// (then the owner calls Close). Hello and Auth after the handshake are ErrUnexpected. Any other
// error ends the connection: a malformed frame is answered with a Goodbye saying why, then the
// socket closes; a truncated frame, a stall (StallTimeout) or an I/O error close it at once; a
// peer gone between frames without a goodbye is an error wrapping io.EOF.
//
// Timing: reader goroutine; must not allocate.
func (c *Conn) Next() (*Header, error) {
	for {
		h, err := c.rd.Next()
		if err != nil {
			return nil, c.readFailed(err)
		}
		c.clock.Observe(h, c.cfg.WireClock())
		c.minDelta.Store(c.clock.LocalMinDelta())
		if h.MinDeltaNs != NoDelta {
			c.peerMinDelta.Store(h.MinDeltaNs)
		}
		switch h.Type {
		case TypePing:
			if err := c.rd.DecodeInto(&c.ping); err != nil {
				return nil, c.readFailed(err)
			}
			c.pong = Pong{Seq: c.ping.Seq, PingSentNs: h.SentNs}
			_ = c.TrySend(&c.pong, nil) // a full queue drops the pong; the pinger retries
			continue
		case TypePong:
			if err := c.rd.DecodeInto(&c.pong); err != nil {
				return nil, c.readFailed(err)
			}
			c.rttNs.Store(c.cfg.WireClock() - c.pong.PingSentNs)
			continue
		case TypeGoodbye:
			var g Goodbye
			if err := c.rd.DecodeInto(&g); err != nil {
				return nil, c.readFailed(err)
			}
			return nil, &PeerError{Status: g.Status, Reason: string(g.Reason)}
		case TypeHello, TypeAuth:
			return nil, c.protocolError(fmt.Errorf("%s after the handshake: %w", h.Type, ErrUnexpected))
		}
		return h, nil
	}
}

// SendPing sends a Ping; the Pong's round trip shows in RTT.
func (c *Conn) SendPing(seq uint64) error { return c.TrySend(&Ping{Seq: seq}, nil) }

// readFailed ends the connection after a read error: a malformed or unexpected frame gets a
// Goodbye saying why before the close; a truncated stream, a timeout or an I/O error just close.
// A clean end between frames without a goodbye is reported wrapping io.EOF.
func (c *Conn) readFailed(err error) error {
	for _, s := range []error{ErrTooLong, ErrBadMagic, ErrVersion, ErrUnknownType, ErrBadValue, ErrTrailing, ErrUnexpected} {
		if errors.Is(err, s) {
			return c.protocolError(err)
		}
	}
	c.Abort()
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("peer %v closed the connection without a goodbye: %w", c.nc.RemoteAddr(), err)
	}
	return err
}

// protocolError tells the peer why (best effort) and aborts.
func (c *Conn) protocolError(err error) error {
	st := StatusProtocolError
	if errors.Is(err, ErrVersion) {
		st = StatusVersionMismatch
	}
	c.goodbyeAndAbort(st, err.Error())
	return err
}

// DecodeInto decodes the current frame's message into m (reader goroutine).
func (c *Conn) DecodeInto(m Message) error {
	if err := c.rd.DecodeInto(m); err != nil {
		if c.rd.err == nil {
			return err // m is of another type: the caller's mistake, the stream is intact
		}
		return c.readFailed(err)
	}
	return nil
}

// ReadPayload reads the current frame's payload (or the next part of it) into dst; see
// FrameReader.ReadPayload. Reader goroutine.
func (c *Conn) ReadPayload(dst []byte) error {
	if err := c.rd.ReadPayload(dst); err != nil {
		if c.rd.err == nil {
			return err // the caller asked for more than the frame has; the stream is intact
		}
		return c.readFailed(err)
	}
	return nil
}

// Discard skips the current frame's unread payload. Reader goroutine.
func (c *Conn) Discard() error {
	if err := c.rd.Discard(); err != nil {
		return c.readFailed(err)
	}
	return nil
}

// Close flushes everything queued, sends Goodbye{StatusOK} and closes; see Conn. It waits for the
// writer up to WriteTimeout when set. Safe to call more than once and from any goroutine.
func (c *Conn) Close() error { return c.CloseWithStatus(StatusOK, "") }

// CloseWithStatus is Close with a Goodbye that says why (e.g. StatusShuttingDown).
func (c *Conn) CloseWithStatus(st Status, reason string) error {
	var err error
	c.closeOnce.Do(func() {
		if len(reason) > MaxReasonLen {
			reason = reason[:MaxReasonLen]
		}
		c.mu.Lock()
		if c.werr == nil {
			c.enqueue(&Goodbye{Status: st, Reason: []byte(reason)}, nil, nil, 0, true)
		}
		c.closing = true
		c.dataReady.Signal()
		if c.looping {
			for !c.loopDone {
				c.space.Wait()
			}
		} else {
			_ = c.flushUntilLocked(c.seq)
		}
		err = c.werr
		if c.werr == nil {
			c.werr = fmt.Errorf("cannot send: %w", ErrClosed)
		}
		c.space.Broadcast()
		c.mu.Unlock()
		c.closeSocket()
	})
	return err
}

// closeSocket half-closes (so the peer reads everything, then EOF) and closes the socket.
func (c *Conn) closeSocket() {
	if tc, ok := c.nc.(interface{ CloseWrite() error }); ok {
		_ = tc.CloseWrite()
	}
	_ = c.nc.Close()
}

// goodbyeAndAbort sends a Goodbye if the writer can take it without waiting, then closes.
func (c *Conn) goodbyeAndAbort(st Status, reason string) {
	c.mu.Lock()
	if c.werr == nil && !c.closing && !c.looping {
		// No writer: write the goodbye directly, bounded by the socket buffer.
		if len(reason) > MaxReasonLen {
			reason = reason[:MaxReasonLen]
		}
		c.enqueue(&Goodbye{Status: st, Reason: []byte(reason)}, nil, nil, 0, true)
		_ = c.flushUntilLocked(c.seq)
	} else if c.werr == nil && !c.closing {
		if len(reason) > MaxReasonLen {
			reason = reason[:MaxReasonLen]
		}
		c.enqueue(&Goodbye{Status: st, Reason: []byte(reason)}, nil, nil, 0, true)
		c.closing = true
		c.dataReady.Signal()
		c.mu.Unlock()
		return // the writer flushes the goodbye, closes the socket and exits
	}
	c.mu.Unlock()
	c.Abort()
}

// Abort closes the connection at once, dropping anything queued. Any goroutine.
func (c *Conn) Abort() {
	c.mu.Lock()
	if c.werr == nil {
		c.werr = fmt.Errorf("cannot send: %w", ErrClosed)
	}
	c.closing = true
	c.dataReady.Broadcast()
	c.space.Broadcast()
	c.mu.Unlock()
	_ = c.nc.Close()
}
