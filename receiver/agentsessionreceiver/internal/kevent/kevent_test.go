package kevent_test

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent/keventtest"
)

// Offsets in the wire format (bpf/events.h) that the corruption cases patch.
const (
	hdrSize      = 32
	versionAt    = 1
	execArgsLen  = hdrSize + 44
	openFixedLen = hdrSize + 32
)

func hdr(kind kevent.Kind, flags uint16, pid uint32) kevent.Header {
	return kevent.Header{Kind: kind, Version: kevent.Version, Flags: flags, PID: pid, TID: pid + 1, Time: 1000, Start: 500}
}

func execRecord(exe, filename string, args []string, cwd string) []byte {
	return keventtest.Encode(&kevent.Exec{Header: hdr(kevent.KindExec, kevent.FlagExecMatched, 42),
		PPID: 1, UID: 1000, PStart: 7, Exe: exe, Filename: filename, Args: args, Cwd: cwd})
}

func openRecord(path string, ret int32) []byte {
	return keventtest.Encode(&kevent.Open{Header: hdr(kevent.KindOpen, kevent.FlagPathRaw, 42),
		Ret: ret, OpenFlags: 0o101, Syscall: kevent.SyscallOpenat, Path: path})
}

func connectRecord(family uint16, addr netip.Addr, port uint16) []byte {
	return keventtest.Encode(&kevent.Connect{Header: hdr(kevent.KindConnect, 0, 42),
		Ret: -115, Family: family, Port: port, Addr: addr, SockType: 1})
}

func exitRecord(status uint32) []byte {
	return keventtest.Encode(&kevent.Exit{Header: hdr(kevent.KindExit, 0, 9), Status: status})
}

func forkRecord() []byte {
	return keventtest.Encode(&kevent.Fork{Header: hdr(kevent.KindFork, 0, 10), PPID: 9})
}

func TestDecodeExec(t *testing.T) {
	ev, err := kevent.Decode(execRecord("/usr/bin/curl", "curl", []string{"curl", "-d", "@x"}, "/home/u/proj"))
	require.NoError(t, err)
	e := ev.(*kevent.Exec)
	require.Equal(t, uint32(42), e.PID)
	require.Equal(t, uint16(kevent.FlagExecMatched), e.Flags)
	require.Equal(t, uint32(1), e.PPID)
	require.Equal(t, uint32(1000), e.UID)
	require.Equal(t, uint64(7), e.PStart)
	require.Equal(t, "/usr/bin/curl", e.Exe)
	require.Equal(t, "curl", e.Filename)
	require.Equal(t, []string{"curl", "-d", "@x"}, e.Args)
	require.Equal(t, "/home/u/proj", e.Cwd)
}

func TestDecodeOpenConnectExitFork(t *testing.T) {
	ev, err := kevent.Decode(openRecord("/home/u/.aws/credentials", 3))
	require.NoError(t, err)
	o := ev.(*kevent.Open)
	require.Equal(t, "/home/u/.aws/credentials", o.Path)
	require.Equal(t, int32(3), o.Ret)
	require.Equal(t, uint32(0o101), o.OpenFlags)
	require.Equal(t, uint16(kevent.FlagPathRaw), o.Flags)

	for _, tc := range []struct {
		family uint16
		addr   netip.Addr
		want   string
	}{
		{2, netip.MustParseAddr("127.0.0.1"), "127.0.0.1"},
		{10, netip.MustParseAddr("::ffff:10.1.2.3"), "10.1.2.3"},
		{10, netip.MustParseAddr("2001:db8::1"), "2001:db8::1"},
	} {
		ev, err := kevent.Decode(connectRecord(tc.family, tc.addr, 8443))
		require.NoError(t, err)
		c := ev.(*kevent.Connect)
		require.Equal(t, tc.want, c.Addr.String())
		require.Equal(t, uint16(8443), c.Port)
		require.Equal(t, int32(-115), c.Ret)
	}

	ev, err = kevent.Decode(exitRecord(7 << 8))
	require.NoError(t, err)
	code, sig := ev.(*kevent.Exit).Code()
	require.Equal(t, 7, code)
	require.Zero(t, sig)
	ev, err = kevent.Decode(exitRecord(9)) // SIGKILL
	require.NoError(t, err)
	code, sig = ev.(*kevent.Exit).Code()
	require.Equal(t, 137, code)
	require.Equal(t, 9, sig)

	ev, err = kevent.Decode(forkRecord())
	require.NoError(t, err)
	require.Equal(t, uint32(9), ev.(*kevent.Fork).PPID)
}

func TestDecodeRejectsBadRecords(t *testing.T) {
	good := execRecord("/bin/sh", "sh", []string{"sh"}, "/")
	badLen := patch(patch(good, execArgsLen, 0x60), execArgsLen+1, 0xea) // 60000 bytes of argv
	header := exitRecord(0)[:hdrSize:hdrSize]                            // a bare header; patch copies it
	for name, tc := range map[string]struct {
		rec  []byte
		want error
	}{
		"empty":            {nil, kevent.ErrShort},
		"header only exec": {patch(header, 0, byte(kevent.KindExec)), kevent.ErrShort},
		"exec lengths lie": {badLen, kevent.ErrCorrupt},
		"version":          {patch(good, versionAt, 99), kevent.ErrCorrupt},
		"unknown kind":     {patch(header, 0, 77), kevent.ErrCorrupt},
		"short connect":    {connectRecord(2, netip.MustParseAddr("1.2.3.4"), 1)[:40], kevent.ErrShort},
		"connect family":   {connectRecord(1, netip.MustParseAddr("1.2.3.4"), 1), kevent.ErrCorrupt},
		"open path lies":   {openRecord("/x", 0)[:openFixedLen+1], kevent.ErrCorrupt},
		"short exit":       {header, kevent.ErrShort},
		"short fork":       {patch(header, 0, byte(kevent.KindFork)), kevent.ErrShort},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := kevent.Decode(tc.rec)
			require.Error(t, err)
			require.True(t, errors.Is(err, tc.want), "got %v, want %v", err, tc.want)
		})
	}
}

func TestSplitArgs(t *testing.T) {
	require.Nil(t, kevent.SplitArgs(nil))
	require.Nil(t, kevent.SplitArgs([]byte{0}))
	require.Equal(t, []string{"a", "", "b"}, kevent.SplitArgs([]byte("a\x00\x00b\x00")))
	require.Equal(t, []string{"a", "b"}, kevent.SplitArgs([]byte("a\x00b"))) // truncated: no final NUL
	require.Equal(t, []string{"\xff\xfe"}, kevent.SplitArgs([]byte("\xff\xfe\x00")))
}

// FuzzDecode: no record panics the decoder, and what decodes keeps its
// invariants (the version, lengths inside the record, TLS chunks inside
// their call, DNS resolvers unmapped).
func FuzzDecode(f *testing.F) {
	f.Add(execRecord("/bin/sh", "sh", []string{"sh", "-c", "x"}, "/tmp"))
	f.Add(openRecord("/etc/passwd", -2))
	f.Add(connectRecord(10, netip.IPv6Unspecified(), 53))
	f.Add(exitRecord(0))
	f.Add(forkRecord())
	for _, ev := range append(intentEvents(), connCloseEvents()...) {
		f.Add(keventtest.Encode(ev))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := kevent.Decode(b)
		if err != nil {
			if ev != nil {
				t.Fatalf("event with error: %v", err)
			}
			return
		}
		if ev.Hdr().Version != kevent.Version {
			t.Fatalf("accepted version %d", ev.Hdr().Version)
		}
		switch e := ev.(type) {
		case *kevent.DNS:
			if len(e.Payload) > len(b) {
				t.Fatal("payload longer than the record")
			}
			if e.Resolver.Addr().Is4In6() {
				t.Fatal("v4-mapped resolver not unmapped")
			}
		case *kevent.ConnClose:
			if e.Dest.Addr().Is4In6() {
				t.Fatal("v4-mapped destination not unmapped")
			}
			if sent, acked, _ := e.Bytes(); acked > sent {
				t.Fatal("more acked than sent")
			}
		case *kevent.TLS:
			if uint64(e.Offset)+uint64(len(e.Data)) > uint64(e.Total) {
				t.Fatal("chunk beyond its call")
			}
			if len(e.Data) > len(b) {
				t.Fatal("data longer than the record")
			}
		}
	})
}

func BenchmarkDecodeExec(b *testing.B) {
	rec := execRecord("/usr/bin/curl", "/usr/bin/curl", []string{"curl", "--data-binary", "@/home/u/.aws/credentials", "http://127.0.0.1:9999/"}, "/home/u/proj")
	b.ReportAllocs()
	b.SetBytes(int64(len(rec)))
	for b.Loop() {
		if _, err := kevent.Decode(rec); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeOpen(b *testing.B) {
	rec := openRecord("/home/u/proj/src/components/really/deep/file.tsx", 3)
	b.ReportAllocs()
	b.SetBytes(int64(len(rec)))
	for b.Loop() {
		if _, err := kevent.Decode(rec); err != nil {
			b.Fatal(err)
		}
	}
}

func TestKindNames(t *testing.T) {
	require.True(t, kevent.KindDNS.Known())
	require.Equal(t, "dns", kevent.KindDNS.String())
	require.False(t, kevent.Kind(0).Known())
	require.False(t, kevent.Kind(200).Known())
	require.Equal(t, "kind(200)", kevent.Kind(200).String())
}

func TestDecodeIdentityAndWhatRan(t *testing.T) {
	h := kevent.Header{Version: kevent.Version, PID: 7, Start: 9, Flags: kevent.FlagArgsTruncated}
	exec := &kevent.Exec{Header: h, Exe: "/memfd:c", Args: []string{"curl", "-H", "X-Pa", kevent.ArgsCut, "-d", "@/k", "http://x"}, StdinPipe: 11, StdoutPipe: 12}
	got, err := kevent.Decode(keventtest.Encode(exec))
	require.NoError(t, err)
	e := got.(*kevent.Exec)
	require.Equal(t, exec.Args, e.Args, "head and tail around the cut")
	require.Equal(t, uint64(11), e.StdinPipe)
	require.Equal(t, uint64(12), e.StdoutPipe)

	oh := h
	oh.Kind = kevent.KindFileOp
	op := &kevent.FileOp{Header: oh, Op: kevent.OpLink, Path: "/h/.ssh/id", Path2: "/tmp/n", ID: kevent.FileID{Ino: 5, Dev: 3}}
	got, err = kevent.Decode(keventtest.Encode(op))
	require.NoError(t, err)
	require.Equal(t, op, got)

	openH := h
	openH.Kind = kevent.KindOpen
	open := &kevent.Open{Header: openH, Path: "/proc/1/environ", ID: kevent.FileID{Ino: 4, Dev: 22}, ProcTarget: 1}
	got, err = kevent.Decode(keventtest.Encode(open))
	require.NoError(t, err)
	require.Equal(t, open, got)

	for name, rec := range map[string][]byte{
		"file op short":      keventtest.Encode(op)[:40],
		"file op paths lie":  keventtest.Encode(op)[:66],
		"file op unknown op": keventtest.Encode(&kevent.FileOp{Header: h, Op: 9}),
		"argv tail lies":     patch(keventtest.Encode(exec), hdrSize+14, 0xff),
	} {
		_, err := kevent.Decode(rec)
		require.Error(t, err, name)
	}
}

func TestCutArgsOneLongArgument(t *testing.T) {
	// the tail holds no NUL but its last: one argument longer than the tail
	exec := &kevent.Exec{Args: []string{"sh", "-c", kevent.ArgsCut}}
	got, err := kevent.Decode(keventtest.Encode(exec))
	require.NoError(t, err)
	require.Equal(t, []string{"sh", "-c", kevent.ArgsCut}, got.(*kevent.Exec).Args)
}
