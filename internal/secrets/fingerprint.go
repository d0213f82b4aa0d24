package secrets

import (
	"hash/maphash"
	"strings"
)

// Bounds of the fingerprints of one session.
const (
	DefaultMaxFingerprints = 4096
	maxTokensPerFile       = 512
	maxFiles               = 256
)

// Fingerprints are the keyed hashes of the secret-looking tokens of the
// sensitive files a session read: enough to recognise their content in a
// later request, nothing to recover it from. Not safe for concurrent use.
type Fingerprints struct {
	max   int
	m     map[uint64]uint16 // token hash → file index
	files []string
	// Dropped counts tokens not kept: the bound was reached.
	Dropped int
}

// NewFingerprints returns an empty set of at most max tokens (0: default).
func NewFingerprints(max int) *Fingerprints {
	if max <= 0 {
		max = DefaultMaxFingerprints
	}
	return &Fingerprints{max: max, m: map[uint64]uint16{}}
}

// Len is the number of tokens kept.
func (f *Fingerprints) Len() int {
	if f == nil {
		return 0
	}
	return len(f.m)
}

// AddFile fingerprints the content of a sensitive file: every token (split
// at blanks, quotes and the "=", ":" and "," of assignments) of at least 16
// bytes that looks random, so that key names and prose do not match.
// Lines of a PEM block are tokens of their own.
func (f *Fingerprints) AddFile(path string, content []byte) {
	idx := -1
	for i, p := range f.files {
		if p == path {
			idx = i
		}
	}
	if idx < 0 {
		if len(f.files) >= maxFiles {
			f.Dropped++
			return
		}
		f.files = append(f.files, path)
		idx = len(f.files) - 1
	}
	n := 0
	eachToken(string(content), true, func(tok string, _ int) bool {
		if n >= maxTokensPerFile {
			return false
		}
		h := tokenHash(tok)
		if _, ok := f.m[h]; !ok && len(f.m) >= f.max {
			f.Dropped++
			return false
		}
		f.m[h] = uint16(idx)
		n++
		return true
	})
}

func isSep(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '"', '\'', '=', ':', ',', ';', '`', '\\', '(', ')', '[', ']', '{', '}', '<', '>', '|':
		return true
	}
	return c >= 0x80 // line-number gutters ("  1→") and prose around ASCII secrets
}

// eachToken calls fn with the fingerprintable tokens of s until it returns
// false.
// Without check every long token is passed: the set only holds
// fingerprintable ones, so a lookup needs no entropy test.
func eachToken(s string, check bool, fn func(tok string, off int) bool) {
	i := 0
	for i < len(s) {
		for i < len(s) && isSep(s[i]) {
			i++
		}
		j := i
		for j < len(s) && !isSep(s[j]) {
			j++
		}
		if tok := s[i:j]; len(tok) >= minFingerprintToken && (!check || fingerprintable(tok)) {
			if !fn(tok, i) {
				return
			}
		}
		i = j
	}
}

// fingerprintable: a token with digits or symbols and some entropy, or a
// PEM body line; plain words and identifiers are left out.
func fingerprintable(tok string) bool {
	if strings.HasPrefix(tok, "-----") {
		return false
	}
	var alpha, digit, other bool
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			alpha = true
		case c >= '0' && c <= '9':
			digit = true
		case c == '_' || c == '-' || c == '.':
		default:
			other = true
		}
	}
	return alpha && (digit || other) && entropy(tok) >= 3.3
}

// match reports the tokens of s that are fingerprints of a file.
func (f *Fingerprints) match(s, enc string, fn func(Finding, int, int)) {
	eachToken(s, false, func(tok string, a int) bool {
		h := tokenHash(tok)
		if idx, ok := f.m[h]; ok {
			fn(Finding{Kind: KindFileContent, Encoding: enc, File: f.files[idx], Hash: h}, a, a+len(tok))
		}
		return true
	})
}

var tokenSeed = maphash.MakeSeed()

func tokenHash(tok string) uint64 { return maphash.String(tokenSeed, tok) }
