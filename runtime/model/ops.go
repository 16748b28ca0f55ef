package model

import "slices"

// supportedOps are the operators the IR accepts: what the torchvision zoo needs, the shape
// operators its exports use, and the no-ops exporters leave behind. Backends implement every
// op here that survives Specialize (shape operators on constants are folded away).
var supportedOps = map[string]bool{
	// compute
	"Conv": true, "Gemm": true, "MatMul": true,
	"Relu": true, "Clip": true, "Sigmoid": true, "HardSigmoid": true, "HardSwish": true, "Tanh": true,
	"Add": true, "Sub": true, "Mul": true, "Div": true, "Pow": true, "Sqrt": true, "Erf": true,
	"MaxPool": true, "AveragePool": true, "GlobalAveragePool": true, "ReduceMean": true,
	"Softmax": true, "LayerNormalization": true, "BatchNormalization": true,
	// data movement
	"Concat": true, "Flatten": true, "Reshape": true, "Transpose": true, "Pad": true,
	"Squeeze": true, "Unsqueeze": true, "Slice": true, "Split": true, "Gather": true,
	// shape computations (folded when their inputs are known)
	"Shape": true, "Cast": true, "Constant": true, "ConstantOfShape": true, "Range": true,
	"Equal": true, "Where": true, "Expand": true,
	// no-ops at inference
	"Identity": true, "Dropout": true,
}

// Supported reports whether the IR accepts op (in the default ONNX domain).
func Supported(op string) bool { return supportedOps[op] }

// SupportedOps lists the supported operators, sorted.
func SupportedOps() []string {
	ops := make([]string, 0, len(supportedOps))
	for op := range supportedOps {
		ops = append(ops, op)
	}
	slices.Sort(ops)
	return ops
}
