package agentconsoleexporter

import (
	"container/list"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// maxProcsPerSession bounds the process table of one session. Exited
// processes are forgotten first; past the bound a new process is shown at
// depth 1 instead of its true depth, which only costs indentation.
const maxProcsPerSession = 4096

type proc struct {
	depth  int
	name   string
	span   pcommon.SpanID
	exited bool
}

// session is what the console remembers about one agent session between
// its start and end events.
type session struct {
	id   string
	tag  string // "claude-code:4bf92f35", the prefix of every line
	elem *list.Element

	start   pcommon.Timestamp
	rootPID int64
	cwd     string

	procs  map[int64]*proc
	spans  map[pcommon.SpanID]int64 // process span -> pid, to place chat/tool spans
	exited []int64                  // exit order, oldest first: what to forget first

	processes int
	events    int
	alerts    map[string]int
	maxScore  int64
}

func newSession(id, tag string) *session {
	return &session{
		id:     id,
		tag:    tag,
		procs:  map[int64]*proc{},
		spans:  map[pcommon.SpanID]int64{},
		alerts: map[string]int{},
	}
}

// depthOf is where a process's lines are indented. A pid never seen (the
// exporter joined mid-session, or the table was full) sits under the root.
func (s *session) depthOf(pid int64) int {
	if p, ok := s.procs[pid]; ok {
		return p.depth
	}
	if pid == 0 || pid == s.rootPID {
		return 0
	}
	return 1
}

func (s *session) nameOf(pid int64) string {
	if p, ok := s.procs[pid]; ok {
		return p.name
	}
	return ""
}

// exec records a new process image and returns its depth. An exec in a pid
// already known (execve without fork) keeps that pid's place in the tree.
func (s *session) exec(pid, ppid int64, name string, span pcommon.SpanID) int {
	depth := 1
	if p, ok := s.procs[pid]; ok && !p.exited {
		depth = p.depth
	} else {
		s.processes++
		if pp, ok := s.procs[ppid]; ok {
			depth = pp.depth + 1
		} else if pid == s.rootPID {
			depth = 0
		}
	}
	s.put(pid, &proc{depth: depth, name: name, span: span})
	return depth
}

func (s *session) put(pid int64, p *proc) {
	if old, ok := s.procs[pid]; ok && !old.span.IsEmpty() {
		delete(s.spans, old.span)
	}
	if _, ok := s.procs[pid]; !ok && len(s.procs) >= maxProcsPerSession && !s.forgetOneExited() {
		return
	}
	s.procs[pid] = p
	if !p.span.IsEmpty() {
		s.spans[p.span] = pid
	}
}

func (s *session) exit(pid int64) {
	p, ok := s.procs[pid]
	if !ok || p.exited {
		return
	}
	p.exited = true
	// Keep the entry while there is room: children forked before the
	// exit may still exec, and spans of this process end after it.
	s.exited = append(s.exited, pid)
}

func (s *session) forgetOneExited() bool {
	for len(s.exited) > 0 {
		pid := s.exited[0]
		s.exited = s.exited[1:]
		// The pid may have been reused by a live process since.
		if p, ok := s.procs[pid]; ok && p.exited {
			delete(s.procs, pid)
			delete(s.spans, p.span)
			return true
		}
	}
	return false
}

// score folds one scored record into the session summary.
func (s *session) score(score int64, level string, alert bool) {
	if score > s.maxScore {
		s.maxScore = score
	}
	if alert {
		if level == "" {
			level = "unknown"
		}
		s.alerts[level]++
	}
}

// recentlyEndedCap is how many ended session ids are remembered, so that a
// straggler event (an exit flushed after the end event) neither revives the
// session's state until eviction nor prints as a new session.
const recentlyEndedCap = 256

// sessions is the bounded set of live sessions, least recently seen at the
// back of the list.
type sessions struct {
	max  int
	byID map[string]*session
	lru  *list.List

	ended     map[string]struct{}
	endedRing []string // insertion order, to forget the oldest
}

func newSessions(maxSessions int) *sessions {
	return &sessions{max: maxSessions, byID: map[string]*session{}, lru: list.New(), ended: map[string]struct{}{}}
}

func (ss *sessions) markEnded(id string) {
	if _, ok := ss.ended[id]; ok {
		return
	}
	if len(ss.endedRing) >= recentlyEndedCap {
		delete(ss.ended, ss.endedRing[0])
		ss.endedRing = ss.endedRing[1:]
	}
	ss.ended[id] = struct{}{}
	ss.endedRing = append(ss.endedRing, id)
}

func (ss *sessions) hasEnded(id string) bool {
	_, ok := ss.ended[id]
	return ok
}

func (ss *sessions) get(id string) *session {
	s, ok := ss.byID[id]
	if ok {
		ss.lru.MoveToFront(s.elem)
	}
	return s
}

func (ss *sessions) getOrCreate(id, tag string) *session {
	if s := ss.get(id); s != nil {
		return s
	}
	for len(ss.byID) >= ss.max {
		oldest := ss.lru.Back()
		ss.remove(oldest.Value.(*session))
	}
	s := newSession(id, tag)
	s.elem = ss.lru.PushFront(s)
	ss.byID[id] = s
	return s
}

func (ss *sessions) remove(s *session) {
	if ss.byID[s.id] != s {
		return // a detached straggler state, never stored
	}
	ss.lru.Remove(s.elem)
	delete(ss.byID, s.id)
}

func (ss *sessions) len() int { return len(ss.byID) }
