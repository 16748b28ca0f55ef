package cuda

// NVRTC bindings: compile CUDA C to a cubin for one architecture at start-up, cached by the
// SHA-256 of (source, options, NVRTC version). Unsafe for the same reason as driver.go.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"unsafe"
)

type nvrtc struct {
	lib                                                   *lib
	create, compile, logSize, getLog, cubinSize, getCubin uintptr
	destroy, errString, version                           uintptr

	mu    sync.Mutex
	cache map[string][]byte // hash → cubin
}

func loadNVRTC(cfg Config) (*nvrtc, error) {
	l, err := openLib("NVRTC (libnvrtc)", cfg.NVRTCLib, "libnvrtc.so.13")
	if err != nil {
		return nil, err
	}
	n := &nvrtc{lib: l, cache: map[string][]byte{}}
	err = l.symbols(map[string]*uintptr{
		"nvrtcCreateProgram":     &n.create,
		"nvrtcCompileProgram":    &n.compile,
		"nvrtcGetProgramLogSize": &n.logSize,
		"nvrtcGetProgramLog":     &n.getLog,
		"nvrtcGetCUBINSize":      &n.cubinSize,
		"nvrtcGetCUBIN":          &n.getCubin,
		"nvrtcDestroyProgram":    &n.destroy,
		"nvrtcGetErrorString":    &n.errString,
		"nvrtcVersion":           &n.version,
	})
	if err != nil {
		return nil, err
	}
	return n, nil
}

func (n *nvrtc) check(fn string, r uintptr) error {
	if int32(r) == 0 {
		return nil
	}
	return fmt.Errorf("%s: %s (%d)", fn, goString(call(n.errString, r)), int32(r))
}

// Version returns NVRTC's (major, minor).
func (n *nvrtc) Version() (int, int, error) {
	var major, minor int32
	err := n.check("nvrtcVersion", call(n.version, uintptr(unsafe.Pointer(&major)), uintptr(unsafe.Pointer(&minor))))
	return int(major), int(minor), err
}

// compileKey is the cache key of one compilation.
func (n *nvrtc) compileKey(src, arch string, opts []string) (string, error) {
	maj, min, err := n.Version()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "nvrtc %d.%d\x00%s\x00", maj, min, arch)
	for _, o := range opts {
		fmt.Fprintf(h, "%s\x00", o)
	}
	h.Write([]byte(src))
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Compile returns the cubin of src for arch (e.g. "sm_90"). It is served from the in-memory
// cache, then from cacheDir (if set), and compiled only when both miss; the compiler log is
// part of the error on failure. Control path: may take a second. Safe for concurrent use.
func (n *nvrtc) Compile(src, name, arch, cacheDir string, opts ...string) ([]byte, bool, error) {
	key, err := n.compileKey(src, arch, opts)
	if err != nil {
		return nil, false, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if c, ok := n.cache[key]; ok {
		return c, true, nil
	}
	var file string
	if cacheDir != "" {
		file = filepath.Join(cacheDir, key+".cubin")
		if c, err := os.ReadFile(file); err == nil && len(c) > 0 {
			n.cache[key] = c
			return c, true, nil
		}
	}
	cubin, err := n.compileNow(src, name, append([]string{"--gpu-architecture=" + arch}, opts...))
	if err != nil {
		return nil, false, err
	}
	n.cache[key] = cubin
	if file != "" {
		if err := os.MkdirAll(cacheDir, 0o755); err == nil {
			tmp := file + ".tmp"
			if os.WriteFile(tmp, cubin, 0o644) == nil {
				_ = os.Rename(tmp, file) // best effort: a failed cache write only costs a recompile
			}
		}
	}
	return cubin, false, nil
}

func (n *nvrtc) compileNow(src, name string, opts []string) ([]byte, error) {
	csrc, cname := cstr(src), cstr(name)
	var prog uintptr
	if err := n.check("nvrtcCreateProgram", call(n.create, uintptr(unsafe.Pointer(&prog)), uintptr(unsafe.Pointer(&csrc[0])), uintptr(unsafe.Pointer(&cname[0])), 0, 0, 0)); err != nil {
		return nil, err
	}
	defer call(n.destroy, uintptr(unsafe.Pointer(&prog)))
	copts := make([][]byte, len(opts))
	optPtrs := make([]uintptr, len(opts)+1)
	for i, o := range opts {
		copts[i] = cstr(o)
		optPtrs[i] = uintptr(unsafe.Pointer(&copts[i][0]))
	}
	cerr := n.check("nvrtcCompileProgram", call(n.compile, prog, uintptr(len(opts)), uintptr(unsafe.Pointer(&optPtrs[0]))))
	runtime.KeepAlive(copts)
	if cerr != nil {
		var sz uintptr
		log := ""
		if call(n.logSize, prog, uintptr(unsafe.Pointer(&sz))) == 0 && sz > 1 {
			b := make([]byte, sz)
			if call(n.getLog, prog, uintptr(unsafe.Pointer(&b[0]))) == 0 {
				log = string(b[:sz-1])
			}
		}
		return nil, fmt.Errorf("cannot compile %s with %v: %w\n%s", name, opts, cerr, log)
	}
	var sz uintptr
	if err := n.check("nvrtcGetCUBINSize", call(n.cubinSize, prog, uintptr(unsafe.Pointer(&sz)))); err != nil {
		return nil, err
	}
	if sz == 0 {
		return nil, fmt.Errorf("cannot compile %s: NVRTC returned no cubin (options %v need a real sm_XX architecture)", name, opts)
	}
	cubin := make([]byte, sz)
	if err := n.check("nvrtcGetCUBIN", call(n.getCubin, prog, uintptr(unsafe.Pointer(&cubin[0])))); err != nil {
		return nil, err
	}
	return cubin, nil
}
