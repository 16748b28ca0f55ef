package cuda

import (
	"fmt"

	"github.com/clockwork-go/clockwork/runtime/cuda/kernels"
)

// Kernel indices, in the order of kernels.Names (a test checks they agree).
const (
	kUnary = iota
	kBinary
	kBiasAct
	kChannelScale
	kConcat
	kSoftmax
	kPool2d
	kGlobalAvgPool
	kNCHWToNHWC
	kNHWCToNCHW
	kF32ToF16
	kF16ToF32
	kSpin
	kNoop
	kAffine
	kGather
	kBinaryBcast
	kBinaryAct
	kDWConv
	kConcatMulti
	numKernels
)

// actOp selects the activation in cw_unary and cw_bias_act (kernels.cu's cw_act).
type actOp int32

const (
	actIdentity actOp = iota
	actReLU
	actClip // clip(a, b)
	actSigmoid
	actTanh
	actHardSigmoid // hardsigmoid(alpha a, beta b)
	actHardSwish
	actLeakyReLU // slope a
	actSiLU
)

// binOp selects cw_binary's operation.
type binOp int32

const (
	binAdd binOp = iota
	binMul
	binSub
	binDiv
	binMax
)

// poolMode selects cw_pool2d's mode.
type poolMode int32

const (
	poolMax poolMode = iota
	poolAvgPad
	poolAvgValid
)

// kernelSet is our module's kernels on one device. Launches go to the stream given; the
// argument scratch is shared, so one thread launches at a time (the exec lane).
type kernelSet struct {
	drv  *driver
	fn   [numKernels]uintptr
	args *kernelArgs
	sms  int
	c    *caller // the exec lane's
}

func newKernelSet(drv *driver, mod uintptr, sms int, c *caller) (*kernelSet, error) {
	if len(kernels.Names) != numKernels {
		panic(fmt.Sprintf("BUG: kernels.Names has %d kernels, runtime/cuda knows %d", len(kernels.Names), numKernels))
	}
	k := &kernelSet{drv: drv, args: newKernelArgs(), sms: max(sms, 1), c: c}
	for i, name := range kernels.Names {
		f, err := drv.moduleFunction(mod, name)
		if err != nil {
			return nil, err
		}
		k.fn[i] = f
	}
	return k, nil
}

const blockSize = 256

// grid returns a grid-stride launch shape for n elements: enough blocks to fill the GPU,
// never more than the work needs.
func (k *kernelSet) grid(n int64) dim3 {
	b := (n + blockSize - 1) / blockSize
	b = min(b, int64(k.sms)*16)
	return dim3{uint32(max(b, 1)), 1, 1}
}

func (k *kernelSet) go1(f int, n int64, s uintptr) error {
	return k.drv.launch(k.c, k.fn[f], k.grid(n), dim3{blockSize, 1, 1}, 0, s, k.args.params())
}

// Timing (every launcher below): exec thread; no allocation; ~5 µs host time per launch.

func (k *kernelSet) unary(s uintptr, op actOp, x, y uint64, n int64, a, b float32) error {
	k.args.reset().u64(x).u64(y).u64(uint64(n)).i32(int32(op)).f32(a).f32(b)
	return k.go1(kUnary, n, s)
}

func (k *kernelSet) binary(s uintptr, op binOp, a, b, y uint64, n int64) error {
	k.args.reset().u64(a).u64(b).u64(y).u64(uint64(n)).i32(int32(op))
	return k.go1(kBinary, n, s)
}

// biasAct computes y = act(x + bias[c]) over NCHW; bias 0 skips the add.
func (k *kernelSet) biasAct(s uintptr, x, bias, y uint64, n int64, c int, hw int64, op actOp, a, b float32) error {
	k.args.reset().u64(x).u64(bias).u64(y).u64(uint64(n)).i32(int32(c)).u64(uint64(hw)).i32(int32(op)).f32(a).f32(b)
	return k.go1(kBiasAct, n, s)
}

func (k *kernelSet) channelScale(s uintptr, x, sc, y uint64, n, hw int64) error {
	k.args.reset().u64(x).u64(sc).u64(y).u64(uint64(n)).u64(uint64(hw))
	return k.go1(kChannelScale, n, s)
}

func (k *kernelSet) concat(s uintptr, x, y uint64, outer, inner, yInner, off int64) error {
	k.args.reset().u64(x).u64(y).u64(uint64(outer)).u64(uint64(inner)).u64(uint64(yInner)).u64(uint64(off))
	return k.go1(kConcat, outer*inner, s)
}

func (k *kernelSet) softmax(s uintptr, x, y uint64, rows, cols int) error {
	threads := uint32(32)
	for int(threads) < cols && threads < 1024 {
		threads *= 2
	}
	k.args.reset().u64(x).u64(y).i32(int32(rows)).i32(int32(cols))
	return k.drv.launch(k.c, k.fn[kSoftmax], dim3{uint32(rows), 1, 1}, dim3{threads, 1, 1}, 0, s, k.args.params())
}

func (k *kernelSet) pool2d(s uintptr, mode poolMode, x, y uint64, nc, h, w, oh, ow, kh, kw, sh, sw, ph, pw int) error {
	k.args.reset().u64(x).u64(y)
	for _, v := range [...]int{nc, h, w, oh, ow, kh, kw, sh, sw, ph, pw} {
		k.args.i32(int32(v))
	}
	k.args.i32(int32(mode))
	return k.go1(kPool2d, int64(nc)*int64(oh)*int64(ow), s)
}

func (k *kernelSet) globalAvgPool(s uintptr, x, y uint64, nc, hw int) error {
	k.args.reset().u64(x).u64(y).i32(int32(nc)).i32(int32(hw))
	blocks := (nc*32 + blockSize - 1) / blockSize
	return k.drv.launch(k.c, k.fn[kGlobalAvgPool], dim3{uint32(max(blocks, 1)), 1, 1}, dim3{blockSize, 1, 1}, 0, s, k.args.params())
}

func (k *kernelSet) layout(s uintptr, toNHWC bool, x, y uint64, n, c int, hw int64) error {
	f := kNHWCToNCHW
	if toNHWC {
		f = kNCHWToNHWC
	}
	k.args.reset().u64(x).u64(y).i32(int32(n)).i32(int32(c)).u64(uint64(hw))
	return k.go1(f, int64(n)*int64(c)*hw, s)
}

func (k *kernelSet) convert(s uintptr, toHalf bool, x, y uint64, n int64) error {
	f := kF16ToF32
	if toHalf {
		f = kF32ToF16
	}
	k.args.reset().u64(x).u64(y).u64(uint64(n))
	return k.go1(f, n, s)
}

// spin occupies every SM for about ns nanoseconds (one block of 128 threads per SM).
func (k *kernelSet) spin(s uintptr, ns int64) error {
	k.args.reset().u64(uint64(ns))
	return k.drv.launch(k.c, k.fn[kSpin], dim3{uint32(k.sms), 1, 1}, dim3{128, 1, 1}, 0, s, k.args.params())
}

func (k *kernelSet) noop(s uintptr) error {
	k.args.reset()
	return k.drv.launch(k.c, k.fn[kNoop], dim3{1, 1, 1}, dim3{1, 1, 1}, 0, s, k.args.params())
}
