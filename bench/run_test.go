package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/clockwork-go/clockwork/wire"
)

// fakeTarget answers after 2 ms, except: model 1 is rejected, and the first model-0 request from
// the stall-th call on (if stall > 0) takes 500 ms. After failAfter answers (if > 0) it reports a lost connection.
type fakeTarget struct {
	n                atomic.Int64
	stall, failAfter int64
	stalled          atomic.Bool
}

func (f *fakeTarget) Infer(ctx context.Context, model int32, slo int64) Answer {
	i := f.n.Add(1)
	if f.failAfter > 0 && i > f.failAfter {
		return Answer{Err: errors.New("controller at 127.0.0.1:1 went away mid-run")}
	}
	d := 2 * time.Millisecond
	if f.stall > 0 && i >= f.stall && model == 0 && f.stalled.CompareAndSwap(false, true) {
		d = 500 * time.Millisecond
	}
	time.Sleep(d)
	if model == 1 {
		return Answer{Status: wire.StatusCannotMeetSLO}
	}
	return Answer{Status: wire.StatusOK, Batch: int32(1 + model)}
}

// TestRunOpenNoCoordinatedOmission: one request stalls for 500 ms; in an open loop nothing else
// waits for it, so only it is late, every request is answered exactly once, and latencies are
// measured from the schedule (2 ms exactly on synctest's clock).
func TestRunOpenNoCoordinatedOmission(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		arr, _ := Poisson([]float64{500, 100, 400}, 2e9, 100e6, 5)
		ft := &fakeTarget{stall: 10}
		res, err := RunOpen(t.Context(), ft, []string{"a", "b", "c"}, arr, RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s := res.Summarize()
		if s.Sent != int64(len(arr)) || s.Answered != s.Sent || ft.n.Load() != s.Sent {
			t.Fatalf("sent %d answered %d calls %d of %d", s.Sent, s.Answered, ft.n.Load(), len(arr))
		}
		late := 0
		for _, r := range res.Records {
			if r.Status == wire.StatusOK && r.LatencyNs() != 2e6 {
				late++
				if r.LatencyNs() != 500e6 {
					t.Errorf("latency %d ns", r.LatencyNs())
				}
			}
		}
		if late > 1 || s.Rejections["cannot-meet-slo"]+s.OK != s.Sent {
			t.Errorf("%d late; rejections %v; summary %+v", late, s.Rejections, s)
		}
		if math.Abs(s.LatencyMs.P50-2) > 2.0/(1<<subBits) || s.LatencyMs.Max != 500 { // p50 within the histogram's precision; max exact
			t.Errorf("p50 %v max %v", s.LatencyMs.P50, s.LatencyMs.Max)
		}
		if s.BatchMix[1] == 0 || s.BatchMix[3] == 0 || s.BatchMix[2] != 0 {
			t.Errorf("batch mix %v", s.BatchMix)
		}
	})
}

// TestRunOpenTargetGone: the target goes away after 100 answers; the run stops with its error,
// the rest are recorded as lost or not sent, and the reports are still written.
func TestRunOpenTargetGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		arr, _ := Poisson([]float64{1000}, 1e9, 0, 5)
		res, err := RunOpen(t.Context(), &fakeTarget{failAfter: 100}, []string{"a"}, arr, RunOptions{DefaultSLONs: 100e6})
		if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
			t.Fatalf("error %v, want one naming the address", err)
		}
		s := res.Summarize()
		if s.Answered != 100 || s.Lost == 0 || s.NotSent == 0 || s.Answered+s.Lost+s.NotSent != int64(len(arr)) {
			t.Errorf("answered %d lost %d not sent %d of %d", s.Answered, s.Lost, s.NotSent, len(arr))
		}
		var tbl, js, tsv bytes.Buffer
		if err := s.WriteTable(&tbl); err != nil || !strings.Contains(tbl.String(), "ended early") {
			t.Errorf("table %q: %v", tbl.String(), err)
		}
		if err := s.WriteJSON(&js); err != nil {
			t.Fatal(err)
		}
		var back map[string]any
		if err := json.Unmarshal(js.Bytes(), &back); err != nil || back["answered"].(float64) != 100 {
			t.Errorf("json %s: %v", js.String(), err)
		}
		if err := res.WriteRequestTSV(&tsv); err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(tsv.String(), "\n"); n != len(arr)+1 || !strings.Contains(tsv.String(), "\tnot_sent\t") {
			t.Errorf("request log: %d lines for %d requests", n, len(arr))
		}
	})
}

func TestRunClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		res, err := RunClosed(t.Context(), &fakeTarget{}, []string{"a", "b"}, ClosedConfig{Models: []int32{0}, Clients: 4, DurNs: 1e9}, RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// 4 clients × 1 s / 2 ms = 2,000 requests exactly on the fake clock.
		if s := res.Summarize(); s.OK != 2000 || s.LatencyMs.Max != 2 {
			t.Errorf("closed loop: %d OK, max %v ms; want 2000, 2", s.OK, s.LatencyMs.Max)
		}
	})
}

func TestPlots(t *testing.T) {
	arr, _ := Poisson([]float64{300, 300}, 3e9, 100e6, 1)
	res := &Result{Models: []string{"a", "b"}, DurNs: 3e9, Records: make([]Record, len(arr)), Loads: []int64{1e8, 2e9}}
	for i, a := range arr {
		res.Records[i] = Record{SchedNs: a.AtNs, SentNs: a.AtNs, DoneNs: a.AtNs + int64(i%50)*1e6, SLONs: a.SLONs, Model: a.Model, Batch: int32(1 << (i % 3))}
	}
	dir := t.TempDir()
	files, err := res.Plots(dir, res.Summarize())
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 10 {
		t.Errorf("%d plot files: %v", len(files), files)
	}
	for _, f := range files {
		if st, err := os.Stat(f); err != nil || st.Size() < 1000 {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestLoadTimes(t *testing.T) {
	log := "t\taction_id\taction_type\tstatus\tworker_id\n1500\t1\t1\t0\t0\n1600\t2\t2\t0\t0\n1700\t3\t1\t3\t0\n1800\t4\t1\t0\t0\n"
	got, err := LoadTimes(strings.NewReader(log), "a.tsv", 1000)
	if err != nil || len(got) != 2 || got[0] != 500 || got[1] != 800 {
		t.Errorf("LoadTimes = %v, %v; want [500 800]", got, err)
	}
	if _, err := LoadTimes(strings.NewReader("x\ty\n"), "a.tsv", 0); err == nil || !strings.Contains(err.Error(), "a.tsv:1") {
		t.Errorf("bad header: %v", err)
	}
	if _, err := LoadTimes(strings.NewReader(log+"zz\t1\t1\t0\n"), "a.tsv", 0); err == nil || !strings.Contains(err.Error(), "a.tsv:6") {
		t.Errorf("bad time: %v", err)
	}
}

func TestProgressBar(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		arr, _ := Poisson([]float64{100}, 1e9, 0, 1)
		if _, err := RunOpen(t.Context(), &fakeTarget{}, []string{"a"}, arr, RunOptions{Progress: &buf}); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		// About 5 redraws a second plus the final one, which shows 100 % and every answer.
		if n := strings.Count(out, "\r["); n < 5 || n > 7 || !strings.HasSuffix(out, "\n") ||
			!strings.Contains(out, "100%") || !strings.Contains(out, fmt.Sprintf("answered %d ", len(arr))) {
			t.Errorf("progress output %q", out)
		}
	})
}
