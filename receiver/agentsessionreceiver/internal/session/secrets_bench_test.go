package session

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentwatch/agentwatch/internal/llmapi"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
)

func secretsBenchTracker(b *testing.B) (*Tracker, string) {
	b.Helper()
	procRoot := b.TempDir()
	full := filepath.Join(procRoot, "100", "root", "home/u/.aws/credentials")
	os.MkdirAll(filepath.Dir(full), 0o755)
	os.WriteFile(full, []byte(strings.Repeat(fakeCredentials, 8)), 0o600)
	tr, _ := newTestTracker(b, func(c *Config) {
		c.ProcRoot = procRoot
		c.MaxPendingRecords = 1 << 30
		c.Intent = IntentConfig{TLS: true, Capture: llmapi.CaptureMetadata,
			Secrets: SecretsConfig{Enabled: true, FingerprintFiles: true, Files: []string{"**/.aws/credentials"}}}
	})
	tr.Handle(execEv(100, sec, sec+ms, kevent.FlagExecMatched, 1, "/opt/aw/aw-agent", "/w", "aw-agent"))
	return tr, full
}

// Baseline: an open record of a path that is not sensitive.
func BenchmarkOpenNotSensitive(b *testing.B) {
	tr, _ := secretsBenchTracker(b)
	ev := openEv(100, sec, 2*sec, 0, "/w/src/main.go", 0, 3)
	for i := 0; b.Loop(); i++ {
		tr.Handle(ev)
		if i%4096 == 0 {
			tr.Flush(wall(2 * sec))
		}
	}
}

// An open of a sensitive file whose content changed since the last one:
// read through /proc/<pid>/root (1 KiB) and fingerprinted.
func BenchmarkOpenSensitiveRead(b *testing.B) {
	tr, full := secretsBenchTracker(b)
	ev := openEv(100, sec, 2*sec, 0, "/home/u/.aws/credentials", 0, 3)
	base := time.Now()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		os.Chtimes(full, base, base.Add(time.Duration(i)*time.Second))
		b.StartTimer()
		tr.Handle(ev)
		if i%4096 == 0 {
			tr.Flush(wall(2 * sec))
		}
	}
	if tr.SecretStats().FilesRead < 2 {
		b.Fatal("not read")
	}
}

// A request of a 64 KiB conversation: walked and scanned.
func BenchmarkScanRequest(b *testing.B) {
	tr, _ := secretsBenchTracker(b)
	tr.Handle(openEv(100, sec, 2*sec, 0, "/home/u/.aws/credentials", 0, 3))
	var msgs []string
	for len(strings.Join(msgs, ",")) < 64<<10 {
		msgs = append(msgs, `{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_`+strconv.Itoa(len(msgs))+
			`","content":"func main() {\n\tfmt.Println(\"hello\")\n}\n// The tests pass; next run go vet.\ncommit 9fceb02d0ae598e95dc970b74767f19372d61af8\n"}]}`)
	}
	body := []byte(`{"model":"m","messages":[` + strings.Join(msgs, ",") + `]}`)
	p := tr.procs[key(100, sec)]
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		tr.scanRequest(p, body)
	}
}
