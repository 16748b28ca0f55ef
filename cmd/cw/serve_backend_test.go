package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/clockwork-go/clockwork/runtime/model"
	"github.com/clockwork-go/clockwork/runtime/model/onnxpb"
)

// gemmONNX is a one-layer model: y = Relu(x·Wᵀ + b), x [N,64], y [N,10].
func gemmONNX() []byte {
	raw := func(n int) []byte {
		b := make([]byte, 0, 4*n)
		for i := range n {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(i%9-4)/16))
		}
		return b
	}
	f32 := proto.Int32(int32(model.Float32))
	vi := func(name string, dims ...*onnxpb.TensorShapeProto_Dimension) *onnxpb.ValueInfoProto {
		t := &onnxpb.TypeProto_Tensor{ElemType: f32}
		if dims != nil {
			t.Shape = &onnxpb.TensorShapeProto{Dim: dims}
		}
		return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: t}}}
	}
	m := &onnxpb.ModelProto{IrVersion: proto.Int64(7), OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(13)}},
		Graph: &onnxpb.GraphProto{Name: proto.String("gemm"),
			Input: []*onnxpb.ValueInfoProto{vi("x", &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "batch"}},
				&onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: 64}})},
			Output: []*onnxpb.ValueInfoProto{vi("y")},
			Initializer: []*onnxpb.TensorProto{{Name: proto.String("w"), Dims: []int64{10, 64}, DataType: f32, RawData: raw(640)},
				{Name: proto.String("b"), Dims: []int64{10}, DataType: f32, RawData: raw(10)}},
			Node: []*onnxpb.NodeProto{
				{OpType: proto.String("Gemm"), Name: proto.String("fc"), Input: []string{"x", "w", "b"}, Output: []string{"g"},
					Attribute: []*onnxpb.AttributeProto{{Name: proto.String("transB"), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(1)}}},
				{OpType: proto.String("Relu"), Name: proto.String("relu"), Input: []string{"g"}, Output: []string{"y"}},
			}}}
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// TestServeCPUBackend runs cw serve -backend cpu with two instances of one ONNX file and a 1 s
// Poisson workload with real input bytes: every request is answered.
func TestServeCPUBackend(t *testing.T) {
	root, dir := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "gemm.onnx"), gemmONNX(), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	err := runServe(t.Context(), []string{"-backend", "cpu", "-model-root", root, "-models", "gemm.onnx:2", "-batches", "1,2,4",
		"-listen", "127.0.0.1:0", "-synth=false", "-workload", "poisson", "-rate", "100", "-duration", "1s", "-slo", "2s", "-out", dir, "-progress", "off"}, &out, &errb)
	if err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	var s map[string]any
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil || json.Unmarshal(b, &s) != nil {
		t.Fatalf("summary.json: %v", err)
	}
	if s["sent"].(float64) < 50 || s["answered"] != s["sent"] {
		t.Errorf("summary: %s", b)
	}
	if !strings.Contains(errb.String(), "serving 2 model instances") {
		t.Errorf("stderr: %s", errb.String())
	}
}

// TestWorkerCommandBackends: cw worker -backend cpu serves; -backend cuda on a machine without
// a GPU fails naming why; an unknown backend is refused.
func TestWorkerCommandBackends(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runMain(ctx, []string{"worker", "-backend", "cpu", "-addr", "127.0.0.1:0", "-gpus", "2", "-region-mib", "64", "-io-mib", "8", "-workspace-mib", "8", "-host-io-mib", "16"}, &out, &errb)
	}()
	for !strings.Contains(errb.String(), "worker listening") {
		select {
		case code := <-done:
			t.Fatalf("exited %d: %s", code, errb.String())
		case <-time.After(time.Millisecond):
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "(2 cpu GPUs)") {
		t.Fatalf("stdout %q", out.String())
	}
	var e2 syncBuffer
	if code := runMain(context.Background(), []string{"worker", "-backend", "tpu"}, &out, &e2); code == 0 || !strings.Contains(e2.String(), "want sim, cpu or cuda") {
		t.Fatalf("-backend tpu: exit %d: %s", code, e2.String())
	}
}
