package client

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/clockwork-go/clockwork/wire"
)

// fakeController answers requests in batches of batch, newest first, echoing the input as
// output, and rejects model "bad" with cannot-meet-slo; cancels are reported on cancels.
func fakeController(t *testing.T, nc net.Conn, batch int, cancels chan<- uint64) {
	conn, err := wire.NewConn(nc, wire.Config{Hello: wire.Hello{Role: wire.RoleController, Clock: wire.ClockUnixMono}, WireClock: wireNow})
	if err != nil {
		t.Error(err)
		return
	}
	if _, err := conn.Handshake(time.Now().Add(5 * time.Second)); err != nil {
		t.Error(err)
		return
	}
	go func() { _ = conn.WriteLoop() }()
	type held struct {
		id  uint64
		in  []byte
		bad bool
	}
	var pending []held
	var req wire.Request
	var cancel wire.Cancel
	var list wire.ListModels
	for {
		h, err := conn.Next()
		if err != nil {
			return
		}
		switch h.Type {
		case wire.TypeRequest:
			_ = conn.DecodeInto(&req)
			in := make([]byte, h.PayloadLen)
			_ = conn.ReadPayload(in)
			pending = append(pending, held{req.RequestID, in, string(req.Name) == "bad"})
			if len(pending) == batch {
				for i := len(pending) - 1; i >= 0; i-- {
					p := pending[i]
					r := wire.Response{RequestID: p.id, Status: wire.StatusOK, Batch: uint16(batch)}
					out := p.in
					if p.bad {
						r.Status, r.Reason, out = wire.StatusCannotMeetSLO, []byte("too slow"), nil
					}
					_ = conn.Send(&r, out)
				}
				pending = pending[:0]
			}
		case wire.TypeCancel:
			_ = conn.DecodeInto(&cancel)
			cancels <- cancel.RequestID
		case wire.TypeListModels:
			_ = conn.DecodeInto(&list)
			_ = conn.Send(&wire.ModelList{RequestID: list.RequestID, Models: []wire.ModelDesc{{ModelID: 1, Name: []byte("m"), Batches: []uint16{1}}}}, nil)
		default:
			_ = conn.Discard()
		}
	}
}

func dialFake(t *testing.T, batch int, cancels chan<- uint64) *Client {
	// TCP loopback, not net.Pipe: both hellos are written before either is read, which an
	// unbuffered pipe cannot do.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		nc, err := ln.Accept()
		if err == nil {
			fakeController(t, nc, batch, cancels)
		}
	}()
	c, err := Dial(context.Background(), Config{Addr: ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestManyInFlight(t *testing.T) {
	c := dialFake(t, 8, nil)
	defer c.Close()
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := binary.LittleEndian.AppendUint64(nil, uint64(i))
			res, err := c.Infer(context.Background(), "m", in, InferOptions{SLO: time.Second})
			if err != nil {
				t.Error(err)
				return
			}
			if binary.LittleEndian.Uint64(res.Output) != uint64(i) || res.Batch != 8 {
				t.Errorf("request %d got output %v batch %d", i, res.Output, res.Batch)
			}
		}()
	}
	wg.Wait()
	ms, err := c.ListModels(context.Background())
	if err != nil || len(ms) != 1 || string(ms[0].Name) != "m" {
		t.Fatalf("ListModels: %v %v", ms, err)
	}
}

func TestStatusError(t *testing.T) {
	c := dialFake(t, 1, nil)
	defer c.Close()
	_, err := c.Infer(context.Background(), "bad", []byte{1}, InferOptions{})
	var se *StatusError
	if !errors.As(err, &se) || se.Status != wire.StatusCannotMeetSLO || se.Reason != "too slow" {
		t.Fatalf("got %v", err)
	}
	if !errors.Is(err, ErrCannotMeetSLO) || errors.Is(err, ErrWorkerLost) {
		t.Fatalf("errors.Is does not follow the status: %v", err)
	}
}

func TestCancelSendsCancel(t *testing.T) {
	cancels := make(chan uint64, 1)
	c := dialFake(t, 2, cancels) // answers only in pairs: the first request waits
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Infer(ctx, "m", []byte{1}, InferOptions{})
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	select {
	case <-cancels:
	case <-time.After(5 * time.Second):
		t.Fatal("no Cancel reached the controller")
	}
	// The late answer to the cancelled request is dropped; the next call still works.
	if _, err := c.Infer(context.Background(), "m", []byte{2}, InferOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestClosed(t *testing.T) {
	c := dialFake(t, 1, nil)
	if err := c.Close(); err != nil && !errors.Is(err, wire.ErrClosed) {
		t.Log(err)
	}
	if _, err := c.Infer(context.Background(), "m", nil, InferOptions{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}
