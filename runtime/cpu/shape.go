package cpu

import "fmt"

// Data-movement kernels are generic over the element type: the same code moves float32
// activations and the int64/bool/uint8 tensors of shape computations.

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

func stridesOf(shape []int) []int {
	st := make([]int, len(shape))
	acc := 1
	for i := len(shape) - 1; i >= 0; i-- {
		st[i] = acc
		acc *= shape[i]
	}
	return st
}

// transposePlan holds what transpose needs beyond the data, computed once.
type transposePlan struct {
	out, st, idx []int // output shape, x stride per output dim, odometer
}

func newTransposePlan(shape, perm []int) *transposePlan {
	xs := stridesOf(shape)
	p := &transposePlan{out: make([]int, len(shape)), st: make([]int, len(shape)), idx: make([]int, len(shape))}
	for i, q := range perm {
		p.out[i] = shape[q]
		p.st[i] = xs[q]
	}
	return p
}

// transpose writes y = x.transpose(perm): y's dim i is x's dim perm[i].
func transpose[T any](shape, perm []int, x, y []T) {
	transposeWith(newTransposePlan(shape, perm), x, y)
}

// transposeWith runs a planned transpose.
// Timing: exec thread; single goroutine; no allocation.
func transposeWith[T any](p *transposePlan, x, y []T) {
	n := len(p.out)
	if n == 0 {
		copy(y, x)
		return
	}
	out, st, idx := p.out, p.st, p.idx
	clear(idx)
	inner, innerSt := out[n-1], st[n-1]
	total := numel(out)
	if total == 0 {
		return
	}
	o, off := 0, 0
	for o < total {
		for k, j := 0, off; k < inner; k, j = k+1, j+innerSt {
			y[o+k] = x[j]
		}
		o += inner
		for d := n - 2; d >= 0; d-- {
			idx[d]++
			off += st[d]
			if idx[d] < out[d] {
				break
			}
			off -= st[d] * out[d]
			idx[d] = 0
		}
	}
}

// concat joins parts along axis; shapes[i] is part i's shape, equal except along axis.
func concat[T any](axis int, shapes [][]int, parts [][]T, y []T) {
	outer := numel(shapes[0][:axis])
	tot := 0
	for _, s := range shapes {
		tot += numel(s[axis:])
	}
	for o := 0; o < outer; o++ {
		off := o * tot
		for i, s := range shapes {
			blk := numel(s[axis:])
			copy(y[off:off+blk], parts[i][o*blk:(o+1)*blk])
			off += blk
		}
	}
}

// PadMode is ONNX Pad's mode attribute.
type PadMode uint8

const (
	PadConstant PadMode = iota
	PadReflect
	PadEdge
)

// padPlan holds what pad needs beyond the data, computed once.
type padPlan struct {
	in, begin, out, xs, idx []int
	mode                    PadMode
}

func newPadPlan(in, begin, end []int, mode PadMode) *padPlan {
	p := &padPlan{in: in, begin: begin, out: make([]int, len(in)), xs: stridesOf(in), idx: make([]int, len(in)), mode: mode}
	for i := range in {
		p.out[i] = in[i] + begin[i] + end[i]
	}
	return p
}

// pad writes x (shape in) padded by begin/end per dim into y. Pads must not be negative
// (callers crop with slice). Reflect needs every padded dim's size ≥ 2 (checked by the
// caller); edge needs it ≥ 1.
func pad[T any](in, begin, end []int, mode PadMode, value T, x, y []T) {
	padWith(newPadPlan(in, begin, end, mode), value, x, y)
}

// padWith runs a planned pad.
// Timing: exec thread; single goroutine; no allocation.
func padWith[T any](p *padPlan, value T, x, y []T) {
	n := len(p.in)
	in, out, idx := p.in, p.out, p.idx
	for o := range numel(out) {
		r := o
		for d := n - 1; d >= 0; d-- {
			idx[d] = r % out[d]
			r /= out[d]
		}
		off, inside := 0, true
		for d := range n {
			i := idx[d] - p.begin[d]
			if i < 0 || i >= in[d] {
				switch p.mode {
				case PadConstant:
					inside = false
				case PadEdge:
					i = min(max(i, 0), in[d]-1)
				case PadReflect:
					period := 2 * (in[d] - 1)
					if period == 0 {
						i = 0
						break
					}
					i %= period
					if i < 0 {
						i += period
					}
					if i >= in[d] {
						i = period - i
					}
				}
			}
			if !inside {
				break
			}
			off += i * p.xs[d]
		}
		if inside {
			y[o] = x[off]
		} else {
			y[o] = value
		}
	}
}

// SliceDim is one dim of a resolved Slice: start index, step and count of elements taken.
type SliceDim struct{ Start, Step, Count int }

// slicePlan holds what slice needs beyond the data, computed once.
type slicePlan struct {
	dims         []SliceDim
	xs, out, idx []int
}

func newSlicePlan(in []int, dims []SliceDim) *slicePlan {
	p := &slicePlan{dims: dims, xs: stridesOf(in), out: make([]int, len(in)), idx: make([]int, len(in))}
	for i, d := range dims {
		p.out[i] = d.Count
	}
	return p
}

// slice writes the strided sub-tensor of x (shape in) selected by dims into y.
func slice[T any](in []int, dims []SliceDim, x, y []T) { sliceWith(newSlicePlan(in, dims), x, y) }

// sliceWith runs a planned slice.
// Timing: exec thread; single goroutine; no allocation.
func sliceWith[T any](p *slicePlan, x, y []T) {
	n := len(p.out)
	for o := range numel(p.out) {
		r := o
		off := 0
		for d := n - 1; d >= 0; d-- {
			p.idx[d] = r % p.out[d]
			r /= p.out[d]
			off += (p.dims[d].Start + p.idx[d]*p.dims[d].Step) * p.xs[d]
		}
		y[o] = x[off]
	}
}

// resolveSlice turns ONNX Slice start/end/step for a dim of size n into a SliceDim, clamping
// like numpy.
func resolveSlice(n int, start, end, step int64) (SliceDim, error) {
	if step == 0 {
		return SliceDim{}, fmt.Errorf("slice step is 0")
	}
	N := int64(n)
	if start < 0 {
		start += N
	}
	if end < 0 {
		end += N
	}
	var count int64
	if step > 0 {
		start = min(max(start, 0), N)
		end = min(max(end, 0), N)
		if end > start {
			count = (end - start + step - 1) / step
		}
	} else {
		start = min(max(start, -1), N-1)
		end = min(max(end, -1), N-1)
		if start > end {
			count = (start - end - step - 1) / -step
		}
	}
	return SliceDim{Start: int(start), Step: int(step), Count: int(count)}, nil
}

// gather takes x (shape in) along axis at idx (already made non-negative and checked) into y.
func gather[T any](in []int, axis int, idx []int, x, y []T) {
	outer := numel(in[:axis])
	inner := numel(in[axis+1:])
	o := 0
	for a := 0; a < outer; a++ {
		base := a * in[axis] * inner
		for _, i := range idx {
			copy(y[o:o+inner], x[base+i*inner:base+(i+1)*inner])
			o += inner
		}
	}
}
