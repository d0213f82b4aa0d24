package evasion

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/agentwatch/agentwatch/internal/semconv"
	"github.com/agentwatch/agentwatch/internal/vmtest"
	"github.com/agentwatch/agentwatch/processor/agentscoreprocessor"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver"
)

// agentName is the agent matcher's executable name: a copy of bash
// (testenv.AgentExecutable) that runs each technique's script.
const agentName = "aw-evasion-agent"

// Attributes the receiver is gaining while this corpus is written; they
// are only printed, so literal names keep this package building whatever
// internal/semconv holds at the moment.
const (
	attrCanonicalPath = "agent.file.canonical_path"
	attrNewPath       = "agent.file.new_path"
	attrMountPoint    = "agent.file.mount_point"
	attrProcTarget    = "agent.file.proc_target_pid"
	attrFileless      = "agent.process.fileless"
	attrProgram       = "agent.process.program"
)

// timing differs by an order of magnitude between the host and the TCG
// guest.
type timing struct {
	grace   time.Duration // receiver session_end_grace
	script  time.Duration // bound on one technique's script
	session time.Duration // from the script's exit to its session's end record
	egress  time.Duration // bound on one sink connection
}

func timings() timing {
	if vmtest.InGuest() {
		return timing{grace: time.Second, script: 2 * time.Minute, session: 90 * time.Second, egress: 30 * time.Second}
	}
	return timing{grace: 300 * time.Millisecond, script: 30 * time.Second, session: 20 * time.Second, egress: 10 * time.Second}
}

// backend is the receiver's `hooks`: lsm in the guest (BPF LSM loads
// there), tracepoint on the host (LSM programs fail with EPERM here).
// AW_EVASION_HOOKS overrides it (auto, lsm, tracepoint).
func backend() string {
	if b := os.Getenv("AW_EVASION_HOOKS"); b != "" {
		return b
	}
	if vmtest.InGuest() {
		return agentsessionreceiver.HooksLSM
	}
	return agentsessionreceiver.HooksTracepoint
}

// pipeline is agent_session → agent_score → a LogsSink, in this process,
// as a collector's logs pipeline runs them.
type pipeline struct {
	logs    *consumertest.LogsSink
	backend string // what the receiver reports it runs on
	hooks   string // its hooks log line, for the test log
}

func startPipeline(t *testing.T, hooks string, tm timing) *pipeline {
	t.Helper()
	ctx := context.Background()
	p := &pipeline{logs: &consumertest.LogsSink{}}

	pf := agentscoreprocessor.NewFactory()
	pcfg := pf.CreateDefaultConfig() // the seed policy
	require.NoError(t, pcfg.(interface{ Validate() error }).Validate())
	pset := processortest.NewNopSettings(pf.Type())
	pset.ID = component.NewIDWithName(pf.Type(), "evasion")
	proc, err := pf.CreateLogs(ctx, pset, pcfg, p.logs)
	require.NoError(t, err)
	require.NoError(t, proc.Start(ctx, componenttest.NewNopHost()))

	rf := agentsessionreceiver.NewFactory()
	rcfg := rf.CreateDefaultConfig().(*agentsessionreceiver.Config)
	rcfg.Hooks = hooks
	rcfg.BuiltinAgents = false
	rcfg.Agents = []agentsessionreceiver.AgentConfig{{Name: agentName, Executables: []string{agentName}}}
	rcfg.SessionEndGrace = tm.grace
	require.NoError(t, rcfg.Validate())
	core, observed := observer.New(zap.InfoLevel)
	rset := receivertest.NewNopSettings(rf.Type())
	rset.ID = component.NewIDWithName(rf.Type(), "evasion")
	rset.Logger = zap.New(zapcore.NewTee(core, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Core()))
	rcv, err := rf.CreateLogs(ctx, rset, rcfg, proc)
	require.NoError(t, err)
	require.NoError(t, rcv.Start(ctx, componenttest.NewNopHost()), "start the receiver with hooks: %s", hooks)
	t.Cleanup(func() {
		require.NoError(t, rcv.Shutdown(context.Background()))
		require.NoError(t, proc.Shutdown(context.Background()))
	})
	for _, e := range observed.FilterMessage("agent_session hooks").All() {
		m := e.ContextMap()
		p.backend = fmt.Sprint(m["backend"])
		p.hooks = fmt.Sprintf("backend=%v reason=%v attached=%v failed=%v", m["backend"], m["reason"], m["attached"], m["failed"])
	}
	return p
}

// record is one LogRecord, reduced to what the corpus looks at.
type record struct {
	attrs pcommon.Map
	event string
	sid   string
	pid   int64
	score int64
	level string
	rules []string
	top   string // security_rule.name
}

func str(m pcommon.Map, k string) string {
	if v, ok := m.Get(k); ok {
		return v.AsString()
	}
	return ""
}

func num(m pcommon.Map, k string) int64 {
	if v, ok := m.Get(k); ok && v.Type() == pcommon.ValueTypeInt {
		return v.Int()
	}
	return 0
}

func (p *pipeline) records() []record {
	var out []record
	for _, l := range p.logs.AllLogs() {
		for i := 0; i < l.ResourceLogs().Len(); i++ {
			sls := l.ResourceLogs().At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				lrs := sls.At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					a := lrs.At(k).Attributes()
					r := record{attrs: a, event: str(a, semconv.EventName), sid: str(a, semconv.SessionID),
						pid: num(a, semconv.ProcessPID), score: num(a, semconv.RiskScore),
						level: str(a, semconv.RiskLevel), top: str(a, semconv.SecurityRuleName)}
					if v, ok := a.Get(semconv.RiskRules); ok && v.Type() == pcommon.ValueTypeSlice {
						for n := 0; n < v.Slice().Len(); n++ {
							r.rules = append(r.rules, v.Slice().At(n).AsString())
						}
					}
					out = append(out, r)
				}
			}
		}
	}
	return out
}

// session waits for the end record of the session rooted at pid and
// returns the session's records (what arrived so far if it never ends).
func (p *pipeline) session(pid int, timeout time.Duration) (sid string, recs []record, ended bool) {
	deadline := time.Now().Add(timeout)
	for {
		all := p.records()
		if sid == "" {
			for _, r := range all {
				if r.event == semconv.EventSessionStart && r.pid == int64(pid) && str(r.attrs, semconv.GenAIAgentName) == agentName {
					sid = r.sid
				}
			}
		}
		recs = recs[:0]
		for _, r := range all {
			if sid != "" && r.sid == sid {
				recs = append(recs, r)
				ended = ended || r.event == semconv.EventSessionEnd
			}
		}
		if ended || time.Now().After(deadline) {
			return sid, recs, ended
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// mentions says whether one of the record's paths is p or below it.
func (r record) mentions(p string) bool {
	for _, k := range []string{semconv.FilePath, attrCanonicalPath, attrNewPath, attrMountPoint} {
		if v := str(r.attrs, k); v == p || strings.HasPrefix(v, p+"/") {
			return true
		}
	}
	return false
}

var levels = []string{semconv.LevelNone, semconv.LevelLow, semconv.LevelMedium, semconv.LevelHigh, semconv.LevelCritical}

func levelIndex(l string) int { return slices.Index(levels, l) }

// describe is one record on one line: what a missed technique's session
// shows the lead engineer.
func (r record) describe() string {
	a := r.attrs
	var b strings.Builder
	fmt.Fprintf(&b, "%-20s pid=%-6d %-14s", r.event, r.pid, filepath.Base(str(a, semconv.ProcessExecutablePath)))
	for _, k := range []string{semconv.FilePath, attrCanonicalPath, attrNewPath, attrMountPoint, semconv.FileFlags, attrProcTarget, attrFileless, attrProgram} {
		if v := str(a, k); v != "" {
			name := k[strings.LastIndexByte(k, '.')+1:]
			if k == semconv.FilePath {
				name = "path"
			}
			fmt.Fprintf(&b, " %s=%s", name, v)
		}
	}
	if v := str(a, semconv.Hook); v != "" {
		fmt.Fprintf(&b, " hook=%s", v[strings.LastIndexByte(v, '/')+1:])
	}
	if v := str(a, semconv.NetworkPeerAddress); v != "" {
		fmt.Fprintf(&b, " peer=%s:%d", v, num(a, semconv.NetworkPeerPort))
	}
	if v, ok := a.Get(semconv.ProcessCommandArgs); ok && v.Type() == pcommon.ValueTypeSlice {
		var args []string
		for i := 0; i < v.Slice().Len(); i++ {
			args = append(args, v.Slice().At(i).AsString())
		}
		s := strings.ReplaceAll(strings.Join(args, " "), "\n", `\n`)
		if len(s) > 160 {
			s = s[:160] + fmt.Sprintf("…(%d args)", len(args))
		}
		fmt.Fprintf(&b, " args=[%s]", s)
	}
	if len(r.rules) > 0 || r.score > 0 {
		fmt.Fprintf(&b, " rules=%v level=%s score=%d", r.rules, r.level, r.score)
	}
	return b.String()
}

// egress is a technique's own TCP listener on 127.0.0.1, HTTP-ish: it
// reads a request (headers and a Content-Length or chunked body; 100
// Continue when asked), answers GET /x with body and anything else with
// 204, and keeps every byte it was sent. A connection that is not HTTP is
// read to EOF, then answered 204.
type egress struct {
	ln      net.Listener
	addr    string
	port    int
	body    string
	timeout time.Duration
	mu      sync.Mutex
	got     []byte
	conns   int
	active  sync.WaitGroup
}

func startEgress(t *testing.T, body string, timeout time.Duration) *egress {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	e := &egress{ln: ln, addr: ln.Addr().String(), port: ln.Addr().(*net.TCPAddr).Port, body: body, timeout: timeout}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.active.Add(1)
			go e.serve(c)
		}
	}()
	return e
}

var httpMethods = []string{"GET ", "POST ", "PUT ", "HEAD ", "PATCH ", "DELETE "}

func (e *egress) serve(c net.Conn) {
	defer e.active.Done()
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(e.timeout))
	var buf []byte
	tmp := make([]byte, 64<<10)
	continued, answered := false, false
	for {
		if req, ok := parseHTTP(buf); ok {
			if req.expectContinue && !continued && !req.complete {
				_, _ = c.Write([]byte("HTTP/1.1 100 Continue\r\n\r\n"))
				continued = true
			}
			if req.complete {
				if req.method == "GET" && req.path == "/x" {
					fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/x-shellscript\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(e.body), e.body)
				} else {
					_, _ = c.Write([]byte("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"))
				}
				answered = true
				break
			}
		}
		n, err := c.Read(tmp)
		buf = append(buf, tmp[:n]...)
		if err != nil {
			break
		}
	}
	if !answered {
		_, _ = c.Write([]byte("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"))
	}
	e.mu.Lock()
	e.got = append(e.got, buf...)
	e.conns++
	e.mu.Unlock()
}

type httpReq struct {
	method, path             string
	expectContinue, complete bool
}

// parseHTTP says whether buf starts an HTTP request and whether it is
// complete; ok is false for anything that does not start with a method.
func parseHTTP(buf []byte) (req httpReq, ok bool) {
	isHTTP := false
	for _, m := range httpMethods {
		if bytes.HasPrefix(buf, []byte(m)) {
			isHTTP = true
		}
	}
	if !isHTTP {
		return req, false
	}
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 {
		return req, true
	}
	lines := strings.Split(string(buf[:end]), "\r\n")
	if f := strings.Fields(lines[0]); len(f) >= 2 {
		req.method, req.path = f[0], f[1]
	}
	body := buf[end+4:]
	length, chunked := 0, false
	for _, l := range lines[1:] {
		k, v, _ := strings.Cut(l, ":")
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.ToLower(strings.TrimSpace(v))
		switch k {
		case "content-length":
			length, _ = strconv.Atoi(v)
		case "transfer-encoding":
			chunked = strings.Contains(v, "chunked")
		case "expect":
			req.expectContinue = v == "100-continue"
		}
	}
	switch {
	case chunked:
		req.complete = bytes.HasSuffix(body, []byte("0\r\n\r\n"))
	default:
		req.complete = len(body) >= length
	}
	return req, true
}

// received waits until cond holds of what the sink received (or the timeout
// passes: a technique still sending) and returns it.
func (e *egress) received(cond func([]byte) bool) []byte {
	deadline := time.Now().Add(e.timeout)
	for {
		e.mu.Lock()
		got := append([]byte(nil), e.got...)
		e.mu.Unlock()
		if cond(got) || time.Now().After(deadline) {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fixture is a fresh fake HOME: an SSH key, AWS credentials with a fake
// key, a GnuPG private key, a shell rc, authorized_keys, and a project
// with a .env and a .git directory. Each secret carries a marker unique to
// the technique, so a check finds this run's bytes and no other's.
type fixture struct {
	home, scratch, proj string
	keyPath, credsPath  string
	gpgPath             string
	key, creds, gpg     string
	keyMarker           string // a line of the SSH key
	awsSecret           string // the secret access key in credentials
	gpgMarker           string
	dlMarker            string // printed by the script the sink serves
	envSecret           string // AWS_SECRET_ACCESS_KEY of a process the technique starts
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// mkTemp is a short directory under $TMPDIR: paths well below the kernel
// side's path buffers, and none of the test's name in them.
func mkTemp(t *testing.T, prefix string) string {
	t.Helper()
	d, err := os.MkdirTemp("", prefix)
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{home: mkTemp(t, "aw-home-"), scratch: mkTemp(t, "aw-work-")}
	f.proj = filepath.Join(f.home, "src", "app")
	f.keyMarker = "AWEVKEY" + randHex(16)
	f.awsSecret = "AWEVAWS" + randHex(16) + "/K7MDENG"
	f.gpgMarker = "AWEVGPG" + randHex(16)
	f.dlMarker = "AWEVDL" + randHex(8)
	f.envSecret = "AWEVENV" + randHex(16)
	f.key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n" +
		f.keyMarker + "\n-----END OPENSSH PRIVATE KEY-----\n"
	f.creds = "[default]\naws_access_key_id = AKIA" + strings.ToUpper(randHex(8)) + "\naws_secret_access_key = " + f.awsSecret + "\n"
	grip := strings.ToUpper(randHex(20))
	f.gpg = "Key: (private-key (ecc (curve Ed25519)(flags eddsa)(q #40" + randHex(16) + "#)(d #" + f.gpgMarker + "#)))\n"
	f.keyPath = filepath.Join(f.home, ".ssh", "id_ed25519")
	f.credsPath = filepath.Join(f.home, ".aws", "credentials")
	f.gpgPath = filepath.Join(f.home, ".gnupg", "private-keys-v1.d", grip+".key")
	files := map[string]string{
		f.keyPath:          f.key,
		f.keyPath + ".pub": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFake dev@host\n",
		filepath.Join(f.home, ".ssh", "authorized_keys"): "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOwnerOwnerOwnerOwnerOwnerOwnerOwner dev@laptop\n",
		f.credsPath:                                     f.creds,
		f.gpgPath:                                       f.gpg,
		filepath.Join(f.home, ".bashrc"):                "# ~/.bashrc\nalias ll='ls -l'\n",
		filepath.Join(f.proj, ".env"):                   "DATABASE_URL=postgres://app:AWEVDB" + randHex(8) + "@db/app\n",
		filepath.Join(f.proj, "main.go"):                "package main\n\nfunc main() {}\n",
		filepath.Join(f.proj, ".git", "HEAD"):           "ref: refs/heads/main\n",
		filepath.Join(f.proj, ".git", "config"):         "[core]\n\trepositoryformatversion = 0\n",
		filepath.Join(f.proj, ".git", "hooks", ".keep"): "",
	}
	for p, content := range files {
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	}
	return f
}

// run is one technique's run: what its check looks at.
type run struct {
	fx       *fixture
	out, err string
	sink     *egress
}

func (r *run) outHas(s string) error {
	if !strings.Contains(r.out, s) {
		return fmt.Errorf("the script's stdout lacks %q: %q", s, tail(r.out, 300))
	}
	return nil
}

// sinkHas waits for s in what the listener received, after stripping
// CR/LF when flat (curl -d drops newlines; base64 wraps lines).
func (r *run) sinkHas(s string, flat bool) error {
	norm := func(b []byte) []byte {
		if flat {
			b = bytes.ReplaceAll(b, []byte("\r"), nil)
			b = bytes.ReplaceAll(b, []byte("\n"), nil)
		}
		return b
	}
	got := r.sink.received(func(b []byte) bool { return bytes.Contains(norm(b), []byte(s)) })
	if !bytes.Contains(norm(got), []byte(s)) {
		r.sink.mu.Lock()
		conns := r.sink.conns
		r.sink.mu.Unlock()
		return fmt.Errorf("the listener did not receive %q (got %d bytes over %d connections: %q)", s, len(got), conns, tail(string(got), 300))
	}
	return nil
}

func exists(p string) error {
	if _, err := os.Lstat(p); err != nil {
		return fmt.Errorf("want %s: %w", p, err)
	}
	return nil
}

func gone(p string) error {
	if _, err := os.Lstat(p); err == nil {
		return fmt.Errorf("%s still exists", p)
	}
	return nil
}

func fileHas(p, s string) error {
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if !strings.Contains(string(b), s) {
		return fmt.Errorf("%s lacks %q", p, s)
	}
	return nil
}

func all(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
