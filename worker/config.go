package worker

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"time"

	"github.com/clockwork-go/clockwork/runtime/device"
	rtmodel "github.com/clockwork-go/clockwork/runtime/model"
	"github.com/clockwork-go/clockwork/runtime/sim"
	"github.com/clockwork-go/clockwork/wire"
)

// Defaults, after Clockwork's config/default.cfg (clockwork.md §C.1, §C.5).
const (
	DefaultAddr        = ":12345"
	DefaultPageBytes   = 16 << 20  // weights cache page
	DefaultIOBytes     = 512 << 20 // device IO arena per GPU
	DefaultWorkspace   = 512 << 20 // device workspace arena per GPU
	DefaultHostIOBytes = 512 << 20 // pinned host IO pool, all GPUs
	DefaultIOSlotBytes = 32 << 20  // one action's input + output, device side
	DefaultInputLeadNs = 5_000_000 // input copies may start 5 ms before earliest (copy_input_lead_in)
	DefaultQueueDepth  = 4096      // actions queued per executor
	DefaultRingSize    = 1 << 16   // telemetry records kept
)

// Config configures a Worker. The zero value plus SimGPUs (or Backend) is a working sim worker.
type Config struct {
	// Addr is the TCP address to listen on; "" is DefaultAddr, "127.0.0.1:0" an ephemeral port
	// (read it back with Worker.Addr).
	Addr string
	// Backend opens the devices. nil: the sim backend with SimGPUs devices and Profile. A backend
	// given here must report spans in Clock's domain.
	Backend device.Backend
	// SimGPUs is the number of emulated GPUs when Backend is nil (default 1).
	SimGPUs int
	// SimNoise and SimSeed configure the sim backend's execution-time spread (see sim.Config).
	SimNoise float64
	SimSeed  uint64
	// Profile is where sim models registered by name come from; nil: sim.DefaultProfile().
	Profile *sim.Profile
	// Compile converts an ONNX model built by runtime/model (per-batch plans over a weight
	// layout in PageBytes pages) into what Backend's Prepare takes: cpu.FromModel for the cpu
	// backend. nil hands the backend a Built. Unused on sim, where a model is a profile entry.
	Compile func(*rtmodel.Model) (device.Model, error)
	// ShareHostWeights: instances of one ONNX file share one copy of its host weight pages
	// (read-only; each instance still has its own model id and cache pages, and each LOAD
	// copies into them). Off, every instance has its own copy, as Clockwork's workers; on, a
	// thousand ResNet-50 instances need 100 MB of host memory instead of 100 GB.
	ShareHostWeights bool
	// Batches are the batch sizes ONNX models are built and prepared at (default
	// runtime/model.DefaultBatches: 1, 2, 4, 8, 16).
	Batches []int
	// RegionBytes is each device's region for the worker (0: the backend's default).
	RegionBytes int64
	// PageBytes is the weights cache page size (default 16 MiB, as Clockwork).
	PageBytes int64
	// IOBytes and WorkspaceBytes are the device IO and workspace arenas per GPU (512 MiB each).
	IOBytes, WorkspaceBytes int64
	// IOSlotBytes bounds one INFER's input plus output; the IO arena is cut into slots of it.
	IOSlotBytes int64
	// HostIOBytes bounds the host buffers inputs are read into and outputs copied to.
	HostIOBytes int64
	// HostIOWarm carves one host buffer per batch size at registration, so the first INFER
	// of each size does not map, lock and pre-fault memory on the reader (~1 ms per 4 MiB).
	// Off, buffers are carved on first use: what in-process clusters of many workers with
	// synthesised inputs want (they need none; warming the V100 zoo costs ~90 MiB per worker).
	HostIOWarm bool
	// ModelRoot is the directory LoadModel paths must lie under; "" refuses every path.
	ModelRoot string
	// CPUs are the CPUs executor threads are pinned to, round-robin (sched_setaffinity); empty:
	// not pinned.
	CPUs []int
	// FIFO runs executor threads under SCHED_FIFO at FIFOPriority (1–99). Refused unless the
	// kernel's RT throttling is on and CPUs leaves at least one CPU free (the guard: a spinning
	// RT thread must not starve the machine).
	FIFO         bool
	FIFOPriority int
	// SpinNs: executors sleep until SpinNs before an action's eligible time, then spin (see
	// Worker, Waiting). Negative: sim.DefaultSpinNs. 0: Go timers only, coarse (up to ~1 ms
	// late) but what tests under testing/synctest need.
	SpinNs int64
	// InputLeadNs: an INFER's input copy is eligible this long before its earliest.
	InputLeadNs int64
	// QueueDepth bounds actions queued per executor; more are refused with StatusOverloaded.
	QueueDepth int
	// Secret enables the HMAC hello (both sides need the same one).
	Secret []byte
	// Clock is the worker's wire clock (ClockUnixMono ns): action windows are in it. nil: the
	// process clock anchored to the system time at start.
	Clock func() int64
	// Logger gets connection and lifecycle events (never per-action ones); nil: discard.
	Logger *slog.Logger
	// TelemetryTSV, if set, receives one line per action (see Telemetry).
	TelemetryTSV io.Writer
	// Probe, if set, explains late INFERs with eBPF (see Probe; cw worker -probe) and forces
	// executor threads to be locked, so each has one thread id to watch.
	Probe *Probe
	// RingSize is the number of telemetry records kept in memory (power of two).
	RingSize int
	// StallTimeout bounds a frame's arrival once begun (see wire.Config).
	StallTimeout time.Duration
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.SimGPUs < 0 || c.SimGPUs > sim.MaxGPUs {
		return fmt.Errorf("worker config: SimGPUs %d outside [0, %d]", c.SimGPUs, sim.MaxGPUs)
	}
	for _, v := range []int64{c.RegionBytes, c.PageBytes, c.IOBytes, c.WorkspaceBytes, c.IOSlotBytes, c.HostIOBytes, c.InputLeadNs} {
		if v < 0 {
			return fmt.Errorf("worker config: negative size or duration %d", v)
		}
	}
	if c.PageBytes != 0 && c.PageBytes < 4096 {
		return fmt.Errorf("worker config: PageBytes %d below 4096", c.PageBytes)
	}
	if c.IOSlotBytes != 0 && c.IOBytes != 0 && c.IOSlotBytes > c.IOBytes {
		return fmt.Errorf("worker config: IOSlotBytes %d over IOBytes %d", c.IOSlotBytes, c.IOBytes)
	}
	if c.QueueDepth < 0 || c.RingSize < 0 || (c.RingSize != 0 && c.RingSize&(c.RingSize-1) != 0) {
		return fmt.Errorf("worker config: QueueDepth %d or RingSize %d invalid (RingSize: a power of two)", c.QueueDepth, c.RingSize)
	}
	if c.FIFO && (c.FIFOPriority < 1 || c.FIFOPriority > 99) {
		return fmt.Errorf("worker config: FIFOPriority %d outside [1, 99]", c.FIFOPriority)
	}
	if c.FIFO && len(c.CPUs) == 0 {
		return errors.New("worker config: FIFO needs CPUs: an unpinned SCHED_FIFO thread may take every CPU")
	}
	for i, b := range c.Batches {
		if b < 1 || b > math.MaxUint16 || (i > 0 && b <= c.Batches[i-1]) {
			return fmt.Errorf("worker config: Batches %v: want increasing sizes in [1, %d]", c.Batches, math.MaxUint16)
		}
	}
	if len(c.Batches) > wire.MaxBatchSizes {
		return fmt.Errorf("worker config: %d batch sizes; at most %d", len(c.Batches), wire.MaxBatchSizes)
	}
	for _, cpu := range c.CPUs {
		if cpu < 0 || cpu >= 1024 {
			return fmt.Errorf("worker config: CPU %d outside [0, 1024)", cpu)
		}
	}
	if c.ModelRoot != "" && !filepath.IsAbs(c.ModelRoot) {
		return fmt.Errorf("worker config: ModelRoot %q is not absolute", c.ModelRoot)
	}
	return nil
}

func (c *Config) fill() {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.SimGPUs == 0 {
		c.SimGPUs = 1
	}
	if c.Profile == nil {
		c.Profile = sim.DefaultProfile()
	}
	if len(c.Batches) == 0 {
		c.Batches = rtmodel.DefaultBatches
	}
	if c.PageBytes == 0 {
		c.PageBytes = DefaultPageBytes
	}
	if c.IOBytes == 0 {
		c.IOBytes = DefaultIOBytes
	}
	if c.WorkspaceBytes == 0 {
		c.WorkspaceBytes = DefaultWorkspace
	}
	if c.IOSlotBytes == 0 {
		c.IOSlotBytes = min(DefaultIOSlotBytes, c.IOBytes)
	}
	if c.HostIOBytes == 0 {
		c.HostIOBytes = DefaultHostIOBytes
	}
	if c.SpinNs < 0 {
		c.SpinNs = sim.DefaultSpinNs
	}
	if c.InputLeadNs == 0 {
		c.InputLeadNs = DefaultInputLeadNs
	}
	if c.QueueDepth == 0 {
		c.QueueDepth = DefaultQueueDepth
	}
	if c.RingSize == 0 {
		c.RingSize = DefaultRingSize
	}
	if c.Clock == nil {
		c.Clock = UnixMonoClock
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

var (
	clockStart     = time.Now()
	clockStartUnix = clockStart.UnixNano()
)

// UnixMonoClock is the ClockUnixMono wire clock: ns since the Unix epoch, read from the monotonic
// clock anchored to the system time once at process start. It never jumps. Does not allocate.
func UnixMonoClock() int64 { return clockStartUnix + int64(time.Since(clockStart)) }
