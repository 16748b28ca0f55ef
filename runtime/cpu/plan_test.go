package cpu

import (
	"fmt"
	"slices"
	"sort"

	"github.com/clockwork-go/clockwork/alloc"
)

// planONNX is a small planner for tests: it turns a parsed ONNX model (one float input of
// shape inShape(batch), one output) into a Graph at the given batch sizes, independent of runtime/model.
// Initializers go to weight pages (no tensor spans a page); values computable from constants
// alone (shape chains) are folded into host constants; activations share workspace by
// liveness, first fit. It returns the graph and the contents of its weight pages.
func planONNX(m *onnxModel, batches []int, pageBytes int64, inShape func(batch int) []int) (*Graph, [][]byte, error) {
	g := &Graph{ModelName: "test", PageBytes: pageBytes}
	var pages [][]byte
	type placed struct {
		page int
		off  int64
	}
	where := map[string]placed{}
	names := make([]string, 0, len(m.inits))
	for k := range m.inits {
		names = append(names, k)
	}
	sort.Strings(names)
	var used int64
	for _, k := range names {
		t := m.inits[k]
		n := int64(len(t.Data)+7) &^ 7
		if n > pageBytes {
			// a run of pages of its own, contiguous in the region
			runPages := int((n + pageBytes - 1) / pageBytes)
			first := len(pages)
			for range runPages {
				pages = append(pages, alignedBytes(int(pageBytes)))
			}
			for i := range runPages {
				copy(pages[first+i], t.Data[min(len(t.Data), i*int(pageBytes)):])
			}
			g.Runs = append(g.Runs, alloc.Run{First: first, Pages: runPages})
			where[k] = placed{first, 0}
			used = pageBytes // the run's last page takes nothing else
			continue
		}
		if len(pages) == 0 || used+n > pageBytes {
			pages = append(pages, alignedBytes(int(pageBytes)))
			used = 0
		}
		copy(pages[len(pages)-1][used:], t.Data)
		where[k] = placed{len(pages) - 1, used}
		used += n
	}
	g.NumPages = len(pages)
	g.WeightBytes = int64(len(pages)) * pageBytes
	var inputName string
	for _, in := range m.inputs {
		if _, ok := m.inits[in.name]; !ok {
			inputName = in.name
		}
	}
	for _, b := range batches {
		p := &BatchPlan{Batch: b}
		ids := map[string]int{}
		add := func(v Value) int {
			p.Values = append(p.Values, v)
			ids[v.Name] = len(p.Values) - 1
			return len(p.Values) - 1
		}
		for _, k := range names {
			t := m.inits[k]
			add(Value{Name: k, Type: t.Type, Loc: InWeights, Page: where[k].page, Offset: where[k].off, Const: t})
		}
		p.Input = add(Value{Name: inputName, Type: Type{DType: Float32, Shape: inShape(b)}, Loc: InInput})
		lastUse := map[string]int{}
		for si, n := range m.nodes {
			for _, in := range n.inputs {
				lastUse[in] = si
			}
		}
		for _, o := range m.outputs {
			lastUse[o.name] = len(m.nodes)
		}
		// first-fit workspace allocator over [offset, size) free blocks
		type block struct{ off, size int64 }
		var free []block
		var top int64
		alloc := func(n int64) int64 {
			n = (n + 63) &^ 63
			for i, f := range free {
				if f.size >= n {
					free[i].off += n
					free[i].size -= n
					return f.off
				}
			}
			off := top
			top += n
			return off
		}
		release := func(off, n int64) {
			n = (n + 63) &^ 63
			free = append(free, block{off, n})
			slices.SortFunc(free, func(a, b block) int { return int(a.off - b.off) })
			merged := free[:1]
			for _, f := range free[1:] {
				last := &merged[len(merged)-1]
				if last.off+last.size == f.off {
					last.size += f.size
				} else {
					merged = append(merged, f)
				}
			}
			free = merged
		}
		for si, n := range m.nodes {
			node := n.Node
			types := make([]*Type, len(n.inputs))
			consts := make([]*Tensor, len(n.inputs))
			in := make([]int, len(n.inputs))
			// Shape depends only on the (static) type of its input: always folded
			allConst := true
			for j, name := range n.inputs {
				in[j] = -1
				if name == "" {
					continue
				}
				id, ok := ids[name]
				if !ok {
					return nil, nil, fmt.Errorf("node %q: input %q undefined", n.Name, name)
				}
				in[j] = id
				types[j], consts[j] = &p.Values[id].Type, p.Values[id].Const
				allConst = allConst && (n.Op == "Shape" || consts[j] != nil && p.Values[id].Loc == InHost)
			}
			k, err := Compile(&node, types, consts)
			if err != nil {
				return nil, nil, err
			}
			if allConst {
				// fold: run on the host now; the outputs become host constants
				ins := make([]*Tensor, len(n.inputs))
				copy(ins, consts)
				outs := make([]*Tensor, len(n.outputs))
				for j := range n.outputs {
					outs[j] = NewTensor(k.Out[j].DType, k.Out[j].Shape...)
				}
				if err := k.Run(ins, outs); err != nil {
					return nil, nil, err
				}
				for j, name := range n.outputs {
					add(Value{Name: name, Type: k.Out[j], Loc: InHost, Const: outs[j]})
				}
				continue
			}
			out := make([]int, len(n.outputs))
			for j, name := range n.outputs {
				out[j] = -1
				if name == "" {
					continue
				}
				v := Value{Name: name, Type: k.Out[j]}
				if name == m.outputs[0].name {
					v.Loc = InOutput
				} else {
					v.Offset = alloc(int64(v.Type.Bytes()))
				}
				out[j] = add(v)
			}
			p.Steps = append(p.Steps, Step{Node: node, In: in, Out: out})
			for _, name := range n.inputs {
				id, ok := ids[name]
				if ok && lastUse[name] == si && p.Values[id].Loc == InWorkspace {
					release(p.Values[id].Offset, int64(p.Values[id].Type.Bytes()))
				}
			}
			// outputs nobody reads are dead at once
			for _, id := range out {
				if id >= 0 && p.Values[id].Loc == InWorkspace {
					if _, read := lastUse[p.Values[id].Name]; !read {
						release(p.Values[id].Offset, int64(p.Values[id].Type.Bytes()))
					}
				}
			}
		}
		p.Output = ids[m.outputs[0].name]
		p.WorkspaceBytes = top
		g.Plans = append(g.Plans, p)
	}
	return g, pages, nil
}
