package redact

import (
	"strings"
	"testing"
)

func FuzzText(f *testing.F) {
	for _, s := range []string{
		"", "plain text", antKey, jwtTok, `{"api_key":"x"}`, `{"a":"{\"token\":\"v\\\"w\"}"}`,
		"https://u:p@h/", "https://u:", "-----BEGIN RSA PRIVATE KEY-----\nabc", "Bearer ", "password: ",
		"AKIA", "sk-", "eyJaaaaaaaaaaaaa.eyJ", `\"`, "token=\\\"", randomB62 + "==",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Text(s)
		if got != s && !strings.Contains(got, Marker) {
			t.Fatalf("changed without a marker: %q -> %q", s, got)
		}
		// A whole secret appended after any prefix must disappear entirely.
		const tail = "Nc6Hd1Jf5Kg0TsQqW"
		if strings.Contains(s, tail) {
			return
		}
		for _, planted := range []string{s + " " + ghpKey + " ", s + "\n" + ghpKey} {
			if out := Text(planted); strings.Contains(out, tail) {
				t.Fatalf("Text(%q) = %q leaks the planted token", planted, out)
			}
		}
	})
}

func FuzzArgs(f *testing.F) {
	f.Add("curl", "-H", "Authorization: Bearer x")
	f.Add("mysql", "-pabc", "db")
	f.Add("bash", "-c", "sshpass -p 'x y' ssh h; curl -u a:b u")
	f.Add("sudo", "-u", "x")
	f.Add("tool", "--token", "")
	f.Add("sh", "-c", `"'\`)
	f.Fuzz(func(t *testing.T, a, b, c string) {
		in := []string{a, b, c}
		got := Args(in)
		if len(got) != 3 {
			t.Fatalf("len %d", len(got))
		}
		if in[0] != a || in[1] != b || in[2] != c {
			t.Fatal("input modified")
		}
		for i := range got {
			if got[i] != in[i] && !strings.Contains(got[i], Marker) {
				t.Fatalf("arg %d changed without a marker: %q -> %q", i, in[i], got[i])
			}
		}
	})
}

func FuzzHeader(f *testing.F) {
	f.Add("Authorization", "Bearer x")
	f.Add("Cookie", "")
	f.Add("X", antKey)
	f.Fuzz(func(t *testing.T, name, value string) {
		got := Header(name, value)
		if IsSensitiveHeader(name) && value != "" && !strings.HasSuffix(got, Marker) {
			t.Fatalf("Header(%q, %q) = %q", name, value, got)
		}
	})
}
