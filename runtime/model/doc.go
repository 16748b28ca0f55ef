// Package model turns an ONNX file into what a backend runs: a graph IR, optimized and
// specialized to fixed batch sizes, with a static memory plan per batch and the weights laid
// out in pages.
//
// # Pipeline
//
//	Load / Parse     ONNX protobuf (onnxpb) → *Graph: typed nodes over values, constants
//	                 (initializers, Constant nodes, external data) as *Tensor; checked,
//	                 topologically sorted; unsupported ops, opsets and types rejected.
//	Optimize         batch-independent rewrites: fold constant subgraphs, fold
//	                 BatchNormalization into the preceding Conv, fuse Conv+bias(+activation)
//	                 and MatMul+Add / Gemm+activation, drop Identity/Dropout and dead nodes.
//	Specialize(b)    fix the batch dimension of every model input to b, infer every shape,
//	                 fold the shape chains this makes constant (Shape/Gather/Unsqueeze/Concat/
//	                 Cast/Reshape...), and remove what became dead.
//	Build            both of the above at each batch size (1,2,4,8,16 by default), a schedule
//	                 and a memory plan per batch (Plan), and one weight layout (alloc.Layout)
//	                 shared by all batches.
//
// # The IR
//
// A Graph holds Values (indexed by ValueID) and Nodes in a topological order. A Value is a
// model input, a constant (Value.Const != nil: weights as []float32, integer constants as
// []int64), or the output of exactly one node. Nodes carry the ONNX op type, attributes as a
// map of typed Attr, and input/output ValueIDs (NoValue for a missing optional one). The
// semantics of every op are ONNX's at Graph.Opset; two extensions come from fusion:
//
//   - Conv and Gemm may carry the string attribute "activation" (FusedActivation) = "Relu" or
//     "Clip", Clip with float attributes "act_min" and "act_max": the activation is applied to
//     each output element after the bias.
//   - A Gemm made from MatMul+Add has transB=0 and C of shape [N] (ONNX broadcasting rules).
//
// After Specialize, every value has a concrete shape, the graph's nodes need no value-dependent
// shape logic at run time (the shape input of Reshape, the axes of Unsqueeze... are constants),
// and the only ops left are compute and data movement.
//
// # Plans
//
// A Plan is one batch size's specialized graph with a Placement for every value: weights in a
// page of the layout, activations at an offset in one workspace region (buffers reused by
// liveness, 256-byte aligned), the model's input and output in the IO buffers, and small
// integer constants on the host. Plan.WorkspaceBytes is what the workspace arena must provide;
// Plan.ActivationBytes is the sum of all activations, what a plan without reuse would need.
//
// # Ownership
//
// Graphs returned by the passes are new; constant tensors are shared between a graph and those
// derived from it and are never modified. Everything here is control path: it allocates freely
// and is not safe for concurrent mutation, but a finished Model may be read by many goroutines.
//
// # Errors
//
// Every error wraps ErrInvalid (a malformed file or graph: corrupt protobuf, missing external
// data, shapes that do not agree) or ErrUnsupported (an op, opset, type or attribute this server
// does not implement), and names the model, the node (op and name) and the reason. Bad input
// never panics; Parse is fuzzed.
package model
