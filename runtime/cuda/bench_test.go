package cuda

import (
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/clockwork-go/clockwork/runtime/device"
)

// GPU benchmarks: each measures its cases side by side in one run and reports ratios, since
// absolute numbers drift with clocks. Run on the GPU machine with -test.benchtime=1x (each
// repeats enough internally); see docs/cuda.md.

func pct(xs []int64, p float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(p * float64(len(s)-1))
	return float64(s[i])
}

// H2D of 16 MiB pages from registered pinned memory against one large copy, and a 102 MB
// model (ResNet-50's weights) loaded as 7 pages.
func BenchmarkH2DPages(b *testing.B) {
	g := openGPU(b)
	const page = 16 << 20
	const large = 256 << 20
	const model = 102_000_000
	src := g.stage[:large]
	for i := range src {
		src[i] = byte(i*7 + i>>13)
	}
	dst := g.alloc(b, large)
	var largeNs, pageNs, modelWall, modelAsync []int64
	d := g.d
	ls := d.lanes[device.LaneWeights]
	s := d.streams[device.LaneWeights]
	b.ResetTimer()
	for range b.N * 20 {
		sp, err := d.CopyIn(device.LaneWeights, device.Ptr(dst), src)
		if err != nil {
			b.Fatal(err)
		}
		largeNs = append(largeNs, sp.Dur())
		for p := 0; p < 7; p++ {
			sp, err := d.CopyIn(device.LaneWeights, device.Ptr(dst+uint64(p*page)), src[p*page:(p+1)*page])
			if err != nil {
				b.Fatal(err)
			}
			pageNs = append(pageNs, sp.Dur())
		}
	}
	for range b.N * 200 {
		// The model as the worker's LOAD does it: one synchronous CopyIn per page.
		t0 := time.Now()
		for off := 0; off < model; off += page {
			n := min(page, model-off)
			if _, err := d.CopyIn(device.LaneWeights, device.Ptr(dst+uint64(off)), src[off:off+n]); err != nil {
				b.Fatal(err)
			}
		}
		modelWall = append(modelWall, int64(time.Since(t0)))
		// The same pages enqueued back to back, one wait at the end (event-timed).
		if err := d.drv.eventRecord(ls.c, ls.start, s); err != nil {
			b.Fatal(err)
		}
		for off := 0; off < model; off += page {
			n := min(page, model-off)
			if err := d.drv.memcpyHtoDAsync(ls.c, dst+uint64(off), unsafe.Pointer(&src[off]), n, s); err != nil {
				b.Fatal(err)
			}
		}
		sp, err := d.finish(s, ls)
		if err != nil {
			b.Fatal(err)
		}
		modelAsync = append(modelAsync, sp.Dur())
	}
	largeBW := float64(large) / pct(largeNs, 0.5)
	pageBW := float64(page) / pct(pageNs, 0.5)
	b.ReportMetric(largeBW, "large256MiB-GB/s")
	b.ReportMetric(pageBW, "page16MiB-GB/s")
	b.ReportMetric(pageBW/largeBW, "page/large")
	b.ReportMetric(pct(modelWall, 0.5)/1e6, "model102MB-wall-ms")
	b.ReportMetric(pct(modelWall, 0.99)/1e6, "model102MB-wall-p99-ms")
	b.ReportMetric(pct(modelAsync, 0.5)/1e6, "model102MB-async-ms")
}

// Kernel launch against graph launch: host cost per launch, launch+sync round trips, and 100
// kernels as 100 launches against one graph of 100.
func BenchmarkLaunch(b *testing.B) {
	g := openGPU(b)
	d := g.d
	s := g.exec()
	k := d.k
	one, err := d.capture(func(s uintptr) error { return k.noop(s) })
	if err != nil {
		b.Fatal(err)
	}
	defer one.close()
	hundred, err := d.capture(func(s uintptr) error {
		for range 100 {
			if err := k.noop(s); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	defer hundred.close()
	ls := d.lanes[device.LaneExec]
	wait := func() {
		if err := d.drv.eventRecord(ls.c, ls.end, s); err != nil {
			b.Fatal(err)
		}
		for {
			done, err := d.drv.eventQuery(ls.c, ls.end)
			if err != nil {
				b.Fatal(err)
			}
			if done {
				return
			}
		}
	}
	const reps = 2000
	var kHost, gHost, kRT, gRT, k100, g100 []int64
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		for range reps {
			k.noop(s)
		}
		kHost = append(kHost, int64(time.Since(t0))/reps)
		wait()
		t0 = time.Now()
		for range reps {
			one.launch()
		}
		gHost = append(gHost, int64(time.Since(t0))/reps)
		wait()
		for range reps {
			t0 = time.Now()
			k.noop(s)
			wait()
			kRT = append(kRT, int64(time.Since(t0)))
			t0 = time.Now()
			one.launch()
			wait()
			gRT = append(gRT, int64(time.Since(t0)))
		}
		for range 200 {
			t0 = time.Now()
			for range 100 {
				k.noop(s)
			}
			wait()
			k100 = append(k100, int64(time.Since(t0)))
			t0 = time.Now()
			hundred.launch()
			wait()
			g100 = append(g100, int64(time.Since(t0)))
		}
	}
	b.ReportMetric(pct(kHost, 0.5)/1e3, "kernel-launch-host-us")
	b.ReportMetric(pct(gHost, 0.5)/1e3, "graph-launch-host-us")
	b.ReportMetric(pct(kRT, 0.5)/1e3, "kernel-roundtrip-p50-us")
	b.ReportMetric(pct(kRT, 0.99)/1e3, "kernel-roundtrip-p99-us")
	b.ReportMetric(pct(gRT, 0.5)/1e3, "graph-roundtrip-p50-us")
	b.ReportMetric(pct(gRT, 0.99)/1e3, "graph-roundtrip-p99-us")
	b.ReportMetric(pct(k100, 0.5)/1e3, "100kernels-launched-us")
	b.ReportMetric(pct(g100, 0.5)/1e3, "100kernels-graph-us")
}

// tailGraph captures the fixed graph of the tail benchmarks: 20 elementwise kernels over
// 16 MiB between two event-record nodes, so the events time the graph alone on the device.
func tailGraph(b *testing.B, g *gpu) (gr *graph, evA, evB uintptr) {
	d := g.d
	r := testRand(b)
	n := 4 << 20
	x := g.upload(b, randFloats(r, n, -1, 1))
	y := g.alloc(b, int64(4*n))
	return eventGraph(b, g, func(s uintptr) error {
		for i := range 20 {
			src, dst := x, y
			if i%2 == 1 {
				src, dst = y, x
			}
			if err := d.k.unary(s, actTanh, src, dst, int64(n), 0, 0); err != nil {
				return err
			}
		}
		return nil
	})
}

// gemmGraph is a compute-bound graph: six fp32 GEMMs 1024³ (about 250 µs on an H100).
func gemmGraph(b *testing.B, g *gpu) (gr *graph, evA, evB uintptr) {
	r := testRand(b)
	const m = 1024
	h, err := g.d.blasHandle()
	if err != nil {
		b.Fatal(err)
	}
	x, y := g.upload(b, randFloats(r, m*m, -1, 1)), g.upload(b, randFloats(r, m*m, -1, 1))
	z := g.alloc(b, 4*m*m)
	return eventGraph(b, g, func(s uintptr) error {
		for range 6 {
			if err := h.gemm(FP32, m, m, m, x, y, z); err != nil {
				return err
			}
		}
		return nil
	})
}

// eventGraph captures body between two event-record nodes, so the events time the graph
// alone on the device.
func eventGraph(b *testing.B, g *gpu, body func(s uintptr) error) (gr *graph, evA, evB uintptr) {
	d := g.d
	var err error
	if evA, err = d.drv.eventCreate(cuEventDefault); err != nil {
		b.Fatal(err)
	}
	if evB, err = d.drv.eventCreate(cuEventDefault); err != nil {
		b.Fatal(err)
	}
	gr, err = d.capture(func(s uintptr) error {
		if err := d.drv.eventRecordExternal(evA, s); err != nil {
			return err
		}
		if err := body(s); err != nil {
			return err
		}
		return d.drv.eventRecordExternal(evB, s)
	})
	if err != nil {
		b.Fatal(err)
	}
	return gr, evA, evB
}

// replay launches gr once, waits for evB and returns (device ns between the in-graph events,
// host ns from launch to the wait's return).
func replay(b *testing.B, d *Device, gr *graph, evA, evB uintptr, ms *float32) (int64, int64) {
	c := d.lanes[device.LaneExec].c
	t0 := time.Now()
	if err := gr.launch(); err != nil {
		b.Fatal(err)
	}
	if err := d.drv.eventSynchronize(c, evB); err != nil {
		b.Fatal(err)
	}
	wall := int64(time.Since(t0))
	ns, err := d.drv.elapsedNs(c, ms, evA, evB)
	if err != nil {
		b.Fatal(err)
	}
	return ns, wall
}

// One fixed graph replayed 10,000 times back to back: the spread of its device time, timed by
// events recorded inside the graph, and of the launch-to-completion wall time on the host.
func BenchmarkGraphReplayTail(b *testing.B) {
	g := openGPU(b)
	d := g.d
	gr, evA, evB := tailGraph(b, g)
	defer gr.close()
	ms := new(float32)
	const runs = 10000
	dev := make([]int64, 0, runs)
	wall := make([]int64, 0, runs)
	for range 200 { // warm up clocks
		replay(b, d, gr, evA, evB, ms)
	}
	b.ResetTimer()
	for range b.N {
		for range runs {
			ns, w := replay(b, d, gr, evA, evB, ms)
			dev = append(dev, ns)
			wall = append(wall, w)
		}
	}
	p50 := pct(dev, 0.5)
	b.ReportMetric(p50/1e3, "device-p50-us")
	b.ReportMetric(pct(dev, 0.99)/p50, "device-p99/p50")
	b.ReportMetric(pct(dev, 0.999)/p50, "device-p99.9/p50")
	b.ReportMetric(pct(dev, 0.9999)/p50, "device-p99.99/p50")
	w50 := pct(wall, 0.5)
	b.ReportMetric(w50/1e3, "wall-p50-us")
	b.ReportMetric(pct(wall, 0.9999)/w50, "wall-p99.99/p50")
}

// A fixed graph (memory-bound: tailGraph; compute-bound: gemmGraph) with 2 ms idle gaps
// between runs, side by side: back to back (reference), idle gaps, and gaps filled by
// Device.Warm until 50 µs before the next run. Device time from in-graph events; ratios
// against the back-to-back median.
func BenchmarkIdleGapTail(b *testing.B) {
	b.Run("memory-bound", func(b *testing.B) { idleGapTail(b, tailGraph) })
	b.Run("gemm", func(b *testing.B) { idleGapTail(b, gemmGraph) })
}

func idleGapTail(b *testing.B, mk func(*testing.B, *gpu) (*graph, uintptr, uintptr)) {
	g := openGPU(b)
	d := g.d
	gr, evA, evB := mk(b, g)
	defer gr.close()
	ms := new(float32)
	const runs = 3000
	const gap = 2 * time.Millisecond
	const lead = 50 * time.Microsecond
	wait := func(until time.Time) {
		for time.Now().Before(until) {
		}
	}
	modes := []string{"b2b", "idle", "warm"}
	res := map[string][]int64{}
	var warmHost []int64
	for range 200 {
		replay(b, d, gr, evA, evB, ms)
	}
	b.ResetTimer()
	for range b.N {
		for _, m := range modes {
			for range runs {
				switch m {
				case "idle":
					wait(time.Now().Add(gap))
				case "warm":
					next := time.Now().Add(gap)
					t0 := time.Now()
					if err := d.Warm(gap - lead); err != nil {
						b.Fatal(err)
					}
					warmHost = append(warmHost, int64(time.Since(t0)))
					wait(next)
				}
				ns, _ := replay(b, d, gr, evA, evB, ms)
				res[m] = append(res[m], ns)
			}
		}
	}
	ref := pct(res["b2b"], 0.5)
	b.ReportMetric(ref/1e3, "b2b-p50-us")
	for _, m := range modes {
		b.ReportMetric(pct(res[m], 0.5)/ref, m+"-p50/ref")
		b.ReportMetric(pct(res[m], 0.99)/ref, m+"-p99/ref")
		b.ReportMetric(pct(res[m], 0.999)/ref, m+"-p99.9/ref")
		b.ReportMetric(pct(res[m], 1)/ref, m+"-max/ref")
	}
	b.ReportMetric(pct(warmHost, 0.5)/1e3, "warm-call-host-us")
}

// GEMM 4096³ through cuBLAS GemmEx and cuBLASLt in fp32, tf32 and fp16: median of 30 event-timed
// runs after warm-up, on random data. Compare with testdata/torch_gemm.py run alongside.
func BenchmarkGemm4096(b *testing.B) {
	g := openGPU(b)
	r := testRand(b)
	const m = 4096
	h, err := g.d.blasHandle()
	if err != nil {
		b.Fatal(err)
	}
	lt, err := g.b.ltLib()
	if err != nil {
		b.Fatal(err)
	}
	ws := g.alloc(b, 64<<20)
	x32 := randFloats(r, m*m, -1, 1)
	a32, b32 := g.upload(b, x32), g.upload(b, randFloats(r, m*m, -1, 1))
	c32 := g.alloc(b, 4*m*m)
	a16, b16, c16 := g.alloc(b, 2*m*m), g.alloc(b, 2*m*m), g.alloc(b, 2*m*m)
	if err := g.d.k.convert(g.exec(), true, a32, a16, m*m); err != nil {
		b.Fatal(err)
	}
	if err := g.d.k.convert(g.exec(), true, b32, b16, m*m); err != nil {
		b.Fatal(err)
	}
	d := g.d
	ls := d.lanes[device.LaneExec]
	s := g.exec()
	timeIt := func(f func() error) float64 {
		for range 5 {
			if err := f(); err != nil {
				b.Fatal(err)
			}
		}
		var ts []int64
		for range 30 {
			d.drv.eventRecord(ls.c, ls.start, s)
			if err := f(); err != nil {
				b.Fatal(err)
			}
			sp, err := d.finish(s, ls)
			if err != nil {
				b.Fatal(err)
			}
			ts = append(ts, sp.Dur())
		}
		return 2 * float64(m) * m * m / pct(ts, 0.5) / 1e3 // TFLOP/s
	}
	b.ResetTimer()
	for range b.N {
		for _, p := range []Precision{FP32, TF32, FP16} {
			a, bb, c := a32, b32, c32
			if p == FP16 {
				a, bb, c = a16, b16, c16
			}
			b.ReportMetric(timeIt(func() error { return h.gemm(p, m, m, m, a, bb, c) }), "cublas-"+p.String()+"-TFLOP/s")
			lg, err := newLtGemm(lt, ls.c, p, m, m, m, ws, 64<<20)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(timeIt(func() error { return lg.run(a, bb, c, s) }), "cublasLt-"+p.String()+"-TFLOP/s")
			lg.close()
		}
	}
}
