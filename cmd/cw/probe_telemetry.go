package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/clockwork-go/clockwork/internal/probe"
)

// telemetryTail follows a worker's telemetry TSV file (cw worker -telemetry FILE) from where
// it ended when the tool attached, and explains each action that started late or ran long
// with the episodes the tool's own probes recorded on the worker's executor thread.
//
// Clock: the worker's times are its wire clock, ClockUnixMono (the wall clock read once at the
// worker's start, advanced by the monotonic clock). The tool cannot read that process's clock,
// so it takes CLOCK_REALTIME − CLOCK_MONOTONIC now as the offset: exact unless the wall clock
// was stepped or slewed between the worker's start and the tool's (NTP slews at most 0.5 ms/s).
type telemetryTail struct {
	f       *os.File
	off     int64
	partial []byte
	clock   probe.Clock
	lateNs  int64 // explain actions whose start − earliest is at least this
	longNs  int64 // and those whose exec ran at least this long (0: off)
	shown   int
}

func openTelemetryTail(path string, lateNs, longNs int64) (*telemetryTail, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open the worker's telemetry file (the FILE of cw worker -telemetry FILE): %w", err)
	}
	off, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot seek the telemetry file: %w", err)
	}
	t := &telemetryTail{f: f, off: off, lateNs: lateNs, longNs: longNs}
	t.clock = probe.CalibrateClock(func() int64 { return time.Now().UnixNano() })
	return t, nil
}

func (t *telemetryTail) Close() error { return t.f.Close() }

// tsv column indexes (worker.TSVHeader).
const (
	tsvID, tsvType, tsvStatus, tsvModel, tsvGPU = 0, 1, 2, 3, 4
	tsvEarliest, tsvLateness                    = 6, 9
	tsvWeightsStart, tsvExecStart               = 10, 14
	tsvCols                                     = 19
)

// poll reads the lines appended since the last poll and writes one line per late or long
// action to w. execTid maps a GPU to the tid of its exec thread (weights for LOADs), or 0.
func (t *telemetryTail) poll(w io.Writer, p *probe.Probes, execTid func(gpu int, lane string) int) error {
	buf, err := io.ReadAll(io.NewSectionReader(t.f, t.off, 1<<40))
	if err != nil {
		return fmt.Errorf("cannot read the telemetry file: %w", err)
	}
	t.off += int64(len(buf))
	buf = append(t.partial, buf...)
	last := bytes.LastIndexByte(buf, '\n')
	if last < 0 {
		t.partial = buf
		return nil
	}
	t.partial = append([]byte(nil), buf[last+1:]...)
	for _, line := range strings.Split(string(buf[:last]), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < tsvCols || f[0] == "action_id" {
			continue
		}
		var n [tsvCols]int64
		bad := false
		for _, i := range []int{tsvID, tsvModel, tsvGPU, tsvEarliest, tsvLateness, tsvWeightsStart, tsvWeightsStart + 1, tsvExecStart, tsvExecStart + 1} {
			if n[i], err = strconv.ParseInt(f[i], 10, 64); err != nil {
				bad = true
			}
		}
		if bad {
			continue // not a telemetry line (or a torn one): skip it
		}
		lane, start, end := "exec", n[tsvExecStart], n[tsvExecStart+1]
		if f[tsvType] != "infer" {
			lane, start, end = "weights", n[tsvWeightsStart], n[tsvWeightsStart+1]
		}
		if start == 0 || end < start {
			continue // did not run
		}
		late, run := n[tsvLateness], end-start
		if late < t.lateNs && (t.longNs <= 0 || run < t.longNs) {
			continue
		}
		tid := execTid(int(n[tsvGPU]), lane)
		text := "no " + lane + " thread of this GPU is watched (named cw-g<gpu>-" + lane + ")"
		if tid != 0 {
			from := min(n[tsvEarliest], start)
			x := p.Explain(tid, t.clock.ToMono(from), t.clock.ToMono(end))
			due := t.clock.ToMono(n[tsvEarliest])
			// Sleeping until due is the executor's design: keep blocked time past earliest only.
			x = x.Filter(func(e *probe.Episode) bool { return e.Kind != probe.KindBlocked || e.EndNs > due })
			text = x.String()
			if text == "" {
				text = "no scheduler, IRQ or fault episode on the " + lane + " thread (late for another reason: queueing behind earlier actions, the GPU, a Go pause)"
			}
		}
		t.shown++
		ts := time.Unix(0, start).UTC().Format("15:04:05.000000")
		if _, err := fmt.Fprintf(w, "late %s %s %s model %d gpu %d tid %d: late %v, ran %v: %s\n", ts, f[tsvType], f[tsvID], n[tsvModel], n[tsvGPU], tid,
			time.Duration(late).Round(time.Microsecond), time.Duration(run).Round(time.Microsecond), text); err != nil {
			return err
		}
	}
	return nil
}
