package cuda

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clockwork-go/clockwork/runtime/device"
	"github.com/clockwork-go/clockwork/runtime/model"
)

func readF32(t *testing.T, path string) []float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, len(b)/4)
	for i := range x {
		x[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return x
}

func f32of(b []byte) []float32 {
	x := make([]float32, len(b)/4)
	for i := range x {
		x[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return x
}

func bytesOf(x []float32) []byte {
	b := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

func argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// zooModels lists MODEL_ZOO's model directories (ZOO_MODELS=a,b narrows them).
func zooModels(t *testing.T) (string, []string) {
	dir := os.Getenv("MODEL_ZOO")
	if dir == "" {
		t.Skip("MODEL_ZOO not set (a directory written by cw tools zoo -references N)")
	}
	var names []string
	if s := os.Getenv("ZOO_MODELS"); s != "" {
		names = strings.Split(s, ",")
	} else {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if _, err := os.Stat(filepath.Join(dir, e.Name(), "output.f32")); err == nil {
				names = append(names, e.Name())
			}
		}
	}
	return dir, names
}

// TestGPUZoo runs every zoo model against PyTorch's fp32 outputs (the zoo's references):
// batch 1 per input and batch 16 (or the largest that fits the references), max abs error ≤
// 1e-3 of the output scale and identical top-1; then re-binds to a second copy of the weights
// with the first poisoned and checks the output is bit-identical.
func TestGPUZoo(t *testing.T) {
	g := openGPU(t)
	dir, names := zooModels(t)
	h, err := NewHarness(g.d, 600<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			h.Reset()
			h.next = g.next // keep clear of the other tests' buffers
			gr, err := model.Load(filepath.Join(dir, name, "model.onnx"))
			if err != nil {
				t.Fatal(err)
			}
			m, err := model.Build(gr, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			opt := DefaultPrepareOptions()
			opt.FuseConv = os.Getenv("ZOO_NOFUSE") == ""
			ld, err := h.Load(m, []int{1, 16}, opt)
			if err != nil {
				t.Fatal(err)
			}
			defer ld.P.Close()
			p := ld.P
			in := readF32(t, filepath.Join(dir, name, "input.f32"))
			ref := readF32(t, filepath.Join(dir, name, "output.f32"))
			item := int(p.InputBytes(1) / 4)
			classes := int(p.OutputBytes(1) / 4)
			nref := len(in) / item
			if nref == 0 || len(ref) != nref*classes {
				t.Fatalf("references: %d inputs of %d, %d outputs of %d", len(in)/item, item, len(ref), classes)
			}
			got := make([]float32, 0, len(ref))
			for i := range nref {
				if err := h.Put(ld.In, bytesOf(in[i*item:(i+1)*item])); err != nil {
					t.Fatal(err)
				}
				if _, err := p.Run(1, ld.Pages, ld.In, ld.Out, ld.Work); err != nil {
					t.Fatal(err)
				}
				b, err := h.Get(ld.Out, classes*4)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, f32of(b)...)
			}
			check := func(what string, got, ref []float32) float64 {
				scale, worst := 0.0, 0.0
				for _, v := range ref {
					scale = max(scale, math.Abs(float64(v)))
				}
				top := 0
				for i := 0; i < len(ref)/classes; i++ {
					g, r := got[i*classes:(i+1)*classes], ref[i*classes:(i+1)*classes]
					for j := range g {
						worst = max(worst, math.Abs(float64(g[j])-float64(r[j])))
					}
					if argmax(g) == argmax(r) {
						top++
					}
				}
				rel := worst / scale
				if math.IsNaN(rel) || rel > 1e-3 || top != len(ref)/classes {
					t.Errorf("%s: max abs error %.3g of scale %.3g (%.2e), top-1 %d/%d", what, worst, scale, rel, top, len(ref)/classes)
				}
				return rel
			}
			rel1 := check("batch 1", got, ref)
			b16 := min(16, nref)
			rel16 := -1.0
			if b16 == 16 {
				if err := h.Put(ld.In, bytesOf(in[:16*item])); err != nil {
					t.Fatal(err)
				}
				if _, err := p.Run(16, ld.Pages, ld.In, ld.Out, ld.Work); err != nil {
					t.Fatal(err)
				}
				b, err := h.Get(ld.Out, 16*classes*4)
				if err != nil {
					t.Fatal(err)
				}
				rel16 = check("batch 16", f32of(b), ref[:16*classes])
			}
			// Re-bind: weights in other pages, the old ones poisoned, other IO buffers.
			pages2 := make([]device.Ptr, len(ld.Pages))
			for i := range pages2 {
				if pages2[i], err = h.Alloc(p.PageBytes()); err != nil {
					t.Fatal(err)
				}
			}
			if err := h.LoadPages(ld, pages2); err != nil {
				t.Fatal(err)
			}
			for _, pg := range ld.Pages {
				g.poison(t, uint64(pg), int(p.PageBytes()/4))
			}
			in2, _ := h.Alloc(p.InputBytes(1))
			out2, _ := h.Alloc(p.OutputBytes(1))
			if err := h.Put(in2, bytesOf(in[:item])); err != nil {
				t.Fatal(err)
			}
			t0 := time.Now()
			if _, err := p.Run(1, pages2, in2, out2, ld.Work); err != nil {
				t.Fatal(err)
			}
			rebindRun := time.Since(t0)
			t0 = time.Now()
			if _, err := p.Run(1, pages2, in2, out2, ld.Work); err != nil {
				t.Fatal(err)
			}
			plainRun := time.Since(t0)
			// Run allocates nothing, re-binding included (pages alternate between the two sets).
			flip := false
			if allocs := testing.AllocsPerRun(20, func() {
				pg := ld.Pages
				if flip = !flip; flip {
					pg = pages2
				}
				if _, err := p.Run(1, pg, in2, out2, ld.Work); err != nil {
					t.Fatal(err)
				}
			}); allocs != 0 {
				t.Errorf("Run allocates %.1f times per call", allocs)
			}
			if _, err := p.Run(1, pages2, in2, out2, ld.Work); err != nil {
				t.Fatal(err)
			}
			b, err := h.Get(out2, classes*4)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(f32of(b), got[:classes]) {
				t.Errorf("after re-binding to other pages the output differs")
			}
			st := p.Stats
			t.Logf("ZOO %s: refs %d, max err/scale b1 %.2e b16 %.2e, top-1 identical; kernels %v relocatable %v; convs %d (algo differs from heuristic in %d after the graph-level choice, fused %d, with residual %d, depthwise ours %d); prepare %v; re-bind+run %v vs run %v (wall)",
				name, nref, rel1, rel16, st.Kernels, st.Relocs, st.Convs, st.AlgoSwaps, st.FusedConvs, st.FusedResiduals, st.DepthwiseOurs, ld.PrepareElapsed.Round(time.Millisecond), rebindRun, plainRun)
		})
	}
}
