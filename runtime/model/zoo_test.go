package model

import (
	"os"
	"path/filepath"
	"testing"
)

// zooDir is where `cw tools zoo` wrote models (MODEL_ZOO), skipped when unset.
func zooModel(tb testing.TB, name string) string {
	dir := os.Getenv("MODEL_ZOO")
	if dir == "" {
		tb.Skip("MODEL_ZOO not set; run `cw tools zoo -out DIR -models " + name + "` and set MODEL_ZOO=DIR")
	}
	p := filepath.Join(dir, name, "model.onnx")
	if _, err := os.Stat(p); err != nil {
		tb.Skipf("%s: %v", p, err)
	}
	return p
}

func TestZooBuild(t *testing.T) {
	for _, name := range []string{"squeezenet1_1", "resnet18", "resnet50", "densenet121", "mobilenet_v3_small", "googlenet"} {
		t.Run(name, func(t *testing.T) {
			g, err := Load(zooModel(t, name))
			if err != nil {
				t.Fatal(err)
			}
			m, err := Build(g, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range m.Plans {
				ops := map[string]int{}
				for _, n := range p.Graph.Nodes {
					ops[n.Op]++
				}
				t.Logf("batch %2d: %d nodes (from %d), workspace %d B, activations %d B (%.2fx), ops %v", p.Batch, len(p.Graph.Nodes), len(g.Nodes), p.WorkspaceBytes, p.ActivationBytes, float64(p.ActivationBytes)/float64(p.WorkspaceBytes), ops)
				if err := p.Check(); err != nil {
					t.Fatal(err)
				}
			}
			t.Logf("weights %d tensors, %d bytes in %d pages", len(m.Weights), m.Layout.Bytes, m.Layout.Pages)
		})
	}
}
