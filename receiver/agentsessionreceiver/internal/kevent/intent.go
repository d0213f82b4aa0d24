package kevent

import (
	"fmt"
	"net/netip"
)

// Directions of DNS and TLS records.
const (
	DNSSent     = 0 // DNS_DIR_SENT
	DNSReceived = 1 // DNS_DIR_RECV
	TLSWrite    = 0 // TLS_DIR_WRITE: plaintext the process sent
	TLSRead     = 1 // TLS_DIR_READ: plaintext it received
)

const (
	dnsFixed = hdrSize + 40
	tlsFixed = hdrSize + 24
)

// DNS is one DNS message a session process sent to or received from a
// resolver port (struct dns_event).
type DNS struct {
	Header
	Conn      uint64 // kernel socket address: keys a TCP stream
	Total     uint32 // bytes the syscall moved; Payload may be shorter
	Dir       uint8
	Transport uint16 // SOCK_STREAM=1 (TCP), SOCK_DGRAM=2 (UDP)
	Resolver  netip.AddrPort
	Payload   []byte // aliases the record: copy to keep
}

// Truncated reports whether the kernel copied less than the syscall moved.
func (d *DNS) Truncated() bool { return uint32(len(d.Payload)) < d.Total }

// TLS is one chunk of the plaintext of one SSL_read/SSL_write call
// (struct tls_event).
type TLS struct {
	Header
	Conn      uint64 // the SSL pointer: the connection within the process
	Total     uint32 // bytes the call moved
	Offset    uint32 // of Data within the call
	Dir       uint8
	Truncated bool   // the call moved more than the capture cap
	Data      []byte // aliases the record: copy to keep
}

func decodeDNS(h Header, b []byte) (*DNS, error) {
	if len(b) < dnsFixed {
		return nil, ErrShort
	}
	d := &DNS{
		Header: h,
		Conn:   le.Uint64(b[hdrSize:]),
		Total:  le.Uint32(b[hdrSize+8:]),
	}
	n := int(le.Uint16(b[hdrSize+12:]))
	family := le.Uint16(b[hdrSize+14:])
	port := le.Uint16(b[hdrSize+16:])
	d.Dir = b[hdrSize+18]
	d.Transport = uint16(b[hdrSize+19])
	raw := b[hdrSize+20 : hdrSize+36]
	var addr netip.Addr
	switch family {
	case 2:
		addr = netip.AddrFrom4([4]byte(raw[:4]))
	case 10:
		addr = netip.AddrFrom16([16]byte(raw)).Unmap()
	default:
		return nil, fmt.Errorf("%w: dns family %d", ErrCorrupt, family)
	}
	if d.Dir > DNSReceived {
		return nil, fmt.Errorf("%w: dns direction %d", ErrCorrupt, d.Dir)
	}
	if n > len(b)-dnsFixed {
		return nil, fmt.Errorf("%w: dns payload claims %d bytes, %d left", ErrCorrupt, n, len(b)-dnsFixed)
	}
	d.Resolver = netip.AddrPortFrom(addr, port)
	d.Payload = b[dnsFixed : dnsFixed+n]
	return d, nil
}

func decodeTLS(h Header, b []byte) (*TLS, error) {
	if len(b) < tlsFixed {
		return nil, ErrShort
	}
	t := &TLS{
		Header:    h,
		Conn:      le.Uint64(b[hdrSize:]),
		Total:     le.Uint32(b[hdrSize+8:]),
		Offset:    le.Uint32(b[hdrSize+12:]),
		Dir:       b[hdrSize+18],
		Truncated: b[hdrSize+19] != 0,
	}
	n := int(le.Uint16(b[hdrSize+16:]))
	if t.Dir > TLSRead {
		return nil, fmt.Errorf("%w: tls direction %d", ErrCorrupt, t.Dir)
	}
	if n > len(b)-tlsFixed {
		return nil, fmt.Errorf("%w: tls data claims %d bytes, %d left", ErrCorrupt, n, len(b)-tlsFixed)
	}
	if uint64(t.Offset)+uint64(n) > uint64(t.Total) {
		return nil, fmt.Errorf("%w: tls chunk [%d,+%d) beyond the call's %d bytes", ErrCorrupt, t.Offset, n, t.Total)
	}
	t.Data = b[tlsFixed : tlsFixed+n]
	return t, nil
}
