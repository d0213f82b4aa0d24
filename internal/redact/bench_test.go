package redact

import (
	"strings"
	"testing"
)

// benchBody resembles an agent's LLM request: JSON with prose, code, ids.
var benchBody = func() string {
	var b strings.Builder
	b.WriteString(`{"model":"claude-sonnet-4-5-20250929","max_tokens":32000,"stream":true,"system":[{"type":"text","text":"You are Claude Code, Anthropic's official CLI for Claude."}],"messages":[`)
	for i := 0; i < 30; i++ {
		b.WriteString(`{"role":"user","content":[{"type":"text","text":"Please look at internal/httpstream/parser.go and fix the chunked decoding: the size line may be split across reads.\nfunc (p *Parser) Feed(b []byte) error { return nil }"}]},`)
		b.WriteString(`{"role":"assistant","content":[{"type":"tool_use","id":"toolu_01A09q90qw90lq917835lq9","name":"Read","input":{"file_path":"/home/dev/agentwatch/internal/httpstream/parser.go"}}]},`)
	}
	b.WriteString(`{"role":"user","content":"thanks"}]}`)
	return b.String()
}()

func BenchmarkTextClean(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchBody)))
	for b.Loop() {
		Text(benchBody)
	}
}

func BenchmarkTextSecrets(b *testing.B) {
	body := benchBody[:len(benchBody)/2] + `"api_key":"` + antKey + `", Bearer ` + jwtTok + benchBody[len(benchBody)/2:]
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		Text(body)
	}
}

func BenchmarkArgsClean(b *testing.B) {
	argv := []string{"/usr/bin/node", "/home/dev/.npm/bin/claude", "--model", "claude-sonnet-4-5", "--max-tokens", "1000", "-p", "fix the failing test in ./internal/redact"}
	b.ReportAllocs()
	for b.Loop() {
		Args(argv)
	}
}

func BenchmarkArgsShell(b *testing.B) {
	argv := []string{"/bin/bash", "-c", "-l", "cd /home/dev/agentwatch && curl -sS -H 'Authorization: Bearer abcdefgh12345678' https://api.example.com/v1/x | jq ."}
	b.ReportAllocs()
	for b.Loop() {
		Args(argv)
	}
}

func BenchmarkHeader(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Header("Content-Type", "application/json")
		Header("Authorization", "Bearer "+antKey)
	}
}
