// Package redact removes credentials from what agentwatch ships: command
// lines, HTTP headers and free text or JSON bodies seen in TLS plaintext.
//
// Every function returns its input unchanged (same string, no allocation)
// when nothing looks secret, because that is by far the common case and the
// receiver calls them on every event. When something does, the whole secret
// is replaced by Marker: the rules prefer hiding a little too much over
// leaving part of a credential behind, and a match that runs into the end of
// a (possibly truncated) capture is redacted to the end.
//
// What counts as a secret:
//
//   - values under secret-looking names (IsSecretName): key=value,
//     "key": "value", key: value (also inside JSON-encoded JSON, \"key\":\"v\");
//   - URL user information: scheme://user:PASSWORD@host, and a user part of
//     20 bytes or more with no password (a token used as user name);
//   - tokens with a well-known prefix: sk-ant-, sk-, sk_live_, ghp_, gho_,
//     ghu_, ghs_, ghr_, github_pat_, glpat-, xox[abeprs]-, xai-, AIza,
//     ya29., GOCSPX-, npm_, hf_, gsk_, pypi-AgE, AGE-SECRET-KEY-1,
//     AKIA/ASIA + 16, JWTs (eyJ….eyJ….…);
//   - "Bearer <token>";
//   - PEM private key blocks (the base64 body; the BEGIN/END lines stay);
//   - high-entropy strings: a run of [A-Za-z0-9+/_-] (plus '=' padding) of at
//     least 32 bytes, after dropping a short lower-case type prefix such as
//     "msg_" or "chatcmpl-", that mixes upper case, lower case and digits,
//     has at most 10% of '+/_-' separators (paths and kebab-case names have
//     more), has a Shannon entropy of at least 4.0 bits per byte (random
//     base64 of 32 bytes scores 4.56 on average) and is not word-like: at
//     most 70% of its bytes lie in lower-case runs of 3+ (with a capital
//     before them) or capital runs of 5+, which CamelCase identifiers and
//     paths exceed (≥ 0.74 measured) and random base62/base64 reaches in
//     fewer than 0.1% of 32-byte strings. Pure hex (commit hashes,
//     digests, UUIDs) is never redacted by this rule; neither are SRI
//     hashes (sha512-…).
package redact

import (
	"math"
	"strings"
)

// Marker replaces every redacted value.
const Marker = "[REDACTED]"

// Byte classes.
const (
	cAtom   uint8 = 1 << iota // [A-Za-z0-9+/_-]: bytes of a token-ish run
	cAlnum                    // [A-Za-z0-9]
	cTok                      // [A-Za-z0-9_-]: body of most prefixed tokens
	cWord                     // [A-Za-z0-9_]
	cUpDig                    // [A-Z0-9]
	cPrefix                   // first byte of a known token prefix
	cSep                      // [+/_-]
	cB64URL                   // [A-Za-z0-9_.~+/=-]: token68 of a Bearer credential
)

var class [256]uint8

// prefixIndex lists, per first byte, the entries of prefixes starting with it.
var prefixIndex [256][]uint8

func init() {
	for c := 0; c < 256; c++ {
		b := byte(c)
		alnum := isUpper(b) || isLower(b) || isDigit(b)
		if alnum {
			class[c] |= cAlnum | cAtom | cTok | cWord | cB64URL
		}
		if isUpper(b) || isDigit(b) {
			class[c] |= cUpDig
		}
		switch b {
		case '+', '/':
			class[c] |= cAtom | cSep | cB64URL
		case '_':
			class[c] |= cAtom | cSep | cTok | cWord | cB64URL
		case '-':
			class[c] |= cAtom | cSep | cTok | cB64URL
		case '.', '~', '=':
			class[c] |= cB64URL
		}
	}
	for i := range prefixes {
		c := prefixes[i].p[0]
		class[c] |= cPrefix
		prefixIndex[c] = append(prefixIndex[c], uint8(i))
	}
	class['e'] |= cPrefix // JWT
	class['A'] |= cPrefix // AKIA, ASIA
}

// Text returns s with secrets replaced by Marker; see the package comment for
// what is recognised.
func Text(s string) string {
	o := output{s: s}
	scanText(&o, s)
	return o.result()
}

// output accumulates s with the cut ranges replaced; nothing is allocated
// until the first cut.
type output struct {
	s    string
	b    strings.Builder
	last int
	cuts int
}

func (o *output) cut(start, end int) {
	if start < o.last {
		start = o.last
	}
	if end <= start {
		return
	}
	if o.cuts == 0 {
		o.b.Grow(len(o.s) + len(Marker))
	}
	o.cuts++
	o.b.WriteString(o.s[o.last:start])
	o.b.WriteString(Marker)
	o.last = end
}

func (o *output) result() string {
	if o.cuts == 0 {
		return o.s
	}
	o.b.WriteString(o.s[o.last:])
	return o.b.String()
}

func scanText(o *output, s string) {
	n := len(s)
	for i := 0; i < n; {
		c := s[i]
		if class[c]&cAtom == 0 {
			if c == ':' && i+2 < n && s[i+1] == '/' && s[i+2] == '/' {
				if e := userinfo(o, s, i+3); e > 0 {
					i = e
					continue
				}
			}
			i++
			continue
		}
		j := i + 1
		for j < n && class[s[j]]&cAtom != 0 {
			j++
		}
		if e := atom(o, s, i, j); e > 0 {
			i = e
			continue
		}
		i = j
	}
}

// atom examines the token-ish run s[i:j] and what directly follows it. It
// returns the position to continue from when it redacted something, else 0.
func atom(o *output, s string, i, j int) int {
	if s[i] == '-' && strings.HasPrefix(s[i:], "-----BEGIN ") {
		if e := pem(o, s, i); e > 0 {
			return e
		}
	}
	for k := i; k < j; k++ {
		if class[s[k]]&cPrefix == 0 || (k > 0 && class[s[k-1]]&cAlnum != 0) {
			continue
		}
		if e := prefixed(s, k); e > k {
			o.cut(k, e)
			return e
		}
		if s[k] == 'e' {
			// A failed JWT match scanned the whole [A-Za-z0-9_-] run; every
			// later start inside it fails the same way, so skip it rather
			// than rescan (quadratic on "eyJ-eyJ-…").
			for k+1 < j && class[s[k+1]]&cTok != 0 {
				k++
			}
		}
	}
	if e := keyValue(o, s, i, j); e > 0 {
		return e
	}
	if j-i == 6 && eqLower(s[i:j], "bearer") {
		if e := bearer(o, s, j); e > 0 {
			return e
		}
	}
	end := j
	for end < len(s) && s[end] == '=' && end-j < 2 {
		end++
	}
	if end-i >= minEntropyLen && highEntropy(s[i:end]) {
		o.cut(i, end)
		return end
	}
	return 0
}

type tokenPrefix struct {
	p    string
	body uint8 // class of the bytes after the prefix
	min  int   // shortest body that counts as a token
	// minAtEnd is the shortest body that counts when the token runs into
	// the end of the input: a capture truncated inside a key must not leak
	// the part that was captured.
	minAtEnd int
}

// Longer prefixes sharing a first byte come first.
var prefixes = [...]tokenPrefix{
	{"sk-ant-", cTok, 1, 1},
	{"sk_live_", cWord, 10, 1},
	{"sk_test_", cWord, 10, 1},
	{"rk_live_", cWord, 10, 1},
	{"rk_test_", cWord, 10, 1},
	{"sk-", cTok, 20, 8},
	{"github_pat_", cWord, 20, 1},
	{"ghp_", cWord, 20, 1},
	{"gho_", cWord, 20, 1},
	{"ghu_", cWord, 20, 1},
	{"ghs_", cWord, 20, 1},
	{"ghr_", cWord, 20, 1},
	{"glpat-", cTok, 20, 1},
	{"gsk_", cWord, 30, 8},
	{"xoxb-", cTok, 10, 1},
	{"xoxp-", cTok, 10, 1},
	{"xoxa-", cTok, 10, 1},
	{"xoxe-", cTok, 10, 1},
	{"xoxr-", cTok, 10, 1},
	{"xoxs-", cTok, 10, 1},
	{"xai-", cTok, 20, 8},
	{"AIza", cTok, 30, 8},
	{"AGE-SECRET-KEY-1", cUpDig, 20, 1},
	{"ya29.", cB64URL, 20, 8},
	{"GOCSPX-", cTok, 10, 1},
	{"npm_", cAlnum, 30, 8},
	{"hf_", cAlnum, 30, 8},
	{"pypi-AgE", cTok, 30, 1},
}

// prefixed returns the end of a prefixed token starting at k, or k.
func prefixed(s string, k int) int {
	switch s[k] {
	case 'e':
		return jwt(s, k)
	case 'A':
		if strings.HasPrefix(s[k:], "AKIA") || strings.HasPrefix(s[k:], "ASIA") {
			e := k + 4
			for e < len(s) && class[s[e]]&cUpDig != 0 {
				e++
			}
			body := e - k - 4
			if (body == 16 && (e == len(s) || class[s[e]]&cAlnum == 0)) ||
				(e == len(s) && body >= 4 && body < 16) {
				return e
			}
			return k
		}
	}
	for _, idx := range prefixIndex[s[k]] {
		p := &prefixes[idx]
		if !strings.HasPrefix(s[k:], p.p) {
			continue
		}
		e := k + len(p.p)
		for e < len(s) && class[s[e]]&p.body != 0 {
			e++
		}
		body := e - k - len(p.p)
		if body >= p.min || (e == len(s) && body >= p.minAtEnd) {
			return e
		}
		return k
	}
	return k
}

// jwt matches header.payload[.signature[.…]] where both of the first two
// parts are base64url JSON objects ("eyJ" is base64 of `{"`).
func jwt(s string, k int) int {
	if !strings.HasPrefix(s[k:], "eyJ") {
		return k
	}
	e := k + 3
	for e < len(s) && class[s[e]]&cTok != 0 {
		e++
	}
	if e-k < 10 || !strings.HasPrefix(s[e:], ".eyJ") {
		return k
	}
	// Up to five parts (JWE); the signature may be empty (alg "none").
	for parts := 1; parts < 5 && e < len(s) && s[e] == '.'; parts++ {
		e++
		for e < len(s) && class[s[e]]&cTok != 0 {
			e++
		}
	}
	return e
}

// keyValue redacts the value after a secret-named key s[i:j] followed by '='
// or ':' (with the quoting of env assignments, query strings, YAML, headers,
// JSON and JSON encoded inside a JSON string).
func keyValue(o *output, s string, i, j int) int {
	n := len(s)
	p := j
	if p < n && s[p] == '\\' && p+1 < n && s[p+1] == '"' {
		p += 2
	} else if p < n && (s[p] == '"' || s[p] == '\'') {
		p++
	}
	for p < n && (s[p] == ' ' || s[p] == '\t') {
		p++
	}
	if p >= n || (s[p] != '=' && s[p] != ':') {
		return 0
	}
	sep := s[p]
	p++
	if sep == ':' && p < n && s[p] == '/' {
		return 0 // scheme://, not a key
	}
	if p < n && s[p] == '=' {
		p++ // httpie's name==value and name:=json
	}
	if !secretName(s[i:j], modeKey) {
		return 0
	}
	for p < n && (s[p] == ' ' || s[p] == '\t') {
		p++
	}
	if p >= n {
		return 0
	}
	name := s[i:j]
	keepScheme := containsLower(name, "authorization")
	wholeLine := keepScheme || containsLower(name, "cookie")
	switch {
	case s[p] == '"':
		e := quoteEnd(s, p+1)
		return cutValue(o, s, p+1, e, keepScheme)
	case s[p] == '\\' && p+1 < n && s[p+1] == '"':
		e := nestedQuoteEnd(s, p+2)
		return cutValue(o, s, p+2, e, keepScheme)
	case s[p] == '\'':
		e := strings.IndexByte(s[p+1:], '\'')
		if e < 0 {
			e = n
		} else {
			e += p + 1
		}
		return cutValue(o, s, p+1, e, keepScheme)
	case s[p] == '{' || s[p] == '[':
		return 0
	}
	e := p
	if wholeLine {
		for e < n && s[e] != '\r' && s[e] != '\n' && s[e] != '"' && s[e] != '\\' {
			e++
		}
	} else {
		for e < n && !bareValueEnd(s[e]) {
			e++
		}
	}
	if sep == ':' {
		switch v := s[p:e]; v {
		case "null", "true", "false":
			return 0
		}
	}
	return cutValue(o, s, p, e, keepScheme)
}

func bareValueEnd(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', '&', ';', ',', '"', '\'', '`', ')', '}', ']', '\\', '<', '>':
		return true
	}
	return false
}

// cutValue redacts s[start:end], keeping a leading auth-scheme word when
// keepScheme is set ("Bearer [REDACTED]"). It returns the position after
// the value, or 0 when the value is empty.
func cutValue(o *output, s string, start, end int, keepScheme bool) int {
	if end <= start {
		return 0
	}
	if keepScheme {
		start = afterScheme(s, start, end)
	}
	o.cut(start, end)
	return end
}

// afterScheme returns where the credentials start in an Authorization
// value: after "Scheme " when the value has that shape, else start.
func afterScheme(s string, start, end int) int {
	k := start
	for k < end && (class[s[k]]&cAlnum != 0 || s[k] == '-' || s[k] == '_' || s[k] == '.') {
		k++
	}
	if k == start || k >= end || s[k] != ' ' {
		return start
	}
	for k < end && s[k] == ' ' {
		k++
	}
	if k == end {
		return start
	}
	return k
}

// quoteEnd returns the index of the closing '"' of a JSON string whose
// content starts at k, or len(s) when the string is cut short.
func quoteEnd(s string, k int) int {
	for ; k < len(s); k++ {
		switch s[k] {
		case '\\':
			k++
		case '"':
			return k
		}
	}
	return len(s)
}

// nestedQuoteEnd is quoteEnd for a string inside a JSON-encoded string,
// delimited by \". Inside it an escaped quote appears as \\\" (3, or 4n+3,
// backslashes) and the closing quote as \" (4n+1). It returns the index of
// the backslashes before the closing quote.
func nestedQuoteEnd(s string, k int) int {
	for k < len(s) {
		switch s[k] {
		case '"':
			return k // the outer string ended: so did this one
		case '\\':
			r := k
			for r < len(s) && s[r] == '\\' {
				r++
			}
			if r < len(s) && s[r] == '"' {
				if (r-k)%4 == 1 {
					return k
				}
				r++
			}
			k = r
		default:
			k++
		}
	}
	return len(s)
}

// bearer redacts the credential after "Bearer " at j.
func bearer(o *output, s string, j int) int {
	if j >= len(s) || s[j] != ' ' {
		return 0
	}
	p := j
	for p < len(s) && s[p] == ' ' {
		p++
	}
	e := p
	for e < len(s) && class[s[e]]&cB64URL != 0 {
		e++
	}
	if e-p >= 8 || (e == len(s) && e > p) {
		o.cut(p, e)
		return e
	}
	return 0
}

// pem redacts the body of a PEM private key block starting at i.
func pem(o *output, s string, i int) int {
	rest := s[i+len("-----BEGIN "):]
	head := rest[:min(len(rest), 80)]
	end := strings.Index(head, "-----")
	if end < 0 || !strings.Contains(head[:end], "PRIVATE KEY") {
		return 0
	}
	body := i + len("-----BEGIN ") + end + len("-----")
	stop := strings.Index(s[body:], "-----END")
	if stop < 0 {
		stop = len(s)
	} else {
		stop += body
	}
	if stop == body {
		return 0
	}
	o.cut(body, stop)
	return stop
}

// userinfo redacts the password of scheme://user:password@host; the
// authority starts at k. It returns where to continue, or 0.
func userinfo(o *output, s string, k int) int {
	e := k
	at := -1
authority:
	for ; e < len(s); e++ {
		switch s[e] {
		case '/', '?', '#', ' ', '\t', '\r', '\n', '"', '\'', '<', '>', '\\', '`':
			break authority
		case '@':
			at = e
		}
	}
	if at < 0 {
		// A capture cut inside the password leaves no '@': redact what
		// follows the ':' unless it is a port number.
		if e == len(s) {
			if c := strings.IndexByte(s[k:e], ':'); c >= 0 && !allDigits(s[k+c+1:e]) {
				o.cut(k+c+1, e)
				return e
			}
		}
		return 0
	}
	if c := strings.IndexByte(s[k:at], ':'); c >= 0 {
		if k+c+1 < at {
			o.cut(k+c+1, at)
			return at
		}
		return 0
	}
	if at-k >= 20 {
		o.cut(k, at)
		return at
	}
	return 0
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

const (
	minEntropyLen = 32
	minEntropy    = 4.0
)

// highEntropy applies the high-entropy rule of the package comment to the
// run a.
func highEntropy(a string) bool {
	for _, h := range [...]string{"sha1-", "sha256-", "sha384-", "sha512-"} {
		if strings.HasPrefix(a, h) {
			return false
		}
	}
	// Drop a type prefix like "msg_", "toolu_", "chatcmpl-", "call_":
	// IDs are a short random part behind one and are not secrets.
	for k := 0; k < len(a) && k <= 12; k++ {
		c := a[k]
		if c == '_' || c == '-' {
			if k >= 2 {
				a = a[k+1:]
			}
			break
		}
		if !isLower(c) && !(k > 0 && isDigit(c)) {
			break
		}
	}
	if len(a) < minEntropyLen {
		return false
	}
	var counts [256]uint32
	var upper, lower, digit, sep int
	for i := 0; i < len(a); i++ {
		c := a[i]
		counts[c]++
		switch {
		case isUpper(c):
			upper++
		case isLower(c):
			lower++
		case isDigit(c):
			digit++
		case c != '=':
			sep++
		}
	}
	if upper == 0 || lower == 0 || digit == 0 || sep*10 > len(a) {
		return false
	}
	if wordLike(a) {
		return false
	}
	n := float64(len(a))
	h := 0.0
	for _, c := range counts {
		if c != 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h >= minEntropy
}

// wordLike reports whether at least 70% of a lies in word-shaped runs
// ([A-Z]?[a-z]{3,} or [A-Z]{5,}, the last capital of which may start the
// next word); measured on random base62/base64 this is exceeded by fewer
// than 0.1% of 32-byte strings and by no identifier we tried.
func wordLike(a string) bool {
	in := 0
	for i := 0; i < len(a); {
		j := i
		for j < len(a) && isLower(a[j]) {
			j++
		}
		if j-i >= 3 {
			in += j - i
			if i > 0 && isUpper(a[i-1]) {
				in++
			}
			i = j
			continue
		}
		j = i
		for j < len(a) && isUpper(a[j]) {
			j++
		}
		if j-i >= 5 {
			in += j - i - 1
			i = j
			continue
		}
		if j == i {
			j++
		}
		i = j
	}
	return in*10 >= len(a)*7
}
