package cpu

import "math"

// softmax normalizes x viewed as [outer, n, inner] along n: exp(x - max) / sum, in float64.
// Timing: exec thread; parallel over outer.
func softmax(outer, n, inner int, x, y []float32) {
	runOnce(softmaxRange, softmaxArgs{outer, n, inner, x, y}, outer, softmaxGrain(n, inner))
}

type softmaxArgs struct {
	outer, n, inner int
	x, y            []float32
}

func softmaxGrain(n, inner int) int { return max(1, 4096/max(1, n*inner)) }

func softmaxRange(a *softmaxArgs, s *scratch, lo, hi int) {
	n, inner, x, y := a.n, a.inner, a.x, a.y
	tmp := s.float64s(n)
	{
		for o := lo; o < hi; o++ {
			base := o * n * inner
			for in := 0; in < inner; in++ {
				m := math.Inf(-1)
				for k := 0; k < n; k++ {
					m = math.Max(m, float64(x[base+k*inner+in]))
				}
				sum := 0.0
				for k := 0; k < n; k++ {
					e := math.Exp(float64(x[base+k*inner+in]) - m)
					tmp[k] = e
					sum += e
				}
				for k := 0; k < n; k++ {
					y[base+k*inner+in] = float32(tmp[k] / sum)
				}
			}
		}
	}
}

// layerNorm normalizes each of outer rows of n elements: (x - mean) / sqrt(var + eps) * scale
// + bias, with population variance in float64. scale and bias have n elements (bias may be
// nil); mean and invStd (outer elements each) may be nil.
// Timing: exec thread; parallel over rows.
func layerNorm(outer, n int, eps float32, x, scale, bias, y, mean, invStd []float32) {
	runOnce(layerNormRange, layerNormArgs{outer, n, eps, x, scale, bias, y, mean, invStd}, outer, rowGrain(n))
}

type layerNormArgs struct {
	outer, n                        int
	eps                             float32
	x, scale, bias, y, mean, invStd []float32
}

func rowGrain(n int) int { return max(1, 4096/max(1, n)) }

func layerNormRange(a *layerNormArgs, _ *scratch, lo, hi int) {
	n, eps, x, scale, bias, y, mean, invStd := a.n, a.eps, a.x, a.scale, a.bias, a.y, a.mean, a.invStd
	{
		for o := lo; o < hi; o++ {
			row := x[o*n:][:n]
			s := 0.0
			for _, v := range row {
				s += float64(v)
			}
			mu := s / float64(n)
			q := 0.0
			for _, v := range row {
				d := float64(v) - mu
				q += d * d
			}
			inv := 1 / math.Sqrt(q/float64(n)+float64(eps))
			out := y[o*n:][:n]
			for i, v := range row {
				r := (float64(v) - mu) * inv * float64(scale[i])
				if bias != nil {
					r += float64(bias[i])
				}
				out[i] = float32(r)
			}
			if mean != nil {
				mean[o] = float32(mu)
			}
			if invStd != nil {
				invStd[o] = float32(inv)
			}
		}
	}
}

// batchNorm applies inference-mode batch normalization to x viewed as [n, c, sp].
// Timing: exec thread; parallel over (image, channel).
func batchNorm(n, c, sp int, eps float32, x, scale, bias, mean, variance, y []float32) {
	runOnce(batchNormRange, batchNormArgs{c, sp, eps, x, scale, bias, mean, variance, y}, n*c, rowGrain(sp))
}

type batchNormArgs struct {
	c, sp                             int
	eps                               float32
	x, scale, bias, mean, variance, y []float32
}

func batchNormRange(a *batchNormArgs, _ *scratch, lo, hi int) {
	c, sp, eps, x, scale, bias, mean, variance, y := a.c, a.sp, a.eps, a.x, a.scale, a.bias, a.mean, a.variance, a.y
	{
		for nc := lo; nc < hi; nc++ {
			ch := nc % c
			inv := float64(scale[ch]) / math.Sqrt(float64(variance[ch])+float64(eps))
			mu, b := float64(mean[ch]), float64(bias[ch])
			xs, ys := x[nc*sp:][:sp], y[nc*sp:][:sp]
			for i, v := range xs {
				ys[i] = float32((float64(v)-mu)*inv + b)
			}
		}
	}
}

// batchStats returns the per-channel mean and population variance of x viewed as [n, c, sp]
// (BatchNormalization in training mode), in float64 rounded once.
func batchStats(n, c, sp int, x []float32) (mean, variance []float32) {
	mean, variance = make([]float32, c), make([]float32, c)
	cnt := float64(n * sp)
	for ch := 0; ch < c; ch++ {
		s := 0.0
		for i := 0; i < n; i++ {
			for _, v := range x[(i*c+ch)*sp:][:sp] {
				s += float64(v)
			}
		}
		mu := s / cnt
		q := 0.0
		for i := 0; i < n; i++ {
			for _, v := range x[(i*c+ch)*sp:][:sp] {
				d := float64(v) - mu
				q += d * d
			}
		}
		mean[ch], variance[ch] = float32(mu), float32(q/cnt)
	}
	return mean, variance
}
