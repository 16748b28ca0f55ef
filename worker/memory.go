package worker

import (
	"fmt"
	"math/bits"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/clockwork-go/clockwork/alloc"
	"github.com/clockwork-go/clockwork/internal/pinned"
	"github.com/clockwork-go/clockwork/runtime/device"
)

// gpuMem is one device's region, split as DESIGN.md §6 lays it out:
//
//	Base                 +IOBytes              +WorkspaceBytes        Base+Size
//	| IO arena: slots    | workspace (one INFER | weights cache: alloc.Cache pages ... |
//
// The weights cache is package alloc's page cache, guarded by gpu.mu; the worker never evicts on
// its own. The IO arena is cut into fixed slots of IOSlotBytes, one per INFER between its input
// copy and its output copy (fixed slots, not alloc.Arena: O(1) without fragmentation, at the
// price of one slot size for all models); the workspace is one region because one INFER
// executes at a time (C2).
//
// # Concurrency
//
// mu guards the slots; gpu.mu guards cache.
type gpuMem struct {
	mu        sync.Mutex
	cache     *alloc.Cache
	pageBytes int64
	total     int
	ioBase    device.Ptr
	slotBytes int64
	slots     []int32 // free IO slots
	wsBase    device.Ptr
	wsBytes   int64
}

func newGPUMem(info device.Info, c *Config) (*gpuMem, error) {
	fixed := c.IOBytes + c.WorkspaceBytes
	if info.Size < fixed+c.PageBytes {
		return nil, fmt.Errorf("cannot lay out gpu %d: region of %d bytes < IO %d + workspace %d + one %d-byte page; lower IOBytes/WorkspaceBytes or give a larger region", info.Index, info.Size, c.IOBytes, c.WorkspaceBytes, c.PageBytes)
	}
	pages := (info.Size - fixed) / c.PageBytes
	cache, err := alloc.NewCache(alloc.CacheConfig{Base: uint64(info.Base) + uint64(fixed), Size: pages * c.PageBytes, PageSize: c.PageBytes})
	if err != nil {
		return nil, fmt.Errorf("cannot lay out gpu %d: %w", info.Index, err)
	}
	m := &gpuMem{cache: cache, pageBytes: c.PageBytes, total: cache.TotalPages(), ioBase: info.Base, slotBytes: c.IOSlotBytes,
		wsBase: info.Base + device.Ptr(c.IOBytes), wsBytes: c.WorkspaceBytes}
	n := int(c.IOBytes / c.IOSlotBytes)
	m.slots = make([]int32, n)
	for i := range m.slots {
		m.slots[i] = int32(n - 1 - i)
	}
	return m, nil
}

// allocSlot returns an IO slot's address, or -1.
func (m *gpuMem) allocSlot() int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.slots) == 0 {
		return -1
	}
	s := m.slots[len(m.slots)-1]
	m.slots = m.slots[:len(m.slots)-1]
	return s
}

func (m *gpuMem) freeSlot(s int32) {
	m.mu.Lock()
	m.slots = append(m.slots, s)
	m.mu.Unlock()
}

func (m *gpuMem) slotPtr(s int32) device.Ptr { return m.ioBase + device.Ptr(int64(s)*m.slotBytes) }

// hostPool hands out host IO buffers in power-of-two size classes from 4 KiB up, each carved
// once from internal/pinned (mmap'd off the Go heap, mlock'd, registered with the device for
// DMA), or, when the memlock limit is too low and the device needs no registration, from
// pageable anonymous memory. Freed buffers go back to their class, so steady state neither maps
// nor allocates. The total is bounded by limit.
//
// Inputs are read from the socket straight into these buffers (one copy: kernel → buffer), and
// the device copies from them. On cuda they must also be registered with the driver
// (device.HostRegistrar); the pinned pool does that per chunk.
type hostPool struct {
	mu      sync.Mutex
	limit   int64
	used    int64 // bytes carved
	classes [40][][]byte
	pinned  *pinned.Pool
	bufs    []*pinned.Buffer // pinned chunks
	chunks  [][]byte         // pageable fallback chunks (memlock limit too low)
	// pinnedOnly refuses the pageable fallback (devices that DMA only from registered memory).
	pinnedOnly bool
}

const minClassShift = 12

func classOf(n int) int {
	if n <= 1<<minClassShift {
		return 0
	}
	return bits.Len(uint(n-1)) - minClassShift
}

// get returns a buffer of at least n bytes (len n), or nil when the pool is exhausted.
//
// Timing: reader goroutine; does not allocate once the class has buffers.
func (p *hostPool) get(n int) []byte {
	c := classOf(n)
	if c >= len(p.classes) {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if l := p.classes[c]; len(l) > 0 {
		b := l[len(l)-1]
		p.classes[c] = l[:len(l)-1]
		return b[:n]
	}
	size := int64(1) << (c + minClassShift)
	if p.used+size > p.limit {
		return nil
	}
	var b []byte
	if pb, err := p.pinned.Alloc(size, pinned.IOStaging); err == nil {
		p.bufs = append(p.bufs, pb)
		b = pb.Bytes()
	} else {
		// Over the memlock limit: pageable memory still works on sim (and is counted by
		// PinnedBytes; cw tools check names the fix). A registrar-backed pool (cuda) needs the
		// pinned path, so refuse there.
		if p.pinnedOnly {
			return nil
		}
		m, err := unix.Mmap(-1, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
		if err != nil {
			return nil
		}
		p.chunks = append(p.chunks, m)
		b = m
	}
	p.used += size
	return b[:n]
}

func (p *hostPool) put(b []byte) {
	if b == nil {
		return
	}
	b = b[:cap(b)]
	c := classOf(len(b))
	p.mu.Lock()
	p.classes[c] = append(p.classes[c], b)
	p.mu.Unlock()
}

// pinnedBytes and pageableBytes report what the pool has carved. Any goroutine.
func (p *hostPool) bytes() (pinnedBytes, pageableBytes int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range p.bufs {
		pinnedBytes += int64(len(b.Bytes()))
	}
	for _, c := range p.chunks {
		pageableBytes += int64(len(c))
	}
	return
}

func (p *hostPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range p.bufs {
		_ = b.Free()
	}
	for _, b := range p.chunks {
		_ = unix.Munmap(b)
	}
	p.bufs, p.chunks = nil, nil
	p.classes = [40][][]byte{}
}
