package alloc

import "errors"

// Sentinel errors. Every error returned by this package wraps one of them (test with
// errors.Is) and adds the numbers that explain it.
var (
	// ErrNoSpace: a load or allocation does not fit in what is free. The wrapping error names
	// what was needed and what was free; the fix is an EVICT (cache) or a smaller plan (arena).
	ErrNoSpace = errors.New("not enough free memory")
	// ErrFragmented: enough pages are free but no contiguous run is long enough for a tensor
	// larger than a page. The wrapping error names the run needed and the longest free run.
	ErrFragmented = errors.New("no contiguous run of free pages long enough")
	// ErrStale: a handle whose page, buffer or residency was freed (and perhaps reused) since.
	ErrStale = errors.New("stale handle")
	// ErrNotLoaded: the model has no pages in this cache.
	ErrNotLoaded = errors.New("model not loaded")
	// ErrLoaded: the model is already loaded; evict it first to reload.
	ErrLoaded = errors.New("model already loaded")
	// ErrPinned: the model's pages are in use by a running INFER and cannot be evicted.
	ErrPinned = errors.New("model pinned by a running infer")
	// ErrNotPinned: an unpin without a matching pin.
	ErrNotPinned = errors.New("model not pinned")
	// ErrConfig: a configuration or layout input that cannot work.
	ErrConfig = errors.New("invalid configuration")
)
