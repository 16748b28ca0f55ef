package worker

import (
	"runtime"
	"strings"
	"testing"
)

func TestConfigRefusals(t *testing.T) {
	for name, mut := range map[string]func(*Config){
		"fifo without cpus":  func(c *Config) { c.FIFO, c.FIFOPriority = true, 10 },
		"fifo priority":      func(c *Config) { c.FIFO, c.FIFOPriority, c.CPUs = true, 100, []int{0} },
		"relative root":      func(c *Config) { c.ModelRoot = "models" },
		"slot over arena":    func(c *Config) { c.IOSlotBytes = c.IOBytes + 1 },
		"ring not pow2":      func(c *Config) { c.RingSize = 1000 },
		"region too small":   func(c *Config) { c.RegionBytes = 4 << 20 },
		"cpu does not exist": func(c *Config) { c.CPUs = []int{1023} },
		"odd page size":      func(c *Config) { c.PageBytes = 5000 },
	} {
		cfg := testConfig(1)
		mut(&cfg)
		if w, err := New(cfg); err == nil {
			w.Close()
			t.Errorf("%s: accepted", name)
		}
	}
	// The SCHED_FIFO guard: every CPU given leaves none for the machine.
	all := make([]int, runtime.NumCPU())
	for i := range all {
		all[i] = i
	}
	if err := fifoGuard(all); err == nil || !strings.Contains(err.Error(), "leave at least one") {
		t.Fatalf("fifoGuard(all CPUs) = %v", err)
	}
}

func TestPinnedExecutors(t *testing.T) {
	cfg := testConfig(1)
	cfg.CPUs = []int{runtime.NumCPU() - 1}
	w := startWorker(t, cfg)
	k := dial(t, w)
	k.register(1, "fast")
	k.load(1, 0)
	if r := k.infer(1, 0, 1, make([]byte, 64)); r.Status != 0 {
		t.Fatal(r)
	}
}
