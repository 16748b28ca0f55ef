package model

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
)

// DType is an element type, numbered as ONNX's TensorProto.DataType.
type DType int32

// The element types the IR holds. Activations are Float32; Int64 (and the narrower integer
// types and Bool, widened into Tensor.I) appear in shape computations and indices.
const (
	Undefined DType = 0
	Float32   DType = 1
	Uint8     DType = 2
	Int8      DType = 3
	Int32     DType = 6
	Int64     DType = 7
	Bool      DType = 9
	Float16   DType = 10
	Float64   DType = 11
)

// Size is the byte size of one element, 0 for a type the IR does not hold.
func (d DType) Size() int {
	switch d {
	case Float32, Int32:
		return 4
	case Int64, Float64:
		return 8
	case Uint8, Int8, Bool:
		return 1
	case Float16:
		return 2
	}
	return 0
}

// IsFloat reports whether tensors of this type keep their elements in Tensor.F.
func (d DType) IsFloat() bool { return d == Float32 }

// IsInt reports whether tensors of this type keep their elements in Tensor.I.
func (d DType) IsInt() bool {
	switch d {
	case Int64, Int32, Int8, Uint8, Bool:
		return true
	}
	return false
}

func (d DType) String() string {
	switch d {
	case Undefined:
		return "?"
	case Float32:
		return "f32"
	case Uint8:
		return "u8"
	case Int8:
		return "i8"
	case Int32:
		return "i32"
	case Int64:
		return "i64"
	case Bool:
		return "bool"
	case Float16:
		return "f16"
	case Float64:
		return "f64"
	}
	return fmt.Sprintf("dtype(%d)", int32(d))
}

// Numel is the element count of a shape, -1 if a dimension is unknown (negative).
func Numel(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return -1
		}
		n *= d
	}
	return n
}

// Tensor is a constant: an initializer, a Constant node's value, or a folded result. Float32
// elements are in F, integer and Bool elements (widened to int64) in I; the other is nil.
// Shape has no unknown dimension and Numel(Shape) == len(F) or len(I).
//
// Ownership: tensors are shared between graphs derived from one another (Optimize and
// Specialize copy the graph, not the weights); nobody modifies a Tensor after it is built.
type Tensor struct {
	DType DType
	Shape []int64
	F     []float32
	I     []int64
}

// Len is the number of elements.
func (t *Tensor) Len() int {
	if t.DType.IsFloat() {
		return len(t.F)
	}
	return len(t.I)
}

// Bytes is the byte size of the tensor as stored on a device (little-endian, DType.Size per
// element).
func (t *Tensor) Bytes() int64 { return int64(t.Len()) * int64(t.DType.Size()) }

// AppendBytes appends the tensor's elements in little-endian device form: float32 as IEEE
// binary32, integer types at their own width (int64 as 8 bytes, int32 as 4, bools and bytes as 1).
func (t *Tensor) AppendBytes(dst []byte) []byte {
	dst = slices.Grow(dst, int(t.Bytes()))
	if t.DType.IsFloat() {
		for _, v := range t.F {
			dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(v))
		}
		return dst
	}
	for _, v := range t.I {
		switch t.DType.Size() {
		case 8:
			dst = binary.LittleEndian.AppendUint64(dst, uint64(v))
		case 4:
			dst = binary.LittleEndian.AppendUint32(dst, uint32(v))
		default:
			dst = append(dst, byte(v))
		}
	}
	return dst
}

func (t *Tensor) String() string {
	return fmt.Sprintf("%v%v", t.DType, t.Shape)
}

// ScalarTensorI64 and friends build small constants (folding, tests).
func ScalarTensorI64(shape []int64, v ...int64) *Tensor {
	return &Tensor{DType: Int64, Shape: append([]int64{}, shape...), I: slices.Clone(v)}
}

// TensorF32 builds a float32 constant; len(v) must equal Numel(shape).
func TensorF32(shape []int64, v ...float32) *Tensor {
	return &Tensor{DType: Float32, Shape: append([]int64{}, shape...), F: slices.Clone(v)}
}

// AttrKind is the kind of value an attribute holds.
type AttrKind uint8

// Attribute kinds (the same order as runtime/cpu's, so a conversion is a cast).
const (
	AttrInt AttrKind = iota + 1
	AttrInts
	AttrFloat
	AttrFloats
	AttrString
	AttrTensor
)

// Attr is one node attribute. Exactly the field of its Kind is meaningful.
type Attr struct {
	Kind   AttrKind
	Int    int64
	Ints   []int64
	Float  float32
	Floats []float32
	String string
	Tensor *Tensor
}

// ValueID names a value of a Graph: an index into Graph.Values. NoValue marks a missing
// optional input or output (ONNX's empty name).
type ValueID int32

// NoValue is a missing optional input or output.
const NoValue ValueID = -1

// Value is one tensor of a graph: a model input, an activation, or a constant.
type Value struct {
	Name  string
	DType DType
	// Shape is nil when unknown (before inference). A dimension is -1 when unknown, e.g. the
	// batch dimension of a model exported with a dynamic batch axis. After Specialize every
	// value has a full shape.
	Shape []int64
	// Const is the value of an initializer, a Constant node, or a folded computation; nil for
	// values computed at run time. A value with Const has no producing node.
	Const *Tensor
}

// Bytes is the size of the value at its shape, -1 if the shape is not fully known.
func (v *Value) Bytes() int64 {
	n := Numel(v.Shape)
	if v.Shape == nil || n < 0 {
		return -1
	}
	return n * int64(v.DType.Size())
}

// Node is one operator application. Op is the ONNX op type in the default domain
// (ai.onnx), evaluated with the semantics of the graph's Opset. Fused nodes carry extra
// attributes (see FusedActivation).
type Node struct {
	Name    string
	Op      string
	Attrs   map[string]Attr
	Inputs  []ValueID // NoValue for a missing optional input
	Outputs []ValueID // NoValue for an unused optional output
}

// AttrInt returns an integer attribute, or def when absent.
func (n *Node) AttrInt(name string, def int64) int64 {
	if a, ok := n.Attrs[name]; ok && a.Kind == AttrInt {
		return a.Int
	}
	return def
}

// AttrInts returns an integer-list attribute, or nil when absent.
func (n *Node) AttrInts(name string) []int64 {
	if a, ok := n.Attrs[name]; ok && a.Kind == AttrInts {
		return a.Ints
	}
	return nil
}

// AttrFloat returns a float attribute, or def when absent.
func (n *Node) AttrFloat(name string, def float32) float32 {
	if a, ok := n.Attrs[name]; ok && a.Kind == AttrFloat {
		return a.Float
	}
	return def
}

// AttrString returns a string attribute, or def when absent.
func (n *Node) AttrString(name, def string) string {
	if a, ok := n.Attrs[name]; ok && a.Kind == AttrString {
		return a.String
	}
	return def
}

// Input returns the id of input i, NoValue when absent.
func (n *Node) Input(i int) ValueID {
	if i < len(n.Inputs) {
		return n.Inputs[i]
	}
	return NoValue
}

// Graph is a model's computation: values, nodes over them, and which values are the model's
// inputs and outputs. It is the IR every pass and backend works on.
//
// Invariants (checked by Check):
//  1. Every ValueID in Nodes, Inputs and Outputs is NoValue (node inputs/outputs only) or in
//     range; model inputs and outputs are never NoValue.
//  2. Every value is defined once: as a model input, as a constant (Const != nil), or as the
//     output of exactly one node. Model inputs have no Const.
//  3. Nodes are in a topological order: a node reads only model inputs, constants and outputs
//     of earlier nodes.
type Graph struct {
	// Name is the model's name (the file's base name without extension, or as given to Parse);
	// every error about the graph names it.
	Name string
	// Opset is the version of the default ONNX operator set the nodes follow.
	Opset   int64
	Values  []Value
	Nodes   []Node
	Inputs  []ValueID
	Outputs []ValueID
}

// Value returns the value with id v. v must be valid.
func (g *Graph) Value(v ValueID) *Value { return &g.Values[v] }

// Const returns the constant of value v, nil if v is NoValue or not a constant.
func (g *Graph) Const(v ValueID) *Tensor {
	if v == NoValue || int(v) >= len(g.Values) {
		return nil
	}
	return g.Values[v].Const
}

// Clone copies the graph's structure (values, nodes, attribute maps); constant tensors are
// shared.
func (g *Graph) Clone() *Graph {
	c := &Graph{Name: g.Name, Opset: g.Opset, Values: slices.Clone(g.Values), Inputs: slices.Clone(g.Inputs), Outputs: slices.Clone(g.Outputs)}
	for i := range c.Values {
		c.Values[i].Shape = slices.Clone(c.Values[i].Shape)
	}
	c.Nodes = make([]Node, len(g.Nodes))
	for i, n := range g.Nodes {
		n.Inputs = slices.Clone(n.Inputs)
		n.Outputs = slices.Clone(n.Outputs)
		attrs := make(map[string]Attr, len(n.Attrs))
		for k, a := range n.Attrs {
			attrs[k] = a
		}
		n.Attrs = attrs
		c.Nodes[i] = n
	}
	return c
}

// Check verifies the graph's invariants; an error names the model and the node.
func (g *Graph) Check() error {
	defined := make([]int8, len(g.Values)) // 0 undefined, 1 defined
	ok := func(v ValueID) bool { return v >= 0 && int(v) < len(g.Values) }
	for i, v := range g.Values {
		if v.Const != nil {
			defined[i] = 1
			if v.Const.DType != v.DType || Numel(v.Const.Shape) != int64(v.Const.Len()) {
				return fmt.Errorf("model %q: constant %q: %v holds %d elements: %w", g.Name, v.Name, v.Const, v.Const.Len(), ErrInvalid)
			}
		}
	}
	for _, in := range g.Inputs {
		if !ok(in) {
			return fmt.Errorf("model %q: input value id %d out of range: %w", g.Name, in, ErrInvalid)
		}
		if defined[in] != 0 {
			return fmt.Errorf("model %q: input %q is defined twice: %w", g.Name, g.Values[in].Name, ErrInvalid)
		}
		defined[in] = 1
	}
	for i := range g.Nodes {
		n := &g.Nodes[i]
		for _, in := range n.Inputs {
			if in == NoValue {
				continue
			}
			if !ok(in) {
				return fmt.Errorf("model %q: %s node %q: input id %d out of range: %w", g.Name, n.Op, n.Name, in, ErrInvalid)
			}
			if defined[in] == 0 {
				return fmt.Errorf("model %q: %s node %q reads %q before it is defined (graph not topologically sorted or value never produced): %w", g.Name, n.Op, n.Name, g.Values[in].Name, ErrInvalid)
			}
		}
		for _, out := range n.Outputs {
			if out == NoValue {
				continue
			}
			if !ok(out) {
				return fmt.Errorf("model %q: %s node %q: output id %d out of range: %w", g.Name, n.Op, n.Name, out, ErrInvalid)
			}
			if defined[out] != 0 {
				return fmt.Errorf("model %q: %s node %q: output %q is defined twice: %w", g.Name, n.Op, n.Name, g.Values[out].Name, ErrInvalid)
			}
			defined[out] = 1
		}
	}
	for _, out := range g.Outputs {
		if !ok(out) {
			return fmt.Errorf("model %q: output value id %d out of range: %w", g.Name, out, ErrInvalid)
		}
		if defined[out] == 0 {
			return fmt.Errorf("model %q: output %q is never produced: %w", g.Name, g.Values[out].Name, ErrInvalid)
		}
	}
	return nil
}

// String prints the graph one node per line, for tests and `cw tools zoo -describe`.
func (g *Graph) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "model %s opset %d\n", g.Name, g.Opset)
	desc := func(v ValueID) string {
		if v == NoValue {
			return "_"
		}
		x := &g.Values[v]
		if x.Const != nil && x.Const.Len() <= 8 {
			if x.Const.DType.IsFloat() {
				return fmt.Sprintf("%s=%v", x.Name, x.Const.F)
			}
			return fmt.Sprintf("%s=%v", x.Name, x.Const.I)
		}
		if x.Shape == nil {
			return fmt.Sprintf("%s:%v[?]", x.Name, x.DType) // not yet inferred
		}
		return fmt.Sprintf("%s:%v%v", x.Name, x.DType, x.Shape)
	}
	for _, in := range g.Inputs {
		fmt.Fprintf(&b, "input %s\n", desc(in))
	}
	for i := range g.Nodes {
		n := &g.Nodes[i]
		var ins, outs []string
		for _, v := range n.Inputs {
			ins = append(ins, desc(v))
		}
		for _, v := range n.Outputs {
			outs = append(outs, desc(v))
		}
		keys := make([]string, 0, len(n.Attrs))
		for k := range n.Attrs {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var attrs []string
		for _, k := range keys {
			a := n.Attrs[k]
			var s string
			switch a.Kind {
			case AttrInt:
				s = fmt.Sprint(a.Int)
			case AttrInts:
				s = fmt.Sprint(a.Ints)
			case AttrFloat:
				s = fmt.Sprint(a.Float)
			case AttrFloats:
				s = fmt.Sprint(a.Floats)
			case AttrString:
				s = a.String
			case AttrTensor:
				s = a.Tensor.String()
			}
			attrs = append(attrs, k+"="+s)
		}
		a := ""
		if len(attrs) > 0 {
			a = " {" + strings.Join(attrs, " ") + "}"
		}
		fmt.Fprintf(&b, "%s = %s%s(%s)\n", strings.Join(outs, ", "), n.Op, a, strings.Join(ins, ", "))
	}
	for _, out := range g.Outputs {
		fmt.Fprintf(&b, "output %s\n", desc(out))
	}
	return b.String()
}
