package cpu

import (
	"fmt"
	"sort"
)

// AttrKind is the kind of value an attribute holds.
type AttrKind uint8

const (
	AttrInt AttrKind = iota + 1
	AttrInts
	AttrFloat
	AttrFloats
	AttrString
	AttrTensor
)

// Attr is one node attribute.
type Attr struct {
	Kind AttrKind
	Int  int64
	Ints []int64
	F    float32
	Fs   []float32
	S    string
	T    *Tensor
}

// Node is one operator as the kernels see it: the op, its attributes and the opset it was
// written for. It is independent of how the graph arrived (ONNX protobuf, runtime/model's IR).
type Node struct {
	Op    string
	Name  string
	Opset int // the default-domain opset version of the model
	Attrs map[string]Attr
}

// Kernel is a node compiled for fixed input types: the output types and the function that
// computes the outputs from the inputs. Run never allocates output memory: out tensors are
// provided by the caller with the types in Out. Missing optional inputs and outputs are nil.
type Kernel struct {
	Out []Type
	Run func(in, out []*Tensor) error
}

func (n *Node) errorf(format string, args ...any) error {
	return fmt.Errorf("%s node %q: %s", n.Op, n.Name, fmt.Sprintf(format, args...))
}

func (n *Node) attrInt(name string, def int64) int64 {
	if a, ok := n.Attrs[name]; ok && a.Kind == AttrInt {
		return a.Int
	}
	return def
}

func (n *Node) attrInts(name string) []int64 {
	if a, ok := n.Attrs[name]; ok && a.Kind == AttrInts {
		return a.Ints
	}
	return nil
}

func (n *Node) attrFloat(name string, def float32) float32 {
	if a, ok := n.Attrs[name]; ok && a.Kind == AttrFloat {
		return a.F
	}
	return def
}

func (n *Node) attrString(name, def string) string {
	if a, ok := n.Attrs[name]; ok && a.Kind == AttrString {
		return a.S
	}
	return def
}

// Ops lists the operators Compile supports, sorted.
func Ops() []string {
	out := make([]string, 0, len(compilers))
	for k := range compilers {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Supported reports whether Compile knows op.
func Supported(op string) bool {
	_, ok := compilers[op]
	return ok
}

type compileFunc func(n *Node, in []*Type, consts []*Tensor) (*Kernel, error)

var compilers map[string]compileFunc

// Compile checks a node against its input types and returns its kernel. in[i] is nil for a
// missing optional input; consts[i] (if consts is long enough) holds the value of an input
// known at compile time, which ops whose output shape depends on values (Reshape, Slice,
// Unsqueeze, Pad, ConstantOfShape, ...) require. Bad input is an error naming the node, never
// a panic.
func Compile(n *Node, in []*Type, consts []*Tensor) (k *Kernel, err error) {
	f, ok := compilers[n.Op]
	if !ok {
		return nil, fmt.Errorf("%s node %q: operator not supported by the cpu backend", n.Op, n.Name)
	}
	c := make([]*Tensor, len(in))
	copy(c, consts)
	for i, t := range in {
		if t == nil {
			continue
		}
		if !sizeOK(t.Shape, t.DType.Size()) {
			return nil, n.errorf("input %d has a negative dim or is too large: %v", i, t.Shape)
		}
	}
	k, err = f(n, in, c)
	if err != nil {
		return nil, err
	}
	for i, o := range k.Out {
		if !sizeOK(o.Shape, o.DType.Size()) {
			return nil, n.errorf("output %d would be %v %v: too large", i, o.DType, o.Shape)
		}
	}
	return k, nil
}

// MaxTensorBytes bounds any one tensor a node may produce.
const MaxTensorBytes = 1 << 40

// sizeOK reports whether a tensor of shape and element size fits MaxTensorBytes, without
// overflowing on the way.
func sizeOK(shape []int, size int) bool {
	n := int64(max(size, 1))
	for _, d := range shape {
		if d < 0 {
			return false
		}
		if d > 0 && n > MaxTensorBytes/int64(d) {
			return false
		}
		n *= int64(d)
	}
	return n <= MaxTensorBytes
}
