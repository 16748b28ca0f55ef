// Package cpu is the pure-Go reference backend: exact fp32, slow, the correctness oracle for
// the GPU backends. It implements runtime/device for a host byte region ("device memory"
// addresses are offsets into it; copies are memcopies) and runs the plans of runtime/model.
//
// # Exactness
//
// Every kernel works on float32 tensors in NCHW layout and accumulates sums (Conv, Gemm,
// MatMul, pools, reductions, normalizations) in float64 in a fixed order, rounding once to
// float32 per output. Transcendental functions (Sigmoid, Erf, Exp, Pow, Sqrt) are evaluated in
// float64. So each output is the exact result correctly rounded in nearly every case, closer
// to the mathematical value than PyTorch's blocked fp32 sums, and the same whatever the number
// of cores: work is split over output channels or rows, never inside one sum.
//
// # Kernels
//
// The kernels are plain functions on slices (conv, gemm, matmul, unary, binary, pools,
// softmax, layerNorm, batchNorm) and generic data movement (transpose, concat, pad, slice,
// gather) that serves float32 activations and the int64 tensors of shape computations alike.
// They trust their arguments: every shape is checked when a graph is prepared, so bad input
// is an error there and can never index out of range at run time.
//
// # Backend
//
// Backend.Open allocates one host region per device; device addresses are RegionBase plus an
// offset, so the zero Ptr is never valid. Device.Prepare takes a *Graph (FromModel converts
// what runtime/model's Build returns): per batch size, a
// schedule of nodes over values, each value placed in a weight page, the workspace, the IO
// buffers, or held as a host constant. Program.Run points each value at its bytes in the region
// (pages as given to this Run) and calls the compiled kernels in order.
//
// # Concurrency
//
// Kernels split their outputs into contiguous chunks run on a fixed pool of worker goroutines
// (parallel, one per core); each output is written by exactly one goroutine. Device lane calls may run
// concurrently on different lanes; a Program runs one batch at a time (the exec lane).
//
// # Ownership
//
// During Run, tensors are views of the device region: a kernel never keeps one after it
// returns, and Program keeps only headers that the next Run re-points. Host buffers given to
// CopyIn and CopyOut are not retained.
//
// # Invariants
//
//  1. Everything a kernel indexes was checked at Prepare: Compile checks shapes and attributes
//     against the op, BatchPlan.validate checks that every value lies inside its page, the
//     workspace or its IO buffer at an 8-byte aligned offset, that no step writes a weight or
//     overlaps an input it reads (except exact in-place elementwise ops), and that every value
//     is written before it is read. Run checks the addresses it is given against the region.
//  2. Bad input (a malformed graph, an unsupported op, dtype or attribute) is an error naming
//     the model, batch, op and node; never a panic. A panic is a bug (misaligned view: "BUG:").
//  3. Results do not depend on the number of cores or on where the pages are placed.
//
// # Allocation
//
// A kernel's state (its task struct, index plans) is allocated when its node is compiled, and
// each pool worker owns scratch memory that grows to the largest request and is then reused,
// so Program.Run allocates nothing on the Go heap for the float32 operator set of CNNs
// (tested with AllocsPerRun on squeezenet1_1, mobilenet_v3_small and a small graph). Paths
// that convert through float64 (integer Relu/Clip, mixed-type Pow, Cast) and Expand, Where and
// Equal still allocate per call; they occur in shape computations, which plans fold.
package cpu
