package worker

import (
	"bufio"
	"fmt"
	"io"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clockwork-go/clockwork/wire"
)

// Record is one answered action as telemetry keeps it. Times are the worker's clock (ns).
type Record struct {
	ActionID   uint64
	Type       wire.Type
	Status     wire.Status
	Model      uint32
	GPU        int
	Batch      int
	EarliestNs int64
	LatestNs   int64
	ReceivedNs int64
	// LatenessNs is start − earliest of the phase that enforces the window (exec for INFER,
	// weights for LOAD/UNLOAD); 0 when it did not start.
	LatenessNs int64
	Phases     [wire.NumPhases]wire.Span
	ExecNs     int64
	// Probe explains a late or overrunning INFER or LOAD (Config.Probe): the kernel episodes
	// on its thread, e.g. "preempted by pid 4121 (kworker/3:1) for 310µs on CPU 3". It may be
	// filled a few ms after the record is written; empty otherwise.
	Probe string
}

const recordWords = 11 + 2*int(wire.NumPhases)

// slot is a record stored as atomic words, so writers and readers never race: a reader checks
// seq before and after copying and retries or skips a slot being rewritten.
type slot struct {
	seq atomic.Uint64 // index+1 when complete; 0 while being written
	w   [recordWords]atomic.Int64
}

// Telemetry keeps the last records in a lock-free ring (any number of writers: executor threads
// and readers; writing one costs two atomic adds and ~20 atomic stores, no allocation) and
// optionally copies each record as a TSV line to a writer from its own goroutine, every 100 ms.
// A reader that falls a whole ring behind loses records and counts them in Dropped.
type Telemetry struct {
	ring []slot
	mask uint64
	next atomic.Uint64

	tsv     *bufio.Writer
	stop    chan struct{}
	done    chan struct{}
	dropped atomic.Uint64
	once    sync.Once

	notesMu sync.Mutex
	notes   map[uint64]string // action id -> Record.Probe, the last maxNotes
	noteIDs []uint64          // FIFO of notes' keys
}

const maxNotes = 4096

func newTelemetry(size int, tsv io.Writer) *Telemetry {
	t := &Telemetry{ring: make([]slot, size), mask: uint64(size - 1)}
	if tsv != nil {
		t.tsv = bufio.NewWriterSize(tsv, 64<<10)
		t.stop, t.done = make(chan struct{}), make(chan struct{})
		fmt.Fprintln(t.tsv, TSVHeader)
		go t.drain()
	}
	return t
}

// TSVHeader names the TSV columns.
const TSVHeader = "action_id\ttype\tstatus\tmodel\tgpu\tbatch\tearliest\tlatest\treceived\tlateness\tweights_start\tweights_end\tinput_start\tinput_end\texec_start\texec_end\toutput_start\toutput_end\tdevice_exec"

// record stores a's outcome.
//
// Timing: executor thread or reader; does not allocate.
func (t *Telemetry) record(a *action) {
	i := t.next.Add(1) - 1
	s := &t.ring[i&t.mask]
	s.seq.Store(0)
	var model uint32
	if a.model != nil {
		model = a.model.id
	}
	late := int64(0)
	if a.started != 0 {
		late = a.started - a.earliest
	}
	v := [recordWords]int64{int64(a.id), int64(a.typ), int64(a.status), int64(model), int64(a.gpu), int64(a.batch), a.earliest, a.latest, a.received, late, a.execNs}
	for p := range wire.NumPhases {
		v[11+2*int(p)] = a.phases[p].StartNs
		v[12+2*int(p)] = a.phases[p].EndNs
	}
	for k := range v {
		s.w[k].Store(v[k])
	}
	s.seq.Store(i + 1)
}

// read copies record i into r; false when it was overwritten or is being written.
func (t *Telemetry) read(i uint64, r *Record) bool {
	s := &t.ring[i&t.mask]
	if s.seq.Load() != i+1 {
		return false
	}
	var v [recordWords]int64
	for k := range v {
		v[k] = s.w[k].Load()
	}
	if s.seq.Load() != i+1 {
		return false
	}
	*r = Record{ActionID: uint64(v[0]), Type: wire.Type(v[1]), Status: wire.Status(v[2]), Model: uint32(v[3]), GPU: int(v[4]), Batch: int(v[5]),
		EarliestNs: v[6], LatestNs: v[7], ReceivedNs: v[8], LatenessNs: v[9], ExecNs: v[10]}
	for p := range wire.NumPhases {
		r.Phases[p] = wire.Span{StartNs: v[11+2*int(p)], EndNs: v[12+2*int(p)]}
	}
	return true
}

// Count is the number of records written so far. Any goroutine.
func (t *Telemetry) Count() uint64 { return t.next.Load() }

// Since appends to dst the records from index from (see Count) still in the ring, in order, and
// returns the next index to ask for. Any goroutine; allocates only to grow dst.
func (t *Telemetry) Since(dst []Record, from uint64) ([]Record, uint64) {
	end := t.next.Load()
	if n := uint64(len(t.ring)); end > n && from < end-n {
		t.dropped.Add(end - n - from)
		from = end - n
	}
	var r Record
	n0 := len(dst)
	for i := from; i < end; i++ {
		for spins := 0; ; spins++ {
			if t.read(i, &r) {
				dst = append(dst, r)
				break
			}
			if spins > 1000 { // overwritten by a writer a whole ring ahead
				t.dropped.Add(1)
				break
			}
		}
	}
	t.fillNotes(dst[n0:])
	return dst, end
}

// note attaches a Probe explanation to action id's record (Probe's goroutine).
func (t *Telemetry) note(id uint64, text string) {
	t.notesMu.Lock()
	defer t.notesMu.Unlock()
	if t.notes == nil {
		t.notes = make(map[uint64]string)
	}
	if len(t.noteIDs) == maxNotes {
		delete(t.notes, t.noteIDs[0])
		t.noteIDs = t.noteIDs[1:]
	}
	t.notes[id] = text
	t.noteIDs = append(t.noteIDs, id)
}

// fillNotes sets Probe on the records that have a note.
func (t *Telemetry) fillNotes(rs []Record) {
	t.notesMu.Lock()
	defer t.notesMu.Unlock()
	if len(t.notes) == 0 {
		return
	}
	for i := range rs {
		rs[i].Probe = t.notes[rs[i].ActionID]
	}
}

// Dropped counts records a reader lost to overwriting.
func (t *Telemetry) Dropped() uint64 { return t.dropped.Load() }

func (t *Telemetry) drain() {
	defer close(t.done)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var next uint64
	var buf []Record
	flush := func() {
		buf, next = t.Since(buf[:0], next)
		for i := range buf {
			writeTSV(t.tsv, &buf[i])
		}
		t.tsv.Flush()
	}
	for {
		select {
		case <-tick.C:
			flush()
		case <-t.stop:
			flush()
			return
		}
	}
}

func writeTSV(w io.Writer, r *Record) {
	fmt.Fprintf(w, "%d\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d", r.ActionID, r.Type, r.Status, r.Model, r.GPU, r.Batch, r.EarliestNs, r.LatestNs, r.ReceivedNs, r.LatenessNs)
	for _, p := range r.Phases {
		fmt.Fprintf(w, "\t%d\t%d", p.StartNs, p.EndNs)
	}
	fmt.Fprintf(w, "\t%d\n", r.ExecNs)
}

func (t *Telemetry) close() {
	t.once.Do(func() {
		if t.stop != nil {
			close(t.stop)
			<-t.done
		}
	})
}

// GCPauses reads the process's GC stop-the-world pause histogram from runtime/metrics.
func (t *Telemetry) GCPauses() GCPauseStats {
	s := []metrics.Sample{{Name: "/sched/pauses/total/gc:seconds"}}
	metrics.Read(s)
	var g GCPauseStats
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return g
	}
	h := s[0].Value.Float64Histogram()
	for i, c := range h.Counts {
		if c == 0 {
			continue
		}
		g.Count += c
		if up := h.Buckets[i+1]; up > g.MaxSeconds && up < 1e300 {
			g.MaxSeconds = up
		} else if up >= 1e300 {
			g.MaxSeconds = h.Buckets[i]
		}
	}
	return g
}

// GCPauseStats summarises GC pauses: how many, and the upper bound of the largest bucket hit.
type GCPauseStats struct {
	Count      uint64
	MaxSeconds float64
}

func (g GCPauseStats) String() string {
	return fmt.Sprintf("%d pauses, max ≤ %v", g.Count, time.Duration(g.MaxSeconds*1e9))
}
