package sim

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/clockwork-go/clockwork/internal/invariants"
	"github.com/clockwork-go/clockwork/runtime/device"
)

func open(t testing.TB, cfg Config) []device.Device {
	t.Helper()
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	devs, err := b.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	return devs
}

// TestCopyAndRunTimes runs under synctest, where sleeps are exact: copies take size/bandwidth and
// a run at Noise 0 takes exactly the profile's p50.
func TestCopyAndRunTimes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := func() int64 { return time.Now().UnixNano() }
		d := open(t, Config{GPUs: 2, H2DBytesPerSec: 1e9, D2HBytesPerSec: 2e9, CopyLatencyNs: 1000, Clock: clock, SpinNs: 0})[1]
		info := d.Info()
		sp, err := d.CopyIn(device.LaneInput, info.Base, make([]byte, 1e6))
		if err != nil || sp.Dur() != 1000+1e6 {
			t.Fatalf("CopyIn 1 MB at 1 GB/s = %v, %v; want 1.001 ms", sp, err)
		}
		sp, err = d.CopyOut(device.LaneOutput, make([]byte, 1e6), info.Base+10)
		if err != nil || sp.Dur() != 1000+5e5 {
			t.Fatalf("CopyOut 1 MB at 2 GB/s = %v, %v", sp, err)
		}
		m := DefaultProfile().Model("resnet50_v2")
		p, err := d.Prepare(m, []int{1, 4})
		if err != nil {
			t.Fatal(err)
		}
		sp, err = p.Run(4, []device.Ptr{info.Base}, info.Base, info.Base+1<<20, info.Base+2<<20)
		if err != nil || sp.Dur() != 5870000 {
			t.Fatalf("Run b4 = %v %v, want 5.87 ms", sp, err)
		}
	})
}

func TestRegionLimits(t *testing.T) {
	b, _ := New(Config{GPUs: 1, MemBytes: 1 << 30, SpinNs: 0, H2DBytesPerSec: 1e15, D2HBytesPerSec: 1e15})
	if _, err := b.Open(2 << 30); err == nil {
		t.Fatal("Open with a region larger than memory succeeded")
	}
	devs, err := b.Open(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	d := devs[0]
	base := d.Info().Base
	for _, c := range []struct {
		p  device.Ptr
		n  int
		ok bool
	}{{base, 1 << 20, true}, {base + 1, 1 << 20, false}, {base - 1, 1, false}, {0, 0, false}, {base + 1<<20, 0, true}, {base + 1<<20, 1, false}} {
		_, err := d.CopyIn(device.LaneWeights, c.p, make([]byte, c.n))
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrOutOfRegion)) {
			t.Errorf("CopyIn(%#x, %d) err = %v, want ok=%v", uint64(c.p), c.n, err, c.ok)
		}
	}
	p, err := d.Prepare(DefaultProfile().Model("resnet50_v2"), nil)
	if err != nil {
		t.Fatal(err)
	}
	// The output of b16 (64 KB) does not fit at the end of the region.
	if _, err := p.Run(16, []device.Ptr{base}, base, base+1<<20-100, base); !errors.Is(err, ErrOutOfRegion) {
		t.Fatalf("Run with out-of-region output: %v", err)
	}
	if _, err := p.Run(3, []device.Ptr{base}, base, base, base); err == nil {
		t.Fatal("Run at an unprepared batch succeeded")
	}
	if _, err := d.Prepare(DefaultProfile().Model("resnet50_v2"), []int{3}); err == nil {
		t.Fatal("Prepare at an unprofiled batch succeeded")
	}
	d.Close()
	if _, err := d.CopyIn(device.LaneInput, base, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("CopyIn after Close: %v", err)
	}
}

func draws(seed uint64, dev int, n int) []int64 {
	b, _ := New(Config{GPUs: dev + 1, Noise: 1, Seed: seed, SpinNs: 0})
	devs, _ := b.Open(0)
	p, _ := devs[dev].Prepare(DefaultProfile().Model("resnet50_v2"), nil)
	out := make([]int64, n)
	for i := range out {
		out[i], _ = p.(*Program).Duration(8)
	}
	return out
}

func TestDeterministicDraws(t *testing.T) {
	a, b := draws(7, 0, 20000), draws(7, 0, 20000)
	if !slices.Equal(a, b) {
		t.Fatal("same seed gave different durations")
	}
	if slices.Equal(a, draws(8, 0, 20000)) || slices.Equal(a, draws(7, 1, 20000)) {
		t.Fatal("different seed or device gave the same durations")
	}
	sort.Slice(a, func(i, j int) bool { return a[i] < a[j] })
	e, _ := DefaultProfile().Model("resnet50_v2").Batch(8)
	q := func(f float64) int64 { return a[int(f*float64(len(a)-1))] }
	if q(0.5) != e.P50Ns || q(0.99) < e.P50Ns || q(0.99) > e.P99Ns || a[len(a)-1] > e.P9999Ns {
		t.Fatalf("quantiles p50=%d p99=%d max=%d vs profile %+v", q(0.5), q(0.99), a[len(a)-1], e)
	}
}

func TestOneRunAtATime(t *testing.T) {
	if !invariants.Enabled {
		t.Skip("needs -tags invariants")
	}
	d := open(t, Config{GPUs: 1, SpinNs: 0})[0]
	base := d.Info().Base
	p, _ := d.Prepare(DefaultProfile().Model("resnet50_v2"), nil)
	started := make(chan struct{})
	go func() {
		close(started)
		p.Run(16, []device.Ptr{base}, base, base, base) // 17 ms
	}()
	<-started
	time.Sleep(2 * time.Millisecond)
	defer func() {
		if r := recover(); r == nil {
			t.Fatal("a second concurrent Run did not panic")
		} else if s := fmt.Sprint(r); s[:4] != "BUG:" {
			t.Fatalf("panic %q is not a BUG", s)
		}
	}()
	p.Run(1, []device.Ptr{base}, base, base, base)
}

func TestRunAllocs(t *testing.T) {
	d := open(t, Config{GPUs: 1, SpinNs: 0, Noise: 1, H2DBytesPerSec: 1e18, D2HBytesPerSec: 1e18})[0]
	base := d.Info().Base
	m := &ModelProfile{ModelName: "tiny", InputBytes: 4, OutputBytes: 4, Batches: []BatchProfile{{Batch: 1, P50Ns: 1, P99Ns: 2, P9999Ns: 3}}}
	p, err := d.Prepare(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	pages := []device.Ptr{base}
	buf := make([]byte, 4)
	n := testing.AllocsPerRun(1000, func() {
		d.CopyIn(device.LaneInput, base, buf)
		p.Run(1, pages, base, base, base)
		d.CopyOut(device.LaneOutput, buf, base)
	})
	if n != 0 {
		t.Fatalf("%v allocs per copy-run-copy", n)
	}
}

// BenchmarkWaitUntil measures how late WaitUntil returns for a 1 ms wait: sleeping only vs
// sleeping then spinning the last DefaultSpinNs.
func BenchmarkWaitUntil(b *testing.B) {
	for _, spin := range []int64{0, DefaultSpinNs, 4 * DefaultSpinNs} {
		b.Run(fmt.Sprintf("spin=%dus", spin/1000), func(b *testing.B) {
			late := make([]int64, 0, b.N)
			for b.Loop() {
				dl := Clock() + 1e6
				late = append(late, WaitUntil(Clock, dl, spin)-dl)
			}
			slices.Sort(late)
			pct := func(f float64) float64 { return float64(late[int(f*float64(len(late)-1))]) }
			b.ReportMetric(pct(0.5), "p50-late-ns")
			b.ReportMetric(pct(0.99), "p99-late-ns")
			b.ReportMetric(float64(late[len(late)-1]), "max-late-ns")
		})
	}
}

// BenchmarkManyDevices runs 256 emulated GPUs at once, each executing 1 ms INFERs back to back
// on its own goroutine (sleep-only waits): the emulation scales when the achieved device time
// per wall second approaches 256.
func BenchmarkManyDevices(b *testing.B) {
	const n = 256
	m := &ModelProfile{ModelName: "m", InputBytes: 4, OutputBytes: 4, WeightsBytes: 1, Batches: []BatchProfile{{Batch: 1, P50Ns: 1e6, P99Ns: 1e6, P9999Ns: 1e6}}}
	devs := open(b, Config{GPUs: n, SpinNs: 0})
	progs := make([]device.Program, n)
	for i, d := range devs {
		progs[i], _ = d.Prepare(m, nil)
	}
	start := time.Now()
	var busy atomic.Int64
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			base := devs[i].Info().Base
			pages := []device.Ptr{base}
			for range b.N {
				sp, _ := progs[i].Run(1, pages, base, base, base)
				busy.Add(sp.Dur())
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(busy.Load())/float64(time.Since(start)), "device-s/wall-s")
}
