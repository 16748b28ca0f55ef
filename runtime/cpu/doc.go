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
// # Concurrency
//
// Kernels split their outputs into contiguous chunks run on GOMAXPROCS goroutines
// (parallelFor); each output is written by exactly one goroutine.
package cpu
