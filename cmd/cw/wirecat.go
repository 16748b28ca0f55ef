package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clockwork-go/clockwork/wire"
)

func init() {
	registerTool(command{name: "wirecat", summary: "print wire frames: proxy between two peers, or read a captured stream", run: runWirecat})
}

const wirecatSynopsis = `tools wirecat -listen ADDR -to ADDR [-capture PREFIX] [-payload N]
       cw tools wirecat -read FILE [-payload N]

Proxy mode: accept connections on -listen, connect each to -to, forward bytes both ways
unchanged, and print one line per frame:
  TIME CONN DIR TYPE id=.. sent_ns=.. hdr=.. payload=.. | decoded message
DIR is > for listen side → -to side, < back. A connection that does not speak the protocol is
still forwarded; its parser stops with the error. A shared secret works through it (the
proxy only forwards); TLS does not (it cannot see inside TLS).
Read mode: print the frames of a captured one-direction stream (a -capture file; - = stdin).`

func runWirecat(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tools wirecat", wirecatSynopsis, stderr)
	listen := fs.String("listen", "", "address to accept peers on, e.g. 127.0.0.1:12355")
	to := fs.String("to", "", "address of the real server, e.g. 127.0.0.1:12345 (a worker's default port)")
	read := fs.String("read", "", "captured stream file to print instead of proxying; - for stdin")
	capture := fs.String("capture", "", "proxy mode: also save each direction's raw bytes to PREFIX-CONN-{out,in}.cw for -read")
	payload := fs.Int("payload", 0, "print the first N payload bytes of each frame in hex (0: none; payloads are skipped)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q; run 'cw tools wirecat -h'", fs.Arg(0))
	}
	if *payload < 0 {
		return fmt.Errorf("-payload %d is negative", *payload)
	}
	p := &frameLog{w: stdout, payload: *payload}
	switch {
	case *read != "" && *listen == "" && *to == "":
		var r io.Reader = os.Stdin
		if *read != "-" {
			f, err := os.Open(*read)
			if err != nil {
				return fmt.Errorf("cannot open captured stream: %w", err)
			}
			defer f.Close()
			r = f
		}
		return p.printStream(r, "file", ">", false)
	case *read == "" && *listen != "" && *to != "":
		ln, err := net.Listen("tcp", *listen)
		if err != nil {
			return fmt.Errorf("cannot listen on %s: %w", *listen, err)
		}
		return wirecatProxy(ctx, ln, *to, *capture, p)
	}
	fs.Usage()
	return errUsage
}

// frameLog prints frames as lines; safe for concurrent use.
type frameLog struct {
	mu      sync.Mutex
	w       io.Writer
	payload int
}

func (p *frameLog) line(conn, dir, text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "%s %s %s %s\n", time.Now().UTC().Format("15:04:05.000000"), conn, dir, text)
}

// printStream prints every frame of r until it ends. In proxy mode (live) a parse error ends the
// parsing only; the error is printed, not returned.
func (p *frameLog) printStream(r io.Reader, conn, dir string, live bool) error {
	fr := wire.NewFrameReader(r, 0, 0)
	buf := make([]byte, p.payload)
	for {
		h, err := fr.Next()
		if errors.Is(err, io.EOF) {
			p.line(conn, dir, "end of stream")
			return nil
		}
		if err != nil {
			p.line(conn, dir, "cannot parse: "+err.Error())
			if live {
				return nil
			}
			return err
		}
		text := wire.Describe(h, fr.Message())
		if n := min(p.payload, int(h.PayloadLen)); n > 0 {
			if err := fr.ReadPayload(buf[:n]); err != nil {
				p.line(conn, dir, text)
				p.line(conn, dir, "cannot read payload: "+err.Error())
				return err
			}
			text += " payload[:" + fmt.Sprint(n) + "]=" + hex.EncodeToString(buf[:n])
		}
		p.line(conn, dir, text)
	}
}

func wirecatProxy(ctx context.Context, ln net.Listener, to, capture string, p *frameLog) error {
	var wg sync.WaitGroup
	var nconn atomic.Int64
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	p.line("-", "-", fmt.Sprintf("listening on %s, forwarding to %s", ln.Addr(), to))
	for {
		c, err := ln.Accept()
		if err != nil {
			wg.Wait()
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("cannot accept: %w", err)
		}
		id := fmt.Sprintf("c%d", nconn.Add(1))
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			s, err := net.Dial("tcp", to)
			if err != nil {
				p.line(id, "-", fmt.Sprintf("cannot connect to %s: %v", to, err))
				return
			}
			defer s.Close()
			p.line(id, "-", fmt.Sprintf("open %s ⇄ %s", c.RemoteAddr(), to))
			connCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			context.AfterFunc(connCtx, func() { c.Close(); s.Close() })
			var inner sync.WaitGroup
			inner.Add(2)
			go func() { defer inner.Done(); pump(c, s, id, ">", capture, "out", p) }()
			go func() { defer inner.Done(); pump(s, c, id, "<", capture, "in", p) }()
			inner.Wait()
			p.line(id, "-", "closed")
		}()
	}
}

// pump forwards src to dst unchanged and feeds a copy to a frame printer (and a capture file).
// The printer may lag; it never changes what is forwarded, but a slow terminal slows the link.
func pump(src, dst net.Conn, id, dir, capture, suffix string, p *frameLog) {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.printStream(pr, id, dir, true)
		io.Copy(io.Discard, pr) // keep draining after a parse error
	}()
	var w io.Writer = pw
	if capture != "" {
		f, err := os.Create(fmt.Sprintf("%s-%s-%s.cw", capture, id, suffix))
		if err != nil {
			p.line(id, dir, "cannot create capture file: "+err.Error())
		} else {
			defer f.Close()
			w = io.MultiWriter(pw, f)
		}
	}
	buf := make([]byte, 256<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
			w.Write(buf[:n])
		}
		if err != nil {
			break
		}
	}
	if tc, ok := dst.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	pw.Close()
	<-done
}
