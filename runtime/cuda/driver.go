package cuda

// Bindings for the CUDA driver API (libcuda.so.1), the subset clockwork needs. Every function is
// called through call (purego.SyscallN): integer and pointer arguments only, results as
// CUresult. This file is unsafe because out-parameters are passed as raw addresses; each one is
// converted inside the call expression, so go:uintptrescapes keeps it on the heap for the call.

import (
	"fmt"
	"runtime"
	"sync"
	"unsafe"
)

// cuResult is a CUresult.
type cuResult int32

const (
	cuSuccess           cuResult = 0
	cuErrorNotReady     cuResult = 600
	cuErrorNoDevice     cuResult = 100
	cuErrorInvalidDev   cuResult = 101
	cuErrorInsuffDrv    cuResult = 35
	cuErrorNotInit      cuResult = 3
	cuErrorInvalidValue cuResult = 1
	cuErrorAlreadyMapp  cuResult = 208
)

// Driver API constants (cuda.h; they are ABI and never change).
const (
	cuStreamNonBlocking = 0x1

	cuEventDefault        = 0x0
	cuEventBlockingSync   = 0x1
	cuEventDisableTiming  = 0x2
	cuMemHostRegPortable  = 0x1
	cuEventRecordExternal = 0x1
	cuCaptureThreadLocal  = 1
	cuGraphNodeTypeKernel = 0

	attrMaxThreadsPerBlock = 1
	attrClockRateKHz       = 13
	attrSMCount            = 16
	attrPCIBusID           = 33
	attrPCIDeviceID        = 34
	attrL2Bytes            = 38
	attrAsyncEngines       = 40
	attrPCIDomainID        = 50
	attrCCMajor            = 75
	attrCCMinor            = 76
)

// DriverError is a failed driver API call: the function and the CUresult, with its name.
type DriverError struct {
	Func string
	Code int
	Name string // e.g. CUDA_ERROR_OUT_OF_MEMORY
	Desc string
}

func (e *DriverError) Error() string {
	return fmt.Sprintf("%s: %s (%d): %s", e.Func, e.Name, e.Code, e.Desc)
}

// driver is the loaded libcuda with its resolved functions.
type driver struct {
	lib *lib

	cuInit, cuDriverGetVersion, cuGetErrorName, cuGetErrorString uintptr
	cuDeviceGetCount, cuDeviceGet, cuDeviceGetName               uintptr
	cuDeviceTotalMem, cuDeviceGetAttribute                       uintptr
	cuDevicePrimaryCtxRetain, cuDevicePrimaryCtxRelease          uintptr
	cuCtxSetCurrent, cuCtxSynchronize, cuCtxGetStreamPriorityRng uintptr
	cuMemGetInfo, cuMemAlloc, cuMemFree                          uintptr
	cuMemHostRegister, cuMemHostUnregister                       uintptr
	cuMemcpyHtoDAsync, cuMemcpyDtoHAsync, cuMemcpyDtoDAsync      uintptr
	cuMemsetD32Async                                             uintptr
	cuStreamCreateWithPriority, cuStreamDestroy                  uintptr
	cuStreamSynchronize                                          uintptr
	cuEventCreate, cuEventDestroy, cuEventRecord                 uintptr
	cuEventSynchronize, cuEventElapsedTime, cuEventQuery         uintptr
	cuEventRecordWithFlags                                       uintptr
	cuModuleLoadData, cuModuleUnload, cuModuleGetFunction        uintptr
	cuLaunchKernel                                               uintptr
	cuStreamBeginCapture, cuStreamEndCapture                     uintptr
	cuGraphInstantiate, cuGraphLaunch                            uintptr
	cuGraphDestroy, cuGraphExecDestroy                           uintptr
	cuGraphGetNodes, cuGraphNodeGetType                          uintptr
	cuGraphKernelNodeGetParams, cuGraphExecKernelNodeSetParams   uintptr
	cuFuncGetParamInfo, cuKernelGetParamInfo                     uintptr // resolved by loadParamInfo (exec.go)

	vmm     vmmFuncs // resolved on first use (vmm.go)
	vmmOnce sync.Once
	vmmErr  error
}

// loadDriver opens libcuda at the configured path and resolves every symbol. Versioned names
// are spelled out (the _v2 ABI of CUDA ≥ 4 / 12), since there is no cuda.h to map them.
func loadDriver(cfg Config) (*driver, error) {
	l, err := openLib("CUDA driver (libcuda)", cfg.DriverLib, "libcuda.so.1")
	if err != nil {
		return nil, err
	}
	d := &driver{lib: l}
	err = l.symbols(map[string]*uintptr{
		"cuInit":                            &d.cuInit,
		"cuDriverGetVersion":                &d.cuDriverGetVersion,
		"cuGetErrorName":                    &d.cuGetErrorName,
		"cuGetErrorString":                  &d.cuGetErrorString,
		"cuDeviceGetCount":                  &d.cuDeviceGetCount,
		"cuDeviceGet":                       &d.cuDeviceGet,
		"cuDeviceGetName":                   &d.cuDeviceGetName,
		"cuDeviceTotalMem_v2":               &d.cuDeviceTotalMem,
		"cuDeviceGetAttribute":              &d.cuDeviceGetAttribute,
		"cuDevicePrimaryCtxRetain":          &d.cuDevicePrimaryCtxRetain,
		"cuDevicePrimaryCtxRelease_v2":      &d.cuDevicePrimaryCtxRelease,
		"cuCtxSetCurrent":                   &d.cuCtxSetCurrent,
		"cuCtxSynchronize":                  &d.cuCtxSynchronize,
		"cuCtxGetStreamPriorityRange":       &d.cuCtxGetStreamPriorityRng,
		"cuMemGetInfo_v2":                   &d.cuMemGetInfo,
		"cuMemAlloc_v2":                     &d.cuMemAlloc,
		"cuMemFree_v2":                      &d.cuMemFree,
		"cuMemHostRegister_v2":              &d.cuMemHostRegister,
		"cuMemHostUnregister":               &d.cuMemHostUnregister,
		"cuMemcpyHtoDAsync_v2":              &d.cuMemcpyHtoDAsync,
		"cuMemcpyDtoHAsync_v2":              &d.cuMemcpyDtoHAsync,
		"cuMemcpyDtoDAsync_v2":              &d.cuMemcpyDtoDAsync,
		"cuMemsetD32Async":                  &d.cuMemsetD32Async,
		"cuStreamCreateWithPriority":        &d.cuStreamCreateWithPriority,
		"cuStreamDestroy_v2":                &d.cuStreamDestroy,
		"cuStreamSynchronize":               &d.cuStreamSynchronize,
		"cuEventCreate":                     &d.cuEventCreate,
		"cuEventDestroy_v2":                 &d.cuEventDestroy,
		"cuEventRecord":                     &d.cuEventRecord,
		"cuEventSynchronize":                &d.cuEventSynchronize,
		"cuEventRecordWithFlags":            &d.cuEventRecordWithFlags,
		"cuEventElapsedTime":                &d.cuEventElapsedTime,
		"cuEventQuery":                      &d.cuEventQuery,
		"cuModuleLoadData":                  &d.cuModuleLoadData,
		"cuModuleUnload":                    &d.cuModuleUnload,
		"cuModuleGetFunction":               &d.cuModuleGetFunction,
		"cuLaunchKernel":                    &d.cuLaunchKernel,
		"cuStreamBeginCapture_v2":           &d.cuStreamBeginCapture,
		"cuStreamEndCapture":                &d.cuStreamEndCapture,
		"cuGraphInstantiateWithFlags":       &d.cuGraphInstantiate,
		"cuGraphLaunch":                     &d.cuGraphLaunch,
		"cuGraphDestroy":                    &d.cuGraphDestroy,
		"cuGraphExecDestroy":                &d.cuGraphExecDestroy,
		"cuGraphGetNodes":                   &d.cuGraphGetNodes,
		"cuGraphNodeGetType":                &d.cuGraphNodeGetType,
		"cuGraphKernelNodeGetParams_v2":     &d.cuGraphKernelNodeGetParams,
		"cuGraphExecKernelNodeSetParams_v2": &d.cuGraphExecKernelNodeSetParams,
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// check turns a CUresult into an error naming the function. Allocates only on failure.
func (d *driver) check(fn string, r uintptr) error {
	code := cuResult(int32(r))
	if code == cuSuccess {
		return nil
	}
	e := &DriverError{Func: fn, Code: int(code)}
	var name, desc uintptr
	if call(d.cuGetErrorName, uintptr(code), uintptr(unsafe.Pointer(&name))) == 0 {
		e.Name = goString(name)
	}
	if call(d.cuGetErrorString, uintptr(code), uintptr(unsafe.Pointer(&desc))) == 0 {
		e.Desc = goString(desc)
	}
	if e.Name == "" {
		e.Name = "CUDA_ERROR_UNKNOWN"
	}
	return e
}

func (d *driver) init() error { return d.check("cuInit", call(d.cuInit, 0)) }

func (d *driver) version() (int, error) {
	var v int32
	err := d.check("cuDriverGetVersion", call(d.cuDriverGetVersion, uintptr(unsafe.Pointer(&v))))
	return int(v), err
}

func (d *driver) deviceCount() (int, error) {
	var n int32
	err := d.check("cuDeviceGetCount", call(d.cuDeviceGetCount, uintptr(unsafe.Pointer(&n))))
	return int(n), err
}

// cuDevice is a CUdevice ordinal handle.
type cuDevice int32

func (d *driver) device(ordinal int) (cuDevice, error) {
	var dev int32
	err := d.check("cuDeviceGet", call(d.cuDeviceGet, uintptr(unsafe.Pointer(&dev)), uintptr(ordinal)))
	return cuDevice(dev), err
}

func (d *driver) deviceName(dev cuDevice) (string, error) {
	buf := make([]byte, 256)
	if err := d.check("cuDeviceGetName", call(d.cuDeviceGetName, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), uintptr(dev))); err != nil {
		return "", err
	}
	for i, c := range buf {
		if c == 0 {
			return string(buf[:i]), nil
		}
	}
	return string(buf), nil
}

func (d *driver) totalMem(dev cuDevice) (int64, error) {
	var n uint64
	err := d.check("cuDeviceTotalMem_v2", call(d.cuDeviceTotalMem, uintptr(unsafe.Pointer(&n)), uintptr(dev)))
	return int64(n), err
}

func (d *driver) attr(dev cuDevice, attr int) (int, error) {
	var v int32
	err := d.check(fmt.Sprintf("cuDeviceGetAttribute(%d)", attr), call(d.cuDeviceGetAttribute, uintptr(unsafe.Pointer(&v)), uintptr(attr), uintptr(dev)))
	return int(v), err
}

func (d *driver) primaryCtxRetain(dev cuDevice) (uintptr, error) {
	var ctx uintptr
	err := d.check("cuDevicePrimaryCtxRetain", call(d.cuDevicePrimaryCtxRetain, uintptr(unsafe.Pointer(&ctx)), uintptr(dev)))
	return ctx, err
}

func (d *driver) primaryCtxRelease(dev cuDevice) error {
	return d.check("cuDevicePrimaryCtxRelease_v2", call(d.cuDevicePrimaryCtxRelease, uintptr(dev)))
}

// setCurrent makes ctx current on the calling OS thread. The caller holds LockOSThread.
// Timing: any thread; no allocation; ~0.3 µs through purego.
func (d *driver) setCurrent(c *caller, ctx uintptr) error {
	if r := c.call(d.cuCtxSetCurrent, ctx); r != 0 {
		return d.check("cuCtxSetCurrent", r)
	}
	return nil
}

func (d *driver) ctxSynchronize() error {
	return d.check("cuCtxSynchronize", call(d.cuCtxSynchronize))
}

// streamPriorityRange returns (least, greatest); greatest is the numerically lowest.
func (d *driver) streamPriorityRange() (least, greatest int, err error) {
	var lo, hi int32
	err = d.check("cuCtxGetStreamPriorityRange", call(d.cuCtxGetStreamPriorityRng, uintptr(unsafe.Pointer(&lo)), uintptr(unsafe.Pointer(&hi))))
	return int(lo), int(hi), err
}

func (d *driver) memInfo() (free, total int64, err error) {
	var f, t uint64
	err = d.check("cuMemGetInfo_v2", call(d.cuMemGetInfo, uintptr(unsafe.Pointer(&f)), uintptr(unsafe.Pointer(&t))))
	return int64(f), int64(t), err
}

func (d *driver) memAlloc(n int64) (uint64, error) {
	var p uint64
	if err := d.check("cuMemAlloc_v2", call(d.cuMemAlloc, uintptr(unsafe.Pointer(&p)), uintptr(n))); err != nil {
		return 0, fmt.Errorf("cannot allocate %d bytes of device memory: %w", n, err)
	}
	return p, nil
}

func (d *driver) memFree(p uint64) error {
	return d.check("cuMemFree_v2", call(d.cuMemFree, uintptr(p)))
}

// hostRegister page-locks b for DMA. b must be memory that never moves (mmap'd, not Go heap
// that may be freed while registered).
func (d *driver) hostRegister(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	return d.check("cuMemHostRegister_v2", call(d.cuMemHostRegister, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), cuMemHostRegPortable))
}

func (d *driver) hostUnregister(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	return d.check("cuMemHostUnregister", call(d.cuMemHostUnregister, uintptr(unsafe.Pointer(&b[0]))))
}

// Async copies. Timing: executor thread; no allocation; a few µs of host time.
func (d *driver) memcpyHtoDAsync(c *caller, dst uint64, src unsafe.Pointer, n int, stream uintptr) error {
	if r := c.call(d.cuMemcpyHtoDAsync, uintptr(dst), uintptr(src), uintptr(n), stream); r != 0 {
		return d.check("cuMemcpyHtoDAsync_v2", r)
	}
	return nil
}

func (d *driver) memcpyDtoHAsync(c *caller, dst unsafe.Pointer, src uint64, n int, stream uintptr) error {
	if r := c.call(d.cuMemcpyDtoHAsync, uintptr(dst), uintptr(src), uintptr(n), stream); r != 0 {
		return d.check("cuMemcpyDtoHAsync_v2", r)
	}
	return nil
}

func (d *driver) memcpyDtoDAsync(c *caller, dst, src uint64, n int, stream uintptr) error {
	if r := c.call(d.cuMemcpyDtoDAsync, uintptr(dst), uintptr(src), uintptr(n), stream); r != 0 {
		return d.check("cuMemcpyDtoDAsync_v2", r)
	}
	return nil
}

func (d *driver) memsetD32Async(dst uint64, v uint32, n int, stream uintptr) error {
	return d.check("cuMemsetD32Async", call(d.cuMemsetD32Async, uintptr(dst), uintptr(v), uintptr(n), stream))
}

func (d *driver) streamCreate(priority int) (uintptr, error) {
	var s uintptr
	err := d.check("cuStreamCreateWithPriority", call(d.cuStreamCreateWithPriority, uintptr(unsafe.Pointer(&s)), cuStreamNonBlocking, uintptr(int64(priority))))
	return s, err
}

func (d *driver) streamDestroy(s uintptr) error {
	return d.check("cuStreamDestroy_v2", call(d.cuStreamDestroy, s))
}

func (d *driver) streamSynchronize(c *caller, s uintptr) error {
	if r := c.call(d.cuStreamSynchronize, s); r != 0 {
		return d.check("cuStreamSynchronize", r)
	}
	return nil
}

func (d *driver) eventCreate(flags int) (uintptr, error) {
	var e uintptr
	err := d.check("cuEventCreate", call(d.cuEventCreate, uintptr(unsafe.Pointer(&e)), uintptr(flags)))
	return e, err
}

func (d *driver) eventDestroy(e uintptr) error {
	return d.check("cuEventDestroy_v2", call(d.cuEventDestroy, e))
}

func (d *driver) eventRecord(c *caller, e, stream uintptr) error {
	if r := c.call(d.cuEventRecord, e, stream); r != 0 {
		return d.check("cuEventRecord", r)
	}
	return nil
}

// eventRecordExternal records e on a capturing stream as an event-record node of the graph, so
// the event fires each time the graph runs (a plain record during capture is internal to it).
func (d *driver) eventRecordExternal(e, stream uintptr) error {
	return d.check("cuEventRecordWithFlags", call(d.cuEventRecordWithFlags, e, stream, cuEventRecordExternal))
}

func (d *driver) eventSynchronize(c *caller, e uintptr) error {
	if r := c.call(d.cuEventSynchronize, e); r != 0 {
		return d.check("cuEventSynchronize", r)
	}
	return nil
}

// eventQuery reports whether all work before e is done.
func (d *driver) eventQuery(c *caller, e uintptr) (bool, error) {
	r := cuResult(int32(c.call(d.cuEventQuery, e)))
	switch r {
	case cuSuccess:
		return true, nil
	case cuErrorNotReady:
		return false, nil
	}
	return false, d.check("cuEventQuery", uintptr(r))
}

// elapsedNs returns the time between two completed events in nanoseconds (the driver's
// resolution is about 0.5 µs). out is a heap float32 owned by the caller, so the call does not
// allocate.
func (d *driver) elapsedNs(c *caller, out *float32, start, end uintptr) (int64, error) {
	if r := c.call(d.cuEventElapsedTime, uintptr(unsafe.Pointer(out)), start, end); r != 0 {
		return 0, d.check("cuEventElapsedTime", r)
	}
	return int64(float64(*out) * 1e6), nil
}

func (d *driver) moduleLoadData(image []byte) (uintptr, error) {
	var m uintptr
	err := d.check("cuModuleLoadData", call(d.cuModuleLoadData, uintptr(unsafe.Pointer(&m)), uintptr(unsafe.Pointer(&image[0]))))
	runtime.KeepAlive(image)
	return m, err
}

// moduleLoadPTX JIT-compiles PTX text (the driver wants it NUL-terminated) into a module.
// Control path: ~100 ms per module; prefer cubins (NVRTC) where start-up time matters.
func (d *driver) moduleLoadPTX(ptx string) (uintptr, error) {
	return d.moduleLoadData(cstr(ptx))
}

func (d *driver) moduleUnload(m uintptr) error {
	return d.check("cuModuleUnload", call(d.cuModuleUnload, m))
}

func (d *driver) moduleFunction(m uintptr, name string) (uintptr, error) {
	var f uintptr
	n := cstr(name)
	if err := d.check("cuModuleGetFunction", call(d.cuModuleGetFunction, uintptr(unsafe.Pointer(&f)), m, uintptr(unsafe.Pointer(&n[0])))); err != nil {
		return 0, fmt.Errorf("kernel %q: %w", name, err)
	}
	return f, nil
}

// dim3 is a grid or block shape.
type dim3 struct{ X, Y, Z uint32 }

// launch enqueues f on stream. params is a heap array of pointers to the argument values (see
// kernelArgs); it must stay alive until the call returns (the driver copies the values).
// Timing: exec thread; no allocation; ~5 µs host time through purego.
func (d *driver) launch(c *caller, f uintptr, grid, block dim3, shmem uint32, stream uintptr, params unsafe.Pointer) error {
	r := c.call(d.cuLaunchKernel, f, uintptr(grid.X), uintptr(grid.Y), uintptr(grid.Z),
		uintptr(block.X), uintptr(block.Y), uintptr(block.Z), uintptr(shmem), stream, uintptr(params), 0)
	if r != 0 {
		return d.check("cuLaunchKernel", r)
	}
	return nil
}

func (d *driver) beginCapture(stream uintptr) error {
	return d.check("cuStreamBeginCapture_v2", call(d.cuStreamBeginCapture, stream, cuCaptureThreadLocal))
}

func (d *driver) endCapture(stream uintptr) (uintptr, error) {
	var g uintptr
	err := d.check("cuStreamEndCapture", call(d.cuStreamEndCapture, stream, uintptr(unsafe.Pointer(&g))))
	return g, err
}

func (d *driver) graphInstantiate(g uintptr) (uintptr, error) {
	var e uintptr
	err := d.check("cuGraphInstantiateWithFlags", call(d.cuGraphInstantiate, uintptr(unsafe.Pointer(&e)), g, 0))
	return e, err
}

// graphLaunch enqueues an instantiated graph. Timing: exec thread; no allocation.
func (d *driver) graphLaunch(c *caller, exec, stream uintptr) error {
	if r := c.call(d.cuGraphLaunch, exec, stream); r != 0 {
		return d.check("cuGraphLaunch", r)
	}
	return nil
}

func (d *driver) graphDestroy(g uintptr) error {
	return d.check("cuGraphDestroy", call(d.cuGraphDestroy, g))
}

func (d *driver) graphExecDestroy(e uintptr) error {
	return d.check("cuGraphExecDestroy", call(d.cuGraphExecDestroy, e))
}

// graphKernelNodes returns the graph's kernel nodes in the driver's order.
func (d *driver) graphKernelNodes(g uintptr) ([]uintptr, error) {
	var n uintptr
	if err := d.check("cuGraphGetNodes", call(d.cuGraphGetNodes, g, 0, uintptr(unsafe.Pointer(&n)))); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, nil
	}
	nodes := make([]uintptr, n)
	if err := d.check("cuGraphGetNodes", call(d.cuGraphGetNodes, g, uintptr(unsafe.Pointer(&nodes[0])), uintptr(unsafe.Pointer(&n)))); err != nil {
		return nil, err
	}
	out := nodes[:0]
	for _, nd := range nodes[:n] {
		var t int32
		if err := d.check("cuGraphNodeGetType", call(d.cuGraphNodeGetType, nd, uintptr(unsafe.Pointer(&t)))); err != nil {
			return nil, err
		}
		if t == cuGraphNodeTypeKernel {
			out = append(out, nd)
		}
	}
	return out, nil
}

// kernelNodeParams is CUDA_KERNEL_NODE_PARAMS_v2 (cuda.h; 72 bytes on 64-bit).
type kernelNodeParams struct {
	Func                   uintptr
	GridX, GridY, GridZ    uint32
	BlockX, BlockY, BlockZ uint32
	SharedMemBytes         uint32
	KernelParams           uintptr // void**
	Extra                  uintptr // void**
	Kern                   uintptr // CUkernel
	Ctx                    uintptr // CUcontext
}

func (d *driver) kernelNodeGetParams(node uintptr, p *kernelNodeParams) error {
	return d.check("cuGraphKernelNodeGetParams_v2", call(d.cuGraphKernelNodeGetParams, node, uintptr(unsafe.Pointer(p))))
}

// execKernelNodeSetParams updates one kernel node of an instantiated graph in place (new
// argument values, e.g. weight pointers after a LOAD), without re-instantiating.
func (d *driver) execKernelNodeSetParams(exec, node uintptr, p *kernelNodeParams) error {
	return d.check("cuGraphExecKernelNodeSetParams_v2", call(d.cuGraphExecKernelNodeSetParams, exec, node, uintptr(unsafe.Pointer(p))))
}

// kernelArgs holds one launch's argument values and the pointer array cuLaunchKernel reads.
// It lives on the heap (newKernelArgs) and is reused, so launches do not allocate.
type kernelArgs struct {
	vals [maxKernelArgs]uint64
	ptrs [maxKernelArgs]uintptr
	n    int
}

const maxKernelArgs = 24

func newKernelArgs() *kernelArgs {
	a := new(kernelArgs)
	for i := range a.ptrs {
		a.ptrs[i] = uintptr(unsafe.Pointer(&a.vals[i]))
	}
	return a
}

// reset empties a for a new launch.
func (a *kernelArgs) reset() *kernelArgs { a.n = 0; return a }

// u64 appends a 64-bit argument (a device pointer, a long).
func (a *kernelArgs) u64(v uint64) *kernelArgs {
	if a.n == maxKernelArgs {
		panic(fmt.Sprintf("BUG: kernel takes more than %d arguments", maxKernelArgs))
	}
	a.vals[a.n] = v
	a.n++
	return a
}

// i32 appends a 32-bit integer argument (stored in the low half of its slot, little-endian).
func (a *kernelArgs) i32(v int32) *kernelArgs { return a.u64(uint64(uint32(v))) }

// f32 appends a float argument.
func (a *kernelArgs) f32(v float32) *kernelArgs {
	return a.u64(uint64(*(*uint32)(unsafe.Pointer(&v))))
}

// params returns the void** for cuLaunchKernel.
func (a *kernelArgs) params() unsafe.Pointer { return unsafe.Pointer(&a.ptrs[0]) }
