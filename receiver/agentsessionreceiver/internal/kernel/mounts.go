package kernel

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"

	"go.uber.org/zap"
)

// ensureMounts mounts tracefs (tracepoint ids) and securityfs (the LSM list)
// where a minimal host or a container left them out. Failure is only logged:
// the attach or probe that needs the mount then reports the real error.
func ensureMounts(logger *zap.Logger) {
	for _, m := range []struct{ fstype, dir, probe string }{
		{"tracefs", "/sys/kernel/tracing", "/sys/kernel/tracing/events"},
		{"securityfs", "/sys/kernel/security", "/sys/kernel/security/lsm"},
	} {
		if _, err := os.Stat(m.probe); err == nil || !errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err := syscall.Mount(m.fstype, m.dir, m.fstype, 0, ""); err != nil {
			logger.Warn("could not mount "+m.fstype, zap.String("path", m.dir), zap.Error(err))
			continue
		}
		logger.Info("mounted "+m.fstype, zap.String("path", m.dir))
	}
}

// cgroup2Root is where the cgroup v2 hierarchy is mounted: its root is where
// the sock_addr programs attach to see every process. Unified hosts have it
// at /sys/fs/cgroup, hybrid ones at /sys/fs/cgroup/unified; mountinfo says.
func cgroup2Root(mountinfo string) (string, error) {
	b, err := os.ReadFile(mountinfo)
	if err != nil {
		return "", err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		// id parent major:minor root mountpoint opts [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(line, " - ")
		if !ok || !strings.HasPrefix(post, "cgroup2 ") {
			continue
		}
		f := strings.Fields(pre)
		if len(f) >= 5 && f[3] == "/" {
			return unescapeMount(f[4]), nil
		}
	}
	return "", errors.New("no cgroup2 filesystem is mounted (/proc/self/mountinfo)")
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
