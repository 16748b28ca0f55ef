package cpu

// A minimal ONNX reader for the operator test suite, on protowire: it reads only what node
// tests use (model opset, graph nodes/attributes/initializers/inputs/outputs, TensorProto),
// so the suite runs against this package alone, independent of runtime/model's importer.

import (
	"encoding/binary"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

type onnxModel struct {
	opset   int
	nodes   []onnxNode
	inits   map[string]*Tensor
	inputs  []onnxValue // graph inputs (including initializers in old IR versions)
	outputs []onnxValue
}

type onnxValue struct {
	name     string
	isTensor bool
	elemType DType
}

type onnxNode struct {
	Node
	domain          string
	inputs, outputs []string
}

// fields walks the fields of one message, calling f with each field's number, wire type and
// value (varint / fixed value in v, bytes in b).
func fields(buf []byte, f func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error) error {
	for len(buf) > 0 {
		num, typ, n := protowire.ConsumeTag(buf)
		if n < 0 {
			return protowire.ParseError(n)
		}
		buf = buf[n:]
		var v uint64
		var b []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(buf)
		case protowire.Fixed32Type:
			var x uint32
			x, n = protowire.ConsumeFixed32(buf)
			v = uint64(x)
		case protowire.Fixed64Type:
			v, n = protowire.ConsumeFixed64(buf)
		case protowire.BytesType:
			b, n = protowire.ConsumeBytes(buf)
		default:
			n = protowire.ConsumeFieldValue(num, typ, buf)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		buf = buf[n:]
		if err := f(num, typ, v, b); err != nil {
			return err
		}
	}
	return nil
}

// varints appends a repeated varint field, packed or not.
func varints(dst []int64, typ protowire.Type, v uint64, b []byte) ([]int64, error) {
	if typ == protowire.VarintType {
		return append(dst, int64(v)), nil
	}
	for len(b) > 0 {
		x, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		dst = append(dst, int64(x))
		b = b[n:]
	}
	return dst, nil
}

func parseModel(buf []byte) (*onnxModel, error) {
	m := &onnxModel{inits: map[string]*Tensor{}}
	var graph []byte
	err := fields(buf, func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error {
		switch num {
		case 7:
			graph = b
		case 8: // opset_import
			var domain string
			var ver int64
			if err := fields(b, func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error {
				switch num {
				case 1:
					domain = string(b)
				case 2:
					ver = int64(v)
				}
				return nil
			}); err != nil {
				return err
			}
			if domain == "" || domain == "ai.onnx" {
				m.opset = int(ver)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = fields(graph, func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error {
		switch num {
		case 1:
			n, err := parseNode(b)
			if err != nil {
				return err
			}
			m.nodes = append(m.nodes, *n)
		case 5:
			t, name, err := parseTensor(b)
			if err != nil {
				return err
			}
			m.inits[name] = t
		case 11, 12:
			val, err := parseValueInfo(b)
			if err != nil {
				return err
			}
			if num == 11 {
				m.inputs = append(m.inputs, val)
			} else {
				m.outputs = append(m.outputs, val)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range m.nodes {
		m.nodes[i].Opset = m.opset
	}
	return m, nil
}

func parseValueInfo(buf []byte) (onnxValue, error) {
	var val onnxValue
	err := fields(buf, func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error {
		switch num {
		case 1:
			val.name = string(b)
		case 2:
			return fields(b, func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error {
				if num != 1 {
					return nil
				}
				val.isTensor = true
				return fields(b, func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error {
					if num == 1 {
						val.elemType = DType(v)
					}
					return nil
				})
			})
		}
		return nil
	})
	return val, err
}

func parseNode(buf []byte) (*onnxNode, error) {
	n := &onnxNode{Node: Node{Attrs: map[string]Attr{}}}
	err := fields(buf, func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error {
		switch num {
		case 1:
			n.inputs = append(n.inputs, string(b))
		case 2:
			n.outputs = append(n.outputs, string(b))
		case 3:
			n.Name = string(b)
		case 4:
			n.Op = string(b)
		case 7:
			n.domain = string(b)
		case 5:
			name, a, err := parseAttr(b)
			if err != nil {
				return err
			}
			n.Attrs[name] = a
		}
		return nil
	})
	return n, err
}

func parseAttr(buf []byte) (string, Attr, error) {
	var name string
	var a Attr
	var kind int64
	err := fields(buf, func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error {
		var err error
		switch num {
		case 1:
			name = string(b)
		case 2:
			a.F = math.Float32frombits(uint32(v))
		case 3:
			a.Int = int64(v)
		case 4:
			a.S = string(b)
		case 5:
			a.T, _, err = parseTensor(b)
		case 7:
			if typ == protowire.Fixed32Type {
				a.Fs = append(a.Fs, math.Float32frombits(uint32(v)))
			} else {
				for i := 0; i+4 <= len(b); i += 4 {
					a.Fs = append(a.Fs, math.Float32frombits(binary.LittleEndian.Uint32(b[i:])))
				}
			}
		case 8:
			a.Ints, err = varints(a.Ints, typ, v, b)
		case 20:
			kind = int64(v)
		}
		return err
	})
	// AttributeProto.AttributeType: FLOAT 1, INT 2, STRING 3, TENSOR 4, FLOATS 6, INTS 7
	switch kind {
	case 1:
		a.Kind = AttrFloat
	case 2:
		a.Kind = AttrInt
	case 3:
		a.Kind = AttrString
	case 4:
		a.Kind = AttrTensor
	case 6:
		a.Kind = AttrFloats
	case 7:
		a.Kind = AttrInts
	}
	return name, a, err
}

// parseTensor reads a TensorProto into a Tensor; string tensors and external data are errors.
func parseTensor(buf []byte) (*Tensor, string, error) {
	var dims, i64 []int64
	var dt int64
	var name string
	var raw []byte
	var f32 []float32
	var f64 []float64
	var u64 []uint64
	hasRaw, hasStrings := false, false
	err := fields(buf, func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error {
		var err error
		switch num {
		case 1:
			dims, err = varints(dims, typ, v, b)
		case 2:
			dt = int64(v)
		case 4:
			if typ == protowire.Fixed32Type {
				f32 = append(f32, math.Float32frombits(uint32(v)))
			} else {
				for i := 0; i+4 <= len(b); i += 4 {
					f32 = append(f32, math.Float32frombits(binary.LittleEndian.Uint32(b[i:])))
				}
			}
		case 5, 7: // int32_data holds all narrow integer, bool and 16-bit float types
			i64, err = varints(i64, typ, v, b)
		case 6:
			hasStrings = true
		case 8:
			name = string(b)
		case 9:
			raw, hasRaw = b, true
		case 10:
			if typ == protowire.Fixed64Type {
				f64 = append(f64, math.Float64frombits(v))
			} else {
				for i := 0; i+8 <= len(b); i += 8 {
					f64 = append(f64, math.Float64frombits(binary.LittleEndian.Uint64(b[i:])))
				}
			}
		case 11:
			var tmp []int64
			tmp, err = varints(nil, typ, v, b)
			for _, x := range tmp {
				u64 = append(u64, uint64(x))
			}
		case 13, 14:
			if num == 14 && v == 1 {
				return fmt.Errorf("external data not supported in the test reader")
			}
		}
		return err
	})
	if err != nil {
		return nil, "", err
	}
	d := DType(dt)
	if d.Size() == 0 || hasStrings {
		return nil, name, fmt.Errorf("tensor %q: dtype %v not supported", name, d)
	}
	shape := make([]int, len(dims))
	for i, x := range dims {
		if x < 0 || x > 1<<30 {
			return nil, name, fmt.Errorf("tensor %q: bad dim %d", name, x)
		}
		shape[i] = int(x)
	}
	t := NewTensor(d, shape...)
	if numel(shape) > 1<<28 {
		return nil, name, fmt.Errorf("tensor %q too large", name)
	}
	n := t.Len()
	switch {
	case hasRaw:
		if len(raw) != len(t.Data) {
			return nil, name, fmt.Errorf("tensor %q: raw_data %d bytes, want %d", name, len(raw), len(t.Data))
		}
		copy(t.Data, raw)
	case d == Float32:
		if len(f32) != n {
			return nil, name, fmt.Errorf("tensor %q: %d floats, want %d", name, len(f32), n)
		}
		copy(t.F32(), f32)
	case d == Float64:
		if len(f64) != n {
			return nil, name, fmt.Errorf("tensor %q: %d doubles, want %d", name, len(f64), n)
		}
		copy(view[float64](t.Data), f64)
	case d == Uint64 || d == Uint32:
		if len(u64) != n {
			return nil, name, fmt.Errorf("tensor %q: %d uint64s, want %d", name, len(u64), n)
		}
		for i, x := range u64 {
			if d == Uint64 {
				view[uint64](t.Data)[i] = x
			} else {
				view[uint32](t.Data)[i] = uint32(x)
			}
		}
	default:
		if len(i64) != n {
			return nil, name, fmt.Errorf("tensor %q: %d ints, want %d", name, len(i64), n)
		}
		size := d.Size()
		for i, x := range i64 {
			switch size {
			case 1:
				t.Data[i] = byte(x)
			case 2:
				binary.LittleEndian.PutUint16(t.Data[2*i:], uint16(x))
			case 4:
				binary.LittleEndian.PutUint32(t.Data[4*i:], uint32(x))
			case 8:
				binary.LittleEndian.PutUint64(t.Data[8*i:], uint64(x))
			}
		}
	}
	if d == Bool {
		for i, x := range t.Data {
			if x != 0 {
				t.Data[i] = 1
			}
		}
	}
	return t, name, nil
}
