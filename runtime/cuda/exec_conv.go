package cuda

import (
	"fmt"
	"unsafe"
)

// convAlgoPerf is cudnnConvolutionFwdAlgoPerf_t (48 bytes).
type convAlgoPerf struct {
	Algo, Status int32
	Time         float32
	_            int32
	Memory       uint64
	Determinism  int32
	MathType     int32
	_            [3]int32
	_            int32
}

type convCand struct {
	algo int
	ws   int64
}

// convCandidates lists the algorithms cuDNN's heuristic offers for cp's descriptors that run
// within wsLimit bytes of workspace, best guess first.
func (h *dnnHandle) convCandidates(cp *convPlan, wsLimit int64) ([]convCand, error) {
	l := h.lib
	perf := make([]convAlgoPerf, 16)
	var got int32
	if err := l.check("cudnnGetConvolutionForwardAlgorithm_v7", call(l.convAlgoV7, h.h, cp.x, cp.w, cp.conv, cp.y, uintptr(len(perf)),
		uintptr(unsafe.Pointer(&got)), uintptr(unsafe.Pointer(&perf[0])))); err != nil {
		return nil, err
	}
	var out []convCand
	seen := map[int32]bool{}
	for _, pr := range perf[:got] {
		if pr.Status != 0 || int64(pr.Memory) > wsLimit || seen[pr.Algo] {
			continue
		}
		var ws uint64
		if l.check("cudnnGetConvolutionForwardWorkspaceSize", call(l.convWs, h.h, cp.x, cp.w, cp.conv, cp.y, uintptr(pr.Algo), uintptr(unsafe.Pointer(&ws)))) != nil || int64(ws) > wsLimit {
			continue
		}
		seen[pr.Algo] = true
		out = append(out, convCand{int(pr.Algo), int64(ws)})
	}
	return out, nil
}

// measureRuns is how many timed runs decide between convolution algorithms (after one warm-up).
const measureRuns = 5

// prepareConvMeasured prepares a convolution and, with opt.MeasureAlgos, times each candidate
// algorithm on scratch buffers (on the prepare stream) and keeps the fastest; swapped reports
// that it is not the heuristic's first choice. Control path; the prepare lock is held.
func (ps *prepState) prepareConvMeasured(d *Device, opt PrepareOptions, s ConvShape) (cp *convPlan, swapped bool, err error) {
	cp, err = ps.dnn.prepareConv(opt.Precision, s, opt.ConvWorkspaceBytes)
	if err != nil || !opt.MeasureAlgos {
		return cp, false, err
	}
	cands, err := ps.dnn.convCandidates(cp, opt.ConvWorkspaceBytes)
	if err != nil || len(cands) < 2 {
		return cp, false, err
	}
	eb := opt.Precision.elemBytes()
	oh, ow := s.OutHW()
	align := func(n int64) int64 { return (n + 255) &^ 255 }
	xb := align(int64(s.N*s.C*s.H*s.W) * eb)
	wb := align(int64(s.K*(s.C/max(s.Groups, 1))*s.R*s.S) * eb)
	yb := align(int64(s.N*s.K*oh*ow) * eb)
	var wsMax int64
	for _, c := range cands {
		wsMax = max(wsMax, c.ws)
	}
	need := xb + wb + yb + align(wsMax)
	if err := ps.scratch(d, need); err != nil {
		return nil, false, err
	}
	x, w, y, ws := ps.measure, ps.measure+uint64(xb), ps.measure+uint64(xb+wb), ps.measure+uint64(xb+wb+yb)
	first, firstWs := cp.Algo, cp.WorkspaceBytes
	best, bestNs := -1, int64(1<<62)
	for i, c := range cands {
		cp.Algo, cp.WorkspaceBytes = c.algo, c.ws
		// One warm-up run, timed: a candidate already 3× slower than the best is dropped
		// without the timed runs (some algorithms take milliseconds on depthwise convs).
		if err := d.drv.eventRecord(ps.c, ps.ev0, ps.stream); err != nil {
			return nil, false, err
		}
		if err := cp.run(x, w, y, ws); err != nil {
			continue // a candidate that cannot run is skipped
		}
		if err := d.drv.eventRecord(ps.c, ps.ev1, ps.stream); err != nil {
			return nil, false, err
		}
		if err := d.drv.eventSynchronize(ps.c, ps.ev1); err != nil {
			return nil, false, err
		}
		if ns, err := d.drv.elapsedNs(ps.c, ps.ms, ps.ev0, ps.ev1); err != nil {
			return nil, false, err
		} else if best >= 0 && ns*measureRuns > 3*bestNs {
			continue
		}
		if err := d.drv.eventRecord(ps.c, ps.ev0, ps.stream); err != nil {
			return nil, false, err
		}
		for range measureRuns {
			if err := cp.run(x, w, y, ws); err != nil {
				return nil, false, err
			}
		}
		if err := d.drv.eventRecord(ps.c, ps.ev1, ps.stream); err != nil {
			return nil, false, err
		}
		if err := d.drv.eventSynchronize(ps.c, ps.ev1); err != nil {
			return nil, false, err
		}
		ns, err := d.drv.elapsedNs(ps.c, ps.ms, ps.ev0, ps.ev1)
		if err != nil {
			return nil, false, err
		}
		if ns < bestNs {
			best, bestNs = i, ns
		}
	}
	if best < 0 {
		cp.Algo, cp.WorkspaceBytes = first, firstWs
		return cp, false, nil
	}
	cp.Algo, cp.WorkspaceBytes = cands[best].algo, cands[best].ws
	return cp, cp.Algo != first, nil
}

// scratch makes ps.measure at least n bytes (zeroed). Context current (prepare thread).
func (ps *prepState) scratch(d *Device, n int64) error {
	if ps.measureN < n {
		if ps.measure != 0 {
			if err := d.drv.memFree(ps.measure); err != nil {
				return err
			}
			ps.measure, ps.measureN = 0, 0
		}
		p, err := d.drv.memAlloc(n)
		if err != nil {
			return fmt.Errorf("cannot allocate %d bytes to time convolution algorithms: %w", n, err)
		}
		ps.measure, ps.measureN = p, n
		if err := d.drv.memsetD32Async(p, 0, int(n/4), ps.stream); err != nil {
			return err
		}
	}
	return nil
}

// gemmT is gemm with B optionally transposed (B stored N×K, as Gemm's transB = 1 weights).
// Timing: exec or prepare thread; no allocation.
func (h *blasHandle) gemmT(p Precision, m, n, k int, a, b, c uint64, transB bool) error {
	if !transB {
		return h.gemm(p, m, n, k, a, b, c)
	}
	typ, compute := uintptr(cudaR32F), uintptr(cublasCompute32F)
	switch p {
	case TF32:
		compute = cublasCompute32FFastTF
	case FP16:
		typ = cudaR16F
	}
	// Column-major: Cᵀ (N×M, ld N) = op(B') · A', B' the K×N column-major view of B (ld K)
	// transposed, A' the K×M view of A (ld K).
	r := h.c.call(h.lib.gemmEx, h.h, cublasOpT, cublasOpN, uintptr(n), uintptr(m), uintptr(k),
		uintptr(unsafe.Pointer(h.one)), uintptr(b), typ, uintptr(k), uintptr(a), typ, uintptr(k),
		uintptr(unsafe.Pointer(h.zero)), uintptr(c), typ, uintptr(n), compute, gemmAlgoDefault)
	if r != 0 {
		return h.lib.check("cublasGemmEx", r)
	}
	return nil
}

const cublasOpT = 1
