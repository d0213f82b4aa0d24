package agentconsoleexporter

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Field and argv caps keep one event on one readable line; the full values
// stay in the telemetry for the real backends.
const (
	maxFieldRunes = 256
	maxArgvRunes  = 512
	maxDNSAnswers = 4
)

// clean makes an attacker-influenced string (argv, paths, DNS names all come
// from what the agent did) safe to print: control characters, including
// ESC, would otherwise let a process rewrite the operator's terminal. It
// also caps the length.
func clean(s string, limit int) string {
	var b strings.Builder
	n := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if n >= limit {
			b.WriteString("...")
			break
		}
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			fmt.Fprintf(&b, `\x%02x`, r)
		case !unicode.IsPrint(r) && r != ' ':
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		n++
		i += size
	}
	return b.String()
}

func shellSafe(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("@%+=:,./_-", r):
		default:
			return false
		}
	}
	return true
}

// shellQuote renders one argument so that the line reads like the command
// a person would type.
func shellQuote(s string) string {
	if shellSafe(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// commandLine renders argv with the resolved executable in place of argv[0]
// (argv[0] is whatever the caller chose, the path is what ran).
func commandLine(exe string, argv []string, truncated bool) string {
	parts := make([]string, 0, len(argv)+1)
	switch {
	case exe != "":
		parts = append(parts, shellQuote(exe))
	case len(argv) > 0:
		parts = append(parts, shellQuote(argv[0]))
	}
	if len(argv) > 1 {
		for _, a := range argv[1:] {
			parts = append(parts, shellQuote(a))
		}
	}
	line := strings.Join(parts, " ")
	if truncated {
		line += " ..."
	}
	return clean(line, maxArgvRunes)
}

// Linux open(2) flag bits (asm-generic, the layout of x86-64 and arm64).
// Only the bits that say something about intent are named; O_CLOEXEC,
// O_NONBLOCK, O_LARGEFILE and the like are routine and would be noise.
var openFlagNames = []struct {
	bit  int64
	name string
}{
	{0o100, "O_CREAT"},
	{0o200, "O_EXCL"},
	{0o1000, "O_TRUNC"},
	{0o2000, "O_APPEND"},
	{0o20000000 | 0o200000, "O_TMPFILE"},
	{0o200000, "O_DIRECTORY"},
	{0o400000, "O_NOFOLLOW"},
	{0o10000000, "O_PATH"},
}

func openFlags(flags int64) string {
	var parts []string
	switch flags & 3 {
	case 0:
		parts = append(parts, "O_RDONLY")
	case 1:
		parts = append(parts, "O_WRONLY")
	case 2:
		parts = append(parts, "O_RDWR")
	default:
		parts = append(parts, "O_ACCMODE")
	}
	for _, f := range openFlagNames {
		if flags&f.bit == f.bit {
			parts = append(parts, f.name)
			flags &^= f.bit
		}
	}
	return strings.Join(parts, "|")
}

var dnsTypeNames = map[int64]string{
	1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT",
	28: "AAAA", 33: "SRV", 64: "SVCB", 65: "HTTPS", 255: "ANY",
}

func dnsType(s string) string {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if name, ok := dnsTypeNames[n]; ok {
			return name
		}
		return "TYPE" + s
	}
	return s
}

func hostPort(addr string, port int64, hasPort bool) string {
	if !hasPort {
		return addr
	}
	return net.JoinHostPort(addr, strconv.FormatInt(port, 10))
}

// errnoText names a negative kernel return value, e.g. -2 -> ENOENT.
func errnoText(ret int64) string {
	if name := errnoName(-ret); name != "" {
		return name
	}
	return "errno " + strconv.FormatInt(-ret, 10)
}

func shortDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "?"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	default:
		return d.Round(time.Millisecond).String()
	}
}
