package pinned

import (
	"testing"
)

func TestAllocFree(t *testing.T) {
	p := NewPool(Config{})
	b, err := p.Alloc(10000, Weights)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Bytes()) != 10000 {
		t.Fatalf("len %d", len(b.Bytes()))
	}
	b.Bytes()[9999] = 1
	if s := p.Stats(); s.Bytes[Weights] != 12288 || s.Buffers[Weights] != 1 {
		t.Fatalf("stats %+v", s)
	}
	if err := b.Free(); err != nil {
		t.Fatal(err)
	}
	if err := b.Free(); err == nil {
		t.Fatal("double free succeeded")
	}
	if s := p.Stats(); s.Total() != 0 {
		t.Fatalf("stats after free %+v", s)
	}
}
