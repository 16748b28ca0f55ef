package cpu

import (
	"encoding/binary"
	"fmt"
	"math"
)

// DType is an element type, numbered as ONNX TensorProto.DataType.
type DType int32

const (
	Float32  DType = 1
	Uint8    DType = 2
	Int8     DType = 3
	Uint16   DType = 4
	Int16    DType = 5
	Int32    DType = 6
	Int64    DType = 7
	String   DType = 8
	Bool     DType = 9
	Float16  DType = 10
	Float64  DType = 11
	Uint32   DType = 12
	Uint64   DType = 13
	BFloat16 DType = 16
)

var dtypeNames = map[DType]string{Float32: "float32", Uint8: "uint8", Int8: "int8", Uint16: "uint16",
	Int16: "int16", Int32: "int32", Int64: "int64", String: "string", Bool: "bool", Float16: "float16",
	Float64: "float64", Uint32: "uint32", Uint64: "uint64", BFloat16: "bfloat16"}

func (d DType) String() string {
	if s, ok := dtypeNames[d]; ok {
		return s
	}
	return fmt.Sprintf("dtype(%d)", int32(d))
}

// Size is the element size in bytes, 0 for types the backend cannot hold (string, unknown).
func (d DType) Size() int {
	switch d {
	case Uint8, Int8, Bool:
		return 1
	case Uint16, Int16, Float16, BFloat16:
		return 2
	case Float32, Int32, Uint32:
		return 4
	case Int64, Float64, Uint64:
		return 8
	}
	return 0
}

// Type is a tensor's element type and shape.
type Type struct {
	DType DType
	Shape []int
}

func (t Type) String() string { return fmt.Sprintf("%v%v", t.DType, t.Shape) }

// Len is the element count; Bytes the byte size.
func (t Type) Len() int   { return numel(t.Shape) }
func (t Type) Bytes() int { return t.Len() * t.DType.Size() }

// Tensor is a typed view of bytes in host memory. Data is little-endian (the only byte order
// this backend runs on) and 8-byte aligned.
type Tensor struct {
	Type
	Data []byte
}

// NewTensor allocates a zeroed tensor.
func NewTensor(dt DType, shape ...int) *Tensor {
	t := &Tensor{Type: Type{DType: dt, Shape: append([]int{}, shape...)}}
	t.Data = alignedBytes(t.Bytes())
	return t
}

// alignedBytes returns n zero bytes, 8-byte aligned.
func alignedBytes(n int) []byte {
	return bytesOf(make([]uint64, (n+7)/8))[:n]
}

// F32 and I64 view the data as float32 and int64.
func (t *Tensor) F32() []float32 { return view[float32](t.Data) }
func (t *Tensor) I64() []int64   { return view[int64](t.Data) }

// Ints returns an integer tensor's values as ints (for shapes, axes, indices).
func (t *Tensor) Ints() ([]int64, error) {
	out := make([]int64, t.Len())
	switch t.DType {
	case Int64:
		copy(out, t.I64())
	case Int32:
		for i, v := range view[int32](t.Data) {
			out[i] = int64(v)
		}
	default:
		return nil, fmt.Errorf("want an int32 or int64 tensor, got %v", t.Type)
	}
	return out, nil
}

// Float64s returns the elements of any numeric tensor as float64.
func (t *Tensor) Float64s() ([]float64, error) {
	n := t.Len()
	out := make([]float64, n)
	b := t.Data
	switch t.DType {
	case Float32:
		for i, v := range t.F32() {
			out[i] = float64(v)
		}
	case Float64:
		copy(out, view[float64](b))
	case Int64:
		for i, v := range t.I64() {
			out[i] = float64(v)
		}
	case Int32:
		for i, v := range view[int32](b) {
			out[i] = float64(v)
		}
	case Int16:
		for i, v := range view[int16](b) {
			out[i] = float64(v)
		}
	case Int8:
		for i, v := range view[int8](b) {
			out[i] = float64(v)
		}
	case Uint8, Bool:
		for i, v := range b[:n] {
			out[i] = float64(v)
		}
	case Uint16:
		for i, v := range view[uint16](b) {
			out[i] = float64(v)
		}
	case Uint32:
		for i, v := range view[uint32](b) {
			out[i] = float64(v)
		}
	case Uint64:
		for i, v := range view[uint64](b) {
			out[i] = float64(v)
		}
	case Float16:
		for i := range n {
			out[i] = float64(f16ToF32(binary.LittleEndian.Uint16(b[2*i:])))
		}
	case BFloat16:
		for i := range n {
			out[i] = float64(math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16))
		}
	default:
		return nil, fmt.Errorf("cannot read %v as numbers", t.DType)
	}
	return out, nil
}

// setFloat64s stores vals into t converted to t's element type: floats rounded to nearest
// even, integers truncated toward zero and wrapped like C casts, bool as v != 0.
func (t *Tensor) setFloat64s(vals []float64) error {
	b := t.Data
	switch t.DType {
	case Float32:
		s := t.F32()
		for i, v := range vals {
			s[i] = float32(v)
		}
	case Float64:
		copy(view[float64](b), vals)
	case Int64:
		s := t.I64()
		for i, v := range vals {
			s[i] = int64(v)
		}
	case Int32:
		s := view[int32](b)
		for i, v := range vals {
			s[i] = int32(int64(v))
		}
	case Int16:
		s := view[int16](b)
		for i, v := range vals {
			s[i] = int16(int64(v))
		}
	case Int8:
		s := view[int8](b)
		for i, v := range vals {
			s[i] = int8(int64(v))
		}
	case Uint8:
		for i, v := range vals {
			b[i] = uint8(int64(v))
		}
	case Bool:
		for i, v := range vals {
			b[i] = 0
			if v != 0 {
				b[i] = 1
			}
		}
	case Uint16:
		s := view[uint16](b)
		for i, v := range vals {
			s[i] = uint16(int64(v))
		}
	case Uint32:
		s := view[uint32](b)
		for i, v := range vals {
			s[i] = uint32(int64(v))
		}
	case Uint64:
		s := view[uint64](b)
		for i, v := range vals {
			s[i] = uint64(v)
		}
	case Float16:
		for i, v := range vals {
			binary.LittleEndian.PutUint16(b[2*i:], f32ToF16(float32(v)))
		}
	case BFloat16:
		for i, v := range vals {
			binary.LittleEndian.PutUint16(b[2*i:], f32ToBF16(float32(v)))
		}
	default:
		return fmt.Errorf("cannot store numbers as %v", t.DType)
	}
	return nil
}

// f16ToF32 converts IEEE half precision bits to float32 (exact).
func f16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	man := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | man<<13)
	case exp == 0:
		if man == 0 {
			return math.Float32frombits(sign)
		}
		v := float32(man) / (1 << 24) // subnormal: man · 2^-24
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+112)<<23 | man<<13)
}

// f32ToF16 rounds float32 to IEEE half precision, to nearest even, like numpy.
func f32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	man := b & 0x7fffff
	if exp == 0xff {
		if man != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign
		}
		m := man | 0x800000
		shift := uint(14 - e)
		h := m >> shift
		rem := m & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || rem == half && h&1 == 1 {
			h++
		}
		return sign | uint16(h)
	}
	h := uint32(e)<<10 | man>>13
	rem := man & 0x1fff
	if rem > 0x1000 || rem == 0x1000 && h&1 == 1 {
		h++ // may carry into the exponent, which is correct (up to infinity)
	}
	return sign | uint16(h)
}

// f32ToBF16 rounds float32 to bfloat16, to nearest even; NaN stays NaN.
func f32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if f != f {
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// setHalfFromFloat64 stores float64 values as float16 or bfloat16, rounded once from the
// float64 value (through float32 rounded to odd).
func (t *Tensor) setHalfFromFloat64(vals []float64) error {
	for i, v := range vals {
		f := float32(v)
		if float64(f) != v && !math.IsNaN(v) {
			// round to odd: truncate toward zero and set the last bit, so the second rounding
			// (to 16 bits) gives the same result as rounding v directly
			b := math.Float32bits(f)
			if math.Abs(float64(f)) > math.Abs(v) {
				b--
			}
			f = math.Float32frombits(b | 1)
		}
		h := f32ToF16(f)
		if t.DType == BFloat16 {
			h = f32ToBF16(f)
		}
		binary.LittleEndian.PutUint16(t.Data[2*i:], h)
	}
	return nil
}
