package alloc

import (
	"errors"
	"testing"
)

func TestArenaBasic(t *testing.T) {
	a, err := NewArena(ArenaConfig{Name: "io", Base: 1 << 20, Size: 4096, MaxBufs: 4})
	if err != nil {
		t.Fatal(err)
	}
	b1, err := a.Alloc(1000)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := a.Alloc(1000)
	if b2.Addr != b1.Addr+1024 {
		t.Fatalf("b2 at %#x, b1 at %#x", b2.Addr, b1.Addr)
	}
	if _, err := a.Alloc(3000); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("want ErrNoSpace, got %v", err)
	}
	if err := a.Free(b1); err != nil {
		t.Fatal(err)
	}
	if err := a.Free(b1); !errors.Is(err, ErrStale) {
		t.Fatalf("double free: %v", err)
	}
	b3, err := a.Alloc(1024)
	if err != nil || b3.Addr != b1.Addr {
		t.Fatalf("b3 %v %v, want the gap at %#x", b3, err, b1.Addr)
	}
	if err := a.Check(); err != nil {
		t.Fatal(err)
	}
}
