package kernel

import (
	"errors"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agentwatch/agentwatch/internal/pathglob"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
)

// Bounds of one scan: a home's sensitive directories are small, a
// project's tree may not be.
const (
	scanMaxDepth   = 8
	scanMaxEntries = 4096
)

// sensitiveIDs knows the sensitive files by identity: what the sensitive
// globs name under each home (scanned when the home is first seen) and in
// each session's working directory, and what sessions create, rename or
// link into such a place. Each is marked in the kernel's sensitive_ids,
// and its identity maps back to the path it was found at: the canonical
// path of a record that reached it under another name.
type sensitiveIDs struct {
	mark   func(kevent.FileID) error
	unmark func(kevent.FileID) error
	globs  []*pathglob.Glob
	skip   map[string]bool // directory names a project scan does not enter
	max    int

	mu      sync.Mutex
	byID    map[kevent.FileID]known
	scanned map[string]bool // homes and directories already scanned
	full    uint64          // identities the map had no room for
	pinned  int             // descriptors held
}

func newSensitiveIDs(globs []string, skip []string, max int, mark, unmark func(kevent.FileID) error) *sensitiveIDs {
	s := &sensitiveIDs{mark: mark, unmark: unmark, max: max, skip: map[string]bool{".git": true},
		byID: map[kevent.FileID]known{}, scanned: map[string]bool{}}
	for _, g := range globs {
		if strings.HasSuffix(g, "/*") {
			g += "*" // "~/.gnupg/*" is the whole directory, as agent_score reads it
		}
		if c, err := pathglob.Compile(g); err == nil {
			s.globs = append(s.globs, c)
		}
	}
	for _, n := range skip {
		s.skip[n] = true
	}
	return s
}

// matches reports whether a glob names p for one of homes.
func (s *sensitiveIDs) matches(p string, homes []string) bool {
	for _, g := range s.globs {
		if !g.HasHome() {
			if g.Match(p, "") {
				return true
			}
			continue
		}
		for _, h := range homes {
			if h != "" && g.Match(p, h) {
				return true
			}
		}
	}
	return false
}

// known is a sensitive file: the path it was found at, an O_PATH
// descriptor that pins its inode (a freed inode number is reused for the
// next file created, which must not inherit the verdict), and its birth
// time, which tells the two apart when it could not be pinned.
type known struct {
	path  string
	fd    int   // -1: not pinned
	btime int64 // ns; 0 when the filesystem does not keep it
}

// maxPinned bounds the descriptors held; beyond, marks are checked by
// birth time alone.
const maxPinned = 4096

// add marks the regular file at at (the path as the receiver reaches it)
// as sensitive, known by p; want, when not zero, is the identity the
// kernel gave, which it must still have. A known id keeps its first path:
// the name the file had when it was found sensitive.
func (s *sensitiveIDs) add(p, at string, want kevent.FileID) bool {
	fd, err := unix.Open(at, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	id, bt, _, reg := fdStat(fd)
	if !reg || id.IsZero() || (!want.IsZero() && id != want) {
		unix.Close(fd)
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byID[id]; ok {
		unix.Close(fd)
		return true
	}
	if len(s.byID) >= s.max {
		s.full++
		unix.Close(fd)
		return false
	}
	if err := s.mark(id); err != nil {
		if errors.Is(err, ErrSensitiveIDsFull) {
			s.full++
		}
		unix.Close(fd)
		return false
	}
	if s.pinned >= maxPinned {
		unix.Close(fd)
		fd = -1
	} else {
		s.pinned++
	}
	s.byID[id] = known{path: p, fd: fd, btime: bt}
	return true
}

// fdStat is the identity, birth time and link count of an open file.
func fdStat(fd int) (id kevent.FileID, btime int64, nlink uint32, reg bool) {
	var st unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_INO|unix.STATX_TYPE|unix.STATX_NLINK|unix.STATX_BTIME, &st); err != nil {
		return kevent.FileID{}, 0, 0, false
	}
	if st.Mask&unix.STATX_BTIME != 0 {
		btime = st.Btime.Sec*1e9 + int64(st.Btime.Nsec)
	}
	return kevent.FileIDOfStat(st.Ino, unix.Mkdev(st.Dev_major, st.Dev_minor)), btime, st.Nlink, st.Mode&unix.S_IFMT == unix.S_IFREG
}

// canonical returns the path a sensitive identity was found at. A pinned
// file is the one marked as long as it has a name; an unpinned one is
// checked at p (where the file is now, under root; "" when unknown): the
// same inode number as a directory or a file born later is not it.
func (s *sensitiveIDs) canonical(id kevent.FileID, root, p string) (string, bool) {
	s.mu.Lock()
	k, ok := s.byID[id]
	s.mu.Unlock()
	if !ok {
		return "", false
	}
	if k.fd >= 0 {
		if _, _, nlink, _ := fdStat(k.fd); nlink == 0 {
			s.forget(id) // deleted: nothing opens it by a path any more
			return "", false
		}
		return k.path, true
	}
	if p != "" {
		if now, bt, reg, ok := statAnyAt(root, p); ok && now == id && (!reg || k.btime != 0 && bt != k.btime) {
			s.forget(id)
			return "", false
		}
	}
	return k.path, true
}

// forget drops an identity whose file is gone, and unpins it.
func (s *sensitiveIDs) forget(id kevent.FileID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop(id)
}

func (s *sensitiveIDs) drop(id kevent.FileID) {
	k, ok := s.byID[id]
	if !ok {
		return
	}
	delete(s.byID, id)
	_ = s.unmark(id)
	if k.fd >= 0 {
		unix.Close(k.fd)
		s.pinned--
	}
}

// sweep drops the pinned files whose last name was unlinked, so their
// inodes are freed.
func (s *sensitiveIDs) sweep() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, k := range s.byID {
		if k.fd < 0 {
			continue
		}
		if _, _, nlink, _ := fdStat(k.fd); nlink == 0 {
			s.drop(id)
		}
	}
}

// close unpins everything.
func (s *sensitiveIDs) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, k := range s.byID {
		if k.fd >= 0 {
			unix.Close(k.fd)
		}
		delete(s.byID, id)
	}
	s.pinned = 0
}

// scanHome walks, for each glob rooted at "~" (and, once, each absolute
// glob), its literal base directory under home.
func (s *sensitiveIDs) scanHome(home string) {
	home = path.Clean(home)
	for _, g := range s.globs {
		if g.AnyDepth() {
			continue // named anywhere: learnt from what sessions touch, and scanDir
		}
		root, h := "", ""
		if g.HasHome() {
			if home == "/" || home == "." {
				continue
			}
			root, h = home+literalDir(g.String()[1:]), home
		} else {
			root = literalDir(g.String())
		}
		key := root + "\x00" + g.String()
		if !s.markScanned(key) {
			continue
		}
		s.walk(root, func(p string) bool { return g.Match(p, h) })
	}
}

// scanDir walks a session's working directory (bounded, not into noise
// directories) for files the any-depth globs name (.env, credentials).
func (s *sensitiveIDs) scanDir(dir string) {
	if dir == "" || dir == "/" || !s.markScanned(path.Clean(dir)) {
		return
	}
	var any []*pathglob.Glob
	for _, g := range s.globs {
		if g.AnyDepth() {
			any = append(any, g)
		}
	}
	if len(any) == 0 {
		return
	}
	s.walk(dir, func(p string) bool {
		for _, g := range any {
			if g.Match(p, "") {
				return true
			}
		}
		return false
	})
}

func (s *sensitiveIDs) markScanned(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.scanned[key] || len(s.scanned) >= 4*maxHomes {
		return false
	}
	s.scanned[key] = true
	return true
}

// walk visits the regular files under root (root itself when it is one)
// and adds those want accepts. Symlinks are not followed: what they point
// to is found under its own name.
func (s *sensitiveIDs) walk(root string, want func(string) bool) {
	n := 0
	base := strings.Count(root, "/")
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if n++; n > scanMaxEntries {
			return filepath.SkipAll
		}
		if d.IsDir() {
			if p != root && (s.skip[d.Name()] || strings.Count(p, "/")-base >= scanMaxDepth) {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() && want(p) {
			s.add(p, p, kevent.FileID{})
		}
		return nil
	})
}

// statAny is the identity and birth time of the file at p, not following
// a final symlink; reg says whether it is a regular file.
func statAny(p string) (id kevent.FileID, btime int64, reg, ok bool) {
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, p, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_INO|unix.STATX_TYPE|unix.STATX_BTIME, &st); err != nil {
		return kevent.FileID{}, 0, false, false
	}
	if st.Mask&unix.STATX_BTIME != 0 {
		btime = st.Btime.Sec*1e9 + int64(st.Btime.Nsec)
	}
	return kevent.FileIDOfStat(st.Ino, unix.Mkdev(st.Dev_major, st.Dev_minor)), btime, st.Mode&unix.S_IFMT == unix.S_IFREG, true
}

// literalDir is the directory a glob's matches all lie under: its literal
// prefix up to the last '/' before a metacharacter ("/.ssh" for "/.ssh/*",
// "/.docker/config.json" for a literal file).
func literalDir(g string) string {
	lit := literalPrefix(g)
	if lit == g {
		return g
	}
	if i := strings.LastIndexByte(lit, '/'); i >= 0 {
		return lit[:i]
	}
	return ""
}

// sweepInterval is how often pinned sensitive files are checked for
// having been deleted (their inodes are held until then).
const sweepInterval = 30 * time.Second

func (t *Tracer) sweepIDs() {
	defer close(t.sweepDone)
	tk := time.NewTicker(sweepInterval)
	defer tk.Stop()
	for {
		select {
		case <-t.sweepStop:
			return
		case <-tk.C:
			t.ids.sweep()
		}
	}
}

// Canonical is the path the receiver knows a sensitive identity by; p is
// the file's path now as a process whose root is root sees it, to tell the
// file from one that reuses its freed inode number.
func (t *Tracer) Canonical(id kevent.FileID, root, p string) (string, bool) {
	if t.ids == nil {
		return "", false
	}
	return t.ids.canonical(id, root, p)
}

// statAnyAt stats p under root, or as the receiver sees it when root is
// gone (the process exited before its record was handled).
func statAnyAt(root, p string) (id kevent.FileID, btime int64, reg, ok bool) {
	if id, btime, reg, ok = statAny(root + p); ok || root == "" {
		return id, btime, reg, ok
	}
	return statAny(p)
}

// LearnSensitive adds the file at p (as seen through root, the process's
// /proc/<pid>/root) if a sensitive glob names p for one of homes: a file
// a session created, renamed or linked into a sensitive place joins the
// identities the kernel checks. id is the file's when the kernel gave it.
func (t *Tracer) LearnSensitive(root, p string, id kevent.FileID, homes []string) bool {
	if t.ids == nil || !t.ids.matches(p, homes) {
		return false
	}
	// Only a regular file still at p (with id, when the kernel gave one).
	if t.ids.add(p, root+p, id) {
		return true
	}
	return root != "" && t.ids.add(p, p, id) // the process is gone: the receiver's view

}

// HoldsSensitive reports whether a sensitive glob names dir or what is
// under it, for one of homes (a listing of ~/.ssh is not a listing of a
// project directory).
func (t *Tracer) HoldsSensitive(dir string, homes []string) bool {
	if t.ids == nil {
		return false
	}
	for _, g := range t.ids.globs {
		if !g.HasHome() {
			if g.Covers(dir, "") {
				return true
			}
			continue
		}
		for _, h := range homes {
			if h != "" && g.Covers(dir, h) {
				return true
			}
		}
	}
	return false
}

// ScanWorkdir looks for the files any-depth sensitive globs name under a
// session's working directory (bounded: scanMaxEntries), before the
// session's next record is handled.
func (t *Tracer) ScanWorkdir(dir string) {
	if t.ids != nil && strings.HasPrefix(dir, "/") {
		t.ids.scanDir(dir)
	}
}

// SensitiveIDsFull counts identities the map had no room for.
func (t *Tracer) SensitiveIDsFull() uint64 {
	if t.ids == nil {
		return 0
	}
	t.ids.mu.Lock()
	defer t.ids.mu.Unlock()
	return t.ids.full
}
