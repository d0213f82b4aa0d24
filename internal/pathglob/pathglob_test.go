package pathglob

import (
	"os"
	"os/user"
	"path"
	"strconv"
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	const alice, bob = "/home/alice", "/home/bob"
	tests := []struct {
		pattern string
		path    string
		home    string
		want    bool
	}{
		// "~" is the home the caller names.
		{"~/.aws/*", "/home/alice/.aws/credentials", alice, true},
		{"~/.aws/*", "/home/alice/.aws/credentials", bob, false},
		{"~/.aws/*", "/home/bob/.aws/credentials", bob, true},
		{"~/.aws/*", "/home/alice/.aws/credentials", "", false},
		{"~/.aws/*", "/home/alicex/.aws/credentials", alice, false},
		{"~/.aws/*", "/home/alice/.aws", alice, false},
		{"~/.aws/*", "/home/alice/.aws/sso/cache/x.json", alice, false},
		{"~/.aws/*", "/home/alice/.aws/.hidden", alice, true},
		{"~/.aws/**", "/home/alice/.aws/sso/cache/x.json", alice, true},
		{"~/.aws/**", "/home/alice/.aws", alice, true},
		{"~/.aws/", "/home/alice/.aws/sso/cache/x.json", alice, true},
		{"~", "/home/alice", alice, true},
		{"~", "/home/alice/x", alice, false},
		{"~/*", "/x", "/", true},
		{"~/.ssh/id_*", "/root/.ssh/id_ed25519", "/root", true},
		{"~/.ssh/id_*", "/root/.ssh/known_hosts", "/root", false},
		// "**" at any depth, including zero segments.
		{"**/.env*", "/.env", "", true},
		{"**/.env*", "/srv/app/.env.local", "", true},
		{"**/.env*", "/srv/app/env", "", false},
		{"**/.env*", "/srv/.env/x", "", false},
		{"**/credentials*", "/home/alice/.aws/credentials", "", true},
		{"**/credentials*", "/srv/credentials/readme", "", false},
		{"/srv/**/secret/*.pem", "/srv/secret/a.pem", "", true},
		{"/srv/**/secret/*.pem", "/srv/a/b/c/secret/a.pem", "", true},
		{"/srv/**/secret/*.pem", "/srv/a/b/c/secret/a.key", "", false},
		{"/srv/**/secret/*.pem", "/srv/a/secret/b/a.pem", "", false},
		{"/a/**/b/**/c", "/a/x/b/y/z/c", "", true},
		{"/a/**/b/**/c", "/a/b/c", "", true},
		{"/a/**/b/**/c", "/a/c/b", "", false},
		{"/a/**/**/c", "/a/x/y/c", "", true},
		{"**", "/", "", true},
		{"**", "/anything/at/all", "", true},
		// Relative patterns match at any depth.
		{"*.pem", "/etc/ssl/private/host.pem", "", true},
		{"*.pem", "/etc/ssl/private/host.pem.bak", "", false},
		{"secret/*.key", "/x/y/secret/a.key", "", true},
		// Literal and absolute patterns.
		{"/etc/shadow", "/etc/shadow", "", true},
		{"/etc/shadow", "/etc/shadow-", "", false},
		{"/etc/shadow*", "/etc/shadow-", "", true},
		{"/", "/", "", true},
		{"/etc/*", "/etc", "", false},
		// Segment wildcards.
		{"/k/a*b", "/k/ab", "", true},
		{"/k/a*b", "/k/axxb", "", true},
		{"/k/a*b", "/k/a", "", false},
		{"/k/a*b*c*d", "/k/abcd", "", true},
		{"/k/a*b*c*d", "/k/aXbYcZd", "", true},
		{"/k/a*b*c*d", "/k/aXcYbZd", "", false},
		{"/k/a*b*c*d", "/k/abc", "", false},
		{"/k/*a*", "/k/bab", "", true},
		{"/k/?.txt", "/k/a.txt", "", true},
		{"/k/?.txt", "/k/ab.txt", "", false},
		{"/k/[ab].txt", "/k/b.txt", "", true},
		{"/k/[!ab].txt", "/k/b.txt", "", false},
		{`/k/\*`, "/k/*", "", true},
		{`/k/\*`, "/k/x", "", false},
		// "*" never crosses a slash.
		{"/k/*", "/k/a/b", "", false},
		// Pattern normalisation.
		{"/etc//./shadow", "/etc/shadow", "", true},
		// Only absolute paths match.
		{"**", "relative/path", "", false},
		{"**/.env", "", "", false},
	}
	for _, tt := range tests {
		g, err := Compile(tt.pattern)
		if err != nil {
			t.Fatalf("Compile(%q): %v", tt.pattern, err)
		}
		if got := g.Match(tt.path, tt.home); got != tt.want {
			t.Errorf("%q.Match(%q, home=%q) = %v, want %v", tt.pattern, tt.path, tt.home, got, tt.want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	for _, tt := range []struct{ pattern, want string }{
		{"", "empty"},
		{"   ", "empty"},
		{"~bob/.ssh/*", "~user"},
		{"/a/../b", `".."`},
		{"/a/b**", "whole path segment"},
		{"/a/[", "bad pattern"},
		{"/a/b]", "unmatched"},
		{"/a/\x00", "NUL"},
	} {
		_, err := Compile(tt.pattern)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Compile(%q) = %v, want an error containing %q", tt.pattern, err, tt.want)
		}
	}
}

// TestMatchAgreesWithPathMatch cross-checks the fast segment shapes against
// the standard library on patterns without "**".
func TestMatchAgreesWithPathMatch(t *testing.T) {
	patterns := []string{"/d/*", "/d/a*", "/d/*a", "/d/a*a", "/d/*a*b*", "/d/a*b*a", "/d/**a", "/d/?*"}
	names := []string{"a", "aa", "aba", "ab", "ba", "b", "abab", "aXbYa", "", "x"}
	for _, p := range patterns {
		g, err := Compile(p)
		if err != nil {
			if strings.Contains(p, "**") {
				continue
			}
			t.Fatal(err)
		}
		for _, n := range names {
			full := "/d/" + n
			if n == "" {
				full = "/d"
			}
			want, _ := path.Match(p, full)
			if got := g.Match(full, ""); got != want {
				t.Errorf("%q on %q: got %v, path.Match says %v", p, full, got, want)
			}
		}
	}
}

func TestCovers(t *testing.T) {
	const home = "/home/alice"
	tests := []struct {
		pattern, dir string
		want         bool
	}{
		{"~/.ssh/*", "/home/alice/.ssh", true},
		{"~/.ssh/*", "/home/alice", true},
		{"~/.ssh/*", "/home", true},
		{"~/.ssh/*", "/", true},
		{"~/.ssh/*", "/home/alice/.ssh/id_rsa", true},
		{"~/.ssh/*", "/home/alice/project", false},
		{"~/.ssh/*", "/home/bob", false},
		{"~/.ssh/*", "/home/al", false},
		{"~/.config/gcloud/*", "/home/alice/.config", true},
		{"~/.config/gcloud/*", "/home/alice/.config/nvim", false},
		{"/etc/shadow", "/etc", true},
		{"/etc/shadow", "/etc/ssl", false},
		{"**/.env*", "/srv/app", false},
		{"**/.env*", "/srv/app/.env", true},
	}
	for _, tt := range tests {
		g := MustCompile(tt.pattern)
		if got := g.Covers(tt.dir, home); got != tt.want {
			t.Errorf("%q.Covers(%q) = %v, want %v", tt.pattern, tt.dir, got, tt.want)
		}
	}
	if MustCompile("~/.ssh/*").Covers("/home/alice", "") {
		t.Error("a ~ pattern with no known home must cover nothing")
	}
}

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"/a/b":                        "/a/b",
		"/":                           "/",
		"/a/b/":                       "/a/b",
		"/a//b":                       "/a/b",
		"/a/./b":                      "/a/b",
		"/a/../b":                     "/b",
		"/../../etc/shadow":           "/etc/shadow",
		"/home/u/proj/../.ssh/id_rsa": "/home/u/.ssh/id_rsa",
		"/a/.b/..c":                   "/a/.b/..c",
		"/a/b/.":                      "/a/b",
		"/a/b/..":                     "/a",
		"relative":                    "",
		"":                            "",
	} {
		if got := Clean(in); got != want {
			t.Errorf("Clean(%q) = %q, want %q", in, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = Clean("/home/u/proj/src/main.go") }); n != 0 {
		t.Errorf("Clean of a clean path allocates %v times", n)
	}
}

func TestResolve(t *testing.T) {
	for _, tt := range []struct{ p, cwd, home, want string }{
		{"/etc/../etc/shadow", "/x", "", "/etc/shadow"},
		{"id_rsa", "/root/.ssh", "", "/root/.ssh/id_rsa"},
		{"../.aws/credentials", "/root/proj", "", "/root/.aws/credentials"},
		{"~/.aws/credentials", "/x", "/root", "/root/.aws/credentials"},
		{"~", "/x", "/root", "/root"},
		{"~/.aws", "/x", "", ""},
		{"rel", "", "", ""},
		{"", "/x", "", ""},
	} {
		if got := Resolve(tt.p, tt.cwd, tt.home); got != tt.want {
			t.Errorf("Resolve(%q, %q, %q) = %q, want %q", tt.p, tt.cwd, tt.home, got, tt.want)
		}
	}
}

func TestWithin(t *testing.T) {
	for _, tt := range []struct {
		p, dir string
		want   bool
	}{
		{"/a/b", "/a", true}, {"/a", "/a", true}, {"/ab", "/a", false}, {"/x", "/", true}, {"/a", "/a/b", false},
	} {
		if got := Within(tt.p, tt.dir); got != tt.want {
			t.Errorf("Within(%q, %q) = %v", tt.p, tt.dir, got)
		}
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	globs := []*Glob{
		MustCompile("~/.aws/*"), MustCompile("**/.env*"), MustCompile("/a/**/b/*.pem"),
		MustCompile("/etc/shadow"), MustCompile("/k/a*b*c"), MustCompile("/k/[ab]"),
	}
	paths := []string{"/root/.aws/config", "/srv/app/.env", "/a/x/y/b/c.pem", "/usr/lib/x.so", "/k/aXbYc", "/k/a"}
	n := testing.AllocsPerRun(100, func() {
		for _, g := range globs {
			for _, p := range paths {
				g.Match(p, "/root")
			}
		}
	})
	if n != 0 {
		t.Errorf("Match allocates %v times per run", n)
	}
}

func TestHomesTwoUsersAndCache(t *testing.T) {
	calls := 0
	h := NewHomes(func(uid int64) (string, bool) {
		calls++
		switch uid {
		case 1000:
			return "/home/alice", true
		case 1001:
			return "/home/bob", true
		}
		return "", false
	})
	if h.Home(1000) != "/home/alice" || h.Home(1001) != "/home/bob" || h.Home(42) != "" {
		t.Fatal("wrong homes")
	}
	h.Home(1000)
	h.Home(42)
	if calls != 3 {
		t.Errorf("lookup called %d times, want 3 (hits and misses are cached)", calls)
	}
	g := MustCompile("~/.ssh/*")
	if !g.Match("/home/alice/.ssh/id_rsa", h.Home(1000)) || g.Match("/home/alice/.ssh/id_rsa", h.Home(1001)) {
		t.Error("~ must follow the uid")
	}
}

func TestSystemLookupCurrentUser(t *testing.T) {
	u, err := user.Current()
	if err != nil {
		t.Fatalf("user.Current: %v", err)
	}
	uid, err := strconv.ParseInt(u.Uid, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	home, ok := SystemLookup(uid)
	if !ok || home != Clean(u.HomeDir) {
		t.Fatalf("SystemLookup(%d) = %q, %v; want %q", uid, home, ok, u.HomeDir)
	}
	if os.Geteuid() == 0 && home != "/root" {
		t.Errorf("root's home is %q, want /root", home)
	}
	if _, ok := SystemLookup(-1); ok {
		t.Error("a negative uid must be unknown")
	}
	if _, ok := SystemLookup(2147480000); ok {
		t.Error("an unused uid must be unknown")
	}
}

func BenchmarkMatchDefaultSensitive(b *testing.B) {
	globs := []*Glob{
		MustCompile("~/.aws/*"), MustCompile("~/.ssh/*"), MustCompile("~/.kube/*"),
		MustCompile("~/.config/gcloud/*"), MustCompile("~/.gnupg/*"),
		MustCompile("**/.env*"), MustCompile("**/credentials*"),
	}
	paths := []string{
		"/home/alice/proj/src/main.go", "/home/alice/proj/node_modules/x/index.js",
		"/home/alice/.aws/credentials", "/home/alice/proj/.env", "/etc/hosts", "/tmp/x",
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := paths[i%len(paths)]
		for _, g := range globs {
			g.Match(p, "/home/alice")
		}
	}
}

// FuzzMatch checks that no pattern or path panics, and that for the patterns
// path.Match understands the same way (absolute, no "**", already
// normalised) both agree.
func FuzzMatch(f *testing.F) {
	f.Add("~/.aws/*", "/root/.aws/credentials")
	f.Add("**/.env*", "/srv/.env")
	f.Add("/a/*b*c/d", "/a/xbyc/d")
	f.Add("/k/[a-c]?", "/k/bz")
	f.Add("/a/**/b", "/a/x/y/b")
	f.Fuzz(func(t *testing.T, pattern, p string) {
		g, err := Compile(pattern)
		if err != nil {
			return
		}
		clean := Clean(p)
		got := g.Match(clean, "/root")
		g.Covers(clean, "/root")
		if !strings.HasPrefix(pattern, "/") || strings.Contains(pattern, "**") || strings.Contains(pattern, "[!") ||
			strings.HasSuffix(pattern, "/") || strings.Contains(pattern, "//") || strings.Contains(pattern, "/./") ||
			strings.HasSuffix(pattern, "/.") || clean == "" {
			return
		}
		want, err := path.Match(pattern, clean)
		if err == nil && got != want {
			t.Errorf("%q on %q: got %v, path.Match says %v", pattern, clean, got, want)
		}
	})
}
