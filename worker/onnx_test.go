package worker

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/clockwork-go/clockwork/runtime/cpu"
	"github.com/clockwork-go/clockwork/runtime/device"
	rtmodel "github.com/clockwork-go/clockwork/runtime/model"
	"github.com/clockwork-go/clockwork/runtime/model/onnxpb"
	"github.com/clockwork-go/clockwork/wire"
)

// TinyONNX is tinyONNX for the external tests.
var TinyONNX = tinyONNX

// tinyONNX is a small CNN (Conv+bias, Relu, MaxPool, Flatten, Gemm) with a dynamic batch:
// input [N,3,8,8], output [N,10]. fc's 10 KiB of weights span a run of three 4 KiB pages.
func tinyONNX() []byte {
	f32 := func(name string, shape []int64, n int, scale float32) *onnxpb.TensorProto {
		raw := make([]byte, 0, 4*n)
		for i := range n {
			raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(scale*float32((i*37)%11-5)))
		}
		return &onnxpb.TensorProto{Name: proto.String(name), Dims: shape, DataType: proto.Int32(int32(rtmodel.Float32)), RawData: raw}
	}
	vi := func(name string, shape ...int64) *onnxpb.ValueInfoProto {
		var dims []*onnxpb.TensorShapeProto_Dimension
		for _, d := range shape {
			if d < 0 {
				dims = append(dims, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "batch"}})
			} else {
				dims = append(dims, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}})
			}
		}
		t := &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(rtmodel.Float32))}
		if len(dims) > 0 {
			t.Shape = &onnxpb.TensorShapeProto{Dim: dims}
		}
		return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: t}}}
	}
	ints := func(name string, v ...int64) *onnxpb.AttributeProto {
		return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: v}
	}
	node := func(op string, ins, outs []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
		return &onnxpb.NodeProto{OpType: proto.String(op), Name: proto.String(op + "_" + outs[0]), Input: ins, Output: outs, Attribute: attrs}
	}
	m := &onnxpb.ModelProto{
		IrVersion:   proto.Int64(7),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(13)}},
		Graph: &onnxpb.GraphProto{
			Name:   proto.String("tiny"),
			Input:  []*onnxpb.ValueInfoProto{vi("x", -1, 3, 8, 8)},
			Output: []*onnxpb.ValueInfoProto{vi("y")},
			Initializer: []*onnxpb.TensorProto{
				f32("w", []int64{16, 3, 3, 3}, 16*27, 0.05), f32("cb", []int64{16}, 16, 0.1),
				f32("fc_w", []int64{10, 256}, 2560, 0.01), f32("fc_b", []int64{10}, 10, 0.2),
			},
			Node: []*onnxpb.NodeProto{
				node("Conv", []string{"x", "w", "cb"}, []string{"c"}, ints("pads", 1, 1, 1, 1), ints("kernel_shape", 3, 3)),
				node("Relu", []string{"c"}, []string{"r"}),
				node("MaxPool", []string{"r"}, []string{"p"}, ints("kernel_shape", 2, 2), ints("strides", 2, 2)),
				node("Flatten", []string{"p"}, []string{"f"}),
				node("Gemm", []string{"f", "fc_w", "fc_b"}, []string{"y"}, &onnxpb.AttributeProto{Name: proto.String("transB"), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(1)}),
			},
		},
	}
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// cpuConfig: a cpu worker with 4 KiB pages and small arenas.
func cpuConfig(root string) Config {
	return Config{Addr: "127.0.0.1:0", Backend: &cpu.Backend{}, Compile: func(m *rtmodel.Model) (device.Model, error) { return cpu.FromModel(m) },
		ModelRoot: root, PageBytes: 4096, RegionBytes: 4 << 20, IOBytes: 1 << 20, IOSlotBytes: 8 << 10, WorkspaceBytes: 1 << 20,
		HostIOBytes: 4 << 20, Batches: []int{1, 2, 4, 8}}
}

// TestCompiledInstances: one file registered under several names compiles once (the instances
// share the programs) but each instance has its own host weight pages and its own cache pages
// on LOAD; both serve INFERs. Bad ONNX bytes and a name taken are refused without harm.
func TestCompiledInstances(t *testing.T) {
	t.Run("own-host-weights", func(t *testing.T) { testCompiledInstances(t, false) })
	t.Run("shared-host-weights", func(t *testing.T) { testCompiledInstances(t, true) })
}

func testCompiledInstances(t *testing.T, share bool) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "tiny.onnx"), tinyONNX(), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := cpuConfig(root)
	cfg.ShareHostWeights = share
	w := startWorker(t, cfg)
	k := dial(t, w)
	reg := func(id uint32, name, path string, upload []byte) wire.Status {
		k.id++
		src := wire.SourcePath
		if path == "" {
			src = wire.SourceUpload
		}
		k.send(&wire.LoadModel{RequestID: k.id, ModelID: id, Source: src, Name: []byte(name), Path: []byte(path)}, upload)
		k.mustRecv(wire.TypeModelInfo)
		return k.info.Status
	}
	for i, name := range []string{"a", "b", "c"} {
		if st := reg(uint32(i+1), name, "tiny.onnx", nil); st != wire.StatusOK {
			t.Fatalf("register %s: %s (%s)", name, st, k.info.Reason)
		}
	}
	if d := k.info.Model; d.InputBytes != 3*8*8*4 || d.OutputBytes != 40 || len(d.Batches) != 4 || d.WeightsPages < 4 {
		t.Fatalf("model desc %+v", d)
	}
	if st := reg(4, "up", "", tinyONNX()); st != wire.StatusOK {
		t.Fatalf("upload: %s (%s)", st, k.info.Reason)
	}
	for _, c := range []struct {
		id     uint32
		name   string
		upload []byte
		want   wire.Status
	}{{5, "junk", []byte("not onnx"), wire.StatusBadInput}, {6, "", nil, wire.StatusBadInput}, {7, "a", tinyONNX(), wire.StatusModelExists}} {
		if st := reg(c.id, c.name, "", c.upload); st != c.want {
			t.Errorf("register %q: %s (%s), want %s", c.name, st, k.info.Reason, c.want)
		}
	}
	// Too large for this worker's IO slot / workspace: refused at registration.
	small := cpuConfig(root)
	small.IOSlotBytes = 4096
	ws := startWorker(t, small)
	ks := dial(t, ws)
	ks.send(&wire.LoadModel{RequestID: 1, ModelID: 1, Source: wire.SourcePath, Name: []byte("a"), Path: []byte("tiny.onnx")}, nil)
	ks.mustRecv(wire.TypeModelInfo)
	if ks.info.Status != wire.StatusNoMemory || !strings.Contains(string(ks.info.Reason), "IO slot") {
		t.Errorf("model over the IO slot: %s", &ks.info)
	}
	a, b, up := w.lookup(1), w.lookup(2), w.lookup(4)
	w.modelsMu.RLock()
	entries, inst := len(w.compiled), a.comp.inst
	w.modelsMu.RUnlock()
	if entries != 2 || a.comp != b.comp || a.progs[0] != b.progs[0] || a.comp == up.comp || inst != 3 {
		t.Fatalf("%d compiled entries; a and b share: %v; upload separate: %v; instances %d", entries, a.comp == b.comp, a.comp != up.comp, inst)
	}
	if (&a.hostW.pages[0][0] == &b.hostW.pages[0][0]) != share || string(a.hostW.pages[0]) != string(b.hostW.pages[0]) {
		t.Fatalf("ShareHostWeights %v: instances share host weight pages: %v; or their pages differ", share, &a.hostW.pages[0][0] == &b.hostW.pages[0][0])
	}
	for id := uint32(1); id <= 2; id++ {
		if st := k.load(id, 0); st != wire.StatusOK {
			t.Fatalf("LOAD %d: %s", id, st)
		}
	}
	pa, pb := residentPtrs(w.gpus[0], a), residentPtrs(w.gpus[0], b)
	for _, p := range pa {
		for _, q := range pb {
			if p == q {
				t.Fatalf("instances share cache page %#x", p)
			}
		}
	}
	in := make([]byte, 2*768)
	var outs [2][]byte
	for i, id := range []uint32{1, 2} {
		r := k.do(&wire.Infer{Window: k.window(id, 0, 0, time.Minute), Batch: 2}, in)
		if r.Status != wire.StatusOK || len(k.out) != 80 {
			t.Fatalf("INFER %d: %s, %d bytes", id, r, len(k.out))
		}
		outs[i] = append([]byte(nil), k.out...)
	}
	if string(outs[0]) != string(outs[1]) {
		t.Fatal("two instances of one file answer the same input differently")
	}
}

// residentPtrs is m's page addresses on g.
func residentPtrs(g *gpu, m *model) []device.Ptr {
	g.mu.Lock()
	defer g.mu.Unlock()
	return m.state[g.idx].ptrs
}

// TestCompiledInferAllocs: an INFER of an ONNX model on the cpu backend (input from the socket,
// LOADed pages, output back) allocates nothing in steady state, like a sim INFER.
func TestCompiledInferAllocs(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "tiny.onnx"), tinyONNX(), 0o644); err != nil {
		t.Fatal(err)
	}
	w := startWorker(t, cpuConfig(root))
	k := dial(t, w)
	k.send(&wire.LoadModel{RequestID: 1, ModelID: 1, Source: wire.SourcePath, Name: []byte("tiny"), Path: []byte("tiny.onnx")}, nil)
	k.mustRecv(wire.TypeModelInfo)
	if st := k.load(1, 0); st != wire.StatusOK {
		t.Fatal(st)
	}
	in := make([]byte, 4*768)
	m := &wire.Infer{Batch: 4}
	run := func() {
		k.id++
		now := UnixMonoClock()
		m.Window = wire.Window{ActionID: k.id, ModelID: 1, EarliestNs: now, LatestNs: now + int64(time.Minute)}
		if err := k.c.Send(m, in); err != nil {
			t.Fatal(err)
		}
		if typ, err := k.recv(); err != nil || typ != wire.TypeResult || k.res.Status != wire.StatusOK || len(k.out) != 160 {
			t.Fatalf("%v %v %s", typ, err, &k.res)
		}
	}
	for range 100 {
		run()
	}
	if n := testing.AllocsPerRun(200, run); n != 0 {
		t.Fatalf("%v allocations per INFER", n)
	}
}

// builtBackend is a backend that takes what a worker with a nil Config.Compile hands Prepare
// (a worker.Built), as `-backend cuda` does: here the cpu backend underneath, converting the
// built model itself.
type builtBackend struct{ cpu.Backend }

type builtDevice struct{ device.Device }

func (b *builtBackend) Name() string { return "built" }

func (b *builtBackend) Open(region int64) ([]device.Device, error) {
	devs, err := b.Backend.Open(region)
	for i, d := range devs {
		devs[i] = builtDevice{d}
	}
	return devs, err
}

func (d builtDevice) Prepare(m device.Model, batches []int) (device.Program, error) {
	bm, ok := m.(interface{ Built() *rtmodel.Model })
	if !ok {
		return nil, fmt.Errorf("model %q of type %T is not a built model", m.Name(), m)
	}
	g, err := cpu.FromModel(bm.Built())
	if err != nil {
		return nil, err
	}
	return d.Device.Prepare(g, batches)
}

// TestBuiltModelsWithoutCompile: with Config.Compile nil (the -backend cuda wiring) a backend
// gets the built model through worker.Built and serves it; the output equals the cpu worker's.
func TestBuiltModelsWithoutCompile(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "tiny.onnx"), tinyONNX(), 0o644); err != nil {
		t.Fatal(err)
	}
	in := make([]byte, 768)
	for i := range in {
		in[i] = byte(i * 7)
	}
	var outs [][]byte
	for _, compile := range []bool{true, false} {
		cfg := cpuConfig(root)
		if !compile {
			cfg.Backend, cfg.Compile = &builtBackend{}, nil
		}
		w := startWorker(t, cfg)
		k := dial(t, w)
		k.send(&wire.LoadModel{RequestID: 1, ModelID: 1, Source: wire.SourcePath, Name: []byte("tiny"), Path: []byte("tiny.onnx")}, nil)
		k.mustRecv(wire.TypeModelInfo)
		if k.info.Status != wire.StatusOK {
			t.Fatalf("compile %v: %s", compile, &k.info)
		}
		if st := k.load(1, 0); st != wire.StatusOK {
			t.Fatal(st)
		}
		if r := k.infer(1, 0, 1, in); r.Status != wire.StatusOK {
			t.Fatalf("compile %v: %s", compile, r)
		}
		outs = append(outs, append([]byte(nil), k.out...))
	}
	if len(outs[0]) != 40 || string(outs[0]) != string(outs[1]) {
		t.Fatalf("outputs differ: %x vs %x", outs[0], outs[1])
	}
}
