package pinned

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/clockwork-go/clockwork/internal/invariants"
)

// TestMain fails the package if any test leaves pinned bytes behind.
func TestMain(m *testing.M) {
	code := m.Run()
	if os.Getenv(childEnv) == "" {
		if n := Locked(); n != 0 && code == 0 {
			fmt.Fprintf(os.Stderr, "pinned: %d bytes still locked after the tests (a leak)\n", n)
			code = 1
		}
	}
	os.Exit(code)
}

// vmLck reads the kernel's count of this process's locked memory.
func vmLck(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmLck:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb)
			return kb << 10
		}
	}
	t.Skip("no VmLck in /proc/self/status")
	return 0
}

func TestAllocFree(t *testing.T) {
	p := NewPool(Config{})
	before := vmLck(t)
	b, err := p.Alloc(10000, Weights)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Bytes()) != 10000 || b.Purpose() != Weights {
		t.Fatalf("len %d purpose %v", len(b.Bytes()), b.Purpose())
	}
	// Fresh anonymous memory is zero, and it is writable.
	if !bytes.Equal(b.Bytes()[:64], make([]byte, 64)) {
		t.Fatal("fresh buffer is not zero")
	}
	b.Bytes()[9999] = 1
	if got := vmLck(t) - before; got != 12288 {
		t.Fatalf("kernel counts %d more locked bytes, want 12288", got)
	}
	io, err := p.Alloc(1, IOStaging)
	if err != nil {
		t.Fatal(err)
	}
	s := p.Stats()
	if s.Bytes[Weights] != 12288 || s.Buffers[Weights] != 1 || s.Bytes[IOStaging] != 4096 || s.Total() != 16384 || Locked() != 16384 {
		t.Fatalf("stats %+v, locked %d", s, Locked())
	}
	if err := b.Free(); err != nil {
		t.Fatal(err)
	}
	if err := b.Free(); !errors.Is(err, ErrFreed) {
		t.Fatalf("double free: %v", err)
	}
	if err := io.Free(); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Total() != 0 || Locked() != 0 {
		t.Fatalf("stats after free %+v, locked %d", s, Locked())
	}
	if got := vmLck(t) - before; got != 0 {
		t.Fatalf("kernel still counts %d locked bytes", got)
	}
}

func TestBadInput(t *testing.T) {
	p := NewPool(Config{})
	for _, n := range []int64{0, -1, MaxBytes + 1} {
		if _, err := p.Alloc(n, Weights); err == nil {
			t.Errorf("alloc of %d bytes succeeded", n)
		}
	}
	if _, err := p.Alloc(1, NumPurposes); err == nil {
		t.Error("alloc with a bad purpose succeeded")
	}
}

// TestUseAfterFreeFaults: under the invariants tag a kept slice of a freed buffer faults on
// use instead of reading or writing whatever is mapped there next.
func TestUseAfterFreeFaults(t *testing.T) {
	if !invariants.Enabled {
		t.Skip("poisoning is on under the invariants build tag")
	}
	p := NewPool(Config{})
	b, err := p.Alloc(4096, IOStaging)
	if err != nil {
		t.Fatal(err)
	}
	kept := b.Bytes()
	kept[0] = 7
	if err := b.Free(); err != nil {
		t.Fatal(err)
	}
	if b.Bytes() != nil {
		t.Fatal("Bytes after Free is not nil")
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	for _, op := range []string{"read", "write"} {
		faulted := func() (f bool) {
			defer func() { f = recover() != nil }()
			if op == "read" {
				sink = kept[0]
			} else {
				kept[0] = 1
			}
			return false
		}()
		if !faulted {
			t.Errorf("%s after free did not fault", op)
		}
	}
}

// sink keeps the compiler from dropping a read.
var sink byte

type fakeRegistrar struct {
	live map[*byte]int
	fail bool
}

func (r *fakeRegistrar) RegisterHost(b []byte) error {
	if r.fail {
		return errors.New("no device")
	}
	if _, ok := r.live[&b[0]]; ok {
		return errors.New("registered twice")
	}
	r.live[&b[0]] = len(b)
	return nil
}

func (r *fakeRegistrar) UnregisterHost(b []byte) error {
	if _, ok := r.live[&b[0]]; !ok {
		return errors.New("not registered")
	}
	delete(r.live, &b[0])
	return nil
}

func TestRegistrar(t *testing.T) {
	p := NewPool(Config{})
	early, err := p.Alloc(100, Weights)
	if err != nil {
		t.Fatal(err)
	}
	r := &fakeRegistrar{live: map[*byte]int{}}
	if err := p.SetRegistrar(r); err != nil {
		t.Fatal(err)
	}
	if len(r.live) != 1 {
		t.Fatalf("existing buffer not registered: %v", r.live)
	}
	late, err := p.Alloc(100, IOStaging)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.live) != 2 {
		t.Fatalf("new buffer not registered: %v", r.live)
	}
	if err := early.Free(); err != nil {
		t.Fatal(err)
	}
	if len(r.live) != 1 {
		t.Fatalf("freed buffer still registered: %v", r.live)
	}
	r.fail = true
	if _, err := p.Alloc(100, Weights); err == nil {
		t.Fatal("alloc succeeded though registration failed")
	}
	if got := p.Stats().Total(); got != 4096 {
		t.Fatalf("failed alloc left %d bytes accounted", got)
	}
	r.fail = false
	if err := p.SetRegistrar(nil); err != nil || len(r.live) != 0 {
		t.Fatalf("SetRegistrar(nil): %v, still registered %v", err, r.live)
	}
	if err := late.Free(); err != nil {
		t.Fatal(err)
	}
}

func TestHugePages(t *testing.T) {
	p := NewPool(Config{Huge: HugeTransparent})
	b, err := p.Alloc(3<<20, Weights)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Stats().Bytes[Weights]; got != 4<<20 {
		t.Fatalf("transparent huge pages: %d bytes mapped, want 4 MiB", got)
	}
	if err := b.Free(); err != nil {
		t.Fatal(err)
	}
	// hugetlbfs: works if pages are reserved, else fails naming the sysctl.
	p = NewPool(Config{Huge: HugeTLB})
	b, err = p.Alloc(2<<20, Weights)
	if err != nil {
		if !strings.Contains(err.Error(), "vm.nr_hugepages=1") {
			t.Fatalf("hugetlb error does not name the fix: %v", err)
		}
		t.Logf("hugetlb unavailable here: %v", err)
		return
	}
	if err := b.Free(); err != nil {
		t.Fatal(err)
	}
}

const childEnv = "PINNED_TEST_CHILD"

// TestMemlockLimit re-executes the test binary with RLIMIT_MEMLOCK lowered to 64 KiB and
// CAP_IPC_LOCK dropped, and checks both the pre-check's error and mlock's own failure.
func TestMemlockLimit(t *testing.T) {
	if mode := os.Getenv(childEnv); mode != "" {
		memlockChild(t, mode)
		return
	}
	for _, mode := range []string{"precheck", "mlock"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMemlockLimit$", "-test.v")
		cmd.Env = append(os.Environ(), childEnv+"="+mode)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child %s: %v\n%s", mode, err, out)
		}
		if !strings.Contains(string(out), "CHILD-OK") {
			t.Fatalf("child %s did not run its checks:\n%s", mode, out)
		}
		t.Logf("child %s:\n%s", mode, grepLines(string(out), "error:"))
	}
}

func grepLines(s, sub string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			b.WriteString(strings.TrimSpace(l) + "\n")
		}
	}
	return b.String()
}

func memlockChild(t *testing.T, mode string) {
	// Capabilities are per thread: drop CAP_IPC_LOCK on the thread that will call mlock.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &unix.Rlimit{Cur: 64 << 10, Max: 64 << 10}); err != nil {
		t.Fatal(err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		t.Fatal(err)
	}
	data[unix.CAP_IPC_LOCK/32].Effective &^= 1 << (unix.CAP_IPC_LOCK % 32)
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		t.Fatal(err)
	}
	if hasIPCLock() {
		t.Fatal("CAP_IPC_LOCK still effective")
	}
	p := NewPool(Config{SkipLimitCheck: mode == "mlock"})
	// 32 KiB fits under the limit.
	small, err := p.Alloc(32<<10, IOStaging)
	if err != nil {
		t.Fatalf("alloc under the limit: %v", err)
	}
	_, err = p.Alloc(1<<20, Weights)
	if !errors.Is(err, ErrLimit) {
		t.Fatalf("alloc over the limit: %v, want ErrLimit", err)
	}
	t.Logf("error: %v", err)
	want := []string{"ulimit -l unlimited", "CAP_IPC_LOCK"}
	if mode == "precheck" {
		want = append(want, "RLIMIT_MEMLOCK is 64 KiB", "32 KiB already locked", "1 MiB")
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not mention %q: %v", w, err)
		}
	}
	if got := p.Stats().Total(); got != 32<<10 {
		t.Errorf("failed alloc changed accounting: %d bytes", got)
	}
	if err := small.Free(); err != nil {
		t.Fatal(err)
	}
	if Locked() != 0 {
		t.Errorf("%d bytes still locked", Locked())
	}
	if !t.Failed() {
		fmt.Println("CHILD-OK")
	}
}
