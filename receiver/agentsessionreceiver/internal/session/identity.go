package session

import (
	"path"
	"strconv"
	"strings"
	"syscall"

	"github.com/agentwatch/agentwatch/internal/semconv"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/proctree"
)

// Identities is implemented by a Membership that knows sensitive files by
// inode (the kernel's sensitive_ids): records that reach one under another
// name carry the path it is known by, and files sessions create, rename or
// link into a sensitive place join.
type Identities interface {
	// Canonical is the path a sensitive identity was found at; p is where
	// the file is now under root (the process's /proc/<pid>/root), to tell
	// it from a file that reuses a freed inode number.
	Canonical(id kevent.FileID, root, p string) (string, bool)
	// LearnSensitive adds the file at p (seen through root) if a
	// sensitive glob names p for one of homes; id may be zero (then it is
	// stat'ed).
	LearnSensitive(root, p string, id kevent.FileID, homes []string) bool
	// ScanWorkdir finds the sensitive files under a session's workdir.
	ScanWorkdir(dir string)
	// HoldsSensitive reports whether a sensitive glob names dir or files
	// under it, for one of homes.
	HoldsSensitive(dir string, homes []string) bool
}

// openExtra is what an open record says beyond its path: the canonical
// path of a sensitive file reached under another name, and the process
// whose /proc environ or mem it is.
type openExtra struct {
	id         kevent.FileID
	canonical  string
	procTarget uint32
}

func (t *Tracker) identities() Identities {
	ids, _ := t.m.(Identities)
	return ids
}

// procRootOf is the process's root as /proc shows it ("" for the host's
// when the receiver's /proc is the host's and the process is gone).
func (t *Tracker) procRootOf(p *proc) string {
	return path.Join(t.cfg.ProcRoot, strconv.FormatUint(uint64(p.key.PID), 10), "root")
}

// imageHomes are the homes "~" stands for in p's image.
func imageHomes(img *image) []string {
	var hs []string
	for _, h := range [2]string{img.envHome, img.userHome} {
		if h != "" && h != "/" && (len(hs) == 0 || hs[0] != h) {
			hs = append(hs, h)
		}
	}
	return hs
}

// openIdentity is the extra of an open: the canonical path when the file
// is a known sensitive one under another path; a new sensitive file
// (created, checked out, or merely not scanned yet) is learnt.
func (t *Tracker) openIdentity(p *proc, e *kevent.Open, fp string) *openExtra {
	var x *openExtra
	if e.Header.Flags&kevent.FlagProcOther != 0 && e.ProcTarget != 0 {
		x = &openExtra{procTarget: e.ProcTarget}
	}
	ids := t.identities()
	if ids == nil || e.ID.IsZero() || e.Ret < 0 {
		return x
	}
	root := t.procRootOf(p)
	canon, ok := ids.Canonical(e.ID, root, fp)
	if !ok {
		ids.LearnSensitive(root, fp, e.ID, imageHomes(p.img))
		return x
	}
	if canon == fp {
		return x
	}
	if x == nil {
		x = &openExtra{}
	}
	x.id, x.canonical = e.ID, canon
	return x
}

func putIdentity(a interface {
	PutStr(string, string)
	PutInt(string, int64)
}, id kevent.FileID, canonical string) {
	if !id.IsZero() {
		a.PutInt(semconv.FileInode, int64(id.Ino))
		a.PutInt(semconv.FileDevice, int64(id.StatDev()))
	}
	if canonical != "" {
		a.PutStr(semconv.FileCanonicalPath, canonical)
	}
}

var fileOpEvents = [...]string{
	kevent.OpLink:   semconv.EventFileLink,
	kevent.OpRename: semconv.EventFileRename,
	kevent.OpUnlink: semconv.EventFileUnlink,
	kevent.OpChmod:  semconv.EventFileChmod,
	kevent.OpMount:  semconv.EventFileMount,
}

// fileOp records a change of a file. The identity is the kernel's when it
// had the file (fchmod), else what the name it ends with is (stat through
// the process's root, right after the syscall).
func (t *Tracker) fileOp(e *kevent.FileOp) {
	p := t.member(proctree.KeyOf(e.PID, e.Start), e.Time)
	if p == nil || int(e.Op) >= len(fileOpEvents) || fileOpEvents[e.Op] == "" {
		return
	}
	fp, fp2 := cleanAbs(e.Path), cleanAbs(e.Path2)
	if e.Op == kevent.OpMount && !strings.HasPrefix(e.Path, "/") {
		fp = utf8Safe(e.Path) // "tmpfs", "none": a source, not a path
	}
	if t.ownState(p, fp) && (fp2 == "" || t.ownState(p, fp2)) {
		t.st.agentStateDrops.Add(1)
		return
	}
	if p.img.git && t.cfg.GitMetadata && inGitDir(fp) && (fp2 == "" || inGitDir(fp2)) {
		t.st.gitMetaDrops.Add(1) // git's lock files renamed into place
		return
	}
	id, canon := e.ID, ""
	root := t.procRootOf(p)
	if ids := t.identities(); ids != nil && e.Ret >= 0 {
		named := fp // the name the file has after the change
		if e.Op == kevent.OpLink || e.Op == kevent.OpRename {
			named = fp2
		}
		if id.IsZero() && e.Op != kevent.OpUnlink && e.Op != kevent.OpMount {
			id = statID(root, named)
		}
		if c, ok := ids.Canonical(id, root, named); ok {
			canon = c
		} else if !id.IsZero() {
			homes := imageHomes(p.img)
			// a sensitive file given a new name, or a file put in a sensitive place
			if ids.LearnSensitive(root, fp, id, homes) || ids.LearnSensitive(root, named, id, homes) {
				canon, _ = ids.Canonical(id, root, named)
			}
		}
	}
	lr, ok := t.eventLog(p, fileOpEvents[e.Op], e.Time, 8)
	if !ok {
		return
	}
	a := lr.Attributes()
	a.PutStr(semconv.FilePath, utf8Safe(fp))
	switch e.Op {
	case kevent.OpLink, kevent.OpRename:
		a.PutStr(semconv.FileNewPath, utf8Safe(fp2))
	case kevent.OpMount:
		a.PutStr(semconv.FileMountPoint, utf8Safe(fp2))
		a.PutStr(semconv.FileMountFlags, mountFlags(e.Mode))
	case kevent.OpChmod:
		a.PutStr(semconv.FileMode, "0"+strconv.FormatUint(uint64(e.Mode&0o7777), 8))
	}
	a.PutInt(semconv.FileResult, int64(e.Ret))
	if canon == fp {
		canon = ""
	}
	putIdentity(a, id, canon)
	a.PutStr(semconv.Hook, t.hooks.fileOp[e.Op])
	if e.Header.Flags&kevent.FlagPathTruncated != 0 {
		a.PutBool(semconv.PathTruncated, true)
	}
}

func cleanAbs(p string) string {
	if p == "" {
		return ""
	}
	return path.Clean(p)
}

func inGitDir(p string) bool { return strings.HasSuffix(p, "/.git") || strings.Contains(p, "/.git/") }

// statID is the identity of the regular file at p under root, zero when
// there is none (a final symlink is not followed).
func statID(root, p string) kevent.FileID {
	var st syscall.Stat_t
	if err := syscall.Lstat(root+p, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return kevent.FileID{}
	}
	return kevent.FileIDOfStat(st.Ino, st.Dev)
}

var mountFlagNames = []struct {
	bit  uint32
	name string
}{
	{1, "MS_RDONLY"}, {2, "MS_NOSUID"}, {4, "MS_NODEV"}, {8, "MS_NOEXEC"}, {32, "MS_REMOUNT"},
	{4096, "MS_BIND"}, {8192, "MS_MOVE"}, {16384, "MS_REC"},
	{1 << 18, "MS_PRIVATE"}, {1 << 19, "MS_SLAVE"}, {1 << 20, "MS_SHARED"},
}

func mountFlags(m uint32) string {
	var b strings.Builder
	for _, f := range mountFlagNames {
		if m&f.bit != 0 {
			if b.Len() > 0 {
				b.WriteByte('|')
			}
			b.WriteString(f.name)
		}
	}
	return b.String()
}

// Dynamic loaders run as a command take the program to load from argv.
func isLoader(exeName string) bool {
	return strings.HasPrefix(exeName, "ld-linux") && strings.Contains(exeName, ".so") ||
		strings.HasPrefix(exeName, "ld-musl-") || exeName == "ld.so" || strings.HasPrefix(exeName, "ld64.so")
}

// loaderValueOpts are ld.so's options that take the next argument.
var loaderValueOpts = map[string]bool{
	"--library-path": true, "--inhibit-rpath": true, "--audit": true, "--preload": true,
	"--argv0": true, "--glibc-hwcaps-prefix": true, "--glibc-hwcaps-mask": true,
}

// loadedProgram is the program `ld.so [options] PROGRAM [args]` loads,
// absolute against cwd ("" when argv names none).
func loadedProgram(args []string, cwd string) string {
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			if i+1 < len(args) {
				return absPath(args[i+1], cwd)
			}
			return ""
		case loaderValueOpts[a]:
			i++
		case strings.HasPrefix(a, "--"):
		case a == kevent.ArgsCut:
			return ""
		default:
			return absPath(a, cwd)
		}
	}
	return ""
}

// procpsHidesEnviron: procps's ps reads /proc/<pid>/environ for every
// process it lists, also when its output shows no environment (`ps -o
// command= -p N`, how Claude Code walks its ancestors). Such a read shows
// nothing to anyone; `ps e`/`ps eww` (BSD "e": the environment after the
// command) and an "env"/"environ" format do, and stay records. Known by
// the resolved image: the packaged procps binary.
func procpsHidesEnviron(img *image, fp string) bool {
	if img.exe != "/usr/bin/ps" && img.exe != "/bin/ps" || !strings.HasSuffix(fp, "/environ") {
		return false
	}
	for i, a := range img.args {
		if i == 0 {
			continue
		}
		switch {
		case a == kevent.ArgsCut:
			return false // what was cut may ask for it
		case strings.HasPrefix(a, "-"):
			// UNIX options; a format names its fields
			if strings.Contains(a, "env") {
				return false
			}
		case strings.ContainsRune(a, 'e') || strings.Contains(a, "env"):
			// a BSD option word (e shows the environment), or a format
			// argument naming env fields
			return false
		}
	}
	return true
}
