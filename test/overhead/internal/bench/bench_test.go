package bench

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMedian(t *testing.T) {
	require.Zero(t, Median(nil))
	require.Equal(t, 2.0, Median([]float64{3, 1, 2}))
	v := []float64{4, 1, 3, 2}
	require.Equal(t, 2.5, Median(v))
	require.Equal(t, []float64{4, 1, 3, 2}, v, "Median must not sort its argument")
}

func TestLoops(t *testing.T) {
	w := &Work{Loop: "/l", Agent: "/a", Project: "/p", NoiseFile: "/usr/lib/x", PlainFile: "/tmp/d"}
	host := Loops(HostIterations, true)
	require.Len(t, host, 8)
	require.Equal(t, []string{"/l", "open", "200000", "/tmp/d"}, host[0].Argv(w, host[0].N))
	require.Equal(t, []string{"/l", "open", "20000", "/tmp/d"}, host[4].Argv(w, host[4].N))
	require.Equal(t, "ms", host[7].Unit())
	guest := Loops(Iterations{Open: 1, OpenRead: 2, RW: 3, ForkExec: 4}, false)
	require.Len(t, guest, 7, "no workload row")
	for i, l := range guest {
		require.Equal(t, i >= 3, l.Session, l.Name)
		require.Equal(t, "ns", l.Unit())
	}
	require.Equal(t, "exec '/l' 'open' '1' '/usr/lib/x'", shellJoin(guest[3].Argv(w, guest[3].N)))
}

func TestPrintTable(t *testing.T) {
	loops := Loops(HostIterations, false)[:1]
	var b bytes.Buffer
	PrintTable(&b, loops, Times{false: {{100, 110, 90}}, true: {{120, 130, 100}}})
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	require.Equal(t, "| open+close | outside sessions | 100 ns | 120 ns | 1.20× |", lines[2])
}
