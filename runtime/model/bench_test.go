package model

import (
	"testing"
)

// BenchmarkImportPlan measures Load + Build (optimize, specialize and plan batches 1-16, lay
// out weights) of zoo models; it reports the planned workspace against the sum of activations at
// batch 16.
func BenchmarkImportPlan(b *testing.B) {
	for _, name := range []string{"resnet50", "densenet121"} {
		b.Run(name, func(b *testing.B) {
			path := zooModel(b, name)
			b.ReportAllocs()
			var m *Model
			for b.Loop() {
				g, err := Load(path)
				if err != nil {
					b.Fatal(err)
				}
				if m, err = Build(g, nil, 0); err != nil {
					b.Fatal(err)
				}
			}
			p := m.Plans[len(m.Plans)-1]
			b.ReportMetric(float64(p.WorkspaceBytes)/(1<<20), "workspace-MiB@16")
			b.ReportMetric(float64(p.ActivationBytes)/(1<<20), "activations-MiB@16")
		})
		b.Run(name+"/build-only", func(b *testing.B) {
			g, err := Load(zooModel(b, name))
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := Build(g, nil, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
