package vmtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// VM is one QEMU boot of a kernel and an initramfs.
type VM struct {
	QEMU      string // default qemu-system-x86_64 from PATH
	Kernel    string // -kernel: a vmlinux with a PVH note, or a bzImage
	Initramfs string
	// LSM is the lsm= boot parameter; "" keeps the kernel's default list.
	LSM string
	// Append holds extra kernel parameters.
	Append []string
	// MemoryMB defaults to 256: the initramfs (test binary included) lives
	// in RAM, and a 50 MB test binary fits with room to spare.
	MemoryMB int
	// CPUs defaults to 1. TCG emulates each vCPU in a host thread, and the
	// machines have 2 cores shared with everything else.
	CPUs int
	// BIOS is the -bios firmware. Default: qboot, a minimal firmware
	// that only loads the kernel (faster than SeaBIOS, and it writes no
	// screen-clearing escapes to the serial console), when QEMU ships it;
	// else QEMU's default.
	BIOS string
	// Icount is QEMU's -icount (e.g. "shift=0"); "" leaves it off. With
	// it the guest's clocks count emulated instructions (2^shift ns
	// each) instead of following the host's, so what a timing test in
	// the guest measures does not depend on how loaded the host is.
	Icount string
	// Timeout bounds the whole boot; default 10 minutes.
	Timeout time.Duration
	// Console receives the serial console (kernel and guest output) and
	// QEMU's own messages, as they come; default os.Stdout.
	Console io.Writer
}

// Result is what a boot that reached the exit marker reports.
type Result struct {
	ExitCode int           // the guest command's status, from the marker
	Elapsed  time.Duration // QEMU's wall time
}

// ErrNoExitMarker means the guest stopped without reporting a status: a
// kernel panic, an init crash, or a timeout. The console shows which.
var ErrNoExitMarker = errors.New("the guest printed no " + ExitMarker + " line")

func (vm VM) withDefaults() VM {
	if vm.QEMU == "" {
		vm.QEMU = "qemu-system-x86_64"
	}
	if vm.MemoryMB == 0 {
		vm.MemoryMB = 256
	}
	if vm.CPUs == 0 {
		vm.CPUs = 1
	}
	if vm.Timeout == 0 {
		vm.Timeout = 10 * time.Minute
	}
	if vm.BIOS == "" {
		if _, err := os.Stat(qbootPath); err == nil {
			vm.BIOS = qbootPath
		}
	}
	if vm.Console == nil {
		vm.Console = os.Stdout
	}
	return vm
}

// qbootPath is where Debian's qemu-system-data installs qboot.
const qbootPath = "/usr/share/qemu/qboot.rom"

// Cmdline is the kernel command line.
func (vm VM) Cmdline() string {
	// panic=-1 reboots at once on a panic, and -no-reboot turns that reboot
	// into QEMU exiting, so a crashed guest ends the run instead of hanging
	// until the timeout. quiet keeps boot messages out of the test log;
	// warnings and oopses still print.
	p := []string{"console=ttyS0", "panic=-1", "quiet"}
	if vm.LSM != "" {
		p = append(p, "lsm="+vm.LSM)
	}
	return strings.Join(append(p, vm.Append...), " ")
}

// Args is QEMU's command line.
func (vm VM) Args() []string {
	vm = vm.withDefaults()
	args := []string{
		// KVM is not available on these machines; TCG is explicit so a host
		// that has KVM behaves the same as CI.
		"-accel", "tcg",
		// q35 and pc boot equally fast here (about 2 s to the init);
		// max exposes every CPU feature TCG emulates, closer to the hosts
		// the collector runs on than the default qemu64.
		"-machine", "q35", "-cpu", "max",
		"-m", strconv.Itoa(vm.MemoryMB), "-smp", strconv.Itoa(vm.CPUs),
		// -nographic puts the serial console on stdio. No NIC: the tests use
		// loopback, and the default NIC's iPXE ROM only slows the boot.
		"-nographic", "-nic", "none", "-no-reboot",
		"-kernel", vm.Kernel, "-initrd", vm.Initramfs,
		"-append", vm.Cmdline(),
	}
	if vm.BIOS != "" {
		args = append(args, "-bios", vm.BIOS)
	}
	if vm.Icount != "" {
		args = append(args, "-icount", vm.Icount)
	}
	return args
}

// Run boots the VM, streams its console, and returns the guest command's
// exit status from the marker line. An error means the status is unknown.
func (vm VM) Run(ctx context.Context) (Result, error) {
	vm = vm.withDefaults()
	for _, f := range []string{vm.Kernel, vm.Initramfs} {
		if _, err := os.Stat(f); err != nil {
			return Result{}, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, vm.Timeout)
	defer cancel()
	scan := &consoleScanner{out: vm.Console}
	cmd := exec.CommandContext(ctx, vm.QEMU, vm.Args()...)
	// stdin stays /dev/null: with a terminal there, -nographic would put
	// it in raw mode and read keystrokes as monitor commands.
	cmd.Stdout, cmd.Stderr = scan, scan
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	res := Result{Elapsed: time.Since(start)}
	scan.flush()
	switch {
	case scan.found:
		res.ExitCode = scan.code
		if ctx.Err() != nil {
			// The status is known; only the power-off hung.
			fmt.Fprintf(vm.Console, "vmtest: WARNING: QEMU did not exit after the guest reported its status\n")
		}
		return res, nil
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return res, fmt.Errorf("%w: timed out after %s", ErrNoExitMarker, vm.Timeout)
	case err != nil:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return res, fmt.Errorf("%w: %s exited with %v", ErrNoExitMarker, vm.QEMU, ee.ProcessState)
		}
		return res, fmt.Errorf("run %s: %w", vm.QEMU, err)
	default:
		return res, fmt.Errorf("%w (did the kernel panic, or the init crash?)", ErrNoExitMarker)
	}
}

// consoleScanner passes the console through and watches for the exit
// marker. Only a marker at the start of a line counts (the init prints a
// newline before it), so a test that logs the marker text mid-line does
// not fake a status. The last marker wins.
type consoleScanner struct {
	out   io.Writer
	line  []byte // the start of the current line, enough to match
	found bool
	code  int
}

const maxMarkerLine = 64

func (s *consoleScanner) Write(p []byte) (int, error) {
	// The serial line ends lines with \r\n; logs read better without \r.
	clean := bytes.ReplaceAll(p, []byte{'\r'}, nil)
	_, _ = s.out.Write(clean) // a closed console must not kill the guest
	for _, b := range clean {
		if b == '\n' {
			s.flush()
			continue
		}
		if len(s.line) < maxMarkerLine {
			s.line = append(s.line, b)
		}
	}
	return len(p), nil
}

func (s *consoleScanner) flush() {
	if rest, ok := strings.CutPrefix(string(s.line), ExitMarker); ok {
		if code, err := strconv.Atoi(strings.TrimSpace(rest)); err == nil {
			s.found, s.code = true, code
		}
	}
	s.line = s.line[:0]
}
