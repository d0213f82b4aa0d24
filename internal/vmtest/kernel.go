package vmtest

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// MetaPackage always depends on the newest ABI's kernel package. Debian
// keeps only that one in the archive, so a pinned name would stop
// resolving at the next ABI bump; the name is resolved through it instead.
const MetaPackage = "linux-image-cloud-amd64"

// Kernel is an unpacked guest kernel in the cache.
type Kernel struct {
	Package string `json:"package"` // e.g. linux-image-6.1.0-56-cloud-amd64
	Version string `json:"version"` // Debian version, e.g. 6.1.192-2
	Release string `json:"release"` // uname -r, e.g. 6.1.0-56-cloud-amd64
	// Dir holds the files below; it is named after package and version.
	Dir string `json:"-"`
}

// BzImage is the kernel as Debian ships it (/boot/vmlinuz-*).
func (k *Kernel) BzImage() string { return filepath.Join(k.Dir, "vmlinuz") }

// Vmlinux is the uncompressed ELF image taken out of the bzImage. QEMU
// boots it through its PVH entry point (CONFIG_PVH), which skips the BIOS
// real-mode setup and the in-guest decompression; see ExtractVmlinux.
func (k *Kernel) Vmlinux() string { return filepath.Join(k.Dir, "vmlinux") }

// BootImage is what QEMU's -kernel gets: the vmlinux if it could be
// extracted, else the bzImage.
func (k *Kernel) BootImage() string {
	if _, err := os.Stat(k.Vmlinux()); err == nil {
		return k.Vmlinux()
	}
	return k.BzImage()
}

// Config is the kernel's build configuration (/boot/config-*).
func (k *Kernel) Config() string { return filepath.Join(k.Dir, "config") }

// DefaultCacheDir is $XDG_CACHE_HOME/agentwatch/vm (~/.cache/...): outside
// the work tree so that fresh clones (CI runs in one) reuse the download.
func DefaultCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory (set XDG_CACHE_HOME or pass a cache dir): %w", err)
	}
	return filepath.Join(d, "agentwatch", "vm"), nil
}

// FetchKernel returns the current cloud kernel from cacheDir, downloading
// and unpacking it first if the cache does not have it. A warm cache costs
// no download, and no apt-cache call while the package lists are
// unchanged. `apt-get update` runs only when the package cannot be
// resolved or downloaded with the current package lists. Progress goes
// to logw.
func FetchKernel(ctx context.Context, cacheDir string, logw io.Writer) (*Kernel, error) {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, err
	}
	updated := false
	update := func(why error) error {
		if updated {
			return why
		}
		updated = true
		fmt.Fprintf(logw, "vmtest: %v; running apt-get update\n", why)
		if out, err := command(ctx, "", "apt-get", "update", "-qq"); err != nil {
			return fmt.Errorf("%v, and apt-get update failed: %w\n%s", why, err, out)
		}
		return nil
	}

	pkg, version, err := resolveMemo(ctx, cacheDir)
	if err != nil {
		if uerr := update(err); uerr != nil {
			return cachedFallback(cacheDir, uerr, logw)
		}
		if pkg, version, err = resolveMemo(ctx, cacheDir); err != nil {
			return cachedFallback(cacheDir, err, logw)
		}
	}

	k := &Kernel{Package: pkg, Version: version, Dir: filepath.Join(cacheDir, pkg+"_"+version)}
	if b, err := os.ReadFile(filepath.Join(k.Dir, "kernel.json")); err == nil {
		if err := json.Unmarshal(b, k); err == nil {
			return k, nil // warm: the directory only appears once complete
		}
	}

	fmt.Fprintf(logw, "vmtest: downloading %s %s (via %s)\n", pkg, version, MetaPackage)
	tmp, err := os.MkdirTemp(cacheDir, ".fetch-")
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp makes it 0700
		return nil, err
	}
	defer os.RemoveAll(tmp)
	deb, err := aptDownload(ctx, tmp, pkg, version)
	if err != nil {
		// The lists may name a version the mirror no longer serves.
		if uerr := update(err); uerr != nil {
			return nil, uerr
		}
		if pkg2, version2, rerr := resolveMemo(ctx, cacheDir); rerr == nil && (pkg2 != pkg || version2 != version) {
			// A new ABI or version appeared: start over with it.
			return FetchKernel(ctx, cacheDir, logw)
		}
		if deb, err = aptDownload(ctx, tmp, pkg, version); err != nil {
			return nil, err
		}
	}
	release, err := unpackBoot(ctx, deb, tmp)
	if err != nil {
		return nil, err
	}
	if err := os.Remove(deb); err != nil {
		return nil, err
	}
	k.Release = release
	// The ELF only makes the boot faster; the bzImage boots too.
	if err := extractVmlinuxFile(filepath.Join(tmp, "vmlinuz"), filepath.Join(tmp, "vmlinux")); err != nil {
		fmt.Fprintf(logw, "vmtest: WARNING: %v; booting the bzImage instead\n", err)
	}
	meta, _ := json.MarshalIndent(k, "", "  ")
	if err := os.WriteFile(filepath.Join(tmp, "kernel.json"), meta, 0o644); err != nil {
		return nil, err
	}
	// The rename publishes the directory whole: a crash mid-fetch leaves
	// only a .fetch-* directory, never a half-filled kernel directory.
	if err := os.Rename(tmp, k.Dir); err != nil {
		if _, serr := os.Stat(filepath.Join(k.Dir, "kernel.json")); serr != nil {
			return nil, err
		}
		// Another run published the same kernel first; use that one.
	}
	pruneOtherKernels(cacheDir, filepath.Base(k.Dir), logw)
	return k, nil
}

// aptListsDir holds the package lists apt-cache reads.
var aptListsDir = "/var/lib/apt/lists" // a variable for tests

type resolved struct {
	Lists   string `json:"lists"` // listsStamp when resolved
	Package string `json:"package"`
	Version string `json:"version"`
}

// resolveMemo is resolveKernelPackage remembered in the cache until the
// package lists change (apt-get update rewrites them). apt-cache costs
// about 0.6 s a call here, as it re-parses the compressed lists each time
// (Debian's container images keep no pkgcache.bin); that is a fifth of a
// warm `make test-vm`.
func resolveMemo(ctx context.Context, cacheDir string) (pkg, version string, err error) {
	memo := filepath.Join(cacheDir, "resolved.json")
	stamp := listsStamp()
	var r resolved
	if b, err := os.ReadFile(memo); err == nil && json.Unmarshal(b, &r) == nil &&
		stamp != "" && r.Lists == stamp && r.Package != "" && r.Version != "" {
		return r.Package, r.Version, nil
	}
	if pkg, version, err = resolveKernelPackage(ctx); err != nil {
		return "", "", err
	}
	if stamp != "" {
		b, _ := json.Marshal(resolved{Lists: stamp, Package: pkg, Version: version})
		_ = os.WriteFile(memo, b, 0o644) // only an optimisation
	}
	return pkg, version, nil
}

// listsStamp digests the names, sizes and modification times of the
// package lists; "" if they cannot be read.
func listsStamp() string {
	entries, err := os.ReadDir(aptListsDir)
	if err != nil {
		return ""
	}
	h := sha256.New()
	n := 0
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() || e.Name() == "lock" {
			continue
		}
		fmt.Fprintf(h, "%s %d %d\n", e.Name(), info.Size(), info.ModTime().UnixNano())
		n++
	}
	if n == 0 {
		return "" // no lists: apt-cache will fail and trigger an update
	}
	return hex.EncodeToString(h.Sum(nil))
}

// kernelDepRE matches the meta package's dependency on the kernel image,
// e.g. "linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2)".
var kernelDepRE = regexp.MustCompile(`^(linux-image-[0-9][^ ]*-cloud-amd64)(?: \(= ([^)]+)\))?$`)

// resolveKernelPackage asks apt which kernel package the candidate meta
// package depends on, and at which version. It is a local look-up in the
// package lists; one apt-cache call, since each costs about 0.6 s here
// (the lists are re-parsed every time: the image keeps no pkgcache.bin).
func resolveKernelPackage(ctx context.Context) (pkg, version string, err error) {
	out, err := command(ctx, "", "apt-cache", "show", "--no-all-versions", MetaPackage)
	if err != nil {
		return "", "", fmt.Errorf("apt-cache show %s: %w\n%s", MetaPackage, err, out)
	}
	pkg, version = parseMetaDepends(string(out))
	if pkg == "" {
		return "", "", fmt.Errorf("%s depends on no linux-image-<abi>-cloud-amd64 package (apt-cache said: %s)",
			MetaPackage, strings.TrimSpace(string(out)))
	}
	if version != "" {
		return pkg, version, nil
	}
	// An unversioned dependency: take the package's candidate.
	out, err = command(ctx, "", "apt-cache", "policy", pkg)
	if err != nil {
		return "", "", fmt.Errorf("apt-cache policy %s: %w\n%s", pkg, err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Candidate: "); ok && v != "(none)" {
			return pkg, v, nil
		}
	}
	return "", "", fmt.Errorf("%s has no candidate version in the package lists", pkg)
}

// parseMetaDepends finds the kernel image among the Depends of an
// `apt-cache show` record; version is "" for an unversioned dependency.
func parseMetaDepends(record string) (pkg, version string) {
	for _, line := range strings.Split(record, "\n") {
		deps, ok := strings.CutPrefix(line, "Depends: ")
		if !ok {
			continue
		}
		for _, dep := range strings.Split(deps, ",") {
			if m := kernelDepRE.FindStringSubmatch(strings.TrimSpace(dep)); m != nil {
				return m[1], m[2]
			}
		}
	}
	return "", ""
}

func aptDownload(ctx context.Context, dir, pkg, version string) (string, error) {
	// As root, apt drops to the _apt user for downloads and warns when that
	// user cannot write the target directory; the cache dir is root's.
	out, err := command(ctx, dir, "apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", pkg+"="+version)
	if err != nil {
		return "", fmt.Errorf("apt-get download %s=%s: %w\n%s", pkg, version, err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dir, pkg+"_*.deb"))
	if len(debs) != 1 {
		return "", fmt.Errorf("apt-get download %s: expected one .deb in %s, found %d", pkg, dir, len(debs))
	}
	return debs[0], nil
}

// unpackBoot streams the package's file system (dpkg-deb --fsys-tarfile)
// and keeps only /boot/vmlinuz-* and /boot/config-*: the modules, about
// four times the kernel's size, are not needed (BPF, LSM, securityfs,
// tracefs, the 8250 console and ext4/tmpfs are built in).
func unpackBoot(ctx context.Context, deb, dir string) (release string, err error) {
	cmd := exec.CommandContext(ctx, "dpkg-deb", "--fsys-tarfile", deb)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("dpkg-deb: %w", err)
	}
	found := map[string]bool{}
	tr := tar.NewReader(bufio.NewReaderSize(stdout, 1<<20))
	for {
		h, terr := tr.Next()
		if terr == io.EOF {
			break
		}
		if terr != nil {
			err = fmt.Errorf("read %s: %w", filepath.Base(deb), terr)
			break
		}
		name := strings.TrimPrefix(h.Name, "./")
		var out string
		switch {
		case strings.HasPrefix(name, "boot/vmlinuz-"):
			out, release = "vmlinuz", strings.TrimPrefix(name, "boot/vmlinuz-")
		case strings.HasPrefix(name, "boot/config-"):
			out = "config"
		default:
			continue
		}
		if err = writeFileFrom(filepath.Join(dir, out), tr); err != nil {
			break
		}
		found[out] = true
	}
	// Drain so dpkg-deb does not die of SIGPIPE and hide a real error.
	_, _ = io.Copy(io.Discard, stdout)
	if werr := cmd.Wait(); werr != nil && err == nil {
		err = fmt.Errorf("dpkg-deb --fsys-tarfile %s: %w\n%s", filepath.Base(deb), werr, stderr.String())
	}
	if err != nil {
		return "", err
	}
	if !found["vmlinuz"] || !found["config"] {
		return "", fmt.Errorf("%s has no /boot/vmlinuz-* or /boot/config-*", filepath.Base(deb))
	}
	return release, nil
}

func writeFileFrom(path string, r io.Reader) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// cachedFallback keeps an offline machine working when apt cannot resolve
// the package but an earlier run cached a kernel: the newest one is used.
func cachedFallback(cacheDir string, cause error, logw io.Writer) (*Kernel, error) {
	ks := cachedKernels(cacheDir)
	if len(ks) == 0 {
		return nil, fmt.Errorf("resolve the guest kernel package: %w", cause)
	}
	k := ks[len(ks)-1]
	fmt.Fprintf(logw, "vmtest: WARNING: %v\nvmtest: using the cached %s %s\n", cause, k.Package, k.Version)
	return k, nil
}

func cachedKernels(cacheDir string) []*Kernel {
	metas, _ := filepath.Glob(filepath.Join(cacheDir, "linux-image-*", "kernel.json"))
	var ks []*Kernel
	for _, m := range metas {
		b, err := os.ReadFile(m)
		if err != nil {
			continue
		}
		k := &Kernel{Dir: filepath.Dir(m)}
		if json.Unmarshal(b, k) == nil {
			ks = append(ks, k)
		}
	}
	// Oldest first; "newest" by modification time is what matters here,
	// since package versions do not sort as strings.
	sort.Slice(ks, func(i, j int) bool { return modTime(ks[i].Dir) < modTime(ks[j].Dir) })
	return ks
}

func modTime(p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return st.ModTime().UnixNano()
}

// pruneOtherKernels removes superseded kernels (about 70 MB each), and
// fetch directories that a killed run left behind (an hour is far longer
// than a fetch takes, so a concurrent run's is not touched).
func pruneOtherKernels(cacheDir, keep string, logw io.Writer) {
	dirs, _ := filepath.Glob(filepath.Join(cacheDir, "linux-image-*"))
	for _, d := range dirs {
		if filepath.Base(d) != keep {
			fmt.Fprintf(logw, "vmtest: removing superseded %s\n", filepath.Base(d))
			_ = os.RemoveAll(d)
		}
	}
	stale, _ := filepath.Glob(filepath.Join(cacheDir, ".fetch-*"))
	for _, d := range stale {
		if st, err := os.Stat(d); err == nil && time.Since(st.ModTime()) > time.Hour {
			_ = os.RemoveAll(d)
		}
	}
}

// command runs a tool and returns its combined output.
func command(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	if errors.Is(err, exec.ErrNotFound) {
		return out, fmt.Errorf("%s not found: the VM tests need a Debian host (apt)", name)
	}
	return out, err
}

// LSMWithBPF returns the kernel's default LSM order (CONFIG_LSM) with bpf
// appended if it is missing: the value for the lsm= boot parameter. The
// Debian cloud kernel already lists bpf; passing the list anyway makes
// the requirement explicit and survives a kernel whose default drops it.
func (k *Kernel) LSMWithBPF() (string, error) {
	b, err := os.ReadFile(k.Config())
	if err != nil {
		return "", err
	}
	if !strings.Contains(string(b), "\nCONFIG_BPF_LSM=y\n") {
		return "", fmt.Errorf("%s %s is built without CONFIG_BPF_LSM", k.Package, k.Version)
	}
	for _, line := range strings.Split(string(b), "\n") {
		v, ok := strings.CutPrefix(line, "CONFIG_LSM=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"`)
		if !containsWord(v, "bpf") {
			v = strings.TrimPrefix(v+",bpf", ",")
		}
		return v, nil
	}
	return "", fmt.Errorf("%s has no CONFIG_LSM line", k.Config())
}

func containsWord(list, w string) bool {
	for _, s := range strings.Split(list, ",") {
		if s == w {
			return true
		}
	}
	return false
}
