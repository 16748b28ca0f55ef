package model

import (
	"math"
	"slices"
)

// MaxFoldElems bounds the result of folding one node into a constant: shape chains produce a
// handful of integers; a bigger result would put a computed activation-sized tensor in the
// weights.
const MaxFoldElems = 1 << 16

// foldable lists the ops evaluate handles.
var foldable = map[string]bool{
	"Shape": true, "Gather": true, "Unsqueeze": true, "Squeeze": true, "Concat": true, "Cast": true,
	"Reshape": true, "Flatten": true, "Identity": true, "Slice": true, "ConstantOfShape": true,
	"Range": true, "Equal": true, "Where": true, "Expand": true, "Add": true, "Sub": true,
	"Mul": true, "Div": true, "Dropout": true, "Sqrt": true,
}

// fold evaluates node n when its result is known before run time: all its inputs are
// constants, or (Shape) its input's shape is fully known. It returns the output constants,
// nil when n cannot be folded. The output types must have been inferred.
func (g *Graph) fold(n *Node) []*Tensor {
	if !foldable[n.Op] || len(n.Outputs) == 0 || n.Outputs[0] == NoValue {
		return nil
	}
	if n.Op == "Dropout" && len(n.Outputs) > 1 && n.Outputs[1] != NoValue {
		return nil
	}
	out := &g.Values[n.Outputs[0]]
	if n.Op == "Shape" {
		x := g.in(n, 0)
		if !known(x.Shape) {
			return nil
		}
		lo, hi := shapeRange(n, len(x.Shape))
		return []*Tensor{ScalarTensorI64([]int64{int64(hi - lo)}, x.Shape[lo:hi]...)}
	}
	for _, in := range n.Inputs {
		if in != NoValue && g.Values[in].Const == nil {
			return nil
		}
	}
	if !known(out.Shape) || Numel(out.Shape) > MaxFoldElems || out.DType.Size() == 0 {
		return nil
	}
	x := g.Const(n.Input(0))
	res := &Tensor{DType: out.DType, Shape: slices.Clone(out.Shape)}
	total := int(Numel(out.Shape))
	// from fills res by an index map into src (data movement).
	from := func(src *Tensor, idx func(i int) int) *Tensor {
		if src.DType.IsFloat() != res.DType.IsFloat() {
			return nil
		}
		if res.DType.IsFloat() {
			res.F = make([]float32, total)
			for i := range res.F {
				res.F[i] = src.F[idx(i)]
			}
		} else {
			res.I = make([]int64, total)
			for i := range res.I {
				res.I[i] = src.I[idx(i)]
			}
		}
		return res
	}
	ident := func(i int) int { return i }
	switch n.Op {
	case "Identity", "Dropout", "Reshape", "Flatten", "Squeeze", "Unsqueeze":
		if x.Len() != total {
			return nil
		}
		return []*Tensor{from(x, ident)}
	case "Cast":
		switch {
		case res.DType.IsFloat() && x.DType.IsFloat():
			res.F = slices.Clone(x.F)
		case res.DType.IsFloat():
			res.F = make([]float32, total)
			for i, v := range x.I {
				res.F[i] = float32(v)
			}
		default:
			res.I = make([]int64, total)
			for i := range res.I {
				var v int64
				if x.DType.IsFloat() {
					f := float64(x.F[i])
					if math.IsNaN(f) || math.Abs(f) > 1<<62 {
						return nil
					}
					v = int64(f)
				} else {
					v = x.I[i]
				}
				res.I[i] = castInt(v, res.DType)
			}
		}
		return []*Tensor{res}
	case "Gather":
		ax, _ := normAxis(n.AttrInt("axis", 0), len(x.Shape))
		idx := g.Const(n.Input(1))
		outer := int(Numel(x.Shape[:ax]))
		d := int(x.Shape[ax])
		inner := int(Numel(x.Shape[ax+1:]))
		ni := idx.Len()
		if outer*ni*inner != total {
			return nil
		}
		return []*Tensor{from(x, func(i int) int {
			o, r := i/(ni*inner), i%(ni*inner)
			k, in := r/inner, r%inner
			j := int(idx.I[k])
			if j < 0 {
				j += d
			}
			return (o*d+j)*inner + in
		})}
	case "Concat":
		ax, _ := normAxis(n.AttrInt("axis", 0), len(out.Shape))
		outer := int(Numel(out.Shape[:ax]))
		inner := int(Numel(out.Shape[ax+1:]))
		if res.DType.IsFloat() {
			res.F = make([]float32, 0, total)
		} else {
			res.I = make([]int64, 0, total)
		}
		for o := range outer {
			for k := range n.Inputs {
				c := g.Const(n.Inputs[k])
				if c.DType.IsFloat() != res.DType.IsFloat() {
					return nil
				}
				w := int(c.Shape[ax]) * inner
				if res.DType.IsFloat() {
					res.F = append(res.F, c.F[o*w:(o+1)*w]...)
				} else {
					res.I = append(res.I, c.I[o*w:(o+1)*w]...)
				}
			}
		}
		if res.Len() != total {
			return nil
		}
		return []*Tensor{res}
	case "Slice":
		sl, ok, err := g.sliceArgs(n, x.Shape)
		if err != nil || !ok {
			return nil
		}
		return []*Tensor{from(x, func(i int) int {
			off, stride := 0, 1
			for a := len(out.Shape) - 1; a >= 0; a-- {
				c := i % int(out.Shape[a])
				i /= int(out.Shape[a])
				off += (int(sl[a].start) + c*int(sl[a].step)) * stride
				stride *= int(x.Shape[a])
			}
			return off
		})}
	case "Expand":
		return []*Tensor{from(x, broadcastIndex(out.Shape, x.Shape))}
	case "ConstantOfShape":
		v := TensorF32(nil, 0)
		if a, ok := n.Attrs["value"]; ok && a.Kind == AttrTensor && a.Tensor.Len() == 1 {
			v = a.Tensor
		}
		return []*Tensor{from(v, func(int) int { return 0 })}
	case "Range":
		s, l, d := g.Const(n.Input(0)), g.Const(n.Input(1)), g.Const(n.Input(2))
		if s == nil || l == nil || d == nil || !s.DType.IsInt() || s.Len() != 1 || l.Len() != 1 || d.Len() != 1 || d.I[0] == 0 {
			return nil
		}
		cnt := max(0, (l.I[0]-s.I[0]+d.I[0]-sign(d.I[0]))/d.I[0])
		if cnt > MaxFoldElems {
			return nil
		}
		r := &Tensor{DType: s.DType, Shape: []int64{cnt}, I: make([]int64, cnt)}
		for i := range r.I {
			r.I[i] = s.I[0] + int64(i)*d.I[0]
		}
		return []*Tensor{r}
	case "Add", "Sub", "Mul", "Div", "Equal", "Sqrt":
		var y *Tensor
		if n.Op != "Sqrt" {
			y = g.Const(n.Input(1))
		}
		return g.arith(n.Op, x, y, res)
	case "Where":
		c, a, b := x, g.Const(n.Input(1)), g.Const(n.Input(2))
		ci, ai, bi := broadcastIndex(out.Shape, c.Shape), broadcastIndex(out.Shape, a.Shape), broadcastIndex(out.Shape, b.Shape)
		if res.DType.IsFloat() {
			res.F = make([]float32, total)
			for i := range res.F {
				if c.I[ci(i)] != 0 {
					res.F[i] = a.F[ai(i)]
				} else {
					res.F[i] = b.F[bi(i)]
				}
			}
		} else {
			res.I = make([]int64, total)
			for i := range res.I {
				if c.I[ci(i)] != 0 {
					res.I[i] = a.I[ai(i)]
				} else {
					res.I[i] = b.I[bi(i)]
				}
			}
		}
		return []*Tensor{res}
	}
	return nil
}

func sign(v int64) int64 {
	if v < 0 {
		return -1
	}
	return 1
}

func castInt(v int64, dt DType) int64 {
	switch dt {
	case Int32:
		return int64(int32(v))
	case Int8:
		return int64(int8(v))
	case Uint8:
		return int64(uint8(v))
	case Bool:
		if v != 0 {
			return 1
		}
		return 0
	}
	return v
}

// broadcastIndex maps an index of the broadcast shape out to the index of the element of a
// tensor of shape in it reads.
func broadcastIndex(out, in []int64) func(int) int {
	return func(i int) int {
		off, stride := 0, 1
		for a := len(out) - 1; a >= 0; a-- {
			c := i % int(out[a])
			i /= int(out[a])
			if b := a - (len(out) - len(in)); b >= 0 {
				if in[b] != 1 {
					off += c * stride
				}
				stride *= int(in[b])
			}
		}
		return off
	}
}

// arith folds an elementwise op over constants (float32 in float32, integers in int64, as a
// backend would compute them).
func (g *Graph) arith(op string, x, y, res *Tensor) []*Tensor {
	total := int(Numel(res.Shape))
	xi := broadcastIndex(res.Shape, x.Shape)
	yi := func(int) int { return 0 }
	if y != nil {
		if y.DType.IsFloat() != x.DType.IsFloat() {
			return nil
		}
		yi = broadcastIndex(res.Shape, y.Shape)
	}
	if x.DType.IsFloat() {
		if op == "Equal" {
			res.I = make([]int64, total)
			for i := range res.I {
				if x.F[xi(i)] == y.F[yi(i)] {
					res.I[i] = 1
				}
			}
			return []*Tensor{res}
		}
		res.F = make([]float32, total)
		for i := range res.F {
			a := x.F[xi(i)]
			var b float32
			if y != nil {
				b = y.F[yi(i)]
			}
			switch op {
			case "Add":
				res.F[i] = a + b
			case "Sub":
				res.F[i] = a - b
			case "Mul":
				res.F[i] = a * b
			case "Div":
				res.F[i] = a / b
			case "Sqrt":
				res.F[i] = float32(math.Sqrt(float64(a)))
			}
		}
		return []*Tensor{res}
	}
	if op == "Sqrt" {
		return nil
	}
	res.I = make([]int64, total)
	for i := range res.I {
		a, b := x.I[xi(i)], y.I[yi(i)]
		switch op {
		case "Add":
			res.I[i] = a + b
		case "Sub":
			res.I[i] = a - b
		case "Mul":
			res.I[i] = a * b
		case "Div":
			if b == 0 {
				return nil // left to run time, where it is the backend's error
			}
			res.I[i] = a / b
		case "Equal":
			if a == b {
				res.I[i] = 1
			}
		}
		if res.DType != Bool {
			res.I[i] = castInt(res.I[i], res.DType)
		}
	}
	return []*Tensor{res}
}
