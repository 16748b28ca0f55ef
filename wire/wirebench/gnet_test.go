package wirebench

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/clockwork-go/clockwork/wire"
	"github.com/panjf2000/gnet/v2"
)

var epoch = time.Now()

func clock() int64 { return int64(time.Since(epoch)) }

func conf(role wire.Role) wire.Config {
	return wire.Config{Hello: wire.Hello{Role: role, Clock: wire.ClockUnixMono}, WireClock: clock}
}

// reply builds the RESULT for an INFER: it echoes the action id and, in ReceivedNs, the client's
// send time (carried in EarliestNs), so the client can time the round trip.
func reply(in *wire.Infer, out *wire.Result) {
	*out = wire.Result{ActionID: in.ActionID, Action: wire.TypeInfer, GPU: in.GPU, Batch: in.Batch, ReceivedNs: in.EarliestNs}
}

// stdServer serves each connection with a wire.Conn: one reader goroutine, one WriteLoop.
func stdServer(tb testing.TB) (addr string, stop func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []*wire.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			c, err := wire.NewConn(nc, conf(wire.RoleWorker))
			if err != nil {
				tb.Error(err)
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); c.WriteLoop() }()
			go func() {
				defer wg.Done()
				var in wire.Infer
				var out wire.Result
				for {
					if _, err := c.Next(); err != nil {
						c.Abort()
						return
					}
					if err := c.DecodeInto(&in); err != nil {
						c.Abort()
						return
					}
					reply(&in, &out)
					if err := c.Send(&out, nil); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Abort()
		}
		mu.Unlock()
		wg.Wait()
	}
}

// gnetServer parses every complete frame of one OnTraffic and writes all replies at once.
type gnetServer struct {
	gnet.BuiltinEventEngine
	eng    gnet.Engine
	booted chan struct{}
}

type gnetConnState struct {
	out []byte
	in  wire.Infer
	res wire.Result
}

func (s *gnetServer) OnBoot(eng gnet.Engine) gnet.Action {
	s.eng = eng
	close(s.booted)
	return gnet.None
}

func (s *gnetServer) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	c.SetContext(&gnetConnState{out: make([]byte, 0, 64<<10)})
	return nil, gnet.None
}

func (s *gnetServer) OnTraffic(c gnet.Conn) gnet.Action {
	st := c.Context().(*gnetConnState)
	st.out = st.out[:0]
	var h wire.Header
	for {
		hb, err := c.Peek(wire.HeaderSize)
		if err != nil {
			break
		}
		if _, err := h.Decode(hb); err != nil {
			return gnet.Close
		}
		total := wire.HeaderSize + int(h.HeaderLen) + int(h.PayloadLen)
		if c.InboundBuffered() < total {
			break
		}
		fb, err := c.Peek(total)
		if err != nil {
			break
		}
		if h.Type == wire.TypeInfer {
			if err := wire.DecodeMessage(&st.in, fb[wire.HeaderSize:wire.HeaderSize+int(h.HeaderLen)]); err != nil {
				return gnet.Close
			}
			reply(&st.in, &st.res)
			st.out = wire.AppendFrame(st.out, &st.res, clock(), wire.NoDelta, 0)
		}
		c.Discard(total)
	}
	if len(st.out) > 0 {
		c.Write(st.out)
	}
	return gnet.None
}

func freePort(tb testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func startGnet(tb testing.TB) (addr string, stop func()) {
	addr = freePort(tb)
	s := &gnetServer{booted: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		done <- gnet.Run(s, "tcp://"+addr, gnet.WithMulticore(true), gnet.WithTCPNoDelay(gnet.TCPNoDelay), gnet.WithLogger(nopLogger{}))
	}()
	select {
	case <-s.booted:
	case err := <-done:
		tb.Fatalf("gnet: %v", err)
	}
	return addr, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.eng.Stop(ctx)
		<-done
	}
}

// load runs clients connections, each pipelining up to window INFERs, until total replies
// arrived; it returns replies/s and the p99 round trip.
func load(tb testing.TB, addr string, clients, window, total int) (perSec float64, p99 time.Duration) {
	per := max(1, total/clients)
	conns := make([]*wire.Conn, clients)
	for i := range conns {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			tb.Fatal(err)
		}
		c, err := wire.NewConn(nc, conf(wire.RoleController))
		if err != nil {
			tb.Fatal(err)
		}
		conns[i] = c
		go c.WriteLoop()
	}
	lat := make([][]int64, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for i, c := range conns {
		wg.Add(2)
		tokens := make(chan struct{}, window)
		for range window {
			tokens <- struct{}{}
		}
		go func() {
			defer wg.Done()
			m := &wire.Infer{Batch: 1}
			for j := 0; j < per; j++ {
				<-tokens
				m.ActionID = uint64(j)
				m.EarliestNs = clock()
				if err := c.Send(m, nil); err != nil {
					tb.Error(err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			var r wire.Result
			l := make([]int64, 0, per)
			for j := 0; j < per; j++ {
				if _, err := c.Next(); err != nil {
					tb.Error(err)
					return
				}
				if err := c.DecodeInto(&r); err != nil {
					tb.Error(err)
					return
				}
				l = append(l, clock()-r.ReceivedNs)
				tokens <- struct{}{}
			}
			lat[i] = l
		}()
	}
	wg.Wait()
	el := time.Since(start)
	var all []int64
	for i, c := range conns {
		all = append(all, lat[i]...)
		c.Abort()
	}
	if len(all) == 0 {
		return 0, 0
	}
	slices.Sort(all)
	return float64(len(all)) / el.Seconds(), time.Duration(all[len(all)*99/100])
}

// BenchmarkServers reports frames/s (replies) and p99 round trip for the gnet server and the
// net.Conn server side by side: 1 connection in ping-pong (window 1) and pipelined (window 64),
// and 1,000 connections (window 1 each).
func BenchmarkServers(b *testing.B) {
	for _, tc := range []struct{ clients, window int }{{1, 1}, {1, 64}, {1000, 1}} {
		for _, srv := range []string{"netconn", "gnet"} {
			b.Run(fmt.Sprintf("%s/clients=%d/window=%d", srv, tc.clients, tc.window), func(b *testing.B) {
				var addr string
				var stop func()
				if srv == "gnet" {
					addr, stop = startGnet(b)
				} else {
					addr, stop = stdServer(b)
				}
				defer stop()
				total := max(b.N, tc.clients)
				b.ResetTimer()
				rate, p99 := load(b, addr, tc.clients, tc.window, total)
				b.StopTimer()
				b.ReportMetric(rate, "frames/s")
				b.ReportMetric(float64(p99.Microseconds()), "p99-µs")
			})
		}
	}
}

func TestServersAnswer(t *testing.T) {
	for _, srv := range []string{"netconn", "gnet"} {
		var addr string
		var stop func()
		if srv == "gnet" {
			addr, stop = startGnet(t)
		} else {
			addr, stop = stdServer(t)
		}
		rate, p99 := load(t, addr, 10, 4, 2000)
		stop()
		if rate <= 0 || p99 <= 0 {
			t.Fatalf("%s: rate %v p99 %v", srv, rate, p99)
		}
	}
}

// nopLogger silences gnet's start-up lines, which would break the benchmark output.
type nopLogger struct{}

func (nopLogger) Debugf(string, ...any) {}
func (nopLogger) Infof(string, ...any)  {}
func (nopLogger) Warnf(string, ...any)  {}
func (nopLogger) Errorf(string, ...any) {}
func (nopLogger) Fatalf(string, ...any) {}
