package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestUnknownCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := runMain(context.Background(), []string{"nope"}, &out, &errb); code != 2 {
		t.Fatalf("exit code %d, want 2", code)
	}
	if !strings.Contains(errb.String(), `unknown command "nope"`) {
		t.Fatalf("stderr %q does not name the command", errb.String())
	}
}

func TestVersion(t *testing.T) {
	var out, errb bytes.Buffer
	if code := runMain(context.Background(), []string{"version"}, &out, &errb); code != 0 {
		t.Fatalf("exit code %d: %s", code, errb.String())
	}
	if !strings.HasPrefix(out.String(), "cw ") {
		t.Fatalf("version output %q", out.String())
	}
}

func TestUsageListsCommands(t *testing.T) {
	var out bytes.Buffer
	usage(&out)
	for name := range commands {
		if !strings.Contains(out.String(), name) {
			t.Errorf("usage does not list %q", name)
		}
	}
}
