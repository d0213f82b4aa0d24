// Package kernel loads agentwatch's BPF programs, chooses the hook backend,
// fills the in-kernel filter maps from the receiver's config, and reads the
// ring buffer. It is the only package that talks to the kernel.
package kernel

import (
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"go.uber.org/zap"

	awbpf "github.com/agentwatch/agentwatch/bpf"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
)

// Action is enum exec_action: what a kernel exec match means.
type Action uint8

const (
	ActionStart     Action = 1 // the match alone proves an agent: start a session
	ActionCandidate Action = 2 // track from exec on; userspace decides
)

// Backend names, as in the receiver config's `hooks`.
const (
	BackendAuto       = "auto"
	BackendLSM        = "lsm"
	BackendTracepoint = "tracepoint"
)

const (
	commLen      = 15 // TASK_COMM_LEN - 1
	nameKeyLen   = 32
	prefixKeyLen = 64
	dirKeyLen    = 32 // DIR_KEY_LEN
	maxArgsBytes = 8192
)

// Options configures the kernel side.
type Options struct {
	Hooks           string // auto | lsm | tracepoint
	RingBufferBytes uint32 // power of two, multiple of the page size
	MaxProcesses    uint32
	MaxArgsBytes    uint32
	ExecNames       map[string]Action // comm (basename, first 15 bytes) -> action
	CgroupPrefixes  map[string]Action // cgroup v2 path prefix -> action
	// ExecDirs: (grandparent, parent) directory names of the resolved
	// image -> action.
	ExecDirs      map[[2]string]Action
	MatchAllExecs bool
	NoisePrefixes []string // absolute
	NoiseDirNames []string
	// NoiseFiles are exact absolute paths dropped on every open.
	NoiseFiles []string
	// DropFailedOpens / DropPathOpens drop failed and O_PATH opens of
	// paths that neither KeepPrefixes nor KeepNames name.
	DropFailedOpens bool
	DropPathOpens   bool
	KeepPrefixes    []string // absolute path prefixes (a directory ends in '/')
	KeepNames       []string // basename prefixes
	// MaxSensitiveIDs sizes the sensitive_ids map (files known by inode);
	// PathOnly turns the identity check off (the benchmark's baseline).
	MaxSensitiveIDs uint32
	PathOnly        bool
	// SensitiveGlobs are the files known by identity (noise.keep), and
	// Homes the homes "~" stands for at start (more come with AddHome).
	SensitiveGlobs []string
	Homes          []string
	CgroupRoot     string // default /sys/fs/cgroup
	SecurityFS     string // default /sys/kernel/security
	// Intent configures DNS and TLS capture (intent.go).
	Intent IntentOptions
	// Enforce holds the compiled enforcement rules (enforce.go).
	Enforce EnforceOptions
}

// HookStatus reports one hook: attached, or why not.
type HookStatus struct {
	Name     string
	Attached bool
	Required bool
	Err      error
}

// Tracer owns the loaded programs, their links and the ring buffer reader.
type Tracer struct {
	logger  *zap.Logger
	objs    awbpf.AgentwatchObjects
	links   []link.Link
	reader  *ringbuf.Reader
	backend string
	reason  string
	hooks   []HookStatus
	loaded  bool
	intent  intentState
	lsm     awbpf.LSMObjects
	lsmUp   bool
	// lsmFileOps: the LSM backend's path and mount hooks see the changes
	// of files; their syscall tracepoints are not attached.
	lsmFileOps bool
	// identity: the kernel checks each open's inode against sensitive_ids.
	identity  bool
	ids       *sensitiveIDs
	keepGlobs []string
	sweepStop chan struct{} // closed by Close
	// sockDeny: the cgroup connect programs are attached and deny connects
	sockDeny bool
	// wakeupBytes: records other than exec, fork, exit and verdicts wake
	// the reader once this much is pending (cfg_wakeup_bytes).
	wakeupBytes uint64
	// cgroup2 is the cgroup v2 root the cgroup programs attach at.
	cgroup2    string
	cgroup2Err error
	sweepDone  chan struct{}

	closeOnce sync.Once
	enforce   EnforceOptions
	homesMu   sync.Mutex
	homes     map[string]bool // homes deny_paths has "~/" rules for
}

// ErrPrivileges is returned when the process may not load BPF programs.
var ErrPrivileges = errors.New("not allowed to load BPF programs: run as root (sudo make run), " +
	"or grant CAP_BPF, CAP_PERFMON, CAP_SYS_RESOURCE, CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH " +
	"as deploy/systemd/otelcol-agentwatch.service does")

// ErrNoBTF is returned when the kernel does not describe its own types.
var ErrNoBTF = errors.New("this kernel has no BTF (/sys/kernel/btf/vmlinux is missing): " +
	"agentwatch needs a kernel built with CONFIG_DEBUG_INFO_BTF=y, as the stock kernels of current distributions are")

// Open loads and attaches the programs. On error nothing stays loaded.
func Open(opts Options, logger *zap.Logger) (_ *Tracer, err error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		return nil, ErrNoBTF
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		logger.Debug("could not raise RLIMIT_MEMLOCK; fine on kernels that account BPF memory to cgroups", zap.Error(err))
	}
	ensureMounts(logger)
	t := &Tracer{logger: logger, identity: !opts.PathOnly}
	t.backend, t.reason, err = chooseBackend(opts, logger)
	if err != nil {
		return nil, err
	}
	// Opens can only be denied by LSM (or answered by a kill); connects
	// are denied by the cgroup programs on any backend, checked once they
	// are attached.
	if opts.Enforce.Mode == EnforceEnforce && t.backend != BackendLSM && !opts.Enforce.Kill && opts.Enforce.deniesOpens() {
		return nil, fmt.Errorf("%w (backend %s: %s)", ErrEnforceNeedsLSM, t.backend, t.reason)
	}
	defer func() {
		if err != nil {
			t.Close()
		}
	}()

	spec, err := awbpf.LoadAgentwatch()
	if err != nil {
		return nil, fmt.Errorf("parse embedded BPF object: %w", err)
	}
	spec.Maps["events"].MaxEntries = opts.RingBufferBytes
	spec.Maps["tracked"].MaxEntries = opts.MaxProcesses
	if opts.MaxSensitiveIDs > 0 {
		spec.Maps["sensitive_ids"].MaxEntries = opts.MaxSensitiveIDs
	}
	if err := setVar(spec, "cfg_identity", boolByte(!opts.PathOnly)); err != nil {
		return nil, err
	}
	if err := setVar(spec, "cfg_max_args", opts.MaxArgsBytes); err != nil {
		return nil, err
	}
	if err := setVar(spec, "cfg_match_all_execs", boolByte(opts.MatchAllExecs)); err != nil {
		return nil, err
	}
	if err := setVar(spec, "cfg_cgroup_match", boolByte(len(opts.CgroupPrefixes) > 0)); err != nil {
		return nil, err
	}
	if err := setVar(spec, "cfg_drop_failed_opens", boolByte(opts.DropFailedOpens)); err != nil {
		return nil, err
	}
	if err := setVar(spec, "cfg_drop_path_opens", boolByte(opts.DropPathOpens)); err != nil {
		return nil, err
	}
	if err := enforceVars(spec, opts.Enforce); err != nil {
		return nil, err
	}
	t.wakeupBytes = wakeupBytes(opts.RingBufferBytes)
	if err := setVar(spec, "cfg_wakeup_bytes", t.wakeupBytes); err != nil {
		return nil, err
	}
	if err := spec.LoadAndAssign(&t.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("BPF verifier rejected a program: %w", err)
		}
		if errors.Is(err, syscall.EPERM) {
			return nil, ErrPrivileges
		}
		return nil, fmt.Errorf("load BPF programs: %w", err)
	}
	t.loaded = true
	if err := t.fillMaps(opts); err != nil {
		return nil, err
	}
	if err := t.fillEnforce(opts.Enforce); err != nil {
		return nil, err
	}
	maxIDs := opts.MaxSensitiveIDs
	if maxIDs == 0 {
		maxIDs = t.objs.SensitiveIds.MaxEntries()
	}
	t.keepGlobs = opts.SensitiveGlobs
	t.ids = newSensitiveIDs(opts.SensitiveGlobs, opts.NoiseDirNames, int(maxIDs), t.MarkSensitive, t.UnmarkSensitive)
	for _, h := range opts.Homes {
		t.ids.scanHome(h)
	}
	t.sweepStop = make(chan struct{})
	t.sweepDone = make(chan struct{})
	go t.sweepIDs()
	if t.backend == BackendLSM {
		t.probeLSMFileOps()
	}
	if err := t.attach(); err != nil {
		return nil, err
	}
	t.attachSockAddr("/proc/self/mountinfo")
	if opts.Enforce.Mode == EnforceEnforce && t.backend != BackendLSM && !opts.Enforce.Kill && opts.Enforce.deniesConnects() && !t.sockDeny {
		return nil, fmt.Errorf("%w (backend %s: %s; the cgroup connect programs did not attach)", ErrEnforceNeedsLSM, t.backend, t.reason)
	}
	if t.backend == BackendLSM {
		if err := t.attachLSM(opts.Enforce); err != nil {
			return nil, err
		}
	}
	t.openIntent(opts.Intent)
	t.reader, err = ringbuf.NewReader(t.objs.Events)
	if err != nil {
		return nil, fmt.Errorf("open ring buffer: %w", err)
	}
	return t, nil
}

func (o *Options) validate() error {
	rb := o.RingBufferBytes
	if rb < uint32(os.Getpagesize()) || rb&(rb-1) != 0 {
		return fmt.Errorf("ring buffer size %d: must be a power of two of at least the page size (%d)", rb, os.Getpagesize())
	}
	if o.MaxProcesses == 0 {
		return errors.New("max processes must be positive")
	}
	if o.MaxArgsBytes == 0 || o.MaxArgsBytes > maxArgsBytes {
		return fmt.Errorf("max args bytes %d: must be in 1..%d", o.MaxArgsBytes, maxArgsBytes)
	}
	for _, p := range o.NoisePrefixes {
		if !strings.HasPrefix(p, "/") || len(withSlash(p)) > prefixKeyLen {
			return fmt.Errorf("noise prefix %q: must be absolute and shorter than %d bytes", p, prefixKeyLen)
		}
	}
	for _, n := range o.NoiseDirNames {
		if n == "" || strings.Contains(n, "/") || len(n) >= nameKeyLen {
			return fmt.Errorf("noise dir name %q: must be one path segment shorter than %d bytes", n, nameKeyLen)
		}
	}
	return nil
}

func setVar(spec *ebpf.CollectionSpec, name string, v any) error {
	vs, ok := spec.Variables[name]
	if !ok {
		return fmt.Errorf("BPF object has no variable %s", name)
	}
	if err := vs.Set(v); err != nil {
		return fmt.Errorf("set %s: %w", name, err)
	}
	return nil
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func withSlash(p string) string {
	if strings.HasSuffix(p, "/") {
		return p
	}
	return p + "/"
}

type nameKey [nameKeyLen]byte

func makeNameKey(s string) nameKey {
	var k nameKey
	copy(k[:nameKeyLen-1], s)
	return k
}

type prefixKey struct {
	PrefixLen uint32
	Data      [prefixKeyLen]byte
}

// NameHash is the FNV-1a hash the kernel computes over a path segment.
func NameHash(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64()
}

func (t *Tracer) fillMaps(opts Options) error {
	for name, act := range opts.ExecNames {
		if len(name) > commLen {
			name, act = name[:commLen], ActionCandidate
		}
		if err := t.objs.ExecNames.Update(makeNameKey(name), uint8(act), ebpf.UpdateAny); err != nil {
			return fmt.Errorf("exec_names[%q]: %w", name, err)
		}
	}
	if err := t.fillOpenClass(opts); err != nil {
		return err
	}
	for d, act := range opts.ExecDirs {
		var k [2 * dirKeyLen]byte // struct dir_key
		if len(d[0]) >= dirKeyLen || len(d[1]) >= dirKeyLen {
			return fmt.Errorf("exec_dirs[%q]: directory name too long", d[0]+"/"+d[1])
		}
		copy(k[:], d[0])
		copy(k[dirKeyLen:], d[1])
		if err := t.objs.ExecDirs.Update(&k, uint8(act), ebpf.UpdateAny); err != nil {
			return fmt.Errorf("exec_dirs[%q]: %w", d[0]+"/"+d[1], err)
		}
	}
	root := opts.CgroupRoot
	if root == "" {
		root = "/sys/fs/cgroup"
	}
	for prefix, act := range opts.CgroupPrefixes {
		id, err := cgroupID(filepath.Join(root, prefix))
		if err != nil {
			// The cgroup may be created later (a unit not started yet):
			// not fatal, but the matcher cannot fire in the kernel.
			t.logger.Warn("cgroup matcher not active: the cgroup does not exist yet",
				zap.String("cgroup", prefix), zap.Error(err))
			continue
		}
		if err := t.objs.ExecCgroups.Update(id, uint8(act), ebpf.UpdateAny); err != nil {
			return fmt.Errorf("exec_cgroups[%q]: %w", prefix, err)
		}
	}
	for _, n := range opts.NoiseDirNames {
		if err := t.objs.NoiseNames.Update(makeNameKey(n), uint8(1), ebpf.UpdateAny); err != nil {
			return fmt.Errorf("noise_names[%q]: %w", n, err)
		}
		if err := t.objs.NoiseNameHashes.Update(NameHash(n), uint8(1), ebpf.UpdateAny); err != nil {
			return fmt.Errorf("noise_name_hashes[%q]: %w", n, err)
		}
	}
	for _, p := range opts.NoisePrefixes {
		p = withSlash(p)
		k := prefixKey{PrefixLen: uint32(len(p) * 8)}
		copy(k.Data[:], p)
		if err := t.objs.NoisePrefixes.Update(k, uint8(1), ebpf.UpdateAny); err != nil {
			return fmt.Errorf("noise_prefixes[%q]: %w", p, err)
		}
	}
	return nil
}

// wakeupBytes is the pending data at which a record wakes the reader: a
// thirty-second of the ring, so that a burst is read in large batches with
// most of the ring still free. Below it, records wait for the reader's next
// timed read (Read's deadline: the receiver reads at least every flush
// interval).
func wakeupBytes(ring uint32) uint64 { return uint64(ring) / 32 }

// cgroupID is the cgroup v2 id of a directory: its inode number.
func cgroupID(dir string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

type hookDef struct {
	prog     func(*awbpf.AgentwatchPrograms) *ebpf.Program
	group    string // tracepoint group; "" for tp_btf
	name     string
	required bool
	// lsmCovers: the LSM backend sees this through lsm/file_open or
	// lsm/socket_connect, so the tracepoint is not attached there.
	lsmCovers bool
}

var tracepointHooks = []hookDef{
	{func(p *awbpf.AgentwatchPrograms) *ebpf.Program { return p.HandleExec }, "", "sched_process_exec", true, false},
	{func(p *awbpf.AgentwatchPrograms) *ebpf.Program { return p.HandleFork }, "", "sched_process_fork", true, false},
	{func(p *awbpf.AgentwatchPrograms) *ebpf.Program { return p.HandleExit }, "", "sched_process_exit", true, false},
	// Opens are read at exit only (the arguments are in the saved user
	// registers): one program per open for every process, not two.
	{func(p *awbpf.AgentwatchPrograms) *ebpf.Program { return p.ExitOpenAny }, "syscalls", "sys_exit_openat", true, true},
	{func(p *awbpf.AgentwatchPrograms) *ebpf.Program { return p.ExitOpenAny }, "syscalls", "sys_exit_openat2", false, true},
	// open(2) and creat(2) exist only on some architectures (x86_64, not arm64).
	{func(p *awbpf.AgentwatchPrograms) *ebpf.Program { return p.ExitOpenAny }, "syscalls", "sys_exit_open", false, true},
	{func(p *awbpf.AgentwatchPrograms) *ebpf.Program { return p.ExitOpenAny }, "syscalls", "sys_exit_creat", false, true},
	{func(p *awbpf.AgentwatchPrograms) *ebpf.Program { return p.ExitOpenAny }, "syscalls", "sys_exit_open_by_handle_at", false, true},
	// io_uring's opens name no syscall; lsm/file_open sees them.
	{func(p *awbpf.AgentwatchPrograms) *ebpf.Program { return p.IouringComplete }, "", "io_uring_complete", false, true},
	{func(p *awbpf.AgentwatchPrograms) *ebpf.Program { return p.EnterConnect }, "syscalls", "sys_enter_connect", true, true},
	{func(p *awbpf.AgentwatchPrograms) *ebpf.Program { return p.ExitConnect }, "syscalls", "sys_exit_connect", true, true},
	// How each TCP connection a session process connected ended (both
	// backends): without it there are no agent.net.close records.
	{func(p *awbpf.AgentwatchPrograms) *ebpf.Program { return p.SockSetState }, "", "inet_sock_set_state", false, false},
}

// fileOpHooks: the changes of files (link, rename, unlink, chmod, mount)
// on the tracepoint backend; the LSM backend has lsm/path_* and the mount
// hooks instead (lsm.go). Older kernels lack some (fchmodat2 is 6.6).
var fileOpHooks = func() []hookDef {
	exit := func(p *awbpf.AgentwatchPrograms) *ebpf.Program { return p.ExitFopAny }
	// the entry programs by how many arguments they read
	enters := [...]func(p *awbpf.AgentwatchPrograms) *ebpf.Program{
		1: func(p *awbpf.AgentwatchPrograms) *ebpf.Program { return p.EnterFop1 },
		2: func(p *awbpf.AgentwatchPrograms) *ebpf.Program { return p.EnterFop2 },
		3: func(p *awbpf.AgentwatchPrograms) *ebpf.Program { return p.EnterFop3 },
		4: func(p *awbpf.AgentwatchPrograms) *ebpf.Program { return p.EnterFop4 },
	}
	var hooks []hookDef
	for _, sc := range []struct {
		name string
		args int
	}{
		{"link", 2}, {"linkat", 4}, {"rename", 2}, {"renameat", 4}, {"renameat2", 4}, {"unlink", 1}, {"unlinkat", 3},
		{"chmod", 2}, {"fchmod", 2}, {"fchmodat", 3}, {"fchmodat2", 4}, {"mount", 4}, {"move_mount", 4},
	} {
		hooks = append(hooks,
			hookDef{prog: enters[sc.args], group: "syscalls", name: "sys_enter_" + sc.name},
			hookDef{prog: exit, group: "syscalls", name: "sys_exit_" + sc.name})
	}
	return hooks
}()

func (t *Tracer) attach() error {
	hooks := tracepointHooks[:len(tracepointHooks):len(tracepointHooks)]
	if !t.lsmFileOps {
		hooks = append(hooks, fileOpHooks...)
	}
	for _, h := range hooks {
		if h.lsmCovers && t.backend == BackendLSM {
			continue
		}
		prog := h.prog(&t.objs.AgentwatchPrograms)
		var (
			l    link.Link
			err  error
			name string
		)
		if h.group == "" {
			name = "tp_btf/" + h.name
			l, err = link.AttachTracing(link.TracingOptions{Program: prog})
		} else {
			name = "tracepoint/" + h.group + "/" + h.name
			l, err = link.Tracepoint(h.group, h.name, prog, nil)
		}
		t.hooks = append(t.hooks, HookStatus{Name: name, Attached: err == nil, Required: h.required, Err: err})
		if err != nil {
			if h.required {
				return fmt.Errorf("attach %s: %w", name, err)
			}
			continue
		}
		t.links = append(t.links, l)
	}
	return nil
}

// attachSockAddr attaches the cgroup sock_addr programs at the cgroup v2
// root: connects and addressed UDP sends by any path (io_uring, TCP Fast
// Open, unconnected UDP), on both backends. Without cgroup v2 they are
// reported as failed hooks; the syscall hooks still see connect(2).
func (t *Tracer) attachSockAddr(mountinfo string) {
	root, rerr := cgroup2Root(mountinfo)
	t.cgroup2, t.cgroup2Err = root, rerr
	if rerr == nil {
		t.logger.Info("connect and send programs attach at the cgroup v2 root", zap.String("cgroup2", root))
	}
	p := &t.objs.AgentwatchPrograms
	attached := 0
	for _, h := range []struct {
		name string
		at   ebpf.AttachType
		prog *ebpf.Program
	}{
		{"cgroup/connect4", ebpf.AttachCGroupInet4Connect, p.SockConnect4},
		{"cgroup/connect6", ebpf.AttachCGroupInet6Connect, p.SockConnect6},
		{"cgroup/sendmsg4", ebpf.AttachCGroupUDP4Sendmsg, p.SockSendmsg4},
		{"cgroup/sendmsg6", ebpf.AttachCGroupUDP6Sendmsg, p.SockSendmsg6},
	} {
		err := rerr
		var l link.Link
		if err == nil {
			l, err = link.AttachCgroup(link.CgroupOptions{Path: root, Attach: h.at, Program: h.prog})
		}
		t.hooks = append(t.hooks, HookStatus{Name: h.name, Attached: err == nil, Err: err})
		if err == nil {
			t.links = append(t.links, l)
			if h.at == ebpf.AttachCGroupInet4Connect || h.at == ebpf.AttachCGroupInet6Connect {
				attached++
			}
		}
	}
	// Both connect programs up: they judge every connect; the syscall
	// tracepoint leaves enforcement to them.
	if attached == 2 {
		if err := t.objs.SockEnforce.Update(uint32(0), uint8(1), ebpf.UpdateAny); err == nil {
			t.sockDeny = true
		}
	}
}

// Backend returns the chosen hook backend and why it was chosen.
func (t *Tracer) Backend() (name, reason string) { return t.backend, t.reason }

// Hooks lists every hook with its attach result.
func (t *Tracer) Hooks() []HookStatus { return append([]HookStatus(nil), t.hooks...) }

// trackedValue mirrors struct tracked.
type trackedValue struct {
	Start uint64
	Flags uint32
	_     uint32
}

const trackedPending = 1

// Track adds a process to the in-kernel session map.
func (t *Tracer) Track(pid uint32, start uint64, pending bool) error {
	v := trackedValue{Start: start}
	if pending {
		v.Flags = trackedPending
	}
	return t.objs.Tracked.Update(pid, v, ebpf.UpdateAny)
}

// Untrack removes a process from the in-kernel session map.
func (t *Tracer) Untrack(pid uint32) error {
	err := t.objs.Tracked.Delete(pid)
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil
	}
	return err
}

// Counters are the kernel-side counters, summed over CPUs.
type Counters struct {
	Drops        [kevent.KindMax]uint64 // ring buffer full, per event kind
	NoiseDropped uint64                 // file opens dropped as noise in the kernel
	InflightFull uint64                 // syscall entries that could not be stashed
	TrackedFull  uint64                 // session processes the map had no room for
	NoiseFiles   uint64                 // opens of an exact noise file
	FailedOpens  uint64                 // failed opens of paths no keep entry names
	PathOpens    uint64                 // O_PATH opens of paths no keep entry names
	FileOps      uint64                 // unlinks and failed file changes no keep entry names
	NoiseDirHits uint64                 // of NoiseDropped: in a known noise directory, not walked
}

// Counters reads the per-CPU counters.
func (t *Tracer) Counters() (Counters, error) {
	var c Counters
	for k := uint32(0); k < kevent.KindMax; k++ {
		v, err := sumPerCPU(t.objs.Drops, k)
		if err != nil {
			return c, err
		}
		c.Drops[k] = v
	}
	for i, dst := range []*uint64{&c.NoiseDropped, &c.InflightFull, &c.TrackedFull, &c.NoiseFiles, &c.FailedOpens, &c.PathOpens, &c.FileOps, &c.NoiseDirHits} {
		v, err := sumPerCPU(t.objs.Stats, uint32(i))
		if err != nil {
			return c, err
		}
		*dst = v
	}
	return c, nil
}

func sumPerCPU(m *ebpf.Map, key uint32) (uint64, error) {
	var vals []uint64
	if err := m.Lookup(key, &vals); err != nil {
		return 0, err
	}
	var sum uint64
	for _, v := range vals {
		sum += v
	}
	return sum, nil
}

// ErrClosed is returned by Read after Close.
var ErrClosed = ringbuf.ErrClosed

// ErrTimeout is returned by Read when the deadline passed with no record.
var ErrTimeout = os.ErrDeadlineExceeded

// Read blocks for the next record until the deadline (zero: none). The
// returned slice is valid until the next Read.
func (t *Tracer) Read(rec *ringbuf.Record, deadline time.Time) error {
	t.reader.SetDeadline(deadline)
	return t.reader.ReadInto(rec)
}

// Close detaches everything. Safe to call more than once.
func (t *Tracer) Close() error {
	var errs []error
	t.closeOnce.Do(func() {
		if t.reader != nil {
			errs = append(errs, t.reader.Close())
		}
		// Each detach waits out an RCU grace period: in parallel, the
		// waits overlap (40 links: 1.4 s one by one).
		lerrs := make([]error, len(t.links))
		var wg sync.WaitGroup
		for i, l := range t.links {
			wg.Add(1)
			go func() {
				defer wg.Done()
				lerrs[i] = l.Close()
			}()
		}
		wg.Wait()
		errs = append(errs, lerrs...)
		errs = append(errs, t.closeIntent())
		if t.sweepStop != nil {
			close(t.sweepStop)
			<-t.sweepDone
		}
		if t.ids != nil {
			t.ids.close()
		}
		if t.lsmUp {
			errs = append(errs, t.lsm.Close())
		}
		if t.loaded {
			errs = append(errs, t.objs.Close())
		}
	})
	return errors.Join(errs...)
}
