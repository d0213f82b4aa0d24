package kernel

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
)

// The identity set without the kernel: marks go to a map.
func newTestIDs(t *testing.T, globs ...string) (*sensitiveIDs, map[kevent.FileID]bool) {
	marked := map[kevent.FileID]bool{}
	s := newSensitiveIDs(globs, []string{"node_modules"}, 100,
		func(id kevent.FileID) error { marked[id] = true; return nil },
		func(id kevent.FileID) error { delete(marked, id); return nil })
	t.Cleanup(s.close)
	return s, marked
}

func TestSensitiveIDsScanAndPin(t *testing.T) {
	home := t.TempDir()
	for _, f := range []string{".ssh/id_ed25519", ".gnupg/private-keys-v1.d/a.key", "proj/.env", "proj/node_modules/x/.env", ".bashrc"} {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(home, f)), 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(home, f), []byte("x"), 0o600))
	}
	s, marked := newTestIDs(t, "~/.ssh/*", "~/.gnupg/*", "**/.env*")
	s.scanHome(home)
	s.scanDir(filepath.Join(home, "proj"))
	var paths []string
	for _, k := range s.byID {
		paths = append(paths, k.path)
		require.GreaterOrEqual(t, k.fd, 0, "pinned")
	}
	require.ElementsMatch(t, []string{home + "/.ssh/id_ed25519", home + "/.gnupg/private-keys-v1.d/a.key", home + "/proj/.env"}, paths,
		"dir/* is the whole tree; noise directories are not scanned; nothing else")
	require.Len(t, marked, 3)

	// a hard link is the same file; a deletion of every name unpins it
	key := home + "/.ssh/id_ed25519"
	id, _, _, ok := statAny(key)
	require.True(t, ok)
	require.NoError(t, os.Link(key, home+"/notes"))
	c, ok := s.canonical(id, "", home+"/notes")
	require.True(t, ok)
	require.Equal(t, key, c)
	require.NoError(t, os.Remove(key))
	_, ok = s.canonical(id, "", home+"/notes")
	require.True(t, ok, "one name left")
	require.NoError(t, os.Remove(home+"/notes"))
	s.sweep()
	_, ok = s.canonical(id, "", "")
	require.False(t, ok, "deleted: forgotten, and its inode number free for another file")
	require.False(t, marked[id], "unmarked in the kernel")
	require.Equal(t, 2, s.pinned)

	// learning checks the kernel's id against the file
	other := home + "/proj/.env.local"
	require.NoError(t, os.WriteFile(other, []byte("y"), 0o600))
	require.False(t, s.add(other, other, kevent.FileID{Ino: 1, Dev: 1}), "not the file the kernel saw")
	require.True(t, s.add(other, other, kevent.FileID{}))
}
