package worker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clockwork-go/clockwork/internal/pinned"
	"github.com/clockwork-go/clockwork/runtime/device"
	"github.com/clockwork-go/clockwork/runtime/sim"
	"github.com/clockwork-go/clockwork/wire"
)

// Worker executes what a controller orders on the GPUs of one machine, and decides nothing
// (DESIGN.md §1, §5).
//
// # Invariants
//
//  1. Every action the worker decodes is answered exactly once: a Result (ModelInfo for
//     LoadModel, WorkerState for GetWorkerState), unless its controller link is gone.
//  2. No action starts before its earliest; none starts after its latest (it is answered
//     StatusWindowPassed instead, C3). For INFER the window is checked at the input copy
//     (eligible InputLeadNs before earliest) and again at exec (eligible at earliest).
//  3. Exactly one INFER executes per GPU at a time (C2): one exec thread per GPU, checked under
//     the invariants tag by execGuard and by the sim device.
//  4. A model's pages stay allocated while an INFER holds a pin on them; UNLOAD of a pinned
//     model unregisters it from the GPU at once and frees the pages at the last unpin.
//  5. The worker never evicts on its own: LOAD with too few free pages is StatusNoMemory.
//
// # The path of an INFER
//
//  1. The link's reader decodes Infer into a reused message, validates it (GPU, model, batch,
//     window, input length: each failure its own status), takes a pooled action and a host
//     buffer for the bytes that cross the socket (input unless synthesised, output unless not
//     wanted; none for a synthesised INFER with no output), and reads the payload from the
//     socket straight into that buffer.
//  2. The GPU's input thread takes it in eligible order (earliest − InputLeadNs), checks latest,
//     pins the model's pages, takes an IO slot and copies the input to the device.
//  3. The exec thread takes it at earliest, checks latest again, and runs it.
//  4. The output thread copies the output back into the host buffer, sends the Result with the
//     output as payload, records telemetry, and returns the buffer, slot, pin and action.
//
// None of this allocates once pools have grown (TestInferAllocs).
//
// # Waiting
//
// Far from an action's eligible time an executor sleeps on a reused Go timer until CoarseNs
// (2 ms) before it, interruptible by an earlier arrival; then it nanosleeps (200 µs slices,
// timer slack 1 ns, re-checking the queue between slices) until SpinNs before it; then it spins
// on the clock. Go timers alone are not enough: the idle netpoller waits in whole milliseconds,
// so a sub-ms sleep wakes up to 1 ms late. Measured (BenchmarkLateness, 3000 INFERs each, 2-core
// VM, p50/p99/max): sleep only 167 µs/234 µs/541 µs; SpinNs 50 µs 15 ns/27 ns/2.0 ms; pinned
// and SCHED_FIFO 10 ns/25 ns/28 µs. SpinNs 0 is sleep-only (for testing/synctest).
//
// # Alternatives rejected
//
// One goroutine scanning all queues (worker_dummy) is simpler but puts every GPU's lateness on
// one thread. Polling with usleep(1) (the original's executors) burns a CPU per thread.
type Worker struct {
	cfg   Config
	devs  []device.Device
	gpus  []*gpu
	host  hostPool
	ln    net.Listener
	tele  *Telemetry
	seq   atomic.Uint64
	hello wire.Hello

	modelsMu sync.RWMutex
	models   map[uint32]*model
	names    map[string]uint32
	compiled map[string]*compiled // ONNX models built and prepared, by compileKey

	poolMu sync.Mutex
	pool   []*action

	weightsBuf []byte // host source of sim LOAD copies: one page, never written
	synthBuf   []byte // host source of synthesised inputs: one IO slot of zeros, never written

	stopping atomic.Bool
	inflight atomic.Int64 // actions decoded and not yet answered
	linksMu  sync.Mutex
	links    map[*link]bool
	threads  sync.WaitGroup
	regs     sync.WaitGroup // registrations in progress (their own goroutines)
	bg       sync.WaitGroup // shutdowns started by a link's context
	compMu   sync.Mutex     // one compile at a time: instances of a file wait for the first
	closeErr error
	closed   sync.Once
}

func (g *gpu) freePages() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.mem.cache.FreePages()
}

// gpu is one device with its memory and four executors.
type gpu struct {
	mu    sync.Mutex // mem.cache and models' residencies on this GPU
	idx   int
	dev   device.Device
	mem   *gpuMem
	exec  [device.NumLanes]*executor
	guard execGuard
}

// New opens the devices, lays out their memory, starts the executor threads and listens on
// cfg.Addr. Call Run to serve, or Close. Control path.
func New(cfg Config) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.fill()
	if cfg.FIFO {
		if err := fifoGuard(cfg.CPUs); err != nil {
			return nil, err
		}
	}
	w := &Worker{cfg: cfg, models: map[uint32]*model{}, names: map[string]uint32{}, compiled: map[string]*compiled{}, links: map[*link]bool{}}
	be := cfg.Backend
	if be == nil {
		b, err := sim.New(sim.Config{GPUs: cfg.SimGPUs, Noise: cfg.SimNoise, Seed: cfg.SimSeed, Clock: cfg.Clock, SpinNs: cfg.SpinNs, Profile: cfg.Profile})
		if err != nil {
			return nil, fmt.Errorf("cannot start the sim backend: %w", err)
		}
		be = b
	}
	devs, err := be.Open(cfg.RegionBytes)
	if err != nil {
		return nil, fmt.Errorf("cannot open %s devices: %w", be.Name(), err)
	}
	if len(devs) == 0 || len(devs) > wire.MaxGPUs {
		return nil, fmt.Errorf("cannot serve %d %s devices: want 1 to %d", len(devs), be.Name(), wire.MaxGPUs)
	}
	w.devs = devs
	w.host.limit = cfg.HostIOBytes
	w.host.pinned = pinned.NewPool(pinned.Config{})
	if r, ok := devs[0].(device.HostRegistrar); ok {
		if err := w.host.pinned.SetRegistrar(r); err != nil {
			w.closeDevices()
			return nil, fmt.Errorf("cannot register host memory with the device: %w", err)
		}
		w.host.pinnedOnly = true
	}
	w.hello = wire.Hello{Role: wire.RoleWorker, Flags: wire.HelloSynthInput, Clock: wire.ClockUnixMono, Agent: []byte("cw worker"), Backend: []byte(be.Name())}
	for i, d := range devs {
		info := d.Info()
		mem, err := newGPUMem(info, &w.cfg)
		if err != nil {
			w.closeDevices()
			return nil, err
		}
		g := &gpu{idx: i, dev: d, mem: mem}
		w.gpus = append(w.gpus, g)
		w.hello.GPUs = append(w.hello.GPUs, wire.GPUInfo{MemBytes: uint64(info.MemBytes), PageBytes: uint32(cfg.PageBytes), Pages: uint32(mem.total), Name: []byte(info.Name)})
	}
	if w.weightsBuf, err = mmapZero(int(cfg.PageBytes)); err == nil {
		w.synthBuf, err = mmapZero(int(cfg.IOSlotBytes))
	}
	if err != nil {
		w.closeDevices()
		return nil, err
	}
	w.tele = newTelemetry(cfg.RingSize, cfg.TelemetryTSV)
	ready := make(chan error, len(w.gpus)*int(device.NumLanes))
	k := 0
	for _, g := range w.gpus {
		for l := range device.NumLanes {
			cpu := -1
			if len(cfg.CPUs) > 0 {
				cpu = cfg.CPUs[k%len(cfg.CPUs)]
			}
			k++
			e := newExecutor(w, g.idx, l, cpu)
			g.exec[l] = e
			w.threads.Add(1)
			go func() {
				defer w.threads.Done()
				e.loop(ready)
			}()
		}
	}
	var startErr error
	for range k {
		if err := <-ready; err != nil && startErr == nil {
			startErr = err
		}
	}
	if startErr != nil {
		w.stopThreads()
		w.closeDevices()
		return nil, startErr
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		w.stopThreads()
		w.closeDevices()
		return nil, fmt.Errorf("cannot listen on %s: %w; pick a free address with -addr", cfg.Addr, err)
	}
	w.ln = ln
	cfg.Logger.Info("worker listening", "addr", ln.Addr().String(), "backend", be.Name(), "gpus", len(devs), "pages_per_gpu", w.gpus[0].mem.total, "page_bytes", cfg.PageBytes)
	return w, nil
}

// Addr is the address the worker listens on (with the port chosen for ":0"). Any goroutine.
func (w *Worker) Addr() net.Addr { return w.ln.Addr() }

// Hello returns what the worker announces to a controller. Read-only.
func (w *Worker) Hello() *wire.Hello { return &w.hello }

// Telemetry returns the worker's action telemetry. Any goroutine.
func (w *Worker) Telemetry() *Telemetry { return w.tele }

// Run accepts controller connections until ctx is done, then shuts down gracefully: new actions
// are refused, queued ones answered StatusShuttingDown, running ones finish and are answered,
// links are closed with a goodbye, devices are closed. It returns nil after a clean shutdown.
func (w *Worker) Run(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-done:
		}
		_ = w.ln.Close()
	}()
	var conns sync.WaitGroup
	var err error
	for {
		nc, aerr := w.ln.Accept()
		if aerr != nil {
			if ctx.Err() == nil && !errors.Is(aerr, net.ErrClosed) {
				err = fmt.Errorf("cannot accept: %w", aerr)
			}
			break
		}
		conns.Add(1)
		go func() {
			defer conns.Done()
			_ = w.ServeConn(ctx, nc)
		}()
	}
	close(done)
	w.shutdown()
	conns.Wait()
	return errors.Join(err, w.Close())
}

// shutdown drains: queued actions answered StatusShuttingDown, running ones finish, then every
// link gets a goodbye. Idempotent; any goroutine.
func (w *Worker) shutdown() {
	w.stopping.Store(true)
	for _, g := range w.gpus {
		for _, e := range g.exec {
			select {
			case e.wake <- struct{}{}: // re-evaluate the queue now: it is answered at once
			default:
			}
		}
	}
	// Running actions finish within their exec time; a controller that stopped reading can hold
	// an output thread in Send, so the wait is bounded, then links are closed anyway.
	for deadline := time.Now().Add(shutdownWait); w.inflight.Load() > 0; {
		if time.Now().After(deadline) {
			w.cfg.Logger.Warn("shutdown: actions still unanswered; closing links", "actions", w.inflight.Load())
			break
		}
		time.Sleep(time.Millisecond)
	}
	w.linksMu.Lock()
	for l := range w.links {
		go l.conn.CloseWithStatus(wire.StatusShuttingDown, "worker shutting down")
	}
	w.linksMu.Unlock()
}

// Close stops the executor threads and closes the devices and the listener. Run calls it; call
// it directly only when Run was never called. Idempotent.
func (w *Worker) Close() error {
	w.closed.Do(func() {
		w.stopping.Store(true)
		_ = w.ln.Close()
		w.regs.Wait() // a registration may be preparing on the devices
		w.bg.Wait()   // a shutdown draining the executors (bounded by shutdownWait)
		w.stopThreads()
		w.host.close() // before the devices: pinned buffers unregister from them
		for _, b := range [][]byte{w.weightsBuf, w.synthBuf} {
			if b != nil {
				_ = unix.Munmap(b)
			}
		}
		w.closeErr = w.closeDevices()
		w.tele.close()
		for _, m := range w.models {
			if m.comp == nil {
				for _, p := range m.progs {
					_ = p.Close()
				}
			}
			m.hostW.free()
		}
		for _, c := range w.compiled {
			c.close()
		}
		pb, ub, carves, releases := w.host.stats()
		w.cfg.Logger.Info("worker stopped", "gc_pauses", w.tele.GCPauses().String(), "host_io_pinned_bytes", pb, "host_io_pageable_bytes", ub,
			"host_io_carves", carves, "host_io_releases", releases)
	})
	return w.closeErr
}

func (w *Worker) stopThreads() {
	for _, g := range w.gpus {
		for _, e := range g.exec {
			if e != nil {
				e.close()
			}
		}
	}
	w.threads.Wait()
}

func (w *Worker) closeDevices() error {
	var errs []error
	for _, d := range w.devs {
		errs = append(errs, d.Close())
	}
	return errors.Join(errs...)
}

// lockThreads says whether executors run on their own OS threads: when something is set per
// thread (a CPU, SCHED_FIFO, or the 1 ns timer slack that precise nanosleeps before a spin need).
// Sleep-only executors (SpinNs 0, unpinned) wait on Go timers, where a locked thread buys
// nothing and costs two futex calls per hand-off (the waker passes its P to the locked thread
// and parks): 40 % of the CPU in BenchmarkCluster with 256 executors on 2 cores.
func (w *Worker) lockThreads() bool {
	return len(w.cfg.CPUs) > 0 || w.cfg.FIFO || w.cfg.SpinNs > 0 || w.cfg.Probe != nil
}

// getAction takes a pooled action. Reader goroutine.
//
// Timing: does not allocate once the pool has grown.
func (w *Worker) getAction() *action {
	w.poolMu.Lock()
	var a *action
	if n := len(w.pool); n > 0 {
		a = w.pool[n-1]
		w.pool = w.pool[:n-1]
	}
	w.poolMu.Unlock()
	if a == nil {
		a = new(action)
	}
	a.reset()
	w.inflight.Add(1)
	return a
}

func (w *Worker) putAction(a *action) {
	a.reset()
	w.poolMu.Lock()
	w.pool = append(w.pool, a)
	w.poolMu.Unlock()
	w.inflight.Add(-1)
}

// finish answers a with st, records telemetry and releases everything a holds. res and reason
// are the caller's reused message and reason buffer.
//
// Timing: executor thread or reader; does not allocate.
func (w *Worker) finish(a *action, st wire.Status, reason string, res *wire.Result, rbuf *[]byte) {
	a.status, a.reason = st, reason
	*res = wire.Result{ActionID: a.id, Action: a.typ, Status: st, GPU: uint16(a.gpu), Batch: uint16(a.batch), ReceivedNs: a.received, Phases: a.phases, ExecNs: a.execNs}
	if len(reason) > wire.MaxReasonLen {
		reason = reason[:wire.MaxReasonLen]
	}
	*rbuf = append((*rbuf)[:0], reason...)
	res.Reason = *rbuf
	var payload []byte
	if st == wire.StatusOK && a.typ == wire.TypeInfer && a.flags&wire.InferNoOutput == 0 {
		payload = a.output()
	}
	if !a.link.dead.Load() {
		_ = a.link.conn.Send(res, payload)
	}
	w.tele.record(a)
	w.release(a)
	w.putAction(a)
}

// release returns a's host buffer, IO slot and page pin.
func (w *Worker) release(a *action) {
	if a.host != nil {
		w.host.put(a.host)
		a.host = nil
	}
	if a.slot >= 0 {
		w.gpus[a.gpu].mem.freeSlot(a.slot)
		a.slot = -1
	}
	if a.pinned {
		a.model.unpin(w.gpus[a.gpu], a.res)
		a.pinned, a.ptrs = false, nil
	}
}

// runWeights runs LOAD or UNLOAD on the weights thread.
func (w *Worker) runWeights(e *executor, a *action, now int64) {
	if now > a.latest {
		e.finish(a, wire.StatusWindowPassed, "weights thread reached the action after its latest")
		return
	}
	g := w.gpus[a.gpu]
	m := a.model
	a.started = now
	if a.typ == wire.TypeEvictWeights {
		if !m.unload(g) {
			e.finish(a, wire.StatusModelNotLoaded, "UNLOAD of a model not loaded on this GPU")
			return
		}
		a.phases[wire.PhaseWeights] = wire.Span{StartNs: now, EndNs: w.cfg.Clock()}
		e.finish(a, wire.StatusOK, "")
		return
	}
	st, reason := m.load(w, g, a)
	if w.cfg.Probe != nil && st == wire.StatusOK {
		w.cfg.Probe.execDone(w, e, a, now, a.phases[wire.PhaseWeights].EndNs)
	}
	e.finish(a, st, reason)
}

// runInput checks the window, pins the model and copies the input to the device.
func (w *Worker) runInput(e *executor, a *action, now int64) {
	if now > a.latest {
		e.finish(a, wire.StatusWindowPassed, "input thread reached the INFER after its latest")
		return
	}
	g := w.gpus[a.gpu]
	if a.res, a.ptrs, a.pinned = a.model.pin(g); !a.pinned {
		e.finish(a, wire.StatusModelNotLoaded, "INFER of a model not loaded on this GPU")
		return
	}
	if a.slot = g.mem.allocSlot(); a.slot < 0 {
		e.finish(a, wire.StatusNoMemory, "device IO arena full: too many INFERs between input and output")
		return
	}
	if _, err := g.dev.CopyIn(device.LaneInput, g.mem.slotPtr(a.slot), w.input(a)); err != nil {
		e.finish(a, wire.StatusInternal, "input copy failed")
		return
	}
	a.phases[wire.PhaseInput] = wire.Span{StartNs: now, EndNs: w.cfg.Clock()}
	a.eligible = a.earliest
	if !g.exec[device.LaneExec].push(a) {
		e.finish(a, wire.StatusOverloaded, "exec queue full")
	}
}

// runExec checks the window again and runs the INFER: the only place a GPU executes (C2).
func (w *Worker) runExec(e *executor, a *action, now int64) {
	if now > a.latest {
		e.finish(a, wire.StatusWindowPassed, "exec thread reached the INFER after its latest")
		return
	}
	g := w.gpus[a.gpu]
	m := a.model
	a.started = now
	if m.workspace > g.mem.wsBytes {
		e.finish(a, wire.StatusNoMemory, "model workspace larger than the workspace arena")
		return
	}
	io := g.mem.slotPtr(a.slot)
	g.guard.enter(g.idx)
	sp, err := m.progs[g.idx].Run(a.batch, a.ptrs, io, io+device.Ptr(m.inputBytes(a.batch)), g.mem.wsBase)
	g.guard.exit()
	end := w.cfg.Clock()
	if err != nil {
		e.finish(a, wire.StatusInternal, "exec failed on the device")
		return
	}
	a.phases[wire.PhaseExec] = wire.Span{StartNs: now, EndNs: end}
	a.execNs = sp.Dur()
	if w.cfg.Probe != nil {
		w.cfg.Probe.execDone(w, e, a, now, end)
	}
	a.eligible = 0
	if !g.exec[device.LaneOutput].push(a) {
		e.finish(a, wire.StatusOverloaded, "output queue full")
	}
}

// runOutput copies the output back and answers.
func (w *Worker) runOutput(e *executor, a *action, now int64) {
	g := w.gpus[a.gpu]
	in, out := a.model.inputBytes(a.batch), a.model.outputBytes(a.batch)
	if a.flags&wire.InferNoOutput == 0 {
		if _, err := g.dev.CopyOut(device.LaneOutput, a.host[a.outOff:a.outOff+out], g.mem.slotPtr(a.slot)+device.Ptr(in)); err != nil {
			e.finish(a, wire.StatusInternal, "output copy failed")
			return
		}
		a.phases[wire.PhaseOutput] = wire.Span{StartNs: now, EndNs: w.cfg.Clock()}
	}
	e.finish(a, wire.StatusOK, "")
}

// State returns the worker state: GPUs with free pages and loaded models, registered models.
// Any goroutine; allocates.
func (w *Worker) State() *wire.WorkerState {
	s := &wire.WorkerState{}
	w.modelsMu.RLock()
	for id := range w.models {
		s.Registered = append(s.Registered, id)
	}
	for _, g := range w.gpus {
		gs := wire.GPUState{GPU: uint16(g.idx), TotalPages: uint32(g.mem.total), FreePages: uint32(g.freePages())}
		for id, m := range w.models {
			if m.loaded(g) {
				gs.Models = append(gs.Models, id)
			}
		}
		sort.Slice(gs.Models, func(i, j int) bool { return gs.Models[i] < gs.Models[j] })
		s.GPUs = append(s.GPUs, gs)
	}
	w.modelsMu.RUnlock()
	sort.Slice(s.Registered, func(i, j int) bool { return s.Registered[i] < s.Registered[j] })
	return s
}

// clearCache unloads every model from GPU g (or all). Models pinned by running INFERs free
// their pages at the last unpin.
func (w *Worker) clearCache(gpuIdx int) {
	w.modelsMu.RLock()
	defer w.modelsMu.RUnlock()
	for _, g := range w.gpus {
		if gpuIdx >= 0 && g.idx != gpuIdx {
			continue
		}
		for _, m := range w.models {
			m.unload(g)
		}
	}
}

// shutdownWait bounds how long shutdown waits for running actions.
const shutdownWait = 5 * time.Second

// wireDeadline is the hello's bound.
const wireDeadline = 10 * time.Second
