package cpu

import (
	"fmt"

	"github.com/clockwork-go/clockwork/runtime/model"
)

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
