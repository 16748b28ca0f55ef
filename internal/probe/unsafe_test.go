package probe

import "unsafe"

// addr is the address of b's first byte, to compare with fault addresses. unsafe: the pointer is
// only converted to a number, never dereferenced.
func addr(b []byte) uint64 { return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) }
