package cpu

import (
	"fmt"

	"github.com/clockwork-go/clockwork/runtime/model"
)

// smallConst is the largest weight (in elements) whose value Prepare keeps on the host as
// well: scalar parameters such as a standalone Clip's bounds, which Compile needs.
const smallConst = 64

// FromModel converts a model built by runtime/model (model.Build: per-batch plans over a
// shared weight layout) into the Graph that Device.Prepare runs. Value ids, placements, the
// weight layout (pages, runs, packing) and the schedule carry over unchanged; nodes and
// constants are converted. Errors name the model, batch and value or node.
// Control path: allocates (host copies of the small constants only).
func FromModel(m *model.Model) (*Graph, error) {
	if m == nil {
		return nil, fmt.Errorf("cannot convert a nil model")
	}
	g := &Graph{ModelName: m.Name}
	if l := m.Layout; l != nil {
		g.PageBytes, g.NumPages, g.Runs, g.Packed = l.PageSize, l.Pages, l.Runs, l.Packed
		g.WeightBytes = int64(l.Pages) * l.PageSize
	}
	for _, mp := range m.Plans {
		bp, err := fromModelPlan(mp)
		if err != nil {
			return nil, fmt.Errorf("model %q batch %d: %w", m.Name, mp.Batch, err)
		}
		g.Plans = append(g.Plans, bp)
	}
	return g, nil
}

func fromModelPlan(mp *model.Plan) (*BatchPlan, error) {
	s := mp.Graph
	if s == nil || len(s.Inputs) != 1 || len(s.Outputs) != 1 || len(mp.Place) != len(s.Values) {
		return nil, fmt.Errorf("plan must have a graph with one input, one output and a placement per value")
	}
	p := &BatchPlan{Batch: mp.Batch, Input: int(s.Inputs[0]), Output: int(s.Outputs[0]), WorkspaceBytes: mp.WorkspaceBytes,
		Values: make([]Value, len(s.Values))}
	for i := range s.Values {
		v, pl := &s.Values[i], mp.Place[i]
		shape := make([]int, len(v.Shape))
		for j, d := range v.Shape {
			if d < 0 || d > 1<<40 {
				return nil, fmt.Errorf("value %q has shape %v", v.Name, v.Shape)
			}
			shape[j] = int(d)
		}
		val := Value{Name: v.Name, Type: Type{DType: DType(v.DType), Shape: shape}, Page: pl.Page, Offset: pl.Offset}
		switch pl.Loc {
		case model.InWorkspace:
			val.Loc = InWorkspace
		case model.InWeights:
			val.Loc = InWeights
		case model.InInput:
			val.Loc = InInput
		case model.InOutput:
			val.Loc = InOutput
		case model.InHost:
			val.Loc = InHost
		default:
			return nil, fmt.Errorf("value %q: unknown location %d", v.Name, pl.Loc)
		}
		if v.Const != nil && (val.Loc == InHost || v.Const.Len() <= smallConst) {
			t, err := fromModelTensor(v.Const)
			if err != nil {
				return nil, fmt.Errorf("value %q: %w", v.Name, err)
			}
			val.Const = t
		}
		p.Values[i] = val
	}
	for i := range s.Nodes {
		n := &s.Nodes[i]
		node, err := fromModelNode(n, s.Opset)
		if err != nil {
			return nil, err
		}
		st := Step{Node: node, In: make([]int, len(n.Inputs)), Out: make([]int, len(n.Outputs))}
		for j, v := range n.Inputs {
			st.In[j] = int(v)
		}
		for j, v := range n.Outputs {
			st.Out[j] = int(v)
		}
		p.Steps = append(p.Steps, st)
	}
	return p, nil
}

// Conversions from runtime/model's IR to the kernels' types. The two packages number dtypes
// (ONNX TensorProto.DataType) and attribute kinds the same way.

// fromModelTensor converts a constant to a host tensor in device byte form.
func fromModelTensor(t *model.Tensor) (*Tensor, error) {
	if t == nil {
		return nil, nil
	}
	dt := DType(t.DType)
	if dt.Size() == 0 || dt.Size() != t.DType.Size() {
		return nil, fmt.Errorf("constant %v: dtype not supported by the cpu backend", t)
	}
	shape := make([]int, len(t.Shape))
	for i, d := range t.Shape {
		if d < 0 || d > 1<<40 {
			return nil, fmt.Errorf("constant %v: bad shape", t)
		}
		shape[i] = int(d)
	}
	if !sizeOK(shape, dt.Size()) {
		return nil, fmt.Errorf("constant %v: too large", t)
	}
	out := NewTensor(dt, shape...)
	if int64(len(out.Data)) != t.Bytes() {
		return nil, fmt.Errorf("constant %v holds %d bytes, want %d", t, t.Bytes(), len(out.Data))
	}
	t.AppendBytes(out.Data[:0])
	return out, nil
}

// fromModelNode converts a node's op and attributes.
func fromModelNode(n *model.Node, opset int64) (Node, error) {
	out := Node{Op: n.Op, Name: n.Name, Opset: int(opset), Attrs: make(map[string]Attr, len(n.Attrs))}
	for k, a := range n.Attrs {
		c := Attr{Kind: AttrKind(a.Kind), Int: a.Int, Ints: a.Ints, F: a.Float, Fs: a.Floats, S: a.String}
		if a.Kind == model.AttrTensor {
			t, err := fromModelTensor(a.Tensor)
			if err != nil {
				return Node{}, fmt.Errorf("%s node %q attribute %s: %w", n.Op, n.Name, k, err)
			}
			c.T = t
		}
		out.Attrs[k] = c
	}
	return out, nil
}
