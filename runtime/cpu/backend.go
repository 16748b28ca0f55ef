package cpu

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/clockwork-go/clockwork/runtime/device"
)

// Config configures the cpu backend.
type Config struct {
	// Devices is how many devices Open returns (default 1). Each has its own region; they share
	// the machine's cores.
	Devices int
	// DefaultRegionBytes is the region size when Open is given 0 (default 1 GiB).
	DefaultRegionBytes int64
}

// MaxRegionBytes bounds one device's region (host memory allocated at Open).
const MaxRegionBytes = 1 << 40

// RegionBase is the device address of a region's first byte. Addresses start above zero so a
// zero Ptr (an unset field) is never a valid address.
const RegionBase device.Ptr = 1 << 16

var epoch = time.Now()

func defaultNow() int64 { return int64(time.Since(epoch)) }

// Backend is the pure-Go reference backend.
type Backend struct {
	Config Config
	// Now is the caller's monotonic clock in nanoseconds, the domain of returned Spans; nil
	// uses the package's own monotonic clock.
	Now func() int64
}

var _ device.Backend = (*Backend)(nil)

// Name is "cpu".
func (b *Backend) Name() string { return "cpu" }

// Open allocates one host region of regionBytes (0: Config.DefaultRegionBytes) per device.
// Control path; allocates the regions.
func (b *Backend) Open(regionBytes int64) ([]device.Device, error) {
	n := b.Config.Devices
	if n == 0 {
		n = 1
	}
	if regionBytes == 0 {
		regionBytes = b.Config.DefaultRegionBytes
	}
	if regionBytes == 0 {
		regionBytes = 1 << 30
	}
	if n < 0 || n > 64 {
		return nil, fmt.Errorf("cannot open %d cpu devices: want 1 to 64", n)
	}
	if regionBytes < 0 || regionBytes > MaxRegionBytes {
		return nil, fmt.Errorf("cannot open a cpu region of %d bytes: want 1 to %d", regionBytes, int64(MaxRegionBytes))
	}
	now := b.Now
	if now == nil {
		now = defaultNow
	}
	devs := make([]device.Device, n)
	for i := range devs {
		devs[i] = &Device{index: i, mem: alignedBytes(int(regionBytes)), now: now}
	}
	return devs, nil
}

// Device is one cpu "device": a host byte region addressed from RegionBase.
//
// # Concurrency
//
// Lane calls may run concurrently on different lanes (the worker's executor threads); they
// touch only the bytes they are given, so callers keep concurrent copies and runs on disjoint
// addresses, as they must on a GPU. Close must not race with anything.
type Device struct {
	index  int
	mem    []byte
	now    func() int64
	mu     sync.Mutex // guards closed for Close against Prepare
	closed bool
}

var _ device.Device = (*Device)(nil)

// Info describes the device. Its region is [RegionBase, RegionBase+len(region)).
func (d *Device) Info() device.Info {
	return device.Info{Backend: "cpu", Index: d.index, Name: "cpu-reference", MemBytes: int64(len(d.mem)),
		Base: RegionBase, Size: int64(len(d.mem))}
}

// span returns the region bytes [p, p+n), or an error naming the range.
func (d *Device) span(p device.Ptr, n int64) ([]byte, error) {
	if d.mem == nil {
		return nil, errClosed
	}
	if p < RegionBase || n < 0 || uint64(p-RegionBase) > uint64(len(d.mem)) || uint64(n) > uint64(len(d.mem))-uint64(p-RegionBase) {
		return nil, fmt.Errorf("cannot access %d bytes at %#x: outside region [%#x, +%d)", n, uint64(p), uint64(RegionBase), len(d.mem))
	}
	o := int64(p - RegionBase)
	return d.mem[o : o+n : o+n], nil
}

var errClosed = errors.New("cpu device is closed")

// CopyIn copies src to dst.
// Timing: executor thread; no allocation; memmove speed.
func (d *Device) CopyIn(lane device.Lane, dst device.Ptr, src []byte) (device.Span, error) {
	if lane >= device.NumLanes {
		return device.Span{}, fmt.Errorf("cannot copy on lane %v: no such lane", lane)
	}
	b, err := d.span(dst, int64(len(src)))
	if err != nil {
		return device.Span{}, err
	}
	start := d.now()
	copy(b, src)
	return device.Span{StartNs: start, EndNs: d.now()}, nil
}

// CopyOut copies len(dst) bytes from src.
// Timing: executor thread; no allocation; memmove speed.
func (d *Device) CopyOut(lane device.Lane, dst []byte, src device.Ptr) (device.Span, error) {
	if lane >= device.NumLanes {
		return device.Span{}, fmt.Errorf("cannot copy on lane %v: no such lane", lane)
	}
	b, err := d.span(src, int64(len(dst)))
	if err != nil {
		return device.Span{}, err
	}
	start := d.now()
	copy(dst, b)
	return device.Span{StartNs: start, EndNs: d.now()}, nil
}

// Close frees the region. No call may follow.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	d.mem = nil
	return nil
}

// Prepare compiles m at the given batch sizes. m is a *Graph (or, once runtime/model provides
// plans, a model it converts). Every batch must have a plan; every node is compiled against
// its input types, so shape errors, unsupported ops and bad memory plans are reported here
// with the model and node, never at Run.
// Control path: allocates; takes no device memory.
func (d *Device) Prepare(m device.Model, batches []int) (device.Program, error) {
	d.mu.Lock()
	closed := d.closed
	d.mu.Unlock()
	if closed {
		return nil, errClosed
	}
	g, err := asGraph(m)
	if err != nil {
		return nil, err
	}
	if len(batches) == 0 {
		return nil, fmt.Errorf("cannot prepare model %q: no batch sizes", g.ModelName)
	}
	if g.PageBytes <= 0 && g.NumPages > 0 || g.NumPages < 0 || g.PageBytes%8 != 0 {
		return nil, fmt.Errorf("cannot prepare model %q: %d weight pages of %d bytes", g.ModelName, g.NumPages, g.PageBytes)
	}
	if err := g.validateRuns(); err != nil {
		return nil, fmt.Errorf("cannot prepare model %q: %w", g.ModelName, err)
	}
	p := &Program{dev: d, graph: g, batches: slices.Sorted(slices.Values(batches))}
	for i, b := range p.batches {
		if i > 0 && b == p.batches[i-1] {
			return nil, fmt.Errorf("cannot prepare model %q: batch size %d repeated", g.ModelName, b)
		}
		var plan *BatchPlan
		for _, bp := range g.Plans {
			if bp.Batch == b {
				plan = bp
			}
		}
		if plan == nil {
			return nil, fmt.Errorf("cannot prepare model %q at batch %d: the model has no plan for it", g.ModelName, b)
		}
		cp, err := compilePlan(g, plan)
		if err != nil {
			return nil, fmt.Errorf("cannot prepare model %q at batch %d: %w", g.ModelName, b, err)
		}
		p.plans = append(p.plans, cp)
	}
	return p, nil
}

func asGraph(m device.Model) (*Graph, error) {
	switch g := m.(type) {
	case *Graph:
		if g == nil {
			return nil, errors.New("cannot prepare a nil *cpu.Graph")
		}
		return g, nil
	}
	return nil, fmt.Errorf("cannot prepare model %q of type %T: the cpu backend runs *cpu.Graph", m.Name(), m)
}

// compiledPlan is a BatchPlan with every node compiled and tensors preallocated, so Run only
// points them at the region.
type compiledPlan struct {
	plan    *BatchPlan
	kernels []*Kernel
	ins     [][]*Tensor // per step, the Tensor headers passed to the kernel
	outs    [][]*Tensor
	tensors []*Tensor // per value id; Data set at Run (or fixed for host constants)
	used    []bool    // values a step reads or writes, or the model's input and output
}

func compilePlan(g *Graph, p *BatchPlan) (*compiledPlan, error) {
	if err := p.validate(g); err != nil {
		return nil, err
	}
	cp := &compiledPlan{plan: p, tensors: make([]*Tensor, len(p.Values)), used: make([]bool, len(p.Values))}
	cp.used[p.Input], cp.used[p.Output] = true, true
	for _, st := range p.Steps {
		for _, id := range slices.Concat(st.In, st.Out) {
			if id >= 0 {
				cp.used[id] = true
			}
		}
	}
	for i, v := range p.Values {
		t := &Tensor{Type: Type{DType: v.Type.DType, Shape: slices.Clone(v.Type.Shape)}}
		if v.Loc == InHost && cp.used[i] {
			t.Data = append(alignedBytes(len(v.Const.Data))[:0], v.Const.Data...)
		}
		cp.tensors[i] = t
	}
	written := make([]bool, len(p.Values))
	for i, v := range p.Values {
		written[i] = v.Loc != InWorkspace && v.Loc != InOutput
	}
	for si := range p.Steps {
		s := &p.Steps[si]
		types := make([]*Type, len(s.In))
		consts := make([]*Tensor, len(s.In))
		ins := make([]*Tensor, len(s.In))
		for j, id := range s.In {
			if id < 0 {
				continue
			}
			if !written[id] {
				return nil, fmt.Errorf("step %d (%s %q) reads value %q before any step writes it", si, s.Node.Op, s.Node.Name, p.Values[id].Name)
			}
			types[j], ins[j] = &p.Values[id].Type, cp.tensors[id]
			consts[j] = p.Values[id].Const
		}
		k, err := Compile(&s.Node, types, consts)
		if err != nil {
			return nil, err
		}
		if len(s.Out) > len(k.Out) {
			return nil, fmt.Errorf("step %d (%s %q) has %d outputs, the op makes %d", si, s.Node.Op, s.Node.Name, len(s.Out), len(k.Out))
		}
		outs := make([]*Tensor, len(s.Out))
		for j, id := range s.Out {
			if id < 0 {
				continue
			}
			if want := p.Values[id].Type; want.DType != k.Out[j].DType || !slices.Equal(want.Shape, k.Out[j].Shape) {
				return nil, fmt.Errorf("step %d (%s %q) output %q: plan says %v, the op makes %v", si, s.Node.Op, s.Node.Name, p.Values[id].Name, want, k.Out[j])
			}
			outs[j] = cp.tensors[id]
			written[id] = true
		}
		cp.kernels = append(cp.kernels, k)
		cp.ins = append(cp.ins, ins)
		cp.outs = append(cp.outs, outs)
	}
	if !written[p.Output] {
		return nil, fmt.Errorf("no step writes the output %q", p.Values[p.Output].Name)
	}
	return cp, nil
}

// Program is a Graph prepared on one cpu device.
//
// # Concurrency
//
// Run is called by the device's exec thread only, one run at a time (device.Program's contract):
// it points the preallocated tensor headers at the region, so two concurrent Runs of one
// Program would race.
type Program struct {
	dev     *Device
	graph   *Graph
	batches []int
	plans   []*compiledPlan // parallel to batches
}

var _ device.Program = (*Program)(nil)

// Batches returns the prepared batch sizes, ascending.
func (p *Program) Batches() []int { return slices.Clone(p.batches) }

func (p *Program) plan(batch int) *compiledPlan {
	if i, ok := slices.BinarySearch(p.batches, batch); ok {
		return p.plans[i]
	}
	return nil
}

// InputBytes is the size of one batch's input (0 for a batch not prepared).
func (p *Program) InputBytes(batch int) int64 {
	if cp := p.plan(batch); cp != nil {
		return int64(cp.plan.Values[cp.plan.Input].Type.Bytes())
	}
	return 0
}

// OutputBytes is the size of one batch's output (0 for a batch not prepared).
func (p *Program) OutputBytes(batch int) int64 {
	if cp := p.plan(batch); cp != nil {
		return int64(cp.plan.Values[cp.plan.Output].Type.Bytes())
	}
	return 0
}

// WorkspaceBytes is the activation memory one Run at batch needs.
func (p *Program) WorkspaceBytes(batch int) int64 {
	if cp := p.plan(batch); cp != nil {
		return cp.plan.WorkspaceBytes
	}
	return 0
}

// WeightBytes is the model's weight size as laid out in pages.
func (p *Program) WeightBytes() int64 { return p.graph.WeightBytes }

// Run executes one batch. pages[i] is the address of weight page i; in, out and workspace
// are the IO buffers and scratch. Every address range is checked against the region first.
// Timing: exec thread; blocks for the run (seconds for large models: this is the reference,
// not a fast path); allocates nothing for the float32 CNN operator set (see package doc).
func (p *Program) Run(batch int, pages []device.Ptr, in, out, workspace device.Ptr) (device.Span, error) {
	cp := p.plan(batch)
	if cp == nil {
		return device.Span{}, fmt.Errorf("cannot run model %q at batch %d: not prepared (have %v)", p.graph.ModelName, batch, p.batches)
	}
	if len(pages) < p.graph.NumPages {
		return device.Span{}, fmt.Errorf("cannot run model %q: %d weight pages given, the model has %d", p.graph.ModelName, len(pages), p.graph.NumPages)
	}
	d := p.dev
	pl := cp.plan
	ws, err := d.span(workspace, pl.WorkspaceBytes)
	if err != nil {
		return device.Span{}, fmt.Errorf("model %q workspace: %w", p.graph.ModelName, err)
	}
	inB, err := d.span(in, int64(pl.Values[pl.Input].Type.Bytes()))
	if err != nil {
		return device.Span{}, fmt.Errorf("model %q input: %w", p.graph.ModelName, err)
	}
	outB, err := d.span(out, int64(pl.Values[pl.Output].Type.Bytes()))
	if err != nil {
		return device.Span{}, fmt.Errorf("model %q output: %w", p.graph.ModelName, err)
	}
	for i := 0; i < p.graph.NumPages; i++ {
		if _, err := d.span(pages[i], p.graph.PageBytes); err != nil {
			return device.Span{}, fmt.Errorf("model %q weight page %d: %w", p.graph.ModelName, i, err)
		}
		if (pages[i]-RegionBase)%8 != 0 {
			return device.Span{}, fmt.Errorf("model %q weight page %d at %#x is not 8-byte aligned", p.graph.ModelName, i, uint64(pages[i]))
		}
	}
	if err := p.checkContiguous(pages); err != nil {
		return device.Span{}, err
	}
	for _, a := range []device.Ptr{in, out, workspace} {
		if (a-RegionBase)%8 != 0 {
			return device.Span{}, fmt.Errorf("model %q: buffer at %#x is not 8-byte aligned", p.graph.ModelName, uint64(a))
		}
	}
	for i, v := range pl.Values {
		t := cp.tensors[i]
		if !cp.used[i] {
			continue
		}
		n := int64(v.Type.Bytes())
		switch v.Loc {
		case InWorkspace:
			t.Data = ws[v.Offset : v.Offset+n : v.Offset+n]
		case InWeights:
			b, _ := d.span(pages[v.Page]+device.Ptr(v.Offset), n) // checked above: page in region
			t.Data = b
		case InInput:
			t.Data = inB
		case InOutput:
			t.Data = outB
		}
	}
	start := d.now()
	for si, k := range cp.kernels {
		if err := k.Run(cp.ins[si], cp.outs[si]); err != nil {
			s := pl.Steps[si]
			return device.Span{StartNs: start, EndNs: d.now()}, fmt.Errorf("model %q at batch %d: %s node %q: %w", p.graph.ModelName, batch, s.Node.Op, s.Node.Name, err)
		}
	}
	return device.Span{StartNs: start, EndNs: d.now()}, nil
}

// checkContiguous checks that the pages of each run (all pages, when packed) follow each other
// in the region.
// Timing: exec thread; no allocation.
func (p *Program) checkContiguous(pages []device.Ptr) error {
	g := p.graph
	check := func(first, n int) error {
		for i := 1; i < n; i++ {
			if pages[first+i] != pages[first]+device.Ptr(int64(i)*g.PageBytes) {
				return fmt.Errorf("model %q: weight pages %d..%d must be contiguous (page %d at %#x, page %d at %#x)",
					g.ModelName, first, first+n-1, first, uint64(pages[first]), first+i, uint64(pages[first+i]))
			}
		}
		return nil
	}
	if g.Packed {
		return check(0, g.NumPages)
	}
	for _, r := range g.Runs {
		if err := check(r.First, r.Pages); err != nil {
			return err
		}
	}
	return nil
}

// Close releases the compiled plans.
func (p *Program) Close() error {
	p.plans = nil
	p.batches = nil
	return nil
}
