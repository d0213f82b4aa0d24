// Package dns turns DNS traffic captured from agent processes into what
// agentwatch reports: the question and answers of each message (UDP
// datagrams and TCP streams), the pairing of queries with their responses,
// and the resolvers the system is configured to use.
//
// Parsing is done by golang.org/x/net/dns/dnsmessage, which bounds name
// compression loops and lengths itself; this package adds caps on what it
// keeps so that a hostile packet costs bounded memory.
package dns

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/net/dns/dnsmessage"
)

// MaxAnswers caps the answer records kept per message; the rest are
// skipped and Message.AnswersTruncated is set.
const MaxAnswers = 64

// Message is the part of a DNS message agentwatch reports.
type Message struct {
	ID       uint16
	Response bool
	// Opcode is the header opcode, 0 for a standard query.
	Opcode int
	// RCode is the response code name, e.g. "NOERROR", "NXDOMAIN"; for
	// codes without a name, "RCODE<n>".
	RCode string
	// Truncated is the TC bit: the answer did not fit a UDP datagram.
	Truncated bool
	// Name and Type are those of the first question; Name is lower case,
	// without the trailing dot ("." for the root).
	Name string
	Type string
	// Questions is the question count from the header.
	Questions int
	Answers   []Answer
	// AnswersTruncated is set when more than MaxAnswers answers were present.
	AnswersTruncated bool
}

// Answer is one answer record of a kind agentwatch follows.
type Answer struct {
	Name string // owner name, like Message.Name
	Type string // "A", "AAAA" or "CNAME"
	TTL  uint32
	// Addr is set for A and AAAA records.
	Addr netip.Addr
	// Target is the canonical name of a CNAME record, like Message.Name.
	Target string
}

// String is the value of the answer as shipped in dns.answers: the address
// of an A/AAAA record, the target of a CNAME.
func (a Answer) String() string {
	if a.Addr.IsValid() {
		return a.Addr.String()
	}
	return a.Target
}

// AnswerStrings returns the answers as dns.answers strings, in order.
func (m *Message) AnswerStrings() []string {
	if len(m.Answers) == 0 {
		return nil
	}
	out := make([]string, len(m.Answers))
	for i, a := range m.Answers {
		out[i] = a.String()
	}
	return out
}

// Addrs returns the addresses of the A and AAAA answers.
func (m *Message) Addrs() []netip.Addr {
	var out []netip.Addr
	for _, a := range m.Answers {
		if a.Addr.IsValid() {
			out = append(out, a.Addr)
		}
	}
	return out
}

// ErrNoQuestion is returned for a message without a question section (the
// header still parsed; the message is returned alongside).
var ErrNoQuestion = errors.New("dns: message has no question")

// ParseUDP parses one DNS message as carried in a UDP datagram. On an error
// after the header, the returned Message holds what was parsed before it.
// Only the answer section is read; A, AAAA and CNAME answers are kept.
func ParseUDP(b []byte) (Message, error) {
	var m Message
	var p dnsmessage.Parser
	h, err := p.Start(b)
	if err != nil {
		return m, err
	}
	m.ID = h.ID
	m.Response = h.Response
	m.Opcode = int(h.OpCode)
	m.RCode = RCodeString(int(h.RCode))
	m.Truncated = h.Truncated
	m.Questions = int(uint16(b[4])<<8 | uint16(b[5]))

	q, err := p.Question()
	if err != nil {
		if errors.Is(err, dnsmessage.ErrSectionDone) {
			return m, ErrNoQuestion
		}
		return m, err
	}
	m.Name = nameString(q.Name)
	m.Type = TypeString(uint16(q.Type))
	if err := p.SkipAllQuestions(); err != nil {
		return m, err
	}
	if !m.Response {
		return m, nil
	}
	for {
		rh, err := p.AnswerHeader()
		if errors.Is(err, dnsmessage.ErrSectionDone) {
			return m, nil
		}
		if err != nil {
			return m, err
		}
		if len(m.Answers) >= MaxAnswers {
			m.AnswersTruncated = true
			return m, nil
		}
		a := Answer{Type: TypeString(uint16(rh.Type)), TTL: rh.TTL}
		switch rh.Type {
		case dnsmessage.TypeA:
			r, err := p.AResource()
			if err != nil {
				return m, err
			}
			a.Addr = netip.AddrFrom4(r.A)
		case dnsmessage.TypeAAAA:
			r, err := p.AAAAResource()
			if err != nil {
				return m, err
			}
			a.Addr = netip.AddrFrom16(r.AAAA)
		case dnsmessage.TypeCNAME:
			r, err := p.CNAMEResource()
			if err != nil {
				return m, err
			}
			a.Target = nameString(r.CNAME)
		default:
			if err := p.SkipAnswer(); err != nil {
				return m, err
			}
			continue
		}
		a.Name = nameString(rh.Name)
		m.Answers = append(m.Answers, a)
	}
}

// nameString renders a name lower-cased (resolvers randomise case, RFC
// "0x20" hardening) and without the trailing dot.
func nameString(n dnsmessage.Name) string {
	s := n.String()
	if len(s) > 1 && s[len(s)-1] == '.' {
		s = s[:len(s)-1]
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

var typeNames = map[uint16]string{
	1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 13: "HINFO", 15: "MX",
	16: "TXT", 17: "RP", 18: "AFSDB", 24: "SIG", 25: "KEY", 28: "AAAA",
	29: "LOC", 33: "SRV", 35: "NAPTR", 36: "KX", 37: "CERT", 39: "DNAME",
	41: "OPT", 42: "APL", 43: "DS", 44: "SSHFP", 45: "IPSECKEY", 46: "RRSIG",
	47: "NSEC", 48: "DNSKEY", 49: "DHCID", 50: "NSEC3", 51: "NSEC3PARAM",
	52: "TLSA", 53: "SMIMEA", 55: "HIP", 59: "CDS", 60: "CDNSKEY",
	61: "OPENPGPKEY", 62: "CSYNC", 63: "ZONEMD", 64: "SVCB", 65: "HTTPS",
	99: "SPF", 108: "EUI48", 109: "EUI64", 249: "TKEY", 250: "TSIG",
	251: "IXFR", 252: "AXFR", 255: "ANY", 256: "URI", 257: "CAA",
}

// TypeString returns the mnemonic of a record type ("A", "AAAA", "HTTPS");
// unknown types use the RFC 3597 form "TYPE<n>".
func TypeString(t uint16) string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return "TYPE" + strconv.Itoa(int(t))
}

var rcodeNames = [...]string{"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
	"NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE"}

// RCodeString returns the mnemonic of a response code; unknown codes use
// "RCODE<n>".
func RCodeString(rc int) string {
	if rc >= 0 && rc < len(rcodeNames) {
		return rcodeNames[rc]
	}
	return "RCODE" + strconv.Itoa(rc)
}
