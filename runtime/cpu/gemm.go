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

// gemm computes the product with float64 accumulation, rounded once per output.
// Timing: exec thread; parallel over rows of Y.
func gemm(p *GemmParams, a, b, c, y []float32) {
	M, N, K := p.M, p.N, p.K
	// element strides of A'[i,k] and B'[k,j]
	ai, ak := K, 1
	if p.TransA {
		ai, ak = 1, M
	}
	bk := N // B[k, j] when not transposed; the transposed case reads rows of B directly
	grain := max(1, (1<<15)/max(1, N*K))
	parallelFor(M, grain, func(lo, hi int) {
		acc := make([]float64, N)
		for i := lo; i < hi; i++ {
			if p.TransB {
				// rows of B are contiguous along k: dot products
				for j := 0; j < N; j++ {
					s := 0.0
					brow := b[j*K:][:K]
					if !p.TransA {
						arow := a[i*K:][:K]
						for k, v := range arow {
							s += float64(v) * float64(brow[k])
						}
					} else {
						for k := 0; k < K; k++ {
							s += float64(a[i*ai+k*ak]) * float64(brow[k])
						}
					}
					acc[j] = s
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
			for j, s := range acc {
				v := float64(p.Alpha) * s
				if c != nil {
					v += float64(p.Beta) * float64(c[i*p.CStrideM+j*p.CStrideN])
				}
				yrow[j] = p.Act.apply(float32(v))
			}
		}
	})
}

// matmul computes batch independent products Y[b] = A[b] · B[b] of [M,K]·[K,N]; aOff, bOff give
// each batch entry's element offset in a and b (numpy broadcasting resolved by the caller).
// Timing: exec thread; parallel over (batch, row).
func matmul(M, N, K int, aOff, bOff []int, a, b, y []float32) {
	batch := len(aOff)
	grain := max(1, (1<<15)/max(1, N*K))
	parallelFor(batch*M, grain, func(lo, hi int) {
		acc := make([]float64, N)
		for bi := lo; bi < hi; bi++ {
			t, i := bi/M, bi%M
			clear(acc)
			arow := a[aOff[t]+i*K:][:K]
			bm := b[bOff[t]:][:K*N]
			for k, av := range arow {
				a64 := float64(av)
				brow := bm[k*N:][:N]
				for j, v := range brow {
					acc[j] += a64 * float64(v)
				}
			}
			yrow := y[bi*N:][:N]
			for j, s := range acc {
				yrow[j] = float32(s)
			}
		}
	})
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
