package engine

import (
	"hash/maphash"
	"net/netip"
	"strings"

	"github.com/agentwatch/agentwatch/processor/agentscoreprocessor/internal/policy"
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
	maxPipes    = 256 // pipe inode → flow, per direction
	createdRing = 64  // files the session created (O_CREAT), kept as hashes
)

type procInfo struct {
	uid    int64
	hasUID bool
	// transfer: the image is a loader running a transfer tool, so its
	// write opens (whose executable is the loader) are downloads.
	transfer bool
	homes    uint16 // index into session.homes; 0: none known
	cwd      string
}

// maxHomePairs bounds the distinct (HOME, passwd home) pairs a session
// remembers; a session has one or two, more means garbage.
const maxHomePairs = 64

// procSteps are the latest sensitive read and egress of one process, for
// the chain inside it.
type procSteps struct{ read, egress int64 }

// flowSteps are the same for one flow (a pipeline), plus its latest
// encoder or archiver run.
type flowSteps struct {
	procSteps
	encode int64
}

func (f *flowSteps) merge(o flowSteps) {
	f.read, f.egress, f.encode = max(f.read, o.read), max(f.egress, o.egress), max(f.encode, o.encode)
}

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
	// the chain inside one process (procStep); processes in a flow keep
	// theirs in flowSteps.
	procSteps         map[int64]procSteps
	downloads, chmods pathRingBuf
	created           hashRing

	// Flows: processes joined by pipes. writers and readers map a pipe
	// inode to the flow of the processes that have it as stdout or stdin;
	// pidFlow the flow of each process that has one; flowSteps the chain
	// steps of each flow. Allocated at the first exec with a pipe.
	writers, readers map[int64]pipeEnd
	pidFlow          map[int64]uint32
	flowSteps        map[uint32]flowSteps
	nextFlow         uint32

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
			homes:    s.homeIndex(ev.EnvHome, ev.UserHome),
			transfer: ev.Program != "" && policy.IsTransferTool(policy.ExecPath(ev.Exe, ev.Program))}
		s.joinFlow(ev.PID, ev.StdinPipe, ev.StdoutPipe)
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

// carryFresh keeps a fresh file fresh under the name a rename or link
// gives it: curl -o x.part && mv x.part x && chmod +x x.
func (s *session) carryFresh(src, canon, dst string, t int64) {
	for _, p := range [2]string{src, canon} {
		if p == "" {
			continue
		}
		if s.downloads.hasAtOrBefore(p, t) {
			s.downloads.add(dst, t)
		}
		if s.created.hasAtOrBefore(p, t) {
			s.created.add(dst, t)
		}
	}
}

var pathSeed = maphash.MakeSeed()

// hashRing keeps the last createdRing paths as 64-bit hashes with their
// timestamps: files the session created are common, so remembering them
// must not copy a string each time.
type hashRing struct {
	h   [createdRing]uint64
	t   [createdRing]int64
	n   int
	pos int
}

func (r *hashRing) add(p string, t int64) {
	r.h[r.pos], r.t[r.pos] = maphash.String(pathSeed, p), t
	r.pos = (r.pos + 1) % createdRing
	if r.n < createdRing {
		r.n++
	}
}

func (r *hashRing) hasAtOrBefore(p string, t int64) bool {
	h := maphash.String(pathSeed, p)
	for i := 0; i < r.n; i++ {
		if r.h[i] == h && r.t[i] <= t {
			return true
		}
	}
	return false
}

// pipeEnd is the flow of the processes at one end of a pipe, and the flow
// of an earlier process at that end that is not (yet) part of it: two
// writers of one pipe ({ a; b; } | c) are one flow only once a reader
// joins them, since processes that merely share a stdout (the commands of
// one shell writing to the agent) are not a pipeline.
type pipeEnd struct{ flow, prev uint32 }

// joinFlow puts an exec'ing process into the flow of its pipes: the flow of
// the processes writing its stdin pipe if known, else that of the processes
// reading its stdout pipe, else a new one; both pipes are registered. A
// pipeline's processes exec in any order, so every flow the process links
// becomes one: the middle of a | b | c arriving last joins both sides, a
// reader arriving after two writers joins them both. A process without
// pipes leaves any flow it had.
func (s *session) joinFlow(pid, stdin, stdout int64) {
	if stdin == 0 && stdout == 0 {
		if s.pidFlow != nil {
			delete(s.pidFlow, pid)
		}
		return
	}
	if s.pidFlow == nil {
		s.writers, s.readers = map[int64]pipeEnd{}, map[int64]pipeEnd{}
		s.pidFlow, s.flowSteps = map[int64]uint32{}, map[uint32]flowSteps{}
	}
	var in, out pipeEnd
	if stdin != 0 {
		in = s.writers[stdin]
	}
	if stdout != 0 {
		out = s.readers[stdout]
	}
	f := in.flow
	if f == 0 {
		f = out.flow
	}
	if f == 0 {
		s.nextFlow++
		f = s.nextFlow
	}
	for _, g := range [...]uint32{in.prev, out.flow, out.prev} {
		if g != 0 && g != f {
			s.mergeFlow(g, f)
		}
	}
	if stdin != 0 {
		s.putEnd(s.readers, stdin, f)
		if e, ok := s.writers[stdin]; ok && e.prev != 0 {
			e.prev = 0 // joined above
			s.writers[stdin] = e
		}
	}
	if stdout != 0 {
		s.putEnd(s.writers, stdout, f)
		if e, ok := s.readers[stdout]; ok && e.prev != 0 {
			e.prev = 0
			s.readers[stdout] = e
		}
	}
	if _, ok := s.pidFlow[pid]; !ok && len(s.pidFlow) >= maxProcs {
		clear(s.pidFlow) // only processes exec'ed before lose their flow
	}
	s.pidFlow[pid] = f
	// What the process did before it was known to be in the flow (an
	// earlier image, an event that overtook its exec) counts for the flow.
	if ps, ok := s.procSteps[pid]; ok {
		delete(s.procSteps, pid)
		s.mergeSteps(f, flowSteps{procSteps: ps})
	}
}

// putEnd records that a process of flow f is at this end of the pipe,
// keeping the flow it displaces.
func (s *session) putEnd(m map[int64]pipeEnd, pipe int64, f uint32) {
	e, ok := m[pipe]
	if !ok && len(m) >= maxPipes {
		clear(m) // only the joins of processes exec'ed before lose their memory
	}
	if e.flow != 0 && e.flow != f {
		e.prev = e.flow
	}
	e.flow = f
	m[pipe] = e
}

// mergeFlow makes flow from part of flow into.
func (s *session) mergeFlow(from, into uint32) {
	for k, f := range s.pidFlow {
		if f == from {
			s.pidFlow[k] = into
		}
	}
	for _, m := range [...]map[int64]pipeEnd{s.writers, s.readers} {
		for k, e := range m {
			if e.flow != from && e.prev != from {
				continue
			}
			if e.flow == from {
				e.flow = into
			}
			if e.prev == from {
				e.prev = into
			}
			if e.prev == e.flow {
				e.prev = 0
			}
			m[k] = e
		}
	}
	if fs, ok := s.flowSteps[from]; ok {
		delete(s.flowSteps, from)
		s.mergeSteps(into, fs)
	}
}

func (s *session) mergeSteps(f uint32, fs flowSteps) {
	cur, ok := s.flowSteps[f]
	if !ok && len(s.flowSteps) >= maxProcs {
		clear(s.flowSteps)
	}
	cur.merge(fs)
	s.flowSteps[f] = cur
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
