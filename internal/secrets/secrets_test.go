package secrets

import (
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
)

// Fake credentials, shaped like real ones (none is valid anywhere).
const (
	awsID     = "AKIAQX3EXAMPLE7ZK2PL"
	awsSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKY"
	ghToken   = "ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
	antKey    = "sk-ant-api03-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBa-_Q"
	oaiKey    = "sk-proj-4fG7hJ2kL9mN3pQ6rS8tV1wX5yZ0aB"
	slackTok  = "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp"
	googleKey = "AIzaSyD4x7Q9w2E5r8T1y3U6i0O4p7A2s5D8f1G"
	jwt       = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
	pemKey    = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\nQyNTUxOQAAACBhZmFrZWtleWZvcnRlc3RzMTIzNDU2Nzg5MGFiY2RlZgAAAJgAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
)

var awsCredentials = "[default]\naws_access_key_id = " + awsID + "\naws_secret_access_key = " + awsSecret + "\nregion = eu-west-1\n"

func scanAll(s string, fp *Fingerprints) []Finding {
	var out []Finding
	sc := Scanner{FP: fp}
	sc.Scan(s, func(f Finding) { out = append(out, f) })
	return out
}

func kinds(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		k := f.Kind + "/" + f.Encoding
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func b64wrapped(s string) string {
	e := base64.StdEncoding.EncodeToString([]byte(s))
	var b strings.Builder
	for len(e) > 76 {
		b.WriteString(e[:76] + "\n")
		e = e[76:]
	}
	b.WriteString(e + "\n")
	return b.String()
}

func xxdP(s string) string {
	e := hex.EncodeToString([]byte(s))
	var b strings.Builder
	for len(e) > 60 {
		b.WriteString(e[:60] + "\n")
		e = e[60:]
	}
	return b.String() + e + "\n"
}

func TestShapes(t *testing.T) {
	cases := []struct {
		text string
		want []string
	}{
		{"id " + awsID + " here", []string{"aws_access_key_id/plain"}},
		{"ASIAY34FZKBOKMUTVV7A", []string{"aws_access_key_id/plain"}},
		{awsCredentials, []string{"aws_access_key_id/plain", "aws_secret_access_key/plain", "generic_secret/plain"}},
		{"token: " + ghToken, []string{"generic_secret/plain", "github_token/plain"}},
		{"github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", []string{"github_token/plain"}},
		{"ANTHROPIC_API_KEY=" + antKey, []string{"anthropic_api_key/plain", "generic_secret/plain"}},
		{"use " + oaiKey, []string{"openai_api_key/plain"}},
		{slackTok, []string{"slack_token/plain"}},
		{"key=" + googleKey, []string{"generic_secret/plain", "google_api_key/plain"}},
		{"Authorization: Bearer " + jwt, []string{"jwt/plain"}},
		{pemKey, []string{"private_key/plain"}},
		{"-----BEGIN RSA PRIVATE KEY-----\nMIIE", []string{"private_key/plain"}},
		{"-----BEGIN PGP PRIVATE KEY BLOCK-----", []string{"private_key/plain"}},
		{"db_password = 'h7#Kq2!vR9zL$w4X'", []string{"generic_secret/plain"}},
		// encoded
		{b64wrapped(awsCredentials), []string{"aws_access_key_id/base64", "aws_secret_access_key/base64", "generic_secret/base64"}},
		{base64.URLEncoding.EncodeToString([]byte("x " + ghToken)), []string{"github_token/base64"}},
		{xxdP(awsCredentials), []string{"aws_access_key_id/hex", "aws_secret_access_key/hex", "generic_secret/hex"}},
		{"echo " + hex.EncodeToString([]byte(antKey)), []string{"anthropic_api_key/hex"}},
		{b64wrapped(pemKey), []string{"private_key/base64"}},
		// base64 of hex is reported as base64 (what was sent)
		{base64.StdEncoding.EncodeToString([]byte(hex.EncodeToString([]byte(antKey)))), []string{"anthropic_api_key/base64"}},
	}
	for _, c := range cases {
		got := kinds(scanAll(c.text, nil))
		if !slices.Equal(got, c.want) {
			t.Errorf("%.60q: %v, want %v", c.text, got, c.want)
		}
	}
}

// Normal code, prose, paths, hashes and the base64 of ordinary text give
// nothing.
func TestNoFalsePositives(t *testing.T) {
	texts := []string{
		"func (t *Tracker) httpRequest(c *tlsConn, m *httpstream.Message) {\n\tin := t.in\n}",
		`const apiKey = process.env.OPENAI_API_KEY; token = os.environ["GITHUB_TOKEN"]`,
		`password: ${DB_PASSWORD}`,
		"secret_key_base = SecretKeyBaseFromEnvironment",
		"The quick brown fox jumps over the lazy dog. Tokens are counted per request.",
		"/usr/lib/x86_64-linux-gnu/libssl.so.3 /home/user/.cache/go-build/ab/cdef0123",
		"commit 9fceb02d0ae598e95dc970b74767f19372d61af8\nsha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		b64wrapped(strings.Repeat("Just an ordinary README paragraph about building the project. ", 8)),
		base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 3, 250, 251, 252, 253, 254, 255, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 17, 18, 19}),
		"task-id: 0123456789abcdef0123456789abcdef",
		"sk-short",
		"AKIA lowercase akiaqx3example7zk2pl",
		"uuid 123e4567-e89b-12d3-a456-426614174000 version 2.1.197",
		`{"type":"tool_use","id":"toolu_01A09q90qw90lq917835lq9","name":"Bash"}`,
	}
	for _, s := range texts {
		if got := scanAll(s, nil); len(got) != 0 {
			t.Errorf("%.60q: %v", s, kinds(got))
		}
	}
}

func TestFingerprints(t *testing.T) {
	fp := NewFingerprints(0)
	token := "Zq8vN3tR6wY1bX4mK7pL0sD5"
	fp.AddFile("/home/u/.aws/credentials", []byte(awsCredentials))
	fp.AddFile("/w/.env", []byte("# dev settings\nINTERNAL_SESSION="+token+"\nDEBUG=true\nPROJECT_NAME=agentwatch-demo\n"))
	if fp.Len() != 3 {
		t.Fatalf("tokens %d, want the three random ones", fp.Len())
	}
	files := func(fs []Finding) []string {
		var out []string
		for _, f := range fs {
			if f.Kind == KindFileContent && !slices.Contains(out, f.File+"/"+f.Encoding) {
				out = append(out, f.File+"/"+f.Encoding)
			}
		}
		slices.Sort(out)
		return out
	}
	cases := []struct {
		text string
		want []string
	}{
		{"     3→INTERNAL_SESSION=" + token, []string{"/w/.env/plain"}},
		{b64wrapped("x=1\nINTERNAL_SESSION=" + token + "\n"), []string{"/w/.env/base64"}},
		{xxdP(token), []string{"/w/.env/hex"}},
		{b64wrapped(awsCredentials), []string{"/home/u/.aws/credentials/base64"}},
		{"PROJECT_NAME=agentwatch-demo DEBUG=true # dev settings", nil},
		{"Zq8vN3tR6wY1bX4mK7pL0sD", nil}, // one byte short
	}
	for _, c := range cases {
		if got := files(scanAll(c.text, fp)); !slices.Equal(got, c.want) {
			t.Errorf("%.60q: %v, want %v", c.text, got, c.want)
		}
	}
	small := NewFingerprints(1)
	small.AddFile("/a", []byte(awsCredentials))
	if small.Len() != 1 || small.Dropped == 0 {
		t.Errorf("bound: %d kept, %d dropped", small.Len(), small.Dropped)
	}
}

func TestRedact(t *testing.T) {
	fp := NewFingerprints(0)
	token := "Zq8vN3tR6wY1bX4mK7pL0sD5"
	fp.AddFile("/w/.env", []byte("S="+token))
	in := "keys: " + awsID + " and " + antKey + "\n" + b64wrapped(awsCredentials) + "hex " + hex.EncodeToString([]byte(ghToken)) +
		"\nenv " + token + "\n" + pemKey + "done"
	out := Redact(in, fp, "[REDACTED]")
	for _, s := range []string{awsID, awsSecret, antKey, ghToken, token, "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW",
		base64.StdEncoding.EncodeToString([]byte(awsCredentials))[:40], hex.EncodeToString([]byte(ghToken))[:40]} {
		if strings.Contains(out, s) {
			t.Errorf("%q left in %q", s, out)
		}
	}
	if !strings.HasPrefix(out, "keys: [REDACTED] and [REDACTED]\n") || !strings.HasSuffix(out, "done") {
		t.Errorf("redacted: %q", out)
	}
	if got := Redact("nothing here", fp, "X"); got != "nothing here" {
		t.Error(got)
	}
	if len(scanAll(out, fp)) != 0 {
		t.Errorf("redacted text still has secrets: %v", kinds(scanAll(out, fp)))
	}
}

func FuzzScan(f *testing.F) {
	f.Add(awsCredentials)
	f.Add(b64wrapped(awsCredentials))
	f.Add(xxdP(pemKey))
	f.Add("-----BEGIN PRIVATE KEY-----")
	f.Add("==\n==\n")
	fp := NewFingerprints(0)
	fp.AddFile("/a", []byte(awsCredentials))
	f.Fuzz(func(t *testing.T, s string) {
		scanAll(s, fp)
		r := Redact(s, fp, "[R]")
		if len(scanAll(r, fp)) > len(scanAll(s, fp))+1 {
			t.Errorf("redaction added findings")
		}
		fp2 := NewFingerprints(8)
		fp2.AddFile(s, []byte(s))
	})
}
