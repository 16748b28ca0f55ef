package worker

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/clockwork-go/clockwork/runtime/sim"
	"github.com/clockwork-go/clockwork/wire"
)

// testProfile has small, fast models so tests take milliseconds.
func testProfile() *sim.Profile {
	b := func(batch int, ns int64) sim.BatchProfile {
		return sim.BatchProfile{Batch: batch, P50Ns: ns, P99Ns: ns, P9999Ns: ns}
	}
	return &sim.Profile{Version: 1, Device: "test", H2DBytesPerSec: 10e9, D2HBytesPerSec: 10e9, Models: []sim.ModelProfile{
		{ModelName: "fast", WeightsBytes: 3 << 20, InputBytes: 64, OutputBytes: 16, LoadNs: 300_000, Batches: []sim.BatchProfile{b(1, 100_000), b(2, 150_000), b(4, 200_000)}},
		{ModelName: "tiny", WeightsBytes: 1 << 20, InputBytes: 8, OutputBytes: 8, LoadNs: 100_000, Batches: []sim.BatchProfile{b(1, 1_000)}},
		{ModelName: "big", WeightsBytes: 5 << 20, InputBytes: 64, OutputBytes: 16, LoadNs: 500_000, Batches: []sim.BatchProfile{b(1, 100_000)}},
	}}
}

// testConfig: 1 MiB pages, 7 pages per GPU ("fast" takes 3, "big" 5).
func testConfig(gpus int) Config {
	return Config{Addr: "127.0.0.1:0", SimGPUs: gpus, Profile: testProfile(), PageBytes: 1 << 20, IOBytes: 8 << 20, IOSlotBytes: 64 << 10,
		WorkspaceBytes: 1 << 20, RegionBytes: 16 << 20, HostIOBytes: 16 << 20}
}

// startWorker runs a worker until the test ends.
func startWorker(t testing.TB, cfg Config) *Worker {
	t.Helper()
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker Run: %v", err)
		}
	})
	return w
}

// ctl is a scripted controller.
type ctl struct {
	t     testing.TB
	c     *wire.Conn
	peer  *wire.Hello
	wdone chan error
	res   wire.Result
	info  wire.ModelInfo
	state wire.WorkerState
	out   []byte
	clock func() int64
	id    uint64
}

func dialConn(t testing.TB, nc net.Conn, clock func() int64) *ctl {
	t.Helper()
	c, err := wire.NewConn(nc, wire.Config{Hello: wire.Hello{Role: wire.RoleController, Clock: wire.ClockUnixMono, Agent: []byte("test")}, WireClock: clock})
	if err != nil {
		t.Fatal(err)
	}
	peer, err := c.Handshake(time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	k := &ctl{t: t, c: c, peer: peer, wdone: make(chan error, 1), out: make([]byte, 1<<20), clock: clock}
	go func() { k.wdone <- c.WriteLoop() }()
	t.Cleanup(func() { k.c.Abort() })
	return k
}

func dial(t testing.TB, w *Worker) *ctl {
	t.Helper()
	nc, err := net.Dial("tcp", w.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return dialConn(t, nc, UnixMonoClock)
}

func (k *ctl) send(m wire.Message, payload []byte) {
	k.t.Helper()
	if err := k.c.Send(m, payload); err != nil {
		k.t.Fatal(err)
	}
}

// recv reads the next frame: a Result (output payload into k.out), ModelInfo or WorkerState.
func (k *ctl) recv() (wire.Type, error) {
	h, err := k.c.Next()
	if err != nil {
		return 0, err
	}
	switch h.Type {
	case wire.TypeResult:
		if err := k.c.DecodeInto(&k.res); err != nil {
			return 0, err
		}
		if int(h.PayloadLen) > cap(k.out) {
			return 0, fmt.Errorf("payload %d too long", h.PayloadLen)
		}
		k.out = k.out[:cap(k.out)][:h.PayloadLen]
		if err := k.c.ReadPayload(k.out); err != nil {
			return 0, err
		}
	case wire.TypeModelInfo:
		err = k.c.DecodeInto(&k.info)
	case wire.TypeWorkerState:
		err = k.c.DecodeInto(&k.state)
	default:
		err = fmt.Errorf("unexpected %s", h.Type)
	}
	return h.Type, err
}

func (k *ctl) mustRecv(want wire.Type) {
	k.t.Helper()
	got, err := k.recv()
	if err != nil {
		k.t.Fatal(err)
	}
	if got != want {
		k.t.Fatalf("got %s, want %s", got, want)
	}
}

// register registers a profile model by name; returns the answer's status.
func (k *ctl) register(id uint32, name string) wire.Status {
	k.t.Helper()
	k.id++
	k.send(&wire.LoadModel{RequestID: k.id, ModelID: id, Source: wire.SourceUpload, Name: []byte(name)}, nil)
	k.mustRecv(wire.TypeModelInfo)
	return k.info.Status
}

// do sends one windowed action and returns its Result (in k.res).
func (k *ctl) do(m wire.Message, payload []byte) *wire.Result {
	k.t.Helper()
	k.send(m, payload)
	k.mustRecv(wire.TypeResult)
	if k.res.ActionID != m.FrameID() {
		k.t.Fatalf("result for action %d, want %d", k.res.ActionID, m.FrameID())
	}
	return &k.res
}

func (k *ctl) window(model uint32, gpu int, from, to time.Duration) wire.Window {
	k.id++
	now := k.clock()
	return wire.Window{ActionID: k.id, ModelID: model, GPU: uint16(gpu), EarliestNs: now + int64(from), LatestNs: now + int64(to)}
}

func (k *ctl) load(model uint32, gpu int) wire.Status {
	k.t.Helper()
	return k.do(&wire.LoadWeights{Window: k.window(model, gpu, 0, time.Second)}, nil).Status
}

func (k *ctl) unload(model uint32, gpu int) wire.Status {
	k.t.Helper()
	return k.do(&wire.EvictWeights{Window: k.window(model, gpu, 0, time.Second)}, nil).Status
}

func (k *ctl) infer(model uint32, gpu, batch int, input []byte) *wire.Result {
	k.t.Helper()
	return k.do(&wire.Infer{Window: k.window(model, gpu, 0, time.Second), Batch: uint16(batch)}, input)
}

func contextWithCancel() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}
