package session

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// passwdHomes resolves a uid's home as the /etc/passwd under the process's
// own root says: a process in another mount namespace (a container, a
// sandbox with a private /etc/passwd) has its own. Files are cached per
// mount namespace and re-read when their mtime changes; both the cache and
// the bytes read are bounded, so a hostile passwd costs nothing unbounded.
type passwdHomes struct {
	procRoot string
	byNS     map[uint64]*passwdFile
}

type passwdFile struct {
	mtime   time.Time
	size    int64
	checked time.Time
	homes   map[uint32]string
}

const (
	maxPasswdBytes = 1 << 20
	maxPasswdNS    = 256
	passwdRecheck  = time.Second
)

func newPasswdHomes(procRoot string) *passwdHomes {
	return &passwdHomes{procRoot: procRoot, byNS: map[uint64]*passwdFile{}}
}

// home returns uid's home for pid's root, "" when unknown (the process is
// gone, or its passwd has no such uid).
func (h *passwdHomes) home(pid, uid uint32) string {
	base := filepath.Join(h.procRoot, strconv.FormatUint(uint64(pid), 10))
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(base, "ns", "mnt"), &st); err != nil {
		return ""
	}
	f := h.byNS[st.Ino]
	now := time.Now()
	if f == nil || now.Sub(f.checked) > passwdRecheck {
		name := filepath.Join(base, "root", "etc", "passwd")
		fi, err := os.Stat(name)
		if err != nil {
			return ""
		}
		if f == nil || !fi.ModTime().Equal(f.mtime) || fi.Size() != f.size {
			nf := &passwdFile{mtime: fi.ModTime(), size: fi.Size(), homes: readPasswd(name)}
			if f == nil && len(h.byNS) >= maxPasswdNS {
				clear(h.byNS)
			}
			f = nf
			h.byNS[st.Ino] = f
		}
		f.checked = now
	}
	return f.homes[uid]
}

func readPasswd(name string) map[uint32]string {
	out := map[uint32]string{}
	fd, err := os.Open(name)
	if err != nil {
		return out
	}
	defer fd.Close()
	data, err := io.ReadAll(io.LimitReader(fd, maxPasswdBytes))
	if err != nil {
		return out
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		fs := strings.Split(sc.Text(), ":")
		if len(fs) < 7 || !strings.HasPrefix(fs[5], "/") {
			continue
		}
		uid, err := strconv.ParseUint(fs[2], 10, 32)
		if err != nil {
			continue
		}
		if _, dup := out[uint32(uid)]; !dup { // the first entry wins, as getpwuid
			out[uint32(uid)] = utf8Safe(filepath.Clean(fs[5]))
		}
	}
	return out
}

// envHome is HOME from a /proc/<pid>/environ, for processes found by the
// scan (no exec event carries it).
func envHome(procRoot string, pid uint32) string {
	fd, err := os.Open(filepath.Join(procRoot, strconv.FormatUint(uint64(pid), 10), "environ"))
	if err != nil {
		return ""
	}
	defer fd.Close()
	data, _ := io.ReadAll(io.LimitReader(fd, 256<<10))
	for kv := range bytes.SplitSeq(data, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("HOME=")); ok {
			return utf8Safe(string(v))
		}
	}
	return ""
}

// HomeSink is implemented by a Membership whose kernel rules are relative
// to homes (the enforce "~/" rules): every home a session image has is
// given to it, so deny_open holds for HOME and the passwd home alike.
type HomeSink interface {
	AddHome(home string) error
}

func (t *Tracker) seeHomes(img *image) {
	hs, ok := t.m.(HomeSink)
	if !ok {
		return
	}
	for _, h := range [2]string{img.envHome, img.userHome} {
		if h == "" {
			continue
		}
		if err := hs.AddHome(h); err != nil {
			t.st.membershipErrors.Add(1)
			t.log.Debug("enforce home not added", zap.String("home", h), zap.Error(err))
		}
	}
}
