package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/clockwork-go/clockwork/wire"
)

func init() {
	registerTool(command{name: "actions", summary: "summarise a controller action log: INFER exec time tails and prediction error per model and batch, LOAD times, statuses", run: runToolsActions})
}

// actionRow is one line of the controller's action log (controller/telemetry.go's columns).
type actionRow struct {
	t, typ, status, model, batch, gpu int64
	expected, actual                  int64
}

// Action log columns used here, by header name.
var actionCols = []string{"t", "action_type", "status", "gpu_id", "model_id", "batch_size", "expected_exec_duration", "worker_exec_duration"}

// readActions parses a controller action log; rows before skipNs after the first row are left
// out (warm-up).
func readActions(r io.Reader, name string, skipNs int64) ([]actionRow, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 1<<20)
	if !sc.Scan() {
		return nil, fmt.Errorf("%s: empty; want a controller action log (cw serve -out DIR writes DIR/actions.tsv)", name)
	}
	head := strings.Split(sc.Text(), "\t")
	idx := make([]int, len(actionCols))
	for i, c := range actionCols {
		if idx[i] = slices.Index(head, c); idx[i] < 0 {
			return nil, fmt.Errorf("%s:1: no column %q; want a controller action log", name, c)
		}
	}
	var rows []actionRow
	var v [8]int64
	first := int64(math.MinInt64)
	for line := 2; sc.Scan(); line++ {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != len(head) {
			return nil, fmt.Errorf("%s:%d: %d columns; the header has %d", name, line, len(f), len(head))
		}
		for i, k := range idx {
			x, err := strconv.ParseInt(f[k], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: column %s: %w", name, line, actionCols[i], err)
			}
			v[i] = x
		}
		if first == math.MinInt64 {
			first = v[0]
		}
		if v[0]-first < skipNs {
			continue
		}
		rows = append(rows, actionRow{t: v[0], typ: v[1], status: v[2], gpu: v[3], model: v[4], batch: v[5], expected: v[6], actual: v[7]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", name, err)
	}
	return rows, nil
}

// readModelNames maps model ids to architectures from cw serve's models.tsv (model_id,
// instance, path, status): the path's directory (resnet50 for resnet50/model.onnx) or file
// name.
func readModelNames(path string) (map[int64]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read -models: %w", err)
	}
	out := map[int64]string{}
	for i, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Split(l, "\t")
		if i == 0 || len(f) < 3 {
			continue
		}
		id, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || id == 0 {
			continue
		}
		out[id] = archOf(f[2])
	}
	return out, nil
}

func archOf(path string) string {
	name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	if name == "model" && filepath.Dir(path) != "." {
		return filepath.Base(filepath.Dir(path))
	}
	return name
}

// quantile is the nearest-rank q-quantile of sorted xs (0 when empty).
func quantile(xs []int64, q float64) int64 {
	if len(xs) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(xs)))) - 1
	return xs[min(max(i, 0), len(xs)-1)]
}

// ExecStats are one model × batch's INFER figures (µs), and its prediction error: Over is the
// p99 of expected − actual over the INFERs the controller over-predicted, Under the p99 of
// actual − expected over those it under-predicted (the original's §6.5 figures).
type ExecStats struct {
	Arch     string  `json:"arch"`
	GPU      int64   `json:"gpu"`
	Batch    int64   `json:"batch"`
	N        int     `json:"n"`
	P50      float64 `json:"exec_p50_us"`
	P99      float64 `json:"exec_p99_us"`
	P9999    float64 `json:"exec_p9999_us"`
	Max      float64 `json:"exec_max_us"`
	Ratio    float64 `json:"p9999_over_p50"`
	OverN    int     `json:"over_n"`
	OverP99  float64 `json:"over_p99_us"`
	UnderN   int     `json:"under_n"`
	UnderP99 float64 `json:"under_p99_us"`
}

// ActionSummary is what cw tools actions prints and writes as JSON.
type ActionSummary struct {
	Infer []ExecStats `json:"infer"`
	// All is every OK INFER's prediction error together (µs).
	All   ExecStats        `json:"all_infer"`
	Loads []LoadStats      `json:"loads"`
	Stats map[string]int64 `json:"statuses"` // "type/status" → count
}

// LoadStats are one architecture's LOAD durations (ms) on one GPU.
type LoadStats struct {
	Arch string  `json:"arch"`
	GPU  int64   `json:"gpu"`
	N    int     `json:"n"`
	P50  float64 `json:"p50_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
}

func execStats(arch string, gpu, batch int64, rows []actionRow) ExecStats {
	var ex, over, under []int64
	for _, r := range rows {
		ex = append(ex, r.actual)
		if d := r.expected - r.actual; d > 0 {
			over = append(over, d)
		} else if d < 0 {
			under = append(under, -d)
		}
	}
	slices.Sort(ex)
	slices.Sort(over)
	slices.Sort(under)
	us := func(v int64) float64 { return float64(v) / 1e3 }
	s := ExecStats{Arch: arch, GPU: gpu, Batch: batch, N: len(ex), P50: us(quantile(ex, 0.5)), P99: us(quantile(ex, 0.99)), P9999: us(quantile(ex, 0.9999)),
		Max: us(quantile(ex, 1)), OverN: len(over), OverP99: us(quantile(over, 0.99)), UnderN: len(under), UnderP99: us(quantile(under, 0.99))}
	if s.P50 > 0 {
		s.Ratio = s.P9999 / s.P50
	}
	return s
}

// summariseActions groups OK INFERs by architecture, GPU and batch and OK LOADs by
// architecture and GPU; names maps model ids to architectures (nil: "model N").
func summariseActions(rows []actionRow, names map[int64]string) *ActionSummary {
	arch := func(id int64) string {
		if n, ok := names[id]; ok {
			return n
		}
		return "model " + strconv.FormatInt(id, 10)
	}
	type key struct {
		arch       string
		gpu, batch int64
	}
	infers, loads := map[key][]actionRow{}, map[key][]int64{}
	var all []actionRow
	s := &ActionSummary{Stats: map[string]int64{}}
	typeName := map[int64]string{1: "LOAD", 2: "INFER", 3: "UNLOAD"}
	for _, r := range rows {
		s.Stats[typeName[r.typ]+"/"+wire.Status(r.status).String()]++
		if r.status != int64(wire.StatusOK) {
			continue
		}
		switch r.typ {
		case 2:
			k := key{arch(r.model), r.gpu, r.batch}
			infers[k] = append(infers[k], r)
			all = append(all, r)
		case 1:
			k := key{arch(r.model), r.gpu, 0}
			loads[k] = append(loads[k], r.actual)
		}
	}
	less := func(a, b key) int {
		if c := strings.Compare(a.arch, b.arch); c != 0 {
			return c
		}
		if a.gpu != b.gpu {
			return int(a.gpu - b.gpu)
		}
		return int(a.batch - b.batch)
	}
	for _, k := range slices.SortedFunc(func(yield func(key) bool) {
		for k := range infers {
			if !yield(k) {
				return
			}
		}
	}, less) {
		s.Infer = append(s.Infer, execStats(k.arch, k.gpu, k.batch, infers[k]))
	}
	s.All = execStats("all", -1, 0, all)
	for _, k := range slices.SortedFunc(func(yield func(key) bool) {
		for k := range loads {
			if !yield(k) {
				return
			}
		}
	}, less) {
		d := loads[k]
		slices.Sort(d)
		ms := func(v int64) float64 { return float64(v) / 1e6 }
		s.Loads = append(s.Loads, LoadStats{Arch: k.arch, GPU: k.gpu, N: len(d), P50: ms(quantile(d, 0.5)), P99: ms(quantile(d, 0.99)), Max: ms(quantile(d, 1))})
	}
	return s
}

// WriteMarkdown prints the summary as Markdown tables.
func (s *ActionSummary) WriteMarkdown(w io.Writer) {
	fmt.Fprintln(w, "| model | gpu | batch | INFERs | exec p50 µs | p99 | p99.99 | max | p99.99/p50 | over-predicted: n, p99 µs | under-predicted: n, p99 µs |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|")
	for _, e := range append(s.Infer, s.All) {
		g, b := strconv.FormatInt(e.GPU, 10), strconv.FormatInt(e.Batch, 10)
		if e.GPU < 0 {
			g, b = "all", "all"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %d | %.1f | %.1f | %.1f | %.1f | %.4f | %d, %.1f | %d, %.1f |\n", e.Arch, g, b, e.N, e.P50, e.P99, e.P9999, e.Max, e.Ratio, e.OverN, e.OverP99, e.UnderN, e.UnderP99)
	}
	if len(s.Loads) > 0 {
		fmt.Fprintln(w, "\n| model | gpu | LOADs | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|---|")
		for _, l := range s.Loads {
			fmt.Fprintf(w, "| %s | %d | %d | %.3f | %.3f | %.3f |\n", l.Arch, l.GPU, l.N, l.P50, l.P99, l.Max)
		}
	}
	fmt.Fprint(w, "\nactions by type/status:")
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range s.Stats {
			if !yield(k) {
				return
			}
		}
	}) {
		fmt.Fprintf(w, " %s %d", k, s.Stats[k])
	}
	fmt.Fprintln(w)
}

func runToolsActions(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tools actions", "tools actions -log DIR/actions.tsv [-models DIR/models.tsv] [flags]", stderr)
	logPath := fs.String("log", "", "controller action log (cw serve -out DIR writes DIR/actions.tsv; cw controller -log-dir DIR/clockwork_action_log.tsv)")
	models := fs.String("models", "", "cw serve's models.tsv, to group by architecture instead of model id; empty: by id")
	skip := fs.Duration("skip", 0, "leave out actions answered in this first part of the log (warm-up: first LOADs, the estimates' first measurements)")
	jsonOut := fs.String("json", "", "also write the summary as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *logPath == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("cannot summarise actions: -log is required and no positional arguments are accepted")
	}
	f, err := os.Open(*logPath)
	if err != nil {
		return fmt.Errorf("cannot open -log: %w", err)
	}
	defer f.Close()
	rows, err := readActions(f, *logPath, int64(*skip))
	if err != nil {
		return err
	}
	var names map[int64]string
	if *models != "" {
		if names, err = readModelNames(*models); err != nil {
			return err
		}
	}
	s := summariseActions(rows, names)
	s.WriteMarkdown(stdout)
	if *jsonOut != "" {
		b, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("cannot write -json: %w", err)
		}
	}
	return nil
}
