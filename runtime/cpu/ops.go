package cpu

import (
	"fmt"
	"math"
	"slices"
)

func init() {
	compilers = map[string]compileFunc{
		"Conv": compileConv, "Gemm": compileGemm, "MatMul": compileMatMul,
		"Relu": compileUnary(OpRelu), "Sigmoid": compileUnary(OpSigmoid),
		"HardSigmoid": compileUnary(OpHardSigmoid), "HardSwish": compileUnary(OpHardSwish),
		"Sqrt": compileUnary(OpSqrt), "Erf": compileUnary(OpErf), "Clip": compileClip,
		"Add": compileBinary(OpAdd), "Sub": compileBinary(OpSub), "Mul": compileBinary(OpMul),
		"Div": compileBinary(OpDiv), "Pow": compileBinary(OpPow),
		"MaxPool": compilePool, "AveragePool": compilePool, "GlobalAveragePool": compileGlobalAvgPool,
		"ReduceMean": compileReduceMean, "Concat": compileConcat, "Flatten": compileFlatten,
		"Reshape": compileReshape, "Transpose": compileTranspose, "Pad": compilePad,
		"Softmax": compileSoftmax, "LayerNormalization": compileLayerNorm,
		"BatchNormalization": compileBatchNorm, "Shape": compileShape, "Gather": compileGather,
		"Unsqueeze": compileUnsqueeze, "Squeeze": compileSqueeze, "Cast": compileCast,
		"Constant": compileConstant, "ConstantOfShape": compileConstantOfShape,
		"Slice": compileSlice, "Identity": compileIdentity, "Dropout": compileDropout,
		"Expand": compileExpand, "Where": compileWhere, "Equal": compileEqual,
	}
}

// input returns in[i] or an error if the input is missing.
func input(n *Node, in []*Type, i int) (*Type, error) {
	if i >= len(in) || in[i] == nil {
		return nil, n.errorf("input %d is missing", i)
	}
	return in[i], nil
}

func optional(in []*Type, i int) *Type {
	if i < len(in) {
		return in[i]
	}
	return nil
}

func wantFloat32(n *Node, ts ...*Type) error {
	for i, t := range ts {
		if t != nil && t.DType != Float32 {
			return n.errorf("input %d is %v; the cpu backend computes this op in float32 only", i, t.DType)
		}
	}
	return nil
}

// constInts returns the integer values of input i, which must be known at compile time.
func constInts(n *Node, consts []*Tensor, i int) ([]int64, error) {
	if i >= len(consts) || consts[i] == nil {
		return nil, n.errorf("input %d must be a constant (an initializer or folded) for the cpu backend", i)
	}
	v, err := consts[i].Ints()
	if err != nil {
		return nil, n.errorf("input %d: %v", i, err)
	}
	return v, nil
}

func normAxis(n *Node, axis int64, rank int) (int, error) {
	if axis < -int64(rank) || axis >= int64(rank) {
		return 0, n.errorf("axis %d out of range for rank %d", axis, rank)
	}
	if axis < 0 {
		axis += int64(rank)
	}
	return int(axis), nil
}

func sameType(t *Type) []Type { return []Type{{DType: t.DType, Shape: slices.Clone(t.Shape)}} }

// ---- Conv, Gemm, MatMul ----

// windowAttrs resolves kernel, strides, dilations and pads of Conv and the pools for the
// spatial dims sp of an input.
type window struct {
	kernel, stride, dil, pb, pe, out []int
}

func resolveWindow(n *Node, sp []int, kernel []int, ceil bool) (*window, error) {
	r := len(sp)
	w := &window{kernel: kernel, stride: make([]int, r), dil: make([]int, r), pb: make([]int, r), pe: make([]int, r), out: make([]int, r)}
	get := func(name string, def int) ([]int, error) {
		v := n.attrInts(name)
		out := make([]int, r)
		if v == nil {
			for i := range out {
				out[i] = def
			}
			return out, nil
		}
		if len(v) != r {
			return nil, n.errorf("%s has %d values, want %d", name, len(v), r)
		}
		for i, x := range v {
			if x < 1 || x > 1<<20 {
				return nil, n.errorf("%s[%d] = %d out of range", name, i, x)
			}
			out[i] = int(x)
		}
		return out, nil
	}
	var err error
	if w.stride, err = get("strides", 1); err != nil {
		return nil, err
	}
	if w.dil, err = get("dilations", 1); err != nil {
		return nil, err
	}
	for i, k := range kernel {
		if k < 1 {
			return nil, n.errorf("kernel dim %d is %d", i, k)
		}
	}
	switch ap := n.attrString("auto_pad", "NOTSET"); ap {
	case "NOTSET":
		if pads := n.attrInts("pads"); pads != nil {
			if len(pads) != 2*r {
				return nil, n.errorf("pads has %d values, want %d", len(pads), 2*r)
			}
			for i := range r {
				if pads[i] < 0 || pads[r+i] < 0 || pads[i] > 1<<20 || pads[r+i] > 1<<20 {
					return nil, n.errorf("pads %v out of range", pads)
				}
				w.pb[i], w.pe[i] = int(pads[i]), int(pads[r+i])
			}
		}
		for i := range r {
			w.out[i] = poolOutDim(sp[i], kernel[i], w.stride[i], w.dil[i], w.pb[i], w.pe[i], ceil)
		}
	case "VALID":
		for i := range r {
			w.out[i] = poolOutDim(sp[i], kernel[i], w.stride[i], w.dil[i], 0, 0, ceil)
		}
	case "SAME_UPPER", "SAME_LOWER":
		for i := range r {
			w.out[i] = (sp[i] + w.stride[i] - 1) / w.stride[i]
			span := (kernel[i]-1)*w.dil[i] + 1
			total := max(0, (w.out[i]-1)*w.stride[i]+span-sp[i])
			if ap == "SAME_UPPER" {
				w.pb[i] = total / 2
			} else {
				w.pb[i] = total - total/2
			}
			w.pe[i] = total - w.pb[i]
		}
	default:
		return nil, n.errorf("auto_pad %q not supported", ap)
	}
	for _, o := range w.out {
		if o < 1 {
			return nil, n.errorf("window %v (stride %v, dilation %v, pads %v/%v) does not fit input %v", kernel, w.stride, w.dil, w.pb, w.pe, sp)
		}
	}
	return w, nil
}

// to3 right-aligns up to 3 spatial values into [3]int, filling with fill.
func to3(v []int, fill int) (out [3]int) {
	for i := range out {
		out[i] = fill
	}
	copy(out[3-len(v):], v)
	return out
}

// ActAttr is the attribute runtime/model's fusion pass may set on Conv and Gemm to fuse the
// following activation: "Relu" or "Clip" (with float attributes act_min, act_max).
const ActAttr = "activation"

func fusedAct(n *Node) (Act, error) {
	switch a := n.attrString(ActAttr, ""); a {
	case "":
		return Act{}, nil
	case "Relu":
		return Act{Kind: ActRelu}, nil
	case "Clip":
		return Act{Kind: ActClip, Min: n.attrFloat("act_min", float32(math.Inf(-1))), Max: n.attrFloat("act_max", float32(math.Inf(1)))}, nil
	default:
		return Act{}, n.errorf("fused activation %q not supported", a)
	}
}

func compileConv(n *Node, in []*Type, consts []*Tensor) (*Kernel, error) {
	x, err := input(n, in, 0)
	if err != nil {
		return nil, err
	}
	w, err := input(n, in, 1)
	if err != nil {
		return nil, err
	}
	b := optional(in, 2)
	if err := wantFloat32(n, x, w, b); err != nil {
		return nil, err
	}
	r := len(x.Shape) - 2
	if r < 1 || r > 3 || len(w.Shape) != len(x.Shape) {
		return nil, n.errorf("input %v and weight %v: want 3-5 dims, equal ranks", x.Shape, w.Shape)
	}
	group := n.attrInt("group", 1)
	C, M := x.Shape[1], w.Shape[0]
	if group < 1 || int64(C)%group != 0 || int64(M)%group != 0 || int64(w.Shape[1])*group != int64(C) {
		return nil, n.errorf("input channels %d, weight %v and group %d do not agree", C, w.Shape, group)
	}
	kernel := w.Shape[2:]
	if ks := n.attrInts("kernel_shape"); ks != nil {
		for i, k := range ks {
			if i >= len(kernel) || int(k) != kernel[i] {
				return nil, n.errorf("kernel_shape %v does not match weight %v", ks, w.Shape)
			}
		}
	}
	if b != nil && (len(b.Shape) != 1 || b.Shape[0] != M) {
		return nil, n.errorf("bias %v, want [%d]", b.Shape, M)
	}
	win, err := resolveWindow(n, x.Shape[2:], kernel, false)
	if err != nil {
		return nil, err
	}
	act, err := fusedAct(n)
	if err != nil {
		return nil, err
	}
	p := &ConvParams{N: x.Shape[0], C: C, M: M, Group: int(group), In: to3(x.Shape[2:], 1), Kernel: to3(kernel, 1),
		Out: to3(win.out, 1), Stride: to3(win.stride, 1), Dilation: to3(win.dil, 1), PadBegin: to3(win.pb, 0), Act: act}
	if err := p.Validate(); err != nil {
		return nil, n.errorf("%v", err)
	}
	out := Type{DType: Float32, Shape: append([]int{p.N, M}, win.out...)}
	t := newConvTask(p)
	return &Kernel{Out: []Type{out}, Run: func(in, out []*Tensor) error {
		var bias []float32
		if len(in) > 2 && in[2] != nil {
			bias = in[2].F32()
		}
		t.exec(in[0].F32(), in[1].F32(), bias, out[0].F32())
		return nil
	}}, nil
}

func compileGemm(n *Node, in []*Type, consts []*Tensor) (*Kernel, error) {
	a, err := input(n, in, 0)
	if err != nil {
		return nil, err
	}
	b, err := input(n, in, 1)
	if err != nil {
		return nil, err
	}
	c := optional(in, 2)
	if err := wantFloat32(n, a, b, c); err != nil {
		return nil, err
	}
	if len(a.Shape) != 2 || len(b.Shape) != 2 {
		return nil, n.errorf("A %v and B %v must be matrices", a.Shape, b.Shape)
	}
	p := &GemmParams{TransA: n.attrInt("transA", 0) != 0, TransB: n.attrInt("transB", 0) != 0,
		Alpha: n.attrFloat("alpha", 1), Beta: n.attrFloat("beta", 1)}
	p.M, p.K = a.Shape[0], a.Shape[1]
	if p.TransA {
		p.M, p.K = p.K, p.M
	}
	K2, N := b.Shape[0], b.Shape[1]
	if p.TransB {
		K2, N = N, K2
	}
	if K2 != p.K {
		return nil, n.errorf("A %v and B %v (transA %v, transB %v) do not multiply", a.Shape, b.Shape, p.TransA, p.TransB)
	}
	p.N = N
	if c != nil {
		bc, err := broadcastShape(c.Shape, []int{p.M, p.N})
		if err != nil || !slices.Equal(bc, []int{p.M, p.N}) || len(c.Shape) > 2 {
			return nil, n.errorf("C %v does not broadcast to [%d %d]", c.Shape, p.M, p.N)
		}
		st := broadcastStrides(c.Shape, []int{p.M, p.N})
		p.CStrideM, p.CStrideN = st[0], st[1]
	}
	if p.Act, err = fusedAct(n); err != nil {
		return nil, err
	}
	t := &bound[gemmArgs]{fn: gemmRange}
	return &Kernel{Out: []Type{{DType: Float32, Shape: []int{p.M, p.N}}}, Run: func(in, out []*Tensor) error {
		var cv []float32
		if len(in) > 2 && in[2] != nil {
			cv = in[2].F32()
		}
		t.exec(gemmArgs{p, in[0].F32(), in[1].F32(), cv, out[0].F32()}, p.M, gemmGrain(p))
		return nil
	}}, nil
}

func compileMatMul(n *Node, in []*Type, consts []*Tensor) (*Kernel, error) {
	a, err := input(n, in, 0)
	if err != nil {
		return nil, err
	}
	b, err := input(n, in, 1)
	if err != nil {
		return nil, err
	}
	if err := wantFloat32(n, a, b); err != nil {
		return nil, err
	}
	p, err := planMatMul(a.Shape, b.Shape)
	if err != nil {
		return nil, n.errorf("%v", err)
	}
	t := &bound[matmulArgs]{fn: matmulRange}
	return &Kernel{Out: []Type{{DType: Float32, Shape: p.Out}}, Run: func(in, out []*Tensor) error {
		t.exec(matmulArgs{p.M, p.N, p.K, p.AOff, p.BOff, in[0].F32(), in[1].F32(), out[0].F32()}, len(p.AOff)*p.M, matmulGrain(p.N, p.K))
		return nil
	}}, nil
}

// ---- elementwise ----

func compileUnary(op UnaryOp) compileFunc {
	return func(n *Node, in []*Type, consts []*Tensor) (*Kernel, error) {
		x, err := input(n, in, 0)
		if err != nil {
			return nil, err
		}
		var alpha, beta float32
		if op == OpHardSigmoid {
			alpha, beta = n.attrFloat("alpha", 0.2), n.attrFloat("beta", 0.5)
		}
		if op == OpRelu && x.DType != Float32 {
			return compileIntRelu(n, x)
		}
		if err := wantFloat32(n, x); err != nil {
			return nil, err
		}
		t := &bound[unaryArgs]{fn: unaryRange}
		return &Kernel{Out: sameType(x), Run: func(in, out []*Tensor) error {
			t.exec(unaryArgs{op, alpha, beta, in[0].F32(), out[0].F32()}, x.Len(), unaryGrain)
			return nil
		}}, nil
	}
}

func compileIntRelu(n *Node, x *Type) (*Kernel, error) {
	if x.DType.Size() == 0 || x.DType == Bool || x.DType == Float16 || x.DType == BFloat16 {
		return nil, n.errorf("dtype %v not supported", x.DType)
	}
	return &Kernel{Out: sameType(x), Run: func(in, out []*Tensor) error {
		v, err := in[0].Float64s()
		if err != nil {
			return err
		}
		for i := range v {
			v[i] = math.Max(v[i], 0)
		}
		return out[0].setFloat64s(v)
	}}, nil
}

func compileClip(n *Node, in []*Type, consts []*Tensor) (*Kernel, error) {
	x, err := input(n, in, 0)
	if err != nil {
		return nil, err
	}
	lo, hi := math.Inf(-1), math.Inf(1)
	if n.Opset < 11 {
		lo, hi = float64(n.attrFloat("min", float32(lo))), float64(n.attrFloat("max", float32(hi)))
	} else {
		for i, dst := range []*float64{&lo, &hi} {
			if optional(in, i+1) == nil {
				continue
			}
			if consts[i+1] == nil {
				return nil, n.errorf("min/max input %d must be a constant for the cpu backend", i+1)
			}
			if consts[i+1].Len() != 1 || consts[i+1].DType != x.DType {
				return nil, n.errorf("min/max input %d must be a %v scalar, got %v", i+1, x.DType, consts[i+1].Type)
			}
			v, err := consts[i+1].Float64s()
			if err != nil {
				return nil, n.errorf("%v", err)
			}
			*dst = v[0]
		}
	}
	if x.DType == Float32 {
		t := &bound[unaryArgs]{fn: unaryRange}
		return &Kernel{Out: sameType(x), Run: func(in, out []*Tensor) error {
			t.exec(unaryArgs{OpClip, float32(lo), float32(hi), in[0].F32(), out[0].F32()}, x.Len(), unaryGrain)
			return nil
		}}, nil
	}
	if x.DType.Size() == 0 || x.DType == Bool {
		return nil, n.errorf("dtype %v not supported", x.DType)
	}
	return &Kernel{Out: sameType(x), Run: func(in, out []*Tensor) error {
		v, err := in[0].Float64s()
		if err != nil {
			return err
		}
		for i := range v {
			v[i] = math.Min(math.Max(v[i], lo), hi)
		}
		return out[0].setFloat64s(v)
	}}, nil
}

func compileBinary(op BinaryOp) compileFunc {
	return func(n *Node, in []*Type, consts []*Tensor) (*Kernel, error) {
		a, err := input(n, in, 0)
		if err != nil {
			return nil, err
		}
		b, err := input(n, in, 1)
		if err != nil {
			return nil, err
		}
		if a.DType != b.DType && op != OpPow {
			return nil, n.errorf("input types %v and %v differ", a.DType, b.DType)
		}
		if a.DType.Size() == 0 || a.DType == Bool || a.DType == Float16 || a.DType == BFloat16 {
			return nil, n.errorf("dtype %v not supported", a.DType)
		}
		pl, err := newBroadcast(a.Shape, b.Shape)
		if err != nil {
			return nil, n.errorf("%v", err)
		}
		outT := []Type{{DType: a.DType, Shape: pl.Out}}
		if a.DType != b.DType {
			// Pow with an exponent of another type: evaluate in float64, store as the base type.
			if b.DType.Size() == 0 || b.DType == Bool {
				return nil, n.errorf("exponent dtype %v not supported", b.DType)
			}
			return &Kernel{Out: outT, Run: func(in, out []*Tensor) error {
				av, err := in[0].Float64s()
				if err != nil {
					return err
				}
				bv, err := in[1].Float64s()
				if err != nil {
					return err
				}
				y := make([]float64, pl.Len)
				binaryT(op, pl, av, bv, y)
				return out[0].setFloat64s(y)
			}}, nil
		}
		f := binaryRunner(a.DType, op, pl)
		run := func(in, out []*Tensor) error {
			f(in[0].Data, in[1].Data, out[0].Data)
			return nil
		}
		return &Kernel{Out: outT, Run: run}, nil
	}
}

func binaryRunner(dt DType, op BinaryOp, pl *Broadcast) func(x, y, z []byte) {
	switch dt {
	case Float32:
		return binaryRunnerT[float32](op, pl)
	case Float64:
		return binaryRunnerT[float64](op, pl)
	case Int64:
		return binaryRunnerT[int64](op, pl)
	case Int32:
		return binaryRunnerT[int32](op, pl)
	case Int16:
		return binaryRunnerT[int16](op, pl)
	case Int8:
		return binaryRunnerT[int8](op, pl)
	case Uint8:
		return binaryRunnerT[uint8](op, pl)
	case Uint16:
		return binaryRunnerT[uint16](op, pl)
	case Uint32:
		return binaryRunnerT[uint32](op, pl)
	case Uint64:
		return binaryRunnerT[uint64](op, pl)
	}
	return func(x, y, z []byte) {} // unreachable: Compile admits only the types above
}

func binaryRunnerT[T number](op BinaryOp, pl *Broadcast) func(x, y, z []byte) {
	t := &bound[binaryArgs[T]]{fn: binaryRange[T]}
	return func(x, y, z []byte) {
		t.exec(binaryArgs[T]{op, pl, view[T](x), view[T](y), view[T](z)}, pl.rows(), pl.grain())
	}
}

// ---- pools and reductions ----

func compilePool(n *Node, in []*Type, consts []*Tensor) (*Kernel, error) {
	x, err := input(n, in, 0)
	if err != nil {
		return nil, err
	}
	r := len(x.Shape) - 2
	if r < 1 || r > 3 {
		return nil, n.errorf("input %v: want 3-5 dims", x.Shape)
	}
	ks := n.attrInts("kernel_shape")
	if len(ks) != r {
		return nil, n.errorf("kernel_shape %v, want %d values", ks, r)
	}
	kernel := make([]int, r)
	for i, k := range ks {
		if k < 1 || k > 1<<20 {
			return nil, n.errorf("kernel_shape %v out of range", ks)
		}
		kernel[i] = int(k)
	}
	win, err := resolveWindow(n, x.Shape[2:], kernel, n.attrInt("ceil_mode", 0) != 0)
	if err != nil {
		return nil, err
	}
	p := &PoolParams{NC: x.Shape[0] * x.Shape[1], In: to3(x.Shape[2:], 1), Kernel: to3(kernel, 1), Out: to3(win.out, 1),
		Stride: to3(win.stride, 1), Dilation: to3(win.dil, 1), PadBegin: to3(win.pb, 0), PadEnd: to3(win.pe, 0),
		CountIncludePad: n.attrInt("count_include_pad", 0) != 0}
	yT := Type{DType: x.DType, Shape: append(slices.Clone(x.Shape[:2]), win.out...)}
	if n.Op == "AveragePool" {
		if err := wantFloat32(n, x); err != nil {
			return nil, err
		}
		t := &bound[avgPoolArgs]{fn: avgPoolRange}
		return &Kernel{Out: []Type{yT}, Run: func(in, out []*Tensor) error {
			t.exec(avgPoolArgs{p, in[0].F32(), out[0].F32()}, p.NC, p.grain())
			return nil
		}}, nil
	}
	if n.attrInt("storage_order", 0) != 0 {
		if r == 3 {
			return nil, n.errorf("storage_order 1 (column-major indices) with 3 spatial dims not supported")
		}
		p.ColMajorIndices = true
	}
	outs := []Type{yT, {DType: Int64, Shape: slices.Clone(yT.Shape)}}
	var f func(x, y []byte, idx []int64)
	switch x.DType {
	case Float32:
		f = maxPoolRunner(p, float32(math.Inf(-1)))
	case Float64:
		f = maxPoolRunner(p, math.Inf(-1))
	case Uint8:
		f = maxPoolRunner(p, uint8(0))
	case Int8:
		f = maxPoolRunner(p, int8(math.MinInt8))
	default:
		return nil, n.errorf("MaxPool on %v not supported", x.DType)
	}
	return &Kernel{Out: outs, Run: func(in, out []*Tensor) error {
		var idx []int64
		if len(out) > 1 && out[1] != nil {
			idx = out[1].I64()
		}
		f(in[0].Data, out[0].Data, idx)
		return nil
	}}, nil
}

func maxPoolRunner[T number](p *PoolParams, lowest T) func(x, y []byte, idx []int64) {
	t := &bound[maxPoolArgs[T]]{fn: maxPoolRange[T]}
	return func(x, y []byte, idx []int64) {
		t.exec(maxPoolArgs[T]{p, lowest, view[T](x), view[T](y), idx}, p.NC, p.grain())
	}
}

func compileGlobalAvgPool(n *Node, in []*Type, consts []*Tensor) (*Kernel, error) {
	x, err := input(n, in, 0)
	if err != nil {
		return nil, err
	}
	if err := wantFloat32(n, x); err != nil {
		return nil, err
	}
	if len(x.Shape) < 3 {
		return nil, n.errorf("input %v: want at least 3 dims", x.Shape)
	}
	out := slices.Clone(x.Shape)
	for i := 2; i < len(out); i++ {
		out[i] = 1
	}
	nc, sp := x.Shape[0]*x.Shape[1], numel(x.Shape[2:])
	t := &bound[globalAvgPoolArgs]{fn: globalAvgPoolRange}
	return &Kernel{Out: []Type{{DType: Float32, Shape: out}}, Run: func(in, out []*Tensor) error {
		t.exec(globalAvgPoolArgs{sp, in[0].F32(), out[0].F32()}, nc, rowGrain(sp))
		return nil
	}}, nil
}

func compileReduceMean(n *Node, in []*Type, consts []*Tensor) (*Kernel, error) {
	x, err := input(n, in, 0)
	if err != nil {
		return nil, err
	}
	if err := wantFloat32(n, x); err != nil {
		return nil, err
	}
	axes := n.attrInts("axes")
	if n.Opset >= 18 && optional(in, 1) != nil {
		if axes, err = constInts(n, consts, 1); err != nil {
			return nil, err
		}
	}
	reduce := make([]bool, len(x.Shape))
	if len(axes) == 0 {
		if n.attrInt("noop_with_empty_axes", 0) != 0 {
			return compileIdentity(n, in, consts)
		}
		for i := range reduce {
			reduce[i] = true
		}
	}
	for _, a := range axes {
		ax, err := normAxis(n, a, len(x.Shape))
		if err != nil {
			return nil, err
		}
		reduce[ax] = true
	}
	keep := n.attrInt("keepdims", 1) != 0
	var out []int
	for i, d := range x.Shape {
		switch {
		case !reduce[i]:
			out = append(out, d)
		case keep:
			out = append(out, 1)
		}
	}
	rp := newReduceMeanPlan(slices.Clone(x.Shape), reduce)
	return &Kernel{Out: []Type{{DType: Float32, Shape: out}}, Run: func(in, out []*Tensor) error {
		reduceMeanWith(rp, in[0].F32(), out[0].F32())
		return nil
	}}, nil
}

// ---- normalization ----

func compileSoftmax(n *Node, in []*Type, consts []*Tensor) (*Kernel, error) {
	x, err := input(n, in, 0)
	if err != nil {
		return nil, err
	}
	if err := wantFloat32(n, x); err != nil {
		return nil, err
	}
	def := int64(-1)
	if n.Opset < 13 {
		def = 1
	}
	if len(x.Shape) == 0 {
		return nil, n.errorf("input is a scalar")
	}
	ax, err := normAxis(n, n.attrInt("axis", def), len(x.Shape))
	if err != nil {
		return nil, err
	}
	outer, cnt, inner := numel(x.Shape[:ax]), x.Shape[ax], numel(x.Shape[ax+1:])
	if n.Opset < 13 { // the input is flattened to [outer, rest] at axis
		cnt, inner = cnt*inner, 1
	}
	t := &bound[softmaxArgs]{fn: softmaxRange}
	return &Kernel{Out: sameType(x), Run: func(in, out []*Tensor) error {
		t.exec(softmaxArgs{outer, cnt, inner, in[0].F32(), out[0].F32()}, outer, softmaxGrain(cnt, inner))
		return nil
	}}, nil
}

func compileLayerNorm(n *Node, in []*Type, consts []*Tensor) (*Kernel, error) {
	x, err := input(n, in, 0)
	if err != nil {
		return nil, err
	}
	scale, err := input(n, in, 1)
	if err != nil {
		return nil, err
	}
	bias := optional(in, 2)
	if err := wantFloat32(n, x, scale, bias); err != nil {
		return nil, err
	}
	ax, err := normAxis(n, n.attrInt("axis", -1), len(x.Shape))
	if err != nil {
		return nil, err
	}
	outer, cnt := numel(x.Shape[:ax]), numel(x.Shape[ax:])
	for _, t := range []*Type{scale, bias} {
		if t != nil && t.Len() != cnt {
			return nil, n.errorf("scale/bias %v does not match normalized shape %v", t.Shape, x.Shape[ax:])
		}
	}
	stat := slices.Clone(x.Shape)
	for i := ax; i < len(stat); i++ {
		stat[i] = 1
	}
	eps := n.attrFloat("epsilon", 1e-5)
	outs := []Type{sameType(x)[0], {DType: Float32, Shape: stat}, {DType: Float32, Shape: slices.Clone(stat)}}
	t := &bound[layerNormArgs]{fn: layerNormRange}
	return &Kernel{Out: outs, Run: func(in, out []*Tensor) error {
		var b, mean, inv []float32
		if len(in) > 2 && in[2] != nil {
			b = in[2].F32()
		}
		if len(out) > 1 && out[1] != nil {
			mean = out[1].F32()
		}
		if len(out) > 2 && out[2] != nil {
			inv = out[2].F32()
		}
		t.exec(layerNormArgs{outer, cnt, eps, in[0].F32(), in[1].F32(), b, out[0].F32(), mean, inv}, outer, rowGrain(cnt))
		return nil
	}}, nil
}

func compileBatchNorm(n *Node, in []*Type, consts []*Tensor) (*Kernel, error) {
	var ts [5]*Type
	for i := range ts {
		t, err := input(n, in, i)
		if err != nil {
			return nil, err
		}
		ts[i] = t
	}
	x := ts[0]
	if err := wantFloat32(n, ts[:]...); err != nil {
		return nil, err
	}
	if len(x.Shape) < 2 {
		return nil, n.errorf("input %v: want at least 2 dims", x.Shape)
	}
	c := x.Shape[1]
	for i := 1; i < 5; i++ {
		if len(ts[i].Shape) != 1 || ts[i].Shape[0] != c {
			return nil, n.errorf("input %d shape %v, want [%d]", i, ts[i].Shape, c)
		}
	}
	eps := n.attrFloat("epsilon", 1e-5)
	N, sp := x.Shape[0], numel(x.Shape[2:])
	if n.attrInt("training_mode", 0) != 0 {
		momentum := n.attrFloat("momentum", 0.9)
		stat := Type{DType: Float32, Shape: []int{c}}
		outs := []Type{sameType(x)[0], stat, stat}
		return &Kernel{Out: outs, Run: func(in, out []*Tensor) error {
			mean, variance := batchStats(N, c, sp, in[0].F32())
			batchNorm(N, c, sp, eps, in[0].F32(), in[1].F32(), in[2].F32(), mean, variance, out[0].F32())
			for i, o := range out[1:] {
				if o == nil {
					continue
				}
				run, cur := in[3+i].F32(), mean
				if i == 1 {
					cur = variance
				}
				for ch := range o.F32() {
					o.F32()[ch] = float32(float64(run[ch])*float64(momentum) + float64(cur[ch])*(1-float64(momentum)))
				}
			}
			return nil
		}}, nil
	}
	t := &bound[batchNormArgs]{fn: batchNormRange}
	return &Kernel{Out: sameType(x), Run: func(in, out []*Tensor) error {
		t.exec(batchNormArgs{c, sp, eps, in[0].F32(), in[1].F32(), in[2].F32(), in[3].F32(), in[4].F32(), out[0].F32()}, N*c, rowGrain(sp))
		return nil
	}}, nil
}

// ---- data movement and shapes ----

// move runs a data-movement kernel on any element type by its byte width.
func move(dt DType, f1 func(x, y []uint8), f2 func(x, y []uint16), f4 func(x, y []uint32), f8 func(x, y []uint64)) func(x, y []byte) {
	switch dt.Size() {
	case 1:
		return func(x, y []byte) { f1(x, y) }
	case 2:
		return func(x, y []byte) { f2(view[uint16](x), view[uint16](y)) }
	case 4:
		return func(x, y []byte) { f4(view[uint32](x), view[uint32](y)) }
	case 8:
		return func(x, y []byte) { f8(view[uint64](x), view[uint64](y)) }
	}
	return nil
}

func wantSized(n *Node, t *Type) error {
	if t.DType.Size() == 0 {
		return n.errorf("dtype %v not supported", t.DType)
	}
	return nil
}

func copyKernel(out Type) *Kernel {
	return &Kernel{Out: []Type{out}, Run: func(in, out []*Tensor) error {
		copy(out[0].Data, in[0].Data)
		return nil
	}}
}

func compileIdentity(n *Node, in []*Type, consts []*Tensor) (*Kernel, error) {
	x, err := input(n, in, 0)
	if err != nil {
		return nil, err
	}
	if err := wantSized(n, x); err != nil {
		return nil, err
	}
	return copyKernel(sameType(x)[0]), nil
}

func compileDropout(n *Node, in []*Type, consts []*Tensor) (*Kernel, error) {
	x, err := input(n, in, 0)
	if err != nil {
		return nil, err
	}
	if err := wantSized(n, x); err != nil {
		return nil, err
	}
	if optional(in, 2) != nil {
		if consts[2] == nil {
			return nil, n.errorf("training_mode must be a constant for the cpu backend")
		}
		if v, err := consts[2].Float64s(); err != nil || len(v) != 1 || v[0] != 0 {
			return nil, n.errorf("training_mode true not supported (inference only)")
		}
	}
	if n.attrInt("is_test", 1) == 0 && n.Opset < 7 {
		return nil, n.errorf("is_test 0 not supported (inference only)")
	}
	outs := []Type{sameType(x)[0], {DType: Bool, Shape: slices.Clone(x.Shape)}}
	return &Kernel{Out: outs, Run: func(in, out []*Tensor) error {
		copy(out[0].Data, in[0].Data)
		if len(out) > 1 && out[1] != nil {
			for i := range out[1].Data {
				out[1].Data[i] = 1 // inference: every element kept
			}
		}
		return nil
	}}, nil
}

func compileFlatten(n *Node, in []*Type, consts []*Tensor) (*Kernel, error) {
	x, err := input(n, in, 0)
	if err != nil {
		return nil, err
	}
	if err := wantSized(n, x); err != nil {
		return nil, err
	}
	ax := n.attrInt("axis", 1)
	if ax < -int64(len(x.Shape)) || ax > int64(len(x.Shape)) {
		return nil, n.errorf("axis %d out of range for rank %d", ax, len(x.Shape))
	}
	if ax < 0 {
		ax += int64(len(x.Shape))
	}
	return copyKernel(Type{DType: x.DType, Shape: []int{numel(x.Shape[:ax]), numel(x.Shape[ax:])}}), nil
}

func compileReshape(n *Node, in []*Type, consts []*Tensor) (*Kernel, error) {
	x, err := input(n, in, 0)
	if err != nil {
		return nil, err
	}
	if err := wantSized(n, x); err != nil {
		return nil, err
	}
	var shape []int64
	if n.Opset < 5 {
		shape = n.attrInts("shape")
	} else if shape, err = constInts(n, consts, 1); err != nil {
		return nil, err
	}
	allowZero := n.attrInt("allowzero", 0) != 0
	out := make([]int, len(shape))
	neg, known := -1, 1
	for i, d := range shape {
		switch {
		case d == -1:
			if neg >= 0 {
				return nil, n.errorf("shape %v has more than one -1", shape)
			}
			neg = i
			continue
		case d == 0 && !allowZero:
			if i >= len(x.Shape) {
				return nil, n.errorf("shape %v copies dim %d of input %v", shape, i, x.Shape)
			}
			out[i] = x.Shape[i]
		case d < 0 || d > 1<<40:
			return nil, n.errorf("shape %v has bad dim %d", shape, d)
		default:
			out[i] = int(d)
		}
		known *= out[i]
	}
	if neg >= 0 {
		if known == 0 || x.Len()%known != 0 {
			return nil, n.errorf("cannot reshape %v to %v", x.Shape, shape)
		}
		out[neg] = x.Len() / known
	}
	if numel(out) != x.Len() {
		return nil, n.errorf("cannot reshape %v (%d elements) to %v", x.Shape, x.Len(), out)
	}
	return copyKernel(Type{DType: x.DType, Shape: out}), nil
}

func compileTranspose(n *Node, in []*Type, consts []*Tensor) (*Kernel, error) {
	x, err := input(n, in, 0)
	if err != nil {
		return nil, err
	}
	if err := wantSized(n, x); err != nil {
		return nil, err
	}
	r := len(x.Shape)
	perm := make([]int, r)
	if p := n.attrInts("perm"); p != nil {
		if len(p) != r {
			return nil, n.errorf("perm %v for rank %d", p, r)
		}
		seen := make([]bool, r)
		for i, v := range p {
			if v < 0 || v >= int64(r) || seen[v] {
				return nil, n.errorf("perm %v is not a permutation", p)
			}
			seen[v] = true
			perm[i] = int(v)
		}
	} else {
		for i := range perm {
			perm[i] = r - 1 - i
		}
	}
	out := make([]int, r)
	for i, p := range perm {
		out[i] = x.Shape[p]
	}
	tp := newTransposePlan(x.Shape, perm)
	f := move(x.DType,
		func(a, b []uint8) { transposeWith(tp, a, b) }, func(a, b []uint16) { transposeWith(tp, a, b) },
		func(a, b []uint32) { transposeWith(tp, a, b) }, func(a, b []uint64) { transposeWith(tp, a, b) })
	return &Kernel{Out: []Type{{DType: x.DType, Shape: out}}, Run: func(in, out []*Tensor) error {
		f(in[0].Data, out[0].Data)
		return nil
	}}, nil
}

func compileConcat(n *Node, in []*Type, consts []*Tensor) (*Kernel, error) {
	if len(in) == 0 {
		return nil, n.errorf("no inputs")
	}
	first, err := input(n, in, 0)
	if err != nil {
		return nil, err
	}
	if err := wantSized(n, first); err != nil {
		return nil, err
	}
	r := len(first.Shape)
	ax, err := normAxis(n, n.attrInt("axis", 0), r)
	if err != nil {
		return nil, err
	}
	shapes := make([][]int, len(in))
	out := slices.Clone(first.Shape)
	out[ax] = 0
	for i := range in {
		t, err := input(n, in, i)
		if err != nil {
			return nil, err
		}
		if t.DType != first.DType || len(t.Shape) != r {
			return nil, n.errorf("input %d %v does not match input 0 %v", i, t, first)
		}
		for d := range r {
			if d != ax && t.Shape[d] != first.Shape[d] {
				return nil, n.errorf("input %d shape %v does not match input 0 %v off axis %d", i, t.Shape, first.Shape, ax)
			}
		}
		shapes[i] = slices.Clone(t.Shape)
		out[ax] += t.Shape[ax]
	}
	size := first.DType.Size()
	// concat on bytes: widen the innermost block by the element size
	bs := make([][]int, len(in))
	for i := range in {
		bs[i] = append(slices.Clone(shapes[i][:ax+1]), numel(shapes[i][ax+1:])*size)
	}
	parts := make([][]byte, len(in))
	return &Kernel{Out: []Type{{DType: first.DType, Shape: out}}, Run: func(in, out []*Tensor) error {
		for i, t := range in {
			parts[i] = t.Data
		}
		concat(ax, bs, parts, out[0].Data)
		clear(parts)
		return nil
	}}, nil
}

func compilePad(n *Node, in []*Type, consts []*Tensor) (*Kernel, error) {
	x, err := input(n, in, 0)
	if err != nil {
		return nil, err
	}
	if err := wantSized(n, x); err != nil {
		return nil, err
	}
	r := len(x.Shape)
	var pads []int64
	value := 0.0
	if n.Opset < 11 {
		pads = n.attrInts("pads")
		value = float64(n.attrFloat("value", 0))
	} else {
		if pads, err = constInts(n, consts, 1); err != nil {
			return nil, err
		}
		if optional(in, 2) != nil {
			if consts[2] == nil {
				return nil, n.errorf("constant_value must be a constant for the cpu backend")
			}
			v, err := consts[2].Float64s()
			if err != nil || len(v) != 1 {
				return nil, n.errorf("constant_value must be a numeric scalar")
			}
			value = v[0]
		}
		if optional(in, 3) != nil {
			return nil, n.errorf("axes input not supported")
		}
	}
	if len(pads) != 2*r {
		return nil, n.errorf("pads %v for rank %d", pads, r)
	}
	var mode PadMode
	switch m := n.attrString("mode", "constant"); m {
	case "constant":
		mode = PadConstant
	case "reflect":
		mode = PadReflect
	case "edge":
		mode = PadEdge
	default:
		return nil, n.errorf("mode %q not supported", m)
	}
	begin, end := make([]int, r), make([]int, r)
	out := make([]int, r)
	for i := range r {
		if pads[i] > 1<<30 || pads[r+i] > 1<<30 || pads[i] < -1<<30 || pads[r+i] < -1<<30 {
			return nil, n.errorf("pads %v out of range", pads)
		}
		begin[i], end[i] = int(pads[i]), int(pads[r+i])
		out[i] = x.Shape[i] + begin[i] + end[i]
		if out[i] < 0 {
			return nil, n.errorf("pads %v crop input %v below zero", pads, x.Shape)
		}
		if mode != PadConstant && (begin[i] != 0 || end[i] != 0) && x.Shape[i] == 0 {
			return nil, n.errorf("mode %v cannot pad an empty dim", mode)
		}
	}
	// negative pads crop: pad with the positive parts, then slice
	shape := slices.Clone(x.Shape)
	vt := &Tensor{Type: Type{DType: x.DType, Shape: []int{1}}, Data: alignedBytes(x.DType.Size())}
	if err := vt.setFloat64s([]float64{value}); err != nil {
		return nil, n.errorf("%v", err)
	}
	pb, pe := make([]int, r), make([]int, r)
	crop := false
	for i := range r {
		pb[i], pe[i] = max(begin[i], 0), max(end[i], 0)
		crop = crop || begin[i] < 0 || end[i] < 0
	}
	mid := make([]int, r)
	dims := make([]SliceDim, r)
	for i := range r {
		mid[i] = shape[i] + pb[i] + pe[i]
		dims[i] = SliceDim{Start: max(-begin[i], 0), Step: 1, Count: out[i]}
	}
	pp, sp := newPadPlan(shape, pb, pe, mode), newSlicePlan(mid, dims)
	fpad := move(x.DType,
		func(a, b []uint8) { padWith(pp, view[uint8](vt.Data)[0], a, b) },
		func(a, b []uint16) { padWith(pp, view[uint16](vt.Data)[0], a, b) },
		func(a, b []uint32) { padWith(pp, view[uint32](vt.Data)[0], a, b) },
		func(a, b []uint64) { padWith(pp, view[uint64](vt.Data)[0], a, b) })
	fslice := move(x.DType,
		func(a, b []uint8) { sliceWith(sp, a, b) }, func(a, b []uint16) { sliceWith(sp, a, b) },
		func(a, b []uint32) { sliceWith(sp, a, b) }, func(a, b []uint64) { sliceWith(sp, a, b) })
	var tmp []byte // crop only: the padded tensor before cropping (host scratch, kept)
	if crop {
		if !sizeOK(mid, x.DType.Size()) || numel(mid)*x.DType.Size() > 1<<30 {
			return nil, n.errorf("pads %v: intermediate %v too large", pads, mid)
		}
		tmp = alignedBytes(numel(mid) * x.DType.Size())
	}
	return &Kernel{Out: []Type{{DType: x.DType, Shape: out}}, Run: func(in, out []*Tensor) error {
		if !crop {
			fpad(in[0].Data, out[0].Data)
			return nil
		}
		fpad(in[0].Data, tmp)
		fslice(tmp, out[0].Data)
		return nil
	}}, nil
}

func compileSlice(n *Node, in []*Type, consts []*Tensor) (*Kernel, error) {
	x, err := input(n, in, 0)
	if err != nil {
		return nil, err
	}
	if err := wantSized(n, x); err != nil {
		return nil, err
	}
	r := len(x.Shape)
	var starts, ends, axes, steps []int64
	if n.Opset < 10 {
		starts, ends, axes = n.attrInts("starts"), n.attrInts("ends"), n.attrInts("axes")
	} else {
		if starts, err = constInts(n, consts, 1); err != nil {
			return nil, err
		}
		if ends, err = constInts(n, consts, 2); err != nil {
			return nil, err
		}
		if optional(in, 3) != nil {
			if axes, err = constInts(n, consts, 3); err != nil {
				return nil, err
			}
		}
		if optional(in, 4) != nil {
			if steps, err = constInts(n, consts, 4); err != nil {
				return nil, err
			}
		}
	}
	if len(starts) != len(ends) || axes != nil && len(axes) != len(starts) || steps != nil && len(steps) != len(starts) {
		return nil, n.errorf("starts %v, ends %v, axes %v, steps %v differ in length", starts, ends, axes, steps)
	}
	dims := make([]SliceDim, r)
	for i, d := range x.Shape {
		dims[i] = SliceDim{Start: 0, Step: 1, Count: d}
	}
	seen := make([]bool, r)
	for i := range starts {
		ax := int64(i)
		if axes != nil {
			ax = axes[i]
		}
		a, err := normAxis(n, ax, r)
		if err != nil {
			return nil, err
		}
		if seen[a] {
			return nil, n.errorf("axis %d repeated in %v", a, axes)
		}
		seen[a] = true
		step := int64(1)
		if steps != nil {
			step = steps[i]
		}
		if dims[a], err = resolveSlice(x.Shape[a], starts[i], ends[i], step); err != nil {
			return nil, n.errorf("%v", err)
		}
	}
	out := make([]int, r)
	for i, d := range dims {
		out[i] = d.Count
	}
	sp := newSlicePlan(x.Shape, dims)
	f := move(x.DType,
		func(a, b []uint8) { sliceWith(sp, a, b) }, func(a, b []uint16) { sliceWith(sp, a, b) },
		func(a, b []uint32) { sliceWith(sp, a, b) }, func(a, b []uint64) { sliceWith(sp, a, b) })
	return &Kernel{Out: []Type{{DType: x.DType, Shape: out}}, Run: func(in, out []*Tensor) error {
		f(in[0].Data, out[0].Data)
		return nil
	}}, nil
}

func compileGather(n *Node, in []*Type, consts []*Tensor) (*Kernel, error) {
	x, err := input(n, in, 0)
	if err != nil {
		return nil, err
	}
	it, err := input(n, in, 1)
	if err != nil {
		return nil, err
	}
	if err := wantSized(n, x); err != nil {
		return nil, err
	}
	if it.DType != Int64 && it.DType != Int32 {
		return nil, n.errorf("indices are %v, want int32 or int64", it.DType)
	}
	if len(x.Shape) == 0 {
		return nil, n.errorf("cannot gather from a scalar")
	}
	ax, err := normAxis(n, n.attrInt("axis", 0), len(x.Shape))
	if err != nil {
		return nil, err
	}
	out := slices.Concat(x.Shape[:ax], it.Shape, x.Shape[ax+1:])
	shape := slices.Clone(x.Shape)
	dim := x.Shape[ax]
	size := x.DType.Size()
	idx := make([]int, it.Len())
	bshape := append(slices.Clone(shape[:ax+1]), numel(shape[ax+1:])*size)
	i32 := it.DType == Int32
	return &Kernel{Out: []Type{{DType: x.DType, Shape: out}}, Run: func(in, out []*Tensor) error {
		for i := range idx {
			var v int64
			if i32 {
				v = int64(view[int32](in[1].Data)[i])
			} else {
				v = in[1].I64()[i]
			}
			if v < -int64(dim) || v >= int64(dim) {
				return fmt.Errorf("%s node %q: index %d out of range for dim %d", n.Op, n.Name, v, dim)
			}
			if v < 0 {
				v += int64(dim)
			}
			idx[i] = int(v)
		}
		gather(bshape, ax, idx, in[0].Data, out[0].Data)
		return nil
	}}, nil
}

func compileShape(n *Node, in []*Type, consts []*Tensor) (*Kernel, error) {
	x, err := input(n, in, 0)
	if err != nil {
		return nil, err
	}
	r := int64(len(x.Shape))
	start, end := n.attrInt("start", 0), n.attrInt("end", r)
	if start < 0 {
		start += r
	}
	if end < 0 {
		end += r
	}
	start, end = min(max(start, 0), r), min(max(end, 0), r)
	end = max(end, start)
	vals := make([]int64, 0, end-start)
	for _, d := range x.Shape[start:end] {
		vals = append(vals, int64(d))
	}
	return constKernel(&Tensor{Type: Type{DType: Int64, Shape: []int{len(vals)}}, Data: bytesOf(append(make([]int64, 0, len(vals)), vals...))}), nil
}

// constKernel returns a kernel that writes t.
func constKernel(t *Tensor) *Kernel {
	if len(t.Data)%8 != 0 || len(t.Data) == 0 {
		t = &Tensor{Type: t.Type, Data: append(alignedBytes(len(t.Data))[:0], t.Data...)}
	}
	return &Kernel{Out: []Type{{DType: t.DType, Shape: slices.Clone(t.Shape)}}, Run: func(in, out []*Tensor) error {
		copy(out[0].Data, t.Data)
		return nil
	}}
}

func squeezeAxes(n *Node, in []*Type, consts []*Tensor) ([]int64, error) {
	if n.Opset < 13 {
		return n.attrInts("axes"), nil
	}
	if optional(in, 1) == nil {
		return nil, nil
	}
	return constInts(n, consts, 1)
}

func compileUnsqueeze(n *Node, in []*Type, consts []*Tensor) (*Kernel, error) {
	x, err := input(n, in, 0)
	if err != nil {
		return nil, err
	}
	if err := wantSized(n, x); err != nil {
		return nil, err
	}
	axes, err := squeezeAxes(n, in, consts)
	if err != nil {
		return nil, err
	}
	if len(axes) == 0 {
		return nil, n.errorf("axes are missing")
	}
	r := len(x.Shape) + len(axes)
	ins := make([]bool, r)
	for _, a := range axes {
		ax, err := normAxis(n, a, r)
		if err != nil {
			return nil, err
		}
		if ins[ax] {
			return nil, n.errorf("axis %d repeated in %v", ax, axes)
		}
		ins[ax] = true
	}
	out := make([]int, 0, r)
	j := 0
	for i := range r {
		if ins[i] {
			out = append(out, 1)
		} else {
			out = append(out, x.Shape[j])
			j++
		}
	}
	return copyKernel(Type{DType: x.DType, Shape: out}), nil
}

func compileSqueeze(n *Node, in []*Type, consts []*Tensor) (*Kernel, error) {
	x, err := input(n, in, 0)
	if err != nil {
		return nil, err
	}
	if err := wantSized(n, x); err != nil {
		return nil, err
	}
	axes, err := squeezeAxes(n, in, consts)
	if err != nil {
		return nil, err
	}
	drop := make([]bool, len(x.Shape))
	if len(axes) == 0 {
		for i, d := range x.Shape {
			drop[i] = d == 1
		}
	}
	for _, a := range axes {
		ax, err := normAxis(n, a, len(x.Shape))
		if err != nil {
			return nil, err
		}
		if x.Shape[ax] != 1 {
			return nil, n.errorf("cannot squeeze dim %d of size %d", ax, x.Shape[ax])
		}
		drop[ax] = true
	}
	var out []int
	for i, d := range x.Shape {
		if !drop[i] {
			out = append(out, d)
		}
	}
	return copyKernel(Type{DType: x.DType, Shape: out}), nil
}

func compileCast(n *Node, in []*Type, consts []*Tensor) (*Kernel, error) {
	x, err := input(n, in, 0)
	if err != nil {
		return nil, err
	}
	to := DType(n.attrInt("to", 0))
	if to.Size() == 0 || x.DType.Size() == 0 {
		return nil, n.errorf("cast from %v to %v not supported", x.DType, to)
	}
	out := Type{DType: to, Shape: slices.Clone(x.Shape)}
	if to == x.DType {
		return copyKernel(out), nil
	}
	return &Kernel{Out: []Type{out}, Run: func(in, out []*Tensor) error {
		v, err := in[0].Float64s()
		if err != nil {
			return err
		}
		if to == Float16 || to == BFloat16 {
			// round once, from the exact value: go through float32 only when the source is
			// not wider (double → half would otherwise round twice)
			if x.DType == Float64 {
				return out[0].setHalfFromFloat64(v)
			}
		}
		return out[0].setFloat64s(v)
	}}, nil
}

func compileConstant(n *Node, in []*Type, consts []*Tensor) (*Kernel, error) {
	for name, a := range n.Attrs {
		switch name {
		case "value":
			if a.T == nil {
				return nil, n.errorf("value is not a tensor")
			}
			if a.T.DType.Size() == 0 || len(a.T.Data) != a.T.Bytes() {
				return nil, n.errorf("value tensor %v not supported or has %d bytes", a.T.Type, len(a.T.Data))
			}
			return constKernel(a.T), nil
		case "value_float":
			return constKernel(&Tensor{Type: Type{DType: Float32}, Data: bytesOf([]float32{a.F})}), nil
		case "value_floats":
			return constKernel(&Tensor{Type: Type{DType: Float32, Shape: []int{len(a.Fs)}}, Data: bytesOf(slices.Clone(a.Fs))}), nil
		case "value_int":
			return constKernel(&Tensor{Type: Type{DType: Int64}, Data: bytesOf([]int64{a.Int})}), nil
		case "value_ints":
			return constKernel(&Tensor{Type: Type{DType: Int64, Shape: []int{len(a.Ints)}}, Data: bytesOf(slices.Clone(a.Ints))}), nil
		}
	}
	return nil, n.errorf("no supported value attribute (value, value_float(s), value_int(s))")
}

func compileConstantOfShape(n *Node, in []*Type, consts []*Tensor) (*Kernel, error) {
	shape, err := constInts(n, consts, 0)
	if err != nil {
		return nil, err
	}
	out := make([]int, len(shape))
	for i, d := range shape {
		if d < 0 || d > 1<<30 {
			return nil, n.errorf("shape %v has bad dim %d", shape, d)
		}
		out[i] = int(d)
	}
	val := &Tensor{Type: Type{DType: Float32, Shape: []int{1}}, Data: alignedBytes(4)}
	if a, ok := n.Attrs["value"]; ok && a.T != nil {
		if a.T.Len() != 1 || a.T.DType.Size() == 0 {
			return nil, n.errorf("value must be a one-element tensor, got %v", a.T.Type)
		}
		val = a.T
	}
	if numel(out) > 1<<28 {
		return nil, n.errorf("shape %v too large", shape)
	}
	size := val.DType.Size()
	elem := slices.Clone(val.Data[:size])
	return &Kernel{Out: []Type{{DType: val.DType, Shape: out}}, Run: func(in, out []*Tensor) error {
		for i := 0; i < len(out[0].Data); i += size {
			copy(out[0].Data[i:], elem)
		}
		return nil
	}}, nil
}
