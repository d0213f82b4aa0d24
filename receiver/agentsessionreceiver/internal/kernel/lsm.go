package kernel

import (
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"go.uber.org/zap"

	awbpf "github.com/agentwatch/agentwatch/bpf"
)

// lsmFileOpHooks are the LSM hooks of the changes of files (link, rename,
// unlink, chmod, mount), which replace the file-op syscall tracepoints on
// the LSM backend.
var lsmFileOpHooks = []struct {
	name string
	prog func(*awbpf.LSMPrograms) *ebpf.Program
}{
	{"lsm/path_link", func(p *awbpf.LSMPrograms) *ebpf.Program { return p.LsmPathLink }},
	{"lsm/path_rename", func(p *awbpf.LSMPrograms) *ebpf.Program { return p.LsmPathRename }},
	{"lsm/path_unlink", func(p *awbpf.LSMPrograms) *ebpf.Program { return p.LsmPathUnlink }},
	{"lsm/path_chmod", func(p *awbpf.LSMPrograms) *ebpf.Program { return p.LsmPathChmod }},
	{"lsm/sb_mount", func(p *awbpf.LSMPrograms) *ebpf.Program { return p.LsmSbMount }},
	{"lsm/move_mount", func(p *awbpf.LSMPrograms) *ebpf.Program { return p.LsmMoveMount }},
}

// lsmFileOpsMissing says why the kernel has not every hook of
// lsmFileOpHooks (nil when it has): the path hooks exist only in kernels
// built with CONFIG_SECURITY_PATH. A variable for the test of a kernel
// without them.
var lsmFileOpsMissing = func() error {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return fmt.Errorf("read kernel BTF: %w", err)
	}
	for _, h := range lsmFileOpHooks {
		var fn *btf.Func
		name := "bpf_lsm_" + strings.TrimPrefix(h.name, "lsm/")
		if err := spec.TypeByName(name, &fn); err != nil {
			return fmt.Errorf("the kernel has no BPF LSM hook %s (built without CONFIG_SECURITY_PATH?): %w", h.name, err)
		}
	}
	return nil
}

// probeLSMFileOps decides, on the LSM backend and before anything is
// attached, whether the changes of files go to the LSM hooks (the file-op
// syscall tracepoints are then left out) or, on a kernel without the path
// hooks, stay on the tracepoints.
func (t *Tracer) probeLSMFileOps() {
	if err := lsmFileOpsMissing(); err != nil {
		t.logger.Warn("changes of files stay on syscall tracepoints on the LSM backend", zap.Error(err))
		return
	}
	t.lsmFileOps = true
}

// LSMFileOps reports whether the LSM backend's path and mount hooks see the
// changes of files (false on the tracepoint backend, and on a kernel
// without the path hooks, where the syscall tracepoints do).
func (t *Tracer) LSMFileOps() bool { return t.lsmFileOps }

// attachLSM loads lsm.bpf.c with the tracepoint object's maps (one tracked
// map, one ring buffer, one set of rules) and attaches its programs: opens,
// connects and (t.lsmFileOps) the changes of files. Only called when the
// LSM backend was chosen: on kernels where BPF LSM is not usable the load
// itself fails (EPERM).
func (t *Tracer) attachLSM(e EnforceOptions) error {
	spec, err := awbpf.LoadLSM()
	if err != nil {
		return fmt.Errorf("parse embedded LSM object: %w", err)
	}
	m := &t.objs.AgentwatchMaps
	main := map[string]*ebpf.Map{
		"events": m.Events, "tracked": m.Tracked, "drops": m.Drops, "stats": m.Stats,
		"inflight": m.Inflight, "path_scratch": m.PathScratch, "ev_scratch": m.EvScratch,
		"noise_names": m.NoiseNames, "noise_prefixes": m.NoisePrefixes, "noise_name_hashes": m.NoiseNameHashes,
		"open_class": m.OpenClass, "sensitive_ids": m.SensitiveIds, "keep_names": m.KeepNames,
		"deny_paths": m.DenyPaths, "deny_scratch": m.DenyScratch, "allow_net": m.AllowNet, "deny_ports": m.DenyPorts,
		"sess_socks": m.SessSocks,
	}
	repl := map[string]*ebpf.Map{}
	for name, mp := range main {
		if ms, ok := spec.Maps[name]; ok {
			ms.MaxEntries = mp.MaxEntries()
			repl[name] = mp
		}
	}
	if err := enforceVars(spec, e); err != nil {
		return err
	}
	if err := setVar(spec, "cfg_identity", boolByte(t.identity)); err != nil {
		return err
	}
	if err := setVar(spec, "cfg_wakeup_bytes", t.wakeupBytes); err != nil {
		return err
	}
	opts := &ebpf.CollectionOptions{MapReplacements: repl}
	if t.lsmFileOps {
		err = spec.LoadAndAssign(&t.lsm, opts)
	} else {
		// without the path hooks their programs cannot load: only the rest
		var base struct {
			awbpf.LSMMaps
			LsmFileOpen      *ebpf.Program `ebpf:"lsm_file_open"`
			LsmSocketConnect *ebpf.Program `ebpf:"lsm_socket_connect"`
		}
		if err = spec.LoadAndAssign(&base, opts); err == nil {
			t.lsm.LSMMaps = base.LSMMaps
			t.lsm.LsmFileOpen, t.lsm.LsmSocketConnect = base.LsmFileOpen, base.LsmSocketConnect
		}
	}
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return fmt.Errorf("BPF verifier rejected an LSM program: %w", err)
		}
		if errors.Is(err, syscall.EPERM) {
			return fmt.Errorf("load LSM programs (EPERM: BPF LSM is not usable here): %w", err)
		}
		return fmt.Errorf("load LSM programs: %w", err)
	}
	t.lsmUp = true
	type hook struct {
		name string
		prog *ebpf.Program
	}
	hooks := []hook{
		{"lsm/file_open", t.lsm.LsmFileOpen},
		{"lsm/socket_connect", t.lsm.LsmSocketConnect},
	}
	if t.lsmFileOps {
		for _, h := range lsmFileOpHooks {
			hooks = append(hooks, hook{h.name, h.prog(&t.lsm.LSMPrograms)})
		}
	}
	for _, h := range hooks {
		l, err := link.AttachLSM(link.LSMOptions{Program: h.prog})
		t.hooks = append(t.hooks, HookStatus{Name: h.name, Attached: err == nil, Required: true, Err: err})
		if err != nil {
			return fmt.Errorf("attach %s: %w", h.name, err)
		}
		t.links = append(t.links, l)
	}
	return nil
}
