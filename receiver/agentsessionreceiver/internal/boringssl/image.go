package boringssl

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
)

// The binaries are large (Bun's text is ~80 MiB): they are scanned in
// chunks rather than read whole, so a discovery costs a few MiB of memory.
const (
	chunkSize = 4 << 20
	// maxFunc bounds how far a function may extend; BoringSSL's SSL_*
	// entry points are a few hundred bytes.
	maxFunc = 64 << 10
	// maxString bounds the __FILE__ string searched back from its suffix.
	maxString = 512
	// A BoringSSL build loads the ssl_lib.cc string in a few dozen places
	// and holds it once or twice. Beyond these bounds the file is not one,
	// or is built to make discovery slow: it is refused.
	maxRefs    = 512
	maxStrings = 16
)

// segment is a loaded, file-backed range.
type segment struct {
	vaddr, off, size uint64
	exec             bool
}

type image struct {
	r    io.ReaderAt
	segs []segment
	// starts are function entry addresses from .eh_frame_hdr, sorted;
	// nil when the binary has none (Bun builds without unwind tables).
	starts []uint64
	// seen caches decoded functions by entry address.
	seen map[uint64]*function
}

func newImage(f *elf.File, r io.ReaderAt) (*image, error) {
	img := &image{r: r, seen: map[uint64]*function{}}
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD || p.Filesz == 0 {
			continue
		}
		img.segs = append(img.segs, segment{vaddr: p.Vaddr, off: p.Off, size: p.Filesz, exec: p.Flags&elf.PF_X != 0})
	}
	if len(img.segs) == 0 {
		return nil, errors.New("no loadable segments")
	}
	if s := f.Section(".eh_frame_hdr"); s != nil {
		img.starts = ehFrameStarts(s)
	}
	return img, nil
}

// segment returns the loaded segment holding va.
func (img *image) segment(va uint64) (segment, bool) {
	for _, s := range img.segs {
		if va >= s.vaddr && va < s.vaddr+s.size {
			return s, true
		}
	}
	return segment{}, false
}

// read returns n bytes at virtual address va, fewer at a segment end.
func (img *image) read(va uint64, n int) ([]byte, error) {
	s, ok := img.segment(va)
	if !ok {
		return nil, fmt.Errorf("address %#x is not in a loaded segment", va)
	}
	if rest := s.vaddr + s.size - va; uint64(n) > rest {
		n = int(rest)
	}
	b := make([]byte, n)
	if got, err := img.r.ReadAt(b, int64(s.off+va-s.vaddr)); got != n {
		return nil, fmt.Errorf("read %#x: %w", va, err)
	}
	return b, nil
}

// back returns the address up to n bytes before va in va's segment.
func (img *image) back(va, n uint64) uint64 {
	s, _ := img.segment(va)
	return max(va-min(va, n), s.vaddr)
}

// fileOffset converts an address in an executable segment.
func (img *image) fileOffset(va uint64) (uint64, bool) {
	s, ok := img.segment(va)
	if !ok || !s.exec {
		return 0, false
	}
	return s.off + va - s.vaddr, true
}

// scan calls fn over each segment of the wanted kind in overlapping chunks:
// buf[i] is at virtual address base+i, and a pattern of up to overlap
// bytes is never split between chunks.
func (img *image) scan(exec bool, overlap int, fn func(base uint64, buf []byte) error) error {
	var largest uint64
	for _, s := range img.segs {
		if s.exec == exec {
			largest = max(largest, s.size)
		}
	}
	buf := make([]byte, min(chunkSize+uint64(overlap), largest))
	for _, s := range img.segs {
		if s.exec != exec {
			continue
		}
		for pos := uint64(0); pos < s.size; pos += chunkSize {
			n := uint64(len(buf))
			if pos+n > s.size {
				n = s.size - pos
			}
			got, err := img.r.ReadAt(buf[:n], int64(s.off+pos))
			if uint64(got) != n {
				return fmt.Errorf("read segment at %#x: %w", s.vaddr+pos, err)
			}
			if err := fn(s.vaddr+pos, buf[:n]); err != nil {
				return err
			}
		}
	}
	return nil
}

// findStrings returns the addresses of the NUL-terminated strings in the
// data segments that end with suffix (which includes the NUL), and their
// text.
func (img *image) findStrings(suffix string) (map[uint64]string, error) {
	out := map[uint64]string{}
	var ends []uint64
	err := img.scan(false, len(suffix), func(base uint64, buf []byte) error {
		for i := 0; ; {
			j := bytes.Index(buf[i:], []byte(suffix))
			if j < 0 {
				return nil
			}
			if ends = append(ends, base+uint64(i+j)); len(ends) > maxStrings {
				return fmt.Errorf("more than %d copies of %q", maxStrings, suffix[:len(suffix)-1])
			}
			i += j + 1
		}
	})
	if err != nil {
		return nil, err
	}
	for _, end := range ends {
		from := img.back(end, maxString)
		b, err := img.read(from, int(end-from))
		if err != nil {
			continue
		}
		start := bytes.LastIndexByte(b, 0) + 1
		s := string(b[start:]) + suffix[:len(suffix)-1]
		out[from+uint64(start)] = s
	}
	return out, nil
}

// findRefs returns the addresses in executable code where an instruction
// may load one of addrs: an imm32 equal to it (mov r32, imm32 in non-PIE
// code) or a rip-relative lea reaching it. They are candidates only: the
// decoder confirms them.
func (img *image) findRefs(addrs []uint64) ([]uint64, error) {
	var imm [][]byte
	want := map[uint64]bool{}
	for _, a := range addrs {
		want[a] = true
		if a < 1<<32 {
			imm = append(imm, binary.LittleEndian.AppendUint32(nil, uint32(a)))
		}
	}
	var refs []uint64
	tooMany := fmt.Errorf("more than %d loads of the ssl_lib.cc string", maxRefs)
	err := img.scan(true, 7, func(base uint64, buf []byte) error {
		for _, pat := range imm {
			for i := 0; ; {
				j := bytes.Index(buf[i:], pat)
				if j < 0 {
					break
				}
				if refs = append(refs, base+uint64(i+j)); len(refs) > maxRefs {
					return tooMany
				}
				i += j + 1
			}
		}
		// lea r64, [rip+disp32]: REX.W (48 or 4c), 8d, modrm mod=00 rm=101.
		for i := 0; i+7 <= len(buf); {
			j := bytes.IndexByte(buf[i:len(buf)-6], 0x8d)
			if j < 0 {
				break
			}
			k := i + j
			i = k + 1
			if k == 0 || (buf[k-1] != 0x48 && buf[k-1] != 0x4c) || buf[k+1]&0xc7 != 0x05 {
				continue
			}
			disp := int64(int32(binary.LittleEndian.Uint32(buf[k+2:])))
			if want[uint64(int64(base+uint64(k)+6)+disp)] {
				if refs = append(refs, base+uint64(k-1)); len(refs) > maxRefs {
					return tooMany
				}
			}
		}
		return nil
	})
	// Chunks overlap, so a reference near a chunk end is seen twice.
	slices.Sort(refs)
	return slices.Compact(refs), err
}

// ehFrameStarts reads the binary search table of .eh_frame_hdr: the entry
// address of every function with unwind information, sorted. It returns
// nil for encodings other than the usual udata4/sdata4 count and datarel
// sdata4 table, and for a malformed header.
func ehFrameStarts(s *elf.Section) []uint64 {
	const (
		enc4Unsigned   = 0x03
		enc4Signed     = 0x0b
		encPCRel4      = 0x1b
		encDataRel4    = 0x3b
		headerFixedLen = 4
	)
	b, err := s.Data()
	if err != nil || len(b) < headerFixedLen+8 || b[0] != 1 {
		return nil
	}
	ptrEnc, countEnc, tableEnc := b[1], b[2], b[3]
	if (ptrEnc != encPCRel4 && ptrEnc != enc4Signed && ptrEnc != enc4Unsigned) ||
		(countEnc != enc4Unsigned && countEnc != enc4Signed) || tableEnc != encDataRel4 {
		return nil
	}
	count := uint64(binary.LittleEndian.Uint32(b[8:]))
	table := b[12:]
	if count == 0 || count > uint64(len(table))/8 {
		return nil
	}
	out := make([]uint64, count)
	for i := range out {
		rel := int64(int32(binary.LittleEndian.Uint32(table[8*i:])))
		out[i] = uint64(int64(s.Addr) + rel)
	}
	if !sort.SliceIsSorted(out, func(i, j int) bool { return out[i] < out[j] }) {
		return nil
	}
	return out
}

// bounds returns where the function containing va may start and the
// address it cannot extend past, from the unwind table; ok is false when
// the binary has none or va is outside it.
func (img *image) bounds(va uint64) (start, limit uint64, ok bool) {
	i := sort.Search(len(img.starts), func(i int) bool { return img.starts[i] > va })
	if i == 0 {
		return 0, 0, false
	}
	start, limit = img.starts[i-1], va+maxFunc
	if i < len(img.starts) && img.starts[i] < limit {
		limit = img.starts[i]
	}
	return start, limit, true
}
