package matcher

import "slices"

// The interpreters that run the npm-installed agent CLIs. Each node-based
// built-in names them in `executables`, so the kernel makes only these
// execs candidates, and a command line that merely mentions a package path
// (grep, an editor) never starts a session.
var (
	nodeInterpreters   = []string{"node", "nodejs", "bun", "deno"}
	pythonInterpreters = []string{
		"python", "python3",
		"python3.8", "python3.9", "python3.10", "python3.11", "python3.12", "python3.13", "python3.14",
		"pypy3",
	}
)

// builtinSpecs are the well-known agent CLIs. An agent may have several
// entries (alternative ways it runs); they share a name, and disabling the
// name disables all of them.
var builtinSpecs = []Spec{
	// npm's .bin/claude links to bin/claude.exe (hard-linked to the
	// -linux-x64 package's `claude`); the native installer keeps versions
	// as ~/.local/share/claude/versions/<version>, linked from
	// ~/.local/bin/claude.
	{Name: "claude-code", Executables: []string{"claude", "claude.exe", "**/claude/versions/*"},
		StatePaths: []string{"~/.claude/**", "~/.claude.json", "~/.claude.json.*", "~/.cache/claude/**", "~/.cache/claude-cli-nodejs/**", "~/.local/share/claude/**", "~/.local/state/claude/**", "~/.config/claude/**"}},
	{Name: "claude-code", Executables: nodeInterpreters, CommandLine: `@anthropic-ai/claude-code/cli\.js`},

	{Name: "cursor-agent", Executables: []string{"cursor-agent"},
		StatePaths: []string{"~/.cursor/**", "~/.config/cursor/**", "~/.local/share/cursor-agent/**"}},

	{Name: "codex", Executables: []string{"codex"},
		StatePaths: []string{"~/.codex/**"}},
	// bin/codex.js is `#!/usr/bin/env node`: run through a .bin or global
	// symlink, node's argv[1] is the link's path.
	{Name: "codex", Executables: nodeInterpreters, CommandLine: `@openai/codex/bin/codex\.js|^[^ ]+ ([^ ]*/)?codex( |$)`},

	// The trailing '/' keeps @google/gemini-cli-core (a library) out.
	{Name: "gemini-cli", Executables: []string{"gemini"},
		StatePaths: []string{"~/.gemini/**"}},
	{Name: "gemini-cli", Executables: nodeInterpreters, CommandLine: `@google/gemini-cli/|^[^ ]+ ([^ ]*/)?gemini( |$)`},

	{Name: "aider", Executables: []string{"aider"},
		StatePaths: []string{"~/.aider*", "~/.aider/**", "~/.cache/aider/**"}},
	{Name: "aider", Executables: pythonInterpreters, CommandLine: `(^| )-m aider(\.main)?( |$)`},

	// The trailing '/' keeps VS Code's @github/copilot-language-server out:
	// it runs on every machine with the Copilot extension.
	{Name: "copilot", Executables: []string{"copilot"},
		StatePaths: []string{"~/.copilot/**", "~/.config/github-copilot/**"}},
	{Name: "copilot", Executables: nodeInterpreters, CommandLine: `@github/copilot/`},

	{Name: "opencode", Executables: []string{"opencode"},
		StatePaths: []string{"~/.local/share/opencode/**", "~/.config/opencode/**", "~/.cache/opencode/**", "~/.local/state/opencode/**"}},

	// pressly/goose, a database migration tool, has the same binary name;
	// disable this built-in where that one runs.
	{Name: "goose", Executables: []string{"goose"},
		StatePaths: []string{"~/.config/goose/**", "~/.local/share/goose/**", "~/.local/state/goose/**"}},
}

// BuiltinNames lists the built-in agent names, the values disable_agents
// accepts.
func BuiltinNames() []string {
	var out []string
	for _, sp := range builtinSpecs {
		if !slices.Contains(out, sp.Name) {
			out = append(out, sp.Name)
		}
	}
	return out
}
