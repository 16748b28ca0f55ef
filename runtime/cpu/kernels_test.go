package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
)

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// closeTo reports the first index where got and want differ by more than tol·(1+|want|).
func closeTo(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: len %d, want %d", what, len(got), len(want))
	}
	for i := range got {
		g, w := float64(got[i]), float64(want[i])
		if math.IsNaN(g) != math.IsNaN(w) || math.Abs(g-w) > tol*(1+math.Abs(w)) {
			t.Fatalf("%s: [%d] = %g, want %g", what, i, g, w)
		}
	}
}

func TestConvMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	three := func(a, b, c int) [3]int { return [3]int{a, b, c} }
	cases := []struct {
		name string
		p    ConvParams
	}{
		{"plain3x3", ConvParams{N: 2, C: 3, M: 4, Group: 1, In: three(1, 7, 6), Kernel: three(1, 3, 3), Stride: three(1, 1, 1), Dilation: three(1, 1, 1)}},
		{"padded", ConvParams{N: 1, C: 2, M: 3, Group: 1, In: three(1, 5, 5), Kernel: three(1, 3, 3), Stride: three(1, 1, 1), Dilation: three(1, 1, 1), PadBegin: three(0, 1, 1)}},
		{"strided", ConvParams{N: 1, C: 3, M: 2, Group: 1, In: three(1, 9, 8), Kernel: three(1, 3, 3), Stride: three(1, 2, 3), Dilation: three(1, 1, 1), PadBegin: three(0, 1, 2)}},
		{"dilated", ConvParams{N: 1, C: 2, M: 2, Group: 1, In: three(1, 9, 9), Kernel: three(1, 3, 3), Stride: three(1, 1, 1), Dilation: three(1, 2, 3), PadBegin: three(0, 2, 1)}},
		{"grouped", ConvParams{N: 2, C: 4, M: 6, Group: 2, In: three(1, 6, 6), Kernel: three(1, 3, 3), Stride: three(1, 1, 1), Dilation: three(1, 1, 1), PadBegin: three(0, 1, 1)}},
		{"depthwise", ConvParams{N: 1, C: 5, M: 5, Group: 5, In: three(1, 8, 7), Kernel: three(1, 5, 5), Stride: three(1, 2, 2), Dilation: three(1, 1, 1), PadBegin: three(0, 2, 2)}},
		{"1x1", ConvParams{N: 3, C: 8, M: 4, Group: 1, In: three(1, 4, 4), Kernel: three(1, 1, 1), Stride: three(1, 1, 1), Dilation: three(1, 1, 1)}},
		{"1d", ConvParams{N: 1, C: 2, M: 3, Group: 1, In: three(1, 1, 11), Kernel: three(1, 1, 4), Stride: three(1, 1, 2), Dilation: three(1, 1, 1), PadBegin: three(0, 0, 1)}},
		{"3d", ConvParams{N: 1, C: 2, M: 2, Group: 1, In: three(4, 5, 5), Kernel: three(2, 3, 3), Stride: three(1, 2, 1), Dilation: three(1, 1, 1), PadBegin: three(1, 1, 1)}},
		{"kernel>input", ConvParams{N: 1, C: 1, M: 1, Group: 1, In: three(1, 2, 2), Kernel: three(1, 3, 3), Stride: three(1, 1, 1), Dilation: three(1, 1, 1), PadBegin: three(0, 1, 1)}},
		{"relu", ConvParams{N: 1, C: 3, M: 4, Group: 1, In: three(1, 5, 5), Kernel: three(1, 3, 3), Stride: three(1, 1, 1), Dilation: three(1, 1, 1), Act: Act{Kind: ActRelu}}},
		{"clip", ConvParams{N: 1, C: 3, M: 4, Group: 1, In: three(1, 5, 5), Kernel: three(1, 3, 3), Stride: three(1, 1, 1), Dilation: three(1, 1, 1), Act: Act{Kind: ActClip, Min: 0, Max: 0.5}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.p
			for i := range 3 {
				// output size for symmetric padding
				span := (p.Kernel[i]-1)*p.Dilation[i] + 1
				p.Out[i] = (p.In[i]+2*p.PadBegin[i]-span)/p.Stride[i] + 1
			}
			if err := p.Validate(); err != nil {
				t.Fatal(err)
			}
			x, w, b := randSlice(r, p.XLen()), randSlice(r, p.WLen()), randSlice(r, p.M)
			got, want := make([]float32, p.YLen()), make([]float32, p.YLen())
			conv(&p, x, w, b, got)
			convRef(&p, x, w, b, want)
			closeTo(t, "conv", got, want, 1e-6)
		})
	}
}

func TestConvValidateRejects(t *testing.T) {
	bad := []ConvParams{
		{N: 1, C: 3, M: 4, Group: 2, In: [3]int{1, 1, 1}, Kernel: [3]int{1, 1, 1}, Out: [3]int{1, 1, 1}, Stride: [3]int{1, 1, 1}, Dilation: [3]int{1, 1, 1}},
		{N: 1, C: 2, M: 2, Group: 1, In: [3]int{1, 1, 1}, Kernel: [3]int{1, 1, 1}, Out: [3]int{1, 1, 1}, Stride: [3]int{0, 1, 1}, Dilation: [3]int{1, 1, 1}},
	}
	for i, p := range bad {
		if err := p.Validate(); err == nil {
			t.Errorf("case %d: Validate accepted %+v", i, p)
		}
	}
}

func TestGemmMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		M, N, K     int
		ta, tb      bool
		alpha, beta float32
		cShape      string // none, scalar, row, col, full
	}{
		{3, 4, 5, false, false, 1, 1, "none"},
		{3, 4, 5, true, false, 0.5, 2, "full"},
		{3, 4, 5, false, true, 1, 1, "row"},
		{7, 2, 9, true, true, 1, 0.25, "col"},
		{1, 1000, 512, false, true, 1, 1, "row"},
		{2, 3, 1, false, false, 1, 1, "scalar"},
	} {
		t.Run(fmt.Sprintf("%dx%dx%d_%v%v_%s", tc.M, tc.N, tc.K, tc.ta, tc.tb, tc.cShape), func(t *testing.T) {
			a, b := randSlice(r, tc.M*tc.K), randSlice(r, tc.K*tc.N)
			p := GemmParams{M: tc.M, N: tc.N, K: tc.K, TransA: tc.ta, TransB: tc.tb, Alpha: tc.alpha, Beta: tc.beta}
			var c []float32
			switch tc.cShape {
			case "scalar":
				c = randSlice(r, 1)
			case "row":
				c, p.CStrideN = randSlice(r, tc.N), 1
			case "col":
				c, p.CStrideM = randSlice(r, tc.M), 1
			case "full":
				c, p.CStrideM, p.CStrideN = randSlice(r, tc.M*tc.N), tc.N, 1
			}
			got := make([]float32, tc.M*tc.N)
			gemm(&p, a, b, c, got)
			want := make([]float32, tc.M*tc.N)
			for i := 0; i < tc.M; i++ {
				for j := 0; j < tc.N; j++ {
					s := 0.0
					for k := 0; k < tc.K; k++ {
						av := a[i*tc.K+k]
						if tc.ta {
							av = a[k*tc.M+i]
						}
						bv := b[k*tc.N+j]
						if tc.tb {
							bv = b[j*tc.K+k]
						}
						s += float64(av) * float64(bv)
					}
					s *= float64(tc.alpha)
					if c != nil {
						s += float64(tc.beta) * float64(c[i*p.CStrideM+j*p.CStrideN])
					}
					want[i*tc.N+j] = float32(s)
				}
			}
			closeTo(t, "gemm", got, want, 1e-6)
		})
	}
}

func TestMatMulBatched(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	// [2,1,3,4] x [3,4,5] → [2,3,3,5]
	aShape, bShape := []int{2, 1, 3, 4}, []int{3, 4, 5}
	a, b := randSlice(r, numel(aShape)), randSlice(r, numel(bShape))
	plan, err := planMatMul(aShape, bShape)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(plan.Out) != "[2 3 3 5]" {
		t.Fatalf("out shape %v", plan.Out)
	}
	got := make([]float32, numel(plan.Out))
	matmul(plan.M, plan.N, plan.K, plan.AOff, plan.BOff, a, b, got)
	want := make([]float32, len(got))
	for i0 := 0; i0 < 2; i0++ {
		for i1 := 0; i1 < 3; i1++ {
			for m := 0; m < 3; m++ {
				for n := 0; n < 5; n++ {
					s := 0.0
					for k := 0; k < 4; k++ {
						s += float64(a[(i0*3+m)*4+k]) * float64(b[(i1*4+k)*5+n])
					}
					want[((i0*3+i1)*3+m)*5+n] = float32(s)
				}
			}
		}
	}
	closeTo(t, "matmul", got, want, 1e-6)

	// 1-d promotion: [4] x [4,5] → [5]; [3,4] x [4] → [3]
	for _, tc := range []struct{ a, b, out []int }{{[]int{4}, []int{4, 5}, []int{5}}, {[]int{3, 4}, []int{4}, []int{3}}, {[]int{4}, []int{4}, []int{}}} {
		pl, err := planMatMul(tc.a, tc.b)
		if err != nil || fmt.Sprint(pl.Out) != fmt.Sprint(tc.out) {
			t.Errorf("planMatMul(%v, %v) = %v, %v; want %v", tc.a, tc.b, pl, err, tc.out)
		}
	}
	if _, err := planMatMul([]int{3, 4}, []int{5, 6}); err == nil {
		t.Error("planMatMul accepted mismatched K")
	}
}

func TestBinaryBroadcast(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, tc := range []struct{ a, b []int }{
		{[]int{2, 3, 4}, []int{2, 3, 4}},
		{[]int{2, 3, 4}, []int{4}},
		{[]int{2, 3, 4}, []int{3, 1}},
		{[]int{1, 3, 1}, []int{2, 1, 4}},
		{[]int{2, 3, 4}, []int{}},
		{[]int{}, []int{2, 3}},
		{[]int{1, 8, 1, 1}, []int{2, 8, 5, 5}},
		{[]int{2, 8, 5, 5}, []int{1, 8, 1, 1}},
	} {
		for _, op := range []BinaryOp{OpAdd, OpSub, OpMul, OpDiv, OpPow} {
			pl, err := newBroadcast(tc.a, tc.b)
			if err != nil {
				t.Fatal(err)
			}
			a, b := randSlice(r, numel(tc.a)), randSlice(r, numel(tc.b))
			if op == OpPow {
				for i := range a {
					a[i] = float32(math.Abs(float64(a[i])))
				}
			}
			got := make([]float32, pl.Len)
			binaryT(op, pl, a, b, got)
			// naive: index by unravelled coordinates
			sa, sb := broadcastStrides(tc.a, pl.Out), broadcastStrides(tc.b, pl.Out)
			for o := range got {
				r, ia, ib := o, 0, 0
				for d := len(pl.Out) - 1; d >= 0; d-- {
					i := r % pl.Out[d]
					r /= pl.Out[d]
					ia += i * sa[d]
					ib += i * sb[d]
				}
				x, y := float64(a[ia]), float64(b[ib])
				want := map[BinaryOp]float64{OpAdd: x + y, OpSub: x - y, OpMul: x * y, OpDiv: x / y, OpPow: math.Pow(x, y)}[op]
				if g := got[o]; g != float32(want) && !(math.IsNaN(float64(g)) && math.IsNaN(want)) {
					t.Fatalf("%v %v %v: [%d] = %g, want %g", tc.a, op, tc.b, o, g, float32(want))
				}
			}
		}
	}
	if _, err := newBroadcast([]int{2, 3}, []int{4}); err == nil {
		t.Error("newBroadcast accepted [2 3] with [4]")
	}
}

func TestPoolsMatchNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, tc := range []struct {
		name           string
		in, k, s, pb   [2]int
		pe             [2]int
		ceil, countPad bool
	}{
		{"2x2s2", [2]int{6, 6}, [2]int{2, 2}, [2]int{2, 2}, [2]int{}, [2]int{}, false, false},
		{"3x3s2p1", [2]int{7, 7}, [2]int{3, 3}, [2]int{2, 2}, [2]int{1, 1}, [2]int{1, 1}, false, false},
		{"3x3s2p1count", [2]int{7, 7}, [2]int{3, 3}, [2]int{2, 2}, [2]int{1, 1}, [2]int{1, 1}, false, true},
		{"ceil", [2]int{6, 7}, [2]int{3, 3}, [2]int{2, 2}, [2]int{}, [2]int{}, true, false},
		{"ceilcount", [2]int{6, 7}, [2]int{3, 3}, [2]int{2, 2}, [2]int{1, 0}, [2]int{1, 0}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := PoolParams{NC: 3, In: [3]int{1, tc.in[0], tc.in[1]}, Kernel: [3]int{1, tc.k[0], tc.k[1]},
				Stride: [3]int{1, tc.s[0], tc.s[1]}, Dilation: [3]int{1, 1, 1},
				PadBegin: [3]int{0, tc.pb[0], tc.pb[1]}, PadEnd: [3]int{0, tc.pe[0], tc.pe[1]}, CountIncludePad: tc.countPad}
			p.Out[0] = 1
			for d := 1; d < 3; d++ {
				p.Out[d] = poolOutDim(p.In[d], p.Kernel[d], p.Stride[d], 1, p.PadBegin[d], p.PadEnd[d], tc.ceil)
			}
			x := randSlice(r, p.NC*numel(p.In[:]))
			outN := p.NC * numel(p.Out[:])
			gotMax, gotAvg := make([]float32, outN), make([]float32, outN)
			idx := make([]int64, outN)
			maxPool(&p, float32(math.Inf(-1)), x, gotMax, idx)
			avgPool(&p, x, gotAvg)
			H, W := p.In[1], p.In[2]
			for c := 0; c < p.NC; c++ {
				for oh := 0; oh < p.Out[1]; oh++ {
					for ow := 0; ow < p.Out[2]; ow++ {
						m, s, n := float32(math.Inf(-1)), 0.0, 0
						h0, w0 := oh*p.Stride[1]-p.PadBegin[1], ow*p.Stride[2]-p.PadBegin[2]
						h1, w1 := min(h0+p.Kernel[1], H+p.PadEnd[1]), min(w0+p.Kernel[2], W+p.PadEnd[2])
						for h := max(h0, 0); h < min(h1, H); h++ {
							for w := max(w0, 0); w < min(w1, W); w++ {
								v := x[(c*H+h)*W+w]
								m = max(m, v)
								s += float64(v)
								n++
							}
						}
						div := n
						if tc.countPad {
							div = (h1 - h0) * (w1 - w0)
						}
						o := (c*p.Out[1]+oh)*p.Out[2] + ow
						if gotMax[o] != m || x[idx[o]] != m {
							t.Fatalf("max [%d] = %g (idx %d), want %g", o, gotMax[o], idx[o], m)
						}
						if want := float32(s / float64(div)); gotAvg[o] != want {
							t.Fatalf("avg [%d] = %g, want %g", o, gotAvg[o], want)
						}
					}
				}
			}
		})
	}
}

func TestTransposeConcatSliceGatherPad(t *testing.T) {
	x := make([]int64, 24)
	for i := range x {
		x[i] = int64(i)
	}
	shape := []int{2, 3, 4}
	y := make([]int64, 24)
	transpose(shape, []int{2, 0, 1}, x, y)
	// y[k,i,j] = x[i,j,k]
	for k := 0; k < 4; k++ {
		for i := 0; i < 2; i++ {
			for j := 0; j < 3; j++ {
				if y[(k*2+i)*3+j] != x[(i*3+j)*4+k] {
					t.Fatalf("transpose wrong at %d,%d,%d", k, i, j)
				}
			}
		}
	}
	cat := make([]int64, 48)
	concat(1, [][]int{shape, shape}, [][]int64{x, x}, cat)
	if cat[12] != 0 || cat[11] != 11 || cat[24] != 12 {
		t.Fatalf("concat: %v", cat)
	}
	d0, _ := resolveSlice(2, -1, -3, -1) // [1, 0]
	d1, _ := resolveSlice(3, 0, 100, 2)  // [0, 2]
	d2, _ := resolveSlice(4, 1, 3, 1)    // [1, 2]
	if d0.Count != 2 || d1.Count != 2 || d2.Count != 2 {
		t.Fatalf("resolveSlice counts %v %v %v", d0, d1, d2)
	}
	sl := make([]int64, 8)
	slice(shape, []SliceDim{d0, d1, d2}, x, sl)
	if want := "[13 14 21 22 1 2 9 10]"; fmt.Sprint(sl) != want {
		t.Fatalf("slice = %v, want %s", sl, want)
	}
	g := make([]int64, 16)
	gather(shape, 2, []int{3, 0}, x, g[:12])
	if want := "[3 0 7 4 11 8 15 12 19 16 23 20]"; fmt.Sprint(g[:12]) != want {
		t.Fatalf("gather = %v, want %s", g[:12], want)
	}
	row := []int64{1, 2, 3}
	out := make([]int64, 7)
	for _, tc := range []struct {
		mode PadMode
		want string
	}{{PadConstant, "[9 9 1 2 3 9 9]"}, {PadEdge, "[1 1 1 2 3 3 3]"}, {PadReflect, "[3 2 1 2 3 2 1]"}} {
		pad([]int{3}, []int{2}, []int{2}, tc.mode, 9, row, out)
		if fmt.Sprint(out) != tc.want {
			t.Errorf("pad mode %d = %v, want %s", tc.mode, out, tc.want)
		}
	}
}

func TestSoftmaxLayerNormBatchNorm(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	x := randSlice(r, 2*5*3)
	y := make([]float32, len(x))
	softmax(2, 5, 3, x, y)
	for o := 0; o < 2; o++ {
		for in := 0; in < 3; in++ {
			s := 0.0
			for k := 0; k < 5; k++ {
				v := y[(o*5+k)*3+in]
				if v <= 0 || v >= 1 {
					t.Fatalf("softmax value %g out of (0,1)", v)
				}
				s += float64(v)
			}
			if math.Abs(s-1) > 1e-6 {
				t.Fatalf("softmax sums to %g", s)
			}
		}
	}
	scale, bias := randSlice(r, 5), randSlice(r, 5)
	mean, inv := make([]float32, 6), make([]float32, 6)
	layerNorm(6, 5, 1e-5, x, scale, bias, y, mean, inv)
	for o := 0; o < 6; o++ {
		mu, q := 0.0, 0.0
		for i := 0; i < 5; i++ {
			mu += float64(x[o*5+i]) / 5
		}
		for i := 0; i < 5; i++ {
			d := float64(x[o*5+i]) - mu
			q += d * d / 5
		}
		for i := 0; i < 5; i++ {
			want := (float64(x[o*5+i])-mu)/math.Sqrt(q+1e-5)*float64(scale[i]) + float64(bias[i])
			if math.Abs(float64(y[o*5+i])-want) > 1e-5 {
				t.Fatalf("layerNorm [%d,%d] = %g, want %g", o, i, y[o*5+i], want)
			}
		}
	}
	// batchNorm over [2, 3, 5]
	mu, va := randSlice(r, 3), randSlice(r, 3)
	for i := range va {
		va[i] = float32(math.Abs(float64(va[i])))
	}
	batchNorm(2, 3, 5, 1e-5, x, scale[:3], bias[:3], mu, va, y)
	for i := range x {
		c := (i / 5) % 3
		want := (float64(x[i])-float64(mu[c]))/math.Sqrt(float64(va[c])+1e-5)*float64(scale[c]) + float64(bias[c])
		if math.Abs(float64(y[i])-want) > 1e-5*(1+math.Abs(want)) {
			t.Fatalf("batchNorm [%d] = %g, want %g", i, y[i], want)
		}
	}
}

func TestReduceMeanAndGlobalAvg(t *testing.T) {
	x := make([]float32, 24)
	for i := range x {
		x[i] = float32(i)
	}
	y := make([]float32, 3)
	reduceMean([]int{2, 3, 4}, []bool{true, false, true}, x, y)
	// mean over dims 0 and 2 of x[i,j,k] = 12i + 4j + k: 6 + 4j + 1.5
	for j, v := range y {
		if want := float32(6+4*j) + float32(1.5); v != want {
			t.Fatalf("reduceMean[%d] = %g, want %g", j, v, want)
		}
	}
	g := make([]float32, 6)
	globalAvgPool(6, 4, x, g)
	for c, v := range g {
		if want := float32(4*c) + float32(1.5); v != want {
			t.Fatalf("globalAvgPool[%d] = %g, want %g", c, v, want)
		}
	}
}

func TestUnary(t *testing.T) {
	x := []float32{-3, -1, -0.5, 0, 0.5, 1, 3, 4}
	y := make([]float32, len(x))
	for _, tc := range []struct {
		op   UnaryOp
		a, b float32
		f    func(float64) float64
	}{
		{OpRelu, 0, 0, func(v float64) float64 { return math.Max(v, 0) }},
		{OpSigmoid, 0, 0, func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }},
		{OpHardSigmoid, 0.2, 0.5, func(v float64) float64 { return math.Max(0, math.Min(1, 0.2*v+0.5)) }},
		{OpHardSwish, 0, 0, func(v float64) float64 { return v * math.Max(0, math.Min(1, v/6+0.5)) }},
		{OpErf, 0, 0, math.Erf},
		{OpSqrt, 0, 0, math.Sqrt},
		{OpClip, -1, 0.5, func(v float64) float64 { return math.Max(-1, math.Min(0.5, v)) }},
	} {
		unary(tc.op, tc.a, tc.b, x, y)
		for i, v := range x {
			if want := float32(tc.f(float64(v))); y[i] != want && !(want != want && y[i] != y[i]) {
				t.Errorf("unary %d (%g) = %g, want %g", tc.op, v, y[i], want)
			}
		}
	}
}

// TestResultsIndependentOfCores checks the claim in doc.go: the split across goroutines never
// changes a result bit.
func TestResultsIndependentOfCores(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	p := &ConvParams{N: 2, C: 6, M: 10, Group: 2, In: [3]int{1, 9, 9}, Kernel: [3]int{1, 3, 3}, Out: [3]int{1, 9, 9},
		Stride: [3]int{1, 1, 1}, Dilation: [3]int{1, 1, 1}, PadBegin: [3]int{0, 1, 1}}
	x, w, b := randSlice(r, p.XLen()), randSlice(r, p.WLen()), randSlice(r, p.M)
	gp := &GemmParams{M: 33, N: 17, K: 129, TransB: true, Alpha: 1, Beta: 1}
	ga, gb, gc := randSlice(r, gp.M*gp.K), randSlice(r, gp.N*gp.K), randSlice(r, gp.N)
	gp.CStrideN = 1
	run := func() ([]float32, []float32) {
		y, gy := make([]float32, p.YLen()), make([]float32, gp.M*gp.N)
		conv(p, x, w, b, y)
		gemm(gp, ga, gb, gc, gy)
		return y, gy
	}
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	y1, g1 := run()
	for _, procs := range []int{2, 3, 7} {
		runtime.GOMAXPROCS(procs)
		y, g := run()
		if !slices.Equal(y, y1) || !slices.Equal(g, g1) {
			t.Fatalf("GOMAXPROCS %d changes results", procs)
		}
	}
}
