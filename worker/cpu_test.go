package worker_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/clockwork-go/clockwork/client"
	"github.com/clockwork-go/clockwork/controller"
	"github.com/clockwork-go/clockwork/internal/zootest"
	"github.com/clockwork-go/clockwork/runtime/cpu"
	"github.com/clockwork-go/clockwork/runtime/device"
	"github.com/clockwork-go/clockwork/runtime/model"
	"github.com/clockwork-go/clockwork/wire"
	"github.com/clockwork-go/clockwork/worker"
)

const tinyIn, tinyOut = 3 * 8 * 8 * 4, 10 * 4

// directRun runs the model file at path on a fresh cpu device at batch 1, with no worker, and
// returns the output bytes.
func directRun(t *testing.T, path string, pageBytes int64, input []byte) []byte {
	t.Helper()
	g, err := model.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	built, err := model.Build(g, []int{1}, pageBytes)
	if err != nil {
		t.Fatal(err)
	}
	cg, err := cpu.FromModel(built)
	if err != nil {
		t.Fatal(err)
	}
	l := built.Layout
	weights := make([]byte, int64(l.Pages)*l.PageSize)
	for i, w := range built.Weights {
		pl := l.Placements[i]
		w.AppendBytes(weights[int64(pl.Page)*l.PageSize+pl.Offset:][:0])
	}
	var wsBytes int64
	for _, p := range built.Plans {
		wsBytes = max(wsBytes, p.WorkspaceBytes)
	}
	devs, err := (&cpu.Backend{}).Open(int64(len(weights)+2*len(input)) + wsBytes + 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	d := devs[0]
	defer d.Close()
	p, err := d.Prepare(cg, []int{1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	base := d.Info().Base
	pages := make([]device.Ptr, l.Pages)
	for i := range pages {
		pages[i] = base + device.Ptr(int64(i)*l.PageSize)
		if _, err := d.CopyIn(device.LaneWeights, pages[i], weights[int64(i)*l.PageSize:][:l.PageSize]); err != nil {
			t.Fatal(err)
		}
	}
	in := base + device.Ptr(len(weights))
	out := in + device.Ptr(len(input))
	ws := out + device.Ptr(p.OutputBytes(1)+4096)
	if _, err := d.CopyIn(device.LaneInput, in, input); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Run(1, pages, in, out, ws); err != nil {
		t.Fatal(err)
	}
	y := make([]byte, p.OutputBytes(1))
	if _, err := d.CopyOut(device.LaneOutput, y, out); err != nil {
		t.Fatal(err)
	}
	return y
}

func tinyInput(seed int) []byte {
	b := make([]byte, 0, tinyIn)
	for i := range tinyIn / 4 {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32((i*seed+seed)%13)/7-0.9))
	}
	return b
}

// cpuWorkerConfig: a cpu worker with 4 KiB pages, small arenas, and the tiny model's root.
func cpuWorkerConfig(root string) worker.Config {
	return worker.Config{Addr: "127.0.0.1:0", Backend: &cpu.Backend{}, Compile: func(m *model.Model) (device.Model, error) { return cpu.FromModel(m) },
		ModelRoot: root, PageBytes: 4096, RegionBytes: 4 << 20, IOBytes: 1 << 20, IOSlotBytes: 8 << 10, WorkspaceBytes: 1 << 20,
		HostIOBytes: 4 << 20, Batches: []int{1, 2, 4, 8}}
}

// serveCPU starts a cpu worker (cfg) and a controller registering models (name → path under
// cfg.ModelRoot), waits until the controller lists them all, and returns a client. Everything
// stops when the test ends.
func serveCPU(t *testing.T, cfg worker.Config, execNs int64, models ...controller.ModelSource) (*client.Client, *worker.Worker) {
	t.Helper()
	w, err := worker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Add(1)
	go func() { defer wg.Done(); _ = w.Run(ctx) }()
	ccfg := controller.DefaultConfig()
	ccfg.Listen = "127.0.0.1:0"
	ccfg.Workers = []string{w.Addr().String()}
	ccfg.Models = models
	ccfg.Profile = func(name string, desc *wire.ModelDesc) ([]int64, int64, bool) {
		exec := make([]int64, len(desc.Batches))
		for i, b := range desc.Batches {
			exec[i] = execNs * int64(b)
		}
		return exec, 1e6, true
	}
	ctl, err := controller.New(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); _ = ctl.Run(ctx) }()
	select {
	case <-ctl.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("controller not ready")
	}
	c, err := client.Dial(ctx, client.Config{Addr: ctl.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// Ready means listening; the models register on the worker after that.
	tk := time.NewTicker(5 * time.Millisecond)
	defer tk.Stop()
	for deadline := time.Now().Add(60 * time.Second); ; <-tk.C {
		ms, err := c.ListModels(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) == len(models) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d models registered after 60 s", len(ms), len(models))
		}
	}
	return c, w
}

// TestCPUBackendEndToEnd serves a Go-written ONNX model through a real controller and a cpu
// worker over loopback: registration from a path under the model root (model.Load → Build →
// cpu.FromModel, weights laid out in 4 KiB pages with a 3-page run), LOAD copying the pages,
// INFER with inputs from the socket. Every output equals a direct runtime/cpu run of the same
// input, bit for bit, whatever batch the controller formed.
func TestCPUBackendEndToEnd(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "tiny.onnx")
	if err := os.WriteFile(path, worker.TinyONNX(), 0o644); err != nil {
		t.Fatal(err)
	}
	c, w := serveCPU(t, cpuWorkerConfig(root), 20e6, controller.ModelSource{Name: "tiny", Path: "tiny.onnx"}, controller.ModelSource{Name: "tiny-b", Path: "tiny.onnx"})
	ctx := t.Context()
	const n = 24
	var mu sync.Mutex
	outs := make([][]byte, n)
	errs := make([]error, n)
	var rg sync.WaitGroup
	for i := range n {
		rg.Add(1)
		go func() {
			defer rg.Done()
			name := []string{"tiny", "tiny-b"}[i%2]
			r, err := c.Infer(ctx, name, tinyInput(i+1), client.InferOptions{SLO: 20 * time.Second})
			mu.Lock()
			outs[i], errs[i] = r.Output, err
			mu.Unlock()
		}()
	}
	rg.Wait()
	batched := false
	for i := range n {
		if errs[i] != nil {
			for _, r := range recordsOf(w) {
				t.Logf("worker: %s %s model %d batch %d window [%d, %d] lateness %d", r.Type, r.Status, r.Model, r.Batch, r.EarliestNs, r.LatestNs, r.LatenessNs)
			}
			t.Fatalf("request %d: %v", i, errs[i])
		}
		want := directRun(t, path, 4096, tinyInput(i+1))
		if len(outs[i]) != tinyOut || !bytes.Equal(outs[i], want) {
			t.Fatalf("request %d: output %x, want %x (direct runtime/cpu run)", i, outs[i], want)
		}
	}
	for _, r := range recordsOf(w) {
		if r.Type == wire.TypeInfer && r.Status == wire.StatusOK && r.Batch > 1 {
			batched = true
		}
	}
	t.Logf("%d requests answered, bit-equal to direct runs; some batched: %v", n, batched)
}

func recordsOf(w *worker.Worker) []worker.Record {
	recs, _ := w.Telemetry().Since(nil, 0)
	return recs
}

// TestZooThroughWorker (models from internal/zootest: MODEL_ZOO or a cached PyTorch export): torchvision exports served by controller + cpu worker in 1 MiB pages
// (resnet18 has tensors over a page: runs); each image's output equals a direct runtime/cpu run
// bit for bit and PyTorch's within 1e-4 of the output scale.
func TestZooThroughWorker(t *testing.T) {
	for _, name := range []string{"squeezenet1_1", "resnet18"} {
		t.Run(name, func(t *testing.T) { zooThroughWorker(t, zootest.Dir(t, name), name) })
	}
}

func zooThroughWorker(t *testing.T, zoo, name string) {
	path := filepath.Join(zoo, "model.onnx")
	in, err1 := os.ReadFile(filepath.Join(zoo, "input.f32"))
	ref, err2 := os.ReadFile(filepath.Join(zoo, "output.f32"))
	if _, err := os.Stat(path); err != nil || err1 != nil || err2 != nil {
		t.Fatalf("%s: model, input.f32 and output.f32 needed: %v %v %v", zoo, err, err1, err2)
	}
	const img, out = 3 * 224 * 224 * 4, 1000 * 4
	n := len(in) / img
	if n == 0 || len(in) != n*img || len(ref) != n*out {
		t.Fatalf("input %d and output %d bytes are not %d images", len(in), len(ref), n)
	}
	cfg := cpuWorkerConfig(filepath.Dir(zoo))
	cfg.PageBytes, cfg.RegionBytes, cfg.IOBytes, cfg.IOSlotBytes, cfg.WorkspaceBytes, cfg.HostIOBytes = 1<<20, 256<<20, 32<<20, 4<<20, 128<<20, 64<<20
	cfg.Batches = []int{1, 2}
	c, _ := serveCPU(t, cfg, 1e9, controller.ModelSource{Name: name, Path: path})
	for i := range n {
		x := in[i*img : (i+1)*img]
		r, err := c.Infer(t.Context(), name, x, client.InferOptions{SLO: 60 * time.Second})
		if err != nil {
			t.Fatalf("image %d: %v", i, err)
		}
		if want := directRun(t, path, 1<<20, x); !bytes.Equal(r.Output, want) {
			t.Fatalf("image %d: output differs from a direct runtime/cpu run", i)
		}
		var maxErr, scale float64
		for k := 0; k < out; k += 4 {
			got := float64(math.Float32frombits(binary.LittleEndian.Uint32(r.Output[k:])))
			want := float64(math.Float32frombits(binary.LittleEndian.Uint32(ref[i*out+k:])))
			maxErr, scale = max(maxErr, math.Abs(got-want)), max(scale, math.Abs(want))
		}
		t.Logf("image %d: bit-equal to runtime/cpu; vs PyTorch max abs error %.3g, output scale %.3g", i, maxErr, scale)
		if maxErr > 1e-4*scale {
			t.Errorf("image %d: max abs error %.3g vs PyTorch > 1e-4 of %.3g", i, maxErr, scale)
		}
	}
}
