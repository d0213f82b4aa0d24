package vmtest

import (
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// writeStaticELF writes the smallest ELF file debug/elf accepts: an
// x86-64 executable header with no program headers, so no PT_INTERP.
// (The test binary itself is not static: testify pulls in net, and cgo.)
func writeStaticELF(t *testing.T, path string) {
	t.Helper()
	h := make([]byte, 64)
	copy(h, "\x7fELF")
	h[4], h[5], h[6] = 2, 1, 1 // ELFCLASS64, little endian, EV_CURRENT
	binary.LittleEndian.PutUint16(h[16:], uint16(elf.ET_EXEC))
	binary.LittleEndian.PutUint16(h[18:], uint16(elf.EM_X86_64))
	binary.LittleEndian.PutUint32(h[20:], 1)
	binary.LittleEndian.PutUint16(h[52:], 64) // e_ehsize
	binary.LittleEndian.PutUint16(h[54:], 56) // e_phentsize
	binary.LittleEndian.PutUint16(h[58:], 64) // e_shentsize
	require.NoError(t, os.WriteFile(path, h, 0o755))
	require.NoError(t, RequireStatic(path))
}

func TestBuildInitramfs(t *testing.T) {
	dir := t.TempDir()
	init := filepath.Join(dir, "init")
	writeStaticELF(t, init)
	data := filepath.Join(dir, "data.txt")
	require.NoError(t, os.WriteFile(data, []byte("payload"), 0o600))

	cfg := GuestConfig{Args: []string{"/test.bin", "-test.v"}, Dir: "/src/pkg", RequireBPFLSM: true}
	out := filepath.Join(dir, "initramfs.cpio")
	withBusybox := RequireStatic(HostBusybox) == nil
	spec := InitramfsSpec{Init: init, Config: cfg, Files: []File{{Host: data, Guest: "/src/pkg/testdata/data.txt"}}}
	if withBusybox {
		spec.Busybox = HostBusybox
		// A File at an applet's path wins over the busybox link.
		spec.Files = append(spec.Files, File{Host: data, Guest: "/bin/cat", Mode: 0o755})
	}
	require.NoError(t, BuildInitramfs(out, spec))

	b, err := os.ReadFile(out)
	require.NoError(t, err)
	entries := map[string]cpioEntry{}
	for _, e := range readNewc(t, b) {
		_, dup := entries[e.name]
		require.False(t, dup, "duplicate entry %s", e.name)
		entries[e.name] = e
	}
	require.Equal(t, uint32(0o100755), entries["init"].mode)
	require.Equal(t, [2]uint32{5, 1}, [2]uint32{entries["dev/console"].rdevMajor, entries["dev/console"].rdevMinor})
	require.Contains(t, entries, "src/pkg", "the working directory exists")
	require.Equal(t, "payload", string(entries["src/pkg/testdata/data.txt"].data))
	require.Equal(t, uint32(0o100600), entries["src/pkg/testdata/data.txt"].mode, "host permissions are kept")

	var got GuestConfig
	require.NoError(t, json.Unmarshal(entries[strings.TrimPrefix(GuestConfigPath, "/")].data, &got))
	require.Equal(t, cfg, got)

	if withBusybox {
		require.Equal(t, "busybox", string(entries["bin/sh"].data), "applets link to /bin/busybox")
		require.Equal(t, "payload", string(entries["bin/cat"].data))
	}
}

func TestBuildInitramfsRejectsDynamicInit(t *testing.T) {
	dynamic := "/bin/sh"
	if _, err := elfInterp(dynamic); err != nil {
		t.Skip(err)
	}
	if RequireStatic(dynamic) == nil {
		t.Skip("/bin/sh is static here")
	}
	err := BuildInitramfs(filepath.Join(t.TempDir(), "x.cpio"), InitramfsSpec{Init: dynamic})
	require.ErrorContains(t, err, "CGO_ENABLED=0")
}

func TestHostFilesWithLibs(t *testing.T) {
	sh, err := filepath.EvalSymlinks("/bin/sh")
	require.NoError(t, err)
	interp, err := elfInterp(sh)
	require.NoError(t, err)
	if interp == "" {
		t.Skip("/bin/sh is static here")
	}
	files, err := HostFilesWithLibs([]string{sh + ":/bin/dash"})
	require.NoError(t, err)
	guest := map[string]bool{}
	for _, f := range files {
		guest[f.Guest] = true
	}
	require.True(t, guest["/bin/dash"])
	require.True(t, guest[interp], "the loader comes along: %v", files)
	var libc bool
	for g := range guest {
		libc = libc || strings.Contains(g, "libc.so")
	}
	require.True(t, libc, "libc comes along: %v", files)

	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a", "b", "f"), []byte("x"), 0o644))
	files, err = HostFilesWithLibs([]string{dir + ":/data"})
	require.NoError(t, err)
	require.Equal(t, []File{{Host: filepath.Join(dir, "a", "b", "f"), Guest: "/data/a/b/f"}}, files)
}
