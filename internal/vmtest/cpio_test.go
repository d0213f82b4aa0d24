package vmtest

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// cpioEntry is one record as the newc spec defines it, read back by
// readNewc, an independent reader kept in the test.
type cpioEntry struct {
	name         string
	mode         uint32
	nlink        uint32
	rdevMajor    uint32
	rdevMinor    uint32
	data         []byte
	headerOffset int
}

// readNewc parses a newc archive strictly: every header at a 4-byte
// boundary, magic 070701, NUL-terminated names, data padded to 4 bytes,
// and a trailer at the end.
func readNewc(t *testing.T, b []byte) []cpioEntry {
	t.Helper()
	var out []cpioEntry
	off := 0
	for {
		require.Zero(t, off%4, "header at %d is not 4-byte aligned", off)
		require.GreaterOrEqual(t, len(b)-off, 110, "truncated header at %d", off)
		h := string(b[off : off+110])
		require.Equal(t, "070701", h[:6], "magic at %d", off)
		field := func(i int) uint32 {
			v, err := strconv.ParseUint(h[6+8*i:14+8*i], 16, 32)
			require.NoError(t, err)
			return uint32(v)
		}
		e := cpioEntry{mode: field(1), nlink: field(4), rdevMajor: field(9), rdevMinor: field(10), headerOffset: off}
		size, namesize := int(field(6)), int(field(11))
		require.Zero(t, field(12), "check field must be 0 in newc")
		nameStart := off + 110
		require.Equal(t, byte(0), b[nameStart+namesize-1], "name not NUL-terminated")
		e.name = string(b[nameStart : nameStart+namesize-1])
		dataStart := nameStart + namesize
		dataStart += (4 - dataStart%4) % 4
		e.data = b[dataStart : dataStart+size]
		for _, p := range b[nameStart+namesize : dataStart] {
			require.Zero(t, p, "name padding must be NULs")
		}
		off = dataStart + size
		off += (4 - off%4) % 4
		if e.name == "TRAILER!!!" {
			require.Equal(t, len(b), off, "bytes after the trailer")
			return out
		}
		out = append(out, e)
	}
}

func TestCPIOWriterLayout(t *testing.T) {
	var buf bytes.Buffer
	w := NewCPIOWriter(&buf)
	require.NoError(t, w.CharDev("/dev/console", 0o600, 5, 1))
	require.NoError(t, w.Bytes("/a/b/c.txt", 0o644, []byte("hello")))              // 5 bytes: data needs padding
	require.NoError(t, w.Bytes("a/b/d.bin", 0o755, []byte("1234")))                // aligned already; parents not repeated
	require.NoError(t, w.Symlink("/bin/sh", "busybox"))                            // 7-byte target
	require.NoError(t, w.Dir("/a", 0o700))                                         // already emitted: no duplicate
	require.NoError(t, w.Bytes("/empty", 0o600, nil))                              // zero-length file
	require.NoError(t, w.Bytes("/x/"+strings.Repeat("n", 13), 0o644, []byte("z"))) // odd name lengths
	require.NoError(t, w.Close())

	entries := readNewc(t, buf.Bytes())
	var names []string
	byName := map[string]cpioEntry{}
	for _, e := range entries {
		names = append(names, e.name)
		byName[e.name] = e
	}
	require.Equal(t, []string{"dev", "dev/console", "a", "a/b", "a/b/c.txt", "a/b/d.bin", "bin", "bin/sh", "empty", "x", "x/nnnnnnnnnnnnn"}, names,
		"parents come first, once, without a leading slash")

	console := byName["dev/console"]
	require.Equal(t, uint32(0o020600), console.mode)
	require.Equal(t, [2]uint32{5, 1}, [2]uint32{console.rdevMajor, console.rdevMinor})
	require.Equal(t, uint32(0o040755), byName["a"].mode)
	require.Equal(t, uint32(2), byName["a"].nlink)
	require.Equal(t, "hello", string(byName["a/b/c.txt"].data))
	require.Equal(t, uint32(0o100644), byName["a/b/c.txt"].mode)
	require.Equal(t, uint32(0o100755), byName["a/b/d.bin"].mode)
	require.Equal(t, uint32(0o120777), byName["bin/sh"].mode)
	require.Equal(t, "busybox", string(byName["bin/sh"].data))
	require.Empty(t, byName["empty"].data)
}

func TestCPIOWriterRejects(t *testing.T) {
	w := NewCPIOWriter(&bytes.Buffer{})
	require.Error(t, w.Bytes("/", 0o644, nil))
	require.Error(t, w.Bytes("../etc/passwd", 0o644, nil))
	require.Error(t, w.File("/short", 0o644, strings.NewReader("ab"), 3), "a short reader must fail")
	require.Error(t, w.Close(), "errors are sticky")
}

// TestCPIOBusyboxReads checks the archive against another implementation:
// busybox cpio, which the design names for building initramfs images.
func TestCPIOBusyboxReads(t *testing.T) {
	if RequireStatic(HostBusybox) != nil {
		t.Skip("busybox-static not installed (make test-vm installs it)")
	}
	var buf bytes.Buffer
	w := NewCPIOWriter(&buf)
	require.NoError(t, w.Bytes("/etc/hosts", 0o644, []byte("127.0.0.1 localhost\n")))
	require.NoError(t, w.Symlink("/bin/sh", "busybox"))
	require.NoError(t, w.Close())

	dir := t.TempDir()
	cmd := exec.Command(HostBusybox, "cpio", "-i", "-d")
	cmd.Dir, cmd.Stdin = dir, &buf
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	got, err := os.ReadFile(dir + "/etc/hosts")
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1 localhost\n", string(got))
	target, err := os.Readlink(dir + "/bin/sh")
	require.NoError(t, err)
	require.Equal(t, "busybox", target)
}
