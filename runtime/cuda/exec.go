package cuda

// The model executor: Prepare turns runtime/model's per-batch plans into one CUDA graph per
// batch size (cuDNN convolutions with an algorithm chosen by timing candidates, cuBLAS GEMMs,
// our kernels for the rest), and Run launches it with the weight pages, input, output and
// workspace the caller gives.
//
// Re-binding. A captured graph holds raw device addresses inside its kernels' arguments,
// including those of cuDNN's and cuBLAS's kernels, whose argument layouts are not ours. So
// Prepare captures every batch twice, with two sets of fake base addresses (one per weight
// page, input, output, workspace) that differ by a fixed shift, and diffs the kernel arguments
// of the two graphs word by word (cuFuncGetParamInfo gives each argument's size): every word
// that differs is an address derived from one base, and the shift says which base and at what
// offset. Run compares the bases it is given with those the graph points at and, where one
// changed, rewrites just the affected kernel nodes of the instantiated graph
// (cuGraphExecKernelNodeSetParams): no re-capture, no allocation. The graph never runs with
// the fake addresses: the first Run always re-binds.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"
	"unsafe"

	"github.com/clockwork-go/clockwork/runtime/device"
	"github.com/clockwork-go/clockwork/runtime/model"
)

// Fake bases for the two captures: base k is relocBase + k·relocSlot in the first capture and
// relocShift more in the second. Offsets within a base must stay below relocShift.
const (
	relocBase  = uint64(1) << 46
	relocSlot  = uint64(1) << 38
	relocShift = uint64(1) << 37
)

// builtModel is what a worker hands Prepare (worker.Built), without importing package worker.
type builtModel interface{ Built() *model.Model }

// PrepareOptions are per-model options of the executor.
type PrepareOptions struct {
	// Precision of convolutions and GEMMs. Only FP32 is implemented.
	Precision Precision
	// ConvWorkspaceBytes bounds a convolution algorithm's scratch (0: the device's 64 MiB
	// cuBLAS/cuDNN workspace, which is also the maximum).
	ConvWorkspaceBytes int64
	// MeasureAlgos times every cuDNN algorithm candidate at prepare and keeps the fastest (the
	// heuristic's first choice otherwise).
	MeasureAlgos bool
	// FuseConv runs a convolution with its bias, ReLU and residual Add as one cuDNN call
	// (cudnnConvolutionBiasActivationForward) where cuDNN and the memory plan allow.
	FuseConv bool
}

// DefaultPrepareOptions are what Prepare uses: fp32, measured algorithms.
func DefaultPrepareOptions() PrepareOptions {
	return PrepareOptions{Precision: FP32, MeasureAlgos: true, FuseConv: true}
}

// Program is a model prepared on one device: a CUDA graph per batch size.
type Program struct {
	d         *Device
	name      string
	pageBytes int64
	nPages    int
	weights   int64
	plans     []*batchProg
	convs     []*convPlan
	fused     []*convFused
	// PrepareStats: what Prepare measured and chose (for the profile and the docs).
	Stats PrepareStats
}

// PrepareStats describes one Prepare.
type PrepareStats struct {
	Kernels   []int // kernel nodes per batch graph
	Relocs    []int // kernel nodes holding relocatable addresses, per batch graph
	Convs     int   // convolutions prepared (all batches)
	AlgoSwaps int   // convolutions running other than the heuristic's first choice
	// GraphNs is, per batch graph, the device time of one run of each graph variant
	// (VariantNames; -1 not timed) and GraphPick the variant kept (the fastest).
	GraphNs   [][numVariants]int64
	GraphPick []string
	// DepthwiseOurs counts depthwise convolutions run by our kernel (measured faster than cuDNN).
	DepthwiseOurs int
	// FusedConvs ran as cudnnConvolutionBiasActivationForward, FusedResiduals of them with the
	// residual Add (and its ReLU) folded in.
	FusedConvs, FusedResiduals int
}

var _ device.Program = (*Program)(nil)

// batchProg is one batch size's graph and how to re-point it.
type batchProg struct {
	batch         int
	in, out, work int64
	gr            *graph
	relocs        []nodeReloc
	bound         []uint64 // bases the graph points at: pages..., input, output, workspace
	cur           []uint64 // bases the steps read while capturing
	steps         []step
	stepOps       []string // each step's op, for Breakdown
	consts        uint64   // device memory for derived constants (BN coefficients, gather descriptors)
}

// step enqueues one operation on a stream, reading its addresses from the batch's cur bases.
type step func(s uintptr) error

// nodeReloc is one kernel node whose arguments hold addresses to rewrite.
type nodeReloc struct {
	node    uintptr
	params  *kernelNodeParams // KernelParams points at ptrs
	buf     []byte            // the argument bytes
	ptrs    []uintptr         // one per argument, into buf
	patches []patch
}

// patch is one address word in a node's arguments: buf[at:at+8] = bases[base] + off.
type patch struct {
	at   int
	base int
	off  uint64
}

// prepState is what Prepare uses on the device: its own stream, caller, kernel launcher and
// library handles, so it never touches the exec lane's (Prepare runs while INFERs execute).
type prepState struct {
	stream   uintptr
	c        *caller
	k        *kernelSet
	dnn      *dnnHandle
	blas     *blasHandle
	measure  uint64 // scratch for timing algorithms
	measureN int64
	ev0, ev1 uintptr
	ms       *float32
	warmAt   time.Time // when warmUp last ran
}

// Prepare compiles a runtime/model model (worker.Built, or anything with a Built method) at the
// given batch sizes with DefaultPrepareOptions. Control path: seconds for a large model.
func (d *Device) Prepare(m device.Model, batches []int) (device.Program, error) {
	p, err := d.PrepareModel(m, batches, DefaultPrepareOptions())
	if err != nil {
		return nil, err
	}
	return p, nil
}

// PrepareModel is Prepare with options.
func (d *Device) PrepareModel(m device.Model, batches []int, opt PrepareOptions) (*Program, error) {
	if m == nil {
		return nil, fmt.Errorf("cannot prepare a nil model on cuda device %d", d.ord)
	}
	bm, ok := m.(builtModel)
	if !ok {
		return nil, fmt.Errorf("cannot prepare model %q on cuda device %d: type %T is not a built model (want runtime/model's, e.g. worker.Built)", m.Name(), d.ord, m)
	}
	mm := bm.Built()
	if mm == nil {
		return nil, fmt.Errorf("cannot prepare model %q on cuda device %d: no built model", m.Name(), d.ord)
	}
	if opt.Precision != FP32 {
		return nil, fmt.Errorf("cannot prepare model %q at %s: only fp32 is implemented: %w", mm.Name, opt.Precision, ErrNotImplemented)
	}
	if opt.ConvWorkspaceBytes <= 0 || opt.ConvWorkspaceBytes > blasWorkspaceBytes {
		opt.ConvWorkspaceBytes = blasWorkspaceBytes
	}
	d.prepMu.Lock()
	defer d.prepMu.Unlock()
	ps, err := d.prepState()
	if err != nil {
		return nil, fmt.Errorf("cannot prepare model %q: %w", mm.Name, err)
	}
	p := &Program{d: d, name: mm.Name}
	if l := mm.Layout; l != nil {
		if l.Packed {
			return nil, fmt.Errorf("cannot prepare model %q: packed weight layouts need VMM mapping, not implemented; build with alloc.NewLayout: %w", mm.Name, ErrNotImplemented)
		}
		p.pageBytes, p.nPages = l.PageSize, l.Pages
		p.weights = int64(l.Pages) * l.PageSize
	}
	ok = false
	defer func() {
		if !ok {
			p.Close()
		}
	}()
	for _, b := range slices.Sorted(slices.Values(batches)) {
		var plan *model.Plan
		for _, pl := range mm.Plans {
			if pl.Batch == b {
				plan = pl
			}
		}
		if plan == nil {
			return nil, fmt.Errorf("cannot prepare model %q at batch %d: the model was built without that batch size", mm.Name, b)
		}
		bp, err := p.prepareBatch(ps, plan, opt)
		if err != nil {
			return nil, fmt.Errorf("cannot prepare model %q at batch %d: %w", mm.Name, b, err)
		}
		p.plans = append(p.plans, bp)
	}
	if len(p.plans) == 0 {
		return nil, fmt.Errorf("cannot prepare model %q: no batch sizes", mm.Name)
	}
	ok = true
	return p, nil
}

// prepState returns the device's prepare-time machinery, creating it on first use. prepMu held.
func (d *Device) prepState() (*prepState, error) {
	if d.prep != nil {
		return d.prep, nil
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := d.drv.setCurrent(nil, d.ctx); err != nil {
		return nil, err
	}
	_, greatest, err := d.drv.streamPriorityRange()
	if err != nil {
		return nil, err
	}
	ps := &prepState{c: newCaller(), ms: new(float32)}
	if ps.stream, err = d.drv.streamCreate(greatest); err != nil {
		return nil, err
	}
	ps.k = &kernelSet{drv: d.drv, fn: d.k.fn, args: newKernelArgs(), sms: d.k.sms, c: ps.c}
	dl, err := d.b.dnnLib()
	if err != nil {
		return nil, err
	}
	if ps.dnn, err = newDNN(dl, ps.c, ps.stream); err != nil {
		return nil, err
	}
	bl, err := d.b.blasLib()
	if err != nil {
		return nil, err
	}
	// The captured GEMMs use the device's workspace: graphs run only on the exec stream, one at
	// a time, so they share it with the exec lane's handle.
	if ps.blas, err = newBLAS(bl, ps.c, ps.stream, d.blasWs, blasWorkspaceBytes); err != nil {
		return nil, err
	}
	if ps.ev0, err = d.drv.eventCreate(cuEventDefault); err != nil {
		return nil, err
	}
	if ps.ev1, err = d.drv.eventCreate(cuEventDefault); err != nil {
		return nil, err
	}
	d.prep = ps
	return ps, nil
}

// closePrep frees the prepare machinery. The context is current.
func (ps *prepState) close(drv *driver) error {
	var errs []error
	if ps.dnn != nil {
		errs = append(errs, ps.dnn.close())
	}
	if ps.blas != nil {
		errs = append(errs, ps.blas.close())
	}
	if ps.measure != 0 {
		errs = append(errs, drv.memFree(ps.measure))
	}
	for _, e := range []uintptr{ps.ev0, ps.ev1} {
		if e != 0 {
			errs = append(errs, drv.eventDestroy(e))
		}
	}
	if ps.stream != 0 {
		errs = append(errs, drv.streamDestroy(ps.stream))
	}
	return errors.Join(errs...)
}

// numBases is the number of relocatable bases: pages, input, output, workspace.
func (p *Program) numBases() int { return p.nPages + 3 }

func (p *Program) baseIn() int   { return p.nPages }
func (p *Program) baseOut() int  { return p.nPages + 1 }
func (p *Program) baseWork() int { return p.nPages + 2 }

func fakeBases(n int, shift uint64) []uint64 {
	b := make([]uint64, n)
	for k := range b {
		b[k] = relocBase + uint64(k)*relocSlot + shift
	}
	return b
}

// prepareBatch compiles one plan, captures it twice and derives its relocations.
func (p *Program) prepareBatch(ps *prepState, plan *model.Plan, opt PrepareOptions) (*batchProg, error) {
	g := plan.Graph
	if g == nil || len(g.Inputs) != 1 || len(g.Outputs) != 1 {
		return nil, fmt.Errorf("plan must have one input and one output")
	}
	bp := &batchProg{batch: plan.Batch, work: plan.WorkspaceBytes,
		in: g.Values[g.Inputs[0]].Bytes(), out: g.Values[g.Outputs[0]].Bytes()}
	if bp.work >= int64(relocShift) || p.pageBytes*int64(max(p.nPages, 1)) >= int64(relocShift) {
		return nil, fmt.Errorf("workspace %d bytes or weights too large to relocate", bp.work)
	}
	c := &compiler{p: p, ps: ps, plan: plan, bp: bp, opt: opt}
	c0 := len(p.convs)
	if err := c.compile(); err != nil {
		return nil, err
	}
	if len(bp.steps) == 0 {
		return nil, fmt.Errorf("plan has no steps")
	}
	if err := c.upload(); err != nil {
		return nil, err
	}
	d := p.d
	run := func(s uintptr) error {
		for _, st := range bp.steps {
			if err := st(s); err != nil {
				return err
			}
		}
		return nil
	}
	if opt.MeasureAlgos {
		ns, pick, err := p.chooseGraph(ps, bp, p.convs[c0:], run)
		if err != nil {
			return nil, err
		}
		p.Stats.GraphNs = append(p.Stats.GraphNs, ns)
		p.Stats.GraphPick = append(p.Stats.GraphPick, VariantNames[pick])
	}
	p.Stats.AlgoSwaps = 0
	for _, cp := range p.convs {
		if cp.Algo != cp.heurAlgo {
			p.Stats.AlgoSwaps++
		}
	}
	bp.cur = fakeBases(p.numBases(), 0)
	gr, err := d.captureOn(ps.stream, run)
	if err != nil {
		return nil, err
	}
	bp.gr = gr
	bp.bound = slices.Clone(bp.cur)
	bp.cur = fakeBases(p.numBases(), relocShift)
	g2, err := d.captureRaw(ps.stream, run)
	if err != nil {
		return nil, err
	}
	defer d.drv.graphDestroy(g2)
	nodes2, err := d.drv.graphKernelNodes(g2)
	if err != nil {
		return nil, err
	}
	if err := p.diff(bp, nodes2); err != nil {
		return nil, err
	}
	p.Stats.Kernels = append(p.Stats.Kernels, len(gr.nodes))
	p.Stats.Relocs = append(p.Stats.Relocs, len(bp.relocs))
	return bp, nil
}

// captureRaw captures fn on stream s into a graph without instantiating it. Control path.
func (d *Device) captureRaw(s uintptr, fn func(stream uintptr) error) (uintptr, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := d.drv.setCurrent(nil, d.ctx); err != nil {
		return 0, err
	}
	if err := d.drv.beginCapture(s); err != nil {
		return 0, err
	}
	ferr := fn(s)
	g, err := d.drv.endCapture(s)
	if ferr != nil || err != nil {
		if g != 0 {
			d.drv.graphDestroy(g)
		}
		return 0, fmt.Errorf("cannot capture graph: %w", errors.Join(ferr, err))
	}
	return g, nil
}

// diff compares the kernel arguments of bp's graph (fake bases) with those of a second capture
// (bases shifted) and records every address word as a patch.
func (p *Program) diff(bp *batchProg, nodes2 []uintptr) error {
	d := p.d
	nodes1 := bp.gr.nodes
	if len(nodes1) != len(nodes2) {
		return fmt.Errorf("BUG: two captures of one plan have %d and %d kernel nodes", len(nodes1), len(nodes2))
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := d.drv.setCurrent(nil, d.ctx); err != nil {
		return err
	}
	nb := uint64(p.numBases())
	for i := range nodes1 {
		var a, b kernelNodeParams
		if err := d.drv.kernelNodeGetParams(nodes1[i], &a); err != nil {
			return err
		}
		if err := d.drv.kernelNodeGetParams(nodes2[i], &b); err != nil {
			return err
		}
		if a.Func != b.Func || a.Kern != b.Kern {
			return fmt.Errorf("two captures of one plan differ at kernel node %d", i)
		}
		sizes, _, err := d.drv.paramInfo(a.Func, a.Kern)
		if err != nil {
			return fmt.Errorf("kernel node %d: %w", i, err)
		}
		if a.KernelParams == 0 && len(sizes) > 0 {
			return fmt.Errorf("kernel node %d passes its arguments as 'extra', which cannot be re-bound", i)
		}
		total := 0
		for _, s := range sizes {
			total += s
		}
		nr := nodeReloc{node: nodes1[i], buf: make([]byte, total+8), ptrs: make([]uintptr, len(sizes)+1)}
		at := 0
		for j, sz := range sizes {
			pa, pb := argPtr(a.KernelParams, j), argPtr(b.KernelParams, j)
			ba := unsafe.Slice((*byte)(pa), sz)
			bb := unsafe.Slice((*byte)(pb), sz)
			copy(nr.buf[at:], ba)
			for w := 0; w+8 <= sz; w += 8 {
				va, vb := binary.LittleEndian.Uint64(ba[w:]), binary.LittleEndian.Uint64(bb[w:])
				if va == vb {
					continue
				}
				k := (va - relocBase) / relocSlot
				off := va - relocBase - k*relocSlot
				if va < relocBase || vb-va != relocShift || k >= nb || off >= relocShift {
					return fmt.Errorf("kernel node %d argument %d word %d differs between captures (%#x, %#x) but is no relocatable address", i, j, w/8, va, vb)
				}
				nr.patches = append(nr.patches, patch{at: at + w, base: int(k), off: off})
			}
			at += sz
		}
		if len(nr.patches) == 0 {
			continue
		}
		at = 0
		for j, sz := range sizes {
			nr.ptrs[j] = uintptr(unsafe.Pointer(&nr.buf[at]))
			at += max(sz, 0)
		}
		np := a
		np.KernelParams = uintptr(unsafe.Pointer(&nr.ptrs[0]))
		np.Extra = 0
		nr.params = &np
		bp.relocs = append(bp.relocs, nr)
	}
	return nil
}

// rebind points bp's graph at bases, rewriting only the nodes that read a changed base.
// Timing: exec thread; no allocation; ~1 µs per rewritten node.
func (p *Program) rebind(bp *batchProg, bases []uint64, c *caller) error {
	for i := range bp.relocs {
		nr := &bp.relocs[i]
		changed := false
		for _, pt := range nr.patches {
			if bases[pt.base] != bp.bound[pt.base] {
				changed = true
				break
			}
		}
		if !changed {
			continue
		}
		for _, pt := range nr.patches {
			binary.LittleEndian.PutUint64(nr.buf[pt.at:], bases[pt.base]+pt.off)
		}
		if r := c.call(p.d.drv.cuGraphExecKernelNodeSetParams, bp.gr.exec, nr.node, uintptr(unsafe.Pointer(nr.params))); r != 0 {
			return p.d.drv.check("cuGraphExecKernelNodeSetParams_v2", r)
		}
	}
	copy(bp.bound, bases)
	return nil
}

func (p *Program) batch(b int) *batchProg {
	for _, bp := range p.plans {
		if bp.batch == b {
			return bp
		}
	}
	return nil
}

// Batches are the prepared batch sizes, ascending.
func (p *Program) Batches() []int {
	out := make([]int, len(p.plans))
	for i, bp := range p.plans {
		out[i] = bp.batch
	}
	return out
}

// InputBytes is one batch's input size.
func (p *Program) InputBytes(b int) int64 {
	if bp := p.batch(b); bp != nil {
		return bp.in
	}
	return 0
}

// OutputBytes is one batch's output size.
func (p *Program) OutputBytes(b int) int64 {
	if bp := p.batch(b); bp != nil {
		return bp.out
	}
	return 0
}

// WorkspaceBytes is one batch's activation workspace.
func (p *Program) WorkspaceBytes(b int) int64 {
	if bp := p.batch(b); bp != nil {
		return bp.work
	}
	return 0
}

// WeightBytes is the size of the model's weight pages.
func (p *Program) WeightBytes() int64 { return p.weights }

// PageBytes is the weight page size and Pages the number of pages Run wants.
func (p *Program) PageBytes() int64 { return p.pageBytes }

// Pages is the number of weight pages.
func (p *Program) Pages() int { return p.nPages }

// Run executes one batch: re-binds the graph if any address differs from the last Run's, then
// launches it on the exec lane and waits. The span is the device time between events recorded
// around the graph.
// Timing: exec thread; no allocation; ~10 µs host time plus ~1 µs per re-bound node.
func (p *Program) Run(batch int, pages []device.Ptr, in, out, workspace device.Ptr) (device.Span, error) {
	bp := p.batch(batch)
	if bp == nil {
		return device.Span{}, fmt.Errorf("cannot run model %q at batch %d: not prepared (batches %v)", p.name, batch, p.Batches())
	}
	if len(pages) != p.nPages {
		return device.Span{}, fmt.Errorf("cannot run model %q: %d weight pages given, want %d", p.name, len(pages), p.nPages)
	}
	d := p.d
	for _, pg := range pages {
		if !d.inRegion(pg, int(p.pageBytes)) {
			return device.Span{}, fmt.Errorf("cannot run model %q: weight page %#x outside the region", p.name, uint64(pg))
		}
	}
	if !d.inRegion(in, int(bp.in)) || !d.inRegion(out, int(bp.out)) || !d.inRegion(workspace, int(bp.work)) {
		return device.Span{}, fmt.Errorf("cannot run model %q: input, output or workspace outside the region", p.name)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	s, ls, err := d.begin(device.LaneExec)
	if err != nil {
		return device.Span{}, err
	}
	same := uint64(in) == bp.bound[p.baseIn()] && uint64(out) == bp.bound[p.baseOut()] && uint64(workspace) == bp.bound[p.baseWork()]
	for i := 0; same && i < len(pages); i++ {
		same = uint64(pages[i]) == bp.bound[i]
	}
	if !same {
		bases := bp.cur // scratch: captures are over
		for i, pg := range pages {
			bases[i] = uint64(pg)
		}
		bases[p.baseIn()], bases[p.baseOut()], bases[p.baseWork()] = uint64(in), uint64(out), uint64(workspace)
		if err := p.rebind(bp, bases, ls.c); err != nil {
			return device.Span{}, err
		}
	}
	if err := d.drv.graphLaunch(ls.c, bp.gr.exec, s); err != nil {
		return device.Span{}, err
	}
	return d.finish(s, ls)
}

// Bind re-points the graph of batch b at the given addresses without running it (what a LOAD
// thread may do ahead of the INFER). Same thread rules as Run.
func (p *Program) Bind(batch int, pages []device.Ptr, in, out, workspace device.Ptr) error {
	bp := p.batch(batch)
	if bp == nil || len(pages) != p.nPages {
		return fmt.Errorf("cannot bind model %q at batch %d with %d pages", p.name, batch, len(pages))
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := p.d.drv.setCurrent(nil, p.d.ctx); err != nil {
		return err
	}
	bases := bp.cur
	for i, pg := range pages {
		bases[i] = uint64(pg)
	}
	bases[p.baseIn()], bases[p.baseOut()], bases[p.baseWork()] = uint64(in), uint64(out), uint64(workspace)
	return p.rebind(bp, bases, p.d.lanes[device.LaneExec].c)
}

// Close frees the graphs, descriptors and constants. Control path.
func (p *Program) Close() error {
	var errs []error
	for _, bp := range p.plans {
		if bp.gr != nil {
			errs = append(errs, bp.gr.close())
			bp.gr = nil
		}
	}
	d := p.d
	for _, f := range p.fused {
		f.close()
	}
	p.fused = nil
	for _, cp := range p.convs {
		cp.close()
	}
	p.convs = nil
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := d.drv.setCurrent(nil, d.ctx); err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, bp := range p.plans {
		if bp.consts != 0 {
			errs = append(errs, d.drv.memFree(bp.consts))
			bp.consts = 0
		}
	}
	p.plans = nil
	return errors.Join(errs...)
}

// paramInfo returns the sizes and offsets of a kernel's arguments (cuFuncGetParamInfo, or
// cuKernelGetParamInfo for a library kernel). Control path.
func (d *driver) paramInfo(fn, kern uintptr) (sizes, offs []int, err error) {
	if err := d.loadParamInfo(); err != nil {
		return nil, nil, err
	}
	get, h := d.cuFuncGetParamInfo, fn
	if fn == 0 {
		get, h = d.cuKernelGetParamInfo, kern
	}
	for i := 0; i < 4096; i++ {
		var off, size uintptr
		r := call(get, h, uintptr(i), uintptr(unsafe.Pointer(&off)), uintptr(unsafe.Pointer(&size)))
		if r != 0 {
			if cuResult(int32(r)) == cuErrorInvalidValue {
				return sizes, offs, nil
			}
			return nil, nil, d.check("cuFuncGetParamInfo", r)
		}
		sizes = append(sizes, int(size))
		offs = append(offs, int(off))
	}
	return nil, nil, fmt.Errorf("kernel has more than 4096 arguments")
}

var paramInfoMu sync.Mutex

func (d *driver) loadParamInfo() error {
	paramInfoMu.Lock()
	defer paramInfoMu.Unlock()
	if d.cuFuncGetParamInfo != 0 {
		return nil
	}
	return d.lib.symbols(map[string]*uintptr{
		"cuFuncGetParamInfo":   &d.cuFuncGetParamInfo,
		"cuKernelGetParamInfo": &d.cuKernelGetParamInfo,
	})
}

// argPtr returns the j-th pointer of a driver-owned void** argument array (C memory, so the
// uintptr is not a Go pointer and converting it is safe).
func argPtr(params uintptr, j int) unsafe.Pointer {
	arr := *(*unsafe.Pointer)(unsafe.Pointer(&params))
	return *(*unsafe.Pointer)(unsafe.Add(arr, j*8))
}

// OpTime is the device time of one kind of step in a Breakdown.
type OpTime struct {
	Op    string
	Steps int
	Ns    int64
}

// Breakdown runs batch b's steps one at a time on the prepare stream (not as the graph), with
// events around each, and sums the device time per op (the last of 3 passes, so clocks are up).
// Diagnostic; control path; serializes with Prepare. Step times include each launch's gap, so
// the total exceeds the graph's.
func (p *Program) Breakdown(b int, pages []device.Ptr, in, out, workspace device.Ptr) ([]OpTime, error) {
	bp := p.batch(b)
	if bp == nil || len(pages) != p.nPages {
		return nil, fmt.Errorf("cannot break down model %q at batch %d", p.name, b)
	}
	d := p.d
	d.prepMu.Lock()
	defer d.prepMu.Unlock()
	ps := d.prep
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := d.drv.setCurrent(nil, d.ctx); err != nil {
		return nil, err
	}
	for i, pg := range pages {
		bp.cur[i] = uint64(pg)
	}
	bp.cur[p.baseIn()], bp.cur[p.baseOut()], bp.cur[p.baseWork()] = uint64(in), uint64(out), uint64(workspace)
	byOp := map[string]*OpTime{}
	for pass := range 3 {
		for i, st := range bp.steps {
			ns, err := func() (int64, error) {
				if err := d.drv.eventRecord(ps.c, ps.ev0, ps.stream); err != nil {
					return 0, err
				}
				if err := st(ps.stream); err != nil {
					return 0, err
				}
				if err := d.drv.eventRecord(ps.c, ps.ev1, ps.stream); err != nil {
					return 0, err
				}
				if err := d.drv.eventSynchronize(ps.c, ps.ev1); err != nil {
					return 0, err
				}
				return d.drv.elapsedNs(ps.c, ps.ms, ps.ev0, ps.ev1)
			}()
			if err != nil {
				return nil, err
			}
			if pass < 2 {
				continue
			}
			o := byOp[bp.stepOps[i]]
			if o == nil {
				o = &OpTime{Op: bp.stepOps[i]}
				byOp[o.Op] = o
			}
			o.Steps++
			o.Ns += ns
		}
	}
	var res []OpTime
	for _, o := range byOp {
		res = append(res, *o)
	}
	slices.SortFunc(res, func(a, b OpTime) int { return int(b.Ns - a.Ns) })
	return res, nil
}
