package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync/atomic"
	"time"

	"github.com/clockwork-go/clockwork/runtime/device"
	"github.com/clockwork-go/clockwork/wire"
)

// link is one controller (or tool) connection. Its reader goroutine owns the reused messages.
type link struct {
	w    *Worker
	conn *wire.Conn
	dead atomic.Bool

	infer  wire.Infer
	lw     wire.LoadWeights
	ew     wire.EvictWeights
	lm     wire.LoadModel
	cc     wire.ClearCache
	gs     wire.GetWorkerState
	res    wire.Result
	reason []byte
}

// ServeConn runs the worker side of one connection: the hello, then every worker-link message
// until the peer leaves, the connection fails or ctx is done. When it returns, the link's queued
// actions have been cancelled (their resources returned; nobody is left to answer) and the
// worker accepts the next controller. Any goroutine; one call per connection. `cw serve` and
// tests can pass one end of a net.Pipe.
func (w *Worker) ServeConn(ctx context.Context, nc net.Conn) error {
	wc := wire.Config{Hello: w.hello, AcceptRoles: []wire.Role{wire.RoleController, wire.RoleTool}, Secret: w.cfg.Secret, WireClock: w.cfg.Clock}
	if w.cfg.StallTimeout > 0 {
		wc.Now, wc.StallTimeout = time.Now, w.cfg.StallTimeout
	}
	conn, err := wire.NewConn(nc, wc)
	if err != nil {
		nc.Close()
		return err
	}
	peer, err := conn.Handshake(time.Now().Add(wireDeadline))
	if err != nil {
		w.cfg.Logger.Warn("controller hello failed", "remote", nc.RemoteAddr().String(), "err", err)
		return err
	}
	l := &link{w: w, conn: conn, reason: make([]byte, 0, wire.MaxReasonLen)}
	w.linksMu.Lock()
	w.links[l] = true
	w.linksMu.Unlock()
	w.cfg.Logger.Info("controller connected", "remote", nc.RemoteAddr().String(), "role", peer.Role.String(), "agent", string(peer.Agent))
	writeDone := make(chan error, 1)
	go func() { writeDone <- conn.WriteLoop() }()
	w.bg.Add(1) // Close waits for a shutdown started by ctx
	stop := context.AfterFunc(ctx, func() { defer w.bg.Done(); w.shutdown() })
	err = l.readLoop()
	if stop() {
		w.bg.Done()
	}
	l.dead.Store(true)
	n := w.cancelLink(l)
	conn.Abort()
	<-writeDone
	w.linksMu.Lock()
	delete(w.links, l)
	w.linksMu.Unlock()
	if errors.Is(err, wire.ErrPeerClosed) || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		err = nil
	}
	w.cfg.Logger.Info("controller disconnected", "remote", nc.RemoteAddr().String(), "cancelled_actions", n, "err", err)
	return err
}

// cancelLink removes l's queued actions from every executor and releases them.
func (w *Worker) cancelLink(l *link) int {
	n := 0
	for _, g := range w.gpus {
		for _, e := range g.exec {
			for _, a := range e.removeIf(func(a *action) bool { return a.link == l }) {
				a.status = wire.StatusCancelled
				w.tele.record(a)
				w.release(a)
				w.putAction(a)
				n++
			}
		}
	}
	return n
}

func (l *link) readLoop() error {
	w := l.w
	for {
		h, err := l.conn.Next()
		if err != nil {
			return err
		}
		recv := w.cfg.Clock()
		switch h.Type {
		case wire.TypeInfer:
			if err := l.conn.DecodeInto(&l.infer); err != nil {
				return err
			}
			if err := l.onInfer(h, recv); err != nil {
				return err
			}
		case wire.TypeLoadWeights, wire.TypeEvictWeights:
			win := &l.lw.Window
			if h.Type == wire.TypeLoadWeights {
				err = l.conn.DecodeInto(&l.lw)
			} else {
				err, win = l.conn.DecodeInto(&l.ew), &l.ew.Window
			}
			if err != nil {
				return err
			}
			if err := l.onWeights(h, win, recv); err != nil {
				return err
			}
		case wire.TypeLoadModel:
			if err := l.conn.DecodeInto(&l.lm); err != nil {
				return err
			}
			if err := l.onLoadModel(h); err != nil {
				return err
			}
		case wire.TypeClearCache:
			if err := l.conn.DecodeInto(&l.cc); err != nil {
				return err
			}
			a := l.newAction(wire.TypeClearCache, l.cc.ActionID, recv)
			switch {
			case h.PayloadLen != 0:
				l.reject(a, wire.StatusBadInput, "ClearCache with a payload")
				if err := l.conn.Discard(); err != nil {
					return err
				}
			case l.cc.GPU != wire.AllGPUs && int(l.cc.GPU) >= len(w.gpus):
				l.reject(a, wire.StatusBadInput, "no such GPU")
			case w.stopping.Load():
				l.reject(a, wire.StatusShuttingDown, "worker shutting down")
			default:
				idx := -1
				if l.cc.GPU != wire.AllGPUs {
					idx = int(l.cc.GPU)
					a.gpu = idx
				}
				w.clearCache(idx)
				l.reject(a, wire.StatusOK, "")
			}
		case wire.TypeGetWorkerState:
			if err := l.conn.DecodeInto(&l.gs); err != nil {
				return err
			}
			if err := l.conn.Discard(); err != nil {
				return err
			}
			s := w.State()
			s.ActionID = l.gs.ActionID
			if err := l.conn.Send(s, nil); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s on the worker link: %w", h.Type, wire.ErrUnexpected)
		}
	}
}

// newAction takes a pooled action for a decoded message. Reader goroutine.
func (l *link) newAction(t wire.Type, id uint64, recv int64) *action {
	a := l.w.getAction()
	a.typ, a.id, a.link, a.received = t, id, l, recv
	return a
}

// reject answers a from the reader.
func (l *link) reject(a *action, st wire.Status, reason string) {
	l.w.finish(a, st, reason, &l.res, &l.reason)
}

// checkWindow validates the fields every windowed action shares; "" when fine.
func (l *link) checkWindow(win *wire.Window) (wire.Status, string) {
	w := l.w
	switch {
	case w.stopping.Load():
		return wire.StatusShuttingDown, "worker shutting down"
	case int(win.GPU) >= len(w.gpus):
		return wire.StatusBadInput, "no such GPU"
	case win.EarliestNs > win.LatestNs:
		return wire.StatusBadWindow, "inverted window: earliest after latest"
	}
	return wire.StatusOK, ""
}

// onInfer validates an INFER and reads its input into a host buffer.
//
// Timing: reader goroutine; does not allocate once pools have grown.
func (l *link) onInfer(h *wire.Header, recv int64) error {
	w, m := l.w, &l.infer
	a := l.newAction(wire.TypeInfer, m.ActionID, recv)
	a.gpu, a.batch, a.flags = int(m.GPU), int(m.Batch), m.Flags
	a.earliest, a.latest, a.expected = m.EarliestNs, m.LatestNs, m.ExpectedNs
	st, reason := l.checkWindow(&m.Window)
	if st == wire.StatusOK {
		a.model = w.lookup(m.ModelID)
		in := int64(0)
		switch {
		case a.model == nil:
			st, reason = wire.StatusUnknownModel, "no model with that id is registered"
		case !a.model.hasBatch(a.batch):
			st, reason = wire.StatusBadBatch, "batch size not prepared for this model"
		case m.Flags&wire.InferSynthInput != 0 && h.PayloadLen != 0:
			st, reason = wire.StatusBadInput, "synthesised input with a payload"
		case m.Flags&wire.InferSynthInput == 0 && int64(h.PayloadLen) != a.model.inputBytes(a.batch):
			st, reason = wire.StatusBadInput, "input length is not batch × the model's input bytes"
		default:
			// A host buffer only for bytes that cross the socket: an input read into it, an
			// output sent from it. Synthesised input with no output takes none.
			var need int64
			if m.Flags&wire.InferSynthInput == 0 {
				in = a.model.inputBytes(a.batch)
				need, a.outOff = in, in
			}
			if m.Flags&wire.InferNoOutput == 0 {
				need += a.model.outputBytes(a.batch)
			}
			if need > 0 {
				if a.host = w.host.get(int(need)); a.host == nil {
					st, reason = wire.StatusNoMemory, "host IO pool exhausted"
				}
			}
		}
		if st == wire.StatusOK && h.PayloadLen > 0 {
			if err := l.conn.ReadPayload(a.host[:in]); err != nil {
				w.release(a)
				w.putAction(a)
				return err
			}
		}
	}
	if st != wire.StatusOK {
		l.reject(a, st, reason)
		return l.conn.Discard()
	}
	a.eligible = a.earliest - w.cfg.InputLeadNs
	if !w.gpus[a.gpu].exec[device.LaneInput].push(a) {
		l.reject(a, wire.StatusOverloaded, "input queue full")
	}
	return nil
}

func (l *link) onWeights(h *wire.Header, win *wire.Window, recv int64) error {
	w := l.w
	a := l.newAction(h.Type, win.ActionID, recv)
	a.gpu, a.earliest, a.latest, a.expected = int(win.GPU), win.EarliestNs, win.LatestNs, win.ExpectedNs
	st, reason := l.checkWindow(win)
	if st == wire.StatusOK && h.PayloadLen != 0 {
		st, reason = wire.StatusBadInput, "LOAD/UNLOAD with a payload"
	}
	if st == wire.StatusOK {
		if a.model = w.lookup(win.ModelID); a.model == nil {
			st, reason = wire.StatusUnknownModel, "no model with that id is registered"
		}
	}
	if st != wire.StatusOK {
		l.reject(a, st, reason)
		return l.conn.Discard()
	}
	a.eligible = a.earliest
	if !w.gpus[a.gpu].exec[device.LaneWeights].push(a) {
		l.reject(a, wire.StatusOverloaded, "weights queue full")
	}
	return nil
}

func (l *link) onLoadModel(h *wire.Header) error {
	w := l.w
	info := &wire.ModelInfo{RequestID: l.lm.RequestID}
	var err error
	var upload []byte
	switch {
	case w.stopping.Load():
		err = refuse(wire.StatusShuttingDown, "worker shutting down")
	case l.lm.Source == wire.SourcePath && h.PayloadLen != 0:
		err = refuse(wire.StatusBadInput, "LoadModel from a path with a payload")
	case int64(h.PayloadLen) > maxUpload:
		err = refuse(wire.StatusBadInput, "upload of %d bytes over %d", h.PayloadLen, maxUpload)
	case h.PayloadLen > 0:
		upload = make([]byte, h.PayloadLen)
		if rerr := l.conn.ReadPayload(upload); rerr != nil {
			return rerr
		}
	}
	if derr := l.conn.Discard(); derr != nil {
		return derr
	}
	if err != nil {
		info.Status, info.Reason = asRegisterBytes(err)
		info.Model = wire.ModelDesc{ModelID: l.lm.ModelID, Name: l.lm.Name}
		return l.conn.Send(info, nil)
	}
	// Registration reads files, builds and prepares (seconds for a large ONNX model): off the
	// reader, so the link's actions keep flowing. The answer goes out when it is done; the
	// controller uses a model only after its ModelInfo.
	lm := l.lm
	lm.Name, lm.Path = slices.Clone(l.lm.Name), slices.Clone(l.lm.Path)
	w.regs.Add(1)
	go func() {
		defer w.regs.Done()
		m, err := w.register(&lm, upload)
		if err != nil {
			info.Status, info.Reason = asRegisterBytes(err)
			info.Model = wire.ModelDesc{ModelID: lm.ModelID, Name: lm.Name}
		} else {
			info.Model = m.desc(w)
		}
		if !l.dead.Load() {
			_ = l.conn.Send(info, nil)
		}
	}()
	return nil
}

// maxUpload bounds an uploaded model (a sim profile entry here).
const maxUpload = 64 << 20

func asRegisterBytes(err error) (wire.Status, []byte) {
	st, r := asRegister(err)
	if len(r) > wire.MaxReasonLen {
		r = r[:wire.MaxReasonLen]
	}
	return st, []byte(r)
}
