package main

import (
	"errors"
	"io/fs"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func fakeHost(files map[string]string, limits map[int]uint64, smi string) checkHost {
	return checkHost{
		read: func(p string) ([]byte, error) {
			if v, ok := files[p]; ok {
				return []byte(v + "\n"), nil
			}
			return nil, fs.ErrNotExist
		},
		glob: func(pattern string) ([]string, error) {
			var out []string
			for p := range files {
				if strings.HasSuffix(p, "scaling_governor") {
					out = append(out, p)
				}
			}
			return out, nil
		},
		rlimit: func(r int) (uint64, uint64, error) {
			v, ok := limits[r]
			if !ok {
				return 0, 0, errors.New("no such limit")
			}
			return v, v, nil
		},
		nvidiaSMI: func(args ...string) (string, bool, error) { return smi, smi != "", nil },
		ncpu:      8,
	}
}

func levels(res []checkResult) map[string]checkLevel {
	m := map[string]checkLevel{}
	for _, r := range res {
		m[r.name] = r.level
		if r.level != checkPass && r.fix == "" && !strings.HasPrefix(r.detail, "cannot read") {
			panic("check " + r.name + " warns without a fix")
		}
	}
	return m
}

func TestChecksGoodHost(t *testing.T) {
	h := fakeHost(map[string]string{
		"/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor": "performance",
		"/proc/sys/vm/max_map_count":                            "1048576",
		"/sys/kernel/mm/transparent_hugepage/enabled":           "always [madvise] never",
		"/proc/sys/kernel/sched_rt_runtime_us":                  "950000",
		"/proc/cmdline":                                         "BOOT_IMAGE=x isolcpus=2-7 quiet",
	}, map[int]uint64{unix.RLIMIT_MEMLOCK: unix.RLIM_INFINITY, unix.RLIMIT_NOFILE: 1 << 20, unix.RLIMIT_RTPRIO: 10},
		"0, NVIDIA H100, Enabled, Enabled, 1980, 1980")
	for name, l := range levels(runChecks(h, 8<<30)) {
		if l != checkPass {
			t.Errorf("%s: %s on a good host", name, l)
		}
	}
}

func TestChecksBadHost(t *testing.T) {
	h := fakeHost(map[string]string{
		"/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor": "powersave",
		"/proc/sys/vm/max_map_count":                            "65530",
		"/sys/kernel/mm/transparent_hugepage/enabled":           "[always] madvise never",
		"/proc/sys/kernel/sched_rt_runtime_us":                  "-1",
		"/proc/cmdline":                                         "quiet",
	}, map[int]uint64{unix.RLIMIT_MEMLOCK: 64 << 10, unix.RLIMIT_NOFILE: 1024, unix.RLIMIT_RTPRIO: 0},
		"0, NVIDIA H100, Disabled, Disabled, 1755, 1980")
	got := levels(runChecks(h, 8<<30))
	want := map[string]checkLevel{"cpu governor": checkWarn, "memlock limit": checkFail, "nofile limit": checkWarn, "rtprio limit": checkWarn,
		"vm.max_map_count": checkWarn, "transparent huge pages": checkWarn, "rt throttling": checkWarn, "isolated cpus": checkWarn,
		"gpu 0 persistence": checkWarn, "gpu 0 ecc": checkWarn, "gpu 0 clocks": checkWarn}
	for name, l := range want {
		if got[name] != l {
			t.Errorf("%s: %s, want %s", name, got[name], l)
		}
	}
}

func TestParseCPUs(t *testing.T) {
	got, err := parseCPUs("0,2-4, 7")
	if err != nil || len(got) != 5 || got[3] != 4 || got[4] != 7 {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{"a", "3-1", "1-x"} {
		if _, err := parseCPUs(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
