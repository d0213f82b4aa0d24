package redact

import "strings"

// Args returns argv with credentials redacted. It returns argv itself, with
// no allocation, when nothing was redacted, and a new slice otherwise (argv
// is never modified).
//
// Beyond Text, which runs on every argument, Args understands flags:
//
//   - a flag whose name is a secret name (IsSecretName, in a form that
//     ignores boolean flags such as --no-password, --password-stdin or
//     --with-token) hides its value: --token=V, --token V, and Go-style
//     -token V for unknown commands. A following argument that starts with
//     "--" is taken as the next flag, not as the value;
//   - curl: -u/--user and -U/--proxy-user user:PASSWORD (a colon-less value
//     of 16+ bytes is taken as a token), -H/--header and --proxy-header via
//     Header, -b/--cookie when the value has a '=' (else it is a file),
//     -E/--cert cert:PASSWORD, --oauth2-bearer; short clusters such as
//     -sSu are walked like curl does;
//   - wget --header; httpie/xh -a/--auth and Name:value request items;
//   - mysql family: -pPASSWORD (a bare -p prompts, and "-p db" names a
//     database, so neither is touched; for the same reason --password
//     without '=' does not hide the next argument);
//   - sshpass -p, zip/unzip -P, 7z -pPASSWORD, docker/podman/nerdctl/helm
//     login -p, openssl -pass/-passin/-passout pass:PASSWORD and -k;
//   - wrappers (sudo, env, nohup, timeout, …) are skipped to find the
//     command; the scripts of shells (sh/bash/zsh… arguments with
//     whitespace, any argument after -c, ssh remote commands) are split into
//     words and given the same treatment, to a nesting depth of 3.
//
// Deliberately not handled: positional secrets whose meaning depends on a
// subcommand grammar (aws configure set KEY VALUE, htpasswd -b), and -p for
// commands not listed above (docker run -p is a port, ssh -p too).
func Args(argv []string) []string {
	var out []string
	var st argState
	for i, a := range argv {
		r := st.process(a, 0)
		if r != a {
			if out == nil {
				out = make([]string, len(argv))
				copy(out, argv)
			}
			out[i] = r
		}
	}
	if out == nil {
		return argv
	}
	return out
}

const maxScriptDepth = 3

type cmdKind uint8

const (
	cmdUnknown cmdKind = iota
	cmdShell
	cmdSSH
	cmdMySQL
	cmdSSHPass
	cmdCurl
	cmdWget
	cmdHTTPie
	cmdLogin // docker, podman, nerdctl, helm, buildah, skopeo: -p after "login"
	cmdOpenSSL
	cmdZip
	cmd7z
)

type pendKind uint8

const (
	pendNone pendKind = iota
	pendSecret
	pendUserPass
	pendCertPass
	pendHeader
	pendCookie
	pendOpenSSLPass
)

// argState carries what one word means for the next one within one command.
type argState struct {
	haveCmd      bool
	afterWrapper bool
	wrapperOpts  string // the current wrapper's short options that take a value
	skipNext     bool   // the next word is a wrapper option's value
	cmd          cmdKind
	pend         pendKind
	login        bool // a "login" subcommand was seen
	afterDashC   bool // the previous word was -c (or a cluster ending in c)
}

// process redacts one argument: flag-level rules, then scripts, then Text.
func (st *argState) process(w string, depth int) string {
	script := st.cmd == cmdShell || st.cmd == cmdSSH || st.afterDashC
	r := st.word(w)
	if script && depth < maxScriptDepth && r == w && hasSpace(w) {
		r = shellLine(w, depth+1)
	}
	return Text(r)
}

func (st *argState) word(w string) string {
	r := st.flagWord(w)
	st.afterDashC = w == "-c" || (len(w) > 1 && len(w) <= 4 && w[0] == '-' && w[1] != '-' && w[len(w)-1] == 'c' && allLetters(w[1:]))
	return r
}

func (st *argState) flagWord(w string) string {
	if !st.haveCmd {
		st.findCmd(w)
		return w
	}
	if p := st.pend; p != pendNone {
		st.pend = pendNone
		if !strings.HasPrefix(w, "--") {
			return applyPending(p, w)
		}
	}
	if len(w) > 1 && w[0] == '-' {
		if w[1] == '-' {
			return st.longFlag(w)
		}
		return st.shortFlag(w)
	}
	return st.positional(w)
}

func (st *argState) findCmd(w string) {
	if st.skipNext {
		st.skipNext = false
		return
	}
	if w == "" || isAssignment(w) {
		return
	}
	if st.afterWrapper {
		switch {
		case len(w) == 2 && w[0] == '-' && strings.IndexByte(st.wrapperOpts, w[1]) >= 0:
			st.skipNext = true
			return
		case strings.HasPrefix(w, "--") && strings.IndexByte(w, '=') < 0:
			switch w[2:] {
			case "user", "group", "chdir", "unset", "signal", "kill-after", "adjustment",
				"close-from", "prompt", "role", "type", "host", "other-user", "split-string":
				st.skipNext = true
			}
			return
		case w[0] == '-' || isDigit(w[0]):
			return // other wrapper options, timeout's duration, nice levels
		}
	}
	base := w
	if k := strings.LastIndexByte(base, '/'); k >= 0 {
		base = base[k+1:]
	}
	if opts, ok := wrapperValueOpts(base); ok {
		st.afterWrapper = true
		st.wrapperOpts = opts
		return
	}
	st.haveCmd = true
	st.cmd = classify(base)
}

// wrapperValueOpts tells whether base runs another command given as its
// arguments, and which of its one-letter options take a value.
func wrapperValueOpts(base string) (string, bool) {
	switch base {
	case "sudo":
		return "ugCDprtUTRh", true
	case "doas":
		return "uCa", true
	case "env":
		return "uCS", true
	case "timeout":
		return "sk", true
	case "nice":
		return "n", true
	case "ionice":
		return "cnpPu", true
	case "xargs":
		return "InLdPsEa", true
	case "stdbuf":
		return "ioe", true
	case "exec", "nohup", "time", "command", "builtin", "setsid", "chrt", "taskset":
		return "", true
	}
	return "", false
}

func classify(base string) cmdKind {
	switch base {
	case "sh", "bash", "zsh", "dash", "ksh", "mksh", "ash", "fish", "busybox":
		return cmdShell
	case "ssh":
		return cmdSSH
	case "mysql", "mysqldump", "mysqladmin", "mysqlimport", "mysqlshow",
		"mysqlcheck", "mysqlslap", "mysqlpump", "mariadb", "mariadb-dump",
		"mariadb-admin", "mariadb-import", "mariadb-show", "mariadb-check":
		return cmdMySQL
	case "sshpass":
		return cmdSSHPass
	case "curl":
		return cmdCurl
	case "wget", "wget2":
		return cmdWget
	case "http", "https", "xh", "xhs":
		return cmdHTTPie
	case "docker", "podman", "nerdctl", "helm", "buildah", "skopeo", "oras":
		return cmdLogin
	case "openssl":
		return cmdOpenSSL
	case "zip", "unzip", "zipcloak":
		return cmdZip
	case "7z", "7za", "7zr", "7zz":
		return cmd7z
	}
	return cmdUnknown
}

func (st *argState) longFlag(w string) string {
	name, val, eq := w[2:], "", false
	if k := strings.IndexByte(name, '='); k >= 0 {
		name, val, eq = name[:k], name[k+1:], true
	}
	kind := pendNone
	switch st.cmd {
	case cmdCurl:
		switch name {
		case "user", "proxy-user":
			kind = pendUserPass
		case "header", "proxy-header":
			kind = pendHeader
		case "cookie":
			kind = pendCookie
		case "cert", "proxy-cert":
			kind = pendCertPass
		case "oauth2-bearer":
			kind = pendSecret
		}
	case cmdWget:
		if name == "header" {
			kind = pendHeader
		}
	case cmdHTTPie:
		if name == "auth" {
			kind = pendUserPass
		}
	case cmdMySQL:
		if name == "password" && !eq {
			return w
		}
	}
	if kind == pendNone && secretName(name, modeFlag) {
		kind = pendSecret
	}
	if kind == pendNone {
		return w
	}
	if !eq {
		st.pend = kind
		return w
	}
	return replaceTail(w, len(w)-len(val), applyPending(kind, val))
}

func (st *argState) shortFlag(w string) string {
	switch st.cmd {
	case cmdMySQL, cmd7z:
		if w[1] == 'p' && len(w) > 2 {
			return w[:2] + Marker
		}
	case cmdSSHPass:
		return st.valueFlag(w, 'p', pendSecret)
	case cmdZip:
		return st.valueFlag(w, 'P', pendSecret)
	case cmdLogin:
		if st.login {
			return st.valueFlag(w, 'p', pendSecret)
		}
	case cmdHTTPie:
		return st.valueFlag(w, 'a', pendUserPass)
	case cmdOpenSSL:
		switch w[1:] {
		case "pass", "passin", "passout", "password":
			st.pend = pendOpenSSLPass
		case "k":
			st.pend = pendSecret
		}
	case cmdCurl:
		return st.curlCluster(w)
	case cmdUnknown:
		// Go's flag package and others take single-dash long flags.
		name, val, eq := w[1:], "", false
		if k := strings.IndexByte(name, '='); k >= 0 {
			name, val, eq = name[:k], name[k+1:], true
		}
		if len(name) >= 4 && secretName(name, modeFlag) {
			if !eq {
				st.pend = pendSecret
				return w
			}
			return replaceTail(w, len(w)-len(val), applyPending(pendSecret, val))
		}
	}
	return w
}

// valueFlag handles a single-letter flag that takes the value attached
// (-pVALUE) or as the next argument (-p VALUE).
func (st *argState) valueFlag(w string, letter byte, kind pendKind) string {
	if w[1] != letter {
		return w
	}
	if len(w) == 2 {
		st.pend = kind
		return w
	}
	return replaceTail(w, 2, applyPending(kind, w[2:]))
}

// curlValueLetters are curl's short options that take an argument; in a
// cluster the first of them takes the rest of the word, or the next word.
const curlValueLetters = "AbcCdDeEFHKmoPQrtTuUwxXyYz"

func (st *argState) curlCluster(w string) string {
	for k := 1; k < len(w); k++ {
		c := w[k]
		if strings.IndexByte(curlValueLetters, c) < 0 {
			continue
		}
		kind := pendNone
		switch c {
		case 'u', 'U':
			kind = pendUserPass
		case 'H':
			kind = pendHeader
		case 'b':
			kind = pendCookie
		case 'E':
			kind = pendCertPass
		}
		if k == len(w)-1 {
			st.pend = kind
			return w
		}
		if kind == pendNone {
			return w
		}
		return replaceTail(w, k+1, applyPending(kind, w[k+1:]))
	}
	return w
}

func (st *argState) positional(w string) string {
	switch st.cmd {
	case cmdLogin:
		if w == "login" {
			st.login = true
		}
	case cmdHTTPie:
		// Request items Name:value are headers; Name:=json, Name==query
		// and URLs are not.
		k := strings.IndexByte(w, ':')
		if k > 0 && isHeaderName(w[:k]) && !strings.HasPrefix(w[k:], ":=") && !strings.HasPrefix(w[k:], "://") {
			return applyPending(pendHeader, w)
		}
	}
	return w
}

// applyPending redacts w as the value of a flag of the given kind.
func applyPending(kind pendKind, w string) string {
	if w == "" {
		return w
	}
	switch kind {
	case pendSecret:
		return Marker
	case pendUserPass:
		if k := strings.IndexByte(w, ':'); k >= 0 {
			if k+1 == len(w) {
				return w
			}
			return w[:k+1] + Marker
		}
		if len(w) >= 16 {
			return Marker
		}
	case pendCertPass:
		if k := strings.LastIndexByte(w, ':'); k >= 0 && k+1 < len(w) && !strings.HasPrefix(w[k:], ":\\") {
			return w[:k+1] + Marker
		}
	case pendHeader:
		k := strings.IndexByte(w, ':')
		if k <= 0 {
			return w
		}
		v := k + 1
		for v < len(w) && (w[v] == ' ' || w[v] == '\t') {
			v++
		}
		r := Header(strings.TrimSpace(w[:k]), w[v:])
		if r == w[v:] {
			return w
		}
		return w[:v] + r
	case pendCookie:
		if strings.IndexByte(w, '=') >= 0 {
			return Marker
		}
	case pendOpenSSLPass:
		if strings.HasPrefix(w, "pass:") && len(w) > 5 {
			return "pass:" + Marker
		}
	}
	return w
}

// replaceTail returns w[:k]+tail, or w when tail is w[k:] unchanged.
func replaceTail(w string, k int, tail string) string {
	if tail == w[k:] {
		return w
	}
	return w[:k] + tail
}

func isAssignment(w string) bool {
	k := strings.IndexByte(w, '=')
	if k <= 0 {
		return false
	}
	for i := 0; i < k; i++ {
		c := w[i]
		if !(c == '_' || isUpper(c) || isLower(c) || (i > 0 && isDigit(c))) {
			return false
		}
	}
	return true
}

func isHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		if class[s[i]]&cAlnum == 0 && s[i] != '-' && s[i] != '_' {
			return false
		}
	}
	return len(s) > 0
}

func allLetters(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isUpper(s[i]) && !isLower(s[i]) {
			return false
		}
	}
	return true
}

func hasSpace(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ', '\t', '\n', '\r':
			return true
		}
	}
	return false
}

// shellLine applies the argv rules to the words of a shell script. Its
// splitting is deliberately simple — quotes, backslashes, whitespace and
// the operators ; | & ( ) and newline, which start a new command — because
// it only has to find flags and their values, never to run anything.
func shellLine(s string, depth int) string {
	var st argState
	r := replacer{s: s}
	n := len(s)
	for i := 0; i < n; {
		c := s[i]
		switch c {
		case ' ', '\t', '\r':
			i++
			continue
		case ';', '|', '&', '(', ')', '\n', '`':
			st = argState{}
			i++
			continue
		}
		start := i
		var quote byte
	word:
		for ; i < n; i++ {
			c := s[i]
			switch {
			case quote != 0:
				if c == quote {
					quote = 0
				} else if c == '\\' && quote == '"' {
					i++
				}
			case c == '\'' || c == '"':
				quote = c
			case c == '\\':
				i++
			case c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ';' || c == '|' || c == '&' || c == '(' || c == ')' || c == '`':
				break word
			}
		}
		if i > n {
			i = n
		}
		w, off := s[start:i], start
		if len(w) >= 2 && (w[0] == '\'' || w[0] == '"') && w[len(w)-1] == w[0] {
			w, off = w[1:len(w)-1], start+1
		}
		if red := st.process(w, depth); red != w {
			r.put(off, off+len(w), red)
		}
	}
	return r.result()
}

// replacer is output with arbitrary replacement text.
type replacer struct {
	s    string
	b    strings.Builder
	last int
	used bool
}

func (r *replacer) put(start, end int, repl string) {
	if start < r.last {
		return
	}
	r.used = true
	r.b.WriteString(r.s[r.last:start])
	r.b.WriteString(repl)
	r.last = end
}

func (r *replacer) result() string {
	if !r.used {
		return r.s
	}
	r.b.WriteString(r.s[r.last:])
	return r.b.String()
}

// Command redacts a shell command line, such as an agent's tool call
// carries: the Args rules applied to its words (quotes and operators
// understood, nested scripts followed), then Text.
func Command(line string) string {
	return Text(shellLine(line, 0))
}
