package cuda

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/clockwork-go/clockwork/runtime/device"
)

// gpu is one opened device with a pinned staging buffer and a bump allocator over its region,
// shared by the GPU tests of one binary.
type gpu struct {
	b     *Backend
	d     *Device
	stage []byte // mmap'd, registered
	next  uint64
}

var gpuSingleton *gpu

const testRegion = 3 << 30 // vgg16's weights twice (the zoo test's re-bind) and its buffers

// openGPU returns the shared device, or skips the test with the wrapped reason when the
// backend is not available. Any other error fails the test.
func openGPU(t testing.TB) *gpu {
	t.Helper()
	if gpuSingleton != nil {
		return gpuSingleton
	}
	cfg := DefaultConfig()
	cfg.Devices = []int{0}
	b := New(cfg)
	devs, err := b.Open(testRegion)
	if err != nil {
		if errors.Is(err, device.ErrNotSupported) {
			t.Skipf("cuda not available: %v", err)
		}
		t.Fatalf("Open: %v", err)
	}
	d := devs[0].(*Device)
	stage, err := unix.Mmap(-1, 0, 320<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE|unix.MAP_POPULATE)
	if err != nil {
		t.Fatalf("mmap staging: %v", err)
	}
	if err := d.RegisterHost(stage); err != nil {
		t.Fatalf("RegisterHost: %v", err)
	}
	gpuSingleton = &gpu{b: b, d: d, stage: stage, next: uint64(d.info.Base)}
	return gpuSingleton
}

// alloc hands out 256-byte aligned device memory from the region; tests never free.
func (g *gpu) alloc(t testing.TB, n int64) uint64 {
	t.Helper()
	p := (g.next + 255) &^ 255
	if p+uint64(n) > uint64(g.d.info.Base)+uint64(g.d.info.Size) {
		t.Fatalf("test region exhausted")
	}
	g.next = p + uint64(n)
	return p
}

func f32Bytes(x []float32) []byte { return unsafe.Slice((*byte)(unsafe.Pointer(&x[0])), 4*len(x)) }
func u16Bytes(x []uint16) []byte  { return unsafe.Slice((*byte)(unsafe.Pointer(&x[0])), 2*len(x)) }

func (g *gpu) put(t testing.TB, dst uint64, b []byte) {
	t.Helper()
	n := copy(g.stage, b)
	if n != len(b) {
		t.Fatalf("staging too small for %d bytes", len(b))
	}
	if _, err := g.d.CopyIn(device.LaneInput, device.Ptr(dst), g.stage[:n]); err != nil {
		t.Fatalf("CopyIn: %v", err)
	}
}

func (g *gpu) get(t testing.TB, src uint64, b []byte) {
	t.Helper()
	if _, err := g.d.CopyOut(device.LaneOutput, g.stage[:len(b)], device.Ptr(src)); err != nil {
		t.Fatalf("CopyOut: %v", err)
	}
	copy(b, g.stage)
}

func (g *gpu) upload(t testing.TB, x []float32) uint64 {
	p := g.alloc(t, int64(4*len(x)))
	g.put(t, p, f32Bytes(x))
	return p
}

// poisoned allocates n floats filled with NaN (cuMemsetD32Async), so an unwritten output is seen.
func (g *gpu) poisoned(t testing.TB, n int) uint64 {
	p := g.alloc(t, int64(4*n))
	g.poison(t, p, n)
	return p
}

func (g *gpu) poison(t testing.TB, p uint64, words int) {
	t.Helper()
	if err := g.d.drv.memsetD32Async(p, 0x7fc00000, words, g.exec()); err != nil {
		t.Fatal(err)
	}
	g.sync(t)
}

func (g *gpu) download(t testing.TB, p uint64, n int) []float32 {
	x := make([]float32, n)
	g.get(t, p, f32Bytes(x))
	return x
}

// sync waits for everything on the exec stream.
func (g *gpu) sync(t testing.TB) {
	t.Helper()
	if err := g.d.drv.streamSynchronize(nil, g.exec()); err != nil {
		t.Fatalf("sync exec lane: %v", err)
	}
}

func (g *gpu) exec() uintptr { return g.d.streams[device.LaneExec] }

func TestGPUInfo(t *testing.T) {
	g := openGPU(t)
	info := g.d.Info()
	maj, min := g.d.ComputeCapability()
	v, err := g.b.DriverVersion()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s cc %d.%d, %d SMs, %d MiB, driver CUDA %d, region %#x+%d, CPUs %v", info.Name, maj, min, g.d.sms, info.MemBytes>>20, v, uint64(info.Base), info.Size, info.CPUs)
	if info.Backend != "cuda" || info.Name == "" || info.MemBytes <= 0 || info.Size != testRegion || info.Base == 0 || maj < 7 || g.d.sms <= 0 {
		t.Errorf("implausible info %+v cc %d.%d", info, maj, min)
	}
}

func TestGPUCopies(t *testing.T) {
	g := openGPU(t)
	r := testRand(t)
	n := 10<<20 + 13
	src := make([]byte, n)
	for i := range src {
		src[i] = byte(r.Uint32())
	}
	a, b := g.alloc(t, int64(n)), g.alloc(t, int64(n))
	copy(g.stage, src)
	sp, err := g.d.CopyIn(device.LaneWeights, device.Ptr(a), g.stage[:n])
	if err != nil {
		t.Fatal(err)
	}
	if sp.Dur() <= 0 || sp.EndNs <= 0 {
		t.Errorf("CopyIn span %+v", sp)
	}
	if _, err := g.d.CopyDevice(device.LaneExec, device.Ptr(b), device.Ptr(a), n); err != nil {
		t.Fatal(err)
	}
	clear(g.stage[:n])
	if _, err := g.d.CopyOut(device.LaneOutput, g.stage[:n], device.Ptr(b)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g.stage[:n], src) {
		t.Fatal("H2D → D2D → D2H round trip changed the bytes")
	}
	t.Logf("H2D of %d bytes: %.1f GB/s (event-timed)", n, float64(n)/float64(sp.Dur()))
	// Refusals: out of region, bad lane.
	end := g.d.info.Base + device.Ptr(g.d.info.Size)
	if _, err := g.d.CopyIn(device.LaneInput, end-8, g.stage[:16]); err == nil {
		t.Error("CopyIn past the region end was accepted")
	}
	if _, err := g.d.CopyOut(device.LaneOutput, g.stage[:16], 4096); err == nil {
		t.Error("CopyOut from below the region was accepted")
	}
	if _, err := g.d.CopyIn(device.NumLanes, device.Ptr(a), g.stage[:16]); !errors.Is(err, errLane) {
		t.Errorf("CopyIn on lane %d = %v", device.NumLanes, err)
	}
	// The context must still work after the refusals.
	if _, err := g.d.CopyIn(device.LaneInput, device.Ptr(a), g.stage[:16]); err != nil {
		t.Fatal(err)
	}
}

func TestGPUPrepareRefusesOtherModels(t *testing.T) {
	g := openGPU(t)
	if _, err := g.d.Prepare(nil, []int{1}); err == nil {
		t.Fatal("Prepare(nil) succeeded")
	}
	if _, err := g.d.Prepare(namedModel("x"), []int{1}); err == nil || !strings.Contains(err.Error(), "not a built model") {
		t.Fatalf("Prepare(other type) = %v", err)
	}
}

type namedModel string

func (n namedModel) Name() string { return string(n) }

func TestGPUKernelsElementwise(t *testing.T) {
	g := openGPU(t)
	r := testRand(t)
	k := g.d.k
	n := 1<<20 + 77
	x := randFloats(r, n, -8, 8)
	v := randFloats(r, n, 0.5, 3)
	px, pv := g.upload(t, x), g.upload(t, v)
	for _, tc := range []struct {
		op   actOp
		a, b float32
	}{{actIdentity, 0, 0}, {actReLU, 0, 0}, {actClip, 0, 6}, {actSigmoid, 0, 0}, {actTanh, 0, 0},
		{actHardSigmoid, 0.2, 0.5}, {actHardSwish, 0, 0}, {actLeakyReLU, 0.01, 0}, {actSiLU, 0, 0}} {
		py := g.poisoned(t, n)
		if err := k.unary(g.exec(), tc.op, px, py, int64(n), tc.a, tc.b); err != nil {
			t.Fatal(err)
		}
		got := g.download(t, py, n)
		want := make([]float32, n)
		for i := range x {
			want[i] = refAct(x[i], tc.op, tc.a, tc.b)
		}
		if e := maxAbsErr(got, want); e > 1e-5 {
			t.Errorf("unary op %d: max abs error %g", tc.op, e)
		}
	}
	for _, op := range []binOp{binAdd, binMul, binSub, binDiv, binMax} {
		py := g.poisoned(t, n)
		if err := k.binary(g.exec(), op, px, pv, py, int64(n)); err != nil {
			t.Fatal(err)
		}
		got := g.download(t, py, n)
		want := make([]float32, n)
		for i := range x {
			want[i] = refBinary(x[i], v[i], op)
		}
		if e := maxAbsErr(got, want); e > 1e-5 {
			t.Errorf("binary op %d: max abs error %g", op, e)
		}
	}
	// Bias + activation and channel scale over NCHW.
	N, C, HW := 3, 17, 29*31
	m := N * C * HW
	xb := randFloats(r, m, -2, 2)
	bias := randFloats(r, C, -1, 1)
	sc := randFloats(r, N*C, 0, 2)
	pxb, pbias, psc := g.upload(t, xb), g.upload(t, bias), g.upload(t, sc)
	py := g.poisoned(t, m)
	if err := k.biasAct(g.exec(), pxb, pbias, py, int64(m), C, int64(HW), actReLU, 0, 0); err != nil {
		t.Fatal(err)
	}
	got := g.download(t, py, m)
	want := make([]float32, m)
	for i := range xb {
		want[i] = refAct(xb[i]+bias[(i/HW)%C], actReLU, 0, 0)
	}
	if e := maxAbsErr(got, want); e > 1e-6 {
		t.Errorf("bias+relu: max abs error %g", e)
	}
	if err := k.biasAct(g.exec(), pxb, 0, py, int64(m), C, int64(HW), actTanh, 0, 0); err != nil {
		t.Fatal(err)
	}
	got = g.download(t, py, m)
	for i := range xb {
		want[i] = refAct(xb[i], actTanh, 0, 0)
	}
	if e := maxAbsErr(got, want); e > 1e-6 {
		t.Errorf("no bias + tanh: max abs error %g", e)
	}
	py = g.poisoned(t, m)
	if err := k.channelScale(g.exec(), pxb, psc, py, int64(m), int64(HW)); err != nil {
		t.Fatal(err)
	}
	got = g.download(t, py, m)
	for i := range xb {
		want[i] = xb[i] * sc[i/HW]
	}
	if e := maxAbsErr(got, want); e > 1e-6 {
		t.Errorf("channel scale: max abs error %g", e)
	}
}

func TestGPUKernelsShape(t *testing.T) {
	g := openGPU(t)
	r := testRand(t)
	k := g.d.k
	// Concat of three NCHW tensors along channels.
	N, HW := 2, 7*9
	cs := []int{3, 5, 2}
	Cy := 10
	py := g.poisoned(t, N*Cy*HW)
	var parts [][]float32
	off := 0
	for _, c := range cs {
		x := randFloats(r, N*c*HW, -1, 1)
		parts = append(parts, x)
		if err := k.concat(g.exec(), g.upload(t, x), py, int64(N), int64(c*HW), int64(Cy*HW), int64(off*HW)); err != nil {
			t.Fatal(err)
		}
		off += c
	}
	got := g.download(t, py, N*Cy*HW)
	var want []float32
	for n := range N {
		for i, c := range cs {
			want = append(want, parts[i][n*c*HW:(n+1)*c*HW]...)
		}
	}
	if e := maxAbsErr(got, want); e != 0 {
		t.Errorf("concat: max abs error %g", e)
	}

	// Softmax rows, including a row longer than one block.
	for _, sh := range [][2]int{{7, 1000}, {3, 5}, {2, 3000}} {
		rows, cols := sh[0], sh[1]
		x := randFloats(r, rows*cols, -10, 10)
		py := g.poisoned(t, rows*cols)
		if err := k.softmax(g.exec(), g.upload(t, x), py, rows, cols); err != nil {
			t.Fatal(err)
		}
		got := g.download(t, py, rows*cols)
		want := make([]float32, rows*cols)
		for i := range rows {
			m := x[i*cols]
			for _, v := range x[i*cols : (i+1)*cols] {
				m = max(m, v)
			}
			var s float64
			for _, v := range x[i*cols : (i+1)*cols] {
				s += expf64(float64(v - m))
			}
			for j := range cols {
				want[i*cols+j] = float32(expf64(float64(x[i*cols+j]-m)) / s)
			}
		}
		if e := relErr(got, want); e > 1e-5 {
			t.Errorf("softmax %dx%d: rel error %g", rows, cols, e)
		}
	}

	// Pooling, three modes, with padding and odd sizes.
	nc, h, w := 2*6, 15, 13
	x := randFloats(r, nc*h*w, -3, 3)
	px := g.upload(t, x)
	for _, mode := range []poolMode{poolMax, poolAvgPad, poolAvgValid} {
		for _, p := range [][6]int{{3, 3, 2, 2, 1, 1}, {2, 2, 2, 2, 0, 0}, {3, 2, 1, 2, 1, 0}} {
			want, oh, ow := refPool(x, nc, h, w, p[0], p[1], p[2], p[3], p[4], p[5], mode)
			py := g.poisoned(t, len(want))
			if err := k.pool2d(g.exec(), mode, px, py, nc, h, w, oh, ow, p[0], p[1], p[2], p[3], p[4], p[5]); err != nil {
				t.Fatal(err)
			}
			if e := maxAbsErr(g.download(t, py, len(want)), want); e > 1e-5 {
				t.Errorf("pool mode %d %v: max abs error %g", mode, p, e)
			}
		}
	}
	// Global average pool.
	pg := g.poisoned(t, nc)
	if err := k.globalAvgPool(g.exec(), px, pg, nc, h*w); err != nil {
		t.Fatal(err)
	}
	wantG := make([]float32, nc)
	for p := range nc {
		var s float64
		for _, v := range x[p*h*w : (p+1)*h*w] {
			s += float64(v)
		}
		wantG[p] = float32(s / float64(h*w))
	}
	if e := maxAbsErr(g.download(t, pg, nc), wantG); e > 1e-5 {
		t.Errorf("global avg pool: max abs error %g", e)
	}

	// NCHW → NHWC → NCHW.
	n, c, hw := 3, 5, 7*11
	xl := randFloats(r, n*c*hw, -1, 1)
	pl := g.upload(t, xl)
	pn := g.poisoned(t, len(xl))
	pb := g.poisoned(t, len(xl))
	if err := k.layout(g.exec(), true, pl, pn, n, c, int64(hw)); err != nil {
		t.Fatal(err)
	}
	nhwc := g.download(t, pn, len(xl))
	for b := range n {
		for ci := range c {
			for s := range hw {
				if nhwc[(b*hw+s)*c+ci] != xl[(b*c+ci)*hw+s] {
					t.Fatalf("nchw→nhwc wrong at b=%d c=%d s=%d", b, ci, s)
				}
			}
		}
	}
	if err := k.layout(g.exec(), false, pn, pb, n, c, int64(hw)); err != nil {
		t.Fatal(err)
	}
	if e := maxAbsErr(g.download(t, pb, len(xl)), xl); e != 0 {
		t.Errorf("nhwc→nchw did not invert: %g", e)
	}

	// fp32 → fp16 → fp32 against the CPU's round-to-nearest-even.
	xf := randFloats(r, 100003, -70000, 70000)
	for i := range 1000 {
		xf[i] = randFloats(r, 1, -1e-4, 1e-4)[0] // subnormal halves
	}
	pf := g.upload(t, xf)
	ph := g.alloc(t, int64(2*len(xf)))
	if err := k.convert(g.exec(), true, pf, ph, int64(len(xf))); err != nil {
		t.Fatal(err)
	}
	hs := make([]uint16, len(xf))
	g.get(t, ph, u16Bytes(hs))
	for i, v := range xf {
		if want := f32ToF16(v); hs[i] != want {
			t.Fatalf("f32→f16(%g) = %#04x, want %#04x", v, hs[i], want)
		}
	}
	pback := g.poisoned(t, len(xf))
	if err := k.convert(g.exec(), false, ph, pback, int64(len(xf))); err != nil {
		t.Fatal(err)
	}
	back := g.download(t, pback, len(xf))
	for i, h := range hs {
		if back[i] != f16ToF32(h) {
			t.Fatalf("f16→f32(%#04x) = %g, want %g", h, back[i], f16ToF32(h))
		}
	}
}

func expf64(x float64) float64 { return mathExp(x) }

// gemmCase uploads row-major A (m×k) and B (k×n) at precision p and returns device pointers,
// the inputs as the GPU sees them (fp16-rounded for FP16) and a poisoned C.
func gemmCase(t *testing.T, g *gpu, r *rand.Rand, p Precision, m, n, k int) (a, b, c uint64, ha, hb []float32) {
	ha, hb = randFloats(r, m*k, -1, 1), randFloats(r, k*n, -1, 1)
	if p != FP16 {
		return g.upload(t, ha), g.upload(t, hb), g.poisoned(t, m*n), ha, hb
	}
	toHalf := func(x []float32) uint64 {
		h := make([]uint16, len(x))
		for i, v := range x {
			h[i] = f32ToF16(v)
			x[i] = f16ToF32(h[i])
		}
		d := g.alloc(t, int64(2*len(x)))
		g.put(t, d, u16Bytes(h))
		return d
	}
	a, b = toHalf(ha), toHalf(hb)
	c = g.alloc(t, int64(2*m*n))
	g.poison(t, c, m*n/2)
	return a, b, c, ha, hb
}

func gemmResult(t *testing.T, g *gpu, p Precision, c uint64, m, n int) []float32 {
	if p != FP16 {
		return g.download(t, c, m*n)
	}
	h := make([]uint16, m*n)
	g.get(t, c, u16Bytes(h))
	out := make([]float32, m*n)
	for i, v := range h {
		out[i] = f16ToF32(v)
	}
	return out
}

var gemmTol = map[Precision]float64{FP32: 1e-5, TF32: 2e-3, FP16: 2e-3}

func TestGPUGemm(t *testing.T) {
	g := openGPU(t)
	r := testRand(t)
	h, err := g.d.blasHandle()
	if err != nil {
		t.Fatal(err)
	}
	lt, err := g.b.ltLib()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cuBLASLt version %d", call(lt.versionFunc))
	ws := g.alloc(t, 32<<20)
	m, n, k := 96, 80, 200 // not square, so a transposition bug shows
	for _, p := range []Precision{FP32, TF32, FP16} {
		a, b, c, ha, hb := gemmCase(t, g, r, p, m, n, k)
		want := refGemm(ha, hb, m, n, k)
		if err := h.gemm(p, m, n, k, a, b, c); err != nil {
			t.Fatal(err)
		}
		got := gemmResult(t, g, p, c, m, n)
		e := relErr(got, want)
		t.Logf("cuBLAS %s %dx%dx%d: rel error %.2g", p, m, n, k, e)
		if e > gemmTol[p] {
			t.Errorf("cuBLAS %s: rel error %g > %g", p, e, gemmTol[p])
		}
		lg, err := newLtGemm(lt, g.d.lanes[device.LaneExec].c, p, m, n, k, ws, 32<<20)
		if err != nil {
			t.Fatal(err)
		}
		g.poison(t, c, int(int64(m*n)*p.elemBytes()/4)) // NaN (two NaN halves for fp16)
		if err := lg.run(a, b, c, g.exec()); err != nil {
			t.Fatal(err)
		}
		got = gemmResult(t, g, p, c, m, n)
		e = relErr(got, want)
		t.Logf("cuBLASLt %s: rel error %.2g", p, e)
		if e > gemmTol[p] {
			t.Errorf("cuBLASLt %s: rel error %g > %g", p, e, gemmTol[p])
		}
		lg.close()
	}
}

func TestGPUCuDNN(t *testing.T) {
	g := openGPU(t)
	r := testRand(t)
	h, err := g.d.dnnHandle()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cuDNN version %d", h.lib.Version())
	ws := g.alloc(t, 64<<20)
	for _, s := range []ConvShape{
		{N: 2, C: 8, H: 13, W: 11, K: 16, R: 3, S: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1},
		{N: 1, C: 6, H: 9, W: 9, K: 4, R: 1, S: 1},
		{N: 3, C: 8, H: 10, W: 10, K: 8, R: 3, S: 3, PadH: 1, PadW: 1, Groups: 2},
	} {
		x := randFloats(r, s.N*s.C*s.H*s.W, -1, 1)
		w := randFloats(r, s.K*s.C/max(s.Groups, 1)*s.R*s.S, -1, 1)
		want := refConv(x, w, s)
		px, pw := g.upload(t, x), g.upload(t, w)
		// fp16: inputs rounded to half on the CPU, the reference computed from the rounded values.
		toHalf := func(x []float32) (uint64, []float32) {
			h := make([]uint16, len(x))
			r := make([]float32, len(x))
			for i, v := range x {
				h[i] = f32ToF16(v)
				r[i] = f16ToF32(h[i])
			}
			p := g.alloc(t, int64(2*len(x)))
			g.put(t, p, u16Bytes(h))
			return p, r
		}
		hx, rx := toHalf(x)
		hw, rw := toHalf(w)
		want16 := refConv(rx, rw, s)
		for _, p := range []Precision{FP32, TF32, FP16} {
			cp, err := h.prepareConv(p, s, 64<<20)
			if err != nil {
				t.Fatal(err)
			}
			var got []float32
			if p == FP16 {
				py := g.alloc(t, int64(2*len(want)+4))
				g.poison(t, py, len(want)/2+1)
				if err := cp.run(hx, hw, py, ws); err != nil {
					t.Fatal(err)
				}
				hs := make([]uint16, len(want))
				g.get(t, py, u16Bytes(hs))
				got = make([]float32, len(hs))
				for i, v := range hs {
					got[i] = f16ToF32(v)
				}
			} else {
				py := g.poisoned(t, len(want))
				if err := cp.run(px, pw, py, ws); err != nil {
					t.Fatal(err)
				}
				got = g.download(t, py, len(want))
			}
			ref := want
			if p == FP16 {
				ref = want16
			}
			e := relErr(got, ref)
			t.Logf("conv %+v %s: algo %d math %d ws %d: rel error %.2g", s, p, cp.Algo, cp.MathType, cp.WorkspaceBytes, e)
			if e > gemmTol[p] {
				t.Errorf("conv %s: rel error %g", p, e)
			}
			cp.close()
		}
	}
	// Pooling.
	nc, hh, ww := 2*5, 12, 9
	x := randFloats(r, nc*hh*ww, -2, 2)
	px := g.upload(t, x)
	for _, c := range []struct {
		dnn PoolMode
		our poolMode
	}{{PoolMax, poolMax}, {PoolAvgPad, poolAvgPad}, {PoolAvgNoPad, poolAvgValid}} {
		want, _, _ := refPool(x, nc, hh, ww, 3, 3, 2, 2, 1, 1, c.our)
		pp, err := h.preparePool(FP32, c.dnn, 2, 5, hh, ww, 3, 3, 1, 1, 2, 2)
		if err != nil {
			t.Fatal(err)
		}
		py := g.poisoned(t, len(want))
		if err := pp.run(px, py); err != nil {
			t.Fatal(err)
		}
		if e := maxAbsErr(g.download(t, py, len(want)), want); e > 1e-5 {
			t.Errorf("cudnn pool %d: max abs error %g", c.dnn, e)
		}
		pp.close()
	}
	// Activations.
	for _, c := range []struct {
		mode ActMode
		coef float64
		our  actOp
	}{{ActReLU, 0, actReLU}, {ActSigmoid, 0, actSigmoid}, {ActTanh, 0, actTanh}, {ActClipped, 6, actClip}} {
		ap, err := h.prepareAct(FP32, c.mode, c.coef, 2, 5, hh, ww)
		if err != nil {
			t.Fatal(err)
		}
		py := g.poisoned(t, len(x))
		if err := ap.run(px, py); err != nil {
			t.Fatal(err)
		}
		want := make([]float32, len(x))
		for i, v := range x {
			want[i] = refAct(v, c.our, 0, float32(c.coef))
		}
		if e := maxAbsErr(g.download(t, py, len(x)), want); e > 1e-5 {
			t.Errorf("cudnn activation %d: max abs error %g", c.mode, e)
		}
		ap.close()
	}
}

func TestGPUGraph(t *testing.T) {
	g := openGPU(t)
	r := testRand(t)
	k := g.d.k
	n := 100000
	x1, x2 := randFloats(r, n, -1, 1), randFloats(r, n, -1, 1)
	p1, p2 := g.upload(t, x1), g.upload(t, x2)
	y1, y2 := g.poisoned(t, n), g.poisoned(t, n)
	z := g.poisoned(t, n)
	gr, err := g.d.capture(func(s uintptr) error {
		if err := k.unary(s, actReLU, p1, y1, int64(n), 0, 0); err != nil {
			return err
		}
		return k.binary(s, binAdd, y1, p1, z, int64(n)) // z = relu(x) + x
	})
	if err != nil {
		t.Fatal(err)
	}
	defer gr.close()
	if len(gr.nodes) != 2 {
		t.Fatalf("graph has %d kernel nodes, want 2", len(gr.nodes))
	}
	if _, err := gr.run(); err != nil {
		t.Fatal(err)
	}
	check := func(what string, x []float32, py uint64) {
		t.Helper()
		got := g.download(t, py, n)
		for i, v := range x {
			if want := refAct(v, actReLU, 0, 0) + v; got[i] != want {
				t.Fatalf("%s[%d] = %g, want %g", what, i, got[i], want)
			}
		}
	}
	check("z", x1, z)
	// Re-point both nodes at x2 / y2 in the instantiated graph; no re-capture.
	a0 := newKernelArgs().u64(p2).u64(y2).u64(uint64(n)).i32(int32(actReLU)).f32(0).f32(0)
	a1 := newKernelArgs().u64(y2).u64(p2).u64(z).u64(uint64(n)).i32(int32(binAdd))
	idx := map[bool]int{}
	// The driver lists nodes in its own order; find which node is the unary one.
	var kp kernelNodeParams
	if err := g.d.drv.kernelNodeGetParams(gr.nodes[0], &kp); err != nil {
		t.Fatal(err)
	}
	idx[true], idx[false] = 0, 1
	if kp.Func != k.fn[kUnary] {
		idx[true], idx[false] = 1, 0
	}
	if err := gr.setKernelArgs(idx[true], a0); err != nil {
		t.Fatal(err)
	}
	if err := gr.setKernelArgs(idx[false], a1); err != nil {
		t.Fatal(err)
	}
	if err := gr.setKernelArgs(5, a1); err == nil {
		t.Error("setKernelArgs on a missing node was accepted")
	}
	if _, err := gr.run(); err != nil {
		t.Fatal(err)
	}
	check("z after update", x2, z)
	check("y1 (old output, untouched)", x1, g.upload(t, func() []float32 {
		// y1 must still hold relu(x1): compare relu(x1)+x1 via a CPU sum.
		y := g.download(t, y1, n)
		for i := range y {
			y[i] += x1[i]
		}
		return y
	}()))
}

func TestGPUNVRTCCache(t *testing.T) {
	g := openGPU(t)
	rtc, err := g.b.nvrtc()
	if err != nil {
		t.Fatal(err)
	}
	maj, min, err := rtc.Version()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("NVRTC %d.%d", maj, min)
	dir := t.TempDir()
	src := `extern "C" __global__ void k(float* x) { x[threadIdx.x] *= 2.0f; }`
	arch := "sm_" + itoa(g.d.cc[0]) + itoa(g.d.cc[1])
	c1, hit, err := rtc.Compile(src, "t.cu", arch, dir)
	if err != nil || hit || len(c1) == 0 {
		t.Fatalf("first compile: hit=%v err=%v", hit, err)
	}
	c2, hit, err := rtc.Compile(src, "t.cu", arch, dir)
	if err != nil || !hit || !bytes.Equal(c1, c2) {
		t.Fatalf("second compile: hit=%v err=%v", hit, err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.cubin"))
	if len(files) != 1 {
		t.Errorf("cache dir holds %v, want one cubin", files)
	}
	// A fresh NVRTC (new process) is served from the disk cache.
	fresh, err := loadNVRTC(g.b.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, hit, err := fresh.Compile(src, "t.cu", arch, dir); err != nil || !hit {
		t.Errorf("disk cache miss: hit=%v err=%v", hit, err)
	}
	_, _, err = rtc.Compile(`extern "C" __global__ void bad( { }`, "bad.cu", arch, "")
	if err == nil || !strings.Contains(err.Error(), "bad.cu") {
		t.Errorf("broken source: err = %v, want the compiler log naming bad.cu", err)
	}
	os.RemoveAll(dir)
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + itoa(i%10)
}

// The lane calls, launches and library calls on the hot path allocate nothing.
func TestGPUHotPathAllocs(t *testing.T) {
	g := openGPU(t)
	p := g.alloc(t, 1<<20)
	q := g.alloc(t, 1<<20)
	buf := g.stage[:1<<20]
	gr, err := g.d.capture(func(s uintptr) error { return g.d.k.noop(s) })
	if err != nil {
		t.Fatal(err)
	}
	defer gr.close()
	h, err := g.d.blasHandle()
	if err != nil {
		t.Fatal(err)
	}
	lt, err := g.b.ltLib()
	if err != nil {
		t.Fatal(err)
	}
	ws := g.alloc(t, 4<<20)
	lg, err := newLtGemm(lt, g.d.lanes[device.LaneExec].c, TF32, 64, 64, 64, ws, 4<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer lg.close()
	dh, err := g.d.dnnHandle()
	if err != nil {
		t.Fatal(err)
	}
	cp, err := dh.prepareConv(FP32, ConvShape{N: 1, C: 8, H: 8, W: 8, K: 8, R: 3, S: 3, PadH: 1, PadW: 1}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.close()
	g.poison(t, p, 1<<18)
	g.poison(t, q, 1<<18)
	for name, f := range map[string]func() error{
		"CopyIn":  func() error { _, err := g.d.CopyIn(device.LaneInput, device.Ptr(p), buf); return err },
		"CopyOut": func() error { _, err := g.d.CopyOut(device.LaneOutput, buf, device.Ptr(p)); return err },
		"CopyDevice": func() error {
			_, err := g.d.CopyDevice(device.LaneExec, device.Ptr(q), device.Ptr(p), 4096)
			return err
		},
		"launch":   func() error { return g.d.k.unary(g.exec(), actReLU, p, p, 1024, 0, 0) },
		"graph":    func() error { _, err := gr.run(); return err },
		"gemm":     func() error { return h.gemm(FP32, 64, 64, 64, p, p, q) },
		"ltmatmul": func() error { return lg.run(p, p, q, g.exec()) },
		"conv":     func() error { return cp.run(p, p, q, ws) },
		"Warm":     func() error { return g.d.Warm(300 * time.Microsecond) },
	} {
		var ferr error
		a := testing.AllocsPerRun(100, func() {
			if err := f(); err != nil {
				ferr = err
			}
		})
		if ferr != nil {
			t.Errorf("%s: %v", name, ferr)
		}
		if a != 0 {
			t.Errorf("%s allocates %.1f times per call", name, a)
		}
	}
	g.sync(t)
}

// The four lanes run at once from four threads, as the worker drives them, and each lane's
// data comes out intact.
func TestGPULanesConcurrent(t *testing.T) {
	g := openGPU(t)
	r := testRand(t)
	const n = 4 << 20
	const iters = 50
	// Each lane gets its own pinned buffer and device buffer.
	bufs := make([][]byte, device.NumLanes)
	dev := make([]uint64, device.NumLanes)
	for l := range bufs {
		bufs[l] = g.stage[64<<20+l*n : 64<<20+(l+1)*n]
		for i := range bufs[l] {
			bufs[l][i] = byte(r.Uint32())
		}
		dev[l] = g.alloc(t, n)
	}
	want := make([][]byte, device.NumLanes)
	for l := range want {
		want[l] = bytes.Clone(bufs[l])
	}
	x := g.upload(t, randFloats(r, n/4, -1, 1))
	gr, err := g.d.capture(func(s uintptr) error { return g.d.k.unary(s, actTanh, x, dev[device.LaneExec], n/4, 0, 0) })
	if err != nil {
		t.Fatal(err)
	}
	defer gr.close()
	errs := make(chan error, device.NumLanes)
	for l := range device.NumLanes {
		go func() {
			var err error
			for range iters {
				switch l {
				case device.LaneWeights, device.LaneInput:
					_, err = g.d.CopyIn(l, device.Ptr(dev[l]), bufs[l])
				case device.LaneOutput:
					_, err = g.d.CopyOut(l, bufs[l], device.Ptr(dev[device.LaneWeights]))
				case device.LaneExec:
					_, err = gr.run()
				}
				if err != nil {
					break
				}
			}
			errs <- err
		}()
	}
	for range device.NumLanes {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range []device.Lane{device.LaneWeights, device.LaneInput} {
		got := make([]byte, n)
		g.get(t, dev[l], got)
		if !bytes.Equal(got, want[l]) {
			t.Errorf("lane %s: device copy differs", l)
		}
	}
}

// A module from hand-written PTX (the JIT path, for kernels shipped as PTX) loads and runs.
func TestGPUModuleFromPTX(t *testing.T) {
	g := openGPU(t)
	const ptx = `.version 8.0
.target sm_90
.address_size 64
.visible .entry fill42(.param .u64 p)
{
	.reg .b32 %r<2>;
	.reg .b64 %rd<4>;
	.reg .f32 %f<2>;
	ld.param.u64 %rd1, [p];
	cvta.to.global.u64 %rd2, %rd1;
	mov.u32 %r1, %tid.x;
	mul.wide.u32 %rd3, %r1, 4;
	add.s64 %rd2, %rd2, %rd3;
	mov.f32 %f1, 0f42280000;
	st.global.f32 [%rd2], %f1;
	ret;
}
`
	if g.d.cc[0] < 9 {
		t.Skipf("PTX targets sm_90; device is sm_%d%d", g.d.cc[0], g.d.cc[1])
	}
	mod, err := g.d.drv.moduleLoadPTX(ptx)
	if err != nil {
		t.Fatal(err)
	}
	defer g.d.drv.moduleUnload(mod)
	f, err := g.d.drv.moduleFunction(mod, "fill42")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.d.drv.moduleFunction(mod, "nope"); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("missing kernel: err = %v", err)
	}
	p := g.poisoned(t, 96)
	args := newKernelArgs().u64(p)
	if err := g.d.drv.launch(nil, f, dim3{1, 1, 1}, dim3{96, 1, 1}, 0, g.exec(), args.params()); err != nil {
		t.Fatal(err)
	}
	for i, v := range g.download(t, p, 96) {
		if v != 42 {
			t.Fatalf("x[%d] = %g, want 42", i, v)
		}
	}
}

// Every GPU of the machine opens, copies and runs a kernel, all at once (one goroutine each).
func TestGPUAllDevices(t *testing.T) {
	openGPU(t) // skips without a GPU
	b := New(DefaultConfig())
	devs, err := b.Open(64 << 20)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d devices", len(devs))
	errs := make(chan error, len(devs))
	for i, dd := range devs {
		go func() {
			d := dd.(*Device)
			if d.Info().Index != i {
				errs <- fmt.Errorf("device %d reports index %d", i, d.Info().Index)
				return
			}
			host, err := unix.Mmap(-1, 0, 1<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
			if err != nil {
				errs <- err
				return
			}
			defer unix.Munmap(host)
			if err := d.RegisterHost(host); err != nil {
				errs <- err
				return
			}
			defer d.UnregisterHost(host)
			x := unsafe.Slice((*float32)(unsafe.Pointer(&host[0])), 1<<18)
			for j := range x {
				x[j] = float32(j%1000) - 500
			}
			base := d.Info().Base
			if _, err := d.CopyIn(device.LaneInput, base, host); err != nil {
				errs <- err
				return
			}
			gr, err := d.capture(func(s uintptr) error { return d.k.unary(s, actReLU, uint64(base), uint64(base), 1<<18, 0, 0) })
			if err != nil {
				errs <- err
				return
			}
			defer gr.close()
			if _, err := gr.run(); err != nil {
				errs <- err
				return
			}
			if _, err := d.CopyOut(device.LaneOutput, host, base); err != nil {
				errs <- err
				return
			}
			for j, v := range x {
				if want := max(float32(j%1000)-500, 0); v != want {
					errs <- fmt.Errorf("device %d: x[%d] = %g, want %g", i, j, v, want)
					return
				}
			}
			errs <- nil
		}()
	}
	for range devs {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	host := make([]byte, 16)
	for _, d := range devs {
		if err := d.Close(); err != nil {
			t.Error(err)
		}
		if err := d.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if _, err := d.CopyOut(device.LaneOutput, host, d.Info().Base); !errors.Is(err, errClosed) {
			t.Errorf("CopyOut after Close = %v, want errClosed", err)
		}
	}
}

// Warm returns before its filler work is done, and work on the exec lane is still correct
// while filler runs.
func TestGPUWarm(t *testing.T) {
	g := openGPU(t)
	r := testRand(t)
	n := 1 << 20
	x := randFloats(r, n, -4, 4)
	px, py := g.upload(t, x), g.poisoned(t, n)
	gr, err := g.d.capture(func(s uintptr) error { return g.d.k.unary(s, actSigmoid, px, py, int64(n), 0, 0) })
	if err != nil {
		t.Fatal(err)
	}
	defer gr.close()
	t0 := time.Now()
	if err := g.d.Warm(5 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	host := time.Since(t0)
	if err := g.d.drv.streamSynchronize(nil, g.d.fill.stream); err != nil {
		t.Fatal(err)
	}
	busy := time.Since(t0)
	t.Logf("filler graph measured %v; Warm(5ms) returned after %v; its filler ran until %v", g.d.fill.chunk, host, busy)
	if host > 2*time.Millisecond {
		t.Errorf("Warm(5ms) blocked the caller for %v", host)
	}
	if busy < 4500*time.Microsecond {
		t.Errorf("filler of 5 ms finished after %v", busy)
	}
	if err := g.d.Warm(3 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	sp, err := gr.run()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("graph next to filler: %v on the device", time.Duration(sp.Dur()))
	got := g.download(t, py, n)
	for i, v := range x {
		if want := refAct(v, actSigmoid, 0, 0); absf(got[i]-want) > 1e-6 {
			t.Fatalf("y[%d] = %g, want %g", i, got[i], want)
		}
	}
	if err := g.d.Warm(-1); err != nil {
		t.Errorf("Warm(-1) = %v", err)
	}
}

func absf(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}
