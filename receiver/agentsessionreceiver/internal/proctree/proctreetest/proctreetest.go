// Package proctreetest writes fake procfs trees, for the edge cases a real
// /proc cannot be made to show on demand (a parent pid reused, garbage
// files, odd bytes in symlink targets).
package proctreetest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// PFKthread is the kernel-thread bit of the stat flags field.
const PFKthread = 0x00200000

// Proc is one fake process.
type Proc struct {
	PID, PPID uint32
	Comm      string
	State     byte // 'S' when zero
	Flags     uint32
	Start     uint64 // ticks
	UID, EUID uint32
	Exe       string // symlink target; "" = no link (unreadable)
	Cwd       string
	Cmdline   string // NUL-separated, as the kernel writes it
	Cgroup    string // v2 path
	BadStat   bool   // stat holds garbage
}

// StatLine renders a /proc/<pid>/stat line with 52 fields, as 6.x kernels
// write it; only state, ppid, flags and starttime carry values.
func StatLine(pid uint32, comm string, state byte, ppid uint32, flags uint32, start uint64) string {
	f := []string{strconv.Itoa(int(pid)), "(" + comm + ")", string(state), strconv.Itoa(int(ppid)),
		"1", "1", "0", "-1", strconv.Itoa(int(flags))}
	for len(f) < 21 {
		f = append(f, "0")
	}
	f = append(f, strconv.FormatUint(start, 10))
	for len(f) < 52 {
		f = append(f, "0")
	}
	return strings.Join(f, " ") + "\n"
}

// Write creates root/<pid>/ for p.
func Write(t testing.TB, root string, p Proc) {
	t.Helper()
	d := filepath.Join(root, strconv.Itoa(int(p.PID)))
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if p.State == 0 {
		p.State = 'S'
	}
	stat := StatLine(p.PID, p.Comm, p.State, p.PPID, p.Flags, p.Start)
	if p.BadStat {
		stat = "garbage"
	}
	files := map[string]string{
		"stat":    stat,
		"status":  fmt.Sprintf("Name:\t%s\nPPid:\t%d\nUid:\t%d\t%d\t%d\t%d\n", p.Comm, p.PPID, p.UID, p.EUID, p.EUID, p.EUID),
		"cmdline": p.Cmdline,
		"cgroup":  "0::" + p.Cgroup + "\n",
	}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(d, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for n, target := range map[string]string{"exe": p.Exe, "cwd": p.Cwd} {
		if target == "" {
			continue
		}
		_ = os.Remove(filepath.Join(d, n))
		if err := os.Symlink(target, filepath.Join(d, n)); err != nil {
			t.Fatal(err)
		}
	}
}

// Remove deletes root/<pid>/, as if the process was reaped.
func Remove(t testing.TB, root string, pid uint32) {
	t.Helper()
	if err := os.RemoveAll(filepath.Join(root, strconv.Itoa(int(pid)))); err != nil {
		t.Fatal(err)
	}
}

// WriteBootID creates root/sys/kernel/random/boot_id.
func WriteBootID(t testing.TB, root, id string) {
	t.Helper()
	d := filepath.Join(root, "sys", "kernel", "random")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "boot_id"), []byte(id+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}
