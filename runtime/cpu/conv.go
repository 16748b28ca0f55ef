package cpu

import (
	"fmt"
	"sync"
)

// Act is an activation fused into the output of Conv and Gemm.
type Act struct {
	Kind     ActKind
	Min, Max float32 // ActClip bounds
}

// ActKind names a fused activation.
type ActKind uint8

const (
	ActNone ActKind = iota
	ActRelu
	ActClip
)

func (a Act) apply(v float32) float32 {
	switch a.Kind {
	case ActRelu:
		if v < 0 {
			return 0
		}
	case ActClip:
		if v < a.Min {
			return a.Min
		}
		if v > a.Max {
			return a.Max
		}
	}
	return v
}

// ConvParams describes an N-d convolution (N ≤ 3 spatial dims) in NCHW layout. Fewer spatial
// dims are expressed by leading dims of size 1 (a 2-d conv has In[0] = Kernel[0] = Out[0] = 1).
type ConvParams struct {
	N, C, M  int // batch, input channels, output channels
	Group    int
	In       [3]int // input spatial dims (D, H, W)
	Kernel   [3]int
	Out      [3]int
	Stride   [3]int
	Dilation [3]int
	PadBegin [3]int // padding before each spatial dim; the end padding is implied by Out
	Act      Act
}

// Validate checks that the parameters agree with each other, so conv cannot index out of range.
func (p *ConvParams) Validate() error {
	if p.N < 0 || p.C <= 0 || p.M <= 0 || p.Group <= 0 || p.C%p.Group != 0 || p.M%p.Group != 0 {
		return fmt.Errorf("conv: channels %d in, %d out do not divide into %d groups", p.C, p.M, p.Group)
	}
	for i := range 3 {
		if p.In[i] <= 0 || p.Kernel[i] <= 0 || p.Out[i] <= 0 || p.Stride[i] <= 0 || p.Dilation[i] <= 0 || p.PadBegin[i] < 0 {
			return fmt.Errorf("conv: bad spatial dim %d: in %v kernel %v out %v stride %v dilation %v pad %v",
				i, p.In, p.Kernel, p.Out, p.Stride, p.Dilation, p.PadBegin)
		}
	}
	return nil
}

// XLen, WLen and YLen are the element counts of the input, weight and output tensors.
func (p *ConvParams) XLen() int { return p.N * p.C * p.In[0] * p.In[1] * p.In[2] }
func (p *ConvParams) WLen() int {
	return p.M * (p.C / p.Group) * p.Kernel[0] * p.Kernel[1] * p.Kernel[2]
}
func (p *ConvParams) YLen() int { return p.N * p.M * p.Out[0] * p.Out[1] * p.Out[2] }

// validRange returns the output positions [lo, hi) along one dim whose input index
// o*stride - pad + k*dil falls inside [0, in).
func validRange(in, out, stride, pad, koff int) (lo, hi int) {
	// o*stride >= pad - koff
	s := pad - koff
	if s > 0 {
		lo = (s + stride - 1) / stride
	}
	// o*stride <= in - 1 + pad - koff
	e := in - 1 + pad - koff
	if e < 0 {
		return 0, 0
	}
	hi = e/stride + 1
	hi = min(hi, out)
	if lo > hi {
		lo = hi
	}
	return lo, hi
}

// convTask computes y = act(conv(x, w) + b). b may be nil. Sums are accumulated in float64
// in a fixed order (input channel, then kernel position) and rounded once to float32, so the
// result is the exact sum correctly rounded in nearly all cases: closer to the mathematical
// value than PyTorch's fp32 blocked sums, and independent of the number of cores.
// Output channels are computed four at a time (sharing each input load); the order of every
// sum is the same as one channel at a time.
type convTask struct {
	p          *ConvParams
	ranges     [3][]rng // valid output range per kernel offset, per dim
	x, w, b, y []float32
	wg         sync.WaitGroup
}

type rng struct{ lo, hi int }

const convBlock = 4

func newConvTask(p *ConvParams) *convTask {
	t := &convTask{p: p}
	for d := range 3 {
		t.ranges[d] = make([]rng, p.Kernel[d])
		for k := range t.ranges[d] {
			lo, hi := validRange(p.In[d], p.Out[d], p.Stride[d], p.PadBegin[d], k*p.Dilation[d])
			t.ranges[d][k] = rng{lo, hi}
		}
	}
	return t
}

// exec runs the convolution. Callers check p.Validate and the slice lengths first.
// Timing: exec thread; parallel over (image, block of 4 output channels); no allocation.
func (t *convTask) exec(x, w, b, y []float32) {
	p := t.p
	t.x, t.w, t.b, t.y = x, w, b, y
	mg := p.M / p.Group
	outSp := p.Out[0] * p.Out[1] * p.Out[2]
	kSp := p.Kernel[0] * p.Kernel[1] * p.Kernel[2]
	nblocks := p.N * p.Group * ((mg + convBlock - 1) / convBlock)
	parallel(t, &t.wg, nblocks, max(1, (1<<16)/max(1, convBlock*outSp*(p.C/p.Group)*kSp)))
	t.x, t.w, t.b, t.y = nil, nil, nil, nil
}

// conv is convTask for one call (tests).
func conv(p *ConvParams, x, w, b, y []float32) { newConvTask(p).exec(x, w, b, y) }

func (t *convTask) run(s *scratch, lo, hi int) {
	const blk = convBlock
	p, x, w, b, y := t.p, t.x, t.w, t.b, t.y
	cg := p.C / p.Group
	mg := p.M / p.Group
	inSp := p.In[0] * p.In[1] * p.In[2]
	outSp := p.Out[0] * p.Out[1] * p.Out[2]
	kSp := p.Kernel[0] * p.Kernel[1] * p.Kernel[2]
	IH, IW := p.In[1], p.In[2]
	OH, OW := p.Out[1], p.Out[2]
	ranges := t.ranges
	blocksPerGroup := (mg + blk - 1) / blk
	all := s.float64s(blk * outSp)
	var acc [blk][]float64
	for j := range acc {
		acc[j] = all[j*outSp : (j+1)*outSp]
	}
	for bi := lo; bi < hi; bi++ {
		n := bi / (p.Group * blocksPerGroup)
		g := bi / blocksPerGroup % p.Group
		m0 := g*mg + bi%blocksPerGroup*blk
		nm := min(blk, g*mg+mg-m0) // channels in this block
		clear(all)
		a0, a1, a2, a3 := acc[0], acc[1], acc[2], acc[3]
		for ic := 0; ic < cg; ic++ {
			xc := x[(n*p.C+g*cg+ic)*inSp:][:inSp]
			var wc [blk][]float32
			for j := range blk {
				if j < nm {
					wc[j] = w[((m0+j)*cg+ic)*kSp:][:kSp]
				}
			}
			for kd := 0; kd < p.Kernel[0]; kd++ {
				dr := ranges[0][kd]
				for kh := 0; kh < p.Kernel[1]; kh++ {
					hr := ranges[1][kh]
					for kw := 0; kw < p.Kernel[2]; kw++ {
						wr := ranges[2][kw]
						if wr.lo >= wr.hi {
							continue
						}
						ki := (kd*p.Kernel[1]+kh)*p.Kernel[2] + kw
						var wv [blk]float64
						for j := range nm {
							wv[j] = float64(wc[j][ki])
						}
						w0, w1, w2, w3 := wv[0], wv[1], wv[2], wv[3]
						cnt := wr.hi - wr.lo
						for od := dr.lo; od < dr.hi; od++ {
							id := od*p.Stride[0] - p.PadBegin[0] + kd*p.Dilation[0]
							for oh := hr.lo; oh < hr.hi; oh++ {
								ih := oh*p.Stride[1] - p.PadBegin[1] + kh*p.Dilation[1]
								xrow := xc[(id*IH+ih)*IW:][:IW]
								o := (od*OH+oh)*OW + wr.lo
								r0, r1, r2, r3 := a0[o:o+cnt], a1[o:o+cnt], a2[o:o+cnt], a3[o:o+cnt]
								iw0 := wr.lo*p.Stride[2] - p.PadBegin[2] + kw*p.Dilation[2]
								if p.Stride[2] == 1 {
									xs := xrow[iw0 : iw0+cnt]
									for i, v := range xs {
										f := float64(v)
										r0[i] += w0 * f
										r1[i] += w1 * f
										r2[i] += w2 * f
										r3[i] += w3 * f
									}
								} else {
									st := p.Stride[2]
									for i, iw := 0, iw0; i < cnt; i, iw = i+1, iw+st {
										f := float64(xrow[iw])
										r0[i] += w0 * f
										r1[i] += w1 * f
										r2[i] += w2 * f
										r3[i] += w3 * f
									}
								}
							}
						}
					}
				}
			}
		}
		for j := range nm {
			m := m0 + j
			bias := 0.0
			if b != nil {
				bias = float64(b[m])
			}
			yc := y[(n*p.M+m)*outSp:][:outSp]
			for i, v := range acc[j] {
				yc[i] = p.Act.apply(float32(v + bias))
			}
		}
	}
}

// convRef is the naive definition, used by tests only.
func convRef(p *ConvParams, x, w, b, y []float32) {
	cg, mg := p.C/p.Group, p.M/p.Group
	for n := 0; n < p.N; n++ {
		for m := 0; m < p.M; m++ {
			g := m / mg
			for od := 0; od < p.Out[0]; od++ {
				for oh := 0; oh < p.Out[1]; oh++ {
					for ow := 0; ow < p.Out[2]; ow++ {
						s := 0.0
						if b != nil {
							s = float64(b[m])
						}
						for ic := 0; ic < cg; ic++ {
							c := g*cg + ic
							for kd := 0; kd < p.Kernel[0]; kd++ {
								for kh := 0; kh < p.Kernel[1]; kh++ {
									for kw := 0; kw < p.Kernel[2]; kw++ {
										id := od*p.Stride[0] - p.PadBegin[0] + kd*p.Dilation[0]
										ih := oh*p.Stride[1] - p.PadBegin[1] + kh*p.Dilation[1]
										iw := ow*p.Stride[2] - p.PadBegin[2] + kw*p.Dilation[2]
										if id < 0 || id >= p.In[0] || ih < 0 || ih >= p.In[1] || iw < 0 || iw >= p.In[2] {
											continue
										}
										xv := x[(((n*p.C+c)*p.In[0]+id)*p.In[1]+ih)*p.In[2]+iw]
										wv := w[(((m*cg+ic)*p.Kernel[0]+kd)*p.Kernel[1]+kh)*p.Kernel[2]+kw]
										s += float64(xv) * float64(wv)
									}
								}
							}
						}
						y[(((n*p.M+m)*p.Out[0]+od)*p.Out[1]+oh)*p.Out[2]+ow] = p.Act.apply(float32(s))
					}
				}
			}
		}
	}
}
