package cpu

import (
	"fmt"
	"math"
)

// number is every element type the arithmetic kernels accept.
type number interface {
	~float32 | ~float64 | ~int8 | ~int16 | ~int32 | ~int64 | ~uint8 | ~uint16 | ~uint32 | ~uint64
}

// UnaryOp names an elementwise function of one tensor.
type UnaryOp uint8

const (
	OpRelu UnaryOp = iota
	OpSigmoid
	OpHardSigmoid // alpha*x + beta, clipped to [0, 1]
	OpHardSwish   // x * HardSigmoid(x) with alpha = 1/6, beta = 0.5
	OpSqrt
	OpErf
	OpClip // clipped to [alpha, beta]
	OpNeg
	OpAbs
	OpExp
)

// unary applies op elementwise from x to y (which may alias). Transcendental functions are
// evaluated in float64 and rounded once, so the float32 result is correctly rounded in nearly
// all cases.
// Timing: exec thread; parallel over elements.
func unary(op UnaryOp, alpha, beta float32, x, y []float32) {
	runOnce(unaryRange, unaryArgs{op, alpha, beta, x, y}, len(x), unaryGrain)
}

const unaryGrain = 1 << 14

type unaryArgs struct {
	op          UnaryOp
	alpha, beta float32
	x, y        []float32
}

func unaryRange(u *unaryArgs, _ *scratch, lo, hi int) {
	op, alpha, beta := u.op, u.alpha, u.beta
	a, b := float64(alpha), float64(beta)
	{
		xs, ys := u.x[lo:hi], u.y[lo:hi]
		switch op {
		case OpRelu:
			for i, v := range xs {
				if v < 0 {
					v = 0
				}
				ys[i] = v
			}
		case OpSigmoid:
			for i, v := range xs {
				ys[i] = float32(sigmoid64(float64(v)))
			}
		case OpHardSigmoid:
			for i, v := range xs {
				ys[i] = float32(math.Max(0, math.Min(1, a*float64(v)+b)))
			}
		case OpHardSwish:
			for i, v := range xs {
				ys[i] = float32(float64(v) * math.Max(0, math.Min(1, float64(v)/6+0.5)))
			}
		case OpSqrt:
			for i, v := range xs {
				ys[i] = float32(math.Sqrt(float64(v)))
			}
		case OpErf:
			for i, v := range xs {
				ys[i] = float32(math.Erf(float64(v)))
			}
		case OpClip:
			for i, v := range xs {
				if v < alpha {
					v = alpha
				}
				if v > beta {
					v = beta
				}
				ys[i] = v
			}
		case OpNeg:
			for i, v := range xs {
				ys[i] = -v
			}
		case OpAbs:
			for i, v := range xs {
				ys[i] = float32(math.Abs(float64(v)))
			}
		case OpExp:
			for i, v := range xs {
				ys[i] = float32(math.Exp(float64(v)))
			}
		}
	}
}

func sigmoid64(v float64) float64 {
	if v >= 0 {
		return 1 / (1 + math.Exp(-v))
	}
	e := math.Exp(v)
	return e / (1 + e)
}

// BinaryOp names an elementwise function of two tensors with numpy broadcasting.
type BinaryOp uint8

const (
	OpAdd BinaryOp = iota
	OpSub
	OpMul
	OpDiv
	OpPow
)

var binaryNames = [...]string{"Add", "Sub", "Mul", "Div", "Pow"}

func (o BinaryOp) String() string {
	if int(o) < len(binaryNames) {
		return binaryNames[o]
	}
	return fmt.Sprintf("BinaryOp(%d)", uint8(o))
}

// broadcastShape returns the numpy broadcast of shapes a and b.
func broadcastShape(a, b []int) ([]int, error) {
	n := max(len(a), len(b))
	out := make([]int, n)
	for i := range n {
		da, db := 1, 1
		if j := len(a) - n + i; j >= 0 {
			da = a[j]
		}
		if j := len(b) - n + i; j >= 0 {
			db = b[j]
		}
		switch {
		case da == db:
			out[i] = da
		case da == 1:
			out[i] = db
		case db == 1:
			out[i] = da
		default:
			return nil, fmt.Errorf("cannot broadcast shapes %v and %v: dim %d is %d vs %d", a, b, i, da, db)
		}
	}
	return out, nil
}

// broadcastStrides returns the element strides of a tensor of shape s read as shape out
// (0 along broadcast dims). out must be a broadcast of s.
func broadcastStrides(s, out []int) []int {
	st := make([]int, len(out))
	acc := 1
	for i := len(s) - 1; i >= 0; i-- {
		j := len(out) - len(s) + i
		if s[i] != 1 {
			st[j] = acc
		}
		acc *= s[i]
	}
	return st
}

// Broadcast is a precomputed broadcast loop: out shape with the strides of both operands,
// with trailing dims merged where possible so the inner loop is long.
type Broadcast struct {
	Out        []int
	SA, SB     []int
	Len        int
	InnerA     int // stride of a in the innermost dim (0 or 1 after merging)
	InnerB     int
	InnerCount int
	outer      []int
}

// newBroadcast plans y = f(a, b) for shapes a and b.
func newBroadcast(a, b []int) (*Broadcast, error) {
	out, err := broadcastShape(a, b)
	if err != nil {
		return nil, err
	}
	sa, sb := broadcastStrides(a, out), broadcastStrides(b, out)
	// merge adjacent dims i-1, i when both operands are contiguous across them
	var mo, ma, mb []int
	for i := range out {
		if len(mo) > 0 {
			k := len(mo) - 1
			if sa[i]*out[i] == ma[k] && sb[i]*out[i] == mb[k] || out[i] == 1 {
				if out[i] != 1 {
					mo[k] *= out[i]
					ma[k], mb[k] = sa[i], sb[i]
				}
				continue
			}
		}
		mo, ma, mb = append(mo, out[i]), append(ma, sa[i]), append(mb, sb[i])
	}
	n := 1
	for _, d := range out {
		n *= d
	}
	p := &Broadcast{Out: out, Len: n}
	if len(mo) == 0 {
		mo, ma, mb = []int{1}, []int{0}, []int{0}
	}
	k := len(mo) - 1
	p.InnerCount, p.InnerA, p.InnerB = mo[k], ma[k], mb[k]
	p.SA, p.SB = ma[:k], mb[:k]
	p.Out = out
	outer := mo[:k]
	p.outer = outer
	return p, nil
}

type binaryArgs[T number] struct {
	op      BinaryOp
	p       *Broadcast
	a, b, y []T
}

func (p *Broadcast) rows() int {
	rows := 1
	for _, d := range p.outer {
		rows *= d
	}
	return rows
}

func (p *Broadcast) grain() int { return max(1, (1<<14)/max(1, p.InnerCount)) }

// binaryT computes y = a op b elementwise over the planned broadcast, for any element type.
// Integer Div truncates toward zero; Pow is evaluated in float64 and converted back.
// Timing: exec thread; parallel over outer rows.
func binaryT[T number](op BinaryOp, p *Broadcast, a, b, y []T) {
	runOnce(binaryRange[T], binaryArgs[T]{op, p, a, b, y}, p.rows(), p.grain())
}

func binaryRange[T number](args *binaryArgs[T], s *scratch, lo, hi int) {
	p, a, b, y := args.p, args.a, args.b, args.y
	n := p.InnerCount
	idx := s.ints(len(p.outer))
	for r := lo; r < hi; r++ {
		// decode r into the outer index
		oa, ob, rr := 0, 0, r
		for d := len(p.outer) - 1; d >= 0; d-- {
			idx[d] = rr % p.outer[d]
			rr /= p.outer[d]
			oa += idx[d] * p.SA[d]
			ob += idx[d] * p.SB[d]
		}
		binaryRow(args.op, y[r*n:][:n], a[oa:], b[ob:], p.InnerA, p.InnerB)
	}
}

func binaryRow[T number](op BinaryOp, y, a, b []T, sa, sb int) {
	n := len(y)
	switch {
	case sa == 1 && sb == 1:
		a, b = a[:n], b[:n]
		switch op {
		case OpAdd:
			for i := range y {
				y[i] = a[i] + b[i]
			}
		case OpSub:
			for i := range y {
				y[i] = a[i] - b[i]
			}
		case OpMul:
			for i := range y {
				y[i] = a[i] * b[i]
			}
		default:
			for i := range y {
				y[i] = apply(op, a[i], b[i])
			}
		}
	case sa == 1 && sb == 0:
		a, bv := a[:n], b[0]
		switch op {
		case OpAdd:
			for i := range y {
				y[i] = a[i] + bv
			}
		case OpMul:
			for i := range y {
				y[i] = a[i] * bv
			}
		default:
			for i := range y {
				y[i] = apply(op, a[i], bv)
			}
		}
	default:
		for i, ia, ib := 0, 0, 0; i < n; i, ia, ib = i+1, ia+sa, ib+sb {
			y[i] = apply(op, a[ia], b[ib])
		}
	}
}

func apply[T number](op BinaryOp, a, b T) T {
	switch op {
	case OpAdd:
		return a + b
	case OpSub:
		return a - b
	case OpMul:
		return a * b
	case OpDiv:
		var zero T
		if b == zero && !isFloat(a) {
			return zero // integer division by zero: defined as 0 here instead of a panic
		}
		return a / b
	case OpPow:
		return T(math.Pow(float64(a), float64(b)))
	}
	return a
}

func isFloat[T number](T) bool {
	var x T = 1
	x /= 2
	return x != 0
}
