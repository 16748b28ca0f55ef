package alloc

import (
	"errors"
	"testing"
)

func TestRegion(t *testing.T) {
	const mib = 1 << 20
	r, err := NewRegion(RegionConfig{Base: 1 << 40, Size: 100 * mib, IOBytes: 3*mib + 1, WorkspaceBytes: 8 * mib, PageSize: 16 * mib})
	if err != nil {
		t.Fatal(err)
	}
	// Arenas take 11 MiB + 256; the cache starts at 16 MiB and holds 5 whole pages (16..96).
	if r.IO.Size() != 3*mib+256 || r.Workspace.Size() != 8*mib || r.Cache.TotalPages() != 5 || r.Cache.PageAddr(0) != 1<<40+16*mib {
		t.Fatalf("io %d ws %d pages %d first page %#x", r.IO.Size(), r.Workspace.Size(), r.Cache.TotalPages(), r.Cache.PageAddr(0))
	}
	w, err := r.Workspace.Alloc(8 * mib)
	if err != nil || w.Addr != 1<<40+3*mib+256 {
		t.Fatalf("workspace buffer %v, %v", w, err)
	}
	if _, err := NewRegion(RegionConfig{Size: 32 * mib, IOBytes: 17 * mib}); !errors.Is(err, ErrConfig) {
		t.Fatalf("arenas leaving no page: %v", err)
	}
}
