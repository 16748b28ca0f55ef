package cuda

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/clockwork-go/clockwork/runtime/cuda/kernels"
	"github.com/clockwork-go/clockwork/runtime/device"
)

// ErrNotImplemented is returned by Prepare until the model executor exists (a later issue).
var ErrNotImplemented = errors.New("not implemented for this backend yet")

// epoch anchors the default clock: monotonic nanoseconds since the package loaded.
var epoch = time.Now()

func defaultNow() int64 { return int64(time.Since(epoch)) }

// Backend is the CUDA backend: it opens every GPU the driver reports (or those in
// Config.Devices). Loading the libraries is lazy, so constructing one never fails and a binary
// without GPUs only learns at Open (or Available) that the backend is not usable.
type Backend struct {
	cfg Config
	// Now is the caller's monotonic clock in nanoseconds, the domain of returned Spans; nil
	// uses the package's own monotonic clock.
	Now func() int64

	once    sync.Once
	drv     *driver
	initErr error

	libMu sync.Mutex
	rtc   *nvrtc
	blas  *blasLib
	lt    *ltLib
	dnn   *dnnLib
}

var _ device.Backend = (*Backend)(nil)

// New returns a backend with cfg. It loads nothing yet, so it never fails; Open or Available
// report problems.
func New(cfg Config) *Backend { return &Backend{cfg: cfg} }

// Name is "cuda".
func (b *Backend) Name() string { return "cuda" }

// Available loads the driver, initializes it and counts devices. It returns nil when at least
// one GPU is usable, else device.ErrNotSupported wrapped with the reason (no library, no
// driver, no device). Safe for concurrent use; the result is cached.
func (b *Backend) Available() error {
	b.once.Do(func() {
		if err := b.cfg.Validate(); err != nil {
			b.initErr = err
			return
		}
		d, err := loadDriver(b.cfg)
		if err != nil {
			b.initErr = fmt.Errorf("%w: cuda: %w", device.ErrNotSupported, err)
			return
		}
		if err := d.init(); err != nil {
			b.initErr = fmt.Errorf("%w: cuda: no usable NVIDIA driver or GPU: %w", device.ErrNotSupported, err)
			return
		}
		n, err := d.deviceCount()
		if err != nil {
			b.initErr = fmt.Errorf("%w: cuda: %w", device.ErrNotSupported, err)
			return
		}
		if n == 0 {
			b.initErr = fmt.Errorf("%w: cuda: the driver reports no GPU", device.ErrNotSupported)
			return
		}
		b.drv = d
	})
	return b.initErr
}

func (b *Backend) now() int64 {
	if b.Now != nil {
		return b.Now()
	}
	return defaultNow()
}

// DriverVersion returns the CUDA version the driver supports, e.g. 13000. Any goroutine.
func (b *Backend) DriverVersion() (int, error) {
	if err := b.Available(); err != nil {
		return 0, err
	}
	return b.drv.version()
}

func (b *Backend) nvrtc() (*nvrtc, error) {
	b.libMu.Lock()
	defer b.libMu.Unlock()
	if b.rtc == nil {
		r, err := loadNVRTC(b.cfg)
		if err != nil {
			return nil, err
		}
		b.rtc = r
	}
	return b.rtc, nil
}

func (b *Backend) blasLib() (*blasLib, error) {
	b.libMu.Lock()
	defer b.libMu.Unlock()
	if b.blas == nil {
		l, err := loadBLAS(b.cfg)
		if err != nil {
			return nil, err
		}
		b.blas = l
	}
	return b.blas, nil
}

func (b *Backend) ltLib() (*ltLib, error) {
	b.libMu.Lock()
	defer b.libMu.Unlock()
	if b.lt == nil {
		l, err := loadLt(b.cfg)
		if err != nil {
			return nil, err
		}
		b.lt = l
	}
	return b.lt, nil
}

func (b *Backend) dnnLib() (*dnnLib, error) {
	b.libMu.Lock()
	defer b.libMu.Unlock()
	if b.dnn == nil {
		l, err := loadDNN(b.cfg)
		if err != nil {
			return nil, err
		}
		b.dnn = l
	}
	return b.dnn, nil
}

// Open opens the configured devices: for each, the primary context, one stream per lane
// (exec at the highest priority), timing events, the region of regionBytes (0: free memory
// less Config.ReserveBytes) and our kernels compiled by NVRTC for its architecture.
// Control path: takes hundreds of milliseconds (driver init, NVRTC on a cold cache).
func (b *Backend) Open(regionBytes int64) ([]device.Device, error) {
	if err := b.Available(); err != nil {
		return nil, err
	}
	if regionBytes < 0 {
		return nil, fmt.Errorf("cannot open cuda devices: region %d bytes < 0", regionBytes)
	}
	ords := b.cfg.Devices
	if ords == nil {
		n, err := b.drv.deviceCount()
		if err != nil {
			return nil, err
		}
		for i := range n {
			ords = append(ords, i)
		}
	}
	var out []device.Device
	for idx, ord := range ords {
		d, err := b.openDevice(idx, ord, regionBytes)
		if err != nil {
			for _, o := range out {
				o.Close()
			}
			return nil, fmt.Errorf("cannot open cuda device %d: %w", ord, err)
		}
		out = append(out, d)
	}
	return out, nil
}

// compileKernels returns the cubin of our kernels for compute capability major.minor.
func (b *Backend) compileKernels(major, minor int) ([]byte, error) {
	r, err := b.nvrtc()
	if err != nil {
		return nil, err
	}
	arch := fmt.Sprintf("sm_%d%d", major, minor)
	cubin, _, err := r.Compile(kernels.Source, "clockwork_kernels.cu", arch, b.cfg.KernelCacheDir, "--std=c++17")
	return cubin, err
}

// localCPUs reads the CPUs near a PCI device from sysfs; nil when unknown.
func localCPUs(busID string) []int {
	raw, err := os.ReadFile("/sys/bus/pci/devices/" + strings.ToLower(busID) + "/local_cpulist")
	if err != nil {
		return nil
	}
	var cpus []int
	for _, part := range strings.Split(strings.TrimSpace(string(raw)), ",") {
		var lo, hi int
		if n, _ := fmt.Sscanf(part, "%d-%d", &lo, &hi); n == 2 {
			for c := lo; c <= hi; c++ {
				cpus = append(cpus, c)
			}
		} else if n, _ := fmt.Sscanf(part, "%d", &lo); n == 1 {
			cpus = append(cpus, lo)
		}
	}
	return cpus
}

// Versions are the loaded libraries' versions; a library that did not load has its error in
// Errs and a zero version.
type Versions struct {
	Driver   int    // CUDA version the driver supports, e.g. 13000
	CUBLASLt int    // e.g. 130100
	CUDNN    int    // e.g. 91400
	NVRTC    string // e.g. "13.0"
	Errs     []error
}

// Versions loads every configured library (if not loaded yet) and reports its version.
// Control path; for diagnostics (cw tools cuda).
func (b *Backend) Versions() Versions {
	var v Versions
	var err error
	if v.Driver, err = b.DriverVersion(); err != nil {
		v.Errs = append(v.Errs, err)
	}
	if lt, err := b.ltLib(); err != nil {
		v.Errs = append(v.Errs, err)
	} else {
		v.CUBLASLt = int(call(lt.versionFunc))
	}
	if _, err := b.blasLib(); err != nil {
		v.Errs = append(v.Errs, err)
	}
	if d, err := b.dnnLib(); err != nil {
		v.Errs = append(v.Errs, err)
	} else {
		v.CUDNN = d.Version()
	}
	if r, err := b.nvrtc(); err != nil {
		v.Errs = append(v.Errs, err)
	} else if maj, min, err := r.Version(); err != nil {
		v.Errs = append(v.Errs, err)
	} else {
		v.NVRTC = fmt.Sprintf("%d.%d", maj, min)
	}
	return v
}
