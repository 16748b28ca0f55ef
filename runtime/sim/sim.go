package sim

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sync/atomic"

	"github.com/clockwork-go/clockwork/internal/invariants"
	"github.com/clockwork-go/clockwork/runtime/device"
)

// Defaults of Config.
const (
	DefaultMemBytes    = 32 << 30 // a 32 GB V100, the card of the shipped profile
	DefaultBytesPerSec = 12.3e9   // PCIe 3 x16 as measured by Clockwork (clockwork.md §I)
	MaxGPUs            = 4096
	regionBase         = 1 << 40 // device addresses start here, so a zero Ptr is never valid
	regionStride       = 1 << 44 // devices' regions do not overlap
)

// Config configures the sim backend.
type Config struct {
	// GPUs is how many devices Open returns (1 to MaxGPUs).
	GPUs int
	// Name is each device's name; default "sim-" + the profile's device.
	Name string
	// MemBytes is each device's memory; Open refuses a larger region. Default DefaultMemBytes.
	MemBytes int64
	// H2DBytesPerSec and D2HBytesPerSec set copy times (size / bandwidth); 0 takes the profile's
	// measured value, else DefaultBytesPerSec.
	H2DBytesPerSec, D2HBytesPerSec float64
	// CopyLatencyNs is added to every copy (a real DMA costs ~5–10 µs to start). Default 0.
	CopyLatencyNs int64
	// Noise scales the spread of execution times around the profile's p50: 0 always runs p50,
	// 1 reproduces the profile's p99 and p99.99, 2 doubles their distance from p50.
	Noise float64
	// Seed makes the draws deterministic: the same seed, device, model and sequence of runs give
	// the same durations.
	Seed uint64
	// Clock is the caller's monotonic clock in ns, in which spans are reported; nil: Clock.
	Clock func() int64
	// SpinNs is how long waits spin before their end (see WaitUntil); negative: DefaultSpinNs.
	// Use 0 under testing/synctest.
	SpinNs int64
	// Profile supplies bandwidths when the fields above are 0; nil: DefaultProfile.
	Profile *Profile
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.GPUs < 1 || c.GPUs > MaxGPUs {
		return fmt.Errorf("sim config: GPUs %d outside [1, %d]", c.GPUs, MaxGPUs)
	}
	if c.MemBytes < 0 || c.CopyLatencyNs < 0 || c.H2DBytesPerSec < 0 || c.D2HBytesPerSec < 0 {
		return fmt.Errorf("sim config: negative memory %d, copy latency %d or bandwidth h2d=%v d2h=%v", c.MemBytes, c.CopyLatencyNs, c.H2DBytesPerSec, c.D2HBytesPerSec)
	}
	if !(c.Noise >= 0 && c.Noise <= 100) {
		return fmt.Errorf("sim config: Noise %v outside [0, 100]", c.Noise)
	}
	return nil
}

// Backend is the sim backend. It implements device.Backend.
type Backend struct {
	cfg Config
}

// New returns a sim backend for cfg (validated; defaults filled in).
func New(cfg Config) (*Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Profile == nil {
		cfg.Profile = DefaultProfile()
	}
	if cfg.MemBytes == 0 {
		cfg.MemBytes = DefaultMemBytes
	}
	if cfg.H2DBytesPerSec == 0 {
		cfg.H2DBytesPerSec = cmp0(cfg.Profile.H2DBytesPerSec, DefaultBytesPerSec)
	}
	if cfg.D2HBytesPerSec == 0 {
		cfg.D2HBytesPerSec = cmp0(cfg.Profile.D2HBytesPerSec, DefaultBytesPerSec)
	}
	if cfg.Clock == nil {
		cfg.Clock = Clock
	}
	if cfg.SpinNs < 0 {
		cfg.SpinNs = DefaultSpinNs
	}
	if cfg.Name == "" {
		cfg.Name = "sim-" + cfg.Profile.Device
		if len(cfg.Name) > MaxNameLen {
			cfg.Name = cfg.Name[:MaxNameLen]
		}
	}
	return &Backend{cfg: cfg}, nil
}

func cmp0(v, def float64) float64 {
	if v > 0 {
		return v
	}
	return def
}

// Name implements device.Backend.
func (b *Backend) Name() string { return "sim" }

// Open implements device.Backend: cfg.GPUs devices, each with a region of regionBytes (0: all
// of MemBytes). Nothing is allocated: memory is a range of addresses, checked on every use.
func (b *Backend) Open(regionBytes int64) ([]device.Device, error) {
	if regionBytes == 0 {
		regionBytes = b.cfg.MemBytes
	}
	if regionBytes < 0 || regionBytes > b.cfg.MemBytes {
		return nil, fmt.Errorf("cannot open sim devices: region of %d bytes does not fit in %d bytes of device memory; ask for less or raise the sim memory size", regionBytes, b.cfg.MemBytes)
	}
	out := make([]device.Device, b.cfg.GPUs)
	for i := range out {
		base := device.Ptr(regionBase + uint64(i)*regionStride)
		out[i] = &Device{cfg: &b.cfg, info: device.Info{Backend: "sim", Index: i, Name: b.cfg.Name, MemBytes: b.cfg.MemBytes, Base: base, Size: regionBytes}}
	}
	return out, nil
}

// Device is one emulated GPU. It implements device.Device.
//
// # Concurrency
//
// As device.Device: one goroutine per lane. The exec lane's one-at-a-time rule is checked under
// the invariants build tag (a second concurrent Run panics with BUG).
type Device struct {
	cfg    *Config
	info   device.Info
	closed atomic.Bool
	// running counts Runs in progress (invariants).
	running atomic.Int32
}

// Info implements device.Device.
func (d *Device) Info() device.Info { return d.info }

// ErrOutOfRegion is wrapped when an address range is outside the device's region.
var ErrOutOfRegion = errors.New("address range outside the device region")

// ErrClosed is returned by calls on a closed device.
var ErrClosed = errors.New("sim device closed")

func (d *Device) check(p device.Ptr, n int64) error {
	if d.closed.Load() {
		return ErrClosed
	}
	off := int64(p) - int64(d.info.Base)
	if n < 0 || off < 0 || off > d.info.Size || n > d.info.Size-off {
		return fmt.Errorf("sim gpu %d: [%#x, +%d): %w [%#x, +%d)", d.info.Index, uint64(p), n, ErrOutOfRegion, uint64(d.info.Base), d.info.Size)
	}
	return nil
}

func (d *Device) copyNs(n int, bw float64) int64 {
	return d.cfg.CopyLatencyNs + int64(math.Ceil(float64(n)/bw*1e9))
}

// CopyIn implements device.Device: it takes CopyLatencyNs + len(src)/H2DBytesPerSec.
//
// Timing: executor thread; does not allocate; blocks for the copy time.
func (d *Device) CopyIn(lane device.Lane, dst device.Ptr, src []byte) (device.Span, error) {
	if err := d.check(dst, int64(len(src))); err != nil {
		return device.Span{}, err
	}
	return d.wait(d.copyNs(len(src), d.cfg.H2DBytesPerSec)), nil
}

// CopyOut implements device.Device: it takes CopyLatencyNs + len(dst)/D2HBytesPerSec. dst is
// not written (the sim has no data); the worker's output buffer keeps what it held.
//
// Timing: executor thread; does not allocate; blocks for the copy time.
func (d *Device) CopyOut(lane device.Lane, dst []byte, src device.Ptr) (device.Span, error) {
	if err := d.check(src, int64(len(dst))); err != nil {
		return device.Span{}, err
	}
	return d.wait(d.copyNs(len(dst), d.cfg.D2HBytesPerSec)), nil
}

// wait blocks for ns and returns the device-side span: exactly ns long from the start, as GPU
// events would measure it, even when the host thread wakes late.
func (d *Device) wait(ns int64) device.Span {
	start := d.cfg.Clock()
	WaitUntil(d.cfg.Clock, start+ns, d.cfg.SpinNs)
	return device.Span{StartNs: start, EndNs: start + ns}
}

// Prepare implements device.Device. m must be a *ModelProfile; batches must be profiled sizes.
func (d *Device) Prepare(m device.Model, batches []int) (device.Program, error) {
	mp, ok := m.(*ModelProfile)
	if !ok {
		return nil, fmt.Errorf("cannot prepare %q on sim: model type %T is not a *sim.ModelProfile", m.Name(), m)
	}
	if err := mp.Validate(); err != nil {
		return nil, fmt.Errorf("cannot prepare %q on sim: %w", mp.ModelName, err)
	}
	if len(batches) == 0 {
		batches = mp.BatchSizes()
	}
	p := &Program{dev: d, model: mp}
	for i, b := range batches {
		e, ok := mp.Batch(b)
		if !ok {
			return nil, fmt.Errorf("cannot prepare %q on sim: batch %d not in the profile (have %v)", mp.ModelName, b, mp.BatchSizes())
		}
		if i > 0 && b <= batches[i-1] {
			return nil, fmt.Errorf("cannot prepare %q on sim: batches %v not ascending", mp.ModelName, batches)
		}
		p.batches = append(p.batches, b)
		p.entries = append(p.entries, e)
	}
	h := fnv.New64a()
	h.Write([]byte(mp.ModelName))
	p.rng = rand.New(rand.NewPCG(d.cfg.Seed, h.Sum64()^uint64(d.info.Index)*0x9e3779b97f4a7c15))
	return p, nil
}

// Close implements device.Device.
func (d *Device) Close() error {
	d.closed.Store(true)
	return nil
}

// Program is a model profile prepared on one sim device. It implements device.Program.
type Program struct {
	dev     *Device
	model   *ModelProfile
	batches []int
	entries []BatchProfile
	rng     *rand.Rand // exec lane only
}

func (p *Program) Batches() []int { return p.batches }

func (p *Program) InputBytes(batch int) int64     { return p.model.InputBytes * int64(batch) }
func (p *Program) OutputBytes(batch int) int64    { return p.model.OutputBytes * int64(batch) }
func (p *Program) WorkspaceBytes(batch int) int64 { return p.model.WorkspaceBytes }
func (p *Program) WeightBytes() int64             { return p.model.WeightsBytes }

// Model returns the profile entry the program emulates.
func (p *Program) Model() *ModelProfile { return p.model }

// Duration draws one execution time for a prepared batch from the profile: a piecewise-linear
// inverse CDF through (0.5, p50), (0.99, p99), (0.9999, p99.99), flat at p50 below the median
// and at p99.99 above its percentile, then scaled around p50 by Noise. Deterministic for the
// seed and the sequence of draws. Exec lane only.
//
// Timing: exec thread; does not allocate; ~20ns.
func (p *Program) Duration(batch int) (int64, bool) {
	for i, b := range p.batches {
		if b == batch {
			return p.draw(&p.entries[i]), true
		}
	}
	return 0, false
}

func (p *Program) draw(e *BatchProfile) int64 {
	if p.dev.cfg.Noise == 0 {
		return e.P50Ns
	}
	return spread(e, p.rng.Float64(), p.dev.cfg.Noise)
}

// spread maps a uniform u in [0, 1) to a duration; see Duration.
func spread(e *BatchProfile, u, noise float64) int64 {
	p50, p99, p9999 := float64(e.P50Ns), float64(e.P99Ns), float64(e.P9999Ns)
	var q float64
	switch {
	case u <= 0.5:
		q = p50
	case u <= 0.99:
		q = p50 + (p99-p50)*(u-0.5)/0.49
	case u <= 0.9999:
		q = p99 + (p9999-p99)*(u-0.99)/0.0099
	default:
		q = p9999
	}
	return int64(math.Round(p50 + noise*(q-p50)))
}

// Run implements device.Program: it checks the addresses and the batch, then takes a drawn
// duration on the exec lane.
//
// Timing: exec thread; does not allocate; blocks for the drawn duration.
func (p *Program) Run(batch int, pages []device.Ptr, in, out, workspace device.Ptr) (device.Span, error) {
	d := p.dev
	if invariants.Enabled {
		if n := d.running.Add(1); n != 1 {
			panic(fmt.Sprintf("BUG: sim gpu %d: %d runs at once on the exec lane", d.info.Index, n))
		}
		defer d.running.Add(-1)
	}
	idx := -1
	for i, b := range p.batches {
		if b == batch {
			idx = i
		}
	}
	if idx < 0 {
		return device.Span{}, fmt.Errorf("cannot run %q on sim: batch %d not prepared", p.model.ModelName, batch)
	}
	if p.model.WeightsBytes > 0 && len(pages) == 0 {
		return device.Span{}, fmt.Errorf("cannot run %q on sim: no weight pages", p.model.ModelName)
	}
	for _, pg := range pages {
		if err := d.check(pg, 1); err != nil {
			return device.Span{}, err
		}
	}
	if err := d.check(in, p.InputBytes(batch)); err != nil {
		return device.Span{}, err
	}
	if err := d.check(out, p.OutputBytes(batch)); err != nil {
		return device.Span{}, err
	}
	if err := d.check(workspace, p.model.WorkspaceBytes); err != nil {
		return device.Span{}, err
	}
	return d.wait(p.draw(&p.entries[idx])), nil
}

// Close implements device.Program.
func (p *Program) Close() error { return nil }

var (
	_ device.Backend = (*Backend)(nil)
	_ device.Device  = (*Device)(nil)
	_ device.Program = (*Program)(nil)
	_ device.Model   = (*ModelProfile)(nil)
)
