package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestToolsPinned(t *testing.T) {
	var out, errb bytes.Buffer
	if code := runMain(context.Background(), []string{"tools", "pinned", "-mib", "2"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"RLIMIT_MEMLOCK", "locked and pre-faulted 2 MiB"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if code := runMain(context.Background(), []string{"tools", "pinned", "-huge", "big"}, &out, &errb); code == 0 {
		t.Error("bad -huge accepted")
	}
}
