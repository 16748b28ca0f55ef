package wire

// ClockSync estimates a peer's clock offset from the frame headers, as Clockwork does (§A.4 of
// the reference): every frame carries its sender's SentNs and the sender's own minimum receive
// delta. With
//
//	dL = min over frames from the peer of (local receive time − peer SentNs) = (L − P) + min latency P→L
//	dR = the peer's minimum of (peer receive time − local SentNs)            = (P − L) + min latency L→P
//
// the offset L − P is estimated as (dL − dR)/2, with error at most (dL + dR)/2, half the minimum
// round trip: the estimate is exact when the two minimum one-way latencies are equal, and off by
// half their difference otherwise. Minima are kept over a sliding window of about 2×WindowFrames
// frames (two buckets), so slow clock drift is followed.
//
// A ClockSync is owned by one goroutine (a Conn's reader); it reads no clock: receive times are
// arguments.
type ClockSync struct {
	// WindowFrames is the bucket size; 0 means 512 (the original used a 1024-frame window).
	WindowFrames int

	n           int   // frames in the current bucket
	cur, prev   int64 // minima of the current and previous bucket, NoDelta when empty
	remote      int64 // the peer's latest reported minimum, NoDelta before any
	initialized bool
}

func (s *ClockSync) init() {
	if !s.initialized {
		s.cur, s.prev, s.remote, s.initialized = NoDelta, NoDelta, NoDelta, true
	}
}

// Observe records a frame from the peer received at recvNs (local wire clock).
//
// Timing: reader goroutine, every frame; must not allocate; ~5ns.
func (s *ClockSync) Observe(h *Header, recvNs int64) {
	s.init()
	d := recvNs - h.SentNs
	if s.cur == NoDelta || d < s.cur {
		s.cur = d
	}
	s.n++
	w := s.WindowFrames
	if w <= 0 {
		w = 512
	}
	if s.n >= w {
		s.prev, s.cur, s.n = s.cur, NoDelta, 0
	}
	if h.MinDeltaNs != NoDelta {
		s.remote = h.MinDeltaNs
	}
}

// LocalMinDelta is this side's windowed minimum of (receive time − peer SentNs), or NoDelta; it
// goes into the MinDeltaNs of frames this side sends.
func (s *ClockSync) LocalMinDelta() int64 {
	s.init()
	switch {
	case s.cur == NoDelta:
		return s.prev
	case s.prev == NoDelta || s.cur < s.prev:
		return s.cur
	}
	return s.prev
}

// Offset returns the estimate of (local clock − peer clock) and its error bound in ns; ok is
// false until frames have gone both ways. A peer time t is local time t + offset.
func (s *ClockSync) Offset() (offsetNs, errNs int64, ok bool) {
	dL := s.LocalMinDelta()
	if dL == NoDelta || s.remote == NoDelta {
		return 0, 0, false
	}
	return (dL - s.remote) / 2, (dL + s.remote + 1) / 2, true
}
