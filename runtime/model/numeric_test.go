package model

import (
	"math"
	"testing"
)

// conv2d is a naive NCHW convolution (group 1, square stride 1, symmetric pad) for checking the
// BatchNormalization fold numerically.
func conv2d(x []float32, n, c, h, w int, wt, bias []float32, m, k, pad int) []float32 {
	oh, ow := h+2*pad-k+1, w+2*pad-k+1
	out := make([]float32, n*m*oh*ow)
	for b := range n {
		for o := range m {
			for i := range oh {
				for j := range ow {
					s := 0.0
					if bias != nil {
						s = float64(bias[o])
					}
					for ci := range c {
						for ki := range k {
							for kj := range k {
								y, z := i+ki-pad, j+kj-pad
								if y >= 0 && y < h && z >= 0 && z < w {
									s += float64(x[((b*c+ci)*h+y)*w+z]) * float64(wt[((o*c+ci)*k+ki)*k+kj])
								}
							}
						}
					}
					out[((b*m+o)*oh+i)*ow+j] = float32(s)
				}
			}
		}
	}
	return out
}

// TestBatchNormFoldNumeric checks that the folded Conv computes what Conv followed by
// BatchNormalization does, within float32 rounding.
func TestBatchNormFoldNumeric(t *testing.T) {
	g, err := Parse("tiny", tinyCNN().bytes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	o, err := Optimize(g)
	if err != nil {
		t.Fatal(err)
	}
	x := seq(2*3*8*8, 0.37)
	orig := &g.Nodes[0]
	if orig.Op != "Conv" || g.Nodes[1].Op != "BatchNormalization" {
		t.Fatalf("unexpected model %v", g)
	}
	c1 := conv2d(x, 2, 3, 8, 8, g.Const(orig.Inputs[1]).F, g.Const(orig.Inputs[2]).F, 4, 3, 1)
	bn := &g.Nodes[1]
	s, b, m, v := g.Const(bn.Inputs[1]).F, g.Const(bn.Inputs[2]).F, g.Const(bn.Inputs[3]).F, g.Const(bn.Inputs[4]).F
	for i := range c1 {
		ch := i / 64 % 4
		c1[i] = float32(float64(s[ch])*(float64(c1[i])-float64(m[ch]))/math.Sqrt(float64(v[ch])+1e-5) + float64(b[ch]))
	}
	fc := &o.Nodes[0]
	if fc.Op != "Conv" || fc.AttrString(FusedActivation, "") != "Relu" || len(fc.Inputs) != 3 {
		t.Fatalf("fused node %+v", fc)
	}
	got := conv2d(x, 2, 3, 8, 8, o.Const(fc.Inputs[1]).F, o.Const(fc.Inputs[2]).F, 4, 3, 1)
	for i := range got {
		if d := math.Abs(float64(got[i] - c1[i])); d > 1e-5*(1+math.Abs(float64(c1[i]))) {
			t.Fatalf("element %d: folded %v, conv+bn %v", i, got[i], c1[i])
		}
	}
}
