//go:build linux

package agentconsoleexporter

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"golang.org/x/sys/unix"
)

// openPTY returns the path of a fresh pseudo-terminal's follower side: a
// real terminal, so that colour auto-detection is tested for real.
func openPTY(t *testing.T) string {
	t.Helper()
	leader, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	require.NoError(t, err)
	t.Cleanup(func() { leader.Close() })
	require.NoError(t, unix.IoctlSetPointerInt(int(leader.Fd()), unix.TIOCSPTLCK, 0))
	n, err := unix.IoctlGetUint32(int(leader.Fd()), unix.TIOCGPTN)
	require.NoError(t, err)
	return fmt.Sprintf("/dev/pts/%d", n)
}

func startedColor(t *testing.T, path, mode string) bool {
	t.Helper()
	cfg := createDefaultConfig()
	cfg.Path = path
	cfg.Color = mode
	e := newConsoleExporter(cfg, nil)
	require.NoError(t, e.Start(context.Background(), componenttest.NewNopHost()))
	defer func() { require.NoError(t, e.Shutdown(context.Background())) }()
	return e.r.color
}

func TestColorMode(t *testing.T) {
	pty := openPTY(t)
	file := filepath.Join(t.TempDir(), "out.log")

	assert.True(t, startedColor(t, pty, ColorAuto), "auto on a terminal")
	assert.False(t, startedColor(t, file, ColorAuto), "auto on a file")
	assert.False(t, startedColor(t, "/dev/null", ColorAuto), "a character device is not a terminal")
	assert.True(t, startedColor(t, file, ColorAlways))
	assert.False(t, startedColor(t, pty, ColorNever))

	t.Setenv("NO_COLOR", "1")
	assert.False(t, startedColor(t, pty, ColorAuto), "NO_COLOR wins in auto mode")
	assert.True(t, startedColor(t, file, ColorAlways), "but not over an explicit always")
}
