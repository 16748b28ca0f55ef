package sched

import "fmt"

// Status is how the scheduler answers a request. The controller maps it to a wire status.
type Status uint8

const (
	StatusOK            Status = iota // the request ran; its output is in the INFER result
	StatusCannotMeetSLO               // dropped: it can no longer finish before its deadline
	StatusUnknownModel                // no model with that id is registered
	StatusBadInput                    // a field of the request is out of range
	StatusOverloaded                  // the queue is at Config.MaxQueued
	StatusCancelled                   // the client cancelled it
	StatusWorkerLost                  // its worker vanished or stopped answering, too late to retry
	numStatus
)

var statusNames = [...]string{"ok", "cannot-meet-slo", "unknown-model", "bad-input", "overloaded",
	"cancelled", "worker-lost"}

func (s Status) String() string {
	if s < numStatus {
		return statusNames[s]
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// ActionKind says what an Action asks the controller to do.
type ActionKind uint8

const (
	ActInfer   ActionKind = iota + 1 // send an INFER to a worker
	ActLoad                          // send a LOAD (copy weights into GPU pages)
	ActEvict                         // send an EVICT (free the model's GPU pages)
	ActRespond                       // answer a request with Status
)

func (k ActionKind) String() string {
	switch k {
	case ActInfer:
		return "infer"
	case ActLoad:
		return "load"
	case ActEvict:
		return "evict"
	case ActRespond:
		return "respond"
	}
	return fmt.Sprintf("action(%d)", uint8(k))
}

// Action is one decision. Times are nanoseconds in the controller's monotonic clock domain;
// the controller converts windows to each worker's domain when it sends them.
type Action struct {
	Kind ActionKind
	// ID names an INFER, LOAD or EVICT; the worker's result carries it back in Event.Action.
	// For ActRespond with StatusOK it is the INFER whose output answers the request.
	ID     uint64
	Worker int32 // the GPU's worker
	GPU    int32 // scheduler-wide GPU id (Event.GPU of EvAddGPU)
	Model  int32
	Batch  int32 // INFER: batch size, = len(Requests)
	// EarliestNs and LatestNs bound when the worker may start the action; it rejects the
	// action instead of starting it after LatestNs. ExpectedNs is the predicted duration.
	EarliestNs, LatestNs, ExpectedNs int64
	// Requests are the request ids of an INFER in batch order (output slot i belongs to
	// Requests[i]). Valid until the next Step.
	Requests []uint64
	// ActRespond: the request answered, its status, and for StatusOK its slot in the batch.
	Request uint64
	Status  Status
	Slot    int32
}

// EventKind says what happened.
type EventKind uint8

const (
	EvTick       EventKind = iota // time passed; nothing else
	EvSubmit                      // a request arrived
	EvCancel                      // the client cancelled a request
	EvResult                      // a worker answered an action
	EvAddGPU                      // a GPU appeared (or came back with empty memory)
	EvWorkerLost                  // every GPU of a worker vanished
	EvAddModel                    // a model was registered on every worker
)

// Event is the input of Step. Only the fields of its Kind are read.
type Event struct {
	Kind EventKind

	// EvSubmit, EvCancel: the caller's request id, unique among live requests.
	Request uint64
	// EvSubmit: model, priority class (0 lowest, < Config.Classes) and the request's real
	// deadline (arrival + SLO) as an absolute time.
	Model      int32
	Class      uint8
	DeadlineNs int64

	// EvResult: the action id, whether it succeeded, and for a successful INFER or LOAD the
	// measured duration and the end time converted to the controller's clock.
	Action uint64
	OK     bool
	DurNs  int64
	EndNs  int64

	// EvAddGPU: ids, and the number of weight pages in the GPU's cache.
	// EvWorkerLost: Worker.
	Worker int32
	GPU    int32
	Pages  int32

	// EvAddModel.
	Spec *ModelSpec
}

// ModelSpec describes a registered model, from its profile or the workers' LoadModel results.
type ModelSpec struct {
	ID      int32   // dense, assigned by the controller
	Batches []int32 // supported batch sizes, ascending, starting at 1
	ExecNs  []int64 // profile exec time per batch size (seeds the estimates)
	LoadNs  int64   // profile LOAD time (seeds the load estimate)
	Pages   int32   // weight pages on the GPU
}

// Validate reports whether the spec can be scheduled.
func (m *ModelSpec) Validate() error {
	if m.ID < 0 || m.ID > maxModels {
		return fmt.Errorf("model id %d out of range [0, %d]", m.ID, maxModels)
	}
	if len(m.Batches) == 0 || m.Batches[0] != 1 || len(m.Batches) > maxBatches {
		return fmt.Errorf("model %d: batch sizes %v must start at 1 and have at most %d entries", m.ID, m.Batches, maxBatches)
	}
	if len(m.ExecNs) != len(m.Batches) {
		return fmt.Errorf("model %d: %d exec times for %d batch sizes", m.ID, len(m.ExecNs), len(m.Batches))
	}
	for i, b := range m.Batches {
		if i > 0 && b <= m.Batches[i-1] {
			return fmt.Errorf("model %d: batch sizes %v not ascending", m.ID, m.Batches)
		}
		if m.ExecNs[i] <= 0 {
			return fmt.Errorf("model %d: exec time %d ns for batch %d must be positive", m.ID, m.ExecNs[i], b)
		}
	}
	if m.Pages <= 0 || m.LoadNs <= 0 {
		return fmt.Errorf("model %d: pages %d and load time %d ns must be positive", m.ID, m.Pages, m.LoadNs)
	}
	return nil
}

// Policy is a scheduling policy: anything that turns events into actions deterministically.
// Scheduler is clockwork's; others can be compared with it on the same trace.
type Policy interface {
	// Step applies one event at time now and returns the actions it decided. The returned
	// slice is valid until the next Step.
	Step(now int64, ev *Event) []Action
	// WakeNs is the time at which the policy next wants an EvTick (math.MaxInt64: none).
	WakeNs() int64
}

const (
	maxModels  = 1 << 24
	maxBatches = 8
	maxClasses = 4
)
