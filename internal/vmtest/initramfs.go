package vmtest

import (
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// InitramfsSpec describes the guest's root file system. It is the whole
// guest: there is no disk, and the initramfs stays the root.
type InitramfsSpec struct {
	// Init is the host path of the static guest init (./guestinit),
	// installed as /init.
	Init string
	// Config is written to GuestConfigPath for the init.
	Config GuestConfig
	// Busybox is the host path of a static busybox, installed as
	// /bin/busybox with a link per applet (sh, cat, ip, ...) so tests can
	// run ordinary commands in the guest. "" leaves it out.
	Busybox string
	// Files are copied in after everything else.
	Files []File
}

// File is one host file placed in the guest.
type File struct {
	Host  string      // path on the host; followed if a symlink
	Guest string      // absolute path in the guest
	Mode  fs.FileMode // permission bits; 0 keeps the host file's
}

// BuildInitramfs writes the spec as an uncompressed newc cpio to out.
// Uncompressed because the kernel would decompress it under TCG, which
// costs more than reading the bytes.
func BuildInitramfs(out string, spec InitramfsSpec) error {
	if err := RequireStatic(spec.Init); err != nil {
		return err
	}
	cfg, err := json.MarshalIndent(spec.Config, "", "  ")
	if err != nil {
		return err
	}
	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	w := NewCPIOWriter(f)

	for _, d := range []string{"/dev", "/proc", "/sys", "/tmp", "/root", "/run", "/etc"} {
		_ = w.Dir(d, 0o755)
	}
	// With /dev/console in the archive the kernel hands it to init as
	// stdin, stdout and stderr, so even a failure to mount devtmpfs is seen.
	_ = w.CharDev("/dev/console", 0o600, 5, 1)
	_ = w.Bytes("/etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"))
	_ = w.Bytes("/etc/group", 0o644, []byte("root:x:0:\ntty:x:5:\nnogroup:x:65534:\n"))
	_ = w.Bytes("/etc/hosts", 0o644, []byte("127.0.0.1 localhost\n::1 localhost\n"))
	_ = w.Bytes(GuestConfigPath, 0o644, cfg)
	if spec.Config.Dir != "" {
		_ = w.Dir(spec.Config.Dir, 0o755) // exec's chdir needs it to exist
	}
	if err := addHostFile(w, File{Host: spec.Init, Guest: "/init", Mode: 0o755}); err != nil {
		f.Close()
		return err
	}

	taken := map[string]bool{}
	for _, fl := range spec.Files {
		taken[path.Clean(fl.Guest)] = true
	}
	if spec.Busybox != "" {
		if err := addBusybox(w, spec.Busybox, taken); err != nil {
			f.Close()
			return err
		}
	}
	for _, fl := range spec.Files {
		if err := addHostFile(w, fl); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Close(); err != nil {
		f.Close()
		return fmt.Errorf("write initramfs: %w", err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}

func addHostFile(w *CPIOWriter, fl File) error {
	if !path.IsAbs(fl.Guest) {
		return fmt.Errorf("guest path %q of %s is not absolute", fl.Guest, fl.Host)
	}
	f, err := os.Open(fl.Host)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", fl.Host)
	}
	mode := fl.Mode
	if mode == 0 {
		mode = st.Mode().Perm()
	}
	return w.File(fl.Guest, mode, f, st.Size())
}

// addBusybox installs busybox and links each applet at the path busybox
// itself reports (bin/sh, sbin/ip, usr/bin/env, ...), unless a File takes
// that path.
func addBusybox(w *CPIOWriter, busybox string, taken map[string]bool) error {
	if err := RequireStatic(busybox); err != nil {
		return fmt.Errorf("%w (Debian: apt-get install busybox-static)", err)
	}
	out, err := exec.Command(busybox, "--list-full").Output()
	if err != nil {
		return fmt.Errorf("%s --list-full: %w", busybox, err)
	}
	if err := addHostFile(w, File{Host: busybox, Guest: "/bin/busybox", Mode: 0o755}); err != nil {
		return err
	}
	for _, applet := range strings.Fields(string(out)) {
		p := "/" + applet
		if p == "/bin/busybox" || taken[p] {
			continue
		}
		rel, err := filepath.Rel(path.Dir(p), "/bin/busybox")
		if err != nil {
			return err
		}
		if err := w.Symlink(p, rel); err != nil {
			return err
		}
	}
	return nil
}

// RequireStatic fails for a dynamically linked ELF file: the guest has no
// libc or loader unless a caller adds them (HostFilesWithLibs).
func RequireStatic(bin string) error {
	interp, err := elfInterp(bin)
	if err != nil {
		return err
	}
	if interp != "" {
		return fmt.Errorf("%s is dynamically linked (loader %s); the guest needs a static binary: build Go with CGO_ENABLED=0", bin, interp)
	}
	return nil
}

// elfInterp returns the PT_INTERP loader of an ELF file ("" if static).
func elfInterp(bin string) (string, error) {
	f, err := elf.Open(bin)
	if err != nil {
		return "", fmt.Errorf("%s: %w", bin, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				return "", fmt.Errorf("%s: read PT_INTERP: %w", bin, err)
			}
			return strings.TrimRight(string(b), "\x00"), nil
		}
	}
	return "", nil
}

// HostFilesWithLibs maps "HOST[:GUEST]" specs to Files. GUEST defaults to
// HOST's absolute path. A directory is copied recursively. A dynamically
// linked ELF executable brings its loader and libraries (from ldd) to the
// same paths in the guest, so tests can run, say, /bin/bash there.
func HostFilesWithLibs(specs []string) ([]File, error) {
	var files []File
	seen := map[string]bool{}
	add := func(fl File) {
		if !seen[fl.Guest] {
			seen[fl.Guest] = true
			files = append(files, fl)
		}
	}
	for _, s := range specs {
		host, guest, ok := strings.Cut(s, ":")
		abs, err := filepath.Abs(host)
		if err != nil {
			return nil, err
		}
		if !ok {
			guest = abs
		}
		st, err := os.Stat(abs)
		if err != nil {
			return nil, err
		}
		if st.IsDir() {
			tree, err := treeFiles(abs, guest)
			if err != nil {
				return nil, err
			}
			for _, fl := range tree {
				add(fl)
			}
			continue
		}
		add(File{Host: abs, Guest: guest})
		libs, err := sharedLibs(abs)
		if err != nil {
			return nil, err
		}
		for _, l := range libs {
			add(File{Host: l, Guest: l})
		}
	}
	return files, nil
}

// treeFiles lists the regular files under hostDir, mapped below guestDir.
func treeFiles(hostDir, guestDir string) ([]File, error) {
	var files []File
	err := filepath.WalkDir(hostDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(hostDir, p)
		if err != nil {
			return err
		}
		files = append(files, File{Host: p, Guest: path.Join(guestDir, filepath.ToSlash(rel))})
		return nil
	})
	return files, err
}

// sharedLibs returns the loader and libraries a dynamic ELF needs, as
// absolute host paths; nil for static binaries and non-ELF files.
func sharedLibs(bin string) ([]string, error) {
	interp, err := elfInterp(bin)
	if err != nil {
		var fe *elf.FormatError
		if errors.As(err, &fe) {
			return nil, nil // not ELF: a script or data file
		}
		return nil, err
	}
	if interp == "" {
		return nil, nil
	}
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", bin, err)
	}
	libs := []string{interp}
	// Lines look like "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)"
	// or "/lib64/ld-linux-x86-64.so.2 (0x...)"; vdso lines have no path.
	for _, line := range strings.Split(string(out), "\n") {
		fields := strings.Fields(line)
		for i, fld := range fields {
			if strings.HasPrefix(fld, "/") && (i == 0 || fields[i-1] == "=>") {
				libs = append(libs, fld)
			}
		}
	}
	sort.Strings(libs)
	return libs, nil
}
