//go:build linux

package agentconsoleexporter

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// isTerminal asks the tty driver rather than trusting the file mode:
// /dev/null is a character device too.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

func errnoName(n int64) string {
	return unix.ErrnoName(syscall.Errno(n))
}

func signalName(n int64) string {
	return unix.SignalName(syscall.Signal(n))
}
