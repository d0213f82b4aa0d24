// Package proctree reads the process tree from procfs: the state the kernel
// hooks cannot show for processes that were running before they attached.
//
// Processes are named by Key (pid + start time), never by pid alone: a pid
// is reused as soon as its process is reaped.
package proctree

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
)

// TicksPerSecond is USER_HZ, the unit of start times in /proc/<pid>/stat.
// It is 100 on every Linux architecture (the ABI fixes it, whatever the
// kernel's HZ).
const TicksPerSecond = 100

// NSPerTick converts the kernel's start_boottime (ns) to /proc ticks.
const NSPerTick = 1_000_000_000 / TicksPerSecond

// Key names a process across pid reuse.
type Key struct {
	PID   uint32
	Start uint64 // clock ticks since boot, as in /proc/<pid>/stat
}

// KeyOf is the Key of a process from the kernel's view (start_boottime in
// ns), so that kernel events and /proc agree.
func KeyOf(pid uint32, startNS uint64) Key {
	return Key{PID: pid, Start: startNS / NSPerTick}
}

// StartNS is the start time in CLOCK_BOOTTIME ns, to tick precision.
func (k Key) StartNS() uint64 { return k.Start * NSPerTick }

func (k Key) String() string { return fmt.Sprintf("%d@%d", k.PID, k.Start) }

// pfKthread is PF_KTHREAD in the flags field of /proc/<pid>/stat.
const pfKthread = 0x00200000

// ErrGone is returned when the process exited (or its pid was reused)
// while it was being read.
var ErrGone = errors.New("process gone")

// Stat is the part of /proc/<pid>/stat this package uses.
type Stat struct {
	PID    uint32
	Comm   string
	State  byte
	PPID   uint32
	Flags  uint32
	Start  uint64 // ticks since boot
	Kernel bool   // kernel thread
}

// Zombie reports a process that has exited but is not reaped yet.
func (s Stat) Zombie() bool { return s.State == 'Z' || s.State == 'X' || s.State == 'x' }

// ParseStat parses /proc/<pid>/stat. comm may hold spaces and parentheses,
// so the fields are found after the last ')'.
func ParseStat(b []byte) (Stat, error) {
	var s Stat
	open := bytes.IndexByte(b, '(')
	closing := bytes.LastIndexByte(b, ')')
	if open < 1 || closing < open {
		return s, errors.New("stat: no (comm)")
	}
	pid, err := strconv.ParseUint(string(bytes.TrimSpace(b[:open])), 10, 32)
	if err != nil {
		return s, fmt.Errorf("stat: pid: %w", err)
	}
	s.PID = uint32(pid)
	s.Comm = string(b[open+1 : closing])
	// Fields after comm, numbered from 3 (state) as in proc(5).
	rest := b[closing+1:]
	field := 2
	for len(rest) > 0 && field < 22 {
		rest = bytes.TrimLeft(rest, " ")
		end := bytes.IndexByte(rest, ' ')
		if end < 0 {
			end = len(rest)
		}
		tok := bytes.TrimRight(rest[:end], "\n")
		rest = rest[end:]
		if len(tok) == 0 {
			continue
		}
		field++
		switch field {
		case 3:
			s.State = tok[0]
		case 4:
			v, err := strconv.ParseUint(string(tok), 10, 32)
			if err != nil {
				return s, fmt.Errorf("stat: ppid: %w", err)
			}
			s.PPID = uint32(v)
		case 9:
			v, err := strconv.ParseUint(string(tok), 10, 32)
			if err != nil {
				return s, fmt.Errorf("stat: flags: %w", err)
			}
			s.Flags = uint32(v)
		case 22:
			v, err := strconv.ParseUint(string(tok), 10, 64)
			if err != nil {
				return s, fmt.Errorf("stat: starttime: %w", err)
			}
			s.Start = v
		}
	}
	if field < 22 {
		return s, fmt.Errorf("stat: %d fields, want at least 22", field)
	}
	s.Kernel = s.Flags&pfKthread != 0
	return s, nil
}

// Status is the part of /proc/<pid>/status this package uses.
type Status struct {
	PPID uint32
	UID  uint32 // real
	EUID uint32 // effective
}

// ParseStatus parses /proc/<pid>/status.
func ParseStatus(b []byte) (Status, error) {
	var s Status
	var haveUID bool
	for line := range bytes.Lines(b) {
		key, val, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		f := strings.Fields(string(val))
		switch string(key) {
		case "PPid":
			if len(f) < 1 {
				return s, errors.New("status: empty PPid")
			}
			v, err := strconv.ParseUint(f[0], 10, 32)
			if err != nil {
				return s, fmt.Errorf("status: PPid: %w", err)
			}
			s.PPID = uint32(v)
		case "Uid":
			if len(f) < 2 {
				return s, errors.New("status: short Uid line")
			}
			r, err1 := strconv.ParseUint(f[0], 10, 32)
			e, err2 := strconv.ParseUint(f[1], 10, 32)
			if err := errors.Join(err1, err2); err != nil {
				return s, fmt.Errorf("status: Uid: %w", err)
			}
			s.UID, s.EUID, haveUID = uint32(r), uint32(e), true
		}
	}
	if !haveUID {
		return s, errors.New("status: no Uid line")
	}
	return s, nil
}

// ParseCgroup returns the cgroup v2 path from /proc/<pid>/cgroup (the
// "0::/path" line); ok is false on a v1-only system.
func ParseCgroup(b []byte) (path string, ok bool) {
	for line := range bytes.Lines(b) {
		line = bytes.TrimSuffix(line, []byte("\n"))
		if rest, found := bytes.CutPrefix(line, []byte("0::")); found {
			return string(rest), true
		}
	}
	return "", false
}

// Proc is one process as /proc shows it.
type Proc struct {
	Key
	Comm       string
	PPID       uint32
	Parent     Key // the parent's Key; zero when the parent is not known
	UID        uint32
	EUID       uint32
	Exe        string // canonical path; "" when unreadable
	ExeDeleted bool   // the image was unlinked (" (deleted)" stripped from Exe)
	Args       []string
	Cwd        string // "" when unreadable, e.g. longer than PATH_MAX
	Cgroup     string
}

func dir(procRoot string, pid uint32) string {
	return procRoot + "/" + strconv.FormatUint(uint64(pid), 10)
}

// ReadStat reads and parses /proc/<pid>/stat.
func ReadStat(procRoot string, pid uint32) (Stat, error) {
	b, err := os.ReadFile(dir(procRoot, pid) + "/stat")
	if err != nil {
		return Stat{}, gone(err)
	}
	return ParseStat(b)
}

// ReadCgroup returns the process's cgroup v2 path.
func ReadCgroup(procRoot string, pid uint32) (string, error) {
	b, err := os.ReadFile(dir(procRoot, pid) + "/cgroup")
	if err != nil {
		return "", gone(err)
	}
	cg, ok := ParseCgroup(b)
	if !ok {
		return "", errors.New("no cgroup v2 entry")
	}
	return cg, nil
}

// gone turns the errors of a process that exited mid-read into ErrGone.
func gone(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("%w: %v", ErrGone, err)
	}
	return err
}

const deletedSuffix = " (deleted)"

// Read reads one process. Files that are unreadable for lack of privilege
// leave their fields empty; a process that vanishes mid-read, or whose pid
// was reused meanwhile, yields ErrGone.
func Read(procRoot string, pid uint32) (*Proc, error) {
	st, err := ReadStat(procRoot, pid)
	if err != nil {
		return nil, err
	}
	return read(procRoot, st)
}

func read(procRoot string, st Stat) (*Proc, error) {
	d := dir(procRoot, st.PID)
	p := &Proc{Key: Key{PID: st.PID, Start: st.Start}, Comm: st.Comm, PPID: st.PPID}
	b, err := os.ReadFile(d + "/status")
	if err != nil {
		return nil, gone(err)
	}
	status, err := ParseStatus(b)
	if err != nil {
		return nil, err
	}
	p.UID, p.EUID = status.UID, status.EUID
	if exe, err := os.Readlink(d + "/exe"); err == nil {
		p.Exe, p.ExeDeleted = strings.CutSuffix(exe, deletedSuffix)
	}
	if b, err := os.ReadFile(d + "/cmdline"); err == nil {
		p.Args = kevent.SplitArgs(b)
	}
	if cwd, err := os.Readlink(d + "/cwd"); err == nil {
		p.Cwd = cwd
	}
	if b, err := os.ReadFile(d + "/cgroup"); err == nil {
		p.Cgroup, _ = ParseCgroup(b)
	}
	// Everything above may describe a newer process if the pid was
	// reused after the first read: check it is still the same one.
	again, err := ReadStat(procRoot, st.PID)
	if err != nil {
		return nil, err
	}
	if again.Start != st.Start {
		return nil, fmt.Errorf("%w: pid %d reused", ErrGone, st.PID)
	}
	return p, nil
}

// Snapshot is the process tree at one moment.
type Snapshot struct {
	Procs    map[Key]*Proc
	children map[Key][]Key
}

// Children returns the children of k, oldest first.
func (s *Snapshot) Children(k Key) []Key { return s.children[k] }

// Walk visits every process parent-before-child, the roots (processes
// whose parent is not in the snapshot) oldest first.
func (s *Snapshot) Walk(fn func(*Proc)) {
	var roots []Key
	for k, p := range s.Procs {
		if _, ok := s.Procs[p.Parent]; !ok {
			roots = append(roots, k)
		}
	}
	sortKeys(roots)
	stack := slices.Clone(roots)
	slices.Reverse(stack)
	for len(stack) > 0 {
		k := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		fn(s.Procs[k])
		kids := s.children[k]
		for i := len(kids) - 1; i >= 0; i-- {
			stack = append(stack, kids[i])
		}
	}
}

func sortKeys(ks []Key) {
	slices.SortFunc(ks, func(a, b Key) int {
		if a.Start != b.Start {
			if a.Start < b.Start {
				return -1
			}
			return 1
		}
		return int(int64(a.PID) - int64(b.PID))
	})
}

// Scan reads every user process under procRoot. Kernel threads and zombies
// are left out. Processes that exit during the scan are skipped; other
// per-process errors are joined into the returned error, alongside a
// usable snapshot.
func Scan(procRoot string) (*Snapshot, error) {
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, err
	}
	s := &Snapshot{Procs: map[Key]*Proc{}, children: map[Key][]Key{}}
	byPID := map[uint32]*Proc{}
	var errs []error
	for _, e := range ents {
		pid, err := strconv.ParseUint(e.Name(), 10, 32)
		if err != nil || !e.IsDir() {
			continue
		}
		st, err := ReadStat(procRoot, uint32(pid))
		if err == nil && (st.Kernel || st.Zombie()) {
			continue
		}
		var p *Proc
		if err == nil {
			p, err = read(procRoot, st)
		}
		if errors.Is(err, ErrGone) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("pid %d: %w", pid, err))
			continue
		}
		s.Procs[p.Key] = p
		byPID[p.PID] = p
	}
	for k, p := range s.Procs {
		// A parent always starts before its child; a later start means
		// the parent pid was reused and the real parent is gone.
		if pp, ok := byPID[p.PPID]; ok && pp.Start <= p.Start && pp.Key != k {
			p.Parent = pp.Key
			s.children[pp.Key] = append(s.children[pp.Key], k)
		}
	}
	for _, kids := range s.children {
		sortKeys(kids)
	}
	return s, errors.Join(errs...)
}
