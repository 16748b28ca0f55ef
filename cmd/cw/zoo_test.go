package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestToolsZooFlags(t *testing.T) {
	var out, errb bytes.Buffer
	if err := runToolsZoo(context.Background(), nil, &out, &errb); err == nil || !strings.Contains(err.Error(), "-out is required") {
		t.Fatalf("no -out: %v", err)
	}
	if err := runToolsZoo(context.Background(), []string{"-out", t.TempDir(), "-references", "-1"}, &out, &errb); err == nil || !strings.Contains(err.Error(), "-references -1") {
		t.Fatalf("bad -references: %v", err)
	}
	if err := runToolsZoo(context.Background(), []string{"-out", t.TempDir(), "-script", "/nonexistent.py"}, &out, &errb); err == nil || !strings.Contains(err.Error(), "pass -script") {
		t.Fatalf("missing script: %v", err)
	}
}

// TestToolsZooExport exports squeezenet1_1 (5 MB, about 20 s on two cores) with Debian's
// torchvision and checks the manifest and the import; skipped where torchvision is missing.
func TestToolsZooExport(t *testing.T) {
	if testing.Short() {
		t.Skip("exports a model with PyTorch")
	}
	if err := exec.Command("/usr/bin/python3", "-c", "import torchvision, onnx").Run(); err != nil {
		skipOrFailInCI(t, "python3-torchvision or python3-onnx missing (make deps): %v", err)
	}
	dir := t.TempDir()
	var out, errb bytes.Buffer
	script := filepath.Join("..", "..", "scripts", "zoo", "export.py")
	if err := runToolsZoo(context.Background(), []string{"-out", dir, "-models", "squeezenet1_1", "-script", script, "-references", "1"}, &out, &errb); err != nil {
		t.Fatalf("%v\n%s%s", err, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "squeezenet1_1: 83 nodes, 52 weights") || !strings.Contains(out.String(), "batch 16:   39 nodes") {
		t.Fatalf("output:\n%s", out.String())
	}
	m, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil || !strings.Contains(string(m), `"params": 1235496`) || !strings.Contains(string(m), `"sha256": "`) {
		t.Fatalf("manifest %s, %v", m, err)
	}
	for _, f := range []string{"input.f32", "output.f32", "meta.json"} {
		if _, err := os.Stat(filepath.Join(dir, "squeezenet1_1", f)); err != nil {
			t.Fatal(err)
		}
	}
}
