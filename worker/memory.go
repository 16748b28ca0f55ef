package worker

import (
	"fmt"
	"math/bits"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/clockwork-go/clockwork/alloc"
	"github.com/clockwork-go/clockwork/internal/invariants"
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

// hostPool hands out host IO buffers in size classes (4 KiB, then four per power of two, so a
// buffer wastes at most 25 %: a resnet18 batch of 16, 9.7 MB, takes a 10 MiB buffer, not 16),
// each carved once from internal/pinned (mmap'd off the Go heap, mlock'd, registered with the
// device for DMA), or, when the memlock limit is too low and the device needs no registration,
// from pageable anonymous memory. Freed buffers go back to their class, so steady state neither
// maps nor allocates. The total is bounded by limit; when a class is empty and the limit is
// reached, idle buffers of other classes are released (largest first) to make room, so a pool
// that grew for one mix of sizes still serves another instead of answering no-memory forever.
//
// Carving a buffer maps, locks and pre-faults it (the kernel zeroes every page: ~1 ms per
// 4 MiB here), so it must stay off the steady-state action path: INFERs that carry no bytes
// (synthesised input, no output) take no buffer at all, and with Config.HostIOWarm registration
// carves one buffer per batch size in advance (warm).
//
// Inputs are read from the socket straight into these buffers (one copy: kernel → buffer), and
// the device copies from them. On cuda they must also be registered with the driver
// (device.HostRegistrar); the pinned pool does that per buffer.
//
// # Concurrency
//
// All methods are safe for concurrent use (mu).
type hostPool struct {
	mu      sync.Mutex
	limit   int64
	used    int64 // bytes carved and not released
	classes [numClasses][][]byte
	pinned  *pinned.Pool
	bufs    map[*byte]*pinned.Buffer // pinned buffers by first byte
	chunks  map[*byte][]byte         // pageable fallback buffers (memlock limit too low)
	// pinnedOnly refuses the pageable fallback (devices that DMA only from registered memory).
	pinnedOnly bool
	// carves and releases count mappings made and dropped (tests, shutdown log).
	carves, releases int
}

const (
	minClassShift = 12
	numClasses    = 1 + 4*(41-minClassShift) // up to 2^41 bytes, past any IO slot
)

// classBytes is the size of class c: 4 KiB, then 5/4, 6/4, 7/4 and 8/4 of each power of two.
func classBytes(c int) int64 {
	if c == 0 {
		return 1 << minClassShift
	}
	oct, step := (c-1)/4, (c-1)%4
	return int64(1) << (minClassShift + oct) * int64(5+step) / 4
}

// classOf is the smallest class holding n bytes (numClasses when none does).
func classOf(n int) int {
	if n <= 1<<minClassShift {
		return 0
	}
	oct := bits.Len(uint(n-1)) - 1 - minClassShift // 2^(minClassShift+oct) < n ≤ 2^(…+1)
	c := 1 + 4*oct
	for c < numClasses && classBytes(c) < int64(n) {
		c++
	}
	return c
}

// get returns a buffer of at least n bytes (len n), or nil when the pool is exhausted.
//
// Timing: reader goroutine; does not allocate once the class has buffers.
func (p *hostPool) get(n int) []byte {
	c := classOf(n)
	if c >= numClasses {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if l := p.classes[c]; len(l) > 0 {
		b := l[len(l)-1]
		p.classes[c] = l[:len(l)-1]
		return b[:n]
	}
	size := classBytes(c)
	if size > p.limit {
		return nil
	}
	for k := numClasses - 1; k >= 0 && p.used+size > p.limit; k-- {
		for len(p.classes[k]) > 0 && p.used+size > p.limit {
			l := p.classes[k]
			p.releaseLocked(l[len(l)-1])
			l[len(l)-1] = nil
			p.classes[k] = l[:len(l)-1]
		}
	}
	if p.used+size > p.limit {
		return nil
	}
	if p.bufs == nil {
		p.bufs, p.chunks = map[*byte]*pinned.Buffer{}, map[*byte][]byte{}
	}
	var b []byte
	if pb, err := p.pinned.Alloc(size, pinned.IOStaging); err == nil {
		b = pb.Bytes()
		p.bufs[&b[0]] = pb
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
		b = m
		p.chunks[&b[0]] = m
	}
	p.used += size
	p.carves++
	return b[:n]
}

// releaseLocked unmaps an idle buffer; p.mu held.
func (p *hostPool) releaseLocked(b []byte) {
	b = b[:cap(b)]
	if pb := p.bufs[&b[0]]; pb != nil {
		delete(p.bufs, &b[0])
		if err := pb.Free(); err != nil {
			panic(fmt.Sprintf("BUG: worker: host buffer of %d bytes: %v", len(b), err))
		}
	} else if m := p.chunks[&b[0]]; m != nil {
		delete(p.chunks, &b[0])
		_ = unix.Munmap(m)
	} else {
		panic(fmt.Sprintf("BUG: worker: releasing a host buffer of %d bytes the pool did not carve", len(b)))
	}
	p.used -= int64(len(b))
	p.releases++
}

// put returns a buffer from get. nil is ignored.
//
// Timing: any goroutine; does not allocate once the class list has grown.
func (p *hostPool) put(b []byte) {
	if b == nil {
		return
	}
	b = b[:cap(b)]
	c := classOf(len(b))
	if invariants.Enabled && (c >= numClasses || classBytes(c) != int64(len(b))) {
		panic(fmt.Sprintf("BUG: worker: host buffer of %d bytes is no class's size", len(b)))
	}
	p.mu.Lock()
	p.classes[c] = append(p.classes[c], b)
	p.mu.Unlock()
}

// warm carves one buffer of n bytes unless its class has an idle one, so the first INFER of that
// size does not map and lock on the reader. Control path.
func (p *hostPool) warm(n int) {
	c := classOf(n)
	if c >= numClasses {
		return
	}
	p.mu.Lock()
	idle := len(p.classes[c]) > 0
	p.mu.Unlock()
	if !idle {
		p.put(p.get(n))
	}
}

// stats reports what the pool holds: bytes pinned and pageable, mappings made and released.
// Any goroutine.
func (p *hostPool) stats() (pinnedBytes, pageableBytes int64, carves, releases int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range p.bufs {
		pinnedBytes += int64(len(b.Bytes()))
	}
	for _, c := range p.chunks {
		pageableBytes += int64(len(c))
	}
	return pinnedBytes, pageableBytes, p.carves, p.releases
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
	p.classes = [numClasses][][]byte{}
}
