package cpu

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/clockwork-go/clockwork/runtime/device"
)

func openOne(t *testing.T, size int64) *Device {
	t.Helper()
	devs, err := (&Backend{}).Open(size)
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 1 {
		t.Fatalf("Open returned %d devices", len(devs))
	}
	t.Cleanup(func() { devs[0].Close() })
	return devs[0].(*Device)
}

func TestOpenCopies(t *testing.T) {
	d := openOne(t, 1<<20)
	info := d.Info()
	if info.Backend != "cpu" || info.Base != RegionBase || info.Size != 1<<20 || info.MemBytes != 1<<20 {
		t.Fatalf("Info = %+v", info)
	}
	src := []byte("clockwork")
	dst := make([]byte, len(src))
	for _, p := range []device.Ptr{info.Base, info.Base + device.Ptr(info.Size) - device.Ptr(len(src))} {
		if _, err := d.CopyIn(device.LaneInput, p, src); err != nil {
			t.Fatal(err)
		}
		if _, err := d.CopyOut(device.LaneOutput, dst, p); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(src, dst) {
			t.Fatalf("round trip at %#x: %q", p, dst)
		}
	}
	for _, p := range []device.Ptr{0, info.Base - 1, info.Base + device.Ptr(info.Size) - 3, ^device.Ptr(0) - 2} {
		if _, err := d.CopyIn(device.LaneInput, p, src); err == nil || !strings.Contains(err.Error(), "outside region") {
			t.Errorf("CopyIn at %#x: err %v, want outside region", p, err)
		}
		if _, err := d.CopyOut(device.LaneOutput, dst, p); err == nil {
			t.Errorf("CopyOut at %#x: no error", p)
		}
	}
	if _, err := d.CopyIn(device.NumLanes, info.Base, src); err == nil {
		t.Error("CopyIn accepted a bad lane")
	}
	allocs := testing.AllocsPerRun(100, func() {
		d.CopyIn(device.LaneInput, info.Base, src)
		d.CopyOut(device.LaneOutput, dst, info.Base)
	})
	if allocs != 0 {
		t.Errorf("CopyIn+CopyOut allocate %v times per call", allocs)
	}
	if _, err := (&Backend{}).Open(-1); err == nil {
		t.Error("Open(-1) succeeded")
	}
	if _, err := (&Backend{Config: Config{Devices: 1000}}).Open(0); err == nil {
		t.Error("Open with 1000 devices succeeded")
	}
}

// tinyModel is conv(3x3, relu fused) → global average pool → flatten → gemm, on [b, 2, 5, 5].
func tinyModel(r *rand.Rand) *onnxModel {
	w, b := f32(4, 2, 3, 3), f32(4)
	fw, fb := f32(3, 4), f32(3)
	for _, t := range []*Tensor{w, b, fw, fb} {
		for i := range t.F32() {
			t.F32()[i] = float32(r.NormFloat64())
		}
	}
	node := func(op string, attrs map[string]Attr, in, out []string) onnxNode {
		return onnxNode{Node: Node{Op: op, Name: op, Opset: 13, Attrs: attrs}, inputs: in, outputs: out}
	}
	return &onnxModel{
		opset: 13,
		inits: map[string]*Tensor{"w": w, "b": b, "fw": fw, "fb": fb, "shape": i64(0, -1)},
		nodes: []onnxNode{
			node("Conv", map[string]Attr{"pads": ints(1, 1, 1, 1), ActAttr: {Kind: AttrString, S: "Relu"}}, []string{"x", "w", "b"}, []string{"c"}),
			node("GlobalAveragePool", nil, []string{"c"}, []string{"p"}),
			node("Reshape", nil, []string{"p", "shape"}, []string{"f"}),
			node("Gemm", map[string]Attr{"transB": intA(1)}, []string{"f", "fw", "fb"}, []string{"y"}),
		},
		inputs:  []onnxValue{{name: "x", isTensor: true, elemType: Float32}},
		outputs: []onnxValue{{name: "y", isTensor: true, elemType: Float32}},
	}
}

func tinyShape(b int) []int { return []int{b, 2, 5, 5} }

// interpret runs m on x node by node (the operator suite's path), for comparison.
func interpret(t *testing.T, m *onnxModel, x *Tensor) *Tensor {
	vals := map[string]*Tensor{"x": x}
	for k, v := range m.inits {
		vals[k] = v
	}
	if st, detail := runGraph(m, vals); st != "pass" {
		t.Fatalf("%s: %s", st, detail)
	}
	return vals[m.outputs[0].name]
}

func TestBackendRunsTinyGraph(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	m := tinyModel(r)
	g, pages, err := planONNX(m, []int{1, 2, 4}, 1024, tinyShape)
	if err != nil {
		t.Fatal(err)
	}
	d := openOne(t, 1<<20)
	prog, err := d.Prepare(g, []int{4, 1, 2})
	if err != nil {
		t.Fatal(err)
	}
	if got := prog.Batches(); !slices.Equal(got, []int{1, 2, 4}) {
		t.Fatalf("Batches = %v", got)
	}
	base := d.Info().Base
	for _, batch := range []int{1, 2, 4} {
		x := f32(tinyShape(batch)...)
		for i := range x.F32() {
			x.F32()[i] = float32(r.NormFloat64())
		}
		want := interpret(t, m, x)
		// two layouts of the pages in the region must give identical bytes
		var outs [][]byte
		for layout := range 2 {
			addrs := make([]device.Ptr, len(pages))
			for i := range pages {
				slot := i
				if layout == 1 {
					slot = len(pages) - 1 - i + 3
				}
				addrs[i] = base + device.Ptr(slot)*device.Ptr(g.PageBytes)
				if _, err := d.CopyIn(device.LaneWeights, addrs[i], pages[i]); err != nil {
					t.Fatal(err)
				}
			}
			in := base + 64<<10
			out, ws := in+device.Ptr(prog.InputBytes(batch)+7)&^7, base+128<<10
			if _, err := d.CopyIn(device.LaneInput, in, x.Data); err != nil {
				t.Fatal(err)
			}
			span, err := prog.Run(batch, addrs, in, out, ws)
			if err != nil {
				t.Fatal(err)
			}
			if span.EndNs < span.StartNs {
				t.Errorf("span %+v ends before it starts", span)
			}
			y := make([]byte, prog.OutputBytes(batch))
			if _, err := d.CopyOut(device.LaneOutput, y, out); err != nil {
				t.Fatal(err)
			}
			outs = append(outs, y)
		}
		if batch == 4 {
			addrs := make([]device.Ptr, len(pages))
			for i := range pages {
				addrs[i] = base + device.Ptr(i)*device.Ptr(g.PageBytes)
			}
			in := base + 64<<10
			out, ws := in+device.Ptr(prog.InputBytes(batch)+7)&^7, base+128<<10
			for range 10 {
				prog.Run(batch, addrs, in, out, ws)
			}
			if a := testing.AllocsPerRun(20, func() { prog.Run(batch, addrs, in, out, ws) }); a != 0 {
				t.Errorf("Run allocates %v times per call", a)
			}
		}
		if !bytes.Equal(outs[0], outs[1]) {
			t.Errorf("batch %d: output depends on where the pages are", batch)
		}
		if !bytes.Equal(outs[0], want.Data) {
			t.Errorf("batch %d: backend output %v, interpreter %v", batch, view[float32](outs[0]), want.F32())
		}
	}
	// Run's argument checks
	addrs := []device.Ptr{base}
	for _, tc := range []struct {
		name        string
		batch       int
		pages       []device.Ptr
		in, out, ws device.Ptr
		wantErr     string
	}{
		{"batch not prepared", 3, addrs, base, base, base, "not prepared"},
		{"too few pages", 1, nil, base, base, base, "weight pages given"},
		{"page outside", 1, []device.Ptr{base + 1<<20 - 8}, base, base, base, "weight page 0"},
		{"page misaligned", 1, []device.Ptr{base + 4}, base, base, base, "not 8-byte aligned"},
		{"workspace outside", 1, addrs, base, base, base + 1<<20, "workspace"},
		{"input below region", 1, addrs, 8, base, base, "input"},
		{"output misaligned", 1, addrs, base, base + 2, base, "aligned"},
	} {
		if _, err := prog.Run(tc.batch, tc.pages, tc.in, tc.out, tc.ws); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.wantErr)
		}
	}
	if err := prog.Close(); err != nil {
		t.Fatal(err)
	}
}

type otherModel struct{}

func (otherModel) Name() string { return "other" }

func TestPrepareRejectsBadPlans(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	d := openOne(t, 1<<20)
	for _, tc := range []struct {
		name    string
		edit    func(g *Graph)
		batches []int
		wantErr string
	}{
		{"ok", func(g *Graph) {}, []int{1}, ""},
		{"no plan for batch", func(g *Graph) {}, []int{8}, "no plan"},
		{"no batches", func(g *Graph) {}, nil, "no batch sizes"},
		{"repeated batch", func(g *Graph) {}, []int{1, 1}, "repeated"},
		{"misaligned", func(g *Graph) { g.Plans[0].Values[g.Plans[0].Steps[0].Out[0]].Offset = 4 }, []int{1}, "multiple of 8"},
		{"outside workspace", func(g *Graph) { g.Plans[0].WorkspaceBytes = 8 }, []int{1}, "outside workspace"},
		{"page out of range", func(g *Graph) { g.Plans[0].Values[0].Page = 5 }, []int{1}, "outside 1 pages"},
		{"conv in place", func(g *Graph) {
			p := g.Plans[0]
			c := p.Steps[0].Out[0]
			p.Steps[1].Out[0] = c // pool writes over its own input
		}, []int{1}, "overlaps input"},
		{"read before write", func(g *Graph) { g.Plans[0].Steps = g.Plans[0].Steps[1:] }, []int{1}, "before any step writes it"},
		{"wrong output type", func(g *Graph) {
			p := g.Plans[0]
			p.Values[p.Output].Type.Shape = []int{1, 4}
		}, []int{1}, "plan says"},
		{"unsupported op", func(g *Graph) { g.Plans[0].Steps[1].Node.Op = "LSTM" }, []int{1}, "not supported"},
		{"writes a weight", func(g *Graph) { g.Plans[0].Steps[0].Out[0] = 0 }, []int{1}, "read-only"},
		{"value id out of range", func(g *Graph) { g.Plans[0].Steps[0].In[0] = 999 }, []int{1}, "out of range"},
		{"string value", func(g *Graph) { g.Plans[0].Values[0].Type.DType = String }, []int{1}, "not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, _, err := planONNX(tinyModel(r), []int{1}, 1024, tinyShape)
			if err != nil {
				t.Fatal(err)
			}
			tc.edit(g)
			_, err = d.Prepare(g, tc.batches)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatal(err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("err %v, want %q", err, tc.wantErr)
			}
		})
	}
	if _, err := d.Prepare(otherModel{}, []int{1}); err == nil || !strings.Contains(err.Error(), "*cpu.Graph") {
		t.Errorf("Prepare(other type): %v", err)
	}
	d.Close()
	if _, err := d.Prepare(&Graph{}, []int{1}); !errors.Is(err, errClosed) {
		t.Errorf("Prepare after Close: %v", err)
	}
	if _, err := d.CopyIn(device.LaneInput, RegionBase, []byte{1}); !errors.Is(err, errClosed) {
		t.Errorf("CopyIn after Close: %v", err)
	}
}

// TestWeightRuns: a tensor larger than a page lives in a run of pages that must be contiguous.
func TestWeightRuns(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	m := tinyModel(r)
	g, pages, err := planONNX(m, []int{1}, 64, tinyShape) // the conv weight (288 bytes) needs a run
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Runs) == 0 {
		t.Fatal("no run planned")
	}
	d := openOne(t, 1<<20)
	prog, err := d.Prepare(g, []int{1})
	if err != nil {
		t.Fatal(err)
	}
	x := f32(tinyShape(1)...)
	for i := range x.F32() {
		x.F32()[i] = float32(r.NormFloat64())
	}
	want := interpret(t, m, x)
	base := d.Info().Base
	in, out, ws := base+64<<10, base+96<<10, base+128<<10
	d.CopyIn(device.LaneInput, in, x.Data)
	run := func(addrs []device.Ptr) error {
		for i := range pages {
			d.CopyIn(device.LaneWeights, addrs[i], pages[i])
		}
		_, err := prog.Run(1, addrs, in, out, ws)
		return err
	}
	contiguous := make([]device.Ptr, len(pages))
	for i := range pages {
		contiguous[i] = base + device.Ptr(i)*64
	}
	if err := run(contiguous); err != nil {
		t.Fatal(err)
	}
	y := make([]byte, prog.OutputBytes(1))
	d.CopyOut(device.LaneOutput, y, out)
	if !bytes.Equal(y, want.Data) {
		t.Errorf("output %v, want %v", view[float32](y), want.F32())
	}
	scattered := slices.Clone(contiguous)
	run0 := g.Runs[0]
	scattered[run0.First+1] += 32 << 10 // break the run
	if err := run(scattered); err == nil || !strings.Contains(err.Error(), "contiguous") {
		t.Errorf("Run with a broken run: %v", err)
	}
	g.Runs = nil // the big weight no longer fits its page
	if _, err := d.Prepare(g, []int{1}); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Errorf("Prepare without runs: %v", err)
	}
}
