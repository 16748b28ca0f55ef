package e2e

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/clockwork-go/clockwork/bench"
	"github.com/clockwork-go/clockwork/client"
	"github.com/clockwork-go/clockwork/controller"
	"github.com/clockwork-go/clockwork/wire"
)

// samplePath is the Azure Functions 2019 sample committed in the repository (testdata/).
func samplePath(t testing.TB) string {
	f := "../testdata/azure-functions-2019/invocations_per_function.sample500.min0480-0959.csv"
	if _, err := os.Stat(f); err != nil {
		t.Fatalf("the committed Azure sample is missing: %v", err)
	}
	return f
}

// TestAzureReplay replays minutes 600–611 of the real Azure sample, compressed 60× (12 s), at
// about 400 r/s, onto 48 model instances (6 zoo models × 8) on 2 sim workers × 1 GPU, real input
// bytes, 100 ms SLO. It asserts that every request got exactly one answer (client side: each
// call returned once, none lost; controller side: its answer count equals the requests sent)
// and SLO attainment of at least 97 % (measured from the scheduled send time, so client-side
// delays on this shared machine count against it).
func TestAzureReplay(t *testing.T) {
	tr, err := bench.LoadAzure(samplePath(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	inst := Instances(8, "resnet50_v2", "resnet18_v2", "densenet121", "googlenet", "mobile_pose_resnet18_v1", "inceptionv3")
	names := make([]string, len(inst))
	for i, in := range inst {
		names[i] = in.Name
	}
	var reqLog bytes.Buffer
	ccfg := controller.DefaultConfig()
	ccfg.RequestLog = &reqLog
	ccfg.Listen = "127.0.0.1:0"
	cl, err := Start(ctx, ClusterConfig{Workers: 2, GPUsPerWorker: 1, Instances: inst, Controller: ccfg, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const rate, comp = 400.0, 60.0
	lf := rate / (tr.RatePerSecond(600, 12) * comp)
	arr, err := bench.Replay(tr, bench.ReplayConfig{Models: len(names), LoadFactor: lf, Compression: comp, StartMinute: 600, Minutes: 12, SLONs: 100e6, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(ctx, client.Config{Addr: cl.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tgt, err := bench.NewClientTarget(ctx, c, cl.Addr(), names, false)
	if err != nil {
		t.Fatal(err)
	}
	res, err := bench.RunOpen(ctx, tgt, names, arr, bench.RunOptions{DefaultSLONs: 100e6})
	if err != nil {
		t.Fatal(err)
	}
	s := res.Summarize()
	var tbl strings.Builder
	s.WriteTable(&tbl)
	t.Logf("%d arrivals, load factor %.4f:\n%s", len(arr), lf, tbl.String())
	c.Close()
	if err := cl.Close(); err != nil {
		t.Fatal(err)
	}
	st := cl.Ctl.Stats()
	var answered int64
	for _, n := range st.Answered {
		answered += n
	}
	if s.Sent != int64(len(arr)) || s.Answered != s.Sent || s.Lost != 0 {
		t.Errorf("client: %d arrivals, %d sent, %d answered, %d lost", len(arr), s.Sent, s.Answered, s.Lost)
	}
	if answered != s.Sent || st.Answered[wire.StatusOK] != s.OK {
		t.Errorf("controller answered %d (%d OK); client sent %d and saw %d OK", answered, st.Answered[wire.StatusOK], s.Sent, s.OK)
	}
	if lines := int64(strings.Count(reqLog.String(), "\n")) - 1; lines != s.Sent {
		t.Errorf("request log has %d lines for %d requests", lines, s.Sent)
	}
	if s.Attainment < 0.97 {
		t.Errorf("SLO attainment %.4f < 0.97", s.Attainment)
	}
}

// testLogger logs lifecycle events to the test log with -v and E2E_LOG=1.
func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("E2E_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
