package session

import (
	"path"
	"strings"
	"syscall"
)

// Git's reads of its own repository. Every git command an agent or its
// tools run (status, log, the snapshots OpenCode takes around each tool
// call) reads HEAD, config, refs, the index and objects, and the system
// and user gitconfig: dozens of records per command that no rule scores
// and no reader wants. Git is known by its resolved image, not by argv[0];
// only reads are dropped: a write into .git (a hook, a config that sets
// core.hooksPath or a credential helper) stays a record, and so does any
// other program's open of the same files (cat .git/config).

// gitImage: the executable is git installed by a package (the resolved
// path the kernel reported, so a "git" of the agent's making elsewhere is
// not it).
func gitImage(exe string) bool {
	dir, base := path.Split(exe)
	switch dir {
	case "/usr/bin/", "/bin/", "/usr/local/bin/":
		return base == "git"
	case "/usr/lib/git-core/", "/usr/libexec/git-core/":
		return true
	}
	return false
}

// gitDirs are the repository directories git was pointed at on its
// command line (--git-dir), absolute.
func gitDirs(args []string, cwd string) []string {
	var out []string
	for i := 1; i < len(args); i++ {
		a := args[i]
		var d string
		switch {
		case a == "--":
			return out
		case a == "--git-dir" && i+1 < len(args):
			i++
			d = args[i]
		case strings.HasPrefix(a, "--git-dir="):
			d = a[len("--git-dir="):]
		default:
			continue
		}
		if d != "" {
			out = append(out, path.Clean(absPath(d, cwd)))
		}
	}
	return out
}

// gitMetadata reports whether p's open of fp is git reading its own
// repository or configuration.
func (t *Tracker) gitMetadata(p *proc, fp string, flags uint32) bool {
	if !t.cfg.GitMetadata || !p.img.git || !readOnly(flags) {
		return false
	}
	if strings.HasSuffix(fp, "/.git") || strings.Contains(fp, "/.git/") || fp == "/etc/gitconfig" {
		return true
	}
	for _, h := range [...]string{p.img.envHome, p.img.userHome} {
		if h != "" && (fp == h+"/.gitconfig" || strings.HasPrefix(fp, h+"/.config/git/")) {
			return true
		}
	}
	for _, d := range p.img.gitDirs {
		if fp == d || strings.HasPrefix(fp, d+"/") {
			return true
		}
	}
	return false
}

// readOnly: the open reads (or only names, O_PATH) and cannot create,
// truncate or write.
func readOnly(flags uint32) bool {
	return flags&syscall.O_ACCMODE == syscall.O_RDONLY && flags&(syscall.O_CREAT|syscall.O_TRUNC) == 0
}
