package kernel

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCgroup2Root(t *testing.T) {
	for name, tc := range map[string]struct{ mountinfo, want string }{
		"hybrid": {`31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`, "/sys/fs/cgroup/unified"},
		"unified": {`25 23 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate
`, "/sys/fs/cgroup"},
		// a container's namespaced view mounts a subtree: not the root
		"subtree then root": {`50 40 0:22 /kubepods /sys/fs/cgroup ro - cgroup2 cgroup2 rw
51 40 0:22 / /mnt/cg\040root rw - cgroup2 cgroup2 rw
`, "/mnt/cg root"},
	} {
		t.Run(name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "mountinfo")
			require.NoError(t, os.WriteFile(f, []byte(tc.mountinfo), 0o644))
			got, err := cgroup2Root(f)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
	f := filepath.Join(t.TempDir(), "mountinfo")
	require.NoError(t, os.WriteFile(f, []byte("31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"), 0o644))
	_, err := cgroup2Root(f)
	require.ErrorContains(t, err, "no cgroup2")
}
