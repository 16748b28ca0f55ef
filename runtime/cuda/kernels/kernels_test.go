package kernels

import (
	"strings"
	"testing"
)

// Every listed kernel is defined with C linkage, so cuModuleGetFunction finds it by name.
func TestNamesDefined(t *testing.T) {
	for _, n := range Names {
		if !strings.Contains(Source, `extern "C" __global__ void `+n+"(") {
			t.Errorf("kernel %s is listed but not defined extern \"C\" in kernels.cu", n)
		}
	}
	if c := strings.Count(Source, `extern "C" __global__`); c != len(Names) {
		t.Errorf("kernels.cu defines %d kernels, Names lists %d", c, len(Names))
	}
}
