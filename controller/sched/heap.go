package sched

// instHeap is an indexed min-heap of instances ordered by their key for one priority class:
// the latest time the model's best batch on this GPU can start and still meet the deadline
// of the first request in its queue. Each instance records its position (hidx) so keys can be
// fixed in place when a queue changes.
type instHeap struct {
	items []int32
	class int
}

func (h *instHeap) less(in []instance, i, j int) bool {
	a, b := &in[h.items[i]], &in[h.items[j]]
	if a.key[h.class] != b.key[h.class] {
		return a.key[h.class] < b.key[h.class]
	}
	return a.model < b.model // deterministic ties
}

func (h *instHeap) swap(in []instance, i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	in[h.items[i]].hidx[h.class] = int32(i)
	in[h.items[j]].hidx[h.class] = int32(j)
}

func (h *instHeap) up(in []instance, i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(in, i, p) {
			return
		}
		h.swap(in, i, p)
		i = p
	}
}

func (h *instHeap) down(in []instance, i int) {
	n := len(h.items)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h.less(in, r, l) {
			m = r
		}
		if !h.less(in, m, i) {
			return
		}
		h.swap(in, i, m)
		i = m
	}
}

// set inserts instance x with key k, or moves it if present.
func (h *instHeap) set(in []instance, x int32, k int64) {
	c := h.class
	if i := in[x].hidx[c]; i >= 0 {
		old := in[x].key[c]
		in[x].key[c] = k
		if k < old {
			h.up(in, int(i))
		} else if k > old {
			h.down(in, int(i))
		}
		return
	}
	in[x].key[c] = k
	in[x].hidx[c] = int32(len(h.items))
	h.items = append(h.items, x)
	h.up(in, len(h.items)-1)
}

func (h *instHeap) remove(in []instance, x int32) {
	c := h.class
	i := int(in[x].hidx[c])
	if i < 0 {
		return
	}
	last := len(h.items) - 1
	if i != last {
		h.swap(in, i, last)
	}
	h.items = h.items[:last]
	in[x].hidx[c] = -1
	if i < last {
		h.down(in, i)
		h.up(in, i)
	}
}

// modelHeap is an indexed max-heap of models by unmet load demand.
type modelHeap struct {
	items []*model
}

func (h *modelHeap) less(i, j int) bool {
	a, b := h.items[i], h.items[j]
	if a.unmet != b.unmet {
		return a.unmet > b.unmet
	}
	return a.id < b.id
}

func (h *modelHeap) swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.items[i].uidx = int32(i)
	h.items[j].uidx = int32(j)
}

func (h *modelHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h *modelHeap) down(i int) {
	n := len(h.items)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h.swap(i, m)
		i = m
	}
}

func (h *modelHeap) fix(m *model) {
	if m.uidx < 0 {
		m.uidx = int32(len(h.items))
		h.items = append(h.items, m)
		h.up(len(h.items) - 1)
		return
	}
	h.down(int(m.uidx))
	h.up(int(m.uidx))
}

func (h *modelHeap) remove(m *model) {
	i := int(m.uidx)
	if i < 0 {
		return
	}
	last := len(h.items) - 1
	if i != last {
		h.swap(i, last)
	}
	h.items = h.items[:last]
	m.uidx = -1
	if i < last {
		h.down(i)
		h.up(i)
	}
}

// timer is a request's next deadline check: when it becomes hopeless while queued, or when its
// answer is overdue while in flight. Stale timers (gen or state changed) are skipped.
type timer struct {
	at    int64
	slot  int32
	gen   uint32
	state uint8
}

type timerHeap []timer

func (h *timerHeap) push(t timer) {
	*h = append(*h, t)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if s[p].at <= s[i].at {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
}

func (h *timerHeap) pop() timer {
	s := *h
	t := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= len(s) {
			break
		}
		m := l
		if r := l + 1; r < len(s) && s[r].at < s[l].at {
			m = r
		}
		if s[i].at <= s[m].at {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return t
}
