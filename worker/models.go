package worker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

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
	progs     []device.Program // per GPU
	state     []*pageSet       // per GPU: the resident weights, nil when not loaded; gpu.mu
}

// pageSet is one LOAD's pages on one GPU. INFERs pin the set they run with; after UNLOAD the
// set is no longer the model's, and its pages return to the cache at the last unpin.
type pageSet struct {
	pages []int32
	ptrs  []device.Ptr
	pins  int
	live  bool
}

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

// pin returns the resident page set with a pin on it, or nil.
//
// Timing: input thread; does not allocate.
func (m *model) pin(g *gpu) *pageSet {
	g.mu.Lock()
	defer g.mu.Unlock()
	ps := m.state[g.idx]
	if ps == nil {
		return nil
	}
	ps.pins++
	return ps
}

func (m *model) unpin(g *gpu, ps *pageSet) {
	g.mu.Lock()
	ps.pins--
	if ps.pins < 0 {
		g.mu.Unlock()
		panic(fmt.Sprintf("BUG: worker: model %d on gpu %d unpinned below zero", m.id, g.idx))
	}
	free := !ps.live && ps.pins == 0
	g.mu.Unlock()
	if free {
		g.mem.freePages(ps.pages)
	}
}

func (m *model) loaded(g *gpu) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return m.state[g.idx] != nil
}

// unload drops the resident set; false when none. Pages free now, or at the last unpin.
func (m *model) unload(g *gpu) bool {
	g.mu.Lock()
	ps := m.state[g.idx]
	if ps == nil {
		g.mu.Unlock()
		return false
	}
	m.state[g.idx] = nil
	ps.live = false
	free := ps.pins == 0
	g.mu.Unlock()
	if free {
		g.mem.freePages(ps.pages)
	}
	return true
}

// load takes pages and copies the weights into them (weights thread). The model becomes
// resident only when every page has been copied, so an INFER before then is not-loaded.
func (m *model) load(w *Worker, g *gpu, a *action) (wire.Status, string) {
	if m.loaded(g) {
		a.phases[wire.PhaseWeights] = wire.Span{StartNs: a.started, EndNs: a.started}
		return wire.StatusOK, "already loaded"
	}
	pages, ok := g.mem.allocPages(make([]int32, 0, m.npages), m.npages)
	if !ok {
		return wire.StatusNoMemory, fmt.Sprintf("LOAD needs %d pages, %d free; UNLOAD first", m.npages, g.mem.freeCount())
	}
	ps := &pageSet{pages: pages, ptrs: make([]device.Ptr, len(pages)), live: true}
	start := w.cfg.Clock()
	left := m.weights
	for i, p := range pages {
		ps.ptrs[i] = g.mem.pagePtr(p)
		n := min(left, g.mem.pageBytes)
		left -= n
		if _, err := g.dev.CopyIn(device.LaneWeights, ps.ptrs[i], w.weightsBuf[:n]); err != nil {
			g.mem.freePages(pages)
			return wire.StatusInternal, "weights copy failed: " + err.Error()
		}
	}
	a.phases[wire.PhaseWeights] = wire.Span{StartNs: start, EndNs: w.cfg.Clock()}
	g.mu.Lock()
	m.state[g.idx] = ps
	g.mu.Unlock()
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
		if err != nil || !st.Mode().IsRegular() || st.Size() > sim.MaxProfileBytes {
			return nil, refuse(wire.StatusBadInput, "model path %q: not a regular file of at most %d bytes", lm.Path, sim.MaxProfileBytes)
		}
		if data, err = os.ReadFile(real); err != nil {
			return nil, refuse(wire.StatusBadInput, "cannot read model %q: %v", lm.Path, err)
		}
	case wire.SourceUpload:
		data = upload
	}
	if w.hello.Backend == nil || string(w.hello.Backend) != "sim" {
		return nil, refuse(wire.StatusBadInput, "the %s backend cannot register models yet: only sim models (profile entries) are supported", w.hello.Backend)
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
		workspace: mp.WorkspaceBytes, weights: mp.WeightsBytes, state: make([]*pageSet, len(w.gpus))}
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
	w.modelsMu.Lock()
	defer w.modelsMu.Unlock()
	if _, taken := w.models[m.id]; taken {
		return nil, refuse(wire.StatusModelExists, "model id %d already registered", m.id)
	}
	if _, taken := w.names[m.name]; taken {
		return nil, refuse(wire.StatusModelExists, "model name %q already registered", m.name)
	}
	w.models[m.id] = m
	w.names[m.name] = m.id
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
		return nil, fmt.Errorf("cannot map a %d-byte weights source: %w", n, err)
	}
	return b, nil
}
