package vmtest

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// ExtractVmlinux returns the uncompressed ELF kernel inside a bzImage.
//
// Why: QEMU loads a bzImage through SeaBIOS and the real-mode setup code,
// then the guest decompresses itself; under TCG (no KVM here) that is all
// emulated. An ELF vmlinux with a PVH note (CONFIG_PVH) is loaded by QEMU
// directly and entered in 32-bit protected mode, which boots faster.
//
// How: the x86 boot protocol (>= 2.08) records where the compressed
// payload sits: setup_sects at 0x1f1 (the protected-mode code starts
// after (setup_sects+1)*512 bytes), payload_offset at 0x248 and
// payload_length at 0x24c, relative to that start. The payload is the
// compressed vmlinux followed by its uncompressed size (4 bytes, little
// endian), which is used to check the result.
func ExtractVmlinux(bz []byte) ([]byte, error) {
	if len(bz) < 0x250 || string(bz[0x202:0x206]) != "HdrS" {
		return nil, errors.New("not a bzImage (no HdrS boot header)")
	}
	if proto := binary.LittleEndian.Uint16(bz[0x206:]); proto < 0x208 {
		return nil, fmt.Errorf("boot protocol %#x predates payload_offset (2.08)", proto)
	}
	setupSects := int(bz[0x1f1])
	if setupSects == 0 {
		setupSects = 4 // the boot protocol's rule for old images
	}
	start := (setupSects + 1) * 512
	off := start + int(binary.LittleEndian.Uint32(bz[0x248:]))
	n := int(binary.LittleEndian.Uint32(bz[0x24c:]))
	if n < 8 || off < 0 || off+n > len(bz) {
		return nil, fmt.Errorf("payload [%d, +%d) outside the %d-byte image", off, n, len(bz))
	}
	payload := bz[off : off+n]
	want := int(binary.LittleEndian.Uint32(payload[n-4:]))

	var out []byte
	var err error
	switch {
	case bytes.HasPrefix(payload, []byte{0x02, 0x21, 0x4c, 0x18}): // LZ4 legacy frame (CONFIG_KERNEL_LZ4)
		out, err = unlz4Legacy(payload[:n-4], want)
	case bytes.HasPrefix(payload, []byte{0x1f, 0x8b}): // gzip (CONFIG_KERNEL_GZIP)
		var zr *gzip.Reader
		if zr, err = gzip.NewReader(bytes.NewReader(payload)); err == nil {
			zr.Multistream(false) // the size trailer follows the gzip stream
			out, err = io.ReadAll(zr)
		}
	default:
		return nil, fmt.Errorf("payload compression with magic % x is not supported (LZ4 and gzip are)", payload[:4])
	}
	if err != nil {
		return nil, fmt.Errorf("decompress kernel payload: %w", err)
	}
	if len(out) != want {
		return nil, fmt.Errorf("decompressed %d bytes, the image says %d", len(out), want)
	}
	if !bytes.HasPrefix(out, []byte(elf.ELFMAG)) {
		return nil, errors.New("decompressed payload is not an ELF file")
	}
	return out, nil
}

// extractVmlinuxFile writes the ELF of a bzImage file, after checking that
// it has the PVH entry note QEMU needs to boot it.
func extractVmlinuxFile(bzPath, out string) error {
	bz, err := os.ReadFile(bzPath)
	if err != nil {
		return err
	}
	vmlinux, err := ExtractVmlinux(bz)
	if err != nil {
		return fmt.Errorf("extract vmlinux from %s: %w", bzPath, err)
	}
	if err := checkPVHNote(vmlinux); err != nil {
		return err
	}
	return os.WriteFile(out, vmlinux, 0o644)
}

// xenElfnotePhys32Entry is XEN_ELFNOTE_PHYS32_ENTRY, the note CONFIG_PVH
// adds and QEMU's ELF loader looks for to boot a kernel image via PVH.
const xenElfnotePhys32Entry = 18

func checkPVHNote(vmlinux []byte) error {
	f, err := elf.NewFile(bytes.NewReader(vmlinux))
	if err != nil {
		return fmt.Errorf("parse vmlinux: %w", err)
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		notes, err := io.ReadAll(p.Open())
		if err != nil {
			return fmt.Errorf("read vmlinux notes: %w", err)
		}
		// Elf64_Nhdr: namesz, descsz, type (4 bytes each); name and
		// descriptor each padded to 4 bytes.
		for len(notes) >= 12 {
			namesz := int(binary.LittleEndian.Uint32(notes[0:]))
			descsz := int(binary.LittleEndian.Uint32(notes[4:]))
			typ := binary.LittleEndian.Uint32(notes[8:])
			nameEnd := 12 + align4(namesz)
			if nameEnd > len(notes) {
				break
			}
			name := string(bytes.TrimRight(notes[12:12+namesz], "\x00"))
			if name == "Xen" && typ == xenElfnotePhys32Entry {
				return nil
			}
			next := nameEnd + align4(descsz)
			if next > len(notes) {
				break
			}
			notes = notes[next:]
		}
	}
	return errors.New("vmlinux has no PVH entry note (kernel built without CONFIG_PVH?)")
}

func align4(n int) int { return (n + 3) &^ 3 }

// lz4LegacyMagic starts each legacy-format LZ4 frame (lz4 -l, which the
// kernel build uses). Blocks follow as <uint32 LE compressed size><data>,
// each decompressing to at most 8 MiB.
const lz4LegacyMagic = 0x184c2102

// unlz4Legacy decompresses concatenated legacy LZ4 frames. sizeHint
// preallocates the output.
func unlz4Legacy(src []byte, sizeHint int) ([]byte, error) {
	out := make([]byte, 0, sizeHint)
	for len(src) > 0 {
		if len(src) < 4 {
			return nil, fmt.Errorf("truncated LZ4 block header (%d bytes left)", len(src))
		}
		n := binary.LittleEndian.Uint32(src)
		src = src[4:]
		if n == lz4LegacyMagic {
			continue // the next frame begins
		}
		if int64(n) > int64(len(src)) {
			return nil, fmt.Errorf("LZ4 block of %d bytes, only %d left", n, len(src))
		}
		var err error
		if out, err = lz4Block(out, src[:n]); err != nil {
			return nil, err
		}
		src = src[n:]
	}
	return out, nil
}

// lz4Block appends the decompression of one LZ4 block to dst. A block is a
// run of sequences: a token (high nibble literal count, low nibble match
// length - 4, 15 meaning "more bytes follow, each adding up to 255"),
// the literals, then a 2-byte little-endian back-reference offset into the
// output. The last sequence has literals only. Back-references may
// overlap the bytes they produce, so they are copied forwards byte-wise.
func lz4Block(dst, src []byte) ([]byte, error) {
	i := 0
	readLen := func(n int) (int, error) {
		if n != 15 {
			return n, nil
		}
		for {
			if i >= len(src) {
				return 0, errors.New("LZ4: truncated length")
			}
			b := src[i]
			i++
			n += int(b)
			if b != 255 {
				return n, nil
			}
		}
	}
	for i < len(src) {
		token := src[i]
		i++
		lit, err := readLen(int(token >> 4))
		if err != nil {
			return nil, err
		}
		if lit > len(src)-i {
			return nil, errors.New("LZ4: literals run past the block")
		}
		dst = append(dst, src[i:i+lit]...)
		i += lit
		if i == len(src) {
			return dst, nil // the last sequence
		}
		if len(src)-i < 2 {
			return nil, errors.New("LZ4: truncated match offset")
		}
		offset := int(src[i]) | int(src[i+1])<<8
		i += 2
		if offset == 0 || offset > len(dst) {
			return nil, fmt.Errorf("LZ4: match offset %d outside the %d bytes of output", offset, len(dst))
		}
		mlen, err := readLen(int(token & 15))
		if err != nil {
			return nil, err
		}
		mlen += 4
		from := len(dst) - offset
		if offset >= mlen {
			dst = append(dst, dst[from:from+mlen]...)
			continue
		}
		for k := 0; k < mlen; k++ {
			dst = append(dst, dst[from+k])
		}
	}
	return dst, nil
}
