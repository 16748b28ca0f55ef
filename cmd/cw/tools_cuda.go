package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/clockwork-go/clockwork/runtime/cuda"
	"github.com/clockwork-go/clockwork/runtime/device"
)

func init() {
	registerTool(command{name: "cuda", summary: "report the CUDA backend: libraries, versions, GPUs (changes nothing)", run: runToolsCUDA})
}

func runToolsCUDA(_ context.Context, args []string, stdout, stderr io.Writer) error {
	def := cuda.DefaultConfig()
	fs := newFlagSet("tools cuda", "tools cuda [flags]", stderr)
	driver := fs.String("cuda-driver", def.DriverLib, "path of libcuda.so.1 (the driver's own copy, never cuda/compat: that one is older than the driver)")
	libDir := fs.String("cuda-lib-dir", cuda.DefaultCUDALibDir, "directory holding libcublas.so.13, libcublasLt.so.13 and libnvrtc.so.13 (CUDA 13 toolkit layout)")
	cudnn := fs.String("cudnn", def.CUDNNLib, "path of libcudnn.so.9; name one explicitly, since cuDNN heuristics differ between versions")
	region := fs.Int64("region-mib", 64, "MiB of device memory to take per GPU for the check (1..1048576); small, since this only probes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *region < 1 || *region > 1<<20 {
		return fmt.Errorf("-region-mib %d out of range 1..1048576", *region)
	}
	cfg := def
	cfg.DriverLib, cfg.CUDNNLib = *driver, *cudnn
	cfg.CUBLASLib, cfg.CUBLASLtLib, cfg.NVRTCLib = *libDir+"/libcublas.so.13", *libDir+"/libcublasLt.so.13", *libDir+"/libnvrtc.so.13"
	b := cuda.New(cfg)
	if err := b.Available(); err != nil {
		if errors.Is(err, device.ErrNotSupported) {
			fmt.Fprintf(stdout, "cuda: not available: %v\n", err)
			return nil
		}
		return err
	}
	v := b.Versions()
	fmt.Fprintf(stdout, "cuda: driver supports CUDA %d.%d; cuBLASLt %d; cuDNN %d; NVRTC %s\n", v.Driver/1000, v.Driver%1000/10, v.CUBLASLt, v.CUDNN, v.NVRTC)
	for _, err := range v.Errs {
		fmt.Fprintf(stdout, "cuda: library problem: %v\n", err)
	}
	t0 := time.Now()
	devs, err := b.Open(*region << 20)
	if err != nil {
		return fmt.Errorf("cannot open GPUs: %w", err)
	}
	fmt.Fprintf(stdout, "cuda: opened %d GPU(s) and compiled kernels in %v\n", len(devs), time.Since(t0).Round(time.Millisecond))
	var errs []error
	for _, d := range devs {
		info := d.Info()
		cd := d.(*cuda.Device)
		maj, min := cd.ComputeCapability()
		fmt.Fprintf(stdout, "  gpu %d: %s, sm_%d%d, %d SMs, %d MiB, near CPUs %v\n", info.Index, info.Name, maj, min, cd.SMs(), info.MemBytes>>20, info.CPUs)
		errs = append(errs, d.Close())
	}
	return errors.Join(errs...)
}
