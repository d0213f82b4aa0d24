// Package session turns the kernel's process and I/O events into agent
// sessions: it decides which processes are agents (with the matcher), keeps
// the process tree of each session, tells the kernel which processes to
// follow, and shapes what happens into OTel logs (one per event) and traces
// (a root span per session, a span per process image).
//
// A Tracker is driven by one goroutine: Handle, ScanProc and Flush must not
// run concurrently. Stats may be called from anywhere.
package session

import (
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"

	"github.com/agentwatch/agentwatch/internal/redact"
	"github.com/agentwatch/agentwatch/internal/semconv"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/matcher"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/proctree"
)

// Action is the matcher's exec-time action, re-exported for the receiver.
type Action = matcher.Action

// Actions, re-exported for the receiver.
const (
	ActionStart     = matcher.Start
	ActionCandidate = matcher.Candidate
)

// Membership is the in-kernel session map (implemented by kernel.Tracer).
type Membership interface {
	// Track adds or updates a process; start is its start_boottime in ns
	// (to /proc's 10 ms precision for processes found by a scan). pending
	// keeps the kernel flagging its execs as candidates.
	Track(pid uint32, start uint64, pending bool) error
	// Untrack removes a process; removing an absent one is not an error.
	Untrack(pid uint32) error
}

// Defaults for the zero values of Config.
const (
	DefaultMaxSessions       = 1024
	DefaultMaxProcesses      = 32768
	DefaultMaxPendingRecords = 1 << 17
	DefaultReapInterval      = 10 * time.Second
	DefaultRejectTTL         = time.Minute
)

// Config configures a Tracker.
type Config struct {
	Matcher  *matcher.Set
	BootID   string // /proc/sys/kernel/random/boot_id; read from ProcRoot when empty
	HostName string // os.Hostname() when empty
	Backend  string // BackendTracepoint or BackendLSM: names agent.hook
	// FileOpTracepoints: on the LSM backend, the changes of files are
	// still seen by syscall tracepoints (a kernel without the LSM path
	// hooks, CONFIG_SECURITY_PATH).
	FileOpTracepoints bool
	// EnforceRules names the rule ids of kernel enforcement records
	// (agent.enforce.rule); unknown ids are shown as "rule-<id>".
	EnforceRules map[uint32]string
	// Grace is how long a session whose processes have all exited waits
	// for late events before it ends.
	Grace time.Duration
	// MaxSessions bounds the sessions in progress; more are not followed.
	MaxSessions int
	// MaxProcesses bounds the processes followed, all sessions together
	// (the size of the kernel's map). MaxSessionProcesses bounds one
	// session (default MaxProcesses); set it lower so that one fork storm
	// cannot starve the other sessions.
	MaxProcesses        int
	MaxSessionProcesses int
	// MaxPendingRecords bounds the log records and spans waiting for Flush;
	// beyond it event records are dropped and counted.
	MaxPendingRecords int
	// ProcRoot is procfs, for cgroups at exec, adoption and reaping.
	ProcRoot string
	// ReapInterval is how often processes are checked against ProcRoot to
	// end those whose exit event was lost; negative disables it.
	ReapInterval time.Duration
	// RejectTTL is how long a rejected candidate's events are recognised
	// and dropped without a /proc lookup.
	RejectTTL time.Duration
	// Clock converts kernel timestamps; NewClock() when nil.
	Clock *Clock
	// DedupWindow folds repeated opens of one file by one process (same
	// path, flags and result class) within it into one record with
	// agent.file.open_count; 0 disables (dedup.go).
	DedupWindow time.Duration
	// AgentState maps an agent name to the globs of its own state files;
	// their opens by the agent's own processes are dropped (agentstate.go).
	// Nil keeps them.
	AgentState map[string][]string
	// GitMetadata drops git's reads of its own repository and config
	// (gitmeta.go).
	GitMetadata bool
	// DropCleanExits leaves out the agent.process.exit record of a process
	// that exited with code 0: its span's end and process.exit.code say it.
	// Non-zero codes and signals stay records.
	DropCleanExits bool
	// Intent configures DNS and TLS handling (intent.go); off when zero.
	Intent IntentConfig
}

// Stats are the tracker's counters.
type Stats struct {
	ActiveSessions     int
	TrackedProcesses   int
	Events             [kevent.KindMax]uint64 // handled, by kind
	SessionsStarted    uint64
	SessionsEnded      uint64
	CandidatesRejected uint64 // candidate execs the matcher turned down
	SessionsDropped    uint64 // matched roots over MaxSessions
	ProcessesDropped   uint64 // processes over MaxProcesses/MaxSessionProcesses
	RecordsDropped     uint64 // records over MaxPendingRecords
	EventsDropped      uint64 // events of rejected, vanished or unknown processes
	Adopted            uint64 // processes found through /proc after a lost event
	Reaped             uint64 // processes ended because /proc no longer has them
	MembershipErrors   uint64 // Track/Untrack failures
	OpensFolded        uint64 // repeated opens counted on an earlier record
	AgentStateDropped  uint64 // opens of the agent's own state by its own processes
	GitMetadataDropped uint64 // git's reads of its own repository and config
	CleanExitsDropped  uint64 // exit records left out: code 0
	RouteProbes        uint64 // UDP connects to port 0 (source address selection), not records
	ProcpsEnviron      uint64 // ps reading environ it does not print
	OpensUnfolded      uint64 // opens recorded alone because the fold table was full
	// ConnClosesLate: agent.net.close records of processes that had
	// exited (connections their exit closed), still attributed.
	ConnClosesLate uint64
}

type counters struct {
	events           [kevent.KindMax]atomic.Uint64
	activeSessions   atomic.Int64
	trackedProcs     atomic.Int64
	sessionsStarted  atomic.Uint64
	sessionsEnded    atomic.Uint64
	rejected         atomic.Uint64
	sessionsDropped  atomic.Uint64
	procsDropped     atomic.Uint64
	recordsDropped   atomic.Uint64
	eventsDropped    atomic.Uint64
	adopted          atomic.Uint64
	reaped           atomic.Uint64
	membershipErrors atomic.Uint64
	opensFolded      atomic.Uint64
	agentStateDrops  atomic.Uint64
	gitMetaDrops     atomic.Uint64
	cleanExitDrops   atomic.Uint64
	routeProbes      atomic.Uint64
	procpsEnviron    atomic.Uint64
	opensUnfolded    atomic.Uint64
	connClosesLate   atomic.Uint64
}

// image is what a process runs: shared by a forked child with its parent
// until the child execs, so never modified after creation.
type image struct {
	exe           string // process.executable.path
	exeName       string // process.executable.name: basename of exe
	name          string // span name: basename of the path as invoked
	args          []string
	cwd           string
	uid           uint32 // effective uid
	argsTruncated bool
	pathTruncated bool
	// What `~` means to this image: HOME as of its exec, and its uid's
	// home in the passwd under its own root. Either may be "".
	envHome  string
	userHome string
	// agent is the agent whose matcher recognises this image ("" for
	// none): its processes are the agent's own, not a tool's.
	agent string
	// byAgent: the image replaced one of the session agent's own (a
	// program the agent started, such as OpenCode's snapshot git, or a
	// tool).
	byAgent bool
	// git: the image is a packaged git; gitDirs its --git-dir arguments
	// (gitmeta.go).
	git     bool
	gitDirs []string
	// fileless: the image runs from no file on disk (memfd, deleted).
	// program: what a dynamic loader run as a command loads.
	fileless bool
	program  string
	// The pipes on fds 0 and 1 at exec (pipefs inodes; 0: none).
	stdinPipe, stdoutPipe uint64
}

type proc struct {
	key        proctree.Key
	startNS    uint64 // start_boottime; to tick precision when from /proc
	ppid       uint32
	sess       *session
	img        *image
	span       pcommon.SpanID
	parentSpan pcommon.SpanID
	spanStart  uint64 // boottime ns
	seq        uint32 // image number within the process
	// forkOnly: the image is the parent's, inherited at fork, and the
	// process has done nothing of its own yet. Such an image gets no span
	// if an exec replaces it (one span per process image, not per fork);
	// its first own event (a record, a child) gives it one.
	forkOnly bool
	// tool is the model's tool call that started the process (toolRoot)
	// or an ancestor; wait, that the call is not known yet (tools.go).
	tool     *openTool
	toolRoot bool
	wait     *toolWait
	// llmCaller: an LLM request was seen from it.
	llmCaller bool
	opens     map[openKey]*heldOpen // opens folded into one record (dedup.go)
	// Forks before this boottime may have copied the kernel's pending
	// flag from this process (set while userspace judged it).
	pendingUntil uint64
	scanned      bool // image from the /proc scan, not from an exec event
	suspect      bool // the last reap pass did not find it
}

type session struct {
	id       pcommon.TraceID
	idHex    string
	name     string
	rootSpan pcommon.SpanID
	rootPID  uint32
	rootPPID uint32
	rootImg  *image
	start    uint64 // boottime ns
	live     int
	lastExit uint64
	ended    bool
	logs     plog.LogRecordSlice
	spans    ptrace.SpanSlice
	intent   *sessIntent // DNS names, open tool calls (intent.go)
	// llmSeen: an LLM request of the session was parsed, so the processes
	// its tool calls start are known as such (tools.go).
	llmSeen bool
}

type rejection struct {
	at uint64 // boottime ns
	// lost: the process vanished or could not be judged, rather than
	// being turned down; its children are judged on their own.
	lost bool
}

// Tracker follows agent sessions. See the package comment for threading.
type Tracker struct {
	cfg      Config
	m        Membership
	log      *zap.Logger
	clock    *Clock
	hooks    hookNames
	flags    flagCache
	self     uint32
	procs    map[proctree.Key]*proc
	sessions []*session
	active   int
	rejected map[proctree.Key]rejection
	pending  int
	// scanSeq is the image number of images found by a scan: distinct per
	// collector run, so a restart never reuses the span id of an image
	// the previous run already exported.
	scanSeq    uint32
	scanStart  uint64
	lastReap   uint64
	lastExpire uint64
	st         counters
	in         *intentState // nil without DNS and TLS (intent.go)
	dedup      dedupState
	state      agentState // the agents' own state files (agentstate.go)
	homes      *passwdHomes
	exited     exitedProcs // recently exited processes (connclose.go)
}

const (
	scopeName   = "github.com/agentwatch/agentwatch/receiver/agentsessionreceiver"
	maxRejected = 1 << 16
	maxAncestry = 64
)

// New returns a Tracker. It reads the boot id (and host name) when cfg does
// not carry them.
func New(cfg Config, m Membership, logger *zap.Logger) (*Tracker, error) {
	if cfg.Matcher == nil {
		return nil, errors.New("session: no matcher set")
	}
	if m == nil {
		return nil, errors.New("session: no membership")
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = "/proc"
	}
	if cfg.BootID == "" {
		id, err := ReadBootID(cfg.ProcRoot)
		if err != nil {
			return nil, fmt.Errorf("session: boot id (session ids depend on it): %w", err)
		}
		cfg.BootID = id
	}
	if cfg.HostName == "" {
		cfg.HostName, _ = os.Hostname()
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.MaxProcesses <= 0 {
		cfg.MaxProcesses = DefaultMaxProcesses
	}
	if cfg.MaxSessionProcesses <= 0 || cfg.MaxSessionProcesses > cfg.MaxProcesses {
		cfg.MaxSessionProcesses = cfg.MaxProcesses
	}
	if cfg.MaxPendingRecords <= 0 {
		cfg.MaxPendingRecords = DefaultMaxPendingRecords
	}
	if cfg.ReapInterval == 0 {
		cfg.ReapInterval = DefaultReapInterval
	}
	if cfg.RejectTTL <= 0 {
		cfg.RejectTTL = DefaultRejectTTL
	}
	if cfg.Grace < 0 {
		cfg.Grace = 0
	}
	if cfg.Clock == nil {
		cfg.Clock = NewClock()
	}
	boot := BootNow()
	t := &Tracker{
		cfg:      cfg,
		m:        m,
		log:      logger,
		clock:    cfg.Clock,
		hooks:    hooksFor(cfg.Backend),
		flags:    flagCache{},
		self:     uint32(os.Getpid()),
		procs:    map[proctree.Key]*proc{},
		rejected: map[proctree.Key]rejection{},
		scanSeq:  1<<31 | uint32(boot/proctree.NSPerTick)&(1<<31-1),
		homes:    newPasswdHomes(cfg.ProcRoot),
	}
	if cfg.FileOpTracepoints {
		t.hooks.fileOp = tracepointFileOpHooks
	}
	state, err := compileAgentState(cfg.AgentState)
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	t.state = state
	if cfg.Intent.DNS || cfg.Intent.TLS {
		if err := t.initIntent(cfg.Intent); err != nil {
			return nil, fmt.Errorf("session: secrets: %w", err)
		}
	}
	return t, nil
}

// Stats returns the counters; safe from any goroutine.
func (t *Tracker) Stats() Stats {
	s := Stats{
		ActiveSessions:     int(t.st.activeSessions.Load()),
		TrackedProcesses:   int(t.st.trackedProcs.Load()),
		SessionsStarted:    t.st.sessionsStarted.Load(),
		SessionsEnded:      t.st.sessionsEnded.Load(),
		CandidatesRejected: t.st.rejected.Load(),
		SessionsDropped:    t.st.sessionsDropped.Load(),
		ProcessesDropped:   t.st.procsDropped.Load(),
		RecordsDropped:     t.st.recordsDropped.Load(),
		EventsDropped:      t.st.eventsDropped.Load(),
		Adopted:            t.st.adopted.Load(),
		Reaped:             t.st.reaped.Load(),
		MembershipErrors:   t.st.membershipErrors.Load(),
		OpensFolded:        t.st.opensFolded.Load(),
		AgentStateDropped:  t.st.agentStateDrops.Load(),
		GitMetadataDropped: t.st.gitMetaDrops.Load(),
		CleanExitsDropped:  t.st.cleanExitDrops.Load(),
		RouteProbes:        t.st.routeProbes.Load(),
		ProcpsEnviron:      t.st.procpsEnviron.Load(),
		OpensUnfolded:      t.st.opensUnfolded.Load(),
		ConnClosesLate:     t.st.connClosesLate.Load(),
	}
	for i := range s.Events {
		s.Events[i] = t.st.events[i].Load()
	}
	return s
}

// Lookup returns the trace (session) and span of a process, for events
// other packages attach to sessions (DNS, TLS).
func (t *Tracker) Lookup(pid uint32, startNS uint64) (pcommon.TraceID, pcommon.SpanID, bool) {
	p := t.procs[proctree.KeyOf(pid, startNS)]
	if p == nil {
		return pcommon.TraceID{}, pcommon.SpanID{}, false
	}
	return p.sess.id, p.span, true
}

// Handle processes one kernel event.
func (t *Tracker) Handle(ev kevent.Event) {
	h := ev.Hdr()
	if int(h.Kind) < len(t.st.events) {
		t.st.events[h.Kind].Add(1)
	}
	switch e := ev.(type) {
	case *kevent.Exec:
		t.exec(e)
	case *kevent.Fork:
		t.fork(e)
	case *kevent.Exit:
		t.exit(e)
	case *kevent.Open:
		t.open(e)
	case *kevent.FileOp:
		t.fileOp(e)
	case *kevent.Enforce:
		t.enforce(e)
	case *kevent.Connect:
		t.connect(e)
	case *kevent.DNS:
		t.dnsEvent(e)
	case *kevent.TLS:
		t.tlsEvent(e)
	case *kevent.ConnClose:
		t.connClose(e)
	}
}

func (t *Tracker) exec(e *kevent.Exec) {
	key := proctree.KeyOf(e.PID, e.Start)
	if p := t.procs[key]; p != nil {
		t.newImage(p, e)
		return
	}
	if e.Header.Flags&(kevent.FlagExecMatched|kevent.FlagExecCandidate) == 0 {
		// A member the kernel follows but we never heard of: its fork
		// (or our start) was lost. /proc shows it after this exec.
		if _, rej := t.rejected[key]; rej {
			t.st.eventsDropped.Add(1)
			return
		}
		if p := t.adopt(key, e.Time); p != nil {
			p.img = t.imageOf(e)
			p.scanned = false
		}
		return
	}
	t.judge(key, e)
}

// judge decides a candidate (or kernel-matched) exec outside any session.
func (t *Tracker) judge(key proctree.Key, e *kevent.Exec) {
	delete(t.rejected, key)
	mp := matcher.Proc{Exe: e.Exe, Filename: absPath(e.Filename, e.Cwd), Args: e.Args}
	if t.cfg.Matcher.NeedsCgroup() {
		mp.CgroupPath, _ = proctree.ReadCgroup(t.cfg.ProcRoot, e.PID)
	}
	name, ok := t.cfg.Matcher.Match(mp)
	if !ok && e.Header.Flags&kevent.FlagExecMatched != 0 {
		// A cgroup match whose process left (or moved) before we read its
		// cgroup. The kernel keeps following it; its children are judged
		// through /proc when their events come.
		t.log.Debug("kernel match not confirmed", zap.Uint32("pid", e.PID), zap.String("exe", e.Exe))
		t.reject(key, e.Time, true)
		return
	}
	if !ok {
		t.st.rejected.Add(1)
		t.untrack(e.PID)
		t.reject(key, e.Time, false)
		return
	}
	img := t.imageOf(e)
	s, p := t.startSession(name, key, e.Start, e.PPID, img, e.Time, 0)
	if p == nil {
		t.untrack(e.PID)
		t.reject(key, e.Time, false)
		return
	}
	if e.Header.Flags&kevent.FlagExecCandidate != 0 {
		t.track(p, false)
		p.pendingUntil = BootNow()
	}
	t.logSession(s, true)
	t.logExec(p, e.Time)
}

// newImage is an exec inside a session: the old image's span ends here and
// is the new one's parent.
func (t *Tracker) newImage(p *proc, e *kevent.Exec) {
	img := t.imageOf(e)
	if p.scanned {
		p.scanned = false
		// The scan already saw this image if the exec came before the
		// scan started, or (racing with it) if it is the same program.
		if e.Time < t.scanStart || (img.exe == p.img.exe && slices.Equal(img.args, p.img.args)) {
			p.img, p.ppid = img, e.PPID
			return
		}
	}
	if p.img.exeName == "env" && !p.img.pathTruncated {
		// `#!/usr/bin/env node` and friends: env does nothing of its own
		// before it execs the program, so the program takes env's span
		// (and, for a session's root, the session's root image) instead
		// of sitting under a useless env span.
		if p.key.PID == p.sess.rootPID && p.seq == 0 && p.sess.rootImg == p.img {
			p.sess.rootImg = img
		}
		p.img, p.ppid = img, e.PPID
		t.logExec(p, e.Time)
		return
	}
	img.byAgent = p.img.agent != "" && p.img.agent == p.sess.name
	t.nextImageSpan(p, e.Time)
	p.img, p.ppid = img, e.PPID
	t.logExec(p, e.Time)
}

func (t *Tracker) fork(f *kevent.Fork) {
	ck := proctree.KeyOf(f.PID, f.Start)
	if t.procs[ck] != nil {
		return // the scan found it first
	}
	pk := proctree.KeyOf(f.PPID, f.PStart)
	parent := t.procs[pk]
	if parent == nil {
		r, rej := t.rejected[pk]
		if !rej {
			parent = t.adopt(pk, f.Time)
			r, rej = t.rejected[pk]
		}
		if parent == nil {
			if rej && !r.lost {
				// The kernel follows a candidate's children until we
				// decide; the parent is turned down, so is the child.
				t.untrack(f.PID)
				t.reject(ck, f.Time, false)
				t.st.eventsDropped.Add(1)
				return
			}
			t.adopt(ck, f.Time)
			return
		}
	}
	c := t.addProc(parent.sess, ck, f.Start, f.PPID, parent.img, t.ownSpan(parent), f.Time, 0)
	if c == nil {
		t.untrack(f.PID)
		t.reject(ck, f.Time, false)
		return
	}
	c.forkOnly = true
	t.toolFork(parent, c, f.Time)
	if parent.pendingUntil != 0 && f.Time <= parent.pendingUntil {
		t.track(c, false)
		c.pendingUntil = BootNow()
	}
}

func (t *Tracker) exit(e *kevent.Exit) {
	key := proctree.KeyOf(e.PID, e.Start)
	p := t.procs[key]
	if p == nil {
		// A rejected process's last event: nothing of it can follow.
		delete(t.rejected, key)
		t.st.eventsDropped.Add(1)
		return
	}
	code, sig := e.Code()
	ex := &exitInfo{code: code, signal: sig}
	t.releaseOpens(p)
	t.logExit(p, e.Time, ex)
	t.endSpan(p, e.Time, ex)
	t.removeProc(p, e.Time)
}

func (t *Tracker) open(e *kevent.Open) {
	p := t.member(proctree.KeyOf(e.PID, e.Start), e.Time)
	if p == nil {
		return
	}
	fp := e.Path
	if e.Header.Flags&kevent.FlagPathRaw != 0 {
		fp = absPath(fp, p.img.cwd)
	}
	fp = path.Clean(fp)
	if t.ownState(p, fp) || t.ownListing(p, fp, e.OpenFlags) {
		t.st.agentStateDrops.Add(1)
		return
	}
	if t.gitMetadata(p, fp, e.OpenFlags) {
		t.st.gitMetaDrops.Add(1)
		return
	}
	if e.Header.Flags&kevent.FlagProcOther != 0 && procpsHidesEnviron(p.img, fp) {
		t.st.procpsEnviron.Add(1)
		return
	}
	// Fingerprinted before folding: a repeated open may follow a change.
	t.sensitiveOpen(p, e, fp)
	x := t.openIdentity(p, e, fp)
	fp = utf8Safe(fp)
	if t.cfg.DedupWindow > 0 {
		t.expireOpens(e.Time)
		if x == nil && t.foldOpen(p, e, fp) {
			return
		}
	}
	t.logOpen(p, e.Time, fp, e.OpenFlags, e.Ret, e.Syscall, e.Header.Flags&kevent.FlagPathTruncated != 0, 1, x)
}

// logOpen records an open; x (nil for most) is what its identity adds.
func (t *Tracker) logOpen(p *proc, at uint64, fp string, flags uint32, ret int32, syscall uint16, truncated bool, count int, x *openExtra) {
	lr, ok := t.eventLog(p, semconv.EventFileOpen, at, 6)
	if !ok {
		return
	}
	a := lr.Attributes()
	if x != nil {
		putIdentity(a, x.id, x.canonical)
		if x.procTarget != 0 {
			a.PutInt(semconv.FileProcTargetPID, int64(x.procTarget))
		}
	}
	a.PutStr(semconv.FilePath, fp)
	a.PutStr(semconv.FileFlags, t.flags.get(flags))
	a.PutInt(semconv.FileResult, int64(ret))
	a.PutStr(semconv.Hook, t.hooks.forOpen(syscall))
	if truncated {
		a.PutBool(semconv.PathTruncated, true)
	}
	if count > 1 {
		a.PutInt(semconv.FileOpenCount, int64(count))
	}
}

func (t *Tracker) connect(e *kevent.Connect) {
	p := t.member(proctree.KeyOf(e.PID, e.Start), e.Time)
	if p == nil {
		return
	}
	if e.Port == 0 && e.SockType == 2 {
		// A UDP connect to port 0 sends nothing: getaddrinfo's address
		// sorting (RFC 6724) asks the kernel which source address a
		// destination would use, for every address a lookup returned.
		t.st.routeProbes.Add(1)
		return
	}
	if t.lookupConnect(p, e.Addr, e.Port) {
		return
	}
	lr, ok := t.eventLog(p, semconv.EventNetConnect, e.Time, 6)
	if !ok {
		return
	}
	a := lr.Attributes()
	a.PutStr(semconv.NetworkPeerAddress, e.Addr.String())
	a.PutInt(semconv.NetworkPeerPort, int64(e.Port))
	switch e.SockType {
	case 1:
		a.PutStr(semconv.NetworkTransport, "tcp")
	case 2:
		a.PutStr(semconv.NetworkTransport, "udp")
	}
	if e.Addr.Is4() {
		a.PutStr(semconv.NetworkType, "ipv4")
	} else {
		a.PutStr(semconv.NetworkType, "ipv6")
	}
	a.PutInt(semconv.ConnectResult, int64(e.Ret))
	a.PutStr(semconv.Hook, connectHook(e, t.hooks.connect))
	a.EnsureCapacity(a.Len() + 3)
	if !t.putPeerName(p, a, e.Addr, e.Port) && e.SockType == 1 && (e.Ret == 0 || e.Ret == -int32(syscall.EINPROGRESS)) {
		// No name yet: the TLS layer of this connection may give one.
		if held, ok := t.holdConnect(p, e.Addr, e.Time); ok {
			lr.MoveTo(held)
			last, i := p.sess.logs.Len()-1, -1
			p.sess.logs.RemoveIf(func(plog.LogRecord) bool { i++; return i == last })
		}
	}
}

// enforceActions are the agent.enforce.action values per kernel action;
// agent_score scores "deny" and "kill" as enforce.denied, "audit" (monitor
// mode: would have been denied) as enforce.action.
var enforceActions = [...]string{kevent.EnforceAudit: "audit", kevent.EnforceDeny: "deny", kevent.EnforceKill: "kill"}

func (t *Tracker) enforce(e *kevent.Enforce) {
	p := t.member(proctree.KeyOf(e.PID, e.Start), e.Time)
	if p == nil {
		return
	}
	lr, ok := t.eventLog(p, semconv.EventEnforce, e.Time, 5)
	if !ok {
		return
	}
	a := lr.Attributes()
	rule, ok := t.cfg.EnforceRules[e.Rule]
	if !ok {
		rule = "rule-" + strconv.FormatUint(uint64(e.Rule), 10)
	}
	a.PutStr(semconv.EnforceRule, rule)
	action := "unknown"
	if int(e.Action) < len(enforceActions) && enforceActions[e.Action] != "" {
		action = enforceActions[e.Action]
	}
	a.PutStr(semconv.EnforceAction, action)
	switch e.What {
	case kevent.EnforceOpen:
		a.PutStr(semconv.FilePath, utf8Safe(path.Clean(e.Path)))
		if t.cfg.Backend == BackendLSM {
			a.PutStr(semconv.Hook, t.hooks.forOpen(kevent.SyscallLSMFileOpen))
		} else {
			// any of the open syscalls' exits; the record does not say which
			a.PutStr(semconv.Hook, "tracepoint/syscalls/sys_exit_open*")
		}
	case kevent.EnforceConnect:
		a.PutStr(semconv.NetworkPeerAddress, e.Addr.String())
		a.PutInt(semconv.NetworkPeerPort, int64(e.Port))
		syscallHook := "tracepoint/syscalls/sys_enter_connect"
		if t.cfg.Backend == BackendLSM {
			syscallHook = t.hooks.connect
		}
		family := uint16(2)
		if e.Addr.Is6() {
			family = 10
		}
		a.PutStr(semconv.Hook, connectHook(&kevent.Connect{Header: e.Header, Family: family}, syscallHook))
	}
}

// member finds the process of an I/O event, adopting it through /proc if
// its arrival was lost. nil: not a session process; the event is dropped.
func (t *Tracker) member(key proctree.Key, at uint64) *proc {
	if p := t.procs[key]; p != nil {
		return p
	}
	if _, rej := t.rejected[key]; !rej {
		if p := t.adopt(key, at); p != nil {
			return p
		}
	}
	t.st.eventsDropped.Add(1)
	return nil
}

// adopt looks a process up in /proc after one of its events arrived with
// no history: a lost event, or a member the kernel followed before we
// started. It joins the session of its nearest known ancestor, or starts
// one if it matches on its own; otherwise the kernel stops following it.
func (t *Tracker) adopt(key proctree.Key, at uint64) *proc {
	if key.PID == t.self {
		// Following the collector would feed its own reads back to it.
		t.untrack(key.PID)
		t.reject(key, at, false)
		return nil
	}
	sp, err := proctree.Read(t.cfg.ProcRoot, key.PID)
	if err != nil || sp.Key != key {
		t.reject(key, at, true)
		return nil
	}
	// Like a scan, it is shown as starting when the process did: its
	// exec time is unknown, and it ran before this event.
	img, start := t.imageOfProc(sp), key.StartNS()
	if anc := t.ancestor(sp.PPID); anc != nil {
		p := t.addProc(anc.sess, key, start, sp.PPID, img, t.ownSpan(anc), start, t.scanSeq)
		if p == nil {
			t.untrack(key.PID)
			t.reject(key, at, false)
			return nil
		}
		p.scanned = true
		t.st.adopted.Add(1)
		t.track(p, false)
		t.logExec(p, start)
		return p
	}
	name, ok := t.cfg.Matcher.Match(procMatch(sp))
	if !ok {
		t.untrack(key.PID)
		t.reject(key, at, false)
		return nil
	}
	s, p := t.startSession(name, key, start, sp.PPID, img, start, t.scanSeq)
	if p == nil {
		t.untrack(key.PID)
		t.reject(key, at, false)
		return nil
	}
	p.scanned = true
	t.st.adopted.Add(1)
	t.track(p, false)
	t.logSession(s, true)
	t.logExec(p, start)
	return p
}

// ancestor walks the /proc parent chain from pid to the nearest session
// process; it stops at a process turned down (its descendants were not
// followed either).
func (t *Tracker) ancestor(pid uint32) *proc {
	for range maxAncestry {
		if pid <= 1 {
			return nil
		}
		st, err := proctree.ReadStat(t.cfg.ProcRoot, pid)
		if err != nil {
			return nil
		}
		k := proctree.Key{PID: pid, Start: st.Start}
		if p := t.procs[k]; p != nil {
			return p
		}
		if r, rej := t.rejected[k]; rej && !r.lost {
			return nil
		}
		pid = st.PPID
	}
	return nil
}

// startSession creates a session rooted at a new process. It returns nil
// processes when a bound is reached.
func (t *Tracker) startSession(name string, key proctree.Key, startNS uint64, ppid uint32, img *image, at uint64, seq uint32) (*session, *proc) {
	if t.active >= t.cfg.MaxSessions {
		t.st.sessionsDropped.Add(1)
		t.log.Debug("session not followed: max_sessions reached", zap.String("agent", name), zap.Uint32("pid", key.PID))
		return nil, nil
	}
	if len(t.procs) >= t.cfg.MaxProcesses {
		t.st.procsDropped.Add(1)
		return nil, nil
	}
	id := SessionID(t.cfg.BootID, key)
	s := &session{
		id:       id,
		idHex:    id.String(),
		name:     name,
		rootSpan: rootSpanID(id),
		rootPID:  key.PID,
		rootPPID: ppid,
		rootImg:  img,
		start:    at,
		logs:     plog.NewLogRecordSlice(),
		spans:    ptrace.NewSpanSlice(),
	}
	t.sessions = append(t.sessions, s)
	t.active++
	t.st.activeSessions.Store(int64(t.active))
	t.st.sessionsStarted.Add(1)
	p := t.addProc(s, key, startNS, ppid, img, s.rootSpan, at, seq)
	if ids := t.identities(); ids != nil {
		ids.ScanWorkdir(img.cwd) // its .env files are known by identity from now on
	}
	return s, p
}

func (t *Tracker) addProc(s *session, key proctree.Key, startNS uint64, ppid uint32, img *image, parentSpan pcommon.SpanID, at uint64, seq uint32) *proc {
	if len(t.procs) >= t.cfg.MaxProcesses || s.live >= t.cfg.MaxSessionProcesses {
		t.st.procsDropped.Add(1)
		return nil
	}
	p := &proc{
		key:        key,
		startNS:    startNS,
		ppid:       ppid,
		sess:       s,
		img:        img,
		span:       spanID(s.id, key.PID, key.Start, seq),
		parentSpan: parentSpan,
		spanStart:  at,
		seq:        seq,
	}
	t.procs[key] = p
	s.live++
	t.st.trackedProcs.Store(int64(len(t.procs)))
	return p
}

func (t *Tracker) removeProc(p *proc, at uint64) {
	t.releaseOpens(p)
	t.toolsCallerGone(p, at)
	delete(t.procs, p.key)
	t.rememberExited(p, at)
	t.st.trackedProcs.Store(int64(len(t.procs)))
	s := p.sess
	s.live--
	if s.live == 0 {
		s.lastExit = at
	}
}

func (t *Tracker) reject(key proctree.Key, at uint64, lost bool) {
	if len(t.rejected) >= maxRejected {
		return
	}
	t.rejected[key] = rejection{at: at, lost: lost}
}

func (t *Tracker) track(p *proc, pending bool) {
	if err := t.m.Track(p.key.PID, p.startNS, pending); err != nil {
		t.st.membershipErrors.Add(1)
		t.log.Debug("kernel track failed", zap.Uint32("pid", p.key.PID), zap.Error(err))
	}
}

func (t *Tracker) untrack(pid uint32) {
	if err := t.m.Untrack(pid); err != nil {
		t.st.membershipErrors.Add(1)
		t.log.Debug("kernel untrack failed", zap.Uint32("pid", pid), zap.Error(err))
	}
}

// imageOf builds the image of an exec event: paths made valid UTF-8, argv
// redacted before anything else can see it.
func (t *Tracker) imageOf(e *kevent.Exec) *image {
	invoked := absPath(e.Filename, e.Cwd)
	exe := e.Exe
	if exe == "" {
		exe = invoked
	}
	img := newImage(exe, invoked, e.Args, e.Cwd, e.EUID,
		e.Header.Flags&kevent.FlagArgsTruncated != 0, e.Header.Flags&kevent.FlagPathTruncated != 0)
	img.envHome = utf8Safe(e.Home)
	img.userHome = t.homes.home(e.PID, e.EUID)
	img.agent = t.agentOf(matcher.Proc{Exe: e.Exe, Filename: invoked, Args: e.Args})
	img.stdinPipe, img.stdoutPipe = e.StdinPipe, e.StdoutPipe
	if e.Header.Flags&kevent.FlagExeUnlinked != 0 {
		// as /proc/<pid>/exe reads: "/memfd:name (deleted)", "/tmp/x (deleted)"
		img.fileless = true
		img.exe += " (deleted)"
	}
	t.seeHomes(img)
	return img
}

func (t *Tracker) imageOfProc(sp *proctree.Proc) *image {
	img := newImage(sp.Exe, scanFilename(sp), sp.Args, sp.Cwd, sp.EUID, false, false)
	img.envHome = envHome(t.cfg.ProcRoot, sp.PID)
	img.userHome = t.homes.home(sp.PID, sp.EUID)
	img.agent = t.agentOf(procMatch(sp))
	t.seeHomes(img)
	return img
}

func newImage(exe, invoked string, args []string, cwd string, uid uint32, argsTrunc, pathTrunc bool) *image {
	exe = utf8Safe(exe)
	name := baseName(utf8Safe(invoked))
	if name == "" {
		name = baseName(exe)
	}
	img := &image{
		exe:           exe,
		exeName:       baseName(exe),
		name:          name,
		args:          redact.Args(utf8SafeArgs(args)),
		cwd:           utf8Safe(cwd),
		uid:           uid,
		argsTruncated: argsTrunc,
		pathTruncated: pathTrunc,
	}
	if gitImage(img.exe) {
		img.git, img.gitDirs = true, gitDirs(img.args, img.cwd)
	}
	if isLoader(img.exeName) {
		img.program = utf8Safe(loadedProgram(img.args, img.cwd))
	}
	return img
}

// shebangRunners run a script named by their first argument; a scanned
// "node /usr/bin/claude" was invoked as /usr/bin/claude, which is what the
// kernel's comm, and so the user's executables patterns, name.
var shebangRunners = func() map[string]bool {
	m := map[string]bool{"sh": true, "bash": true, "dash": true, "zsh": true}
	for _, n := range matcher.Interpreters {
		m[n] = true
	}
	return m
}()

// scanFilename reconstructs the path a running process was invoked as,
// which /proc does not keep: argv[0], or the script of an interpreter.
func scanFilename(sp *proctree.Proc) string {
	if len(sp.Args) == 0 {
		return sp.Exe
	}
	f := sp.Args[0]
	if shebangRunners[baseName(sp.Exe)] && len(sp.Args) > 1 && sp.Args[1] != "" && !strings.HasPrefix(sp.Args[1], "-") {
		f = sp.Args[1]
	}
	if strings.Contains(f, "/") {
		return absPath(f, sp.Cwd)
	}
	return f
}

func procMatch(sp *proctree.Proc) matcher.Proc {
	return matcher.Proc{Exe: sp.Exe, Filename: scanFilename(sp), Args: sp.Args, CgroupPath: sp.Cgroup}
}

func absPath(p, cwd string) string {
	if p == "" || strings.HasPrefix(p, "/") || cwd == "" {
		return p
	}
	return path.Join(cwd, p)
}

func baseName(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }
