package cpu

import (
	"math"
	"slices"
)

// Expand, Where and Equal: what torch.onnx emits for vit_b_16's class token and masks, the one
// torchvision zoo model that needs more than the CNN op set.

// forEachBroadcast calls f for every element o of a tensor of shape out with the element
// offset of each operand (given by its broadcast strides) in offs.
func forEachBroadcast(out []int, strides [][]int, f func(o int, offs []int)) {
	n := numel(out)
	offs := make([]int, len(strides))
	idx := make([]int, len(out))
	for o := 0; o < n; o++ {
		f(o, offs)
		for d := len(out) - 1; d >= 0; d-- {
			idx[d]++
			for k, st := range strides {
				offs[k] += st[d]
			}
			if idx[d] < out[d] {
				break
			}
			for k, st := range strides {
				offs[k] -= st[d] * out[d]
			}
			idx[d] = 0
		}
	}
}

// bcastMove copies elements of width size from each operand's broadcast position into y:
// pick(o, offs) returns which operand (and so which offset) element o takes.
func bcastMove(size int, out []int, strides [][]int, srcs [][]byte, y []byte, pick func(o int, offs []int) int) {
	forEachBroadcast(out, strides, func(o int, offs []int) {
		k := pick(o, offs)
		copy(y[o*size:(o+1)*size], srcs[k][offs[k]*size:(offs[k]+1)*size])
	})
}

func compileExpand(n *Node, in []*Type, consts []*Tensor) (*Kernel, error) {
	x, err := input(n, in, 0)
	if err != nil {
		return nil, err
	}
	if err := wantSized(n, x); err != nil {
		return nil, err
	}
	shape, err := constInts(n, consts, 1)
	if err != nil {
		return nil, err
	}
	s := make([]int, len(shape))
	for i, d := range shape {
		if d < 0 || d > 1<<30 {
			return nil, n.errorf("shape %v has bad dim %d", shape, d)
		}
		s[i] = int(d)
	}
	out, err := broadcastShape(x.Shape, s)
	if err != nil {
		return nil, n.errorf("%v", err)
	}
	if numel(out) > 1<<28 {
		return nil, n.errorf("output %v too large", out)
	}
	st := [][]int{broadcastStrides(x.Shape, out)}
	size := x.DType.Size()
	return &Kernel{Out: []Type{{DType: x.DType, Shape: out}}, Run: func(in, o []*Tensor) error {
		bcastMove(size, out, st, [][]byte{in[0].Data}, o[0].Data, func(int, []int) int { return 0 })
		return nil
	}}, nil
}

func compileWhere(n *Node, in []*Type, consts []*Tensor) (*Kernel, error) {
	var ts [3]*Type
	for i := range ts {
		t, err := input(n, in, i)
		if err != nil {
			return nil, err
		}
		ts[i] = t
	}
	c, x, y := ts[0], ts[1], ts[2]
	if c.DType != Bool {
		return nil, n.errorf("condition is %v, want bool", c.DType)
	}
	if x.DType != y.DType {
		return nil, n.errorf("X is %v and Y is %v", x.DType, y.DType)
	}
	if err := wantSized(n, x); err != nil {
		return nil, err
	}
	o1, err := broadcastShape(c.Shape, x.Shape)
	if err != nil {
		return nil, n.errorf("%v", err)
	}
	out, err := broadcastShape(o1, y.Shape)
	if err != nil {
		return nil, n.errorf("%v", err)
	}
	st := [][]int{broadcastStrides(c.Shape, out), broadcastStrides(x.Shape, out), broadcastStrides(y.Shape, out)}
	size := x.DType.Size()
	return &Kernel{Out: []Type{{DType: x.DType, Shape: out}}, Run: func(in, o []*Tensor) error {
		cond := in[0].Data
		bcastMove(size, out, st, [][]byte{nil, in[1].Data, in[2].Data}, o[0].Data, func(_ int, offs []int) int {
			if cond[offs[0]] != 0 {
				return 1
			}
			return 2
		})
		return nil
	}}, nil
}

func compileEqual(n *Node, in []*Type, consts []*Tensor) (*Kernel, error) {
	a, err := input(n, in, 0)
	if err != nil {
		return nil, err
	}
	b, err := input(n, in, 1)
	if err != nil {
		return nil, err
	}
	if a.DType != b.DType {
		return nil, n.errorf("input types %v and %v differ", a.DType, b.DType)
	}
	if err := wantSized(n, a); err != nil {
		return nil, err
	}
	out, err := broadcastShape(a.Shape, b.Shape)
	if err != nil {
		return nil, n.errorf("%v", err)
	}
	st := [][]int{broadcastStrides(a.Shape, out), broadcastStrides(b.Shape, out)}
	size := a.DType.Size()
	isFloat := slices.Contains([]DType{Float32, Float64, Float16, BFloat16}, a.DType)
	return &Kernel{Out: []Type{{DType: Bool, Shape: out}}, Run: func(in, o []*Tensor) error {
		y := o[0].Data
		if isFloat {
			// IEEE equality: +0 == -0, NaN != NaN (values are exact in float64)
			av, err := in[0].Float64s()
			if err != nil {
				return err
			}
			bv, err := in[1].Float64s()
			if err != nil {
				return err
			}
			forEachBroadcast(out, st, func(i int, offs []int) {
				y[i] = b2u(av[offs[0]] == bv[offs[1]] && !math.IsNaN(av[offs[0]]))
			})
			return nil
		}
		x0, x1 := in[0].Data, in[1].Data
		forEachBroadcast(out, st, func(i int, offs []int) {
			y[i] = b2u(slices.Equal(x0[offs[0]*size:(offs[0]+1)*size], x1[offs[1]*size:(offs[1]+1)*size]))
		})
		return nil
	}}, nil
}

func b2u(b bool) byte {
	if b {
		return 1
	}
	return 0
}
