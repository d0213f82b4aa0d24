package session

import (
	"strconv"
	"strings"
	"syscall"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
)

// Backends, as kernel.Tracer.Backend reports them.
const (
	BackendTracepoint = "tracepoint"
	BackendLSM        = "lsm"
)

// hookNames are the agent.hook values per backend: the kernel program that
// saw the event.
type hookNames struct {
	open    [kevent.SyscallIOUring + 1]string
	connect string
	fileOp  [kevent.OpMount + 1]string // by kevent.Op*
}

// The hooks of the changes of files per backend. The record does not say
// which syscall (or, on LSM, which of the two mount hooks) it was.
var (
	tracepointFileOpHooks = [...]string{
		kevent.OpLink:   "tracepoint/syscalls/sys_exit_link*",
		kevent.OpRename: "tracepoint/syscalls/sys_exit_rename*",
		kevent.OpUnlink: "tracepoint/syscalls/sys_exit_unlink*",
		kevent.OpChmod:  "tracepoint/syscalls/sys_exit_*chmod*",
		kevent.OpMount:  "tracepoint/syscalls/sys_exit_*mount",
	}
	lsmFileOpHooks = [...]string{
		kevent.OpLink:   "lsm/path_link",
		kevent.OpRename: "lsm/path_rename",
		kevent.OpUnlink: "lsm/path_unlink",
		kevent.OpChmod:  "lsm/path_chmod",
		kevent.OpMount:  "lsm/*mount", // sb_mount (mount(2)) or move_mount
	}
)

func hooksFor(backend string) hookNames {
	if backend == BackendLSM {
		h := hookNames{connect: "lsm/socket_connect", fileOp: lsmFileOpHooks}
		for i := range h.open {
			h.open[i] = "lsm/file_open"
		}
		return h
	}
	const tp = "tracepoint/syscalls/sys_exit_"
	return hookNames{
		fileOp: tracepointFileOpHooks,
		open: [...]string{
			0:                     tp + "openat",
			kevent.SyscallOpenat:  tp + "openat",
			kevent.SyscallOpenat2: tp + "openat2",
			kevent.SyscallOpen:    tp + "open",
			kevent.SyscallCreat:   tp + "creat",
			// the record names its hook: lsm/file_open whatever the backend
			kevent.SyscallLSMFileOpen:  "lsm/file_open",
			kevent.SyscallOpenByHandle: tp + "open_by_handle_at",
			kevent.SyscallIOUring:      "tp_btf/io_uring_complete",
		},
		connect: tp + "connect",
	}
}

// connectHook names the hook of a connect record: the cgroup programs see
// what no syscall hook does (io_uring, TCP Fast Open, addressed UDP sends).
func connectHook(e *kevent.Connect, syscallHook string) string {
	v6 := e.Family == 10
	switch {
	case e.Header.Flags&kevent.FlagSockSend != 0 && v6:
		return "cgroup/sendmsg6"
	case e.Header.Flags&kevent.FlagSockSend != 0:
		return "cgroup/sendmsg4"
	case e.Header.Flags&kevent.FlagSockCgroup != 0 && v6:
		return "cgroup/connect6"
	case e.Header.Flags&kevent.FlagSockCgroup != 0:
		return "cgroup/connect4"
	}
	return syscallHook
}

func (h *hookNames) forOpen(sc uint16) string {
	if int(sc) < len(h.open) {
		return h.open[sc]
	}
	return h.open[0]
}

// openFlagNames in the order they are printed. Multi-bit flags come before
// the single bits they contain (O_SYNC holds O_DSYNC, O_TMPFILE holds
// O_DIRECTORY). The values come from x/sys/unix, so they are right for the
// architecture (O_DIRECTORY differs between amd64 and arm64).
var openFlagNames = []struct {
	bits uint32
	name string
}{
	{unix.O_CREAT, "O_CREAT"},
	{unix.O_EXCL, "O_EXCL"},
	{unix.O_NOCTTY, "O_NOCTTY"},
	{unix.O_TRUNC, "O_TRUNC"},
	{unix.O_APPEND, "O_APPEND"},
	{unix.O_NONBLOCK, "O_NONBLOCK"},
	{unix.O_SYNC, "O_SYNC"},
	{unix.O_DSYNC, "O_DSYNC"},
	{unix.O_ASYNC, "O_ASYNC"},
	{unix.O_DIRECT, "O_DIRECT"},
	{kernelOLargefile, "O_LARGEFILE"},
	{unix.O_TMPFILE, "O_TMPFILE"},
	{unix.O_DIRECTORY, "O_DIRECTORY"},
	{unix.O_NOFOLLOW, "O_NOFOLLOW"},
	{unix.O_NOATIME, "O_NOATIME"},
	{unix.O_CLOEXEC, "O_CLOEXEC"},
	{unix.O_PATH, "O_PATH"},
}

// OpenFlags renders open(2) flags as "O_WRONLY|O_CREAT|O_TRUNC"; bits
// without a name are appended in hex.
func OpenFlags(f uint32) string {
	var b strings.Builder
	switch f & unix.O_ACCMODE {
	case unix.O_RDONLY:
		b.WriteString("O_RDONLY")
	case unix.O_WRONLY:
		b.WriteString("O_WRONLY")
	case unix.O_RDWR:
		b.WriteString("O_RDWR")
	default:
		b.WriteString("0x3") // no name: "no access", for ioctl-only opens of devices
	}
	rest := f &^ unix.O_ACCMODE
	for _, n := range openFlagNames {
		if n.bits != 0 && rest&n.bits == n.bits {
			b.WriteByte('|')
			b.WriteString(n.name)
			rest &^= n.bits
		}
	}
	if rest != 0 {
		b.WriteString("|0x")
		b.WriteString(strconv.FormatUint(uint64(rest), 16))
	}
	return b.String()
}

// flagCache memoises OpenFlags: a session uses a handful of combinations,
// and the hot path should not build the same string per event.
type flagCache map[uint32]string

const maxFlagCache = 512

func (c flagCache) get(f uint32) string {
	if s, ok := c[f]; ok {
		return s
	}
	s := OpenFlags(f)
	if len(c) < maxFlagCache {
		c[f] = s
	}
	return s
}

// SignalName is "SIGKILL" for 9; unknown numbers become "SIG<n>".
func SignalName(sig int) string {
	if n := unix.SignalName(syscall.Signal(sig)); n != "" {
		return n
	}
	return "SIG" + strconv.Itoa(sig)
}

// utf8Safe makes s valid UTF-8 for OTLP (protobuf strings must be) while
// keeping invalid bytes visible and distinct: each becomes \xNN. Paths and
// argv are arbitrary bytes on Linux; a lossy U+FFFD would merge different
// files into one name.
func utf8Safe(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			const hex = "0123456789abcdef"
			b.WriteString(`\x`)
			b.WriteByte(hex[s[i]>>4])
			b.WriteByte(hex[s[i]&0xf])
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// utf8SafeArgs sanitizes argv, copying only when an argument changes.
func utf8SafeArgs(args []string) []string {
	var out []string
	for i, a := range args {
		if s := utf8Safe(a); s != a {
			if out == nil {
				out = append([]string(nil), args...)
			}
			out[i] = s
		}
	}
	if out == nil {
		return args
	}
	return out
}
