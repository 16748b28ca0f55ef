package controller

import (
	"testing"

	"github.com/clockwork-go/clockwork/runtime/sim"
	"github.com/clockwork-go/clockwork/wire"
)

func TestSimProfile(t *testing.T) {
	p := sim.DefaultProfile()
	if len(p.Models) == 0 {
		t.Skip("the embedded profile has no models")
	}
	m := &p.Models[0]
	var batches []uint16
	for _, b := range m.BatchSizes() {
		batches = append(batches, uint16(b))
	}
	exec, load, ok := SimProfile(p)(m.ModelName, &wire.ModelDesc{Batches: batches})
	if !ok || len(exec) != len(batches) || load != m.LoadNs {
		t.Fatalf("profile of %s: ok %v, %d exec times for %d batches, load %d want %d", m.ModelName, ok, len(exec), len(batches), load, m.LoadNs)
	}
	if e, _ := m.Batch(int(batches[0])); exec[0] != max(e.P99Ns, e.P50Ns) {
		t.Fatalf("batch %d seed %d, profile p99 %d", batches[0], exec[0], e.P99Ns)
	}
	if _, _, ok := SimProfile(p)("no-such-model", &wire.ModelDesc{Batches: batches}); ok {
		t.Fatal("unknown model found")
	}
	if _, _, ok := SimProfile(p)(m.ModelName, &wire.ModelDesc{Batches: []uint16{1, 3}}); ok {
		t.Fatal("unprofiled batch size accepted")
	}
}
