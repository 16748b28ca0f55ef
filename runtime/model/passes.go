package model

import (
	"fmt"
	"math"
	"slices"
)

// FusedActivation is the attribute the fusion pass sets on Conv and Gemm: "Relu", or "Clip"
// with float attributes FusedMin and FusedMax. The backend applies it to every output element
// after adding the bias. (runtime/cpu reads the same names as its ActAttr.)
const (
	FusedActivation = "activation"
	FusedMin        = "act_min"
	FusedMax        = "act_max"
)

// Optimize returns a copy of g rewritten for inference, independent of the batch size:
//
//  1. infer the types it can and fold nodes whose inputs are all constants (Constant chains,
//     Shape of fully known shapes);
//  2. drop Identity and Dropout;
//  3. fold BatchNormalization into the Conv before it (W' = W·γ/√(σ²+ε), b' = (b−μ)·γ/√(σ²+ε)+β)
//     when that Conv's output feeds nothing else;
//  4. fuse a constant per-channel Add into a Conv without bias, MatMul [M,K]×[K,N] + Add [N]
//     into Gemm, and a following Relu or constant-bound Clip into Conv or Gemm;
//  5. remove dead nodes and unreferenced values.
//
// Control path: allocates new weight tensors for folded BatchNormalizations; g is not modified.
func Optimize(g *Graph) (*Graph, error) {
	o := g.Clone()
	if err := o.propagate(false); err != nil {
		return nil, err
	}
	o.dropIdentities()
	if err := o.foldBatchNorm(); err != nil {
		return nil, err
	}
	o.fuse()
	o.removeDead()
	if err := o.Check(); err != nil {
		return nil, fmt.Errorf("BUG: optimize broke the graph: %w", err)
	}
	return o, nil
}

// Specialize returns a copy of g at a fixed batch size: the first dimension of every model
// input becomes batch, every shape is inferred, the shape computations this makes constant are
// folded, and what no longer contributes to an output is removed. Every value of the result has
// a concrete shape. An input whose batch dimension was exported fixed to another size, or a
// value whose shape stays unknown, is an error naming the model, node and value.
// Control path: allocates.
func Specialize(g *Graph, batch int) (*Graph, error) {
	if batch < 1 {
		return nil, fmt.Errorf("cannot specialize model %q: batch %d < 1: %w", g.Name, batch, ErrInvalid)
	}
	s := g.Clone()
	for _, id := range s.Inputs {
		v := &s.Values[id]
		if v.DType == Undefined {
			v.DType = Float32
		}
		if len(v.Shape) == 0 {
			return nil, fmt.Errorf("cannot specialize model %q: input %q has no shape: %w", g.Name, v.Name, ErrInvalid)
		}
		switch {
		case v.Shape[0] < 0:
			v.Shape[0] = int64(batch)
		case v.Shape[0] != int64(batch):
			return nil, fmt.Errorf("cannot specialize model %q at batch %d: input %q was exported with fixed batch %d; re-export with a dynamic batch axis (dynamic_axes={%q: {0: \"batch\"}}): %w", g.Name, batch, v.Name, v.Shape[0], v.Name, ErrUnsupported)
		}
		if !known(v.Shape) {
			return nil, fmt.Errorf("cannot specialize model %q: input %q has unknown dimensions %v besides the batch: %w", g.Name, v.Name, v.Shape, ErrUnsupported)
		}
	}
	// Declared shapes of intermediate values carry the export batch; forget them.
	defined := make([]bool, len(s.Values))
	for _, id := range s.Inputs {
		defined[id] = true
	}
	for i := range s.Values {
		if !defined[i] && s.Values[i].Const == nil {
			s.Values[i].Shape = nil
		}
	}
	if err := s.propagate(true); err != nil {
		return nil, fmt.Errorf("at batch %d: %w", batch, err)
	}
	s.dropIdentities()
	s.removeDead()
	for i := range s.Nodes {
		n := &s.Nodes[i]
		for _, id := range slices.Concat(n.Inputs, n.Outputs) {
			if id != NoValue && !known(s.Values[id].Shape) {
				return nil, fmt.Errorf("model %q at batch %d: %s node %q: shape of %q unknown after inference (a shape input that is not constant?): %w", g.Name, batch, n.Op, n.Name, s.Values[id].Name, ErrUnsupported)
			}
		}
	}
	return s, nil
}

// propagate infers types in topological order and folds what becomes constant. With strict,
// every node's output types must come out known.
func (g *Graph) propagate(strict bool) error {
	keep := g.Nodes[:0]
	for i := range g.Nodes {
		n := g.Nodes[i]
		if err := g.infer(&n); err != nil {
			return err
		}
		if res := g.fold(&n); res != nil {
			for j, t := range res {
				v := &g.Values[n.Outputs[j]]
				v.Const, v.DType, v.Shape = t, t.DType, t.Shape
			}
			continue
		}
		if strict {
			for _, id := range n.Outputs {
				if id != NoValue && !known(g.Values[id].Shape) {
					return g.nodeErr(&n, ErrUnsupported, "shape of output %q cannot be inferred (value-dependent shape)", g.Values[id].Name)
				}
			}
		}
		keep = append(keep, n)
	}
	g.Nodes = keep
	return nil
}

// uses counts the readers of each value (a model output counts as one).
func (g *Graph) uses() []int {
	u := make([]int, len(g.Values))
	for i := range g.Nodes {
		for _, id := range g.Nodes[i].Inputs {
			if id != NoValue {
				u[id]++
			}
		}
	}
	for _, id := range g.Outputs {
		u[id]++
	}
	return u
}

// replace makes every reader of old read new instead (model outputs excepted).
func (g *Graph) replace(old, new ValueID) {
	for i := range g.Nodes {
		for j, id := range g.Nodes[i].Inputs {
			if id == old {
				g.Nodes[i].Inputs[j] = new
			}
		}
	}
}

func (g *Graph) isOutput(v ValueID) bool { return slices.Contains(g.Outputs, v) }

// dropIdentities removes Identity and inference-mode Dropout.
func (g *Graph) dropIdentities() {
	keep := g.Nodes[:0]
	for _, n := range g.Nodes {
		if (n.Op == "Identity" || n.Op == "Dropout" && (len(n.Outputs) < 2 || n.Outputs[1] == NoValue)) && !g.isOutput(n.Outputs[0]) {
			g.replace(n.Outputs[0], n.Inputs[0])
			continue
		}
		keep = append(keep, n)
	}
	g.Nodes = keep
}

// producers maps each value to the index of the node producing it, -1 for none.
func (g *Graph) producers() []int {
	p := make([]int, len(g.Values))
	for i := range p {
		p[i] = -1
	}
	for i := range g.Nodes {
		for _, id := range g.Nodes[i].Outputs {
			if id != NoValue {
				p[id] = i
			}
		}
	}
	return p
}

// addConst adds a new constant value.
func (g *Graph) addConst(name string, t *Tensor) ValueID {
	g.Values = append(g.Values, Value{Name: name, DType: t.DType, Shape: t.Shape, Const: t})
	return ValueID(len(g.Values) - 1)
}

func (g *Graph) foldBatchNorm() error {
	uses, prod := g.uses(), g.producers()
	dead := make([]bool, len(g.Nodes))
	for i := range g.Nodes {
		bn := &g.Nodes[i]
		if bn.Op != "BatchNormalization" || len(bn.Inputs) != 5 {
			continue
		}
		p := prod[bn.Inputs[0]]
		if p < 0 || g.Nodes[p].Op != "Conv" || uses[bn.Inputs[0]] != 1 || g.isOutput(bn.Inputs[0]) {
			continue
		}
		conv := &g.Nodes[p]
		w := g.Const(conv.Input(1))
		scale, beta, mean, vr := g.Const(bn.Inputs[1]), g.Const(bn.Inputs[2]), g.Const(bn.Inputs[3]), g.Const(bn.Inputs[4])
		if w == nil || scale == nil || beta == nil || mean == nil || vr == nil || !w.DType.IsFloat() || len(w.Shape) < 1 {
			continue
		}
		c := int(w.Shape[0])
		if len(scale.F) != c || len(beta.F) != c || len(mean.F) != c || len(vr.F) != c {
			return g.nodeErr(bn, ErrInvalid, "parameters of %d channels after Conv %q with %d output channels", len(scale.F), conv.Name, c)
		}
		var b *Tensor
		if conv.Input(2) != NoValue {
			if b = g.Const(conv.Input(2)); b == nil || len(b.F) != c {
				continue
			}
		}
		eps := float64(bn.AttrFloat("epsilon", 1e-5))
		nw := &Tensor{DType: Float32, Shape: slices.Clone(w.Shape), F: make([]float32, len(w.F))}
		nb := &Tensor{DType: Float32, Shape: []int64{int64(c)}, F: make([]float32, c)}
		per := len(w.F) / c
		for o := range c {
			f := float64(scale.F[o]) / math.Sqrt(float64(vr.F[o])+eps)
			for k := range per {
				nw.F[o*per+k] = float32(float64(w.F[o*per+k]) * f)
			}
			bias := 0.0
			if b != nil {
				bias = float64(b.F[o])
			}
			nb.F[o] = float32((bias-float64(mean.F[o]))*f + float64(beta.F[o]))
		}
		ins := []ValueID{conv.Inputs[0], g.addConst(g.Values[conv.Inputs[1]].Name+"_bn", nw), g.addConst(bn.Name+"_bias", nb)}
		conv.Inputs = ins
		conv.Outputs = []ValueID{bn.Outputs[0]}
		dead[i] = true
	}
	keep := g.Nodes[:0]
	for i, n := range g.Nodes {
		if !dead[i] {
			keep = append(keep, n)
		}
	}
	g.Nodes = keep
	return nil
}

// fuse applies the bias and activation fusions until nothing changes.
func (g *Graph) fuse() {
	for changed := true; changed; {
		changed = false
		uses, prod := g.uses(), g.producers()
		dead := make([]bool, len(g.Nodes))
		for i := range g.Nodes {
			n := &g.Nodes[i]
			x := n.Input(0)
			if x == NoValue || prod[x] < 0 || uses[x] != 1 || g.isOutput(x) || dead[prod[x]] {
				continue
			}
			p := &g.Nodes[prod[x]]
			switch {
			case n.Op == "Add" && p.Op == "Conv" && p.Input(2) == NoValue && p.Attrs[FusedActivation].Kind == 0:
				w, b := g.Const(p.Input(1)), g.Const(n.Input(1))
				if w == nil || b == nil || !b.DType.IsFloat() || int64(len(b.F)) != w.Shape[0] || !channelShape(b.Shape, len(w.Shape)) {
					continue
				}
				p.Inputs = []ValueID{p.Inputs[0], p.Inputs[1], g.addConst(g.Values[n.Inputs[1]].Name+"_c", &Tensor{DType: Float32, Shape: []int64{w.Shape[0]}, F: b.F})}
			case n.Op == "Add" && p.Op == "MatMul":
				a, w, b := g.Value(p.Inputs[0]), g.Const(p.Input(1)), g.Const(n.Input(1))
				if len(a.Shape) != 2 || w == nil || len(w.Shape) != 2 || b == nil || !b.DType.IsFloat() || len(b.F) != int(w.Shape[1]) || len(b.Shape) > 2 || len(b.Shape) == 2 && b.Shape[0] != 1 {
					continue
				}
				p.Op = "Gemm"
				p.Inputs = []ValueID{p.Inputs[0], p.Inputs[1], g.addConst(g.Values[n.Inputs[1]].Name+"_c", &Tensor{DType: Float32, Shape: []int64{w.Shape[1]}, F: b.F})}
				p.Attrs = map[string]Attr{}
			case (n.Op == "Relu" || n.Op == "Clip") && (p.Op == "Conv" || p.Op == "Gemm") && p.Attrs[FusedActivation].Kind == 0:
				if n.Op == "Relu" {
					p.Attrs[FusedActivation] = Attr{Kind: AttrString, String: "Relu"}
					break
				}
				lo, hi, ok := g.clipBounds(n)
				if !ok {
					continue
				}
				if lo == 0 && math.IsInf(float64(hi), 1) {
					p.Attrs[FusedActivation] = Attr{Kind: AttrString, String: "Relu"}
					break
				}
				p.Attrs[FusedActivation] = Attr{Kind: AttrString, String: "Clip"}
				p.Attrs[FusedMin] = Attr{Kind: AttrFloat, Float: lo}
				p.Attrs[FusedMax] = Attr{Kind: AttrFloat, Float: hi}
			default:
				continue
			}
			p.Outputs = []ValueID{n.Outputs[0]}
			dead[i] = true
			changed = true
			uses, prod = g.uses(), g.producers()
		}
		keep := g.Nodes[:0]
		for i, n := range g.Nodes {
			if !dead[i] {
				keep = append(keep, n)
			}
		}
		g.Nodes = keep
	}
}

// channelShape reports whether a bias shape adds one value per channel of a rank-r NCHW
// tensor: [C,1,1], [1,C,1,1] and the like.
func channelShape(s []int64, r int) bool {
	if len(s) > r || len(s) < r-1 {
		return false
	}
	for i, d := range s {
		if i == len(s)-(r-1) {
			continue
		}
		if d != 1 {
			return false
		}
	}
	return true
}

// clipBounds returns a Clip's bounds when they are constants.
func (g *Graph) clipBounds(n *Node) (lo, hi float32, ok bool) {
	lo, hi = float32(math.Inf(-1)), float32(math.Inf(1))
	if g.Opset < 11 {
		return n.AttrFloat("min", lo), n.AttrFloat("max", hi), true
	}
	for i, p := range []*float32{&lo, &hi} {
		id := n.Input(i + 1)
		if id == NoValue {
			continue
		}
		c := g.Const(id)
		if c == nil || !c.DType.IsFloat() || len(c.F) != 1 {
			return 0, 0, false
		}
		*p = c.F[0]
	}
	return lo, hi, true
}

// removeDead drops nodes whose outputs nothing reads, then values no node or model input or
// output references, renumbering the rest in order.
func (g *Graph) removeDead() {
	live := make([]bool, len(g.Values))
	for _, id := range g.Outputs {
		live[id] = true
	}
	alive := make([]bool, len(g.Nodes))
	for i := len(g.Nodes) - 1; i >= 0; i-- {
		n := &g.Nodes[i]
		for _, id := range n.Outputs {
			if id != NoValue && live[id] {
				alive[i] = true
			}
		}
		if alive[i] {
			for _, id := range n.Inputs {
				if id != NoValue {
					live[id] = true
				}
			}
		}
	}
	for _, id := range g.Inputs {
		live[id] = true
	}
	keep := g.Nodes[:0]
	for i, n := range g.Nodes {
		if alive[i] {
			for _, id := range n.Outputs {
				if id != NoValue {
					live[id] = true
				}
			}
			keep = append(keep, n)
		}
	}
	g.Nodes = keep
	remap := make([]ValueID, len(g.Values))
	vals := g.Values[:0:0]
	for i, v := range g.Values {
		remap[i] = NoValue
		if live[i] {
			remap[i] = ValueID(len(vals))
			vals = append(vals, v)
		}
	}
	g.Values = vals
	re := func(ids []ValueID) {
		for j, id := range ids {
			if id != NoValue {
				ids[j] = remap[id]
			}
		}
	}
	re(g.Inputs)
	re(g.Outputs)
	for i := range g.Nodes {
		re(g.Nodes[i].Inputs)
		re(g.Nodes[i].Outputs)
	}
}
