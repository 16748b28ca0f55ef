package pinned

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/clockwork-go/clockwork/internal/invariants"
)

// Purpose is what a buffer holds, for accounting.
type Purpose uint8

const (
	Weights   Purpose = iota // model weights, copied to GPU pages by LOAD
	IOStaging                // INFER inputs and outputs, filled by the wire reader
	Other
	NumPurposes
)

func (p Purpose) String() string {
	switch p {
	case Weights:
		return "weights"
	case IOStaging:
		return "io"
	case Other:
		return "other"
	}
	return fmt.Sprintf("purpose(%d)", uint8(p))
}

// Huge selects huge pages.
type Huge uint8

const (
	// HugeNone uses 4 KiB pages.
	HugeNone Huge = iota
	// HugeTransparent asks for transparent huge pages (madvise MADV_HUGEPAGE) and falls back to
	// 4 KiB pages silently where the kernel has none. Sizes round up to 2 MiB.
	HugeTransparent
	// HugeTLB maps from the hugetlbfs pool (MAP_HUGETLB); Alloc fails if the pool is short
	// (vm.nr_hugepages). Sizes round up to 2 MiB.
	HugeTLB
)

const hugePage = 2 << 20

// MaxBytes bounds one buffer: 1 TiB.
const MaxBytes = 1 << 40

// ErrLimit is wrapped by the error Alloc returns when RLIMIT_MEMLOCK is too low.
var ErrLimit = errors.New("memlock limit too low")

// ErrFreed is returned by Free on a buffer already freed.
var ErrFreed = errors.New("buffer already freed")

// Registrar registers host memory for DMA with a device (device.HostRegistrar has the same
// methods; the cuda backend implements it).
type Registrar interface {
	RegisterHost(b []byte) error
	UnregisterHost(b []byte) error
}

// Config configures a Pool.
type Config struct {
	Huge Huge
	// SkipLimitCheck bypasses the RLIMIT_MEMLOCK pre-check, so mlock itself reports the
	// failure. Tests only.
	SkipLimitCheck bool
}

// locked counts the bytes locked by every pool in the process.
var locked atomic.Int64

// Locked is the bytes currently locked by all pools of this process.
func Locked() int64 { return locked.Load() }

// Pool allocates pinned buffers and accounts for them by purpose.
type Pool struct {
	cfg Config

	mu      sync.Mutex
	reg     Registrar
	live    map[*Buffer]struct{}
	bytes   [NumPurposes]int64
	buffers [NumPurposes]int
}

// NewPool returns an empty pool.
func NewPool(cfg Config) *Pool {
	return &Pool{cfg: cfg, live: make(map[*Buffer]struct{})}
}

// Buffer is one pinned mapping.
type Buffer struct {
	pool    *Pool
	purpose Purpose
	b       []byte // what the caller asked for
	m       []byte // the whole mapping
	freed   bool
}

// Bytes is the buffer's memory, len = the size asked for. Valid until Free.
func (b *Buffer) Bytes() []byte { return b.b }

// Purpose is what the buffer was allocated for.
func (b *Buffer) Purpose() Purpose { return b.purpose }

// Stats is a pool's accounting.
type Stats struct {
	Bytes   [NumPurposes]int64 // mapped bytes (rounded up to the page size)
	Buffers [NumPurposes]int
}

// Total is the bytes held across purposes.
func (s Stats) Total() int64 {
	var t int64
	for _, b := range s.Bytes {
		t += b
	}
	return t
}

// Stats returns the pool's accounting.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Stats{Bytes: p.bytes, Buffers: p.buffers}
}

// SetRegistrar registers every live buffer with r and every later one at Alloc; nil
// unregisters them all from the previous registrar. On error no buffer stays registered with r.
func (p *Pool) SetRegistrar(r Registrar) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reg != nil {
		for b := range p.live {
			if err := p.reg.UnregisterHost(b.m); err != nil {
				return fmt.Errorf("cannot unregister pinned buffer of %d bytes: %w", len(b.m), err)
			}
		}
		p.reg = nil
	}
	if r == nil {
		return nil
	}
	var done []*Buffer
	for b := range p.live {
		if err := r.RegisterHost(b.m); err != nil {
			for _, d := range done {
				_ = r.UnregisterHost(d.m)
			}
			return fmt.Errorf("cannot register pinned buffer of %d bytes for DMA: %w", len(b.m), err)
		}
		done = append(done, b)
	}
	p.reg = r
	return nil
}

// Limit is the process's lock limit as Alloc sees it.
type Limit struct {
	Bytes      uint64 // RLIMIT_MEMLOCK soft limit; meaningless when Unlimited
	Unlimited  bool   // RLIM_INFINITY
	CapIPCLock bool   // CAP_IPC_LOCK is effective on this thread, which lifts the limit
	Locked     int64  // bytes locked by this process's pools
}

// ReadLimit reports RLIMIT_MEMLOCK, CAP_IPC_LOCK and what is locked, for diagnostics.
func ReadLimit() (Limit, error) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &rl); err != nil {
		return Limit{}, fmt.Errorf("cannot read RLIMIT_MEMLOCK: %w", err)
	}
	return Limit{Bytes: rl.Cur, Unlimited: rl.Cur == unix.RLIM_INFINITY, CapIPCLock: hasIPCLock(), Locked: Locked()}, nil
}

// CheckLimit returns an error if locking need more bytes would exceed RLIMIT_MEMLOCK, given
// what this process has locked already. A process with CAP_IPC_LOCK has no limit.
func CheckLimit(need int64) error {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &rl); err != nil {
		return fmt.Errorf("cannot read RLIMIT_MEMLOCK: %w", err)
	}
	if rl.Cur == unix.RLIM_INFINITY || hasIPCLock() {
		return nil
	}
	have := Locked()
	if uint64(have)+uint64(need) <= rl.Cur {
		return nil
	}
	return fmt.Errorf("cannot lock %s of host memory: %w: RLIMIT_MEMLOCK is %s, %s already locked; run with `ulimit -l unlimited`, set `memlock unlimited` in /etc/security/limits.conf (LimitMEMLOCK=infinity for systemd, --ulimit memlock=-1 for docker), or grant CAP_IPC_LOCK",
		size(need), ErrLimit, size(int64(rl.Cur)), size(have))
}

func hasIPCLock() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	const bit = unix.CAP_IPC_LOCK
	return data[bit/32].Effective&(1<<(bit%32)) != 0
}

func size(b int64) string {
	switch {
	case b >= 1<<30 && b%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", b>>30)
	case b >= 1<<20 && b%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", b>>20)
	case b >= 1<<10 && b%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", b>>10)
	}
	return fmt.Sprintf("%d bytes", b)
}

// Alloc maps, locks and pre-faults a buffer of bytes bytes for purpose. Control path: takes
// time proportional to bytes (the kernel zeroes and locks every page), allocates.
func (p *Pool) Alloc(bytes int64, purpose Purpose) (*Buffer, error) {
	if bytes <= 0 || bytes > MaxBytes {
		return nil, fmt.Errorf("cannot allocate %d pinned bytes: size must be 1 to %d", bytes, int64(MaxBytes))
	}
	if purpose >= NumPurposes {
		return nil, fmt.Errorf("cannot allocate pinned bytes for %v: unknown purpose", purpose)
	}
	gran := int64(unix.Getpagesize())
	if p.cfg.Huge != HugeNone {
		gran = hugePage
	}
	n := (bytes + gran - 1) / gran * gran
	if !p.cfg.SkipLimitCheck {
		if err := CheckLimit(n); err != nil {
			return nil, err
		}
	}
	flags := unix.MAP_PRIVATE | unix.MAP_ANONYMOUS
	if p.cfg.Huge == HugeTLB {
		flags |= unix.MAP_HUGETLB
	}
	m, err := unix.Mmap(-1, 0, int(n), unix.PROT_READ|unix.PROT_WRITE, flags)
	if err != nil {
		if p.cfg.Huge == HugeTLB {
			return nil, fmt.Errorf("cannot map %s of huge pages: %w; reserve them with `sysctl vm.nr_hugepages=%d` or use transparent huge pages", size(n), err, n/hugePage)
		}
		return nil, fmt.Errorf("cannot map %s of host memory: %w", size(n), err)
	}
	if p.cfg.Huge == HugeTransparent {
		// Best effort: without THP the mapping still works with 4 KiB pages.
		_ = unix.Madvise(m, unix.MADV_HUGEPAGE)
	}
	// mlock faults every page in and keeps it resident: the pre-fault.
	if err := unix.Mlock(m); err != nil {
		_ = unix.Munmap(m)
		return nil, fmt.Errorf("cannot lock %s of host memory: %w (%w); run with `ulimit -l unlimited` or grant CAP_IPC_LOCK", size(n), ErrLimit, err)
	}
	b := &Buffer{pool: p, purpose: purpose, b: m[:bytes:bytes], m: m}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reg != nil {
		if err := p.reg.RegisterHost(m); err != nil {
			_ = unix.Munlock(m)
			_ = unix.Munmap(m)
			return nil, fmt.Errorf("cannot register %s pinned buffer for DMA: %w", size(n), err)
		}
	}
	p.live[b] = struct{}{}
	p.bytes[purpose] += n
	p.buffers[purpose]++
	locked.Add(n)
	return b, nil
}

// Free unregisters, unlocks and releases the buffer. Under the invariants build tag it poisons
// the range instead of unmapping it: the memory is dropped (MADV_DONTNEED) but the addresses
// stay reserved with no access (PROT_NONE), so any later read or write through a kept slice
// faults, and the address is never handed out again to alias a later buffer. A second Free
// returns ErrFreed.
func (b *Buffer) Free() error {
	p := b.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	if b.freed {
		return fmt.Errorf("cannot free pinned buffer of %d bytes: %w", len(b.m), ErrFreed)
	}
	if p.reg != nil {
		if err := p.reg.UnregisterHost(b.m); err != nil {
			return fmt.Errorf("cannot unregister pinned buffer of %d bytes: %w", len(b.m), err)
		}
	}
	b.freed = true
	delete(p.live, b)
	n := int64(len(b.m))
	p.bytes[b.purpose] -= n
	p.buffers[b.purpose]--
	locked.Add(-n)
	m := b.m
	b.b, b.m = nil, nil
	if err := unix.Munlock(m); err != nil {
		panic(fmt.Sprintf("BUG: pinned: munlock of %d bytes at %p: %v", len(m), &m[0], err))
	}
	if invariants.Enabled {
		// Keep the address range, drop the memory, forbid access.
		if err := unix.Mprotect(m, unix.PROT_NONE); err != nil {
			panic(fmt.Sprintf("BUG: pinned: mprotect of %d bytes: %v", len(m), err))
		}
		_ = unix.Madvise(m, unix.MADV_DONTNEED)
		return nil
	}
	if err := unix.Munmap(m); err != nil {
		panic(fmt.Sprintf("BUG: pinned: munmap of %d bytes: %v", len(m), err))
	}
	return nil
}
