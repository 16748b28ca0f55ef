package alloc

import "fmt"

// RegionConfig splits one GPU's region (device.Info.Base and Size) into the three parts.
type RegionConfig struct {
	Base uint64
	Size int64
	// IOBytes and WorkspaceBytes size the arenas at the bottom of the region; the rest is
	// cut into pages. Both are rounded up to ArenaAlign.
	IOBytes, WorkspaceBytes int64
	// MaxIOBufs and MaxWorkspaceBufs bound the live buffers of each arena (0: 64).
	MaxIOBufs, MaxWorkspaceBufs int
	// PageSize: 0 means DefaultPageSize.
	PageSize int64
}

// Region is one GPU's memory, split as DESIGN.md §6 lays it out:
//
//	Base           +IOBytes          +WorkspaceBytes                     Base+Size
//	| IO arena      | workspace arena | weights cache: whole pages ... | tail |
//
// The weights cache starts at the first page-aligned offset (relative to Base) after the
// arenas; a tail shorter than a page is left unused.
type Region struct {
	IO, Workspace *Arena
	Cache         *Cache
}

// NewRegion splits the region. It fails, naming the sizes and the fix, when the arenas leave
// no room for a page. Control path: allocates the bookkeeping.
func NewRegion(cfg RegionConfig) (*Region, error) {
	ps := cfg.PageSize
	if ps == 0 {
		ps = DefaultPageSize
	}
	if cfg.IOBytes < 0 || cfg.WorkspaceBytes < 0 || cfg.Size < 0 {
		return nil, fmt.Errorf("cannot split region: size %d, IO %d, workspace %d: %w; sizes must be non-negative", cfg.Size, cfg.IOBytes, cfg.WorkspaceBytes, ErrConfig)
	}
	io := (cfg.IOBytes + ArenaAlign - 1) &^ (ArenaAlign - 1)
	ws := (cfg.WorkspaceBytes + ArenaAlign - 1) &^ (ArenaAlign - 1)
	cacheOff := (io + ws + ps - 1) / ps * ps
	if cacheOff > cfg.Size-ps {
		return nil, fmt.Errorf("cannot split a region of %d bytes: IO %d + workspace %d leave less than one %d-byte page: %w; lower the arenas, use smaller pages or give a larger region", cfg.Size, io, ws, ps, ErrConfig)
	}
	r := &Region{}
	var err error
	if r.IO, err = NewArena(ArenaConfig{Name: "io", Base: cfg.Base, Size: io, MaxBufs: cfg.MaxIOBufs}); err != nil {
		return nil, err
	}
	if r.Workspace, err = NewArena(ArenaConfig{Name: "workspace", Base: cfg.Base + uint64(io), Size: ws, MaxBufs: cfg.MaxWorkspaceBufs}); err != nil {
		return nil, err
	}
	size := (cfg.Size - cacheOff) / ps * ps
	if r.Cache, err = NewCache(CacheConfig{Base: cfg.Base + uint64(cacheOff), Size: size, PageSize: ps}); err != nil {
		return nil, err
	}
	return r, nil
}
