package model

import (
	"strings"
	"testing"
)

func TestOptimizeSpecializeTiny(t *testing.T) {
	g, err := Parse("tiny", tinyCNN().bytes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	o, err := Optimize(g)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(o)
	s, err := Specialize(o, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(s)
	var ops []string
	for _, n := range s.Nodes {
		ops = append(ops, n.Op)
	}
	if got := strings.Join(ops, " "); got != "Conv MaxPool Reshape Gemm" {
		t.Fatalf("ops %q\n%v", got, s)
	}
}

func TestBuildTiny(t *testing.T) {
	g, err := Parse("tiny", tinyCNN().bytes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Build(g, []int{2, 1}, 4096)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Plans) != 2 || m.Plans[0].Batch != 1 || m.Plans[1].Batch != 2 {
		t.Fatalf("plans %v", m.Plans)
	}
	// Weights: the BN-folded conv weight and bias, fc_w, fc_b (3048 bytes) in one 4 KiB page.
	if len(m.Weights) != 4 || m.Layout.Pages != 1 || m.Layout.Bytes != 432+16+2560+40 {
		t.Fatalf("%d weights in %d pages: %v", len(m.Weights), m.Layout.Pages, m.WeightNames)
	}
	for _, p := range m.Plans {
		if err := p.Check(); err != nil {
			t.Fatal(err)
		}
		// Activations: conv out (b×4×8×8×4 B), pool out, reshape out; conv out and reshape out
		// are never live together, so the workspace is smaller than their sum.
		b := int64(p.Batch)
		if p.ActivationBytes != b*(1024+256+256) || p.WorkspaceBytes >= p.ActivationBytes {
			t.Fatalf("batch %d: workspace %d, activations %d", p.Batch, p.WorkspaceBytes, p.ActivationBytes)
		}
		for i, v := range p.Graph.Values {
			if pl := p.Place[i]; v.Const != nil && v.DType == Float32 && pl.Loc != InWeights || v.Name == "x" && pl.Loc != InInput || v.Name == "y" && pl.Loc != InOutput {
				t.Fatalf("value %q placed %+v", v.Name, pl)
			}
		}
	}
}

func TestSpecializeErrors(t *testing.T) {
	b := tinyCNN()
	b.m.Graph.Input[0] = valueInfo("x", Float32, 1, 3, 8, 8)
	g, err := Parse("fixed", b.bytes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Specialize(g, 4); err == nil || !strings.Contains(err.Error(), "fixed batch 1; re-export with a dynamic batch axis") {
		t.Errorf("fixed batch: %v", err)
	}
	b = tinyCNN()
	b.m.Graph.Initializer[6] = rawF32("fc_w", []int64{10, 63}, seq(630, 0.01))
	g, err = Parse("bad", b.bytes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Build(g, nil, 0)
	if err == nil || !strings.Contains(err.Error(), `model "bad": Gemm node "fc": A [1 64] and B [10 63]: inner dimensions 64 and 63 differ`) {
		t.Errorf("bad fc: %v", err)
	}
}

// fuseModel has every fusion pattern: Conv + per-channel Add + Clip(0, 6), MatMul + Add + Relu.
func fuseModel() *onnxBuilder {
	b := newONNX(13).input("x", -1, 2, 4, 4).output("y")
	b.init(rawF32("w", []int64{3, 2, 1, 1}, seq(6, 1)))
	b.init(rawF32("cb", []int64{1, 3, 1, 1}, []float32{1, 2, 3}))
	b.init(rawF32("lo", nil, []float32{0}))
	b.init(rawF32("hi", nil, []float32{6}))
	b.init(rawF32("mw", []int64{48, 5}, seq(240, 0.1)))
	b.init(rawF32("mb", []int64{5}, seq(5, 1)))
	b.node("Conv", "conv", []string{"x", "w"}, []string{"c"})
	b.node("Add", "bias", []string{"c", "cb"}, []string{"cbias"})
	b.node("Clip", "relu6", []string{"cbias", "lo", "hi"}, []string{"r"})
	b.node("Flatten", "flat", []string{"r"}, []string{"f"})
	b.node("MatMul", "mm", []string{"f", "mw"}, []string{"mm"})
	b.node("Add", "mmb", []string{"mm", "mb"}, []string{"lin"})
	b.node("Relu", "relu", []string{"lin"}, []string{"y"})
	return b
}

func TestFusions(t *testing.T) {
	g, err := Parse("fuse", fuseModel().bytes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	o, err := Optimize(g)
	if err != nil {
		t.Fatal(err)
	}
	want := `model fuse opset 13
input x:f32[-1 2 4 4]
r:f32[-1 3 4 4] = Conv {act_max=6 act_min=0 activation=Clip}(x:f32[-1 2 4 4], w=[-3 -2 -1 0 1 2], cb_c=[1 2 3])
f:f32[-1 48] = Flatten(r:f32[-1 3 4 4])
y:f32[-1 5] = Gemm {activation=Relu}(f:f32[-1 48], mw:f32[48 5], mb_c=[-3 -2 -1 0 1])
output y:f32[-1 5]
`
	if got := o.String(); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}
