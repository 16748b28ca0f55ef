package cuda

import (
	"slices"
	"testing"
)

func TestBcastStrides(t *testing.T) {
	for _, c := range []struct {
		x, y, want []int64
	}{
		{[]int64{2, 3, 4}, []int64{2, 3, 4}, []int64{12, 4, 1}},
		{[]int64{2, 3, 1, 1}, []int64{2, 3, 5, 5}, []int64{3, 1, 0, 0}},
		{[]int64{4}, []int64{2, 3, 4}, []int64{0, 0, 1}},
		{[]int64{1}, []int64{2, 3}, []int64{0, 0}},
		{[]int64{3, 1}, []int64{2, 3, 4}, []int64{0, 1, 0}},
		{[]int64{5}, []int64{2, 3, 4}, nil},
		{[]int64{2, 3, 4, 5}, []int64{3, 4, 5}, nil},
	} {
		if got := bcastStrides(c.x, c.y); !slices.Equal(got, c.want) {
			t.Errorf("bcastStrides(%v, %v) = %v, want %v", c.x, c.y, got, c.want)
		}
	}
	if got := contiguousStrides([]int64{2, 3, 4}); !slices.Equal(got, []int64{12, 4, 1}) {
		t.Errorf("contiguousStrides = %v", got)
	}
}

// The fake bases of the two captures decode back to (base, offset) as diff does.
func TestFakeBases(t *testing.T) {
	a, b := fakeBases(40, 0), fakeBases(40, relocShift)
	for k := range a {
		va := a[k] + 12345
		if b[k]-a[k] != relocShift {
			t.Fatalf("base %d: shift %#x", k, b[k]-a[k])
		}
		kk := (va - relocBase) / relocSlot
		if kk != uint64(k) || va-relocBase-kk*relocSlot != 12345 {
			t.Fatalf("base %d decodes to %d", k, kk)
		}
	}
	for _, algo := range []int32{4, 5, 7} {
		if !inexactAlgo(algo) {
			t.Errorf("algorithm %d allowed", algo)
		}
	}
	for _, algo := range []int32{0, 1, 2, 3, 6} {
		if inexactAlgo(algo) {
			t.Errorf("algorithm %d refused", algo)
		}
	}
}
