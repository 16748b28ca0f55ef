package sched

// queue holds one model's queued requests of one priority class in deadline order (FIFO for
// equal SLOs, so inserts are O(1) in the common case). Removal from the middle is lazy: an
// entry whose request changed generation or left the queued state is dead and skipped.
type queue struct {
	buf     []qent // ring, len a power of two
	head, n int    // entries, live or dead
	live    int32  // live entries
}

type qent struct {
	slot int32
	gen  uint32
}

func (q *queue) at(i int) *qent { return &q.buf[(q.head+i)&(len(q.buf)-1)] }

func (e qent) alive(reqs []request) bool {
	r := &reqs[e.slot]
	return r.gen == e.gen && r.state == reqQueued
}

// insert adds a queued request, keeping live entries in deadline order.
//
// Timing: Step; amortized no allocation; O(1) unless deadlines arrive out of order.
func (q *queue) insert(reqs []request, slot int32) {
	if q.n == len(q.buf) {
		nb := make([]qent, max(16, 2*len(q.buf)))
		for i := 0; i < q.n; i++ {
			nb[i] = *q.at(i)
		}
		q.buf, q.head = nb, 0
	}
	i := q.n
	*q.at(i) = qent{slot, reqs[slot].gen}
	q.n++
	q.live++
	d := reqs[slot].deadline
	for ; i > 0; i-- {
		p := q.at(i - 1)
		if p.alive(reqs) && reqs[p.slot].deadline <= d {
			break
		}
		c := q.at(i)
		*p, *c = *c, *p
	}
}

// frontSlot is the first live request, or -1.
func (q *queue) frontSlot(reqs []request) int32 {
	for i := 0; i < q.n; i++ {
		if e := q.at(i); e.alive(reqs) {
			return e.slot
		}
	}
	return -1
}

// trim pops dead entries off the front.
func (q *queue) trim(reqs []request) {
	for q.n > 0 && !q.at(0).alive(reqs) {
		q.head = (q.head + 1) & (len(q.buf) - 1)
		q.n--
	}
}

// popFront removes and returns the first live request; the caller keeps live up to date.
func (q *queue) popFront(reqs []request) int32 {
	q.trim(reqs)
	if q.n == 0 {
		panic("BUG: popFront on a queue with no live entries")
	}
	e := q.at(0)
	q.head = (q.head + 1) & (len(q.buf) - 1)
	q.n--
	return e.slot
}
