package cpu

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/clockwork-go/clockwork/runtime/device"
)

// BenchmarkResNet18 is the CPU reference throughput for resnet18 at batch 1 through the
// backend's Run (for the record; this backend is the oracle, not a fast path).
func BenchmarkResNet18(b *testing.B) {
	dir := torchRefDir(b, "resnet18")
	buf, err := os.ReadFile(filepath.Join(dir, "model.onnx"))
	if err != nil {
		b.Fatal(err)
	}
	m, err := parseModel(buf)
	if err != nil {
		b.Fatal(err)
	}
	g, pages, err := planONNX(m, []int{1}, 16<<20, func(n int) []int { return []int{n, 3, 224, 224} })
	if err != nil {
		b.Fatal(err)
	}
	pl := g.Plans[0]
	devs, err := (&Backend{}).Open(g.WeightBytes + pl.WorkspaceBytes + 1<<20)
	if err != nil {
		b.Fatal(err)
	}
	d := devs[0]
	defer d.Close()
	prog, err := d.Prepare(g, []int{1})
	if err != nil {
		b.Fatal(err)
	}
	base := d.Info().Base
	addrs := make([]device.Ptr, len(pages))
	for i := range pages {
		addrs[i] = base + device.Ptr(i)*device.Ptr(g.PageBytes)
		d.CopyIn(device.LaneWeights, addrs[i], pages[i])
	}
	in := base + device.Ptr(g.WeightBytes)
	out := in + device.Ptr(prog.InputBytes(1))
	ws := out + device.Ptr(prog.OutputBytes(1)+63)&^63
	x := readF32(b, filepath.Join(dir, "input.f32"), 8*3*224*224)[:3*224*224]
	d.CopyIn(device.LaneInput, in, bytesOf(x))
	b.SetBytes(prog.InputBytes(1))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := prog.Run(1, addrs, in, out, ws); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "img/s")
}

// BenchmarkConv3x3 is one resnet18 layer-1 convolution (64→64, 56×56, 3×3, pad 1) at batch 1.
func BenchmarkConv3x3(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	p := &ConvParams{N: 1, C: 64, M: 64, Group: 1, In: [3]int{1, 56, 56}, Kernel: [3]int{1, 3, 3}, Out: [3]int{1, 56, 56},
		Stride: [3]int{1, 1, 1}, Dilation: [3]int{1, 1, 1}, PadBegin: [3]int{0, 1, 1}}
	x, w, bias, y := randSlice(r, p.XLen()), randSlice(r, p.WLen()), randSlice(r, p.M), make([]float32, p.YLen())
	flops := 2 * float64(p.YLen()) * float64(p.C*9)
	b.ReportAllocs()
	for b.Loop() {
		conv(p, x, w, bias, y)
	}
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
