package cpu

import "fmt"

// GemmParams describes Y[M,N] = act(alpha * A' B' + beta * C), A' = A or Aᵀ, B' = B or Bᵀ.
// C is broadcast to [M, N] through its strides (0 along a broadcast dim); CStrideM and
// CStrideN are ignored when C is nil.
type GemmParams struct {
	M, N, K            int
	TransA, TransB     bool
	Alpha, Beta        float32
	CStrideM, CStrideN int
	Act                Act
}

type gemmArgs struct {
	p          *GemmParams
	a, b, c, y []float32
}

func gemmGrain(p *GemmParams) int { return max(1, (1<<15)/max(1, p.N*p.K)) }

// gemm computes the product with float64 accumulation, rounded once per output.
// Timing: exec thread; parallel over rows of Y.
func gemm(p *GemmParams, a, b, c, y []float32) {
	runOnce(gemmRange, gemmArgs{p, a, b, c, y}, p.M, gemmGrain(p))
}

func gemmRange(g *gemmArgs, s *scratch, lo, hi int) {
	p, a, b, c, y := g.p, g.a, g.b, g.c, g.y
	N, K := p.N, p.K
	// element strides of A'[i,k]
	ai, ak := K, 1
	if p.TransA {
		ai, ak = 1, p.M
	}
	bk := N // B[k, j] when not transposed; the transposed case reads rows of B directly
	acc := s.float64s(N)
	for i := lo; i < hi; i++ {
		if p.TransB {
			// rows of B are contiguous along k: dot products
			for j := 0; j < N; j++ {
				sum := 0.0
				brow := b[j*K:][:K]
				if !p.TransA {
					arow := a[i*K:][:K]
					for k, v := range arow {
						sum += float64(v) * float64(brow[k])
					}
				} else {
					for k := 0; k < K; k++ {
						sum += float64(a[i*ai+k*ak]) * float64(brow[k])
					}
				}
				acc[j] = sum
			}
		} else {
			clear(acc)
			for k := 0; k < K; k++ {
				av := float64(a[i*ai+k*ak])
				brow := b[k*bk:][:N]
				for j, v := range brow {
					acc[j] += av * float64(v)
				}
			}
		}
		yrow := y[i*N:][:N]
		for j, sum := range acc {
			v := float64(p.Alpha) * sum
			if c != nil {
				v += float64(p.Beta) * float64(c[i*p.CStrideM+j*p.CStrideN])
			}
			yrow[j] = p.Act.apply(float32(v))
		}
	}
}

type matmulArgs struct {
	M, N, K    int
	aOff, bOff []int
	a, b, y    []float32
}

func matmulGrain(N, K int) int { return max(1, (1<<15)/max(1, N*K)) }

// matmul computes batch independent products Y[b] = A[b] · B[b] of [M,K]·[K,N]; aOff, bOff give
// each batch entry's element offset in a and b (numpy broadcasting resolved by the caller).
// Timing: exec thread; parallel over (batch, row).
func matmul(M, N, K int, aOff, bOff []int, a, b, y []float32) {
	runOnce(matmulRange, matmulArgs{M, N, K, aOff, bOff, a, b, y}, len(aOff)*M, matmulGrain(N, K))
}

func matmulRange(m *matmulArgs, s *scratch, lo, hi int) {
	M, N, K := m.M, m.N, m.K
	acc := s.float64s(N)
	for bi := lo; bi < hi; bi++ {
		t, i := bi/M, bi%M
		clear(acc)
		arow := m.a[m.aOff[t]+i*K:][:K]
		bm := m.b[m.bOff[t]:][:K*N]
		for k, av := range arow {
			a64 := float64(av)
			brow := bm[k*N:][:N]
			for j, v := range brow {
				acc[j] += a64 * float64(v)
			}
		}
		yrow := m.y[bi*N:][:N]
		for j, v := range acc {
			yrow[j] = float32(v)
		}
	}
}

// MatMulPlan is a numpy matmul resolved for fixed shapes.
type MatMulPlan struct {
	M, N, K    int
	Out        []int
	AOff, BOff []int // element offset of each batch entry's matrix in A and B
}

// planMatMul resolves numpy matmul semantics for shapes a and b: 1-d operands are promoted
// (and the added dim dropped from the result), leading dims broadcast.
func planMatMul(a, b []int) (*MatMulPlan, error) {
	if len(a) == 0 || len(b) == 0 {
		return nil, fmt.Errorf("cannot multiply scalars with MatMul: shapes %v and %v", a, b)
	}
	a2, b2 := a, b
	if len(a) == 1 {
		a2 = []int{1, a[0]}
	}
	if len(b) == 1 {
		b2 = []int{b[0], 1}
	}
	M, K := a2[len(a2)-2], a2[len(a2)-1]
	K2, N := b2[len(b2)-2], b2[len(b2)-1]
	if K != K2 {
		return nil, fmt.Errorf("cannot multiply shapes %v and %v: inner dims %d and %d differ", a, b, K, K2)
	}
	ab, bb := a2[:len(a2)-2], b2[:len(b2)-2]
	batch, err := broadcastShape(ab, bb)
	if err != nil {
		return nil, err
	}
	sa, sb := broadcastStrides(ab, batch), broadcastStrides(bb, batch)
	n := numel(batch)
	p := &MatMulPlan{M: M, N: N, K: K, AOff: make([]int, n), BOff: make([]int, n)}
	for t := 0; t < n; t++ {
		r, oa, ob := t, 0, 0
		for d := len(batch) - 1; d >= 0; d-- {
			i := r % batch[d]
			r /= batch[d]
			oa += i * sa[d]
			ob += i * sb[d]
		}
		p.AOff[t], p.BOff[t] = oa*M*K, ob*K*N
	}
	p.Out = append([]int{}, batch...)
	if len(a) > 1 {
		p.Out = append(p.Out, M)
	}
	if len(b) > 1 {
		p.Out = append(p.Out, N)
	}
	return p, nil
}
