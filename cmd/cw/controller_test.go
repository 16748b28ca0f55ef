package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestControllerFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "usage: cw controller"},
		{[]string{"-workers", "127.0.0.1:1", "-models", "resnet"}, "not name=path"},
		{[]string{"-workers", "127.0.0.1:1", "-classes", "9", "-listen", "127.0.0.1:0"}, "priority classes 9"},
		{[]string{"-workers", "127.0.0.1:1", "-profile", "/nonexistent.json"}, "cannot load -profile"},
	} {
		var out, errb bytes.Buffer
		if code := runMain(context.Background(), append([]string{"controller"}, tc.args...), &out, &errb); code != 1 {
			t.Errorf("%v: exit code %d, want 1", tc.args, code)
		}
		if !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: stderr %q does not say %q", tc.args, errb.String(), tc.want)
		}
	}
}

// TestControllerRuns starts the controller with an unreachable worker and stops it.
func TestControllerRuns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var out, errb bytes.Buffer
	if code := runMain(ctx, []string{"controller", "-workers", "127.0.0.1:1", "-listen", "127.0.0.1:0", "-log-dir", t.TempDir()}, &out, &errb); code != 0 {
		t.Fatalf("exit code %d: %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "serving clients") || !strings.Contains(errb.String(), "redialling") {
		t.Fatalf("log does not show serving and redialling: %s", errb.String())
	}
}
