package policy

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const (
	seedFile    = "../../../../testdata/policy/seed.toml"
	testdataDir = "../../testdata/policy"
)

func TestSeedFileLoadsUnchanged(t *testing.T) {
	l, warnings, err := LoadFile(seedFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Fatalf("warnings: %v", warnings)
	}
	if !slices.Equal(*l.SensitivePaths, SeedSensitivePaths) ||
		!slices.Equal(*l.RiskyBinaries, SeedRiskyBinaries) ||
		!slices.Equal(*l.AllowedDestinations, SeedAllowedDestinations) {
		t.Fatalf("the seed file and the built-in seed differ: %+v", l)
	}
	if _, err := Compile([]Layer{l}, testOptions()); err != nil {
		t.Fatal(err)
	}
}

// TestFileAndInlineCompileAlike checks that the same lists give the same
// policy whichever source they come from.
func TestFileAndInlineCompileAlike(t *testing.T) {
	l, _, err := LoadFile(seedFile)
	if err != nil {
		t.Fatal(err)
	}
	fromFile := mustCompile(t, l)
	inline := mustCompile(t, seedLayer())
	paths := []string{"/root/.aws/credentials", "/root/.ssh/id_rsa", "/srv/.env", "/root/proj/main.go", "/etc/shadow"}
	for _, p := range paths {
		var a, b RuleSet
		fromFile.MatchPath(p, Homes{"/root", "/root"}, "", &a)
		inline.MatchPath(p, Homes{"/root", "/root"}, "", &b)
		if a != b {
			t.Errorf("%s: file %v, inline %v", p, ids(fromFile, &a), ids(inline, &b))
		}
	}
	if len(fromFile.Rules()) != len(inline.Rules()) {
		t.Error("rule counts differ")
	}
}

func TestExtendedFile(t *testing.T) {
	fileLayer, warnings, err := LoadFile(filepath.Join(testdataDir, "extended.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Fatalf("warnings: %v", warnings)
	}
	if fileLayer.RiskyBinaries != nil {
		t.Fatal("risky_binaries is not in the file and must stay unset")
	}
	// The file sits on top of the inline layer: its lists replace the
	// inline ones, the unset list keeps the inline value.
	inline := InlineLayer([]string{"/inline/only/*"}, []string{"terraform"}, []string{"inline.example"}, nil, nil)
	p := mustCompile(t, inline, fileLayer)

	var rs RuleSet
	p.MatchPath("/srv/infra/prod.tfstate", Homes{}, "", &rs)
	if got := ids(p, &rs); !slices.Equal(got, []string{"file.sensitive"}) {
		t.Fatalf("tfstate: %v", got)
	}
	rs = RuleSet{}
	p.MatchPath("/inline/only/x", Homes{}, "", &rs)
	if !rs.Empty() {
		t.Fatal("the file's sensitive_paths must replace the inline list")
	}
	rs = RuleSet{}
	p.MatchExec(&Exec{Exe: "/usr/bin/terraform", Args: []string{"terraform"}}, &rs)
	if got := ids(p, &rs); !slices.Equal(got, []string{"binary.other"}) {
		t.Fatalf("inline risky_binaries must stay: %v", got)
	}
	rs = RuleSet{}
	p.MatchConnect(&Connect{Addr: netip.MustParseAddr("10.1.1.1"), Port: 8443}, &rs)
	if got := ids(p, &rs); len(got) != 0 {
		t.Fatalf("allowed CIDR and disabled port rule: %v", got)
	}
	rs = RuleSet{}
	p.MatchConnect(&Connect{Addr: netip.MustParseAddr("1.2.3.4"), Port: 443, Name: "x.pastebin.com"}, &rs)
	if got := ids(p, &rs); !slices.Equal(got, want("custom.pastebin", "net.destination_not_allowed")) {
		t.Fatalf("custom destination: %v", got)
	}
	i, _ := p.RuleIndex("file.dotenv")
	if p.Rule(i).Score != 65 {
		t.Fatalf("re-score from the file: %d", p.Rule(i).Score)
	}
	rs = RuleSet{}
	p.MatchExec(&Exec{Exe: "/bin/rm", Args: []string{"rm", "-rf", "/"}}, &rs)
	if got := ids(p, &rs); !slices.Equal(got, []string{"custom.rm_root"}) {
		t.Fatalf("custom exec rule: %v", got)
	}
}

func TestLayerPrecedence(t *testing.T) {
	off, on := false, true
	s30, s60 := 30, 60
	inline := seedLayer()
	inline.Rules = map[string]RuleOverride{"file.kube": {Score: &s30, Enabled: &off}}
	inline.CustomRules = []CustomRule{{ID: "c.same", Category: "x", Score: 5, Description: "d", Ports: []int{1}}}
	file := Layer{Rules: map[string]RuleOverride{"file.kube": {Score: &s60, Enabled: &on}}, src: source{file: "p.toml"}}
	p := mustCompile(t, inline, file)
	i, _ := p.RuleIndex("file.kube")
	if p.Rule(i).Score != 60 || !p.Enabled(i) {
		t.Fatalf("the file's override must win: %+v", p.Rule(i))
	}
	file.CustomRules = []CustomRule{{ID: "c.same", Category: "x", Score: 5, Description: "d", Ports: []int{2}}}
	_, err := Compile([]Layer{inline, file}, testOptions())
	if err == nil || !strings.Contains(err.Error(), `policy_file "p.toml": custom_rules[0].id: rule id "c.same" is already defined in the collector config`) {
		t.Fatalf("duplicate across layers: %v", err)
	}
}

func TestBrokenFiles(t *testing.T) {
	tests := []struct {
		file string
		want string
	}{
		{"syntax_error.toml", `syntax_error.toml": line 4: `},
		{"bad_type.toml", `bad_type.toml": line 3: agent_monitoring.risky_binaries: wrong type: found a TOML string, want an array of strings`},
		{"bad_glob.toml", `bad_glob.toml": line 5: agent_monitoring.sensitive_paths[2]: invalid glob "/srv/[secrets/*"`},
		{"unknown_rule.toml", `unknown_rule.toml": line 4: rules."file.does_not_exist": unknown rule id "file.does_not_exist"`},
		{"unknown_key.toml", `unknown_key.toml": line 2: rules."file.kube".scor: unknown key`},
		{"bad_custom.toml", `bad_custom.toml": line 13: custom_rules[1].paths[1]: invalid glob "/srv/b/**x"`},
		{"does_not_exist.toml", `does_not_exist.toml": cannot read:`},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			l, _, err := LoadFile(filepath.Join(testdataDir, tt.file))
			if err == nil {
				_, err = Compile([]Layer{seedLayer(), l}, testOptions())
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v\nwant it to contain %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), `policy_file "`) {
				t.Fatalf("the error must name policy_file: %v", err)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("not a FieldError: %T", err)
			}
		})
	}
}

func TestForeignKeysAreWarnings(t *testing.T) {
	l, warnings, err := LoadFile(filepath.Join(testdataDir, "foreign_keys.toml"))
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(warnings, "\n")
	for _, w := range []string{"line 3: unknown key agent_monitoring.enabled ignored", "line 4: unknown key agent_monitoring.log_level ignored", "line 7: unknown key ui ignored"} {
		if !strings.Contains(joined, w) {
			t.Errorf("warnings lack %q:\n%s", w, joined)
		}
	}
	if !slices.Equal(*l.SensitivePaths, []string{"~/.aws/*"}) {
		t.Fatalf("lists must still load: %v", l.SensitivePaths)
	}
}

func TestFileTooLarge(t *testing.T) {
	name := filepath.Join(t.TempDir(), "big.toml")
	if err := os.WriteFile(name, make([]byte, maxFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := LoadFile(name)
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("got %v", err)
	}
}

func TestParentField(t *testing.T) {
	for in, want := range map[string]string{
		"a.b[2]":                "a.b",
		"a.b":                   "a",
		`rules."x.y".score`:     `rules."x.y"`,
		`rules."x.y"`:           "rules",
		`rules."a\"b.c".score`:  `rules."a\"b.c"`,
		"custom_rules[1].paths": "custom_rules[1]",
		"custom_rules[1]":       "custom_rules",
		"top":                   "",
	} {
		if got := parentField(in); got != want {
			t.Errorf("parentField(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParseFile feeds garbage to the policy loader: it must return an error
// or a layer that compiles or fails cleanly, never panic.
func FuzzParseFile(f *testing.F) {
	for _, name := range []string{seedFile, filepath.Join(testdataDir, "extended.toml"), filepath.Join(testdataDir, "bad_custom.toml")} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("[agent_monitoring]\nsensitive_paths = [\"~/\", '**', \"/a/[\"]\n[[custom_rules]]\nid='x'\nports=[0,65536]\n"))
	f.Add([]byte("agent_monitoring.allowed_destinations = ['::ffff:0.0.0.0/96', '*.', '*']\nrules.a = {enabled = true}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, _, err := ParseFile("fuzz.toml", data)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error is not a FieldError: %T %v", err, err)
			}
			return
		}
		p, err := Compile([]Layer{seedLayer(), l}, testOptions())
		if err != nil {
			return
		}
		var rs RuleSet
		p.MatchPath("/root/.aws/credentials", Homes{"/root", "/root"}, "/root/proj", &rs)
		p.MatchExec(&Exec{Exe: "/usr/bin/tar", Args: []string{"tar", "czf", "/tmp/x", "/root"}, Cwd: "/"}, &rs)
		p.MatchConnect(&Connect{Addr: netip.MustParseAddr("10.0.0.1"), Port: 22, Name: "a.example"}, &rs)
		p.MatchDNS("a.example", netip.MustParseAddr("8.8.8.8"), &rs)
	})
}
