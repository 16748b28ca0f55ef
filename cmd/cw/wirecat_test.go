package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clockwork-go/clockwork/wire"
)

// syncBuf is a bytes.Buffer safe for the proxy's goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func wcConf(role wire.Role) wire.Config {
	start := time.Now()
	return wire.Config{Hello: wire.Hello{Role: role, Clock: wire.ClockUnixMono}, Secret: []byte("k"),
		WireClock: func() int64 { return int64(time.Since(start)) }}
}

// TestWirecatProxy puts wirecat between a controller and a worker, checks the frames are
// forwarded unchanged and printed one per line, then reads the captured stream back.
func TestWirecatProxy(t *testing.T) {
	server, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	proxyLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	capture := filepath.Join(dir, "cap")
	var out syncBuf
	ctx, cancel := context.WithCancel(context.Background())
	proxyDone := make(chan error, 1)
	go func() {
		proxyDone <- wirecatProxy(ctx, proxyLn, server.Addr().String(), capture, &frameLog{w: &out, payload: 4})
	}()

	workerDone := make(chan error, 1)
	go func() {
		nc, err := server.Accept()
		if err != nil {
			workerDone <- err
			return
		}
		c, _ := wire.NewConn(nc, wcConf(wire.RoleWorker))
		if _, err := c.Handshake(time.Now().Add(5 * time.Second)); err != nil {
			workerDone <- err
			return
		}
		go c.WriteLoop()
		var in wire.Infer
		if _, err := c.Next(); err != nil {
			workerDone <- err
			return
		}
		c.DecodeInto(&in)
		p := make([]byte, 8)
		c.ReadPayload(p)
		c.Send(&wire.Result{ActionID: in.ActionID, Action: wire.TypeInfer, Batch: in.Batch}, p)
		_, err = c.Next() // the controller's goodbye
		c.Close()
		workerDone <- err
	}()

	nc, err := net.Dial("tcp", proxyLn.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, _ := wire.NewConn(nc, wcConf(wire.RoleController))
	if _, err := c.Handshake(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	go c.WriteLoop()
	c.Send(&wire.Infer{Window: wire.Window{ActionID: 7, ModelID: 3}, Batch: 2}, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	h, err := c.Next()
	if err != nil || h.Type != wire.TypeResult || h.ID != 7 || h.PayloadLen != 8 {
		t.Fatalf("reply through the proxy: %v %v", h, err)
	}
	c.Close()
	if err := <-workerDone; err == nil || !strings.Contains(err.Error(), "peer closed") {
		t.Fatalf("worker: %v", err)
	}
	// Wait for the proxy to print the closing, then stop it.
	for i := 0; i < 500 && !strings.Contains(out.String(), "c1 - closed"); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-proxyDone; err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"c1 > hello", "c1 < hello", "c1 > auth", "c1 < auth",
		"c1 > infer            id=7", "payload=8 min_delta_ns=", "| infer action=7 model=3", "payload[:4]=01020304",
		"c1 < result           id=7", "c1 > goodbye", "c1 - closed",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	// The capture reads back.
	var rd bytes.Buffer
	if err := runWirecat(context.Background(), []string{"-read", capture + "-c1-out.cw"}, &rd, os.Stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rd.String(), "file > infer") || !strings.Contains(rd.String(), "end of stream") {
		t.Fatalf("read mode:\n%s", rd.String())
	}
}

func TestWirecatReadGarbage(t *testing.T) {
	f := filepath.Join(t.TempDir(), "g.cw")
	os.WriteFile(f, []byte("this is not a wire stream, it is text........"), 0o644)
	var out bytes.Buffer
	err := runWirecat(context.Background(), []string{"-read", f}, &out, os.Stderr)
	if err == nil || !strings.Contains(out.String(), "bad magic") {
		t.Fatalf("err %v, out %s", err, out.String())
	}
}
