package vmtest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// CPIOWriter writes the "newc" (SVR4, no checksum) cpio format, the one
// the kernel unpacks as an initramfs. It is written here rather than
// shelled out to `cpio -o` so that the archive's layout (paths, modes,
// device nodes, owners) comes from code instead of from a staging
// directory on the host, which would need root for /dev/console.
//
// Entries are written in call order. The kernel does not create missing
// parent directories, so every path's parents are emitted first, once.
type CPIOWriter struct {
	w    *bufio.Writer
	ino  uint32
	dirs map[string]bool
	err  error
}

// NewCPIOWriter starts an archive; Close writes the trailer.
func NewCPIOWriter(w io.Writer) *CPIOWriter {
	return &CPIOWriter{w: bufio.NewWriterSize(w, 1<<20), dirs: map[string]bool{".": true}}
}

const (
	cpioModeDir     = 0o040000
	cpioModeFile    = 0o100000
	cpioModeSymlink = 0o120000
	cpioModeCharDev = 0o020000
)

// Dir adds a directory (and its parents).
func (c *CPIOWriter) Dir(name string, perm fs.FileMode) error {
	name, err := cleanName(name)
	if err != nil {
		return err
	}
	if c.dirs[name] {
		return c.err
	}
	c.parents(name)
	c.dirs[name] = true
	return c.entry(name, cpioModeDir|uint32(perm.Perm()), 0, 0, nil, 0)
}

// File adds a regular file of size bytes read from r.
func (c *CPIOWriter) File(name string, perm fs.FileMode, r io.Reader, size int64) error {
	name, err := cleanName(name)
	if err != nil {
		return err
	}
	if size < 0 || size > 0xffffffff {
		return fmt.Errorf("cpio: %s: size %d does not fit the newc format", name, size)
	}
	c.parents(name)
	return c.entry(name, cpioModeFile|uint32(perm.Perm()), 0, 0, r, size)
}

// Bytes adds a regular file with the given content.
func (c *CPIOWriter) Bytes(name string, perm fs.FileMode, data []byte) error {
	return c.File(name, perm, bytes.NewReader(data), int64(len(data)))
}

// Symlink adds a symbolic link name -> target.
func (c *CPIOWriter) Symlink(name, target string) error {
	name, err := cleanName(name)
	if err != nil {
		return err
	}
	c.parents(name)
	return c.entry(name, cpioModeSymlink|0o777, 0, 0, strings.NewReader(target), int64(len(target)))
}

// CharDev adds a character device node.
func (c *CPIOWriter) CharDev(name string, perm fs.FileMode, major, minor uint32) error {
	name, err := cleanName(name)
	if err != nil {
		return err
	}
	c.parents(name)
	return c.entry(name, cpioModeCharDev|uint32(perm.Perm()), major, minor, nil, 0)
}

// Close writes the trailer and flushes. It does not close the underlying writer.
func (c *CPIOWriter) Close() error {
	if err := c.entry("TRAILER!!!", 0, 0, 0, nil, 0); err != nil {
		return err
	}
	return c.w.Flush()
}

func (c *CPIOWriter) parents(name string) {
	dir := path.Dir(name)
	if c.dirs[dir] {
		return
	}
	c.parents(dir)
	c.dirs[dir] = true
	_ = c.entry(dir, cpioModeDir|0o755, 0, 0, nil, 0) // error is sticky in c.err
}

// entry writes one header, the name and the data, each padded to 4 bytes
// as newc requires (the header is 110 bytes, so name padding counts it).
func (c *CPIOWriter) entry(name string, mode, rdevMajor, rdevMinor uint32, data io.Reader, size int64) error {
	if c.err != nil {
		return c.err
	}
	c.ino++
	nlink := uint32(1)
	if mode&0o170000 == cpioModeDir {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0 /*uid*/, 0 /*gid*/, nlink, 0 /*mtime: reproducible*/, uint32(size),
		0, 0 /*dev*/, rdevMajor, rdevMinor, len(name)+1, 0 /*check*/)
	c.write([]byte(hdr))
	c.write([]byte(name))
	c.write([]byte{0})
	c.pad(110 + len(name) + 1)
	if data != nil {
		n, err := io.CopyN(c.w, data, size)
		if err != nil && c.err == nil {
			c.err = fmt.Errorf("cpio: %s: copied %d of %d bytes: %w", name, n, size, err)
		}
	}
	c.pad(int(size))
	return c.err
}

func (c *CPIOWriter) write(b []byte) {
	if c.err != nil {
		return
	}
	_, c.err = c.w.Write(b)
}

func (c *CPIOWriter) pad(n int) {
	if r := n % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}

// cleanName turns "/a/b" into "a/b", the form the kernel's unpacker and
// busybox's cpio produce, and rejects names that escape the root.
func cleanName(name string) (string, error) {
	n := path.Clean("/" + name)[1:]
	if n == "" || strings.HasPrefix(name, "../") || strings.Contains(name, "/../") {
		return "", fmt.Errorf("cpio: bad entry name %q", name)
	}
	return n, nil
}
