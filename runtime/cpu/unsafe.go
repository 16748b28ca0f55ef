package cpu

import "unsafe"

// This is the only file that uses unsafe. Tensor bytes (host buffers, and the backend's region)
// are reinterpreted as typed slices of the same memory. That is safe because:
//   - every view covers len(b)/size(T) whole elements inside b, so it never reaches past b;
//   - buffers are 8-byte aligned: Go aligns make([]byte, n ≥ 8) to 8, the region is one such
//     allocation, and Prepare rejects a plan whose offsets are not multiples of 8 (alignedView
//     checks again under the invariants tag);
//   - every element type here (ints, floats, bool as one byte) has no pointers and accepts any
//     bit pattern except bool, whose bytes only ever come from our own writes or are normalised
//     on load (loadTensor maps nonzero to 1).

// view returns b as a []T of len(b)/sizeof(T) elements sharing b's memory.
func view[T any](b []byte) []T {
	var z T
	n := len(b) / int(unsafe.Sizeof(z))
	if n == 0 {
		return nil
	}
	if uintptr(unsafe.Pointer(&b[0]))%unsafe.Alignof(z) != 0 {
		panic("BUG: misaligned tensor buffer")
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&b[0])), n)
}

// bytesOf returns the memory of s as bytes.
func bytesOf[T any](s []T) []byte {
	if len(s) == 0 {
		return nil
	}
	var z T
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*int(unsafe.Sizeof(z)))
}
