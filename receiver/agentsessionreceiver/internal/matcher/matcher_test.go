package matcher

import (
	"maps"
	"strings"
	"testing"
)

func TestBuiltinMatch(t *testing.T) {
	set, err := New(nil, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	node := func(args ...string) Proc {
		return Proc{Exe: "/usr/bin/node", Filename: "/usr/bin/node", Args: append([]string{"node"}, args...)}
	}
	tests := []struct {
		name string
		p    Proc
		want string // "" = no match
	}{
		{"claude native via symlink", Proc{Exe: "/home/u/.local/share/claude/versions/2.0.14", Filename: "/home/u/.local/bin/claude", Args: []string{"claude", "-p", "hi"}}, "claude-code"},
		{"claude npm shebang", Proc{Exe: "/usr/bin/env", Filename: "/usr/bin/claude", Args: []string{"/usr/bin/env", "node", "/usr/bin/claude"}}, "claude-code"},
		{"claude cli.js under node", node("/usr/lib/node_modules/@anthropic-ai/claude-code/cli.js", "--resume"), "claude-code"},
		{"claude cli.js under bun", Proc{Exe: "/opt/bun/bin/bun", Filename: "/opt/bun/bin/bun", Args: []string{"bun", "/x/node_modules/@anthropic-ai/claude-code/cli.js"}}, "claude-code"},
		{"grep for claude's cli.js is not claude", Proc{Exe: "/usr/bin/grep", Filename: "/usr/bin/grep", Args: []string{"grep", "-r", "x", "/usr/lib/node_modules/@anthropic-ai/claude-code/cli.js"}}, ""},
		{"node running something else", node("/srv/app/server.js"), ""},
		{"cursor-agent", Proc{Exe: "/home/u/.local/share/cursor-agent/versions/1/cursor-agent", Filename: "/home/u/.local/bin/cursor-agent"}, "cursor-agent"},
		{"codex native", Proc{Exe: "/usr/lib/node_modules/@openai/codex/vendor/x86_64-unknown-linux-musl/codex/codex", Filename: "/usr/lib/node_modules/@openai/codex/vendor/x86_64-unknown-linux-musl/codex/codex"}, "codex"},
		{"codex node launcher", node("/usr/lib/node_modules/@openai/codex/bin/codex.js"), "codex"},
		{"gemini bin", Proc{Exe: "/usr/bin/env", Filename: "/usr/local/bin/gemini"}, "gemini-cli"},
		{"gemini bundle", node("/usr/lib/node_modules/@google/gemini-cli/bundle/gemini.js"), "gemini-cli"},
		{"gemini-cli-core is a library", node("/x/node_modules/@google/gemini-cli-core/dist/index.js"), ""},
		{"aider script", Proc{Exe: "/usr/bin/python3.12", Filename: "/home/u/.local/bin/aider", Args: []string{"/usr/bin/python3", "/home/u/.local/bin/aider"}}, "aider"},
		{"python -m aider", Proc{Exe: "/usr/bin/python3.12", Filename: "/usr/bin/python3", Args: []string{"python3", "-m", "aider", "--model", "x"}}, "aider"},
		{"python -m aider.main", Proc{Exe: "/usr/bin/python3.11", Filename: "/usr/bin/python3.11", Args: []string{"python3.11", "-u", "-m", "aider.main"}}, "aider"},
		{"python -m aiderx is not aider", Proc{Exe: "/usr/bin/python3.12", Filename: "/usr/bin/python3", Args: []string{"python3", "-m", "aiderx"}}, ""},
		{"copilot", node("/usr/lib/node_modules/@github/copilot/index.js"), "copilot"},
		{"copilot language server is not the agent", node("/home/u/.vscode-server/extensions/github.copilot/node_modules/@github/copilot-language-server/dist/language-server.js", "--stdio"), ""},
		{"opencode", Proc{Exe: "/usr/local/bin/opencode", Filename: "/usr/local/bin/opencode"}, "opencode"},
		{"goose", Proc{Exe: "/usr/local/bin/goose", Filename: "goose"}, "goose"},
		{"bash", Proc{Exe: "/usr/bin/bash", Filename: "/bin/sh", Args: []string{"sh", "-c", "claude"}}, ""},
		{"empty", Proc{}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := set.Match(tc.p)
			if ok != (tc.want != "") || got != tc.want {
				t.Fatalf("Match = %q, %v; want %q", got, ok, tc.want)
			}
		})
	}
}

func TestUserMatch(t *testing.T) {
	specs := []Spec{
		{Name: "and", Executables: []string{"python3"}, CommandLine: `my_agent\.py`, Cgroup: "/user.slice/agents"},
		{Name: "or", Executables: []string{"alpha", "beta-*"}},
		{Name: "fullpath", Executables: []string{"/opt/*/bin/tool"}},
		{Name: "cg", Cgroup: "/system.slice/agent.service"},
		{Name: "claude-code", Executables: []string{"my-claude"}}, // replaces the built-in
	}
	set, err := New(specs, true, []string{"goose"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		p    Proc
		want string
	}{
		{"and: all three", Proc{Exe: "/usr/bin/python3", Args: []string{"python3", "my_agent.py"}, CgroupPath: "/user.slice/agents/a1"}, "and"},
		{"and: wrong cgroup", Proc{Exe: "/usr/bin/python3", Args: []string{"python3", "my_agent.py"}, CgroupPath: "/user.slice/other"}, ""},
		{"and: wrong argv", Proc{Exe: "/usr/bin/python3", Args: []string{"python3", "x.py"}, CgroupPath: "/user.slice/agents"}, ""},
		{"and: wrong exe", Proc{Exe: "/usr/bin/python2", Args: []string{"python2", "my_agent.py"}, CgroupPath: "/user.slice/agents"}, ""},
		{"or: first", Proc{Filename: "/x/alpha"}, "or"},
		{"or: glob", Proc{Filename: "/x/beta-7"}, "or"},
		{"or: exe only", Proc{Exe: "/x/beta-9", Filename: "/x/link"}, "or"},
		{"or: neither", Proc{Filename: "/x/gamma"}, ""},
		{"fullpath", Proc{Exe: "/opt/acme/bin/tool"}, "fullpath"},
		{"fullpath: star does not cross /", Proc{Exe: "/opt/a/b/bin/tool"}, ""},
		{"fullpath: basename alone is not enough", Proc{Exe: "/usr/bin/tool"}, ""},
		{"cgroup exact", Proc{CgroupPath: "/system.slice/agent.service"}, "cg"},
		{"cgroup below", Proc{CgroupPath: "/system.slice/agent.service/worker"}, "cg"},
		{"cgroup sibling with same prefix bytes", Proc{CgroupPath: "/system.slice/agent.service2"}, ""},
		{"override of a built-in", Proc{Filename: "/usr/bin/my-claude"}, "claude-code"},
		{"overridden built-in no longer matches", Proc{Filename: "/usr/bin/claude"}, ""},
		{"disabled built-in", Proc{Filename: "/usr/bin/goose"}, ""},
		{"other built-ins stay", Proc{Filename: "/usr/bin/codex"}, "codex"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := set.Match(tc.p)
			if ok != (tc.want != "") || got != tc.want {
				t.Fatalf("Match = %q, %v; want %q", got, ok, tc.want)
			}
		})
	}
	if !set.NeedsCgroup() {
		t.Error("NeedsCgroup = false with cgroup matchers")
	}
}

func TestBuiltinsOff(t *testing.T) {
	set, err := New([]Spec{{Name: "x", Executables: []string{"x"}}}, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := set.Match(Proc{Filename: "/usr/bin/claude"}); ok {
		t.Fatal("built-in matched with builtin_agents off")
	}
	if got := set.Names(); len(got) != 1 || got[0] != "x" {
		t.Fatalf("Names = %v", got)
	}
	if set.NeedsCgroup() {
		t.Error("NeedsCgroup = true without cgroup matchers")
	}
}

func TestValidationErrors(t *testing.T) {
	tests := []struct {
		name    string
		specs   []Spec
		disable []string
		want    []string // substrings of the error
	}{
		{"no name", []Spec{{Executables: []string{"a"}}}, nil, []string{"agents[0].name: required"}},
		{"no criteria", []Spec{{Name: "a"}}, nil, []string{"agents[0]: needs at least one of"}},
		{"dup", []Spec{{Name: "a", Executables: []string{"a"}}, {Name: "a", Executables: []string{"b"}}}, nil, []string{`agents[1].name: "a" is used twice`}},
		{"bad glob", []Spec{{Name: "a", Executables: []string{"ok", "[x"}}}, nil, []string{"agents[0].executables[1]"}},
		{"relative path glob", []Spec{{Name: "a", Executables: []string{"bin/a"}}}, nil, []string{"agents[0].executables[0]", "not absolute"}},
		{"dir", []Spec{{Name: "a", Executables: []string{"/opt/"}}}, nil, []string{"agents[0].executables[0]"}},
		{"empty pattern", []Spec{{Name: "a", Executables: []string{""}}}, nil, []string{"agents[0].executables[0]: empty"}},
		{"bad regex", []Spec{{Name: "a", CommandLine: "(("}}, nil, []string{"agents[0].command_line"}},
		{"relative cgroup", []Spec{{Name: "a", Cgroup: "system.slice"}}, nil, []string{"agents[0].cgroup"}},
		{"root cgroup", []Spec{{Name: "a", Cgroup: "/"}}, nil, []string{"agents[0].cgroup", "every process"}},
		{"unclean cgroup", []Spec{{Name: "a", Cgroup: "/a//b/"}}, nil, []string{"agents[0].cgroup", `"/a/b"`}},
		{"control char name", []Spec{{Name: "a\nb", Executables: []string{"a"}}}, nil, []string{"agents[0].name"}},
		{"unknown disable", nil, []string{"claude-code", "clippy"}, []string{`disable_agents[1]: "clippy"`}},
		{"two errors", []Spec{{Name: "", Cgroup: "/"}}, nil, []string{"agents[0].name", "agents[0].cgroup"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.specs, true, tc.disable)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestKernelKeys(t *testing.T) {
	S, C := Start, Candidate
	tests := []struct {
		name    string
		specs   []Spec
		names   map[string]Action
		cgroups map[string]Action
		all     bool
	}{
		{"short literal alone proves", []Spec{{Name: "a", Executables: []string{"agent"}}}, map[string]Action{"agent": S}, nil, false},
		{"14 bytes still proves", []Spec{{Name: "a", Executables: []string{"abcdefghijklmn"}}}, map[string]Action{"abcdefghijklmn": S}, nil, false},
		{"15 bytes is also a truncated longer name", []Spec{{Name: "a", Executables: []string{"abcdefghijklmno"}}}, map[string]Action{"abcdefghijklmno": C}, nil, false},
		{"long names keyed by their comm", []Spec{{Name: "a", Executables: []string{"very-long-agent-name"}}}, map[string]Action{"very-long-agent": C}, nil, false},
		{"with command line", []Spec{{Name: "a", Executables: []string{"py"}, CommandLine: "x"}}, map[string]Action{"py": C}, nil, false},
		{"full path with literal base", []Spec{{Name: "a", Executables: []string{"/opt/*/agent"}}}, map[string]Action{"agent": C}, nil, false},
		{"wildcard base", []Spec{{Name: "a", Executables: []string{"agent-*"}}}, map[string]Action{}, nil, true},
		{"wildcard base in a path", []Spec{{Name: "a", Executables: []string{"/opt/bin/ag?nt"}}}, map[string]Action{}, nil, true},
		{"cgroup alone proves", []Spec{{Name: "a", Cgroup: "/x.slice"}}, map[string]Action{}, map[string]Action{"/x.slice": S}, false},
		{"cgroup and command line", []Spec{{Name: "a", Cgroup: "/x.slice", CommandLine: "y"}}, map[string]Action{}, map[string]Action{"/x.slice": C}, false},
		{"cgroup and executables: names suffice", []Spec{{Name: "a", Cgroup: "/x.slice", Executables: []string{"ag"}}}, map[string]Action{"ag": C}, nil, false},
		{"command line alone watches interpreters", []Spec{{Name: "a", CommandLine: "agent\\.py"}}, interp(C), nil, false},
		{"start wins over candidate", []Spec{{Name: "a", Executables: []string{"ag"}, CommandLine: "x"}, {Name: "b", Executables: []string{"ag"}}}, map[string]Action{"ag": S}, nil, false},
		{"start wins in either order", []Spec{{Name: "b", Executables: []string{"ag"}}, {Name: "a", Executables: []string{"ag"}, CommandLine: "x"}}, map[string]Action{"ag": S}, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set, err := New(tc.specs, false, nil)
			if err != nil {
				t.Fatal(err)
			}
			k := set.KernelKeys()
			if tc.cgroups == nil {
				tc.cgroups = map[string]Action{}
			}
			if !maps.Equal(k.Names, tc.names) {
				t.Errorf("Names = %v, want %v", k.Names, tc.names)
			}
			if !maps.Equal(k.Cgroups, tc.cgroups) {
				t.Errorf("Cgroups = %v, want %v", k.Cgroups, tc.cgroups)
			}
			if k.MatchAllExecs != tc.all {
				t.Errorf("MatchAllExecs = %v, want %v", k.MatchAllExecs, tc.all)
			}
		})
	}
}

func interp(a Action) map[string]Action {
	m := map[string]Action{}
	for _, n := range Interpreters {
		m[n] = a
	}
	return m
}

// The built-ins must key every way they can start in the kernel, and
// never make every exec a candidate.
func TestBuiltinKernelKeys(t *testing.T) {
	set, err := New(nil, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	k := set.KernelKeys()
	if k.MatchAllExecs {
		t.Fatal("built-ins set MatchAllExecs")
	}
	want := map[string]Action{
		"claude": Start, "cursor-agent": Start, "codex": Start, "gemini": Start,
		"aider": Start, "copilot": Start, "opencode": Start, "goose": Start,
		"node": Candidate, "nodejs": Candidate, "bun": Candidate, "deno": Candidate,
		"python3": Candidate, "python3.12": Candidate,
	}
	for n, a := range want {
		if k.Names[n] != a {
			t.Errorf("Names[%q] = %v, want %v", n, k.Names[n], a)
		}
	}
	// The returned maps are copies.
	k.Names["claude"] = Candidate
	if set.KernelKeys().Names["claude"] != Start {
		t.Error("KernelKeys returned the set's own map")
	}
}

func TestBuiltinNames(t *testing.T) {
	want := []string{"claude-code", "cursor-agent", "codex", "gemini-cli", "aider", "copilot", "opencode", "goose"}
	got := BuiltinNames()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("BuiltinNames = %v, want %v", got, want)
	}
}

func BenchmarkMatch(b *testing.B) {
	set, err := New(nil, true, nil)
	if err != nil {
		b.Fatal(err)
	}
	p := Proc{Exe: "/usr/bin/node", Filename: "/usr/bin/node", Args: []string{"node", "/srv/app/server.js", "--port", "8080"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := set.Match(p); ok {
			b.Fatal("matched")
		}
	}
}

// The real layouts of the built-in agents' packages (pinned versions, as
// npm and the native installer lay them out).
func TestBuiltinRealLayouts(t *testing.T) {
	s, err := New(nil, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	nm := "/home/u/proj/node_modules"
	cases := []struct {
		name string
		p    Proc
		want string
	}{
		{"npm .bin symlink", Proc{Exe: nm + "/@anthropic-ai/claude-code/bin/claude.exe", Filename: nm + "/.bin/claude"}, "claude-code"},
		{"resolved file", Proc{Exe: nm + "/@anthropic-ai/claude-code/bin/claude.exe", Filename: nm + "/@anthropic-ai/claude-code/bin/claude.exe"}, "claude-code"},
		{"native package", Proc{Exe: nm + "/@anthropic-ai/claude-code-linux-x64/claude", Filename: nm + "/@anthropic-ai/claude-code-linux-x64/claude"}, "claude-code"},
		{"native installer by version", Proc{Exe: "/home/u/.local/share/claude/versions/2.1.197", Filename: "/home/u/.local/share/claude/versions/2.1.197"}, "claude-code"},
		{"native installer via symlink", Proc{Exe: "/home/u/.local/share/claude/versions/2.1.197", Filename: "/home/u/.local/bin/claude"}, "claude-code"},
		{"codex native", Proc{Exe: nm + "/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex"}, "codex"},
		{"codex via env", Proc{Exe: "/usr/bin/env", Filename: nm + "/.bin/codex"}, "codex"},
		{"node running codex.js", Proc{Exe: "/usr/bin/node", Filename: "/usr/bin/node", Args: []string{"node", nm + "/@openai/codex/bin/codex.js"}}, "codex"},
		{"node running .bin/codex", Proc{Exe: "/usr/bin/node", Filename: "/usr/bin/node", Args: []string{"node", nm + "/.bin/codex", "exec"}}, "codex"},
		{"gemini via .bin", Proc{Exe: "/usr/bin/node", Filename: "/usr/bin/node", Args: []string{"node", nm + "/.bin/gemini"}}, "gemini-cli"},
		{"gemini bundle", Proc{Exe: "/usr/bin/node", Filename: "/usr/bin/node", Args: []string{"node", nm + "/@google/gemini-cli/bundle/gemini.js"}}, "gemini-cli"},
		{"opencode native", Proc{Exe: nm + "/opencode-linux-x64/bin/opencode", Filename: nm + "/.bin/opencode"}, "opencode"},
		{"another versions dir", Proc{Exe: "/opt/tool/versions/1.0", Filename: "/opt/tool/versions/1.0"}, ""},
		{"node running something else", Proc{Exe: "/usr/bin/node", Filename: "/usr/bin/node", Args: []string{"node", "server.js", "codex"}}, ""},
	}
	for _, c := range cases {
		got, _ := s.Match(c.p)
		if got != c.want {
			t.Errorf("%s: matched %q, want %q", c.name, got, c.want)
		}
	}
	k := s.KernelKeys()
	if k.MatchAllExecs {
		t.Error("built-ins must not make every exec a candidate")
	}
	if k.Dirs[DirKey{"claude", "versions"}] != Start {
		t.Errorf("dir keys = %v, want claude/versions -> start", k.Dirs)
	}
	if k.Names["claude.exe"] != Start {
		t.Errorf("claude.exe key = %v", k.Names["claude.exe"])
	}
}

func TestDirPatterns(t *testing.T) {
	for _, bad := range []string{"**/versions/*", "**/a/*/b", "**/a/b/c/d", "**//b/c", "**/a/b/["} {
		if _, err := New([]Spec{{Name: "x", Executables: []string{bad}}}, false, nil); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
	s, err := New([]Spec{{Name: "x", Executables: []string{"**/tool/bin/agent-*"}}}, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if k := s.KernelKeys(); k.Dirs[DirKey{"tool", "bin"}] != Candidate || k.MatchAllExecs {
		t.Errorf("keys = %+v: a base glob other than * is proved in userspace", k)
	}
	if n, _ := s.Match(Proc{Exe: "/opt/tool/bin/agent-1"}); n != "x" {
		t.Error("no match")
	}
	if n, _ := s.Match(Proc{Exe: "/opt/tool/bin/other"}); n != "" {
		t.Error("matched another base")
	}
}
