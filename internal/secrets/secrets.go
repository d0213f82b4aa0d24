// Package secrets finds credentials in text an agent sends to a model
// provider: key- and token-shaped strings, private key blocks, and the
// content of files the session read from sensitive paths, also when they
// are base64- or hex-encoded.
//
// Nothing found is kept in clear. A Finding says what kind of secret it
// was, how it was encoded and which file it came from; file contents are
// kept only as keyed 64-bit hashes of their secret-looking tokens (the key
// is random per collector run and never leaves it).
package secrets

import (
	"encoding/base64"
	"encoding/hex"
	"hash/maphash"
	"math"
	"regexp"
	"slices"
	"strings"
)

// Kinds of secrets (agent.secret.kinds values).
const (
	KindAWSAccessKeyID  = "aws_access_key_id"
	KindAWSSecretKey    = "aws_secret_access_key"
	KindGitHubToken     = "github_token"
	KindOpenAIKey       = "openai_api_key"
	KindAnthropicKey    = "anthropic_api_key"
	KindSlackToken      = "slack_token"
	KindGoogleAPIKey    = "google_api_key"
	KindJWT             = "jwt"
	KindPrivateKey      = "private_key"
	KindGenericSecret   = "generic_secret"
	KindFileContent     = "file_content"
	EncodingPlain       = "plain"
	EncodingBase64      = "base64"
	EncodingHex         = "hex"
	minFingerprintToken = 16
)

// Finding is one secret found. It never holds the secret.
type Finding struct {
	Kind     string
	Encoding string
	// File is the sensitive file whose content matched (KindFileContent).
	File string
	// Hash identifies the secret's value within this collector run
	// (keyed), so that a caller can tell a secret it already reported —
	// also when a second pattern (generic_secret) matches the same value.
	Hash uint64
}

type pattern struct {
	kind string
	// lit are literals one of which every match contains (lower-case
	// when fold): the regexp only runs on a window around each, from
	// back bytes before to fwd bytes after.
	lit       []string
	fold      bool
	back, fwd int
	re        *regexp.Regexp
	// group is the submatch that is the secret (0: the whole match).
	group int
	// entropy: the secret must look random (generic assignments).
	entropy bool
}

var patterns = []pattern{
	{kind: KindAWSAccessKeyID, lit: []string{"AKIA", "ASIA"}, re: regexp.MustCompile(`\b(?:AKIA|ASIA)[A-Z0-9]{16}\b`)},
	{kind: KindAWSSecretKey, lit: []string{"secret_access_key", "secretaccesskey"}, fold: true, back: 8, fwd: 128,
		re: regexp.MustCompile(`(?i)(?:aws_secret_access_key|secretaccesskey)["']?\s*[=:]\s*["']?([A-Za-z0-9/+]{40})\b`), group: 1},
	{kind: KindGitHubToken, lit: []string{"ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"}, re: regexp.MustCompile(`\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b`)},
	{kind: KindAnthropicKey, lit: []string{"sk-ant-"}, re: regexp.MustCompile(`\bsk-ant-[A-Za-z0-9_-]{20,}`)},
	{kind: KindOpenAIKey, lit: []string{"sk-"}, re: regexp.MustCompile(`\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}`)},
	{kind: KindSlackToken, lit: []string{"xox"}, re: regexp.MustCompile(`\bxox[abposre]-[A-Za-z0-9-]{10,}`)},
	{kind: KindGoogleAPIKey, lit: []string{"AIza"}, re: regexp.MustCompile(`\bAIza[0-9A-Za-z_-]{35}`)},
	{kind: KindJWT, lit: []string{"eyJ"}, fwd: 16 << 10, re: regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{10,}`)},
	{kind: KindPrivateKey, lit: []string{"PRIVATE KEY"}, back: 64,
		re: regexp.MustCompile(`-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----`)},
	// generic assignments: keyName = value, matched by hand (assignAt)
	{kind: KindGenericSecret, lit: []string{"key", "secret", "token", "passw", "pwd", "auth"}, fold: true, entropy: true},
}

var seed = maphash.MakeSeed()

func hashOf(s string) uint64 { return maphash.String(seed, s) }

// MaxScanBytes bounds the text one Scan looks at (decoded runs included).
const MaxScanBytes = 8 << 20

// Scanner scans texts; it carries the fingerprints of sensitive files
// (may be nil) and a budget. Not safe for concurrent use.
type Scanner struct {
	FP     *Fingerprints
	budget int
}

// Scan reports the secrets in s to fn: plain ones, and those inside base64
// or hex runs (decoded and scanned again, two levels deep).
func (sc *Scanner) Scan(s string, fn func(Finding)) {
	if sc.budget == 0 {
		sc.budget = MaxScanBytes
	}
	sc.scan(s, EncodingPlain, 0, func(f Finding, _, _ int) { fn(f) })
}

// Redact returns s with every secret Scan would find replaced by marker:
// a plain secret by itself, an encoded one with the whole run that
// carries it.
func Redact(s string, fp *Fingerprints, marker string) string {
	type span struct{ a, b int }
	var spans []span
	sc := Scanner{FP: fp, budget: MaxScanBytes}
	sc.scan(s, EncodingPlain, 0, func(_ Finding, a, b int) { spans = append(spans, span{a, b}) })
	if len(spans) == 0 {
		return s
	}
	slices.SortFunc(spans, func(x, y span) int { return x.a - y.a })
	var out strings.Builder
	out.Grow(len(s))
	at := 0
	for _, sp := range spans {
		if sp.a < at { // overlaps the span just replaced
			at = max(at, sp.b)
			continue
		}
		out.WriteString(s[at:sp.a])
		out.WriteString(marker)
		at = sp.b
	}
	out.WriteString(s[at:])
	return out.String()
}

// scan reports findings with the span of s that carries each: the secret
// itself, or the encoded run it was decoded from.
func (sc *Scanner) scan(s, enc string, depth int, fn func(Finding, int, int)) {
	if len(s) > sc.budget {
		s = s[:sc.budget]
	}
	sc.budget -= len(s)
	if len(s) < 8 {
		return
	}
	var lower string
	for i := range patterns {
		p := &patterns[i]
		hay := s
		if p.fold {
			if lower == "" {
				lower = lowerASCII(s)
			}
			hay = lower
		}
		if p.re == nil {
			eachHit(hay, p.lit, func(h int) {
				if a, b, ok := assignAt(s, h); ok && randomLooking(s[a:b]) {
					fn(Finding{Kind: p.kind, Encoding: enc, Hash: hashOf(s[a:b])}, a, b)
				}
			})
			continue
		}
		eachWindow(hay, p, func(off int, w string) {
			sc.matchWindow(s, p, off, w, enc, fn)
		})
	}
	if sc.FP != nil && sc.FP.Len() > 0 {
		sc.FP.match(s, enc, fn)
	}
	if depth >= 2 {
		return
	}
	inner := func(a, b int) func(Finding, int, int) {
		return func(f Finding, _, _ int) { fn(f, a, b) }
	}
	eachRun(s, isB64, 20, func(run string, a, b int) {
		if d, ok := decodeB64(run); ok {
			sc.scan(d, outer(enc, EncodingBase64), depth+1, inner(a, b))
		}
	})
	eachRun(s, isHex, 32, func(run string, a, b int) {
		if len(run)%2 != 0 {
			run = run[:len(run)-1]
		}
		if d, err := hex.DecodeString(run); err == nil && printable(d) {
			sc.scan(string(d), outer(enc, EncodingHex), depth+1, inner(a, b))
		}
	})
}

// outer names a secret by its outermost encoding: that is what was sent.
func outer(enc, inner string) string {
	if enc == EncodingPlain {
		return inner
	}
	return enc
}

// privateKeyBody identifies a key block by its first body line, so that
// the same key sent twice is one secret.
func privateKeyBody(s string) string {
	_, rest, _ := strings.Cut(s, "\n")
	line, _, _ := strings.Cut(rest, "\n")
	return strings.TrimSpace(line)
}

// privateKeyEnd is the end of the key block that starts before from: its
// END line, or the end of the text when it was cut.
func privateKeyEnd(s string, from int) int {
	k := strings.Index(s[from:], "-----END ")
	if k < 0 {
		return len(s)
	}
	e := from + k + len("-----END ")
	if j := strings.Index(s[e:], "-----"); j >= 0 && j < 40 {
		return e + j + 5
	}
	return len(s)
}

// eachWindow calls fn with the windows of hay around the literals of p,
// overlapping windows merged, so the regexp never runs over the whole text.
func eachWindow(hay string, p *pattern, fn func(off int, w string)) {
	fwd := p.fwd
	if fwd == 0 {
		fwd = 256
	}
	var hits []int
	eachHit(hay, p.lit, func(h int) { hits = append(hits, h) })
	if len(hits) == 0 {
		return
	}
	slices.Sort(hits)
	a, b := -1, -1
	for _, h := range hits {
		wa, wb := max(0, h-p.back-1), min(len(hay), h+fwd)
		if a >= 0 && wa <= b {
			b = max(b, wb)
			continue
		}
		if a >= 0 {
			fn(a, hay[a:b])
		}
		a, b = wa, wb
	}
	fn(a, hay[a:b])
}

// assignAt finds the value assigned to the name around the keyword hit
// at h in s ("db_password = 'v'", "token: v", "\"apiKey\": \"v\""): the
// name runs on over identifier bytes, then an optional quote, blanks, one
// of ":" "=", blanks, an optional quote and at least 16 value bytes.
func assignAt(s string, h int) (int, int, bool) {
	ident := func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
	}
	i := h
	for i < len(s) && ident(s[i]) {
		i++
	}
	if i < len(s) && (s[i] == '"' || s[i] == '\'') {
		i++
	}
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	if i >= len(s) || s[i] != '=' && s[i] != ':' {
		return 0, 0, false
	}
	i++
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	if i < len(s) && (s[i] == '"' || s[i] == '\'') {
		i++
	}
	a := i
	for i < len(s) && i-a < 512 && valueByte(s[i]) {
		i++
	}
	if i-a < 16 {
		return 0, 0, false
	}
	return a, i, true
}

func valueByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("/+_.~!@#$%^&*-", c) >= 0
}

// eachHit calls fn with the offsets of the literals in hay (at most 4096
// per literal).
func eachHit(hay string, lits []string, fn func(int)) {
	for _, l := range lits {
		n := 0
		for from := 0; from < len(hay) && n < 4096; n++ {
			k := strings.Index(hay[from:], l)
			if k < 0 {
				break
			}
			fn(from + k)
			from += k + len(l)
		}
	}
}

// matchWindow runs p over the window of s at off.
func (sc *Scanner) matchWindow(s string, p *pattern, off int, w, enc string, fn func(Finding, int, int)) {
	w = s[off : off+len(w)] // the original bytes, not the folded ones
	for _, m := range p.re.FindAllStringSubmatchIndex(w, 64) {
		a, b := off+m[2*p.group], off+m[2*p.group+1]
		v := s[a:b]
		if p.kind == KindOpenAIKey && strings.HasPrefix(v, "sk-ant-") {
			continue
		}
		if p.entropy && !randomLooking(v) {
			continue
		}
		if p.kind == KindPrivateKey {
			v = privateKeyBody(s[off+m[0]:])
			b = privateKeyEnd(s, b)
		}
		fn(Finding{Kind: p.kind, Encoding: enc, Hash: hashOf(v)}, a, b)
	}
}

func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}

func containsAny(s string, lits []string) bool {
	for _, l := range lits {
		if strings.Contains(s, l) {
			return true
		}
	}
	return false
}

// randomLooking tells a credential from a word, a path or an expression:
// at least three character classes, or two with high entropy, and no
// shape of code ("${VAR}", "os.environ[...]", "process.env.X").
func randomLooking(v string) bool {
	if strings.ContainsAny(v, "{}()[]<>") || strings.Contains(v, "$(") || strings.HasPrefix(v, "process.env") || strings.HasPrefix(v, "os.") {
		return false
	}
	var lower, upper, digit, other bool
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= 'a' && c <= 'z':
			lower = true
		case c >= 'A' && c <= 'Z':
			upper = true
		case c >= '0' && c <= '9':
			digit = true
		default:
			other = true
		}
	}
	classes := 0
	for _, b := range [...]bool{lower, upper, digit, other} {
		if b {
			classes++
		}
	}
	if !digit && !other {
		return false // CamelCaseWords
	}
	e := entropy(v)
	return classes >= 3 && e >= 3.5 || classes == 2 && digit && e >= 3.8
}

func entropy(s string) float64 {
	var n [256]int
	for i := 0; i < len(s); i++ {
		n[s[i]]++
	}
	h := 0.0
	l := float64(len(s))
	for _, c := range n {
		if c > 0 {
			p := float64(c) / l
			h -= p * math.Log2(p)
		}
	}
	return h
}

func isB64(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '-' || c == '_' || c == '='
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// eachRun calls fn with every run of class characters at least min long.
// Runs wrapped the way base64(1) and xxd -p wrap them — lines of one
// length, a newline between — are joined, so a file encoded whole is
// decoded whole.
func eachRun(s string, class func(byte) bool, minLen int, fn func(run string, start, end int)) {
	var b strings.Builder
	i := 0
	for i < len(s) {
		if !class(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && class(s[j]) {
			j++
		}
		first, start := j-i, i
		b.Reset()
		joined := false
		// wrapped continuation lines
		for first >= 40 && j-i == first {
			k := j
			if k < len(s) && s[k] == '\r' {
				k++
			}
			if k >= len(s) || s[k] != '\n' {
				break
			}
			k++
			m := k
			for m < len(s) && class(s[m]) {
				m++
			}
			if m == k || m-k > first {
				break
			}
			if !joined {
				b.WriteString(s[start:j])
				joined = true
			}
			b.WriteString(s[k:m])
			i, j = k, m
		}
		switch {
		case joined:
			fn(b.String(), start, j)
		case j-start >= minLen:
			fn(s[start:j], start, j)
		}
		i = j
	}
}

func decodeB64(run string) (string, bool) {
	run = strings.TrimRight(run, "=")
	if len(run)%4 == 1 {
		run = run[:len(run)-1]
	}
	enc := base64.RawStdEncoding
	if strings.ContainsAny(run, "-_") {
		if strings.ContainsAny(run, "+/") {
			return "", false
		}
		enc = base64.RawURLEncoding
	}
	b, err := enc.DecodeString(run)
	if err != nil || !printable(b) {
		return "", false
	}
	return string(b), true
}

// printable: decoded bytes that are text (most of them printable ASCII or
// whitespace); the base64 of a binary is not scanned further.
func printable(b []byte) bool {
	if len(b) < 8 {
		return false
	}
	bad := 0
	for _, c := range b {
		if c < 0x20 && c != '\n' && c != '\r' && c != '\t' || c == 0x7f {
			bad++
		}
	}
	return bad*20 <= len(b)
}
