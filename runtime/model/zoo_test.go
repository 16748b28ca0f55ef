package model

import (
	"path/filepath"
	"testing"

	"github.com/clockwork-go/clockwork/internal/zootest"
)

// zooModel is the ONNX file of a torchvision export (internal/zootest: MODEL_ZOO or a cached
// export with PyTorch).
func zooModel(tb testing.TB, name string) string {
	return filepath.Join(zootest.Dir(tb, name), "model.onnx")
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
