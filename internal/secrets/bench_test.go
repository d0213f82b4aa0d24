package secrets

import (
	"strings"
	"testing"

	"github.com/agentwatch/agentwatch/internal/redact"
)

// A 64 KiB conversation: code, prose, a few tool outputs, one base64 blob
// with a credential in it.
var benchText = func() string {
	var b strings.Builder
	for b.Len() < 64<<10 {
		b.WriteString("func (t *Tracker) httpRequest(c *tlsConn, m *httpstream.Message) {\n\tin := t.in\n\tin.st.HTTPMessages++\n}\n")
		b.WriteString("The tests pass; next I will run `go vet ./...` and look at /usr/lib/x86_64-linux-gnu/libssl.so.3.\n")
		b.WriteString("commit 9fceb02d0ae598e95dc970b74767f19372d61af8 Author: dev <dev@example.com>\n")
	}
	b.WriteString(b64wrapped(awsCredentials))
	return b.String()
}()

func BenchmarkScan(b *testing.B) {
	fp := NewFingerprints(0)
	fp.AddFile("/home/u/.aws/credentials", []byte(awsCredentials))
	b.SetBytes(int64(len(benchText)))
	for b.Loop() {
		n := 0
		sc := Scanner{FP: fp}
		sc.Scan(benchText, func(Finding) { n++ })
		if n == 0 {
			b.Fatal("nothing found")
		}
	}
}

// Baseline: the redaction every captured text already goes through.
func BenchmarkBaselineRedactText(b *testing.B) {
	b.SetBytes(int64(len(benchText)))
	for b.Loop() {
		_ = redact.Text(benchText)
	}
}
