package dns

import (
	"net/netip"
	"time"
)

// Result is a query with its response, or a query that got none.
type Result struct {
	PID uint32
	// Resolver is the server the query was sent to, as given to Query.
	Resolver netip.AddrPort
	Query    Message
	// Response is nil for a query that was not answered in time (Expired)
	// or was pushed out of a full tracker (Evicted).
	Response *Message
	Sent     time.Time
	// Latency is the time from query to response; 0 without a response.
	Latency time.Duration
	Expired bool
	Evicted bool
}

// Tracker pairs queries with their responses. A query is identified by
// the sending process and the DNS id, refined by the question (name and
// type) because stub resolvers may send the A and AAAA queries of one
// lookup with the same id. Responses without a question section (some
// FORMERR/SERVFAIL answers) match on pid and id alone.
//
// Time is passed in, never read, so that tests and replays control it.
// Tracker is not safe for concurrent use.
type Tracker struct {
	timeout      time.Duration
	maxPending   int
	onUnanswered func(Result)

	byKey map[trackKey]*pending
	// head/tail: pending queries in the order they were sent, so that
	// expiry and eviction look only at the oldest.
	head, tail *pending
	n          int

	evicted uint64
}

// maxSameKey caps the pending queries sharing one (pid, id).
const maxSameKey = 8

type trackKey struct {
	pid uint32
	id  uint16
}

// pending is one outstanding query; those sharing a key form a chain.
type pending struct {
	res        Result
	prev, next *pending // age order
	sameKey    *pending
}

// NewTracker returns a Tracker that reports, through onUnanswered, every
// query not answered within timeout (Result.Expired) and every query
// dropped because maxPending queries were outstanding (Result.Evicted, the
// oldest goes first). onUnanswered may be nil.
func NewTracker(timeout time.Duration, maxPending int, onUnanswered func(Result)) *Tracker {
	if maxPending < 1 {
		maxPending = 1
	}
	return &Tracker{
		timeout:      timeout,
		maxPending:   maxPending,
		onUnanswered: onUnanswered,
		byKey:        make(map[trackKey]*pending),
	}
}

// Query records a query sent by pid to resolver at now. A retransmission
// (same pid, id and question while the first is pending) is ignored, so
// that latency counts from the first attempt.
func (t *Tracker) Query(now time.Time, pid uint32, resolver netip.AddrPort, q Message) {
	t.Expire(now)
	k := trackKey{pid, q.ID}
	chain := 0
	var oldest *pending
	for p := t.byKey[k]; p != nil; p = p.sameKey {
		if p.res.Query.Name == q.Name && p.res.Query.Type == q.Type {
			return
		}
		chain++
		oldest = p
	}
	if chain >= maxSameKey {
		// Only a misbehaving process reuses one id this much; keep the
		// per-key walk short.
		t.evict(oldest)
	}
	for t.n >= t.maxPending {
		t.evict(t.head)
	}
	p := &pending{res: Result{PID: pid, Resolver: resolver, Query: q, Sent: now}}
	p.sameKey = t.byKey[k]
	t.byKey[k] = p
	p.prev = t.tail
	if t.tail != nil {
		t.tail.next = p
	} else {
		t.head = p
	}
	t.tail = p
	t.n++
}

// Response matches a response received by pid at now with its query. It
// returns false, and a Result carrying only the response, when no pending
// query matches (its send was not seen, or it already expired).
func (t *Tracker) Response(now time.Time, pid uint32, r Message) (Result, bool) {
	t.Expire(now)
	k := trackKey{pid, r.ID}
	for p := t.byKey[k]; p != nil; p = p.sameKey {
		if r.Name != "" && (p.res.Query.Name != r.Name || p.res.Query.Type != r.Type) {
			continue
		}
		t.remove(p)
		res := p.res
		res.Response = &r
		res.Latency = max(now.Sub(res.Sent), 0)
		return res, true
	}
	return Result{PID: pid, Response: &r, Sent: now}, false
}

// Expire reports, as unanswered, the queries older than the timeout.
// Query and Response call it; call it also on a timer so that the last
// queries of a quiet process are reported.
func (t *Tracker) Expire(now time.Time) {
	for t.head != nil && now.Sub(t.head.res.Sent) >= t.timeout {
		p := t.head
		t.remove(p)
		p.res.Expired = true
		t.report(p.res)
	}
}

// Len returns the number of pending queries.
func (t *Tracker) Len() int { return t.n }

// Evicted returns how many queries were dropped because the tracker was full.
func (t *Tracker) Evicted() uint64 { return t.evicted }

func (t *Tracker) evict(p *pending) {
	t.remove(p)
	t.evicted++
	p.res.Evicted = true
	t.report(p.res)
}

func (t *Tracker) report(r Result) {
	if t.onUnanswered != nil {
		t.onUnanswered(r)
	}
}

func (t *Tracker) remove(p *pending) {
	if p.prev != nil {
		p.prev.next = p.next
	} else {
		t.head = p.next
	}
	if p.next != nil {
		p.next.prev = p.prev
	} else {
		t.tail = p.prev
	}
	p.prev, p.next = nil, nil

	k := trackKey{p.res.PID, p.res.Query.ID}
	if first := t.byKey[k]; first == p {
		if p.sameKey == nil {
			delete(t.byKey, k)
		} else {
			t.byKey[k] = p.sameKey
		}
	} else {
		for q := first; q != nil; q = q.sameKey {
			if q.sameKey == p {
				q.sameKey = p.sameKey
				break
			}
		}
	}
	p.sameKey = nil
	t.n--
}

// ExpirePID reports, as unanswered (Expired), every pending query of pid
// now: its process or session ended, and a late answer could no longer be
// attributed.
func (t *Tracker) ExpirePID(pid uint32) {
	for p := t.head; p != nil; {
		next := p.next
		if p.res.PID == pid {
			t.remove(p)
			p.res.Expired = true
			t.report(p.res)
		}
		p = next
	}
}
