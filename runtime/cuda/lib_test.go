package cuda

import (
	"strings"
	"testing"
	"unsafe"
)

// The hot-path call mechanism allocates nothing, checked against libc so it runs without a GPU.
func TestCallerNoAlloc(t *testing.T) {
	l, err := openLib("libc", "libc.so.6")
	if err != nil {
		t.Skipf("no libc.so.6 to call: %v", err)
	}
	var memcmp, getpid uintptr
	if err := l.symbols(map[string]*uintptr{"memcmp": &memcmp, "getpid": &getpid}); err != nil {
		t.Fatal(err)
	}
	a, b := new([16]byte), new([16]byte)
	b[15] = 1
	c := newCaller()
	if r := int32(c.call(memcmp, uintptr(unsafe.Pointer(a)), uintptr(unsafe.Pointer(b)), 16)); r >= 0 {
		t.Fatalf("memcmp(a, b) = %d, want < 0", r)
	}
	if r := c.call(memcmp, uintptr(unsafe.Pointer(a)), uintptr(unsafe.Pointer(b)), 15); r != 0 {
		t.Fatalf("memcmp of equal prefixes = %d", r)
	}
	var nilCaller *caller
	if nilCaller.call(getpid) == 0 {
		t.Fatal("getpid through a nil caller returned 0")
	}
	args := [11]uintptr{}
	if n := testing.AllocsPerRun(100, func() {
		c.call(memcmp, uintptr(unsafe.Pointer(a)), uintptr(unsafe.Pointer(b)), 16, args[3], args[4], args[5], args[6], args[7], args[8], args[9], args[10])
	}); n != 0 {
		t.Errorf("caller.call allocates %.1f times per call", n)
	}
}

// A missing symbol is reported with the library's name and path, all missing names at once.
func TestMissingSymbols(t *testing.T) {
	l, err := openLib("libc", "libc.so.6")
	if err != nil {
		t.Skipf("no libc.so.6: %v", err)
	}
	var x, y uintptr
	err = l.symbols(map[string]*uintptr{"cuNoSuchThing": &x, "cuNorThis": &y})
	if err == nil {
		t.Fatal("missing symbols were not reported")
	}
	for _, want := range []string{"cuNoSuchThing", "cuNorThis", "libc.so.6", "libc"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if goString(0) != "" {
		t.Error("goString(0) is not empty")
	}
}
