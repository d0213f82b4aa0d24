// Package boringssl finds SSL_read and SSL_write in executables that carry
// BoringSSL compiled in without its symbols: Bun, and what Bun compiles
// (recent Claude Code native builds, OpenCode).
//
// Byte patterns of whole functions break with every compiler or register
// allocation change. What does not change is BoringSSL's error reporting:
// every OPENSSL_PUT_ERROR(SSL, reason) becomes a call with the library
// (ERR_LIB_SSL), the reason code, __FILE__ and __LINE__ as constant
// arguments. Reason codes are part of BoringSSL's ABI and are never
// renumbered, and __FILE__ is a string ending in "ssl/ssl_lib.cc". So the
// search is:
//
//  1. find the ssl_lib.cc string in the read-only data;
//  2. find the instructions that load its address (mov r32, imm32 in
//     non-PIE builds, lea r64, [rip+disp32] in PIE ones);
//  3. decode each function around them and collect its error sites as
//     (reason, line) pairs, whatever the argument order of the BoringSSL
//     version at hand (ERR_put_error lost an argument in 2025);
//  4. recognise the two functions by the set of reasons they report:
//     SSL_write reports that it was called on a QUIC connection
//     (ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED), before its handshake
//     (SSL_R_UNINITIALIZED) and with a negative length (SSL_R_BAD_LENGTH);
//     SSL_read reports only the QUIC misuse itself and calls the shared
//     read implementation, which reports SSL_R_UNINITIALIZED and
//     SSL_R_SSL_HANDSHAKE_FAILURE.
//
// Before an answer is given it is checked: every entry is an unwind-table
// entry or an aligned frame-pointer prologue from which decoding reaches the
// error sites on instruction boundaries; each function has exactly one
// candidate; and the two keep ssl_lib.cc's source order (SSL_read is
// defined before SSL_write in every BoringSSL). Anything else is an error
// that says why, so that a wrong address is never probed.
package boringssl

import (
	"cmp"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
)

// ERR_LIB_SSL and the reason codes the fingerprints use (include/openssl/
// err.h and ssl.h of BoringSSL).
const (
	libSSL                        = 16
	reasonShouldNotHaveBeenCalled = 66  // ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED
	reasonBadLength               = 111 // SSL_R_BAD_LENGTH
	reasonHandshakeFailure        = 215 // SSL_R_SSL_HANDSHAKE_FAILURE
	reasonUninitialized           = 226 // SSL_R_UNINITIALIZED
)

// fileSuffix ends the __FILE__ string of ssl_lib.cc in every build layout
// ("../../vendor/boringssl/ssl/ssl_lib.cc", "third_party/boringssl/...").
const fileSuffix = "ssl/ssl_lib.cc\x00"

// ErrNotBoringSSL means the file holds no BoringSSL libssl code.
var ErrNotBoringSSL = errors.New("no BoringSSL ssl_lib.cc in the binary")

// Func is one function found.
type Func struct {
	Name string
	// Addr is the virtual address of its first instruction; Offset is
	// where that instruction is in the file, what a uprobe takes.
	Addr, Offset uint64
	// Sites are its error reports: reason codes with their source lines.
	Sites []Site
}

// Site is one OPENSSL_PUT_ERROR(SSL, Reason) at ssl_lib.cc:Line.
type Site struct{ Reason, Line uint32 }

// Result is what Find returns: both functions, never one.
type Result struct {
	Read, Write Func
	// Source is the __FILE__ string the functions were found by.
	Source string
}

// Find examines the ELF executable at path.
func Find(path string) (Result, error) {
	file, err := os.Open(path)
	if err != nil {
		return Result{}, err
	}
	defer file.Close()
	return FindIn(file)
}

// FindIn examines the ELF executable r holds.
func FindIn(r io.ReaderAt) (Result, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		return Result{}, err
	}
	if f.Machine != elf.EM_X86_64 {
		return Result{}, fmt.Errorf("BoringSSL discovery supports x86-64 only, not %v", f.Machine)
	}
	img, err := newImage(f, r)
	if err != nil {
		return Result{}, err
	}
	strs, err := img.findStrings(fileSuffix)
	if err != nil {
		return Result{}, err
	}
	if len(strs) == 0 {
		return Result{}, ErrNotBoringSSL
	}
	addrs := make([]uint64, 0, len(strs))
	for a := range strs {
		addrs = append(addrs, a)
	}
	refs, err := img.findRefs(addrs)
	if err != nil {
		return Result{}, err
	}
	if len(refs) == 0 {
		return Result{}, fmt.Errorf("%w: the ssl_lib.cc string is never loaded by code", ErrNotBoringSSL)
	}
	fns, err := img.functionsAt(refs, strs)
	if err != nil {
		return Result{}, err
	}
	return classify(img, fns, strs)
}

// classify picks SSL_write and SSL_read among the functions that report
// errors from ssl_lib.cc.
func classify(img *image, fns map[uint64]*function, strs map[uint64]string) (Result, error) {
	var writes, reads []*function
	for _, fn := range sortedFuncs(fns) {
		switch {
		case fn.reports(reasonShouldNotHaveBeenCalled, reasonUninitialized, reasonBadLength) && fn.indirectCall:
			writes = append(writes, fn)
		case fn.reportsOnly(reasonShouldNotHaveBeenCalled):
			// SSL_read (SSL_peek inlined) hands the record layer to the
			// shared read implementation: a direct callee that reports
			// the missing handshake and its failure.
			for _, target := range fn.calls {
				impl, err := img.functionAt(target, strs)
				if err != nil {
					continue
				}
				if impl.reports(reasonUninitialized, reasonHandshakeFailure) {
					reads = append(reads, fn)
					break
				}
			}
		}
	}
	if len(reads) > 1 {
		// SSL_peek has the same shape when it is kept beside SSL_read
		// (older Bun builds): SSL_read is the one that then consumes
		// what it returned, a store into the SSL state; SSL_peek stores
		// nothing.
		consuming := slices.DeleteFunc(slices.Clone(reads), func(fn *function) bool { return fn.stores == 0 })
		if len(consuming) > 0 {
			reads = consuming
		}
	}
	w, errW := only("SSL_write", writes)
	r, errR := only("SSL_read", reads)
	if err := errors.Join(errW, errR); err != nil {
		return Result{}, err
	}
	res := Result{Source: strs[w.source]}
	var err error
	if res.Write, err = img.export(w, "SSL_write"); err != nil {
		return Result{}, err
	}
	if res.Read, err = img.export(r, "SSL_read"); err != nil {
		return Result{}, err
	}
	if line(r, reasonShouldNotHaveBeenCalled) >= line(w, reasonShouldNotHaveBeenCalled) {
		return Result{}, fmt.Errorf("SSL_read candidate at %#x is not before SSL_write at %#x in ssl_lib.cc", r.start, w.start)
	}
	return res, nil
}

// line is where fn reports reason (its first such site).
func line(fn *function, reason uint32) uint32 {
	for _, s := range fn.sites {
		if s.Reason == reason {
			return s.Line
		}
	}
	return 0
}

func only(name string, c []*function) (*function, error) {
	switch len(c) {
	case 1:
		return c[0], nil
	case 0:
		return nil, fmt.Errorf("%s: no function has its error fingerprint", name)
	default:
		addrs := make([]string, len(c))
		for i, fn := range c {
			addrs[i] = fmt.Sprintf("%#x", fn.start)
		}
		return nil, fmt.Errorf("%s: %d functions have its error fingerprint (%v); refusing to guess", name, len(c), addrs)
	}
}

func sortedFuncs(m map[uint64]*function) []*function {
	out := make([]*function, 0, len(m))
	for _, fn := range m {
		out = append(out, fn)
	}
	slices.SortFunc(out, func(a, b *function) int { return cmp.Compare(a.start, b.start) })
	return out
}
