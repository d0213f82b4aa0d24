package agentscoreprocessor

import (
	"context"
	"fmt"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/agentwatch/agentwatch/internal/semconv"
)

var benchPaths = []string{
	"/root/proj/src/index.ts", "/root/proj/src/components/Button.tsx", "/root/proj/package.json",
	"/root/proj/tsconfig.json", "/root/proj/.git/HEAD", "/root/.gitconfig", "/root/.npmrc",
	"/etc/hosts", "/root/proj/README.md", "/root/proj/src/lib/util.ts", "/root/proj/.env", "/root/.aws/credentials",
}

// benchBatch is 1000 events of 8 sessions in the mix a coding agent
// produces once the kernel has dropped the noise: 70% opens, 8% execs, 8%
// connects, 8% DNS queries, 6% other.
func benchBatch() plog.Logs {
	var recs [8][]rec
	for i := 0; i < 1000; i++ {
		pid := int64(100 + i%16)
		at := float64(i) / 1000
		var r rec
		switch j := i % 100; {
		case j < 70:
			r = openRec(at, pid, "/usr/bin/node", benchPaths[i%len(benchPaths)])
		case j < 78:
			args := [][]string{{"git", "status"}, {"npm", "test"}, {"curl", "-fsSL", "https://example.com"}, {"ls", "-la"}}[i%4]
			r = execRec(at, pid, args...)
		case j < 86:
			r = rec{semconv.EventNetConnect, at, pid, map[string]any{
				semconv.NetworkPeerAddress: fmt.Sprintf("140.82.112.%d", i%4), semconv.NetworkPeerPort: 443,
				semconv.NetworkTransport: "tcp", semconv.NetworkType: "ipv4", semconv.ServerAddress: "api.github.com",
			}}
		case j < 94:
			r = rec{semconv.EventDNSQuery, at, pid, map[string]any{
				semconv.DNSQuestionName: "registry.npmjs.org", semconv.DNSQuestionType: "A",
				semconv.DNSAnswers: []string{"104.16.1.35"}, semconv.DNSResolver: "127.0.0.53",
			}}
		default:
			r = rec{semconv.EventLLMRequest, at, pid, map[string]any{semconv.GenAIRequestModel: "claude-sonnet"}}
		}
		recs[i%8] = append(recs[i%8], r)
	}
	ld := plog.NewLogs()
	for n := range recs {
		logsOf(pcommon.TraceID{byte(n + 1)}, recs[n]...).ResourceLogs().MoveAndAppendTo(ld.ResourceLogs())
	}
	return ld
}

// BenchmarkScoreLogsPipeline is the whole processor on pdata: reading the
// attributes, scoring, writing agent.risk.* and severity, self-telemetry.
// Each iteration scores a fresh copy of a 1000-event batch.
func BenchmarkScoreLogsPipeline(b *testing.B) {
	sc, err := newScorer(testSettings(b), testConfig())
	if err != nil {
		b.Fatal(err)
	}
	tmpl := benchBatch()
	const events = 1000
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ld := plog.NewLogs()
		tmpl.CopyTo(ld)
		b.StartTimer()
		if _, err := sc.processLogs(ctx, ld); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*events)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*events), "ns/event")
}
