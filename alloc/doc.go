// Package alloc is the bookkeeping of GPU memory (DESIGN.md §6): the weights page cache, the
// weight page layout, and the IO and workspace arenas. It knows nothing of CUDA and never
// touches memory: it manages addresses (plain uint64) in a region that a backend (cuda, cpu,
// sim) provides, so that nothing can lose track of a byte.
//
// One GPU's region is split into three parts, which the worker sizes:
//
//	Base                                                              Base+Size
//	| IO arena (Arena) | workspace arena (Arena) | weights cache: pages (Cache) ... |
//
// The parts:
//
//   - Cache: fixed pages (16 MiB by default) that hold models' weights. The controller decides
//     what is loaded; the worker calls Load and Evict when told and never evicts on its own.
//     Pages of a model with a running INFER are pinned. Handles carry generations.
//   - Layout: a model's weight tensors packed into pages at registration, so that no tensor
//     spans a page boundary (tensors larger than a page get a contiguous run of pages).
//   - Arena: variable-sized buffers for the INFERs in flight (inputs, outputs, activations);
//     exhaustion is an error, never a wait.
//
// Pinned host memory, which holds every model's weights and the IO staging buffers, is in
// internal/pinned.
//
// # Concurrency
//
// Cache and Arena are not safe for concurrent use: the worker guards each with a mutex. No
// method blocks; the hot ones (Alloc, Free, Pin, Unpin, AppendAddrs) are O(1) or O(pages of one
// model) and do not allocate. The package reads no clock, starts no goroutine and never logs.
//
// # Ownership
//
// Handles (Page, Residency, Buf) are small values. A handle outlives what it names: after a
// Free or Evict it is stale, and every method given a stale handle returns ErrStale and changes
// nothing. Slices returned by String and State are the caller's.
//
// # Invariants
//
// Cache.Check and Arena.Check verify them (listed on each type); the fuzz tests run them after
// every operation of random sequences. Bad input returns an error; a broken invariant panics
// with a "BUG:" message.
package alloc
