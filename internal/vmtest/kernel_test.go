package vmtest

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseMetaDepends(t *testing.T) {
	// An `apt-cache show --no-all-versions linux-image-cloud-amd64` record.
	rec := "Package: linux-image-cloud-amd64\nSource: linux-signed-amd64 (6.1.192+2)\nVersion: 6.1.192-2\n" +
		"Depends: linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2)\nDescription-en: Linux for x86-64 cloud (meta-package)\n"
	pkg, ver := parseMetaDepends(rec)
	require.Equal(t, "linux-image-6.1.0-56-cloud-amd64", pkg)
	require.Equal(t, "6.1.192-2", ver)

	pkg, ver = parseMetaDepends("Depends: initramfs-tools, linux-image-6.12.9-cloud-amd64\n")
	require.Equal(t, "linux-image-6.12.9-cloud-amd64", pkg)
	require.Empty(t, ver, "an unversioned dependency leaves the version to apt-cache policy")

	pkg, _ = parseMetaDepends("Depends: linux-image-6.1.0-56-amd64 (= 6.1.192-2)\n")
	require.Empty(t, pkg, "only the cloud flavour is the guest kernel")
}

func TestLSMWithBPF(t *testing.T) {
	dir := t.TempDir()
	k := &Kernel{Package: "linux-image-test", Dir: dir}
	write := func(cfg string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "config"), []byte(cfg), 0o644))
	}

	write("CONFIG_X=y\nCONFIG_BPF_LSM=y\nCONFIG_LSM=\"landlock,lockdown,yama,apparmor,bpf\"\n")
	lsm, err := k.LSMWithBPF()
	require.NoError(t, err)
	require.Equal(t, "landlock,lockdown,yama,apparmor,bpf", lsm, "the kernel's order is kept")

	write("CONFIG_X=y\nCONFIG_BPF_LSM=y\nCONFIG_LSM=\"landlock,yama\"\n")
	lsm, err = k.LSMWithBPF()
	require.NoError(t, err)
	require.Equal(t, "landlock,yama,bpf", lsm)

	write("CONFIG_X=y\n# CONFIG_BPF_LSM is not set\nCONFIG_LSM=\"landlock,yama,bpf\"\n")
	_, err = k.LSMWithBPF()
	require.ErrorContains(t, err, "without CONFIG_BPF_LSM")
}

func TestCachedKernelFallback(t *testing.T) {
	dir := t.TempDir()
	_, err := cachedFallback(dir, os.ErrNotExist, io.Discard)
	require.ErrorIs(t, err, os.ErrNotExist, "no cache: the resolve error is reported")

	kd := filepath.Join(dir, "linux-image-6.1.0-9-cloud-amd64_6.1.1-1")
	require.NoError(t, os.MkdirAll(kd, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(kd, "kernel.json"),
		[]byte(`{"package":"linux-image-6.1.0-9-cloud-amd64","version":"6.1.1-1","release":"6.1.0-9-cloud-amd64"}`), 0o644))
	k, err := cachedFallback(dir, os.ErrNotExist, io.Discard)
	require.NoError(t, err, "offline, a cached kernel is used")
	require.Equal(t, "6.1.0-9-cloud-amd64", k.Release)
	require.Equal(t, filepath.Join(kd, "vmlinuz"), k.BootImage(), "no vmlinux: boot the bzImage")
}

func TestResolveMemo(t *testing.T) {
	lists, cache := t.TempDir(), t.TempDir()
	old := aptListsDir
	aptListsDir = lists
	t.Cleanup(func() { aptListsDir = old })

	require.Empty(t, listsStamp(), "no lists, no stamp")
	list := filepath.Join(lists, "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4")
	require.NoError(t, os.WriteFile(list, []byte("v1"), 0o644))
	stamp := listsStamp()
	require.NotEmpty(t, stamp)

	memo, err := json.Marshal(resolved{Lists: stamp, Package: "linux-image-6.1.0-99-cloud-amd64", Version: "6.1.999-1"})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(cache, "resolved.json"), memo, 0o644))
	// Cancelled: were apt-cache called, it would fail.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	pkg, ver, err := resolveMemo(ctx, cache)
	require.NoError(t, err, "unchanged lists: the memo answers without apt-cache")
	require.Equal(t, "linux-image-6.1.0-99-cloud-amd64", pkg)
	require.Equal(t, "6.1.999-1", ver)

	require.NoError(t, os.WriteFile(list, []byte("v2, after apt-get update"), 0o644))
	require.NotEqual(t, stamp, listsStamp())
	_, _, err = resolveMemo(ctx, cache)
	require.Error(t, err, "changed lists: apt-cache is asked again")
}
