package device

import (
	"errors"
	"fmt"
)

// ErrNotSupported is returned, wrapped with the reason (no driver, no device, wrong OS), when a
// backend cannot run on this machine. Callers test it with errors.Is.
var ErrNotSupported = errors.New("backend not supported on this machine")

// Ptr is an address in a device's memory region. It is opaque to everything but the backend:
// for cuda it is a CUdeviceptr, for cpu and sim an offset in the backend's own region.
type Ptr uint64

// Lane is an independent queue of work on a device (a CUDA stream on the cuda backend).
type Lane uint8

const (
	LaneWeights Lane = iota // LOAD: weight pages host → device
	LaneInput               // INFER inputs host → device
	LaneExec                // INFER execution; exactly one at a time per device
	LaneOutput              // INFER outputs device → host
	NumLanes
)

func (l Lane) String() string {
	switch l {
	case LaneWeights:
		return "weights"
	case LaneInput:
		return "input"
	case LaneExec:
		return "exec"
	case LaneOutput:
		return "output"
	}
	return fmt.Sprintf("lane(%d)", uint8(l))
}

// Info describes one device.
type Info struct {
	Backend  string // "cuda", "cpu" or "sim"
	Index    int    // device ordinal within its worker
	Name     string // e.g. "NVIDIA H100 80GB HBM3", "sim-v100"
	MemBytes int64  // total device memory
	// Base and Size bound the region handed to alloc (weights cache, IO and workspace arenas).
	Base Ptr
	Size int64
	// CPUs near the device (NUMA-local), for pinning its executor threads; may be empty.
	CPUs []int
}

// Span is the start and end of one piece of device work, in nanoseconds of the caller's
// monotonic clock (the worker's telemetry clock).
type Span struct {
	StartNs, EndNs int64
}

// Dur is the span's length in nanoseconds.
func (s Span) Dur() int64 { return s.EndNs - s.StartNs }

// Model is what a backend prepares. Its concrete type is backend-specific: sim prepares a
// profile entry (runtime/sim), cpu and cuda a compiled graph (runtime/model). A backend given a
// type it cannot run returns an error naming the type.
type Model interface {
	// Name is the model's registered name, for errors and telemetry.
	Name() string
}

// Program is a model prepared for one device at fixed batch sizes. Its weights are not resident:
// each Run gets the device addresses of the model's weight pages, laid out by the model's page
// layout (alloc), so the same Program runs whatever pages LOAD chose.
type Program interface {
	// Batches are the batch sizes prepared, ascending.
	Batches() []int
	// InputBytes and OutputBytes are the sizes of one batch's input and output tensors.
	InputBytes(batch int) int64
	OutputBytes(batch int) int64
	// WorkspaceBytes is the scratch memory one Run at this batch needs (activations).
	WorkspaceBytes(batch int) int64
	// WeightBytes is the model's total weight size; its pages come from the model's layout.
	WeightBytes() int64
	// Run executes one batch on the exec lane and returns when it is complete.
	// pages[i] is the device address of the model's i-th weight page.
	// Timing: exec thread; must not allocate; blocks for the duration of the run.
	Run(batch int, pages []Ptr, in, out, workspace Ptr) (Span, error)
	// Close releases what Prepare took. Control path.
	Close() error
}

// Device is one GPU (or its emulation).
type Device interface {
	Info() Info
	// Prepare compiles m for this device at the given batch sizes. Control path: may allocate,
	// block for seconds and take device memory for code and constants (never from the region).
	Prepare(m Model, batches []int) (Program, error)
	// CopyIn copies len(src) bytes of pinned host memory to dst on lane, returning when done.
	// Timing: executor thread; must not allocate.
	CopyIn(lane Lane, dst Ptr, src []byte) (Span, error)
	// CopyOut copies len(dst) bytes from src to pinned host memory on lane, returning when done.
	// Timing: executor thread; must not allocate.
	CopyOut(lane Lane, dst []byte, src Ptr) (Span, error)
	// Close frees the device's region and contexts. No call may follow.
	Close() error
}

// Backend opens the devices of one kind on this machine.
type Backend interface {
	// Name is "cuda", "cpu" or "sim".
	Name() string
	// Open returns the devices, each with a region of regionBytes (0: the backend's default,
	// most of the device's free memory). An unusable backend returns ErrNotSupported, wrapped.
	Open(regionBytes int64) ([]Device, error)
}

// HostRegistrar is implemented by devices that must register pinned host memory before DMA
// (cuda: cuMemHostRegister). The worker registers every pinned region it creates with it.
type HostRegistrar interface {
	RegisterHost(b []byte) error
	UnregisterHost(b []byte) error
}
