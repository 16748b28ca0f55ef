package alloc

import (
	"fmt"
	"math"
	"strings"

	"github.com/clockwork-go/clockwork/internal/invariants"
)

// DefaultPageSize is the weights cache page size Clockwork uses: 16 MiB. It is large enough that
// a LOAD copies few pages (a 102 MB ResNet-50 is 7 pages, 1.9 ms on an H100) and small enough
// that the zoo wastes little in partly filled last pages (docs/alloc.md has the figures).
const DefaultPageSize = 16 << 20

// MaxPages bounds a cache's page count so page indices fit the handle and the bookkeeping
// arrays stay small (1<<24 pages of 16 MiB is 256 TiB).
const MaxPages = 1 << 24

// ModelID names a model in the cache; it is the wire's ModelID.
type ModelID uint32

// Page is a handle to one page allocated with Cache.Alloc. It is a small value: copy it freely.
// Its generation changes when the page is freed, so a handle kept past Free is detected
// (ErrStale) rather than silently aliasing the page's next owner. The zero Page is invalid.
type Page struct {
	idx uint32
	gen uint32
}

// Index is the page's position in the cache, 0 ≤ Index < TotalPages.
func (p Page) Index() int { return int(p.idx) }

func (p Page) String() string { return fmt.Sprintf("page(%d/g%d)", p.idx, p.gen) }

// Run asks that the layout pages First .. First+Pages-1 of a model be physically contiguous,
// because one tensor larger than a page spans them (Layout.Runs).
type Run struct {
	First, Pages int
}

// Residency is a handle to a model's pages, returned by Load. It goes stale when the model is
// evicted, even if the same model is loaded again later: an INFER planned against one LOAD
// cannot run on the pages of another. The zero Residency is invalid.
type Residency struct {
	Model ModelID
	slot  int32
	gen   uint32
}

// CacheConfig describes the region the weights cache manages.
type CacheConfig struct {
	// Base and Size bound the region [Base, Base+Size), in the backend's address space.
	Base uint64
	Size int64
	// PageSize is the page size in bytes; 0 means DefaultPageSize. It must be a positive
	// multiple of 4096 (the cuda backend maps pages with its VMM at 2 MiB granularity, so
	// multiples of 2 MiB are what it accepts).
	PageSize int64
}

// Validate reports a configuration that cannot work, naming the fix.
func (c CacheConfig) Validate() error {
	ps := c.PageSize
	if ps == 0 {
		ps = DefaultPageSize
	}
	if ps < 4096 || ps%4096 != 0 {
		return fmt.Errorf("cannot use page size %d: %w; use a positive multiple of 4096 bytes (default %d)", ps, ErrConfig, DefaultPageSize)
	}
	if c.Size < ps {
		return fmt.Errorf("cannot split a region of %d bytes into %d-byte pages: %w; give a larger region or a smaller page size", c.Size, ps, ErrConfig)
	}
	if c.Size/ps > MaxPages {
		return fmt.Errorf("cannot split a region of %d bytes into %d pages of %d bytes: %w; at most %d pages, use a larger page size", c.Size, c.Size/ps, ps, ErrConfig, MaxPages)
	}
	if c.Base > math.MaxUint64-uint64(c.Size) {
		return fmt.Errorf("cannot use region base %#x size %d: %w; it wraps the address space", c.Base, c.Size, ErrConfig)
	}
	return nil
}

const (
	ownerFree = -1 // page is on the free stack
	ownerRaw  = -2 // page is held through a Page handle from Alloc
	ownerLoad = -3 // page taken for a run by a Load in progress
)

// Cache is the weights page cache of one GPU: a device region split into fixed pages that
// hold models' weights. It is bookkeeping only; it never touches device memory.
//
// The controller decides what is resident (DESIGN.md §6): the worker calls Load and Evict when
// told, never evicts on its own, and a Load that does not fit fails with ErrNoSpace naming the
// pages needed and free. While an INFER runs on a model its residency is pinned (Pin/Unpin) and
// Evict fails with ErrPinned.
//
// # Invariants
//
// Checked by Check (and after every operation in the fuzz test):
//
//  1. Every page has exactly one owner: the free stack, one Alloc handle, or one loaded model.
//  2. used + free = total, where used counts Alloc'd pages and every loaded model's pages.
//  3. A pinned model is loaded; Evict of a pinned model fails and changes nothing.
//  4. A page's generation changes every time it is freed, so a Page or Residency handle taken
//     before the free is rejected with ErrStale afterwards.
//  5. The LRU list holds exactly the loaded models, most recently loaded or pinned first.
//  6. Pages of a Run are physically contiguous and in layout order.
//
// # Path
//
// Alloc pops the free stack and Free pushes it: O(1), no allocation. Load takes the runs first
// (best fit: the shortest free stretch of pages that is long enough, one scan of the page
// table, O(pages)), then single pages from the free stack, records the model's pages in layout
// order as a chain through the page table, and puts the model at the head of the LRU list.
// Evict walks the chain back onto the free stack.
//
// Alternatives rejected: a buddy allocator (power-of-two runs would waste up to half of a
// VGG's 25-page run); keeping per-model page slices (an allocation per Load; the chain through
// the page table costs nothing); evicting on the worker when a Load does not fit (the
// controller plans with its own copy of the cache, DESIGN.md §6, so the worker must not
// diverge from it).
//
// # Concurrency
//
// A Cache is not safe for concurrent use. The worker keeps one per GPU behind its own mutex;
// no method blocks, so the lock is held for the bookkeeping only.
type Cache struct {
	base     uint64
	pageSize int64

	gen     []uint32 // per page; bumped when the page is freed
	owner   []int32  // per page: ownerFree, ownerRaw or a model slot
	next    []int32  // per page: the next page of its model in layout order, -1 at the end
	free    []int32  // stack of free page indices
	freePos []int32  // per page: its position in free, or -1
	scratch []int32  // Load: layout index → page, len = total pages
	raw     int      // pages held through Alloc

	models    []modelEntry
	freeSlots []int32
	byID      map[ModelID]int32
	lruHead   int32 // most recently used
	lruTail   int32
	loaded    int
}

type modelEntry struct {
	id          ModelID
	gen         uint32 // bumped on evict; 0 never used
	live        bool
	first       int32 // first page in layout order
	pages       int32
	pins        int32
	prev, lnext int32 // LRU list
}

// NewCache returns a cache over the region with every page free.
// Control path: allocates O(pages) bookkeeping.
func NewCache(cfg CacheConfig) (*Cache, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.PageSize == 0 {
		cfg.PageSize = DefaultPageSize
	}
	n := int(cfg.Size / cfg.PageSize)
	c := &Cache{
		base:     cfg.Base,
		pageSize: cfg.PageSize,
		gen:      make([]uint32, n),
		owner:    make([]int32, n),
		next:     make([]int32, n),
		free:     make([]int32, n),
		freePos:  make([]int32, n),
		scratch:  make([]int32, n),
		byID:     make(map[ModelID]int32),
		lruHead:  -1,
		lruTail:  -1,
	}
	for i := range n {
		c.gen[i] = 1
		c.owner[i] = ownerFree
		c.next[i] = -1
		// Pop order is page 0 first, which keeps early loads at the bottom of the region.
		c.free[i] = int32(n - 1 - i)
		c.freePos[n-1-i] = int32(i)
	}
	return c, nil
}

// PageSize is the page size in bytes.
func (c *Cache) PageSize() int64 { return c.pageSize }

// TotalPages is the number of pages in the region.
func (c *Cache) TotalPages() int { return len(c.gen) }

// FreePages is the number of pages neither allocated nor holding a model.
func (c *Cache) FreePages() int { return len(c.free) }

// PageAddr is the device address of page index i (0 ≤ i < TotalPages).
func (c *Cache) PageAddr(i int) uint64 { return c.base + uint64(i)*uint64(c.pageSize) }

// Alloc takes one free page and returns its handle, or ErrNoSpace.
//
// Timing: any thread holding the cache; O(1), does not allocate; target < 50 ns.
func (c *Cache) Alloc() (Page, error) {
	if len(c.free) == 0 {
		return Page{}, fmt.Errorf("cannot allocate page: %w: 0 of %d pages free; evict a model", ErrNoSpace, len(c.gen))
	}
	i := c.pop()
	c.owner[i] = ownerRaw
	c.raw++
	return Page{idx: uint32(i), gen: c.gen[i]}, nil
}

// Free returns a page taken with Alloc. A stale or foreign handle returns ErrStale and changes
// nothing.
//
// Timing: any thread holding the cache; O(1), does not allocate (the error path does).
func (c *Cache) Free(p Page) error {
	if err := c.checkRaw(p); err != nil {
		return fmt.Errorf("cannot free %v: %w", p, err)
	}
	c.raw--
	c.release(int32(p.idx))
	return nil
}

// Addr is the device address of an allocated page, or ErrStale.
//
// Timing: any thread holding the cache; O(1), does not allocate (the error path does).
func (c *Cache) Addr(p Page) (uint64, error) {
	if err := c.checkRaw(p); err != nil {
		return 0, fmt.Errorf("cannot address %v: %w", p, err)
	}
	return c.PageAddr(int(p.idx)), nil
}

func (c *Cache) checkRaw(p Page) error {
	if int(p.idx) >= len(c.gen) || p.gen == 0 || c.gen[p.idx] != p.gen || c.owner[p.idx] != ownerRaw {
		return ErrStale
	}
	return nil
}

// pop takes the top of the free stack.
func (c *Cache) pop() int32 {
	k := len(c.free) - 1
	i := c.free[k]
	c.free = c.free[:k]
	c.freePos[i] = -1
	return i
}

// take removes page i, which must be free, from anywhere in the free stack.
func (c *Cache) take(i int32) {
	pos := c.freePos[i]
	if pos < 0 {
		panic(fmt.Sprintf("BUG: alloc: take of page %d which is not free (owner %d)", i, c.owner[i]))
	}
	k := int32(len(c.free) - 1)
	last := c.free[k]
	c.free[pos] = last
	c.freePos[last] = pos
	c.free = c.free[:k]
	c.freePos[i] = -1
}

// release puts page i back on the free stack with a new generation.
func (c *Cache) release(i int32) {
	g := c.gen[i] + 1
	if g == 0 {
		g = 1
	}
	c.gen[i] = g
	c.owner[i] = ownerFree
	c.next[i] = -1
	c.freePos[i] = int32(len(c.free))
	c.free = append(c.free, i)
}

// Load gives model id pages pages, of which the runs must be contiguous (Layout.Runs), and
// makes it the most recently used model. It fails, changing nothing, with ErrLoaded if the
// model is resident, ErrNoSpace if fewer than pages pages are free, ErrFragmented if a run
// finds no long enough stretch of free pages, and ErrConfig for runs outside [0, pages) or
// overlapping.
//
// Control path (LOAD thread): O(pages) with runs, O(model pages) without; allocates only when
// the model table grows.
func (c *Cache) Load(id ModelID, pages int, runs []Run) (Residency, error) {
	if _, ok := c.byID[id]; ok {
		return Residency{}, fmt.Errorf("cannot load model %d: %w; evict it first", id, ErrLoaded)
	}
	if pages <= 0 || pages > len(c.gen) {
		if pages > len(c.gen) {
			return Residency{}, fmt.Errorf("cannot load model %d: %w: needs %d pages, cache has %d in all; give the cache a larger region", id, ErrNoSpace, pages, len(c.gen))
		}
		return Residency{}, fmt.Errorf("cannot load model %d with %d pages: %w; a model has at least one page", id, pages, ErrConfig)
	}
	if pages > len(c.free) {
		return Residency{}, fmt.Errorf("cannot load model %d: %w: needs %d pages, %d free; evict %d pages first", id, ErrNoSpace, pages, len(c.free), pages-len(c.free))
	}
	lay := c.scratch[:pages]
	for i := range lay {
		lay[i] = -1
	}
	for _, r := range runs {
		if r.Pages < 1 || r.First < 0 || r.First+r.Pages > pages {
			return Residency{}, fmt.Errorf("cannot load model %d: run %+v outside its %d pages: %w", id, r, pages, ErrConfig)
		}
		for j := r.First; j < r.First+r.Pages; j++ {
			if lay[j] != -1 {
				return Residency{}, fmt.Errorf("cannot load model %d: run %+v overlaps another run: %w", id, r, ErrConfig)
			}
			lay[j] = -2
		}
	}
	// Runs first, longest first would be better for fragmentation, but layouts put a model's
	// runs in tensor order and models with more than one run are rare (VGG: 3, two of them
	// short); best fit per run in the given order.
	for ri, r := range runs {
		start, longest := c.bestFit(r.Pages)
		if start < 0 {
			c.undoRuns(lay, runs[:ri])
			return Residency{}, fmt.Errorf("cannot load model %d: %w: a tensor needs %d contiguous pages, the longest free run is %d (%d pages free); evict models next to free runs, or use packed layouts on a backend that maps pages virtually", id, ErrFragmented, r.Pages, longest, len(c.free))
		}
		for j := range r.Pages {
			p := int32(start + j)
			c.take(p)
			c.owner[p] = ownerLoad
			lay[r.First+j] = p
		}
	}
	for j := range lay {
		if lay[j] == -2 || lay[j] == -1 {
			lay[j] = c.pop()
		}
	}
	slot := c.newSlot(id)
	m := &c.models[slot]
	m.first = lay[0]
	m.pages = int32(pages)
	for j, p := range lay {
		c.owner[p] = slot
		if j+1 < len(lay) {
			c.next[p] = lay[j+1]
		} else {
			c.next[p] = -1
		}
	}
	c.lruPushFront(slot)
	c.loaded++
	c.mustCheck()
	return Residency{Model: id, slot: slot, gen: m.gen}, nil
}

// undoRuns returns the pages of runs already taken by a failed Load.
func (c *Cache) undoRuns(lay []int32, runs []Run) {
	for _, r := range runs {
		for j := r.First; j < r.First+r.Pages; j++ {
			p := lay[j]
			// Never handed out: no new generation needed, but release is harmless.
			c.owner[p] = ownerFree
			c.freePos[p] = int32(len(c.free))
			c.free = append(c.free, p)
		}
	}
}

// bestFit returns the start of the shortest stretch of at least k free pages, or -1, and the
// longest free stretch seen.
func (c *Cache) bestFit(k int) (start, longest int) {
	start = -1
	best := math.MaxInt
	n := len(c.owner)
	for i := 0; i < n; {
		if c.owner[i] != ownerFree {
			i++
			continue
		}
		j := i
		for j < n && c.owner[j] == ownerFree {
			j++
		}
		l := j - i
		longest = max(longest, l)
		if l >= k && l < best {
			best, start = l, i
		}
		i = j
	}
	return start, longest
}

func (c *Cache) newSlot(id ModelID) int32 {
	var s int32
	if k := len(c.freeSlots); k > 0 {
		s = c.freeSlots[k-1]
		c.freeSlots = c.freeSlots[:k-1]
	} else {
		s = int32(len(c.models))
		c.models = append(c.models, modelEntry{})
	}
	m := &c.models[s]
	g := m.gen + 1
	if g == 0 {
		g = 1
	}
	*m = modelEntry{id: id, gen: g, live: true, prev: -1, lnext: -1}
	c.byID[id] = s
	return s
}

// Resident returns the residency of a loaded model.
//
// Timing: any thread holding the cache; a map lookup, does not allocate.
func (c *Cache) Resident(id ModelID) (Residency, bool) {
	s, ok := c.byID[id]
	if !ok {
		return Residency{}, false
	}
	return Residency{Model: id, slot: s, gen: c.models[s].gen}, true
}

// Evict frees a model's pages. It fails, changing nothing, with ErrNotLoaded or ErrPinned.
//
// Control path (LOAD thread): O(model pages), does not allocate on success.
func (c *Cache) Evict(id ModelID) error {
	s, ok := c.byID[id]
	if !ok {
		return fmt.Errorf("cannot evict model %d: %w", id, ErrNotLoaded)
	}
	m := &c.models[s]
	if m.pins > 0 {
		return fmt.Errorf("cannot evict model %d: %w (%d infers); evict after they finish", id, ErrPinned, m.pins)
	}
	for p := m.first; p >= 0; {
		nx := c.next[p]
		if c.owner[p] != s {
			panic(fmt.Sprintf("BUG: alloc: page %d in model %d's chain is owned by %d", p, id, c.owner[p]))
		}
		c.release(p)
		p = nx
	}
	c.lruRemove(s)
	g := m.gen + 1
	if g == 0 {
		g = 1
	}
	*m = modelEntry{gen: g, prev: -1, lnext: -1}
	delete(c.byID, id)
	c.freeSlots = append(c.freeSlots, s)
	c.loaded--
	c.mustCheck()
	return nil
}

func (c *Cache) entry(r Residency) (*modelEntry, error) {
	if r.gen == 0 || r.slot < 0 || int(r.slot) >= len(c.models) {
		return nil, ErrStale
	}
	m := &c.models[r.slot]
	if !m.live || m.gen != r.gen || m.id != r.Model {
		return nil, ErrStale
	}
	return m, nil
}

// Pin marks the model's pages in use by an INFER, so Evict fails until the matching Unpin, and
// makes it the most recently used model. Pins nest.
//
// Timing: exec thread holding the cache; O(1), does not allocate (the error path does).
func (c *Cache) Pin(r Residency) error {
	m, err := c.entry(r)
	if err != nil {
		return fmt.Errorf("cannot pin model %d: %w; the residency is from a load that was evicted (or never made)", r.Model, err)
	}
	m.pins++
	c.lruRemove(r.slot)
	c.lruPushFront(r.slot)
	return nil
}

// Unpin undoes one Pin.
//
// Timing: exec thread holding the cache; O(1), does not allocate (the error path does).
func (c *Cache) Unpin(r Residency) error {
	m, err := c.entry(r)
	if err != nil {
		return fmt.Errorf("cannot unpin model %d: %w", r.Model, err)
	}
	if m.pins == 0 {
		return fmt.Errorf("cannot unpin model %d: %w", r.Model, ErrNotPinned)
	}
	m.pins--
	return nil
}

// AppendAddrs appends the device addresses of a resident model's pages, in layout order, to
// dst: the pages argument of device.Program.Run. It allocates only if dst is too short.
//
// Timing: exec thread holding the cache; O(model pages).
func (c *Cache) AppendAddrs(dst []uint64, r Residency) ([]uint64, error) {
	m, err := c.entry(r)
	if err != nil {
		return dst, fmt.Errorf("cannot address model %d: %w", r.Model, err)
	}
	for p := m.first; p >= 0; p = c.next[p] {
		dst = append(dst, c.PageAddr(int(p)))
	}
	return dst, nil
}

func (c *Cache) lruPushFront(s int32) {
	m := &c.models[s]
	m.prev = -1
	m.lnext = c.lruHead
	if c.lruHead >= 0 {
		c.models[c.lruHead].prev = s
	} else {
		c.lruTail = s
	}
	c.lruHead = s
}

func (c *Cache) lruRemove(s int32) {
	m := &c.models[s]
	if m.prev >= 0 {
		c.models[m.prev].lnext = m.lnext
	} else {
		c.lruHead = m.lnext
	}
	if m.lnext >= 0 {
		c.models[m.lnext].prev = m.prev
	} else {
		c.lruTail = m.prev
	}
	m.prev, m.lnext = -1, -1
}

// LongestFreeRun is the length of the longest stretch of free pages: the longest run a Load
// can get now. For the state message, so a controller planning paged layouts can see
// fragmentation. Any thread holding the cache; O(pages), does not allocate.
func (c *Cache) LongestFreeRun() int {
	_, l := c.bestFit(math.MaxInt)
	return l
}

// ModelState is one loaded model in CacheState.
type ModelState struct {
	ID    ModelID
	Pages int
	Pins  int
}

// CacheState is the cache's state for the worker's state message.
type CacheState struct {
	TotalPages int
	FreePages  int
	AllocPages int // pages held through Alloc
	// Models are the loaded models, most recently used (loaded or pinned) first.
	Models []ModelState
}

// State fills st, reusing st.Models' backing array, so a caller that keeps one CacheState
// allocates only when more models are loaded than ever before.
//
// Timing: any thread holding the cache; O(models).
func (c *Cache) State(st *CacheState) {
	st.TotalPages = len(c.gen)
	st.FreePages = len(c.free)
	st.AllocPages = c.raw
	st.Models = st.Models[:0]
	for s := c.lruHead; s >= 0; s = c.models[s].lnext {
		m := &c.models[s]
		st.Models = append(st.Models, ModelState{ID: m.id, Pages: int(m.pages), Pins: int(m.pins)})
	}
}

// String prints the state on one line per model, for tests and debugging. It allocates.
func (c *Cache) String() string {
	var st CacheState
	c.State(&st)
	var b strings.Builder
	fmt.Fprintf(&b, "pages: %d total, %d free (longest run %d), %d alloc, %d in %d models\n", st.TotalPages, st.FreePages, c.LongestFreeRun(), st.AllocPages, st.TotalPages-st.FreePages-st.AllocPages, len(st.Models))
	for _, m := range st.Models {
		r, _ := c.Resident(m.ID)
		fmt.Fprintf(&b, "model %d: %d pages [%s]", m.ID, m.Pages, c.pageRanges(r))
		if m.Pins > 0 {
			fmt.Fprintf(&b, " pinned %d", m.Pins)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// pageRanges prints a model's page indices in layout order, runs collapsed: "0-3 7 9".
func (c *Cache) pageRanges(r Residency) string {
	m, err := c.entry(r)
	if err != nil {
		return "stale"
	}
	var b strings.Builder
	for p := m.first; p >= 0; {
		q := p
		for c.next[q] == q+1 {
			q = c.next[q]
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		if q == p {
			fmt.Fprintf(&b, "%d", p)
		} else {
			fmt.Fprintf(&b, "%d-%d", p, q)
		}
		p = c.next[q]
	}
	return b.String()
}

// mustCheck runs Check under the invariants build tag (control-path calls only: it is
// O(pages)) and panics on a broken invariant.
func (c *Cache) mustCheck() {
	if invariants.Enabled {
		if err := c.Check(); err != nil {
			panic(err.Error())
		}
	}
}

// Check verifies the invariants in Cache's comment and returns the first one broken. It is
// O(pages + models); tests call it after every step, and the worker may call it under the
// invariants build tag.
func (c *Cache) Check() error {
	n := len(c.gen)
	if len(c.free)+c.raw > n {
		return fmt.Errorf("BUG: free %d + alloc %d > total %d", len(c.free), c.raw, n)
	}
	seen := c.scratch[:n]
	for i := range seen {
		seen[i] = 0
	}
	for pos, p := range c.free {
		if c.owner[p] != ownerFree || c.freePos[p] != int32(pos) {
			return fmt.Errorf("BUG: free stack[%d] = page %d has owner %d, pos %d", pos, p, c.owner[p], c.freePos[p])
		}
		seen[p]++
	}
	raw := 0
	for i := range n {
		switch o := c.owner[i]; {
		case o == ownerRaw:
			raw++
			seen[i]++
			if c.freePos[i] != -1 {
				return fmt.Errorf("BUG: allocated page %d is on the free stack", i)
			}
		case o == ownerFree:
		case o >= 0 && int(o) < len(c.models) && c.models[o].live:
		default:
			return fmt.Errorf("BUG: page %d has owner %d", i, o)
		}
		if c.gen[i] == 0 {
			return fmt.Errorf("BUG: page %d has generation 0", i)
		}
	}
	if raw != c.raw {
		return fmt.Errorf("BUG: %d pages owned by Alloc, counted %d", raw, c.raw)
	}
	used := c.raw
	lru := 0
	for s := c.lruHead; s >= 0; s = c.models[s].lnext {
		lru++
		if lru > len(c.models) {
			return fmt.Errorf("BUG: LRU list has a cycle")
		}
		m := &c.models[s]
		if !m.live || c.byID[m.id] != s {
			return fmt.Errorf("BUG: LRU holds slot %d (model %d, live %v)", s, m.id, m.live)
		}
		k := int32(0)
		for p := m.first; p >= 0; p = c.next[p] {
			if c.owner[p] != s {
				return fmt.Errorf("BUG: page %d in model %d's chain is owned by %d", p, m.id, c.owner[p])
			}
			seen[p]++
			k++
			if k > m.pages {
				break
			}
		}
		if k != m.pages {
			return fmt.Errorf("BUG: model %d has %d pages in its chain, %d recorded", m.id, k, m.pages)
		}
		if m.pins < 0 {
			return fmt.Errorf("BUG: model %d has %d pins", m.id, m.pins)
		}
		used += int(m.pages)
	}
	if lru != len(c.byID) || lru != c.loaded {
		return fmt.Errorf("BUG: LRU has %d models, map %d, count %d", lru, len(c.byID), c.loaded)
	}
	if used+len(c.free) != n {
		return fmt.Errorf("BUG: used %d + free %d != total %d", used, len(c.free), n)
	}
	for i := range n {
		if seen[i] != 1 {
			return fmt.Errorf("BUG: page %d has %d owners", i, seen[i])
		}
	}
	return nil
}
