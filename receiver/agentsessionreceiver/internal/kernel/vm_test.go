//go:build vmtest

// Tests in this file run in the QEMU guest (make test-vm), where BPF LSM
// programs load. The build tag, rather than a skip on the host, keeps
// them out of the host's `go test ./...` entirely: in CI a kernel test
// must run or fail, never skip.

package kernel

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/agentwatch/agentwatch/internal/testenv"
	"github.com/agentwatch/agentwatch/internal/vmtest"
)

// TestVMProbeLSM checks the guest is what the LSM tests need: bpf among
// the active LSMs, kernel BTF for CO-RE, and the LSM probe program
// loading, attaching and firing.
func TestVMProbeLSM(t *testing.T) {
	vmtest.RequireGuest(t)

	lsm, err := os.ReadFile("/sys/kernel/security/lsm")
	require.NoError(t, err, "securityfs must be mounted by the guest init")
	require.Contains(t, strings.Split(strings.TrimSpace(string(lsm)), ","), "bpf",
		"bpf must be an active LSM in the guest")

	_, err = os.Stat("/sys/kernel/btf/vmlinux")
	require.NoError(t, err, "the guest kernel must expose BTF for CO-RE relocations")

	require.NoError(t, ProbeLSM(""), "the LSM probe program must load, attach and fire in the guest")
}

// TestVMGuestEnvironment pins down what the guest init provides, which
// the LSM and enforcement tests rely on: root, CI=true, the kernel file
// systems, a working loopback, a shell, and go test's working directory.
func TestVMGuestEnvironment(t *testing.T) {
	vmtest.RequireGuest(t)
	require.True(t, testenv.InCI(), "the guest runs tests with CI=true: nothing may skip")
	require.Zero(t, os.Geteuid())

	for path, magic := range map[string]int64{
		"/sys/fs/bpf":          unix.BPF_FS_MAGIC,
		"/sys/kernel/tracing":  unix.TRACEFS_MAGIC,
		"/sys/kernel/security": unix.SECURITYFS_MAGIC,
		"/proc":                unix.PROC_SUPER_MAGIC,
	} {
		var st unix.Statfs_t
		require.NoError(t, unix.Statfs(path, &st), path)
		require.Equal(t, magic, int64(st.Type), "%s has the wrong file system", path)
	}

	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err, "loopback must be up")
	defer ln.Close()
	c, err := net.Dial("tcp4", ln.Addr().String())
	require.NoError(t, err)
	c.Close()

	out, err := exec.Command("/bin/sh", "-c", "echo $((6*7))").Output()
	require.NoError(t, err, "busybox sh must run in the guest")
	require.Equal(t, "42\n", string(out))

	wd, err := os.Getwd()
	require.NoError(t, err)
	require.Equal(t, filepath.Join("/src", "receiver", "agentsessionreceiver", "internal", "kernel"), wd,
		"tests run in their package directory, as under go test")
}
