package model

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/clockwork-go/clockwork/alloc"
)

// Location says where a value lives while a plan runs.
type Location uint8

// Locations of values.
const (
	InWorkspace Location = iota // at Offset in the plan's workspace
	InWeights                   // at Offset in page Page of the model's weight layout
	InInput                     // the model's input buffer (Offset 0)
	InOutput                    // the model's output buffer (Offset 0)
	InHost                      // a constant the backend keeps on the host (shapes, axes, scalars)
)

// Placement is where one value of a plan lives.
type Placement struct {
	Loc    Location
	Page   int
	Offset int64
}

// WorkspaceAlign is the alignment of every activation in the workspace (what cuDNN wants).
const WorkspaceAlign = 256

// Plan is one batch size of a model, ready for a backend: Graph is specialized (every shape
// concrete) and its Nodes are the schedule, in order; Place[v] says where value v lives.
type Plan struct {
	Batch int
	Graph *Graph
	Place []Placement
	// WorkspaceBytes is the workspace this plan needs; ActivationBytes the sum of all its
	// activations (what it would need without reusing buffers).
	WorkspaceBytes  int64
	ActivationBytes int64
}

// Model is a model built for serving: one plan per batch size and the weight layout they share.
type Model struct {
	Name    string
	Plans   []*Plan // by increasing batch
	Layout  *alloc.Layout
	Weights []*Tensor // the weights, in the order of Layout.Placements
	// WeightNames are the weights' value names, in the same order.
	WeightNames []string
}

// DefaultBatches are the batch sizes Build plans when given none.
var DefaultBatches = []int{1, 2, 4, 8, 16}

// DefaultPageSize is the weight page size (DESIGN.md §6).
const DefaultPageSize = 16 << 20

// Build optimizes g, specializes it at each batch size (DefaultBatches if nil), lays out the
// float32 weights into pages of pageSize bytes (DefaultPageSize if 0) with alloc.NewLayout, and
// plans each batch's memory. Control path: allocates; takes tens of milliseconds for resnet50.
func Build(g *Graph, batches []int, pageSize int64) (*Model, error) {
	if batches == nil {
		batches = DefaultBatches
	}
	if pageSize == 0 {
		pageSize = DefaultPageSize
	}
	o, err := Optimize(g)
	if err != nil {
		return nil, err
	}
	m := &Model{Name: g.Name}
	var tensors []alloc.Tensor
	for _, v := range o.Values {
		if v.Const != nil && v.DType == Float32 && v.Const.Len() > 0 {
			m.Weights = append(m.Weights, v.Const)
			m.WeightNames = append(m.WeightNames, v.Name)
			tensors = append(tensors, alloc.Tensor{Name: v.Name, Bytes: v.Const.Bytes()})
		}
	}
	if len(tensors) > 0 {
		if m.Layout, err = alloc.NewLayout(pageSize, tensors); err != nil {
			return nil, fmt.Errorf("cannot lay out the weights of model %q: %w", g.Name, err)
		}
	}
	where := map[string]alloc.Placement{}
	for i, name := range m.WeightNames {
		where[name] = m.Layout.Placements[i]
	}
	for _, b := range slices.Sorted(slices.Values(batches)) {
		s, err := Specialize(o, b)
		if err != nil {
			return nil, err
		}
		p, err := planMemory(s, b, where)
		if err != nil {
			return nil, err
		}
		m.Plans = append(m.Plans, p)
	}
	return m, nil
}

// planMemory places every value of the specialized graph s. Activations share the workspace by
// liveness: a value lives from the step that writes it to the last step that reads it, and
// buffers are assigned largest first at the lowest offset that overlaps no live-overlapping
// buffer already placed (greedy by size, within a few per cent of the peak live size on the zoo).
func planMemory(s *Graph, batch int, weights map[string]alloc.Placement) (*Plan, error) {
	if len(s.Inputs) != 1 || len(s.Outputs) != 1 {
		return nil, fmt.Errorf("cannot plan model %q: %d inputs and %d outputs; only one of each is supported: %w", s.Name, len(s.Inputs), len(s.Outputs), ErrUnsupported)
	}
	p := &Plan{Batch: batch, Graph: s, Place: make([]Placement, len(s.Values))}
	first := make([]int, len(s.Values))
	last := make([]int, len(s.Values))
	for i := range first {
		first[i], last[i] = -1, -1
	}
	for i := range s.Nodes {
		for _, id := range s.Nodes[i].Outputs {
			if id != NoValue && first[id] < 0 {
				first[id], last[id] = i, i
			}
		}
		for _, id := range s.Nodes[i].Inputs {
			if id != NoValue {
				last[id] = max(last[id], i)
			}
		}
	}
	var acts []ValueID
	for i, v := range s.Values {
		id := ValueID(i)
		switch {
		case id == s.Inputs[0]:
			p.Place[i] = Placement{Loc: InInput}
		case id == s.Outputs[0]:
			p.Place[i] = Placement{Loc: InOutput}
		case v.Const != nil:
			if w, ok := weights[v.Name]; ok && v.DType == Float32 {
				p.Place[i] = Placement{Loc: InWeights, Page: w.Page, Offset: w.Offset}
			} else {
				p.Place[i] = Placement{Loc: InHost}
			}
		default:
			if first[i] < 0 {
				continue // an unused optional output
			}
			acts = append(acts, id)
			p.ActivationBytes += v.Bytes()
		}
	}
	slices.SortStableFunc(acts, func(a, b ValueID) int { return cmp.Compare(s.Values[b].Bytes(), s.Values[a].Bytes()) })
	type iv struct{ lo, hi int64 }
	var placed []ValueID
	for _, id := range acts {
		size := (s.Values[id].Bytes() + WorkspaceAlign - 1) &^ (WorkspaceAlign - 1)
		var busy []iv
		for _, q := range placed {
			if first[q] <= last[id] && first[id] <= last[q] {
				busy = append(busy, iv{p.Place[q].Offset, p.Place[q].Offset + s.Values[q].Bytes()})
			}
		}
		slices.SortFunc(busy, func(a, b iv) int { return cmp.Compare(a.lo, b.lo) })
		off := int64(0)
		for _, b := range busy {
			if b.lo >= off+size {
				break
			}
			off = max(off, (b.hi+WorkspaceAlign-1)&^(WorkspaceAlign-1))
		}
		p.Place[id] = Placement{Loc: InWorkspace, Offset: off}
		p.WorkspaceBytes = max(p.WorkspaceBytes, off+size)
		placed = append(placed, id)
	}
	return p, nil
}

// Check verifies the memory plan: every activation lies in the workspace at an aligned
// offset, two activations whose lifetimes overlap never share bytes, and every value a step
// reads is placed. Tests and the invariants build call it; a failure is a planner bug.
func (p *Plan) Check() error {
	s := p.Graph
	first := make([]int, len(s.Values))
	last := make([]int, len(s.Values))
	for i := range first {
		first[i], last[i] = -1, -1
	}
	for i := range s.Nodes {
		for _, id := range s.Nodes[i].Outputs {
			if id != NoValue {
				first[id], last[id] = i, i
			}
		}
		for _, id := range s.Nodes[i].Inputs {
			if id != NoValue {
				last[id] = max(last[id], i)
			}
		}
	}
	var acts []ValueID
	for i, pl := range p.Place {
		if pl.Loc != InWorkspace || first[i] < 0 {
			continue
		}
		if pl.Offset%WorkspaceAlign != 0 || pl.Offset < 0 || pl.Offset+s.Values[i].Bytes() > p.WorkspaceBytes {
			return fmt.Errorf("model %q batch %d: value %q at [%d, +%d) outside the workspace of %d bytes or misaligned", s.Name, p.Batch, s.Values[i].Name, pl.Offset, s.Values[i].Bytes(), p.WorkspaceBytes)
		}
		acts = append(acts, ValueID(i))
	}
	for i, a := range acts {
		for _, b := range acts[i+1:] {
			if first[a] <= last[b] && first[b] <= last[a] {
				pa, pb := p.Place[a].Offset, p.Place[b].Offset
				if pa < pb+s.Values[b].Bytes() && pb < pa+s.Values[a].Bytes() {
					return fmt.Errorf("model %q batch %d: live values %q and %q overlap in the workspace", s.Name, p.Batch, s.Values[a].Name, s.Values[b].Name)
				}
			}
		}
	}
	return nil
}
