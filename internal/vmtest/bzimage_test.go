package vmtest

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// lz4Sequence builds one LZ4 sequence by hand, following the block format:
// token, extended literal length, literals, offset, extended match length.
// matchLen 0 means a last sequence (literals only).
func lz4Sequence(lits string, offset, matchLen int) []byte {
	ext := func(n int) []byte {
		var b []byte
		for n -= 15; n >= 255; n -= 255 {
			b = append(b, 255)
		}
		return append(b, byte(n))
	}
	var tok byte
	var litExt, matchExt []byte
	if len(lits) >= 15 {
		tok, litExt = 15<<4, ext(len(lits))
	} else {
		tok = byte(len(lits)) << 4
	}
	out := []byte{0}
	out = append(out, litExt...)
	out = append(out, lits...)
	if matchLen == 0 {
		out[0] = tok
		return out
	}
	m := matchLen - 4
	if m >= 15 {
		tok |= 15
		matchExt = ext(m)
	} else {
		tok |= byte(m)
	}
	out[0] = tok
	out = append(out, byte(offset), byte(offset>>8))
	return append(out, matchExt...)
}

func legacyFrame(blocks ...[]byte) []byte {
	out := binary.LittleEndian.AppendUint32(nil, lz4LegacyMagic)
	for _, b := range blocks {
		out = binary.LittleEndian.AppendUint32(out, uint32(len(b)))
		out = append(out, b...)
	}
	return out
}

func TestLZ4Block(t *testing.T) {
	block := bytes.Join([][]byte{
		lz4Sequence("\x7fELF", 4, 8),                  // copy of non-overlapping earlier bytes
		lz4Sequence("A", 1, 4+15+255+10),              // overlapping run, two extension bytes
		lz4Sequence(strings.Repeat("x", 15), 0xff, 4), // 15 literals need a 0 extension byte
		lz4Sequence("end", 0, 0),
	}, nil)
	got, err := lz4Block(nil, block)
	require.NoError(t, err)
	want := "\x7fELF\x7fELF\x7fELF" + strings.Repeat("A", 1+284) + strings.Repeat("x", 15)
	want += want[len(want)-0xff:][:4] + "end"
	require.Equal(t, want, string(got))
}

func TestLZ4BlockRejectsCorruptInput(t *testing.T) {
	for name, block := range map[string][]byte{
		"offset beyond output": lz4Sequence("ab", 3, 4),
		"offset zero":          lz4Sequence("ab", 0, 4),
		"literals past end":    {0x50, 'a', 'b'},
		"truncated offset":     {0x10, 'a', 0x01},
		"truncated length":     {0xf0, 255},
	} {
		_, err := lz4Block(nil, block)
		require.Error(t, err, name)
	}
}

// fakeBzImage lays out a boot header the way the x86 boot protocol does,
// with payload as the compressed kernel plus its 4-byte size.
func fakeBzImage(payload []byte, uncompressed int) []byte {
	const setupSects = 1
	const payloadOffset = 16
	start := (setupSects + 1) * 512
	img := make([]byte, start+payloadOffset)
	img[0x1f1] = setupSects
	copy(img[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(img[0x206:], 0x20f)
	payload = binary.LittleEndian.AppendUint32(append([]byte(nil), payload...), uint32(uncompressed))
	binary.LittleEndian.PutUint32(img[0x248:], payloadOffset)
	binary.LittleEndian.PutUint32(img[0x24c:], uint32(len(payload)))
	return append(img, payload...)
}

func TestExtractVmlinuxLZ4(t *testing.T) {
	// Two frames, as concatenated legacy output can have, and two blocks.
	frame1 := legacyFrame(lz4Sequence("\x7fELF", 4, 12), lz4Sequence("tail", 0, 0))
	frame2 := legacyFrame(lz4Sequence("Z", 1, 7))
	want := "\x7fELF\x7fELF\x7fELF\x7fELFtail" + "ZZZZZZZZ"
	got, err := ExtractVmlinux(fakeBzImage(append(frame1, frame2...), len(want)))
	require.NoError(t, err)
	require.Equal(t, want, string(got))

	_, err = ExtractVmlinux(fakeBzImage(frame1, len(want)))
	require.ErrorContains(t, err, "the image says", "a size mismatch must be caught")
}

func TestExtractVmlinuxGzip(t *testing.T) {
	want := append([]byte("\x7fELF"), bytes.Repeat([]byte("kernel"), 1000)...)
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	_, _ = zw.Write(want)
	require.NoError(t, zw.Close())
	got, err := ExtractVmlinux(fakeBzImage(z.Bytes(), len(want)))
	require.NoError(t, err)
	require.Equal(t, want, got)
}

func TestExtractVmlinuxRejects(t *testing.T) {
	_, err := ExtractVmlinux(make([]byte, 4096))
	require.ErrorContains(t, err, "not a bzImage")

	img := fakeBzImage([]byte{0xfd, '7', 'z', 'X', 'Z', 0}, 10) // xz magic
	_, err = ExtractVmlinux(img)
	require.ErrorContains(t, err, "not supported")

	frame := legacyFrame(lz4Sequence("MZ not an ELF", 0, 0))
	_, err = ExtractVmlinux(fakeBzImage(frame, len("MZ not an ELF")))
	require.ErrorContains(t, err, "not an ELF")
}

func TestCheckPVHNote(t *testing.T) {
	// The test binary is an ELF without Xen notes.
	self, err := os.Executable()
	require.NoError(t, err)
	b, err := os.ReadFile(self)
	require.NoError(t, err)
	require.ErrorContains(t, checkPVHNote(b), "no PVH entry note")
}
