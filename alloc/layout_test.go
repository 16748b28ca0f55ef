package alloc

import (
	"errors"
	"testing"
)

func TestLayoutSmall(t *testing.T) {
	ts := []Tensor{{Name: "a", Bytes: 3000}, {Name: "b", Bytes: 1000}, {Name: "c", Bytes: 2000}, {Name: "big", Bytes: 9000}}
	l, err := NewLayout(4096, ts)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Check(ts); err != nil {
		t.Fatal(err)
	}
	// big takes pages 0-2 (808 bytes used on page 2), a fills page 3 ... lower bound is 4 pages.
	if l.Pages != 4 || len(l.Runs) != 1 || l.Runs[0] != (Run{First: 0, Pages: 3}) {
		t.Fatalf("layout %+v", l)
	}
	if _, err := NewLayout(4096, []Tensor{{Bytes: 0}}); !errors.Is(err, ErrConfig) {
		t.Fatalf("zero-size tensor: %v", err)
	}
	if _, err := NewLayout(4096, []Tensor{{Bytes: 10, Align: 3}}); !errors.Is(err, ErrConfig) {
		t.Fatalf("bad alignment: %v", err)
	}
}
