package wire

import (
	"fmt"
	"strings"
)

// Client-link messages. Times in them (…Ns) are int64 nanoseconds in the controller's clock
// domain (ClockUnixMono of the controller process); a client that sets an absolute DeadlineNs
// converts with its ClockSync estimate of the controller's clock.

// ListModels asks the controller for a ModelList.
type ListModels struct {
	RequestID uint64
}

func (*ListModels) Type() Type                   { return TypeListModels }
func (m *ListModels) FrameID() uint64            { return m.RequestID }
func (m *ListModels) AppendTo(dst []byte) []byte { return AppendListModels(dst, m) }

// AppendListModels appends m's message header.
func AppendListModels(dst []byte, m *ListModels) []byte { return appendU64(dst, m.RequestID) }

func (m *ListModels) Decode(src []byte) ([]byte, error) {
	d := decoder{b: src, msg: "ListModels"}
	m.RequestID = d.u64("RequestID")
	return d.b, d.err
}

func (m *ListModels) String() string { return fmt.Sprintf("list-models req=%d", m.RequestID) }

// ModelList answers ListModels.
type ModelList struct {
	RequestID uint64
	Models    []ModelDesc // at most MaxModels
}

func (*ModelList) Type() Type                   { return TypeModelList }
func (m *ModelList) FrameID() uint64            { return m.RequestID }
func (m *ModelList) AppendTo(dst []byte) []byte { return AppendModelList(dst, m) }

// AppendModelList appends m's message header.
func AppendModelList(dst []byte, m *ModelList) []byte {
	dst = appendU64(dst, m.RequestID)
	if len(m.Models) > MaxModels {
		panic("BUG: wire: ModelList.Models over MaxModels")
	}
	dst = appendU16(dst, uint16(len(m.Models)))
	for i := range m.Models {
		dst = appendModelDesc(dst, &m.Models[i])
	}
	return dst
}

func (m *ModelList) Decode(src []byte) ([]byte, error) {
	d := decoder{b: src, msg: "ModelList"}
	m.RequestID = d.u64("RequestID")
	n := d.count(MaxModels, modelDescMin, "Models")
	m.Models = grow(m.Models, n)
	for i := range m.Models {
		d.modelDesc(&m.Models[i])
	}
	return d.b, d.err
}

func (m *ModelList) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "model-list req=%d models=%d", m.RequestID, len(m.Models))
	for i := range m.Models {
		b.WriteString(" [" + m.Models[i].String() + "]")
	}
	return b.String()
}

// Priority is a request's class; the scheduler serves higher classes first when it must choose.
type Priority uint8

const (
	PriorityBatch       Priority = 0 // best effort
	PriorityNormal      Priority = 1
	PriorityInteractive Priority = 2
	maxPriority                  = PriorityInteractive
)

// Request is one inference request from a client: one input item for one model, named by
// ModelID or, when ModelID is 0, by Name. The frame's payload is the input (the model's
// InputBytes). The controller answers it exactly once with a Response.
type Request struct {
	RequestID uint64 // chosen by the client, unique per connection
	ModelID   uint32 // 0: look the model up by Name
	Priority  Priority
	// SLONs is the latency objective relative to the controller's receipt of the request;
	// DeadlineNs an absolute deadline in the controller's clock. Exactly one is non-zero.
	SLONs      int64
	DeadlineNs int64
	Name       []byte // at most MaxNameLen
}

func (*Request) Type() Type                   { return TypeRequest }
func (m *Request) FrameID() uint64            { return m.RequestID }
func (m *Request) AppendTo(dst []byte) []byte { return AppendRequest(dst, m) }

// AppendRequest appends m's message header.
//
// Timing: client send path; must not allocate when dst has room.
func AppendRequest(dst []byte, m *Request) []byte {
	dst = appendU64(dst, m.RequestID)
	dst = appendU32(dst, m.ModelID)
	dst = appendU8(dst, uint8(m.Priority))
	dst = appendI64(dst, m.SLONs)
	dst = appendI64(dst, m.DeadlineNs)
	return appendBytes(dst, m.Name, MaxNameLen, "Request.Name")
}

// Decode reads m's message header. It checks the field values, not their meaning (that exactly
// one of SLONs and DeadlineNs is set is the controller's check, answered with StatusBadInput).
//
// Timing: controller reader; must not allocate once Name has grown.
func (m *Request) Decode(src []byte) ([]byte, error) {
	d := decoder{b: src, msg: "Request"}
	m.RequestID = d.u64("RequestID")
	m.ModelID = d.u32("ModelID")
	m.Priority = Priority(d.u8("Priority"))
	if d.err == nil && m.Priority > maxPriority {
		d.fail(badValue("Request.Priority", uint64(m.Priority)))
	}
	m.SLONs = d.i64("SLONs")
	m.DeadlineNs = d.i64("DeadlineNs")
	m.Name = d.bytes(m.Name, MaxNameLen, "Name")
	return d.b, d.err
}

func (m *Request) String() string {
	return fmt.Sprintf("request req=%d model=%d name=%s prio=%d slo=%d deadline=%d", m.RequestID, m.ModelID, quote(m.Name), m.Priority, m.SLONs, m.DeadlineNs)
}

// Cancel asks the controller to drop a pending request; the request is still answered once,
// with StatusCancelled if it was dropped or its normal Response if it was already running.
type Cancel struct {
	RequestID uint64
}

func (*Cancel) Type() Type                   { return TypeCancel }
func (m *Cancel) FrameID() uint64            { return m.RequestID }
func (m *Cancel) AppendTo(dst []byte) []byte { return AppendCancel(dst, m) }

// AppendCancel appends m's message header.
func AppendCancel(dst []byte, m *Cancel) []byte { return appendU64(dst, m.RequestID) }

func (m *Cancel) Decode(src []byte) ([]byte, error) {
	d := decoder{b: src, msg: "Cancel"}
	m.RequestID = d.u64("RequestID")
	return d.b, d.err
}

func (m *Cancel) String() string { return fmt.Sprintf("cancel req=%d", m.RequestID) }

// Response is the one answer to a Request. For StatusOK the frame's payload is the output.
type Response struct {
	RequestID uint64
	Status    Status
	ModelID   uint32
	Batch     uint16 // size of the batch the request ran in; 0 if it did not run
	// Controller clock: when the request arrived, when its INFER was sent to a worker, and when
	// the controller had its result (0 for phases that did not happen).
	ArrivedNs    int64
	DispatchedNs int64
	CompletedNs  int64
	ExecNs       int64  // device-measured execution time of its batch on the worker
	Reason       []byte // at most MaxReasonLen
}

func (*Response) Type() Type                   { return TypeResponse }
func (m *Response) FrameID() uint64            { return m.RequestID }
func (m *Response) AppendTo(dst []byte) []byte { return AppendResponse(dst, m) }

// AppendResponse appends m's message header.
//
// Timing: controller result path; must not allocate when dst has room.
func AppendResponse(dst []byte, m *Response) []byte {
	dst = appendU64(dst, m.RequestID)
	dst = appendU16(dst, uint16(m.Status))
	dst = appendU32(dst, m.ModelID)
	dst = appendU16(dst, m.Batch)
	dst = appendI64(dst, m.ArrivedNs)
	dst = appendI64(dst, m.DispatchedNs)
	dst = appendI64(dst, m.CompletedNs)
	dst = appendI64(dst, m.ExecNs)
	return appendBytes(dst, m.Reason, MaxReasonLen, "Response.Reason")
}

// Decode reads m's message header.
//
// Timing: client reader; must not allocate once Reason has grown.
func (m *Response) Decode(src []byte) ([]byte, error) {
	d := decoder{b: src, msg: "Response"}
	m.RequestID = d.u64("RequestID")
	m.Status = d.status("Status")
	m.ModelID = d.u32("ModelID")
	m.Batch = d.u16("Batch")
	m.ArrivedNs = d.i64("ArrivedNs")
	m.DispatchedNs = d.i64("DispatchedNs")
	m.CompletedNs = d.i64("CompletedNs")
	m.ExecNs = d.i64("ExecNs")
	m.Reason = d.bytes(m.Reason, MaxReasonLen, "Reason")
	return d.b, d.err
}

func (m *Response) String() string {
	return fmt.Sprintf("response req=%d status=%s model=%d batch=%d arrived=%d dispatched=%d completed=%d device_exec=%d reason=%s",
		m.RequestID, m.Status, m.ModelID, m.Batch, m.ArrivedNs, m.DispatchedNs, m.CompletedNs, m.ExecNs, quote(m.Reason))
}
