package cuda

// CUDA virtual memory management: reserve a device address range once and map physical pages
// into it, so a graph captured on the range stays valid when LOAD puts the model's weights in
// other physical pages (DESIGN.md §7, the alternative to re-binding kernel arguments). Unsafe
// for the same reason as driver.go.

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"
)

// Constants of cuda.h's VMM API.
const (
	cuMemAllocationTypePinned = 1
	cuMemLocationTypeDevice   = 1
	cuMemAccessReadWrite      = 3
	cuMemGranularityMinimum   = 0
)

// memAllocationProp is CUmemAllocationProp (32 bytes).
type memAllocationProp struct {
	Type          int32
	HandleTypes   int32
	LocType       int32
	LocID         int32
	Win32Metadata uintptr
	AllocFlags    [8]byte
}

// memAccessDesc is CUmemAccessDesc (12 bytes).
type memAccessDesc struct {
	LocType int32
	LocID   int32
	Flags   int32
}

type vmmFuncs struct {
	reserve, free, create, release, mmap, unmap, setAccess, granularity uintptr
}

func (d *driver) loadVMM() error {
	d.vmmOnce.Do(func() { d.vmmErr = d.resolveVMM() })
	return d.vmmErr
}

func (d *driver) resolveVMM() error {
	return d.lib.symbols(map[string]*uintptr{
		"cuMemAddressReserve":           &d.vmm.reserve,
		"cuMemAddressFree":              &d.vmm.free,
		"cuMemCreate":                   &d.vmm.create,
		"cuMemRelease":                  &d.vmm.release,
		"cuMemMap":                      &d.vmm.mmap,
		"cuMemUnmap":                    &d.vmm.unmap,
		"cuMemSetAccess":                &d.vmm.setAccess,
		"cuMemGetAllocationGranularity": &d.vmm.granularity,
	})
}

// vaRange is a reserved device address range of slots pages of pageBytes each. Each slot is
// mapped to a physical page or empty. Control path (the LOAD thread): mapping costs tens to
// hundreds of µs (cuMemSetAccess dominates), never on the INFER path. Unmapping a page that a
// running graph reads is the caller's error: the driver does not wait.
type vaRange struct {
	d         *Device
	base      uint64
	pageBytes int64
	mapped    []bool
}

func (d *Device) prop() *memAllocationProp {
	return &memAllocationProp{Type: cuMemAllocationTypePinned, LocType: cuMemLocationTypeDevice, LocID: int32(d.dev)}
}

// vmmGranularity returns the page size unit of physical allocations (2 MiB on Hopper).
func (d *Device) vmmGranularity() (int64, error) {
	if err := d.drv.loadVMM(); err != nil {
		return 0, err
	}
	var g uint64
	err := d.drv.check("cuMemGetAllocationGranularity", call(d.drv.vmm.granularity, uintptr(unsafe.Pointer(&g)), uintptr(unsafe.Pointer(d.prop())), cuMemGranularityMinimum))
	return int64(g), err
}

// physAlloc creates one physical page of n bytes (a multiple of the granularity).
func (d *Device) physAlloc(n int64) (uint64, error) {
	if err := d.drv.loadVMM(); err != nil {
		return 0, err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := d.drv.setCurrent(nil, d.ctx); err != nil {
		return 0, err
	}
	var h uint64
	if err := d.drv.check("cuMemCreate", call(d.drv.vmm.create, uintptr(unsafe.Pointer(&h)), uintptr(n), uintptr(unsafe.Pointer(d.prop())), 0)); err != nil {
		return 0, fmt.Errorf("cannot create a %d-byte physical page: %w", n, err)
	}
	return h, nil
}

func (d *Device) physFree(h uint64) error {
	return d.drv.check("cuMemRelease", call(d.drv.vmm.release, uintptr(h)))
}

// reserve reserves slots × pageBytes of device address space (no memory behind it yet).
func (d *Device) reserve(slots int, pageBytes int64) (*vaRange, error) {
	gran, err := d.vmmGranularity()
	if err != nil {
		return nil, err
	}
	if slots <= 0 || pageBytes <= 0 || pageBytes%gran != 0 {
		return nil, fmt.Errorf("cannot reserve %d pages of %d bytes: page size must be a positive multiple of %d", slots, pageBytes, gran)
	}
	r := &vaRange{d: d, pageBytes: pageBytes, mapped: make([]bool, slots)}
	size := int64(slots) * pageBytes
	if err := d.drv.check("cuMemAddressReserve", call(d.drv.vmm.reserve, uintptr(unsafe.Pointer(&r.base)), uintptr(size), uintptr(gran), 0, 0)); err != nil {
		return nil, err
	}
	return r, nil
}

// mapPage maps physical page h into slot and grants the device read/write access.
func (r *vaRange) mapPage(slot int, h uint64) error {
	if slot < 0 || slot >= len(r.mapped) || r.mapped[slot] {
		return fmt.Errorf("cannot map slot %d of %d: out of range or already mapped", slot, len(r.mapped))
	}
	d := r.d
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := d.drv.setCurrent(nil, d.ctx); err != nil {
		return err
	}
	va := r.base + uint64(slot)*uint64(r.pageBytes)
	if err := d.drv.check("cuMemMap", call(d.drv.vmm.mmap, uintptr(va), uintptr(r.pageBytes), 0, uintptr(h), 0)); err != nil {
		return err
	}
	acc := &memAccessDesc{LocType: cuMemLocationTypeDevice, LocID: int32(d.dev), Flags: cuMemAccessReadWrite}
	if err := d.drv.check("cuMemSetAccess", call(d.drv.vmm.setAccess, uintptr(va), uintptr(r.pageBytes), uintptr(unsafe.Pointer(acc)), 1)); err != nil {
		call(d.drv.vmm.unmap, uintptr(va), uintptr(r.pageBytes))
		return err
	}
	r.mapped[slot] = true
	return nil
}

// unmapPage removes slot's mapping; the physical page keeps its contents.
func (r *vaRange) unmapPage(slot int) error {
	if slot < 0 || slot >= len(r.mapped) || !r.mapped[slot] {
		return fmt.Errorf("cannot unmap slot %d of %d: out of range or not mapped", slot, len(r.mapped))
	}
	d := r.d
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := d.drv.setCurrent(nil, d.ctx); err != nil {
		return err
	}
	va := r.base + uint64(slot)*uint64(r.pageBytes)
	if err := d.drv.check("cuMemUnmap", call(d.drv.vmm.unmap, uintptr(va), uintptr(r.pageBytes))); err != nil {
		return err
	}
	r.mapped[slot] = false
	return nil
}

// free unmaps every slot and returns the address range.
func (r *vaRange) free() error {
	var errs []error
	for s, m := range r.mapped {
		if m {
			errs = append(errs, r.unmapPage(s))
		}
	}
	size := int64(len(r.mapped)) * r.pageBytes
	errs = append(errs, r.d.drv.check("cuMemAddressFree", call(r.d.drv.vmm.free, uintptr(r.base), uintptr(size))))
	return errors.Join(errs...)
}
