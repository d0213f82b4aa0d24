// Command guestinit is /init of the vmtest initramfs. It runs as PID 1 in
// the QEMU guest: it mounts the kernel filesystems the BPF tests need,
// checks that BPF LSM is active, runs the command from the guest config
// (the test binary), prints the exit marker the host runner parses, and
// powers the guest off.
//
// It must be built with CGO_ENABLED=0: the initramfs has no libc.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agentwatch/agentwatch/internal/vmtest"
)

func main() {
	code := run()
	// The marker goes on a line of its own even if the command left a
	// partial line behind.
	fmt.Printf("\n%s%d\n", vmtest.ExitMarker, code)
	powerOff()
}

func run() int {
	if err := setupConsole(); err != nil {
		// Nothing can be printed; the runner reports the missing marker.
		return vmtest.ExitSetupFailed
	}
	start := time.Now()
	if err := mountAll(); err != nil {
		return fail(vmtest.ExitSetupFailed, err)
	}
	if err := loopbackUp(); err != nil {
		return fail(vmtest.ExitSetupFailed, fmt.Errorf("bring up lo: %w", err))
	}

	var uts unix.Utsname
	_ = unix.Uname(&uts)
	lsm, lsmErr := os.ReadFile("/sys/kernel/security/lsm")
	fmt.Printf("vmtest: kernel %s, %d cpu(s), active LSMs: %s\n",
		unix.ByteSliceToString(uts.Release[:]), numCPU(), strings.TrimSpace(string(lsm)))

	cfg, err := loadConfig()
	if err != nil {
		return fail(vmtest.ExitSetupFailed, err)
	}
	if cfg.RequireBPFLSM {
		if lsmErr != nil {
			return fail(vmtest.ExitNoBPFLSM, fmt.Errorf("read active LSMs: %w", lsmErr))
		}
		if !hasWord(strings.TrimSpace(string(lsm)), "bpf") {
			return fail(vmtest.ExitNoBPFLSM, fmt.Errorf(
				"bpf is NOT among the active LSMs (%s): LSM programs cannot run in this guest; "+
					"check the lsm= kernel parameter and CONFIG_BPF_LSM", strings.TrimSpace(string(lsm))))
		}
	}

	fmt.Printf("vmtest: guest ready in %s, running %q\n", time.Since(start).Round(time.Millisecond), cfg.Args)
	code, err := runCommand(cfg)
	if err != nil {
		return fail(vmtest.ExitSetupFailed, err)
	}
	return code
}

// fail reports an init failure loudly; the runner also sees the exit code.
func fail(code int, err error) int {
	fmt.Fprintf(os.Stderr, "\n!!!!!!!!\nvmtest: GUEST SETUP FAILED: %v\n!!!!!!!!\n", err)
	return code
}

// setupConsole makes sure fds 0-2 are the console. The kernel opens
// /dev/console for init only if the initramfs has that node; the runner
// puts it there, and this is the fallback through devtmpfs.
func setupConsole() error {
	var st unix.Stat_t
	if unix.Fstat(1, &st) == nil {
		return nil
	}
	if err := os.MkdirAll("/dev", 0o755); err != nil {
		return err
	}
	if err := unix.Mount("devtmpfs", "/dev", "devtmpfs", 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
		return err
	}
	fd, err := unix.Open("/dev/console", unix.O_RDWR, 0)
	if err != nil {
		return err
	}
	for i := 0; i < 3; i++ {
		if err := unix.Dup3(fd, i, 0); err != nil && fd != i {
			return err
		}
	}
	return nil
}

type mount struct {
	fstype, dir, data string
	// required mounts are ones the BPF tests depend on: proc and sysfs for
	// everything, securityfs for the LSM list, bpffs for pinning, tracefs
	// for tracepoint ids. The rest are conveniences for tests.
	required bool
}

var mounts = []mount{
	{"devtmpfs", "/dev", "", true},
	{"proc", "/proc", "", true},
	{"sysfs", "/sys", "", true},
	{"securityfs", "/sys/kernel/security", "", true},
	{"tracefs", "/sys/kernel/tracing", "", true},
	{"bpf", "/sys/fs/bpf", "mode=0700", true},
	{"tmpfs", "/tmp", "mode=1777", true},
	{"debugfs", "/sys/kernel/debug", "", false},
	{"cgroup2", "/sys/fs/cgroup", "", false},
	{"devpts", "/dev/pts", "gid=5,mode=0620,ptmxmode=0666", false},
	{"tmpfs", "/dev/shm", "mode=1777", false},
	{"tmpfs", "/run", "mode=0755", false},
}

func mountAll() error {
	for _, m := range mounts {
		if err := os.MkdirAll(m.dir, 0o755); err != nil && m.required {
			return fmt.Errorf("mkdir %s: %w", m.dir, err)
		}
		err := unix.Mount(m.fstype, m.dir, m.fstype, unix.MS_NOSUID, m.data)
		if errors.Is(err, unix.EBUSY) {
			continue // devtmpfs may already be there (setupConsole, or CONFIG_DEVTMPFS_MOUNT)
		}
		if err != nil {
			if m.required {
				return fmt.Errorf("mount %s on %s: %w", m.fstype, m.dir, err)
			}
			fmt.Fprintf(os.Stderr, "vmtest: optional mount %s on %s failed: %v\n", m.fstype, m.dir, err)
		}
	}
	return nil
}

// loopbackUp sets IFF_UP on lo: a fresh kernel leaves it down, and tests
// that connect to 127.0.0.1 (socket_connect hooks) need it.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

func loadConfig() (vmtest.GuestConfig, error) {
	var cfg vmtest.GuestConfig
	b, err := os.ReadFile(vmtest.GuestConfigPath)
	if err != nil {
		return cfg, fmt.Errorf("read guest config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return cfg, fmt.Errorf("parse guest config %s: %w", vmtest.GuestConfigPath, err)
	}
	if len(cfg.Args) == 0 {
		return cfg, fmt.Errorf("guest config %s has no args", vmtest.GuestConfigPath)
	}
	return cfg, nil
}

// runCommand starts the command and reaps every child until it exits. As
// PID 1 the init inherits orphans; reaping them keeps tests that wait for
// a process to disappear from seeing zombies. exec.Cmd.Wait is not used:
// wait4(-1) would steal its child's status.
func runCommand(cfg vmtest.GuestConfig) (int, error) {
	cmd := exec.Command(cfg.Args[0], cfg.Args[1:]...)
	cmd.Dir = cfg.Dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	cmd.Env = append([]string{
		"PATH=/bin:/sbin:/usr/bin:/usr/sbin",
		"HOME=/root",
		"TMPDIR=/tmp",
		"CI=true",
		vmtest.InVMEnv + "=1",
	}, cfg.Env...)
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", cfg.Args[0], err)
	}
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("wait for %s: %w", cfg.Args[0], err)
		}
		if pid != cmd.Process.Pid {
			continue
		}
		switch {
		case ws.Exited():
			return ws.ExitStatus(), nil
		case ws.Signaled():
			fmt.Fprintf(os.Stderr, "vmtest: %s killed by signal %v\n", cfg.Args[0], ws.Signal())
			return 128 + int(ws.Signal()), nil
		}
	}
}

func powerOff() {
	unix.Sync()
	err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	// Returning from PID 1 panics the kernel; with panic=-1 and QEMU's
	// -no-reboot that still ends the VM, only less tidily.
	fmt.Fprintf(os.Stderr, "vmtest: power off failed: %v\n", err)
	os.Exit(1)
}

func numCPU() int {
	var set unix.CPUSet
	if unix.SchedGetaffinity(0, &set) != nil {
		return 0
	}
	return set.Count()
}

func hasWord(list, w string) bool {
	for _, s := range strings.Split(list, ",") {
		if s == w {
			return true
		}
	}
	return false
}
