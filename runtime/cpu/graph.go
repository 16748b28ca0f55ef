package cpu

import (
	"fmt"
	"slices"

	"github.com/clockwork-go/clockwork/alloc"
)

// Graph is a model planned for execution at fixed batch sizes, in the form the cpu backend
// runs: for each batch a schedule of nodes over values, each value placed in a weight page, in
// the workspace, in the IO buffers, or held as a host constant. runtime/model's plans are
// converted to a Graph by Prepare; tests build one directly.
type Graph struct {
	ModelName   string
	PageBytes   int64 // size of one weight page
	NumPages    int   // pages the model's weights occupy
	WeightBytes int64 // total weight bytes (as laid out, including page padding)
	// Runs are groups of consecutive weight pages that must sit contiguously in the region: a
	// tensor larger than a page starts at offset 0 of a run's first page (alloc.Layout.Runs).
	// Packed means every tensor may span pages, so all pages must be contiguous.
	Runs   []alloc.Run
	Packed bool
	Plans  []*BatchPlan
}

// validateRuns checks that the runs lie inside the model's pages and do not overlap.
func (g *Graph) validateRuns() error {
	used := make([]bool, max(g.NumPages, 0))
	for _, r := range g.Runs {
		if r.First < 0 || r.Pages < 1 || r.First > g.NumPages-r.Pages {
			return fmt.Errorf("weight run %+v outside %d pages", r, g.NumPages)
		}
		for p := r.First; p < r.First+r.Pages; p++ {
			if used[p] {
				return fmt.Errorf("weight runs overlap at page %d", p)
			}
			used[p] = true
		}
	}
	return nil
}

// weightFits reports whether n bytes at (page, off) lie inside the model's weights: inside the
// page, inside a run starting at page, or (packed) inside the contiguous pages.
func (g *Graph) weightFits(page int, off, n int64) bool {
	if page < 0 || page >= g.NumPages || off < 0 || n < 0 {
		return false
	}
	end := off + n
	switch {
	case end <= g.PageBytes:
		return true
	case g.Packed:
		return int64(page)*g.PageBytes+end <= int64(g.NumPages)*g.PageBytes
	}
	for _, r := range g.Runs {
		if r.First == page && end <= int64(r.Pages)*g.PageBytes {
			return true
		}
	}
	return false
}

// Name implements device.Model.
func (g *Graph) Name() string { return g.ModelName }

// BatchPlan is the schedule and memory plan of one batch size.
type BatchPlan struct {
	Batch          int
	Values         []Value
	Steps          []Step
	Input, Output  int // value ids of the model's single input and output
	WorkspaceBytes int64
}

// Location says where a value lives during a run.
type Location uint8

const (
	InWorkspace Location = iota // Offset within the workspace
	InWeights                   // Offset within weight page Page
	InInput                     // the input buffer (Offset 0)
	InOutput                    // the output buffer (Offset 0)
	InHost                      // Const, a host tensor fixed at Prepare (folded shapes, scalars)
)

// Value is one tensor of a BatchPlan.
type Value struct {
	Name   string
	Type   Type
	Loc    Location
	Page   int
	Offset int64
	// Const holds the value when it is known at Prepare: required for InHost, optional for
	// InWeights (ops whose output shape depends on values, like Reshape, need it).
	Const *Tensor
}

// Step runs one node: In and Out are value ids, -1 for a missing optional input or output.
type Step struct {
	Node    Node
	In, Out []int
}

// inPlaceOK lists ops whose kernels may write their output over their input (each output
// element depends only on the input element at the same index).
var inPlaceOK = map[string]bool{"Relu": true, "Sigmoid": true, "HardSigmoid": true, "HardSwish": true,
	"Sqrt": true, "Erf": true, "Clip": true, "Identity": true, "Dropout": true, "Reshape": true,
	"Flatten": true, "Squeeze": true, "Unsqueeze": true, "Add": true, "Sub": true, "Mul": true,
	"Div": true, "Pow": true}

// validate checks a plan against the limits it will run under, so that Run cannot reach
// outside its buffers: every value fits its page, the workspace or the IO buffer, offsets are
// 8-byte aligned, and steps reference defined values.
func (p *BatchPlan) validate(g *Graph) error {
	if p.Batch < 1 {
		return fmt.Errorf("batch %d", p.Batch)
	}
	for _, id := range []int{p.Input, p.Output} {
		if id < 0 || id >= len(p.Values) {
			return fmt.Errorf("input/output value %d out of range [0, %d)", id, len(p.Values))
		}
	}
	if p.Values[p.Input].Loc != InInput || p.Values[p.Output].Loc != InOutput {
		return fmt.Errorf("input value %q must be InInput and output value %q InOutput", p.Values[p.Input].Name, p.Values[p.Output].Name)
	}
	used := make([]bool, len(p.Values)) // values no step reads or writes are not checked
	used[p.Input], used[p.Output] = true, true
	for _, st := range p.Steps {
		for _, id := range slices.Concat(st.In, st.Out) {
			if id >= 0 && id < len(p.Values) {
				used[id] = true
			}
		}
	}
	for i, v := range p.Values {
		if !used[i] {
			continue
		}
		size := int64(v.Type.DType.Size())
		if size == 0 {
			return fmt.Errorf("value %q: dtype %v not supported", v.Name, v.Type.DType)
		}
		for _, d := range v.Type.Shape {
			if d < 0 || d > 1<<31 {
				return fmt.Errorf("value %q: bad shape %v", v.Name, v.Type.Shape)
			}
		}
		n := int64(v.Type.Bytes())
		if v.Offset < 0 || v.Offset%8 != 0 {
			return fmt.Errorf("value %q: offset %d is not a non-negative multiple of 8", v.Name, v.Offset)
		}
		switch v.Loc {
		case InWorkspace:
			if v.Offset+n > p.WorkspaceBytes {
				return fmt.Errorf("value %q: [%d, +%d) outside workspace of %d bytes", v.Name, v.Offset, n, p.WorkspaceBytes)
			}
		case InWeights:
			if !g.weightFits(v.Page, v.Offset, n) {
				return fmt.Errorf("value %q: page %d [%d, +%d) outside %d pages of %d bytes (runs %v, packed %v)", v.Name, v.Page, v.Offset, n, g.NumPages, g.PageBytes, g.Runs, g.Packed)
			}
			if v.Const != nil && !slices.Equal(v.Const.Shape, v.Type.Shape) {
				return fmt.Errorf("value %q: constant %v does not match type %v", v.Name, v.Const.Type, v.Type)
			}
		case InInput, InOutput:
			if v.Offset != 0 || (v.Loc == InInput) != (i == p.Input) || (v.Loc == InOutput) != (i == p.Output) {
				return fmt.Errorf("value %q: only the model's input and output live in the IO buffers", v.Name)
			}
		case InHost:
			if v.Const == nil || v.Const.DType != v.Type.DType || !slices.Equal(v.Const.Shape, v.Type.Shape) || len(v.Const.Data) != v.Type.Bytes() {
				return fmt.Errorf("value %q: host constant missing or not of type %v", v.Name, v.Type)
			}
		default:
			return fmt.Errorf("value %q: bad location %d", v.Name, v.Loc)
		}
	}
	for si, s := range p.Steps {
		for _, id := range slices.Concat(s.In, s.Out) {
			if id < -1 || id >= len(p.Values) {
				return fmt.Errorf("step %d (%s %q): value %d out of range", si, s.Node.Op, s.Node.Name, id)
			}
		}
		for _, o := range s.Out {
			if o < 0 {
				continue
			}
			if l := p.Values[o].Loc; l == InWeights || l == InHost || l == InInput {
				return fmt.Errorf("step %d (%s %q) writes read-only value %q", si, s.Node.Op, s.Node.Name, p.Values[o].Name)
			}
			for _, in := range s.In {
				if in >= 0 && p.overlap(in, o) && !(inPlaceOK[s.Node.Op] && p.Values[in].Offset == p.Values[o].Offset && p.Values[in].Type.Bytes() == p.Values[o].Type.Bytes()) {
					return fmt.Errorf("step %d (%s %q): output %q overlaps input %q", si, s.Node.Op, s.Node.Name, p.Values[o].Name, p.Values[in].Name)
				}
			}
		}
	}
	return nil
}

func (p *BatchPlan) overlap(a, b int) bool {
	va, vb := p.Values[a], p.Values[b]
	if va.Loc != vb.Loc || va.Loc == InHost || va.Loc == InWeights && va.Page != vb.Page {
		return false
	}
	ea, eb := va.Offset+int64(va.Type.Bytes()), vb.Offset+int64(vb.Type.Bytes())
	return va.Offset < eb && vb.Offset < ea && va.Type.Bytes() > 0 && vb.Type.Bytes() > 0
}
