package cuda

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clockwork-go/clockwork/runtime/device"
	"github.com/clockwork-go/clockwork/runtime/model"
)

// Harness drives prepared models on one device outside a worker (tests, `cw tools profile`):
// a pinned staging buffer and a bump allocator over the device's region. Control path; one
// goroutine.
type Harness struct {
	D     *Device
	Stage []byte // mmap'd and registered
	next  uint64
}

// NewHarness maps and registers stageBytes of pinned host memory for d.
func NewHarness(d *Device, stageBytes int64) (*Harness, error) {
	stage, err := unix.Mmap(-1, 0, int(stageBytes), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("cannot map %d bytes of staging memory (lower it or free RAM): %w", stageBytes, err)
	}
	if err := d.RegisterHost(stage); err != nil {
		unix.Munmap(stage)
		return nil, err
	}
	return &Harness{D: d, Stage: stage, next: uint64(d.info.Base)}, nil
}

// Close unregisters and unmaps the staging buffer.
func (h *Harness) Close() error {
	err := h.D.UnregisterHost(h.Stage)
	if e := unix.Munmap(h.Stage); err == nil {
		err = e
	}
	return err
}

// Reset forgets every allocation.
func (h *Harness) Reset() { h.next = uint64(h.D.info.Base) }

// Alloc returns n bytes of the region, 256-byte aligned (2 MiB for n ≥ 2 MiB).
func (h *Harness) Alloc(n int64) (device.Ptr, error) {
	a := uint64(255)
	if n >= 2<<20 {
		a = 2<<20 - 1
	}
	p := (h.next + a) &^ a
	if p+uint64(n) > uint64(h.D.info.Base)+uint64(h.D.info.Size) {
		return 0, fmt.Errorf("cannot allocate %d bytes: region of %d bytes exhausted (open with a larger region)", n, h.D.info.Size)
	}
	h.next = p + uint64(n)
	return device.Ptr(p), nil
}

// Put copies b to dst through the staging buffer.
func (h *Harness) Put(dst device.Ptr, b []byte) error {
	for len(b) > 0 {
		n := copy(h.Stage, b)
		if _, err := h.D.CopyIn(device.LaneInput, dst, h.Stage[:n]); err != nil {
			return err
		}
		b, dst = b[n:], dst+device.Ptr(n)
	}
	return nil
}

// Get copies n bytes from src.
func (h *Harness) Get(src device.Ptr, n int) ([]byte, error) {
	out := make([]byte, n)
	for off := 0; off < n; {
		k := min(n-off, len(h.Stage))
		if _, err := h.D.CopyOut(device.LaneOutput, h.Stage[:k], src+device.Ptr(off)); err != nil {
			return nil, err
		}
		copy(out[off:], h.Stage[:k])
		off += k
	}
	return out, nil
}

// WeightImage lays out m's weights as its pages, back to back (page i at i·PageSize).
func WeightImage(m *model.Model) []byte {
	l := m.Layout
	if l == nil {
		return nil
	}
	img := make([]byte, int64(l.Pages)*l.PageSize)
	for i, t := range m.Weights {
		pl := l.Placements[i]
		at := int64(pl.Page)*l.PageSize + pl.Offset
		t.AppendBytes(img[at:at])
	}
	return img
}

// Loaded is a prepared model with weights in region pages and IO and workspace buffers for
// its largest batch.
type Loaded struct {
	P              *Program
	Pages          []device.Ptr
	In, Out, Work  device.Ptr
	Image          []byte
	LoadNs         int64 // one LOAD: every page copied from pinned memory, one CopyIn each (wall)
	PrepareElapsed time.Duration
}

// Load prepares m at batches, allocates pages and buffers and copies the weights in.
func (h *Harness) Load(m *model.Model, batches []int, opt PrepareOptions) (*Loaded, error) {
	t0 := time.Now()
	p, err := h.D.PrepareModel(builtOf{m}, batches, opt)
	if err != nil {
		return nil, err
	}
	ld := &Loaded{P: p, PrepareElapsed: time.Since(t0), Image: WeightImage(m)}
	for range p.Pages() {
		pg, err := h.Alloc(p.PageBytes())
		if err != nil {
			p.Close()
			return nil, err
		}
		ld.Pages = append(ld.Pages, pg)
	}
	var in, out, work int64
	for _, b := range p.Batches() {
		in, out, work = max(in, p.InputBytes(b)), max(out, p.OutputBytes(b)), max(work, p.WorkspaceBytes(b))
	}
	for _, x := range []struct {
		p *device.Ptr
		n int64
	}{{&ld.In, in}, {&ld.Out, out}, {&ld.Work, work}} {
		if *x.p, err = h.Alloc(max(x.n, 256)); err != nil {
			p.Close()
			return nil, err
		}
	}
	if err := h.LoadPages(ld, ld.Pages); err != nil {
		p.Close()
		return nil, err
	}
	return ld, nil
}

// LoadPages copies the weight image into pages (one CopyIn per page from pinned staging, as a
// worker's LOAD does) and records the wall time in ld.LoadNs.
func (h *Harness) LoadPages(ld *Loaded, pages []device.Ptr) error {
	pb := int(ld.P.PageBytes())
	if len(ld.Image) > len(h.Stage) {
		// Too large to stage at once: copy through the buffer (slower than a real LOAD).
		for i, pg := range pages {
			if err := h.Put(pg, ld.Image[i*pb:(i+1)*pb]); err != nil {
				return err
			}
		}
		ld.LoadNs = -1
		return nil
	}
	copy(h.Stage, ld.Image)
	t0 := time.Now()
	for i, pg := range pages {
		if _, err := h.D.CopyIn(device.LaneWeights, pg, h.Stage[i*pb:(i+1)*pb]); err != nil {
			return err
		}
	}
	ld.LoadNs = time.Since(t0).Nanoseconds()
	return nil
}

// builtOf wraps a built model as a device.Model.
type builtOf struct{ m *model.Model }

func (b builtOf) Name() string        { return b.m.Name }
func (b builtOf) Built() *model.Model { return b.m }

// Measure runs batch b of ld n times and returns each run's device time (ns, from the events
// around the graph). gap > 0 idles the host that long (busy-waiting) between runs; with warm,
// Device.Warm fills the gap but its last 50 µs. The caller should hold its OS thread.
func (h *Harness) Measure(ld *Loaded, b, n int, gap time.Duration, warm bool) ([]int64, error) {
	out := make([]int64, 0, n)
	for range n {
		sp, err := ld.P.Run(b, ld.Pages, ld.In, ld.Out, ld.Work)
		if err != nil {
			return nil, err
		}
		out = append(out, sp.Dur())
		if gap > 0 {
			t0 := time.Now()
			if warm && gap > 100*time.Microsecond {
				if err := h.D.Warm(gap - 50*time.Microsecond); err != nil {
					return nil, err
				}
			}
			for time.Since(t0) < gap {
			}
		}
	}
	return out, nil
}
