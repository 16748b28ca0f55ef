package main

import (
	"flag"
	"fmt"

	"github.com/clockwork-go/clockwork/runtime/cpu"
	"github.com/clockwork-go/clockwork/runtime/cuda"
	"github.com/clockwork-go/clockwork/runtime/device"
	"github.com/clockwork-go/clockwork/runtime/model"
	"github.com/clockwork-go/clockwork/worker"
)

// backendFlags selects the worker's device backend; `cw worker` and `cw serve` share them.
// Every backend plugs into the worker the same way: a device.Backend to open and, for backends
// that run ONNX models, the conversion of a built model (runtime/model) into what its Prepare
// takes. sim needs neither (the worker's default; a model is a profile entry).
type backendFlags struct {
	name, cudaDriver, cudaLibDir, cudnn string
	shareHost                           bool
}

func (b *backendFlags) register(fs *flag.FlagSet) {
	def := cuda.DefaultConfig()
	fs.StringVar(&b.name, "backend", "sim", "device backend: sim (emulated GPUs from a profile; models are profile entries), cpu (pure-Go reference, exact and slow; ONNX models), cuda (NVIDIA GPUs; ONNX models)")
	fs.StringVar(&b.cudaDriver, "cuda-driver", def.DriverLib, "with -backend cuda: path of libcuda.so.1 (the driver's own copy, never cuda/compat)")
	fs.StringVar(&b.cudaLibDir, "cuda-lib-dir", cuda.DefaultCUDALibDir, "with -backend cuda: directory of libcublas.so.13, libcublasLt.so.13 and libnvrtc.so.13")
	fs.StringVar(&b.cudnn, "cudnn", def.CUDNNLib, "with -backend cuda: path of libcudnn.so.9")
	fs.BoolVar(&b.shareHost, "share-host-weights", false, "with -backend cpu or cuda: instances of one ONNX file share one host copy of its weights (each still LOADs into its own GPU pages); off: one copy per instance, as Clockwork")
}

// apply sets cfg.Backend and cfg.Compile for the chosen backend with gpus devices (cuda: 0
// opens every visible GPU). sim leaves cfg for the worker's default (cfg.SimGPUs).
func (b *backendFlags) apply(cfg *worker.Config, gpus int) error {
	cfg.ShareHostWeights = b.shareHost
	switch b.name {
	case "sim":
		return nil
	case "cpu":
		if gpus < 1 || gpus > 64 {
			return fmt.Errorf("-gpus %d: the cpu backend opens 1 to 64 devices", gpus)
		}
		cfg.Backend = &cpu.Backend{Config: cpu.Config{Devices: gpus}, Now: worker.UnixMonoClock}
		cfg.Compile = func(m *model.Model) (device.Model, error) { return cpu.FromModel(m) }
	case "cuda":
		c := cuda.DefaultConfig()
		c.DriverLib, c.CUDNNLib = b.cudaDriver, b.cudnn
		c.CUBLASLib, c.CUBLASLtLib, c.NVRTCLib = b.cudaLibDir+"/libcublas.so.13", b.cudaLibDir+"/libcublasLt.so.13", b.cudaLibDir+"/libnvrtc.so.13"
		for i := range gpus {
			c.Devices = append(c.Devices, i)
		}
		if err := c.Validate(); err != nil {
			return err
		}
		// Prepare gets a worker.Built (the built model itself): runtime/cuda compiles
		// runtime/model's plans directly, so there is nothing to convert.
		cfg.Backend, cfg.Compile = cuda.New(c), nil
	default:
		return fmt.Errorf("-backend %q: want sim, cpu or cuda", b.name)
	}
	return nil
}
