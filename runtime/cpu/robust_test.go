package cpu

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"strconv"
	"testing"
)

// Bad input never panics: random nodes (any op, random ranks, dims, dtypes, attributes and
// constant inputs) either fail to compile with an error or compile and run on tensors of the
// types they report. A panic fails the test with the seed and the case.

func testSeed(t testing.TB) uint64 {
	if s := os.Getenv("TEST_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("TEST_SEED=%q: %v", s, err)
		}
		return v
	}
	return rand.Uint64()
}

var fuzzDTypes = []DType{Float32, Float32, Float32, Int64, Int32, Uint8, Int8, Float64, Bool, Float16, String, 0}

func randShape(r *rand.Rand) []int {
	s := make([]int, r.IntN(6))
	for i := range s {
		s[i] = r.IntN(5)
		if r.IntN(8) > 0 {
			s[i]++
		}
	}
	return s
}

func randInts(r *rand.Rand) []int64 {
	v := make([]int64, r.IntN(7))
	for i := range v {
		v[i] = int64(r.IntN(9) - 3)
		if r.IntN(20) == 0 {
			v[i] = int64(r.Uint64())
		}
	}
	return v
}

func randAttrs(r *rand.Rand) map[string]Attr {
	a := map[string]Attr{}
	intNames := []string{"axis", "group", "transA", "transB", "keepdims", "ceil_mode", "count_include_pad", "storage_order", "to", "allowzero", "start", "end", "training_mode", "noop_with_empty_axes"}
	intsNames := []string{"axes", "perm", "pads", "strides", "dilations", "kernel_shape", "shape", "starts", "ends"}
	floatNames := []string{"alpha", "beta", "epsilon", "min", "max", "momentum", "value", "act_min", "act_max"}
	for range r.IntN(6) {
		switch r.IntN(4) {
		case 0:
			v := int64(r.IntN(9) - 3)
			if r.IntN(10) == 0 {
				v = int64(r.Uint64())
			}
			a[intNames[r.IntN(len(intNames))]] = Attr{Kind: AttrInt, Int: v}
		case 1:
			a[intsNames[r.IntN(len(intsNames))]] = Attr{Kind: AttrInts, Ints: randInts(r)}
		case 2:
			a[floatNames[r.IntN(len(floatNames))]] = Attr{Kind: AttrFloat, F: float32(r.NormFloat64())}
		case 3:
			s := []string{"SAME_UPPER", "SAME_LOWER", "VALID", "NOTSET", "reflect", "edge", "constant", "Relu", "Clip", "bogus"}[r.IntN(10)]
			name := []string{"auto_pad", "mode", ActAttr}[r.IntN(3)]
			a[name] = Attr{Kind: AttrString, S: s}
		}
	}
	if r.IntN(4) == 0 {
		a["value"] = Attr{Kind: AttrTensor, T: randTensor(r, fuzzDTypes[r.IntN(len(fuzzDTypes))], randShape(r))}
	}
	return a
}

func randTensor(r *rand.Rand, dt DType, shape []int) *Tensor {
	if dt.Size() == 0 {
		return &Tensor{Type: Type{DType: dt, Shape: shape}}
	}
	t := NewTensor(dt, shape...)
	for i := range t.Data {
		t.Data[i] = byte(r.IntN(256))
	}
	if dt == Int64 || dt == Int32 {
		v := make([]float64, t.Len())
		for i := range v {
			v[i] = float64(r.IntN(9) - 3)
		}
		t.setFloat64s(v)
	}
	if dt == Bool {
		for i := range t.Data {
			t.Data[i] &= 1
		}
	}
	return t
}

// tryNode compiles and runs one random node, returning a description and any panic.
func tryNode(r *rand.Rand, op string) (desc string, ran bool, panicked any, stack []byte) {
	n := &Node{Op: op, Name: "fuzz", Opset: []int{7, 11, 13, 13, 17, 18}[r.IntN(6)], Attrs: randAttrs(r)}
	nin := r.IntN(6)
	var tmpl []*Tensor
	if mk, ok := templates[op]; ok && r.IntN(4) > 0 {
		n, tmpl = mutate(r, mk)
		nin = len(tmpl)
	}
	types := make([]*Type, nin)
	consts := make([]*Tensor, nin)
	ins := make([]*Tensor, nin)
	first := randShape(r)
	for i := range types {
		if tmpl != nil {
			if t := tmpl[i]; t != nil {
				types[i], ins[i], consts[i] = &t.Type, t, t
			}
			continue
		}
		if r.IntN(8) == 0 {
			continue // missing optional input
		}
		shape := first
		if i > 0 || r.IntN(3) == 0 {
			shape = randShape(r)
		}
		dt := fuzzDTypes[r.IntN(len(fuzzDTypes))]
		if i > 0 && r.IntN(2) == 0 {
			dt = Int64
			shape = []int{r.IntN(5)}
		}
		t := randTensor(r, dt, shape)
		types[i], ins[i] = &t.Type, t
		if r.IntN(3) > 0 {
			consts[i] = t
		}
	}
	desc = fmt.Sprintf("%s opset %d attrs %+v inputs %v", op, n.Opset, n.Attrs, types)
	defer func() {
		if p := recover(); p != nil {
			panicked, stack = p, debug.Stack()
		}
	}()
	k, err := Compile(n, types, consts)
	if err != nil {
		return desc, false, nil, nil
	}
	outs := make([]*Tensor, len(k.Out))
	for i, o := range k.Out {
		if o.Len() > 1<<22 {
			return desc, false, nil, nil
		}
		outs[i] = NewTensor(o.DType, o.Shape...)
	}
	for i, in := range ins {
		if in != nil && in.DType.Size() == 0 {
			ins[i] = nil
			if types[i] != nil {
				return desc, false, nil, nil // a non-numeric input that compiled: nothing to run with
			}
		}
	}
	_ = k.Run(ins, outs)
	return desc, true, nil, nil
}

func TestRandomNodesNeverPanic(t *testing.T) {
	seed := testSeed(t)
	t.Logf("seed %d (set TEST_SEED to repeat)", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	ops := Ops()
	trials := 400
	if testing.Short() {
		trials = 50
	}
	ranOps := 0
	for _, op := range ops {
		ran := 0
		for range trials {
			desc, ok, p, stack := tryNode(r, op)
			if p != nil {
				t.Fatalf("seed %d: panic %v on %s\n%s", seed, p, desc, stack)
			}
			if ok {
				ran++
			}
		}
		t.Logf("%-20s compiled and ran %d of %d", op, ran, trials)
		if ran > 0 {
			ranOps++
		}
	}
	// the generator must reach the kernels, not only the checks, for most ops
	if ranOps < len(ops)*2/3 {
		t.Errorf("only %d of %d ops ever compiled on random input", ranOps, len(ops))
	}
}

func FuzzCompile(f *testing.F) {
	for i := range uint64(16) {
		f.Add(i, uint8(i))
	}
	ops := Ops()
	f.Fuzz(func(t *testing.T, seed uint64, op uint8) {
		r := rand.New(rand.NewPCG(seed, uint64(op)))
		if desc, _, p, stack := tryNode(r, ops[int(op)%len(ops)]); p != nil {
			t.Fatalf("panic %v on %s\n%s", p, desc, stack)
		}
	})
}

func f32(shape ...int) *Tensor { return NewTensor(Float32, shape...) }

func i64(v ...int64) *Tensor {
	t := NewTensor(Int64, len(v))
	copy(t.I64(), v)
	return t
}

func ints(v ...int64) Attr { return Attr{Kind: AttrInts, Ints: v} }
func intA(v int64) Attr    { return Attr{Kind: AttrInt, Int: v} }

// templates are valid nodes of the ops whose inputs must agree in structure; mutate perturbs
// one to a few of their dims, attributes and inputs, so the random test reaches the kernels and
// the edges of the checks.
var templates map[string]func() (*Node, []*Tensor)

func init() {
	templates = map[string]func() (*Node, []*Tensor){
		"Conv": func() (*Node, []*Tensor) {
			return &Node{Op: "Conv", Opset: 13, Attrs: map[string]Attr{"pads": ints(1, 1, 1, 1), "strides": ints(2, 1), "group": intA(2), "dilations": ints(1, 2)}},
				[]*Tensor{f32(1, 4, 7, 6), f32(6, 2, 3, 3), f32(6)}
		},
		"MaxPool": func() (*Node, []*Tensor) {
			return &Node{Op: "MaxPool", Opset: 13, Attrs: map[string]Attr{"kernel_shape": ints(3, 3), "pads": ints(1, 1, 1, 1), "strides": ints(2, 2), "ceil_mode": intA(1)}},
				[]*Tensor{f32(2, 3, 7, 7)}
		},
		"AveragePool": func() (*Node, []*Tensor) {
			return &Node{Op: "AveragePool", Opset: 13, Attrs: map[string]Attr{"kernel_shape": ints(3, 2), "pads": ints(1, 0, 1, 0), "strides": ints(2, 2), "count_include_pad": intA(1)}},
				[]*Tensor{f32(2, 3, 7, 7)}
		},
		"BatchNormalization": func() (*Node, []*Tensor) {
			return &Node{Op: "BatchNormalization", Opset: 15, Attrs: map[string]Attr{}}, []*Tensor{f32(2, 3, 4, 4), f32(3), f32(3), f32(3), f32(3)}
		},
		"Gemm": func() (*Node, []*Tensor) {
			return &Node{Op: "Gemm", Opset: 13, Attrs: map[string]Attr{"transB": intA(1)}}, []*Tensor{f32(2, 5), f32(4, 5), f32(4)}
		},
		"MatMul": func() (*Node, []*Tensor) {
			return &Node{Op: "MatMul", Opset: 13, Attrs: map[string]Attr{}}, []*Tensor{f32(2, 3, 4), f32(4, 5)}
		},
		"LayerNormalization": func() (*Node, []*Tensor) {
			return &Node{Op: "LayerNormalization", Opset: 17, Attrs: map[string]Attr{"axis": intA(-1)}}, []*Tensor{f32(2, 3, 4), f32(4), f32(4)}
		},
		"Reshape": func() (*Node, []*Tensor) {
			return &Node{Op: "Reshape", Opset: 14, Attrs: map[string]Attr{}}, []*Tensor{f32(2, 3, 4), i64(0, -1, 2)}
		},
		"Pad": func() (*Node, []*Tensor) {
			return &Node{Op: "Pad", Opset: 13, Attrs: map[string]Attr{"mode": {Kind: AttrString, S: "reflect"}}}, []*Tensor{f32(2, 3, 4), i64(0, 1, 2, 0, -1, 1)}
		},
		"Slice": func() (*Node, []*Tensor) {
			return &Node{Op: "Slice", Opset: 13, Attrs: map[string]Attr{}}, []*Tensor{f32(4, 5, 6), i64(1, -1), i64(3, -6), i64(0, 2), i64(1, -2)}
		},
		"Gather": func() (*Node, []*Tensor) {
			return &Node{Op: "Gather", Opset: 13, Attrs: map[string]Attr{"axis": intA(1)}}, []*Tensor{f32(2, 3, 4), i64(2, -1, 0)}
		},
		"Concat": func() (*Node, []*Tensor) {
			return &Node{Op: "Concat", Opset: 13, Attrs: map[string]Attr{"axis": intA(1)}}, []*Tensor{f32(2, 3, 4), f32(2, 1, 4), f32(2, 2, 4)}
		},
		"Add": func() (*Node, []*Tensor) {
			return &Node{Op: "Add", Opset: 13, Attrs: map[string]Attr{}}, []*Tensor{f32(2, 3, 4), f32(3, 1)}
		},
		"Unsqueeze": func() (*Node, []*Tensor) {
			return &Node{Op: "Unsqueeze", Opset: 13, Attrs: map[string]Attr{}}, []*Tensor{f32(2, 3), i64(0, -1)}
		},
		"Expand": func() (*Node, []*Tensor) {
			return &Node{Op: "Expand", Opset: 13, Attrs: map[string]Attr{}}, []*Tensor{f32(3, 1), i64(2, 1, 4)}
		},
		"Where": func() (*Node, []*Tensor) {
			return &Node{Op: "Where", Opset: 16, Attrs: map[string]Attr{}}, []*Tensor{NewTensor(Bool, 2, 1, 4), f32(3, 1), f32(1, 3, 4)}
		},
		"ConstantOfShape": func() (*Node, []*Tensor) {
			return &Node{Op: "ConstantOfShape", Opset: 13, Attrs: map[string]Attr{}}, []*Tensor{i64(2, 3)}
		},
	}
}

func mutate(r *rand.Rand, mk func() (*Node, []*Tensor)) (*Node, []*Tensor) {
	n, ins := mk()
	n.Name = "fuzz"
	for range r.IntN(4) {
		switch r.IntN(5) {
		case 0: // change a dim
			t := ins[r.IntN(len(ins))]
			if t != nil && len(t.Shape) > 0 {
				shape := append([]int{}, t.Shape...)
				shape[r.IntN(len(shape))] = r.IntN(9)
				*t = *NewTensor(t.DType, shape...)
			}
		case 1: // change an int attribute or one element of an ints attribute
			for k, a := range n.Attrs {
				switch a.Kind {
				case AttrInt:
					a.Int += int64(r.IntN(7) - 3)
				case AttrInts:
					a.Ints = append([]int64{}, a.Ints...)
					if len(a.Ints) > 0 && r.IntN(4) > 0 {
						a.Ints[r.IntN(len(a.Ints))] += int64(r.IntN(7) - 3)
					} else {
						a.Ints = a.Ints[:r.IntN(len(a.Ints)+1)]
					}
				}
				n.Attrs[k] = a
				break
			}
		case 2: // change an integer input's values
			for _, t := range ins {
				if t != nil && t.DType == Int64 && t.Len() > 0 {
					t.I64()[r.IntN(t.Len())] = int64(r.IntN(13) - 6)
					break
				}
			}
		case 3: // drop or add an input
			if r.IntN(2) == 0 && len(ins) > 0 {
				ins[r.IntN(len(ins))] = nil
			} else {
				ins = append(ins, f32(randShape(r)...))
			}
		case 4: // drop an attribute or change the rank of an input
			for k := range n.Attrs {
				delete(n.Attrs, k)
				break
			}
			if t := ins[0]; t != nil && r.IntN(2) == 0 {
				*t = *NewTensor(t.DType, append(append([]int{}, t.Shape...), 1+r.IntN(2))...)
			}
		}
	}
	return n, ins
}

func TestHugeOutputsRejected(t *testing.T) {
	x := f32(2, 2)
	n := &Node{Op: "Pad", Name: "huge", Opset: 13, Attrs: map[string]Attr{}}
	pads := i64(1<<30, 1<<30, 1<<30, 1<<30)
	if _, err := Compile(n, []*Type{&x.Type, &pads.Type}, []*Tensor{x, pads}); err == nil {
		t.Fatal("Pad to [2^31, 2^31] compiled")
	}
	if !sizeOK([]int{1 << 20, 1 << 18}, 4) || sizeOK([]int{1 << 20, 1 << 19}, 4) || sizeOK([]int{1 << 30, 1 << 30, 1 << 30}, 4) || sizeOK([]int{-1}, 4) {
		t.Fatal("sizeOK bounds wrong")
	}
}
