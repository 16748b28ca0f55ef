package model

import (
	"errors"
	"github.com/clockwork-go/clockwork/runtime/model/onnxpb"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
)

// TestMutatedModels parses and builds randomly corrupted copies of the tiny model (bytes
// flipped, inserted, cut): each must either build into checked plans or fail with ErrInvalid
// or ErrUnsupported, never panic. The seed is printed and taken from TEST_SEED.
func TestMutatedModels(t *testing.T) {
	seed := uint64(rand.Int64())
	if s := os.Getenv("TEST_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("TEST_SEED=%d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	base := tinyCNN().bytes()
	built := 0
	for i := range 3000 {
		data := append([]byte{}, base...)
		for range 1 + r.IntN(4) {
			switch j := r.IntN(len(data)); r.IntN(3) {
			case 0:
				data[j] = byte(r.Uint32())
			case 1:
				data[j] ^= 1 << r.IntN(8)
			default:
				data = data[:j]
			}
			if len(data) == 0 {
				break
			}
		}
		g, err := Parse("mut", data, nil)
		if err == nil {
			var m *Model
			if m, err = Build(g, []int{1, 2}, 4096); err == nil {
				built++
				for _, p := range m.Plans {
					if err := p.Check(); err != nil {
						t.Fatalf("case %d: %v", i, err)
					}
				}
			}
		}
		if err != nil && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnsupported) {
			t.Fatalf("case %d: error wraps neither ErrInvalid nor ErrUnsupported: %v", i, err)
		}
	}
	t.Logf("%d of 3000 mutated models still built", built)
}

// TestMutatedFields edits the tiny model's structure instead of its bytes: attribute integers,
// tensor dimensions and int64 constants get small random values (negative, zero, too large),
// input names are swapped. Same contract as TestMutatedModels.
func TestMutatedFields(t *testing.T) {
	seed := uint64(rand.Int64())
	if s := os.Getenv("TEST_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("TEST_SEED=%d", seed)
	r := rand.New(rand.NewPCG(seed, 2))
	small := func() int64 { return int64(r.IntN(14)) - 3 }
	built := 0
	for i := range 2000 {
		b := tinyCNN()
		g := b.m.Graph
		for range 1 + r.IntN(3) {
			switch r.IntN(4) {
			case 0:
				n := g.Node[r.IntN(len(g.Node))]
				if len(n.Attribute) > 0 {
					a := n.Attribute[r.IntN(len(n.Attribute))]
					if len(a.Ints) > 0 {
						a.Ints[r.IntN(len(a.Ints))] = small()
					} else if a.I != nil {
						a.I = ptr(small())
					}
				}
			case 1:
				in := g.Initializer[r.IntN(len(g.Initializer))]
				if len(in.Dims) > 0 && in.RawData == nil {
					in.Dims[r.IntN(len(in.Dims))] = small()
				} else if len(in.Int64Data) > 0 {
					in.Int64Data[0] = small()
				}
			case 2:
				n := g.Node[r.IntN(len(g.Node))]
				m := g.Node[r.IntN(len(g.Node))]
				if len(n.Input) > 0 && len(m.Input) > 0 {
					n.Input[r.IntN(len(n.Input))] = m.Input[r.IntN(len(m.Input))]
				}
			default:
				dims := g.Input[0].Type.GetTensorType().Shape.Dim
				dims[1+r.IntN(3)].Value = &onnxpbDimValue{DimValue: small()}
			}
		}
		gr, err := Parse("mut", b.bytes(), nil)
		if err == nil {
			var m *Model
			if m, err = Build(gr, []int{1, 2}, 4096); err == nil {
				built++
				for _, p := range m.Plans {
					if err := p.Check(); err != nil {
						t.Fatalf("case %d: %v", i, err)
					}
				}
			}
		}
		if err != nil && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnsupported) {
			t.Fatalf("case %d: error wraps neither ErrInvalid nor ErrUnsupported: %v", i, err)
		}
	}
	t.Logf("%d of 2000 mutated models still built", built)
}

type onnxpbDimValue = onnxpb.TensorShapeProto_Dimension_DimValue
