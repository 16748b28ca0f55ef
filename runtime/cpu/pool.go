package cpu

import "math"

// PoolParams describes MaxPool or AveragePool over up to 3 spatial dims of an NC... tensor
// (fewer dims are leading dims of size 1, as in ConvParams).
type PoolParams struct {
	NC       int // batch × channels
	In       [3]int
	Kernel   [3]int
	Out      [3]int
	Stride   [3]int
	Dilation [3]int
	PadBegin [3]int
	PadEnd   [3]int // explicit end padding; ceil_mode windows may run past it
	// ColMajorIndices numbers MaxPool's indices column-major within each channel (ONNX
	// storage_order 1; at most 2 spatial dims).
	ColMajorIndices bool
	// CountIncludePad divides an average by the window size clipped to the padded input
	// (PyTorch and the ONNX reference), instead of by the number of real input elements.
	CountIncludePad bool
}

// maxPool writes the window maxima to y and, if idx is not nil, the flat NCDHW index of each
// maximum (the first one on ties) to idx, as ONNX MaxPool's Indices output (storage_order 0).
// Timing: exec thread; parallel over channels.
func maxPool[T number](p *PoolParams, lowest T, x, y []T, idx []int64) {
	runOnce(maxPoolRange[T], maxPoolArgs[T]{p, lowest, x, y, idx}, p.NC, p.grain())
}

func (p *PoolParams) grain() int { return max(1, 4096/max(1, p.Out[0]*p.Out[1]*p.Out[2])) }

type maxPoolArgs[T number] struct {
	p      *PoolParams
	lowest T
	x, y   []T
	idx    []int64
}

func maxPoolRange[T number](a *maxPoolArgs[T], _ *scratch, lo, hi int) {
	p, lowest, x, y, idx := a.p, a.lowest, a.x, a.y, a.idx
	inSp := p.In[0] * p.In[1] * p.In[2]
	outSp := p.Out[0] * p.Out[1] * p.Out[2]
	{
		for c := lo; c < hi; c++ {
			xc := x[c*inSp:][:inSp]
			for od := 0; od < p.Out[0]; od++ {
				for oh := 0; oh < p.Out[1]; oh++ {
					for ow := 0; ow < p.Out[2]; ow++ {
						best := lowest
						bi := -1
						for kd := 0; kd < p.Kernel[0]; kd++ {
							id := od*p.Stride[0] - p.PadBegin[0] + kd*p.Dilation[0]
							if id < 0 || id >= p.In[0] {
								continue
							}
							for kh := 0; kh < p.Kernel[1]; kh++ {
								ih := oh*p.Stride[1] - p.PadBegin[1] + kh*p.Dilation[1]
								if ih < 0 || ih >= p.In[1] {
									continue
								}
								for kw := 0; kw < p.Kernel[2]; kw++ {
									iw := ow*p.Stride[2] - p.PadBegin[2] + kw*p.Dilation[2]
									if iw < 0 || iw >= p.In[2] {
										continue
									}
									i := (id*p.In[1]+ih)*p.In[2] + iw
									if v := xc[i]; v > best || bi < 0 || v != v {
										best, bi = v, i
										if v != v {
											goto done
										}
									}
								}
							}
						}
					done:
						o := c*outSp + (od*p.Out[1]+oh)*p.Out[2] + ow
						y[o] = best
						if idx != nil {
							bi = max(bi, 0)
							if p.ColMajorIndices {
								bi = (bi%p.In[2])*p.In[1] + bi/p.In[2]
							}
							idx[o] = int64(c*inSp + bi)
						}
					}
				}
			}
		}
	}
}

// avgPool writes window means, summed in float64.
// Timing: exec thread; parallel over channels.
func avgPool(p *PoolParams, x, y []float32) {
	runOnce(avgPoolRange, avgPoolArgs{p, x, y}, p.NC, p.grain())
}

type avgPoolArgs struct {
	p    *PoolParams
	x, y []float32
}

func avgPoolRange(a *avgPoolArgs, _ *scratch, lo, hi int) {
	p, x, y := a.p, a.x, a.y
	inSp := p.In[0] * p.In[1] * p.In[2]
	outSp := p.Out[0] * p.Out[1] * p.Out[2]
	{
		for c := lo; c < hi; c++ {
			xc := x[c*inSp:][:inSp]
			for od := 0; od < p.Out[0]; od++ {
				for oh := 0; oh < p.Out[1]; oh++ {
					for ow := 0; ow < p.Out[2]; ow++ {
						o := [3]int{od, oh, ow}
						sum, cnt, padCnt := 0.0, 0, 1
						// window extent clipped to the padded input, per dim
						for d := range 3 {
							start := o[d]*p.Stride[d] - p.PadBegin[d]
							end := start + (p.Kernel[d]-1)*p.Dilation[d] + 1
							end = min(end, p.In[d]+p.PadEnd[d])
							n := 0
							for k := start; k < end; k += p.Dilation[d] {
								n++
							}
							padCnt *= n
						}
						for kd := 0; kd < p.Kernel[0]; kd++ {
							id := od*p.Stride[0] - p.PadBegin[0] + kd*p.Dilation[0]
							if id < 0 || id >= p.In[0] {
								continue
							}
							for kh := 0; kh < p.Kernel[1]; kh++ {
								ih := oh*p.Stride[1] - p.PadBegin[1] + kh*p.Dilation[1]
								if ih < 0 || ih >= p.In[1] {
									continue
								}
								for kw := 0; kw < p.Kernel[2]; kw++ {
									iw := ow*p.Stride[2] - p.PadBegin[2] + kw*p.Dilation[2]
									if iw < 0 || iw >= p.In[2] {
										continue
									}
									sum += float64(xc[(id*p.In[1]+ih)*p.In[2]+iw])
									cnt++
								}
							}
						}
						div := cnt
						if p.CountIncludePad {
							div = padCnt
						}
						v := float32(math.NaN())
						if div > 0 {
							v = float32(sum / float64(div))
						}
						y[c*outSp+(od*p.Out[1]+oh)*p.Out[2]+ow] = v
					}
				}
			}
		}
	}
}

// globalAvgPool averages each of nc channels of sp elements, summed in float64.
// Timing: exec thread; parallel over channels.
func globalAvgPool(nc, sp int, x, y []float32) {
	runOnce(globalAvgPoolRange, globalAvgPoolArgs{sp, x, y}, nc, rowGrain(sp))
}

type globalAvgPoolArgs struct {
	sp   int
	x, y []float32
}

func globalAvgPoolRange(a *globalAvgPoolArgs, _ *scratch, lo, hi int) {
	sp, x, y := a.sp, a.x, a.y
	{
		for c := lo; c < hi; c++ {
			s := 0.0
			for _, v := range x[c*sp:][:sp] {
				s += float64(v)
			}
			y[c] = float32(s / float64(sp))
		}
	}
}

// reduceMeanPlan holds what reduceMean needs beyond the data, computed once.
type reduceMeanPlan struct {
	in, st, idx []int // input shape, output stride along each input dim (0 where reduced)
	count       int
	sum         []float64
}

func newReduceMeanPlan(in []int, reduce []bool) *reduceMeanPlan {
	p := &reduceMeanPlan{in: in, st: make([]int, len(in)), idx: make([]int, len(in)), count: 1}
	acc := 1
	for i := len(in) - 1; i >= 0; i-- {
		if reduce[i] {
			p.count *= in[i]
			continue
		}
		p.st[i] = acc
		acc *= in[i]
	}
	p.sum = make([]float64, acc)
	return p
}

// reduceMean averages x (shape in) over the dims where reduce is true into y, whose element
// order is in's with reduced dims removed (keepdims only changes y's shape, not its order).
func reduceMean(in []int, reduce []bool, x, y []float32) {
	reduceMeanWith(newReduceMeanPlan(in, reduce), x, y)
}

// reduceMeanWith runs a planned ReduceMean, summing in float64.
// Timing: exec thread; single goroutine; no allocation.
func reduceMeanWith(p *reduceMeanPlan, x, y []float32) {
	in, st, idx, sum := p.in, p.st, p.idx, p.sum
	clear(idx)
	clear(sum)
	o := 0
	for _, v := range x {
		sum[o] += float64(v)
		for d := len(in) - 1; d >= 0; d-- {
			idx[d]++
			o += st[d]
			if idx[d] < in[d] {
				break
			}
			o -= st[d] * in[d]
			idx[d] = 0
		}
	}
	for i, s := range sum {
		if p.count == 0 {
			y[i] = float32(math.NaN())
			continue
		}
		y[i] = float32(s / float64(p.count))
	}
}

// poolOutDim is the output size of a window op along one dim: floor or ceil of
// (in + pads - span) / stride + 1, where span is the dilated kernel. With ceil, a last window
// that would start inside the end padding only is dropped (PyTorch's rule).
func poolOutDim(in, kernel, stride, dilation, padBegin, padEnd int, ceil bool) int {
	span := (kernel-1)*dilation + 1
	num := in + padBegin + padEnd - span
	if num < 0 {
		return 0
	}
	if !ceil {
		return num/stride + 1
	}
	out := (num+stride-1)/stride + 1
	if (out-1)*stride >= in+padBegin { // window starting past the input and begin pad
		out--
	}
	return out
}
