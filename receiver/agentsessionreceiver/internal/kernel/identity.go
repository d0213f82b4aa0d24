package kernel

import (
	"errors"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
)

// fileIDKey mirrors struct file_id.
type fileIDKey struct {
	Ino uint64
	Dev uint32
	_   uint32
}

// ErrSensitiveIDsFull: the sensitive_ids map has no room (noise.max_sensitive_ids).
var ErrSensitiveIDsFull = errors.New("sensitive_ids map is full")

// MarkSensitive makes the kernel keep every open of the file, whatever
// path reaches it, with FlagIDSensitive.
func (t *Tracer) MarkSensitive(id kevent.FileID) error {
	err := t.objs.SensitiveIds.Update(fileIDKey{Ino: id.Ino, Dev: id.Dev}, uint8(1), ebpf.UpdateAny)
	if errors.Is(err, unix.E2BIG) {
		return ErrSensitiveIDsFull
	}
	return err
}

// UnmarkSensitive forgets a file (it was deleted, or replaced).
func (t *Tracer) UnmarkSensitive(id kevent.FileID) error {
	err := t.objs.SensitiveIds.Delete(fileIDKey{Ino: id.Ino, Dev: id.Dev})
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil
	}
	return err
}
