package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clockwork-go/clockwork/controller"
	"github.com/clockwork-go/clockwork/e2e"
	"github.com/clockwork-go/clockwork/runtime/sim"
)

func TestBenchNoController(t *testing.T) {
	var out, errb bytes.Buffer
	err := runBench(context.Background(), []string{"-addr", "127.0.0.1:1", "-out", t.TempDir()}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") || !strings.Contains(err.Error(), "cannot reach the controller") {
		t.Fatalf("error %v; want one naming the address", err)
	}
}

// TestServeWorkload runs cw serve with a 2 s Poisson workload and checks the reports.
func TestServeWorkload(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	err := runServe(t.Context(), []string{"-listen", "127.0.0.1:0", "-models", "resnet50_v2:2,googlenet:2", "-workload", "poisson",
		"-rate", "200", "-duration", "2s", "-out", dir, "-progress", "off"}, &out, &errb)
	if err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	var s map[string]any
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil || json.Unmarshal(b, &s) != nil {
		t.Fatalf("summary.json: %v", err)
	}
	if s["sent"].(float64) < 300 || s["answered"] != s["sent"] || s["cold_starts"].(float64) < 4 {
		t.Errorf("summary: %s", b)
	}
	for _, f := range []string{"requests.tsv", "actions.tsv", "controller_requests.tsv", "latency_cdf.png", "goodput.svg", "cold_starts.png"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	if !strings.Contains(out.String(), "SLO attainment") {
		t.Errorf("no table:\n%s", out.String())
	}
}

// TestBenchControllerGone: the controller stops 1 s into a 4 s run; cw bench returns an error
// naming its address and still writes what it measured.
func TestBenchControllerGone(t *testing.T) {
	ccfg := controller.DefaultConfig()
	ccfg.Listen = "127.0.0.1:0"
	ccfg.SynthInput = true
	cl, err := e2e.Start(t.Context(), e2e.ClusterConfig{Workers: 1, GPUsPerWorker: 1, Instances: e2e.Instances(2, "resnet18_v2"), Controller: ccfg})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	addr := cl.Addr()
	var o, e bytes.Buffer
	if err := runBench(t.Context(), []string{"-addr", addr, "-synth", "-models", "nosuch", "-out", t.TempDir()}, &o, &e); err == nil ||
		!strings.Contains(err.Error(), `no model "nosuch"`) || !strings.Contains(err.Error(), addr) {
		t.Errorf("unknown model: %v", err)
	}
	go func() {
		time.Sleep(time.Second) // the failure being tested: a controller gone mid-run
		cl.Close()
	}()
	dir := t.TempDir()
	var out, errb bytes.Buffer
	err = runBench(t.Context(), []string{"-addr", addr, "-synth", "-rate", "100", "-duration", "4s", "-out", dir}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("error %v; want one naming %s", err, addr)
	}
	b, rerr := os.ReadFile(filepath.Join(dir, "summary.json"))
	if rerr != nil || !strings.Contains(string(b), `"error"`) {
		t.Fatalf("summary.json after the loss: %v %s", rerr, b)
	}
	var s map[string]any
	json.Unmarshal(b, &s)
	if s["answered"].(float64) < 50 || s["not_sent"].(float64) < 100 {
		t.Errorf("summary: %s", b)
	}
	t.Logf("error: %v", err)
}

func TestParseInstances(t *testing.T) {
	prof := sim.DefaultProfile()
	in, err := parseInstances("all:66", prof)
	if err != nil || len(in) != 66*len(prof.Models) {
		t.Fatalf("all:66: %d instances, %v", len(in), err)
	}
	cut := interleave(in)[:4026]
	per := map[string]int{}
	for _, x := range cut {
		per[x.Base]++
	}
	for b, n := range per {
		if n < 4026/len(prof.Models) || n > 4026/len(prof.Models)+1 {
			t.Errorf("%s: %d of 4026 instances; want a balanced share", b, n)
		}
	}
	for _, bad := range []string{"nosuch:3", "resnet50_v2:0", "resnet50_v2:x"} {
		if _, err := parseInstances(bad, prof); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestServeAzureSample replays 5 s (5 minutes compressed 60×) of the real Azure sample at about
// 300 r/s through cw serve with real input bytes, and checks every request was answered once (the
// controller's request log has one line per request sent) with at least 97 % within the SLO.
func TestServeAzureSample(t *testing.T) {
	trace := ""
	for _, d := range []string{"../../testdata/"} {
		p := d + "azure-functions-2019/invocations_per_function.sample500.min0480-0959.csv"
		if _, err := os.Stat(p); err == nil {
			trace = p
			break
		}
	}
	if trace == "" {
		t.Fatal("the committed Azure sample is missing (testdata/azure-functions-2019)")
	}
	dir := t.TempDir()
	var out, errb bytes.Buffer
	err := runServe(t.Context(), []string{"-listen", "127.0.0.1:0", "-workers", "2", "-models", "all:1", "-synth=false", "-workload", "azure",
		"-trace", trace, "-start-minute", "700", "-compression", "60", "-rate", "300", "-duration", "5s", "-out", dir, "-progress", "off"}, &out, &errb)
	if err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	var s struct {
		Sent, Answered, Lost int64
		Attainment           float64 `json:"slo_attainment"`
	}
	b, _ := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "controller_requests.tsv"))
	lines := int64(strings.Count(string(log), "\n")) - 1
	if s.Sent < 1000 || s.Answered != s.Sent || s.Lost != 0 || lines != s.Sent || s.Attainment < 0.97 {
		t.Errorf("sent %d answered %d lost %d, controller log %d lines, attainment %.4f\n%s", s.Sent, s.Answered, s.Lost, lines, s.Attainment, out.String())
	}
}
