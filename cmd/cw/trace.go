package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/clockwork-go/clockwork/bench"
	"github.com/clockwork-go/clockwork/controller"
	"github.com/clockwork-go/clockwork/e2e"
	"github.com/clockwork-go/clockwork/runtime/sim"
)

func init() {
	registerTool(command{name: "trace", summary: "write the arrivals of a cw serve/bench workload as a TSV (for the PyTorch baseline: scripts/gpu/torch)", run: runToolsTrace})
}

// traceHeader is the column line of a trace file. Lines starting with '#' are comments.
// Columns: scheduled arrival in ns from the run's start, model instance name, its architecture
// (the base model: "resnet50" for "resnet50.0003"), and the request's SLO in ns.
const traceHeader = "arrival_ns\tinstance\tarch\tslo_ns\n"

// traceInstances is parseInstances without the profile check for named models, so traces can
// name architectures the sim profile does not have (the torchvision zoo); "all:k" still expands
// over prof's models. For specs that parseInstances accepts it returns the same instances in the
// same order (a test checks it), so a trace lines up with what cw serve registers.
//
// An entry that is an ONNX path (ends in .onnx, as `cw serve -backend cuda -models` takes them)
// names its instances after the file, or after its directory when the file is model.onnx (the
// zoo's DIR/resnet50/model.onnx gives resnet50.0000, ...), and that name is the architecture.
func traceInstances(spec string, prof *sim.Profile) ([]e2e.Instance, error) {
	var out []e2e.Instance
	seenPath := map[string]bool{}
	for _, part := range strings.Split(spec, ",") {
		name, n, err := splitCopies(part)
		if err != nil {
			return nil, err
		}
		if name == "all" {
			for _, m := range prof.Models {
				out = append(out, e2e.Instances(n, m.ModelName)...)
			}
			continue
		}
		if strings.HasSuffix(name, ".onnx") {
			if seenPath[name] {
				return nil, fmt.Errorf("-models entry %q: %s named twice; give each ONNX file once with its copies", part, name)
			}
			seenPath[name] = true
			arch := strings.TrimSuffix(filepath.Base(name), ".onnx")
			if arch == "model" && filepath.Dir(name) != "." {
				arch = filepath.Base(filepath.Dir(name))
			}
			if !validArch(arch) {
				return nil, fmt.Errorf("-models entry %q: the model name %q taken from the path is not letters, digits, '_', '-' and '.'", part, arch)
			}
			out = append(out, e2e.Instances(n, arch)...)
			continue
		}
		if !validArch(name) {
			return nil, fmt.Errorf("-models entry %q: want an architecture name of letters, digits, '_', '-' and '.' (e.g. resnet50 or resnet50_v2)", part)
		}
		out = append(out, e2e.Instances(n, name)...)
	}
	return out, nil
}

func validArch(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func runToolsTrace(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tools trace", "tools trace -workload KIND [workload flags] -models SPEC -out FILE", stderr)
	w := &workloadFlags{kind: "poisson"}
	models := fs.String("models", "resnet50_v2:4", "model instances as in cw serve: arch:copies,... or (as cw serve -backend cuda) path/to/NAME/model.onnx:copies,...; instance k is named NAME.%04d; any architecture name is accepted (torchvision names for the PyTorch baseline), all:k is k copies of every -profile model")
	profile := fs.String("profile", "", "sim profile JSON whose models all:k expands to (as cw serve -profile); empty: the embedded Clockwork V100 zoo")
	maxInst := fs.Int("instances", 0, "keep only this many instances, taken copy by copy across the models (as cw serve -instances); 0: all")
	w.register(fs, "poisson, bursty, sweep, ramp, azure (open-loop workloads only: closed has no fixed arrivals)")
	// The shared workload flags call -out a report directory; here it is the trace file.
	outFlag := fs.Lookup("out")
	outFlag.Usage = "file to write the trace TSV to ('-': stdout)"
	outFlag.DefValue = "trace.tsv"
	w.out = "trace.tsv"
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("cannot write a trace: unexpected arguments %q; every option is a flag", fs.Args())
	}
	if w.kind == "closed" || w.kind == "none" {
		return fmt.Errorf("cannot write a trace of -workload %s: it has no fixed arrivals; pick poisson, bursty, sweep, ramp or azure", w.kind)
	}
	prof := sim.DefaultProfile()
	if *profile != "" {
		var err error
		if prof, err = sim.LoadProfile(*profile); err != nil {
			return fmt.Errorf("cannot load -profile: %w", err)
		}
	}
	inst, err := traceInstances(*models, prof)
	if err != nil {
		return err
	}
	if *maxInst > 0 && *maxInst < len(inst) {
		inst = interleave(inst)[:*maxInst]
	}
	arr, err := w.arrivals(len(inst))
	if err != nil {
		return fmt.Errorf("cannot build the workload: %w", err)
	}
	defSLO := int64(w.slo)
	if defSLO <= 0 {
		defSLO = int64(controller.DefaultConfig().DefaultSLO)
	}
	dst := stdout
	var f *os.File
	if w.out != "-" {
		if f, err = os.Create(w.out); err != nil {
			return fmt.Errorf("cannot create the trace file: %w", err)
		}
		dst = f
	}
	werr := writeTrace(dst, arr, inst, defSLO, "cw tools trace "+strings.Join(args, " "))
	if f != nil {
		werr = errors.Join(werr, f.Close())
	}
	if werr != nil {
		return fmt.Errorf("cannot write the trace to %s: %w", w.out, werr)
	}
	var last int64
	if len(arr) > 0 {
		last = arr[len(arr)-1].AtNs
	}
	fmt.Fprintf(stderr, "trace: %d requests over %d instances, last arrival at %v, written to %s\n",
		len(arr), len(inst), time.Duration(last).Round(time.Millisecond), w.out)
	return nil
}

// writeTrace writes the arrivals as a trace file: comment lines (the command, the counts), the
// column header, then one line per arrival in arrival order. An arrival without an SLO gets
// defSLONs, the SLO the controller would apply.
func writeTrace(w io.Writer, arr []bench.Arrival, inst []e2e.Instance, defSLONs int64, cmdline string) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	fmt.Fprintf(bw, "# %s\n# requests %d, instances %d\n", strings.ReplaceAll(cmdline, "\n", " "), len(arr), len(inst))
	bw.WriteString(traceHeader)
	var line []byte
	for _, a := range arr {
		if a.Model < 0 || int(a.Model) >= len(inst) {
			panic(fmt.Sprintf("BUG: arrival at %d ns names model %d of %d instances", a.AtNs, a.Model, len(inst)))
		}
		slo := a.SLONs
		if slo <= 0 {
			slo = defSLONs
		}
		in := inst[a.Model]
		line = strconv.AppendInt(line[:0], a.AtNs, 10)
		line = append(line, '\t')
		line = append(line, in.Name...)
		line = append(line, '\t')
		line = append(line, in.Base...)
		line = append(line, '\t')
		line = strconv.AppendInt(line, slo, 10)
		line = append(line, '\n')
		if _, err := bw.Write(line); err != nil {
			return err
		}
	}
	return bw.Flush()
}
