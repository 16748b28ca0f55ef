package wire

import (
	"fmt"
	"strings"
)

// Worker-link messages. Times in them (…Ns) are int64 nanoseconds in the worker's clock domain
// (ClockUnixMono of the worker process): the controller converts its plan into the worker's
// clock with its ClockSync estimate before sending, in one place, and the worker never converts.

// Source says where LoadModel finds the model.
type Source uint8

const (
	// SourcePath: Path names a model file on the worker, under its model root.
	SourcePath Source = 1
	// SourceUpload: the frame's payload holds the model file's bytes.
	SourceUpload Source = 2
)

func (s Source) String() string {
	switch s {
	case SourcePath:
		return "path"
	case SourceUpload:
		return "upload"
	}
	return fmt.Sprintf("source(%d)", uint8(s))
}

// LoadModel registers a model: on the worker link the controller chooses ModelID; on the client
// link ModelID is 0 and the controller assigns one, answered in ModelInfo. It does not load
// weights onto a GPU (that is LoadWeights).
type LoadModel struct {
	RequestID uint64 // action id (worker link) or request id (client link)
	ModelID   uint32
	Source    Source
	Name      []byte // at most MaxNameLen
	Path      []byte // SourcePath only; at most MaxPathLen
}

func (*LoadModel) Type() Type                   { return TypeLoadModel }
func (m *LoadModel) FrameID() uint64            { return m.RequestID }
func (m *LoadModel) AppendTo(dst []byte) []byte { return AppendLoadModel(dst, m) }

// AppendLoadModel appends m's message header.
func AppendLoadModel(dst []byte, m *LoadModel) []byte {
	dst = appendU64(dst, m.RequestID)
	dst = appendU32(dst, m.ModelID)
	dst = appendU8(dst, uint8(m.Source))
	dst = appendBytes(dst, m.Name, MaxNameLen, "LoadModel.Name")
	return appendBytes(dst, m.Path, MaxPathLen, "LoadModel.Path")
}

func (m *LoadModel) Decode(src []byte) ([]byte, error) {
	d := decoder{b: src, msg: "LoadModel"}
	m.RequestID = d.u64("RequestID")
	m.ModelID = d.u32("ModelID")
	m.Source = Source(d.u8("Source"))
	if d.err == nil && m.Source != SourcePath && m.Source != SourceUpload {
		d.fail(badValue("LoadModel.Source", uint64(m.Source)))
	}
	m.Name = d.bytes(m.Name, MaxNameLen, "Name")
	m.Path = d.bytes(m.Path, MaxPathLen, "Path")
	return d.b, d.err
}

func (m *LoadModel) String() string {
	return fmt.Sprintf("load-model req=%d model=%d source=%s name=%s path=%s", m.RequestID, m.ModelID, m.Source, quote(m.Name), quote(m.Path))
}

// ModelDesc describes a registered model.
type ModelDesc struct {
	ModelID      uint32
	Name         []byte   // at most MaxNameLen
	InputBytes   uint64   // one item's input
	OutputBytes  uint64   // one item's output
	WeightsBytes uint64   // weights as laid out in cache pages (pages × page size)
	WeightsPages uint32   // cache pages the weights take
	Batches      []uint16 // prepared batch sizes, ascending; at most MaxBatchSizes
}

func appendModelDesc(dst []byte, m *ModelDesc) []byte {
	dst = appendU32(dst, m.ModelID)
	dst = appendBytes(dst, m.Name, MaxNameLen, "ModelDesc.Name")
	dst = appendU64(dst, m.InputBytes)
	dst = appendU64(dst, m.OutputBytes)
	dst = appendU64(dst, m.WeightsBytes)
	dst = appendU32(dst, m.WeightsPages)
	if len(m.Batches) > MaxBatchSizes {
		panic("BUG: wire: ModelDesc.Batches over MaxBatchSizes")
	}
	dst = appendU16(dst, uint16(len(m.Batches)))
	for _, b := range m.Batches {
		dst = appendU16(dst, b)
	}
	return dst
}

// modelDescMin is the smallest encoding of a ModelDesc, for count checks.
const modelDescMin = 4 + 2 + 8 + 8 + 8 + 4 + 2

func (d *decoder) modelDesc(m *ModelDesc) {
	m.ModelID = d.u32("ModelID")
	m.Name = d.bytes(m.Name, MaxNameLen, "Name")
	m.InputBytes = d.u64("InputBytes")
	m.OutputBytes = d.u64("OutputBytes")
	m.WeightsBytes = d.u64("WeightsBytes")
	m.WeightsPages = d.u32("WeightsPages")
	n := d.count(MaxBatchSizes, 2, "Batches")
	m.Batches = grow(m.Batches, n)
	for i := range m.Batches {
		m.Batches[i] = d.u16("Batches")
	}
}

func (m *ModelDesc) String() string {
	return fmt.Sprintf("model=%d name=%s in=%d out=%d weights=%d pages=%d batches=%v", m.ModelID, quote(m.Name), m.InputBytes, m.OutputBytes, m.WeightsBytes, m.WeightsPages, m.Batches)
}

// ModelInfo answers LoadModel on both links: the model's id and sizes, or why it was refused.
type ModelInfo struct {
	RequestID uint64
	Status    Status
	Reason    []byte // at most MaxReasonLen
	Model     ModelDesc
}

func (*ModelInfo) Type() Type                   { return TypeModelInfo }
func (m *ModelInfo) FrameID() uint64            { return m.RequestID }
func (m *ModelInfo) AppendTo(dst []byte) []byte { return AppendModelInfo(dst, m) }

// AppendModelInfo appends m's message header.
func AppendModelInfo(dst []byte, m *ModelInfo) []byte {
	dst = appendU64(dst, m.RequestID)
	dst = appendU16(dst, uint16(m.Status))
	dst = appendBytes(dst, m.Reason, MaxReasonLen, "ModelInfo.Reason")
	return appendModelDesc(dst, &m.Model)
}

func (m *ModelInfo) Decode(src []byte) ([]byte, error) {
	d := decoder{b: src, msg: "ModelInfo"}
	m.RequestID = d.u64("RequestID")
	m.Status = d.status("Status")
	m.Reason = d.bytes(m.Reason, MaxReasonLen, "Reason")
	d.modelDesc(&m.Model)
	return d.b, d.err
}

func (m *ModelInfo) String() string {
	return fmt.Sprintf("model-info req=%d status=%s reason=%s %s", m.RequestID, m.Status, quote(m.Reason), m.Model.String())
}

// Window is the fields LOAD and UNLOAD share: which model on which GPU, and when.
type Window struct {
	ActionID uint64
	ModelID  uint32
	GPU      uint16
	// EarliestNs and LatestNs bound when the worker may start the action (worker clock); a
	// worker that reaches it after LatestNs rejects it with StatusWindowPassed (C3).
	EarliestNs int64
	LatestNs   int64
	// ExpectedNs is the controller's estimate of the action's duration.
	ExpectedNs int64
}

func appendWindow(dst []byte, w *Window) []byte {
	dst = appendU64(dst, w.ActionID)
	dst = appendU32(dst, w.ModelID)
	dst = appendU16(dst, w.GPU)
	dst = appendI64(dst, w.EarliestNs)
	dst = appendI64(dst, w.LatestNs)
	return appendI64(dst, w.ExpectedNs)
}

func (d *decoder) window(w *Window) {
	w.ActionID = d.u64("ActionID")
	w.ModelID = d.u32("ModelID")
	w.GPU = d.u16("GPU")
	w.EarliestNs = d.i64("EarliestNs")
	w.LatestNs = d.i64("LatestNs")
	w.ExpectedNs = d.i64("ExpectedNs")
}

func (w *Window) format(name string) string {
	return fmt.Sprintf("%s action=%d model=%d gpu=%d earliest=%d latest=%d expected=%d", name, w.ActionID, w.ModelID, w.GPU, w.EarliestNs, w.LatestNs, w.ExpectedNs)
}

// LoadWeights (LOAD) copies a registered model's weights into free cache pages of one GPU.
type LoadWeights struct{ Window }

func (*LoadWeights) Type() Type                   { return TypeLoadWeights }
func (m *LoadWeights) FrameID() uint64            { return m.ActionID }
func (m *LoadWeights) AppendTo(dst []byte) []byte { return AppendLoadWeights(dst, m) }

// AppendLoadWeights appends m's message header.
//
// Timing: controller action path; must not allocate when dst has room.
func AppendLoadWeights(dst []byte, m *LoadWeights) []byte { return appendWindow(dst, &m.Window) }

func (m *LoadWeights) Decode(src []byte) ([]byte, error) {
	d := decoder{b: src, msg: "LoadWeights"}
	d.window(&m.Window)
	return d.b, d.err
}

func (m *LoadWeights) String() string { return m.format("load-weights") }

// EvictWeights (UNLOAD) frees a model's cache pages on one GPU.
type EvictWeights struct{ Window }

func (*EvictWeights) Type() Type                   { return TypeEvictWeights }
func (m *EvictWeights) FrameID() uint64            { return m.ActionID }
func (m *EvictWeights) AppendTo(dst []byte) []byte { return AppendEvictWeights(dst, m) }

// AppendEvictWeights appends m's message header.
func AppendEvictWeights(dst []byte, m *EvictWeights) []byte { return appendWindow(dst, &m.Window) }

func (m *EvictWeights) Decode(src []byte) ([]byte, error) {
	d := decoder{b: src, msg: "EvictWeights"}
	d.window(&m.Window)
	return d.b, d.err
}

func (m *EvictWeights) String() string { return m.format("evict-weights") }

// InferFlags modify an Infer.
type InferFlags uint16

const (
	// InferSynthInput: the payload is empty and the worker synthesises the input (scale tests
	// that measure the controller apart from data movement; the worker's Hello says it can).
	InferSynthInput InferFlags = 1 << 0
	// InferNoOutput: the worker sends a Result without the output payload.
	InferNoOutput InferFlags = 1 << 1

	inferFlagsKnown = InferSynthInput | InferNoOutput
)

// Infer (INFER) runs a batch of one model on one GPU. The frame's payload is the input:
// Batch × the model's InputBytes, unless InferSynthInput.
type Infer struct {
	Window
	Batch uint16
	Flags InferFlags
}

func (*Infer) Type() Type                   { return TypeInfer }
func (m *Infer) FrameID() uint64            { return m.ActionID }
func (m *Infer) AppendTo(dst []byte) []byte { return AppendInfer(dst, m) }

// AppendInfer appends m's message header.
//
// Timing: controller action path; must not allocate when dst has room; ~10ns.
func AppendInfer(dst []byte, m *Infer) []byte {
	dst = appendWindow(dst, &m.Window)
	dst = appendU16(dst, m.Batch)
	return appendU16(dst, uint16(m.Flags))
}

// Decode reads m's message header.
//
// Timing: worker reader; must not allocate; ~10ns.
func (m *Infer) Decode(src []byte) ([]byte, error) {
	d := decoder{b: src, msg: "Infer"}
	d.window(&m.Window)
	m.Batch = d.u16("Batch")
	m.Flags = InferFlags(d.u16("Flags"))
	if d.err == nil && m.Flags&^inferFlagsKnown != 0 {
		d.fail(badValue("Infer.Flags", uint64(m.Flags)))
	}
	return d.b, d.err
}

func (m *Infer) String() string {
	return fmt.Sprintf("%s batch=%d flags=%#x", m.format("infer"), m.Batch, uint16(m.Flags))
}

// ClearCache evicts every model from one GPU, or from all with GPU == AllGPUs.
type ClearCache struct {
	ActionID uint64
	GPU      uint16
}

func (*ClearCache) Type() Type                   { return TypeClearCache }
func (m *ClearCache) FrameID() uint64            { return m.ActionID }
func (m *ClearCache) AppendTo(dst []byte) []byte { return AppendClearCache(dst, m) }

// AppendClearCache appends m's message header.
func AppendClearCache(dst []byte, m *ClearCache) []byte {
	dst = appendU64(dst, m.ActionID)
	return appendU16(dst, m.GPU)
}

func (m *ClearCache) Decode(src []byte) ([]byte, error) {
	d := decoder{b: src, msg: "ClearCache"}
	m.ActionID = d.u64("ActionID")
	m.GPU = d.u16("GPU")
	return d.b, d.err
}

func (m *ClearCache) String() string {
	return fmt.Sprintf("clear-cache action=%d gpu=%d", m.ActionID, m.GPU)
}

// GetWorkerState asks the worker for a WorkerState.
type GetWorkerState struct {
	ActionID uint64
}

func (*GetWorkerState) Type() Type                   { return TypeGetWorkerState }
func (m *GetWorkerState) FrameID() uint64            { return m.ActionID }
func (m *GetWorkerState) AppendTo(dst []byte) []byte { return AppendGetWorkerState(dst, m) }

// AppendGetWorkerState appends m's message header.
func AppendGetWorkerState(dst []byte, m *GetWorkerState) []byte { return appendU64(dst, m.ActionID) }

func (m *GetWorkerState) Decode(src []byte) ([]byte, error) {
	d := decoder{b: src, msg: "GetWorkerState"}
	m.ActionID = d.u64("ActionID")
	return d.b, d.err
}

func (m *GetWorkerState) String() string {
	return fmt.Sprintf("get-worker-state action=%d", m.ActionID)
}

// GPUState is one GPU's weights cache in a WorkerState.
type GPUState struct {
	GPU        uint16
	TotalPages uint32
	FreePages  uint32
	Models     []uint32 // ids whose weights are resident, ascending; at most MaxModels
}

// WorkerState answers GetWorkerState: what each GPU holds and which models are registered.
type WorkerState struct {
	ActionID   uint64
	GPUs       []GPUState // at most MaxGPUs
	Registered []uint32   // registered model ids, ascending; at most MaxModels
}

func (*WorkerState) Type() Type                   { return TypeWorkerState }
func (m *WorkerState) FrameID() uint64            { return m.ActionID }
func (m *WorkerState) AppendTo(dst []byte) []byte { return AppendWorkerState(dst, m) }

func appendIDs(dst []byte, ids []uint32, field string) []byte {
	if len(ids) > MaxModels {
		panic("BUG: wire: " + field + " over MaxModels")
	}
	dst = appendU16(dst, uint16(len(ids)))
	for _, id := range ids {
		dst = appendU32(dst, id)
	}
	return dst
}

func (d *decoder) ids(dst []uint32, field string) []uint32 {
	n := d.count(MaxModels, 4, field)
	dst = grow(dst, n)
	for i := range dst {
		dst[i] = d.u32(field)
	}
	return dst
}

// AppendWorkerState appends m's message header.
func AppendWorkerState(dst []byte, m *WorkerState) []byte {
	dst = appendU64(dst, m.ActionID)
	if len(m.GPUs) > MaxGPUs {
		panic("BUG: wire: WorkerState.GPUs over MaxGPUs")
	}
	dst = appendU16(dst, uint16(len(m.GPUs)))
	for i := range m.GPUs {
		g := &m.GPUs[i]
		dst = appendU16(dst, g.GPU)
		dst = appendU32(dst, g.TotalPages)
		dst = appendU32(dst, g.FreePages)
		dst = appendIDs(dst, g.Models, "WorkerState.GPUs.Models")
	}
	return appendIDs(dst, m.Registered, "WorkerState.Registered")
}

func (m *WorkerState) Decode(src []byte) ([]byte, error) {
	d := decoder{b: src, msg: "WorkerState"}
	m.ActionID = d.u64("ActionID")
	n := d.count(MaxGPUs, 12, "GPUs")
	m.GPUs = grow(m.GPUs, n)
	for i := range m.GPUs {
		g := &m.GPUs[i]
		g.GPU = d.u16("GPUs.GPU")
		g.TotalPages = d.u32("GPUs.TotalPages")
		g.FreePages = d.u32("GPUs.FreePages")
		g.Models = d.ids(g.Models, "GPUs.Models")
	}
	m.Registered = d.ids(m.Registered, "Registered")
	return d.b, d.err
}

func (m *WorkerState) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "worker-state action=%d registered=%v", m.ActionID, m.Registered)
	for _, g := range m.GPUs {
		fmt.Fprintf(&b, " [gpu=%d pages=%d/%d models=%v]", g.GPU, g.FreePages, g.TotalPages, g.Models)
	}
	return b.String()
}

// Phase indexes Result.Phases.
type Phase uint8

const (
	PhaseWeights Phase = iota // LOAD: weights host → device
	PhaseInput                // INFER: input host → device
	PhaseExec                 // INFER: execution
	PhaseOutput               // INFER: output device → host
	NumPhases
)

func (p Phase) String() string {
	switch p {
	case PhaseWeights:
		return "weights"
	case PhaseInput:
		return "input"
	case PhaseExec:
		return "exec"
	case PhaseOutput:
		return "output"
	}
	return fmt.Sprintf("phase(%d)", uint8(p))
}

// Span is a phase's start and end in the worker's clock; zero when the phase did not run.
type Span struct {
	StartNs, EndNs int64
}

// Result is the worker's one answer to any worker-link action (LoadModel is answered by
// ModelInfo, GetWorkerState by WorkerState). For an OK Infer the frame's payload is the output
// (Batch × the model's OutputBytes) unless InferNoOutput.
type Result struct {
	ActionID uint64
	Action   Type // the type of the action answered
	Status   Status
	GPU      uint16
	Batch    uint16
	// ReceivedNs is when the worker decoded the action (worker clock).
	ReceivedNs int64
	// Phases are host-observed start and end times per phase (worker clock).
	Phases [NumPhases]Span
	// ExecNs is the device-measured execution time (GPU events), which is not
	// Phases[PhaseExec].EndNs − StartNs: that also counts host latency.
	ExecNs int64
	Reason []byte // at most MaxReasonLen; usually empty when OK
}

func (*Result) Type() Type                   { return TypeResult }
func (m *Result) FrameID() uint64            { return m.ActionID }
func (m *Result) AppendTo(dst []byte) []byte { return AppendResult(dst, m) }

// AppendResult appends m's message header.
//
// Timing: worker result path; must not allocate when dst has room.
func AppendResult(dst []byte, m *Result) []byte {
	dst = appendU64(dst, m.ActionID)
	dst = appendU8(dst, uint8(m.Action))
	dst = appendU16(dst, uint16(m.Status))
	dst = appendU16(dst, m.GPU)
	dst = appendU16(dst, m.Batch)
	dst = appendI64(dst, m.ReceivedNs)
	for _, p := range m.Phases {
		dst = appendI64(dst, p.StartNs)
		dst = appendI64(dst, p.EndNs)
	}
	dst = appendI64(dst, m.ExecNs)
	return appendBytes(dst, m.Reason, MaxReasonLen, "Result.Reason")
}

// Decode reads m's message header.
//
// Timing: controller reader; must not allocate once Reason has grown.
func (m *Result) Decode(src []byte) ([]byte, error) {
	d := decoder{b: src, msg: "Result"}
	m.ActionID = d.u64("ActionID")
	m.Action = Type(d.u8("Action"))
	if d.err == nil && !m.Action.Valid() {
		d.fail(badValue("Result.Action", uint64(m.Action)))
	}
	m.Status = d.status("Status")
	m.GPU = d.u16("GPU")
	m.Batch = d.u16("Batch")
	m.ReceivedNs = d.i64("ReceivedNs")
	for i := range m.Phases {
		m.Phases[i].StartNs = d.i64("Phases.StartNs")
		m.Phases[i].EndNs = d.i64("Phases.EndNs")
	}
	m.ExecNs = d.i64("ExecNs")
	m.Reason = d.bytes(m.Reason, MaxReasonLen, "Reason")
	return d.b, d.err
}

func (m *Result) String() string {
	s := fmt.Sprintf("result action=%d of=%s status=%s gpu=%d batch=%d received=%d", m.ActionID, m.Action, m.Status, m.GPU, m.Batch, m.ReceivedNs)
	for i, p := range m.Phases {
		if p != (Span{}) {
			s += fmt.Sprintf(" %s=[%d,%d]", Phase(i), p.StartNs, p.EndNs)
		}
	}
	return s + fmt.Sprintf(" device_exec=%d reason=%s", m.ExecNs, quote(m.Reason))
}
