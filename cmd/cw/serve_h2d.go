package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/clockwork-go/clockwork/internal/pinned"
	"github.com/clockwork-go/clockwork/runtime/device"
	"github.com/clockwork-go/clockwork/worker"
)

func init() {
	registerTool(command{name: "h2d", summary: "LOAD bandwidth: weight pages host → device on each GPU alone, then on all GPUs at once", run: runToolsH2D})
}

// h2dResult is one GPU's LOADs in one phase.
type h2dResult struct {
	phase         string
	gpu           int
	loads         int
	p50, p99, max time.Duration // wall time of one LOAD (all its pages, one CopyIn each)
	gbps          float64       // bytes of all LOADs / the phase's wall time on this GPU
	err           error
}

// loadPages copies the model's pages from host to dev iters times, as the worker's weights
// executor does (one CopyIn per page, on the weights lane), and times each LOAD.
func loadPages(dev device.Device, host []byte, pageBytes int64, iters int) ([]time.Duration, time.Duration, error) {
	info := dev.Info()
	if int64(len(host)) > info.Size {
		return nil, 0, fmt.Errorf("gpu %d: region %d bytes < %d of weights; raise -region-mib", info.Index, info.Size, len(host))
	}
	d := make([]time.Duration, 0, iters)
	t0 := time.Now()
	for range iters {
		s := time.Now()
		for off := int64(0); off < int64(len(host)); off += pageBytes {
			end := min(off+pageBytes, int64(len(host)))
			if _, err := dev.CopyIn(device.LaneWeights, info.Base+device.Ptr(off), host[off:end]); err != nil {
				return nil, 0, fmt.Errorf("gpu %d: cannot copy a page in: %w", info.Index, err)
			}
		}
		d = append(d, time.Since(s))
	}
	return d, time.Since(t0), nil
}

func h2dPhase(phase string, devs []device.Device, host []byte, pageBytes int64, iters int) []h2dResult {
	out := make([]h2dResult, len(devs))
	var wg sync.WaitGroup
	for i, dev := range devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, wall, err := loadPages(dev, host, pageBytes, iters)
			r := h2dResult{phase: phase, gpu: dev.Info().Index, loads: len(d), err: err}
			if err == nil {
				slices.Sort(d)
				r.p50, r.p99, r.max = d[(len(d)-1)/2], d[min(len(d)-1, len(d)*99/100)], d[len(d)-1]
				r.gbps = float64(len(host)) * float64(len(d)) / wall.Seconds() / 1e9
			}
			out[i] = r
		}()
	}
	wg.Wait()
	return out
}

func runToolsH2D(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tools h2d", "tools h2d [-backend cuda] [-gpus 0] [flags]", stderr)
	var be backendFlags
	be.register(fs)
	gpus := fs.Int("gpus", 0, "devices: cuda 0 opens every visible GPU; cpu 1..64")
	mib := fs.Int64("model-mib", 112, "weights of one LOAD in MiB (ResNet-50: 7 pages of 16 MiB = 112)")
	pageMiB := fs.Int64("page-mib", worker.DefaultPageBytes>>20, "page size in MiB: one copy per page, as the worker's LOAD")
	iters := fs.Int("loads", 200, "LOADs per GPU in each phase")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *mib < 1 || *pageMiB < 1 || *iters < 1 || *iters > 1_000_000 {
		return fmt.Errorf("-model-mib %d, -page-mib %d, -loads %d: want >= 1 (loads <= 1000000)", *mib, *pageMiB, *iters)
	}
	if be.name == "sim" {
		return errors.New("-backend sim has no copies to time; use cuda (or cpu to try the tool)")
	}
	n := *gpus
	if be.name != "cuda" && n == 0 {
		n = 1
	}
	var cfg worker.Config
	if err := be.apply(&cfg, n); err != nil {
		return err
	}
	devs, err := cfg.Backend.Open((*mib + 64) << 20)
	if err != nil {
		return fmt.Errorf("cannot open %s devices: %w", be.name, err)
	}
	defer func() {
		for _, d := range devs {
			_ = d.Close()
		}
	}()
	pool := pinned.NewPool(pinned.Config{})
	buf, err := pool.Alloc(*mib<<20, pinned.Weights)
	if err != nil {
		return fmt.Errorf("cannot allocate %d MiB of pinned host memory: %w", *mib, err)
	}
	defer buf.Free()
	host := buf.Bytes()
	for i := range host {
		host[i] = byte(i * 7)
	}
	if r, ok := devs[0].(device.HostRegistrar); ok {
		// One registration through the first device, as the worker does: the cuda backend
		// registers portable memory, so every GPU's copies read it as pinned.
		if err := r.RegisterHost(host); err != nil {
			return err
		}
		defer r.UnregisterHost(host)
	}
	var rows []h2dResult
	for _, d := range devs {
		rows = append(rows, h2dPhase("alone", []device.Device{d}, host, *pageMiB<<20, *iters)...)
	}
	if len(devs) > 1 {
		rows = append(rows, h2dPhase("all at once", devs, host, *pageMiB<<20, *iters)...)
	}
	alone := map[int]float64{}
	fmt.Fprintf(stdout, "%d MiB per LOAD in %d MiB pages, %d LOADs per GPU per phase, %s backend\n\n", *mib, *pageMiB, *iters, be.name)
	fmt.Fprintln(stdout, "| phase | gpu | LOAD p50 ms | p99 ms | max ms | GB/s | vs alone |\n|---|---|---|---|---|---|---|")
	var errs []error
	for _, r := range rows {
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		if r.phase == "alone" {
			alone[r.gpu] = r.gbps
		}
		ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
		fmt.Fprintf(stdout, "| %s | %d | %.3f | %.3f | %.3f | %.2f | %.3f |\n", r.phase, r.gpu, ms(r.p50), ms(r.p99), ms(r.max), r.gbps, r.gbps/alone[r.gpu])
	}
	return errors.Join(errs...)
}
