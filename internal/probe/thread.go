package probe

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// NameThread sets the calling thread's name (/proc/self/task/TID/comm; at most 15 bytes are
// kept), so `cw tools probe` and top -H can find it. Call it on a locked thread
// (runtime.LockOSThread): otherwise the name sticks to whichever thread ran the call.
func NameThread(name string) error {
	if len(name) > 15 {
		name = name[:15]
	}
	b := append([]byte(name), 0)
	// unsafe: prctl copies the NUL-terminated bytes during the call; b is live until it returns.
	return unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&b[0])), 0, 0, 0)
}
