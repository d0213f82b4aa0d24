// Package keventtest encodes events in the kernel's wire format
// (bpf/events.h), for tests and benchmarks that start from raw records.
package keventtest

import (
	"encoding/binary"
	"slices"
	"strings"

	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
)

var le = binary.LittleEndian

func header(h *kevent.Header, kind kevent.Kind) []byte {
	b := make([]byte, 32)
	b[0] = byte(kind)
	b[1] = kevent.Version
	le.PutUint16(b[2:], h.Flags)
	le.PutUint32(b[4:], h.PID)
	le.PutUint32(b[8:], h.TID)
	le.PutUint64(b[16:], h.Time)
	le.PutUint64(b[24:], h.Start)
	return b
}

// Encode returns the ring-buffer record the kernel would write for ev.
func Encode(ev kevent.Event) []byte {
	switch e := ev.(type) {
	case *kevent.Exec:
		head, tail := e.Args, []string(nil)
		if i := slices.Index(e.Args, kevent.ArgsCut); i >= 0 {
			head, tail = e.Args[:i], e.Args[i+1:]
		}
		args := ""
		if len(head) > 0 {
			args = strings.Join(head, "\x00") + "\x00"
		}
		tailBytes := ""
		if tail != nil || len(head) < len(e.Args) {
			// the kernel's tail starts mid-argument: a NUL ends that piece
			tailBytes = "\x00" + strings.Join(tail, "\x00") + "\x00"
		}
		b := header(&e.Header, kevent.KindExec)
		f := make([]byte, 48)
		le.PutUint32(f[0:], e.PPID)
		le.PutUint32(f[4:], e.UID)
		le.PutUint32(f[8:], e.EUID)
		le.PutUint16(f[12:], uint16(len(e.Home)))
		le.PutUint16(f[14:], uint16(len(tailBytes)))
		le.PutUint64(f[16:], e.PStart)
		le.PutUint64(f[24:], e.StdinPipe)
		le.PutUint64(f[32:], e.StdoutPipe)
		le.PutUint16(f[40:], uint16(len(e.Exe)))
		le.PutUint16(f[42:], uint16(len(e.Filename)))
		le.PutUint16(f[44:], uint16(len(args)+len(tailBytes)))
		le.PutUint16(f[46:], uint16(len(e.Cwd)))
		b = append(b, f...)
		return append(append(append(append(append(append(b, e.Exe...), e.Filename...), args...), tailBytes...), e.Cwd...), e.Home...)
	case *kevent.Exit:
		b := header(&e.Header, kevent.KindExit)
		return le.AppendUint64(b, uint64(e.Status))
	case *kevent.Fork:
		b := header(&e.Header, kevent.KindFork)
		b = le.AppendUint32(b, e.PPID)
		b = le.AppendUint32(b, 0)
		return le.AppendUint64(b, e.PStart)
	case *kevent.Open:
		b := header(&e.Header, kevent.KindOpen)
		b = le.AppendUint32(b, uint32(e.Ret))
		b = le.AppendUint32(b, e.OpenFlags)
		b = le.AppendUint32(b, e.Mode)
		b = le.AppendUint16(b, uint16(len(e.Path)))
		b = le.AppendUint16(b, e.Syscall)
		b = le.AppendUint64(b, e.ID.Ino)
		b = le.AppendUint32(b, e.ID.Dev)
		b = le.AppendUint32(b, e.ProcTarget)
		return append(b, e.Path...)
	case *kevent.FileOp:
		b := header(&e.Header, kevent.KindFileOp)
		b = le.AppendUint32(b, uint32(e.Ret))
		b = le.AppendUint16(b, e.Op)
		b = le.AppendUint16(b, uint16(len(e.Path)))
		b = le.AppendUint16(b, uint16(len(e.Path2)))
		b = le.AppendUint16(b, 0)
		b = le.AppendUint32(b, e.Mode)
		b = le.AppendUint64(b, e.ID.Ino)
		b = le.AppendUint32(b, e.ID.Dev)
		b = le.AppendUint32(b, 0)
		return append(append(b, e.Path...), e.Path2...)
	case *kevent.Connect:
		b := header(&e.Header, kevent.KindConnect)
		b = le.AppendUint32(b, uint32(e.Ret))
		b = le.AppendUint16(b, e.Family)
		b = le.AppendUint16(b, e.Port)
		addr := e.Addr.As16()
		if e.Addr.Is4() {
			a4 := e.Addr.As4()
			addr = [16]byte{}
			copy(addr[:], a4[:])
		}
		b = append(b, addr[:]...)
		b = le.AppendUint16(b, e.SockType)
		return append(b, 0, 0, 0, 0, 0, 0)
	case *kevent.Enforce:
		b := header(&e.Header, kevent.KindEnforce)
		b = le.AppendUint32(b, e.Rule)
		b = append(b, e.What, e.Action)
		family, addr := uint16(0), [16]byte{}
		if e.Addr.Is4() {
			a4 := e.Addr.As4()
			family = 2
			copy(addr[:], a4[:])
		} else if e.Addr.IsValid() {
			family, addr = 10, e.Addr.As16()
		}
		b = le.AppendUint16(b, family)
		b = le.AppendUint16(b, e.Port)
		b = le.AppendUint16(b, uint16(len(e.Path)))
		b = le.AppendUint32(b, 0)
		b = append(b, addr[:]...)
		return append(b, e.Path...)
	case *kevent.DNS:
		b := header(&e.Header, kevent.KindDNS)
		b = le.AppendUint64(b, e.Conn)
		b = le.AppendUint32(b, e.Total)
		b = le.AppendUint16(b, uint16(len(e.Payload)))
		family, addr := uint16(2), [16]byte{}
		if a := e.Resolver.Addr(); a.Is4() {
			a4 := a.As4()
			copy(addr[:], a4[:])
		} else {
			family, addr = 10, a.As16()
		}
		b = le.AppendUint16(b, family)
		b = le.AppendUint16(b, e.Resolver.Port())
		b = append(b, e.Dir, byte(e.Transport))
		b = append(b, addr[:]...)
		b = le.AppendUint32(b, 0)
		return append(b, e.Payload...)
	case *kevent.TLS:
		b := header(&e.Header, kevent.KindTLS)
		b = le.AppendUint64(b, e.Conn)
		b = le.AppendUint32(b, e.Total)
		b = le.AppendUint32(b, e.Offset)
		b = le.AppendUint16(b, uint16(len(e.Data)))
		trunc := byte(0)
		if e.Truncated {
			trunc = 1
		}
		b = append(b, e.Dir, trunc)
		b = le.AppendUint32(b, 0)
		return append(b, e.Data...)
	case *kevent.ConnClose:
		b := header(&e.Header, kevent.KindConnClose)
		b = le.AppendUint64(b, e.ConnectTime)
		b = le.AppendUint64(b, e.BytesAcked)
		b = le.AppendUint64(b, e.BytesReceived)
		b = le.AppendUint32(b, e.SndUna)
		b = le.AppendUint32(b, e.WriteSeq)
		b = le.AppendUint32(b, uint32(e.Err))
		family, addr := uint16(10), e.Dest.Addr().As16()
		if a := e.Dest.Addr(); a.Is4() {
			a4 := a.As4()
			family, addr = 2, [16]byte{}
			copy(addr[:], a4[:])
		}
		b = le.AppendUint16(b, family)
		b = le.AppendUint16(b, e.Dest.Port())
		b = append(b, addr[:]...)
		fin := byte(0)
		if e.FinReceived {
			fin = 1
		}
		b = append(b, e.OldState, e.NewState, fin, 0)
		return le.AppendUint32(b, 0)
	}
	panic("keventtest: unknown event type")
}
