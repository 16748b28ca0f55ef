package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestToolsH2D times LOADs on two cpu devices alone and at once: one row per GPU and phase;
// sim is refused.
func TestToolsH2D(t *testing.T) {
	var out, errb bytes.Buffer
	if err := runToolsH2D(t.Context(), []string{"-backend", "cpu", "-gpus", "2", "-model-mib", "4", "-page-mib", "1", "-loads", "5"}, &out, &errb); err != nil {
		t.Fatalf("%v: %s", err, errb.String())
	}
	for _, want := range []string{"| alone | 0 |", "| alone | 1 |", "| all at once | 0 |", "| all at once | 1 |"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if err := runToolsH2D(t.Context(), []string{"-backend", "sim"}, &out, &errb); err == nil {
		t.Error("-backend sim: want an error")
	}
}
