// Package bench is what the two overhead benches share: the host's
// (test/overhead, make bench-overhead, tracepoint backend, the collector
// binary) and the QEMU guest's (test/overhead/vm, make bench-overhead-vm,
// LSM backend, the receiver in-process). Both time the same loops (the
// program built from test/overhead/loop_c.txt) outside every session and
// inside one, alternate the stopped and running states round by round in
// one run, and print the medians and their ratio as a markdown table.
package bench

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// AgentName is the session's agent: a copy of bash under this name, which
// the bench's agent matcher (executables: [AgentName]) picks out.
const AgentName = "aw-bench-agent"

// NoiseFile is a file under a default noise prefix (noise.path_prefixes):
// its opens are dropped in the kernel. The guest gets a copy of the host's.
const NoiseFile = "/usr/lib/os-release"

// Work is what the loops run on.
type Work struct {
	Loop      string // the loop program built from loop_c.txt
	Agent     string // the agent: a copy of bash named AgentName
	Project   string // the C project a workload row builds ("" if none)
	NoiseFile string // opened by the noise-path loop
	PlainFile string // opened by the other loops: not noise, so reported inside a session
}

// Loop is one row of the table.
type Loop struct {
	Name    string
	Session bool // run by the agent (inside a session) rather than directly
	// N is the iterations of the loop program, which prints the mean
	// nanoseconds of one; 0 marks a workload, timed whole in milliseconds.
	N    int
	Argv func(w *Work, n int) []string
}

// Unit is what the row's numbers count.
func (l Loop) Unit() string {
	if l.N == 0 {
		return "ms"
	}
	return "ns"
}

// Where is the table's "where" column.
func (l Loop) Where() string {
	if l.Session {
		return "inside a session"
	}
	return "outside sessions"
}

// Iterations of each loop per measurement.
type Iterations struct {
	Open     int // open+close of a path nobody reports (outside sessions, or noise inside)
	OpenRead int // open+close of a path a session reports: each is a record
	RW       int // 1-byte pipe write+read
	ForkExec int // fork+exec of /bin/true and wait
}

// HostIterations are make bench-overhead's.
var HostIterations = Iterations{Open: 200000, OpenRead: 20000, RW: 500000, ForkExec: 1500}

func (it Iterations) String() string {
	return fmt.Sprintf("open+close %d (%d where each open is reported), read+write %d, fork+exec %d",
		it.Open, it.OpenRead, it.RW, it.ForkExec)
}

// Loops are the table's rows: the loops outside sessions, then inside
// one, then (with workload) the C project's build and test inside one.
func Loops(it Iterations, workload bool) []Loop {
	op := func(name string) func(w *Work, n int) []string {
		return func(w *Work, n int) []string { return []string{w.Loop, name, strconv.Itoa(n)} }
	}
	open := func(file func(w *Work) string) func(w *Work, n int) []string {
		return func(w *Work, n int) []string { return []string{w.Loop, "open", strconv.Itoa(n), file(w)} }
	}
	plain := func(w *Work) string { return w.PlainFile }
	noise := func(w *Work) string { return w.NoiseFile }
	loops := []Loop{
		{"open+close", false, it.Open, open(plain)},
		{"read+write 1 byte", false, it.RW, op("rw")},
		{"fork+exec", false, it.ForkExec, op("forkexec")},
		{"open+close, noise path", true, it.Open, open(noise)},
		{"open+close, other path", true, it.OpenRead, open(plain)},
		{"read+write 1 byte", true, it.RW, op("rw")},
		{"fork+exec", true, it.ForkExec, op("forkexec")},
	}
	if workload {
		loops = append(loops, Loop{"build+test a C project", true, 0, func(w *Work, _ int) []string {
			return []string{"/bin/sh", "-c", "make -s -C " + w.Project + " clean all check >/dev/null"}
		}})
	}
	return loops
}

// Measure runs one loop once and returns its number: nanoseconds per
// iteration, or the workload's milliseconds.
func Measure(w *Work, l Loop) (float64, error) {
	argv := l.Argv(w, l.N)
	var cmd *exec.Cmd
	if l.Session {
		// the agent runs the loop: bash -c with one command execs it, so
		// the loop is the session's root image
		cmd = exec.Command(w.Agent, "-c", shellJoin(argv))
	} else {
		cmd = exec.Command(argv[0], argv[1:]...)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	elapsed := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("%v: %s", err, out.String())
	}
	if l.N == 0 {
		return float64(elapsed.Microseconds()) / 1000, nil
	}
	return strconv.ParseFloat(strings.TrimSpace(out.String()), 64)
}

// Times are the measurements of each loop (by index) in each state
// (running or not), one per round.
type Times map[bool][][]float64

// Alternate runs rounds of stopped/running pairs, which state goes first
// alternating, so that drift hits both alike. start brings the watcher up
// and returns what stops it; done (if not nil) is called after each state
// of each round (r counts from 0).
func Alternate(w *Work, loops []Loop, rounds int, start func() (stop func() error, err error), done func(r int, running bool)) (Times, error) {
	times := Times{false: make([][]float64, len(loops)), true: make([][]float64, len(loops))}
	for r := range rounds {
		for _, on := range []bool{r%2 == 0, r%2 != 0} {
			var stop func() error
			if on {
				var err error
				if stop, err = start(); err != nil {
					return nil, err
				}
			}
			for i, l := range loops {
				v, err := Measure(w, l)
				if err != nil {
					if stop != nil {
						err = errors.Join(err, stop())
					}
					return nil, fmt.Errorf("%s: %w", l.Name, err)
				}
				times[on][i] = append(times[on][i], v)
			}
			if stop != nil {
				if err := stop(); err != nil {
					return nil, err
				}
			}
			if done != nil {
				done(r, on)
			}
		}
	}
	return times, nil
}

// Ratio is the running median over the stopped one of loop i.
func (t Times) Ratio(i int) float64 { return Median(t[true][i]) / Median(t[false][i]) }

// PrintTable writes the medians and their ratio as a markdown table.
func PrintTable(out io.Writer, loops []Loop, t Times) {
	fmt.Fprintln(out, "| loop | where | stopped | running | ratio |")
	fmt.Fprintln(out, "|---|---|---|---|---|")
	for i, l := range loops {
		off, on := Median(t[false][i]), Median(t[true][i])
		fmt.Fprintf(out, "| %s | %s | %.0f %s | %.0f %s | %.2f× |\n", l.Name, l.Where(), off, l.Unit(), on, l.Unit(), on/off)
	}
}

func shellJoin(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	if argv[0] == "/bin/sh" {
		return strings.Join(q, " ")
	}
	return "exec " + strings.Join(q, " ")
}

// Median of v; 0 for none.
func Median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
