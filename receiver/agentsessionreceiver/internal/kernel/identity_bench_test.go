package kernel

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"go.uber.org/zap"

	"github.com/agentwatch/agentwatch/internal/testenv"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
)

// BenchmarkKernelOpenIdentity is the cost of the identity check on an open
// by a session process: the same open+close of a noise file (walked,
// checked, dropped in the kernel) with the check off (path-only, the
// baseline) and on with 4096 sensitive identities marked. Compare the two
// ns/op of one run.
func BenchmarkKernelOpenIdentity(b *testing.B) {
	testenv.RequireRoot(b)
	dir := filepath.Join(b.TempDir(), "noise")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"path-only", "identity"} {
		b.Run(mode, func(b *testing.B) {
			o := testOptions("aw-bench-ident")
			o.NoisePrefixes = []string{dir}
			o.PathOnly = mode == "path-only"
			tr, err := Open(o, zap.NewNop())
			if err != nil {
				b.Fatal(err)
			}
			defer tr.Close()
			for i := range 4096 {
				if err := tr.MarkSensitive(kevent.FileID{Ino: uint64(i) + 1<<40, Dev: 7}); err != nil {
					b.Fatal(err)
				}
			}
			if err := tr.Track(uint32(os.Getpid()), 0, false); err != nil {
				b.Fatal(err)
			}
			defer tr.Untrack(uint32(os.Getpid()))
			b.ResetTimer()
			for b.Loop() {
				f, err := os.Open(file)
				if err != nil {
					b.Fatal(err)
				}
				f.Close()
			}
			b.StopTimer()
			c, _ := tr.Counters()
			if c.NoiseDropped == 0 {
				b.Fatal("the opens did not reach the kernel program: " + strconv.FormatUint(c.NoiseDropped, 10))
			}
		})
	}
}
