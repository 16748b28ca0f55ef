package model

import (
	"encoding/binary"
	"math"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/clockwork-go/clockwork/runtime/model/onnxpb"
)

// onnxBuilder writes small ONNX models for tests.
type onnxBuilder struct {
	m *onnxpb.ModelProto
}

func newONNX(opset int64) *onnxBuilder {
	return &onnxBuilder{m: &onnxpb.ModelProto{
		IrVersion:   proto.Int64(7),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(opset)}},
		Graph:       &onnxpb.GraphProto{Name: proto.String("test")},
	}}
}

func valueInfo(name string, dt DType, shape ...int64) *onnxpb.ValueInfoProto {
	var dims []*onnxpb.TensorShapeProto_Dimension
	for _, d := range shape {
		if d < 0 {
			dims = append(dims, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "batch"}})
		} else {
			dims = append(dims, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}})
		}
	}
	return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
		TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(dt)), Shape: &onnxpb.TensorShapeProto{Dim: dims}}}}}
}

func (b *onnxBuilder) input(name string, shape ...int64) *onnxBuilder {
	b.m.Graph.Input = append(b.m.Graph.Input, valueInfo(name, Float32, shape...))
	return b
}

func (b *onnxBuilder) output(name string) *onnxBuilder {
	vi := valueInfo(name, Float32)
	vi.Type.GetTensorType().Shape = nil // shape not declared
	b.m.Graph.Output = append(b.m.Graph.Output, vi)
	return b
}

// rawF32 is a float32 initializer stored as raw_data.
func rawF32(name string, shape []int64, v []float32) *onnxpb.TensorProto {
	raw := make([]byte, 0, 4*len(v))
	for _, x := range v {
		raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(x))
	}
	return &onnxpb.TensorProto{Name: proto.String(name), Dims: shape, DataType: proto.Int32(int32(Float32)), RawData: raw}
}

func i64Tensor(name string, shape []int64, v ...int64) *onnxpb.TensorProto {
	return &onnxpb.TensorProto{Name: proto.String(name), Dims: shape, DataType: proto.Int32(int32(Int64)), Int64Data: v}
}

func (b *onnxBuilder) init(t *onnxpb.TensorProto) *onnxBuilder {
	b.m.Graph.Initializer = append(b.m.Graph.Initializer, t)
	return b
}

// external moves initializer name's data to file loc at offset, returning the bytes to write.
func (b *onnxBuilder) external(name, loc string, offset int64) []byte {
	for _, t := range b.m.Graph.Initializer {
		if t.GetName() == name {
			raw := t.RawData
			t.RawData = nil
			t.DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
			t.ExternalData = []*onnxpb.StringStringEntryProto{
				{Key: proto.String("location"), Value: proto.String(loc)},
				{Key: proto.String("offset"), Value: proto.String(strconv.FormatInt(offset, 10))},
				{Key: proto.String("length"), Value: proto.String(strconv.Itoa(len(raw)))},
			}
			return raw
		}
	}
	panic("no initializer " + name)
}

type attr = *onnxpb.AttributeProto

func ints(name string, v ...int64) attr {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: v}
}

func intAttr(name string, v int64) attr {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

func floatAttr(name string, v float32) attr {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_FLOAT.Enum(), F: proto.Float32(v)}
}

func tensorAttr(name string, t *onnxpb.TensorProto) attr {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_TENSOR.Enum(), T: t}
}

func (b *onnxBuilder) node(op, name string, ins, outs []string, attrs ...attr) *onnxBuilder {
	b.m.Graph.Node = append(b.m.Graph.Node, &onnxpb.NodeProto{OpType: proto.String(op), Name: proto.String(name), Input: ins, Output: outs, Attribute: attrs})
	return b
}

func (b *onnxBuilder) bytes() []byte {
	data, err := proto.Marshal(b.m)
	if err != nil {
		panic(err)
	}
	return data
}

func seq(n int, scale float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = scale * float32(i%7-3)
	}
	return v
}

// tinyCNN is a small model with what the torchvision exports contain: Conv, BatchNormalization,
// Relu, a pool, and the Shape/Gather/Unsqueeze/Concat/Reshape chain of a dynamic-batch flatten,
// then Gemm.
func tinyCNN() *onnxBuilder {
	b := newONNX(13).input("x", -1, 3, 8, 8).output("y")
	b.init(rawF32("w", []int64{4, 3, 3, 3}, seq(108, 0.1)))
	b.init(rawF32("cb", []int64{4}, []float32{0.1, 0.2, 0.3, 0.4}))
	b.init(rawF32("bn_s", []int64{4}, []float32{1, 2, 0.5, 1}))
	b.init(rawF32("bn_b", []int64{4}, []float32{0, 1, -1, 0.5}))
	b.init(rawF32("bn_m", []int64{4}, []float32{0.1, 0, 0.2, 0}))
	b.init(rawF32("bn_v", []int64{4}, []float32{1, 4, 0.25, 2}))
	b.init(rawF32("fc_w", []int64{10, 64}, seq(640, 0.01)))
	b.init(rawF32("fc_b", []int64{10}, seq(10, 0.5)))
	b.init(i64Tensor("zero", nil, 0))
	b.node("Conv", "conv1", []string{"x", "w", "cb"}, []string{"c1"}, ints("pads", 1, 1, 1, 1), ints("kernel_shape", 3, 3))
	b.node("BatchNormalization", "bn1", []string{"c1", "bn_s", "bn_b", "bn_m", "bn_v"}, []string{"b1"}, floatAttr("epsilon", 1e-5))
	b.node("Relu", "relu1", []string{"b1"}, []string{"r1"})
	b.node("MaxPool", "pool1", []string{"r1"}, []string{"p1"}, ints("kernel_shape", 2, 2), ints("strides", 2, 2))
	b.node("Shape", "shape", []string{"p1"}, []string{"s"})
	b.node("Gather", "gather", []string{"s", "zero"}, []string{"n"}, intAttr("axis", 0))
	b.node("Unsqueeze", "unsq", []string{"n", "axes0"}, []string{"n1"})
	b.node("Constant", "minus1", nil, []string{"m1"}, tensorAttr("value", i64Tensor("", []int64{1}, -1)))
	b.node("Constant", "axes", nil, []string{"axes0"}, tensorAttr("value", i64Tensor("", []int64{1}, 0)))
	b.node("Concat", "cat", []string{"n1", "m1"}, []string{"shp"}, intAttr("axis", 0))
	b.node("Reshape", "flatten", []string{"p1", "shp"}, []string{"f"})
	b.node("Gemm", "fc", []string{"f", "fc_w", "fc_b"}, []string{"y"}, intAttr("transB", 1))
	return b
}
