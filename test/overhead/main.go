// Command overhead measures what agentwatch costs the rest of the host and
// the sessions it watches (make bench-overhead): small loops (open+close,
// 1-byte pipe read+write, fork+exec) outside every session and inside one,
// and a real workload inside a session (build and test a small C project),
// with the collector stopped and running, alternated round by round in one
// run. It prints the median time per iteration in each state and their
// ratio. Needs root (the collector loads BPF programs) and gcc.
package main

import (
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/agentwatch/agentwatch/test/overhead/internal/bench"
)

//go:embed loop_c.txt
var loopSource []byte

const benchConfig = `receivers:
  agent_session:
    hooks: %s
    agents:
      - name: bench
        executables: [` + bench.AgentName + `]
`

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
	dir, w, err := prepare()
	if dir != "" {
		defer os.RemoveAll(dir)
	}
	if err != nil {
		return err
	}
	extra := filepath.Join(dir, "bench.yaml")
	if err := os.WriteFile(extra, fmt.Appendf(nil, benchConfig, hooks), 0o644); err != nil {
		return err
	}
	loops := bench.Loops(bench.HostIterations, true)
	times, err := bench.Alternate(w, loops, rounds,
		func() (func() error, error) { return startCollector(collector, config, extra, dir) },
		func(r int, on bool) {
			fmt.Fprintf(os.Stderr, "round %d/%d, collector running=%v done\n", r+1, rounds, on)
		})
	if err != nil {
		return err
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	fmt.Printf("agentwatch overhead, hooks %s, kernel %s, %d rounds, medians (collector stopped → running):\n\n",
		hooks, strings.TrimSpace(string(kernel)), rounds)
	bench.PrintTable(os.Stdout, loops, times)
	return nil
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
func prepare() (string, *bench.Work, error) {
	dir, err := os.MkdirTemp("", "aw-overhead-")
	if err != nil {
		return "", nil, err
	}
	w := &bench.Work{Loop: filepath.Join(dir, "loop"), Agent: filepath.Join(dir, bench.AgentName),
		Project: filepath.Join(dir, "project"), PlainFile: filepath.Join(dir, "data.txt"),
		NoiseFile: bench.NoiseFile}
	src := filepath.Join(dir, "loop.c")
	if err := os.WriteFile(src, loopSource, 0o644); err != nil {
		return dir, nil, err
	}
	if out, err := exec.Command("gcc", "-O2", "-o", w.Loop, src).CombinedOutput(); err != nil {
		return dir, nil, fmt.Errorf("gcc: %v: %s", err, out)
	}
	bash, err := os.ReadFile("/bin/bash")
	if err != nil {
		return dir, nil, err
	}
	if err := os.WriteFile(w.Agent, bash, 0o755); err != nil {
		return dir, nil, err
	}
	if err := os.WriteFile(w.PlainFile, []byte("x"), 0o644); err != nil {
		return dir, nil, err
	}
	if _, err := os.Stat(w.NoiseFile); err != nil {
		return dir, nil, err
	}
	return dir, w, writeProject(w.Project)
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
