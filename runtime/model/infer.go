package model

import (
	"fmt"
	"slices"
)

// shapeError is the error of a node whose inputs do not agree.
func (g *Graph) nodeErr(n *Node, wrap error, format string, args ...any) error {
	return fmt.Errorf("model %q: %s node %q: %s: %w", g.Name, n.Op, n.Name, fmt.Sprintf(format, args...), wrap)
}

// in returns input i's value, nil if absent.
func (g *Graph) in(n *Node, i int) *Value {
	if id := n.Input(i); id != NoValue {
		return &g.Values[id]
	}
	return nil
}

// constInts returns input i as integers when it is a constant integer tensor.
func (g *Graph) constInts(n *Node, i int) ([]int64, bool) {
	c := g.Const(n.Input(i))
	if c == nil || !c.DType.IsInt() {
		return nil, false
	}
	return c.I, true
}

// setOut sets output i's type, checking it against a declared type where the file had one.
func (g *Graph) setOut(n *Node, i int, dt DType, shape []int64) error {
	if i >= len(n.Outputs) || n.Outputs[i] == NoValue {
		return nil
	}
	v := &g.Values[n.Outputs[i]]
	if v.DType != Undefined && v.DType != dt {
		return g.nodeErr(n, ErrInvalid, "output %q declared %v, computes %v", v.Name, v.DType, dt)
	}
	if v.Shape != nil && shape != nil && len(v.Shape) != len(shape) {
		return g.nodeErr(n, ErrInvalid, "output %q declared shape %v, computes %v", v.Name, v.Shape, shape)
	}
	if v.Shape != nil && len(v.Shape) == len(shape) {
		for j, d := range v.Shape {
			if d >= 0 && shape[j] >= 0 && d != shape[j] {
				return g.nodeErr(n, ErrInvalid, "output %q declared shape %v, computes %v", v.Name, v.Shape, shape)
			}
		}
	}
	v.DType = dt
	if shape != nil {
		v.Shape = append([]int64{}, shape...)
	}
	return nil
}

// known reports whether a shape is fully known.
func known(s []int64) bool { return s != nil && Numel(s) >= 0 }

// broadcast is numpy-style multidirectional broadcasting.
func broadcast(a, b []int64) ([]int64, bool) {
	n := max(len(a), len(b))
	out := make([]int64, n)
	for i := range n {
		x, y := int64(1), int64(1)
		if j := i - (n - len(a)); j >= 0 {
			x = a[j]
		}
		if j := i - (n - len(b)); j >= 0 {
			y = b[j]
		}
		switch {
		case x == y:
			out[i] = x
		case x == 1:
			out[i] = y
		case y == 1:
			out[i] = x
		case x < 0 || y < 0:
			out[i] = max(x, y)
		default:
			return nil, false
		}
	}
	return out, true
}

// normAxis maps a possibly negative axis into [0, rank).
func normAxis(axis int64, rank int) (int, bool) {
	if axis < 0 {
		axis += int64(rank)
	}
	return int(axis), axis >= 0 && axis < int64(rank)
}

// axesArg returns the axes of Squeeze/Unsqueeze/ReduceMean/Slice: an attribute before
// opset newIn, an input at index idx from then on.
func (g *Graph) axesArg(n *Node, newIn int64, idx int) ([]int64, bool, error) {
	if g.Opset < newIn {
		a, ok := n.Attrs["axes"]
		return a.Ints, ok, nil
	}
	if n.Input(idx) == NoValue {
		return nil, false, nil
	}
	ax, ok := g.constInts(n, idx)
	if !ok {
		return nil, false, g.nodeErr(n, ErrUnsupported, "axes must be a constant")
	}
	return ax, true, nil
}

// infer computes the types of n's outputs from its inputs. Shapes may contain unknown (-1)
// dimensions before Specialize; a shape that needs a constant that is not (yet) known is left
// nil. Errors: inputs that do not agree, unsupported attributes.
func (g *Graph) infer(n *Node) error {
	x := g.in(n, 0)
	if x == nil && n.Op != "Constant" && n.Op != "Range" {
		return g.nodeErr(n, ErrInvalid, "missing input 0")
	}
	same := func() error { return g.setOut(n, 0, x.DType, x.Shape) }
	switch n.Op {
	case "Relu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Sqrt", "Erf", "Identity", "Clip", "Softmax":
		return same()
	case "Dropout":
		if err := same(); err != nil {
			return err
		}
		return g.setOut(n, 1, Bool, x.Shape)
	case "LayerNormalization", "BatchNormalization":
		for i := 1; i < len(n.Outputs); i++ {
			if n.Outputs[i] != NoValue {
				return g.nodeErr(n, ErrUnsupported, "training-mode output %d not supported", i)
			}
		}
		if n.Op == "BatchNormalization" && len(x.Shape) >= 2 && x.Shape[1] >= 0 {
			for i := 1; i < 5; i++ {
				p := g.in(n, i)
				if p == nil || p.Shape != nil && (len(p.Shape) != 1 || p.Shape[0] >= 0 && p.Shape[0] != x.Shape[1]) {
					return g.nodeErr(n, ErrInvalid, "input %d must have shape [%d] (the channels of %v)", i, x.Shape[1], x.Shape)
				}
			}
		}
		return same()
	case "Cast":
		to := DType(n.AttrInt("to", 0))
		if to.Size() == 0 || to == Float16 || to == Float64 {
			return g.nodeErr(n, ErrUnsupported, "cast to element type %d not supported", n.AttrInt("to", 0))
		}
		return g.setOut(n, 0, to, x.Shape)
	case "Add", "Sub", "Mul", "Div", "Pow", "Equal":
		y := g.in(n, 1)
		if y == nil {
			return g.nodeErr(n, ErrInvalid, "missing input 1")
		}
		if x.DType != y.DType && n.Op != "Pow" && x.DType != Undefined && y.DType != Undefined {
			return g.nodeErr(n, ErrInvalid, "input types %v and %v differ", x.DType, y.DType)
		}
		dt := x.DType
		if n.Op == "Equal" {
			dt = Bool
		}
		if x.Shape == nil || y.Shape == nil {
			return g.setOut(n, 0, dt, nil)
		}
		s, ok := broadcast(x.Shape, y.Shape)
		if !ok {
			return g.nodeErr(n, ErrInvalid, "shapes %v and %v do not broadcast", x.Shape, y.Shape)
		}
		return g.setOut(n, 0, dt, s)
	case "Where":
		a, b := g.in(n, 1), g.in(n, 2)
		if a == nil || b == nil {
			return g.nodeErr(n, ErrInvalid, "needs 3 inputs")
		}
		if x.Shape == nil || a.Shape == nil || b.Shape == nil {
			return g.setOut(n, 0, a.DType, nil)
		}
		s, ok := broadcast(x.Shape, a.Shape)
		if ok {
			s, ok = broadcast(s, b.Shape)
		}
		if !ok {
			return g.nodeErr(n, ErrInvalid, "shapes %v, %v, %v do not broadcast", x.Shape, a.Shape, b.Shape)
		}
		return g.setOut(n, 0, a.DType, s)
	case "Conv", "MaxPool", "AveragePool":
		return g.inferWindow(n, x)
	case "GlobalAveragePool":
		if x.Shape == nil {
			return g.setOut(n, 0, x.DType, nil)
		}
		if len(x.Shape) < 3 {
			return g.nodeErr(n, ErrInvalid, "input rank %d < 3", len(x.Shape))
		}
		s := slices.Clone(x.Shape)
		for i := 2; i < len(s); i++ {
			s[i] = 1
		}
		return g.setOut(n, 0, x.DType, s)
	case "ReduceMean":
		axes, ok, err := g.axesArg(n, 18, 1)
		if err != nil {
			return err
		}
		if x.Shape == nil { // rank unknown until Specialize; the type is known now
			return g.setOut(n, 0, x.DType, nil)
		}
		keep := n.AttrInt("keepdims", 1) != 0
		red := make([]bool, len(x.Shape))
		for _, a := range axes {
			i, ok := normAxis(a, len(x.Shape))
			if !ok {
				return g.nodeErr(n, ErrInvalid, "axis %d out of range for %v", a, x.Shape)
			}
			red[i] = true
		}
		var s []int64
		for i, d := range x.Shape {
			switch {
			case !red[i] && ok:
				s = append(s, d)
			case keep:
				s = append(s, 1)
			}
		}
		if s == nil {
			s = []int64{}
		}
		return g.setOut(n, 0, x.DType, s)
	case "Gemm":
		b := g.in(n, 1)
		if b == nil || x.Shape == nil || b.Shape == nil {
			return g.setOut(n, 0, x.DType, nil)
		}
		if len(x.Shape) != 2 || len(b.Shape) != 2 {
			return g.nodeErr(n, ErrInvalid, "A %v and B %v must be matrices", x.Shape, b.Shape)
		}
		m, k := x.Shape[0], x.Shape[1]
		if n.AttrInt("transA", 0) != 0 {
			m, k = k, m
		}
		k2, nn := b.Shape[0], b.Shape[1]
		if n.AttrInt("transB", 0) != 0 {
			k2, nn = nn, k2
		}
		if k >= 0 && k2 >= 0 && k != k2 {
			return g.nodeErr(n, ErrInvalid, "A %v and B %v: inner dimensions %d and %d differ", x.Shape, b.Shape, k, k2)
		}
		if c := g.in(n, 2); c != nil && c.Shape != nil {
			if _, ok := broadcast([]int64{m, nn}, c.Shape); !ok || len(c.Shape) > 2 {
				return g.nodeErr(n, ErrInvalid, "C %v does not broadcast to [%d %d]", c.Shape, m, nn)
			}
		}
		return g.setOut(n, 0, x.DType, []int64{m, nn})
	case "MatMul":
		b := g.in(n, 1)
		if b == nil || x.Shape == nil || b.Shape == nil {
			return g.setOut(n, 0, x.DType, nil)
		}
		a, bb := slices.Clone(x.Shape), slices.Clone(b.Shape)
		if len(a) == 0 || len(bb) == 0 {
			return g.nodeErr(n, ErrInvalid, "scalar operand")
		}
		va, vb := len(a) == 1, len(bb) == 1
		if va {
			a = []int64{1, a[0]}
		}
		if vb {
			bb = []int64{bb[0], 1}
		}
		k, k2 := a[len(a)-1], bb[len(bb)-2]
		if k >= 0 && k2 >= 0 && k != k2 {
			return g.nodeErr(n, ErrInvalid, "shapes %v and %v: inner dimensions %d and %d differ", x.Shape, b.Shape, k, k2)
		}
		batch, ok := broadcast(a[:len(a)-2], bb[:len(bb)-2])
		if !ok {
			return g.nodeErr(n, ErrInvalid, "batch dimensions of %v and %v do not broadcast", x.Shape, b.Shape)
		}
		s := batch
		if !va {
			s = append(s, a[len(a)-2])
		}
		if !vb {
			s = append(s, bb[len(bb)-1])
		}
		return g.setOut(n, 0, x.DType, s)
	case "Concat":
		if !known(x.Shape) && x.Shape == nil {
			return g.setOut(n, 0, x.DType, nil)
		}
		ax, ok := normAxis(n.AttrInt("axis", 0), len(x.Shape))
		if !ok {
			return g.nodeErr(n, ErrInvalid, "axis %d out of range for %v", n.AttrInt("axis", 0), x.Shape)
		}
		s := slices.Clone(x.Shape)
		s[ax] = 0
		for i := range n.Inputs {
			y := g.in(n, i)
			if y == nil || y.Shape == nil {
				return g.setOut(n, 0, x.DType, nil)
			}
			if len(y.Shape) != len(s) || y.DType != x.DType {
				return g.nodeErr(n, ErrInvalid, "input %d %v%v does not match input 0 %v%v", i, y.DType, y.Shape, x.DType, x.Shape)
			}
			for j, d := range y.Shape {
				switch {
				case j == ax:
					if d < 0 || s[ax] < 0 {
						s[ax] = -1
					} else {
						s[ax] += d
					}
				case d >= 0 && s[j] >= 0 && d != s[j]:
					return g.nodeErr(n, ErrInvalid, "input %d shape %v does not match %v outside axis %d", i, y.Shape, x.Shape, ax)
				case s[j] < 0:
					s[j] = d
				}
			}
		}
		return g.setOut(n, 0, x.DType, s)
	case "Flatten":
		if x.Shape == nil {
			return g.setOut(n, 0, x.DType, nil)
		}
		ax := n.AttrInt("axis", 1)
		if ax < 0 {
			ax += int64(len(x.Shape))
		}
		if ax < 0 || ax > int64(len(x.Shape)) {
			return g.nodeErr(n, ErrInvalid, "axis %d out of range for %v", n.AttrInt("axis", 1), x.Shape)
		}
		return g.setOut(n, 0, x.DType, []int64{Numel(x.Shape[:ax]), Numel(x.Shape[ax:])})
	case "Reshape":
		want, ok := g.constInts(n, 1)
		if !ok || x.Shape == nil {
			return g.setOut(n, 0, x.DType, nil)
		}
		s, err := reshape(x.Shape, want, n.AttrInt("allowzero", 0) != 0)
		if err != nil {
			return g.nodeErr(n, ErrInvalid, "%v", err)
		}
		return g.setOut(n, 0, x.DType, s)
	case "Transpose":
		if x.Shape == nil {
			return g.setOut(n, 0, x.DType, nil)
		}
		perm, err := g.perm(n, len(x.Shape))
		if err != nil {
			return err
		}
		s := make([]int64, len(perm))
		for i, p := range perm {
			s[i] = x.Shape[p]
		}
		return g.setOut(n, 0, x.DType, s)
	case "Pad":
		var pads []int64
		if g.Opset < 11 {
			pads = n.AttrInts("pads")
		} else if p, ok := g.constInts(n, 1); ok {
			pads = p
		} else {
			return g.setOut(n, 0, x.DType, nil)
		}
		if n.AttrString("mode", "constant") != "constant" && n.AttrString("mode", "constant") != "reflect" && n.AttrString("mode", "constant") != "edge" {
			return g.nodeErr(n, ErrUnsupported, "mode %q", n.AttrString("mode", ""))
		}
		if x.Shape == nil {
			return g.setOut(n, 0, x.DType, nil)
		}
		r := len(x.Shape)
		if len(pads) != 2*r || n.Input(3) != NoValue {
			return g.nodeErr(n, ErrUnsupported, "pads %v for rank %d (axes input not supported)", pads, r)
		}
		s := slices.Clone(x.Shape)
		for i := range s {
			if s[i] >= 0 {
				s[i] += pads[i] + pads[i+r]
				if s[i] < 0 {
					return g.nodeErr(n, ErrInvalid, "pads %v make %v negative", pads, x.Shape)
				}
			}
		}
		return g.setOut(n, 0, x.DType, s)
	case "Squeeze", "Unsqueeze":
		axes, has, err := g.axesArg(n, 13, 1)
		if err != nil {
			return err
		}
		if x.Shape == nil {
			return g.setOut(n, 0, x.DType, nil)
		}
		s, err := squeeze(n.Op == "Unsqueeze", x.Shape, axes, has)
		if err != nil {
			return g.nodeErr(n, ErrInvalid, "%v", err)
		}
		return g.setOut(n, 0, x.DType, s)
	case "Slice":
		if x.Shape == nil {
			return g.setOut(n, 0, x.DType, nil)
		}
		sl, ok, err := g.sliceArgs(n, x.Shape)
		if err != nil || !ok {
			if err == nil {
				err = g.setOut(n, 0, x.DType, nil)
			}
			return err
		}
		s := make([]int64, len(x.Shape))
		for i := range s {
			s[i] = sl[i].len()
		}
		return g.setOut(n, 0, x.DType, s)
	case "Split":
		return g.inferSplit(n, x)
	case "Gather":
		idx := g.in(n, 1)
		if idx == nil || x.Shape == nil || idx.Shape == nil {
			return g.setOut(n, 0, x.DType, nil)
		}
		ax, ok := normAxis(n.AttrInt("axis", 0), len(x.Shape))
		if !ok {
			return g.nodeErr(n, ErrInvalid, "axis %d out of range for %v", n.AttrInt("axis", 0), x.Shape)
		}
		if c := g.Const(n.Input(1)); c != nil && x.Shape[ax] >= 0 {
			for _, i := range c.I {
				if i < -x.Shape[ax] || i >= x.Shape[ax] {
					return g.nodeErr(n, ErrInvalid, "index %d out of range for axis %d of %v", i, ax, x.Shape)
				}
			}
		}
		s := append(slices.Concat(x.Shape[:ax], idx.Shape), x.Shape[ax+1:]...)
		if s == nil {
			s = []int64{}
		}
		return g.setOut(n, 0, x.DType, s)
	case "Shape":
		if x.Shape == nil {
			return g.setOut(n, 0, Int64, nil)
		}
		lo, hi := shapeRange(n, len(x.Shape))
		return g.setOut(n, 0, Int64, []int64{int64(hi - lo)})
	case "ConstantOfShape":
		dt := Float32
		if a, ok := n.Attrs["value"]; ok && a.Kind == AttrTensor {
			dt = a.Tensor.DType
		}
		s, ok := g.constInts(n, 0)
		if !ok {
			return g.setOut(n, 0, dt, nil)
		}
		return g.setOut(n, 0, dt, s)
	case "Expand":
		s, ok := g.constInts(n, 1)
		if !ok || x.Shape == nil {
			return g.setOut(n, 0, x.DType, nil)
		}
		out, ok := broadcast(x.Shape, s)
		if !ok {
			return g.nodeErr(n, ErrInvalid, "cannot expand %v to %v", x.Shape, s)
		}
		return g.setOut(n, 0, x.DType, out)
	case "Range":
		a := g.in(n, 0)
		if a == nil {
			return g.nodeErr(n, ErrInvalid, "missing start")
		}
		return g.setOut(n, 0, a.DType, nil) // known only when folded
	}
	return g.nodeErr(n, ErrUnsupported, "no shape inference for %s", n.Op)
}

func shapeRange(n *Node, rank int) (int, int) {
	clamp := func(v int64) int {
		if v < 0 {
			v += int64(rank)
		}
		return int(min(max(v, 0), int64(rank)))
	}
	lo := clamp(n.AttrInt("start", 0))
	hi := clamp(n.AttrInt("end", int64(rank)))
	return lo, max(lo, hi)
}

func (g *Graph) perm(n *Node, rank int) ([]int, error) {
	p := n.AttrInts("perm")
	out := make([]int, rank)
	if p == nil {
		for i := range out {
			out[i] = rank - 1 - i
		}
		return out, nil
	}
	if len(p) != rank {
		return nil, g.nodeErr(n, ErrInvalid, "perm %v for rank %d", p, rank)
	}
	seen := make([]bool, rank)
	for i, v := range p {
		if v < 0 || v >= int64(rank) || seen[v] {
			return nil, g.nodeErr(n, ErrInvalid, "perm %v is not a permutation", p)
		}
		seen[v] = true
		out[i] = int(v)
	}
	return out, nil
}

// reshape resolves Reshape's target shape (0 copies the input dimension unless allowzero, -1
// is inferred).
func reshape(in, want []int64, allowzero bool) ([]int64, error) {
	out := slices.Clone(want)
	infer := -1
	for i, d := range out {
		switch {
		case d == 0 && !allowzero:
			if i >= len(in) {
				return nil, fmt.Errorf("shape %v copies dimension %d of %v", want, i, in)
			}
			out[i] = in[i]
		case d == -1:
			if infer >= 0 {
				return nil, fmt.Errorf("shape %v has two -1", want)
			}
			infer = i
		case d < 0:
			return nil, fmt.Errorf("shape %v has negative dimension", want)
		}
	}
	total := Numel(in)
	if infer >= 0 {
		rest := int64(1)
		for i, d := range out {
			if i != infer {
				if d < 0 {
					rest = -1
					break
				}
				rest *= d
			}
		}
		switch {
		case total < 0 || rest < 0:
			out[infer] = -1
		case rest == 0 || total%rest != 0:
			return nil, fmt.Errorf("cannot reshape %v to %v", in, want)
		default:
			out[infer] = total / rest
		}
	}
	if got := Numel(out); total >= 0 && got >= 0 && got != total {
		return nil, fmt.Errorf("cannot reshape %v (%d elements) to %v", in, total, want)
	}
	return out, nil
}

// squeeze computes Squeeze's or Unsqueeze's output shape.
func squeeze(unsqueeze bool, in, axes []int64, has bool) ([]int64, error) {
	if unsqueeze {
		r := len(in) + len(axes)
		ins := make([]bool, r)
		for _, a := range axes {
			i, ok := normAxis(a, r)
			if !ok || ins[i] {
				return nil, fmt.Errorf("axes %v invalid for rank %d", axes, len(in))
			}
			ins[i] = true
		}
		out := make([]int64, 0, r)
		j := 0
		for i := range r {
			if ins[i] {
				out = append(out, 1)
			} else {
				out = append(out, in[j])
				j++
			}
		}
		return out, nil
	}
	drop := make([]bool, len(in))
	if !has {
		for i, d := range in {
			if d < 0 {
				return nil, fmt.Errorf("cannot squeeze unknown dimensions of %v", in)
			}
			drop[i] = d == 1
		}
	}
	for _, a := range axes {
		i, ok := normAxis(a, len(in))
		if !ok || in[i] > 1 || in[i] == 0 {
			return nil, fmt.Errorf("axes %v invalid for %v", axes, in)
		}
		drop[i] = true
	}
	out := []int64{}
	for i, d := range in {
		if !drop[i] {
			out = append(out, d)
		}
	}
	return out, nil
}

// span is one axis of a Slice: start, step and count.
type span struct{ start, step, n int64 }

func (s span) len() int64 { return s.n }

// sliceArgs resolves Slice's starts/ends/axes/steps against shape; ok is false when they are
// not constants yet.
func (g *Graph) sliceArgs(n *Node, shape []int64) ([]span, bool, error) {
	var starts, ends, axes, steps []int64
	if g.Opset < 10 {
		starts, ends, axes = n.AttrInts("starts"), n.AttrInts("ends"), n.AttrInts("axes")
	} else {
		var ok1, ok2, ok3, ok4 bool
		starts, ok1 = g.constInts(n, 1)
		ends, ok2 = g.constInts(n, 2)
		axes, ok3 = g.constInts(n, 3)
		steps, ok4 = g.constInts(n, 4)
		if !ok1 || !ok2 || !ok3 && n.Input(3) != NoValue || !ok4 && n.Input(4) != NoValue {
			return nil, false, nil
		}
	}
	if len(starts) != len(ends) || axes != nil && len(axes) != len(starts) || steps != nil && len(steps) != len(starts) {
		return nil, false, g.nodeErr(n, ErrInvalid, "starts %v, ends %v, axes %v, steps %v differ in length", starts, ends, axes, steps)
	}
	out := make([]span, len(shape))
	for i, d := range shape {
		out[i] = span{0, 1, d}
	}
	for i := range starts {
		ax := int64(i)
		if axes != nil {
			ax = axes[i]
		}
		a, ok := normAxis(ax, len(shape))
		if !ok {
			return nil, false, g.nodeErr(n, ErrInvalid, "axis %d out of range for %v", ax, shape)
		}
		step := int64(1)
		if steps != nil {
			step = steps[i]
		}
		d := shape[a]
		if step == 0 {
			return nil, false, g.nodeErr(n, ErrInvalid, "step 0")
		}
		if d < 0 {
			out[a] = span{0, step, -1}
			continue
		}
		clamp := func(v, lo, hi int64) int64 {
			if v < 0 {
				v += d
			}
			return min(max(v, lo), hi)
		}
		var s, e int64
		if step > 0 {
			s, e = clamp(starts[i], 0, d), clamp(ends[i], 0, d)
		} else {
			s, e = clamp(starts[i], -1, d-1), clamp(ends[i], -1, d-1)
		}
		cnt := int64(0)
		if step > 0 && e > s {
			cnt = (e - s + step - 1) / step
		} else if step < 0 && s > e {
			cnt = (s - e - step - 1) / -step
		}
		out[a] = span{s, step, cnt}
	}
	return out, true, nil
}

func (g *Graph) inferSplit(n *Node, x *Value) error {
	if x.Shape == nil { // shapes unknown until Specialize; the types are known now
		for i := range n.Outputs {
			if err := g.setOut(n, i, x.DType, nil); err != nil {
				return err
			}
		}
		return nil
	}
	ax, ok := normAxis(n.AttrInt("axis", 0), len(x.Shape))
	if !ok {
		return g.nodeErr(n, ErrInvalid, "axis %d out of range for %v", n.AttrInt("axis", 0), x.Shape)
	}
	var sizes []int64
	if g.Opset < 13 {
		sizes = n.AttrInts("split")
	} else if n.Input(1) != NoValue {
		if sizes, ok = g.constInts(n, 1); !ok {
			return g.nodeErr(n, ErrUnsupported, "split sizes must be a constant")
		}
	}
	d := x.Shape[ax]
	if sizes == nil {
		k := int64(len(n.Outputs))
		if d < 0 {
			return nil
		}
		if k == 0 || d%k != 0 {
			return g.nodeErr(n, ErrUnsupported, "dimension %d does not split evenly into %d outputs", d, k)
		}
		for range k {
			sizes = append(sizes, d/k)
		}
	}
	var sum int64
	for _, s := range sizes {
		if s < 0 {
			return g.nodeErr(n, ErrInvalid, "negative split %v", sizes)
		}
		sum += s
	}
	if len(sizes) != len(n.Outputs) || d >= 0 && sum != d {
		return g.nodeErr(n, ErrInvalid, "split %v of dimension %d into %d outputs", sizes, d, len(n.Outputs))
	}
	for i, sz := range sizes {
		s := slices.Clone(x.Shape)
		s[ax] = sz
		if err := g.setOut(n, i, x.DType, s); err != nil {
			return err
		}
	}
	return nil
}

// inferWindow covers Conv, MaxPool and AveragePool.
func (g *Graph) inferWindow(n *Node, x *Value) error {
	if x.Shape == nil {
		return g.setOut(n, 0, x.DType, nil)
	}
	if len(x.Shape) < 3 {
		return g.nodeErr(n, ErrInvalid, "input %v: rank %d < 3", x.Shape, len(x.Shape))
	}
	sp := len(x.Shape) - 2
	kernel := n.AttrInts("kernel_shape")
	outC := x.Shape[1]
	if n.Op == "Conv" {
		w := g.in(n, 1)
		if w == nil || w.Shape == nil {
			return g.nodeErr(n, ErrInvalid, "weight shape unknown")
		}
		if len(w.Shape) != len(x.Shape) {
			return g.nodeErr(n, ErrInvalid, "weight %v does not match input %v", w.Shape, x.Shape)
		}
		group := n.AttrInt("group", 1)
		if group < 1 || x.Shape[1] >= 0 && (x.Shape[1]%group != 0 || w.Shape[1]*group != x.Shape[1]) || w.Shape[0]%group != 0 {
			return g.nodeErr(n, ErrInvalid, "weight %v, group %d do not match input channels of %v", w.Shape, group, x.Shape)
		}
		if kernel == nil {
			kernel = w.Shape[2:]
		} else if !slices.Equal(kernel, w.Shape[2:]) {
			return g.nodeErr(n, ErrInvalid, "kernel_shape %v does not match weight %v", kernel, w.Shape)
		}
		if b := g.in(n, 2); b != nil && b.Shape != nil && (len(b.Shape) != 1 || b.Shape[0] != w.Shape[0]) {
			return g.nodeErr(n, ErrInvalid, "bias %v does not match weight %v", b.Shape, w.Shape)
		}
		outC = w.Shape[0]
	}
	if len(n.Outputs) > 1 && n.Outputs[1] != NoValue {
		return g.nodeErr(n, ErrUnsupported, "MaxPool indices output")
	}
	if len(kernel) != sp {
		return g.nodeErr(n, ErrInvalid, "kernel_shape %v for %d spatial dimensions", kernel, sp)
	}
	get := func(name string, def int64, n2 int) ([]int64, error) {
		v := n.AttrInts(name)
		if v == nil {
			v = make([]int64, n2)
			for i := range v {
				v[i] = def
			}
		}
		if len(v) != n2 {
			return nil, g.nodeErr(n, ErrInvalid, "%s %v: want %d values", name, v, n2)
		}
		return v, nil
	}
	strides, err := get("strides", 1, sp)
	if err != nil {
		return err
	}
	dil, err := get("dilations", 1, sp)
	if err != nil {
		return err
	}
	pads, err := get("pads", 0, 2*sp)
	if err != nil {
		return err
	}
	ceil := n.AttrInt("ceil_mode", 0) != 0
	autoPad := n.AttrString("auto_pad", "NOTSET")
	s := slices.Clone(x.Shape)
	s[1] = outC
	for i := range sp {
		in := x.Shape[2+i]
		if strides[i] < 1 || dil[i] < 1 || kernel[i] < 1 || pads[i] < 0 || pads[i+sp] < 0 {
			return g.nodeErr(n, ErrInvalid, "kernel %v, strides %v, dilations %v, pads %v", kernel, strides, dil, pads)
		}
		if in < 0 {
			s[2+i] = -1
			continue
		}
		ek := dil[i]*(kernel[i]-1) + 1
		var o int64
		switch autoPad {
		case "NOTSET", "":
			num := in + pads[i] + pads[i+sp] - ek
			if num < 0 {
				return g.nodeErr(n, ErrInvalid, "kernel %v larger than padded input %v", kernel, x.Shape)
			}
			if ceil {
				o = (num+strides[i]-1)/strides[i] + 1
				if (o-1)*strides[i] >= in+pads[i] {
					o-- // the last window must start inside the input or left padding
				}
			} else {
				o = num/strides[i] + 1
			}
		case "VALID":
			o = (in-ek)/strides[i] + 1
			if in < ek {
				return g.nodeErr(n, ErrInvalid, "kernel %v larger than input %v", kernel, x.Shape)
			}
		case "SAME_UPPER", "SAME_LOWER":
			o = (in + strides[i] - 1) / strides[i]
		default:
			return g.nodeErr(n, ErrUnsupported, "auto_pad %q", autoPad)
		}
		s[2+i] = o
	}
	return g.setOut(n, 0, x.DType, s)
}
