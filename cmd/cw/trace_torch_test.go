package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestTraceTorchBaseline replays a short trace through scripts/gpu/torch/baseline_server.py on
// the CPU (squeezenet1_1, two instances, a budget of one) when Python has torch; it checks the
// contract between the two: every request accounted for once, cold loads from the LRU budget.
func TestTraceTorchBaseline(t *testing.T) {
	t.Parallel()
	script := filepath.Join("..", "..", "scripts", "gpu", "torch", "baseline_server.py")
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import torch, torchvision").Run(); err != nil {
		skipOrFailInCI(t, "no torch for %s (%v); apt-get install python3-torchvision (make deps)", py, err)
	}
	dir := t.TempDir()
	tr := filepath.Join(dir, "trace.tsv")
	var o, e bytes.Buffer
	if err := runToolsTrace(t.Context(), []string{"-workload", "poisson", "-rate", "10", "-duration", "1500ms", "-seed", "3",
		"-models", "squeezenet1_1:2", "-slo", "2s", "-out", tr}, &o, &e); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(tr)
	if err != nil {
		t.Fatal(err)
	}
	lines := parseTraceFile(t, b)
	// Budget: one squeezenet1_1 (4.9 MB of fp32 weights) but not two, so alternating instances
	// are cold.
	cmd := exec.CommandContext(t.Context(), py, script, "--trace", tr, "--out", dir, "--device", "cpu", "--threads", "1",
		"--gpu-mem-mib", "6", "--warmup", "1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var s struct {
		Requests   int     `json:"requests"`
		Executed   int     `json:"executed"`
		WithinSLO  int     `json:"within_slo"`
		ColdLoads  int     `json:"cold_loads"`
		GoodputRPS float64 `json:"goodput_rps"`
		Check      map[string]struct {
			MaxRelErr float64 `json:"max_rel_err"`
			Top1Equal bool    `json:"top1_equal"`
		} `json:"check"`
	}
	sb, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil || json.Unmarshal(sb, &s) != nil {
		t.Fatalf("summary.json: %v\n%s", err, out)
	}
	if s.Requests != len(lines) || s.Executed != len(lines) || s.WithinSLO < 1 || s.GoodputRPS <= 0 {
		t.Errorf("summary %s for %d requests\n%s", sb, len(lines), out)
	}
	// A loaded instance computes what the zoo's module computes (the flat weight layout is right).
	if c, ok := s.Check["squeezenet1_1"]; !ok || c.MaxRelErr > 1e-6 || !c.Top1Equal {
		t.Errorf("warm-up check %+v; want squeezenet1_1 equal to its host reference", s.Check)
	}
	switches := 1
	for i := 1; i < len(lines); i++ {
		if lines[i].instance != lines[i-1].instance {
			switches++
		}
	}
	if switches < 3 {
		t.Fatalf("the trace switches instance only %d times; too few to test the LRU (pick another -seed)", switches)
	}
	if s.ColdLoads != switches {
		t.Errorf("%d cold loads; with room for one instance there must be one per instance switch: %d", s.ColdLoads, switches)
	}
	rb, err := os.ReadFile(filepath.Join(dir, "requests.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSpace(string(rb)), "\n")
	if len(rows) != len(lines)+1 || !strings.HasPrefix(rows[0], "arrival_ns\tstart_ns\tend_ns") {
		t.Fatalf("requests.tsv: %d rows for %d requests; first %q", len(rows), len(lines), rows[0])
	}
	for i, r := range rows[1:] {
		c := strings.Split(r, "\t")
		if c[0] != fmt.Sprint(lines[i].at) || c[5] != lines[i].instance {
			t.Fatalf("requests.tsv row %d: %q; want arrival %d of %s (FIFO order)", i, r, lines[i].at, lines[i].instance)
		}
	}
}

// TestTraceTorchBaselineDropLate: with an SLO far below the CPU's exec time and --drop-late, every
// request queued behind another is dropped unexecuted; each is still accounted for once.
func TestTraceTorchBaselineDropLate(t *testing.T) {
	t.Parallel()
	script := filepath.Join("..", "..", "scripts", "gpu", "torch", "baseline_server.py")
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import torch, torchvision").Run(); err != nil {
		skipOrFailInCI(t, "no torch for %s (%v); apt-get install python3-torchvision (make deps)", py, err)
	}
	dir := t.TempDir()
	tr := filepath.Join(dir, "trace.tsv")
	var o, e bytes.Buffer
	// 200 r/s for 300 ms: about 60 requests arriving faster than one CPU squeezenet1_1 run.
	if err := runToolsTrace(t.Context(), []string{"-workload", "poisson", "-rate", "200", "-duration", "300ms",
		"-models", "squeezenet1_1:1", "-slo", "1ms", "-out", tr}, &o, &e); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), py, script, "--trace", tr, "--out", dir, "--device", "cpu", "--threads", "1",
		"--drop-late", "--warmup", "1", "--host-copies", "per-arch").CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var s map[string]any
	sb, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil || json.Unmarshal(sb, &s) != nil {
		t.Fatalf("summary.json: %v\n%s", err, out)
	}
	req, exe, drop := s["requests"].(float64), s["executed"].(float64), s["dropped"].(float64)
	if req < 30 || drop < req/2 || exe+drop != req || s["within_slo"].(float64) != 0 || s["host_copies"] != "per-arch" {
		t.Errorf("summary %s; want most of the requests dropped, none within a 1 ms SLO", sb)
	}
}

// TestTorchBenchScript runs scripts/gpu/torch/bench.py on the CPU with a tiny size: one JSON
// line per model × batch × mode × gap and per LOAD kind, ordered quantiles, graph mode refused
// off CUDA.
func TestTorchBenchScript(t *testing.T) {
	t.Parallel()
	script := filepath.Join("..", "..", "scripts", "gpu", "torch", "bench.py")
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import torch, torchvision").Run(); err != nil {
		skipOrFailInCI(t, "no torch for %s (%v); apt-get install python3-torchvision (make deps)", py, err)
	}
	res := filepath.Join(t.TempDir(), "results.json")
	out, err := exec.CommandContext(t.Context(), py, script, "--models", "squeezenet1_1", "--batches", "1", "--modes", "eager+io,graph", "--load", "3",
		"--iters", "4", "--warmup", "1", "--gaps-ms", "0,2", "--device", "cpu", "--threads", "1", "--power", "--out", res).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	b, err := os.ReadFile(res)
	if err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(rows) != 2+2*2 {
		t.Fatalf("%d rows; want 2 LOAD rows + modes × gaps = 6:\n%s", len(rows), b)
	}
	seen := map[string]bool{}
	for _, line := range rows {
		var r struct {
			Model, Mode, Precision, Error string
			Batch                         int
			GapMs                         float64 `json:"gap_ms"`
			N                             int
			P50                           float64  `json:"p50_us"`
			P99                           float64  `json:"p99_us"`
			P9999                         float64  `json:"p9999_us"`
			Max                           float64  `json:"max_us"`
			Power                         *float64 `json:"power_w"`
			Bytes                         int64
			TF32Matmul                    *bool `json:"tf32_matmul"`
			TF32CuDNN                     *bool `json:"tf32_cudnn"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		seen[fmt.Sprint(r.Batch, r.Mode, r.GapMs)] = true
		switch r.Mode {
		case "graph":
			if !strings.Contains(r.Error, "needs --device cuda") {
				t.Errorf("graph on cpu: %s", line)
			}
		case "load-flat", "load-tensors":
			// squeezenet1_1: 1,235,496 fp32 parameters and its buffers (no BatchNorm).
			if r.Error != "" || r.Batch != 0 || r.N != 3 || r.Bytes != 4941984 || r.P50 <= 0 || r.P50 > r.Max {
				t.Errorf("load row: %s", line)
			}
		case "eager+io":
			if r.Error != "" || r.N != 4 || r.Precision != "fp32" || r.P50 <= 0 || r.P50 > r.P99 || r.P99 > r.P9999 || r.P9999 > r.Max || r.Power != nil ||
				r.TF32Matmul == nil || *r.TF32Matmul || r.TF32CuDNN == nil || *r.TF32CuDNN {
				t.Errorf("eager row: %s", line)
			}
		default:
			t.Errorf("mode %q: %s", r.Mode, line)
		}
	}
	if len(seen) != 6 {
		t.Errorf("rows are not one per mode × gap: %v", seen)
	}
}

// TestTorchCompareScript: scripts/gpu/torch/compare.py puts a cw profile beside bench.py rows
// and computes the ratios and their median (standard library only, so it always runs).
func TestTorchCompareScript(t *testing.T) {
	t.Parallel()
	py := "/usr/bin/python3"
	if _, err := exec.LookPath(py); err != nil {
		t.Skipf("no %s", py)
	}
	dir := t.TempDir()
	res := `{"model": "resnet50", "batch": 1, "precision": "fp32", "mode": "graph", "gap_ms": 0, "n": 9, "p50_us": 1000, "p9999_over_p50": 1.1}
{"model": "resnet50", "batch": 1, "precision": "fp32", "mode": "eager", "gap_ms": 0, "n": 9, "p50_us": 4000, "p9999_over_p50": 2.5}
{"model": "resnet50", "batch": 1, "precision": "tf32", "mode": "graph", "gap_ms": 0, "n": 9, "p50_us": 500, "p9999_over_p50": 1.1}
{"model": "vgg16", "batch": 1, "precision": "fp32", "mode": "graph", "gap_ms": 0, "n": 9, "p50_us": 2000, "p9999_over_p50": 1.2}
{"model": "vgg16", "batch": 1, "precision": "fp32", "mode": "graph", "gap_ms": 5, "n": 9, "p50_us": 2600, "p9999_over_p50": 1.9, "power_w": 141.5}
{"model": "alexnet", "batch": 1, "precision": "fp32", "mode": "graph", "error": "capture failed"}
{"model": "resnet50", "batch": 0, "precision": "fp32", "mode": "load-flat", "gap_ms": 0, "n": 9, "p50_us": 2000, "p9999_over_p50": 1.1, "bytes": 104857600}
{"model": "resnet50", "batch": 0, "precision": "fp32", "mode": "load-tensors", "gap_ms": 0, "n": 9, "p50_us": 5000, "p9999_over_p50": 1.3, "bytes": 104857600}
`
	prof := `{"version": 1, "device": "test", "models": [
 {"name": "resnet50", "load_ns": 2500000, "weights_bytes": 104857600, "batches": [{"batch": 1, "p50_ns": 900000, "p99_ns": 901000, "p9999_ns": 903000}]},
 {"name": "vgg16", "batches": [{"batch": 1, "p50_ns": 3000000, "p99_ns": 3001000, "p9999_ns": 3003000}]}]}`
	rp, pp := filepath.Join(dir, "r.json"), filepath.Join(dir, "p.json")
	if os.WriteFile(rp, []byte(res), 0o644) != nil || os.WriteFile(pp, []byte(prof), 0o644) != nil {
		t.Fatal("cannot write inputs")
	}
	out, err := exec.CommandContext(t.Context(), py, filepath.Join("..", "..", "scripts", "gpu", "torch", "compare.py"), rp,
		"--profile", pp, "--gaps").CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{
		"| resnet50 | 1 | 0.900 | 1.000 | 4.000 | 0.900 | 0.225 | 1.0033 | 1.1000 | 2.5000 |",
		"| vgg16 | 1 | 3.000 | 2.000 | – | 1.500 | – |",
		"Median ours/graph over 2 rows: 1.200; median ours/eager over 1 rows: 0.225.",
		"| vgg16 | 1 | graph | 2.000 / 1.200 | 2.600 / 1.900 [142 W] |",
		"| resnet50 | 100.0 | 2.500 | 2.000 | 5.000 | 1.250 |",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "alexnet") || strings.Contains(string(out), "0.500") || strings.Contains(string(out), "| resnet50 | 0 |") {
		t.Errorf("error rows or other precisions leaked into the table:\n%s", out)
	}
}

// skipOrFailInCI skips a test whose dependency is missing, except in CI (CI=true), where
// `make test` installs every dependency and a missing one must fail.
func skipOrFailInCI(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}
