package kernel

import (
	"errors"
	"os"
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
