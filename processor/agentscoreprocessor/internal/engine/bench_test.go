package engine

import (
	"fmt"
	"testing"
)

var benchOpenPaths = []string{
	"/home/alice/proj/src/index.ts", "/home/alice/proj/src/components/Button.tsx", "/home/alice/proj/package.json",
	"/home/alice/proj/tsconfig.json", "/home/alice/proj/.git/HEAD", "/home/alice/.gitconfig", "/home/alice/.npmrc",
	"/etc/hosts", "/home/alice/proj/README.md", "/home/alice/proj/src/lib/util.ts", "/home/alice/proj/.env",
	"/home/alice/.aws/credentials",
}

func benchEngine(b *testing.B) *Engine {
	e, _ := newEngine(b)
	for n := 0; n < 8; n++ {
		e.Score(execEv(sess(byte(n)), 1, at(0), 1000, "/home/alice/proj", "node", "cli.js"))
	}
	return e
}

// BenchmarkScoreFileOpen scores file-open events through the engine: path
// matching plus the session lookup, uid → home and rollup updates.
func BenchmarkScoreFileOpen(b *testing.B) {
	e := benchEngine(b)
	evs := make([]*Event, 0, 64)
	for i := 0; i < 64; i++ {
		ev := openEv(sess(byte(i%8)), int64(100+i%16), at(float64(i)), "/usr/bin/node", benchOpenPaths[i%len(benchOpenPaths)], "O_RDONLY|O_CLOEXEC")
		ev.UID, ev.HasUID, ev.Cwd = 1000, true, "/home/alice/proj"
		evs = append(evs, ev)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.Score(evs[i%len(evs)])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkScoreMix scores a realistic mix: 70% opens, 8% execs, 8%
// connects, 8% DNS queries, 6% other events.
func BenchmarkScoreMix(b *testing.B) {
	e := benchEngine(b)
	var evs []*Event
	for i := 0; i < 100; i++ {
		s := sess(byte(i % 8))
		pid := int64(100 + i%16)
		var ev *Event
		switch {
		case i < 70:
			ev = openEv(s, pid, at(float64(i)), "/usr/bin/node", benchOpenPaths[i%len(benchOpenPaths)], "O_RDONLY")
			ev.UID, ev.HasUID, ev.Cwd = 1000, true, "/home/alice/proj"
		case i < 78:
			args := [][]string{{"git", "status"}, {"npm", "test"}, {"curl", "-fsSL", "https://example.com"}, {"ls", "-la"}}[i%4]
			ev = execEv(s, pid, at(float64(i)), 1000, "/home/alice/proj", args...)
		case i < 86:
			ev = connectEv(s, pid, at(float64(i)), fmt.Sprintf("140.82.112.%d", i%4), 443)
			ev.ServerAddr = "api.github.com"
		case i < 94:
			ev = dnsEv(s, pid, at(float64(i)), "registry.npmjs.org", "127.0.0.53", "104.16.1.35")
		default:
			ev = &Event{Kind: KindLLMRequest, Session: s, Span: spanOf(pid), Time: at(float64(i)), PeerResolved: -1}
		}
		evs = append(evs, ev)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.Score(evs[i%len(evs)])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
