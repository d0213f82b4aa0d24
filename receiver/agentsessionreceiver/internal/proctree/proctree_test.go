package proctree

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/proctree/proctreetest"
)

const helperEnv = "AW_PROCTREE_HELPER"

// TestMain doubles as a helper process: with helperEnv=longcwd it descends
// into a directory deeper than PATH_MAX one relative step at a time (the
// only way in: chdir takes at most PATH_MAX bytes) and execs sleep there.
func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "longcwd" {
		seg := os.Getenv("AW_SEG")
		for range 25 {
			if err := os.Mkdir(seg, 0o755); err != nil && !os.IsExist(err) {
				panic(err)
			}
			if err := syscall.Chdir(seg); err != nil {
				panic(err)
			}
		}
		sleep := os.Getenv("AW_SLEEP")
		panic(syscall.Exec(sleep, []string{sleep, "30"}, nil))
	}
	os.Exit(m.Run())
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Stat
		wantErr bool
	}{
		{"plain", proctreetest.StatLine(42, "sleep", 'S', 7, 0x400000, 12345), Stat{PID: 42, Comm: "sleep", State: 'S', PPID: 7, Flags: 0x400000, Start: 12345}, false},
		{"comm with spaces and parens", proctreetest.StatLine(5, "a) (b c", 'R', 1, 0, 9), Stat{PID: 5, Comm: "a) (b c", State: 'R', PPID: 1, Start: 9}, false},
		{"kernel thread", proctreetest.StatLine(2, "kthreadd", 'S', 0, pfKthread|0x40, 1), Stat{PID: 2, Comm: "kthreadd", State: 'S', Flags: pfKthread | 0x40, Start: 1, Kernel: true}, false},
		{"zombie", proctreetest.StatLine(9, "x", 'Z', 1, 0, 3), Stat{PID: 9, Comm: "x", State: 'Z', PPID: 1, Start: 3}, false},
		{"exactly 22 fields, no newline", strings.TrimSuffix(strings.Join(strings.Fields(proctreetest.StatLine(1, "init", 'S', 0, 0, 77))[:22], " "), "\n"), Stat{PID: 1, Comm: "init", State: 'S', Start: 77}, false},
		{"empty", "", Stat{}, true},
		{"no comm", "1 2 3", Stat{}, true},
		{"bad pid", "x (a) S 1", Stat{}, true},
		{"truncated", "1 (a) S 1 1 1 0 -1 0", Stat{}, true},
		{"bad start", strings.Replace(proctreetest.StatLine(1, "a", 'S', 0, 0, 5), " 5 ", " -5 ", 1), Stat{}, true},
		{"bad ppid", "1 (a) S x" + strings.Repeat(" 0", 30), Stat{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseStat([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err == nil && got != tc.want {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
	if !(Stat{State: 'Z'}).Zombie() || (Stat{State: 'S'}).Zombie() {
		t.Error("Zombie")
	}
}

func TestParseStatus(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Status
		wantErr bool
	}{
		{"real shape", "Name:\tsleep\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t10\nPPid:\t9\nUid:\t1000\t0\t0\t0\nGid:\t1\t1\t1\t1\n", Status{PPID: 9, UID: 1000, EUID: 0}, false},
		{"no uid", "PPid:\t1\n", Status{}, true},
		{"short uid", "Uid:\t1000\n", Status{}, true},
		{"bad uid", "Uid:\tx\t1\t1\t1\n", Status{}, true},
		{"bad ppid", "PPid:\tx\nUid:\t1\t1\t1\t1\n", Status{}, true},
		{"empty ppid", "PPid:\nUid:\t1\t1\t1\t1\n", Status{}, true},
		{"empty", "", Status{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseStatus([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err == nil && got != tc.want {
				t.Fatalf("got %+v want %+v", got, tc.want)
			}
		})
	}
}

func TestParseCgroup(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"0::/user.slice/user-0.slice/session-1.scope\n", "/user.slice/user-0.slice/session-1.scope", true},
		{"12:cpu,cpuacct:/x\n1:name=systemd:/y\n0::/hybrid\n", "/hybrid", true},
		{"12:cpu:/x\n", "", false},
		{"0::/\n", "/", true},
		{"0::/a:b\n", "/a:b", true},
		{"", "", false},
	}
	for _, tc := range tests {
		got, ok := ParseCgroup([]byte(tc.in))
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseCgroup(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestKey(t *testing.T) {
	// start_boottime in ns and the /proc start in ticks name the same process.
	k := KeyOf(7, 123_456_789_012)
	if k != (Key{PID: 7, Start: 12345}) {
		t.Fatalf("KeyOf = %v", k)
	}
	if k.StartNS() != 123_450_000_000 {
		t.Fatalf("StartNS = %d", k.StartNS())
	}
	if k.String() != "7@12345" {
		t.Fatalf("String = %q", k)
	}
}

func TestScanFake(t *testing.T) {
	root := t.TempDir()
	longPath := "/" + strings.Repeat("d/", 2000) + "bin"
	nonUTF8 := "/tmp/\xff\xfe/agent"
	for _, p := range []proctreetest.Proc{
		{PID: 1, Comm: "init", Start: 1, Exe: "/sbin/init", Cwd: "/", Cmdline: "/sbin/init\x00"},
		{PID: 2, Comm: "kthreadd", Flags: pfKthread, Start: 1},
		{PID: 100, PPID: 1, Comm: "agent", Start: 500, UID: 1000, EUID: 1000, Exe: "/opt/agent (deleted)", Cwd: "/home/u/proj", Cmdline: "agent\x00--x\x00\x00y\x00", Cgroup: "/user.slice/agent"},
		{PID: 101, PPID: 100, Comm: "sh", Start: 600, Exe: nonUTF8, Cwd: longPath, Cmdline: "sh\x00-c\x00\xffecho\x00"},
		{PID: 102, PPID: 100, Comm: "zombie", State: 'Z', Start: 601},
		{PID: 103, PPID: 100, Comm: "noexe", Start: 602, Cmdline: ""},
		// ppid 104 started after 105: 105's real parent is gone and the pid was reused.
		{PID: 104, PPID: 1, Comm: "reused", Start: 900, Exe: "/bin/x"},
		{PID: 105, PPID: 104, Comm: "orphan", Start: 800, Exe: "/bin/y"},
		{PID: 106, PPID: 1, Comm: "broken", Start: 5, BadStat: true},
	} {
		proctreetest.Write(t, root, p)
	}
	if err := os.MkdirAll(filepath.Join(root, "self"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "uptime"), []byte("1 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	snap, err := Scan(root)
	if err == nil || !strings.Contains(err.Error(), "pid 106") {
		t.Fatalf("Scan error = %v, want the broken pid 106 named", err)
	}
	if snap == nil {
		t.Fatal("no snapshot with a partial error")
	}
	var keys []Key
	for k := range snap.Procs {
		keys = append(keys, k)
	}
	sortKeys(keys)
	want := []Key{{1, 1}, {100, 500}, {101, 600}, {103, 602}, {105, 800}, {104, 900}}
	if !slices.Equal(keys, want) {
		t.Fatalf("keys = %v, want %v (no kernel threads, zombies, garbage)", keys, want)
	}
	agent := snap.Procs[Key{100, 500}]
	if agent.Exe != "/opt/agent" || !agent.ExeDeleted {
		t.Errorf("deleted exe: %q deleted=%v", agent.Exe, agent.ExeDeleted)
	}
	if !slices.Equal(agent.Args, []string{"agent", "--x", "", "y"}) {
		t.Errorf("args = %q", agent.Args)
	}
	if agent.UID != 1000 || agent.EUID != 1000 || agent.Cwd != "/home/u/proj" || agent.Cgroup != "/user.slice/agent" || agent.Parent != (Key{1, 1}) {
		t.Errorf("agent = %+v", agent)
	}
	sh := snap.Procs[Key{101, 600}]
	if sh.Exe != nonUTF8 || sh.Cwd != longPath || sh.Args[2] != "\xffecho" || sh.ExeDeleted {
		t.Errorf("raw bytes not kept: exe %q cwd len %d args %q", sh.Exe, len(sh.Cwd), sh.Args)
	}
	if noexe := snap.Procs[Key{103, 602}]; noexe.Exe != "" || noexe.Args != nil || noexe.Cwd != "" {
		t.Errorf("noexe = %+v", noexe)
	}
	if got := snap.Children(Key{100, 500}); !slices.Equal(got, []Key{{101, 600}, {103, 602}}) {
		t.Errorf("children of agent = %v", got)
	}
	if p := snap.Procs[Key{105, 800}]; p.Parent != (Key{}) {
		t.Errorf("parent of a process whose parent pid was reused = %v, want none", p.Parent)
	}
	var order []Key
	snap.Walk(func(p *Proc) { order = append(order, p.Key) })
	wantOrder := []Key{{1, 1}, {100, 500}, {101, 600}, {103, 602}, {104, 900}, {105, 800}}
	if !slices.Equal(order, wantOrder) {
		t.Errorf("Walk order = %v, want %v", order, wantOrder)
	}
	if _, err := Read(root, 999); !errors.Is(err, ErrGone) {
		t.Errorf("Read of a missing pid: %v, want ErrGone", err)
	}
	if cg, err := ReadCgroup(root, 100); err != nil || cg != "/user.slice/agent" {
		t.Errorf("ReadCgroup = %q, %v", cg, err)
	}
	if _, err := ReadCgroup(root, 999); !errors.Is(err, ErrGone) {
		t.Errorf("ReadCgroup of a missing pid: %v", err)
	}
}

func TestScanMissingRoot(t *testing.T) {
	if _, err := Scan(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Fatal("no error for a missing proc root")
	}
}

// startTree runs sh -c 'sleep & sleep' from dir and returns the shell.
func startTree(t *testing.T, dir string, sleep string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", sleep+" 30 & "+sleep+" 31; wait")
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

// waitChildren polls the real /proc until pid has n children.
func waitChildren(t *testing.T, pid uint32, n int) *Snapshot {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		snap, _ := Scan("/proc")
		if snap != nil {
			for k := range snap.Procs {
				if k.PID == pid && len(snap.Children(k)) == n {
					ok := true
					for _, c := range snap.Children(k) {
						ok = ok && len(snap.Procs[c].Args) > 0 && snap.Procs[c].Args[0] != "/bin/sh"
					}
					if ok {
						return snap
					}
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d never had %d exec'd children", pid, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestScanRealProc(t *testing.T) {
	dir := t.TempDir()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	sleepReal, err := filepath.EvalSymlinks(sleep)
	if err != nil {
		t.Fatal(err)
	}
	cmd := startTree(t, dir, sleep)
	pid := uint32(cmd.Process.Pid)
	snap := waitChildren(t, pid, 2)

	var sh *Proc
	for k, p := range snap.Procs {
		if k.PID == pid {
			sh = p
		}
	}
	st, err := ReadStat("/proc", pid)
	if err != nil {
		t.Fatal(err)
	}
	if sh.Start != st.Start || sh.PPID != uint32(os.Getpid()) {
		t.Errorf("sh = %+v, stat start %d", sh, st.Start)
	}
	if _, ok := snap.Procs[sh.Parent]; !ok {
		t.Errorf("the test process (our parent) is not sh's Parent: %v", sh.Parent)
	}
	if sh.Cwd != dir || sh.EUID != uint32(os.Geteuid()) {
		t.Errorf("sh cwd %q euid %d", sh.Cwd, sh.EUID)
	}
	var args [][]string
	for _, c := range snap.Children(sh.Key) {
		p := snap.Procs[c]
		if p.Parent != sh.Key || p.Exe != sleepReal || p.Cwd != dir {
			t.Errorf("child %+v: want parent %v, exe %q, cwd %q", p, sh.Key, sleepReal, dir)
		}
		if p.Start < sh.Start {
			t.Errorf("child starts before its parent")
		}
		args = append(args, p.Args)
	}
	slices.SortFunc(args, func(a, b []string) int { return strings.Compare(strings.Join(a, " "), strings.Join(b, " ")) })
	if len(args) != 2 || !slices.Equal(args[0], []string{sleep, "30"}) || !slices.Equal(args[1], []string{sleep, "31"}) {
		t.Errorf("children argv = %q", args)
	}
	self, err := Read("/proc", uint32(os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	if cg, err := ReadCgroup("/proc", uint32(os.Getpid())); err == nil && cg != self.Cgroup {
		t.Errorf("cgroup %q vs %q", cg, self.Cgroup)
	}
}

func TestReadRealEdgeCases(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()

	// A deleted executable.
	bin := filepath.Join(tmp, "aw-deleted-exe")
	data, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	del := exec.Command(bin, "30")
	if err := del.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = del.Process.Kill(); _ = del.Wait() })
	waitExe(t, uint32(del.Process.Pid), bin)
	if err := os.Remove(bin); err != nil {
		t.Fatal(err)
	}

	// A non-UTF-8 working directory.
	bad := filepath.Join(tmp, "caf\xe9-\xff")
	if err := os.Mkdir(bad, 0o755); err != nil {
		t.Fatal(err)
	}
	odd := exec.Command(sleep, "30")
	odd.Dir = bad
	if err := odd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = odd.Process.Kill(); _ = odd.Wait() })

	// A working directory longer than PATH_MAX, entered step by step.
	seg := strings.Repeat("x", 200)
	mk := exec.Command(os.Args[0], "-test.run=^$")
	mk.Env = append(os.Environ(), helperEnv+"=longcwd", "AW_SEG="+seg, "AW_SLEEP="+sleep)
	mk.Dir = tmp
	if err := mk.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mk.Process.Kill(); _ = mk.Wait() })
	waitExe(t, uint32(mk.Process.Pid), "")

	tests := []struct {
		name string
		pid  int
		want func(*Proc) error
	}{
		{"deleted exe", del.Process.Pid, func(p *Proc) error {
			if p.Exe != bin || !p.ExeDeleted {
				return fmt.Errorf("exe %q deleted %v", p.Exe, p.ExeDeleted)
			}
			return nil
		}},
		{"non-UTF-8 cwd", odd.Process.Pid, func(p *Proc) error {
			if p.Cwd != bad {
				return fmt.Errorf("cwd %q", p.Cwd)
			}
			return nil
		}},
		{"cwd beyond PATH_MAX", mk.Process.Pid, func(p *Proc) error {
			// The kernel cannot name it in a readlink; the rest is read.
			if p.Cwd != "" || len(p.Args) != 2 || p.Args[1] != "30" {
				return fmt.Errorf("cwd len %d args %q", len(p.Cwd), p.Args)
			}
			return nil
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Read("/proc", uint32(tc.pid))
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.want(p); err != nil {
				t.Fatal(err)
			}
		})
	}

	// A process that has exited and been reaped is gone.
	done := exec.Command(sleep, "0")
	if err := done.Run(); err != nil {
		t.Fatal(err)
	}
	if _, err := Read("/proc", uint32(done.Process.Pid)); !errors.Is(err, ErrGone) {
		t.Fatalf("Read of a reaped pid: %v, want ErrGone", err)
	}
}

// waitExe waits until pid runs an image named want ("" = argv "… 30").
func waitExe(t *testing.T, pid uint32, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if p, err := Read("/proc", pid); err == nil {
			if (want != "" && p.Exe == want) || (want == "" && len(p.Args) == 2 && p.Args[1] == "30") {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("pid %d never ran %q", pid, want)
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte(proctreetest.StatLine(42, "sleep", 'S', 7, 0, 12345)))
	f.Add([]byte(proctreetest.StatLine(5, "a) (b", 'R', 1, pfKthread, 9)))
	f.Add([]byte("1 () S"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseStat(b)
		if err == nil && s.Kernel != (s.Flags&pfKthread != 0) {
			t.Fatal("Kernel disagrees with Flags")
		}
	})
}

func FuzzParseStatus(f *testing.F) {
	f.Add([]byte("PPid:\t9\nUid:\t1000\t0\t0\t0\n"))
	f.Add([]byte("Uid:\t\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseStatus(b)
	})
}

func FuzzParseCgroup(f *testing.F) {
	f.Add([]byte("0::/user.slice\n"))
	f.Add([]byte("1:cpu:/a\n0::/b"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, ok := ParseCgroup(b)
		if ok && strings.Contains(p, "\n") {
			t.Fatalf("path %q spans lines", p)
		}
	})
}

func BenchmarkScan(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if snap, _ := Scan("/proc"); snap == nil {
			b.Fatal("no snapshot")
		}
	}
}
