package cuda

import (
	"testing"
	"time"
	"unsafe"
)

// readDevice copies n floats from any device address (the region check of CopyOut does not
// cover reserved ranges) through the staging buffer.
func (g *gpu) readDevice(t testing.TB, p uint64, n int) []float32 {
	t.Helper()
	if err := g.d.drv.memcpyDtoHAsync(nil, unsafe.Pointer(&g.stage[0]), p, 4*n, g.exec()); err != nil {
		t.Fatal(err)
	}
	g.sync(t)
	out := make([]float32, n)
	copy(f32Bytes(out), g.stage[:4*n])
	return out
}

// A graph captured on a reserved address range computes into whatever physical pages are
// mapped there when it runs, and an unmapped page keeps its contents (DESIGN.md §7).
func TestGPUVMMRemap(t *testing.T) {
	g := openGPU(t)
	r := testRand(t)
	gran, err := g.d.vmmGranularity()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("VMM granularity %d bytes", gran)
	const page = 16 << 20
	n := 2 * page / 4
	va, err := g.d.reserve(2, page)
	if err != nil {
		t.Fatal(err)
	}
	defer va.free()
	var phys [3]uint64
	for i := range phys {
		if phys[i], err = g.d.physAlloc(page); err != nil {
			t.Fatal(err)
		}
		defer g.d.physFree(phys[i])
	}
	if err := va.mapPage(0, phys[0]); err != nil {
		t.Fatal(err)
	}
	if err := va.mapPage(1, phys[1]); err != nil {
		t.Fatal(err)
	}
	if err := va.mapPage(1, phys[2]); err == nil {
		t.Fatal("mapping an occupied slot was accepted")
	}
	x1 := randFloats(r, n, -1, 1)
	px := g.upload(t, x1)
	gr, err := g.d.capture(func(s uintptr) error { return g.d.k.unary(s, actClip, px, va.base, int64(n), -0.5, 0.5) })
	if err != nil {
		t.Fatal(err)
	}
	defer gr.close()
	want := func(x []float32) []float32 {
		w := make([]float32, len(x))
		for i, v := range x {
			w[i] = refAct(v, actClip, -0.5, 0.5)
		}
		return w
	}
	if _, err := gr.run(); err != nil {
		t.Fatal(err)
	}
	w1 := want(x1)
	if e := maxAbsErr(g.readDevice(t, va.base, n), w1); e != 0 {
		t.Fatalf("first run: max abs error %g", e)
	}
	// Swap the second page for a fresh one and run the same graph on new input.
	if err := va.unmapPage(1); err != nil {
		t.Fatal(err)
	}
	if err := va.mapPage(1, phys[2]); err != nil {
		t.Fatal(err)
	}
	x2 := randFloats(r, n, -1, 1)
	g.put(t, px, f32Bytes(x2))
	if _, err := gr.run(); err != nil {
		t.Fatal(err)
	}
	if e := maxAbsErr(g.readDevice(t, va.base, n), want(x2)); e != 0 {
		t.Fatalf("after remap: max abs error %g", e)
	}
	// The page taken out still holds the first run's second half.
	va2, err := g.d.reserve(1, page)
	if err != nil {
		t.Fatal(err)
	}
	defer va2.free()
	if err := va2.mapPage(0, phys[1]); err != nil {
		t.Fatal(err)
	}
	if e := maxAbsErr(g.readDevice(t, va2.base, n/2), w1[n/2:]); e != 0 {
		t.Fatalf("unmapped page lost its contents: max abs error %g", e)
	}
}

// The two ways to point a prepared graph at newly loaded weights, side by side: re-binding
// the arguments of every kernel node in the instantiated graph, against remapping the model's
// 7 pages (16 MiB each) under a reserved address range.
func BenchmarkRebindVsRemap(b *testing.B) {
	g := openGPU(b)
	const nodes = 56
	const pages = 7
	const page = 16 << 20
	p := g.alloc(b, 1<<20)
	gr, err := g.d.capture(func(s uintptr) error {
		for range nodes {
			if err := g.d.k.unary(s, actReLU, p, p, 1024, 0, 0); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	defer gr.close()
	args := make([]*kernelArgs, nodes)
	for i := range args {
		args[i] = newKernelArgs().u64(p).u64(p).u64(1024).i32(int32(actReLU)).f32(0).f32(0)
	}
	va, err := g.d.reserve(pages, page)
	if err != nil {
		b.Fatal(err)
	}
	defer va.free()
	var phys [2][pages]uint64
	for s := range phys {
		for i := range phys[s] {
			if phys[s][i], err = g.d.physAlloc(page); err != nil {
				b.Fatal(err)
			}
			defer g.d.physFree(phys[s][i])
		}
	}
	for i := range pages {
		if err := va.mapPage(i, phys[0][i]); err != nil {
			b.Fatal(err)
		}
	}
	var rebind, unmap, remap []int64
	b.ResetTimer()
	for it := range b.N * 50 {
		t0 := time.Now()
		for i := range nodes {
			if err := gr.setKernelArgs(i, args[i]); err != nil {
				b.Fatal(err)
			}
		}
		rebind = append(rebind, int64(time.Since(t0)))
		if _, err := gr.run(); err != nil {
			b.Fatal(err)
		}
		t0 = time.Now()
		for i := range pages {
			if err := va.unmapPage(i); err != nil {
				b.Fatal(err)
			}
		}
		t1 := time.Now()
		for i := range pages {
			if err := va.mapPage(i, phys[(it+1)%2][i]); err != nil {
				b.Fatal(err)
			}
		}
		unmap = append(unmap, int64(t1.Sub(t0)))
		remap = append(remap, int64(time.Since(t1)))
	}
	b.ReportMetric(pct(rebind, 0.5)/1e3, "rebind-56nodes-p50-us")
	b.ReportMetric(pct(rebind, 1)/1e3, "rebind-56nodes-max-us")
	b.ReportMetric(pct(unmap, 0.5)/1e3, "unmap-7pages-p50-us")
	b.ReportMetric(pct(unmap, 1)/1e3, "unmap-7pages-max-us")
	b.ReportMetric(pct(remap, 0.5)/1e3, "map+access-7pages-p50-us")
	b.ReportMetric(pct(remap, 1)/1e3, "map+access-7pages-max-us")
}
