package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/clockwork-go/clockwork/runtime/cuda"
	"github.com/clockwork-go/clockwork/runtime/device"
	"github.com/clockwork-go/clockwork/runtime/model"
	"github.com/clockwork-go/clockwork/runtime/sim"
)

func init() {
	registerTool(command{name: "profile", summary: "measure zoo models on a GPU (LOAD, exec p50/p99/p99.99, idle gaps) and write the sim profile", run: runToolsProfile})
}

// profileRow is one measured (model, batch, gap) in bench.py's JSON-lines format, so
// scripts/gpu/torch/compare.py reads ours beside PyTorch's.
type profileRow struct {
	Model     string  `json:"model"`
	Batch     int     `json:"batch"`
	Precision string  `json:"precision"`
	Mode      string  `json:"mode"`
	GapMs     float64 `json:"gap_ms"`
	N         int     `json:"n"`
	P50       float64 `json:"p50_us"`
	P99       float64 `json:"p99_us"`
	P9999     float64 `json:"p9999_us"`
	Max       float64 `json:"max_us"`
	Mean      float64 `json:"mean_us"`
	Error     string  `json:"error,omitempty"`
}

func pct(sorted []int64, q float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted)) + 0.5)
	return sorted[min(max(i, 1), len(sorted))-1]
}

func summarize(m string, b int, mode string, gap float64, d []int64) profileRow {
	s := slices.Sorted(slices.Values(d))
	var sum int64
	for _, v := range s {
		sum += v
	}
	us := func(ns int64) float64 { return float64(ns) / 1e3 }
	return profileRow{Model: m, Batch: b, Precision: "fp32", Mode: mode, GapMs: gap, N: len(s),
		P50: us(pct(s, 0.5)), P99: us(pct(s, 0.99)), P9999: us(pct(s, 0.9999)), Max: us(s[len(s)-1]), Mean: us(sum / int64(len(s)))}
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := strconv.Atoi(f)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("%q is not a non-negative integer", f)
		}
		out = append(out, v)
	}
	return out, nil
}

func runToolsProfile(_ context.Context, args []string, stdout, stderr io.Writer) error {
	def := cuda.DefaultConfig()
	fs := newFlagSet("tools profile", "tools profile -zoo DIR [-models a,b] [flags]", stderr)
	zoo := fs.String("zoo", "", "directory written by cw tools zoo (DIR/NAME/model.onnx)")
	models := fs.String("models", "", "comma-separated model names (default: every DIR/NAME/model.onnx)")
	batchesF := fs.String("batches", "1,2,4,8,16", "batch sizes to prepare and measure")
	runs := fs.Int("runs", 1000, "timed runs per model x batch, back to back (after -warmup)")
	runsB1 := fs.Int("runs-b1", 10000, "timed runs at batch 1, back to back (p99.99 needs >= 10,000)")
	warmup := fs.Int("warmup", 50, "untimed runs before each row")
	gapsF := fs.String("gaps-ms", "1,5,20", "idle gaps (ms) to measure at batch 1, with and without Device.Warm filling them")
	gapRuns := fs.Int("gap-runs", 300, "timed runs per gap row")
	out := fs.String("out", "", "profile file to write (runtime/sim format); empty: none")
	rowsOut := fs.String("rows", "", "JSON-lines rows to write (bench.py's format, mode cw and cw+warm)")
	fuse := fs.Bool("fuse", true, "fuse convolution, bias, ReLU and residual Add into one cuDNN call where possible")
	breakdown := fs.Bool("breakdown", true, "print device time per op (steps run one at a time) at the smallest and largest batch")
	region := fs.Int64("region-mib", 8192, "MiB of device memory to take")
	pageMiB := fs.Int64("page-mib", 16, "weight page size, MiB")
	driver := fs.String("cuda-driver", def.DriverLib, "path of libcuda.so.1")
	libDir := fs.String("cuda-lib-dir", cuda.DefaultCUDALibDir, "directory of libcublas.so.13, libcublasLt.so.13, libnvrtc.so.13")
	cudnn := fs.String("cudnn", def.CUDNNLib, "path of libcudnn.so.9")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *zoo == "" {
		return errors.New("-zoo is required: a directory written by cw tools zoo")
	}
	batches, err := parseInts(*batchesF)
	if err != nil || len(batches) == 0 {
		return fmt.Errorf("-batches %q: want comma-separated sizes: %v", *batchesF, err)
	}
	gaps, err := parseInts(*gapsF)
	if err != nil {
		return fmt.Errorf("-gaps-ms: %w", err)
	}
	if *runs < 1 || *runsB1 < 1 || *gapRuns < 1 || *warmup < 0 {
		return errors.New("-runs, -runs-b1 and -gap-runs must be >= 1, -warmup >= 0")
	}
	var names []string
	if *models != "" {
		names = strings.Split(*models, ",")
	} else {
		ents, err := os.ReadDir(*zoo)
		if err != nil {
			return fmt.Errorf("cannot read -zoo: %w", err)
		}
		for _, e := range ents {
			if _, err := os.Stat(filepath.Join(*zoo, e.Name(), "model.onnx")); err == nil {
				names = append(names, e.Name())
			}
		}
	}
	cfg := def
	cfg.DriverLib, cfg.CUDNNLib = *driver, *cudnn
	cfg.CUBLASLib, cfg.CUBLASLtLib, cfg.NVRTCLib = *libDir+"/libcublas.so.13", *libDir+"/libcublasLt.so.13", *libDir+"/libnvrtc.so.13"
	cfg.Devices = []int{0}
	devs, err := cuda.New(cfg).Open(*region << 20)
	if err != nil {
		return fmt.Errorf("cannot open GPU 0: %w", err)
	}
	d := devs[0].(*cuda.Device)
	defer d.Close()
	h, err := cuda.NewHarness(d, 640<<20)
	if err != nil {
		return err
	}
	defer h.Close()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	prof := sim.Profile{Version: sim.ProfileVersion, Device: d.Info().Name,
		Source: []string{fmt.Sprintf("cw tools profile %s (%s)", strings.Join(args, " "), time.Now().UTC().Format(time.RFC3339))}}
	var rows []profileRow
	var rw *bufio.Writer
	if *rowsOut != "" {
		f, err := os.Create(*rowsOut)
		if err != nil {
			return err
		}
		defer f.Close()
		rw = bufio.NewWriter(f)
		defer rw.Flush()
	}
	emit := func(r profileRow) {
		rows = append(rows, r)
		if rw != nil {
			b, _ := json.Marshal(r)
			rw.Write(append(b, '\n'))
			rw.Flush()
		}
		fmt.Fprintf(stdout, "%-20s b%-3d %-8s gap %4.0f ms: p50 %8.1f µs  p99 %8.1f  p99.99 %8.1f  max %8.1f  p99.99/p50 %.4f  (n %d)\n",
			r.Model, r.Batch, r.Mode, r.GapMs, r.P50, r.P99, r.P9999, r.Max, r.P9999/r.P50, r.N)
	}
	for _, name := range names {
		h.Reset()
		t0 := time.Now()
		g, err := model.Load(filepath.Join(*zoo, name, "model.onnx"))
		if err != nil {
			fmt.Fprintf(stdout, "%s: cannot load: %v\n", name, err)
			continue
		}
		m, err := model.Build(g, batches, *pageMiB<<20)
		if err != nil {
			fmt.Fprintf(stdout, "%s: cannot build: %v\n", name, err)
			continue
		}
		opt := cuda.DefaultPrepareOptions()
		opt.FuseConv = *fuse
		ld, err := h.Load(m, batches, opt)
		if err != nil {
			fmt.Fprintf(stdout, "%s: cannot prepare: %v\n", name, err)
			continue
		}
		p := ld.P
		// LOAD: the median of 5 loads of every page from pinned memory.
		var loads []int64
		for range 5 {
			if err := h.LoadPages(ld, ld.Pages); err != nil {
				return err
			}
			loads = append(loads, ld.LoadNs)
		}
		slices.Sort(loads)
		mp := sim.ModelProfile{ModelName: name, WeightsBytes: p.WeightBytes(), InputBytes: p.InputBytes(1), OutputBytes: p.OutputBytes(1),
			LoadNs: loads[len(loads)/2]}
		fmt.Fprintf(stdout, "%s: prepared %v in %v (built+prepared %v), %d pages of %d MiB, LOAD %v; kernels per batch %v; %+v\n",
			name, p.Batches(), ld.PrepareElapsed.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond), p.Pages(), p.PageBytes()>>20,
			time.Duration(mp.LoadNs), p.Stats.Kernels, p.Stats)
		if *breakdown {
			for _, b := range []int{p.Batches()[0], p.Batches()[len(p.Batches())-1]} {
				ops, err := p.Breakdown(b, ld.Pages, ld.In, ld.Out, ld.Work)
				if err != nil {
					return err
				}
				var sb strings.Builder
				var tot int64
				for _, o := range ops {
					tot += o.Ns
				}
				for _, o := range ops {
					fmt.Fprintf(&sb, " %s×%d %.0fµs (%.0f%%)", o.Op, o.Steps, float64(o.Ns)/1e3, 100*float64(o.Ns)/float64(tot))
				}
				fmt.Fprintf(stdout, "%s b%d breakdown (steps one at a time, %.0f µs):%s\n", name, b, float64(tot)/1e3, sb.String())
			}
		}
		for _, b := range p.Batches() {
			mp.WorkspaceBytes = max(mp.WorkspaceBytes, p.WorkspaceBytes(b))
			if _, err := h.Measure(ld, b, *warmup, 0, false); err != nil {
				return err
			}
			n := *runs
			if b == 1 {
				n = *runsB1
			}
			ds, err := h.Measure(ld, b, n, 0, false)
			if err != nil {
				return err
			}
			r := summarize(name, b, "cw", 0, ds)
			emit(r)
			mp.Batches = append(mp.Batches, sim.BatchProfile{Batch: b, P50Ns: int64(r.P50 * 1e3), P99Ns: int64(r.P99 * 1e3), P9999Ns: int64(r.P9999 * 1e3)})
		}
		for _, gap := range gaps {
			if gap == 0 {
				continue
			}
			for _, warm := range []bool{false, true} {
				mode := "cw"
				if warm {
					mode = "cw+warm"
				}
				ds, err := h.Measure(ld, 1, *gapRuns, time.Duration(gap)*time.Millisecond, warm)
				if err != nil {
					return err
				}
				emit(summarize(name, 1, mode, float64(gap), ds))
			}
		}
		// End to end INFER at batch 1: input H2D, exec, output D2H (wall, host clock).
		var e2e []int64
		inB, outB := h.Stage[:p.InputBytes(1)], h.Stage[p.InputBytes(1):p.InputBytes(1)+p.OutputBytes(1)]
		for range 200 {
			t := time.Now()
			if _, err := d.CopyIn(device.LaneInput, ld.In, inB); err != nil {
				return err
			}
			if _, err := p.Run(1, ld.Pages, ld.In, ld.Out, ld.Work); err != nil {
				return err
			}
			if _, err := d.CopyOut(device.LaneOutput, outB, ld.Out); err != nil {
				return err
			}
			e2e = append(e2e, time.Since(t).Nanoseconds())
		}
		emit(summarize(name, 1, "cw+io", 0, e2e))
		// Re-binding cost: Run after the weights moved to other pages (wall, host clock), against
		// a plain Run.
		pages2 := make([]device.Ptr, len(ld.Pages))
		for i := range pages2 {
			if pages2[i], err = h.Alloc(p.PageBytes()); err != nil {
				return err
			}
		}
		if err := h.LoadPages(ld, pages2); err != nil {
			return err
		}
		var rebind, plain []int64
		for i := range 40 {
			pg := ld.Pages
			if i%2 == 1 {
				pg = pages2
			}
			t := time.Now()
			if _, err := p.Run(1, pg, ld.In, ld.Out, ld.Work); err != nil {
				return err
			}
			rebind = append(rebind, time.Since(t).Nanoseconds())
			t = time.Now()
			if _, err := p.Run(1, pg, ld.In, ld.Out, ld.Work); err != nil {
				return err
			}
			plain = append(plain, time.Since(t).Nanoseconds())
		}
		slices.Sort(rebind)
		slices.Sort(plain)
		mp.Note = fmt.Sprintf("fp32; kernels per batch %v; re-bind after a LOAD into other pages adds %.0f µs (median wall of Run %.0f vs %.0f µs)",
			p.Stats.Kernels, float64(rebind[20]-plain[20])/1e3, float64(rebind[20])/1e3, float64(plain[20])/1e3)
		fmt.Fprintf(stdout, "%s: %s\n", name, mp.Note)
		prof.Models = append(prof.Models, mp)
		if err := p.Close(); err != nil {
			return err
		}
	}
	if *out != "" {
		if err := prof.Validate(); err != nil {
			return fmt.Errorf("cannot write the profile: %w", err)
		}
		b, err := json.MarshalIndent(prof, "", " ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}
