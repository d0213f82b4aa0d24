package policy

import "testing"

// benchPaths is what reaches the scorer from a coding agent at work: the
// kernel already dropped node_modules, /usr/lib, /proc and the like, so most
// opens are project files and tool configuration, and a few are secrets.
var benchPaths = []string{
	"/home/alice/proj/src/index.ts",
	"/home/alice/proj/src/components/Button.tsx",
	"/home/alice/proj/package.json",
	"/home/alice/proj/tsconfig.json",
	"/home/alice/proj/.git/HEAD",
	"/home/alice/proj/.git/objects/ab/cdef0123456789",
	"/home/alice/.gitconfig",
	"/home/alice/.npmrc",
	"/home/alice/.claude/settings.json",
	"/etc/hosts",
	"/etc/resolv.conf",
	"/tmp/claude-1234/cwd",
	"/home/alice/proj/README.md",
	"/home/alice/proj/src/lib/util.ts",
	"/home/alice/proj/.env",
	"/home/alice/.aws/credentials",
}

// BenchmarkScorePathMatch is the path-match hot path: one file open against
// the full default policy (seed lists plus /etc/shadow).
func BenchmarkScorePathMatch(b *testing.B) {
	p := mustCompile(b)
	homes := Homes{"/home/alice", "/home/alice"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var rs RuleSet
		p.MatchPath(benchPaths[i%len(benchPaths)], homes, "/home/alice/proj", &rs)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkScoreExecMatch(b *testing.B) {
	p := mustCompile(b)
	execs := []Exec{
		{Exe: "/usr/bin/git", Args: []string{"git", "status", "--porcelain"}, Cwd: "/home/alice/proj"},
		{Exe: "/usr/bin/node", Args: []string{"node", "/home/alice/proj/node_modules/.bin/tsc", "--noEmit"}, Cwd: "/home/alice/proj"},
		{Exe: "/usr/bin/curl", Args: []string{"curl", "-fsSL", "https://example.com/install.sh"}, Cwd: "/home/alice/proj"},
		{Exe: "/usr/bin/base64", Args: []string{"base64", "/home/alice/.aws/credentials"}, Cwd: "/home/alice/proj"},
	}
	for i := range execs {
		execs[i].Homes = Homes{"/home/alice", "/home/alice"}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var rs RuleSet
		p.MatchExec(&execs[i%len(execs)], &rs)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
