// Package kernels holds the CUDA C source of clockwork's own kernels, compiled at run time by
// NVRTC (runtime/cuda). Keeping the source here, embedded, means builds need no CUDA toolchain
// and the binary carries no machine code; the compiled cubin is cached by a hash of Source.
package kernels

import _ "embed"

// Source is the CUDA C text of every kernel (kernels.cu).
//
//go:embed kernels.cu
var Source string

// Names are the extern "C" kernels in Source, in the order runtime/cuda resolves them.
var Names = []string{
	"cw_unary", "cw_binary", "cw_bias_act", "cw_channel_scale", "cw_concat", "cw_softmax",
	"cw_pool2d", "cw_global_avgpool", "cw_nchw_to_nhwc", "cw_nhwc_to_nchw",
	"cw_f32_to_f16", "cw_f16_to_f32", "cw_spin", "cw_noop",
	"cw_affine", "cw_gather", "cw_binary_bcast", "cw_binary_act", "cw_dwconv", "cw_concat_multi",
}
