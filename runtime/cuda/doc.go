// Package cuda is clockwork's CUDA backend: it drives NVIDIA GPUs from Go without cgo, by
// dlopen'ing the driver (libcuda.so.1), cuBLAS/cuBLASLt, cuDNN 9 and NVRTC at run time through
// github.com/ebitengine/purego. A CGO_ENABLED=0 binary therefore builds anywhere and runs
// everywhere: where there is no library, driver or GPU, Backend.Open returns
// device.ErrNotSupported wrapped with the reason, and nothing crashes.
//
// What it provides:
//
//   - Backend and Device implement runtime/device: one Device per GPU with its primary context,
//     one stream per Lane (exec at the highest stream priority), the region handed to alloc
//     (one cuMemAlloc), pinned host memory registration (HostRegistrar), and synchronous lane
//     copies timed by events.
//   - Bindings (unexported, for the model executor of a later issue): driver API (memory,
//     streams, events, modules, launches, CUDA graphs with in-place kernel-node argument
//     updates, virtual memory reserve/map), cuBLAS GemmEx and cuBLASLt matmul in fp32/tf32/fp16,
//     cuDNN convolution forward with its algorithm fixed at prepare time, pooling and
//     activations, and NVRTC.
//   - Device.Warm: low-priority filler work that keeps an unlocked GPU's clocks up in idle gaps.
//   - Our own kernels (package kernels: elementwise and activations, bias add, channel scale,
//     concat, softmax, pooling, global average pool, NCHW↔NHWC, fp32↔fp16), compiled by NVRTC
//     at Open for the device's architecture and cached by hash in memory and optionally on
//     disk (Config.KernelCacheDir).
//
// Prepare (exec.go) compiles runtime/model's plans into one CUDA graph per batch size, re-bound
// to the caller's weight pages without re-capture. Convolution algorithms are chosen per graph
// (exec_choose.go): the heuristic's, the per-op measured and a mixed set are each captured and
// timed as a whole graph, and the fastest is kept (per-op timing alone picked graphs up to 2×
// slower; docs/zoo-h100.md). Only fp32 is implemented.
//
// # Concurrency
//
// Lane calls (CopyIn, CopyOut, CopyDevice) follow device.Device: one thread per lane, lanes
// concurrently. Each call locks its goroutine to its OS thread for its duration and makes the
// device's context current there, so callers need not manage CUDA contexts. Open, Prepare,
// RegisterHost, UnregisterHost and Close are control-path calls.
//
// # Ownership
//
// Host buffers passed to copies must be pinned (registered with RegisterHost, or allocated
// page-locked); they are not retained after the call. Device addresses must lie in the region
// (Info().Base, Info().Size); a copy outside it is refused with an error, since a bad address
// would fault the context for every later call.
//
// # Unsafe
//
// lib.go, driver.go, blas.go, dnn.go, nvrtc.go and vmm.go pass Go addresses to C. Every such
// address is converted to uintptr inside the call expression of call (which is marked
// uintptrescapes), or, on hot paths that go through a lane's caller (which must not
// allocate), points into memory allocated once and kept reachable by its owner, so the Go
// runtime neither moves nor frees it while C holds it.
//
// # Libraries
//
// DefaultConfig holds the GPU machine's paths (driver 580 / CUDA 13.0): /usr/lib/libcuda.so.1,
// cuBLAS, cuBLASLt and NVRTC under /usr/local/cuda-13.0/targets/x86_64-linux/lib, and cuDNN
// 9.14 at /usr/lib/x86_64-linux-gnu/libcudnn.so.9. See docs/cuda.md.
package cuda
