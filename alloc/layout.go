package alloc

import (
	"cmp"
	"fmt"
	"slices"
)

// MaxTensors bounds the tensors of one model's layout (the largest zoo model, densenet201, has
// about 600 weight tensors).
const MaxTensors = 1 << 16

// Tensor is one weight tensor to place.
type Tensor struct {
	Name  string
	Bytes int64
	// Align is the start alignment in bytes; 0 means DefaultAlign. A power of two.
	Align int64
}

// DefaultAlign is the alignment of a tensor that asks for none: 256 bytes, what cuBLAS and
// cuDNN want for their fastest paths.
const DefaultAlign = 256

// Placement is where one tensor lives: layout page Page (an index into the model's pages, not
// a cache page), at byte Offset in it. A tensor larger than a page starts at offset 0 of the
// first page of its Run and continues through the run's contiguous pages.
type Placement struct {
	Page   int
	Offset int64
}

// Layout is a model's weights placed in pages. Build one with NewLayout (paged) or
// NewPackedLayout (packed).
//
// Paged (DESIGN.md §6): no tensor spans a page boundary, so each page can sit anywhere in the
// cache, except a tensor larger than a page, which gets a run of ceil(bytes/page) pages of its
// own that the cache keeps physically contiguous (Run); small tensors fill the run's last page
// like any other. Refusing such models with an error naming the page size they need was
// rejected: VGG's fc6 (411 MB) would need 512 MiB pages, wasting most of every smaller model's
// last page. Tensors are placed first fit decreasing (runs first). Measured on the zoo
// (docs/alloc.md): 8.4% of page bytes wasted at 16 MiB, 5.3% at 4 MiB; about half of it is
// each model's partly filled last page, the rest tensors just over half a page that cannot
// share one (ViT's 9.4 MB MLP weights: 24 pages where 21 would hold the bytes). Runs cost
// fragmentation: a cache with enough free pages refuses a load whose run finds no free stretch
// (ErrFragmented), about 9% of loads under LRU churn of the zoo on an 80 GB cache.
//
// Packed: tensors back to back, spanning pages; the waste is only each model's last page
// (4.9% at 16 MiB, 1.4% at 4 MiB), and there are no runs, so no fragmentation, but the backend
// must map the model's pages into one contiguous virtual range (cuda's VMM API).
type Layout struct {
	PageSize int64
	// Packed is set by NewPackedLayout: tensors may span page boundaries, so the model's pages
	// must be mapped into one contiguous virtual range before use, and Runs is empty.
	Packed     bool
	Pages      int         // pages the model needs
	Runs       []Run       // contiguous runs, by First
	Placements []Placement // one per tensor, in the order given to NewLayout
	Bytes      int64       // sum of tensor sizes
	// Waste is Pages*PageSize - Bytes: alignment padding plus unused page tails.
	Waste int64
}

// NewLayout packs tensors into pages of pageSize bytes. It fails on bad input (a tensor of
// size ≤ 0, an alignment that is not a power of two or exceeds the page, too many tensors),
// never panics. Control path (model registration): allocates.
func NewLayout(pageSize int64, tensors []Tensor) (*Layout, error) {
	if pageSize < 4096 || pageSize%4096 != 0 {
		return nil, fmt.Errorf("cannot lay out weights in pages of %d bytes: %w; use a positive multiple of 4096", pageSize, ErrConfig)
	}
	if err := checkTensors(pageSize, tensors); err != nil {
		return nil, err
	}
	l := &Layout{PageSize: pageSize, Placements: make([]Placement, len(tensors))}
	order := make([]int, len(tensors))
	for i, t := range tensors {
		l.Bytes += t.Bytes
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(tensors[b].Bytes, tensors[a].Bytes) })
	// used[p] is the first free byte of layout page p.
	var used []int64
	for _, i := range order {
		t := tensors[i]
		if t.Bytes > pageSize {
			k := int((t.Bytes + pageSize - 1) / pageSize)
			first := len(used)
			for range k - 1 {
				used = append(used, pageSize)
			}
			used = append(used, t.Bytes-int64(k-1)*pageSize)
			l.Runs = append(l.Runs, Run{First: first, Pages: k})
			l.Placements[i] = Placement{Page: first}
			continue
		}
		a := align(t)
		placed := false
		for p, u := range used {
			off := (u + a - 1) &^ (a - 1)
			if off+t.Bytes <= pageSize {
				used[p] = off + t.Bytes
				l.Placements[i] = Placement{Page: p, Offset: off}
				placed = true
				break
			}
		}
		if !placed {
			l.Placements[i] = Placement{Page: len(used)}
			used = append(used, t.Bytes)
		}
	}
	l.Pages = len(used)
	l.Waste = int64(l.Pages)*pageSize - l.Bytes
	return l, nil
}

// NewPackedLayout packs tensors back to back, in decreasing size so that alignment padding is
// rare, letting them span page boundaries: the waste is only the last page's tail and the
// padding. It is for backends that map a model's pages into one contiguous virtual address
// range whatever physical pages the cache chose (cuda with the VMM API, DESIGN.md §7); such a
// backend passes no runs to Cache.Load, so packed layouts never fragment the cache. Control
// path: allocates.
func NewPackedLayout(pageSize int64, tensors []Tensor) (*Layout, error) {
	l, err := NewLayout(pageSize, nil)
	if err != nil {
		return nil, err
	}
	if err := checkTensors(pageSize, tensors); err != nil {
		return nil, err
	}
	l.Packed = true
	l.Placements = make([]Placement, len(tensors))
	order := make([]int, len(tensors))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(tensors[b].Bytes, tensors[a].Bytes) })
	var at int64
	for _, i := range order {
		a := align(tensors[i])
		at = (at + a - 1) &^ (a - 1)
		l.Placements[i] = Placement{Page: int(at / pageSize), Offset: at % pageSize}
		at += tensors[i].Bytes
		l.Bytes += tensors[i].Bytes
	}
	l.Pages = int((at + pageSize - 1) / pageSize)
	l.Waste = int64(l.Pages)*pageSize - l.Bytes
	return l, nil
}

func align(t Tensor) int64 {
	if t.Align == 0 {
		return DefaultAlign
	}
	return t.Align
}

// checkTensors rejects sizes ≤ 0, bad alignments and totals that overflow.
func checkTensors(pageSize int64, tensors []Tensor) error {
	if len(tensors) > MaxTensors {
		return fmt.Errorf("cannot lay out %d tensors: %w; at most %d", len(tensors), ErrConfig, MaxTensors)
	}
	var sum int64
	for i, t := range tensors {
		a := align(t)
		if t.Bytes <= 0 {
			return fmt.Errorf("cannot lay out tensor %d %q: size %d: %w; sizes must be positive", i, t.Name, t.Bytes, ErrConfig)
		}
		if a < 0 || a&(a-1) != 0 || a > pageSize {
			return fmt.Errorf("cannot lay out tensor %d %q: alignment %d: %w; use a power of two ≤ the page size %d", i, t.Name, a, ErrConfig, pageSize)
		}
		if t.Bytes > (1<<62)-sum-a*int64(len(tensors)) {
			return fmt.Errorf("cannot lay out tensor %d %q: total size overflows: %w", i, t.Name, ErrConfig)
		}
		sum += t.Bytes
	}
	return nil
}

// Check verifies that no two tensors overlap, every tensor is aligned and inside its page (or
// its run), and the counts add up. Tests call it on every layout they build.
func (l *Layout) Check(tensors []Tensor) error {
	if len(tensors) != len(l.Placements) {
		return fmt.Errorf("BUG: %d placements for %d tensors", len(l.Placements), len(tensors))
	}
	type span struct{ start, end int64 }
	spans := make([]span, len(tensors))
	var sum int64
	for i, t := range tensors {
		p := l.Placements[i]
		a := align(t)
		if p.Page < 0 || p.Page >= l.Pages || p.Offset < 0 || p.Offset%a != 0 {
			return fmt.Errorf("BUG: tensor %d %q placed at %+v", i, t.Name, p)
		}
		start := int64(p.Page)*l.PageSize + p.Offset
		end := start + t.Bytes
		if l.Packed {
			if end > int64(l.Pages)*l.PageSize {
				return fmt.Errorf("BUG: tensor %d %q at %+v ends past the last page", i, t.Name, p)
			}
		} else if t.Bytes > l.PageSize {
			in := false
			for _, r := range l.Runs {
				if r.First == p.Page && p.Offset == 0 && end <= int64(r.First+r.Pages)*l.PageSize {
					in = true
				}
			}
			if !in {
				return fmt.Errorf("BUG: large tensor %d %q at %+v is not in a run", i, t.Name, p)
			}
		} else if p.Offset+t.Bytes > l.PageSize {
			return fmt.Errorf("BUG: tensor %d %q at %+v spans a page boundary", i, t.Name, p)
		}
		spans[i] = span{start, end}
		sum += t.Bytes
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	for i := 1; i < len(spans); i++ {
		if spans[i].start < spans[i-1].end {
			return fmt.Errorf("BUG: tensors overlap at byte %d", spans[i].start)
		}
	}
	if sum != l.Bytes || l.Waste != int64(l.Pages)*l.PageSize-l.Bytes {
		return fmt.Errorf("BUG: bytes %d (sum %d), waste %d for %d pages", l.Bytes, sum, l.Waste, l.Pages)
	}
	return nil
}
