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
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"go.uber.org/zap"

	awbpf "github.com/agentwatch/agentwatch/bpf"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/boringssl"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/proctree"
)

// The intent layer (bpf/intent.bpf.c): DNS messages of session processes
// from their sockets' packets (cgroup_skb), and TLS plaintext from uprobes on the SSL_*
// functions, placed in each session process and no other (see TLSTarget).
// It is optional: a failure to load or attach is logged and
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
	// LibDirs are searched for libssl at start. Every session process is
	// probed in what they hold from its exec or fork on, mapped or not yet,
	// so that a later load (python's `import ssl`) is covered from its
	// first call; DefaultLibDirs when nil.
	LibDirs []string
}

// Limits of intent.bpf.c.
const (
	MaxDNSPorts   = 4
	MaxTLSCapture = 1 << 20
	maxTLSTargets = 256 // MAX_TLS_TARGETS: the cookie indexes the fire counters
	// maxTargetCache bounds the executables remembered as checked.
	maxTargetCache = 4096
	// maxTLSProbes bounds the per-process probes held at once, counting
	// those still being closed: 8 per libssl per process (entry and return
	// of four functions), each a perf event and a BPF link. Closing one
	// costs the kernel ~100 ms, serialised, so the bound is also what
	// bounds the backlog after a burst of exits and the time Close takes
	// (about 100 s at the bound). A process over it goes unprobed, counted
	// in TLSProcStats.OverLimit and warned about once per episode.
	maxTLSProbes = 1024
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

// TLSTarget is one binary examined for TLS functions. Its probes are not
// on the file but in each session process that runs or loads it: the
// uprobes carry a pid filter, so the kernel puts breakpoints only into
// that process's memory and no other process mapping the file traps.
type TLSTarget struct {
	Path  string // as found (in the process's mount namespace)
	Index int    // attach cookie; -1 when refused
	// Attached: accepted, its functions are probed in the session
	// processes that map it (a system library: in every session process).
	Attached bool
	Symbols  []string // functions probed
	// Discovery says how they were found: "dynamic symbols", "symbol
	// table" or "BoringSSL error-site fingerprint".
	Discovery string
	Reason    string // why refused
	Procs     int    // session processes its probes are in now
	// Fires counts entry probe hits (set by TLSTargets). The probes are
	// in session processes only, so nothing outside them adds to it.
	Fires uint64
}

// TLSProcStats describe the per-process probes.
type TLSProcStats struct {
	Live      int    // processes with probes now
	Attached  uint64 // processes given probes
	Released  uint64 // processes whose probes were closed (exit, gone, pid reused)
	OverLimit uint64 // discoveries that left a target unprobed: maxTLSProbes held
	Errors    uint64 // attaches that failed with the process still there
	Closing   int    // released processes whose probes are still being closed
	Probes    int    // probes held by live processes
	// ClosingProbes are probes waiting for (or in) their close.
	ClosingProbes int
}

// IntentCounters are the intent layer's kernel counters.
type IntentCounters struct {
	DNSSent, DNSReceived uint64
	TLSCalls             uint64 // SSL calls of session processes captured
	TLSTruncated         uint64 // of which cut at the capture cap
	TLSArgsFull          uint64 // entries that could not stash their arguments
}

type fileID struct{ dev, ino uint64 }

type intentState struct {
	objs   awbpf.IntentObjects
	loaded bool
	tls    bool
	links  []link.Link
	proc   string
	// sysLibs are the system libssl paths accepted at start, one per
	// inode; set once before any discovery, read without mu.
	sysLibs []string
	mu      sync.Mutex // the fields below (discovery vs exits vs telemetry vs close)
	targets []*tlsTarget
	checked map[fileID]*tlsTarget
	procs   map[proctree.Key]*tlsProc
	procSt  TLSProcStats
	over    bool // at the bound: logged once until below it again
	// Closing a uprobe waits for an RCU-tasks-trace grace period under
	// the kernel's event_mutex: about 100 ms each, one at a time (6.18,
	// measured). Creating one takes that mutex too, while holding the
	// target's exec_update_lock: an attach stuck behind closes delays the
	// exec of the session process it is for. So the closer goroutine
	// closes, one probe at a time, only while no attach is under way or
	// has just been (closeYield).
	closeQ      []closeBatch
	closingProc int           // processes in closeQ or being closed
	liveProbes  int           // links in procs
	closingPrb  int           // links in closeQ or being closed
	closeKick   chan struct{} // to the closer; nil once closed
	closerDone  chan struct{}
	stopping    bool      // closeIntent has begun: attach nothing more
	attaching   int       // DiscoverTLS calls under way
	lastAttach  time.Time // when a probe was last created
}

// closeYield is how long the closer keeps off after an attach: an agent
// starts its tools in bursts (a fork, its exec, the children of a shell),
// and the closes can wait for the lull while the model answers. The
// backlog counts toward maxTLSProbes.
const closeYield = 250 * time.Millisecond

// closeBatch is probes for the closer: a process's (proc) or the targets
// an exec left behind.
type closeBatch struct {
	links []link.Link
	proc  bool
}

// tlsTarget is a TLSTarget with what attaching it to a process needs.
type tlsTarget struct {
	TLSTarget
	probes []sslProbe
	procs  int
	warned bool // a failed attach was logged
}

// tlsProc holds the probes of one session process, by target index.
type tlsProc struct {
	exe   fileID // the image they were put in for
	links map[int][]link.Link
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
		"open_class": t.objs.OpenClass, "sess_socks": t.objs.SessSocks, "keep_names": t.objs.KeepNames,
		"sensitive_ids": t.objs.SensitiveIds,
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
	if err := setVar(spec, "cfg_wakeup_bytes", t.wakeupBytes); err != nil {
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
	is.checked = map[fileID]*tlsTarget{}
	if opts.DNS {
		t.attachDNS()
	}
	if opts.TLS {
		is.tls = true
		is.procs = map[proctree.Key]*tlsProc{}
		is.closeKick = make(chan struct{}, 1)
		is.closerDone = make(chan struct{})
		go is.closer(is.closeKick)
		dirs := opts.LibDirs
		if dirs == nil {
			dirs = DefaultLibDirs
		}
		// The system libssl is examined up front and probed in every
		// session process, mapped or not: a process loads it (python's
		// `import ssl`, curl's loader) in its first milliseconds, and a
		// pid-filtered probe on the file takes effect when that process
		// maps it; waiting to see it mapped loses the race with a call
		// made at once (a tool piping a file to an HTTPS endpoint).
		seen := map[int]bool{}
		for _, dir := range dirs {
			matches, _ := filepath.Glob(filepath.Join(dir, "libssl.so*"))
			for _, p := range matches {
				if tg := t.examine(p, p, "system library"); tg != nil && tg.Attached && !seen[tg.Index] {
					seen[tg.Index] = true
					is.sysLibs = append(is.sysLibs, p)
				}
			}
		}
		t.hooks = append(t.hooks, HookStatus{Name: "uprobe/SSL_*", Attached: true})
	}
}

// DiscoverTLS puts the TLS probes into a session process: in its
// executable (node links OpenSSL statically and exports SSL_*), in the
// libssl it has mapped, and in the system libssl it may load later. The
// probes carry the pid, so only this process traps; a forked child does
// not inherit them and needs its own call. Each file is examined once (by
// device and inode), opened through /proc/<pid>/root so that processes in
// other mount namespaces work; each target is attached once per process,
// so calling again (the periodic pass) only adds what is new. startNS
// (CLOCK_BOOTTIME, as in event headers) names the process: if its pid now
// names another one, nothing is attached and what the old one had is
// closed. A no-op when TLS capture is off.
func (t *Tracer) DiscoverTLS(pid uint32, startNS uint64) {
	is := &t.intent
	if !is.tls {
		return
	}
	key := proctree.KeyOf(pid, startNS)
	if !is.alive(key) {
		t.releaseTLS(key)
		return
	}
	is.mu.Lock()
	is.attaching++
	is.mu.Unlock()
	defer func() {
		is.mu.Lock()
		is.attaching--
		is.mu.Unlock()
	}()
	base := filepath.Join(is.proc, strconv.FormatUint(uint64(pid), 10))
	// By target index, the file it was found in, held open until the
	// attach: the probe is placed through the descriptor, so it lands
	// in the inode examined even if the path is replaced meanwhile.
	files := map[int]*os.File{}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	add := func(f *os.File, shown, kind string) {
		tg := t.targetOf(f, shown, kind)
		if tg == nil || !tg.Attached || files[tg.Index] != nil {
			f.Close()
			return
		}
		files[tg.Index] = f
	}
	var exe fileID
	if path, err := os.Readlink(filepath.Join(base, "exe")); err == nil {
		if f, err := os.Open(filepath.Join(base, "exe")); err == nil {
			exe, _ = idOf(f)
			add(f, strings.TrimSuffix(path, " (deleted)"), "executable")
		}
	}
	if maps, err := os.Open(filepath.Join(base, "maps")); err == nil {
		seen := map[string]bool{}
		sc := bufio.NewScanner(maps)
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
			if f, err := os.Open(filepath.Join(base, "root", p)); err == nil {
				add(f, p, "library")
			}
		}
		maps.Close()
	}
	for _, p := range is.sysLibs {
		if f, err := os.Open(p); err == nil {
			add(f, p, "system library")
		}
	}
	t.attachTLS(key, exe, files)
	// The pid may have been reused between the check and the attach: the
	// probes would sit in a process outside every session.
	if !is.alive(key) {
		t.releaseTLS(key)
	}
}

// alive reports whether key's pid still names that process, running.
func (is *intentState) alive(key proctree.Key) bool {
	st, err := proctree.ReadStat(is.proc, key.PID)
	return err == nil && st.Start == key.Start && !st.Zombie()
}

// attachTLS gives the process key the probes of each target in files it
// does not have yet. A new image (exe differs from the one the probes were
// put in for) drops the targets it no longer has: the old image's memory,
// and its breakpoints, went with the exec.
func (t *Tracer) attachTLS(key proctree.Key, exe fileID, files map[int]*os.File) {
	is := &t.intent
	is.mu.Lock()
	defer is.mu.Unlock()
	if !is.loaded || is.stopping {
		return // closed meanwhile
	}
	p := is.procs[key]
	if p != nil && exe != (fileID{}) && p.exe != exe {
		var stale []link.Link
		for idx, ls := range p.links {
			if files[idx] == nil {
				stale = append(stale, ls...)
				delete(p.links, idx)
				is.targets[idx].procs--
			}
		}
		is.liveProbes -= len(stale)
		is.queueClose(stale, false)
	}
	isNew := p == nil
	if isNew {
		if len(files) == 0 {
			return
		}
		p = &tlsProc{links: map[int][]link.Link{}}
	}
	if exe != (fileID{}) {
		p.exe = exe
	}
	idxs := make([]int, 0, len(files))
	for idx := range files {
		idxs = append(idxs, idx)
	}
	slices.Sort(idxs)
	over := false
	for _, idx := range idxs {
		tg := is.targets[idx]
		if _, have := p.links[idx]; have || !tg.Attached {
			continue
		}
		if is.liveProbes+is.closingPrb+2*len(tg.probes) > maxTLSProbes {
			over = true
			continue
		}
		links, err := t.attachTarget(tg, fdPath(files[idx]), key.PID)
		if errors.Is(err, syscall.ESRCH) {
			// Gone before its probes were placed: nothing to hold.
			is.queueClose(links, false)
			t.releaseLocked(key, p)
			return
		}
		if len(links) > 0 {
			p.links[idx] = links
			tg.procs++
			is.liveProbes += len(links)
			is.lastAttach = time.Now()
		}
		if err == nil {
			continue
		}
		is.procSt.Errors++
		if len(links) == 0 {
			// Not one function took: the file cannot be probed (it is not
			// this process that is wrong), so no other process tries.
			tg.Attached, tg.Reason = false, err.Error()
			t.logger.Warn("TLS target refused", zap.String("path", tg.Path), zap.Uint32("pid", key.PID), zap.Error(err))
		} else if !tg.warned {
			tg.warned = true
			t.logger.Warn("TLS target partly probed", zap.String("path", tg.Path), zap.Uint32("pid", key.PID), zap.Error(err))
		}
	}
	if over {
		is.procSt.OverLimit++
		// Once per episode: a warning per process would be noise, the
		// counter has the number.
		if !is.over {
			is.over = true
			t.logger.Warn("TLS probes not attached: too many held; this process's TLS is not seen",
				zap.Uint32("pid", key.PID), zap.Int("limit", maxTLSProbes), zap.Int("live", is.liveProbes),
				zap.Int("closing", is.closingPrb), zap.Uint64("refused_so_far", is.procSt.OverLimit))
		}
	} else {
		is.over = false
	}
	switch {
	case isNew && len(p.links) > 0:
		is.procs[key] = p
		is.procSt.Attached++
	case !isNew && len(p.links) == 0:
		// An exec into an image with nothing to probe, and no system
		// libssl: nothing left to hold.
		delete(is.procs, key)
		is.procSt.Released++
	}
}

// attachTarget places tg's entry and return probes in process pid only,
// through path (a descriptor of the file examined). Called with mu held.
func (t *Tracer) attachTarget(tg *tlsTarget, path string, pid uint32) ([]link.Link, error) {
	is := &t.intent
	ex, err := link.OpenExecutable(path)
	if err != nil {
		return nil, err
	}
	var links []link.Link
	var errs error
	for _, fn := range sslFuncs {
		i := slices.IndexFunc(tg.probes, func(p sslProbe) bool { return p.name == fn.name })
		if i < 0 {
			continue
		}
		// The offset resolved at discovery: no ELF parsing per process.
		uo := &link.UprobeOptions{PID: int(pid), Cookie: uint64(tg.Index), Address: tg.probes[i].offset}
		l1, err := ex.Uprobe(fn.name, fn.entry(&is.objs.IntentPrograms), uo)
		if err != nil {
			if errors.Is(err, syscall.ESRCH) {
				return links, err
			}
			errs = errors.Join(errs, fmt.Errorf("%s: %w", fn.name, err))
			continue
		}
		l2, err := ex.Uretprobe(fn.name, is.objs.SslExit, uo)
		if err != nil {
			is.queueClose([]link.Link{l1}, false)
			if errors.Is(err, syscall.ESRCH) {
				return links, err
			}
			errs = errors.Join(errs, fmt.Errorf("%s return: %w", fn.name, err))
			continue
		}
		links = append(links, l1, l2)
	}
	return links, errs
}

// ReleaseTLS closes the probes of a process that exited (startNS as in
// DiscoverTLS). Closing them is what frees their perf events and uprobe
// consumers: a dead process's probes never fire but would hold both.
func (t *Tracer) ReleaseTLS(pid uint32, startNS uint64) {
	if t.intent.tls {
		t.releaseTLS(proctree.KeyOf(pid, startNS))
	}
}

func (t *Tracer) releaseTLS(key proctree.Key) {
	is := &t.intent
	is.mu.Lock()
	defer is.mu.Unlock()
	if p := is.procs[key]; p != nil {
		t.releaseLocked(key, p)
	}
}

func (t *Tracer) releaseLocked(key proctree.Key, p *tlsProc) {
	is := &t.intent
	var all []link.Link
	for idx, ls := range p.links {
		all = append(all, ls...)
		is.targets[idx].procs--
	}
	is.liveProbes -= len(all)
	p.links = nil
	if is.procs[key] == p {
		delete(is.procs, key)
		is.procSt.Released++
		is.queueClose(all, true)
	} else {
		is.queueClose(all, false)
	}
}

// queueClose hands links to the closer. Called with mu held.
func (is *intentState) queueClose(links []link.Link, proc bool) {
	if len(links) == 0 {
		return
	}
	if is.closeKick == nil {
		closeLinks(links) // no closer any more
		return
	}
	is.closeQ = append(is.closeQ, closeBatch{links, proc})
	is.closingPrb += len(links)
	if proc {
		is.closingProc++
	}
	select {
	case is.closeKick <- struct{}{}:
	default: // the closer has been told already
	}
}

// closer closes queued probes until closeIntent closes kick (closeKick,
// passed in: closeIntent clears the field), then what is left.
func (is *intentState) closer(kick <-chan struct{}) {
	defer close(is.closerDone)
	for range kick {
		for {
			is.mu.Lock()
			if len(is.closeQ) == 0 {
				is.mu.Unlock()
				break
			}
			b := is.closeQ[0]
			is.closeQ = is.closeQ[1:]
			is.mu.Unlock()
			for _, l := range b.links {
				is.yieldToAttach()
				l.Close()
				is.mu.Lock()
				is.closingPrb--
				is.mu.Unlock()
			}
			if b.proc {
				is.mu.Lock()
				is.closingProc--
				is.mu.Unlock()
			}
		}
	}
}

// yieldToAttach waits until no attach is under way or recent, unless the
// tracer is closing.
func (is *intentState) yieldToAttach() {
	for {
		is.mu.Lock()
		wait := closeYield - time.Since(is.lastAttach)
		if is.attaching > 0 {
			wait = closeYield
		}
		stopping := is.stopping
		is.mu.Unlock()
		if wait <= 0 || stopping {
			return
		}
		time.Sleep(wait)
	}
}

// SweepTLS releases the probes of processes that are gone or whose pid
// names another process now: their exit was lost (a full queue), or came
// before their attach. It returns how many it released.
func (t *Tracer) SweepTLS() int {
	is := &t.intent
	if !is.tls {
		return 0
	}
	is.mu.Lock()
	keys := make([]proctree.Key, 0, len(is.procs))
	for k := range is.procs {
		keys = append(keys, k)
	}
	is.mu.Unlock()
	n := 0
	for _, k := range keys {
		if !is.alive(k) {
			t.releaseTLS(k)
			n++
		}
	}
	return n
}

// TLSProcs returns the per-process probe counters.
func (t *Tracer) TLSProcs() TLSProcStats {
	is := &t.intent
	is.mu.Lock()
	defer is.mu.Unlock()
	s := is.procSt
	s.Live = len(is.procs)
	s.Closing = is.closingProc
	s.Probes = is.liveProbes
	s.ClosingProbes = is.closingPrb
	return s
}

func closeLinks(ls []link.Link) {
	for _, l := range ls {
		l.Close()
	}
}

// fdPath names an open file for the kernel: the uprobe is placed on
// whatever inode the path resolves to when it is created.
func fdPath(f *os.File) string { return "/proc/self/fd/" + strconv.FormatUint(uint64(f.Fd()), 10) }

func idOf(f *os.File) (fileID, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return fileID{}, err
	}
	return fileID{uint64(st.Dev), st.Ino}, nil
}

// examine returns the target of the file at open (a path this process
// can open), nil when it is gone; shown is the path logged and reported.
func (t *Tracer) examine(open, shown, kind string) *tlsTarget {
	f, err := os.Open(open)
	if err != nil {
		return nil
	}
	defer f.Close()
	return t.targetOf(f, shown, kind)
}

// targetOf returns the target of the open file f, examining it the first
// time its inode is seen. Nothing is attached here: that is per process.
func (t *Tracer) targetOf(f *os.File, shown, kind string) *tlsTarget {
	id, err := idOf(f)
	if err != nil {
		return nil
	}
	is := &t.intent
	is.mu.Lock()
	defer is.mu.Unlock()
	if !is.loaded || is.stopping {
		return nil // closed meanwhile
	}
	if tg, done := is.checked[id]; done {
		return tg
	}
	tg := &tlsTarget{TLSTarget: TLSTarget{Path: shown, Index: -1}}
	if len(is.checked) < maxTargetCache {
		is.checked[id] = tg
	}
	probes, how, refused := sslProbes(fdPath(f))
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
		return tg
	}
	if len(is.targets) >= maxTLSTargets {
		tg.Reason = fmt.Sprintf("more than %d TLS targets", maxTLSTargets)
		t.logger.Warn("TLS target refused", zap.String("path", shown), zap.String("reason", tg.Reason))
		return tg
	}
	// Accepted targets are remembered past the cache bound: there are at
	// most maxTLSTargets, and each holds a fire counter.
	is.checked[id] = tg
	tg.Index = len(is.targets)
	is.targets = append(is.targets, tg)
	for _, fn := range sslFuncs {
		if i := slices.IndexFunc(probes, func(p sslProbe) bool { return p.name == fn.name }); i >= 0 {
			tg.probes = append(tg.probes, probes[i])
			tg.Symbols = append(tg.Symbols, fn.name)
		}
	}
	tg.Attached = true
	tg.Discovery = how
	fields := []zap.Field{zap.String("path", shown), zap.String("kind", kind), zap.Strings("functions", tg.Symbols), zap.String("found_by", how)}
	for _, p := range tg.probes {
		if !p.symbol {
			fields = append(fields, zap.String(p.name, fmt.Sprintf("file offset %#x", p.offset)))
		}
	}
	t.logger.Info("TLS target found: probed in the session processes that map it", fields...)
	return tg
}

// sslProbe is one function to probe, at its offset in the file: resolved
// once per file here, where the ELF file is open anyway, and not again in
// each process the target is attached to.
type sslProbe struct {
	name   string
	offset uint64
	symbol bool // found by its symbol; else by BoringSSL discovery
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
				if s.Name != fn.name || slices.ContainsFunc(probes, func(p sslProbe) bool { return p.name == fn.name }) {
					continue
				}
				if off, ok := fileOffset(f, s.Value); ok {
					probes = append(probes, sslProbe{name: fn.name, offset: off, symbol: true})
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

// fileOffset maps a function's virtual address to its offset in the file,
// through the executable segment that loads it: uprobes are placed by
// file offset.
func fileOffset(f *elf.File, vaddr uint64) (uint64, bool) {
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && p.Flags&elf.PF_X != 0 && p.Vaddr <= vaddr && vaddr < p.Vaddr+p.Memsz {
			return vaddr - p.Vaddr + p.Off, true
		}
	}
	return 0, false
}

// attachDNS attaches the packet programs at the cgroup v2 root that the
// sock_addr programs use: those mark the session sockets whose packets
// these read.
func (t *Tracer) attachDNS() {
	is := &t.intent
	for _, h := range []struct {
		name string
		at   ebpf.AttachType
		prog *ebpf.Program
	}{
		{"cgroup_skb/egress", ebpf.AttachCGroupInetEgress, is.objs.DnsEgress},
		{"cgroup_skb/ingress", ebpf.AttachCGroupInetIngress, is.objs.DnsIngress},
	} {
		err := t.cgroup2Err
		var l link.Link
		if err == nil {
			l, err = link.AttachCgroup(link.CgroupOptions{Path: t.cgroup2, Attach: h.at, Program: h.prog})
		}
		t.hooks = append(t.hooks, HookStatus{Name: h.name, Attached: err == nil, Err: err})
		if err != nil {
			t.logger.Warn("DNS hook not attached", zap.String("hook", h.name), zap.Error(err))
			continue
		}
		is.links = append(is.links, l)
	}
}

// TLSTargets lists the binaries examined that define SSL functions, with
// the session processes probed in each and their fire counts.
func (t *Tracer) TLSTargets() []TLSTarget {
	is := &t.intent
	is.mu.Lock()
	defer is.mu.Unlock()
	out := make([]TLSTarget, 0, len(is.targets))
	for _, tg := range is.targets {
		c := tg.TLSTarget
		c.Symbols = slices.Clone(c.Symbols)
		c.Procs = tg.procs
		if is.loaded {
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
	for i, dst := range []*uint64{&c.DNSSent, &c.DNSReceived, &c.TLSCalls, &c.TLSTruncated, &c.TLSArgsFull} {
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
	is.stopping = true
	for key, p := range is.procs {
		t.releaseLocked(key, p)
	}
	kick := is.closeKick
	is.closeKick = nil
	is.mu.Unlock()
	if kick != nil {
		// The closer drains the queue without yielding, then ends: ~100 ms
		// a probe in the kernel, bounded by maxTLSProbes. Probes left
		// open would go on trapping session processes after Close.
		close(kick)
		<-is.closerDone
	}
	is.mu.Lock()
	defer is.mu.Unlock()
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
