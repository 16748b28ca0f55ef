package wire

import "fmt"

// Status is the outcome of an action or request. The set is closed: decoding any other value is
// ErrBadValue. Values are wire constants. Every non-OK status is a rejection: the work did not
// happen (or its result is not delivered), and a Reason text may say more.
type Status uint16

const (
	// StatusOK: the action ran (or the request was answered) inside its window.
	StatusOK Status = 0
	// StatusWindowPassed: the worker reached the action after its LatestNs; it did not run (C3).
	StatusWindowPassed Status = 1
	// StatusTooEarly: the action could only have started before its EarliestNs (e.g. its queue
	// was full and it could not wait); it did not run.
	StatusTooEarly Status = 2
	// StatusNoMemory: not enough free weight pages (LOAD) or IO/workspace memory (INFER).
	StatusNoMemory Status = 3
	// StatusModelNotLoaded: INFER or UNLOAD for a model whose weights are not on that GPU.
	StatusModelNotLoaded Status = 4
	// StatusUnknownModel: no model with that id or name is registered.
	StatusUnknownModel Status = 5
	// StatusBadInput: the input payload has the wrong size or content, or a message field is
	// invalid (bad GPU index, path outside the model root).
	StatusBadInput Status = 6
	// StatusBadBatch: the model was not prepared for that batch size.
	StatusBadBatch Status = 7
	// StatusCancelled: the client cancelled the request, or the action was cancelled at shutdown.
	StatusCancelled Status = 8
	// StatusCannotMeetSLO: the controller dropped the request early: it cannot finish in time.
	StatusCannotMeetSLO Status = 9
	// StatusOverloaded: admission refused the request (queues full); retry later.
	StatusOverloaded Status = 10
	// StatusWorkerLost: the worker running the action disconnected; the request was not served.
	StatusWorkerLost Status = 11
	// StatusShuttingDown: the process is draining and accepts no new work.
	StatusShuttingDown Status = 12
	// StatusInternal: a bug or an unexpected backend error; the reason text has details.
	StatusInternal Status = 13
	// StatusVersionMismatch: sent in a Goodbye when the peer's hello has another version.
	StatusVersionMismatch Status = 14
	// StatusUnauthenticated: sent in a Goodbye when the peer failed the HMAC challenge.
	StatusUnauthenticated Status = 15
	// StatusProtocolError: sent in a Goodbye when the peer sent a malformed or unexpected frame.
	StatusProtocolError Status = 16
	// StatusModelExists: LoadModel with a model id or name already registered.
	StatusModelExists Status = 17
	// StatusUnknownRequest: Cancel for a request id that is not pending.
	StatusUnknownRequest Status = 18
	// StatusBadWindow: an action's window is empty: inverted, EarliestNs after LatestNs, so no
	// instant lies in it (EarliestNs == LatestNs is a valid one-instant window); it did not
	// run. Distinct from StatusBadInput so a controller can tell a scheduling or clock
	// conversion bug of its own from a malformed request.
	StatusBadWindow Status = 19

	numStatus = 20
)

var statusNames = [numStatus]string{
	"ok", "window-passed", "too-early", "no-memory", "model-not-loaded", "unknown-model",
	"bad-input", "bad-batch", "cancelled", "cannot-meet-slo", "overloaded", "worker-lost",
	"shutting-down", "internal-error", "version-mismatch", "unauthenticated", "protocol-error",
	"model-exists", "unknown-request", "bad-window",
}

// Valid reports whether s is one of the defined statuses.
func (s Status) Valid() bool { return s < numStatus }

func (s Status) String() string {
	if s.Valid() {
		return statusNames[s]
	}
	return fmt.Sprintf("status(%d)", uint16(s))
}

// ParseStatus is the inverse of String, for tests and tools.
func ParseStatus(s string) (Status, bool) {
	for i, n := range statusNames {
		if n == s {
			return Status(i), true
		}
	}
	return 0, false
}

func (d *decoder) status(field string) Status {
	s := Status(d.u16(field))
	if d.err == nil && !s.Valid() {
		d.fail(badValue(d.msg+"."+field, uint64(s)))
	}
	return s
}
