package probe

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ErrUnavailable is wrapped by every Open error meaning "no probes on this machine or with these
// privileges": the caller should log it and run without probes.
var ErrUnavailable = errors.New("eBPF probes unavailable")

// ErrClosed is returned by calls after Close.
var ErrClosed = errors.New("probes closed")

// unavailableError names the missing prerequisites.
type unavailableError struct{ missing []string }

func (e *unavailableError) Error() string {
	return fmt.Sprintf("%v: missing %s", ErrUnavailable, strings.Join(e.missing, "; "))
}

func (e *unavailableError) Unwrap() error { return ErrUnavailable }

// Capability bits (linux/capability.h).
const (
	capSysAdmin = 21
	capPerfmon  = 38
	capBPF      = 39
)

// btfPath is the running kernel's BTF, which CO-RE relocations and tp_btf attach need.
var btfPath = "/sys/kernel/btf/vmlinux"

// missingPrereqs names what Open needs and this process lacks.
func missingPrereqs() []string {
	var miss []string
	if _, err := os.Stat(btfPath); err != nil {
		miss = append(miss, fmt.Sprintf("kernel BTF (%s: %v; needs a kernel built with CONFIG_DEBUG_INFO_BTF=y)", btfPath, errors.Unwrap(err)))
	}
	eff, err := effectiveCaps()
	switch {
	case err != nil:
		miss = append(miss, fmt.Sprintf("capabilities (cannot read them: %v)", err))
	case eff&(1<<capSysAdmin) != 0:
	case eff&(1<<capBPF) == 0 || eff&(1<<capPerfmon) == 0:
		var lack []string
		if eff&(1<<capBPF) == 0 {
			lack = append(lack, "CAP_BPF")
		}
		if eff&(1<<capPerfmon) == 0 {
			lack = append(lack, "CAP_PERFMON")
		}
		miss = append(miss, fmt.Sprintf("%s (run as root, or `setcap cap_bpf,cap_perfmon+ep` on the binary)", strings.Join(lack, " and ")))
	}
	return miss
}

// effectiveCaps reads CapEff from /proc/self/status.
func effectiveCaps() (uint64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, errors.New("no CapEff line in /proc/self/status")
}
