package cuda

// cuDNN 9 bindings (the legacy descriptor API that cuDNN 9 keeps): tensor and filter
// descriptors, convolution forward with an algorithm fixed at prepare time, pooling and
// activations. Unsafe for the same reason as driver.go.

import (
	"fmt"
	"unsafe"

	"github.com/ebitengine/purego"
)

// cuDNN constants (cudnn_graph.h / cudnn_ops.h / cudnn_cnn.h of cuDNN 9).
const (
	dnnFloat = 0
	dnnHalf  = 2

	dnnNCHW = 0

	dnnCrossCorrelation = 1

	dnnDefaultMath  = 0
	dnnTensorOpMath = 1
	dnnFMAMath      = 3

	dnnNotPropagateNaN = 0
)

// PoolMode is a cuDNN pooling mode.
type PoolMode int

const (
	PoolMax        PoolMode = 0 // CUDNN_POOLING_MAX
	PoolAvgPad     PoolMode = 1 // average, padding counted (CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING)
	PoolAvgNoPad   PoolMode = 2 // average over valid inputs only
	PoolMaxDetermn PoolMode = 3 // CUDNN_POOLING_MAX_DETERMINISTIC
)

// ActMode is a cuDNN activation mode.
type ActMode int

const (
	ActSigmoid ActMode = 0
	ActReLU    ActMode = 1
	ActTanh    ActMode = 2
	ActClipped ActMode = 3 // min(max(x, 0), coef)
	ActELU     ActMode = 4
)

type dnnLib struct {
	lib                                            *lib
	create, destroy, setStream, version, errString uintptr
	tensorCreate, tensorSet4d, tensorDestroy       uintptr
	filterCreate, filterSet4d, filterDestroy       uintptr
	convCreate, convSet2d, convSetMath, convGroups uintptr
	convDestroy, convOutDim, convAlgoV7, convWs    uintptr
	convFwd                                        uintptr
	poolCreate, poolSet2d, poolDestroy, poolFwd    uintptr
	actCreate, actDestroy, actFwd, addTensor       uintptr
	convBiasAct                                    uintptr // cudnnConvolutionBiasActivationForward
	// setActivation takes a double, which SyscallN cannot pass; RegisterFunc can.
	setActivation func(desc uintptr, mode, nanOpt int32, coef float64) int32
}

func loadDNN(cfg Config) (*dnnLib, error) {
	l, err := openLib("cuDNN 9 (libcudnn)", cfg.CUDNNLib, "libcudnn.so.9")
	if err != nil {
		return nil, err
	}
	d := &dnnLib{lib: l}
	var setAct uintptr
	err = l.symbols(map[string]*uintptr{
		"cudnnCreate":                             &d.create,
		"cudnnDestroy":                            &d.destroy,
		"cudnnSetStream":                          &d.setStream,
		"cudnnGetVersion":                         &d.version,
		"cudnnGetErrorString":                     &d.errString,
		"cudnnCreateTensorDescriptor":             &d.tensorCreate,
		"cudnnSetTensor4dDescriptor":              &d.tensorSet4d,
		"cudnnDestroyTensorDescriptor":            &d.tensorDestroy,
		"cudnnCreateFilterDescriptor":             &d.filterCreate,
		"cudnnSetFilter4dDescriptor":              &d.filterSet4d,
		"cudnnDestroyFilterDescriptor":            &d.filterDestroy,
		"cudnnCreateConvolutionDescriptor":        &d.convCreate,
		"cudnnSetConvolution2dDescriptor":         &d.convSet2d,
		"cudnnSetConvolutionMathType":             &d.convSetMath,
		"cudnnSetConvolutionGroupCount":           &d.convGroups,
		"cudnnDestroyConvolutionDescriptor":       &d.convDestroy,
		"cudnnGetConvolution2dForwardOutputDim":   &d.convOutDim,
		"cudnnGetConvolutionForwardAlgorithm_v7":  &d.convAlgoV7,
		"cudnnGetConvolutionForwardWorkspaceSize": &d.convWs,
		"cudnnConvolutionForward":                 &d.convFwd,
		"cudnnCreatePoolingDescriptor":            &d.poolCreate,
		"cudnnSetPooling2dDescriptor":             &d.poolSet2d,
		"cudnnDestroyPoolingDescriptor":           &d.poolDestroy,
		"cudnnPoolingForward":                     &d.poolFwd,
		"cudnnCreateActivationDescriptor":         &d.actCreate,
		"cudnnSetActivationDescriptor":            &setAct,
		"cudnnDestroyActivationDescriptor":        &d.actDestroy,
		"cudnnActivationForward":                  &d.actFwd,
		"cudnnAddTensor":                          &d.addTensor,
		"cudnnConvolutionBiasActivationForward":   &d.convBiasAct,
	})
	if err != nil {
		return nil, err
	}
	purego.RegisterFunc(&d.setActivation, setAct)
	return d, nil
}

// Version is cudnnGetVersion, e.g. 91400 for 9.14.0.
func (d *dnnLib) Version() int { return int(call(d.version)) }

func (d *dnnLib) check(fn string, r uintptr) error {
	if int32(r) == 0 {
		return nil
	}
	return fmt.Errorf("%s: %s (%d)", fn, goString(call(d.errString, r)), int32(r))
}

// dnnHandle is a cuDNN handle bound to one stream; owned by one lane.
type dnnHandle struct {
	lib       *dnnLib
	h         uintptr
	one, zero *float32 // alpha/beta for float tensors (cuDNN also reads float for half)
	c         *caller  // the owning lane's
}

func newDNN(l *dnnLib, c *caller, stream uintptr) (*dnnHandle, error) {
	h := &dnnHandle{lib: l, one: new(float32), zero: new(float32), c: c}
	*h.one = 1
	if err := l.check("cudnnCreate", call(l.create, uintptr(unsafe.Pointer(&h.h)))); err != nil {
		return nil, err
	}
	if err := l.check("cudnnSetStream", call(l.setStream, h.h, stream)); err != nil {
		h.close()
		return nil, err
	}
	return h, nil
}

func (h *dnnHandle) close() error {
	if h.h == 0 {
		return nil
	}
	err := h.lib.check("cudnnDestroy", call(h.lib.destroy, h.h))
	h.h = 0
	return err
}

// tensor4d creates an NCHW tensor descriptor.
func (h *dnnHandle) tensor4d(p Precision, n, c, hh, w int) (uintptr, error) {
	var t uintptr
	if err := h.lib.check("cudnnCreateTensorDescriptor", call(h.lib.tensorCreate, uintptr(unsafe.Pointer(&t)))); err != nil {
		return 0, err
	}
	if err := h.lib.check("cudnnSetTensor4dDescriptor", call(h.lib.tensorSet4d, t, dnnNCHW, dnnType(p), uintptr(n), uintptr(c), uintptr(hh), uintptr(w))); err != nil {
		call(h.lib.tensorDestroy, t)
		return 0, fmt.Errorf("tensor %dx%dx%dx%d: %w", n, c, hh, w, err)
	}
	return t, nil
}

func dnnType(p Precision) uintptr {
	if p == FP16 {
		return dnnHalf
	}
	return dnnFloat
}

// ConvShape is one 2-D convolution: input N×C×H×W, K filters of C/Groups×R×S, stride, padding
// and dilation; NCHW tensors.
type ConvShape struct {
	N, C, H, W       int
	K, R, S          int
	StrideH, StrideW int
	PadH, PadW       int
	DilH, DilW       int
	Groups           int
}

// OutHW returns the output height and width.
func (s ConvShape) OutHW() (int, int) {
	dh, dw := max(s.DilH, 1), max(s.DilW, 1)
	sh, sw := max(s.StrideH, 1), max(s.StrideW, 1)
	oh := (s.H+2*s.PadH-dh*(s.R-1)-1)/sh + 1
	ow := (s.W+2*s.PadW-dw*(s.S-1)-1)/sw + 1
	return oh, ow
}

// convPlan is a convolution prepared once: descriptors, the algorithm chosen by cuDNN's
// heuristic (stable within one cuDNN version, unlike the timing-based Find), the math type and
// the workspace size. Serving never re-chooses.
type convPlan struct {
	h                  *dnnHandle
	x, y, w            uintptr // tensor, tensor, filter descriptors
	conv               uintptr
	Algo, MathType     int
	WorkspaceBytes     int64
	outN, outC, oh, ow int
	// The heuristic's first choice and the fastest measured one (equal without measuring),
	// between which Prepare chooses per graph (chooseGraph); pinned: the compiled step needs
	// Algo as it is (a fused identity convolution needs IMPLICIT_PRECOMP_GEMM).
	heurAlgo, measAlgo int
	heurWs, measWs     int64
	pinned             bool
}

// prepareConv chooses the algorithm for s at precision p, with at most wsLimit bytes of
// workspace. FP32 sets CUDNN_FMA_MATH so no tf32 down-conversion happens; TF32 allows it; FP16
// uses tensor ops.
func (h *dnnHandle) prepareConv(p Precision, s ConvShape, wsLimit int64) (cp *convPlan, err error) {
	l := h.lib
	cp = &convPlan{h: h}
	defer func() {
		if err != nil {
			cp.close()
			cp = nil
		}
	}()
	groups := max(s.Groups, 1)
	if s.C%groups != 0 || s.K%groups != 0 {
		return nil, fmt.Errorf("cannot prepare conv: channels %d and filters %d not divisible by groups %d", s.C, s.K, groups)
	}
	if cp.x, err = h.tensor4d(p, s.N, s.C, s.H, s.W); err != nil {
		return
	}
	if err = l.check("cudnnCreateFilterDescriptor", call(l.filterCreate, uintptr(unsafe.Pointer(&cp.w)))); err != nil {
		return
	}
	if err = l.check("cudnnSetFilter4dDescriptor", call(l.filterSet4d, cp.w, dnnType(p), dnnNCHW, uintptr(s.K), uintptr(s.C/groups), uintptr(s.R), uintptr(s.S))); err != nil {
		return
	}
	if err = l.check("cudnnCreateConvolutionDescriptor", call(l.convCreate, uintptr(unsafe.Pointer(&cp.conv)))); err != nil {
		return
	}
	computeType := uintptr(dnnFloat) // accumulate in fp32 for every precision
	if err = l.check("cudnnSetConvolution2dDescriptor", call(l.convSet2d, cp.conv, uintptr(s.PadH), uintptr(s.PadW),
		uintptr(max(s.StrideH, 1)), uintptr(max(s.StrideW, 1)), uintptr(max(s.DilH, 1)), uintptr(max(s.DilW, 1)), dnnCrossCorrelation, computeType)); err != nil {
		return
	}
	if err = l.check("cudnnSetConvolutionGroupCount", call(l.convGroups, cp.conv, uintptr(groups))); err != nil {
		return
	}
	math := uintptr(dnnFMAMath)
	switch p {
	case TF32:
		math = dnnDefaultMath
	case FP16:
		math = dnnTensorOpMath
	}
	if err = l.check("cudnnSetConvolutionMathType", call(l.convSetMath, cp.conv, math)); err != nil {
		return
	}
	var n, c, oh, ow int32
	if err = l.check("cudnnGetConvolution2dForwardOutputDim", call(l.convOutDim, cp.conv, cp.x, cp.w,
		uintptr(unsafe.Pointer(&n)), uintptr(unsafe.Pointer(&c)), uintptr(unsafe.Pointer(&oh)), uintptr(unsafe.Pointer(&ow)))); err != nil {
		return
	}
	cp.outN, cp.outC, cp.oh, cp.ow = int(n), int(c), int(oh), int(ow)
	if cp.y, err = h.tensor4d(p, cp.outN, cp.outC, cp.oh, cp.ow); err != nil {
		return
	}
	// cudnnConvolutionFwdAlgoPerf_t: algo, status int32; time float32; memory size_t at 16;
	// determinism, mathType int32; reserved[3]: 48 bytes.
	type algoPerf struct {
		Algo, Status int32
		Time         float32
		_            int32
		Memory       uint64
		Determinism  int32
		MathType     int32
		_            [3]int32
		_            int32
	}
	perf := make([]algoPerf, 8)
	var got int32
	if err = l.check("cudnnGetConvolutionForwardAlgorithm_v7", call(l.convAlgoV7, h.h, cp.x, cp.w, cp.conv, cp.y, uintptr(len(perf)),
		uintptr(unsafe.Pointer(&got)), uintptr(unsafe.Pointer(&perf[0])))); err != nil {
		return
	}
	for _, pr := range perf[:got] {
		if pr.Status != 0 || int64(pr.Memory) > wsLimit {
			continue
		}
		var ws uint64
		if l.check("cudnnGetConvolutionForwardWorkspaceSize", call(l.convWs, h.h, cp.x, cp.w, cp.conv, cp.y, uintptr(pr.Algo), uintptr(unsafe.Pointer(&ws)))) != nil || int64(ws) > wsLimit {
			continue
		}
		cp.Algo, cp.MathType, cp.WorkspaceBytes = int(pr.Algo), int(pr.MathType), int64(ws)
		return cp, nil
	}
	return nil, fmt.Errorf("cannot prepare conv %+v at %s: no algorithm among %d within %d bytes of workspace", s, p, got, wsLimit)
}

// run enqueues y = conv(x, w) on the handle's stream. Timing: exec thread; no allocation.
func (cp *convPlan) run(x, w, y, ws uint64) error {
	h := cp.h
	r := h.c.call(h.lib.convFwd, h.h, uintptr(unsafe.Pointer(h.one)), cp.x, uintptr(x), cp.w, uintptr(w), cp.conv, uintptr(cp.Algo),
		uintptr(ws), uintptr(cp.WorkspaceBytes), uintptr(unsafe.Pointer(h.zero)), cp.y, uintptr(y))
	if r != 0 {
		return h.lib.check("cudnnConvolutionForward", r)
	}
	return nil
}

func (cp *convPlan) close() {
	l := cp.h.lib
	for _, d := range []struct {
		fn uintptr
		h  *uintptr
	}{{l.tensorDestroy, &cp.x}, {l.tensorDestroy, &cp.y}, {l.filterDestroy, &cp.w}, {l.convDestroy, &cp.conv}} {
		if *d.h != 0 {
			call(d.fn, *d.h)
			*d.h = 0
		}
	}
}

// poolPlan is a prepared 2-D pooling over NCHW.
type poolPlan struct {
	h          *dnnHandle
	pool, x, y uintptr
}

func (h *dnnHandle) preparePool(p Precision, mode PoolMode, n, c, hh, w, kh, kw, ph, pw, sh, sw int) (pp *poolPlan, err error) {
	l := h.lib
	pp = &poolPlan{h: h}
	defer func() {
		if err != nil {
			pp.close()
			pp = nil
		}
	}()
	if err = l.check("cudnnCreatePoolingDescriptor", call(l.poolCreate, uintptr(unsafe.Pointer(&pp.pool)))); err != nil {
		return
	}
	if err = l.check("cudnnSetPooling2dDescriptor", call(l.poolSet2d, pp.pool, uintptr(mode), dnnNotPropagateNaN,
		uintptr(kh), uintptr(kw), uintptr(ph), uintptr(pw), uintptr(sh), uintptr(sw))); err != nil {
		return
	}
	oh, ow := (hh+2*ph-kh)/sh+1, (w+2*pw-kw)/sw+1
	if pp.x, err = h.tensor4d(p, n, c, hh, w); err != nil {
		return
	}
	pp.y, err = h.tensor4d(p, n, c, oh, ow)
	return
}

func (pp *poolPlan) run(x, y uint64) error {
	h := pp.h
	return h.lib.check("cudnnPoolingForward", h.c.call(h.lib.poolFwd, h.h, pp.pool, uintptr(unsafe.Pointer(h.one)), pp.x, uintptr(x),
		uintptr(unsafe.Pointer(h.zero)), pp.y, uintptr(y)))
}

func (pp *poolPlan) close() {
	l := pp.h.lib
	for _, d := range []struct {
		fn uintptr
		h  *uintptr
	}{{l.tensorDestroy, &pp.x}, {l.tensorDestroy, &pp.y}, {l.poolDestroy, &pp.pool}} {
		if *d.h != 0 {
			call(d.fn, *d.h)
			*d.h = 0
		}
	}
}

// actPlan is a prepared activation over an NCHW tensor (in place allowed).
type actPlan struct {
	h       *dnnHandle
	act, xy uintptr
}

func (h *dnnHandle) prepareAct(p Precision, mode ActMode, coef float64, n, c, hh, w int) (ap *actPlan, err error) {
	l := h.lib
	ap = &actPlan{h: h}
	defer func() {
		if err != nil {
			ap.close()
			ap = nil
		}
	}()
	if err = l.check("cudnnCreateActivationDescriptor", call(l.actCreate, uintptr(unsafe.Pointer(&ap.act)))); err != nil {
		return
	}
	if err = l.check("cudnnSetActivationDescriptor", uintptr(l.setActivation(ap.act, int32(mode), dnnNotPropagateNaN, coef))); err != nil {
		return
	}
	ap.xy, err = h.tensor4d(p, n, c, hh, w)
	return
}

func (ap *actPlan) run(x, y uint64) error {
	h := ap.h
	return h.lib.check("cudnnActivationForward", h.c.call(h.lib.actFwd, h.h, ap.act, uintptr(unsafe.Pointer(h.one)), ap.xy, uintptr(x),
		uintptr(unsafe.Pointer(h.zero)), ap.xy, uintptr(y)))
}

func (ap *actPlan) close() {
	l := ap.h.lib
	if ap.xy != 0 {
		call(l.tensorDestroy, ap.xy)
		ap.xy = 0
	}
	if ap.act != 0 {
		call(l.actDestroy, ap.act)
		ap.act = 0
	}
}
