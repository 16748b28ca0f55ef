package alloc

import (
	"fmt"
	"math"

	"github.com/clockwork-go/clockwork/internal/invariants"
)

// MaxArenaBufs bounds the live buffers of one arena. The IO arena holds the inputs and outputs
// of the INFERs between their input copy and their output copy (a handful per GPU); the
// workspace arena holds one INFER's activations.
const MaxArenaBufs = 1024

// ArenaAlign is the alignment of every arena buffer: 256 bytes, what cuDNN and cuBLAS want.
const ArenaAlign = 256

// Buf is a handle to one arena buffer. Its generation changes when the buffer is freed, so a
// handle kept past Free is detected (ErrStale). The zero Buf is invalid.
type Buf struct {
	Addr  uint64 // device address
	Bytes int64  // size asked for
	slot  uint32
	gen   uint32
}

func (b Buf) String() string {
	return fmt.Sprintf("buf(%#x+%d/s%d/g%d)", b.Addr, b.Bytes, b.slot, b.gen)
}

// ArenaConfig describes an arena's region.
type ArenaConfig struct {
	Name string // "io" or "workspace", for errors
	Base uint64
	Size int64
	// MaxBufs bounds the live buffers; 0 means 64. At most MaxArenaBufs.
	MaxBufs int
}

// Arena hands out variable-sized buffers from one region for the INFERs in flight on a GPU
// (the IO arena: inputs and outputs; the workspace arena: activations, sized from the model's
// plan). Exhaustion is an error (ErrNoSpace naming the bytes asked for and free), never a wait:
// the controller sizes what it sends so that it fits, and an INFER that does not fit is
// rejected.
//
// # Invariants
//
//  1. Live buffers are disjoint, aligned to ArenaAlign and inside [Base, Base+Size).
//  2. used + free = size, where used counts the aligned sizes of live buffers.
//  3. A buffer's generation changes when it is freed.
//
// # Path
//
// Live buffers are kept sorted by address in a fixed array (at most MaxBufs). Alloc scans the
// gaps between them for the first that fits (first fit, O(live)); Free finds the buffer by its
// slot and closes the gap (O(live) shift). With a handful of live buffers this is a few tens of
// nanoseconds and never allocates. A bump allocator reset per INFER was rejected because the IO
// arena's buffers are freed out of order (outputs of one INFER leave while the next one's
// inputs arrive).
//
// # Concurrency
//
// Not safe for concurrent use; the worker guards each arena with a mutex.
type Arena struct {
	name  string
	base  uint64
	size  int64
	used  int64
	live  []int32 // slots of live buffers, sorted by offset
	off   []int64 // per slot: offset from base
	len   []int64 // per slot: aligned length
	gen   []uint32
	alive []bool
	slots []int32 // free slots (a stack)
}

// NewArena returns an empty arena over the region. Control path: allocates O(MaxBufs).
func NewArena(cfg ArenaConfig) (*Arena, error) {
	if cfg.MaxBufs == 0 {
		cfg.MaxBufs = 64
	}
	if cfg.MaxBufs < 0 || cfg.MaxBufs > MaxArenaBufs {
		return nil, fmt.Errorf("cannot create %s arena with %d buffers: %w; use 1 to %d", cfg.Name, cfg.MaxBufs, ErrConfig, MaxArenaBufs)
	}
	if cfg.Size < 0 || cfg.Base%ArenaAlign != 0 || cfg.Base > math.MaxUint64-uint64(cfg.Size) {
		return nil, fmt.Errorf("cannot create %s arena at %#x size %d: %w; the base must be %d-aligned and the size non-negative", cfg.Name, cfg.Base, cfg.Size, ErrConfig, ArenaAlign)
	}
	n := cfg.MaxBufs
	a := &Arena{name: cfg.Name, base: cfg.Base, size: cfg.Size,
		live: make([]int32, 0, n), off: make([]int64, n), len: make([]int64, n),
		gen: make([]uint32, n), alive: make([]bool, n), slots: make([]int32, n)}
	for i := range n {
		a.gen[i] = 1
		a.slots[i] = int32(n - 1 - i)
	}
	return a, nil
}

// Size is the arena's size in bytes.
func (a *Arena) Size() int64 { return a.size }

// Used is the bytes held by live buffers, alignment included.
func (a *Arena) Used() int64 { return a.used }

// Live is the number of live buffers.
func (a *Arena) Live() int { return len(a.live) }

// Alloc takes a buffer of at least bytes bytes, aligned to ArenaAlign. It fails with ErrNoSpace
// when no gap is large enough or MaxBufs are live, and ErrConfig for bytes ≤ 0.
//
// Timing: exec or copy thread holding the arena; O(live buffers), does not allocate (the
// error path does); target < 100 ns with a handful live.
func (a *Arena) Alloc(bytes int64) (Buf, error) {
	if bytes <= 0 || bytes > a.size {
		if bytes <= 0 {
			return Buf{}, fmt.Errorf("cannot allocate %d bytes from %s arena: %w; sizes must be positive", bytes, a.name, ErrConfig)
		}
		return Buf{}, fmt.Errorf("cannot allocate %d bytes from %s arena: %w: the arena has %d bytes in all; make it larger or plan a smaller batch", bytes, a.name, ErrNoSpace, a.size)
	}
	if len(a.slots) == 0 {
		return Buf{}, fmt.Errorf("cannot allocate %d bytes from %s arena: %w: all %d buffers are live; free some first", bytes, a.name, ErrNoSpace, len(a.gen))
	}
	n := (bytes + ArenaAlign - 1) &^ (ArenaAlign - 1)
	var at int64
	pos := len(a.live)
	for i, s := range a.live {
		if a.off[s]-at >= n {
			pos = i
			break
		}
		at = a.off[s] + a.len[s]
	}
	if pos == len(a.live) && a.size-at < n {
		return Buf{}, fmt.Errorf("cannot allocate %d bytes from %s arena: %w: %d of %d bytes free in %d buffers' gaps; free buffers or enlarge the arena", bytes, a.name, ErrNoSpace, a.size-a.used, a.size, len(a.live))
	}
	k := len(a.slots) - 1
	s := a.slots[k]
	a.slots = a.slots[:k]
	a.off[s], a.len[s], a.alive[s] = at, n, true
	a.live = append(a.live, 0)
	copy(a.live[pos+1:], a.live[pos:])
	a.live[pos] = s
	a.used += n
	a.mustCheck()
	return Buf{Addr: a.base + uint64(at), Bytes: bytes, slot: uint32(s), gen: a.gen[s]}, nil
}

// Free releases a buffer. A stale or foreign handle returns ErrStale and changes nothing.
//
// Timing: exec or copy thread holding the arena; O(live buffers), does not allocate (the
// error path does).
func (a *Arena) Free(b Buf) error {
	s := int32(b.slot)
	if int(b.slot) >= len(a.gen) || b.gen == 0 || a.gen[s] != b.gen || !a.alive[s] || a.base+uint64(a.off[s]) != b.Addr {
		return fmt.Errorf("cannot free %v from %s arena: %w", b, a.name, ErrStale)
	}
	pos := -1
	for i, t := range a.live {
		if t == s {
			pos = i
			break
		}
	}
	if pos < 0 {
		panic(fmt.Sprintf("BUG: alloc: %s arena slot %d is alive but not in the live list", a.name, s))
	}
	a.live = append(a.live[:pos], a.live[pos+1:]...)
	a.used -= a.len[s]
	a.alive[s] = false
	g := a.gen[s] + 1
	if g == 0 {
		g = 1
	}
	a.gen[s] = g
	a.slots = append(a.slots, s)
	a.mustCheck()
	return nil
}

// mustCheck runs Check under the invariants build tag (O(live buffers)).
func (a *Arena) mustCheck() {
	if invariants.Enabled {
		if err := a.Check(); err != nil {
			panic(err.Error())
		}
	}
}

// Check verifies the invariants in Arena's comment.
func (a *Arena) Check() error {
	var used, end int64
	for i, s := range a.live {
		if !a.alive[s] {
			return fmt.Errorf("BUG: %s arena: live[%d] = slot %d is not alive", a.name, i, s)
		}
		if a.off[s] < end || a.off[s]%ArenaAlign != 0 || a.len[s] <= 0 || a.off[s]+a.len[s] > a.size {
			return fmt.Errorf("BUG: %s arena: buffer %d at %d+%d overlaps, is unaligned or outside (end of previous %d, size %d)", a.name, s, a.off[s], a.len[s], end, a.size)
		}
		end = a.off[s] + a.len[s]
		used += a.len[s]
	}
	if used != a.used {
		return fmt.Errorf("BUG: %s arena: used %d, live buffers hold %d", a.name, a.used, used)
	}
	if len(a.live)+len(a.slots) != len(a.gen) {
		return fmt.Errorf("BUG: %s arena: %d live + %d free slots != %d", a.name, len(a.live), len(a.slots), len(a.gen))
	}
	return nil
}

// String prints the live buffers, for tests and debugging. It allocates.
func (a *Arena) String() string {
	s := fmt.Sprintf("%s: %d/%d bytes used, %d live", a.name, a.used, a.size, len(a.live))
	for _, t := range a.live {
		s += fmt.Sprintf(" [%d+%d]", a.off[t], a.len[t])
	}
	return s + "\n"
}
