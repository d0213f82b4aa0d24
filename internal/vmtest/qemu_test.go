package vmtest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func scanAll(t *testing.T, chunks ...string) (*consoleScanner, string) {
	t.Helper()
	var out bytes.Buffer
	s := &consoleScanner{out: &out}
	for _, c := range chunks {
		n, err := s.Write([]byte(c))
		require.NoError(t, err)
		require.Equal(t, len(c), n, "Write must report the bytes it was given, \\r included")
	}
	s.flush()
	return s, out.String()
}

func TestConsoleScannerMarker(t *testing.T) {
	s, out := scanAll(t, "=== RUN TestX\r\n--- PASS\r\nAGENTWATCH-VM-", "EXIT=3\r\n[ 1.9] reboot: Power down\r\n")
	require.True(t, s.found, "a marker split across writes still counts")
	require.Equal(t, 3, s.code)
	require.Equal(t, "=== RUN TestX\n--- PASS\nAGENTWATCH-VM-EXIT=3\n[ 1.9] reboot: Power down\n", out,
		"the console passes through, without carriage returns")

	s, _ = scanAll(t, "AGENTWATCH-VM-EXIT=1\n", "AGENTWATCH-VM-EXIT=0\n")
	require.Equal(t, 0, s.code, "the last marker wins")

	s, _ = scanAll(t, "AGENTWATCH-VM-EXIT=7") // no newline before EOF
	require.True(t, s.found)
	require.Equal(t, 7, s.code)
}

func TestConsoleScannerIgnoresFakes(t *testing.T) {
	for _, in := range []string{
		"log: AGENTWATCH-VM-EXIT=0\n",   // mid-line: a test printing the text
		"AGENTWATCH-VM-EXIT=\n",         // no status
		"AGENTWATCH-VM-EXIT=zero\n",     // not a number
		strings.Repeat("x", 100) + "\n", // long line, no marker
		"AGENTWATCH-VM-EXIT" + "=0x1\n", // not decimal
	} {
		s, _ := scanAll(t, in)
		require.False(t, s.found, "%q", in)
	}
}

func TestVMArgs(t *testing.T) {
	vm := VM{Kernel: "/k/vmlinux", Initramfs: "/i.cpio", LSM: "landlock,bpf", Append: []string{"loglevel=7"}}
	args := strings.Join(vm.Args(), " ")
	for _, want := range []string{
		"-accel tcg", "-m 256", "-smp 1", "-nographic", "-no-reboot", "-nic none",
		"-kernel /k/vmlinux", "-initrd /i.cpio",
		"-append console=ttyS0 panic=-1 quiet lsm=landlock,bpf loglevel=7",
	} {
		require.Contains(t, args, want)
	}
	require.NotContains(t, args, "-icount")
	vm.Icount = "shift=0"
	require.Contains(t, strings.Join(vm.Args(), " "), "-icount shift=0")
}

// TestVMRunWithoutMarker runs a stand-in "QEMU" that exits without a
// marker, and one that prints it: the runner must tell them apart.
func TestVMRunWithoutMarker(t *testing.T) {
	dir := t.TempDir()
	k := filepath.Join(dir, "k")
	require.NoError(t, os.WriteFile(k, nil, 0o644))
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755))
		return p
	}
	var console bytes.Buffer
	vm := VM{QEMU: script("panics", `echo "Kernel panic - not syncing"; exit 0`), Kernel: k, Initramfs: k, Console: &console}
	_, err := vm.Run(context.Background())
	require.ErrorIs(t, err, ErrNoExitMarker)
	require.Contains(t, console.String(), "Kernel panic")

	vm.QEMU = script("fails", `printf 'tests...\r\n\r\nAGENTWATCH-VM-EXIT=2\r\n'`)
	res, err := vm.Run(context.Background())
	require.NoError(t, err)
	require.Equal(t, 2, res.ExitCode)

	vm.QEMU = script("hangs", `exec sleep 30`)
	vm.Timeout = 300 * time.Millisecond
	start := time.Now()
	_, err = vm.Run(context.Background())
	require.True(t, errors.Is(err, ErrNoExitMarker) && strings.Contains(err.Error(), "timed out"), "%v", err)
	require.Less(t, time.Since(start), 10*time.Second, "the timeout must stop the VM")
}
