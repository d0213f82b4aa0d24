package policy

import (
	"math"
	"net/netip"
	"strconv"
	"strings"

	"github.com/agentwatch/agentwatch/internal/pathglob"
)

// Homes are the home directories "~" stands for in one event: the home of
// the user running the process and of the session's user (the agent's), the
// process's HOME as of its exec, and the uid's home in the passwd of the
// process's own root (a sandbox or container has its own). Any may be ""
// (unknown); they may be equal. Matching against all catches "sudo cat
// /root/.aws/…", "sudo -u bob cat ~alice/.ssh/…" and HOME=/sandbox/home.
type Homes [4]string

// Indices of Homes.
const (
	HomeOfUID     = 0 // the event's uid, as the collector's user database says
	HomeOfSession = 1 // the session user's
	HomeEnv       = 2 // HOME as of the process's exec
	HomeOwnRoot   = 3 // the uid's, as the /etc/passwd under the process's own root says
)

// has reports whether i is the first entry holding its directory, so that
// each distinct home is tried once.
func (h *Homes) has(i int) bool {
	if h[i] == "" {
		return false
	}
	for j := 0; j < i; j++ {
		if h[j] == h[i] {
			return false
		}
	}
	return true
}

// Primary is the home a "~" in an argument stands for: the process's HOME
// when known (the shell expands "~" from it), else the uid's.
func (h *Homes) Primary() string {
	for _, i := range [...]int{HomeEnv, HomeOfUID, HomeOwnRoot, HomeOfSession} {
		if h[i] != "" {
			return h[i]
		}
	}
	return ""
}

// workdirExempts reports whether opens inside workdir may skip location
// rules. A working directory that is "/" or holds a home directory exempts
// nothing: an agent started in $HOME must not make ~/.ssh unscored.
func workdirExempts(workdir string, homes *Homes) bool {
	if workdir == "" || workdir == "/" || workdir[0] != '/' {
		return false
	}
	for _, h := range homes {
		if h != "" && pathglob.Within(h, workdir) {
			return false
		}
	}
	return true
}

func (e *pathEntry) match(p string, homes *Homes) bool { return globMatch(e.glob, p, homes) }

func (e *pathEntry) hit(p string, homes *Homes, tree bool) bool {
	if tree {
		return e.covers(p, homes)
	}
	return e.match(p, homes)
}

// globMatch: g matches p, with "~" any home the process has.
func globMatch(g *pathglob.Glob, p string, homes *Homes) bool {
	if !g.HasHome() {
		return g.Match(p, "")
	}
	for i := range homes {
		if homes.has(i) && g.Match(p, homes[i]) {
			return true
		}
	}
	return false
}

// MatchPath adds the path rules p matches to rs and reports whether any of
// them is sensitive (credential_access), which makes a read a chain step.
// p must be absolute and normalised (pathglob.Clean). workdir is the
// session's working directory; location rules do not score opens inside it.
func (pol *Policy) MatchPath(p string, homes Homes, workdir string, rs *RuleSet) bool {
	return pol.matchPath(p, homes, workdir, rs, false)
}

// MatchPathTree is MatchPath for a name that may be a directory standing for
// everything under it: the source or target of a rename, a link or a mount.
// An entry also matches when p is its literal base directory or an ancestor
// of it (a bind mount of ~ exposes ~/.ssh; a mount onto ~/.ssh replaces the
// keys). Name patterns ("**/.env*") match p only directly, as in tar's
// check.
func (pol *Policy) MatchPathTree(p string, homes Homes, workdir string, rs *RuleSet) bool {
	return pol.matchPath(p, homes, workdir, rs, true)
}

// matchPath: with tree, an entry matches what p covers (pathEntry.covers).
func (pol *Policy) matchPath(p string, homes Homes, workdir string, rs *RuleSet, tree bool) bool {
	inWorkdir := workdirExempts(workdir, &homes) && pathglob.Within(p, workdir)
	sensitive := false
	for i := range pol.paths {
		e := &pol.paths[i]
		if inWorkdir && !e.anywhere {
			continue
		}
		if e.hit(p, &homes, tree) {
			rs.Add(e.rule)
			sensitive = sensitive || e.sensitive
		}
	}
	return sensitive
}

// MatchPersistence adds file.persistence to rs when p, opened for writing,
// is a persistence target. Git's own sample hooks (*.sample, written by
// every git init and clone) run nothing and are not.
func (pol *Policy) MatchPersistence(p string, homes Homes, rs *RuleSet) {
	pol.matchPersistence(p, homes, rs, false)
}

// MatchPersistenceTree is MatchPersistence for a rename, link or mount
// target that may be a directory: a mount onto ~/.ssh or /etc/cron.d
// replaces the files under it.
func (pol *Policy) MatchPersistenceTree(p string, homes Homes, rs *RuleSet) {
	pol.matchPersistence(p, homes, rs, true)
}

func (pol *Policy) matchPersistence(p string, homes Homes, rs *RuleSet, tree bool) {
	if strings.HasSuffix(p, ".sample") && strings.Contains(p, "/.git/hooks/") {
		return
	}
	for i := range pol.persistence {
		if pol.persistence[i].hit(p, &homes, tree) {
			rs.Add(RuleFilePersistence)
			return
		}
	}
}

// IsSensitive reports whether p (absolute, normalised) is a sensitive path,
// wherever it is.
func (pol *Policy) IsSensitive(p string, homes Homes) bool {
	for i := range pol.sensitive {
		if pol.sensitive[i].match(p, &homes) {
			return true
		}
	}
	return false
}

// coversSensitive reports whether a recursive operation on p reaches a
// sensitive path.
func (pol *Policy) coversSensitive(p string, homes *Homes) bool {
	for i := range pol.sensitive {
		g := pol.sensitive[i].glob
		if !g.HasHome() {
			if g.Covers(p, "") {
				return true
			}
			continue
		}
		for j := range homes {
			if homes.has(j) && g.Covers(p, homes[j]) {
				return true
			}
		}
	}
	return false
}

// Exec is a process image start.
type Exec struct {
	Exe   string   // process.executable.path
	Args  []string // argv, argv[0] first; may hold ArgsCut where the kernel cut it
	Cwd   string   // the process's working directory, for relative arguments
	Homes Homes
	// Program is what a dynamic loader run as a command loads
	// (agent.process.program); the binary and argv rules judge it.
	Program string
	// Fileless: the image runs from a memfd or a deleted file.
	Fileless bool
}

// ArgsCut is the element the receiver puts in process.command_args where
// the kernel cut the middle of a long argv (the head and the tail are
// kept). It is no argument: never a path, never an option's value.
const ArgsCut = "\u2026"

// deletedSuffix ends /proc/<pid>/exe of an image whose file is gone.
const deletedSuffix = " (deleted)"

// ExecFacts are what an exec contributes to cross-event rules.
type ExecFacts struct {
	Stage  bool // encodes or stages data: an encoder or archiver, or argv names a sensitive path
	Egress bool // sends data out by itself: an upload, a reverse shell
	// Encodes: an encoder or archiver ran (the built-in classes plus the
	// risky_binaries entries of those classes), whatever its arguments.
	Encodes bool
	// ChmodTargets are the resolved files a chmod makes executable.
	ChmodTargets []string
}

// ExecPath is the executable the rules judge: the program a loader was
// asked to run, else the image, without the " (deleted)" that
// /proc/<pid>/exe appends to a removed file.
func ExecPath(exe, program string) string {
	if program != "" {
		exe = program
	}
	return strings.TrimSuffix(exe, deletedSuffix)
}

// programArgs returns argv from the loaded program's position on: the
// first argument at index >= 1 that is the program's path or has its base
// name (ld.so [loader options] /usr/bin/curl args…). Without one (the
// kernel cut it out) argv is kept whole.
func programArgs(args []string, program string) []string {
	base := program[strings.LastIndexByte(program, '/')+1:]
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "" || a == ArgsCut {
			continue
		}
		if a == program || a[strings.LastIndexByte(a, '/')+1:] == base || pathglob.Clean(a) == program {
			return args[i:]
		}
	}
	return args
}

// ToolName returns the name a binary is known by: the base name of the
// executable, with a distribution suffix dropped when the bare name is a
// known tool ("nc.openbsd" → "nc").
func ToolName(exe string) string {
	name := exe[strings.LastIndexByte(exe, '/')+1:]
	if _, ok := binaryClass[name]; ok {
		return name
	}
	if i := strings.IndexByte(name, '.'); i > 0 {
		if _, ok := binaryClass[name[:i]]; ok {
			return name[:i]
		}
	}
	return name
}

// IsTransferTool reports whether exe downloads files (curl, wget, scp, …).
func IsTransferTool(exe string) bool {
	_, ok := transferTools[ToolName(exe)]
	return ok
}

// execNames returns the names an exec is known by: the executable's and
// argv[0]'s, which differ for symlinks and multi-call binaries.
func execNames(e *Exec) (string, string) {
	a := ToolName(e.Exe)
	b := ""
	if len(e.Args) > 0 && e.Args[0] != "" {
		b = ToolName(e.Args[0])
		if b == a {
			b = ""
		}
	}
	return a, b
}

func (pol *Policy) binRule(name string) (int, bool) {
	if name == "" {
		return 0, false
	}
	if r, ok := pol.binNames[name]; ok {
		return r, true
	}
	// "nc.openbsd" for a listed "nc"; ToolName only strips known names.
	if i := strings.IndexByte(name, '.'); i > 0 {
		r, ok := pol.binNames[name[:i]]
		return r, ok
	}
	return 0, false
}

func (b *binaryEntry) matches(exePath, n1, n2 string, homes *Homes) bool {
	if b.glob == nil {
		return b.name == n1 || (n2 != "" && b.name == n2)
	}
	return exePath != "" && globMatch(b.glob, exePath, homes)
}

// MatchExec adds the binary and argv rules an exec matches to rs. A
// loaded program is judged as the executable, with argv from its position
// on; a fileless image or a loader run as a command score on their own.
func (pol *Policy) MatchExec(e *Exec, rs *RuleSet) ExecFacts {
	if e.Fileless {
		rs.Add(RuleExecFileless)
	}
	if e.Program != "" {
		rs.Add(RuleExecLoader)
	}
	if e.Program == "" && !strings.HasSuffix(e.Exe, deletedSuffix) {
		return pol.matchExec(e, rs)
	}
	v := *e
	v.Exe = ExecPath(e.Exe, e.Program)
	if e.Program != "" {
		v.Args = programArgs(e.Args, e.Program)
	}
	v.Program = ""
	return pol.matchExec(&v, rs)
}

func (pol *Policy) matchExec(e *Exec, rs *RuleSet) ExecFacts {
	var f ExecFacts
	n1, n2 := execNames(e)
	exePath := pathglob.Clean(e.Exe)
	for _, n := range [2]string{n1, n2} {
		if r, ok := pol.binRule(n); ok {
			rs.Add(r)
		}
	}
	for i := range pol.binGlobs {
		if pol.binGlobs[i].matches(exePath, n1, n2, &e.Homes) {
			rs.Add(pol.binGlobs[i].rule)
		}
	}

	for _, n := range [2]string{n1, n2} {
		switch n {
		case "curl":
			if curlUploads(e.Args) {
				rs.Add(RuleArgvCurlUpload)
				f.Egress = true
				if pol.argsSensitive(e, false) {
					rs.Add(RuleArgvUploadSensitive)
				}
			}
		case "wget", "wget2":
			if wgetPostsFile(e.Args) {
				rs.Add(RuleArgvWgetPostFile)
				f.Egress = true
				if pol.argsSensitive(e, false) {
					rs.Add(RuleArgvUploadSensitive)
				}
			}
		case "scp", "rsync", "sftp":
			// Copying a key (or a tree holding one) to another host.
			if pol.argsSensitive(e, true) {
				rs.Add(RuleArgvUploadSensitive)
				f.Egress = true
			}
		case "nc", "ncat", "netcat", "socat":
			if netcatExecs(n, e.Args) {
				rs.Add(RuleArgvNetcatExec)
				f.Egress = true
			}
		case "chmod":
			if targets := chmodExecTargets(e.Args, e.Cwd, e.Homes.Primary()); targets != nil {
				rs.Add(RuleArgvChmodExec)
				f.ChmodTargets = targets
			}
		}
		if _, ok := pol.encoders[n]; ok && n != "" {
			f.Stage, f.Encodes = true, true
			if pol.argsSensitive(e, false) {
				rs.Add(RuleArgvEncodeSensitive)
			}
		}
		if _, ok := pol.archivers[n]; ok && n != "" {
			f.Stage, f.Encodes = true, true
			if pol.argsSensitive(e, true) {
				rs.Add(RuleArgvArchiveSensitive)
			}
		}
	}
	for _, a := range argvTail(e.Args) {
		if strings.Contains(a, "/dev/tcp/") || strings.Contains(a, "/dev/udp/") {
			rs.Add(RuleArgvDevTCP)
			f.Egress = true
			break
		}
	}
	if !f.Stage && pol.argsSensitive(e, false) {
		f.Stage = true
	}

	if len(pol.customExec) > 0 {
		var cmdline string
		for i := range pol.customExec {
			c := &pol.customExec[i]
			if c.hasBinary && !c.binary.matches(exePath, n1, n2, &e.Homes) {
				continue
			}
			if c.argv != nil {
				if cmdline == "" {
					cmdline = strings.Join(e.Args, " ")
				}
				if !c.argv.MatchString(cmdline) {
					continue
				}
			}
			rs.Add(c.rule)
		}
	}
	return f
}

func argvTail(args []string) []string {
	if len(args) == 0 {
		return nil
	}
	return args[1:]
}

// argsSensitive reports whether an argument names a sensitive path; with
// recursive, also a directory that holds one. tar's -C/--directory moves
// the base that later relative arguments resolve against.
func (pol *Policy) argsSensitive(e *Exec, recursive bool) bool {
	cwd := e.Cwd
	args := argvTail(e.Args)
	for i := 0; i < len(args); i++ {
		a := args[i]
		if recursive {
			switch {
			case (a == "-C" || a == "--directory") && i+1 < len(args) && args[i+1] != ArgsCut:
				if d := pathglob.Resolve(args[i+1], cwd, e.Homes.Primary()); d != "" {
					cwd = d
					if pol.coversSensitive(d, &e.Homes) {
						return true
					}
				}
				i++
				continue
			case strings.HasPrefix(a, "--directory="):
				if d := pathglob.Resolve(a[len("--directory="):], cwd, e.Homes.Primary()); d != "" {
					cwd = d
				}
				continue
			}
		}
		var cands [3]string
		for _, c := range pathCandidates(a, cands[:0]) {
			p := pathglob.Resolve(c, cwd, e.Homes.Primary())
			if p == "" {
				continue
			}
			if pol.IsSensitive(p, e.Homes) || (recursive && pol.coversSensitive(p, &e.Homes)) {
				return true
			}
		}
	}
	return false
}

// pathCandidates returns the strings in one argument that may be paths:
// the argument, what follows "@" or "<" (curl's file references), and the
// value of "--opt=value" or "name=@file".
func pathCandidates(a string, out []string) []string {
	if a == "" || a == ArgsCut {
		return out
	}
	if a[0] != '-' {
		out = append(out, a)
	}
	if a[0] == '@' || a[0] == '<' {
		out = append(out, a[1:])
	}
	if i := strings.IndexByte(a, '='); i >= 0 && i+1 < len(a) {
		v := a[i+1:]
		if v[0] == '@' || v[0] == '<' {
			v = v[1:]
		}
		if j := strings.IndexByte(v, ';'); j >= 0 { // curl -F "f=@file;type=text/plain"
			v = v[:j]
		}
		out = append(out, v)
	}
	return out
}

// curl's short options that take a value; the value is the rest of the
// cluster or the next argument.
const curlShortWithValue = "AbcCdDeEFHKmoPQrtTuUwxXyYz"

func curlUploads(args []string) bool {
	for i := 1; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "--") {
			name, val, hasVal := strings.Cut(a, "=")
			next := func() string {
				if hasVal {
					return val
				}
				if i+1 < len(args) && args[i+1] != ArgsCut {
					i++
					return args[i]
				}
				return ""
			}
			switch name {
			case "--data-binary", "--upload-file", "--form":
				return true
			case "--data", "--data-ascii", "--json":
				if strings.HasPrefix(next(), "@") {
					return true
				}
			case "--data-urlencode":
				if strings.Contains(next(), "@") {
					return true
				}
			}
			continue
		}
		if len(a) < 2 || a[0] != '-' {
			continue
		}
		for j := 1; j < len(a); j++ {
			c := a[j]
			if !strings.ContainsRune(curlShortWithValue, rune(c)) {
				continue
			}
			val := a[j+1:]
			if val == "" && i+1 < len(args) && args[i+1] != ArgsCut {
				i++
				val = args[i]
			}
			switch c {
			case 'T', 'F':
				return true
			case 'd':
				if strings.HasPrefix(val, "@") {
					return true
				}
			}
			break
		}
	}
	return false
}

func wgetPostsFile(args []string) bool {
	for _, a := range argvTail(args) {
		for _, opt := range [...]string{"--post-file", "--body-file"} {
			if a == opt || strings.HasPrefix(a, opt+"=") {
				return true
			}
		}
	}
	return false
}

// netcat short options that take a value; "e" and "c" (exec) are the ones
// looked for, so a cluster is read until a value-taking option.
const netcatShortWithValue = "bgGiIOpPqsTVwxXmM"

func netcatExecs(tool string, args []string) bool {
	if tool == "socat" {
		for _, a := range argvTail(args) {
			l := strings.ToLower(a)
			if strings.HasPrefix(l, "exec:") || strings.HasPrefix(l, "system:") {
				return true
			}
		}
		return false
	}
	for _, a := range argvTail(args) {
		switch {
		case a == "--exec" || a == "--sh-exec" || a == "--lua-exec",
			strings.HasPrefix(a, "--exec="), strings.HasPrefix(a, "--sh-exec="), strings.HasPrefix(a, "--lua-exec="):
			return true
		case len(a) >= 2 && a[0] == '-' && a[1] != '-':
			for j := 1; j < len(a); j++ {
				c := a[j]
				if c == 'e' || c == 'c' {
					return true
				}
				if strings.IndexByte(netcatShortWithValue, c) >= 0 {
					break
				}
			}
		}
	}
	return false
}

// chmodExecTargets returns the files a chmod makes executable (resolved
// against cwd), or nil when it does not add an execute bit.
func chmodExecTargets(args []string, cwd, home string) []string {
	tail := argvTail(args)
	mode := -1
	for i, a := range tail {
		if a == ArgsCut {
			return nil // the mode was cut out
		}
		if a == "--" {
			if i+1 < len(tail) {
				mode = i + 1
			}
			break
		}
		if strings.HasPrefix(a, "--reference") {
			return nil
		}
		if strings.HasPrefix(a, "--") {
			continue
		}
		// "-x", "-w" are modes (remove a bit); "-R", "-v", "-f", "-c" options.
		if len(a) > 1 && a[0] == '-' && strings.Trim(a[1:], "Rvfc") == "" {
			continue
		}
		mode = i
		break
	}
	if mode < 0 || tail[mode] == ArgsCut || !addsExec(tail[mode]) {
		return nil
	}
	targets := []string{}
	for _, a := range tail[mode+1:] {
		if a == ArgsCut {
			continue
		}
		if p := pathglob.Resolve(a, cwd, home); p != "" {
			targets = append(targets, p)
		}
	}
	return targets
}

// addsExec reports whether a chmod mode sets an execute bit: a symbolic
// clause with "+" or "=" and "x", or an octal mode with any x bit.
func addsExec(mode string) bool {
	if mode == "" {
		return false
	}
	if mode[0] >= '0' && mode[0] <= '7' {
		v, err := strconv.ParseUint(mode, 8, 32)
		return err == nil && v&0o111 != 0
	}
	for _, clause := range strings.Split(mode, ",") {
		i := strings.IndexAny(clause, "+=")
		if i >= 0 && strings.ContainsAny(clause[i+1:], "xX") {
			return true
		}
	}
	return false
}

// Connect is an outbound connection.
type Connect struct {
	Addr netip.Addr // unmapped
	Port int
	Name string // the name the session resolved to Addr, if known
}

// Allowed reports whether the destination is in allowed_destinations.
func (pol *Policy) Allowed(name string, a netip.Addr) bool {
	return pol.allowed.matchName(name) || pol.allowed.matchAddr(a)
}

// StandardPort reports whether port needs no net.non_standard_port.
func (pol *Policy) StandardPort(port int) bool {
	return port >= 0 && port < 65536 && pol.standardPorts[port>>6]&(1<<(uint(port)&63)) != 0
}

// IsSystemResolver reports whether a is one of the system's resolvers.
func (pol *Policy) IsSystemResolver(a netip.Addr) bool {
	_, ok := pol.systemResolvers[a]
	return ok
}

// MatchConnect adds the per-event connect rules to rs and reports whether
// the destination is allowed. Session rules (unresolved IP, many
// destinations) are the engine's.
func (pol *Policy) MatchConnect(c *Connect, rs *RuleSet) bool {
	allowed := pol.Allowed(c.Name, c.Addr)
	if !allowed {
		rs.Add(RuleNetNotAllowed)
	}
	if c.Port > 0 && !pol.StandardPort(c.Port) {
		rs.Add(RuleNetNonStandardPort)
	}
	for i := range pol.customDest {
		if pol.customDest[i].set.matchName(c.Name) || pol.customDest[i].set.matchAddr(c.Addr) {
			rs.Add(pol.customDest[i].rule)
		}
	}
	for i := range pol.customPorts {
		if _, ok := pol.customPorts[i].ports[c.Port]; ok {
			rs.Add(pol.customPorts[i].rule)
		}
	}
	return allowed
}

// MatchDNS adds the DNS rules a query matches to rs and reports whether it
// looks like tunnelling (a long or high-entropy label), which is egress.
// name must be normalised (NormalizeName); resolver may be invalid
// (unknown).
// encodedLooking reports whether a label reads like encoder output (base32,
// base64url, hex) rather than words: long service names join their words
// with hyphens, encoders never emit one.
func encodedLooking(label string) bool { return strings.IndexByte(label, '-') < 0 }

func (pol *Policy) MatchDNS(name string, resolver netip.Addr, rs *RuleSet) bool {
	tunnel := false
	if name != "" {
		if !pol.allowed.matchName(name) {
			rs.Add(RuleDNSNotAllowed)
		}
		rest := name
		for rest != "" {
			label := rest
			if i := strings.IndexByte(rest, '.'); i >= 0 {
				label, rest = rest[:i], rest[i+1:]
			} else {
				rest = ""
			}
			long := len(label) > pol.maxLabel
			random := len(label) >= pol.entropyMin && Entropy(label) > pol.entropyBits
			if long {
				rs.Add(RuleDNSLongLabel)
			}
			if random {
				rs.Add(RuleDNSHighEntropy)
			}
			if long && random && encodedLooking(label) {
				// Either alone has benign causes (CDN hashes, long
				// service names); a long random label in an encoding's
				// alphabet is data carried in the name.
				rs.Add(RuleDNSTunnel)
			}
			tunnel = tunnel || long || random
		}
		for i := range pol.customDNS {
			if pol.customDNS[i].set.matchName(name) {
				rs.Add(pol.customDNS[i].rule)
			}
		}
	}
	if resolver.IsValid() && !pol.IsSystemResolver(resolver) {
		rs.Add(RuleDNSForeignResolver)
	}
	return tunnel
}

// Entropy is the Shannon entropy of s in bits per byte.
func Entropy(s string) float64 {
	if len(s) == 0 {
		return 0
	}
	var counts [256]uint32
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	n := float64(len(s))
	h := 0.0
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}

// MaskEnabled drops disabled rules from rs.
func (pol *Policy) MaskEnabled(rs *RuleSet) { rs.Intersect(&pol.enabled) }
