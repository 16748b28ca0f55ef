package cuda

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/clockwork-go/clockwork/runtime/device"
)

// graph is a CUDA graph captured from the exec stream and instantiated: the way one INFER runs
// as a single launch. Its kernel nodes' arguments can be rewritten in the instantiated graph
// (weight pointers after a LOAD) without re-capture.
type graph struct {
	d     *Device
	g     uintptr // CUgraph (kept: node handles and their params come from it)
	exec  uintptr // CUgraphExec
	nodes []uintptr
}

// capture records what fn enqueues on the exec stream into a graph and instantiates it.
// fn must only enqueue work on the stream it is given (no synchronization). Control path.
func (d *Device) capture(fn func(stream uintptr) error) (*graph, error) {
	return d.captureOn(d.streams[device.LaneExec], fn)
}

// captureOn captures from stream s (which must be idle and not the legacy default stream).
func (d *Device) captureOn(s uintptr, fn func(stream uintptr) error) (*graph, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := d.drv.setCurrent(nil, d.ctx); err != nil {
		return nil, err
	}
	if err := d.drv.beginCapture(s); err != nil {
		return nil, err
	}
	ferr := fn(s)
	g, err := d.drv.endCapture(s)
	if ferr != nil || err != nil {
		if g != 0 {
			d.drv.graphDestroy(g)
		}
		return nil, fmt.Errorf("cannot capture graph: %w", errors.Join(ferr, err))
	}
	gr := &graph{d: d, g: g}
	if gr.nodes, err = d.drv.graphKernelNodes(g); err != nil {
		d.drv.graphDestroy(g)
		return nil, err
	}
	if gr.exec, err = d.drv.graphInstantiate(g); err != nil {
		d.drv.graphDestroy(g)
		return nil, err
	}
	return gr, nil
}

// setKernelArgs replaces the arguments of kernel node i (in capture order as the driver lists
// them) with args, in the instantiated graph. Control path (LOAD thread): the driver copies
// the values; no re-instantiation.
func (gr *graph) setKernelArgs(i int, args *kernelArgs) error {
	if i < 0 || i >= len(gr.nodes) {
		return fmt.Errorf("graph has %d kernel nodes, not %d", len(gr.nodes), i+1)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := gr.d.drv.setCurrent(nil, gr.d.ctx); err != nil {
		return err
	}
	p := new(kernelNodeParams)
	if err := gr.d.drv.kernelNodeGetParams(gr.nodes[i], p); err != nil {
		return err
	}
	p.KernelParams = uintptr(args.params())
	p.Extra = 0
	err := gr.d.drv.execKernelNodeSetParams(gr.exec, gr.nodes[i], p)
	runtime.KeepAlive(args)
	return err
}

// launch enqueues the graph on the exec stream without waiting.
// Timing: exec thread; no allocation; ~2 µs host time.
func (gr *graph) launch() error {
	return gr.d.drv.graphLaunch(gr.d.lanes[device.LaneExec].c, gr.exec, gr.d.streams[device.LaneExec])
}

// run launches the graph on the exec lane and waits; the span is the device time between
// events recorded just before and after it on the stream.
// Timing: exec thread; no allocation.
func (gr *graph) run() (device.Span, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	s, ls, err := gr.d.begin(device.LaneExec)
	if err != nil {
		return device.Span{}, err
	}
	if err := gr.d.drv.graphLaunch(ls.c, gr.exec, s); err != nil {
		return device.Span{}, err
	}
	return gr.d.finish(s, ls)
}

func (gr *graph) close() error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := gr.d.drv.setCurrent(nil, gr.d.ctx); err != nil {
		return err
	}
	var errs []error
	if gr.exec != 0 {
		errs = append(errs, gr.d.drv.graphExecDestroy(gr.exec))
		gr.exec = 0
	}
	if gr.g != 0 {
		errs = append(errs, gr.d.drv.graphDestroy(gr.g))
		gr.g = 0
	}
	return errors.Join(errs...)
}
