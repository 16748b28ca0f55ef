package wire

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"hash/crc32"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

var testEpoch = time.Now()

func testClock() int64 { return int64(time.Since(testEpoch)) + 1_700_000_000_000_000_000 }

func tcpPair(t testing.TB) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			ch <- nil
			return
		}
		ch <- c
	}()
	a, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b = <-ch
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func cfgFor(role Role, secret string) Config {
	return Config{Hello: Hello{Role: role, Clock: ClockUnixMono, Agent: []byte("test")}, Secret: []byte(secret), WireClock: testClock, Now: time.Now}
}

// handshakePair runs both handshakes concurrently and returns both Conns and errors.
func handshakePair(t testing.TB, na, nb net.Conn, ca, cb Config) (*Conn, *Conn, error, error) {
	t.Helper()
	a, err := NewConn(na, ca)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewConn(nb, cb)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var ea, eb error
	wg.Add(2)
	dl := time.Now().Add(10 * time.Second)
	go func() { defer wg.Done(); _, ea = a.Handshake(dl) }()
	go func() { defer wg.Done(); _, eb = b.Handshake(dl) }()
	wg.Wait()
	return a, b, ea, eb
}

// startWriters runs both WriteLoops and waits for them at cleanup.
func startWriters(t testing.TB, cs ...*Conn) {
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() { defer wg.Done(); c.WriteLoop() }()
	}
	t.Cleanup(func() {
		for _, c := range cs {
			c.Abort()
		}
		wg.Wait()
	})
}

func TestHandshake(t *testing.T) {
	cases := []struct {
		name             string
		secretA, secretB string
		roleB            Role
		acceptA          []Role
		wantErr          error
		wantStatus       Status // what the side that refuses sends
	}{
		{name: "plain", roleB: RoleWorker},
		{name: "secret", secretA: "s3cret", secretB: "s3cret", roleB: RoleWorker},
		{name: "wrong-secret", secretA: "s3cret", secretB: "other", roleB: RoleWorker, wantErr: ErrAuth, wantStatus: StatusUnauthenticated},
		{name: "secret-only-here", secretA: "s3cret", roleB: RoleWorker, wantErr: ErrAuth, wantStatus: StatusUnauthenticated},
		{name: "secret-only-there", secretB: "s3cret", roleB: RoleWorker, wantErr: ErrAuth, wantStatus: StatusUnauthenticated},
		{name: "same-role", roleB: RoleController, wantErr: ErrUnexpected, wantStatus: StatusProtocolError},
		{name: "role-not-accepted", roleB: RoleClient, acceptA: []Role{RoleWorker}, wantErr: ErrUnexpected, wantStatus: StatusProtocolError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			na, nb := tcpPair(t)
			ca, cb := cfgFor(RoleController, tc.secretA), cfgFor(tc.roleB, tc.secretB)
			ca.AcceptRoles = tc.acceptA
			cb.Hello.Backend = []byte("sim")
			cb.Hello.GPUs = []GPUInfo{{MemBytes: 1 << 30, PageBytes: 16 << 20, Pages: 60, Name: []byte("g0")}}
			a, b, ea, eb := handshakePair(t, na, nb, ca, cb)
			if tc.wantErr == nil {
				if ea != nil || eb != nil {
					t.Fatalf("handshake: %v / %v", ea, eb)
				}
				if a.Peer().Role != tc.roleB || string(a.Peer().Backend) != "sim" || len(a.Peer().GPUs) != 1 || b.Peer().Role != RoleController {
					t.Fatalf("peers: %v / %v", a.Peer(), b.Peer())
				}
				return
			}
			if !errors.Is(ea, tc.wantErr) {
				t.Fatalf("A: %v, want %v", ea, tc.wantErr)
			}
			// B failed too: either it refused on its own, or it got A's goodbye.
			if eb == nil {
				// B finished its side first (same-role cases refuse only on A's config); its
				// next read must be A's goodbye with the status.
				_, err := b.Next()
				var pe *PeerError
				if !errors.As(err, &pe) || pe.Status != tc.wantStatus {
					t.Fatalf("B's next read: %v, want a goodbye with %v", err, tc.wantStatus)
				}
				return
			}
			var pe *PeerError
			if errors.As(eb, &pe) && pe.Status != tc.wantStatus {
				t.Fatalf("B got goodbye %v, want %v", pe.Status, tc.wantStatus)
			}
		})
	}
}

// TestVersionMismatch: a peer speaking version 2 is refused with a clear error and a goodbye in
// version 1 that the peer can read.
func TestVersionMismatch(t *testing.T) {
	na, nb := tcpPair(t)
	a, err := NewConn(na, cfgFor(RoleWorker, ""))
	if err != nil {
		t.Fatal(err)
	}
	hello := AppendFrame(nil, &Hello{Role: RoleController, Clock: ClockUnixMono}, 1, NoDelta, 0)
	hello[2] = 2
	if _, err := nb.Write(hello); err != nil {
		t.Fatal(err)
	}
	_, err = a.Handshake(time.Now().Add(5 * time.Second))
	var ve *VersionError
	if !errors.As(err, &ve) || ve.Remote != 2 || ve.Local != ProtocolVersion {
		t.Fatalf("got %v, want a VersionError 1 vs 2", err)
	}
	fr := NewFrameReader(nb, 0, 0)
	var g Goodbye
	for {
		h, err := fr.Next()
		if err != nil {
			t.Fatalf("reading A's frames: %v", err)
		}
		if h.Type == TypeGoodbye {
			if err := fr.DecodeInto(&g); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if g.Status != StatusVersionMismatch || !bytes.Contains(g.Reason, []byte("version 2")) {
		t.Fatalf("goodbye %v", &g)
	}
	if _, err := fr.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after goodbye: %v, want EOF (connection closed)", err)
	}
}

func connectedPair(t testing.TB, ca, cb Config) (*Conn, *Conn) {
	na, nb := tcpPair(t)
	a, b, ea, eb := handshakePair(t, na, nb, ca, cb)
	if ea != nil || eb != nil {
		t.Fatalf("handshake: %v / %v", ea, eb)
	}
	startWriters(t, a, b)
	return a, b
}

func TestSendReceivePayloads(t *testing.T) {
	a, b := connectedPair(t, cfgFor(RoleController, "k"), cfgFor(RoleWorker, "k"))
	sizes := []int{0, 1, 16 << 10, 16<<10 + 1, 602112, 3 << 20}
	go func() {
		for i, n := range sizes {
			p := bytes.Repeat([]byte{byte(i + 1)}, n)
			if err := a.Send(&Infer{Window: Window{ActionID: uint64(i)}, Batch: 1}, p); err != nil {
				t.Error(err)
				return
			}
		}
		a.Close()
	}()
	var m Infer
	for i, n := range sizes {
		h, err := b.Next()
		if err != nil {
			t.Fatal(err)
		}
		if err := b.DecodeInto(&m); err != nil || m.ActionID != uint64(i) || int(h.PayloadLen) != n {
			t.Fatalf("frame %d: %v %v len %d", i, err, &m, h.PayloadLen)
		}
		dst := make([]byte, n)
		if err := b.ReadPayload(dst); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(dst, bytes.Repeat([]byte{byte(i + 1)}, n)) {
			t.Fatalf("payload %d differs", i)
		}
	}
	_, err := b.Next()
	var pe *PeerError
	if !errors.As(err, &pe) || pe.Status != StatusOK {
		t.Fatalf("after close: %v, want goodbye ok", err)
	}
	if _, _, ok := b.ClockOffset(); !ok {
		t.Fatal("no clock estimate after frames both ways")
	}
}

// TestPingPong: Next answers a Ping by itself and records the Pong's round trip; the clock
// estimate between two Conns on one clock brackets the true offset, 0. Frames after the ping and
// the pong make the order deterministic without waiting.
func TestPingPong(t *testing.T) {
	a, b := connectedPair(t, cfgFor(RoleController, ""), cfgFor(RoleWorker, ""))
	if err := a.SendPing(1); err != nil {
		t.Fatal(err)
	}
	if err := a.Send(&Cancel{RequestID: 5}, nil); err != nil {
		t.Fatal(err)
	}
	if h, err := b.Next(); err != nil || h.Type != TypeCancel || h.ID != 5 {
		t.Fatalf("b: %v %v, want the cancel after the ping", h, err)
	}
	// b's pong is queued before this cancel.
	if err := b.Send(&Cancel{RequestID: 6}, nil); err != nil {
		t.Fatal(err)
	}
	if a.RTT() != 0 {
		t.Fatal("RTT before the pong arrived")
	}
	if h, err := a.Next(); err != nil || h.Type != TypeCancel || h.ID != 6 {
		t.Fatalf("a: %v %v, want the cancel after the pong", h, err)
	}
	if a.RTT() <= 0 {
		t.Fatalf("RTT %d after the pong", a.RTT())
	}
	off, bound, ok := a.ClockOffset()
	if !ok || off < -bound || off > bound {
		t.Fatalf("offset %d ± %d (ok %v), truth 0", off, bound, ok)
	}
}

func TestTLS(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cw-test"}, DNSNames: []string{"cw-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	na, nb := tcpPair(t)
	ta := tls.Client(na, &tls.Config{RootCAs: pool, ServerName: "cw-test"})
	tb := tls.Server(nb, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	a, b, ea, eb := handshakePair(t, ta, tb, cfgFor(RoleController, "k"), cfgFor(RoleWorker, "k"))
	if ea != nil || eb != nil {
		t.Fatalf("%v / %v", ea, eb)
	}
	startWriters(t, a, b)
	go a.Send(&Infer{Window: Window{ActionID: 9}}, bytes.Repeat([]byte{7}, 100000))
	h, err := b.Next()
	if err != nil || h.ID != 9 {
		t.Fatal(h, err)
	}
	dst := make([]byte, h.PayloadLen)
	if err := b.ReadPayload(dst); err != nil || dst[99999] != 7 {
		t.Fatal(err)
	}
}

// TestGarbage: a peer that sends garbage gets a protocol-error goodbye, the reader a typed error.
func TestGarbage(t *testing.T) {
	a, b := connectedPair(t, cfgFor(RoleController, ""), cfgFor(RoleWorker, ""))
	raw := a.NetConn()
	raw.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n.............."))
	_, err := b.Next()
	if !errors.Is(err, ErrBadMagic) {
		t.Fatalf("got %v, want ErrBadMagic", err)
	}
	_, err = a.Next()
	var pe *PeerError
	if !errors.As(err, &pe) || pe.Status != StatusProtocolError {
		t.Fatalf("sender of garbage got %v, want goodbye protocol-error", err)
	}
}

// TestStalledPeer: a peer that stops mid-frame is cut off after StallTimeout, while an idle peer
// between frames is not. Runs in a synctest bubble over net.Pipe, so no real time passes.
func TestStalledPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		na, nb := net.Pipe()
		cfg := cfgFor(RoleWorker, "")
		cfg.StallTimeout = 50 * time.Millisecond
		b, err := NewConn(nb, cfg)
		if err != nil {
			t.Fatal(err)
		}
		frame := AppendFrame(nil, &Cancel{RequestID: 1}, 1, NoDelta, 0)
		errc := make(chan error, 1)
		go func() {
			if _, err := b.Next(); err != nil {
				errc <- err
				return
			}
			_, err := b.Next()
			errc <- err
		}()
		na.Write(frame)
		time.Sleep(time.Hour) // idle between frames: allowed
		na.Write(frame[:10])  // then stall mid-frame
		start := time.Now()
		err = <-errc
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("got %v, want a timeout", err)
		}
		if d := time.Since(start); d != 50*time.Millisecond {
			t.Fatalf("cut off after %v, want 50ms", d)
		}
		na.Close()
		b.Abort()
	})
}

// TestBackpressure: the queue is bounded; TrySend refuses and Send blocks until the writer drains.
func TestBackpressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		na, nb := net.Pipe()
		cfg := cfgFor(RoleController, "")
		cfg.QueueBytes = 1000
		a, err := NewConn(na, cfg)
		if err != nil {
			t.Fatal(err)
		}
		m := &Infer{Window: Window{ActionID: 1}}
		n := 0
		for ; n < 100; n++ {
			if err := a.TrySend(m, make([]byte, 50)); err != nil {
				if !errors.Is(err, ErrQueueFull) {
					t.Fatal(err)
				}
				break
			}
		}
		if n == 0 || n*(HeaderSize+42+50) > 1000 {
			t.Fatalf("queued %d frames under a 1000-byte bound", n)
		}
		sent := make(chan error, 1)
		go func() { sent <- a.Send(m, make([]byte, 50)) }()
		synctest.Wait()
		select {
		case <-sent:
			t.Fatal("Send returned with the queue full and no writer")
		default:
		}
		go a.WriteLoop()
		go io.Copy(io.Discard, nb)
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
		a.Close()
		nb.Close()
	})
}

// TestLoopbackMillion sends 1,000,000 frames with checksummed payloads over real TCP and checks
// none is lost, duplicated, reordered or corrupted.
func TestLoopbackMillion(t *testing.T) {
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	a, b := connectedPair(t, cfgFor(RoleController, ""), cfgFor(RoleWorker, ""))
	go func() {
		var p [64]byte
		m := &Infer{Batch: 1}
		for i := 0; i < n; i++ {
			size := 4 + i%60
			fillPayload(p[:size], uint64(i))
			m.ActionID = uint64(i)
			if err := a.Send(m, p[:size]); err != nil {
				t.Error(err)
				return
			}
		}
		a.Close()
	}()
	var m Infer
	var dst [64]byte
	for i := 0; i < n; i++ {
		h, err := b.Next()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if err := b.DecodeInto(&m); err != nil {
			t.Fatal(err)
		}
		if m.ActionID != uint64(i) || h.ID != uint64(i) {
			t.Fatalf("frame %d has id %d/%d: lost, duplicated or reordered", i, m.ActionID, h.ID)
		}
		p := dst[:h.PayloadLen]
		if err := b.ReadPayload(p); err != nil {
			t.Fatal(err)
		}
		if !checkPayload(p, uint64(i)) {
			t.Fatalf("frame %d: payload checksum mismatch", i)
		}
	}
	if _, err := b.Next(); !errors.Is(err, ErrPeerClosed) {
		t.Fatalf("after %d frames: %v, want the peer's goodbye", n, err)
	}
}

// fillPayload writes a payload whose first 4 bytes are the CRC32 of the rest, derived from seq.
func fillPayload(p []byte, seq uint64) {
	x := seq*0x9E3779B97F4A7C15 + 1
	for j := 4; j < len(p); j++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		p[j] = byte(x)
	}
	c := crc32.ChecksumIEEE(p[4:])
	p[0], p[1], p[2], p[3] = byte(c), byte(c>>8), byte(c>>16), byte(c>>24)
}

func checkPayload(p []byte, seq uint64) bool {
	var want [1024]byte
	fillPayload(want[:len(p)], seq)
	return bytes.Equal(p, want[:len(p)])
}

// TestPeerKilledMidStream: a sender killed in the middle of a stream (its socket closed without a
// goodbye, possibly mid-frame) gives the reader a clean typed error, and a sender whose reader is
// killed gets an error from Send instead of hanging.
func TestPeerKilledMidStream(t *testing.T) {
	t.Run("sender-killed", func(t *testing.T) {
		a, b := connectedPair(t, cfgFor(RoleController, ""), cfgFor(RoleWorker, ""))
		raw := a.NetConn()
		go func() {
			var p [1000]byte
			for i := 0; i < 50_000; i++ {
				fillPayload(p[:], uint64(i))
				a.Send(&Infer{Window: Window{ActionID: uint64(i)}}, p[:])
			}
			// Kill mid-frame: write half a frame by hand, then close the socket.
			half := AppendFrame(nil, &Infer{}, 0, NoDelta, 1000)
			a.Flush()
			raw.Write(half[:30])
			raw.Close()
		}()
		var m Infer
		var p [1000]byte
		var err error
		got := 0
		for {
			var h *Header
			if h, err = b.Next(); err != nil {
				break
			}
			if err = b.DecodeInto(&m); err != nil {
				break
			}
			if err = b.ReadPayload(p[:h.PayloadLen]); err != nil {
				break
			}
			if m.ActionID != uint64(got) || !checkPayload(p[:], m.ActionID) {
				t.Fatalf("frame %d corrupted or out of order (id %d)", got, m.ActionID)
			}
			got++
		}
		if !errors.Is(err, ErrTruncated) {
			t.Fatalf("after %d frames: %v, want ErrTruncated", got, err)
		}
		if got != 50_000 {
			t.Fatalf("got %d frames before the kill, want 50000", got)
		}
	})
	t.Run("reader-killed", func(t *testing.T) {
		a, b := connectedPair(t, cfgFor(RoleController, ""), cfgFor(RoleWorker, ""))
		go func() {
			for i := 0; i < 1000; i++ {
				if _, err := b.Next(); err != nil {
					return
				}
				b.Discard()
			}
			b.NetConn().Close() // killed
		}()
		p := make([]byte, 100_000)
		var err error
		for i := 0; i < 1_000_000 && err == nil; i++ {
			err = a.Send(&Infer{Window: Window{ActionID: uint64(i)}}, p)
		}
		if err == nil {
			t.Fatal("a million sends to a dead peer all succeeded")
		}
		var oe *net.OpError
		if !errors.As(err, &oe) {
			t.Fatalf("send error %v is not the socket's error", err)
		}
	})
}

// TestWriteTimeout: a peer that stops reading fails the writer after WriteTimeout, and Send
// reports the error instead of blocking forever.
func TestWriteTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		na, nb := net.Pipe() // unbuffered: every write waits for a read
		cfg := cfgFor(RoleController, "")
		cfg.WriteTimeout = 100 * time.Millisecond
		cfg.QueueBytes = 4096
		a, err := NewConn(na, cfg)
		if err != nil {
			t.Fatal(err)
		}
		loop := make(chan error, 1)
		go func() { loop <- a.WriteLoop() }()
		start := time.Now()
		for err == nil {
			err = a.Send(&Cancel{RequestID: 1}, make([]byte, 1000))
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("Send: %v, want a timeout", err)
		}
		if d := time.Since(start); d != 100*time.Millisecond {
			t.Fatalf("failed after %v, want 100ms", d)
		}
		if err := <-loop; err == nil {
			t.Fatal("WriteLoop returned nil after a failed write")
		}
		if err := a.Send(&Cancel{}, nil); err == nil {
			t.Fatal("Send after the writer failed succeeded")
		}
		nb.Close()
	})
}

// TestMaxPayload: a frame announcing a payload over Config.MaxPayload is refused before any of
// it is read, and the sender is told why.
func TestMaxPayload(t *testing.T) {
	ca, cb := cfgFor(RoleController, ""), cfgFor(RoleWorker, "")
	cb.MaxPayload = 1 << 20
	a, b := connectedPair(t, ca, cb)
	go a.Send(&Infer{Window: Window{ActionID: 3}}, make([]byte, 1<<20+1))
	_, err := b.Next()
	var le *LengthError
	if !errors.As(err, &le) || le.Max != 1<<20 {
		t.Fatalf("got %v, want a LengthError with max 1 MiB", err)
	}
	_, err = a.Next()
	var pe *PeerError
	if !errors.As(err, &pe) || pe.Status != StatusProtocolError || !strings.Contains(pe.Reason, "payload_len") {
		t.Fatalf("sender got %v, want a protocol-error goodbye naming payload_len", err)
	}
}

// TestDecodeIntoWrongType: decoding into a message of another type is the consumer's mistake; it
// gets an error and the connection stays up.
func TestDecodeIntoWrongType(t *testing.T) {
	a, b := connectedPair(t, cfgFor(RoleController, ""), cfgFor(RoleWorker, ""))
	a.Send(&Cancel{RequestID: 1}, nil)
	a.Send(&Cancel{RequestID: 2}, nil)
	if _, err := b.Next(); err != nil {
		t.Fatal(err)
	}
	if err := b.DecodeInto(&Infer{}); !errors.Is(err, ErrUnexpected) {
		t.Fatalf("got %v, want ErrUnexpected", err)
	}
	var c Cancel
	if err := b.DecodeInto(&c); err != nil || c.RequestID != 1 {
		t.Fatalf("%v %v", err, &c)
	}
	if h, err := b.Next(); err != nil || h.ID != 2 {
		t.Fatalf("connection did not survive: %v %v", h, err)
	}
}

// TestSendParts: a payload gathered from parts arrives joined, in order, whether the parts are
// copied (small) or written from the caller's memory (large), without allocating.
func TestSendParts(t *testing.T) {
	a, b := connectedPair(t, cfgFor(RoleController, ""), cfgFor(RoleWorker, ""))
	for _, size := range []int{100, 75264} { // 8 × 100 B inline; 8 × 75,264 B = one 602,112-B batch
		parts := make([][]byte, 8)
		var want []byte
		for i := range parts {
			parts[i] = bytes.Repeat([]byte{byte(i + 1)}, size)
			want = append(want, parts[i]...)
		}
		parts = append(parts, nil) // empty parts are fine
		dst := make([]byte, len(want))
		m := &Infer{Window: Window{ActionID: uint64(size)}, Batch: 8}
		sent := make(chan error, 1)
		next := make(chan struct{})
		go func() {
			for range next {
				sent <- a.SendParts(m, parts)
			}
		}()
		round := func() {
			next <- struct{}{}
			h, err := b.Next()
			if err != nil || int(h.PayloadLen) != len(want) {
				t.Fatalf("%v %v", h, err)
			}
			if err := b.ReadPayload(dst); err != nil {
				t.Fatal(err)
			}
			if err := <-sent; err != nil {
				t.Fatal(err)
			}
		}
		round()
		if !bytes.Equal(dst, want) {
			t.Fatalf("%d-byte parts arrived out of order or damaged", size)
		}
		if n := testing.AllocsPerRun(50, round); n != 0 {
			t.Errorf("%d-byte parts: %.2f allocations per frame", size, n)
		}
		close(next)
	}
}

// TestHandshakeDeadline: a peer that sends its hello and then nothing (no Auth) cannot hold the
// handshake past its deadline, even with a StallTimeout configured.
func TestHandshakeDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		na, nb := net.Pipe()
		cfg := cfgFor(RoleWorker, "k")
		cfg.StallTimeout = time.Second
		c, err := NewConn(na, cfg)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			// The silent peer: read what comes, send a hello that asks for auth in two pieces
			// (so the reader waits mid-frame once), then nothing.
			go io.Copy(io.Discard, nb)
			h := AppendFrame(nil, &Hello{Role: RoleController, Flags: HelloAuth, Clock: ClockUnixMono}, 1, NoDelta, 0)
			nb.Write(h[:10])
			nb.Write(h[10:])
		}()
		start := time.Now()
		_, err = c.Handshake(start.Add(5 * time.Second))
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("got %v, want a timeout", err)
		}
		if d := time.Since(start); d != 5*time.Second {
			t.Fatalf("handshake gave up after %v, want 5s", d)
		}
		nb.Close()
	})
}
