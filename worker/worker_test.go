package worker

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/clockwork-go/clockwork/wire"
)

// TestScriptedController drives a worker over loopback TCP through every message and every
// bad input, checking each answer's status.
func TestScriptedController(t *testing.T) {
	root := t.TempDir()
	cfg := testConfig(2)
	cfg.ModelRoot = root
	w := startWorker(t, cfg)
	k := dial(t, w)

	if k.peer.Role != wire.RoleWorker || string(k.peer.Backend) != "sim" || len(k.peer.GPUs) != 2 || k.peer.GPUs[0].Pages != 7 || k.peer.GPUs[0].PageBytes != 1<<20 {
		t.Fatalf("hello = %s", k.peer)
	}
	// Registration.
	if st := k.register(1, "fast"); st != wire.StatusOK || k.info.Model.WeightsPages != 3 || k.info.Model.InputBytes != 64 || len(k.info.Model.Batches) != 3 {
		t.Fatalf("register fast: %s", &k.info)
	}
	for _, c := range []struct {
		id   uint32
		name string
		want wire.Status
	}{{1, "other", wire.StatusModelExists}, {9, "fast", wire.StatusModelExists}, {2, "nope", wire.StatusUnknownModel}} {
		if st := k.register(c.id, c.name); st != c.want {
			t.Errorf("register %d %q: %s, want %s", c.id, c.name, st, c.want)
		}
	}
	// From a path under the root, from one outside, and an uploaded entry.
	entry := []byte(`{"name":"file","weights_bytes":1048576,"input_bytes":4,"output_bytes":4,"load_ns":1,"batches":[{"batch":1,"p50_ns":1000,"p99_ns":1000,"p9999_ns":1000}]}`)
	if err := os.WriteFile(filepath.Join(root, "file.json"), entry, 0o644); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "x.json")
	os.WriteFile(outside, entry, 0o644)
	os.Symlink(outside, filepath.Join(root, "link.json"))
	for _, c := range []struct {
		path string
		want wire.Status
	}{{"file.json", wire.StatusOK}, {outside, wire.StatusBadInput}, {"../" + filepath.Base(filepath.Dir(outside)) + "/x.json", wire.StatusBadInput}, {"link.json", wire.StatusBadInput}, {"missing.json", wire.StatusBadInput}} {
		k.id++
		k.send(&wire.LoadModel{RequestID: k.id, ModelID: uint32(10 + k.id), Source: wire.SourcePath, Name: []byte("p" + c.path), Path: []byte(c.path)}, nil)
		k.mustRecv(wire.TypeModelInfo)
		if k.info.Status != c.want {
			t.Errorf("register path %q: %s (%s), want %s", c.path, k.info.Status, k.info.Reason, c.want)
		}
	}
	k.send(&wire.LoadModel{RequestID: 100, ModelID: 3, Source: wire.SourceUpload, Name: []byte("up")}, []byte(`{"name":"up","input_bytes":4,"output_bytes":4,"load_ns":1,"batches":[{"batch":1,"p50_ns":1000,"p99_ns":1000,"p9999_ns":1000}]}`))
	k.mustRecv(wire.TypeModelInfo)
	if k.info.Status != wire.StatusOK || k.info.Model.WeightsPages != 0 {
		t.Fatalf("upload: %s", &k.info)
	}
	k.send(&wire.LoadModel{RequestID: 101, ModelID: 4, Source: wire.SourceUpload, Name: []byte("junk")}, []byte("{not json"))
	k.mustRecv(wire.TypeModelInfo)
	if k.info.Status != wire.StatusBadInput {
		t.Fatalf("junk upload: %s", &k.info)
	}
	if st := k.register(5, "big"); st != wire.StatusOK {
		t.Fatal(st)
	}

	// INFER before LOAD.
	in := make([]byte, 64*4)
	if r := k.infer(1, 0, 1, in[:64]); r.Status != wire.StatusModelNotLoaded {
		t.Fatalf("infer unloaded: %s", r)
	}
	// LOAD: 3 pages of 1 MiB at 10 GB/s ≈ 315 µs.
	r := k.do(&wire.LoadWeights{Window: k.window(1, 0, 0, time.Second)}, nil)
	if r.Status != wire.StatusOK || r.Phases[wire.PhaseWeights].EndNs-r.Phases[wire.PhaseWeights].StartNs < 300_000 {
		t.Fatalf("load: %s", r)
	}
	// Memory exhaustion: big needs 5 pages, 4 are free.
	if st := k.load(5, 0); st != wire.StatusNoMemory {
		t.Fatalf("load big: %s", st)
	}
	if st := k.load(5, 1); st != wire.StatusOK {
		t.Fatalf("load big on gpu 1: %s", st)
	}
	// A good INFER, with the phases in order and the output returned.
	r = k.infer(1, 0, 4, in)
	if r.Status != wire.StatusOK || len(k.out) != 4*16 || r.Batch != 4 || r.ExecNs != 200_000 {
		t.Fatalf("infer: %s, %d output bytes", r, len(k.out))
	}
	p := r.Phases
	if !(r.ReceivedNs <= p[wire.PhaseInput].StartNs && p[wire.PhaseInput].EndNs <= p[wire.PhaseExec].StartNs && p[wire.PhaseExec].EndNs <= p[wire.PhaseOutput].StartNs) {
		t.Fatalf("phases out of order: %s", r)
	}
	// Synthesised input without output.
	r = k.do(&wire.Infer{Window: k.window(1, 0, 0, time.Second), Batch: 2, Flags: wire.InferSynthInput | wire.InferNoOutput}, nil)
	if r.Status != wire.StatusOK || len(k.out) != 0 {
		t.Fatalf("synth infer: %s", r)
	}
	// Bad input, each with its own status.
	for _, c := range []struct {
		name string
		m    *wire.Infer
		in   []byte
		want wire.Status
	}{
		{"unknown model", &wire.Infer{Window: k.window(77, 0, 0, time.Second), Batch: 1}, in[:64], wire.StatusUnknownModel},
		{"bad batch", &wire.Infer{Window: k.window(1, 0, 0, time.Second), Batch: 3}, in[:3*64], wire.StatusBadBatch},
		{"short input", &wire.Infer{Window: k.window(1, 0, 0, time.Second), Batch: 2}, in[:64], wire.StatusBadInput},
		{"synth with payload", &wire.Infer{Window: k.window(1, 0, 0, time.Second), Batch: 1, Flags: wire.InferSynthInput}, in[:64], wire.StatusBadInput},
		{"no such gpu", &wire.Infer{Window: k.window(1, 7, 0, time.Second), Batch: 1}, in[:64], wire.StatusBadInput},
		{"inverted window", &wire.Infer{Window: k.window(1, 0, time.Second, 0), Batch: 1}, in[:64], wire.StatusBadWindow},
		{"window passed", &wire.Infer{Window: k.window(1, 0, -time.Second, -time.Millisecond), Batch: 1}, in[:64], wire.StatusWindowPassed},
		{"not loaded on gpu 1", &wire.Infer{Window: k.window(1, 1, 0, time.Second), Batch: 1}, in[:64], wire.StatusModelNotLoaded},
	} {
		if r := k.do(c.m, c.in); r.Status != c.want {
			t.Errorf("%s: %s, want %s", c.name, r, c.want)
		}
	}
	if r := k.do(&wire.LoadWeights{Window: k.window(1, 0, time.Second, 0)}, nil); r.Status != wire.StatusBadWindow {
		t.Errorf("inverted LOAD window: %s", r)
	}
	if r := k.do(&wire.LoadWeights{Window: k.window(42, 0, 0, time.Second)}, nil); r.Status != wire.StatusUnknownModel {
		t.Errorf("LOAD of an unknown model: %s", r)
	}
	// State.
	k.send(&wire.GetWorkerState{ActionID: 500}, nil)
	k.mustRecv(wire.TypeWorkerState)
	s := &k.state
	if s.ActionID != 500 || len(s.GPUs) != 2 || s.GPUs[0].FreePages != 4 || len(s.GPUs[0].Models) != 1 || s.GPUs[0].Models[0] != 1 || s.GPUs[1].FreePages != 2 || len(s.Registered) != 4 {
		t.Fatalf("state: %s", s)
	}
	// UNLOAD, twice; INFER after it.
	if st := k.unload(1, 0); st != wire.StatusOK {
		t.Fatal(st)
	}
	if st := k.unload(1, 0); st != wire.StatusModelNotLoaded {
		t.Fatal(st)
	}
	if r := k.infer(1, 0, 1, in[:64]); r.Status != wire.StatusModelNotLoaded {
		t.Fatal(r)
	}
	if st := k.load(5, 0); st != wire.StatusOK {
		t.Fatalf("load big after unload: %s", st)
	}
	// ClearCache: all GPUs.
	if r := k.do(&wire.ClearCache{ActionID: 600, GPU: wire.AllGPUs}, nil); r.Status != wire.StatusOK {
		t.Fatal(r)
	}
	if r := k.do(&wire.ClearCache{ActionID: 601, GPU: 9}, nil); r.Status != wire.StatusBadInput {
		t.Fatal(r)
	}
	k.send(&wire.GetWorkerState{ActionID: 501}, nil)
	k.mustRecv(wire.TypeWorkerState)
	for _, g := range k.state.GPUs {
		if g.FreePages != g.TotalPages || len(g.Models) != 0 {
			t.Fatalf("after clear-cache: %s", &k.state)
		}
	}
	// Telemetry saw every action.
	recs, _ := w.Telemetry().Since(nil, 0)
	if len(recs) < 20 {
		t.Fatalf("%d telemetry records", len(recs))
	}
}

// TestHostMemoryExhaustion: INFERs beyond the host IO pool are refused with no-memory, and
// the worker serves again once buffers return.
func TestHostMemoryExhaustion(t *testing.T) {
	cfg := testConfig(1)
	cfg.HostIOBytes = 8 << 10 // two 4 KiB buffers
	w := startWorker(t, cfg)
	k := dial(t, w)
	k.register(1, "fast")
	k.load(1, 0)
	in := make([]byte, 64)
	// Three INFERs far in the future hold buffers; the third finds none.
	var ids []uint64
	for range 3 {
		m := &wire.Infer{Window: k.window(1, 0, 200*time.Millisecond, time.Second), Batch: 1}
		ids = append(ids, m.ActionID)
		k.send(m, in)
	}
	k.mustRecv(wire.TypeResult)
	if k.res.ActionID != ids[2] || k.res.Status != wire.StatusNoMemory {
		t.Fatalf("third INFER: %s", &k.res)
	}
	for range 2 {
		k.mustRecv(wire.TypeResult)
		if k.res.Status != wire.StatusOK {
			t.Fatalf("queued INFER: %s", &k.res)
		}
	}
	if r := k.infer(1, 0, 1, in); r.Status != wire.StatusOK {
		t.Fatalf("after buffers returned: %s", r)
	}
}

// TestLostController: queued actions of a controller that disconnects are cancelled, and the
// next controller is served.
func TestLostController(t *testing.T) {
	w := startWorker(t, testConfig(1))
	k := dial(t, w)
	k.register(1, "fast")
	k.load(1, 0)
	for range 10 {
		k.send(&wire.Infer{Window: k.window(1, 0, time.Hour, 2*time.Hour), Batch: 1}, make([]byte, 64))
	}
	k.send(&wire.GetWorkerState{ActionID: 1}, nil) // after the INFERs: they are queued
	k.mustRecv(wire.TypeWorkerState)
	k.c.Abort()
	deadline := time.Now().Add(5 * time.Second)
	for {
		recs, _ := w.Telemetry().Since(nil, 0)
		n := 0
		for _, r := range recs {
			if r.Status == wire.StatusCancelled {
				n++
			}
		}
		if n == 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 10 queued actions cancelled", n)
		}
		time.Sleep(time.Millisecond) // polling the worker's telemetry, not waiting for time to pass
	}
	k2 := dial(t, w)
	if st := k2.register(2, "tiny"); st != wire.StatusOK {
		t.Fatal(st)
	}
	if r := k2.infer(1, 0, 1, make([]byte, 64)); r.Status != wire.StatusOK {
		t.Fatalf("new controller's INFER: %s", r)
	}
}

// TestGracefulShutdown: every queued action is answered shutting-down, then a goodbye.
func TestGracefulShutdown(t *testing.T) {
	cfg := testConfig(1)
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := contextWithCancel()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	k := dial(t, w)
	k.register(1, "fast")
	k.load(1, 0)
	for range 5 {
		k.send(&wire.Infer{Window: k.window(1, 0, time.Hour, 2*time.Hour), Batch: 1}, make([]byte, 64))
	}
	k.send(&wire.GetWorkerState{ActionID: 1}, nil)
	k.mustRecv(wire.TypeWorkerState)
	cancel()
	for i := range 5 {
		k.mustRecv(wire.TypeResult)
		if k.res.Status != wire.StatusShuttingDown {
			t.Fatalf("result %d: %s", i, &k.res)
		}
	}
	if _, err := k.recv(); err == nil {
		t.Fatal("no goodbye after shutdown")
	} else if pe, ok := err.(*wire.PeerError); !ok || pe.Status != wire.StatusShuttingDown {
		t.Fatalf("after shutdown: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
