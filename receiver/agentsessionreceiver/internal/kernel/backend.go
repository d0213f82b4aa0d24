package kernel

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/cilium/ebpf/link"
	"go.uber.org/zap"

	awbpf "github.com/agentwatch/agentwatch/bpf"
)

// chooseBackend applies `hooks`: auto picks LSM only if BPF LSM is active and
// a probe program really loads, attaches and fires; otherwise tracepoints.
func chooseBackend(opts Options, logger *zap.Logger) (backend, reason string, err error) {
	switch opts.Hooks {
	case BackendTracepoint:
		return BackendTracepoint, "configured", nil
	case BackendLSM:
		if perr := ProbeLSM(opts.SecurityFS); perr != nil {
			return "", "", fmt.Errorf("hooks: lsm requested, but BPF LSM is not usable here: %w", perr)
		}
		return BackendLSM, "configured", nil
	case BackendAuto, "":
		if perr := ProbeLSM(opts.SecurityFS); perr != nil {
			reason = "LSM not usable: " + perr.Error()
			logger.Info("hook backend chosen", zap.String("backend", BackendTracepoint), zap.String("reason", reason))
			return BackendTracepoint, reason, nil
		}
		reason = "BPF LSM is active and a probe program fired"
		logger.Info("hook backend chosen", zap.String("backend", BackendLSM), zap.String("reason", reason))
		return BackendLSM, reason, nil
	}
	return "", "", fmt.Errorf("hooks: unknown backend %q (want auto, lsm or tracepoint)", opts.Hooks)
}

// ProbeLSM returns nil if BPF LSM programs can run here.
func ProbeLSM(securityfs string) error {
	if securityfs == "" {
		securityfs = "/sys/kernel/security"
	}
	lsms, err := os.ReadFile(filepath.Join(securityfs, "lsm"))
	if err != nil {
		return fmt.Errorf("read active LSMs (is securityfs mounted at %s?): %w", securityfs, err)
	}
	if !containsWord(strings.TrimSpace(string(lsms)), "bpf") {
		return fmt.Errorf("bpf is not among the active LSMs (%s); boot with lsm=...,bpf", strings.TrimSpace(string(lsms)))
	}
	spec, err := awbpf.LoadLSMProbe()
	if err != nil {
		return fmt.Errorf("parse LSM probe: %w", err)
	}
	if err := spec.Variables["probe_tgid"].Set(uint32(os.Getpid())); err != nil {
		return err
	}
	var objs awbpf.LSMProbeObjects
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		if errors.Is(err, syscall.EPERM) {
			// cilium/ebpf suggests MEMLOCK here; for LSM programs the usual
			// cause is a kernel that restricts ftrace/BPF trampolines.
			return errors.New("the kernel refused to load a BPF LSM program (EPERM)")
		}
		return fmt.Errorf("load LSM probe program: %w", err)
	}
	defer objs.Close()
	l, err := link.AttachLSM(link.LSMOptions{Program: objs.ProbeFileOpen})
	if err != nil {
		return fmt.Errorf("attach LSM probe program: %w", err)
	}
	defer l.Close()
	f, err := os.Open("/proc/self/stat")
	if err != nil {
		return err
	}
	f.Close()
	var fired uint64
	if err := objs.Fired.Get(&fired); err != nil {
		return fmt.Errorf("read LSM probe counter: %w", err)
	}
	if fired == 0 {
		return errors.New("LSM probe program attached but did not fire on an open")
	}
	return nil
}

func containsWord(list, w string) bool {
	for _, s := range strings.Split(list, ",") {
		if s == w {
			return true
		}
	}
	return false
}
