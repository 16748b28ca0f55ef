package wire

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

// TestConnScripts drives two Conns over real loopback TCP from testdata/conn scripts, so the
// connection's behaviour (handshake outcomes, what each side reads, how bad input ends a
// connection) is reviewable as text. Commands:
//
//	pair [secret-a=S] [secret-b=S] [role-a=R] [role-b=R]   connect a and b and run both handshakes
//	send from=a|b type=T id=N [payload=N]                  queue a frame (cancel, infer, ping)
//	raw from=a|b                                           write the hex input bytes to a's socket
//	recv at=a|b                                            read one frame: describe it, or the error
//	close from=a|b [status=S] [reason=TEXT]                graceful close
//	abort from=a|b                                         close at once
func TestConnScripts(t *testing.T) {
	datadriven.Walk(t, "testdata/conn", func(t *testing.T, path string) {
		var conns map[string]*Conn
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			side := func(key string) *Conn {
				var s string
				td.ScanArgs(t, key, &s)
				c := conns[s]
				if c == nil {
					t.Fatalf("no side %q", s)
				}
				return c
			}
			switch td.Cmd {
			case "pair":
				var sa, sb string
				ra, rb := "controller", "worker"
				td.MaybeScanArgs(t, "secret-a", &sa)
				td.MaybeScanArgs(t, "secret-b", &sb)
				td.MaybeScanArgs(t, "role-a", &ra)
				td.MaybeScanArgs(t, "role-b", &rb)
				na, nb := tcpPair(t)
				a, b, ea, eb := handshakePair(t, na, nb, cfgFor(parseRole(t, ra), sa), cfgFor(parseRole(t, rb), sb))
				conns = map[string]*Conn{"a": a, "b": b}
				if ea == nil && eb == nil {
					startWriters(t, a, b)
				}
				return fmt.Sprintf("a: %s\nb: %s\n", outcome(ea, a), outcome(eb, b))
			case "send":
				c := side("from")
				var typ string
				var id uint64
				var n int
				td.ScanArgs(t, "type", &typ)
				td.ScanArgs(t, "id", &id)
				td.MaybeScanArgs(t, "payload", &n)
				var m Message
				switch typ {
				case "cancel":
					m = &Cancel{RequestID: id}
				case "infer":
					m = &Infer{Window: Window{ActionID: id}, Batch: 1}
				case "ping":
					m = &Ping{Seq: id}
				default:
					t.Fatalf("unknown type %q", typ)
				}
				if err := c.Send(m, make([]byte, n)); err != nil {
					return "error: " + classify(err) + "\n"
				}
				return "ok\n"
			case "raw":
				c := side("from")
				b, err := hex.DecodeString(strings.Join(strings.Fields(td.Input), ""))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := c.NetConn().Write(b); err != nil {
					return "error: " + err.Error() + "\n"
				}
				return "ok\n"
			case "recv":
				c := side("at")
				type res struct {
					h   *Header
					msg string
					err error
				}
				ch := make(chan res, 1)
				go func() {
					h, err := c.Next()
					if err != nil {
						ch <- res{err: err}
						return
					}
					m := New(h.Type)
					err = c.DecodeInto(m)
					ch <- res{h: h, msg: fmt.Sprintf("%s payload=%d | %s", h.Type, h.PayloadLen, m), err: err}
				}()
				select {
				case r := <-ch:
					if r.err != nil {
						return "error: " + classifyConn(r.err) + "\n"
					}
					return r.msg + "\n"
				case <-time.After(10 * time.Second):
					t.Fatal("recv: nothing arrived in 10s")
				}
			case "close":
				c := side("from")
				st, reason := "ok", ""
				td.MaybeScanArgs(t, "status", &st)
				td.MaybeScanArgs(t, "reason", &reason)
				s, ok := ParseStatus(st)
				if !ok {
					t.Fatalf("bad status %q", st)
				}
				c.CloseWithStatus(s, reason)
				return "ok\n"
			case "abort":
				side("from").Abort()
				return "ok\n"
			}
			t.Fatalf("unknown command %q", td.Cmd)
			return ""
		})
	})
}

func parseRole(t *testing.T, s string) Role {
	for r := RoleController; r <= RoleTool; r++ {
		if r.String() == s {
			return r
		}
	}
	t.Fatalf("bad role %q", s)
	return 0
}

func outcome(err error, c *Conn) string {
	if err != nil {
		return "error: " + classifyConn(err)
	}
	return "connected to " + c.Peer().Role.String()
}

// classifyConn is classify plus the outcomes only a Conn has; it leaves out socket addresses.
func classifyConn(err error) string {
	var pe *PeerError
	switch {
	case errors.As(err, &pe):
		s := fmt.Sprintf("[peer closed] %s: %s", pe.Status, pe.Reason)
		if errors.Is(err, ErrAuth) {
			s = "[authentication failed] " + s
		}
		return s
	case errors.Is(err, io.EOF):
		return "[EOF] peer closed the connection without a goodbye"
	case errors.Is(err, ErrAuth):
		return "[authentication failed] " + err.Error()
	case errors.Is(err, ErrUnexpected):
		return "[unexpected message] " + err.Error()
	}
	return classify(err)
}
