package sim

import "testing"

func TestH100Profile(t *testing.T) {
	p, err := H100Profile()
	if err != nil {
		t.Fatal(err)
	}
	m := p.Model("resnet50")
	if m == nil {
		t.Fatal("no resnet50 in the H100 profile")
	}
	b, ok := m.Batch(1)
	if !ok || b.P50Ns <= 0 || b.P9999Ns < b.P50Ns || m.LoadNs <= 0 || m.WeightsBytes <= 0 {
		t.Fatalf("resnet50: %+v batch 1 %+v", m, b)
	}
	if len(p.Models) < 20 {
		t.Errorf("%d models, want the zoo's 20+", len(p.Models))
	}
}
