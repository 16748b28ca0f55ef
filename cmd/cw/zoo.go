package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/clockwork-go/clockwork/runtime/model"
)

func init() {
	registerTool(command{name: "zoo", summary: "export torchvision models to ONNX (random weights, fixed seeds) with a manifest, then import and plan them", run: runToolsZoo})
}

// zooScript finds scripts/zoo/export.py: in the working directory's repository, or next to
// the binary (bin/cw → ../scripts/zoo).
func zooScript() string {
	cands := []string{"scripts/zoo/export.py"}
	if exe, err := os.Executable(); err == nil {
		cands = append(cands, filepath.Join(filepath.Dir(exe), "..", "scripts", "zoo", "export.py"))
	}
	for _, c := range cands {
		if _, err := os.Stat(c); err == nil {
			return c
		}
	}
	return cands[0]
}

func runToolsZoo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tools zoo", "tools zoo -out DIR [-models a,b,c] [flags]", stderr)
	out := fs.String("out", "", "directory to write DIR/MODEL/model.onnx, meta.json and DIR/manifest.json into (required; models are generated, never committed)")
	models := fs.String("models", "squeezenet1_1,resnet18,mobilenet_v3_small", "comma-separated torchvision architectures (names as in torchvision.models; the default is the small set CI can afford)")
	opset := fs.Int("opset", 13, "ONNX opset to export with (runtime/model accepts 9..18); 13 is what torch 1.13 exports best")
	refs := fs.Int("references", 0, "write N random inputs and PyTorch's fp32 outputs per model (input.f32, output.f32) for equivalence tests; 0 for none")
	seed := fs.Int("seed", 0, "weight seed (inputs use seed+1, BatchNorm calibration seed+2)")
	python := fs.String("python", "/usr/bin/python3", "Python with torch and torchvision (Debian: apt-get install python3-torchvision python3-onnx)")
	script := fs.String("script", zooScript(), "the export script")
	dynamo := fs.Bool("dynamo", false, "torch >= 2.x: use the torch.export-based exporter (weights in model.onnx.data; pair with -opset 18); default is the TorchScript exporter, which torch 1.13 and 2.11 both have")
	check := fs.Bool("check", true, "after exporting, import each model with runtime/model and build its plans (batches 1-16), printing nodes, weights and workspace")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("cannot run zoo: -out is required and no positional arguments are accepted")
	}
	if *refs < 0 || *refs > 1024 {
		return fmt.Errorf("cannot run zoo: -references %d out of range 0..1024", *refs)
	}
	if _, err := os.Stat(*script); err != nil {
		return fmt.Errorf("cannot run zoo: export script: %w; run from the repository root or pass -script", err)
	}
	cmd := exec.CommandContext(ctx, *python, *script, "--out", *out, "--models", *models,
		"--opset", fmt.Sprint(*opset), "--references", fmt.Sprint(*refs), "--seed", fmt.Sprint(*seed))
	if *dynamo {
		cmd.Args = append(cmd.Args, "--dynamo")
	}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("cannot export models with %s %s: %w (needs torch and torchvision: apt-get install python3-torchvision python3-onnx)", *python, *script, err)
	}
	if !*check {
		return nil
	}
	for _, name := range strings.Split(*models, ",") {
		if name == "" {
			continue
		}
		start := time.Now()
		g, err := model.Load(filepath.Join(*out, name, "model.onnx"))
		if err != nil {
			return err
		}
		m, err := model.Build(g, nil, 0)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: %d nodes, %d weights (%d bytes, %d pages of %d MiB), imported and planned in %v\n",
			name, len(g.Nodes), len(m.Weights), m.Layout.Bytes, m.Layout.Pages, m.Layout.PageSize>>20, time.Since(start).Round(time.Millisecond))
		for _, p := range m.Plans {
			fmt.Fprintf(stdout, "  batch %2d: %4d nodes, workspace %8.2f MiB, activations %8.2f MiB\n",
				p.Batch, len(p.Graph.Nodes), float64(p.WorkspaceBytes)/(1<<20), float64(p.ActivationBytes)/(1<<20))
		}
	}
	return nil
}
