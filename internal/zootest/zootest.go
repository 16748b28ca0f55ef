// Package zootest gives tests the torchvision zoo exported to ONNX with PyTorch's reference
// outputs (scripts/zoo/export.py, what `cw tools zoo` runs), so tests against real models run
// everywhere the tests run: in CI `make test` installs PyTorch (scripts/apt-packages.txt).
//
// A model comes from MODEL_ZOO when that directory has it (a zoo written by `cw tools zoo
// -references N`), else it is exported once into a cache under os.TempDir keyed by the script's
// hash (a changed script re-exports). Without PyTorch a test is skipped locally and fails in CI
// (CI=true): a missing dependency never passes as a skip there.
package zootest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// References is how many random inputs (and PyTorch outputs) an export writes.
const References = 8

// Dir returns the directory of model (holding model.onnx, input.f32, output.f32, meta.json).
func Dir(tb testing.TB, model string) string {
	tb.Helper()
	if env := os.Getenv("MODEL_ZOO"); env != "" {
		md := filepath.Join(env, model)
		if _, err := os.Stat(filepath.Join(md, "output.f32")); err == nil {
			return md
		}
	}
	script, err := scriptPath()
	if err != nil {
		tb.Fatal(err)
	}
	src, err := os.ReadFile(script)
	if err != nil {
		tb.Fatal(err)
	}
	sum := sha256.Sum256(src)
	dir := filepath.Join(os.TempDir(), "clockwork-cpu-torchref", hex.EncodeToString(sum[:6]))
	md := filepath.Join(dir, model)
	if _, err := os.Stat(filepath.Join(md, "meta.json")); err == nil {
		return md
	}
	if out, err := exec.Command("/usr/bin/python3", "-c", "import torch, torchvision, onnx").CombinedOutput(); err != nil {
		msg := fmt.Sprintf("the zoo needs /usr/bin/python3 with torch, torchvision and onnx (Debian: python3-torchvision python3-onnx; `make deps`), or MODEL_ZOO set to a `cw tools zoo -references %d` directory: %v: %s", References, err, out)
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	if err := os.MkdirAll(dir+"-tmp", 0o755); err != nil {
		tb.Fatal(err)
	}
	tmp, err := os.MkdirTemp(dir+"-tmp", "")
	if err != nil {
		tb.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	start := time.Now()
	cmd := exec.Command("/usr/bin/python3", script, "--out", tmp, "--models", model, "--references", fmt.Sprint(References), "--seed", "0", "--threads", "2")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("%s %s: %v\n%s", script, model, err, out)
	}
	tb.Logf("exported %s with PyTorch in %v", model, time.Since(start).Round(time.Millisecond))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	// rename into place atomically, so a concurrent or interrupted run never sees half a model
	if err := os.Rename(filepath.Join(tmp, model), md); err != nil {
		if _, serr := os.Stat(filepath.Join(md, "meta.json")); serr != nil {
			tb.Fatal(err)
		}
	}
	return md
}

// scriptPath finds scripts/zoo/export.py from the test's directory up to the module root.
func scriptPath() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, "scripts", "zoo", "export.py"), nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("cannot find the zoo script: no go.mod above %s", wd)
		}
	}
}
