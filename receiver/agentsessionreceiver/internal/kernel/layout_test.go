package kernel

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/agentwatch/agentwatch/internal/testenv"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/matcher"
)

// builtinOptions are the kernel keys of the built-in matchers, as the
// receiver derives them.
func builtinOptions(t *testing.T) (Options, *matcher.Set) {
	t.Helper()
	set, err := matcher.New(nil, true, nil)
	require.NoError(t, err)
	keys := set.KernelKeys()
	require.False(t, keys.MatchAllExecs)
	opts := testOptions("aw-unused")
	opts.ExecNames = map[string]Action{}
	opts.ExecDirs = map[[2]string]Action{}
	for n, a := range keys.Names {
		opts.ExecNames[n] = Action(a)
	}
	for d, a := range keys.Dirs {
		opts.ExecDirs[[2]string{d.Grandparent, d.Parent}] = Action(a)
	}
	return opts, set
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Dir(dst), 0o755))
	require.NoError(t, os.WriteFile(dst, data, 0o755))
}

// Claude Code as npm and the native installer lay it out, launched every
// way a user does: each exec starts a session in the kernel, and userspace
// confirms it as claude-code from what the kernel reported.
func TestKernelClaudeLayouts(t *testing.T) {
	testenv.RequireRoot(t)
	opts, set := builtinOptions(t)
	tr, err := Open(opts, zaptest.NewLogger(t))
	require.NoError(t, err)
	defer tr.Close()

	home := t.TempDir()
	nm := filepath.Join(home, "proj", "node_modules")
	bin := testenv.AgentExecutable(t, "/bin/true", "claude.exe")
	resolved := filepath.Join(nm, "@anthropic-ai", "claude-code", "bin", "claude.exe")
	copyFile(t, bin, resolved)
	require.NoError(t, os.MkdirAll(filepath.Join(nm, ".bin"), 0o755))
	require.NoError(t, os.Symlink("../@anthropic-ai/claude-code/bin/claude.exe", filepath.Join(nm, ".bin", "claude")))
	// An alias under another name still runs claude.exe's image.
	require.NoError(t, os.Symlink(resolved, filepath.Join(home, "cc")))
	version := filepath.Join(home, ".local", "share", "claude", "versions", "2.1.197")
	copyFile(t, bin, version)
	require.NoError(t, os.MkdirAll(filepath.Join(home, ".local", "bin"), 0o755))
	require.NoError(t, os.Symlink(version, filepath.Join(home, ".local", "bin", "claude")))

	for _, c := range []struct{ name, path string }{
		{"npm .bin symlink", filepath.Join(nm, ".bin", "claude")},
		{"resolved file", resolved},
		{"alias", filepath.Join(home, "cc")},
		{"native installer via ~/.local/bin/claude", filepath.Join(home, ".local", "bin", "claude")},
		{"native installer by version", version},
	} {
		cmd := exec.Command(c.path)
		require.NoError(t, cmd.Run(), c.name)
		pid := uint32(cmd.Process.Pid)
		evs, _ := collect(t, tr, 5*time.Second, func(ev kevent.Event) bool {
			e, ok := ev.(*kevent.Exec)
			return ok && e.PID == pid
		})
		e := evs[len(evs)-1].(*kevent.Exec)
		require.NotZero(t, e.Header.Flags&kevent.FlagExecMatched, "%s: kernel did not start a session (exe %s)", c.name, e.Exe)
		name, ok := set.Match(matcher.Proc{Exe: e.Exe, Filename: e.Filename, Args: e.Args})
		require.True(t, ok, c.name)
		require.Equal(t, "claude-code", name, c.name)
	}

	// Another program in a directory called versions is nobody's agent.
	other := filepath.Join(home, "tool", "versions", "1.0")
	copyFile(t, bin, other)
	require.NoError(t, exec.Command(other).Run())
	marker := testenv.AgentExecutable(t, "/bin/true", "claude")
	cmd := exec.Command(marker)
	require.NoError(t, cmd.Run())
	evs, _ := collect(t, tr, 5*time.Second, func(ev kevent.Event) bool {
		e, ok := ev.(*kevent.Exec)
		return ok && e.PID == uint32(cmd.Process.Pid)
	})
	for _, ev := range evs {
		if e, ok := ev.(*kevent.Exec); ok {
			require.NotEqual(t, other, e.Exe, "tool/versions/1.0 was tracked")
		}
	}
}

// `#!/usr/bin/env node` launchers (Codex's bin/codex.js through npm's .bin
// symlink): the kernel matches the script's exec (comm is the script's
// name, the image env's) and reports env's exec of node in the same
// process, with the script as node's argument.
func TestKernelEnvNodeLauncher(t *testing.T) {
	testenv.RequireRoot(t)
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("no node")
	}
	opts, set := builtinOptions(t)
	tr, err := Open(opts, zaptest.NewLogger(t))
	require.NoError(t, err)
	defer tr.Close()
	nm := filepath.Join(t.TempDir(), "node_modules")
	script := filepath.Join(nm, "@openai", "codex", "bin", "codex.js")
	require.NoError(t, os.MkdirAll(filepath.Dir(script), 0o755))
	require.NoError(t, os.WriteFile(script, []byte("#!/usr/bin/env node\nprocess.exit(0)\n"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(nm, ".bin"), 0o755))
	link := filepath.Join(nm, ".bin", "codex")
	require.NoError(t, os.Symlink("../@openai/codex/bin/codex.js", link))
	cmd := exec.Command(link, "exec", "hi")
	require.NoError(t, cmd.Run())
	pid := uint32(cmd.Process.Pid)
	var execs []*kevent.Exec
	collect(t, tr, 5*time.Second, func(ev kevent.Event) bool {
		if e, ok := ev.(*kevent.Exec); ok && e.PID == pid {
			execs = append(execs, e)
		}
		return len(execs) == 2
	})
	first, second := execs[0], execs[1]
	require.NotZero(t, first.Header.Flags&kevent.FlagExecMatched)
	require.Equal(t, "/usr/bin/env", first.Exe)
	require.Equal(t, link, first.Filename)
	name, _ := set.Match(matcher.Proc{Exe: first.Exe, Filename: first.Filename, Args: first.Args})
	require.Equal(t, "codex", name)
	real, _ := filepath.EvalSymlinks(node)
	require.Equal(t, real, second.Exe)
	require.Equal(t, []string{"node", link, "exec", "hi"}, second.Args)
	// node started on the script directly is matched on its own.
	name, _ = set.Match(matcher.Proc{Exe: second.Exe, Filename: second.Filename, Args: second.Args})
	require.Equal(t, "codex", name)
}

// HOME as of the exec travels with the exec record: the agent's `~` may not
// be the uid's passwd home. Unset HOME gives "".
func TestKernelExecHome(t *testing.T) {
	testenv.RequireRoot(t)
	const agent = "aw-kt-home"
	tr, err := Open(testOptions(agent), zaptest.NewLogger(t))
	require.NoError(t, err)
	defer tr.Close()
	bin := testenv.AgentExecutable(t, "/bin/true", agent)
	long := strings.Repeat("x", 700) // longer than one scan step
	for _, c := range []struct {
		env  []string
		want string
	}{
		{[]string{"A=1", "LONG=" + long + "HOME=/not/this", "HOME=/sandbox/agent-home", "Z=2"}, "/sandbox/agent-home"},
		{[]string{"A=1"}, ""},
	} {
		cmd := exec.Command(bin)
		cmd.Env = c.env
		require.NoError(t, cmd.Run())
		pid := uint32(cmd.Process.Pid)
		evs, _ := collect(t, tr, 5*time.Second, func(ev kevent.Event) bool {
			e, ok := ev.(*kevent.Exec)
			return ok && e.PID == pid
		})
		e := evs[len(evs)-1].(*kevent.Exec)
		require.Equal(t, c.want, e.Home)
		require.Equal(t, []string{bin}, e.Args)
	}
}
