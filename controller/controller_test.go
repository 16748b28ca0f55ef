package controller

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/clockwork-go/clockwork/client"
	"github.com/clockwork-go/clockwork/wire"
)

type rig struct {
	t       testing.TB
	ctl     *Controller
	workers []*testWorker
	cli     *client.Client
	cancel  context.CancelFunc
	closed  bool
	done    chan error
	reqLog  bytes.Buffer
	actLog  bytes.Buffer
}

func newRig(t testing.TB, workers, gpus int, synth bool, models ...string) *rig {
	return newRigPages(t, workers, gpus, synth, 64, models...)
}

func newRigPages(t testing.TB, workers, gpus int, synth bool, pages uint32, models ...string) *rig {
	return newRigWith(t, workers, gpus, synth, pages, nil, models...)
}

// newRigWith is newRigPages with tweak applied to the controller's configuration.
func newRigWith(t testing.TB, workers, gpus int, synth bool, pages uint32, tweak func(*Config), models ...string) *rig {
	r := &rig{t: t, done: make(chan error, 1)}
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.SynthInput = synth
	cfg.WorkerTimeout = 200 * time.Millisecond
	cfg.RedialEvery = 20 * time.Millisecond
	cfg.RequestLog, cfg.ActionLog = &r.reqLog, &r.actLog
	for _, m := range models {
		cfg.Models = append(cfg.Models, ModelSource{Name: m, Path: m + ".onnx"})
	}
	if tweak != nil {
		tweak(&cfg)
	}
	for range workers {
		w := newTestWorker(gpus, pages, synth)
		r.workers = append(r.workers, w)
		cfg.Workers = append(cfg.Workers, w.addr())
	}
	ctl, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.ctl = ctl
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- ctl.Run(ctx) }()
	<-ctl.Ready()
	r.cli, err = client.Dial(context.Background(), client.Config{Addr: ctl.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	// Wait until every model is served (the workers have joined).
	deadline := time.Now().Add(30 * time.Second)
	for {
		ms, err := r.cli.ListModels(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) == len(models) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d models registered after 30s", len(ms), len(models))
		}
		time.Sleep(5 * time.Millisecond) // polling a remote service: no event to wait on
	}
	return r
}

func (r *rig) close() {
	_ = r.cli.Close()
	r.cancel()
	if err := <-r.done; err != nil {
		r.t.Fatal(err)
	}
	for _, w := range r.workers {
		w.close()
		if n := w.late.Load(); n != 0 {
			r.t.Fatalf("%d INFERs ran outside their windows", n)
		}
	}
}

func input(i uint64) []byte {
	b := make([]byte, testInBytes)
	binary.LittleEndian.PutUint64(b, i)
	binary.LittleEndian.PutUint64(b[8:], ^i)
	return b
}

func TestEndToEnd(t *testing.T) {
	r := newRig(t, 2, 2, false, "a", "b")
	ctx := context.Background()

	// Many concurrent requests over one connection; each output must be its own input's.
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for i := range uint64(400) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			model := []string{"a", "b"}[i%2]
			res, err := r.cli.Infer(ctx, model, input(i), client.InferOptions{SLO: 200 * time.Millisecond})
			if err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(res.Output, input(i)[:testOutBytes]) {
				errs <- errors.New("output of another request")
			}
		}()
	}
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		n++
		if !errors.Is(err, client.ErrCannotMeetSLO) {
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if n > 40 {
		t.Fatalf("%d of 400 requests dropped at light load", n)
	}

	// Distinct rejections.
	if _, err := r.cli.Infer(ctx, "nope", input(1), client.InferOptions{}); !errors.Is(err, client.ErrUnknownModel) {
		t.Fatalf("unknown model: got %v", err)
	}
	if _, err := r.cli.Infer(ctx, "a", []byte{1, 2, 3}, client.InferOptions{}); !errors.Is(err, client.ErrBadInput) {
		t.Fatalf("short input: got %v", err)
	}
	if _, err := r.cli.Infer(ctx, "a", input(1), client.InferOptions{SLO: time.Millisecond}); !errors.Is(err, client.ErrCannotMeetSLO) {
		t.Fatalf("1ms SLO: got %v", err)
	}

	// A model registered at run time is served.
	if _, err := r.cli.LoadModel(ctx, "c", "c.onnx"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.cli.LoadModel(ctx, "c", "c.onnx"); !errors.Is(err, &client.StatusError{Status: wire.StatusModelExists}) {
		t.Fatalf("duplicate model: got %v", err)
	}
	if res, err := r.cli.Infer(ctx, "c", input(7), client.InferOptions{SLO: 100 * time.Millisecond}); err != nil || !bytes.Equal(res.Output, input(7)[:8]) {
		t.Fatalf("run-time model: %v", err)
	}

	// A model uploaded through the controller is served too; an empty upload is refused.
	if _, err := r.cli.UploadModel(ctx, "d", []byte("model bytes")); err != nil {
		t.Fatal(err)
	}
	if res, err := r.cli.Infer(ctx, "d", input(8), client.InferOptions{SLO: 100 * time.Millisecond}); err != nil || !bytes.Equal(res.Output, input(8)[:8]) {
		t.Fatalf("uploaded model: %v", err)
	}
	if _, err := r.cli.UploadModel(ctx, "e", nil); !errors.Is(err, client.ErrBadInput) {
		t.Fatalf("empty upload: got %v", err)
	}

	// A cancelled context sends Cancel; the call returns the context's error.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := r.cli.Infer(cctx, "a", input(9), client.InferOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: got %v", err)
	}
	r.close()

	// Telemetry: a header and one row per answer that reached the scheduler, Clockwork's columns.
	st := r.ctl.Stats()
	if st.Late != 0 {
		t.Fatalf("%d answers after their deadlines", st.Late)
	}
	t.Logf("answers by status: %v", st.Answered[:19])
	reqRows := bytes.Split(bytes.TrimSpace(r.reqLog.Bytes()), []byte("\n"))
	if got := len(bytes.Split(reqRows[0], []byte("\t"))); got != 12 {
		t.Fatalf("request log has %d columns, want 12", got)
	}
	want := 0
	for _, n := range st.Answered {
		want += int(n)
	}
	if len(reqRows)-1 != want {
		t.Fatalf("request log has %d rows, want %d", len(reqRows)-1, want)
	}
	actRows := bytes.Split(bytes.TrimSpace(r.actLog.Bytes()), []byte("\n"))
	if len(actRows) < 10 || len(bytes.Split(actRows[1], []byte("\t"))) != 23 {
		t.Fatalf("action log: %d rows, first %q", len(actRows), actRows[min(1, len(actRows)-1)])
	}
}

// TestWorkerLoss: a worker that disconnects has its requests retried on the other; a worker
// that goes silent is declared lost; both come back.
func TestWorkerLoss(t *testing.T) {
	r := newRig(t, 2, 1, false, "a")
	defer r.close()
	ctx := context.Background()
	for i := range uint64(20) {
		if _, err := r.cli.Infer(ctx, "a", input(i), client.InferOptions{SLO: 100 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
	}
	// Disconnect worker 0 while requests are in flight: every request still gets one answer,
	// success or a distinct status, within its deadline plus the bound.
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[string]int{}
	for i := range uint64(200) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			_, err := r.cli.Infer(ctx, "a", input(i), client.InferOptions{SLO: 50 * time.Millisecond})
			// Generous: the client and test goroutines share 2 cores with the rest of CI; this
			// catches answers held until the worker timeout or never sent, not scheduler jitter.
			if el := time.Since(start); el > 50*time.Millisecond+150*time.Millisecond {
				t.Errorf("answer after %v", el)
			}
			k := "ok"
			var se *client.StatusError
			if errors.As(err, &se) {
				k = se.Status.String()
			} else if err != nil {
				k = err.Error()
			}
			mu.Lock()
			statuses[k]++
			mu.Unlock()
		}()
		if i == 100 {
			r.workers[0].dropConns()
		}
	}
	wg.Wait()
	for k := range statuses {
		switch k {
		case "ok", "cannot-meet-slo", "worker-lost":
		default:
			t.Fatalf("unexpected outcome %q: %v", k, statuses)
		}
	}
	t.Logf("after disconnect: %v", statuses)

	// Silence worker 1: it is declared lost after WorkerTimeout; worker 0 is back by then.
	r.workers[1].silent.Store(true)
	time.Sleep(400 * time.Millisecond) // WorkerTimeout is 200ms: wait it out
	r.workers[1].silent.Store(false)
	ok := 0
	for i := range uint64(50) {
		if _, err := r.cli.Infer(ctx, "a", input(i), client.InferOptions{SLO: 100 * time.Millisecond}); err == nil {
			ok++
		}
	}
	if ok < 45 {
		t.Fatalf("only %d of 50 requests served after the workers came back", ok)
	}
}
