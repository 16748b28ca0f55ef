package controller

import (
	"container/heap"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clockwork-go/clockwork/wire"
)

// testWorker is a minimal worker for controller tests: it speaks the worker link, keeps page
// accounting per GPU, runs each GPU's INFERs one at a time with durations from a table (no
// device), rejects actions it cannot start inside their windows, and answers an INFER's item i
// with the first OutputBytes of input item i, so tests can check that outputs reach the right
// requests. The real worker (package worker with runtime/sim) replaces it where available.
type testWorker struct {
	gpus   int
	pages  uint32
	synth  bool
	execNs func(batch uint16) int64
	ln     net.Listener
	silent atomic.Bool // stop answering, keep the connection
	mu     sync.Mutex
	conns  []net.Conn
	infers atomic.Int64
	late   atomic.Int64 // INFERs that ran past their window (must stay 0)
}

const (
	testInBytes  = 16
	testOutBytes = 8
)

func newTestWorker(gpus int, pages uint32, synth bool) *testWorker {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	w := &testWorker{gpus: gpus, pages: pages, synth: synth, ln: ln,
		execNs: func(b uint16) int64 { return 1e6 + int64(b-1)*200e3 }}
	go w.accept()
	return w
}

func (w *testWorker) addr() string { return w.ln.Addr().String() }

func (w *testWorker) close() {
	_ = w.ln.Close()
	w.dropConns()
}

func (w *testWorker) dropConns() {
	w.mu.Lock()
	for _, c := range w.conns {
		_ = c.Close()
	}
	w.conns = nil
	w.mu.Unlock()
}

func (w *testWorker) accept() {
	for {
		nc, err := w.ln.Accept()
		if err != nil {
			return
		}
		w.mu.Lock()
		w.conns = append(w.conns, nc)
		w.mu.Unlock()
		go w.serve(nc)
	}
}

type due struct {
	at  int64
	res wire.Result
	out []byte
}

type dueHeap []due

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(due)) }
func (h *dueHeap) Pop() any {
	o := *h
	x := o[len(o)-1]
	*h = o[:len(o)-1]
	return x
}

func (w *testWorker) serve(nc net.Conn) {
	hello := wire.Hello{Role: wire.RoleWorker, Clock: wire.ClockUnixMono, Backend: []byte("test")}
	if w.synth {
		hello.Flags |= wire.HelloSynthInput
	}
	for range w.gpus {
		hello.GPUs = append(hello.GPUs, wire.GPUInfo{MemBytes: 1 << 30, PageBytes: 16 << 20, Pages: w.pages, Name: []byte("test")})
	}
	conn, err := wire.NewConn(nc, wire.Config{Hello: hello, WireClock: WireNow, InlinePayload: 1 << 20, QueueBytes: 16 << 20})
	if err != nil {
		return
	}
	if _, err := conn.Handshake(time.Now().Add(5 * time.Second)); err != nil {
		return
	}
	go func() { _ = conn.WriteLoop() }()
	defer conn.Abort()

	var mu sync.Mutex
	var pend dueHeap
	kick := make(chan struct{}, 1)
	stop := make(chan struct{})
	defer close(stop)
	schedule := func(d due) {
		mu.Lock()
		heap.Push(&pend, d)
		mu.Unlock()
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	go func() { // completer: sends each result when its action would have finished
		t := time.NewTimer(time.Hour)
		for {
			mu.Lock()
			now := WireNow()
			for len(pend) > 0 && pend[0].at <= now {
				d := heap.Pop(&pend).(due)
				mu.Unlock()
				if !w.silent.Load() {
					_ = conn.Send(&d.res, d.out)
				}
				mu.Lock()
			}
			wait := time.Hour
			if len(pend) > 0 {
				wait = time.Duration(pend[0].at - now)
			}
			mu.Unlock()
			t.Reset(wait)
			select {
			case <-t.C:
			case <-kick:
			case <-stop:
				return
			}
		}
	}()

	free := make([]uint32, w.gpus)
	execFree := make([]int64, w.gpus)
	pcieFree := make([]int64, w.gpus)
	resident := make([]map[uint32]bool, w.gpus)
	for g := range resident {
		free[g], resident[g] = w.pages, map[uint32]bool{}
	}
	const pagesPerModel = 2
	var lm wire.LoadModel
	var lw wire.LoadWeights
	var ev wire.EvictWeights
	var inf wire.Infer
	var cc wire.ClearCache
	var gs wire.GetWorkerState
	registered := map[uint32]bool{}
	for {
		h, err := conn.Next()
		if err != nil {
			return
		}
		now := WireNow()
		if w.silent.Load() {
			_ = conn.Discard()
			continue
		}
		switch h.Type {
		case wire.TypeLoadModel:
			_ = conn.DecodeInto(&lm)
			if lm.Source == wire.SourceUpload && h.PayloadLen == 0 {
				_ = conn.Send(&wire.ModelInfo{RequestID: lm.RequestID, Status: wire.StatusBadInput}, nil)
				continue
			}
			registered[lm.ModelID] = true
			_ = conn.Send(&wire.ModelInfo{RequestID: lm.RequestID, Status: wire.StatusOK, Model: wire.ModelDesc{
				ModelID: lm.ModelID, Name: lm.Name, InputBytes: testInBytes, OutputBytes: testOutBytes,
				WeightsBytes: pagesPerModel << 24, WeightsPages: pagesPerModel, Batches: []uint16{1, 2, 4, 8, 16}}}, nil)
		case wire.TypeClearCache:
			_ = conn.DecodeInto(&cc)
			for g := range resident {
				free[g], resident[g] = w.pages, map[uint32]bool{}
			}
			_ = conn.Send(&wire.Result{ActionID: cc.ActionID, Action: wire.TypeClearCache, Status: wire.StatusOK}, nil)
		case wire.TypeGetWorkerState:
			_ = conn.DecodeInto(&gs)
			_ = conn.Send(&wire.WorkerState{ActionID: gs.ActionID}, nil)
		case wire.TypeLoadWeights:
			_ = conn.DecodeInto(&lw)
			g := lw.GPU
			res := wire.Result{ActionID: lw.ActionID, Action: wire.TypeLoadWeights, GPU: g, ReceivedNs: now}
			start := max(now, pcieFree[g])
			switch {
			case int(g) >= w.gpus || !registered[lw.ModelID]:
				res.Status = wire.StatusBadInput
			case resident[g][lw.ModelID]:
				res.Status = wire.StatusBadInput
			case free[g] < pagesPerModel:
				res.Status = wire.StatusNoMemory
			case start > lw.LatestNs:
				res.Status = wire.StatusWindowPassed
			default:
				free[g] -= pagesPerModel
				resident[g][lw.ModelID] = true
				pcieFree[g] = start + 2e6
				res.Phases[wire.PhaseWeights] = wire.Span{StartNs: start, EndNs: start + 2e6}
			}
			schedule(due{at: max(now, res.Phases[wire.PhaseWeights].EndNs), res: res})
		case wire.TypeEvictWeights:
			_ = conn.DecodeInto(&ev)
			g := ev.GPU
			res := wire.Result{ActionID: ev.ActionID, Action: wire.TypeEvictWeights, GPU: g, ReceivedNs: now}
			if int(g) < w.gpus && resident[g][ev.ModelID] {
				delete(resident[g], ev.ModelID)
				free[g] += pagesPerModel
			} else {
				res.Status = wire.StatusModelNotLoaded
			}
			_ = conn.Send(&res, nil)
		case wire.TypeInfer:
			_ = conn.DecodeInto(&inf)
			var in []byte
			if h.PayloadLen > 0 {
				in = make([]byte, h.PayloadLen)
				if err := conn.ReadPayload(in); err != nil {
					return
				}
			}
			g := inf.GPU
			res := wire.Result{ActionID: inf.ActionID, Action: wire.TypeInfer, GPU: g, Batch: inf.Batch, ReceivedNs: now}
			start := max(now, execFree[g], inf.EarliestNs)
			switch {
			case int(g) >= w.gpus || !resident[g][inf.ModelID]:
				res.Status = wire.StatusModelNotLoaded
			case start > inf.LatestNs:
				res.Status = wire.StatusWindowPassed
			default:
				d := w.execNs(inf.Batch)
				execFree[g] = start + d
				res.Phases[wire.PhaseExec] = wire.Span{StartNs: start, EndNs: start + d}
				res.ExecNs = d
				w.infers.Add(1)
			}
			var out []byte
			if res.Status == wire.StatusOK && inf.Flags&wire.InferNoOutput == 0 && len(in) == int(inf.Batch)*testInBytes {
				out = make([]byte, int(inf.Batch)*testOutBytes)
				for i := range int(inf.Batch) {
					copy(out[i*testOutBytes:(i+1)*testOutBytes], in[i*testInBytes:])
				}
			}
			schedule(due{at: max(now, res.Phases[wire.PhaseExec].EndNs), res: res, out: out})
		default:
			_ = conn.Discard()
		}
	}
}
