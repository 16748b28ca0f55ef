package cuda

// Compiling a plan's nodes into steps: each ONNX op (after runtime/model's folds and fusions)
// becomes cuDNN, cuBLAS or our kernels. runtime/cpu is the reference for every op's
// semantics; what is not implemented here is an error naming the node, never a guess.

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"
	"unsafe"

	"github.com/clockwork-go/clockwork/runtime/model"
)

// ref is an address the steps compute at call time: base k of the batch's bases (a weight
// page, input, output, workspace) plus off, or the batch's constant buffer (base -1).
type ref struct {
	base int
	off  uint64
}

const constBase = -1

func (bp *batchProg) addr(r ref) uint64 {
	if r.base == constBase {
		return bp.consts + r.off
	}
	return bp.cur[r.base] + r.off
}

// compiler turns one plan into steps.
type compiler struct {
	p      *Program
	ps     *prepState
	plan   *model.Plan
	bp     *batchProg
	opt    PrepareOptions
	consts []byte
	op     string // the op of the node being compiled
	idx    int    // its index in the schedule
	uses   []int
	// first and last step of each value's life; prod is its producing step (-1: none)
	first, last, prod []int
	done              []bool
}

func (c *compiler) errorf(n *model.Node, format string, args ...any) error {
	return fmt.Errorf("%s node %q: %s", n.Op, n.Name, fmt.Sprintf(format, args...))
}

func (c *compiler) val(id model.ValueID) *model.Value { return &c.plan.Graph.Values[id] }

func (c *compiler) shape(id model.ValueID) []int64 { return c.val(id).Shape }

func numel(s []int64) int64 {
	n := int64(1)
	for _, d := range s {
		n *= d
	}
	return n
}

// ref returns where a value lives on the device.
func (c *compiler) ref(n *model.Node, id model.ValueID) (ref, error) {
	if id == model.NoValue {
		return ref{}, c.errorf(n, "missing input")
	}
	pl := c.plan.Place[id]
	v := c.val(id)
	if v.DType != model.Float32 {
		return ref{}, c.errorf(n, "value %q is %v; the cuda executor computes float32 only", v.Name, v.DType)
	}
	switch pl.Loc {
	case model.InWorkspace:
		return ref{c.p.baseWork(), uint64(pl.Offset)}, nil
	case model.InWeights:
		if pl.Page < 0 || pl.Page >= c.p.nPages {
			return ref{}, c.errorf(n, "weight %q on page %d of %d", v.Name, pl.Page, c.p.nPages)
		}
		return ref{pl.Page, uint64(pl.Offset)}, nil
	case model.InInput:
		return ref{c.p.baseIn(), 0}, nil
	case model.InOutput:
		return ref{c.p.baseOut(), 0}, nil
	}
	return ref{}, c.errorf(n, "value %q is kept on the host, not on the device", v.Name)
}

// constant adds host bytes to the batch's constant buffer (256-byte aligned).
func (c *compiler) constant(b []byte) ref {
	off := (len(c.consts) + 255) &^ 255
	c.consts = append(c.consts, make([]byte, off-len(c.consts))...)
	c.consts = append(c.consts, b...)
	return ref{constBase, uint64(off)}
}

func (c *compiler) constI64(v []int64) ref {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(x))
	}
	return c.constant(b)
}

func (c *compiler) constF32(v []float32) ref {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return c.constant(b)
}

// upload copies the constants to device memory of their own (never the region).
func (c *compiler) upload() error {
	if len(c.consts) == 0 {
		return nil
	}
	d := c.p.d
	var err error
	if c.bp.consts, err = d.drv.memAlloc(int64(len(c.consts))); err != nil {
		return err
	}
	if err := d.drv.memcpyHtoDAsync(nil, c.bp.consts, unsafe.Pointer(&c.consts[0]), len(c.consts), c.ps.stream); err != nil {
		return err
	}
	return d.drv.streamSynchronize(nil, c.ps.stream)
}

// hostConst returns a value's constant (weights included: Prepare has their host copy).
func (c *compiler) hostConst(id model.ValueID) *model.Tensor {
	if id == model.NoValue {
		return nil
	}
	return c.val(id).Const
}

func (c *compiler) add(s step) { c.addOp(c.op, s) }

// addOp appends a step, labelled with an op name for Program.Breakdown.
func (c *compiler) addOp(op string, s step) {
	c.bp.steps = append(c.bp.steps, s)
	c.bp.stepOps = append(c.bp.stepOps, op)
}

// compile walks the schedule.
func (c *compiler) compile() error {
	g := c.plan.Graph
	c.uses = make([]int, len(g.Values))
	for i := range g.Nodes {
		for _, id := range g.Nodes[i].Inputs {
			if id != model.NoValue {
				c.uses[id]++
			}
		}
	}
	for _, id := range g.Outputs {
		c.uses[id]++
	}
	c.first, c.last, c.prod = make([]int, len(g.Values)), make([]int, len(g.Values)), make([]int, len(g.Values))
	for v := range g.Values {
		c.first[v], c.last[v], c.prod[v] = -1, -1, -1
	}
	for i := range g.Nodes {
		for _, id := range g.Nodes[i].Outputs {
			if id != model.NoValue {
				c.first[id], c.last[id], c.prod[id] = i, i, i
			}
		}
		for _, id := range g.Nodes[i].Inputs {
			if id != model.NoValue {
				c.last[id] = max(c.last[id], i)
			}
		}
	}
	c.done = make([]bool, len(g.Nodes))
	for i := range g.Nodes {
		c.idx = i
		if c.done[i] {
			continue
		}
		if err := c.node(i); err != nil {
			return err
		}
	}
	return nil
}

// act is an activation for our kernels.
type act struct {
	op   actOp
	a, b float32
}

// fusedAct reads the activation runtime/model fused into a Conv or Gemm.
func fusedAct(n *model.Node) (act, error) {
	a, ok := n.Attrs[model.FusedActivation]
	if !ok {
		return act{op: actIdentity}, nil
	}
	switch a.String {
	case "Relu":
		return act{op: actReLU}, nil
	case "Clip":
		lo, hi := float32(math.Inf(-1)), float32(math.Inf(1))
		if v, ok := n.Attrs[model.FusedMin]; ok {
			lo = v.Float
		}
		if v, ok := n.Attrs[model.FusedMax]; ok {
			hi = v.Float
		}
		return act{op: actClip, a: lo, b: hi}, nil
	}
	return act{}, fmt.Errorf("%s node %q: fused activation %q not supported", n.Op, n.Name, a.String)
}

// nextAct returns the activation of node i+1 if it is a unary activation reading only node i's
// output (used nowhere else) and writing where fusing is safe; -1 otherwise.
func (c *compiler) nextAct(i int, out model.ValueID, ins ...model.ValueID) (act, model.ValueID, bool) {
	g := c.plan.Graph
	if i+1 >= len(g.Nodes) || c.uses[out] != 1 {
		return act{}, 0, false
	}
	m := &g.Nodes[i+1]
	if len(m.Inputs) != 1 || m.Inputs[0] != out || len(m.Outputs) != 1 {
		return act{}, 0, false
	}
	a, ok := c.unaryAct(m)
	if !ok {
		return act{}, 0, false
	}
	y := m.Outputs[0]
	// The fused kernel writes y[i] after reading its inputs at i: y may equal an input's
	// buffer, but must not partly overlap one.
	for _, x := range ins {
		if !c.sameOrDisjoint(x, y) {
			return act{}, 0, false
		}
	}
	return a, y, true
}

func (c *compiler) sameOrDisjoint(x, y model.ValueID) bool {
	px, py := c.plan.Place[x], c.plan.Place[y]
	if px.Loc != model.InWorkspace || py.Loc != model.InWorkspace {
		return true
	}
	if px.Offset == py.Offset {
		return true
	}
	ex, ey := px.Offset+c.val(x).Bytes(), py.Offset+c.val(y).Bytes()
	return ex <= py.Offset || ey <= px.Offset
}

// unaryAct maps single-input activation nodes to our kernels' activations.
func (c *compiler) unaryAct(n *model.Node) (act, bool) {
	f := func(name string, def float32) float32 {
		if a, ok := n.Attrs[name]; ok && a.Kind == model.AttrFloat {
			return a.Float
		}
		return def
	}
	switch n.Op {
	case "Relu":
		return act{op: actReLU}, true
	case "Sigmoid":
		return act{op: actSigmoid}, true
	case "Tanh":
		return act{op: actTanh}, true
	case "HardSigmoid":
		return act{op: actHardSigmoid, a: f("alpha", 0.2), b: f("beta", 0.5)}, true
	case "HardSwish":
		return act{op: actHardSwish}, true
	case "LeakyRelu":
		return act{op: actLeakyReLU, a: f("alpha", 0.01)}, true
	case "Identity", "Dropout":
		return act{op: actIdentity}, true
	case "Clip":
		lo, hi := float32(math.Inf(-1)), float32(math.Inf(1))
		if len(n.Inputs) == 1 { // opset < 11: attributes
			lo, hi = f("min", lo), f("max", hi)
			return act{op: actClip, a: lo, b: hi}, true
		}
		if len(n.Inputs) > 1 && n.Inputs[1] != model.NoValue {
			t := c.hostConst(n.Inputs[1])
			if t == nil || len(t.F) != 1 {
				return act{}, false
			}
			lo = t.F[0]
		}
		if len(n.Inputs) > 2 && n.Inputs[2] != model.NoValue {
			t := c.hostConst(n.Inputs[2])
			if t == nil || len(t.F) != 1 {
				return act{}, false
			}
			hi = t.F[0]
		}
		return act{op: actClip, a: lo, b: hi}, true
	}
	return act{}, false
}

func attrInts(n *model.Node, name string) []int64 {
	if a, ok := n.Attrs[name]; ok && a.Kind == model.AttrInts {
		return a.Ints
	}
	return nil
}

func attrInt(n *model.Node, name string, def int64) int64 {
	if a, ok := n.Attrs[name]; ok && a.Kind == model.AttrInt {
		return a.Int
	}
	return def
}

func (c *compiler) node(i int) error {
	g := c.plan.Graph
	n := &g.Nodes[i]
	k := c.ps.k
	bp := c.bp
	c.op = n.Op
	if a, ok := c.unaryAct(n); ok {
		if len(n.Outputs) < 1 {
			return c.errorf(n, "no output")
		}
		x, err := c.ref(n, n.Inputs[0])
		if err != nil {
			return err
		}
		out := n.Outputs[0]
		// x * sigmoid(x) → SiLU, x * hardsigmoid(x) (1/6, 1/2) → HardSwish, in one pass.
		if fa, y2, ok := c.gatedAct(i, n, a); ok {
			a, out = fa, y2
			c.done[i+1] = true
		}
		y, err := c.ref(n, out)
		if err != nil {
			return err
		}
		cnt := numel(c.shape(out))
		c.add(func(s uintptr) error {
			return k.unary(s, a.op, bp.addr(x), bp.addr(y), cnt, a.a, a.b)
		})
		return nil
	}
	switch n.Op {
	case "Conv":
		return c.conv(n)
	case "Gemm", "MatMul":
		return c.gemm(n)
	case "Add", "Sub", "Mul", "Div", "Max":
		return c.binary(i, n)
	case "BatchNormalization":
		return c.batchNorm(i, n)
	case "MaxPool", "AveragePool":
		return c.pool(n)
	case "GlobalAveragePool":
		return c.globalAvg(n)
	case "ReduceMean":
		return c.reduceMean(n)
	case "Concat":
		return c.concat(n)
	case "Flatten", "Reshape", "Squeeze", "Unsqueeze":
		return c.copyValue(n)
	case "Transpose":
		return c.transpose(n)
	case "Slice":
		return c.slice(n)
	case "Split":
		return c.split(n)
	case "Pad":
		return c.pad(n)
	case "Softmax":
		return c.softmax(n)
	}
	return c.errorf(n, "operator not supported by the cuda executor")
}

// conv: cuDNN forward convolution (algorithm measured at prepare), then bias + activation in
// one pass of ours.
func (c *compiler) conv(n *model.Node) error {
	xs, ws, ys := c.shape(n.Inputs[0]), c.shape(n.Inputs[1]), c.shape(n.Outputs[0])
	if len(xs) != 4 || len(ws) != 4 || len(ys) != 4 {
		return c.errorf(n, "only 2-D convolutions are supported (input %v)", xs)
	}
	pads := attrInts(n, "pads")
	if len(pads) == 0 {
		pads = []int64{0, 0, 0, 0}
	}
	if ap, ok := n.Attrs["auto_pad"]; ok && ap.String != "" && ap.String != "NOTSET" {
		return c.errorf(n, "auto_pad %q not supported", ap.String)
	}
	if len(pads) != 4 || pads[0] != pads[2] || pads[1] != pads[3] {
		return c.errorf(n, "asymmetric pads %v not supported", pads)
	}
	st := attrInts(n, "strides")
	dl := attrInts(n, "dilations")
	one := func(v []int64, i int) int {
		if len(v) > i {
			return int(v[i])
		}
		return 1
	}
	cs := ConvShape{N: int(xs[0]), C: int(xs[1]), H: int(xs[2]), W: int(xs[3]), K: int(ws[0]), R: int(ws[2]), S: int(ws[3]),
		StrideH: one(st, 0), StrideW: one(st, 1), PadH: int(pads[0]), PadW: int(pads[1]), DilH: one(dl, 0), DilW: one(dl, 1),
		Groups: int(attrInt(n, "group", 1))}
	if oh, ow := cs.OutHW(); int64(oh) != ys[2] || int64(ow) != ys[3] || int64(cs.K) != ys[1] {
		return c.errorf(n, "output %v does not match convolution %+v", ys, cs)
	}
	a, err := fusedAct(n)
	if err != nil {
		return err
	}
	if c.opt.MeasureAlgos && time.Since(c.ps.warmAt) > 200*time.Millisecond {
		if err := c.ps.warmUp(c.p.d, 30*time.Millisecond); err != nil {
			return err
		}
		c.ps.warmAt = time.Now()
	}
	cp, swapped, cudnnNs, err := c.ps.prepareConvMeasured(c.p.d, c.opt, cs)
	if err != nil {
		return c.errorf(n, "%v", err)
	}
	c.p.convs = append(c.p.convs, cp)
	c.p.Stats.Convs++
	if swapped {
		c.p.Stats.AlgoSwaps++
	}
	// Depthwise: our direct kernel (bias and activation fused) where it measures faster than
	// cuDNN's best algorithm alone.
	if cs.Groups == cs.C && cs.K == cs.C && cs.DilH == 1 && cs.DilW == 1 && c.opt.MeasureAlgos {
		if ok, err := c.dwconvFaster(cs, cp, cudnnNs); err != nil {
			return c.errorf(n, "%v", err)
		} else if ok {
			return c.dwconvStep(n, cs, a)
		}
	}
	x, w, y, b, hasB, err := c.convRefs(n)
	if err != nil {
		return err
	}
	if ok, err := c.convFusedStep(n, cp, cs, a, x, w, b, hasB); err != nil || ok {
		return err
	}
	bp, k, wsp := c.bp, c.ps.k, c.p.d.blasWs
	cnt, hw := numel(ys), ys[2]*ys[3]
	c.add(func(s uintptr) error { return cp.run(bp.addr(x), bp.addr(w), bp.addr(y), wsp) })
	if hasB || a.op != actIdentity {
		c.addOp("Conv.bias+act", func(s uintptr) error {
			var bias uint64
			if hasB {
				bias = bp.addr(b)
			}
			return k.biasAct(s, bp.addr(y), bias, bp.addr(y), cnt, cs.K, hw, a.op, a.a, a.b)
		})
	}
	return nil
}

// gemm: Gemm (transA 0, alpha = beta = 1) or MatMul with a 2-D right side, as one cuBLAS call
// on the rows, then bias + activation.
func (c *compiler) gemm(n *model.Node) error {
	as, bs, ys := c.shape(n.Inputs[0]), c.shape(n.Inputs[1]), c.shape(n.Outputs[0])
	transB := false
	if n.Op == "Gemm" {
		if attrInt(n, "transA", 0) != 0 {
			return c.errorf(n, "transA not supported")
		}
		transB = attrInt(n, "transB", 0) != 0
		for _, name := range []string{"alpha", "beta"} {
			if v, ok := n.Attrs[name]; ok && v.Float != 1 {
				return c.errorf(n, "%s %v not supported", name, v.Float)
			}
		}
		if len(as) != 2 {
			return c.errorf(n, "A must be 2-D, is %v", as)
		}
	}
	if len(bs) != 2 || len(as) < 2 {
		return c.errorf(n, "B must be 2-D (is %v), A at least 2-D (is %v)", bs, as)
	}
	m := int(numel(as[:len(as)-1]))
	kk := int(as[len(as)-1])
	nn := int(bs[1])
	if transB {
		nn = int(bs[0])
		if int(bs[1]) != kk {
			return c.errorf(n, "A %v and B %v (transposed) disagree", as, bs)
		}
	} else if int(bs[0]) != kk {
		return c.errorf(n, "A %v and B %v disagree", as, bs)
	}
	if numel(ys) != int64(m*nn) {
		return c.errorf(n, "output %v is not %dx%d", ys, m, nn)
	}
	a, err := c.ref(n, n.Inputs[0])
	if err != nil {
		return err
	}
	b, err := c.ref(n, n.Inputs[1])
	if err != nil {
		return err
	}
	y, err := c.ref(n, n.Outputs[0])
	if err != nil {
		return err
	}
	ac := act{op: actIdentity}
	if n.Op == "Gemm" {
		if ac, err = fusedAct(n); err != nil {
			return err
		}
	}
	hasC := n.Op == "Gemm" && len(n.Inputs) > 2 && n.Inputs[2] != model.NoValue
	var cr ref
	if hasC {
		cs := c.shape(n.Inputs[2])
		if numel(cs) != int64(nn) {
			return c.errorf(n, "bias %v: only a per-column bias of %d is supported", cs, nn)
		}
		if cr, err = c.ref(n, n.Inputs[2]); err != nil {
			return err
		}
	}
	h := c.ps.blas
	bp, k := c.bp, c.ps.k
	prec := c.opt.Precision
	c.add(func(s uintptr) error { return h.gemmT(prec, m, nn, kk, bp.addr(a), bp.addr(b), bp.addr(y), transB) })
	if hasC || ac.op != actIdentity {
		c.addOp("Gemm.bias+act", func(s uintptr) error {
			var bias uint64
			if hasC {
				bias = bp.addr(cr)
			}
			return k.biasAct(s, bp.addr(y), bias, bp.addr(y), int64(m*nn), nn, 1, ac.op, ac.a, ac.b)
		})
	}
	return nil
}

var binOps = map[string]binOp{"Add": binAdd, "Sub": binSub, "Mul": binMul, "Div": binDiv, "Max": binMax}

// binary: same shapes → one pass (with a following activation fused); per-channel scale
// (squeeze-excitation) → cw_channel_scale; anything else → the broadcasting kernel.
func (c *compiler) binary(i int, n *model.Node) error {
	if len(n.Inputs) != 2 {
		return c.errorf(n, "want 2 inputs, have %d", len(n.Inputs))
	}
	op := binOps[n.Op]
	as, bs, ys := c.shape(n.Inputs[0]), c.shape(n.Inputs[1]), c.shape(n.Outputs[0])
	a, err := c.ref(n, n.Inputs[0])
	if err != nil {
		return err
	}
	b, err := c.ref(n, n.Inputs[1])
	if err != nil {
		return err
	}
	out := n.Outputs[0]
	ac := act{op: actIdentity}
	if fa, y2, ok := c.nextAct(i, out, n.Inputs[0], n.Inputs[1]); ok {
		ac, out = fa, y2
		c.done[i+1] = true
	}
	y, err := c.ref(n, out)
	if err != nil {
		return err
	}
	bp, k := c.bp, c.ps.k
	cnt := numel(ys)
	if slices.Equal(as, ys) && slices.Equal(bs, ys) {
		c.add(func(s uintptr) error {
			k.args.reset().u64(bp.addr(a)).u64(bp.addr(b)).u64(bp.addr(y)).u64(uint64(cnt)).i32(int32(op)).i32(int32(ac.op)).f32(ac.a).f32(ac.b)
			return k.go1(kBinaryAct, cnt, s)
		})
		return nil
	}
	// x * s[N, C, 1, 1] over NCHW (either order), no activation.
	if op == binMul && ac.op == actIdentity && len(ys) == 4 {
		x, sc, xs, ss := a, b, as, bs
		if slices.Equal(bs, ys) {
			x, sc, xs, ss = b, a, bs, as
		}
		if slices.Equal(xs, ys) && len(ss) == 4 && ss[0] == ys[0] && ss[1] == ys[1] && ss[2] == 1 && ss[3] == 1 {
			hw := ys[2] * ys[3]
			c.add(func(s uintptr) error { return k.channelScale(s, bp.addr(x), bp.addr(sc), bp.addr(y), cnt, hw) })
			return nil
		}
	}
	if len(ys) > 8 {
		return c.errorf(n, "broadcast over %d dims (at most 8)", len(ys))
	}
	desc := make([]int64, 0, 3*len(ys))
	sa, sb := bcastStrides(as, ys), bcastStrides(bs, ys)
	if sa == nil || sb == nil {
		return c.errorf(n, "shapes %v and %v do not broadcast to %v", as, bs, ys)
	}
	for d := range ys {
		desc = append(desc, ys[d], sa[d], sb[d])
	}
	dr := c.constI64(desc)
	nd := len(ys)
	c.add(func(s uintptr) error {
		k.args.reset().u64(bp.addr(a)).u64(bp.addr(b)).u64(bp.addr(y)).u64(uint64(cnt)).i32(int32(nd)).u64(bp.addr(dr)).i32(int32(op)).i32(int32(ac.op)).f32(ac.a).f32(ac.b)
		return k.go1(kBinaryBcast, cnt, s)
	})
	return nil
}

// bcastStrides returns x's element strides along y's dims (0 where x broadcasts), or nil.
func bcastStrides(xs, ys []int64) []int64 {
	if len(xs) > len(ys) {
		return nil
	}
	st := make([]int64, len(ys))
	stride := int64(1)
	for d := len(ys) - 1; d >= 0; d-- {
		xd := d - (len(ys) - len(xs))
		if xd < 0 {
			continue
		}
		switch xs[xd] {
		case ys[d]:
			st[d] = stride
		case 1:
			st[d] = 0
		default:
			return nil
		}
		stride *= xs[xd]
	}
	return st
}

// batchNorm: inference BatchNormalization folded at prepare into a per-channel affine (the
// coefficients in the batch's constants), with a following activation fused.
func (c *compiler) batchNorm(i int, n *model.Node) error {
	if len(n.Inputs) != 5 {
		return c.errorf(n, "want 5 inputs")
	}
	xs := c.shape(n.Inputs[0])
	if len(xs) < 2 {
		return c.errorf(n, "input %v", xs)
	}
	ch := int(xs[1])
	var t [4]*model.Tensor
	for j := range t {
		t[j] = c.hostConst(n.Inputs[1+j])
		if t[j] == nil || len(t[j].F) != ch {
			return c.errorf(n, "scale, bias, mean and variance must be constants of %d", ch)
		}
	}
	eps := float32(1e-5)
	if a, ok := n.Attrs["epsilon"]; ok {
		eps = a.Float
	}
	sc, sh := make([]float32, ch), make([]float32, ch)
	for j := range ch {
		// As runtime/cpu: s = scale / sqrt(var + eps), t = bias - mean * s, in float64.
		s := float64(t[0].F[j]) / math.Sqrt(float64(t[3].F[j])+float64(eps))
		sc[j] = float32(s)
		sh[j] = float32(float64(t[1].F[j]) - float64(t[2].F[j])*s)
	}
	sr, tr := c.constF32(sc), c.constF32(sh)
	x, err := c.ref(n, n.Inputs[0])
	if err != nil {
		return err
	}
	out := n.Outputs[0]
	ac := act{op: actIdentity}
	if fa, y2, ok := c.nextAct(i, out, n.Inputs[0]); ok {
		ac, out = fa, y2
		c.done[i+1] = true
	}
	y, err := c.ref(n, out)
	if err != nil {
		return err
	}
	cnt := numel(xs)
	hw := cnt / (xs[0] * xs[1])
	bp, k := c.bp, c.ps.k
	c.add(func(s uintptr) error {
		k.args.reset().u64(bp.addr(x)).u64(bp.addr(sr)).u64(bp.addr(tr)).u64(bp.addr(y)).u64(uint64(cnt)).i32(int32(ch)).u64(uint64(hw)).i32(int32(ac.op)).f32(ac.a).f32(ac.b)
		return k.go1(kAffine, cnt, s)
	})
	return nil
}

func (c *compiler) pool(n *model.Node) error {
	xs, ys := c.shape(n.Inputs[0]), c.shape(n.Outputs[0])
	if len(xs) != 4 || len(ys) != 4 {
		return c.errorf(n, "only 2-D pooling is supported")
	}
	ks := attrInts(n, "kernel_shape")
	if len(ks) != 2 {
		return c.errorf(n, "kernel_shape %v", ks)
	}
	if ap, ok := n.Attrs["auto_pad"]; ok && ap.String != "" && ap.String != "NOTSET" {
		return c.errorf(n, "auto_pad %q not supported", ap.String)
	}
	for _, d := range attrInts(n, "dilations") {
		if d != 1 {
			return c.errorf(n, "dilations not supported")
		}
	}
	if len(n.Outputs) > 1 && n.Outputs[1] != model.NoValue {
		return c.errorf(n, "the Indices output is not supported")
	}
	pads := attrInts(n, "pads")
	if len(pads) == 0 {
		pads = []int64{0, 0, 0, 0}
	}
	st := attrInts(n, "strides")
	if len(st) == 0 {
		st = []int64{1, 1}
	}
	mode := poolMax
	if n.Op == "AveragePool" {
		mode = poolAvgValid
		if attrInt(n, "count_include_pad", 0) != 0 {
			mode = poolAvgPad
		}
		if attrInt(n, "ceil_mode", 0) != 0 && mode == poolAvgPad {
			return c.errorf(n, "ceil_mode with count_include_pad not supported")
		}
	}
	x, err := c.ref(n, n.Inputs[0])
	if err != nil {
		return err
	}
	y, err := c.ref(n, n.Outputs[0])
	if err != nil {
		return err
	}
	bp, k := c.bp, c.ps.k
	nc, h, w, oh, ow := int(xs[0]*xs[1]), int(xs[2]), int(xs[3]), int(ys[2]), int(ys[3])
	kh, kw, sh, sw, ph, pw := int(ks[0]), int(ks[1]), int(st[0]), int(st[1]), int(pads[0]), int(pads[1])
	c.add(func(s uintptr) error {
		return k.pool2d(s, mode, bp.addr(x), bp.addr(y), nc, h, w, oh, ow, kh, kw, sh, sw, ph, pw)
	})
	return nil
}

func (c *compiler) globalAvg(n *model.Node) error {
	xs := c.shape(n.Inputs[0])
	if len(xs) < 3 {
		return c.errorf(n, "input %v", xs)
	}
	return c.avgLast(n, int(xs[0]*xs[1]), int(numel(xs[2:])))
}

func (c *compiler) avgLast(n *model.Node, nc, hw int) error {
	x, err := c.ref(n, n.Inputs[0])
	if err != nil {
		return err
	}
	y, err := c.ref(n, n.Outputs[0])
	if err != nil {
		return err
	}
	bp, k := c.bp, c.ps.k
	c.add(func(s uintptr) error { return k.globalAvgPool(s, bp.addr(x), bp.addr(y), nc, hw) })
	return nil
}

// reduceMean over the trailing axes (2, 3 of NCHW) only.
func (c *compiler) reduceMean(n *model.Node) error {
	xs := c.shape(n.Inputs[0])
	axes := attrInts(n, "axes")
	if len(n.Inputs) > 1 && n.Inputs[1] != model.NoValue {
		if t := c.hostConst(n.Inputs[1]); t != nil {
			axes = t.I
		}
	}
	r := len(xs)
	norm := make([]int64, len(axes))
	for i, a := range axes {
		if a < 0 {
			a += int64(r)
		}
		norm[i] = a
	}
	slices.Sort(norm)
	if len(norm) == 0 || norm[len(norm)-1] != int64(r-1) || norm[0] != int64(r-len(norm)) {
		return c.errorf(n, "only a mean over trailing axes is supported (axes %v of %v)", axes, xs)
	}
	k := r - len(norm)
	return c.avgLast(n, int(numel(xs[:k])), int(numel(xs[k:])))
}

// axisAttr is n's "axis" attribute (default 0) made non-negative for a tensor of rank r; ok is
// false when it is out of range.
func axisAttr(n *model.Node, r int) (ax int64, ok bool) {
	ax = attrInt(n, "axis", 0)
	if ax < 0 {
		ax += int64(r)
	}
	return ax, ax >= 0 && ax < int64(r)
}

func (c *compiler) concat(n *model.Node) error {
	ys := c.shape(n.Outputs[0])
	ax, ok := axisAttr(n, len(ys))
	if !ok {
		return c.errorf(n, "axis %d", ax)
	}
	y, err := c.ref(n, n.Outputs[0])
	if err != nil {
		return err
	}
	outer := numel(ys[:ax])
	yInner := numel(ys[ax:])
	off := int64(0)
	bp, k := c.bp, c.ps.k
	// One launch for all inputs when each lives in the workspace or is the model's input.
	var tab []int64
	var maxInner int64
	multi := len(n.Inputs) >= 2 && len(n.Inputs) <= 65535
	for _, id := range n.Inputs {
		pl := c.plan.Place[id]
		inner := numel(c.shape(id)[ax:])
		switch {
		case pl.Loc == model.InWorkspace && pl.Offset%4 == 0:
			tab = append(tab, 0, pl.Offset/4, inner, off)
		case pl.Loc == model.InInput:
			tab = append(tab, 1, 0, inner, off)
		default:
			multi = false
		}
		off += inner
		maxInner = max(maxInner, inner)
	}
	if multi && off == yInner {
		tr := c.constI64(tab)
		ws, in := ref{c.p.baseWork(), 0}, ref{c.p.baseIn(), 0}
		nIn := uint32(len(n.Inputs))
		grid := k.grid(outer * maxInner)
		grid.X = max(grid.X/nIn, 1)
		grid.Y = nIn
		c.add(func(s uintptr) error {
			k.args.reset().u64(bp.addr(ws)).u64(bp.addr(in)).u64(bp.addr(tr)).u64(bp.addr(y)).u64(uint64(outer)).u64(uint64(yInner))
			return k.drv.launch(k.c, k.fn[kConcatMulti], grid, dim3{blockSize, 1, 1}, 0, s, k.args.params())
		})
		return nil
	}
	off = 0
	for _, id := range n.Inputs {
		xs := c.shape(id)
		x, err := c.ref(n, id)
		if err != nil {
			return err
		}
		inner := numel(xs[ax:])
		o := off
		c.add(func(s uintptr) error { return k.concat(s, bp.addr(x), bp.addr(y), outer, inner, yInner, o) })
		off += inner
	}
	if off != yInner {
		return c.errorf(n, "inputs fill %d of %d elements per row", off, yInner)
	}
	return nil
}

// copyValue: shape-only ops copy their input (plans give each value its own buffer).
func (c *compiler) copyValue(n *model.Node) error {
	x, err := c.ref(n, n.Inputs[0])
	if err != nil {
		return err
	}
	y, err := c.ref(n, n.Outputs[0])
	if err != nil {
		return err
	}
	cnt := numel(c.shape(n.Outputs[0]))
	if cnt != numel(c.shape(n.Inputs[0])) {
		return c.errorf(n, "input and output sizes differ")
	}
	bp, k := c.bp, c.ps.k
	c.add(func(s uintptr) error { return k.unary(s, actIdentity, bp.addr(x), bp.addr(y), cnt, 0, 0) })
	return nil
}

// gatherDim is one dimension of cw_gather: size of y, stride in x, start, step, bound.
type gatherDim struct{ size, stride, start, step, bound int64 }

func contiguousStrides(s []int64) []int64 {
	st := make([]int64, len(s))
	acc := int64(1)
	for d := len(s) - 1; d >= 0; d-- {
		st[d] = acc
		acc *= s[d]
	}
	return st
}

func (c *compiler) gather(n *model.Node, x ref, out model.ValueID, dims []gatherDim, pad float32) error {
	if len(dims) > 8 {
		return c.errorf(n, "%d dims (at most 8)", len(dims))
	}
	y, err := c.ref(n, out)
	if err != nil {
		return err
	}
	desc := make([]int64, 0, 5*len(dims))
	cnt := int64(1)
	for _, d := range dims {
		desc = append(desc, d.size, d.stride, d.start, d.step, d.bound)
		cnt *= d.size
	}
	if cnt != numel(c.shape(out)) {
		return c.errorf(n, "BUG: gather of %d elements into %v", cnt, c.shape(out))
	}
	dr := c.constI64(desc)
	nd := len(dims)
	bp, k := c.bp, c.ps.k
	c.add(func(s uintptr) error {
		k.args.reset().u64(bp.addr(x)).u64(bp.addr(y)).u64(uint64(cnt)).i32(int32(nd)).u64(bp.addr(dr)).f32(pad)
		return k.go1(kGather, cnt, s)
	})
	return nil
}

func (c *compiler) transpose(n *model.Node) error {
	xs, ys := c.shape(n.Inputs[0]), c.shape(n.Outputs[0])
	perm := attrInts(n, "perm")
	if len(perm) == 0 {
		for d := len(xs) - 1; d >= 0; d-- {
			perm = append(perm, int64(d))
		}
	}
	if len(perm) != len(xs) || len(ys) != len(xs) {
		return c.errorf(n, "perm %v for %v", perm, xs)
	}
	x, err := c.ref(n, n.Inputs[0])
	if err != nil {
		return err
	}
	st := contiguousStrides(xs)
	dims := make([]gatherDim, len(ys))
	for d := range ys {
		p := perm[d]
		if p < 0 || p >= int64(len(xs)) || xs[p] != ys[d] {
			return c.errorf(n, "perm %v for %v -> %v", perm, xs, ys)
		}
		dims[d] = gatherDim{ys[d], st[p], 0, 1, xs[p]}
	}
	return c.gather(n, x, n.Outputs[0], dims, 0)
}

func (c *compiler) constInts(n *model.Node, idx int) ([]int64, bool) {
	if idx >= len(n.Inputs) || n.Inputs[idx] == model.NoValue {
		return nil, false
	}
	t := c.hostConst(n.Inputs[idx])
	if t == nil || !t.DType.IsInt() {
		return nil, false
	}
	return t.I, true
}

func (c *compiler) slice(n *model.Node) error {
	xs, ys := c.shape(n.Inputs[0]), c.shape(n.Outputs[0])
	starts, ok1 := c.constInts(n, 1)
	ends, ok2 := c.constInts(n, 2)
	if !ok1 || !ok2 {
		if s := attrInts(n, "starts"); s != nil && len(n.Inputs) == 1 {
			starts, ends = s, attrInts(n, "ends")
		} else {
			return c.errorf(n, "starts and ends must be constants")
		}
	}
	axes, ok := c.constInts(n, 3)
	if !ok {
		axes = attrInts(n, "axes")
	}
	steps, ok := c.constInts(n, 4)
	if !ok {
		steps = nil
	}
	st := contiguousStrides(xs)
	dims := make([]gatherDim, len(xs))
	for d := range xs {
		dims[d] = gatherDim{ys[d], st[d], 0, 1, xs[d]}
	}
	for i := range starts {
		ax := int64(i)
		if axes != nil {
			ax = axes[i]
		}
		if ax < 0 {
			ax += int64(len(xs))
		}
		if ax < 0 || ax >= int64(len(xs)) || i >= len(ends) {
			return c.errorf(n, "axis %d", ax)
		}
		step := int64(1)
		if steps != nil {
			step = steps[i]
		}
		dim := xs[ax]
		s := starts[i]
		if s < 0 {
			s += dim
		}
		if step > 0 {
			s = min(max(s, 0), dim)
		} else {
			s = min(max(s, -1), dim-1)
		}
		dims[ax].start, dims[ax].step = s, step
	}
	x, err := c.ref(n, n.Inputs[0])
	if err != nil {
		return err
	}
	return c.gather(n, x, n.Outputs[0], dims, 0)
}

func (c *compiler) split(n *model.Node) error {
	xs := c.shape(n.Inputs[0])
	ax, ok := axisAttr(n, len(xs))
	if !ok {
		return c.errorf(n, "axis %d", ax)
	}
	x, err := c.ref(n, n.Inputs[0])
	if err != nil {
		return err
	}
	st := contiguousStrides(xs)
	off := int64(0)
	for _, out := range n.Outputs {
		if out == model.NoValue {
			return c.errorf(n, "unused outputs not supported")
		}
		ys := c.shape(out)
		dims := make([]gatherDim, len(xs))
		for d := range xs {
			dims[d] = gatherDim{ys[d], st[d], 0, 1, xs[d]}
		}
		dims[ax].start = off
		if err := c.gather(n, x, out, dims, 0); err != nil {
			return err
		}
		off += ys[ax]
	}
	if off != xs[ax] {
		return c.errorf(n, "outputs cover %d of %d", off, xs[ax])
	}
	return nil
}

func (c *compiler) pad(n *model.Node) error {
	xs, ys := c.shape(n.Inputs[0]), c.shape(n.Outputs[0])
	if m, ok := n.Attrs["mode"]; ok && m.String != "" && m.String != "constant" {
		return c.errorf(n, "mode %q not supported", m.String)
	}
	pads, ok := c.constInts(n, 1)
	if !ok {
		pads = attrInts(n, "pads")
	}
	if len(pads) != 2*len(xs) {
		return c.errorf(n, "pads %v for %v", pads, xs)
	}
	if len(n.Inputs) > 3 && n.Inputs[3] != model.NoValue {
		return c.errorf(n, "axes input not supported")
	}
	val := float32(0)
	if len(n.Inputs) > 2 && n.Inputs[2] != model.NoValue {
		t := c.hostConst(n.Inputs[2])
		if t == nil || len(t.F) != 1 {
			return c.errorf(n, "constant_value must be a float constant")
		}
		val = t.F[0]
	} else if v, ok := n.Attrs["value"]; ok {
		val = v.Float
	}
	x, err := c.ref(n, n.Inputs[0])
	if err != nil {
		return err
	}
	st := contiguousStrides(xs)
	dims := make([]gatherDim, len(xs))
	for d := range xs {
		dims[d] = gatherDim{ys[d], st[d], -pads[d], 1, xs[d]}
	}
	return c.gather(n, x, n.Outputs[0], dims, val)
}

func (c *compiler) softmax(n *model.Node) error {
	xs := c.shape(n.Inputs[0])
	ax := attrInt(n, "axis", -1)
	if ax < 0 {
		ax += int64(len(xs))
	}
	if ax != int64(len(xs)-1) {
		return c.errorf(n, "only softmax over the last axis is supported")
	}
	x, err := c.ref(n, n.Inputs[0])
	if err != nil {
		return err
	}
	y, err := c.ref(n, n.Outputs[0])
	if err != nil {
		return err
	}
	rows, cols := int(numel(xs[:ax])), int(xs[ax])
	bp, k := c.bp, c.ps.k
	c.add(func(s uintptr) error { return k.softmax(s, bp.addr(x), bp.addr(y), rows, cols) })
	return nil
}

// dwconvFaster times our depthwise kernel against cuDNN's chosen algorithm on the scratch
// buffers. Control path.
func (c *compiler) dwconvFaster(cs ConvShape, cp *convPlan, cudnnNs int64) (bool, error) {
	ps, d := c.ps, c.p.d
	oh, ow := cs.OutHW()
	align := func(n int64) int64 { return (n + 255) &^ 255 }
	xb, wb, yb := align(int64(cs.N*cs.C*cs.H*cs.W)*4), align(int64(cs.K*cs.R*cs.S)*4), align(int64(cs.N*cs.K*oh*ow)*4)
	if err := ps.scratch(d, xb+wb+yb+align(cp.WorkspaceBytes)); err != nil {
		return false, err
	}
	x, w, y, ws := ps.measure, ps.measure+uint64(xb), ps.measure+uint64(xb+wb), ps.measure+uint64(xb+wb+yb)
	if cudnnNs < 0 {
		ns, err := ps.timeIt(d, func(s uintptr) error { return cp.run(x, w, y, ws) })
		if err != nil {
			return false, err
		}
		cudnnNs = ns
	}
	ours, err := ps.timeIt(d, func(s uintptr) error {
		return ps.k.dwconv(s, x, w, 0, y, cs, oh, ow, act{op: actReLU})
	})
	if err != nil {
		return false, err
	}
	if ours < cudnnNs {
		c.p.Stats.DepthwiseOurs++
		return true, nil
	}
	return false, nil
}

// convRefs resolves a convolution's input, weights, output and optional bias (hasB).
func (c *compiler) convRefs(n *model.Node) (x, w, y, b ref, hasB bool, err error) {
	if x, err = c.ref(n, n.Inputs[0]); err != nil {
		return
	}
	if w, err = c.ref(n, n.Inputs[1]); err != nil {
		return
	}
	if y, err = c.ref(n, n.Outputs[0]); err != nil {
		return
	}
	if hasB = len(n.Inputs) > 2 && n.Inputs[2] != model.NoValue; hasB {
		b, err = c.ref(n, n.Inputs[2])
	}
	return
}

func (c *compiler) dwconvStep(n *model.Node, cs ConvShape, a act) error {
	x, w, y, b, hasB, err := c.convRefs(n)
	if err != nil {
		return err
	}
	oh, ow := cs.OutHW()
	bp, k := c.bp, c.ps.k
	c.addOp("DepthwiseConv", func(s uintptr) error {
		var bias uint64
		if hasB {
			bias = bp.addr(b)
		}
		return k.dwconv(s, bp.addr(x), bp.addr(w), bias, bp.addr(y), cs, oh, ow, a)
	})
	return nil
}

// convFusedStep runs a convolution with its bias, activation and, where the schedule allows,
// the residual Add (and the ReLU after it) as one cudnnConvolutionBiasActivationForward.
// It reports false, nil where the fused call does not apply (then the caller emits conv + ours).
func (c *compiler) convFusedStep(n *model.Node, cp *convPlan, cs ConvShape, a act, x, w, b ref, hasB bool) (bool, error) {
	if !c.opt.FuseConv || !hasB || (a.op != actIdentity && a.op != actReLU) {
		return false, nil
	}
	i := c.idx
	g := c.plan.Graph
	out := n.Outputs[0]
	final, relu, resid, skip := out, a.op == actReLU, false, 0
	var z model.ValueID
	if a.op == actIdentity && i+1 < len(g.Nodes) && c.uses[out] == 1 {
		m := &g.Nodes[i+1]
		if m.Op == "Add" && len(m.Inputs) == 2 && (m.Inputs[0] == out) != (m.Inputs[1] == out) {
			z = m.Inputs[0]
			if z == out {
				z = m.Inputs[1]
			}
			pz := c.plan.Place[z].Loc
			if c.prod[z] < i && (pz == model.InWorkspace || pz == model.InInput) && slices.Equal(c.shape(z), c.shape(out)) && slices.Equal(c.shape(m.Outputs[0]), c.shape(out)) {
				resid, final, skip = true, m.Outputs[0], 1
				if i+2 < len(g.Nodes) && c.uses[final] == 1 {
					r := &g.Nodes[i+2]
					if r.Op == "Relu" && len(r.Inputs) == 1 && r.Inputs[0] == final {
						relu, final, skip = true, r.Outputs[0], 2
					}
				}
			}
		}
	}
	if !relu && cp.Algo != 1 { // identity needs IMPLICIT_PRECOMP_GEMM
		return false, nil
	}
	if resid && !c.fuseSafe(i, i+skip, final, z, n.Inputs[0], out) {
		resid, final, skip, relu = false, out, 0, a.op == actReLU
		if !relu && cp.Algo != 1 {
			return false, nil
		}
	}
	f, err := c.ps.dnn.prepareFused(cp, c.opt.Precision, relu, resid)
	if err != nil {
		return false, nil
	}
	// One trial run on scratch buffers: cuDNN refuses some configurations only at run time.
	ps, d := c.ps, c.p.d
	oh, ow := cs.OutHW()
	align := func(n int64) int64 { return (n + 255) &^ 255 }
	xb, wb, yb := align(int64(cs.N*cs.C*cs.H*cs.W)*4), align(int64(cs.K*(cs.C/max(cs.Groups, 1))*cs.R*cs.S)*4), align(int64(cs.N*cs.K*oh*ow)*4)
	if err := ps.scratch(d, xb+wb+2*yb+align(int64(cs.K)*4)+align(cp.WorkspaceBytes)); err != nil {
		f.close()
		return false, err
	}
	sx, sw, sz := ps.measure, ps.measure+uint64(xb), ps.measure+uint64(xb+wb)
	sy := sz + uint64(yb)
	sb := sy + uint64(yb)
	sws := sb + uint64(align(int64(cs.K)*4))
	if err := f.run(sx, sw, sz, sb, sy, sws); err != nil {
		f.close()
		return false, nil
	}
	if err := d.drv.streamSynchronize(ps.c, ps.stream); err != nil {
		f.close()
		return false, err
	}
	c.p.fused = append(c.p.fused, f)
	cp.pinned = !relu
	c.p.Stats.FusedConvs++
	if resid {
		c.p.Stats.FusedResiduals++
	}
	yr, err := c.ref(n, final)
	if err != nil {
		return false, err
	}
	var zr ref
	if resid {
		if zr, err = c.ref(n, z); err != nil {
			return false, err
		}
	}
	for j := 1; j <= skip; j++ {
		c.done[i+j] = true
	}
	bp, wsp := c.bp, d.blasWs
	c.addOp("Conv(fused)", func(s uintptr) error {
		var za uint64
		if resid {
			za = bp.addr(zr)
		}
		return f.run(bp.addr(x), bp.addr(w), za, bp.addr(b), bp.addr(yr), wsp)
	})
	return true, nil
}

// fuseSafe reports whether writing final at step from (instead of at step to) clobbers
// nothing: its buffer must be disjoint from the conv's input and from every workspace value
// live in [from, to] (other than the values the fusion removes), and equal to or disjoint from z.
func (c *compiler) fuseSafe(from, to int, final, z, x, convOut model.ValueID) bool {
	pf := c.plan.Place[final]
	if pf.Loc != model.InWorkspace {
		return pf.Loc == model.InOutput
	}
	lo, hi := pf.Offset, pf.Offset+c.val(final).Bytes()
	overlaps := func(v model.ValueID) bool {
		pv := c.plan.Place[v]
		if pv.Loc != model.InWorkspace {
			return false
		}
		return pv.Offset < hi && lo < pv.Offset+c.val(v).Bytes()
	}
	if overlaps(x) {
		return false
	}
	if pz := c.plan.Place[z]; overlaps(z) && !(pz.Loc == model.InWorkspace && pz.Offset == pf.Offset) {
		return false
	}
	g := c.plan.Graph
	for v := range g.Values {
		id := model.ValueID(v)
		if id == final || id == z || id == convOut || c.first[v] < 0 {
			continue
		}
		if c.first[v] <= to && c.last[v] >= from && overlaps(id) {
			// The Add's output (when a ReLU follows) is removed by the fusion as well.
			if c.prod[v] > from && c.prod[v] <= to {
				continue
			}
			return false
		}
	}
	return true
}

// gatedAct recognizes node i (Sigmoid or HardSigmoid of x) followed by Mul(x, it) where the
// gate is used only there: the pair is SiLU or HardSwish of x, written to the Mul's output.
func (c *compiler) gatedAct(i int, n *model.Node, a act) (act, model.ValueID, bool) {
	g := c.plan.Graph
	if i+1 >= len(g.Nodes) || len(n.Outputs) != 1 {
		return act{}, 0, false
	}
	var fused act
	switch {
	case n.Op == "Sigmoid":
		fused = act{op: actSiLU}
	case n.Op == "HardSigmoid" && math.Abs(float64(a.a)-1.0/6) < 1e-7 && a.b == 0.5:
		fused = act{op: actHardSwish}
	default:
		return act{}, 0, false
	}
	x, gate := n.Inputs[0], n.Outputs[0]
	m := &g.Nodes[i+1]
	if m.Op != "Mul" || len(m.Inputs) != 2 || c.uses[gate] != 1 || !(m.Inputs[0] == x && m.Inputs[1] == gate || m.Inputs[1] == x && m.Inputs[0] == gate) {
		return act{}, 0, false
	}
	y := m.Outputs[0]
	if !slices.Equal(c.shape(y), c.shape(x)) || !c.sameOrDisjoint(x, y) {
		return act{}, 0, false
	}
	return fused, y, true
}
