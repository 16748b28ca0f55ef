package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func init() {
	registerTool(command{name: "check", summary: "report (never change) what this host needs for predictable serving", run: runToolsCheck})
}

// checkHost is what the checks read, so tests can fake a machine.
type checkHost struct {
	read   func(path string) ([]byte, error)
	glob   func(pattern string) ([]string, error)
	rlimit func(resource int) (cur, max uint64, err error)
	// nvidiaSMI runs nvidia-smi with args; ok false when it is not installed.
	nvidiaSMI func(args ...string) (out string, ok bool, err error)
	ncpu      int
}

func realHost() checkHost {
	return checkHost{
		read: os.ReadFile,
		glob: filepath.Glob,
		rlimit: func(r int) (uint64, uint64, error) {
			var l unix.Rlimit
			err := unix.Getrlimit(r, &l)
			return l.Cur, l.Max, err
		},
		nvidiaSMI: func(args ...string) (string, bool, error) {
			p, err := exec.LookPath("nvidia-smi")
			if err != nil {
				return "", false, nil
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, p, args...).Output()
			return string(out), true, err
		},
		ncpu: runtime.NumCPU(),
	}
}

type checkLevel int

const (
	checkPass checkLevel = iota
	checkWarn
	checkFail
)

func (l checkLevel) String() string { return [...]string{"pass", "warn", "FAIL"}[l] }

type checkResult struct {
	level  checkLevel
	name   string
	detail string
	fix    string
}

func (h checkHost) readTrim(p string) (string, error) {
	b, err := h.read(p)
	return strings.TrimSpace(string(b)), err
}

// runChecks runs every check; needMemlock is the pinned memory the worker will want.
func runChecks(h checkHost, needMemlock uint64) []checkResult {
	var out []checkResult
	add := func(l checkLevel, name, detail, fix string) {
		out = append(out, checkResult{l, name, detail, fix})
	}

	// CPU frequency governor: anything but performance lets clocks ramp, which shows in exec times.
	govs, _ := h.glob("/sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_governor")
	if len(govs) == 0 {
		add(checkWarn, "cpu governor", "no cpufreq interface (a VM or container: the host decides clocks)", "ask the host for fixed CPU clocks, or run on bare metal")
	} else {
		other := map[string]int{}
		for _, g := range govs {
			v, err := h.readTrim(g)
			if err == nil && v != "performance" {
				other[v]++
			}
		}
		if len(other) == 0 {
			add(checkPass, "cpu governor", fmt.Sprintf("performance on %d CPUs", len(govs)), "")
		} else {
			add(checkWarn, "cpu governor", fmt.Sprintf("not performance: %v", other), "cpupower frequency-set -g performance (as root)")
		}
	}

	limit := func(name string, res int, want uint64, level checkLevel, fix string, unit uint64, unitName string) {
		cur, _, err := h.rlimit(res)
		switch {
		case err != nil:
			add(checkWarn, name, "cannot read: "+err.Error(), fix)
		case cur == unix.RLIM_INFINITY || cur >= want:
			v := "unlimited"
			if cur != unix.RLIM_INFINITY {
				v = fmt.Sprintf("%d %s", cur/unit, unitName)
			}
			add(checkPass, name, v, "")
		default:
			add(level, name, fmt.Sprintf("%d %s < %d %s needed", cur/unit, unitName, want/unit, unitName), fix)
		}
	}
	limit("memlock limit", unix.RLIMIT_MEMLOCK, needMemlock, checkFail,
		"run with `ulimit -l unlimited`, or set `* - memlock unlimited` in /etc/security/limits.conf (containers: --ulimit memlock=-1)", 1<<10, "KiB")
	limit("nofile limit", unix.RLIMIT_NOFILE, 65536, checkWarn,
		"run with `ulimit -n 65536`, or set nofile in /etc/security/limits.conf", 1, "files")
	cur, _, err := h.rlimit(unix.RLIMIT_RTPRIO)
	switch {
	case err != nil:
		add(checkWarn, "rtprio limit", "cannot read: "+err.Error(), "")
	case cur == 0:
		add(checkWarn, "rtprio limit", "0: `cw worker -fifo` cannot use SCHED_FIFO", "run as root, or set `* - rtprio 10` in /etc/security/limits.conf")
	default:
		add(checkPass, "rtprio limit", strconv.FormatUint(cur, 10), "")
	}

	if v, err := h.readTrim("/proc/sys/vm/max_map_count"); err != nil {
		add(checkWarn, "vm.max_map_count", "cannot read: "+err.Error(), "")
	} else if n, _ := strconv.ParseInt(v, 10, 64); n < 262144 {
		add(checkWarn, "vm.max_map_count", fmt.Sprintf("%d < 262144: thousands of models' pinned regions may run out of mappings", n), "sysctl -w vm.max_map_count=1048576 (persist in /etc/sysctl.d)")
	} else {
		add(checkPass, "vm.max_map_count", v, "")
	}

	if v, err := h.readTrim("/sys/kernel/mm/transparent_hugepage/enabled"); err != nil {
		add(checkWarn, "transparent huge pages", "cannot read: "+err.Error(), "")
	} else if strings.Contains(v, "[always]") {
		add(checkWarn, "transparent huge pages", "always: khugepaged compaction can stall executor threads", "echo madvise > /sys/kernel/mm/transparent_hugepage/enabled (as root)")
	} else {
		add(checkPass, "transparent huge pages", v, "")
	}

	if v, err := h.readTrim("/proc/sys/kernel/sched_rt_runtime_us"); err == nil {
		if v == "-1" {
			add(checkWarn, "rt throttling", "off (sched_rt_runtime_us -1): the worker refuses -fifo, since a spinning RT thread could starve the machine", "sysctl -w kernel.sched_rt_runtime_us=950000")
		} else {
			add(checkPass, "rt throttling", "sched_rt_runtime_us "+v, "")
		}
	}

	if h.ncpu < 4 {
		add(checkWarn, "cpus", fmt.Sprintf("%d CPUs: 4 executor threads per GPU plus the network threads will share them; lateness grows", h.ncpu), "use a host with at least 4 + 4×GPUs CPUs, and pin executors with -cpus")
	} else {
		add(checkPass, "cpus", strconv.Itoa(h.ncpu), "")
	}
	if cmdline, err := h.readTrim("/proc/cmdline"); err == nil {
		if i := strings.Index(cmdline, "isolcpus="); i >= 0 {
			add(checkPass, "isolated cpus", strings.Fields(cmdline[i:])[0], "")
		} else {
			add(checkWarn, "isolated cpus", "none: other processes may run on executor CPUs", "boot with isolcpus=<cpus> nohz_full=<cpus> and pass them to cw worker -cpus")
		}
	}

	// GPUs.
	smi, ok, err := h.nvidiaSMI("--query-gpu=index,name,persistence_mode,ecc.mode.current,clocks.applications.graphics,clocks.max.graphics", "--format=csv,noheader,nounits")
	switch {
	case !ok:
		add(checkPass, "gpu", "no nvidia-smi: no GPU checks (the sim backend needs none)", "")
	case err != nil:
		add(checkFail, "gpu", "nvidia-smi failed: "+err.Error(), "check the driver: nvidia-smi must run")
	default:
		for _, line := range strings.Split(strings.TrimSpace(smi), "\n") {
			f := strings.Split(line, ", ")
			if len(f) < 6 {
				add(checkWarn, "gpu", "unexpected nvidia-smi line "+strconv.Quote(line), "")
				continue
			}
			name := "gpu " + f[0]
			if f[2] != "Enabled" {
				add(checkWarn, name+" persistence", f[2], "nvidia-smi -pm 1 (as root), or run nvidia-persistenced")
			} else {
				add(checkPass, name+" persistence", f[2], "")
			}
			if f[3] == "Enabled" || f[3] == "[N/A]" || f[3] == "N/A" {
				add(checkPass, name+" ecc", f[3], "")
			} else {
				add(checkWarn, name+" ecc", f[3], "nvidia-smi -e 1 (as root, then reboot): silent memory errors are worse than 6% less memory")
			}
			if f[4] != f[5] {
				add(checkWarn, name+" clocks", fmt.Sprintf("application clock %s MHz, max %s MHz: clocks boost and idle, so exec times vary", f[4], f[5]), "nvidia-smi -lgc <max>,<max> (as root) to lock clocks; or keep the GPU busy between INFERs")
			} else {
				add(checkPass, name+" clocks", f[4]+" MHz", "")
			}
		}
	}
	return out
}

func runToolsCheck(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tools check", "tools check [flags]", stderr)
	memlockGiB := fs.Uint64("memlock-gib", 8, "pinned memory the worker will need in GiB (all models' weights + host IO); the memlock limit must cover it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	res := runChecks(realHost(), *memlockGiB<<30)
	fails := 0
	for _, r := range res {
		fmt.Fprintf(stdout, "%-4s  %-24s %s\n", r.level, r.name, r.detail)
		if r.fix != "" {
			fmt.Fprintf(stdout, "      %-24s fix: %s\n", "", r.fix)
		}
		if r.level == checkFail {
			fails++
		}
	}
	if fails > 0 {
		return errors.New(strconv.Itoa(fails) + " check(s) failed; see the fixes above")
	}
	return nil
}
