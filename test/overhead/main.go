// Command overhead measures what agentwatch costs the rest of the host and
// the sessions it watches (make bench-overhead): small loops (open+close,
// 1-byte pipe read+write, fork+exec) outside every session and inside one,
// and a real workload inside a session (build and test a small C project),
// with the collector stopped and running, alternated round by round in one
// run. It prints the median time per iteration in each state and their
// ratio. Needs root (the collector loads BPF programs) and gcc.
package main

import (
	"bytes"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

//go:embed loop_c.txt
var loopSource []byte

// The session's agent: a copy of bash the bench config matches.
const agentName = "aw-bench-agent"

const benchConfig = `receivers:
  agent_session:
    hooks: %s
    agents:
      - name: bench
        executables: [` + agentName + `]
`

type loop struct {
	name    string
	session bool
	argv    func(w *work) []string // the loop, run directly or by the agent
	unit    string
}

type work struct {
	dir, loop, agent, project, noiseFile, plainFile string
}

var loops = []loop{
	{"open+close", false, func(w *work) []string { return []string{w.loop, "open", "200000", w.plainFile} }, "ns"},
	{"read+write 1 byte", false, func(w *work) []string { return []string{w.loop, "rw", "500000"} }, "ns"},
	{"fork+exec", false, func(w *work) []string { return []string{w.loop, "forkexec", "1500"} }, "ns"},
	{"open+close, noise path", true, func(w *work) []string { return []string{w.loop, "open", "200000", w.noiseFile} }, "ns"},
	{"open+close, other path", true, func(w *work) []string { return []string{w.loop, "open", "20000", w.plainFile} }, "ns"},
	{"read+write 1 byte", true, func(w *work) []string { return []string{w.loop, "rw", "500000"} }, "ns"},
	{"fork+exec", true, func(w *work) []string { return []string{w.loop, "forkexec", "1500"} }, "ns"},
	{"build+test a C project", true, func(w *work) []string {
		return []string{"/bin/sh", "-c", "make -s -C " + w.project + " clean all check >/dev/null"}
	}, "ms"},
}

func main() {
	collector := flag.String("collector", "bin/otelcol-agentwatch", "the collector binary")
	config := flag.String("config", "config/agentwatch.yaml", "its config (the bench adds an agent matcher)")
	hooks := flag.String("hooks", "tracepoint", "receiver hooks: auto, lsm or tracepoint")
	rounds := flag.Int("rounds", 6, "rounds of stopped/running pairs")
	flag.Parse()
	if err := run(*collector, *config, *hooks, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "bench-overhead:", err)
		os.Exit(1)
	}
}

func run(collector, config, hooks string, rounds int) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root: the collector loads BPF programs")
	}
	w, err := prepare()
	if err != nil {
		return err
	}
	defer os.RemoveAll(w.dir)
	extra := filepath.Join(w.dir, "bench.yaml")
	if err := os.WriteFile(extra, fmt.Appendf(nil, benchConfig, hooks), 0o644); err != nil {
		return err
	}
	times := map[bool][][]float64{false: make([][]float64, len(loops)), true: make([][]float64, len(loops))}
	for r := range rounds {
		// alternate which state goes first, so drift hits both alike
		for _, on := range []bool{r%2 == 0, r%2 != 0} {
			var stop func() error
			if on {
				if stop, err = startCollector(collector, config, extra, w.dir); err != nil {
					return err
				}
			}
			for i, l := range loops {
				v, err := measure(w, l)
				if err != nil {
					if stop != nil {
						stop()
					}
					return fmt.Errorf("%s: %w", l.name, err)
				}
				times[on][i] = append(times[on][i], v)
			}
			if stop != nil {
				if err := stop(); err != nil {
					return err
				}
			}
			fmt.Fprintf(os.Stderr, "round %d/%d, collector running=%v done\n", r+1, rounds, on)
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	fmt.Printf("agentwatch overhead, hooks %s, kernel %s, %d rounds, medians (collector stopped → running):\n\n",
		hooks, strings.TrimSpace(string(kernel)), rounds)
	fmt.Println("| loop | where | stopped | running | ratio |")
	fmt.Println("|---|---|---|---|---|")
	for i, l := range loops {
		where := "outside sessions"
		if l.session {
			where = "inside a session"
		}
		off, on := median(times[false][i]), median(times[true][i])
		fmt.Printf("| %s | %s | %.0f %s | %.0f %s | %.2f× |\n", l.name, where, off, l.unit, on, l.unit, on/off)
	}
	return nil
}

func measure(w *work, l loop) (float64, error) {
	argv := l.argv(w)
	var cmd *exec.Cmd
	if l.session {
		// the agent runs the loop: bash -c with one command execs it, so
		// the loop is the session's root image
		cmd = exec.Command(w.agent, "-c", shellJoin(argv))
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
	if l.unit == "ms" {
		return float64(elapsed.Microseconds()) / 1000, nil
	}
	return strconv.ParseFloat(strings.TrimSpace(out.String()), 64)
}

func startCollector(bin, config, extra, dir string) (func() error, error) {
	cmd := exec.Command(bin, "--config", config, "--config", extra)
	logf, err := os.Create(filepath.Join(dir, "collector.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := func() error {
		cmd.Process.Signal(syscall.SIGTERM)
		err := cmd.Wait()
		logf.Close()
		var ee *exec.ExitError
		if errors.As(err, &ee) && !ee.Exited() {
			return nil // ended by our signal
		}
		return err
	}
	// ready when the health check answers: the pipelines, and so the
	// kernel hooks, are up
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://127.0.0.1:13133/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return stop, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	log, _ := os.ReadFile(filepath.Join(dir, "collector.log"))
	return nil, fmt.Errorf("collector not ready in 60s:\n%s", log)
}

// prepare builds the loop, the agent and the project in a scratch
// directory.
func prepare() (*work, error) {
	dir, err := os.MkdirTemp("", "aw-overhead-")
	if err != nil {
		return nil, err
	}
	w := &work{dir: dir, loop: filepath.Join(dir, "loop"), agent: filepath.Join(dir, agentName),
		project: filepath.Join(dir, "project"), plainFile: filepath.Join(dir, "data.txt"),
		// under a default noise prefix (noise.path_prefixes)
		noiseFile: "/usr/lib/os-release"}
	src := filepath.Join(dir, "loop.c")
	if err := os.WriteFile(src, loopSource, 0o644); err != nil {
		return nil, err
	}
	if out, err := exec.Command("gcc", "-O2", "-o", w.loop, src).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("gcc: %v: %s", err, out)
	}
	bash, err := os.ReadFile("/bin/bash")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(w.agent, bash, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(w.plainFile, []byte("x"), 0o644); err != nil {
		return nil, err
	}
	if _, err := os.Stat(w.noiseFile); err != nil {
		return nil, err
	}
	return w, writeProject(w.project)
}

// writeProject is a small C project with a test: 24 units, a library and
// a test program, built by make.
func writeProject(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var objs, calls []string
	for i := range 24 {
		name := fmt.Sprintf("unit%02d", i)
		src := fmt.Sprintf("#include <string.h>\n#include <stdio.h>\nint %s(int x) { char b[64]; snprintf(b, sizeof b, \"%%d\", x * %d); return (int)strlen(b) + x; }\n", name, i+3)
		if err := os.WriteFile(filepath.Join(dir, name+".c"), []byte(src), 0o644); err != nil {
			return err
		}
		objs = append(objs, name+".o")
		calls = append(calls, fmt.Sprintf("int %s(int); if (%s(%d) <= 0) return 1;", name, name, i))
	}
	test := "int main(void) {\n" + strings.Join(calls, "\n") + "\nreturn 0; }\n"
	if err := os.WriteFile(filepath.Join(dir, "test.c"), []byte(test), 0o644); err != nil {
		return err
	}
	mk := fmt.Sprintf("OBJS = %s\nall: libunits.a test\nlibunits.a: $(OBJS)\n\tar rcs $@ $^\ntest: test.o libunits.a\n\tcc -o $@ test.o libunits.a\n%%.o: %%.c\n\tcc -O1 -c -o $@ $<\ncheck: test\n\t./test\nclean:\n\trm -f *.o *.a test\n", strings.Join(objs, " "))
	return os.WriteFile(filepath.Join(dir, "Makefile"), []byte(mk), 0o644)
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

func median(v []float64) float64 {
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
