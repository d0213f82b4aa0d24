// Package pathglob matches normalised absolute paths against the path globs of
// an agentwatch policy. The scoring processor uses it to score file opens and
// the receiver's enforcement will use it to decide what to deny, so both agree
// on one meaning of a pattern:
//
//   - "~" or "~/…" is rooted at the home directory of the user the caller
//     names at match time; without a known home such a glob matches nothing.
//   - "/…" is absolute.
//   - "**/…" and patterns with no leading "/" or "~" match at any depth, the
//     way a .gitignore line without a slash does ("*.pem" == "**/*.pem").
//   - "*" and "?" match within one segment, also a leading dot; "[a-z]" and
//     "\" escapes work as in path.Match.
//   - "**" as a whole segment matches zero or more segments.
//   - a trailing "/" means the directory and everything under it ("dir/**").
//
// Matching never allocates; patterns are split into segments once, and the
// common shapes (literal, "prefix*", "*suffix", "**/name") take fast paths.
package pathglob

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

type segKind uint8

const (
	segLiteral  segKind = iota
	segAny              // "*"
	segPrefix           // "abc*"
	segSuffix           // "*abc"
	segPreSuf           // "ab*cd"
	segStars            // several "*", no other meta characters
	segComplex          // "?", "[...]" or "\": delegated to path.Match
	segGlobstar         // "**"
)

type segment struct {
	kind  segKind
	lit   string   // literal text, or the pattern for segComplex
	pre   string   // segPrefix, segPreSuf, segStars
	suf   string   // segSuffix, segPreSuf, segStars
	parts []string // segStars: the literal parts between the inner stars
}

func (s *segment) match(name string) bool {
	switch s.kind {
	case segLiteral:
		return name == s.lit
	case segAny:
		return true
	case segPrefix:
		return strings.HasPrefix(name, s.pre)
	case segSuffix:
		return strings.HasSuffix(name, s.suf)
	case segPreSuf:
		return len(name) >= len(s.pre)+len(s.suf) &&
			strings.HasPrefix(name, s.pre) && strings.HasSuffix(name, s.suf)
	case segStars:
		if len(name) < len(s.pre)+len(s.suf) || !strings.HasPrefix(name, s.pre) || !strings.HasSuffix(name, s.suf) {
			return false
		}
		// Leftmost placement of each inner part is optimal when "*" is the
		// only wildcard, so a single forward scan decides the match.
		mid := name[len(s.pre) : len(name)-len(s.suf)]
		for _, p := range s.parts {
			i := strings.Index(mid, p)
			if i < 0 {
				return false
			}
			mid = mid[i+len(p):]
		}
		return true
	case segComplex:
		ok, _ := path.Match(s.lit, name)
		return ok
	}
	return false
}

// Glob is a compiled path pattern. It is immutable and safe for concurrent use.
type Glob struct {
	pattern string
	home    bool
	segs    []segment
	// baseLen is the number of leading literal segments: the directory (or
	// file) every match lies in or under.
	baseLen int
	// lastOnly: the pattern is "**/<one segment>", so only the basename counts.
	lastOnly bool
	// literal: every segment is literal; the match is a string comparison.
	literal string
}

// ErrEmpty is returned for an empty pattern.
var ErrEmpty = errors.New("empty pattern")

// Compile parses a pattern. Errors say what is wrong with it; callers add the
// field name.
func Compile(pattern string) (*Glob, error) {
	if strings.TrimSpace(pattern) == "" {
		return nil, ErrEmpty
	}
	if strings.IndexByte(pattern, 0) >= 0 {
		return nil, errors.New("pattern contains a NUL byte")
	}
	g := &Glob{pattern: pattern}
	rest := pattern
	switch {
	case rest == "~":
		g.home, rest = true, ""
	case strings.HasPrefix(rest, "~/"):
		g.home, rest = true, rest[2:]
	case strings.HasPrefix(rest, "~"):
		return nil, errors.New(`"~user" is not supported; use "~/" (the session user's home) or an absolute path`)
	case strings.HasPrefix(rest, "/"):
		rest = rest[1:]
	default:
		if !strings.HasPrefix(rest, "**") {
			rest = "**/" + rest
		}
	}
	if strings.HasSuffix(rest, "/") {
		rest += "**"
	}
	for _, raw := range strings.Split(rest, "/") {
		switch raw {
		case "", ".":
			continue // "a//b" and "a/./b" mean "a/b"
		case "..":
			return nil, errors.New(`".." is not allowed in a pattern; write the normalised path`)
		}
		seg, err := compileSegment(raw)
		if err != nil {
			return nil, err
		}
		// "**/**" is the same as "**", and collapsing keeps matching linear.
		if seg.kind == segGlobstar && len(g.segs) > 0 && g.segs[len(g.segs)-1].kind == segGlobstar {
			continue
		}
		g.segs = append(g.segs, seg)
	}
	for g.baseLen < len(g.segs) && g.segs[g.baseLen].kind == segLiteral {
		g.baseLen++
	}
	if g.baseLen == len(g.segs) {
		lits := make([]string, len(g.segs))
		for i := range g.segs {
			lits[i] = g.segs[i].lit
		}
		g.literal = strings.Join(lits, "/")
	}
	g.lastOnly = len(g.segs) == 2 && g.segs[0].kind == segGlobstar && g.segs[1].kind != segGlobstar
	return g, nil
}

// MustCompile is Compile for patterns known to be valid.
func MustCompile(pattern string) *Glob {
	g, err := Compile(pattern)
	if err != nil {
		panic(fmt.Sprintf("pathglob: %q: %v", pattern, err))
	}
	return g
}

func compileSegment(raw string) (segment, error) {
	if raw == "**" {
		return segment{kind: segGlobstar}, nil
	}
	if strings.Contains(raw, "**") {
		return segment{}, fmt.Errorf(`"**" must be a whole path segment, got %q`, raw)
	}
	if strings.ContainsAny(raw, `?[\`) {
		raw = shellNegation(raw)
		if _, err := path.Match(raw, ""); err != nil {
			return segment{}, fmt.Errorf("bad pattern segment %q: %w", raw, err)
		}
		return segment{kind: segComplex, lit: raw}, nil
	}
	if strings.ContainsRune(raw, ']') {
		return segment{}, fmt.Errorf("bad pattern segment %q: unmatched ']'", raw)
	}
	stars := strings.Count(raw, "*")
	switch {
	case stars == 0:
		return segment{kind: segLiteral, lit: raw}, nil
	case raw == "*":
		return segment{kind: segAny}, nil
	case stars == 1 && strings.HasSuffix(raw, "*"):
		return segment{kind: segPrefix, pre: raw[:len(raw)-1]}, nil
	case stars == 1 && strings.HasPrefix(raw, "*"):
		return segment{kind: segSuffix, suf: raw[1:]}, nil
	case stars == 1:
		i := strings.IndexByte(raw, '*')
		return segment{kind: segPreSuf, pre: raw[:i], suf: raw[i+1:]}, nil
	}
	parts := strings.Split(raw, "*")
	s := segment{kind: segStars, pre: parts[0], suf: parts[len(parts)-1]}
	for _, p := range parts[1 : len(parts)-1] {
		if p != "" {
			s.parts = append(s.parts, p)
		}
	}
	return s, nil
}

// shellNegation rewrites the shell's "[!…]" class negation to path.Match's
// "[^…]", so patterns copied from shell habits mean what they look like.
func shellNegation(raw string) string {
	if !strings.Contains(raw, "[!") {
		return raw
	}
	b := []byte(raw)
	for i := 0; i+1 < len(b); i++ {
		switch {
		case b[i] == '\\':
			i++ // skip the escaped byte
		case b[i] == '[' && b[i+1] == '!':
			b[i+1] = '^'
		}
	}
	return string(b)
}

// String returns the pattern as written.
func (g *Glob) String() string { return g.pattern }

// HasHome reports whether the pattern is rooted at "~".
func (g *Glob) HasHome() bool { return g.home }

// AnyDepth reports whether the pattern names a file wherever it is (it starts
// with "**"), as opposed to a location in the tree.
func (g *Glob) AnyDepth() bool { return len(g.segs) > 0 && g.segs[0].kind == segGlobstar }

// Match reports whether p, an absolute normalised path (see Clean), matches.
// home is the home directory "~" stands for; when it is empty a "~" pattern
// matches nothing.
func (g *Glob) Match(p, home string) bool {
	rel, ok := g.relative(p, home)
	if !ok {
		return false
	}
	if g.literal != "" || len(g.segs) == 0 {
		return rel == g.literal
	}
	if g.lastOnly {
		base := rel[strings.LastIndexByte(rel, '/')+1:]
		return rel != "" && g.segs[1].match(base)
	}
	return matchSegments(g.segs, rel)
}

// relative strips the root ("/" or the home) from p and returns the rest
// without a leading slash; "" stands for the root itself.
func (g *Glob) relative(p, home string) (string, bool) {
	if len(p) == 0 || p[0] != '/' {
		return "", false
	}
	if !g.home {
		return p[1:], true
	}
	if len(home) == 0 || home[0] != '/' {
		return "", false
	}
	if home == "/" {
		return p[1:], true
	}
	if !strings.HasPrefix(p, home) {
		return "", false
	}
	if len(p) == len(home) {
		return "", true
	}
	if p[len(home)] != '/' {
		return "", false
	}
	return p[len(home)+1:], true
}

// matchSegments matches the pattern segments against rel, a slash-separated
// path without a leading slash ("" has no segments). It is the classic
// wildcard algorithm at segment granularity: only the most recent "**" needs
// to backtrack, so the cost is O(len(segs) * segments in rel).
func matchSegments(segs []segment, rel string) bool {
	end := len(rel) + 1 // position past the last segment: the path is exhausted
	pos := 0
	if rel == "" {
		pos = end
	}
	pi := 0
	starPi, starPos := -1, 0
	for {
		if pi < len(segs) && segs[pi].kind == segGlobstar {
			starPi, starPos = pi, pos
			pi++
			continue
		}
		if pos >= end {
			for pi < len(segs) && segs[pi].kind == segGlobstar {
				pi++
			}
			return pi == len(segs)
		}
		if pi < len(segs) {
			name, next := nextSegment(rel, pos)
			if segs[pi].match(name) {
				pi, pos = pi+1, next
				continue
			}
		}
		if starPi < 0 {
			return false
		}
		_, starPos = nextSegment(rel, starPos)
		pi, pos = starPi+1, starPos
	}
}

func nextSegment(rel string, pos int) (string, int) {
	if i := strings.IndexByte(rel[pos:], '/'); i >= 0 {
		return rel[pos : pos+i], pos + i + 1
	}
	return rel[pos:], len(rel) + 1
}

// Covers reports whether a recursive operation on dir (tar, zip -r, cp -r)
// reaches files this pattern matches: dir matches the pattern, or dir is the
// pattern's literal base directory or one of its ancestors. Patterns that
// start with "**" have no base, so for them only a direct match counts.
func (g *Glob) Covers(dir, home string) bool {
	if g.Match(dir, home) {
		return true
	}
	if g.baseLen == 0 {
		return false
	}
	rel, ok := g.relative(dir, home)
	if !ok {
		// dir may still be an ancestor of the home directory ("/home" for
		// "~/.ssh/*"), which holds every file under that home.
		if !g.home || home == "" || dir == "" || dir[0] != '/' {
			return false
		}
		return dir == "/" || (strings.HasPrefix(home, dir) && home[len(dir)] == '/')
	}
	if rel == "" {
		return true
	}
	// rel must be a prefix, segment by segment, of the literal base.
	pos := 0
	for i := 0; i < g.baseLen; i++ {
		name, next := nextSegment(rel, pos)
		if name != g.segs[i].lit {
			return false
		}
		if next > len(rel) {
			return true
		}
		pos = next
	}
	return false
}

// Clean returns p as an absolute normalised path ("." and ".." resolved,
// repeated and trailing slashes removed), or "" when p is not absolute. It
// allocates only when p is not already clean.
func Clean(p string) string {
	if len(p) == 0 || p[0] != '/' {
		return ""
	}
	if isClean(p) {
		return p
	}
	return path.Clean(p)
}

func isClean(p string) bool {
	if len(p) > 1 && p[len(p)-1] == '/' {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] != '/' {
			continue
		}
		// Look at the segment that starts after this slash.
		j := i + 1
		if j < len(p) && p[j] == '/' {
			return false
		}
		if j < len(p) && p[j] == '.' {
			if j+1 == len(p) || p[j+1] == '/' {
				return false
			}
			if p[j+1] == '.' && (j+2 == len(p) || p[j+2] == '/') {
				return false
			}
		}
	}
	return true
}

// Resolve turns a path as a program received it (relative to cwd, or starting
// with "~" when no shell expanded it) into an absolute normalised path, or ""
// when it cannot be placed.
func Resolve(p, cwd, home string) string {
	switch {
	case p == "":
		return ""
	case p[0] == '/':
		return Clean(p)
	case p == "~" || strings.HasPrefix(p, "~/"):
		if home == "" || home[0] != '/' {
			return ""
		}
		return path.Clean(home + "/" + p[1:])
	case cwd == "" || cwd[0] != '/':
		return ""
	}
	return path.Clean(cwd + "/" + p)
}

// Within reports whether p is dir itself or lies under it. Both must be clean.
func Within(p, dir string) bool {
	if dir == "/" {
		return len(p) > 0 && p[0] == '/'
	}
	return strings.HasPrefix(p, dir) && (len(p) == len(dir) || p[len(dir)] == '/')
}
