package session

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/agentwatch/agentwatch/internal/llmapi"
	"github.com/agentwatch/agentwatch/internal/semconv"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
)

// Fake credentials (valid nowhere). fileOnly is not shaped like any key:
// only the fingerprint of the file it is in finds it.
const (
	fakeKeyID     = "AKIAQX3EXAMPLE7ZK2PL"
	fakeSecretKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKY"
	fakeFileOnly  = "Zq8vN3tR6wY1bX4mK7pL0sD5"
	fakeAPIKey    = "sk-ant-api03-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBa-_Q"
)

var fakeCredentials = "[default]\naws_access_key_id = " + fakeKeyID + "\naws_secret_access_key = " + fakeSecretKey +
	"\n# session\n" + fakeFileOnly + "\n"

func base64Wrapped(s string) string {
	e := base64.StdEncoding.EncodeToString([]byte(s))
	var b strings.Builder
	for len(e) > 76 {
		b.WriteString(e[:76] + "\n")
		e = e[76:]
	}
	return b.String() + e + "\n"
}

func tlsCall(tr *Tracker, pid uint32, start uint64, at *uint64, conn uint64, dir uint8, data string) {
	for off := 0; off < len(data); off += 4096 {
		*at += ms
		end := min(off+4096, len(data))
		tr.Handle(&kevent.TLS{Header: hdr(kevent.KindTLS, 0, pid, start, *at), Conn: conn, Dir: dir,
			Total: uint32(len(data)), Offset: uint32(off), Data: []byte(data[off:end])})
	}
}

func anthropicPost(body string) string {
	return "POST /v1/messages HTTP/1.1\r\nHost: api.anthropic.com\r\nx-api-key: " + fakeAPIKey +
		"\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

func anthropicOK() string {
	body := `{"id":"msg_1","type":"message","model":"claude-opus-4","stop_reason":"end_turn","content":[{"type":"text","text":"ok"}],"usage":{"input_tokens":5,"output_tokens":1}}`
	return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

func jsonStr(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// The model asked for `cat ~/.aws/credentials | base64`; the agent sends
// the output back in a tool_result. The request record and its chat span
// name the secrets, their encoding, the file and the tool call; nothing
// exported (full capture: prompt and headers too) carries the secrets,
// their base64 or their hex; the re-sent history of the next request is
// not reported again.
func TestSecretsToModel(t *testing.T) {
	procRoot := t.TempDir()
	const credPath = "/home/u/.aws/credentials"
	full := filepath.Join(procRoot, "101", "root", credPath)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(fakeCredentials), 0o600); err != nil {
		t.Fatal(err)
	}
	tr, _ := newTestTracker(t, func(c *Config) {
		c.ProcRoot = procRoot
		c.Intent = IntentConfig{TLS: true, Capture: llmapi.CaptureFull,
			Secrets: SecretsConfig{Enabled: true, FingerprintFiles: true, Files: []string{"**/.aws/credentials"}}}
	})
	const s0 = 1000 * sec
	tr.Handle(execEv(100, s0, s0+ms, kevent.FlagExecMatched, 1, "/opt/aw/aw-agent", "/w", "aw-agent"))
	tr.Handle(forkEv(101, s0+2*ms, s0+2*ms, 100, s0))
	tr.Handle(execEv(101, s0+2*ms, s0+3*ms, 0, 100, "/usr/bin/cat", "/w", "cat", credPath))
	tr.Handle(openEv(101, s0+2*ms, s0+4*ms, 0, credPath, 0 /* O_RDONLY */, 3))
	tr.Handle(openEv(101, s0+2*ms, s0+4*ms, 0, "/home/u/.aws/config", 0x200000 /* O_PATH */, 3))
	if st := tr.SecretStats(); st.FilesRead != 1 {
		t.Fatalf("stats %+v", st)
	}

	out := base64Wrapped(fakeCredentials)
	hexed := hex.EncodeToString([]byte(fakeSecretKey))
	history := `{"role":"user","content":"encode my aws credentials"},
		{"role":"assistant","content":[{"type":"tool_use","id":"toolu_01X","name":"Bash","input":{"command":"cat ~/.aws/credentials | base64"}}]},
		{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_01X","content":` + jsonStr(out) + `},
			{"type":"text","text":` + jsonStr("again: "+fakeSecretKey+" "+out+" hex "+hexed+" "+fakeFileOnly) + `}]}`
	body := `{"model":"claude-opus-4","max_tokens":100,"messages":[` + history + `]}`
	at := s0 + 10*ms
	tlsCall(tr, 100, s0, &at, 0x10, kevent.TLSWrite, anthropicPost(body))
	tlsCall(tr, 100, s0, &at, 0x10, kevent.TLSRead, anthropicOK())
	// the next turn re-sends the history
	body2 := `{"model":"claude-opus-4","max_tokens":100,"messages":[` + history +
		`,{"role":"assistant","content":[{"type":"text","text":"ok"}]},{"role":"user","content":"thanks"}]}`
	tlsCall(tr, 100, s0, &at, 0x10, kevent.TLSWrite, anthropicPost(body2))
	tlsCall(tr, 100, s0, &at, 0x10, kevent.TLSRead, anthropicOK())

	ld, td := tr.Flush(wall(at + sec))
	var reqs []logRec
	for _, l := range flatLogs(t, ld) {
		if l.event == semconv.EventLLMRequest {
			reqs = append(reqs, l)
		}
	}
	if len(reqs) != 2 {
		t.Fatalf("%d requests", len(reqs))
	}
	check := func(what string, a map[string]any) {
		t.Helper()
		strs := func(k string) []string {
			var out []string
			for _, v := range a[k].([]any) {
				out = append(out, v.(string))
			}
			slices.Sort(out)
			return out
		}
		if n, _ := a[semconv.SecretCount].(int64); n < 3 {
			t.Errorf("%s: count %v", what, a[semconv.SecretCount])
		}
		if a[semconv.SecretKinds] == nil || a[semconv.SecretFiles] == nil {
			t.Fatalf("%s: %v", what, a)
		}
		kinds := strs(semconv.SecretKinds)
		for _, k := range []string{"aws_access_key_id", "aws_secret_access_key", "file_content"} {
			if !slices.Contains(kinds, k) {
				t.Errorf("%s: kinds %v lack %s", what, kinds, k)
			}
		}
		if slices.Contains(kinds, "generic_secret") {
			t.Errorf("%s: the aws secret counted twice: %v", what, kinds)
		}
		if enc := strs(semconv.SecretEncodings); !slices.Contains(enc, "base64") {
			t.Errorf("%s: encodings %v", what, enc)
		}
		if f := strs(semconv.SecretFiles); !slices.Equal(f, []string{credPath}) {
			t.Errorf("%s: files %v", what, f)
		}
		if a[semconv.SecretToolCallID] != "toolu_01X" || a[semconv.SecretToolName] != "Bash" {
			t.Errorf("%s: tool %v %v", what, a[semconv.SecretToolCallID], a[semconv.SecretToolName])
		}
	}
	check("request record", reqs[0].attrs)
	if _, ok := reqs[1].attrs[semconv.SecretCount]; ok {
		t.Errorf("re-sent history reported again: %v", reqs[1].attrs)
	}
	var chats int
	for _, sp := range flatSpans(t, td) {
		if strings.HasPrefix(sp.name, "chat ") {
			if chats == 0 {
				check("chat span", sp.attrs)
			}
			chats++
		}
	}
	if chats != 2 {
		t.Errorf("%d chat spans", chats)
	}
	if p, _ := reqs[0].attrs[semconv.LLMPrompt].(string); !strings.Contains(p, "again:") || !strings.Contains(p, "[REDACTED") {
		t.Errorf("prompt not captured redacted: %q", p)
	}
	assertNoSecrets(t, ld, td)
}

// assertNoSecrets serialises what would be exported and looks for the fake
// secrets, their base64 (whole, and the first wrapped line) and their hex.
func assertNoSecrets(t *testing.T, ld plog.Logs, td ptrace.Traces) {
	t.Helper()
	lb, err := (&plog.JSONMarshaler{}).MarshalLogs(ld)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	if err != nil {
		t.Fatal(err)
	}
	dump := string(lb) + string(tb)
	b64 := base64.StdEncoding.EncodeToString([]byte(fakeCredentials))
	for _, s := range []string{fakeKeyID, fakeSecretKey, fakeFileOnly, fakeAPIKey, b64[:76], b64[76:152],
		hex.EncodeToString([]byte(fakeSecretKey)), base64.StdEncoding.EncodeToString([]byte(fakeSecretKey))} {
		if strings.Contains(dump, s) {
			t.Errorf("exported: %q", s)
		}
	}
}
