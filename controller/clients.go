package controller

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/clockwork-go/clockwork/wire"
)

// MaxUploadBytes bounds a model uploaded through the controller: the controller keeps it in
// memory (every worker that connects later gets it too) and copies it into each worker link's
// send queue, so the event loop never waits on a socket for it.
const MaxUploadBytes = 48 << 20

// maxClientPayload bounds any payload a client may send (one request's input, an upload); a
// larger one closes the link with a protocol error.
const maxClientPayload = 64 << 20

// clientConn is one client link.
type clientConn struct {
	conn *wire.Conn
	// Owned by the event loop.
	gone    bool
	pending map[uint64]uint64 // client request id → internal id
}

func (c *Controller) acceptLoop(ctx context.Context, ln net.Listener) {
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() == nil {
				c.log.Error("cannot accept clients; no new clients will be served", "err", err)
			}
			return
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.serveClient(ctx, nc)
		}()
	}
}

// ServeConn serves one client over nc (already accepted or an in-process pipe) until it
// closes or ctx is done. Run must be running.
func (c *Controller) ServeConn(ctx context.Context, nc net.Conn) {
	c.wg.Add(1)
	defer c.wg.Done()
	c.serveClient(ctx, nc)
}

func (c *Controller) serveClient(ctx context.Context, nc net.Conn) {
	wcfg := c.wireConfig(wire.RoleController, wire.RoleClient, wire.RoleTool)
	wcfg.MaxPayload = maxClientPayload // inputs are read into fresh buffers: bound them
	conn, err := wire.NewConn(nc, wcfg)
	if err != nil {
		_ = nc.Close()
		return
	}
	if _, err := conn.Handshake(time.Now().Add(5 * time.Second)); err != nil {
		c.log.Info("client handshake failed", "remote", nc.RemoteAddr(), "err", err)
		return
	}
	cl := &clientConn{conn: conn, pending: map[uint64]uint64{}}
	writeErr := make(chan error, 1)
	go func() { writeErr <- conn.WriteLoop() }()
	if !c.post(ctx, event{kind: evClientUp, cl: cl}) {
		conn.Abort()
		<-writeErr
		return
	}
	stop := context.AfterFunc(ctx, conn.Abort)
	c.readClient(ctx, cl)
	stop()
	c.post(ctx, event{kind: evClientGone, cl: cl})
	_ = conn.Close()
	<-writeErr
}

// readClient reads client frames until the link fails.
//
// Timing: reader goroutine; one allocation per request with input (its buffer).
func (c *Controller) readClient(ctx context.Context, cl *clientConn) {
	conn := cl.conn
	var req wire.Request
	var cancel wire.Cancel
	var list wire.ListModels
	var lm wire.LoadModel
	for {
		h, err := conn.Next()
		if err != nil {
			return
		}
		ev := event{cl: cl}
		switch h.Type {
		case wire.TypeRequest:
			if err := conn.DecodeInto(&req); err != nil {
				return
			}
			ev.kind, ev.id, ev.model, ev.prio = evRequest, req.RequestID, req.ModelID, req.Priority
			ev.slo, ev.dead, ev.arrived = req.SLONs, req.DeadlineNs, WireNow()
			if ev.model == 0 {
				ev.model = (*c.names.Load())[string(req.Name)] // no allocation: map lookup by []byte
			}
			if h.PayloadLen > 0 {
				if c.cfg.SynthInput {
					if err := conn.Discard(); err != nil {
						return
					}
				} else {
					ev.input = make([]byte, h.PayloadLen)
					if err := conn.ReadPayload(ev.input); err != nil {
						return
					}
				}
			}
		case wire.TypeCancel:
			if err := conn.DecodeInto(&cancel); err != nil {
				return
			}
			ev.kind, ev.id = evCancel, cancel.RequestID
		case wire.TypeListModels:
			if err := conn.DecodeInto(&list); err != nil {
				return
			}
			ev.kind, ev.id = evListModels, list.RequestID
		case wire.TypeLoadModel:
			if err := conn.DecodeInto(&lm); err != nil {
				return
			}
			if lm.Source == wire.SourceUpload {
				if h.PayloadLen == 0 || h.PayloadLen > MaxUploadBytes {
					_ = conn.Discard()
					_ = conn.Send(&wire.ModelInfo{RequestID: lm.RequestID, Status: wire.StatusBadInput,
						Reason: []byte(fmt.Sprintf("uploaded model is %d bytes; it must be 1..%d (larger models: put the file under the workers' model root and register it by path)", h.PayloadLen, MaxUploadBytes))}, nil)
					continue
				}
				ev.input = make([]byte, h.PayloadLen)
				if err := conn.ReadPayload(ev.input); err != nil {
					return
				}
			}
			ev.kind, ev.id, ev.name, ev.path = evLoadModel, lm.RequestID, string(lm.Name), string(lm.Path)
		default:
			if err := conn.Discard(); err != nil {
				return
			}
			continue
		}
		if !c.post(ctx, ev) {
			return
		}
	}
}

func (c *Controller) onListModels(ev *event) {
	if ev.cl.gone {
		return
	}
	list := wire.ModelList{RequestID: ev.id}
	for _, m := range c.models {
		if m.ready && len(list.Models) < wire.MaxModels {
			d := m.desc
			d.ModelID = uint32(m.id + 1)
			d.Name = []byte(m.name)
			list.Models = append(list.Models, d)
		}
	}
	_ = ev.cl.conn.Send(&list, nil)
}

// onLoadModel registers a model at run time on every connected worker; the client is answered
// when all have answered.
func (c *Controller) onLoadModel(ev *event) {
	if ev.cl.gone {
		return
	}
	fail := func(st wire.Status, reason string) {
		_ = ev.cl.conn.Send(&wire.ModelInfo{RequestID: ev.id, Status: st, Reason: []byte(reason)}, nil)
	}
	if ev.name == "" {
		fail(wire.StatusBadInput, "a model needs a name")
		return
	}
	for _, m := range c.models {
		if m.name == ev.name {
			fail(wire.StatusModelExists, "a model with that name is registered; pick another name")
			return
		}
	}
	if len(c.models) >= wire.MaxModels {
		fail(wire.StatusOverloaded, "model table full")
		return
	}
	m := &modelEntry{id: int32(len(c.models)), name: ev.name, path: ev.path, upload: ev.input}
	c.models = append(c.models, m)
	c.publishNames()
	m.waiters = append(m.waiters, waiter{cl: ev.cl, req: ev.id})
	for _, wk := range c.workers {
		if wk.conn != nil {
			c.registerOn(wk, m)
		}
	}
	if m.pending == 0 {
		m.waiters = nil
		fail(wire.StatusInternal, "no worker is connected; the model registers when one connects")
	}
}
