package model

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/clockwork-go/clockwork/runtime/model/onnxpb"
)

// Limits on what Parse accepts; each bounds an allocation a corrupt file could otherwise ask for.
const (
	// MaxFileBytes bounds an ONNX file and each external data file (wide_resnet101_2, the
	// largest zoo model, is 507 MB).
	MaxFileBytes = 4 << 30
	// MaxTensorElems bounds one tensor (VGG's fc6 has 103M elements).
	MaxTensorElems = 1 << 30
	// MaxRank bounds a shape's rank.
	MaxRank = 8
	// MaxNodes bounds a graph's nodes and values (densenet201 has about 2,000 nodes).
	MaxNodes = 1 << 20
	// MinOpset and MaxOpset bound the default-domain opset a model may use: 9 is the oldest
	// that torch.onnx writes for the zoo, 18 what torch 2.x's dynamo exporter writes.
	MinOpset = 9
	MaxOpset = 18
)

// Load reads an ONNX model from path. External data files (PyTorch 2.x writes model.onnx +
// model.onnx.data) are read from path's directory. The model is named after the file, without
// its extension, or after its directory when the file is model.onnx (the zoo's layout,
// DIR/resnet50/model.onnx). Control path: reads the files and allocates the weights.
func Load(path string) (*Graph, error) {
	name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	if name == "model" {
		if d := filepath.Base(filepath.Dir(path)); d != "." && d != "/" {
			name = d
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("cannot load model %q: %w", name, err)
	}
	if fi.Size() > MaxFileBytes {
		return nil, fmt.Errorf("cannot load model %q: file %s is %d bytes, over the %d-byte limit: %w", name, path, fi.Size(), int64(MaxFileBytes), ErrUnsupported)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot load model %q: %w", name, err)
	}
	return Parse(name, data, os.DirFS(filepath.Dir(path)))
}

// Parse decodes an ONNX model (a serialized ModelProto) into a Graph named name, checks it
// (Graph.Check, supported ops and opset, attribute and tensor types) and sorts its nodes
// topologically. Tensors stored as external data are read from ext, which may be nil for a
// model without any. Constant nodes become constant values. Errors wrap ErrInvalid or
// ErrUnsupported and name the model, the node or tensor and the reason; Parse never panics on
// bad input. Control path: allocates the graph and the weights.
func Parse(name string, data []byte, ext fs.FS) (*Graph, error) {
	var m onnxpb.ModelProto
	if err := (proto.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("cannot parse model %q: not a valid ONNX protobuf (%v): %w", name, err, ErrInvalid)
	}
	p := &parser{g: &Graph{Name: name}, ext: ext, ids: map[string]ValueID{}, files: map[string][]byte{}}
	if err := p.model(&m); err != nil {
		return nil, err
	}
	return p.g, nil
}

type parser struct {
	g     *Graph
	ext   fs.FS
	ids   map[string]ValueID
	files map[string][]byte // external data files read so far, by location
}

func (p *parser) errorf(wrap error, format string, args ...any) error {
	return fmt.Errorf("cannot parse model %q: %s: %w", p.g.Name, fmt.Sprintf(format, args...), wrap)
}

func (p *parser) model(m *onnxpb.ModelProto) error {
	g := p.g
	for _, o := range m.GetOpsetImport() {
		switch o.GetDomain() {
		case "", "ai.onnx":
			g.Opset = o.GetVersion()
		}
	}
	if g.Opset == 0 {
		if m.GetIrVersion() == 0 && m.GetGraph() == nil {
			return p.errorf(ErrInvalid, "no graph and no opset (empty or not an ONNX file)")
		}
		return p.errorf(ErrInvalid, "no default-domain opset import")
	}
	if g.Opset < MinOpset || g.Opset > MaxOpset {
		return p.errorf(ErrUnsupported, "opset %d outside the supported range [%d, %d]; re-export with opset_version=13", g.Opset, MinOpset, MaxOpset)
	}
	gp := m.GetGraph()
	if gp == nil {
		return p.errorf(ErrInvalid, "no graph")
	}
	if n := len(gp.GetNode()) + len(gp.GetInitializer()) + len(gp.GetInput()); n > MaxNodes {
		return p.errorf(ErrUnsupported, "%d nodes, initializers and inputs, over the limit of %d", n, MaxNodes)
	}
	// Initializers first: in IR < 4 they are also listed as graph inputs, which are then
	// not model inputs.
	for _, t := range gp.GetInitializer() {
		if t.GetName() == "" {
			return p.errorf(ErrInvalid, "initializer without a name")
		}
		if _, dup := p.ids[t.GetName()]; dup {
			return p.errorf(ErrInvalid, "initializer %q defined twice", t.GetName())
		}
		c, err := p.tensor(t)
		if err != nil {
			return err
		}
		p.define(Value{Name: t.GetName(), DType: c.DType, Shape: c.Shape, Const: c})
	}
	for _, vi := range gp.GetInput() {
		if _, isInit := p.ids[vi.GetName()]; isInit {
			continue
		}
		v, err := p.valueInfo(vi)
		if err != nil {
			return err
		}
		if v.Name == "" {
			return p.errorf(ErrInvalid, "graph input without a name")
		}
		if _, dup := p.ids[v.Name]; dup {
			return p.errorf(ErrInvalid, "graph input %q defined twice", v.Name)
		}
		g.Inputs = append(g.Inputs, p.define(v))
	}
	if len(g.Inputs) == 0 {
		return p.errorf(ErrInvalid, "graph has no inputs")
	}
	// Declared types of intermediate values and outputs, used when a node's output is created.
	declared := map[string]*onnxpb.ValueInfoProto{}
	for _, vi := range gp.GetValueInfo() {
		declared[vi.GetName()] = vi
	}
	for _, vi := range gp.GetOutput() {
		declared[vi.GetName()] = vi
	}
	nodes, err := p.sortNodes(gp.GetNode())
	if err != nil {
		return err
	}
	for i, np := range nodes {
		if err := p.node(i, np, declared); err != nil {
			return err
		}
	}
	for _, vi := range gp.GetOutput() {
		id, ok := p.ids[vi.GetName()]
		if !ok {
			return p.errorf(ErrInvalid, "graph output %q is never produced", vi.GetName())
		}
		g.Outputs = append(g.Outputs, id)
	}
	if len(g.Outputs) == 0 {
		return p.errorf(ErrInvalid, "graph has no outputs")
	}
	if err := g.Check(); err != nil {
		return err
	}
	return nil
}

func (p *parser) define(v Value) ValueID {
	id := ValueID(len(p.g.Values))
	p.g.Values = append(p.g.Values, v)
	p.ids[v.Name] = id
	return id
}

// sortNodes orders nodes topologically (ONNX requires it, but not every writer obeys), keeping
// the file's order where it is already valid.
func (p *parser) sortNodes(nodes []*onnxpb.NodeProto) ([]*onnxpb.NodeProto, error) {
	producer := map[string]int{}
	for i, n := range nodes {
		for _, o := range n.GetOutput() {
			if o == "" {
				continue
			}
			if _, dup := producer[o]; dup {
				return nil, p.errorf(ErrInvalid, "%s node %q: output %q is produced twice", n.GetOpType(), n.GetName(), o)
			}
			if _, dup := p.ids[o]; dup {
				return nil, p.errorf(ErrInvalid, "%s node %q: output %q is also an input or initializer", n.GetOpType(), n.GetName(), o)
			}
			producer[o] = i
		}
	}
	state := make([]uint8, len(nodes)) // 0 new, 1 on the stack, 2 done
	out := make([]*onnxpb.NodeProto, 0, len(nodes))
	type frame struct{ node, next int }
	for root := range nodes {
		if state[root] != 0 {
			continue
		}
		stack := []frame{{root, 0}}
		state[root] = 1
		for len(stack) > 0 {
			f := &stack[len(stack)-1]
			ins := nodes[f.node].GetInput()
			if f.next < len(ins) {
				in := ins[f.next]
				f.next++
				q, ok := producer[in]
				if !ok || state[q] == 2 {
					continue
				}
				if state[q] == 1 {
					n := nodes[q]
					return nil, p.errorf(ErrInvalid, "%s node %q is part of a cycle through %q", n.GetOpType(), n.GetName(), in)
				}
				state[q] = 1
				stack = append(stack, frame{q, 0})
				continue
			}
			state[f.node] = 2
			out = append(out, nodes[f.node])
			stack = stack[:len(stack)-1]
		}
	}
	return out, nil
}

func (p *parser) node(i int, np *onnxpb.NodeProto, declared map[string]*onnxpb.ValueInfoProto) error {
	n := Node{Name: np.GetName(), Op: np.GetOpType(), Attrs: map[string]Attr{}}
	if n.Name == "" {
		n.Name = fmt.Sprintf("#%d", i)
	}
	if d := np.GetDomain(); d != "" && d != "ai.onnx" {
		return p.errorf(ErrUnsupported, "%s node %q: operator domain %q not supported (only the default ONNX domain)", n.Op, n.Name, d)
	}
	if !Supported(n.Op) {
		return p.errorf(ErrUnsupported, "%s node %q: operator %s not supported (supported: %s)", n.Op, n.Name, n.Op, strings.Join(SupportedOps(), " "))
	}
	for _, a := range np.GetAttribute() {
		attr, err := p.attr(a)
		if err != nil {
			return p.errorf(err, "%s node %q: attribute %q", n.Op, n.Name, a.GetName())
		}
		if attr.Kind == 0 {
			continue // a kind no supported op uses (graphs, strings lists): ignored
		}
		n.Attrs[a.GetName()] = attr
	}
	for _, in := range np.GetInput() {
		if in == "" {
			n.Inputs = append(n.Inputs, NoValue)
			continue
		}
		id, ok := p.ids[in]
		if !ok {
			return p.errorf(ErrInvalid, "%s node %q: input %q is not a graph input, initializer or node output", n.Op, n.Name, in)
		}
		n.Inputs = append(n.Inputs, id)
	}
	if n.Op == "Constant" {
		if len(np.GetOutput()) != 1 || np.GetOutput()[0] == "" {
			return p.errorf(ErrInvalid, "Constant node %q: needs exactly one output", n.Name)
		}
		c, err := constantValue(&n)
		if err != nil {
			return p.errorf(ErrInvalid, "Constant node %q: %v", n.Name, err)
		}
		p.define(Value{Name: np.GetOutput()[0], DType: c.DType, Shape: c.Shape, Const: c})
		return nil
	}
	for _, out := range np.GetOutput() {
		if out == "" {
			n.Outputs = append(n.Outputs, NoValue)
			continue
		}
		v := Value{Name: out}
		if vi, ok := declared[out]; ok {
			var err error
			if v, err = p.valueInfo(vi); err != nil {
				return err
			}
		}
		n.Outputs = append(n.Outputs, p.define(v))
	}
	p.g.Nodes = append(p.g.Nodes, n)
	return nil
}

// constantValue is the tensor a Constant node holds.
func constantValue(n *Node) (*Tensor, error) {
	if len(n.Attrs) != 1 {
		return nil, fmt.Errorf("needs exactly one of value, value_float(s), value_int(s), has %d attributes", len(n.Attrs))
	}
	for k, a := range n.Attrs {
		switch {
		case k == "value" && a.Kind == AttrTensor:
			return a.Tensor, nil
		case k == "value_float" && a.Kind == AttrFloat:
			return TensorF32(nil, a.Float), nil
		case k == "value_floats" && a.Kind == AttrFloats:
			return TensorF32([]int64{int64(len(a.Floats))}, a.Floats...), nil
		case k == "value_int" && a.Kind == AttrInt:
			return ScalarTensorI64(nil, a.Int), nil
		case k == "value_ints" && a.Kind == AttrInts:
			return ScalarTensorI64([]int64{int64(len(a.Ints))}, a.Ints...), nil
		}
		return nil, fmt.Errorf("attribute %q not supported", k)
	}
	panic("unreachable")
}

func (p *parser) attr(a *onnxpb.AttributeProto) (Attr, error) {
	switch a.GetType() {
	case onnxpb.AttributeProto_INT:
		return Attr{Kind: AttrInt, Int: a.GetI()}, nil
	case onnxpb.AttributeProto_INTS:
		return Attr{Kind: AttrInts, Ints: a.GetInts()}, nil
	case onnxpb.AttributeProto_FLOAT:
		return Attr{Kind: AttrFloat, Float: a.GetF()}, nil
	case onnxpb.AttributeProto_FLOATS:
		return Attr{Kind: AttrFloats, Floats: a.GetFloats()}, nil
	case onnxpb.AttributeProto_STRING:
		return Attr{Kind: AttrString, String: string(a.GetS())}, nil
	case onnxpb.AttributeProto_TENSOR:
		t, err := p.tensor(a.GetT())
		if err != nil {
			return Attr{}, err
		}
		return Attr{Kind: AttrTensor, Tensor: t}, nil
	case onnxpb.AttributeProto_UNDEFINED:
		return Attr{}, fmt.Errorf("no type: %w", ErrInvalid)
	}
	return Attr{}, nil
}

func (p *parser) valueInfo(vi *onnxpb.ValueInfoProto) (Value, error) {
	v := Value{Name: vi.GetName()}
	tt := vi.GetType().GetTensorType()
	if tt == nil {
		if vi.GetType() != nil && vi.GetType().GetValue() != nil {
			return v, p.errorf(ErrUnsupported, "value %q: only tensor types are supported", v.Name)
		}
		return v, nil
	}
	v.DType = DType(tt.GetElemType())
	if v.DType != Undefined && v.DType.Size() == 0 {
		return v, p.errorf(ErrUnsupported, "value %q: element type %d not supported", v.Name, tt.GetElemType())
	}
	if sh := tt.GetShape(); sh != nil {
		if len(sh.GetDim()) > MaxRank {
			return v, p.errorf(ErrUnsupported, "value %q: rank %d over %d", v.Name, len(sh.GetDim()), MaxRank)
		}
		v.Shape = make([]int64, 0, len(sh.GetDim()))
		for _, d := range sh.GetDim() {
			x := int64(-1)
			if _, ok := d.GetValue().(*onnxpb.TensorShapeProto_Dimension_DimValue); ok && d.GetDimValue() >= 0 {
				x = d.GetDimValue()
			}
			v.Shape = append(v.Shape, x)
		}
	}
	return v, nil
}

// tensor converts a TensorProto, reading external data through p.ext.
func (p *parser) tensor(t *onnxpb.TensorProto) (*Tensor, error) {
	name := t.GetName()
	dt := DType(t.GetDataType())
	switch dt {
	case Float32, Int64, Int32, Int8, Uint8, Bool:
	case Float64, Float16:
		return nil, p.errorf(ErrUnsupported, "tensor %q: element type %v not supported; export in float32", name, dt)
	default:
		return nil, p.errorf(ErrUnsupported, "tensor %q: element type %d not supported", name, int32(dt))
	}
	if len(t.GetDims()) > MaxRank {
		return nil, p.errorf(ErrUnsupported, "tensor %q: rank %d over %d", name, len(t.GetDims()), MaxRank)
	}
	if t.Segment != nil {
		return nil, p.errorf(ErrUnsupported, "tensor %q: segmented tensors not supported", name)
	}
	n := int64(1)
	for _, d := range t.GetDims() {
		if d < 0 {
			return nil, p.errorf(ErrInvalid, "tensor %q: negative dimension in %v", name, t.GetDims())
		}
		if d > MaxTensorElems || n*d > MaxTensorElems {
			return nil, p.errorf(ErrUnsupported, "tensor %q: shape %v over %d elements", name, t.GetDims(), MaxTensorElems)
		}
		n *= d
	}
	out := &Tensor{DType: dt, Shape: append([]int64{}, t.GetDims()...)}
	raw := t.GetRawData()
	if t.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		var err error
		if raw, err = p.external(t); err != nil {
			return nil, err
		}
	}
	size := int64(dt.Size())
	switch {
	case raw != nil || t.GetDataLocation() == onnxpb.TensorProto_EXTERNAL:
		if int64(len(raw)) != n*size {
			return nil, p.errorf(ErrInvalid, "tensor %q: %d data bytes for shape %v of %v (want %d)", name, len(raw), t.GetDims(), dt, n*size)
		}
		if dt.IsFloat() {
			out.F = make([]float32, n)
			for i := range out.F {
				out.F[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			}
			break
		}
		out.I = make([]int64, n)
		for i := range out.I {
			switch size {
			case 8:
				out.I[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
			case 4:
				out.I[i] = int64(int32(binary.LittleEndian.Uint32(raw[4*i:])))
			default:
				if dt == Int8 {
					out.I[i] = int64(int8(raw[i]))
				} else {
					out.I[i] = int64(raw[i])
				}
			}
		}
	case dt == Float32:
		if int64(len(t.GetFloatData())) != n {
			return nil, p.errorf(ErrInvalid, "tensor %q: %d float_data elements for shape %v", name, len(t.GetFloatData()), t.GetDims())
		}
		out.F = append([]float32{}, t.GetFloatData()...)
	case dt == Int64:
		if int64(len(t.GetInt64Data())) != n {
			return nil, p.errorf(ErrInvalid, "tensor %q: %d int64_data elements for shape %v", name, len(t.GetInt64Data()), t.GetDims())
		}
		out.I = append([]int64{}, t.GetInt64Data()...)
	default: // int32, int8, uint8, bool travel in int32_data
		if int64(len(t.GetInt32Data())) != n {
			return nil, p.errorf(ErrInvalid, "tensor %q: %d int32_data elements for shape %v", name, len(t.GetInt32Data()), t.GetDims())
		}
		out.I = make([]int64, n)
		for i, v := range t.GetInt32Data() {
			out.I[i] = int64(v)
		}
	}
	if out.F == nil && dt.IsFloat() {
		out.F = []float32{}
	}
	if out.I == nil && dt.IsInt() {
		out.I = []int64{}
	}
	return out, nil
}

// external returns the bytes of a tensor stored outside the model file.
func (p *parser) external(t *onnxpb.TensorProto) ([]byte, error) {
	name := t.GetName()
	var loc string
	offset, length := int64(0), int64(-1)
	for _, kv := range t.GetExternalData() {
		var err error
		switch kv.GetKey() {
		case "location":
			loc = kv.GetValue()
		case "offset":
			offset, err = strconv.ParseInt(kv.GetValue(), 10, 64)
		case "length":
			length, err = strconv.ParseInt(kv.GetValue(), 10, 64)
		}
		if err != nil {
			return nil, p.errorf(ErrInvalid, "tensor %q: external data %s %q is not an integer", name, kv.GetKey(), kv.GetValue())
		}
	}
	if loc == "" {
		return nil, p.errorf(ErrInvalid, "tensor %q: external data without a location", name)
	}
	loc = filepath.ToSlash(loc)
	if !fs.ValidPath(loc) {
		return nil, p.errorf(ErrInvalid, "tensor %q: external data location %q must be a relative path inside the model's directory", name, loc)
	}
	data, ok := p.files[loc]
	if !ok {
		if p.ext == nil {
			return nil, p.errorf(ErrInvalid, "tensor %q: stored in external file %q, but no directory was given; use model.Load or pass the model's directory", name, loc)
		}
		if st, err := fs.Stat(p.ext, loc); err == nil && st.Size() > MaxFileBytes {
			return nil, p.errorf(ErrUnsupported, "tensor %q: external file %q is %d bytes, over the %d-byte limit", name, loc, st.Size(), int64(MaxFileBytes))
		}
		var err error
		data, err = fs.ReadFile(p.ext, loc)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, p.errorf(ErrInvalid, "tensor %q: external data file %q is missing; copy it next to the .onnx file", name, loc)
			}
			return nil, p.errorf(ErrInvalid, "tensor %q: cannot read external data file %q: %v", name, loc, err)
		}
		p.files[loc] = data
	}
	if length < 0 {
		length = int64(len(data)) - offset
	}
	if offset < 0 || length < 0 || offset > int64(len(data)) || length > int64(len(data))-offset {
		return nil, p.errorf(ErrInvalid, "tensor %q: external data [%d, +%d) outside file %q of %d bytes (truncated?)", name, offset, length, loc, len(data))
	}
	return data[offset : offset+length], nil
}
