package worker

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/clockwork-go/clockwork/alloc"
	"github.com/clockwork-go/clockwork/internal/pinned"
	"github.com/clockwork-go/clockwork/runtime/device"
	rtmodel "github.com/clockwork-go/clockwork/runtime/model"
	"github.com/clockwork-go/clockwork/wire"
)

// Built is what Prepare gets from a worker whose Config.Compile is nil: the model as
// runtime/model built it (plans per batch over one weight layout in the worker's page size).
// A backend that runs built models accepts any device.Model with this method, so it needs no
// import of package worker:
//
//	if b, ok := m.(interface{ Built() *model.Model }); ok { ... } // model: runtime/model
type Built struct{ M *rtmodel.Model }

// Name is the model's name.
func (b Built) Name() string { return b.M.Name }

// Built returns the built model.
func (b Built) Built() *rtmodel.Model { return b.M }

// compiled is one model file built and prepared on every GPU: the code that instances of the
// same file share (issue 11: "share nothing but the compiled code"). Each registered instance
// has its own host weight pages, cache residencies and model id.
//
// # Concurrency
//
// Immutable once in Worker.compiled (under modelsMu).
type compiled struct {
	key   string
	built *rtmodel.Model
	progs []device.Program // per GPU
	runs  []alloc.Run      // weight runs the cache must keep contiguous
	io    []batchIO
	inst  int          // instances registered from it
	hostW *hostWeights // with Config.ShareHostWeights: the one copy its instances share
}

// batchIO is one batch size's sizes, from the prepared program.
type batchIO struct {
	batch         int
	in, out, work int64
}

// compileKey identifies a model file: its real path with size and modification time, or an
// upload's SHA-256, plus the batch sizes.
func compileKey(real string, upload []byte, batches []int) string {
	var k string
	if real != "" {
		st, err := os.Stat(real)
		if err != nil {
			return ""
		}
		k = fmt.Sprintf("path:%s:%d:%d", real, st.Size(), st.ModTime().UnixNano())
	} else {
		h := sha256.Sum256(upload)
		k = "upload:" + hex.EncodeToString(h[:])
	}
	return fmt.Sprintf("%s:%v", k, batches)
}

// compile builds and prepares an ONNX model (from the file real, or uploaded bytes) on every
// GPU, or returns the one compiled from the same file before. Control path: allocates, may take
// seconds (Build, Prepare); one compile at a time (compMu), so N instances registered at once
// compile their file once. Registration goroutines.
func (w *Worker) compile(name, real string, upload []byte) (*compiled, error) {
	key := compileKey(real, upload, w.cfg.Batches)
	w.compMu.Lock()
	defer w.compMu.Unlock()
	w.modelsMu.RLock()
	c := w.compiled[key]
	w.modelsMu.RUnlock()
	if c != nil && key != "" {
		return c, nil
	}
	var g *rtmodel.Graph
	var err error
	if real != "" {
		g, err = rtmodel.Load(real)
	} else {
		g, err = rtmodel.Parse(name, upload, nil)
	}
	if err != nil {
		return nil, refuse(wire.StatusBadInput, "cannot read model %q: %v", name, err)
	}
	built, err := rtmodel.Build(g, w.cfg.Batches, w.cfg.PageBytes)
	if err != nil {
		return nil, refuse(wire.StatusBadInput, "cannot build model %q at batches %v: %v", name, w.cfg.Batches, err)
	}
	var dm device.Model = Built{M: built}
	if w.cfg.Compile != nil {
		if dm, err = w.cfg.Compile(built); err != nil {
			return nil, refuse(wire.StatusBadInput, "cannot compile model %q for %s: %v", name, w.hello.Backend, err)
		}
	}
	c = &compiled{key: key, built: built}
	if l := built.Layout; l != nil {
		c.runs = l.Runs
		if l.Packed && l.Pages > 0 {
			c.runs = []alloc.Run{{First: 0, Pages: l.Pages}}
		}
	}
	for _, g := range w.gpus {
		p, err := g.dev.Prepare(dm, w.cfg.Batches)
		if err != nil {
			c.close()
			return nil, refuse(wire.StatusInternal, "cannot prepare %q on gpu %d: %v", name, g.idx, err)
		}
		c.progs = append(c.progs, p)
	}
	p := c.progs[0]
	for _, b := range p.Batches() {
		c.io = append(c.io, batchIO{batch: b, in: p.InputBytes(b), out: p.OutputBytes(b), work: p.WorkspaceBytes(b)})
	}
	if len(c.io) == 0 || len(c.io) > wire.MaxBatchSizes {
		c.close()
		return nil, refuse(wire.StatusBadInput, "model %q prepared at %d batch sizes; want 1 to %d", name, len(c.io), wire.MaxBatchSizes)
	}
	// The wire describes a model by its bytes per item, so the sizes must scale with the batch.
	b0 := c.io[0]
	for _, x := range c.io {
		if b0.in%int64(b0.batch) != 0 || b0.out%int64(b0.batch) != 0 || x.in != b0.in/int64(b0.batch)*int64(x.batch) || x.out != b0.out/int64(b0.batch)*int64(x.batch) {
			c.close()
			return nil, refuse(wire.StatusBadInput, "model %q: input/output bytes %d/%d at batch %d are not %d× those at batch %d; the batch must be the leading dimension", name, x.in, x.out, x.batch, x.batch, b0.batch)
		}
	}
	if w.cfg.ShareHostWeights {
		hw, err := w.newHostWeights(built)
		if err != nil {
			c.close()
			return nil, err
		}
		hw.shared, c.hostW = true, hw
	}
	if key == "" {
		return c, nil
	}
	w.modelsMu.Lock()
	w.compiled[key] = c
	w.modelsMu.Unlock()
	return c, nil
}

func (c *compiled) close() {
	for _, p := range c.progs {
		_ = p.Close()
	}
	c.progs = nil
	if c.hostW != nil {
		c.hostW.shared = false
		c.hostW.free()
	}
}

// hostWeights is one instance's weights in host memory (or, shared, every instance's of one
// file), laid out in pages as the model's layout says: pinned (and registered for DMA) when the
// memlock limit allows, else pageable on devices that need no registration. Read-only once
// built.
type hostWeights struct {
	pb     *pinned.Buffer
	m      []byte // pageable fallback mapping
	pages  [][]byte
	shared bool // owned by a compiled entry: free is a no-op for its instances
}

// newHostWeights lays built's weights out in pages of pageBytes. Control path.
func (w *Worker) newHostWeights(built *rtmodel.Model) (*hostWeights, error) {
	l := built.Layout
	if l == nil || l.Pages == 0 {
		return &hostWeights{}, nil
	}
	if l.PageSize != w.cfg.PageBytes {
		return nil, fmt.Errorf("BUG: worker: model %q laid out in %d-byte pages, the cache's are %d", built.Name, l.PageSize, w.cfg.PageBytes)
	}
	n := int64(l.Pages) * l.PageSize
	hw := &hostWeights{}
	var all []byte
	if pb, err := w.host.pinned.Alloc(n, pinned.Weights); err == nil {
		hw.pb, all = pb, pb.Bytes()
	} else {
		if w.host.pinnedOnly {
			return nil, refuse(wire.StatusNoMemory, "cannot pin %d bytes of weights for %q: %v", n, built.Name, err)
		}
		m, merr := unix.Mmap(-1, 0, int(n), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
		if merr != nil {
			return nil, refuse(wire.StatusNoMemory, "cannot map %d bytes of weights for %q: %v", n, built.Name, merr)
		}
		hw.m, all = m, m
	}
	for i, t := range built.Weights {
		pl := l.Placements[i]
		off := int64(pl.Page)*l.PageSize + pl.Offset
		if off < 0 || off+t.Bytes() > n {
			hw.free()
			return nil, fmt.Errorf("BUG: worker: model %q weight %d at %d+%d outside its %d-byte pages", built.Name, i, off, t.Bytes(), n)
		}
		t.AppendBytes(all[off:off])
	}
	hw.pages = make([][]byte, l.Pages)
	for i := range hw.pages {
		hw.pages[i] = all[int64(i)*l.PageSize:][:l.PageSize:l.PageSize]
	}
	return hw, nil
}

func (hw *hostWeights) free() {
	if hw == nil || hw.shared {
		return
	}
	if hw.pb != nil {
		_ = hw.pb.Free()
	}
	if hw.m != nil {
		_ = unix.Munmap(hw.m)
	}
	hw.pb, hw.m, hw.pages = nil, nil, nil
}

// registerCompiled registers an instance of an ONNX model on a compiling backend (cpu, cuda):
// from a file under the model root or uploaded ONNX bytes. Instances of one file share its
// compiled programs (compile) and have their own host weight pages, unless
// Config.ShareHostWeights.
func (w *Worker) registerCompiled(lm *wire.LoadModel, real string, upload []byte) (*model, error) {
	name := string(lm.Name)
	if name == "" {
		if real == "" {
			return nil, refuse(wire.StatusBadInput, "an uploaded model needs a name")
		}
		name = strings.TrimSuffix(filepath.Base(real), filepath.Ext(real))
	}
	if real == "" && len(upload) == 0 {
		return nil, refuse(wire.StatusBadInput, "the %s backend registers ONNX models from a path under the model root or uploaded bytes; an empty upload names nothing", w.hello.Backend)
	}
	c, err := w.compile(name, real, upload)
	if err != nil {
		return nil, err
	}
	hw := c.hostW
	if hw == nil {
		if hw, err = w.newHostWeights(c.built); err != nil {
			return nil, err
		}
	}
	m := &model{id: lm.ModelID, name: name, comp: c, io: c.io, hostW: hw, runs: c.runs, progs: c.progs, state: make([]residency, len(w.gpus))}
	for _, x := range c.io {
		m.batches = append(m.batches, x.batch)
		m.workspace = max(m.workspace, x.work)
	}
	m.inItem, m.outItem = c.io[0].in/int64(c.io[0].batch), c.io[0].out/int64(c.io[0].batch)
	if l := c.built.Layout; l != nil {
		m.npages, m.weights = l.Pages, int64(l.Pages)*l.PageSize
	}
	slices.Sort(m.batches)
	maxB := m.batches[len(m.batches)-1]
	switch io := m.inputBytes(maxB) + m.outputBytes(maxB); {
	case io > w.cfg.IOSlotBytes:
		err = refuse(wire.StatusNoMemory, "model %q at batch %d needs %d IO bytes; the IO slot is %d (raise -io-slot-mib or lower -batches)", name, maxB, io, w.cfg.IOSlotBytes)
	case m.workspace > w.cfg.WorkspaceBytes:
		err = refuse(wire.StatusNoMemory, "model %q needs a %d-byte workspace; the arena is %d (raise -workspace-mib or lower -batches)", name, m.workspace, w.cfg.WorkspaceBytes)
	case m.npages > w.gpus[0].mem.total:
		err = refuse(wire.StatusNoMemory, "model %q needs %d pages; a GPU has %d", name, m.npages, w.gpus[0].mem.total)
	}
	if err != nil {
		hw.free()
		return nil, err
	}
	return m, nil
}
