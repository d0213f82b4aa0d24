package session

import (
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/agentwatch/agentwatch/internal/llmapi"
	"github.com/agentwatch/agentwatch/internal/semconv"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
)

func dnsMsg(t *testing.T, id uint16, name string, answer []byte) []byte {
	t.Helper()
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: id, Response: answer != nil})
	b.StartQuestions()
	q := dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}
	b.Question(q)
	if answer != nil {
		b.StartAnswers()
		b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 30}, dnsmessage.AResource{A: [4]byte(answer)})
	}
	m, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func dnsEv(pid uint32, start, at uint64, dir uint8, payload []byte) *kevent.DNS {
	return &kevent.DNS{Header: hdr(kevent.KindDNS, 0, pid, start, at), Dir: dir, Transport: 2, Total: uint32(len(payload)),
		Resolver: netip.MustParseAddrPort("10.9.9.9:53"), Payload: payload}
}

// Queries pair with answers, an unanswered one is reported at expiry, the
// session's names fill later connects, and without a name the connect
// says the address was never resolved; a lookup's connect to the system
// resolver is left to the query record.
func TestIntentDNS(t *testing.T) {
	tr, _ := newTestTracker(t, func(c *Config) {
		c.Intent = IntentConfig{DNS: true, DNSTimeout: time.Second, SystemResolvers: []netip.Addr{netip.MustParseAddr("10.0.0.53")}}
	})
	const s0 = 1000 * sec
	tr.Handle(execEv(100, s0, s0+ms, kevent.FlagExecMatched, 1, "/opt/aw/aw-agent", "/w", "aw-agent"))
	tr.Handle(dnsEv(100, s0, s0+10*ms, kevent.DNSSent, dnsMsg(t, 7, "api.example.com.", nil)))
	tr.Handle(dnsEv(100, s0, s0+12*ms, kevent.DNSReceived, dnsMsg(t, 7, "api.example.com.", []byte{203, 0, 113, 7})))
	tr.Handle(dnsEv(100, s0, s0+20*ms, kevent.DNSSent, dnsMsg(t, 8, "lost.example.com.", nil)))
	tr.Handle(dnsEv(100, s0, s0+30*ms, kevent.DNSReceived, []byte{1, 2, 3})) // garbage: counted, not fatal
	tr.Handle(connectEv(100, s0, s0+40*ms, "203.0.113.7", 443, 1, 0))
	tr.Handle(connectEv(100, s0, s0+50*ms, "198.51.100.1", 443, 1, 0))
	// the resolver library's connect to the system resolver: not a record;
	// to a resolver of its own choosing: one
	tr.Handle(connectEv(100, s0, s0+60*ms, "10.0.0.53", 53, 2, 0))
	tr.Handle(connectEv(100, s0, s0+61*ms, "10.9.9.9", 53, 2, 0))
	// source address selection: nothing is sent
	tr.Handle(connectEv(100, s0, s0+62*ms, "203.0.113.7", 0, 2, 0))
	ld, _ := tr.Flush(wall(s0 + 2*sec))
	logs := flatLogs(t, ld)
	var dns, conns []logRec
	for _, l := range logs {
		switch l.event {
		case semconv.EventDNSQuery:
			dns = append(dns, l)
		case semconv.EventNetConnect:
			conns = append(conns, l)
		}
	}
	if len(dns) != 2 || len(conns) != 3 {
		t.Fatalf("dns %d, connects %d: %v", len(dns), len(conns), events(logs))
	}
	a := dns[0].attrs
	if a[semconv.DNSQuestionName] != "api.example.com" || !slices.Equal(a[semconv.DNSAnswers].([]any), []any{"203.0.113.7"}) ||
		a[semconv.DNSResolver] != "10.9.9.9" || a[semconv.DNSResolverIsSystem] != false || a[semconv.DNSAnswered] != true {
		t.Errorf("answered query %v", a)
	}
	if dns[0].ts != tr.clock.Wall(s0+10*ms) {
		t.Errorf("a query is timed when it was sent")
	}
	if b := dns[1].attrs; b[semconv.DNSQuestionName] != "lost.example.com" || b[semconv.DNSAnswered] != false {
		t.Errorf("unanswered query %v", b)
	}
	if c := conns[0].attrs; c[semconv.ServerAddress] != "api.example.com" || c[semconv.PeerResolved] != true {
		t.Errorf("connect to a resolved address %v", c)
	}
	if c := conns[1].attrs; c[semconv.ServerAddress] != nil || c[semconv.PeerResolved] != false {
		t.Errorf("connect to an unresolved address %v", c)
	}
	if c := conns[2].attrs; c[semconv.NetworkPeerAddress] != "10.9.9.9" {
		t.Errorf("connect to a resolver of the process's choosing %v", c)
	}
	if tr.Stats().RouteProbes != 1 {
		t.Errorf("route probes %d, want 1", tr.Stats().RouteProbes)
	}
	if st := tr.IntentStats(); st.DNSMalformed != 1 || st.DNSUnanswered != 1 || st.ResolverConnects != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TLS plaintext split across chunks and calls (one cut at the capture
// cap) is reassembled into a chat span with its tool call, which ends at
// the request carrying its result and is the parent of the process
// started meanwhile.
func TestIntentTLS(t *testing.T) {
	stream, err := os.ReadFile("../../../../internal/llmapi/testdata/anthropic_stream.sse")
	if err != nil {
		t.Fatal(err)
	}
	tr, _ := newTestTracker(t, func(c *Config) {
		c.Intent = IntentConfig{TLS: true, Capture: llmapi.CaptureMetadata, TLSMaxCapture: 64}
	})
	const s0 = 1000 * sec
	tr.Handle(execEv(100, s0, s0+ms, kevent.FlagExecMatched, 1, "/opt/aw/aw-agent", "/w", "aw-agent"))
	body := `{"model":"claude-opus-4","max_tokens":10,"stream":true,"tools":[{"name":"Bash"}],"messages":[{"role":"user","content":"hi"}]}`
	req := "POST /v1/messages HTTP/1.1\r\nHost: api.anthropic.com\r\nx-api-key: sk-ant-api03-secretsecretsecret\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body
	at := s0 + 10*ms
	feed := func(dir uint8, data string) {
		// one call per 64-byte piece, each sent as chunks of 40 (as the
		// kernel splits at its chunk size)
		for len(data) > 0 {
			n := min(len(data), 64)
			call := data[:n]
			data = data[n:]
			for off := 0; off < len(call); off += 40 {
				end := min(off+40, len(call))
				at += ms
				tr.Handle(&kevent.TLS{Header: hdr(kevent.KindTLS, 0, 100, s0, at), Conn: 0xabc, Dir: dir,
					Total: uint32(len(call)), Offset: uint32(off), Data: []byte(call[off:end])})
			}
		}
	}
	feed(kevent.TLSWrite, req)
	resp := "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: " + strconv.Itoa(len(stream)) + "\r\n\r\n" + string(stream)
	feed(kevent.TLSRead, resp)
	// A tool runs: the agent starts a process; then the request with its
	// result.
	tr.Handle(forkEv(101, at+ms, at+ms, 100, s0))
	tr.Handle(execEv(101, at+ms, at+2*ms, 0, 100, "/usr/bin/ls", "/w", "ls"))
	tr.Handle(exitEv(101, at+ms, at+3*ms, 0))
	at += 3 * ms
	body2 := `{"model":"claude-opus-4","max_tokens":10,"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[]},` +
		`{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_01A09q90qw90lq917835lq9","content":"a b"}]}]}`
	feed(kevent.TLSWrite, "POST /v1/messages HTTP/1.1\r\nHost: api.anthropic.com\r\nContent-Length: "+strconv.Itoa(len(body2))+"\r\n\r\n"+body2)
	// A truncated call: 100 bytes moved, 64 captured; the parser is told.
	at += ms
	tr.Handle(&kevent.TLS{Header: hdr(kevent.KindTLS, 0, 100, s0, at), Conn: 0xabc, Dir: kevent.TLSWrite, Total: 100, Truncated: true,
		Data: []byte(strings.Repeat("x", 64))})

	ld, td := tr.Flush(wall(at + sec))
	spans := flatSpans(t, td)
	var chat, tool *spanRec
	for i := range spans {
		switch {
		case strings.HasPrefix(spans[i].name, "chat "):
			chat = &spans[i]
		case strings.HasPrefix(spans[i].name, "execute_tool "):
			tool = &spans[i]
		}
	}
	if chat == nil || tool == nil {
		t.Fatalf("spans %v", spanNames(spans))
	}
	if chat.name != "chat claude-opus-4" || chat.attrs[semconv.GenAIUsageOutputTokens] != int64(87) ||
		chat.attrs[semconv.ServerAddress] != "api.anthropic.com" {
		t.Errorf("chat span %v", chat.attrs)
	}
	if tool.name != "execute_tool Bash" || tool.parent != chat.id || tool.end <= tool.start {
		t.Errorf("tool span %+v", tool)
	}
	if ls := findSpan(t, spans, 101, "ls"); ls.parent != tool.id || ls.attrs[semconv.GenAIToolCallID] != "toolu_01A09q90qw90lq917835lq9" {
		t.Errorf("ls span %+v: want it under the tool call %v", ls, tool.id)
	}
	for _, l := range flatLogs(t, ld) {
		for k, v := range l.attrs {
			if s, ok := v.(string); ok && strings.Contains(s, "secretsecret") {
				t.Errorf("key exported in %s %s", l.event, k)
			}
		}
	}
	if st := tr.IntentStats(); st.TLSBytesLost != 36 || st.LLMCalls != 1 {
		t.Errorf("stats %+v", st)
	}
}
