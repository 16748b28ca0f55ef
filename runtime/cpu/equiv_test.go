package cpu

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clockwork-go/clockwork/internal/zootest"
	"github.com/clockwork-go/clockwork/runtime/device"
	"github.com/clockwork-go/clockwork/runtime/model"
)

// Model equivalence against PyTorch on CPU: torchvision architectures with random weights,
// exported to ONNX by the zoo script (scripts/zoo/export.py, what `cw tools zoo` runs) together
// with PyTorch's own outputs for 8 random inputs (--references 8). The criterion (issue 9): max abs error ≤ 1e-4 of the output scale (the
// largest |output| of the reference) and the same top-1 class for every input.

var equivModels = []string{"squeezenet1_1", "resnet18", "mobilenet_v3_small", "densenet121", "googlenet", "shufflenet_v2_x1_0"}

// torchRefDir returns the directory holding the reference files for model (internal/zootest).
func torchRefDir(t testing.TB, model string) string { return zootest.Dir(t, model) }

func readF32(t testing.TB, path string, n int) []float32 {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 4*n {
		t.Fatalf("%s: %d bytes, want %d", path, len(b), 4*n)
	}
	out := make([]float32, n)
	copy(bytesOf(out), b)
	return out
}

// equivCheck compares got with PyTorch's want ([batch, classes]): it returns the max abs error,
// the output scale, and the inputs whose top-1 differs.
func equivCheck(got, want []float32, batch int) (maxErr, scale float64, topDiff []int) {
	classes := len(want) / batch
	for i := range want {
		maxErr = math.Max(maxErr, math.Abs(float64(got[i])-float64(want[i])))
		scale = math.Max(scale, math.Abs(float64(want[i])))
	}
	for b := 0; b < batch; b++ {
		if argmax(got[b*classes:(b+1)*classes]) != argmax(want[b*classes:(b+1)*classes]) {
			topDiff = append(topDiff, b)
		}
	}
	return maxErr, scale, topDiff
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// layoutPages writes a built model's weights into its layout's pages.
func layoutPages(m *model.Model) [][]byte {
	l := m.Layout
	all := alignedBytes(int(int64(l.Pages) * l.PageSize))
	for i, w := range m.Weights {
		pl := l.Placements[i]
		w.AppendBytes(all[int64(pl.Page)*l.PageSize+pl.Offset:][:0])
	}
	pages := make([][]byte, l.Pages)
	for i := range pages {
		pages[i] = all[int64(i)*l.PageSize:][:l.PageSize]
	}
	return pages
}

// runOnBackend prepares g on a fresh cpu device, loads the weight pages, runs one batch and
// returns the output and the run's span.
func runOnBackend(t testing.TB, g *Graph, pages [][]byte, batch int, input []float32, checkAllocs bool) ([]float32, time.Duration) {
	pl := g.Plans[0]
	for _, p := range g.Plans {
		if p.Batch == batch {
			pl = p
		}
	}
	inBytes, outBytes := int64(4*len(input)), int64(pl.Values[pl.Output].Type.Bytes())
	region := g.WeightBytes + pl.WorkspaceBytes + inBytes + outBytes + 4096
	devs, err := (&Backend{}).Open(region)
	if err != nil {
		t.Fatal(err)
	}
	dev := devs[0]
	defer dev.Close()
	prog, err := dev.Prepare(g, []int{batch})
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	if prog.InputBytes(batch) != inBytes || prog.OutputBytes(batch) != outBytes || prog.WorkspaceBytes(batch) != pl.WorkspaceBytes {
		t.Fatalf("program sizes %d/%d/%d, want %d/%d/%d", prog.InputBytes(batch), prog.OutputBytes(batch), prog.WorkspaceBytes(batch), inBytes, outBytes, pl.WorkspaceBytes)
	}
	// lay out the region: weight pages in reverse order (so page i's address is not simply
	// base + i·size), then input, output, workspace
	base := dev.Info().Base
	addrs := make([]device.Ptr, len(pages))
	next := base
	for i := len(pages) - 1; i >= 0; i-- {
		addrs[i] = next
		if _, err := dev.CopyIn(device.LaneWeights, next, pages[i]); err != nil {
			t.Fatal(err)
		}
		next += device.Ptr(g.PageBytes)
	}
	in, out, ws := next, next+device.Ptr(inBytes+7)&^7, next+device.Ptr(inBytes+7)&^7+device.Ptr(outBytes+7)&^7
	if _, err := dev.CopyIn(device.LaneInput, in, bytesOf(input)); err != nil {
		t.Fatal(err)
	}
	span, err := prog.Run(batch, addrs, in, out, ws)
	if err != nil {
		t.Fatal(err)
	}
	if checkAllocs {
		// a second run allocates nothing once the workers' scratch has grown
		for range 3 {
			prog.Run(batch, addrs, in, out, ws)
		}
		if a := testing.AllocsPerRun(1, func() { prog.Run(batch, addrs, in, out, ws) }); a != 0 {
			t.Errorf("Run allocates %v times", a)
		}
	}
	res := make([]float32, outBytes/4)
	if _, err := dev.CopyOut(device.LaneOutput, bytesOf(res), out); err != nil {
		t.Fatal(err)
	}
	return res, time.Duration(span.Dur())
}

// TestTorchEquivalence runs each model through the backend (Prepare, CopyIn of weight pages and
// input, Run, CopyOut) at batch 8 and compares with PyTorch.
func TestTorchEquivalence(t *testing.T) {
	models := equivModels
	if testing.Short() {
		models = []string{"squeezenet1_1", "mobilenet_v3_small"}
	}
	if env := os.Getenv("CPU_EQUIV_MODELS"); env != "" {
		models = strings.Split(env, ",") // other torchvision models, checked by hand
	}
	for _, name := range models {
		t.Run(name, func(t *testing.T) {
			dir := torchRefDir(t, name)
			const batch = 8
			// read and built by runtime/model (Optimize: BatchNorm folding, fusions;
			// Specialize; memory plan; weight layout from alloc), the path real models take
			mg, err := model.Load(filepath.Join(dir, "model.onnx"))
			if err != nil {
				t.Fatal(err)
			}
			built, err := model.Build(mg, []int{1, batch}, 0)
			if err != nil {
				t.Fatal(err)
			}
			g, err := FromModel(built)
			if err != nil {
				t.Fatal(err)
			}
			pages := layoutPages(built)
			var meta struct{ Input []int }
			if b, err := os.ReadFile(filepath.Join(dir, "meta.json")); err != nil {
				t.Fatal(err)
			} else if err := json.Unmarshal(b, &meta); err != nil || len(meta.Input) != 4 || meta.Input[0] != batch {
				t.Fatalf("meta.json: input %v, %v", meta.Input, err)
			}
			x := readF32(t, filepath.Join(dir, "input.f32"), numel(meta.Input))
			y, dur := runOnBackend(t, g, pages, batch, x, name == "squeezenet1_1" || name == "mobilenet_v3_small")
			want := readF32(t, filepath.Join(dir, "output.f32"), len(y))
			maxErr, scale, topDiff := equivCheck(y, want, batch)
			t.Logf("%s: batch %d run %v, %d weight pages, workspace %.1f MiB; max abs error %.3g, output scale %.3g, ratio %.3g; top-1 differs on %d of %d",
				name, batch, dur.Round(time.Millisecond), g.NumPages, float64(g.Plans[len(g.Plans)-1].WorkspaceBytes)/(1<<20), maxErr, scale, maxErr/scale, len(topDiff), batch)
			if scale == 0 || math.IsNaN(scale) {
				t.Fatalf("degenerate reference: output scale %v", scale)
			}
			if maxErr > 1e-4*scale {
				t.Errorf("max abs error %.3g > 1e-4 of output scale %.3g", maxErr, scale)
			}
			if len(topDiff) > 0 {
				t.Errorf("top-1 differs from PyTorch on inputs %v", topDiff)
			}
		})
	}
}
