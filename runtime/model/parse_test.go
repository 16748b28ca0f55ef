package model

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

func TestParseTiny(t *testing.T) {
	g, err := Parse("tiny", tinyCNN().bytes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if g.Opset != 13 || len(g.Inputs) != 1 || len(g.Outputs) != 1 {
		t.Fatalf("opset %d inputs %v outputs %v", g.Opset, g.Inputs, g.Outputs)
	}
	// Constant nodes become constants; the nodes are sorted so that the Constant "axes",
	// listed after its consumer in the file, does not break the order.
	if len(g.Nodes) != 10 {
		t.Fatalf("%d nodes, want 10:\n%v", len(g.Nodes), g)
	}
	in := g.Value(g.Inputs[0])
	if in.Name != "x" || in.DType != Float32 || len(in.Shape) != 4 || in.Shape[0] != -1 || in.Shape[1] != 3 {
		t.Fatalf("input %+v", in)
	}
	w := g.Value(g.Nodes[0].Inputs[1])
	if w.Const == nil || len(w.Const.F) != 108 || w.Const.F[1] != float32(0.1)*-2 {
		t.Fatalf("conv weight %+v", w.Const)
	}
	if err := g.Check(); err != nil {
		t.Fatal(err)
	}
	want := "f:?[?] = Reshape(p1:?[?], shp:?[?])"
	if s := g.String(); !strings.Contains(s, want) {
		t.Fatalf("String() lacks %q:\n%s", want, s)
	}
}

func TestParseExternalData(t *testing.T) {
	b := tinyCNN()
	w := b.external("w", "tiny.onnx.data", 0)
	fc := b.external("fc_w", "tiny.onnx.data", int64(len(w)))
	data := append(append([]byte{}, w...), fc...)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tiny.onnx"), b.bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tiny.onnx.data"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	g, err := Load(filepath.Join(dir, "tiny.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := Parse("tiny", tinyCNN().bytes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if g.Name != "tiny" || g.String() != ref.String() {
		t.Fatalf("external data graph differs:\n%v\nwant\n%v", g, ref)
	}
	for i, v := range g.Values {
		if c := ref.Values[i].Const; c != nil && (len(c.F) != len(v.Const.F) || len(c.F) > 0 && c.F[len(c.F)-1] != v.Const.F[len(c.F)-1]) {
			t.Fatalf("constant %q differs", v.Name)
		}
	}

	// Missing, truncated and escaping external data are errors that say so.
	for _, tc := range []struct {
		name string
		fs   fstest.MapFS
		want string
	}{
		{"missing", fstest.MapFS{}, `external data file "tiny.onnx.data" is missing`},
		{"truncated", fstest.MapFS{"tiny.onnx.data": {Data: data[:len(data)-1]}}, "truncated"},
	} {
		_, err := Parse("tiny", b.bytes(), tc.fs)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `model "tiny"`) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := Parse("tiny", b.bytes(), nil); err == nil || !strings.Contains(err.Error(), "no directory") {
		t.Errorf("no fs: err %v", err)
	}
	b.m.Graph.Initializer[0].ExternalData[0].Value = ptr("../etc/passwd")
	if _, err := Parse("tiny", b.bytes(), fstest.MapFS{}); err == nil || !strings.Contains(err.Error(), "relative path inside") {
		t.Errorf("escaping location: err %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		edit   func(b *onnxBuilder)
		want   string
		target error
	}{
		{"unsupported op", func(b *onnxBuilder) { b.m.Graph.Node[2].OpType = ptr("LSTM") }, `model "m": LSTM node "relu1": operator LSTM not supported`, ErrUnsupported},
		{"old opset", func(b *onnxBuilder) { b.m.OpsetImport[0].Version = ptr(int64(6)) }, "opset 6 outside the supported range", ErrUnsupported},
		{"new opset", func(b *onnxBuilder) { b.m.OpsetImport[0].Version = ptr(int64(99)) }, "opset 99", ErrUnsupported},
		{"no opset", func(b *onnxBuilder) { b.m.OpsetImport = nil }, "no default-domain opset", ErrInvalid},
		{"other domain", func(b *onnxBuilder) { b.m.Graph.Node[0].Domain = ptr("com.microsoft") }, `Conv node "conv1": operator domain "com.microsoft"`, ErrUnsupported},
		{"dangling input", func(b *onnxBuilder) { b.m.Graph.Node[2].Input[0] = "nope" }, `Relu node "relu1": input "nope"`, ErrInvalid},
		{"cycle", func(b *onnxBuilder) { b.m.Graph.Node[0].Input[0] = "r1" }, "cycle", ErrInvalid},
		{"twice", func(b *onnxBuilder) { b.m.Graph.Node[2].Output[0] = "c1" }, `"c1" is produced twice`, ErrInvalid},
		{"short raw", func(b *onnxBuilder) { b.m.Graph.Initializer[0].RawData = b.m.Graph.Initializer[0].RawData[:7] }, `tensor "w": 7 data bytes`, ErrInvalid},
		{"negative dim", func(b *onnxBuilder) { b.m.Graph.Initializer[1].Dims = []int64{-4} }, "negative dimension", ErrInvalid},
		{"huge dims", func(b *onnxBuilder) { b.m.Graph.Initializer[1].Dims = []int64{1 << 20, 1 << 20, 1 << 20} }, "over", ErrUnsupported},
		{"double", func(b *onnxBuilder) { b.m.Graph.Initializer[1].DataType = ptr(int32(Float64)) }, "element type f64 not supported", ErrUnsupported},
		{"no output", func(b *onnxBuilder) { b.m.Graph.Output[0].Name = ptr("zz") }, `output "zz" is never produced`, ErrInvalid},
	} {
		b := tinyCNN()
		tc.edit(b)
		_, err := Parse("m", b.bytes(), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, tc.target) {
			t.Errorf("%s: err %v, want %q (%v)", tc.name, err, tc.want, tc.target)
		}
	}
}

func TestParseCorrupt(t *testing.T) {
	data := tinyCNN().bytes()
	for _, n := range []int{0, 1, 2, 10, len(data) / 2, len(data) - 1} {
		if _, err := Parse("m", data[:n], nil); err == nil || !errors.Is(err, ErrInvalid) {
			t.Errorf("truncated to %d bytes: err %v", n, err)
		}
	}
	if _, err := Parse("m", []byte("not an onnx file at all"), nil); err == nil {
		t.Error("text parsed")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(tinyCNN().bytes())
	b := tinyCNN()
	b.external("w", "d", 0)
	f.Add(b.bytes())
	f.Add([]byte{})
	ext := fstest.MapFS{"d": {Data: make([]byte, 432)}}
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Parse("fuzz", data, ext)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error wraps neither ErrInvalid nor ErrUnsupported: %v", err)
			}
			return
		}
		if err := g.Check(); err != nil {
			t.Fatal(err)
		}
		_ = g.String()
		m, err := Build(g, []int{1, 3}, 4096)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("build error wraps neither ErrInvalid nor ErrUnsupported: %v", err)
			}
			return
		}
		for _, p := range m.Plans {
			if err := p.Check(); err != nil {
				t.Fatal(err)
			}
		}
	})
}
