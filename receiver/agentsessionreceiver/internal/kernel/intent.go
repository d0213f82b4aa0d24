package kernel

import (
	"bufio"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"go.uber.org/zap"

	awbpf "github.com/agentwatch/agentwatch/bpf"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/boringssl"
)

// The intent layer (bpf/intent.bpf.c): DNS messages of session processes
// from syscall tracepoints, and TLS plaintext from uprobes on the SSL_*
// functions. It is optional: a failure to load or attach is logged and
// reported as a hook status, and the session tracking goes on without it.

// IntentOptions configures the intent layer.
type IntentOptions struct {
	DNS bool
	// DNSPorts are the resolver ports captured (at most MaxDNSPorts); 53
	// when empty.
	DNSPorts []uint16
	TLS      bool
	// TLSMaxCapture caps the plaintext copied per SSL_read/SSL_write call
	// (1..MaxTLSCapture bytes); longer calls are flagged truncated.
	TLSMaxCapture uint32
	// ProcRoot is procfs, for target discovery; /proc when empty.
	ProcRoot string
	// LibDirs are searched for libssl at start, so that every process that
	// loads it later is covered without a race; DefaultLibDirs when nil.
	LibDirs []string
}

// Limits of intent.bpf.c.
const (
	MaxDNSPorts   = 4
	MaxTLSCapture = 1 << 20
	maxTLSTargets = 256 // MAX_TLS_TARGETS: the cookie indexes the fire counters
	// maxTargetCache bounds the executables remembered as checked.
	maxTargetCache = 4096
)

// DefaultLibDirs are where distributions put the system libssl.
var DefaultLibDirs = []string{
	"/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib",
	"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
	"/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
}

// sslFuncs are the functions probed, with their entry program. The return
// program is the same for all four: the entry recorded what it needs.
var sslFuncs = []struct {
	name  string
	entry func(*awbpf.IntentPrograms) *ebpf.Program
}{
	{"SSL_write", func(p *awbpf.IntentPrograms) *ebpf.Program { return p.SslWriteEnter }},
	{"SSL_read", func(p *awbpf.IntentPrograms) *ebpf.Program { return p.SslReadEnter }},
	{"SSL_write_ex", func(p *awbpf.IntentPrograms) *ebpf.Program { return p.SslWriteExEnter }},
	{"SSL_read_ex", func(p *awbpf.IntentPrograms) *ebpf.Program { return p.SslReadExEnter }},
}

// TLSTarget is one binary examined for TLS functions.
type TLSTarget struct {
	Path     string // as found (in the process's mount namespace)
	Index    int    // attach cookie; -1 when refused
	Attached bool
	Symbols  []string // functions probed
	// Discovery says how they were found: "dynamic symbols", "symbol
	// table" or "BoringSSL error-site fingerprint".
	Discovery string
	Reason    string // why refused
	Fires     uint64 // entry probe hits, all processes (set by TLSTargets)
}

// IntentCounters are the intent layer's kernel counters.
type IntentCounters struct {
	DNSSent, DNSReceived uint64
	TLSCalls             uint64 // SSL calls of session processes captured
	TLSTruncated         uint64 // of which cut at the capture cap
	TLSArgsFull          uint64 // entries that could not stash their arguments
	DNSArgsFull          uint64
}

type fileID struct{ dev, ino uint64 }

type intentState struct {
	objs     awbpf.IntentObjects
	loaded   bool
	tls      bool
	links    []link.Link
	proc     string
	mu       sync.Mutex // targets, checked, links (discovery vs telemetry)
	targets  []*TLSTarget
	checked  map[fileID]*TLSTarget
	tlsLinks []link.Link
}

type tpDef struct {
	name string
	prog func(*awbpf.IntentPrograms) *ebpf.Program
}

var dnsTracepoints = []tpDef{
	{"sys_enter_sendto", func(p *awbpf.IntentPrograms) *ebpf.Program { return p.DnsEnterSendto }},
	{"sys_enter_sendmsg", func(p *awbpf.IntentPrograms) *ebpf.Program { return p.DnsEnterSendmsg }},
	{"sys_enter_sendmmsg", func(p *awbpf.IntentPrograms) *ebpf.Program { return p.DnsEnterSendmmsg }},
	{"sys_enter_write", func(p *awbpf.IntentPrograms) *ebpf.Program { return p.DnsEnterWrite }},
	{"sys_enter_recvfrom", func(p *awbpf.IntentPrograms) *ebpf.Program { return p.DnsEnterRecvfrom }},
	{"sys_exit_recvfrom", func(p *awbpf.IntentPrograms) *ebpf.Program { return p.DnsExitRecvfrom }},
	{"sys_enter_recvmsg", func(p *awbpf.IntentPrograms) *ebpf.Program { return p.DnsEnterRecvmsg }},
	{"sys_exit_recvmsg", func(p *awbpf.IntentPrograms) *ebpf.Program { return p.DnsExitRecvmsg }},
	{"sys_enter_recvmmsg", func(p *awbpf.IntentPrograms) *ebpf.Program { return p.DnsEnterRecvmmsg }},
	{"sys_exit_recvmmsg", func(p *awbpf.IntentPrograms) *ebpf.Program { return p.DnsExitRecvmmsg }},
	{"sys_enter_read", func(p *awbpf.IntentPrograms) *ebpf.Program { return p.DnsEnterRead }},
	{"sys_exit_read", func(p *awbpf.IntentPrograms) *ebpf.Program { return p.DnsExitRead }},
}

func (o *IntentOptions) validate() error {
	if len(o.DNSPorts) > MaxDNSPorts {
		return fmt.Errorf("at most %d DNS ports, got %d", MaxDNSPorts, len(o.DNSPorts))
	}
	if o.TLS && (o.TLSMaxCapture == 0 || o.TLSMaxCapture > MaxTLSCapture) {
		return fmt.Errorf("TLS capture cap %d: must be in 1..%d", o.TLSMaxCapture, MaxTLSCapture)
	}
	return nil
}

// openIntent loads intent.bpf.c with the main object's shared maps and
// attaches what it can. It never fails Open: problems become hook statuses.
func (t *Tracer) openIntent(opts IntentOptions) {
	if !opts.DNS && !opts.TLS {
		return
	}
	fail := func(name string, err error) {
		t.logger.Warn("intent layer unavailable", zap.String("hook", name), zap.Error(err))
		t.hooks = append(t.hooks, HookStatus{Name: name, Err: err})
	}
	if err := opts.validate(); err != nil {
		fail("intent", err)
		return
	}
	spec, err := awbpf.LoadIntent()
	if err != nil {
		fail("intent", fmt.Errorf("parse embedded BPF object: %w", err))
		return
	}
	// Every map the two objects share by name is the main object's: one
	// membership map, one ring buffer, one set of drop counters.
	main := map[string]*ebpf.Map{
		"events": t.objs.Events, "tracked": t.objs.Tracked, "drops": t.objs.Drops,
		"stats": t.objs.Stats, "inflight": t.objs.Inflight, "path_scratch": t.objs.PathScratch,
		"ev_scratch": t.objs.EvScratch, "noise_names": t.objs.NoiseNames,
		"noise_prefixes": t.objs.NoisePrefixes, "noise_name_hashes": t.objs.NoiseNameHashes,
		"open_class": t.objs.OpenClass,
	}
	repl := map[string]*ebpf.Map{}
	for name, m := range main {
		if ms, ok := spec.Maps[name]; ok && m != nil {
			ms.MaxEntries = m.MaxEntries()
			repl[name] = m
		}
	}
	ports := [MaxDNSPorts]uint16{53}
	if len(opts.DNSPorts) > 0 {
		ports = [MaxDNSPorts]uint16{}
		copy(ports[:], opts.DNSPorts)
	}
	if err := setVar(spec, "cfg_dns_ports", ports); err != nil {
		fail("intent", err)
		return
	}
	tlsMax := opts.TLSMaxCapture
	if tlsMax == 0 {
		tlsMax = 1
	}
	if err := setVar(spec, "cfg_tls_max", tlsMax); err != nil {
		fail("intent", err)
		return
	}
	is := &t.intent
	if err := spec.LoadAndAssign(&is.objs, &ebpf.CollectionOptions{MapReplacements: repl}); err != nil {
		if errors.Is(err, syscall.EPERM) {
			err = fmt.Errorf("%w (%v)", ErrPrivileges, err)
		}
		fail("intent", fmt.Errorf("load BPF programs: %w", err))
		return
	}
	is.loaded = true
	is.proc = opts.ProcRoot
	if is.proc == "" {
		is.proc = "/proc"
	}
	is.checked = map[fileID]*TLSTarget{}
	if opts.DNS {
		for _, tp := range dnsTracepoints {
			name := "tracepoint/syscalls/" + tp.name
			l, err := link.Tracepoint("syscalls", tp.name, tp.prog(&is.objs.IntentPrograms), nil)
			t.hooks = append(t.hooks, HookStatus{Name: name, Attached: err == nil, Err: err})
			if err != nil {
				t.logger.Warn("DNS hook not attached", zap.String("hook", name), zap.Error(err))
				continue
			}
			is.links = append(is.links, l)
		}
	}
	if opts.TLS {
		is.tls = true
		dirs := opts.LibDirs
		if dirs == nil {
			dirs = DefaultLibDirs
		}
		// The system libssl is probed up front: a process loads it (python's
		// `import ssl`) long after its exec, and probes on the file cover
		// every process that maps it from then on.
		for _, dir := range dirs {
			matches, _ := filepath.Glob(filepath.Join(dir, "libssl.so*"))
			for _, p := range matches {
				t.examine(p, p, "system library")
			}
		}
		t.hooks = append(t.hooks, HookStatus{Name: "uprobe/SSL_*", Attached: true})
	}
}

// DiscoverTLS examines a session process for TLS code: its executable
// (node links OpenSSL statically and exports SSL_*) and the libssl it has
// mapped. Each file is examined once (by device and inode), through
// /proc/<pid>/root so that processes in other mount namespaces work.
// Safe to call often; a no-op when TLS capture is off.
func (t *Tracer) DiscoverTLS(pid uint32) {
	is := &t.intent
	if !is.tls {
		return
	}
	base := filepath.Join(is.proc, strconv.FormatUint(uint64(pid), 10))
	if exe, err := os.Readlink(filepath.Join(base, "exe")); err == nil {
		t.examine(filepath.Join(base, "exe"), strings.TrimSuffix(exe, " (deleted)"), "executable")
	}
	f, err := os.Open(filepath.Join(base, "maps"))
	if err != nil {
		return
	}
	defer f.Close()
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<16)
	for sc.Scan() {
		// address perms offset dev inode path
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || !strings.Contains(fields[1], "x") {
			continue
		}
		p := strings.Join(fields[5:], " ")
		if !strings.HasPrefix(filepath.Base(p), "libssl.so") || seen[p] {
			continue
		}
		seen[p] = true
		t.examine(filepath.Join(base, "root", p), p, "library")
	}
}

// examine attaches the uprobes to the file at open (a path this process
// can open) once per inode; shown is the path logged and reported.
func (t *Tracer) examine(open, shown, kind string) {
	var st syscall.Stat_t
	if err := syscall.Stat(open, &st); err != nil {
		return // gone already
	}
	id := fileID{uint64(st.Dev), st.Ino}
	is := &t.intent
	is.mu.Lock()
	defer is.mu.Unlock()
	if !is.loaded {
		return // closed meanwhile
	}
	if _, done := is.checked[id]; done {
		return
	}
	tg := &TLSTarget{Path: shown, Index: -1}
	if len(is.checked) < maxTargetCache {
		is.checked[id] = tg
	}
	probes, how, refused := sslProbes(open)
	if refused != nil {
		tg.Reason = refused.Error()
		// Executables without TLS code are the common case: debug level.
		// TLS code that cannot be probed (BoringSSL discovery refused)
		// is a gap in what is seen: a warning.
		lvl := t.logger.Info
		switch {
		case errors.Is(refused, errNoSSL) && kind == "executable":
			lvl = t.logger.Debug
		case !errors.Is(refused, errNoSSL) && !errors.Is(refused, errNotELF):
			lvl = t.logger.Warn
		}
		lvl("TLS target refused", zap.String("path", shown), zap.String("kind", kind), zap.String("reason", tg.Reason))
		return
	}
	if len(is.targets) >= maxTLSTargets {
		tg.Reason = fmt.Sprintf("more than %d TLS targets", maxTLSTargets)
		t.logger.Warn("TLS target refused", zap.String("path", shown), zap.String("reason", tg.Reason))
		return
	}
	tg.Index = len(is.targets)
	is.targets = append(is.targets, tg)
	ex, err := link.OpenExecutable(open)
	if err != nil {
		tg.Reason = err.Error()
		t.logger.Warn("TLS target refused", zap.String("path", shown), zap.Error(err))
		return
	}
	var links []link.Link
	var attachErr error
	for _, fn := range sslFuncs {
		i := slices.IndexFunc(probes, func(p sslProbe) bool { return p.name == fn.name })
		if i < 0 {
			continue
		}
		uo := &link.UprobeOptions{Cookie: uint64(tg.Index), Address: probes[i].offset}
		l1, err := ex.Uprobe(fn.name, fn.entry(&is.objs.IntentPrograms), uo)
		if err != nil {
			attachErr = errors.Join(attachErr, fmt.Errorf("%s: %w", fn.name, err))
			continue
		}
		l2, err := ex.Uretprobe(fn.name, is.objs.SslExit, uo)
		if err != nil {
			l1.Close()
			attachErr = errors.Join(attachErr, fmt.Errorf("%s return: %w", fn.name, err))
			continue
		}
		links = append(links, l1, l2)
		tg.Symbols = append(tg.Symbols, fn.name)
	}
	is.tlsLinks = append(is.tlsLinks, links...)
	tg.Attached = len(tg.Symbols) > 0
	if !tg.Attached {
		tg.Reason = attachErr.Error()
		t.logger.Warn("TLS target refused", zap.String("path", shown), zap.String("kind", kind), zap.Error(attachErr))
		return
	}
	tg.Discovery = how
	fields := []zap.Field{zap.String("path", shown), zap.String("kind", kind), zap.Strings("functions", tg.Symbols), zap.String("found_by", how)}
	for _, p := range probes {
		if p.offset != 0 {
			fields = append(fields, zap.String(p.name, fmt.Sprintf("file offset %#x", p.offset)))
		}
	}
	if attachErr != nil {
		fields = append(fields, zap.NamedError("partial", attachErr))
	}
	t.logger.Info("TLS target attached", fields...)
}

// sslProbe is one function to probe: by its symbol, or at a file offset
// found by BoringSSL discovery.
type sslProbe struct {
	name   string
	offset uint64 // 0: resolve name in the symbol tables
}

// Why a file has nothing to probe, in the common cases.
var (
	errNoSSL  = errors.New("no SSL symbols")
	errNotELF = errors.New("not an ELF file")
)

// sslProbes returns what to probe in the ELF file at path and how it was
// found, or why there is nothing. Exported SSL_* symbols (libssl, node)
// come first, then the symbol table of unstripped binaries, then, for
// binaries with neither, BoringSSL discovery (Bun and what it compiles).
func sslProbes(path string) (probes []sslProbe, how string, refused error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", errNotELF, err)
	}
	defer f.Close()
	scan := func(syms []elf.Symbol) {
		for _, s := range syms {
			if elf.ST_TYPE(s.Info) != elf.STT_FUNC || s.Value == 0 || s.Section == elf.SHN_UNDEF {
				continue
			}
			for _, fn := range sslFuncs {
				if s.Name == fn.name && !slices.ContainsFunc(probes, func(p sslProbe) bool { return p.name == fn.name }) {
					probes = append(probes, sslProbe{name: fn.name})
				}
			}
		}
	}
	dyn, _ := f.DynamicSymbols()
	if scan(dyn); len(probes) > 0 {
		return probes, "dynamic symbols", nil
	}
	st, _ := f.Symbols()
	if scan(st); len(probes) > 0 {
		return probes, "symbol table", nil
	}
	found, err := boringssl.Find(path)
	switch {
	case errors.Is(err, boringssl.ErrNotBoringSSL):
		return nil, "", errNoSSL
	case err != nil:
		return nil, "", fmt.Errorf("BoringSSL compiled in without symbols, and discovery refused: %w", err)
	}
	return []sslProbe{
		{name: "SSL_write", offset: found.Write.Offset},
		{name: "SSL_read", offset: found.Read.Offset},
	}, "BoringSSL error-site fingerprint", nil
}

// TLSTargets lists the binaries examined that define SSL functions, with
// their fire counts.
func (t *Tracer) TLSTargets() []TLSTarget {
	is := &t.intent
	is.mu.Lock()
	defer is.mu.Unlock()
	out := make([]TLSTarget, 0, len(is.targets))
	for _, tg := range is.targets {
		c := *tg
		if c.Attached && is.loaded {
			c.Fires, _ = sumPerCPU(is.objs.TlsFires, uint32(c.Index))
		}
		out = append(out, c)
	}
	return out
}

// IntentCounters reads the intent layer's kernel counters.
func (t *Tracer) IntentCounters() (IntentCounters, error) {
	var c IntentCounters
	if !t.intent.loaded {
		return c, nil
	}
	for i, dst := range []*uint64{&c.DNSSent, &c.DNSReceived, &c.TLSCalls, &c.TLSTruncated, &c.TLSArgsFull, &c.DNSArgsFull} {
		v, err := sumPerCPU(t.intent.objs.IntentStats, uint32(i))
		if err != nil {
			return c, err
		}
		*dst = v
	}
	return c, nil
}

func (t *Tracer) closeIntent() error {
	is := &t.intent
	var errs []error
	is.mu.Lock()
	defer is.mu.Unlock()
	for _, l := range is.tlsLinks {
		errs = append(errs, l.Close())
	}
	is.tlsLinks = nil
	for _, l := range is.links {
		errs = append(errs, l.Close())
	}
	is.links = nil
	if is.loaded {
		errs = append(errs, is.objs.Close())
		is.loaded = false
	}
	return errors.Join(errs...)
}
