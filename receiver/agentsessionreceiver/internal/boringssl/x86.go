package boringssl

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"golang.org/x/arch/x86/x86asm"
)

// function is one decoded function of the binary.
type function struct {
	start, end uint64
	sites      []Site
	// source is the address of the __FILE__ string its sites pass.
	source uint64
	// calls are its direct call targets.
	calls []uint64
	// indirectCall: it calls through memory (SSL_write calls
	// ssl->method->write_app_data).
	indirectCall bool
	// stores counts writes to memory other than the stack.
	stores int
}

func (fn *function) reports(reasons ...uint32) bool {
	for _, r := range reasons {
		if !slices.ContainsFunc(fn.sites, func(s Site) bool { return s.Reason == r }) {
			return false
		}
	}
	return true
}

func (fn *function) reportsOnly(reason uint32) bool {
	return len(fn.sites) > 0 && !slices.ContainsFunc(fn.sites, func(s Site) bool { return s.Reason != reason })
}

// The prologue of a frame-pointer function, and the CET landing pad that
// may precede it. Bun keeps frame pointers; without unwind tables they are
// how function entries are told apart.
var (
	prologue    = []byte{0x55, 0x48, 0x89, 0xe5} // push rbp; mov rbp, rsp
	cetPrologue = []byte{0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x48, 0x89, 0xe5}
)

const funcAlign = 16

func hasPrologue(b []byte) bool {
	return bytes.HasPrefix(b, prologue) || bytes.HasPrefix(b, cetPrologue)
}

// functionsAt decodes the functions holding the candidate references and
// keeps those that pass an ssl_lib.cc string to an error report.
func (img *image) functionsAt(refs []uint64, strs map[uint64]string) (map[uint64]*function, error) {
	out := map[uint64]*function{}
	var errs []error
	for _, ref := range refs {
		fn, err := img.functionContaining(ref, strs)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if len(fn.sites) > 0 {
			out[fn.start] = fn
		}
	}
	if len(out) == 0 {
		err := errors.New("no function reports errors from ssl_lib.cc")
		if len(errs) > 0 {
			err = fmt.Errorf("%w (first failure: %v)", err, errs[0])
		}
		return nil, err
	}
	return out, nil
}

// functionContaining finds the entry of the function that holds va and
// decodes it: from the unwind table when it covers va, else from the
// nearest aligned frame-pointer prologue at or before va. Unwind tables
// may be partial (Bun's musl build keeps them for a few assembly routines
// only), so a table entry that does not reach va is not trusted.
func (img *image) functionContaining(va uint64, strs map[uint64]string) (*function, error) {
	if start, limit, ok := img.bounds(va); ok {
		if fn, err := img.decode(start, limit, strs); err == nil && va >= fn.start && va < fn.end {
			return fn, nil
		}
	}
	from := img.back(va, maxFunc)
	b, err := img.read(from, int(va-from)+len(cetPrologue))
	if err != nil {
		return nil, err
	}
	for off := int(va - from); off >= 0; off-- {
		if (from+uint64(off))%funcAlign != 0 || !hasPrologue(b[off:]) {
			continue
		}
		start := from + uint64(off)
		fn, err := img.decode(start, start+maxFunc, strs)
		if err != nil {
			return nil, err
		}
		if va >= fn.end {
			return nil, fmt.Errorf("%#x is past the end of the function at %#x", va, start)
		}
		return fn, nil
	}
	return nil, fmt.Errorf("no function entry within %d bytes before %#x", maxFunc, va)
}

// functionAt decodes the function entered at start: an unwind-table entry
// or an aligned frame-pointer prologue.
func (img *image) functionAt(start uint64, strs map[uint64]string) (*function, error) {
	if s, limit, ok := img.bounds(start); ok && s == start {
		return img.decode(start, limit, strs)
	}
	b, err := img.read(start, len(cetPrologue))
	if err != nil {
		return nil, err
	}
	if start%funcAlign != 0 || !hasPrologue(b) {
		return nil, fmt.Errorf("no function entry at %#x", start)
	}
	return img.decode(start, start+maxFunc, strs)
}

// regs are the argument registers an error report is built in.
type regs struct {
	val   [5]uint64 // rdi, rsi, rdx, rcx, r8
	known uint8     // bit i: val[i] holds a constant
}

const (
	rDI = iota
	rSI
	rDX
	rCX
	r8
)

func argReg(r x86asm.Reg) int {
	switch r {
	case x86asm.EDI, x86asm.RDI:
		return rDI
	case x86asm.ESI, x86asm.RSI:
		return rSI
	case x86asm.EDX, x86asm.RDX:
		return rDX
	case x86asm.ECX, x86asm.RCX:
		return rCX
	case x86asm.R8L, x86asm.R8:
		return r8
	}
	return -1
}

func (r *regs) set(i int, v uint64) { r.val[i], r.known = v, r.known|1<<i }
func (r *regs) forget(i int)        { r.known &^= 1 << i }
func (r *regs) get(i int) (uint64, bool) {
	return r.val[i], r.known&(1<<i) != 0
}

// site recognises ERR_put_error(ERR_LIB_SSL, ...) at a call or jump to
// the shared call: the file string in rcx with the reason in rdx and the
// line in r8 (lib, unused, reason, file, line), or, since 2025, the file
// in rdx with the reason in rsi and the line in rcx (lib, reason, file,
// line).
func (r *regs) site(strs map[uint64]string) (Site, uint64, bool) {
	if lib, ok := r.get(rDI); !ok || lib != libSSL {
		return Site{}, 0, false
	}
	for _, layout := range [...]struct{ file, reason, line int }{{rCX, rDX, r8}, {rDX, rSI, rCX}} {
		file, ok1 := r.get(layout.file)
		reason, ok2 := r.get(layout.reason)
		line, ok3 := r.get(layout.line)
		if _, isFile := strs[file]; ok1 && ok2 && ok3 && isFile && reason < 1<<12 && line < 1<<20 {
			return Site{Reason: uint32(reason), Line: uint32(line)}, file, true
		}
	}
	return Site{}, 0, false
}

// decode disassembles the function entered at start, up to limit, int3
// padding, or the next aligned prologue after an unconditional transfer.
func (img *image) decode(start, limit uint64, strs map[uint64]string) (*function, error) {
	if fn, ok := img.seen[start]; ok {
		return fn, nil
	}
	b, err := img.read(start, int(min(limit-start, maxFunc)))
	if err != nil {
		return nil, err
	}
	fn := &function{start: start}
	var st regs
	pc := 0
	// ended: pc follows a ret, a jmp or a call (which may not return:
	// abort) and the nops that pad up to an alignment; a frame-pointer
	// prologue there starts the next function, never this one's body.
	ended := false
	for pc < len(b) {
		if b[pc] == 0xcc {
			break // int3: lld's padding between functions
		}
		if ended && (start+uint64(pc))%funcAlign == 0 && hasPrologue(b[pc:]) {
			break
		}
		inst, err := x86asm.Decode(b[pc:], 64)
		if errors.Is(err, x86asm.ErrTruncated) {
			break // the window ends inside an instruction: the limit
		}
		if err != nil {
			return nil, fmt.Errorf("undecodable instruction at %#x in the function at %#x", start+uint64(pc), start)
		}
		next := start + uint64(pc+inst.Len)
		terminal := false
		switch inst.Op {
		case x86asm.CALL, x86asm.JMP:
			if s, file, ok := st.site(strs); ok {
				fn.sites = append(fn.sites, s)
				fn.source = file
			}
			switch a := inst.Args[0].(type) {
			case x86asm.Rel:
				if inst.Op == x86asm.CALL {
					fn.calls = append(fn.calls, uint64(int64(next)+int64(a)))
				}
			case x86asm.Mem:
				if inst.Op == x86asm.CALL && a.Base != x86asm.RIP {
					fn.indirectCall = true
				}
			}
			st = regs{}
			terminal = true
		case x86asm.RET, x86asm.UD2:
			st = regs{}
			terminal = true
		case x86asm.NOP:
		default:
			track(&st, inst, next)
			if storesToHeap(inst) {
				fn.stores++
			}
		}
		pc += inst.Len
		ended = terminal || (ended && inst.Op == x86asm.NOP)
	}
	fn.end = start + uint64(pc)
	img.seen[start] = fn
	return fn, nil
}

// track follows constants into the argument registers: mov r32, imm32;
// lea r64, [rip+disp32]; xor r, r. Any other write to one forgets it.
func track(st *regs, inst x86asm.Inst, next uint64) {
	if len(inst.Args) == 0 || inst.Args[0] == nil {
		return
	}
	dst, ok := inst.Args[0].(x86asm.Reg)
	if !ok {
		return
	}
	i := argReg(dst)
	if i < 0 {
		return
	}
	switch inst.Op {
	case x86asm.MOV:
		if imm, ok := inst.Args[1].(x86asm.Imm); ok && imm >= 0 {
			st.set(i, uint64(imm))
			return
		}
	case x86asm.LEA:
		if m, ok := inst.Args[1].(x86asm.Mem); ok && m.Base == x86asm.RIP && m.Index == 0 {
			st.set(i, uint64(int64(next)+m.Disp))
			return
		}
	case x86asm.XOR:
		if src, ok := inst.Args[1].(x86asm.Reg); ok && argReg(src) == i {
			st.set(i, 0)
			return
		}
	case x86asm.CMP, x86asm.TEST:
		return // read only
	}
	st.forget(i)
}

// storesToHeap: the instruction writes memory that is not the stack frame.
func storesToHeap(inst x86asm.Inst) bool {
	m, ok := inst.Args[0].(x86asm.Mem)
	if !ok || m.Base == x86asm.RSP || m.Base == x86asm.RBP || m.Base == x86asm.RIP {
		return false
	}
	switch inst.Op {
	case x86asm.CMP, x86asm.TEST, x86asm.PUSH, x86asm.PREFETCHT0, x86asm.PREFETCHT1,
		x86asm.PREFETCHT2, x86asm.PREFETCHNTA, x86asm.NOP:
		return false
	}
	return true
}

func (img *image) export(fn *function, name string) (Func, error) {
	off, ok := img.fileOffset(fn.start)
	if !ok {
		return Func{}, fmt.Errorf("%s at %#x is not in an executable segment", name, fn.start)
	}
	return Func{Name: name, Addr: fn.start, Offset: off, Sites: slices.Clone(fn.sites)}, nil
}
