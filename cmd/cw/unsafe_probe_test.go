package main

import "unsafe"

// unsafePtr is the address of s's bytes for prctl(PR_SET_NAME), which copies them; s must end
// in NUL and stay alive across the call (it does: the caller holds it).
func unsafePtr(s string) unsafe.Pointer { return unsafe.Pointer(unsafe.StringData(s)) }
