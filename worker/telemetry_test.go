package worker

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"github.com/clockwork-go/clockwork/wire"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func TestTelemetryTSV(t *testing.T) {
	var buf lockedBuf
	cfg := testConfig(1)
	cfg.TelemetryTSV = &buf
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	go w.Run(t.Context())
	k := dial(t, w)
	k.register(1, "fast")
	k.load(1, 0)
	k.infer(1, 0, 2, make([]byte, 128))
	k.infer(1, 0, 3, make([]byte, 192)) // bad batch
	k.c.Abort()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.b.String()), "\n")
	if len(lines) != 4 || lines[0] != TSVHeader {
		t.Fatalf("TSV:\n%s", buf.b.String())
	}
	cols := len(strings.Split(TSVHeader, "\t"))
	for _, l := range lines[1:] {
		if n := len(strings.Split(l, "\t")); n != cols {
			t.Fatalf("%d columns, header has %d: %q", n, cols, l)
		}
	}
	if !strings.Contains(lines[2], "\tinfer\tok\t1\t0\t2\t") || !strings.Contains(lines[3], "\tbad-batch\t") {
		t.Fatalf("records:\n%s", strings.Join(lines[1:], "\n"))
	}
	recs, next := w.Telemetry().Since(nil, 1)
	if len(recs) != 2 || next != 3 || recs[0].Type != wire.TypeInfer || recs[0].Phases[wire.PhaseExec].EndNs-recs[0].Phases[wire.PhaseExec].StartNs < 150_000 {
		t.Fatalf("ring: %+v next %d", recs, next)
	}
}

// TestTelemetryRingOverrun: a reader a whole ring behind skips to what is left and counts the
// loss.
func TestTelemetryRingOverrun(t *testing.T) {
	tl := newTelemetry(4, nil)
	for i := range 10 {
		tl.record(&action{id: uint64(i), typ: wire.TypeInfer, slot: -1})
	}
	recs, next := tl.Since(nil, 0)
	if len(recs) != 4 || recs[0].ActionID != 6 || next != 10 || tl.Dropped() != 6 {
		t.Fatalf("recs %+v next %d dropped %d", recs, next, tl.Dropped())
	}
	if n := testing.AllocsPerRun(100, func() { tl.record(&action{id: 1, slot: -1}) }); n != 0 {
		t.Fatalf("record allocates %v", n)
	}
}
