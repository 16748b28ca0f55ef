package worker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/clockwork-go/clockwork/alloc"
	"github.com/clockwork-go/clockwork/runtime/device"
	"github.com/clockwork-go/clockwork/runtime/sim"
	"github.com/clockwork-go/clockwork/wire"
)

// model is a registered model: prepared on every GPU, its weights resident on some.
type model struct {
	id        uint32
	name      string
	batches   []int
	inItem    int64
	outItem   int64
	workspace int64
	weights   int64
	npages    int
	progs     []device.Program // per GPU; shared with other instances when comp is set
	state     []residency      // per GPU; gpu.mu
	// Compiled (ONNX) models only: the shared build, per-batch sizes, this instance's host
	// weight pages, and the runs of pages the cache must keep contiguous.
	comp  *compiled
	io    []batchIO
	hostW *hostWeights
	runs  []alloc.Run
}

// residency is a model's weights on one GPU. The pages are alloc.Cache's: Load reserves them,
// the LOAD copies into them, and only then is the model ready for INFERs. INFERs pin the
// residency they run with; UNLOAD of a pinned model makes it not ready at once (new INFERs are
// not-loaded) and evicts it from the cache at the last unpin.
type residency struct {
	res          alloc.Residency
	ptrs         []device.Ptr // page addresses in layout order; immutable per residency
	loading      bool
	ready        bool
	evictPending bool
}

// inputBytes and outputBytes are one batch's sizes: the prepared program's for compiled
// models (checked at registration to be batch × the per-item size), item × batch for sim.
func (m *model) inputBytes(b int) int64  { return m.inItem * int64(b) }
func (m *model) outputBytes(b int) int64 { return m.outItem * int64(b) }

func (m *model) hasBatch(b int) bool {
	for _, x := range m.batches {
		if x == b {
			return true
		}
	}
	return false
}

// pin returns the ready residency's handle and page addresses with a pin on it; ok false when
// the model is not ready on g.
//
// Timing: input thread; does not allocate.
func (m *model) pin(g *gpu) (alloc.Residency, []device.Ptr, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := &m.state[g.idx]
	if !st.ready {
		return alloc.Residency{}, nil, false
	}
	if m.npages > 0 {
		if err := g.mem.cache.Pin(st.res); err != nil {
			panic(fmt.Sprintf("BUG: worker: model %d ready on gpu %d but cannot pin: %v", m.id, g.idx, err))
		}
	}
	return st.res, st.ptrs, true
}

func (m *model) unpin(g *gpu, res alloc.Residency) {
	if m.npages == 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.mem.cache.Unpin(res); err != nil {
		panic(fmt.Sprintf("BUG: worker: model %d on gpu %d: %v", m.id, g.idx, err))
	}
	if st := &m.state[g.idx]; st.evictPending && st.res == res {
		if err := g.mem.cache.Evict(alloc.ModelID(m.id)); err == nil {
			*st = residency{}
		}
	}
}

func (m *model) loaded(g *gpu) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return m.state[g.idx].ready
}

// unload makes the model not ready; false when it was not. Its pages return to the cache now,
// or at the last unpin.
func (m *model) unload(g *gpu) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := &m.state[g.idx]
	if !st.ready {
		return false
	}
	if m.npages == 0 {
		*st = residency{}
		return true
	}
	err := g.mem.cache.Evict(alloc.ModelID(m.id))
	switch {
	case err == nil:
		*st = residency{}
	case errors.Is(err, alloc.ErrPinned):
		st.ready, st.evictPending = false, true
	default:
		panic(fmt.Sprintf("BUG: worker: model %d ready on gpu %d but cannot evict: %v", m.id, g.idx, err))
	}
	return true
}

// load reserves pages in the cache and copies the weights into them (weights thread). The model
// becomes ready only when every page has been copied, so an INFER before then is not-loaded.
func (m *model) load(w *Worker, g *gpu, a *action) (wire.Status, string) {
	g.mu.Lock()
	st := &m.state[g.idx]
	switch {
	case st.ready:
		g.mu.Unlock()
		a.phases[wire.PhaseWeights] = wire.Span{StartNs: a.started, EndNs: a.started}
		return wire.StatusOK, "already loaded"
	case st.evictPending || st.loading:
		g.mu.Unlock()
		return wire.StatusNoMemory, "the previous LOAD's pages are still pinned by running INFERs; retry after them"
	}
	var ptrs []device.Ptr
	if m.npages > 0 {
		res, err := g.mem.cache.Load(alloc.ModelID(m.id), m.npages, m.runs)
		if err != nil {
			free := g.mem.cache.FreePages()
			g.mu.Unlock()
			return wire.StatusNoMemory, fmt.Sprintf("LOAD needs %d pages, %d free (%v); UNLOAD first", m.npages, free, errors.Unwrap(err))
		}
		addrs, _ := g.mem.cache.AppendAddrs(make([]uint64, 0, m.npages), res)
		ptrs = make([]device.Ptr, len(addrs))
		for i, p := range addrs {
			ptrs[i] = device.Ptr(p)
		}
		st.res = res
	}
	st.ptrs, st.loading = ptrs, true
	g.mu.Unlock()

	start := w.cfg.Clock()
	left := m.weights
	var cerr error
	for i, p := range ptrs {
		src := w.weightsBuf[:min(left, g.mem.pageBytes)] // sim: bytes that mean nothing
		if m.hostW != nil {
			src = m.hostW.pages[i]
		}
		left -= int64(len(src))
		if _, cerr = g.dev.CopyIn(device.LaneWeights, p, src); cerr != nil {
			break
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	st.loading = false
	if cerr != nil {
		if m.npages > 0 {
			_ = g.mem.cache.Evict(alloc.ModelID(m.id))
		}
		*st = residency{}
		return wire.StatusInternal, "weights copy failed: " + cerr.Error()
	}
	a.phases[wire.PhaseWeights] = wire.Span{StartNs: start, EndNs: w.cfg.Clock()}
	st.ready = true
	return wire.StatusOK, ""
}

// errRegister carries the status a refused registration is answered with.
type errRegister struct {
	st     wire.Status
	reason string
}

func (e *errRegister) Error() string { return e.st.String() + ": " + e.reason }

func refuse(st wire.Status, format string, args ...any) error {
	return &errRegister{st: st, reason: fmt.Sprintf(format, args...)}
}

// resolvePath returns p's real path if it lies under root (after symlinks), else an error.
func resolvePath(root, p string) (string, error) {
	if root == "" {
		return "", refuse(wire.StatusBadInput, "this worker has no model root; start it with -model-root to load models from paths")
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(root, p)
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", refuse(wire.StatusBadInput, "model root %s: %v", root, err)
	}
	real, err := filepath.EvalSymlinks(filepath.Clean(p))
	if err != nil {
		return "", refuse(wire.StatusBadInput, "model path %q: %v", p, err)
	}
	rel, err := filepath.Rel(realRoot, real)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", refuse(wire.StatusBadInput, "model path %q is outside the model root %s", p, root)
	}
	return real, nil
}

// register adds a model from a LoadModel and its payload (uploaded bytes). On the sim backend
// a model is a profile entry: uploaded bytes or a file under the model root holding one entry's
// JSON, or, with an empty upload, the entry of the worker's profile named by LoadModel.Name.
// Control path: allocates and may block (file reads, Prepare).
func (w *Worker) register(lm *wire.LoadModel, upload []byte) (*model, error) {
	name := string(lm.Name)
	w.modelsMu.RLock()
	_, idTaken := w.models[lm.ModelID]
	_, nameTaken := w.names[name]
	w.modelsMu.RUnlock()
	if idTaken || (name != "" && nameTaken) {
		return nil, refuse(wire.StatusModelExists, "model id %d or name %q already registered", lm.ModelID, name)
	}
	var mp *sim.ModelProfile
	var data []byte
	switch lm.Source {
	case wire.SourcePath:
		real, err := resolvePath(w.cfg.ModelRoot, string(lm.Path))
		if err != nil {
			return nil, err
		}
		st, err := os.Stat(real)
		if err != nil || !st.Mode().IsRegular() {
			return nil, refuse(wire.StatusBadInput, "model path %q: not a regular file", lm.Path)
		}
		if string(w.hello.Backend) != "sim" {
			// ONNX files run to hundreds of MB (ResNet-50: 102 MB); model.Load bounds what it reads.
			return w.add(w.registerCompiled(lm, real, nil))
		}
		if st.Size() > sim.MaxProfileBytes {
			return nil, refuse(wire.StatusBadInput, "model path %q: %d bytes; a sim profile entry is at most %d", lm.Path, st.Size(), sim.MaxProfileBytes)
		}
		if data, err = os.ReadFile(real); err != nil {
			return nil, refuse(wire.StatusBadInput, "cannot read model %q: %v", lm.Path, err)
		}
	case wire.SourceUpload:
		data = upload
		if string(w.hello.Backend) != "sim" {
			return w.add(w.registerCompiled(lm, "", upload))
		}
	}
	if len(data) == 0 {
		if mp = w.cfg.Profile.Model(name); mp == nil {
			return nil, refuse(wire.StatusUnknownModel, "no model %q in the worker's profile; upload its profile entry instead", name)
		}
	} else {
		var err error
		if mp, err = sim.ParseModelProfile(data); err != nil {
			return nil, refuse(wire.StatusBadInput, "model bytes are not a sim profile entry: %v", err)
		}
		if name == "" {
			name = mp.ModelName
		}
	}
	if len(mp.Batches) > wire.MaxBatchSizes {
		return nil, refuse(wire.StatusBadInput, "model %q has %d batch sizes; at most %d", name, len(mp.Batches), wire.MaxBatchSizes)
	}
	m := &model{id: lm.ModelID, name: name, batches: mp.BatchSizes(), inItem: mp.InputBytes, outItem: mp.OutputBytes,
		workspace: mp.WorkspaceBytes, weights: mp.WeightsBytes, state: make([]residency, len(w.gpus))}
	m.npages = int((mp.WeightsBytes + w.cfg.PageBytes - 1) / w.cfg.PageBytes)
	maxB := m.batches[len(m.batches)-1]
	if m.inputBytes(maxB)+m.outputBytes(maxB) > w.cfg.IOSlotBytes {
		return nil, refuse(wire.StatusNoMemory, "model %q at batch %d needs %d IO bytes; the IO slot is %d (raise -io-slot)", name, maxB, m.inputBytes(maxB)+m.outputBytes(maxB), w.cfg.IOSlotBytes)
	}
	if m.npages > w.gpus[0].mem.total {
		return nil, refuse(wire.StatusNoMemory, "model %q needs %d pages; a GPU has %d", name, m.npages, w.gpus[0].mem.total)
	}
	for _, g := range w.gpus {
		p, err := g.dev.Prepare(mp, m.batches)
		if err != nil {
			for _, q := range m.progs {
				_ = q.Close()
			}
			return nil, refuse(wire.StatusInternal, "cannot prepare %q on gpu %d: %v", name, g.idx, err)
		}
		m.progs = append(m.progs, p)
	}
	return w.add(m, nil)
}

// add makes a registered model visible to actions (or undoes its registration when its id or
// name was taken meanwhile), then carves its host IO buffers. Control path.
func (w *Worker) add(m *model, err error) (*model, error) {
	if err != nil {
		return nil, err
	}
	w.modelsMu.Lock()
	_, idTaken := w.models[m.id]
	_, nameTaken := w.names[m.name]
	if !idTaken && !nameTaken {
		w.models[m.id] = m
		w.names[m.name] = m.id
		if m.comp != nil {
			m.comp.inst++
		}
	}
	w.modelsMu.Unlock()
	if idTaken || nameTaken {
		if m.comp == nil { // a compiled model's programs belong to its compiled entry
			for _, q := range m.progs {
				_ = q.Close()
			}
		}
		m.hostW.free()
		return nil, refuse(wire.StatusModelExists, "model id %d or name %q already registered", m.id, m.name)
	}
	// Carve each batch size's host buffer now, not on the first INFER's reader.
	for _, b := range m.batches {
		if w.cfg.HostIOWarm {
			w.host.warm(int(m.inputBytes(b) + m.outputBytes(b)))
		}
	}
	return m, nil
}

func (m *model) desc(w *Worker) wire.ModelDesc {
	d := wire.ModelDesc{ModelID: m.id, Name: []byte(m.name), InputBytes: uint64(m.inItem), OutputBytes: uint64(m.outItem),
		WeightsBytes: uint64(int64(m.npages) * w.cfg.PageBytes), WeightsPages: uint32(m.npages)}
	for _, b := range m.batches {
		d.Batches = append(d.Batches, uint16(b))
	}
	return d
}

func (w *Worker) lookup(id uint32) *model {
	w.modelsMu.RLock()
	m := w.models[id]
	w.modelsMu.RUnlock()
	return m
}

func asRegister(err error) (wire.Status, string) {
	var e *errRegister
	if errors.As(err, &e) {
		return e.st, e.reason
	}
	return wire.StatusInternal, err.Error()
}

// mmapZero maps n bytes of zeros off the Go heap (never touched, so never resident).
func mmapZero(n int) ([]byte, error) {
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return nil, fmt.Errorf("cannot map %d bytes of zeros (the source of LOAD and synthesised-input copies): %w", n, err)
	}
	return b, nil
}
