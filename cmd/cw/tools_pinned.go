package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/clockwork-go/clockwork/internal/pinned"
)

func init() {
	registerTool(command{name: "pinned", summary: "check that host memory can be locked: RLIMIT_MEMLOCK, CAP_IPC_LOCK, time to pin", run: runToolsPinned})
}

func runToolsPinned(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tools pinned", "tools pinned [flags]", stderr)
	mib := fs.Int64("mib", 64, "MiB to map, lock and pre-fault as a trial (1..1048576), then free; a worker pins all weights, so try what it will need")
	huge := fs.String("huge", "none", "huge pages for the trial: none, thp (transparent, best effort) or tlb (hugetlbfs, needs vm.nr_hugepages)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *mib < 1 || *mib > 1<<20 {
		return fmt.Errorf("-mib %d out of range 1..1048576", *mib)
	}
	cfg := pinned.Config{}
	switch *huge {
	case "none":
	case "thp":
		cfg.Huge = pinned.HugeTransparent
	case "tlb":
		cfg.Huge = pinned.HugeTLB
	default:
		return fmt.Errorf("-huge %q: want none, thp or tlb", *huge)
	}
	l, err := pinned.ReadLimit()
	if err != nil {
		return err
	}
	lim := fmt.Sprintf("%d KiB", l.Bytes>>10)
	if l.Unlimited {
		lim = "unlimited"
	}
	fmt.Fprintf(stdout, "pinned: RLIMIT_MEMLOCK %s, CAP_IPC_LOCK %v (lifts the limit)\n", lim, l.CapIPCLock)
	if b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled"); err == nil {
		fmt.Fprintf(stdout, "pinned: transparent huge pages: %s\n", strings.TrimSpace(string(b)))
	}
	p := pinned.NewPool(cfg)
	t0 := time.Now()
	buf, err := p.Alloc(*mib<<20, pinned.Other)
	if err != nil {
		return err
	}
	took := time.Since(t0)
	if err := buf.Free(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "pinned: locked and pre-faulted %d MiB in %v (%.2f GB/s), freed\n", *mib, took.Round(time.Microsecond), float64(*mib<<20)/took.Seconds()/1e9)
	return nil
}
