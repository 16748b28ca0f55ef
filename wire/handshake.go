package wire

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"time"
)

// AuthContext is mixed into every MAC, so a MAC from another protocol or version cannot be
// replayed here. Wire constant.
const AuthContext = "clockwork wire v1 auth"

// ComputeMAC returns HMAC-SHA256(secret, AuthContext || sender role || receiver role ||
// receiver's nonce || sender's nonce): what the sender proves it knows. Both roles are in it and
// a Conn refuses a peer of its own role, so a MAC cannot be reflected back to its maker.
func ComputeMAC(secret []byte, sender, receiver Role, receiverNonce, senderNonce *[NonceSize]byte) [MACSize]byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(AuthContext))
	h.Write([]byte{byte(sender), byte(receiver)})
	h.Write(receiverNonce[:])
	h.Write(senderNonce[:])
	var out [MACSize]byte
	h.Sum(out[:0])
	return out
}

// Handshake runs the hello exchange (and the HMAC challenge when either side has a secret)
// before any other frame, from the calling goroutine, and returns the peer's Hello. deadline
// (zero: none) bounds the whole exchange. On failure it tells the peer why with a Goodbye
// (version mismatch, unauthenticated, protocol error), closes the connection, and returns an
// error wrapping ErrVersion, ErrAuth, ErrUnexpected or the I/O error.
func (c *Conn) Handshake(deadline time.Time) (*Hello, error) {
	// The deadline bounds the whole exchange; the stall hooks would move it, so they wait.
	mid, idle := c.rd.midFrame, c.rd.idle
	c.rd.midFrame, c.rd.idle = nil, nil
	_ = c.nc.SetDeadline(deadline)
	defer func() {
		_ = c.nc.SetDeadline(time.Time{})
		c.rd.midFrame, c.rd.idle, c.rd.armed = mid, idle, false
	}()
	hello := c.cfg.Hello
	if _, err := rand.Read(hello.Nonce[:]); err != nil {
		c.Abort()
		return nil, fmt.Errorf("cannot make a hello nonce: %w", err)
	}
	hello.Flags &^= HelloAuth
	if len(c.cfg.Secret) > 0 {
		hello.Flags |= HelloAuth
	}
	if err := c.Send(&hello, nil); err != nil {
		return nil, err
	}
	if err := c.Flush(); err != nil {
		c.Abort()
		return nil, err
	}
	fail := func(st Status, err error) (*Hello, error) {
		c.goodbyeAndAbort(st, err.Error())
		return nil, err
	}
	h, err := c.rd.Next()
	if err != nil {
		if errors.Is(err, ErrVersion) {
			return fail(StatusVersionMismatch, err)
		}
		return fail(StatusProtocolError, fmt.Errorf("cannot read the peer's hello: %w", err))
	}
	c.clock.Observe(h, c.cfg.WireClock())
	c.minDelta.Store(c.clock.LocalMinDelta())
	if h.Type == TypeGoodbye {
		var g Goodbye
		if err := c.rd.DecodeInto(&g); err != nil {
			return fail(StatusProtocolError, err)
		}
		c.Abort()
		return nil, &PeerError{Status: g.Status, Reason: string(g.Reason)}
	}
	if h.Type != TypeHello {
		return fail(StatusProtocolError, fmt.Errorf("peer sent %s before hello: %w", h.Type, ErrUnexpected))
	}
	if err := c.rd.DecodeInto(&c.peer); err != nil {
		return fail(StatusProtocolError, fmt.Errorf("cannot decode the peer's hello: %w", err))
	}
	if h.PayloadLen != 0 {
		return fail(StatusProtocolError, fmt.Errorf("hello with a %d-byte payload: %w", h.PayloadLen, ErrUnexpected))
	}
	peer := c.peer.Role
	if peer == hello.Role || (len(c.cfg.AcceptRoles) > 0 && !slices.Contains(c.cfg.AcceptRoles, peer)) {
		return fail(StatusProtocolError, fmt.Errorf("a %s does not accept a %s peer; check the address: %w", hello.Role, peer, ErrUnexpected))
	}
	mine, theirs := len(c.cfg.Secret) > 0, c.peer.Flags&HelloAuth != 0
	switch {
	case mine && !theirs:
		return fail(StatusUnauthenticated, fmt.Errorf("the %s peer has no shared secret; give both sides the same secret: %w", peer, ErrAuth))
	case !mine && theirs:
		return fail(StatusUnauthenticated, fmt.Errorf("the %s peer requires a shared secret and this side has none; configure the same secret here: %w", peer, ErrAuth))
	case mine:
		a := Auth{MAC: ComputeMAC(c.cfg.Secret, hello.Role, peer, &c.peer.Nonce, &hello.Nonce)}
		if err := c.Send(&a, nil); err != nil {
			return nil, err
		}
		if err := c.Flush(); err != nil {
			c.Abort()
			return nil, err
		}
		h, err := c.rd.Next()
		if err != nil {
			return fail(StatusProtocolError, fmt.Errorf("cannot read the peer's auth: %w", err))
		}
		if h.Type == TypeGoodbye {
			var g Goodbye
			_ = c.rd.DecodeInto(&g)
			c.Abort()
			return nil, fmt.Errorf("%w: %w", &PeerError{Status: g.Status, Reason: string(g.Reason)}, ErrAuth)
		}
		var pa Auth
		if h.Type != TypeAuth || c.rd.DecodeInto(&pa) != nil || h.PayloadLen != 0 {
			return fail(StatusUnauthenticated, fmt.Errorf("peer sent %s instead of auth: %w", h.Type, ErrAuth))
		}
		want := ComputeMAC(c.cfg.Secret, peer, hello.Role, &hello.Nonce, &c.peer.Nonce)
		if !hmac.Equal(pa.MAC[:], want[:]) {
			return fail(StatusUnauthenticated, fmt.Errorf("the %s peer's MAC does not match; the secrets differ: %w", peer, ErrAuth))
		}
	}
	return &c.peer, nil
}
