package session

import (
	"fmt"
	"syscall"

	"github.com/agentwatch/agentwatch/internal/pathglob"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/matcher"
)

// agentState holds, per agent name, the globs of the agent's own state and
// cache files. An agent reads and rewrites them all the time (Claude Code
// opens ~/.claude.json dozens of times in one turn, OpenCode's snapshot
// git reads and writes its repository under ~/.local/share/opencode a
// hundred times): as records they are volume no rule uses. Only the
// agent's own processes are exempt; a tool the agent runs that opens them
// is reported like any other open.
type agentState map[string][]*pathglob.Glob

func compileAgentState(m map[string][]string) (agentState, error) {
	if len(m) == 0 {
		return nil, nil
	}
	out := agentState{}
	for name, globs := range m {
		for i, g := range globs {
			c, err := pathglob.Compile(g)
			if err != nil {
				return nil, fmt.Errorf("agent %q state_paths[%d]: %w", name, i, err)
			}
			out[name] = append(out[name], c)
		}
	}
	return out, nil
}

// ownState reports whether p is one of its session agent's own processes
// opening one of the agent's state files. Its own: an image the agent's
// matcher recognises, a fork of one that has not exec'ed something else,
// or a program the agent started outside every tool call — known only once
// the session's LLM calls are seen (a tool call's processes carry it), and
// never while the process waits to learn its tool call.
func (t *Tracker) ownState(p *proc, fp string) bool {
	globs := t.state[p.sess.name]
	if len(globs) == 0 {
		return false
	}
	own := p.img.agent == p.sess.name ||
		p.img.byAgent && p.sess.llmSeen && p.tool == nil && p.wait == nil
	if !own {
		return false
	}
	for _, g := range globs {
		if !g.HasHome() {
			if g.Match(fp, "") {
				return true
			}
			continue
		}
		if (p.img.envHome != "" && g.Match(fp, p.img.envHome)) ||
			(p.img.userHome != "" && p.img.userHome != p.img.envHome && g.Match(fp, p.img.userHome)) {
			return true
		}
	}
	return false
}

// ownListing reports whether p is its session agent's own process listing
// a directory (an O_DIRECTORY read open): Claude Code walks .git, its
// rules and skills directories in-process, on every start. A listing shows
// names, not content, and what a tool lists is its exec's record. A
// listing of a directory that holds sensitive files (~/.ssh) stays.
func (t *Tracker) ownListing(p *proc, fp string, flags uint32) bool {
	if len(t.state[p.sess.name]) == 0 || flags&syscall.O_DIRECTORY == 0 || !readOnly(flags) {
		return false
	}
	if p.img.agent != p.sess.name && !(p.img.byAgent && p.sess.llmSeen && p.tool == nil && p.wait == nil) {
		return false
	}
	ids := t.identities()
	return ids == nil || !ids.HoldsSensitive(fp, imageHomes(p.img))
}

// agentOf names the agent whose matcher recognises an image, once per exec
// of a session process (cgroup matchers are left out: they name a place,
// not a program, and would make every tool "the agent's own").
func (t *Tracker) agentOf(mp matcher.Proc) string {
	if len(t.state) == 0 || t.cfg.Matcher == nil {
		return ""
	}
	name, _ := t.cfg.Matcher.MatchProgram(mp)
	return name
}
