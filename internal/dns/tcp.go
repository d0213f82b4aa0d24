package dns

import (
	"encoding/binary"
	"errors"
)

// maxFrame is the largest DNS-over-TCP frame: a 2-byte length prefix and
// up to 65535 bytes of message. It bounds what a TCPStream buffers.
const maxFrame = 2 + 65535

// ErrPartial is returned by ParseTCP when the input ends inside a frame.
var ErrPartial = errors.New("dns: partial TCP frame")

// TCPStream reassembles the DNS messages of one direction of a TCP (or
// DNS-over-TLS plaintext) connection from byte chunks split anywhere: a
// resolver may write the length prefix and the message separately, or
// several messages at once. It buffers at most one partial frame
// (≤ 65537 bytes). The zero value is ready to use.
type TCPStream struct {
	buf []byte
}

// Feed consumes the next chunk of the stream and calls fn for every message
// it completes, with the error of ParseUDP for malformed ones. fn must not
// keep b's memory; Message holds none of it.
func (s *TCPStream) Feed(b []byte, fn func(Message, error)) {
	if len(s.buf) > 0 {
		if len(s.buf) < 2 {
			take := min(2-len(s.buf), len(b))
			s.buf = append(s.buf, b[:take]...)
			b = b[take:]
			if len(s.buf) < 2 {
				return
			}
		}
		total := 2 + int(binary.BigEndian.Uint16(s.buf))
		take := min(total-len(s.buf), len(b))
		s.buf = append(s.buf, b[:take]...)
		b = b[take:]
		if len(s.buf) < total {
			return
		}
		fn(ParseUDP(s.buf[2:]))
		s.buf = s.buf[:0]
	}
	for len(b) >= 2 {
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			break
		}
		fn(ParseUDP(b[2 : 2+n]))
		b = b[2+n:]
	}
	s.buf = append(s.buf, b...)
}

// Buffered returns the number of bytes of an incomplete frame held.
func (s *TCPStream) Buffered() int { return len(s.buf) }

// Reset drops any partial frame. Call it when the capture lost bytes of the
// stream: frame boundaries cannot be found again inside a gap.
func (s *TCPStream) Reset() { s.buf = s.buf[:0] }

// ParseTCP parses the length-prefixed messages in b, which holds whole
// frames (one TCP payload, say). It stops at the first malformed message
// and returns ErrPartial, with the complete messages, when b ends inside a
// frame.
func ParseTCP(b []byte) ([]Message, error) {
	var out []Message
	for len(b) > 0 {
		if len(b) < 2 {
			return out, ErrPartial
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			return out, ErrPartial
		}
		m, err := ParseUDP(b[2 : 2+n])
		if err != nil {
			return out, err
		}
		out = append(out, m)
		b = b[2+n:]
	}
	return out, nil
}
