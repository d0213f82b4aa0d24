package kernel

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/agentwatch/agentwatch/internal/testenv"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
)

func TestKernelDenyPattern(t *testing.T) {
	for _, tc := range []struct {
		glob         string
		lit          string
		prefix, home bool
		err          string
	}{
		{glob: "/etc/shadow", lit: "/etc/shadow"},
		{glob: "/root/.aws/", lit: "/root/.aws", prefix: true},
		{glob: "/root/.aws/**", lit: "/root/.aws", prefix: true},
		{glob: "~/.ssh/**", lit: "/.ssh", prefix: true, home: true},
		{glob: "~/.netrc", lit: "/.netrc", home: true},
		{glob: "*.pem", err: "absolute or ~/"},
		{glob: "**/id_rsa", err: "absolute or ~/"},
		{glob: "/etc/*.key", err: "literal paths"},
		{glob: "/a/**/b", err: "literal paths"},
	} {
		lit, prefix, home, err := KernelDenyPattern(tc.glob)
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err, tc.glob)
			continue
		}
		require.NoError(t, err, tc.glob)
		require.Equal(t, []any{tc.lit, tc.prefix, tc.home}, []any{lit, prefix, home}, tc.glob)
	}
}

func TestCompileEnforce(t *testing.T) {
	o, err := CompileEnforce(EnforceEnforce, false, []string{"/etc/shadow", "~/.ssh/**"}, []string{"10.0.0.0/8", "::1"}, []int{22}, []string{"/root", "/home/u"})
	require.NoError(t, err)
	require.Equal(t, []DenyPath{
		{Path: "/etc/shadow", Rule: 0},
		{Path: "/root/.ssh", Rule: 1}, {Path: "/root/.ssh", Prefix: true, Rule: 1},
		{Path: "/home/u/.ssh", Rule: 1}, {Path: "/home/u/.ssh", Prefix: true, Rule: 1},
	}, o.DenyPaths)
	require.Equal(t, "deny_open:~/.ssh/**", o.Rules[1])
	require.Equal(t, "allow_connect", o.Rules[kevent.RuleAllowConnect])
	require.Equal(t, "deny_ports:22", o.Rules[o.DenyPorts[22]])
	require.Len(t, o.AllowConnect, 2)

	_, err = CompileEnforce(EnforceEnforce, false, nil, []string{"example.com"}, nil, nil)
	require.ErrorContains(t, err, "enforce.allow_connect[0]")
	_, err = CompileEnforce(EnforceEnforce, false, nil, nil, []int{0}, nil)
	require.ErrorContains(t, err, "enforce.deny_ports[0]")
}

// The tracepoint backend cannot deny: enforce must fail at startup unless
// the user opted in to kill.
func TestEnforceNeedsLSMOrKill(t *testing.T) {
	testenv.RequireRoot(t)
	o := testOptions("aw-kt-enf")
	o.Hooks = BackendTracepoint
	var err error
	o.Enforce, err = CompileEnforce(EnforceEnforce, false, []string{"/etc/shadow"}, nil, nil, nil)
	require.NoError(t, err)
	tr, err := Open(o, zaptest.NewLogger(t))
	if err == nil {
		tr.Close()
	}
	require.ErrorIs(t, err, ErrEnforceNeedsLSM)
	require.ErrorContains(t, err, "action: kill")
}

// With action: kill the tracepoint backend kills a session process that
// opens a denied path; a process outside the session opens it fine.
func TestEnforceKillOnTracepoints(t *testing.T) {
	testenv.RequireRoot(t)
	const agent = "aw-kt-kill"
	secret := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secret, []byte("x\n"), 0o600))
	o := testOptions(agent)
	o.Hooks = BackendTracepoint
	var err error
	o.Enforce, err = CompileEnforce(EnforceEnforce, true, []string{secret}, nil, nil, nil)
	require.NoError(t, err)
	tr, err := Open(o, zaptest.NewLogger(t))
	require.NoError(t, err)
	defer tr.Close()

	cmd := exec.Command(testenv.AgentExecutable(t, "/bin/bash", agent), "-c", `read -r l < "$1"; echo survived`, "_", secret)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee), "the agent must die: %v %s", err, out)
	ws := ee.Sys().(syscall.WaitStatus)
	require.True(t, ws.Signaled(), "status %v", ws)
	require.Equal(t, syscall.SIGKILL, ws.Signal())
	require.NotContains(t, string(out), "survived")

	_, err = os.ReadFile(secret)
	require.NoError(t, err, "a process outside the session is not affected")

	evs, _ := collect(t, tr, 10*time.Second, func(ev kevent.Event) bool {
		_, ok := ev.(*kevent.Exit)
		return ok
	})
	var kill *kevent.Enforce
	for _, ev := range evs {
		if e, ok := ev.(*kevent.Enforce); ok {
			kill = e
		}
	}
	require.NotNil(t, kill, "an enforce record must be emitted")
	require.Equal(t, uint8(kevent.EnforceKill), kill.Action)
	require.Equal(t, uint8(kevent.EnforceOpen), kill.What)
	require.Equal(t, secret, kill.Path)
	require.Equal(t, uint32(0), kill.Rule)
}

// A "~/" deny_open rule holds for a home first seen at run time (an
// agent's HOME that is no passwd home): AddHome expands it in the kernel.
func TestEnforceHomeAddedAtRunTime(t *testing.T) {
	testenv.RequireRoot(t)
	const agent = "aw-kt-home-enf"
	home := filepath.Join(t.TempDir(), "sandbox-home")
	secret := filepath.Join(home, ".ssh", "id_rsa")
	require.NoError(t, os.MkdirAll(filepath.Dir(secret), 0o700))
	require.NoError(t, os.WriteFile(secret, []byte("k\n"), 0o600))
	o := testOptions(agent)
	o.Hooks = BackendTracepoint
	var err error
	o.Enforce, err = CompileEnforce(EnforceMonitor, false, []string{"~/.ssh/**"}, nil, nil, []string{"/root"})
	require.NoError(t, err)
	tr, err := Open(o, zaptest.NewLogger(t))
	require.NoError(t, err)
	defer tr.Close()
	bin := testenv.AgentExecutable(t, "/bin/bash", agent)
	run := func() *kevent.Enforce {
		cmd := exec.Command(bin, "-c", `read -r l < "$HOME/.ssh/id_rsa"`)
		cmd.Env = []string{"HOME=" + home}
		require.NoError(t, cmd.Run())
		pid := uint32(cmd.Process.Pid)
		evs, _ := collect(t, tr, 10*time.Second, func(ev kevent.Event) bool {
			e, ok := ev.(*kevent.Exit)
			return ok && e.PID == pid
		})
		for _, ev := range evs {
			if e, ok := ev.(*kevent.Enforce); ok {
				return e
			}
		}
		return nil
	}
	require.Nil(t, run(), "no rule for a home nobody has seen")
	require.NoError(t, tr.AddHome(home))
	require.NoError(t, tr.AddHome(home), "adding a known home again is a no-op")
	e := run()
	require.NotNil(t, e, "the ~/ rule must hold for the added home")
	require.Equal(t, uint8(kevent.EnforceAudit), e.Action)
	require.Equal(t, secret, e.Path)
}
