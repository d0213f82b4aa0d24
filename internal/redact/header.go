package redact

// Header returns the value of the HTTP header name as it may be shipped.
// Credential headers (IsSensitiveHeader) lose their whole value, except the
// scheme word of Authorization-type headers ("Bearer [REDACTED]"), which
// tells an analyst what kind of credential was sent. Other headers go
// through Text, so a token pasted into an unexpected header is caught too.
func Header(name, value string) string {
	if !IsSensitiveHeader(name) {
		return Text(value)
	}
	if value == "" {
		return value
	}
	start := 0
	if containsLower(name, "authorization") {
		start = afterScheme(value, 0, len(value))
	}
	if value[start:] == Marker {
		return value
	}
	return value[:start] + Marker
}

// IsSensitiveHeader reports whether the header name carries credentials:
// Authorization, Proxy-Authorization, Cookie, Set-Cookie, and any name
// containing "token", "secret", "key", "password" or "authorization"
// (x-api-key, api-key, x-goog-api-key, X-Auth-Token, X-Amz-Security-Token…),
// compared case-insensitively.
func IsSensitiveHeader(name string) bool {
	return containsLower(name, "authorization") ||
		containsLower(name, "cookie") ||
		containsLower(name, "token") ||
		containsLower(name, "secret") ||
		containsLower(name, "key") ||
		containsLower(name, "passw")
}
