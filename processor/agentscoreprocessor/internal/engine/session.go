package engine

import (
	"net/netip"
	"strings"
)

// Per-session caps. Together with Settings.MaxSessions they bound the memory
// of the engine; README.md turns them into bytes.
const (
	maxProcs    = 256 // pid → uid/cwd, for events that lack them; exits remove entries
	maxDNSAddrs = 512 // address → name from DNS answers
	minDestCap  = 128 // unique destinations tracked (at least 2 × max_unique_destinations)
	maxSpans    = 512 // process spans with a pending rollup; exported spans remove entries
	ringSize    = 16  // timestamps kept per chain step kind
	pathRing    = 16  // fresh downloads and chmod +x targets kept
)

type procInfo struct {
	uid    int64
	hasUID bool
	homes  uint16 // index into session.homes; 0: none known
	cwd    string
}

// maxHomePairs bounds the distinct (HOME, passwd home) pairs a session
// remembers; a session has one or two, more means garbage.
const maxHomePairs = 64

type procSteps struct{ read, egress int64 }

type destKey struct {
	name string
	addr netip.Addr
}

type session struct {
	key        SessionKey
	prev, next *session
	lastSeen   int64

	// The session user and working directory come from its earliest
	// exec (or session start) by timestamp: the agent itself.
	hasRoot  bool
	rootTime int64
	uid      int64
	hasUID   bool
	workdir  string

	procs       map[int64]procInfo
	homes       [][2]string // (HOME, passwd home) pairs of procInfo.homes
	lastCwd     string
	dnsIPs      map[netip.Addr]string
	dests       map[destKey]struct{}
	uniqueDests int

	reads, stages, egress tsRing
	// procSteps: per process, its latest sensitive read and egress, for
	// the chain inside one process (procChain).
	procSteps         map[int64]procSteps
	downloads, chmods pathRingBuf

	spans map[SpanKey]Rollup
	total Rollup
}

func newSession(k SessionKey) *session {
	return &session{
		key:    k,
		procs:  map[int64]procInfo{},
		dnsIPs: map[netip.Addr]string{},
		dests:  map[destKey]struct{}{},

		procSteps: map[int64]procSteps{},
	}
}

// learn records what an exec or session start says about the process and,
// if it is the earliest seen, about the session.
func (s *session) learn(ev *Event, t int64) {
	if ev.Kind == KindExec && ev.HasPID {
		if _, ok := s.procs[ev.PID]; !ok && len(s.procs) >= maxProcs {
			clear(s.procs) // only events lacking uid/cwd lose their fallback
		}
		s.procs[ev.PID] = procInfo{uid: ev.UID, hasUID: ev.HasUID, cwd: s.intern(ev.Cwd),
			homes: s.homeIndex(ev.EnvHome, ev.UserHome)}
	}
	if !ev.HasUID && ev.Cwd == "" {
		return
	}
	if s.hasRoot && t >= s.rootTime {
		return
	}
	s.hasRoot, s.rootTime = true, t
	if ev.HasUID {
		s.uid, s.hasUID = ev.UID, true
	}
	if ev.Cwd != "" {
		s.workdir = s.intern(ev.Cwd)
	}
}

// intern returns a copy of cwd that does not pin the pdata it came from,
// sharing the copy when processes of the session work in the same
// directory, which is the common case.
// homeIndex returns the index of the (HOME, passwd home) pair in s.homes,
// adding it when there is room. Processes of a session share one or two
// pairs, so a process costs two bytes for them, not two strings.
func (s *session) homeIndex(env, user string) uint16 {
	if env == "" && user == "" {
		return 0
	}
	for i, h := range s.homes {
		if h[0] == env && h[1] == user {
			return uint16(i + 1)
		}
	}
	if len(s.homes) >= maxHomePairs {
		return 0
	}
	s.homes = append(s.homes, [2]string{strings.Clone(env), strings.Clone(user)})
	return uint16(len(s.homes))
}

// homesOf returns the pair homeIndex gave i.
func (s *session) homesOf(i uint16) (env, user string) {
	if i == 0 || int(i) > len(s.homes) {
		return "", ""
	}
	h := s.homes[i-1]
	return h[0], h[1]
}

func (s *session) intern(cwd string) string {
	switch cwd {
	case "":
		return ""
	case s.workdir:
		return s.workdir
	case s.lastCwd:
		return s.lastCwd
	}
	s.lastCwd = strings.Clone(cwd)
	return s.lastCwd
}

func (s *session) addSpan(k SpanKey, res *Result) {
	r, ok := s.spans[k]
	if !ok && len(s.spans) >= maxSpans {
		// Drop an arbitrary pending span: its process span will carry a
		// partial rollup; the session rollup stays complete.
		for old := range s.spans {
			delete(s.spans, old)
			break
		}
	}
	if s.spans == nil {
		s.spans = map[SpanKey]Rollup{}
	}
	r.add(res)
	s.spans[k] = r
}

// tsRing keeps the last ringSize timestamps of one chain step kind.
type tsRing struct {
	t   [ringSize]int64
	n   int
	pos int
}

func (r *tsRing) add(t int64) {
	r.t[r.pos] = t
	r.pos = (r.pos + 1) % ringSize
	if r.n < ringSize {
		r.n++
	}
}

// anyIn reports whether a timestamp lies in [lo, hi].
func (r *tsRing) anyIn(lo, hi int64) bool {
	for i := 0; i < r.n; i++ {
		if r.t[i] >= lo && r.t[i] <= hi {
			return true
		}
	}
	return false
}

type pathStamp struct {
	path string
	t    int64
}

type pathRingBuf struct {
	e   [pathRing]pathStamp
	n   int
	pos int
}

func (r *pathRingBuf) add(p string, t int64) {
	r.e[r.pos] = pathStamp{path: strings.Clone(p), t: t}
	r.pos = (r.pos + 1) % pathRing
	if r.n < pathRing {
		r.n++
	}
}

func (r *pathRingBuf) hasAtOrBefore(p string, t int64) bool {
	for i := 0; i < r.n; i++ {
		if r.e[i].path == p && r.e[i].t <= t {
			return true
		}
	}
	return false
}

func (r *pathRingBuf) hasAtOrAfter(p string, t int64) bool {
	for i := 0; i < r.n; i++ {
		if r.e[i].path == p && r.e[i].t >= t {
			return true
		}
	}
	return false
}

// session returns the session for k, creating it (and evicting the least
// recently used one when full), and marks it most recently used.
func (e *Engine) session(k SessionKey, now int64) *session {
	s := e.sessions[k]
	if s == nil {
		if len(e.sessions) >= e.maxSess {
			e.evict(e.tail)
			e.evictedLRU++
		}
		s = newSession(k)
		e.sessions[k] = s
	} else {
		e.unlink(s)
	}
	s.lastSeen = now
	s.next = e.head
	if e.head != nil {
		e.head.prev = s
	}
	e.head = s
	if e.tail == nil {
		e.tail = s
	}
	return s
}

// expire drops sessions idle for longer than the TTL. The LRU tail is the
// longest idle, so this stops at the first live one.
func (e *Engine) expire(now int64) {
	if e.ttl <= 0 {
		return
	}
	for e.tail != nil && now-e.tail.lastSeen > e.ttl {
		e.evict(e.tail)
		e.evictedTTL++
	}
}

func (e *Engine) evict(s *session) {
	if s == nil {
		return
	}
	e.unlink(s)
	delete(e.sessions, s.key)
}

func (e *Engine) unlink(s *session) {
	if s.prev != nil {
		s.prev.next = s.next
	} else if e.head == s {
		e.head = s.next
	}
	if s.next != nil {
		s.next.prev = s.prev
	} else if e.tail == s {
		e.tail = s.prev
	}
	s.prev, s.next = nil, nil
}
