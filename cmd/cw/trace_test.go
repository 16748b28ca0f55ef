package main

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clockwork-go/clockwork/bench"
	"github.com/clockwork-go/clockwork/e2e"
	"github.com/clockwork-go/clockwork/runtime/sim"
)

type traceLine struct {
	at       int64
	instance string
	arch     string
	slo      int64
}

// parseTraceFile reads a trace as the PyTorch baseline does: '#' comments, the header, then
// four tab-separated columns per line.
func parseTraceFile(t *testing.T, b []byte) []traceLine {
	t.Helper()
	var out []traceLine
	sc := bufio.NewScanner(bytes.NewReader(b))
	header := false
	for n := 1; sc.Scan(); n++ {
		s := sc.Text()
		if strings.HasPrefix(s, "#") {
			continue
		}
		if !header {
			if s+"\n" != traceHeader {
				t.Fatalf("line %d: header %q; want %q", n, s, traceHeader)
			}
			header = true
			continue
		}
		c := strings.Split(s, "\t")
		if len(c) != 4 {
			t.Fatalf("line %d: %d columns: %q", n, len(c), s)
		}
		at, err1 := strconv.ParseInt(c[0], 10, 64)
		slo, err2 := strconv.ParseInt(c[3], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("line %d: %q", n, s)
		}
		out = append(out, traceLine{at, c[1], c[2], slo})
	}
	if !header {
		t.Fatalf("no header in %q", b)
	}
	return out
}

func runTrace(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := runToolsTrace(t.Context(), append(args, "-out", "-"), &out, &errb)
	return out.Bytes(), err
}

// TestTraceInstancesMatchServe: for specs cw serve accepts, the trace names the same instances
// in the same order, so model index k means the same instance in both.
func TestTraceInstancesMatchServe(t *testing.T) {
	prof := sim.DefaultProfile()
	for _, spec := range []string{"resnet50_v2:3,googlenet:2", "all:2", "resnet18_v2,resnet50_v2:5"} {
		want, err := parseInstances(spec, prof)
		if err != nil {
			t.Fatal(err)
		}
		got, err := traceInstances(spec, prof)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: trace instances differ from cw serve's (%d vs %d)", spec, len(got), len(want))
		}
	}
	// Names outside the profile (the torchvision zoo) are accepted by the trace only.
	if _, err := traceInstances("resnet50:2", prof); err != nil {
		t.Errorf("torchvision name refused: %v", err)
	}
	// ONNX paths, as cw serve -backend cuda takes them: named after the file or its directory.
	got, err := traceInstances("zoo/resnet50/model.onnx:2,vgg16/model.onnx,tiny.onnx:1", prof)
	if err != nil {
		t.Fatal(err)
	}
	want := []e2e.Instance{{Name: "resnet50.0000", Base: "resnet50"}, {Name: "resnet50.0001", Base: "resnet50"},
		{Name: "vgg16.0000", Base: "vgg16"}, {Name: "tiny.0000", Base: "tiny"}}
	if !slices.Equal(got, want) {
		t.Errorf("ONNX paths: %v; want %v", got, want)
	}
	for _, bad := range []string{"resnet50:0", "resnet50:x", "res net:1", ":3", "a/b:1", "a/model.onnx,a/model.onnx:2", "a b/model.onnx"} {
		if _, err := traceInstances(bad, prof); err == nil || !strings.Contains(err.Error(), "-models entry") {
			t.Errorf("%q: error %v", bad, err)
		}
	}
}

// TestToolsTracePoisson checks a Poisson trace line by line against bench.Poisson with the same
// seed (what cw serve sends), and that the seed decides the bytes.
func TestToolsTracePoisson(t *testing.T) {
	args := []string{"-workload", "poisson", "-rate", "300", "-duration", "2s", "-slo", "25ms", "-seed", "7", "-models", "resnet50:2,squeezenet1_1:1"}
	b, err := runTrace(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	lines := parseTraceFile(t, b)
	want, err := bench.Poisson([]float64{100, 100, 100}, int64(2*time.Second), int64(25*time.Millisecond), 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != len(want) || len(lines) < 450 || len(lines) > 750 {
		t.Fatalf("%d lines; bench.Poisson made %d (expect about 600)", len(lines), len(want))
	}
	names := []string{"resnet50.0000", "resnet50.0001", "squeezenet1_1.0000"}
	counts := map[string]int{}
	for i, l := range lines {
		w := want[i]
		if l.at != w.AtNs || l.instance != names[w.Model] || l.slo != w.SLONs {
			t.Fatalf("line %d: %+v; want %+v (%s)", i, l, w, names[w.Model])
		}
		if base, _, _ := strings.Cut(l.instance, "."); base != l.arch {
			t.Fatalf("line %d: instance %s has arch %s", i, l.instance, l.arch)
		}
		if i > 0 && l.at < lines[i-1].at {
			t.Fatalf("line %d: arrivals out of order", i)
		}
		counts[l.instance]++
	}
	for _, n := range names {
		if counts[n] < 120 {
			t.Errorf("%s: %d requests; want about 200", n, counts[n])
		}
	}
	again, err := runTrace(t, args...)
	if err != nil || !bytes.Equal(again, b) {
		t.Errorf("same seed, different trace (err %v)", err)
	}
	args[9] = "8"
	other, err := runTrace(t, args...)
	if err != nil || bytes.Equal(other, b) {
		t.Errorf("seed 8 gave the same trace as seed 7 (err %v)", err)
	}
}

// TestToolsTraceWorkloads: every open-loop workload of cw serve writes a trace; sweep SLOs grow;
// ramp's model 0 is the minor model; -instances keeps the copy-by-copy prefix.
func TestToolsTraceWorkloads(t *testing.T) {
	b, err := runTrace(t, "-workload", "sweep", "-rate", "200", "-duration", "3s", "-slo-start", "3ms", "-slo-factor", "2",
		"-slo-interval", "1s", "-slo-end", "12ms", "-models", "resnet50:2")
	if err != nil {
		t.Fatal(err)
	}
	slos := map[int64]bool{}
	for _, l := range parseTraceFile(t, b) {
		slos[l.slo] = true
		if want := int64(3e6) << (l.at / 1e9); l.slo != want {
			t.Fatalf("sweep: arrival %d ns has SLO %d; want %d", l.at, l.slo, want)
		}
	}
	if len(slos) != 3 {
		t.Errorf("sweep: SLOs %v; want 3, 6 and 12 ms", slos)
	}

	b, err = runTrace(t, "-workload", "ramp", "-rate", "100", "-minor-rate", "50", "-duration", "2s", "-lead-in", "500ms", "-step", "100ms",
		"-models", "resnet50:30")
	if err != nil {
		t.Fatal(err)
	}
	minor, majors := 0, map[string]bool{}
	for _, l := range parseTraceFile(t, b) {
		if l.instance == "resnet50.0000" {
			minor++
		} else {
			majors[l.instance] = true
		}
	}
	// Active majors at 2 s: 1 + (2 s − 0.5 s)/100 ms + 1 = 16 (of 29), plus model 0's major share.
	if minor < 50 || len(majors) < 14 || len(majors) > 17 {
		t.Errorf("ramp: %d minor requests, %d major instances", minor, len(majors))
	}

	b, err = runTrace(t, "-workload", "bursty", "-rate", "400", "-duration", "2s", "-models", "all:1", "-instances", "5")
	if err != nil {
		t.Fatal(err)
	}
	inst := interleave(must(parseInstances("all:1", sim.DefaultProfile())))[:5]
	seen := map[string]bool{}
	for _, l := range parseTraceFile(t, b) {
		seen[l.instance] = true
	}
	for n := range seen {
		if !slices.ContainsFunc(inst, func(x e2e.Instance) bool { return x.Name == n }) {
			t.Errorf("bursty -instances 5: instance %s is not among the first 5", n)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestToolsTraceAzure: the synthetic Azure-like trace by default; the shipped sample with -trace
// when it is present.
func TestToolsTraceAzure(t *testing.T) {
	b, err := runTrace(t, "-workload", "azure", "-rate", "500", "-duration", "4s", "-compression", "60", "-models", "resnet50:20,densenet121:20")
	if err != nil {
		t.Fatal(err)
	}
	lines := parseTraceFile(t, b)
	if len(lines) < 500 || lines[len(lines)-1].at >= 4e9 {
		t.Errorf("synthetic azure: %d requests, last at %d ns; want about 2000 within 4 s", len(lines), lines[len(lines)-1].at)
	}
	sample := "../../testdata/azure-functions-2019/invocations_per_function.sample500.min0480-0959.csv"
	if _, err := os.Stat(sample); err != nil {
		t.Fatalf("the committed Azure sample is missing: %v", err)
	}
	b, err = runTrace(t, "-workload", "azure", "-trace", sample, "-rate", "300", "-duration", "3s", "-models", "resnet50:50")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(parseTraceFile(t, b)); n < 600 || n > 1200 {
		t.Errorf("azure replay: %d requests; want about 900", n)
	}
}

func TestToolsTraceErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-workload", "closed"}, "no fixed arrivals"},
		{[]string{"-workload", "none"}, "no fixed arrivals"},
		{[]string{"-workload", "nosuch"}, "unknown -workload"},
		{[]string{"-models", "resnet50:-1"}, "copies must be"},
		{[]string{"-profile", "/nonexistent.json", "-models", "all:1"}, "cannot load -profile"},
		{[]string{"extra"}, "unexpected arguments"},
	} {
		_, err := runTrace(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v; want %q", c.args, err, c.want)
		}
	}
	var out, errb bytes.Buffer
	if err := runToolsTrace(t.Context(), []string{"-out", filepath.Join(t.TempDir(), "no", "such", "dir", "t.tsv")}, &out, &errb); err == nil ||
		!strings.Contains(err.Error(), "cannot create the trace file") {
		t.Errorf("unwritable -out: %v", err)
	}
}
