package cuda

import (
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
)

// CPU references for the GPU tests: float64 accumulation, plain loops.

func testRand(t testing.TB) *rand.Rand {
	seed := uint64(1)
	if s := os.Getenv("TEST_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	} else {
		seed = rand.Uint64()
	}
	t.Logf("TEST_SEED=%d", seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

func randFloats(r *rand.Rand, n int, lo, hi float32) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = lo + (hi-lo)*r.Float32()
	}
	return x
}

// relErr is ‖got − want‖₂ / ‖want‖₂; NaN anywhere gives +Inf.
func relErr(got, want []float32) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	var num, den float64
	for i := range got {
		g, w := float64(got[i]), float64(want[i])
		if math.IsNaN(g) || math.IsNaN(w) {
			return math.Inf(1)
		}
		num += (g - w) * (g - w)
		den += w * w
	}
	if den == 0 {
		return math.Sqrt(num)
	}
	return math.Sqrt(num / den)
}

func maxAbsErr(got, want []float32) float64 {
	m := 0.0
	for i := range got {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		m = max(m, d)
	}
	return m
}

func refAct(v float32, op actOp, a, b float32) float32 {
	x := float64(v)
	var r float64
	switch op {
	case actIdentity:
		r = x
	case actReLU:
		r = math.Max(x, 0)
	case actClip:
		r = math.Min(math.Max(x, float64(a)), float64(b))
	case actSigmoid:
		r = 1 / (1 + math.Exp(-x))
	case actTanh:
		r = math.Tanh(x)
	case actHardSigmoid:
		r = math.Min(math.Max(float64(a)*x+float64(b), 0), 1)
	case actHardSwish:
		r = x * math.Min(math.Max(x/6+0.5, 0), 1)
	case actLeakyReLU:
		if x >= 0 {
			r = x
		} else {
			r = float64(a) * x
		}
	case actSiLU:
		r = x / (1 + math.Exp(-x))
	default:
		r = math.NaN()
	}
	return float32(r)
}

func refBinary(u, v float32, op binOp) float32 {
	switch op {
	case binAdd:
		return u + v
	case binMul:
		return u * v
	case binSub:
		return u - v
	case binDiv:
		return u / v
	case binMax:
		return max(u, v)
	}
	return float32(math.NaN())
}

// refGemm: row-major C = A·B.
func refGemm(a, b []float32, m, n, k int) []float32 {
	c := make([]float32, m*n)
	for i := range m {
		for j := range n {
			var s float64
			for p := range k {
				s += float64(a[i*k+p]) * float64(b[p*n+j])
			}
			c[i*n+j] = float32(s)
		}
	}
	return c
}

// refConv: NCHW cross-correlation with groups.
func refConv(x, w []float32, s ConvShape) []float32 {
	oh, ow := s.OutHW()
	g := max(s.Groups, 1)
	cg, kg := s.C/g, s.K/g
	sh, sw := max(s.StrideH, 1), max(s.StrideW, 1)
	dh, dw := max(s.DilH, 1), max(s.DilW, 1)
	y := make([]float32, s.N*s.K*oh*ow)
	for n := range s.N {
		for k := range s.K {
			grp := k / kg
			for oy := range oh {
				for ox := range ow {
					var acc float64
					for c := range cg {
						ci := grp*cg + c
						for r := range s.R {
							iy := oy*sh - s.PadH + r*dh
							if iy < 0 || iy >= s.H {
								continue
							}
							for q := range s.S {
								ix := ox*sw - s.PadW + q*dw
								if ix < 0 || ix >= s.W {
									continue
								}
								acc += float64(x[((n*s.C+ci)*s.H+iy)*s.W+ix]) * float64(w[((k*cg+c)*s.R+r)*s.S+q])
							}
						}
					}
					y[((n*s.K+k)*oh+oy)*ow+ox] = float32(acc)
				}
			}
		}
	}
	return y
}

func refPool(x []float32, nc, h, w, kh, kw, sh, sw, ph, pw int, mode poolMode) ([]float32, int, int) {
	oh, ow := (h+2*ph-kh)/sh+1, (w+2*pw-kw)/sw+1
	y := make([]float32, nc*oh*ow)
	for p := range nc {
		for oy := range oh {
			for ox := range ow {
				acc, cnt := math.Inf(-1), 0
				if mode != poolMax {
					acc = 0
				}
				for ky := range kh {
					for kx := range kw {
						iy, ix := oy*sh-ph+ky, ox*sw-pw+kx
						if iy < 0 || iy >= h || ix < 0 || ix >= w {
							continue
						}
						v := float64(x[(p*h+iy)*w+ix])
						if mode == poolMax {
							acc = math.Max(acc, v)
						} else {
							acc += v
						}
						cnt++
					}
				}
				switch mode {
				case poolAvgPad:
					acc /= float64(kh * kw)
				case poolAvgValid:
					acc /= float64(cnt)
				}
				y[(p*oh+oy)*ow+ox] = float32(acc)
			}
		}
	}
	return y, oh, ow
}

// f32ToF16 converts to IEEE binary16, round to nearest even (the cvt.rn.f16.f32 rule).
func f32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23&0xff) - 127 + 15
	man := b & 0x7fffff
	if b&0x7fffffff > 0x7f800000 {
		return sign | 0x7e00
	}
	if exp >= 0x1f {
		return sign | 0x7c00
	}
	if exp <= 0 {
		if exp < -10 {
			return sign
		}
		man |= 0x800000
		shift := uint(14 - exp)
		h := man >> shift
		rem := man & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && h&1 == 1) {
			h++
		}
		return sign | uint16(h)
	}
	h := uint32(exp)<<10 | man>>13
	rem := man & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // may carry into the exponent, giving inf at the top: correct
	}
	return sign | uint16(h)
}

func f16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	man := uint32(h & 0x3ff)
	switch {
	case exp == 0:
		if man == 0 {
			return math.Float32frombits(sign)
		}
		f := float32(man) / 1024 / 16384
		if sign != 0 {
			return -f
		}
		return f
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | man<<13)
}

func mathExp(x float64) float64 { return math.Exp(x) }
