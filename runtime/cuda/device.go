package cuda

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/clockwork-go/clockwork/runtime/device"
)

// Device is one GPU: its primary context, one stream per lane, the region handed to alloc,
// and our compiled kernels.
//
// The worker drives a Device from four executor threads, one per Lane (device.Device's
// contract). Every lane call makes the context current on the calling OS thread (cuCtxSetCurrent
// is per thread), records a start event, enqueues the work on the lane's stream, records an end
// event and waits for it; the Span's length is the device time between the two events and its
// end is the caller's clock when the wait returned. So:
//
//  1. A lane's stream, events and scratch are touched only by that lane's thread; lanes never
//     share mutable state, so they need no lock and run concurrently.
//  2. The exec stream has the highest priority the device offers, copy streams the lowest, so a
//     queued INFER kernel is not delayed behind copy-engine bookkeeping.
//  3. No lane call allocates Go memory or device memory: argument arrays, event handles and
//     the float the driver writes elapsed time into are allocated at Open.
//
// Alternatives rejected: a blocking-sync context (adds ~50 µs wake-up latency to every call on
// a machine where the executor thread owns a core anyway); a host clock read around the call
// for Spans (it counts host launch time, which events do not).
type Device struct {
	b    *Backend
	drv  *driver
	ord  int
	dev  cuDevice
	ctx  uintptr
	info device.Info
	cc   [2]int
	sms  int

	streams [device.NumLanes]uintptr
	lanes   [device.NumLanes]*laneState

	region uint64
	mod    uintptr
	k      *kernelSet
	fill   *filler

	mu     sync.Mutex // control path: lazy library handles, Close
	blas   *blasHandle
	dnn    *dnnHandle
	blasWs uint64
	closed atomic.Bool // set by Close; lane calls after it fail instead of using freed handles

	prepMu sync.Mutex // Prepare and Program.Close: one at a time
	prep   *prepState
}

// laneState is the per-lane scratch a lane call uses, allocated once.
type laneState struct {
	start, end uintptr // CUevents
	ms         *float32
	c          *caller
}

var (
	_ device.Device        = (*Device)(nil)
	_ device.HostRegistrar = (*Device)(nil)
)

// blasWorkspaceBytes is the fixed cuBLAS workspace per device (cuBLAS asks for ≥ 32 MiB on
// Hopper to pick its fastest kernels; fixed so nothing allocates during capture or serving).
const blasWorkspaceBytes = 64 << 20

func (b *Backend) openDevice(idx, ord int, regionBytes int64) (_ *Device, err error) {
	drv := b.drv
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	dv, err := drv.device(ord)
	if err != nil {
		return nil, err
	}
	d := &Device{b: b, drv: drv, ord: ord, dev: dv}
	if d.ctx, err = drv.primaryCtxRetain(dv); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			d.release()
		}
	}()
	if err = drv.setCurrent(nil, d.ctx); err != nil {
		return nil, err
	}
	name, err := drv.deviceName(dv)
	if err != nil {
		return nil, err
	}
	total, err := drv.totalMem(dv)
	if err != nil {
		return nil, err
	}
	attrs := map[int]*int{attrCCMajor: &d.cc[0], attrCCMinor: &d.cc[1], attrSMCount: &d.sms}
	var dom, bus, pdev int
	attrs[attrPCIDomainID], attrs[attrPCIBusID], attrs[attrPCIDeviceID] = &dom, &bus, &pdev
	for a, dst := range attrs {
		if *dst, err = drv.attr(dv, a); err != nil {
			return nil, err
		}
	}
	least, greatest, err := drv.streamPriorityRange()
	if err != nil {
		return nil, err
	}
	for l := range device.NumLanes {
		prio := least
		if l == device.LaneExec {
			prio = greatest
		}
		if d.streams[l], err = drv.streamCreate(prio); err != nil {
			return nil, err
		}
		ls := &laneState{ms: new(float32), c: newCaller()}
		d.lanes[l] = ls
		if ls.start, err = drv.eventCreate(cuEventDefault); err != nil {
			return nil, err
		}
		if ls.end, err = drv.eventCreate(cuEventDefault); err != nil {
			return nil, err
		}
	}
	cubin, err := b.compileKernels(d.cc[0], d.cc[1])
	if err != nil {
		return nil, err
	}
	if d.mod, err = drv.moduleLoadData(cubin); err != nil {
		return nil, err
	}
	if d.k, err = newKernelSet(drv, d.mod, d.sms, d.lanes[device.LaneExec].c); err != nil {
		return nil, err
	}
	if err = d.openFiller(); err != nil {
		return nil, err
	}
	if d.blasWs, err = drv.memAlloc(blasWorkspaceBytes); err != nil {
		return nil, err
	}
	free, _, err := drv.memInfo()
	if err != nil {
		return nil, err
	}
	if regionBytes == 0 {
		regionBytes = free - b.cfg.ReserveBytes
		regionBytes &^= 2<<20 - 1 // whole 2 MiB
		if regionBytes <= 0 {
			return nil, fmt.Errorf("cannot size region: %d bytes free, %d reserved (lower Config.ReserveBytes)", free, b.cfg.ReserveBytes)
		}
	}
	if d.region, err = drv.memAlloc(regionBytes); err != nil {
		return nil, fmt.Errorf("region of %d bytes (%d free): %w", regionBytes, free, err)
	}
	busID := fmt.Sprintf("%04x:%02x:%02x.0", dom, bus, pdev)
	d.info = device.Info{
		Backend: "cuda", Index: idx, Name: name, MemBytes: total,
		Base: device.Ptr(d.region), Size: regionBytes, CPUs: localCPUs(busID),
	}
	return d, nil
}

// Info describes the device and its region. Any goroutine.
func (d *Device) Info() device.Info { return d.info }

// ComputeCapability returns (major, minor), e.g. (9, 0) for an H100. Any goroutine.
func (d *Device) ComputeCapability() (int, int) { return d.cc[0], d.cc[1] }

// inRegion reports whether [p, p+n) lies inside the region. Copies outside it are refused: a
// bad address would fault the context for every later call.
func (d *Device) inRegion(p device.Ptr, n int) bool {
	base := uint64(d.info.Base)
	return uint64(p) >= base && uint64(n) <= uint64(d.info.Size) && uint64(p)-base <= uint64(d.info.Size)-uint64(n)
}

var (
	errLane   = errors.New("lane out of range")
	errClosed = errors.New("device is closed")
)

// begin makes the context current on this thread and records the lane's start event. The
// caller holds LockOSThread.
func (d *Device) begin(lane device.Lane) (uintptr, *laneState, error) {
	if lane >= device.NumLanes {
		return 0, nil, fmt.Errorf("cuda device %d: %w: %d", d.ord, errLane, lane)
	}
	if d.closed.Load() {
		return 0, nil, fmt.Errorf("cuda device %d: %w", d.ord, errClosed)
	}
	s, ls := d.streams[lane], d.lanes[lane]
	if err := d.drv.setCurrent(ls.c, d.ctx); err != nil {
		return 0, nil, err
	}
	if err := d.drv.eventRecord(ls.c, ls.start, s); err != nil {
		return 0, nil, err
	}
	return s, ls, nil
}

// finish records the end event, waits for it and returns the span.
func (d *Device) finish(s uintptr, ls *laneState) (device.Span, error) {
	if err := d.drv.eventRecord(ls.c, ls.end, s); err != nil {
		return device.Span{}, err
	}
	if err := d.drv.eventSynchronize(ls.c, ls.end); err != nil {
		return device.Span{}, err
	}
	end := d.b.now()
	ns, err := d.drv.elapsedNs(ls.c, ls.ms, ls.start, ls.end)
	if err != nil {
		return device.Span{}, err
	}
	return device.Span{StartNs: end - ns, EndNs: end}, nil
}

// CopyIn copies pinned host memory to dst on lane and waits.
// Timing: executor thread of lane; no allocation; host overhead ~10 µs plus the copy.
func (d *Device) CopyIn(lane device.Lane, dst device.Ptr, src []byte) (device.Span, error) {
	if !d.inRegion(dst, len(src)) {
		return device.Span{}, fmt.Errorf("cannot copy %d bytes to %#x: outside region [%#x, +%d)", len(src), uint64(dst), uint64(d.info.Base), d.info.Size)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	s, ls, err := d.begin(lane)
	if err != nil {
		return device.Span{}, err
	}
	if len(src) > 0 {
		if err := d.drv.memcpyHtoDAsync(ls.c, uint64(dst), unsafe.Pointer(&src[0]), len(src), s); err != nil {
			return device.Span{}, err
		}
	}
	return d.finish(s, ls)
}

// CopyOut copies src to pinned host memory on lane and waits.
// Timing: executor thread of lane; no allocation.
func (d *Device) CopyOut(lane device.Lane, dst []byte, src device.Ptr) (device.Span, error) {
	if !d.inRegion(src, len(dst)) {
		return device.Span{}, fmt.Errorf("cannot copy %d bytes from %#x: outside region [%#x, +%d)", len(dst), uint64(src), uint64(d.info.Base), d.info.Size)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	s, ls, err := d.begin(lane)
	if err != nil {
		return device.Span{}, err
	}
	if len(dst) > 0 {
		if err := d.drv.memcpyDtoHAsync(ls.c, unsafe.Pointer(&dst[0]), uint64(src), len(dst), s); err != nil {
			return device.Span{}, err
		}
	}
	return d.finish(s, ls)
}

// CopyDevice copies n bytes inside the region on lane and waits.
// Timing: executor thread of lane; no allocation.
func (d *Device) CopyDevice(lane device.Lane, dst, src device.Ptr, n int) (device.Span, error) {
	if !d.inRegion(dst, n) || !d.inRegion(src, n) {
		return device.Span{}, fmt.Errorf("cannot copy %d bytes %#x → %#x: outside region", n, uint64(src), uint64(dst))
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	s, ls, err := d.begin(lane)
	if err != nil {
		return device.Span{}, err
	}
	if n > 0 {
		if err := d.drv.memcpyDtoDAsync(ls.c, uint64(dst), uint64(src), n, s); err != nil {
			return device.Span{}, err
		}
	}
	return d.finish(s, ls)
}

// RegisterHost page-locks b (mmap'd memory that outlives the registration) for DMA with every
// context. Control path: the driver pins every page, so it blocks longer the larger b is.
func (d *Device) RegisterHost(b []byte) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := d.drv.setCurrent(nil, d.ctx); err != nil {
		return err
	}
	if err := d.drv.hostRegister(b); err != nil {
		return fmt.Errorf("cannot register %d bytes of host memory for DMA (check the memlock limit and free RAM): %w", len(b), err)
	}
	return nil
}

// UnregisterHost undoes RegisterHost. Control path.
func (d *Device) UnregisterHost(b []byte) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := d.drv.setCurrent(nil, d.ctx); err != nil {
		return err
	}
	return d.drv.hostUnregister(b)
}

// handles returns the device's cuBLAS and cuDNN handles on the exec stream, creating them on
// first use. Control path (creation takes ~100 ms).
func (d *Device) blasHandle() (*blasHandle, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.blas != nil {
		return d.blas, nil
	}
	l, err := d.b.blasLib()
	if err != nil {
		return nil, err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := d.drv.setCurrent(nil, d.ctx); err != nil {
		return nil, err
	}
	d.blas, err = newBLAS(l, d.lanes[device.LaneExec].c, d.streams[device.LaneExec], d.blasWs, blasWorkspaceBytes)
	return d.blas, err
}

func (d *Device) dnnHandle() (*dnnHandle, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dnn != nil {
		return d.dnn, nil
	}
	l, err := d.b.dnnLib()
	if err != nil {
		return nil, err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := d.drv.setCurrent(nil, d.ctx); err != nil {
		return nil, err
	}
	d.dnn, err = newDNN(l, d.lanes[device.LaneExec].c, d.streams[device.LaneExec])
	return d.dnn, err
}

// Close waits for all work, then frees the region, handles, module, streams and events and
// releases the primary context. No call may follow.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed.Swap(true) {
		return nil
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := d.drv.setCurrent(nil, d.ctx); err != nil {
		return err
	}
	return d.release()
}

// release frees whatever was created, in reverse order, and joins the errors. The context is
// current.
func (d *Device) release() error {
	drv := d.drv
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if d.ctx != 0 {
		add(drv.ctxSynchronize())
	}
	if d.blas != nil {
		add(d.blas.close())
	}
	if d.dnn != nil {
		add(d.dnn.close())
	}
	if d.prep != nil {
		add(d.prep.close(drv))
		d.prep = nil
	}
	if f := d.fill; f != nil {
		if f.g != nil {
			add(f.g.close())
		}
		if f.stream != 0 {
			add(drv.streamDestroy(f.stream))
		}
		d.fill = nil
	}
	if d.region != 0 {
		add(drv.memFree(d.region))
		d.region = 0
	}
	if d.blasWs != 0 {
		add(drv.memFree(d.blasWs))
		d.blasWs = 0
	}
	if d.mod != 0 {
		add(drv.moduleUnload(d.mod))
		d.mod = 0
	}
	for l := range d.streams {
		if ls := d.lanes[l]; ls != nil {
			if ls.start != 0 {
				add(drv.eventDestroy(ls.start))
			}
			if ls.end != 0 {
				add(drv.eventDestroy(ls.end))
			}
		}
		if d.streams[l] != 0 {
			add(drv.streamDestroy(d.streams[l]))
			d.streams[l] = 0
		}
	}
	if d.ctx != 0 {
		add(drv.primaryCtxRelease(d.dev))
		d.ctx = 0
	}
	return errors.Join(errs...)
}

// SMs is the device's multiprocessor count. Any goroutine.
func (d *Device) SMs() int { return d.sms }
