package probe

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

// rawEpisode encodes an episode as probe.bpf.c's struct episode.
func rawEpisode(start, end, aux uint64, tid, kind, cpu, other, flags uint32, name string) []byte {
	b := make([]byte, episodeSize)
	le := binary.LittleEndian
	le.PutUint64(b[0:], start)
	le.PutUint64(b[8:], end)
	le.PutUint64(b[16:], aux)
	le.PutUint32(b[24:], tid)
	le.PutUint32(b[28:], kind)
	le.PutUint32(b[32:], cpu)
	le.PutUint32(b[36:], other)
	le.PutUint32(b[40:], flags)
	copy(b[48:64], name)
	return b
}

func TestDecodeEpisode(t *testing.T) {
	for _, tc := range []struct {
		raw  []byte
		want Episode
		err  string
	}{
		{raw: rawEpisode(100, 400, 0, 7, 1, 3, 4121, 0, "kworker/3:1"),
			want: Episode{Kind: KindPreempt, TID: 7, StartNs: 100, EndNs: 400, CPU: 3, OtherPID: 4121, Other: "kworker/3:1"}},
		{raw: rawEpisode(100, 180, uint64(0xffffffffffffffff), 7, 4, 0, 0, 0, "timer"),
			want: Episode{Kind: KindIRQ, TID: 7, StartNs: 100, EndNs: 180, IRQ: -1, Name: "timer"}},
		{raw: rawEpisode(5, 5, 0x7f0000001000, 7, 6, 1, 0, 1, ""),
			want: Episode{Kind: KindFault, TID: 7, StartNs: 5, EndNs: 5, CPU: 1, Addr: 0x7f0000001000, Kernel: true}},
		{raw: rawEpisode(5, 9, 1, 7, 3, 1, 0, 0, "0123456789abcdefXX"),
			want: Episode{Kind: KindBlocked, TID: 7, StartNs: 5, EndNs: 9, CPU: 1, State: 1}},
		{raw: rawEpisode(5, 9, 0, 7, 1, 0, 0, 0, "")[:63], err: "shorter"},
		{raw: rawEpisode(5, 9, 0, 7, 0, 0, 0, 0, ""), err: "kind 0"},
		{raw: rawEpisode(5, 9, 0, 7, 7, 0, 0, 0, ""), err: "kind 7"},
		{raw: rawEpisode(9, 5, 0, 7, 1, 0, 0, 0, ""), err: "before start"},
	} {
		var e Episode
		err := decodeEpisode(tc.raw, &e)
		if tc.err != "" {
			if err == nil || !contains(err.Error(), tc.err) {
				t.Errorf("decode: err %v, want one containing %q", err, tc.err)
			}
			continue
		}
		if err != nil || e != tc.want {
			t.Errorf("decode: %+v, %v; want %+v", e, err, tc.want)
		}
	}
	var e Episode
	if err := decodeEpisode(nil, &e); !errors.Is(err, errShortEpisode) {
		t.Errorf("decode(nil): %v, want errShortEpisode", err)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func FuzzDecodeEpisode(f *testing.F) {
	f.Add(rawEpisode(100, 400, 0, 7, 1, 3, 4121, 0, "kworker/3:1"))
	f.Add(rawEpisode(5, 5, 0x1000, 7, 6, 1, 0, 1, ""))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		var e Episode
		if err := decodeEpisode(b, &e); err != nil {
			return
		}
		if e.EndNs < e.StartNs || e.Kind < KindPreempt || e.Kind > KindFault {
			t.Fatalf("decoded an invalid episode %+v", e)
		}
		_ = e.String()
		x := Explanation{StartNs: e.StartNs, EndNs: e.EndNs}
		x.add(&e)
		if x.String() == "" {
			t.Fatalf("explanation of %+v is empty", e)
		}
	})
}

func TestExplanationString(t *testing.T) {
	ep := func(k Kind, s, e int64, mod func(*Episode)) Episode {
		x := Episode{Kind: k, TID: 1, StartNs: s, EndNs: e, CPU: 3}
		if mod != nil {
			mod(&x)
		}
		return x
	}
	for _, tc := range []struct {
		start, end int64
		eps        []Episode
		want       string
	}{
		{0, 1000, nil, ""},
		{0, 1_000_000, []Episode{
			ep(KindIRQ, 10, 80_010, func(e *Episode) { e.IRQ, e.Name = 45, "virtio0" }),
			ep(KindPreempt, 100_000, 410_000, func(e *Episode) { e.OtherPID, e.Other = 4121, "kworker" }),
			ep(KindFault, 500_000, 500_000, nil),
			ep(KindFault, 600_000, 600_000, nil),
		}, "preempted by pid 4121 (kworker) for 310µs on CPU 3; IRQ 45 (virtio0) for 80µs; 2 page faults"},
		// clipped to the interval; IRQs of one source summed
		{1_000_000, 2_000_000, []Episode{
			ep(KindRunQueue, 500_000, 1_200_000, func(e *Episode) { e.OtherPID, e.Other = 9, "stress" }),
			ep(KindIRQ, 1_300_000, 1_305_000, func(e *Episode) { e.IRQ = -1 }),
			ep(KindIRQ, 1_400_000, 1_406_000, func(e *Episode) { e.IRQ = -1 }),
			ep(KindSoftIRQ, 1_500_000, 1_502_000, func(e *Episode) { e.IRQ = 1 }),
		}, "waited 200µs for CPU 3 behind pid 9 (stress); timer interrupt for 11µs; softirq TIMER for 2.0µs"},
		{0, 10_000_000, []Episode{
			ep(KindBlocked, 0, 5_000_000, nil), ep(KindBlocked, 5_000_000, 5_100_000, nil),
			ep(KindBlocked, 5_100_000, 5_200_000, nil), ep(KindBlocked, 5_200_000, 5_300_000, nil),
			ep(KindBlocked, 5_300_000, 5_400_000, nil), ep(KindFault, 1, 1, nil),
		}, "blocked 5000µs off CPU; blocked 100µs off CPU; blocked 100µs off CPU; blocked 100µs off CPU; +1 more; 1 page fault"},
	} {
		x := Explanation{StartNs: tc.start, EndNs: tc.end}
		for i := range tc.eps {
			x.add(&tc.eps[i])
		}
		if got := x.String(); got != tc.want {
			t.Errorf("got  %q\nwant %q", got, tc.want)
		}
	}
}

func TestHistogram(t *testing.T) {
	var h Histogram
	if h.Quantile(0.99) != 0 || h.Summary() != "n=0" {
		t.Errorf("empty histogram: %v %q", h.Quantile(0.99), h.Summary())
	}
	// 90 samples in [1024, 2048) ns, 10 in [65536, 131072) with max 100 µs.
	h.Buckets[10], h.Buckets[16] = 90, 10
	h.MaxNs, h.SumNs = 100_000, 90*1500+10*100_000
	if got := h.Quantile(0.5); got != 2047 {
		t.Errorf("p50 %v, want 2047ns (top of the 1024-2047 bucket)", got)
	}
	if got := h.Quantile(0.99); got != 100*time.Microsecond {
		t.Errorf("p99 %v, want 100µs (capped at max)", got)
	}
	if got := h.Mean(); got != time.Duration((90*1500+10*100_000)/100) {
		t.Errorf("mean %v", got)
	}
	d := h.Sub(&Histogram{Buckets: [NumBuckets]uint64{10: 40}})
	if d.Count() != 60 {
		t.Errorf("Sub: count %d, want 60", d.Count())
	}
}
