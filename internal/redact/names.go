package redact

// Names decide whether a key (an environment variable, a command-line flag, a
// JSON field, a query parameter) holds a secret value. The rules work on the
// words of the name — split on any non-alphanumeric byte and on camelCase
// boundaries — so "OPENAI_API_KEY", "--api-key", "apiKey" and "x-api-key" are
// judged alike, while "max_tokens" ("tokens" is not "token") or
// "PASSWORD_FILE" (a reference to a secret, not the secret) are not.

// nameMode selects how liberal the "…key" rule is.
type nameMode uint8

const (
	// modeKey: JSON fields, query parameters, key=value pairs in text.
	modeKey nameMode = iota
	// modeFlag: command-line flag names; boolean flags such as
	// --no-password or --with-token must not swallow the next argument.
	modeFlag
)

// IsSecretName reports whether a value stored under name (an environment
// variable, JSON field, query parameter or flag name without dashes) is
// treated as a secret by this package.
func IsSecretName(name string) bool { return secretName(name, modeKey) }

func secretName(name string, mode nameMode) bool {
	var first, prev, last string
	strong := false
	words := 0
	forEachWord(name, func(w string) {
		if words == 0 {
			first = w
		}
		words++
		prev, last = last, w
		if isStrongWord(w) {
			strong = true
		}
	})
	if words == 0 || !secretWords(strong, words, prev, last, name, mode) {
		return false
	}
	if isReferenceWord(last) {
		return false
	}
	return mode != modeFlag || words == 1 || !isBooleanFlagLead(first)
}

// secretWords applies the word rules; the (slower) exclusions are left to
// the caller, so that the common non-secret name costs little.
func secretWords(strong bool, words int, prev, last, name string, mode nameMode) bool {
	if strong {
		return true
	}
	switch {
	case eqLower(last, "token"), eqLower(last, "apikey"), eqLower(last, "accesskey"),
		eqLower(last, "privatekey"), eqLower(last, "secretkey"), eqLower(last, "authtoken"),
		eqLower(last, "authorization"), eqLower(last, "cookie"), eqLower(last, "bearer"),
		eqLower(last, "signature"), eqLower(last, "pass"), eqLower(last, "auth"):
		return true
	case eqLower(last, "pat"):
		// GITHUB_PAT; a lone "pat" is too common a word to mean a token.
		return words > 1
	case eqLower(last, "key"):
		if words == 1 {
			return false
		}
		// ENV_STYLE_KEY is nearly always a credential; in JSON or flags
		// "sort_key", "cache_key" or "partition-key" are not, so there the
		// word before "key" must name a credential kind.
		if mode == modeKey && isEnvStyle(name) {
			return true
		}
		return isKeyKind(prev)
	}
	return false
}

// isStrongWord: words that make the whole name secret wherever they occur
// (*PASSWORD*, *SECRET*), unless the last word says the value only refers to
// the secret.
func isStrongWord(w string) bool {
	switch len(w) {
	case 6:
		return eqLower(w, "secret") || eqLower(w, "passwd")
	case 7:
		return eqLower(w, "secrets")
	case 8:
		return eqLower(w, "password")
	case 9:
		return eqLower(w, "passwords")
	case 10:
		return eqLower(w, "passphrase")
	}
	return false
}

// isReferenceWord: a final word that makes the value a pointer to or a
// property of a secret (a path, a name, a length), not the secret itself.
// Redacting those would only hide useful security context.
func isReferenceWord(w string) bool {
	for _, r := range referenceWords {
		if eqLower(w, r) {
			return true
		}
	}
	return false
}

var referenceWords = [...]string{
	"file", "files", "path", "dir", "directory", "name", "names", "id", "ids",
	"env", "var", "ref", "arn", "type", "kind", "length", "len", "size", "count",
	"limit", "limits", "stdin", "fd", "cmd", "command", "url", "uri", "endpoint",
	"prompt", "policy", "version", "mode", "ttl", "expiry", "expires",
	"expiration", "min", "max", "hint", "provider", "helper", "source",
	"location", "format", "field", "algorithm", "alg", "method", "usage",
	"budget", "scope", "scopes", "sock", "socket", "store", "manager",
	"required", "enabled", "disabled", "header", "prefix",
}

// isBooleanFlagLead: first words of flags that take no value although they
// mention a secret (--no-password, --ask-password, --with-token).
func isBooleanFlagLead(w string) bool {
	for _, r := range [...]string{"no", "ask", "prompt", "with", "show", "use",
		"print", "skip", "require", "reset", "generate", "rotate",
		"hide", "insecure", "allow", "disable", "enable"} {
		if eqLower(w, r) {
			return true
		}
	}
	return false
}

// isKeyKind: words before "key" that make it a credential.
func isKeyKind(w string) bool {
	for _, r := range [...]string{"api", "access", "private", "auth", "client",
		"master", "encryption", "signing", "license", "account", "subscription",
		"service", "app", "admin", "deploy", "sas", "storage", "shared",
		"session", "secret", "openai", "anthropic", "gemini", "google",
		"aws", "azure", "ssh", "gpg", "pgp", "personal", "write", "read"} {
		if eqLower(w, r) {
			return true
		}
	}
	return false
}

// isEnvStyle: UPPER_SNAKE_CASE with at least one underscore.
func isEnvStyle(name string) bool {
	underscore := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_':
			underscore = true
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		default:
			return false
		}
	}
	return underscore
}

// forEachWord calls fn with each word of name without allocating: words are
// maximal alphanumeric runs, further split where a lower-case letter or digit
// is followed by an upper-case one ("apiKey") and before the last capital of
// an acronym that starts a new word ("APIKey" → "API", "Key").
func forEachWord(name string, fn func(string)) {
	start := -1
	for i := 0; i <= len(name); i++ {
		var c byte
		if i < len(name) {
			c = name[i]
		}
		if i == len(name) || class[c]&cAlnum == 0 {
			if start >= 0 {
				fn(name[start:i])
				start = -1
			}
			continue
		}
		if start < 0 {
			start = i
			continue
		}
		if isUpper(c) {
			p := name[i-1]
			split := isLower(p) || isDigit(p)
			if !split && isUpper(p) && i+1 < len(name) && isLower(name[i+1]) {
				split = true
			}
			if split {
				fn(name[start:i])
				start = i
			}
		}
	}
}

// eqLower compares s to a lower-case ASCII constant, ignoring case in s.
func eqLower(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUpper(c) {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// hasPrefixLower is strings.HasPrefix ignoring ASCII case in s.
func hasPrefixLower(s, lower string) bool {
	return len(s) >= len(lower) && eqLower(s[:len(lower)], lower)
}

// containsLower is strings.Contains ignoring ASCII case in s.
func containsLower(s, lower string) bool {
	for i := 0; i+len(lower) <= len(s); i++ {
		if eqLower(s[i:i+len(lower)], lower) {
			return true
		}
	}
	return false
}

func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }
func isLower(c byte) bool { return c >= 'a' && c <= 'z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
