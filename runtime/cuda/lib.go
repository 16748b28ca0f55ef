package cuda

// This file holds the package's dlopen/dlsym and C-string helpers: the only place where
// addresses returned by the NVIDIA libraries are turned into Go values. It is unsafe because C
// strings are read through raw pointers; each pointer comes from the library that documents it
// as a NUL-terminated string that lives as long as the library (error names, logs we sized).

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/ebitengine/purego"
)

// lib is one dlopen'ed shared library.
type lib struct {
	name   string // what the user configured, for errors
	path   string // the path that opened
	handle uintptr
}

// openLib tries each candidate path in order and returns the first that opens. The error names
// every path tried and the loader's reason, so the user sees which setting to fix.
func openLib(name string, candidates ...string) (*lib, error) {
	var errs []error
	for _, p := range candidates {
		if p == "" {
			continue
		}
		h, err := purego.Dlopen(p, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err == nil {
			return &lib{name: name, path: p, handle: h}, nil
		}
		errs = append(errs, err) // the loader's message names the path
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("cannot load %s: no path configured", name)
	}
	return nil, fmt.Errorf("cannot load %s (set its path in cuda.Config, or cw's -cuda-* flags): %w", name, errors.Join(errs...))
}

// symbols resolves each name into its *uintptr. It reports every missing symbol at once, naming
// the library and its path, since a missing one means a wrong library version.
func (l *lib) symbols(syms map[string]*uintptr) error {
	var missing []string
	for name, dst := range syms {
		p, err := purego.Dlsym(l.handle, name)
		if err != nil || p == 0 {
			missing = append(missing, name)
			continue
		}
		*dst = p
	}
	if len(missing) > 0 {
		return fmt.Errorf("cannot resolve symbols %v in %s (%s): wrong library version? set its path in cuda.Config", missing, l.name, l.path)
	}
	return nil
}

// cstr returns a NUL-terminated copy of s. The caller keeps the slice alive across the call.
func cstr(s string) []byte {
	b := make([]byte, len(s)+1)
	copy(b, s)
	return b
}

// goString copies the NUL-terminated C string at p. p == 0 gives "".
func goString(p uintptr) string {
	if p == 0 {
		return ""
	}
	// p is an address inside a loaded library or C heap, never Go memory.
	base := *(*unsafe.Pointer)(unsafe.Pointer(&p))
	n := 0
	for n < 1<<16 && *(*byte)(unsafe.Add(base, n)) != 0 {
		n++
	}
	return string(unsafe.Slice((*byte)(base), n))
}

// call invokes the C function fn with integer and pointer arguments only (purego.SyscallN puts
// the first eight arguments in both integer and float registers, so a C function with float or
// double parameters needs purego.RegisterFunc instead). Pointers converted to uintptr in the
// argument list are moved to the heap and kept alive for the call (go:uintptrescapes), so
// callers write uintptr(unsafe.Pointer(&x)) directly in the call expression.
//
//go:uintptrescapes
func call(fn uintptr, args ...uintptr) uintptr {
	r, _, _ := purego.SyscallN(fn, args...)
	return r
}

// caller makes C calls without allocating: purego.SyscallN heap-allocates its variadic
// argument slice on every call (go:uintptrescapes), so hot paths hand it a slice of this
// long-lived array instead. The price is that escape analysis no longer pins arguments: every
// pointer passed through a caller must be C memory, pinned mmap'd memory, or a Go heap object
// its owner keeps reachable (fields of long-lived structs). One caller belongs to one thread
// (a lane); a nil *caller uses a fresh one, which allocates and is safe anywhere.
type caller struct{ a [32]uintptr }

func newCaller() *caller { return new(caller) }

// call invokes fn. Timing: no allocation (non-nil c); ~0.1–0.3 µs of purego overhead.
func (c *caller) call(fn uintptr, args ...uintptr) uintptr {
	if c == nil {
		// A fresh one, not call: passing args on to a go:uintptrescapes function would make
		// the variadic slice escape at every call site, the hot ones too.
		c = new(caller)
	}
	n := copy(c.a[:], args)
	r, _, _ := purego.SyscallN(fn, c.a[:n]...)
	return r
}
