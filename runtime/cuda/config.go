package cuda

import (
	"errors"
	"fmt"
)

// Default library locations: those of the project's GPU machine (CUDA 13.0, driver 580,
// cuDNN 9.14 from the system package). Each library is also tried by its bare soname, so the
// loader's search path works where these files are elsewhere.
const (
	DefaultDriverLib  = "/usr/lib/libcuda.so.1"
	DefaultCUDALibDir = "/usr/local/cuda-13.0/targets/x86_64-linux/lib"
	DefaultCUDNNLib   = "/usr/lib/x86_64-linux-gnu/libcudnn.so.9"
)

// Config says where the NVIDIA libraries are and how devices are opened. The zero value is not
// valid; start from DefaultConfig.
type Config struct {
	// DriverLib is libcuda.so.1. Do not point it at cuda/compat: that copy is older than the
	// driver on the GPU machines.
	DriverLib string
	// CUBLASLib, CUBLASLtLib and NVRTCLib are cuBLAS, cuBLASLt and NVRTC of CUDA 13.
	CUBLASLib, CUBLASLtLib, NVRTCLib string
	// CUDNNLib is cuDNN 9 (libcudnn.so.9). Two versions may be installed (system and pip);
	// heuristics differ between them, so name one explicitly and record it.
	CUDNNLib string
	// Devices are the ordinals to open; nil opens every visible device.
	Devices []int
	// ReserveBytes is the device memory left outside the region when Open is asked for the
	// default region size: cuBLAS/cuDNN handles and workspaces, modules and graphs live there.
	ReserveBytes int64
	// KernelCacheDir, if set, keeps compiled kernel cubins across runs (keyed by hash);
	// empty keeps them in memory only.
	KernelCacheDir string
}

// DefaultConfig returns the GPU machine's library paths and all devices.
func DefaultConfig() Config {
	return Config{
		DriverLib:    DefaultDriverLib,
		CUBLASLib:    DefaultCUDALibDir + "/libcublas.so.13",
		CUBLASLtLib:  DefaultCUDALibDir + "/libcublasLt.so.13",
		NVRTCLib:     DefaultCUDALibDir + "/libnvrtc.so.13",
		CUDNNLib:     DefaultCUDNNLib,
		ReserveBytes: 2 << 30,
	}
}

// Validate reports a config that cannot work, naming the field to fix.
func (c Config) Validate() error {
	if c.DriverLib == "" {
		return errors.New("cuda config: DriverLib is empty; use DefaultConfig() or set the path of libcuda.so.1")
	}
	if c.ReserveBytes < 0 {
		return fmt.Errorf("cuda config: ReserveBytes %d < 0", c.ReserveBytes)
	}
	for _, d := range c.Devices {
		if d < 0 {
			return fmt.Errorf("cuda config: device ordinal %d < 0", d)
		}
	}
	return nil
}
