package session

import (
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/agentwatch/agentwatch/internal/dns"
	"github.com/agentwatch/agentwatch/internal/httpstream"
	"github.com/agentwatch/agentwatch/internal/llmapi"
	"github.com/agentwatch/agentwatch/internal/redact"
	"github.com/agentwatch/agentwatch/internal/semconv"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/proctree"
)

// IntentConfig configures what the tracker makes of the intent layer's
// records: DNS messages and TLS plaintext.
type IntentConfig struct {
	DNS bool
	// DNSTimeout is how long a query waits for its answer before it is
	// reported unanswered. Default 5 s.
	DNSTimeout time.Duration
	// MaxPendingDNS bounds the queries awaiting an answer. Default 1024.
	MaxPendingDNS int
	// SystemResolvers are the resolvers of /etc/resolv.conf; nil when
	// unknown (agent.dns.resolver_is_system is then not set).
	SystemResolvers []netip.Addr
	// MaxNames bounds the address→name map of one session. Default 4096.
	MaxNames int

	TLS     bool
	Capture llmapi.CaptureMode
	// TLSMaxCapture is the kernel's per-call cap (bytes beyond it are
	// known lost). Default 64 KiB.
	TLSMaxCapture uint32
	// MaxTLSConns bounds the TLS connections reassembled at once; the
	// least recently used is dropped. Default 1024.
	MaxTLSConns int
	// HTTP bounds each connection's HTTP reassembly.
	HTTP httpstream.Config
	// Secrets configures the search for secrets in LLM requests (TLS).
	Secrets SecretsConfig
}

// IntentStats are the intent layer's userspace counters.
type IntentStats struct {
	DNSMessages     uint64 // parsed DNS messages
	DNSMalformed    uint64 // DNS payloads that did not parse
	DNSUnanswered   uint64 // queries reported without an answer
	DNSEvicted      uint64 // queries dropped from a full pending table
	TLSChunks       uint64
	TLSBytesLost    uint64 // plaintext the capture cut or lost (Skip)
	TLSConnsEvicted uint64
	LLMCalls        uint64 // chat spans emitted
	LLMParseErrors  uint64
	HTTPMessages    uint64 // HTTP messages reassembled from TLS
	NamesDropped    uint64 // DNS answers not remembered: session map full
	// ResolverConnects are connects to port 53 of the process's own system
	// resolver, not exported: the DNS records of the lookup say more.
	ResolverConnects uint64
	ToolSpans        uint64
	IntentEventsSeen uint64
	// ToolProcesses are processes attributed to a tool call (the ones it
	// started, not their descendants); ToolHeld the records held until
	// their process's tool call was known; ToolUnresolved the waits that
	// ended without one; ToolHeldOverflow the waits cut short by a bound.
	ToolProcesses    uint64
	ToolHeld         uint64
	ToolUnresolved   uint64
	ToolHeldOverflow uint64
}

const (
	defaultDNSTimeout  = 5 * time.Second
	defaultPendingDNS  = 1024
	defaultMaxNames    = 4096
	defaultTLSCap      = 64 << 10
	defaultMaxTLSConns = 1024
	maxTCPDNSStreams   = 256
	maxOpenTools       = 64 // execute_tool spans awaiting their end, per session
	maxCallsPerConn    = 16 // LLM requests awaiting their response, per connection
)

// sessIntent is the intent state of one session.
type sessIntent struct {
	names   map[netip.Addr]peerName // address → the name asked for (DNS) or talked to (TLS)
	tools   []*openTool
	waiting []*proc        // processes whose tool call is not known yet (tools.go)
	held    []*heldConnect // unnamed connects awaiting their TLS layer (peername.go)
	sec     *sessSecrets   // fingerprints and reported secrets (secrets.go)
}

type tlsKey struct {
	proc proctree.Key
	ssl  uint64
}

type dirState struct {
	total, next uint32 // of the current call
}

type tlsConn struct {
	key     tlsKey
	p       *proc
	hc      *httpstream.Conn
	dirs    [2]dirState
	lastUse uint64
	calls   map[*httpstream.Message]*llmCall
	// requested: a request was seen; the first one names the connect
	// that opened the connection.
	requested bool
}

type llmCall struct {
	ep     llmapi.Endpoint
	req    *llmapi.Request
	host   string
	span   pcommon.SpanID
	parent pcommon.SpanID
	p      *proc
	begin  uint64 // boottime ns
	seq    uint64 // in.callSeq at the request
	secret *secretFinding
}

type tcpDNSKey struct {
	pid  uint32
	conn uint64
	dir  uint8
}

type intentState struct {
	cfg      IntentConfig
	dnsTr    *dns.Tracker
	dnsProcs map[uint32]*proc // pid → process of its latest query
	tcpDNS   map[tcpDNSKey]*dns.TCPStream
	system   map[netip.Addr]bool
	conns    map[tlsKey]*tlsConn
	callSeq  uint64
	held     int             // records and spans held for their tool call (tools.go)
	hosts    *hostsCache     // /etc/hosts under each process's root
	resolvs  *resolversCache // /etc/resolv.conf under each process's root
	sec      *secretsState
	ending   *session
	st       IntentStats
}

func (t *Tracker) initIntent(cfg IntentConfig) error {
	if cfg.DNSTimeout <= 0 {
		cfg.DNSTimeout = defaultDNSTimeout
	}
	if cfg.MaxPendingDNS <= 0 {
		cfg.MaxPendingDNS = defaultPendingDNS
	}
	if cfg.MaxNames <= 0 {
		cfg.MaxNames = defaultMaxNames
	}
	if cfg.TLSMaxCapture == 0 {
		cfg.TLSMaxCapture = defaultTLSCap
	}
	if cfg.MaxTLSConns <= 0 {
		cfg.MaxTLSConns = defaultMaxTLSConns
	}
	in := &intentState{
		cfg:      cfg,
		dnsProcs: map[uint32]*proc{},
		tcpDNS:   map[tcpDNSKey]*dns.TCPStream{},
		conns:    map[tlsKey]*tlsConn{},
		hosts:    newHostsCache(t.cfg.ProcRoot),
		resolvs:  newResolversCache(t.cfg.ProcRoot),
	}
	if cfg.SystemResolvers != nil {
		in.system = map[netip.Addr]bool{}
		for _, a := range cfg.SystemResolvers {
			in.system[a.WithZone("").Unmap()] = true
		}
	}
	in.dnsTr = dns.NewTracker(cfg.DNSTimeout, cfg.MaxPendingDNS, t.dnsUnanswered)
	if cfg.TLS && cfg.Secrets.Enabled {
		sec, err := newSecretsState(cfg.Secrets)
		if err != nil {
			return err
		}
		in.sec = sec
	}
	t.in = in
	return nil
}

// IntentStats returns the intent counters. Like Handle, call it from the
// tracker's goroutine.
func (t *Tracker) IntentStats() IntentStats {
	if t.in == nil {
		return IntentStats{}
	}
	s := t.in.st
	s.DNSEvicted = t.in.dnsTr.Evicted()
	return s
}

// ForEachProcess calls fn for every process followed (for TLS discovery),
// with its start time in CLOCK_BOOTTIME ns to tick precision: the pid and
// start name it across pid reuse, as in event headers.
func (t *Tracker) ForEachProcess(fn func(pid uint32, startNS uint64)) {
	for k := range t.procs {
		fn(k.PID, k.StartNS())
	}
}

func (s *session) intentState() *sessIntent {
	if s.intent == nil {
		s.intent = &sessIntent{names: map[netip.Addr]peerName{}}
	}
	return s.intent
}

// bootTime expresses a CLOCK_BOOTTIME timestamp as a time.Time for the
// parsers, which only compare and subtract times.
func bootTime(ns uint64) time.Time { return time.Unix(0, int64(ns)) }

// ---- DNS ----

func (t *Tracker) dnsEvent(e *kevent.DNS) {
	in := t.in
	if in == nil || !in.cfg.DNS {
		return
	}
	p := t.member(proctree.KeyOf(e.PID, e.Start), e.Time)
	if p == nil {
		return
	}
	handle := func(m dns.Message, err error) {
		if err != nil && !errors.Is(err, dns.ErrNoQuestion) {
			in.st.DNSMalformed++
			return
		}
		in.st.DNSMessages++
		now := bootTime(e.Time)
		switch {
		case e.Dir == kevent.DNSSent && !m.Response:
			in.dnsProcs[e.PID] = p
			in.dnsTr.Query(now, e.PID, e.Resolver, m)
		case e.Dir == kevent.DNSReceived && m.Response:
			res, ok := in.dnsTr.Response(now, e.PID, m)
			if !ok {
				// Its query was not seen (or expired): the answer still
				// tells which names the session now knows.
				res.Resolver = e.Resolver
			}
			t.logDNS(p, res, e.Transport)
		}
	}
	if e.Transport == 1 { // TCP: length-prefixed messages, split anywhere
		k := tcpDNSKey{e.PID, e.Conn, e.Dir}
		s := in.tcpDNS[k]
		if s == nil {
			if len(in.tcpDNS) >= maxTCPDNSStreams {
				clear(in.tcpDNS)
			}
			s = &dns.TCPStream{}
			in.tcpDNS[k] = s
		}
		s.Feed(e.Payload, handle)
		if e.Truncated() {
			s.Reset()
		}
		return
	}
	handle(dns.ParseUDP(e.Payload))
}

func (t *Tracker) dnsUnanswered(r dns.Result) {
	in := t.in
	in.st.DNSUnanswered++
	p := in.dnsProcs[r.PID]
	if p == nil || p.sess.ended && p.sess != in.ending {
		return // its session was flushed for the last time
	}
	t.logDNS(p, r, 0)
}

func (t *Tracker) logDNS(p *proc, r dns.Result, transport uint16) {
	at := uint64(r.Sent.UnixNano())
	lr, ok := t.eventLog(p, semconv.EventDNSQuery, at, 8)
	if !ok {
		return
	}
	q := r.Query
	if r.Response != nil && q.Name == "" {
		q = *r.Response
	}
	a := lr.Attributes()
	a.PutStr(semconv.DNSQuestionName, utf8Safe(q.Name))
	a.PutStr(semconv.DNSQuestionType, q.Type)
	ans := a.PutEmptySlice(semconv.DNSAnswers)
	a.PutBool(semconv.DNSAnswered, r.Response != nil)
	if r.Response != nil {
		for _, s := range r.Response.AnswerStrings() {
			ans.AppendEmpty().SetStr(utf8Safe(s))
		}
		a.PutStr(semconv.DNSResponseCode, r.Response.RCode)
		t.rememberNames(p.sess, q.Name, r.Response)
	}
	if r.Resolver.IsValid() {
		addr := r.Resolver.Addr().WithZone("").Unmap()
		a.PutStr(semconv.DNSResolver, addr.String())
		a.PutInt(semconv.ServerPort, int64(r.Resolver.Port()))
		if t.in.system != nil {
			a.PutBool(semconv.DNSResolverIsSystem, t.resolverIsSystem(p, addr))
		}
	}
	switch transport {
	case 1:
		a.PutStr(semconv.NetworkTransport, "tcp")
	case 2:
		a.PutStr(semconv.NetworkTransport, "udp")
	}
}

// resolverIsSystem: the host's resolvers, or those of the resolv.conf
// under the process's own root (a sandbox, a container, `ip netns exec`).
// lookupConnect: a connect to port 53 of a resolver the process's own
// resolv.conf names is the resolver library sending a query (glibc connects
// its UDP socket for every lookup). With DNS capture on, the query and its
// answer are records of their own, so the connect adds nothing a rule or a
// person can use; a resolver of the process's choosing stays a connect.
func (t *Tracker) lookupConnect(p *proc, addr netip.Addr, port uint16) bool {
	if t.in == nil || !t.in.cfg.DNS || port != 53 || !t.resolverIsSystem(p, addr.WithZone("").Unmap()) {
		return false
	}
	t.in.st.ResolverConnects++
	return true
}

func (t *Tracker) resolverIsSystem(p *proc, addr netip.Addr) bool {
	if t.in.system[addr] {
		return true
	}
	own, _ := t.in.resolvs.of(p)
	return slices.Contains(own, addr)
}

func (t *Tracker) rememberNames(s *session, name string, m *dns.Message) {
	if name == "" {
		return
	}
	name = strings.TrimSuffix(name, ".")
	for _, addr := range m.Addrs() {
		t.rememberName(s, addr, peerName{name: name, source: peerDNS})
	}
}

// rememberName records a name of addr for the session's later connects;
// a DNS answer replaces what the TLS layer said, not the other way round.
func (t *Tracker) rememberName(s *session, addr netip.Addr, n peerName) {
	si := s.intentState()
	addr = addr.WithZone("").Unmap()
	old, ok := si.names[addr]
	if !ok && len(si.names) >= t.in.cfg.MaxNames {
		t.in.st.NamesDropped++
		return
	}
	if ok && old.source == peerDNS && n.source != peerDNS {
		return
	}
	si.names[addr] = n
}

// putPeerName fills server.address of a connect from every source that
// names its address (peerNameOf), and says whether one did (the scoring's
// "IP never resolved"). Without DNS capture an unnamed address is not
// claimed unresolved.
// It returns false when the TLS layer may still name the connect (nothing
// named it, or only a hosts file named a loopback address).
func (t *Tracker) putPeerName(p *proc, a pcommon.Map, addr netip.Addr, port uint16) bool {
	if t.in == nil {
		return false
	}
	n := t.peerNameOf(p, addr, port)
	if n.generic {
		// A loopback address is every local server's: a hosts name for it
		// (an API pointed at a local proxy, the host's own name) says only
		// that something resolved there, not which server this is. Only the
		// TLS layer of this connection may name it, or an upload to a local
		// listener would pass for the allowlisted API.
		a.PutBool(semconv.PeerResolved, true)
		return false
	}
	if n.name != "" {
		a.PutStr(semconv.ServerAddress, utf8Safe(n.name))
		a.PutStr(semconv.PeerNameSource, n.source)
		a.PutBool(semconv.PeerResolved, true)
		return !n.generic
	}
	if t.in.cfg.DNS {
		a.PutBool(semconv.PeerResolved, false)
	}
	return false
}

// ---- TLS ----

func (t *Tracker) tlsEvent(e *kevent.TLS) {
	in := t.in
	if in == nil || !in.cfg.TLS {
		return
	}
	key := proctree.KeyOf(e.PID, e.Start)
	p := t.member(key, e.Time)
	if p == nil {
		return
	}
	in.st.TLSChunks++
	c := t.tlsConnOf(tlsKey{key, e.Conn}, p)
	c.lastUse = e.Time
	c.p = p
	parser := c.hc.Request()
	if e.Dir == kevent.TLSRead {
		parser = c.hc.Response()
	}
	d := &c.dirs[e.Dir&1]
	if e.Offset == 0 {
		if d.next < d.total { // the previous call's tail never came
			in.st.TLSBytesLost += uint64(d.total - d.next)
			parser.Skip(int64(d.total - d.next))
		}
		d.total, d.next = e.Total, 0
	}
	if e.Offset > d.next { // chunks lost (ring buffer full)
		in.st.TLSBytesLost += uint64(e.Offset - d.next)
		parser.Skip(int64(e.Offset - d.next))
	}
	parser.Feed(e.Data, t.clock.Wall(e.Time).AsTime())
	d.next = e.Offset + uint32(len(e.Data))
	if e.Truncated && d.next < d.total && d.next >= min(d.total, in.cfg.TLSMaxCapture) {
		// The kernel copied up to its cap: the rest of the call is lost.
		in.st.TLSBytesLost += uint64(d.total - d.next)
		parser.Skip(int64(d.total - d.next))
		d.next = d.total
	}
}

func (t *Tracker) tlsConnOf(k tlsKey, p *proc) *tlsConn {
	in := t.in
	if c := in.conns[k]; c != nil {
		return c
	}
	if len(in.conns) >= in.cfg.MaxTLSConns {
		var oldest *tlsConn
		for _, c := range in.conns {
			if oldest == nil || c.lastUse < oldest.lastUse {
				oldest = c
			}
		}
		delete(in.conns, oldest.key)
		in.st.TLSConnsEvicted++
	}
	c := &tlsConn{key: k, p: p, calls: map[*httpstream.Message]*llmCall{}}
	c.hc = httpstream.NewConn(in.cfg.HTTP,
		func(m *httpstream.Message) { t.httpRequest(c, m) },
		func(m *httpstream.Message) { t.httpResponse(c, m) })
	in.conns[k] = c
	return c
}

func (t *Tracker) llmOptions(p *proc) llmapi.Options {
	o := llmapi.Options{Capture: t.in.cfg.Capture}
	if o.Capture >= llmapi.CaptureFull {
		o.Redact = t.secretRedactor(p)
	}
	return o
}

func (t *Tracker) httpRequest(c *tlsConn, m *httpstream.Message) {
	in := t.in
	in.st.HTTPMessages++
	if !c.requested {
		c.requested = true
		host, _ := splitHostPort(m.Host())
		t.nameHeldConnect(c.p, host, t.clock.Boot(m.Begin))
	}
	ep, ok := llmapi.Detect(m.Host(), m.Target)
	if !ok || m.Method != "POST" {
		return
	}
	req, err := llmapi.ParseRequest(ep, m.Body, t.llmOptions(c.p))
	if err != nil {
		in.st.LLMParseErrors++
		req = &llmapi.Request{Endpoint: ep, Model: ep.Model, Partial: true}
	}
	p := c.p
	begin := t.clock.Boot(m.Begin)
	// The model's previous tool calls ran until this request carries
	// their results back.
	t.toolsAnswered(p, req, begin)
	in.callSeq++
	call := &llmCall{
		ep: ep, req: req, host: m.Host(), p: p, parent: p.span, begin: begin, seq: in.callSeq,
		span: spanID(p.sess.id, p.key.PID, c.key.ssl^in.callSeq<<1, uint32(in.callSeq)|1<<31),
	}
	call.secret = t.scanRequest(p, m.Body)
	if len(c.calls) >= maxCallsPerConn {
		clear(c.calls)
	}
	c.calls[m] = call

	lr, ok := t.eventLog(p, semconv.EventLLMRequest, begin, 20)
	if !ok {
		return
	}
	lr.SetSpanID(call.span)
	a := lr.Attributes()
	t.putLLMCommon(a, call)
	if req.MaxTokens > 0 {
		a.PutInt(semconv.GenAIRequestMaxTokens, req.MaxTokens)
	}
	putSecretFinding(a, call.secret)
	if ua := m.Header.Get("User-Agent"); ua != "" && in.cfg.Capture >= llmapi.CaptureMetadata {
		a.PutStr(semconv.UserAgentOriginal, utf8Safe(redact.Header("User-Agent", ua)))
	}
	if in.cfg.Capture >= llmapi.CaptureMetadata {
		putStrings(a, semconv.LLMTools, req.Tools)
		a.PutInt(semconv.LLMMessages, int64(req.Messages))
		a.PutInt(semconv.LLMPromptBytes, int64(req.PromptBytes))
	}
	if in.cfg.Capture >= llmapi.CaptureFull {
		if req.Prompt != "" {
			a.PutStr(semconv.LLMPrompt, utf8Safe(req.Prompt))
		}
		for name, vals := range m.Header {
			sl := a.PutEmptySlice(semconv.HTTPRequestHeaderPrefix + lowerASCII(name))
			for _, v := range vals {
				sl.AppendEmpty().SetStr(utf8Safe(redact.Header(name, v)))
			}
		}
	}
	if req.Partial || m.BodyTruncated || m.Incomplete {
		a.PutBool(semconv.LLMPartial, true)
	}
}

func (t *Tracker) putLLMCommon(a pcommon.Map, call *llmCall) {
	a.PutStr(semconv.GenAIOperationName, semconv.GenAIOpChat)
	a.PutStr(semconv.GenAIProviderName, call.ep.Provider)
	a.PutStr(semconv.LLMAPI, call.ep.API.String())
	if call.req.Model != "" {
		a.PutStr(semconv.GenAIRequestModel, utf8Safe(call.req.Model))
	}
	host, port := splitHostPort(call.host)
	if host != "" {
		a.PutStr(semconv.ServerAddress, utf8Safe(host))
	}
	if port > 0 {
		a.PutInt(semconv.ServerPort, int64(port))
	}
}

func (t *Tracker) httpResponse(c *tlsConn, m *httpstream.Message) {
	in := t.in
	in.st.HTTPMessages++
	call := c.calls[m.Request]
	if call == nil {
		return // not an LLM call, or its request was not seen
	}
	delete(c.calls, m.Request)
	resp, err := llmapi.ParseResponse(call.ep, m.Body, m.SSE, t.llmOptions(call.p))
	if err != nil || resp == nil {
		in.st.LLMParseErrors++
		resp = &llmapi.Response{Endpoint: call.ep, Partial: true}
	}
	end := max(t.clock.Boot(m.End), call.begin)
	s := call.p.sess
	if s.ended {
		return
	}
	in.st.LLMCalls++

	if lr, ok := t.eventLog(call.p, semconv.EventLLMResponse, end, 14); ok {
		lr.SetSpanID(call.span)
		a := lr.Attributes()
		t.putLLMCommon(a, call)
		putResponse(a, resp, m.StatusCode)
		if in.cfg.Capture >= llmapi.CaptureMetadata {
			names := make([]string, 0, len(resp.ToolCalls))
			for _, tc := range resp.ToolCalls {
				names = append(names, tc.Name)
			}
			putStrings(a, semconv.LLMToolCalls, names)
		}
		if resp.Text != "" {
			a.PutStr(semconv.LLMResponseText, utf8Safe(resp.Text))
		}
		if resp.Partial || m.BodyTruncated || m.Incomplete {
			a.PutBool(semconv.LLMPartial, true)
		}
	}

	if t.pending >= t.cfg.MaxPendingRecords {
		t.st.recordsDropped.Add(1)
		return
	}
	t.pending++
	sp := s.spans.AppendEmpty()
	sp.SetTraceID(s.id)
	sp.SetSpanID(call.span)
	sp.SetParentSpanID(call.parent)
	model := call.req.Model
	if model == "" {
		model = resp.Model
	}
	sp.SetName(semconv.GenAIOpChat + " " + utf8Safe(model))
	sp.SetKind(ptrace.SpanKindClient)
	sp.SetStartTimestamp(t.clock.Wall(call.begin))
	sp.SetEndTimestamp(t.clock.Wall(end))
	a := sp.Attributes()
	t.putLLMCommon(a, call)
	a.PutInt(semconv.ProcessPID, int64(call.p.key.PID))
	putResponse(a, resp, m.StatusCode)
	if in.cfg.Capture >= llmapi.CaptureMetadata {
		putStrings(a, semconv.LLMTools, call.req.Tools)
	}
	putSecretFinding(a, call.secret)
	if resp.ErrorType != "" || m.StatusCode >= 400 {
		sp.Status().SetCode(ptrace.StatusCodeError)
		if v, ok := a.Get(semconv.ErrorType); ok {
			sp.Status().SetMessage(v.Str())
		}
	}

	// The model asked for tools: each runs from now until the agent sends
	// its result back, and the processes the caller starts meanwhile are
	// its children (tools.go).
	si := s.intentState()
	for i, tc := range resp.ToolCalls {
		if len(si.tools) >= maxOpenTools {
			t.endTool(s, si.tools[0], end) // the oldest: its result never came
			si.tools = slices.Delete(si.tools, 0, 1)
		}
		si.tools = append(si.tools, newOpenTool(tc,
			spanID(s.id, call.p.key.PID, uint64(call.span[0])<<56|uint64(i), uint32(in.callSeq)|1<<30),
			call.span, call.p.key, call.seq, end))
	}
	t.resolveWaiting(s, end, false)
}

func putResponse(a pcommon.Map, r *llmapi.Response, status int) {
	if r.Model != "" {
		a.PutStr(semconv.GenAIResponseModel, utf8Safe(r.Model))
	}
	if r.ID != "" {
		a.PutStr(semconv.GenAIResponseID, utf8Safe(r.ID))
	}
	if r.HasUsage {
		a.PutInt(semconv.GenAIUsageInputTokens, r.Usage.InputTokens)
		a.PutInt(semconv.GenAIUsageOutputTokens, r.Usage.OutputTokens)
	}
	putStrings(a, semconv.GenAIFinishReasons, r.FinishReasons)
	if status > 0 {
		a.PutInt(semconv.HTTPResponseStatusCode, int64(status))
	}
	switch {
	case r.ErrorType != "":
		a.PutStr(semconv.ErrorType, utf8Safe(r.ErrorType))
	case status >= 400:
		a.PutStr(semconv.ErrorType, strconv.Itoa(status))
	}
}

// intentSessionEnd reports what is still open in s before it ends: its
// unanswered queries and its tool calls.
func (t *Tracker) intentSessionEnd(s *session) {
	in := t.in
	if in == nil {
		return
	}
	in.ending = s // its records may still be added: it is being flushed
	for pid, p := range in.dnsProcs {
		if p.sess == s {
			in.dnsTr.ExpirePID(pid)
			delete(in.dnsProcs, pid)
		}
	}
	t.resolveWaiting(s, s.lastExit, true)
	in.ending = nil
	t.releaseHeld(s, 0, true)
	t.closeTools(s, s.lastExit)
}

// intentFlush is Flush's housekeeping: unanswered queries are reported,
// state of processes that are gone is dropped.
func (t *Tracker) intentFlush(nowBoot uint64) {
	in := t.in
	if in == nil {
		return
	}
	in.dnsTr.Expire(bootTime(nowBoot))
	for _, s := range t.sessions {
		if s.intent != nil && len(s.intent.waiting) > 0 {
			t.resolveWaiting(s, nowBoot, false)
		}
		t.releaseHeld(s, nowBoot, false)
	}
	if in.dnsTr.Len() == 0 {
		clear(in.dnsProcs)
	}
	for k, c := range in.conns {
		if t.procs[k.proc] == nil {
			c.hc.Close(t.clock.Wall(nowBoot).AsTime())
			delete(in.conns, k)
		}
	}
	for k := range in.tcpDNS {
		if _, ok := in.dnsProcs[k.pid]; !ok {
			delete(in.tcpDNS, k)
		}
	}
}

func putStrings(a pcommon.Map, key string, vals []string) {
	if len(vals) == 0 {
		return
	}
	sl := a.PutEmptySlice(key)
	sl.EnsureCapacity(len(vals))
	for _, v := range vals {
		sl.AppendEmpty().SetStr(utf8Safe(v))
	}
}

func splitHostPort(h string) (string, int) {
	if ap, err := netip.ParseAddrPort(h); err == nil {
		return ap.Addr().String(), int(ap.Port())
	}
	i := len(h) - 1
	for i >= 0 && h[i] >= '0' && h[i] <= '9' {
		i--
	}
	if i >= 0 && i < len(h)-1 && h[i] == ':' && !slices.Contains([]byte(h[:i]), ':') {
		port := 0
		for _, c := range h[i+1:] {
			port = port*10 + int(c-'0')
			if port > 65535 {
				return h, 0
			}
		}
		return h[:i], port
	}
	return h, 0
}

func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}
