package probe

import (
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestCalibrateClock(t *testing.T) {
	const off = 1_700_000_000_000_000_000
	c := CalibrateClock(func() int64 { return Now() + off })
	if d := c.OffsetNs - off; d < -c.ErrorNs-1 || d > c.ErrorNs+1 {
		t.Errorf("offset %d off by %d, more than the error bound %d", c.OffsetNs, d, c.ErrorNs)
	}
	if c.ErrorNs < 0 || c.ErrorNs > int64(time.Millisecond) {
		t.Errorf("error bound %d ns", c.ErrorNs)
	}
	if m := Now(); c.ToMono(c.FromMono(m)) != m {
		t.Error("ToMono(FromMono(x)) != x")
	}
}

func TestTasks(t *testing.T) {
	ts, err := Tasks(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	me := unix.Gettid()
	found := false
	for _, k := range ts {
		found = found || k.TID == me
	}
	if !found || len(ts) < 2 {
		t.Errorf("Tasks(self) = %v; want several threads including %d", ts, me)
	}
	if _, err := Tasks(1 << 30); err == nil {
		t.Error("Tasks of a pid that cannot exist succeeded")
	}
}
