package cuda

import (
	"errors"
	"strings"
	"testing"

	"github.com/clockwork-go/clockwork/runtime/cuda/kernels"
	"github.com/clockwork-go/clockwork/runtime/device"
)

// A backend whose driver library cannot be loaded reports "not available" through
// device.ErrNotSupported, naming the library path, and never crashes.
func TestNotAvailableWithoutDriver(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DriverLib = "/nonexistent/libcuda-for-test.so.1"
	b := New(cfg)
	// The bare soname fallback may find a real driver on a GPU machine; only check the error
	// shape when loading failed.
	devs, err := b.Open(0)
	if err == nil {
		for _, d := range devs {
			d.Close()
		}
		t.Skip("a driver was found by soname; the failure path is covered on machines without one")
	}
	if !errors.Is(err, device.ErrNotSupported) {
		t.Fatalf("Open error %v does not wrap device.ErrNotSupported", err)
	}
	if !strings.Contains(err.Error(), cfg.DriverLib) {
		t.Errorf("error %q does not name the configured path %s", err, cfg.DriverLib)
	}
	if b.Name() != "cuda" {
		t.Errorf("Name() = %q", b.Name())
	}
	if err2 := b.Available(); err2 == nil || err2.Error() != err.Error() {
		t.Errorf("Available() = %v, want the cached %v", err2, err)
	}
}

// With the default configuration the backend either works or reports ErrNotSupported, wrapped.
func TestDefaultBackendReportsCleanly(t *testing.T) {
	b := New(DefaultConfig())
	err := b.Available()
	if err == nil {
		t.Log("cuda available on this machine")
		return
	}
	if !errors.Is(err, device.ErrNotSupported) {
		t.Fatalf("Available() = %v, want an error wrapping device.ErrNotSupported", err)
	}
	t.Logf("not available (as expected without a GPU): %v", err)
	if _, err := b.Open(0); !errors.Is(err, device.ErrNotSupported) {
		t.Fatalf("Open(0) = %v, want device.ErrNotSupported", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(*Config) {}, ""},
		{func(c *Config) { c.DriverLib = "" }, "DriverLib"},
		{func(c *Config) { c.ReserveBytes = -1 }, "ReserveBytes"},
		{func(c *Config) { c.Devices = []int{0, -2} }, "ordinal -2"},
	} {
		c := DefaultConfig()
		tc.mod(&c)
		err := c.Validate()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Validate() = %v, want mention of %q", err, tc.want)
		}
	}
	b := New(Config{})
	if _, err := b.Open(0); err == nil || errors.Is(err, device.ErrNotSupported) {
		t.Errorf("Open with an invalid config = %v, want a config error", err)
	}
}

// The launcher's kernel indices must name the same kernels as the source list.
func TestKernelIndices(t *testing.T) {
	want := map[int]string{
		kUnary: "cw_unary", kBinary: "cw_binary", kBiasAct: "cw_bias_act", kChannelScale: "cw_channel_scale",
		kConcat: "cw_concat", kSoftmax: "cw_softmax", kPool2d: "cw_pool2d", kGlobalAvgPool: "cw_global_avgpool",
		kNCHWToNHWC: "cw_nchw_to_nhwc", kNHWCToNCHW: "cw_nhwc_to_nchw", kF32ToF16: "cw_f32_to_f16",
		kF16ToF32: "cw_f16_to_f32", kSpin: "cw_spin", kNoop: "cw_noop",
		kAffine: "cw_affine", kGather: "cw_gather", kBinaryBcast: "cw_binary_bcast", kBinaryAct: "cw_binary_act", kDWConv: "cw_dwconv", kConcatMulti: "cw_concat_multi",
	}
	if len(kernels.Names) != numKernels || len(want) != numKernels {
		t.Fatalf("kernels.Names has %d, numKernels %d, this test %d", len(kernels.Names), numKernels, len(want))
	}
	for i, n := range want {
		if kernels.Names[i] != n {
			t.Errorf("kernels.Names[%d] = %s, want %s", i, kernels.Names[i], n)
		}
	}
}

func TestConvShapeOutHW(t *testing.T) {
	for _, tc := range []struct {
		s      ConvShape
		oh, ow int
	}{
		{ConvShape{H: 224, W: 224, R: 7, S: 7, StrideH: 2, StrideW: 2, PadH: 3, PadW: 3}, 112, 112},
		{ConvShape{H: 56, W: 56, R: 3, S: 3, PadH: 1, PadW: 1}, 56, 56},
		{ConvShape{H: 13, W: 11, R: 3, S: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, DilH: 2, DilW: 2}, 6, 5},
	} {
		if oh, ow := tc.s.OutHW(); oh != tc.oh || ow != tc.ow {
			t.Errorf("%+v: OutHW = %d,%d want %d,%d", tc.s, oh, ow, tc.oh, tc.ow)
		}
	}
}

func TestHalfRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		f float32
		h uint16
	}{{0, 0}, {1, 0x3c00}, {-2, 0xc000}, {65504, 0x7bff}, {1e6, 0x7c00}, {5.960464477539063e-08, 0x0001}, {0.1, 0x2e66}} {
		if h := f32ToF16(tc.f); h != tc.h {
			t.Errorf("f32ToF16(%g) = %#04x, want %#04x", tc.f, h, tc.h)
		}
	}
	for h := uint16(0); h < 0x7c00; h += 7 {
		if got := f32ToF16(f16ToF32(h)); got != h {
			t.Fatalf("round trip of %#04x gave %#04x", h, got)
		}
	}
}
