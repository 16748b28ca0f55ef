package controller

import (
	"bufio"
	"io"
	"strconv"
)

// Telemetry columns follow Clockwork's controller logs (reference/clockwork.md §G) so its
// analysis scripts read ours. As in the original's code: the request log's t is the departure
// time, request_id the client's id, and the action log's goodput is in ns.
const (
	requestLogHeader = "t\trequest_id\tresult\tuser_id\tmodel_id\tslo_factor\tlatency\tdeadline\tdeadline_met\tarrival_count\tdeparture_count\tis_coldstart\n"
	actionLogHeader  = "t\taction_id\taction_type\tstatus\tworker_id\tgpu_id\tmodel_id\tbatch_size\texpected_exec_duration\tworker_exec_duration\texpected_exec_complete\tworker_exec_complete\texpected_gpu_clock\tworker_gpu_clock_before\tworker_gpu_clock\tworker_copy_output_complete\tworker_action_received\tworker_result_sent\tcontroller_result_enqueue\tcontroller_action_duration\tgoodput\trequests_queued\tcopies_loaded\n"
)

// tsv writes one telemetry file; owned by the event loop. Rows are formatted with strconv
// appends into a reused line buffer: no allocation per row.
type tsv struct {
	w    *bufio.Writer
	line []byte
}

func newTSV(w io.Writer, header string) *tsv {
	if w == nil {
		return nil
	}
	t := &tsv{w: bufio.NewWriterSize(w, 1<<20)}
	_, _ = t.w.WriteString(header)
	return t
}

func (t *tsv) row(cols ...int64) {
	t.line = t.line[:0]
	for i, c := range cols {
		if i > 0 {
			t.line = append(t.line, '\t')
		}
		t.line = strconv.AppendInt(t.line, c, 10)
	}
	t.line = append(t.line, '\n')
	_, _ = t.w.Write(t.line)
}

func (t *tsv) flush() {
	if t != nil {
		_ = t.w.Flush()
	}
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
