package redact

import (
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	antKey    = "sk-ant-api03-Zx8Qm2Lp9Rt4Vw7Yb3Nc6Hd1Jf5Kg0Ts-AbCdEfGh_IjKlMnOpAA"
	openaiKey = "sk-proj-Zx8Qm2Lp9Rt4Vw7Yb3Nc6Hd1Jf5Kg0TsQq"
	ghpKey    = "ghp_Zx8Qm2Lp9Rt4Vw7Yb3Nc6Hd1Jf5Kg0TsQqW"
	jwtTok    = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
	randomB62 = "Zx8Qm2Lp9Rt4Vw7Yb3Nc6Hd1Jf5Kg0Ts"
)

func TestText(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		// Prefixed tokens.
		{"anthropic key alone", antKey, Marker},
		{"anthropic key in prose", "use " + antKey + " here", "use [REDACTED] here"},
		{"openai project key", "key: x " + openaiKey, "key: x [REDACTED]"},
		{"github pat", "token is " + ghpKey + ".", "token is [REDACTED]."},
		{"fine-grained pat", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", Marker},
		{"slack bot", "xoxb-1234567890-0987654321-AbCdEfGhIjKl", Marker},
		{"aws access key id", "id AKIAIOSFODNN7EXAMPLE end", "id [REDACTED] end"},
		{"google api key", "AIzaSyA-1234567890abcdefghijklmnopqrstu", Marker},
		{"stripe live", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", Marker},
		{"jwt", "tok=" + jwtTok + " next", "tok=[REDACTED] next"},
		{"token after slash", "path/" + ghpKey, "path/[REDACTED]"},
		{"truncated anthropic key", "the key sk-ant-api0", "the key [REDACTED]"},
		{"truncated aws key", "AKIAIOSF", Marker},

		// Names.
		{"env assignment", "export ANTHROPIC_API_KEY=abc123", "export ANTHROPIC_API_KEY=[REDACTED]"},
		{"env secret anywhere", "DB_PASSWORD_PROD=hunter2 ./run", "DB_PASSWORD_PROD=[REDACTED] ./run"},
		{"json field", `{"api_key": "abc123", "model": "x"}`, `{"api_key": "[REDACTED]", "model": "x"}`},
		{"json camel", `{"apiKey":"abc123","secretAccessKey":"q/w+e"}`, `{"apiKey":"[REDACTED]","secretAccessKey":"[REDACTED]"}`},
		{"json escaped quote in value", `{"password":"a\"b\\"} x`, `{"password":"[REDACTED]"} x`},
		{"nested json", `{"arguments":"{\"password\":\"hunter2\",\"user\":\"bob\"}"}`,
			`{"arguments":"{\"password\":\"[REDACTED]\",\"user\":\"bob\"}"}`},
		{"nested json escaped quote", `{"a":"{\"token\":\"hun\\\"ter\",\"u\":1}"}`,
			`{"a":"{\"token\":\"[REDACTED]\",\"u\":1}"}`},
		{"json authorization keeps scheme", `{"Authorization":"Bearer abc123xyz"}`, `{"Authorization":"Bearer [REDACTED]"}`},
		{"json cookie", `{"cookie": "a=1; b=2"}`, `{"cookie": "[REDACTED]"}`},
		{"truncated json value", `{"password": "hunt`, `{"password": "[REDACTED]`},
		{"query string", "GET /cb?access_token=abc123&state=x", "GET /cb?access_token=[REDACTED]&state=x"},
		{"yaml", "password: hunter2\nuser: bob", "password: [REDACTED]\nuser: bob"},
		{"ini with spaces", "password = hunter2", "password = [REDACTED]"},
		{"flag with equals", "run --api-key=abc123 now", "run --api-key=[REDACTED] now"},
		{"npmrc", "//registry.npmjs.org/:_authToken=abc123", "//registry.npmjs.org/:_authToken=[REDACTED]"},
		{"header line", "Authorization: Basic dXNlcjpwYXNz\r\nHost: x", "Authorization: Basic [REDACTED]\r\nHost: x"},
		{"header line no scheme", "x-api-key: abc123 more", "x-api-key: [REDACTED] more"},
		{"cookie header line", "Cookie: a=1; b=2\nX: y", "Cookie: [REDACTED]\nX: y"},
		{"single quoted", "token='a b c' rest", "token='[REDACTED]' rest"},
		{"spring property", "spring.datasource.password=hunter2", "spring.datasource.password=[REDACTED]"},

		// Bearer, URLs, PEM.
		{"bearer in prose", "send Bearer abcdefgh12345678 now", "send Bearer [REDACTED] now"},
		{"url password", "git clone https://bob:s3cret@github.com/o/r.git", "git clone https://bob:[REDACTED]@github.com/o/r.git"},
		{"url password with at", "postgres://u:p@ss@db:5432/x", "postgres://u:[REDACTED]@db:5432/x"},
		{"url token as user", "https://0123456789abcdef0123456789@github.com/x", "https://[REDACTED]@github.com/x"},
		{"url truncated in password", "https://bob:s3cr", "https://bob:[REDACTED]"},
		{"pem", "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAA==\n-----END RSA PRIVATE KEY-----\n",
			"-----BEGIN RSA PRIVATE KEY-----[REDACTED]-----END RSA PRIVATE KEY-----\n"},
		{"pem truncated", "-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXk", "-----BEGIN OPENSSH PRIVATE KEY-----[REDACTED]"},

		// Entropy.
		{"random base62", "secret " + randomB62 + " end", "secret [REDACTED] end"},
		{"random base64 padded", "x " + randomB62 + "+/AB== y", "x [REDACTED] y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Text(tt.in); got != tt.want {
				t.Errorf("Text(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestTextUnchanged(t *testing.T) {
	for _, in := range []string{
		"",
		"hello world, nothing to see here",
		`{"model":"claude-sonnet-4-5","max_tokens":1024,"stream":true}`,
		`{"usage":{"input_tokens":12,"output_tokens":5},"token_type":"bearer"}`,
		"git checkout 3f786850e387550fdab836ed7e6dc881de23001b",
		"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"id 123e4567-e89b-12d3-a456-426614174000",
		"/home/runner/work/agentwatch/agentwatch/internal/redact/text.go",
		"func TestParseResponsesAPIStreamWithToolCalls2(t *testing.T)",
		"AbstractSingletonProxyFactoryBean2 HTTPServerConfigV2ForTheInternalAPIGateway",
		`{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","tool":"toolu_01A09q90qw90lq917835lq9"}`,
		"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT call_abc123DEF456ghi789JKL012",
		"integrity sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUR8o4Fv+4d2xxZcmbx5rQ==",
		"task-list desk-lamp risk-assessment sk-short",
		"https://example.com:8443/path?x=1",
		"ssh://git@github.com/org/repo",
		"PASSWORD_FILE=/run/secrets/db AWS_REGION=us-east-1",
		"The password is stored in a vault; rotate the token monthly.",
		"Bearer of bad news",
		`{"password": null, "secret": {"a": 1}, "token": true}`,
		"ASIAN markets AKIAIOSFODNN7EXAMPLEXX",
		"KEY=value sort_key=name cache_key=x",
		"Note: this is fine. TODO: nothing",
		"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
	} {
		if got := Text(in); got != in {
			t.Errorf("Text(%q) = %q, want unchanged", in, got)
		}
	}
}

func TestIsSecretName(t *testing.T) {
	yes := []string{"password", "PASSWORD", "DB_PASSWORD", "db_password_prod", "passwd", "passphrase",
		"client_secret", "SECRET_KEY_BASE", "NEXTAUTH_SECRET", "token", "GITHUB_TOKEN", "access_token",
		"authToken", "_authToken", "api_key", "apiKey", "APIKey", "x-api-key", "OPENAI_API_KEY", "apikey",
		"SOME_KEY", "AWS_SECRET_ACCESS_KEY", "private_key", "Authorization", "cookie", "GITHUB_PAT",
		"auth", "X-Amz-Signature", "db_pass"}
	no := []string{"", "key", "KEY", "tokens", "max_tokens", "input_tokens", "token_type", "tokenizer",
		"PASSWORD_FILE", "password_min_length", "secretName", "AWS_ACCESS_KEY_ID", "private_key_id",
		"SSH_AUTH_SOCK", "sort_key", "cache_key", "pat", "model", "author", "keyboard", "PWD"}
	for _, n := range yes {
		if !IsSecretName(n) {
			t.Errorf("IsSecretName(%q) = false, want true", n)
		}
	}
	for _, n := range no {
		if IsSecretName(n) {
			t.Errorf("IsSecretName(%q) = true, want false", n)
		}
	}
}

func TestForEachWord(t *testing.T) {
	tests := map[string][]string{
		"OPENAI_API_KEY": {"OPENAI", "API", "KEY"},
		"apiKey":         {"api", "Key"},
		"APIKey":         {"API", "Key"},
		"--max-tokens":   {"max", "tokens"},
		"x2Token":        {"x2", "Token"},
		"":               nil,
	}
	for in, want := range tests {
		var got []string
		forEachWord(in, func(w string) { got = append(got, w) })
		if !slices.Equal(got, want) {
			t.Errorf("words(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHeader(t *testing.T) {
	tests := []struct{ name, value, want string }{
		{"Authorization", "Bearer " + antKey, "Bearer [REDACTED]"},
		{"authorization", antKey, Marker},
		{"Proxy-Authorization", "Basic dXNlcjpwYXNz", "Basic [REDACTED]"},
		{"Authorization", "AWS4-HMAC-SHA256 Credential=AKIA/x, Signature=abc", "AWS4-HMAC-SHA256 [REDACTED]"},
		{"x-api-key", antKey, Marker},
		{"api-key", "abc", Marker},
		{"X-Goog-Api-Key", "AIza123", Marker},
		{"Cookie", "a=1; b=2", Marker},
		{"Set-Cookie", "sid=abc; Path=/; HttpOnly", Marker},
		{"X-Auth-Token", "abc", Marker},
		{"X-Amz-Security-Token", "abc", Marker},
		{"X-Custom-Secret", "correct horse battery staple", Marker},
		{"Authorization", "", ""},
		{"Content-Type", "application/json", "application/json"},
		{"anthropic-version", "2023-06-01", "2023-06-01"},
		{"Host", "api.anthropic.com", "api.anthropic.com"},
		{"User-Agent", "tool/1.0 " + ghpKey, "tool/1.0 [REDACTED]"},
		{"Referer", "https://u:pw@x.example/", "https://u:[REDACTED]@x.example/"},
	}
	for _, tt := range tests {
		if got := Header(tt.name, tt.value); got != tt.want {
			t.Errorf("Header(%q, %q) = %q, want %q", tt.name, tt.value, got, tt.want)
		}
	}
}

func TestArgs(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"curl bearer header", []string{"curl", "-H", "Authorization: Bearer tok123456", "https://x"},
			[]string{"curl", "-H", "Authorization: Bearer [REDACTED]", "https://x"}},
		{"curl header cluster", []string{"curl", "-sSH", "x-api-key: abc", "u"},
			[]string{"curl", "-sSH", "x-api-key: [REDACTED]", "u"}},
		{"curl custom token header", []string{"curl", "--header", "X-My-Token: abc", "u"},
			[]string{"curl", "--header", "X-My-Token: [REDACTED]", "u"}},
		{"curl attached header", []string{"curl", "-HX-Api-Key: abc", "u"},
			[]string{"curl", "-HX-Api-Key: [REDACTED]", "u"}},
		{"curl user pass", []string{"curl", "-u", "admin:hunter2", "u"}, []string{"curl", "-u", "admin:[REDACTED]", "u"}},
		{"curl user attached", []string{"curl", "-uadmin:hunter2"}, []string{"curl", "-uadmin:[REDACTED]"}},
		{"curl user only", []string{"curl", "-u", "admin", "u"}, nil},
		{"curl method is not a value flag target", []string{"curl", "-XPOST", "-d", `{"password":"x"}`, "u"},
			[]string{"curl", "-XPOST", "-d", `{"password":"[REDACTED]"}`, "u"}},
		{"curl cookie", []string{"curl", "-b", "sid=abc", "u"}, []string{"curl", "-b", Marker, "u"}},
		{"curl cookie file", []string{"curl", "-b", "cookies.txt", "u"}, nil},
		{"curl cert password", []string{"curl", "-E", "cert.pem:pw", "u"}, []string{"curl", "-E", "cert.pem:[REDACTED]", "u"}},
		{"curl cert no password", []string{"curl", "--cert", "client-certificate.pem", "u"}, nil},
		{"curl oauth2", []string{"curl", "--oauth2-bearer", "abc", "u"}, []string{"curl", "--oauth2-bearer", Marker, "u"}},
		{"mysql attached", []string{"mysql", "-u", "root", "-phunter2", "db"}, []string{"mysql", "-u", "root", "-p[REDACTED]", "db"}},
		{"mysql prompt", []string{"mysql", "-u", "root", "-p", "db"}, nil},
		{"mysql password eq", []string{"/usr/bin/mysqldump", "--password=x", "db"}, []string{"/usr/bin/mysqldump", "--password=[REDACTED]", "db"}},
		{"mysql password alone prompts", []string{"mysql", "--password", "db"}, nil},
		{"sshpass", []string{"sshpass", "-p", "pw", "ssh", "h"}, []string{"sshpass", "-p", Marker, "ssh", "h"}},
		{"generic token flag", []string{"tool", "--token", "abc"}, []string{"tool", "--token", Marker}},
		{"generic token eq", []string{"tool", "--token=abc"}, []string{"tool", "--token=[REDACTED]"}},
		{"generic api key", []string{"tool", "--api-key", "abc", "--model", "m"}, []string{"tool", "--api-key", Marker, "--model", "m"}},
		{"generic client secret", []string{"tool", "--client-secret", "abc"}, []string{"tool", "--client-secret", Marker}},
		{"go style flag", []string{"./tool", "-token", "abc"}, []string{"./tool", "-token", Marker}},
		{"max tokens kept", []string{"tool", "--max-tokens", "100"}, nil},
		{"no-password is boolean", []string{"pg_dump", "--no-password", "db"}, nil},
		{"password-stdin is boolean", []string{"docker", "login", "--password-stdin", "reg"}, nil},
		{"with-token is boolean", []string{"gh", "auth", "login", "--with-token"}, nil},
		{"value cannot be a long flag", []string{"tool", "--token", "--verbose"}, nil},
		{"token file kept", []string{"tool", "--token-file", "/run/t"}, nil},
		{"docker login", []string{"docker", "login", "-u", "bob", "-p", "pw", "reg.io"},
			[]string{"docker", "login", "-u", "bob", "-p", Marker, "reg.io"}},
		{"docker run port", []string{"docker", "run", "-p", "8080:80", "img"}, nil},
		{"docker env", []string{"docker", "run", "-e", "API_KEY=abc", "-e", "MODE=x", "img"},
			[]string{"docker", "run", "-e", "API_KEY=[REDACTED]", "-e", "MODE=x", "img"}},
		{"env wrapper", []string{"env", "OPENAI_API_KEY=abc", "node", "app.js"}, []string{"env", "OPENAI_API_KEY=[REDACTED]", "node", "app.js"}},
		{"sudo wrapper", []string{"sudo", "-u", "db", "mysql", "-psecret"}, []string{"sudo", "-u", "db", "mysql", "-p[REDACTED]"}},
		{"timeout wrapper", []string{"timeout", "30", "sshpass", "-p", "pw", "ssh"}, []string{"timeout", "30", "sshpass", "-p", Marker, "ssh"}},
		{"git url", []string{"git", "clone", "https://u:p4ss@github.com/o/r"}, []string{"git", "clone", "https://u:[REDACTED]@github.com/o/r"}},
		{"git extraheader", []string{"git", "-c", "http.extraHeader=Authorization: Bearer abcdefgh", "fetch"},
			[]string{"git", "-c", "http.extraHeader=Authorization: Bearer [REDACTED]", "fetch"}},
		{"token anywhere", []string{"echo", antKey}, []string{"echo", Marker}},
		{"bash script", []string{"bash", "-c", "curl -u admin:pw http://x && mysql -phunter2 db"},
			[]string{"bash", "-c", "curl -u admin:[REDACTED] http://x && mysql -p[REDACTED] db"}},
		{"bash -c -l quoted", []string{"/bin/bash", "-c", "-l", "sshpass -p 'my pass' ssh host"},
			[]string{"/bin/bash", "-c", "-l", "sshpass -p '[REDACTED]' ssh host"}},
		{"nested shell", []string{"sh", "-c", "bash -c 'mysql -psecret'"}, []string{"sh", "-c", "bash -c 'mysql -p[REDACTED]'"}},
		{"su -c", []string{"su", "-c", "tool --password pw", "root"}, []string{"su", "-c", "tool --password [REDACTED]", "root"}},
		{"script flag eq quoted", []string{"bash", "-c", `tool --password="a b" x`}, []string{"bash", "-c", `tool --password=[REDACTED] x`}},
		{"openssl pass", []string{"openssl", "enc", "-aes-256-cbc", "-pass", "pass:hunter2"},
			[]string{"openssl", "enc", "-aes-256-cbc", "-pass", "pass:[REDACTED]"}},
		{"openssl env pass", []string{"openssl", "enc", "-pass", "env:PW"}, nil},
		{"openssl k", []string{"openssl", "enc", "-k", "pw"}, []string{"openssl", "enc", "-k", Marker}},
		{"zip", []string{"zip", "-P", "pw", "o.zip", "f"}, []string{"zip", "-P", Marker, "o.zip", "f"}},
		{"7z", []string{"7z", "a", "-pSecret", "x.7z"}, []string{"7z", "a", "-p[REDACTED]", "x.7z"}},
		{"httpie", []string{"http", "POST", "example.com:8080/x", "Authorization:Bearer xyz12345", "x-api-key:abc", "name=bob"},
			[]string{"http", "POST", "example.com:8080/x", "Authorization:Bearer [REDACTED]", "x-api-key:[REDACTED]", "name=bob"}},
		{"httpie auth", []string{"http", "-a", "bob:pw", "x.io"}, []string{"http", "-a", "bob:[REDACTED]", "x.io"}},
		{"wget header", []string{"wget", "--header=Authorization: token abc", "u"}, []string{"wget", "--header=Authorization: token [REDACTED]", "u"}},
		{"wget password", []string{"wget", "--http-password", "pw", "u"}, []string{"wget", "--http-password", Marker, "u"}},
		{"ls", []string{"ls", "-la", "/tmp"}, nil},
		{"git commit message not shell-split", []string{"git", "commit", "-m", "fix --password handling"}, nil},
		{"empty", []string{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.in)
			got := Args(in)
			want := tt.want
			if want == nil {
				want = tt.in
			}
			if !slices.Equal(got, want) {
				t.Errorf("Args(%q)\n got %q\nwant %q", tt.in, got, want)
			}
			if !slices.Equal(in, tt.in) {
				t.Errorf("Args modified its input: %q", in)
			}
			if tt.want == nil && len(in) > 0 && &got[0] != &in[0] {
				t.Errorf("Args returned a new slice although nothing changed")
			}
		})
	}
	if Args(nil) != nil {
		t.Error("Args(nil) != nil")
	}
}

func TestNoAllocsWhenClean(t *testing.T) {
	argv := []string{"/usr/bin/git", "-C", "/home/u/project", "commit", "-m", "fix the parser", "--no-verify"}
	shell := []string{"/bin/bash", "-c", "-l", "cd /home/u/project && go test ./... -run TestX -count=1"}
	body := strings.Repeat(`{"role":"user","content":"Please refactor the function in main.go, keep max_tokens at 1024."},`, 20)
	cases := map[string]func(){
		"Args":       func() { Args(argv) },
		"Args shell": func() { Args(shell) },
		"Text":       func() { Text(body) },
		"Header":     func() { Header("Content-Type", "application/json") },
	}
	for name, f := range cases {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocs, want 0", name, n)
		}
	}
}

// TestNoPartialSecret plants whole secrets in varied contexts: none of their
// bytes beyond the well-known prefix may survive.
func TestNoPartialSecret(t *testing.T) {
	secrets := []string{antKey, openaiKey, ghpKey, jwtTok, randomB62, "AKIAIOSFODNN7EXAMPLE"}
	contexts := []string{"%s", "x=%s", `{"k":"%s"}`, `"password":"%s"`, "Bearer %s", "https://u:%s@h/",
		"'%s'", "(%s)", "<%s>", `\"%s\"`, "a/%s/b", "%s\n", "--x=%s"}
	for _, sec := range secrets {
		tail := sec[len(sec)-10:]
		for _, c := range contexts {
			in := strings.Replace(c, "%s", sec, 1)
			if got := Text(in); strings.Contains(got, tail) {
				t.Errorf("Text(%q) = %q leaks part of the secret", in, got)
			}
		}
	}
}

// TestHostileInputLinear guards against rescanning: each input is 4 MiB of
// a pattern that makes a detector start and fail over and over. Linear
// scanning takes tens of milliseconds; a quadratic one would take minutes.
func TestHostileInputLinear(t *testing.T) {
	if testing.Short() {
		t.Skip("timing test")
	}
	for _, unit := range []string{"eyJ-", "eyJaaaaaaaaaaaa.", "-----BEGIN ", "://a:b", "sk-ab-", "AKIA-", `"password":"\"`,
		`\"token\":\\\"`, "Bearer ", "a:b@", "password=", "x/" + randomB62} {
		s := strings.Repeat(unit, (4<<20)/len(unit))
		start := time.Now()
		Text(s)
		Args([]string{"bash", "-c", s})
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%q x %d took %v", unit, len(s)/len(unit), d)
		}
	}
}

func TestCommand(t *testing.T) {
	tests := []struct{ in, want string }{
		{"curl -u deploy:hunter2 -T app https://b.example/", "curl -u deploy:[REDACTED] -T app https://b.example/"},
		{"cd x && mysql -psecret db | tee out", "cd x && mysql -p[REDACTED] db | tee out"},
		{"export GH_TOKEN=abc; gh pr list", "export GH_TOKEN=[REDACTED]; gh pr list"},
		{"bash -lc 'sshpass -p pw ssh h'", "bash -lc 'sshpass -p [REDACTED] ssh h'"},
		{"ls -la && git status", "ls -la && git status"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Command(tt.in); got != tt.want {
			t.Errorf("Command(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if n := testing.AllocsPerRun(50, func() { Command("go test ./... -run TestX -count=1") }); n != 0 {
		t.Errorf("Command allocates %v on a clean line", n)
	}
}
