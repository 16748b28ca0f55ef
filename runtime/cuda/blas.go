package cuda

// cuBLAS and cuBLASLt bindings: GEMM in fp32, tf32 and fp16. Unsafe for the same reason as
// driver.go. Matrices are row-major in clockwork; cuBLAS is column-major, so C = A·B (row-major)
// is computed as Cᵀ = Bᵀ·Aᵀ (column-major) with no transposes: m=N, n=M, A'=B, B'=A.

import (
	"fmt"
	"unsafe"
)

// Precision is how a GEMM or convolution computes.
type Precision int

const (
	// FP32 is IEEE fp32 math throughout (no tensor-core down-conversion).
	FP32 Precision = iota
	// TF32 takes fp32 tensors and multiplies on tensor cores in tf32 (10-bit mantissa),
	// accumulating in fp32; PyTorch's allow_tf32.
	TF32
	// FP16 takes and returns fp16 tensors, accumulating in fp32.
	FP16
)

func (p Precision) String() string {
	switch p {
	case FP32:
		return "fp32"
	case TF32:
		return "tf32"
	case FP16:
		return "fp16"
	}
	return fmt.Sprintf("precision(%d)", int(p))
}

// elemBytes is the size of one tensor element at p.
func (p Precision) elemBytes() int64 {
	if p == FP16 {
		return 2
	}
	return 4
}

// cuBLAS constants (cublas_api.h, library_types.h).
const (
	cublasOpN              = 0
	cublasDefaultMath      = 0
	cudaR32F               = 0
	cudaR16F               = 2
	cublasCompute32F       = 68
	cublasCompute32FFastTF = 77

	ltMatmulPrefMaxWorkspace = 1

	// gemmAlgoDefault is CUBLAS_GEMM_DEFAULT (-1) as a 32-bit int argument.
	gemmAlgoDefault = 0xffffffff
)

type blasLib struct {
	lib                                                   *lib
	create, destroy, setStream, setMathMode, setWorkspace uintptr
	gemmEx, statusString                                  uintptr
}

func loadBLAS(cfg Config) (*blasLib, error) {
	l, err := openLib("cuBLAS (libcublas)", cfg.CUBLASLib, "libcublas.so.13")
	if err != nil {
		return nil, err
	}
	b := &blasLib{lib: l}
	return b, l.symbols(map[string]*uintptr{
		"cublasCreate_v2":       &b.create,
		"cublasDestroy_v2":      &b.destroy,
		"cublasSetStream_v2":    &b.setStream,
		"cublasSetMathMode":     &b.setMathMode,
		"cublasSetWorkspace_v2": &b.setWorkspace,
		"cublasGemmEx":          &b.gemmEx,
		"cublasGetStatusString": &b.statusString,
	})
}

func (b *blasLib) check(fn string, r uintptr) error {
	if int32(r) == 0 {
		return nil
	}
	return fmt.Errorf("%s: %s (%d)", fn, goString(call(b.statusString, r)), int32(r))
}

// blasHandle is one cuBLAS handle bound to one stream of one device. Not safe for concurrent
// use: one lane (the exec lane) owns it.
type blasHandle struct {
	lib       *blasLib
	h         uintptr
	one, zero *float32 // heap scalars for alpha and beta (host pointer mode)
	c         *caller  // the owning lane's
}

// newBLAS creates a handle on stream with a fixed workspace (so no allocation happens at run
// time or during graph capture). The device's context must be current.
func newBLAS(l *blasLib, c *caller, stream uintptr, ws uint64, wsBytes int64) (*blasHandle, error) {
	h := &blasHandle{lib: l, one: new(float32), zero: new(float32), c: c}
	*h.one = 1
	if err := l.check("cublasCreate_v2", call(l.create, uintptr(unsafe.Pointer(&h.h)))); err != nil {
		return nil, err
	}
	if err := l.check("cublasSetStream_v2", call(l.setStream, h.h, stream)); err != nil {
		h.close()
		return nil, err
	}
	if err := l.check("cublasSetWorkspace_v2", call(l.setWorkspace, h.h, uintptr(ws), uintptr(wsBytes))); err != nil {
		h.close()
		return nil, err
	}
	if err := l.check("cublasSetMathMode", call(l.setMathMode, h.h, cublasDefaultMath)); err != nil {
		h.close()
		return nil, err
	}
	return h, nil
}

func (h *blasHandle) close() error {
	if h.h == 0 {
		return nil
	}
	err := h.lib.check("cublasDestroy_v2", call(h.lib.destroy, h.h))
	h.h = 0
	return err
}

// gemm computes C = A·B, row-major, A M×K, B K×N, C M×N, in precision p (fp16 tensors for
// FP16, fp32 otherwise), enqueued on the handle's stream.
// Timing: exec thread; no allocation.
func (h *blasHandle) gemm(p Precision, m, n, k int, a, b, c uint64) error {
	typ, compute := uintptr(cudaR32F), uintptr(cublasCompute32F)
	switch p {
	case TF32:
		compute = cublasCompute32FFastTF
	case FP16:
		typ = cudaR16F
	}
	r := h.c.call(h.lib.gemmEx, h.h, cublasOpN, cublasOpN, uintptr(n), uintptr(m), uintptr(k),
		uintptr(unsafe.Pointer(h.one)), uintptr(b), typ, uintptr(n), uintptr(a), typ, uintptr(k),
		uintptr(unsafe.Pointer(h.zero)), uintptr(c), typ, uintptr(n), compute, gemmAlgoDefault)
	if r != 0 {
		return h.lib.check("cublasGemmEx", r)
	}
	return nil
}

type ltLib struct {
	lib                                          *lib
	create, destroy                              uintptr
	descCreate, descDestroy                      uintptr
	layoutCreate, layoutDestroy                  uintptr
	prefCreate, prefDestroy, prefSetAttr         uintptr
	heuristic, matmul, statusString, versionFunc uintptr
}

func loadLt(cfg Config) (*ltLib, error) {
	l, err := openLib("cuBLASLt (libcublasLt)", cfg.CUBLASLtLib, "libcublasLt.so.13")
	if err != nil {
		return nil, err
	}
	b := &ltLib{lib: l}
	return b, l.symbols(map[string]*uintptr{
		"cublasLtCreate":                       &b.create,
		"cublasLtDestroy":                      &b.destroy,
		"cublasLtMatmulDescCreate":             &b.descCreate,
		"cublasLtMatmulDescDestroy":            &b.descDestroy,
		"cublasLtMatrixLayoutCreate":           &b.layoutCreate,
		"cublasLtMatrixLayoutDestroy":          &b.layoutDestroy,
		"cublasLtMatmulPreferenceCreate":       &b.prefCreate,
		"cublasLtMatmulPreferenceDestroy":      &b.prefDestroy,
		"cublasLtMatmulPreferenceSetAttribute": &b.prefSetAttr,
		"cublasLtMatmulAlgoGetHeuristic":       &b.heuristic,
		"cublasLtMatmul":                       &b.matmul,
		"cublasLtGetStatusString":              &b.statusString,
		"cublasLtGetVersion":                   &b.versionFunc,
	})
}

func (l *ltLib) check(fn string, r uintptr) error {
	if int32(r) == 0 {
		return nil
	}
	return fmt.Errorf("%s: %s (%d)", fn, goString(call(l.statusString, r)), int32(r))
}

// ltHeuristic is cublasLtMatmulHeuristicResult_t (cublasLt.h; 96 bytes).
type ltHeuristic struct {
	Algo          [8]uint64 // cublasLtMatmulAlgo_t, opaque
	WorkspaceSize uint64
	State         int32
	WavesCount    float32
	Reserved      [4]int32
}

// ltGemm is one cuBLASLt matmul prepared for a fixed shape and precision: its algorithm is
// chosen once by the heuristic, at prepare time, and never re-chosen while serving.
type ltGemm struct {
	lib                    *ltLib
	handle                 uintptr
	desc, la, lb, lc, pref uintptr
	algo                   *ltHeuristic
	one, zero              *float32
	ws                     uint64
	wsBytes                int64
	m, n, k                int
	c                      *caller // the owning lane's; nil allocates
}

// newLtGemm prepares C = A·B (row-major, M×K by K×N) at precision p. ws is device memory of
// wsBytes the algorithm may use; c is the caller of the lane that will run it.
func newLtGemm(l *ltLib, c *caller, p Precision, m, n, k int, ws uint64, wsBytes int64) (g *ltGemm, err error) {
	g = &ltGemm{lib: l, one: new(float32), zero: new(float32), ws: ws, wsBytes: wsBytes, m: m, n: n, k: k, algo: new(ltHeuristic), c: c}
	*g.one = 1
	defer func() {
		if err != nil {
			g.close()
			g = nil
		}
	}()
	if err = l.check("cublasLtCreate", call(l.create, uintptr(unsafe.Pointer(&g.handle)))); err != nil {
		return
	}
	typ, compute := uintptr(cudaR32F), uintptr(cublasCompute32F)
	switch p {
	case TF32:
		compute = cublasCompute32FFastTF
	case FP16:
		typ = cudaR16F
	}
	if err = l.check("cublasLtMatmulDescCreate", call(l.descCreate, uintptr(unsafe.Pointer(&g.desc)), compute, cudaR32F)); err != nil {
		return
	}
	// Column-major view: Cᵀ (N×M, ld N) = Bᵀ (N×K, ld N) · Aᵀ (K×M, ld K).
	if err = l.check("cublasLtMatrixLayoutCreate", call(l.layoutCreate, uintptr(unsafe.Pointer(&g.la)), typ, uintptr(n), uintptr(k), uintptr(n))); err != nil {
		return
	}
	if err = l.check("cublasLtMatrixLayoutCreate", call(l.layoutCreate, uintptr(unsafe.Pointer(&g.lb)), typ, uintptr(k), uintptr(m), uintptr(k))); err != nil {
		return
	}
	if err = l.check("cublasLtMatrixLayoutCreate", call(l.layoutCreate, uintptr(unsafe.Pointer(&g.lc)), typ, uintptr(n), uintptr(m), uintptr(n))); err != nil {
		return
	}
	if err = l.check("cublasLtMatmulPreferenceCreate", call(l.prefCreate, uintptr(unsafe.Pointer(&g.pref)))); err != nil {
		return
	}
	wsb := new(uint64)
	*wsb = uint64(wsBytes)
	if err = l.check("cublasLtMatmulPreferenceSetAttribute", call(l.prefSetAttr, g.pref, ltMatmulPrefMaxWorkspace, uintptr(unsafe.Pointer(wsb)), 8)); err != nil {
		return
	}
	var found int32
	if err = l.check("cublasLtMatmulAlgoGetHeuristic", call(l.heuristic, g.handle, g.desc, g.la, g.lb, g.lc, g.lc, g.pref, 1, uintptr(unsafe.Pointer(g.algo)), uintptr(unsafe.Pointer(&found)))); err != nil {
		return
	}
	if found < 1 || g.algo.State != 0 {
		err = fmt.Errorf("cannot prepare cuBLASLt %s GEMM %dx%dx%d: no algorithm within %d bytes of workspace", p, m, n, k, wsBytes)
	}
	return
}

// run enqueues the matmul on stream. Timing: exec thread; no allocation.
func (g *ltGemm) run(a, b, c uint64, stream uintptr) error {
	r := g.c.call(g.lib.matmul, g.handle, g.desc, uintptr(unsafe.Pointer(g.one)), uintptr(b), g.la, uintptr(a), g.lb,
		uintptr(unsafe.Pointer(g.zero)), uintptr(c), g.lc, uintptr(c), g.lc, uintptr(unsafe.Pointer(g.algo)),
		uintptr(g.ws), uintptr(g.wsBytes), stream)
	if r != 0 {
		return g.lib.check("cublasLtMatmul", r)
	}
	return nil
}

func (g *ltGemm) close() {
	l := g.lib
	for _, d := range []struct {
		fn uintptr
		h  *uintptr
	}{{l.prefDestroy, &g.pref}, {l.layoutDestroy, &g.la}, {l.layoutDestroy, &g.lb}, {l.layoutDestroy, &g.lc}, {l.descDestroy, &g.desc}, {l.destroy, &g.handle}} {
		if *d.h != 0 {
			call(d.fn, *d.h)
			*d.h = 0
		}
	}
}
