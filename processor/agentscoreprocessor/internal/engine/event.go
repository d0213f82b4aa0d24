// Package engine scores agent_session events with a compiled policy and
// keeps the per-session state the cross-event rules need: who the session
// user is, DNS answers, unique destinations, chain steps, fresh downloads,
// and the risk rollups for process and session spans. The state is bounded:
// an LRU of sessions with a TTL, and fixed caps inside each session.
package engine

import (
	"github.com/agentwatch/agentwatch/internal/semconv"
	"github.com/agentwatch/agentwatch/processor/agentscoreprocessor/internal/policy"
)

// Kind is the event kind, from event.name.
type Kind uint8

// Event kinds.
const (
	KindOther Kind = iota
	KindSessionStart
	KindSessionEnd
	KindExec
	KindExit
	KindFileOpen
	KindConnect
	KindDNS
	KindLLMRequest
	KindLLMResponse
	KindEnforce
	// Changes of files: file.path is the file changed (the source of a
	// link, rename or bind mount).
	KindFileLink
	KindFileRename
	KindFileUnlink
	KindFileChmod
	KindFileMount
	// KindNetClose: a TCP connection ended, with what it moved.
	KindNetClose
	NumKinds
)

// FileChange reports whether k is a change of a file (link, rename,
// unlink, chmod, mount).
func (k Kind) FileChange() bool { return k >= KindFileLink && k <= KindFileMount }

// KindOf maps an event.name to its kind.
func KindOf(name string) Kind {
	switch name {
	case semconv.EventSessionStart:
		return KindSessionStart
	case semconv.EventSessionEnd:
		return KindSessionEnd
	case semconv.EventProcessExec:
		return KindExec
	case semconv.EventProcessExit:
		return KindExit
	case semconv.EventFileOpen:
		return KindFileOpen
	case semconv.EventNetConnect:
		return KindConnect
	case semconv.EventDNSQuery:
		return KindDNS
	case semconv.EventLLMRequest:
		return KindLLMRequest
	case semconv.EventLLMResponse:
		return KindLLMResponse
	case semconv.EventEnforce:
		return KindEnforce
	case semconv.EventFileLink:
		return KindFileLink
	case semconv.EventFileRename:
		return KindFileRename
	case semconv.EventFileUnlink:
		return KindFileUnlink
	case semconv.EventFileChmod:
		return KindFileChmod
	case semconv.EventFileMount:
		return KindFileMount
	case semconv.EventNetClose:
		return KindNetClose
	}
	return KindOther
}

// SessionKey identifies a session: the trace id.
type SessionKey [16]byte

// SpanKey identifies a process span.
type SpanKey [8]byte

// Event is the part of a LogRecord the engine reads. Strings may alias the
// pdata they came from; the engine copies what it keeps.
type Event struct {
	Kind    Kind
	Time    int64 // unix nanoseconds; 0 means unknown (arrival time is used)
	Session SessionKey
	Span    SpanKey

	PID    int64
	HasPID bool
	UID    int64
	HasUID bool
	Cwd    string
	// EnvHome and UserHome: HOME as of the exec, and the uid's home under
	// the process's own root ("" when the receiver did not say).
	EnvHome  string
	UserHome string
	Exe      string
	Args     []string
	// Program is what a loader run as a command loads (agent.process.program).
	Program string
	// Fileless: the image runs from a memfd or a deleted file.
	Fileless bool
	// StdinPipe and StdoutPipe are the inodes of the pipes on fd 0 and 1
	// at exec; 0 when not a pipe (or not said).
	StdinPipe  int64
	StdoutPipe int64

	Path  string
	Flags string
	// CanonicalPath is the name the receiver knows the file's inode by
	// when it was reached under another (hard link, bind mount, …).
	CanonicalPath string
	// NewPath is the name a link or rename gives; MountPoint where a mount
	// puts file.path; MountFlags its MS_* names.
	NewPath    string
	MountPoint string
	MountFlags string
	// Mode is file.mode of a chmod (HasMode when given).
	Mode    uint32
	HasMode bool
	// ProcTargetPID is the process whose /proc/<pid>/environ or mem was
	// opened, when the receiver said.
	ProcTargetPID    int64
	HasProcTargetPID bool
	// SecretCount: secrets found in what an LLM request sent; SecretFiles:
	// how many sensitive files' content among them.
	SecretCount int64
	SecretFiles int
	Result      int64
	HasResult   bool

	PeerAddr   string
	Port       int64
	HasPort    bool
	ServerAddr string
	// PeerResolved is -1 when the receiver did not say, else 0 or 1.
	PeerResolved int8
	// SentBytes is agent.net.sent_bytes of a closed connection.
	SentBytes    int64
	HasSentBytes bool

	// ResolverIsSystem is -1 when the receiver did not say, else 0 or 1.
	ResolverIsSystem int8
	DNSName          string
	DNSAnswers       []string
	Resolver         string

	EnforceAction string
}

// Reset clears e for reuse, keeping the Args and DNSAnswers capacity.
func (e *Event) Reset() {
	args, answers := e.Args[:0], e.DNSAnswers[:0]
	*e = Event{Args: args, DNSAnswers: answers, PeerResolved: -1, ResolverIsSystem: -1}
}

// Result is the score of one event.
type Result struct {
	Rules policy.RuleSet
	Score int
	Top   int // index of the highest-scoring rule, -1 when none matched
	Alert bool
}

// Level returns the risk level of the score.
func (r *Result) Level() string { return LevelOf(r.Score) }

// LevelOf maps a score to its level: none 0, low 1–39, medium 40–69, high
// 70–89, critical 90–100.
func LevelOf(score int) string {
	switch {
	case score <= 0:
		return semconv.LevelNone
	case score < 40:
		return semconv.LevelLow
	case score < 70:
		return semconv.LevelMedium
	case score < 90:
		return semconv.LevelHigh
	}
	return semconv.LevelCritical
}

// LevelIndex is the position of a level in ascending order (none = 0).
func LevelIndex(score int) int {
	switch {
	case score <= 0:
		return 0
	case score < 40:
		return 1
	case score < 70:
		return 2
	case score < 90:
		return 3
	}
	return 4
}

// Levels lists the levels in ascending order.
var Levels = [5]string{semconv.LevelNone, semconv.LevelLow, semconv.LevelMedium, semconv.LevelHigh, semconv.LevelCritical}

// Rollup aggregates the results of many events, for a span.
type Rollup struct {
	Max    int
	Alerts int
	Rules  policy.RuleSet
}

func (r *Rollup) add(res *Result) {
	if res.Score > r.Max {
		r.Max = res.Score
	}
	if res.Alert {
		r.Alerts++
	}
	r.Rules.Union(&res.Rules)
}
