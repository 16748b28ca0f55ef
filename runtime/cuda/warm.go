package cuda

import (
	"fmt"
	"runtime"
	"time"
)

// fillerChunk is how long one filler graph keeps the GPU busy: ten 10 µs kernels, so a newly
// launched INFER waits at most ~10 µs for SMs (its stream has the higher priority) while the
// host pays one graph launch per 100 µs of filler.
const (
	fillerKernel = 10 * time.Microsecond
	fillerChunk  = 10 * fillerKernel
)

// filler is the device's clock-warming machinery: a lowest-priority stream and a captured graph
// of short full-GPU spin kernels.
type filler struct {
	stream uintptr
	g      *graph
	c      *caller
	chunk  time.Duration // measured device time of one filler graph (≥ fillerChunk)
}

func (d *Device) openFiller() error {
	least, _, err := d.drv.streamPriorityRange()
	if err != nil {
		return err
	}
	f := &filler{c: newCaller()}
	if f.stream, err = d.drv.streamCreate(least); err != nil {
		return err
	}
	d.fill = f
	f.g, err = d.captureOn(f.stream, func(s uintptr) error {
		for range fillerChunk / fillerKernel {
			if err := d.k.spin(s, int64(fillerKernel)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return f.calibrate(d)
}

// calibrate measures the device time of one filler graph in steady state (ten launched back to
// back, after one warm-up): the kernels' launch gaps make it longer than its nominal 100 µs.
func (f *filler) calibrate(d *Device) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start, err := d.drv.eventCreate(cuEventDefault)
	if err != nil {
		return err
	}
	defer d.drv.eventDestroy(start)
	end, err := d.drv.eventCreate(cuEventDefault)
	if err != nil {
		return err
	}
	defer d.drv.eventDestroy(end)
	const runs = 10
	if err := d.drv.graphLaunch(f.c, f.g.exec, f.stream); err != nil {
		return err
	}
	if err := d.drv.eventRecord(f.c, start, f.stream); err != nil {
		return err
	}
	for range runs {
		if err := d.drv.graphLaunch(f.c, f.g.exec, f.stream); err != nil {
			return err
		}
	}
	if err := d.drv.eventRecord(f.c, end, f.stream); err != nil {
		return err
	}
	if err := d.drv.eventSynchronize(f.c, end); err != nil {
		return err
	}
	ns, err := d.drv.elapsedNs(f.c, new(float32), start, end)
	if err != nil {
		return err
	}
	f.chunk = max(fillerChunk, time.Duration(ns/runs))
	return nil
}

// Warm keeps the GPU busy with low-priority filler work for about dur (rounded down to whole
// filler graphs of ~100 µs, timed at Open, so the filler does not run into the INFER that ends
// the gap) and returns at once, without waiting. GPUs that are not clock-locked drop their clocks
// within ~1 ms of idling and the next INFER then runs slow (DESIGN.md §7); calling Warm for an
// idle gap, ending it some tens of µs before the next INFER, keeps them up. An INFER launched
// while filler runs waits at most one filler kernel (~10 µs) for SMs.
// Timing: exec thread, between INFERs; no allocation; ~2 µs of host time per 100 µs of filler.
func (d *Device) Warm(dur time.Duration) error {
	if d.closed.Load() {
		return fmt.Errorf("cuda device %d: %w", d.ord, errClosed)
	}
	f := d.fill
	if dur < f.chunk {
		return nil
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := d.drv.setCurrent(f.c, d.ctx); err != nil {
		return err
	}
	for n := dur / f.chunk; n > 0; n-- {
		if err := d.drv.graphLaunch(f.c, f.g.exec, f.stream); err != nil {
			return err
		}
	}
	return nil
}
