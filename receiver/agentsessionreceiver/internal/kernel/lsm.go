package kernel

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	awbpf "github.com/agentwatch/agentwatch/bpf"
)

// attachLSM loads lsm.bpf.c with the tracepoint object's maps (one tracked
// map, one ring buffer, one set of rules) and attaches its programs. Only
// called when the LSM backend was chosen: on kernels where BPF LSM is not
// usable the load itself fails (EPERM).
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
		"open_class": m.OpenClass, "sensitive_ids": m.SensitiveIds,
		"deny_paths": m.DenyPaths, "deny_scratch": m.DenyScratch, "allow_net": m.AllowNet, "deny_ports": m.DenyPorts,
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
	if err := spec.LoadAndAssign(&t.lsm, &ebpf.CollectionOptions{MapReplacements: repl}); err != nil {
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
	for _, h := range []struct {
		name string
		prog *ebpf.Program
	}{
		{"lsm/file_open", t.lsm.LsmFileOpen},
		{"lsm/socket_connect", t.lsm.LsmSocketConnect},
	} {
		l, err := link.AttachLSM(link.LSMOptions{Program: h.prog})
		t.hooks = append(t.hooks, HookStatus{Name: h.name, Attached: err == nil, Required: true, Err: err})
		if err != nil {
			return fmt.Errorf("attach %s: %w", h.name, err)
		}
		t.links = append(t.links, l)
	}
	return nil
}
