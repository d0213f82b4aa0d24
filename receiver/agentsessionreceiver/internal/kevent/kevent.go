// Package kevent decodes the records the kernel programs in bpf/ write to the
// ring buffer. The layout is bpf/events.h; every decoder checks lengths
// before reading so that a short or garbled record is an error, never a panic.
package kevent

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Version is EVENT_VERSION of bpf/events.h.
const Version = 3

// Kind is enum event_kind.
type Kind uint8

const (
	KindExec    Kind = 1
	KindExit    Kind = 2
	KindFork    Kind = 3
	KindOpen    Kind = 4
	KindConnect Kind = 5
	KindEnforce Kind = 6 // enforce.h: a rule of the enforce config matched
	KindFileOp  Kind = 7 // a link, rename, unlink, chmod or mount
	KindDNS     Kind = 8 // intent.bpf.c
	KindTLS     Kind = 9 // intent.bpf.c
	// KindConnClose: a TCP connection a session process connected ended.
	KindConnClose Kind = 10
	// KindMax bounds per-kind counter arrays (EV_KIND_MAX).
	KindMax = 16
)

var kindNames = [KindMax]string{
	KindExec:      "exec",
	KindExit:      "exit",
	KindFork:      "fork",
	KindOpen:      "open",
	KindConnect:   "connect",
	KindEnforce:   "enforce",
	KindFileOp:    "file_op",
	KindDNS:       "dns",
	KindTLS:       "tls",
	KindConnClose: "conn_close",
}

// Known reports whether k is a kind the kernel programs emit.
func (k Kind) Known() bool { return int(k) < len(kindNames) && kindNames[k] != "" }

func (k Kind) String() string {
	if k.Known() {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Header flags.
const (
	FlagExecMatched   = 1 << 0
	FlagExecCandidate = 1 << 1
	FlagArgsTruncated = 1 << 2
	FlagPathTruncated = 1 << 3
	FlagPathRaw       = 1 << 4
	FlagPathDotDot    = 1 << 5
	FlagExeUnlinked   = 1 << 6  // exec: the image has no name on disk (memfd, deleted file)
	FlagIDSensitive   = 1 << 7  // open: the file's (dev, ino) is one the receiver marked sensitive
	FlagProcOther     = 1 << 8  // open: /proc/<pid>/environ or mem of another process
	FlagSockCgroup    = 1 << 9  // connect: seen by cgroup/connect4|6 (io_uring, TCP Fast Open)
	FlagSockSend      = 1 << 10 // connect: an addressed UDP send, seen by cgroup/sendmsg4|6
)

// Open syscalls (enum open_syscall).
const (
	SyscallOpenat  = 1
	SyscallOpenat2 = 2
	SyscallOpen    = 3
	SyscallCreat   = 4
	// SyscallLSMFileOpen: seen by lsm/file_open, before the open completes;
	// Ret is the verdict (0 or -EPERM), not an fd.
	SyscallLSMFileOpen  = 5
	SyscallOpenByHandle = 6
	SyscallIOUring      = 7 // IORING_OP_OPENAT/OPENAT2, at completion
)

// File ops (enum file_op).
const (
	OpLink   = 1
	OpRename = 2
	OpUnlink = 3
	OpChmod  = 4
	OpMount  = 5
)

// ArgsCut stands in Exec.Args where the kernel cut the middle of a long
// argv: the arguments before it are argv's head, those after its tail.
const ArgsCut = "…"

const (
	hdrSize      = 32
	execFixed    = hdrSize + 48
	exitSize     = hdrSize + 8
	forkSize     = hdrSize + 16
	openFixed    = hdrSize + 32
	fileOpFixed  = hdrSize + 32
	connectSize  = hdrSize + 32
	enforceFixed = hdrSize + 32
)

// ErrShort and ErrCorrupt classify decode failures for self-telemetry.
var (
	ErrShort   = errors.New("record too short")
	ErrCorrupt = errors.New("record corrupt")
)

// Header is struct event_hdr.
type Header struct {
	Kind    Kind
	Version uint8
	Flags   uint16
	PID     uint32 // thread-group id
	TID     uint32
	Time    uint64 // CLOCK_BOOTTIME ns
	Start   uint64 // process start, CLOCK_BOOTTIME ns; with PID it names a process across pid reuse
}

// Exec is a successful execve of a session (or candidate) process.
type Exec struct {
	Header
	PPID     uint32
	UID      uint32
	EUID     uint32
	PStart   uint64
	Exe      string // canonical path of the executable image
	Filename string // path as passed to execve
	Args     []string
	Cwd      string
	Home     string // HOME= of the new image's environment; "" when unset
	// StdinPipe and StdoutPipe are the pipefs inodes of fds 0 and 1 (0:
	// not a pipe): processes sharing one are joined by that pipe.
	StdinPipe  uint64
	StdoutPipe uint64
}

// Exit is the end of a whole process (its last thread).
type Exit struct {
	Header
	Status uint32 // wait(2) encoding
}

// Code returns the exit code and, if a signal ended the process, its number.
func (e *Exit) Code() (code int, signal int) {
	if sig := int(e.Status & 0x7f); sig != 0 {
		return 128 + sig, sig
	}
	return int(e.Status>>8) & 0xff, 0
}

// Fork is a new process (not thread) whose parent is in a session.
type Fork struct {
	Header // the child
	PPID   uint32
	PStart uint64
}

// Open is a completed open(2)/openat(2)/openat2(2)/creat(2).
type Open struct {
	Header
	Ret       int32  // fd, or -errno
	OpenFlags uint32 // O_* flags of the call (Header.Flags are the record's)
	Mode      uint32
	Syscall   uint16
	Path      string
	ID        FileID // zero when the open failed
	// ProcTarget: with FlagProcOther, the pid whose environ or mem it is.
	ProcTarget uint32
}

// FileID is a file's identity: its inode on its filesystem's device (the
// kernel's s_dev encoding, major<<20 | minor).
type FileID struct {
	Ino uint64
	Dev uint32
}

// IsZero reports whether the kernel did not know the file.
func (id FileID) IsZero() bool { return id.Ino == 0 && id.Dev == 0 }

// StatDev is the device number as stat(2) reports it (st_dev).
func (id FileID) StatDev() uint64 {
	major, minor := uint64(id.Dev>>20), uint64(id.Dev&0xfffff)
	return (minor & 0xff) | (major&0xfff)<<8 | (minor&^0xff)<<12 | (major&^0xfff)<<32
}

// FileIDOfStat is the identity of a file stat(2) described.
func FileIDOfStat(ino, dev uint64) FileID {
	major := (dev>>8)&0xfff | (dev>>32)&^0xfff
	minor := dev&0xff | (dev>>12)&^0xff
	return FileID{Ino: ino, Dev: uint32(major<<20 | minor&0xfffff)}
}

// FileOp is a link, rename, unlink, chmod or mount by a session process.
type FileOp struct {
	Header
	Ret  int32
	Op   uint16
	Mode uint32 // chmod: the mode; mount: MS_* flags
	ID   FileID // when the kernel had the file (fchmod)
	// Path is the file changed (the source of a link, rename or mount),
	// Path2 the name it gets or the mount point.
	Path  string
	Path2 string
}

// Connect is a completed connect(2) to an AF_INET/AF_INET6 address.
type Connect struct {
	Header
	Ret      int32
	Family   uint16
	Port     uint16
	Addr     netip.Addr // v4-mapped v6 addresses are unmapped
	SockType uint16     // SOCK_STREAM=1, SOCK_DGRAM=2
}

// Event is one of *Exec, *Exit, *Fork, *Open, *Connect.
type Event interface{ Hdr() *Header }

func (h *Header) Hdr() *Header { return h }

var le = binary.LittleEndian

// PeekKind returns the kind of a record without decoding it.
func PeekKind(b []byte) (Kind, error) {
	if len(b) < hdrSize {
		return 0, ErrShort
	}
	return Kind(b[0]), nil
}

func decodeHeader(b []byte) (Header, error) {
	if len(b) < hdrSize {
		return Header{}, ErrShort
	}
	h := Header{
		Kind:    Kind(b[0]),
		Version: b[1],
		Flags:   le.Uint16(b[2:]),
		PID:     le.Uint32(b[4:]),
		TID:     le.Uint32(b[8:]),
		Time:    le.Uint64(b[16:]),
		Start:   le.Uint64(b[24:]),
	}
	if h.Version != Version {
		return h, fmt.Errorf("%w: version %d, want %d", ErrCorrupt, h.Version, Version)
	}
	return h, nil
}

// Decode parses one ring-buffer record.
func Decode(b []byte) (Event, error) {
	h, err := decodeHeader(b)
	if err != nil {
		return nil, err
	}
	switch h.Kind {
	case KindExec:
		return nonNil(decodeExec(h, b))
	case KindExit:
		if len(b) < exitSize {
			return nil, ErrShort
		}
		return &Exit{Header: h, Status: le.Uint32(b[hdrSize:])}, nil
	case KindFork:
		if len(b) < forkSize {
			return nil, ErrShort
		}
		return &Fork{Header: h, PPID: le.Uint32(b[hdrSize:]), PStart: le.Uint64(b[hdrSize+8:])}, nil
	case KindOpen:
		return nonNil(decodeOpen(h, b))
	case KindConnect:
		return nonNil(decodeConnect(h, b))
	case KindFileOp:
		return nonNil(decodeFileOp(h, b))
	case KindEnforce:
		return nonNil(decodeEnforce(h, b))
	case KindDNS:
		return nonNil(decodeDNS(h, b))
	case KindTLS:
		return nonNil(decodeTLS(h, b))
	case KindConnClose:
		return nonNil(decodeConnClose(h, b))
	}
	return nil, fmt.Errorf("%w: unknown kind %d", ErrCorrupt, h.Kind)
}

// nonNil keeps a typed nil pointer from becoming a non-nil Event.
func nonNil[E Event](e E, err error) (Event, error) {
	if err != nil {
		return nil, err
	}
	return e, nil
}

func decodeExec(h Header, b []byte) (*Exec, error) {
	if len(b) < execFixed {
		return nil, ErrShort
	}
	e := &Exec{
		Header:     h,
		PPID:       le.Uint32(b[hdrSize:]),
		UID:        le.Uint32(b[hdrSize+4:]),
		EUID:       le.Uint32(b[hdrSize+8:]),
		PStart:     le.Uint64(b[hdrSize+16:]),
		StdinPipe:  le.Uint64(b[hdrSize+24:]),
		StdoutPipe: le.Uint64(b[hdrSize+32:]),
	}
	lens := [5]int{
		int(le.Uint16(b[hdrSize+40:])),
		int(le.Uint16(b[hdrSize+42:])),
		int(le.Uint16(b[hdrSize+44:])),
		int(le.Uint16(b[hdrSize+46:])),
		int(le.Uint16(b[hdrSize+12:])),
	}
	data := b[execFixed:]
	var parts [5][]byte
	for i, n := range lens {
		if n > len(data) {
			return nil, fmt.Errorf("%w: exec field %d claims %d bytes, %d left", ErrCorrupt, i, n, len(data))
		}
		parts[i], data = data[:n], data[n:]
	}
	e.Exe = cstring(parts[0])
	e.Filename = cstring(parts[1])
	tail := int(le.Uint16(b[hdrSize+14:]))
	if tail > len(parts[2]) {
		return nil, fmt.Errorf("%w: exec argv tail claims %d of %d bytes", ErrCorrupt, tail, len(parts[2]))
	}
	if tail > 0 {
		e.Args = cutArgs(parts[2][:len(parts[2])-tail], parts[2][len(parts[2])-tail:])
	} else {
		e.Args = SplitArgs(parts[2])
	}
	e.Cwd = cstring(parts[3])
	e.Home = cstring(parts[4])
	return e, nil
}

// cutArgs joins argv's head and tail around ArgsCut. The head's last
// argument may be cut short; the tail's first, which starts mid-argument
// unless a NUL precedes it, is dropped.
func cutArgs(head, tail []byte) []string {
	args := SplitArgs(head)
	if i := bytes.IndexByte(tail, 0); i >= 0 && i < len(tail)-1 {
		tail = tail[i+1:]
	} else {
		tail = nil // one argument longer than the tail: it is the cut
	}
	return append(append(args, ArgsCut), SplitArgs(tail)...)
}

func decodeOpen(h Header, b []byte) (*Open, error) {
	if len(b) < openFixed {
		return nil, ErrShort
	}
	o := &Open{
		Header:    h,
		Ret:       int32(le.Uint32(b[hdrSize:])),
		OpenFlags: le.Uint32(b[hdrSize+4:]),
		Mode:      le.Uint32(b[hdrSize+8:]),
		Syscall:   le.Uint16(b[hdrSize+14:]),
	}
	n := int(le.Uint16(b[hdrSize+12:]))
	if n > len(b)-openFixed {
		return nil, fmt.Errorf("%w: open path claims %d bytes, %d left", ErrCorrupt, n, len(b)-openFixed)
	}
	o.Path = cstring(b[openFixed : openFixed+n])
	o.ID = FileID{Ino: le.Uint64(b[hdrSize+16:]), Dev: le.Uint32(b[hdrSize+24:])}
	o.ProcTarget = le.Uint32(b[hdrSize+28:])
	return o, nil
}

func decodeFileOp(h Header, b []byte) (*FileOp, error) {
	if len(b) < fileOpFixed {
		return nil, ErrShort
	}
	f := &FileOp{
		Header: h,
		Ret:    int32(le.Uint32(b[hdrSize:])),
		Op:     le.Uint16(b[hdrSize+4:]),
		Mode:   le.Uint32(b[hdrSize+12:]),
		ID:     FileID{Ino: le.Uint64(b[hdrSize+16:]), Dev: le.Uint32(b[hdrSize+24:])},
	}
	if f.Op < OpLink || f.Op > OpMount {
		return nil, fmt.Errorf("%w: file op %d", ErrCorrupt, f.Op)
	}
	n1, n2 := int(le.Uint16(b[hdrSize+6:])), int(le.Uint16(b[hdrSize+8:]))
	data := b[fileOpFixed:]
	if n1 > len(data) || n2 > len(data)-n1 {
		return nil, fmt.Errorf("%w: file op paths claim %d+%d bytes, %d left", ErrCorrupt, n1, n2, len(data))
	}
	f.Path = cstring(data[:n1])
	f.Path2 = cstring(data[n1 : n1+n2])
	return f, nil
}

// Enforce targets (enforce_event.what).
const (
	EnforceOpen    = 1
	EnforceConnect = 2
)

// Enforce actions (enforce_event.action).
const (
	EnforceAudit = 1 // monitor mode: would have been denied
	EnforceDeny  = 2 // the LSM hook returned -EPERM
	EnforceKill  = 3 // SIGKILL sent
)

// RuleAllowConnect is the rule id of "outside enforce.allow_connect".
const RuleAllowConnect = 0xffffffff

// Enforce is a rule of the receiver's enforce config matching a session
// process's open (Path) or connect (Addr, Port).
type Enforce struct {
	Header
	Rule   uint32
	What   uint8
	Action uint8
	Port   uint16
	Addr   netip.Addr // invalid for opens
	Path   string
}

func decodeEnforce(h Header, b []byte) (*Enforce, error) {
	if len(b) < enforceFixed {
		return nil, ErrShort
	}
	e := &Enforce{
		Header: h,
		Rule:   le.Uint32(b[hdrSize:]),
		What:   b[hdrSize+4],
		Action: b[hdrSize+5],
		Port:   le.Uint16(b[hdrSize+8:]),
	}
	raw := b[hdrSize+16 : hdrSize+32]
	switch le.Uint16(b[hdrSize+6:]) {
	case 2:
		e.Addr = netip.AddrFrom4([4]byte(raw[:4]))
	case 10:
		e.Addr = netip.AddrFrom16([16]byte(raw)).Unmap()
	}
	n := int(le.Uint16(b[hdrSize+10:]))
	if n > len(b)-enforceFixed {
		return nil, fmt.Errorf("%w: enforce path claims %d bytes, %d left", ErrCorrupt, n, len(b)-enforceFixed)
	}
	e.Path = cstring(b[enforceFixed : enforceFixed+n])
	return e, nil
}

func decodeConnect(h Header, b []byte) (*Connect, error) {
	if len(b) < connectSize {
		return nil, ErrShort
	}
	c := &Connect{
		Header:   h,
		Ret:      int32(le.Uint32(b[hdrSize:])),
		Family:   le.Uint16(b[hdrSize+4:]),
		Port:     le.Uint16(b[hdrSize+6:]),
		SockType: le.Uint16(b[hdrSize+24:]),
	}
	raw := b[hdrSize+8 : hdrSize+24]
	switch c.Family {
	case 2: // AF_INET
		c.Addr = netip.AddrFrom4([4]byte(raw[:4]))
	case 10: // AF_INET6
		c.Addr = netip.AddrFrom16([16]byte(raw)).Unmap()
	default:
		return nil, fmt.Errorf("%w: connect family %d", ErrCorrupt, c.Family)
	}
	return c, nil
}

// cstring stops at the first NUL: the kernel may leave one inside a field.
func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// SplitArgs splits the NUL-separated argv block of a process (as in
// /proc/<pid>/cmdline). A trailing NUL does not make an empty last argument.
func SplitArgs(b []byte) []string {
	if len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	if len(b) == 0 {
		return nil
	}
	n := 1
	for _, c := range b {
		if c == 0 {
			n++
		}
	}
	args := make([]string, 0, n)
	start := 0
	for i, c := range b {
		if c == 0 {
			args = append(args, string(b[start:i]))
			start = i + 1
		}
	}
	return append(args, string(b[start:]))
}
