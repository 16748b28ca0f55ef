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
