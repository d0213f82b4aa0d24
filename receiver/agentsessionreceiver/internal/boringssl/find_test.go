package boringssl

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/internal/testenv"
)

// layout is one way BoringSSL may be built and linked.
type layout struct {
	name  string
	flags []string
	// partialUnwind links testdata/unwound.c, with unwind tables, first.
	partialUnwind bool
}

var layouts = []layout{
	// Bun: non-PIE, frame pointers, no unwind tables, the 2025 ERR_put_error.
	{"nopie-nounwind-newerr", []string{"-no-pie", "-fno-asynchronous-unwind-tables", "-fno-unwind-tables", "-Wl,--no-eh-frame-hdr", "-DNEW_ERR"}, false},
	// Older Bun: unwind tables, the five-argument ERR_put_error.
	{"nopie-unwind-olderr", []string{"-no-pie"}, false},
	// PIE: the file string comes through lea rip-relative.
	{"pie-unwind-newerr", []string{"-fpie", "-pie", "-DNEW_ERR"}, false},
	{"pie-nounwind-olderr", []string{"-fpie", "-pie", "-fno-asynchronous-unwind-tables", "-fno-unwind-tables", "-Wl,--no-eh-frame-hdr"}, false},
	// Bun's musl build: an unwind table for a few routines only.
	{"nopie-partialunwind-newerr", []string{"-no-pie", "-fno-asynchronous-unwind-tables", "-fno-unwind-tables", "-DNEW_ERR"}, true},
}

// clang builds the fixtures, as it builds Bun's BoringSSL; .ci/run installs
// it (make generate needs it too).
func clang(t testing.TB) string {
	t.Helper()
	cc, err := exec.LookPath("clang")
	if err != nil {
		if testenv.InCI() {
			t.Fatal("CI=true: clang is missing; .ci/run installs it")
		}
		t.Skip("clang is needed to build the BoringSSL-shaped fixtures (apt install clang)")
	}
	return cc
}

var compileFlags = []string{"-O2", "-fno-omit-frame-pointer", "-fcf-protection=none"}

// fixture builds testdata/ssl_lib.c in layout l and returns the stripped
// executable and the unstripped one's symbols.
func fixture(t testing.TB, l layout) (string, map[string]uint64) {
	t.Helper()
	cc := clang(t)
	dir := t.TempDir()
	obj := filepath.Join(dir, "ssl_lib.o")
	compile := append(append(slices.Clone(compileFlags), "-c", "-o", obj, "testdata/ssl_lib.c"), l.flags...)
	out, err := exec.Command(cc, compile...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	var link []string
	if l.partialUnwind {
		uw := filepath.Join(dir, "unwound.o")
		out, err := exec.Command(cc, "-O2", "-fasynchronous-unwind-tables", "-c", "-o", uw, "testdata/unwound.c").CombinedOutput()
		require.NoError(t, err, "%s", out)
		link = append(link, uw)
	}
	for _, f := range l.flags {
		if !strings.HasPrefix(f, "-D") {
			link = append(link, f)
		}
	}
	full, stripped := filepath.Join(dir, "full"), filepath.Join(dir, "stripped")
	for _, b := range []struct {
		out   string
		extra []string
	}{{full, nil}, {stripped, []string{"-s"}}} {
		args := append(append([]string{"-o", b.out}, link...), obj)
		args = append(args, b.extra...)
		out, err := exec.Command(cc, args...).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	f, err := elf.Open(full)
	require.NoError(t, err)
	defer f.Close()
	syms, err := f.Symbols()
	require.NoError(t, err)
	addrs := map[string]uint64{}
	for _, s := range syms {
		if elf.ST_TYPE(s.Info) == elf.STT_FUNC {
			addrs[s.Name] = s.Value
		}
	}
	sf, err := elf.Open(stripped)
	require.NoError(t, err)
	defer sf.Close()
	st, _ := sf.Symbols()
	require.Empty(t, st, "the fixture must be stripped")
	return stripped, addrs
}

func reasons(sites []Site) []uint32 {
	var out []uint32
	for _, s := range sites {
		out = append(out, s.Reason)
	}
	return out
}

// In every layout the stripped build yields exactly the addresses the
// symbols of the unstripped build give, and file offsets that map back to
// them; SSL_peek, the read implementation, SSL_do_handshake and
// SSL_shutdown report some of the same reasons and are not taken.
func TestFindFixtures(t *testing.T) {
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			bin, syms := fixture(t, l)
			res, err := Find(bin)
			require.NoError(t, err)
			require.Equal(t, syms["SSL_write"], res.Write.Addr, "SSL_write")
			require.Equal(t, syms["SSL_read"], res.Read.Addr, "SSL_read (not SSL_peek at %#x)", syms["SSL_peek"])
			require.Equal(t, "../../vendor/boringssl/ssl/ssl_lib.cc", res.Source)
			require.ElementsMatch(t, []uint32{66, 226, 215, 111}, reasons(res.Write.Sites))
			require.Equal(t, []uint32{66}, reasons(res.Read.Sites))

			f, err := elf.Open(bin)
			require.NoError(t, err)
			defer f.Close()
			if l.partialUnwind {
				file, err := os.Open(bin)
				require.NoError(t, err)
				defer file.Close()
				img, err := newImage(f, file)
				require.NoError(t, err)
				start, _, ok := img.bounds(res.Write.Addr)
				require.True(t, ok, "the unwind table has an entry before SSL_write")
				require.NotEqual(t, res.Write.Addr, start, "and it is another function's")
			}
			for _, fn := range []Func{res.Write, res.Read} {
				var found bool
				for _, p := range f.Progs {
					if p.Type == elf.PT_LOAD && fn.Addr >= p.Vaddr && fn.Addr < p.Vaddr+p.Filesz {
						require.Equal(t, p.Off+fn.Addr-p.Vaddr, fn.Offset, fn.Name)
						found = true
					}
				}
				require.True(t, found, fn.Name)
			}
		})
	}
}

// Discovery verifies before it answers: a binary where SSL_write no longer
// reports a negative length (its 111 patched to 112) has no SSL_write, and
// no address is returned for either function.
func TestFindRefusesWithoutFingerprint(t *testing.T) {
	bin, _ := fixture(t, layouts[0])
	data, err := os.ReadFile(bin)
	require.NoError(t, err)
	// mov esi, 111 (the reason argument of the 2025 ERR_put_error).
	pat := []byte{0xbe, 111, 0, 0, 0}
	require.Equal(t, 1, bytes.Count(data, pat), "one SSL_R_BAD_LENGTH report")
	patched := filepath.Join(t.TempDir(), "patched")
	require.NoError(t, os.WriteFile(patched, bytes.Replace(data, pat, []byte{0xbe, 112, 0, 0, 0}, 1), 0o755))
	res, err := Find(patched)
	require.ErrorContains(t, err, "SSL_write: no function has its error fingerprint")
	require.Zero(t, res)
}

// Without SSL_read's consuming store, SSL_read and SSL_peek are the same
// shape: two candidates, and discovery refuses to guess.
func TestFindRefusesAmbiguity(t *testing.T) {
	src, err := os.ReadFile("testdata/ssl_lib.c")
	require.NoError(t, err)
	consume := "\tssl->s3->pending += todo; /* SSL_read consumes; SSL_peek does not */\n\tssl->s3->pending_len -= todo;\n"
	require.Contains(t, string(src), consume)
	dir := t.TempDir()
	c := filepath.Join(dir, "ssl_lib.c")
	require.NoError(t, os.WriteFile(c, []byte(strings.Replace(string(src), consume, "", 1)), 0o644))
	bin := filepath.Join(dir, "bin")
	out, err := exec.Command(clang(t), append(slices.Clone(compileFlags), "-no-pie", "-s", "-o", bin, c)...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	_, err = Find(bin)
	require.ErrorContains(t, err, "SSL_read: 2 functions have its error fingerprint")
}

// A binary built to make discovery slow (the ssl_lib.cc string loaded in
// more places than any BoringSSL does) is refused, not ground through.
func TestFindRefusesFlood(t *testing.T) {
	var src strings.Builder
	src.WriteString("#line 1 \"x/ssl/ssl_lib.cc\"\n__attribute__((noinline)) void put(int l, const char *f, int line) { __asm__ volatile(\"\" ::\"r\"(l), \"r\"(f), \"r\"(line)); }\n")
	for i := 0; i <= maxRefs; i++ {
		fmt.Fprintf(&src, "void f%d(void) { put(16, __FILE__, __LINE__); }\n", i)
	}
	src.WriteString("int main(void) { return 0; }\n")
	dir := t.TempDir()
	c := filepath.Join(dir, "flood.c")
	require.NoError(t, os.WriteFile(c, []byte(src.String()), 0o644))
	bin := filepath.Join(dir, "flood")
	out, err := exec.Command(clang(t), append(slices.Clone(compileFlags), "-no-pie", "-s", "-o", bin, c)...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	_, err = Find(bin)
	require.ErrorContains(t, err, fmt.Sprintf("more than %d loads of the ssl_lib.cc string", maxRefs))
}

func TestFindNotBoringSSL(t *testing.T) {
	_, err := Find("/bin/bash")
	require.ErrorIs(t, err, ErrNotBoringSSL)
	txt := filepath.Join(t.TempDir(), "x")
	require.NoError(t, os.WriteFile(txt, []byte("#!/bin/sh\n"), 0o755))
	_, err = Find(txt)
	require.Error(t, err)
}

// The real thing: the Bun executable from npm (`make clients`). Where the
// probes then land is checked by the kernel test that captures Bun's TLS.
func TestFindBun(t *testing.T) {
	res, err := Find(testenv.Bun(t))
	require.NoError(t, err)
	require.NotEqual(t, res.Read.Addr, res.Write.Addr)
	require.ElementsMatch(t, []uint32{66, 226, 215, 111}, reasons(res.Write.Sites))
	require.Equal(t, []uint32{66}, reasons(res.Read.Sites))
	require.True(t, strings.HasSuffix(res.Source, "boringssl/ssl/ssl_lib.cc"), res.Source)
}

// Malformed executables never panic discovery.
func FuzzFindIn(f *testing.F) {
	bin, _ := fixture(f, layouts[0])
	data, err := os.ReadFile(bin)
	require.NoError(f, err)
	f.Add(data)
	f.Add(data[:len(data)/2])
	f.Add([]byte("\x7fELF"))
	f.Fuzz(func(t *testing.T, b []byte) {
		FindIn(bytes.NewReader(b)) //nolint:errcheck // only panics matter
	})
}

// BenchmarkFindBun measures one discovery on the real Bun executable
// (~100 MiB), against reading the file once as the baseline.
func BenchmarkFindBun(b *testing.B) {
	bun := testenv.Bun(b)
	b.Run("baseline-read-file", func(b *testing.B) {
		for b.Loop() {
			if _, err := os.ReadFile(bun); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("find", func(b *testing.B) {
		for b.Loop() {
			if _, err := Find(bun); err != nil {
				b.Fatal(err)
			}
		}
	})
}
