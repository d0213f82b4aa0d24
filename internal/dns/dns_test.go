package dns

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// Captured by hand from the wire format in RFC 1035 §4.1: a query for
// example.com A (id 0x1234, RD) and its response, whose answer names the
// question through a compression pointer (c0 0c).
var (
	rawQuery    = mustHex("123401000001000000000000076578616d706c6503636f6d0000010001")
	rawResponse = mustHex("123481800001000100000000076578616d706c6503636f6d0000010001" +
		"c00c0001000100000e1000045db8d70e")
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

type rr struct {
	name string
	body dnsmessage.ResourceBody
}

func build(t testing.TB, h dnsmessage.Header, qname string, qtype dnsmessage.Type, answers ...rr) []byte {
	t.Helper()
	b := dnsmessage.NewBuilder(nil, h)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		t.Fatal(err)
	}
	if qname != "" {
		if err := b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(qname), Type: qtype, Class: dnsmessage.ClassINET}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.StartAnswers(); err != nil {
		t.Fatal(err)
	}
	for _, a := range answers {
		rh := dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(a.name), Class: dnsmessage.ClassINET, TTL: 300}
		var err error
		switch body := a.body.(type) {
		case *dnsmessage.AResource:
			err = b.AResource(rh, *body)
		case *dnsmessage.AAAAResource:
			err = b.AAAAResource(rh, *body)
		case *dnsmessage.CNAMEResource:
			err = b.CNAMEResource(rh, *body)
		case *dnsmessage.TXTResource:
			err = b.TXTResource(rh, *body)
		case *dnsmessage.MXResource:
			err = b.MXResource(rh, *body)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	msg, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func TestParseUDP(t *testing.T) {
	resp := dnsmessage.Header{ID: 7, Response: true, RecursionDesired: true, RecursionAvailable: true}
	v6 := netip.MustParseAddr("2606:4700::6810:85e5")
	cnameChain := build(t, resp, "API.Anthropic.com.", dnsmessage.TypeAAAA,
		rr{"api.anthropic.com.", &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("edge.example.net.")}},
		rr{"edge.example.net.", &dnsmessage.TXTResource{TXT: []string{"skipped"}}},
		rr{"edge.example.net.", &dnsmessage.AAAAResource{AAAA: v6.As16()}},
		rr{"edge.example.net.", &dnsmessage.AResource{A: [4]byte{1, 2, 3, 4}}},
	)
	nx := dnsmessage.Header{ID: 9, Response: true, RCode: dnsmessage.RCodeNameError}
	tc := dnsmessage.Header{ID: 10, Response: true, Truncated: true}

	tests := []struct {
		name    string
		in      []byte
		want    Message
		wantErr error // nil: no error; errAny: any error
	}{
		{"raw query", rawQuery, Message{ID: 0x1234, RCode: "NOERROR", Name: "example.com", Type: "A", Questions: 1}, nil},
		{"raw response with pointer", rawResponse, Message{ID: 0x1234, Response: true, RCode: "NOERROR", Name: "example.com", Type: "A", Questions: 1,
			Answers: []Answer{{Name: "example.com", Type: "A", TTL: 3600, Addr: netip.MustParseAddr("93.184.215.14")}}}, nil},
		{"cname chain, case folded, txt skipped", cnameChain, Message{ID: 7, Response: true, RCode: "NOERROR", Name: "api.anthropic.com", Type: "AAAA", Questions: 1,
			Answers: []Answer{
				{Name: "api.anthropic.com", Type: "CNAME", TTL: 300, Target: "edge.example.net"},
				{Name: "edge.example.net", Type: "AAAA", TTL: 300, Addr: v6},
				{Name: "edge.example.net", Type: "A", TTL: 300, Addr: netip.MustParseAddr("1.2.3.4")},
			}}, nil},
		{"nxdomain", build(t, nx, "nope.example.", dnsmessage.TypeA), Message{ID: 9, Response: true, RCode: "NXDOMAIN", Name: "nope.example", Type: "A", Questions: 1}, nil},
		{"truncated bit, https type", build(t, tc, "x.example.", dnsmessage.Type(65)), Message{ID: 10, Response: true, RCode: "NOERROR", Truncated: true, Name: "x.example", Type: "HTTPS", Questions: 1}, nil},
		{"unknown type", build(t, dnsmessage.Header{ID: 1}, "x.example.", dnsmessage.Type(1234)), Message{ID: 1, RCode: "NOERROR", Name: "x.example", Type: "TYPE1234", Questions: 1}, nil},
		{"root", build(t, dnsmessage.Header{ID: 2}, ".", dnsmessage.TypeNS), Message{ID: 2, RCode: "NOERROR", Name: ".", Type: "NS", Questions: 1}, nil},
		{"no question", build(t, dnsmessage.Header{ID: 3, Response: true, RCode: dnsmessage.RCodeFormatError}, "", 0), Message{ID: 3, Response: true, RCode: "FORMERR"}, ErrNoQuestion},
		{"empty", nil, Message{}, errAny},
		{"short header", []byte{1, 2, 3}, Message{}, errAny},
		{"garbage question", append(mustHex("000101000001000000000000"), 0x3f, 'a'), Message{ID: 1, RCode: "NOERROR", Questions: 1}, errAny},
		{"cut inside answer keeps earlier answers", cnameChain[:len(cnameChain)-3], Message{ID: 7, Response: true, RCode: "NOERROR", Name: "api.anthropic.com", Type: "AAAA", Questions: 1,
			Answers: []Answer{
				{Name: "api.anthropic.com", Type: "CNAME", TTL: 300, Target: "edge.example.net"},
				{Name: "edge.example.net", Type: "AAAA", TTL: 300, Addr: v6},
			}}, errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseUDP(tt.in)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tt.wantErr == errAny && err == nil:
				t.Fatal("want an error")
			case tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

var errAny = errors.New("any error")

func TestParseUDPAnswerCap(t *testing.T) {
	var answers []rr
	for i := 0; i < MaxAnswers+10; i++ {
		answers = append(answers, rr{"many.example.", &dnsmessage.AResource{A: [4]byte{10, 0, byte(i >> 8), byte(i)}}})
	}
	m, err := ParseUDP(build(t, dnsmessage.Header{Response: true}, "many.example.", dnsmessage.TypeA, answers...))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Answers) != MaxAnswers || !m.AnswersTruncated {
		t.Fatalf("answers %d truncated %v", len(m.Answers), m.AnswersTruncated)
	}
	if got := m.AnswerStrings()[1]; got != "10.0.0.1" {
		t.Errorf("AnswerStrings[1] = %q", got)
	}
	if len(m.Addrs()) != MaxAnswers {
		t.Errorf("Addrs = %d", len(m.Addrs()))
	}
}

func TestStrings(t *testing.T) {
	if TypeString(28) != "AAAA" || TypeString(65535) != "TYPE65535" {
		t.Error("TypeString")
	}
	if RCodeString(3) != "NXDOMAIN" || RCodeString(15) != "RCODE15" || RCodeString(-1) != "RCODE-1" {
		t.Error("RCodeString")
	}
	m := Message{Answers: []Answer{{Type: "CNAME", Target: "a.example"}, {Type: "A", Addr: netip.MustParseAddr("192.0.2.1")}}}
	if got := m.AnswerStrings(); !reflect.DeepEqual(got, []string{"a.example", "192.0.2.1"}) {
		t.Errorf("AnswerStrings = %q", got)
	}
	if (&Message{}).AnswerStrings() != nil {
		t.Error("AnswerStrings of no answers should be nil")
	}
}

func frame(msg []byte) []byte {
	return binary.BigEndian.AppendUint16(nil, uint16(len(msg))) // length prefix
}

func tcpBytes(msgs ...[]byte) []byte {
	var out []byte
	for _, m := range msgs {
		out = append(append(out, frame(m)...), m...)
	}
	return out
}

func TestTCPStream(t *testing.T) {
	stream := tcpBytes(rawQuery, rawResponse, rawQuery)
	whole, err := ParseTCP(stream)
	if err != nil || len(whole) != 3 {
		t.Fatalf("ParseTCP: %d messages, %v", len(whole), err)
	}
	for _, size := range []int{1, 2, 3, 7, 29, 30, 31, len(stream)} {
		var s TCPStream
		var got []Message
		for off := 0; off < len(stream); off += size {
			s.Feed(stream[off:min(off+size, len(stream))], func(m Message, err error) {
				if err != nil {
					t.Errorf("chunk %d: %v", size, err)
				}
				got = append(got, m)
			})
		}
		if !reflect.DeepEqual(got, whole) {
			t.Errorf("chunk size %d: got %d messages, differ from whole-buffer parse", size, len(got))
		}
		if s.Buffered() != 0 {
			t.Errorf("chunk size %d: %d bytes left buffered", size, s.Buffered())
		}
	}

	// A partial frame waits; Reset drops it after a capture gap.
	var s TCPStream
	calls := 0
	s.Feed(stream[:10], func(Message, error) { calls++ })
	if calls != 0 || s.Buffered() != 10 {
		t.Fatalf("partial: calls %d buffered %d", calls, s.Buffered())
	}
	s.Reset()
	s.Feed(tcpBytes(rawResponse), func(m Message, err error) {
		calls++
		if err != nil || m.Name != "example.com" {
			t.Errorf("after reset: %+v %v", m, err)
		}
	})
	if calls != 1 {
		t.Errorf("after reset: %d calls", calls)
	}

	// A malformed frame is reported and the stream continues.
	var errs, oks int
	s.Feed(tcpBytes([]byte{1, 2, 3}, nil, rawQuery), func(m Message, err error) {
		if err != nil {
			errs++
		} else {
			oks++
		}
	})
	if errs != 2 || oks != 1 {
		t.Errorf("malformed frames: %d errors, %d ok", errs, oks)
	}

	if _, err := ParseTCP(stream[:len(stream)-1]); !errors.Is(err, ErrPartial) {
		t.Errorf("ParseTCP partial: %v", err)
	}
	if _, err := ParseTCP(stream[:1]); !errors.Is(err, ErrPartial) {
		t.Errorf("ParseTCP one byte: %v", err)
	}
	if _, err := ParseTCP(tcpBytes([]byte{1})); err == nil || errors.Is(err, ErrPartial) {
		t.Errorf("ParseTCP malformed: %v", err)
	}
}

func TestTracker(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	resolver := netip.MustParseAddrPort("127.0.0.53:53")
	q := func(id uint16, name, typ string) Message { return Message{ID: id, Name: name, Type: typ} }
	r := func(id uint16, name, typ string) Message {
		return Message{ID: id, Response: true, Name: name, Type: typ, RCode: "NOERROR"}
	}

	t.Run("match", func(t *testing.T) {
		var unanswered []Result
		tr := NewTracker(5*time.Second, 100, func(r Result) { unanswered = append(unanswered, r) })
		tr.Query(t0, 42, resolver, q(1, "api.anthropic.com", "A"))
		tr.Query(t0, 42, resolver, q(1, "api.anthropic.com", "AAAA")) // same id, other type
		res, ok := tr.Response(t0.Add(30*time.Millisecond), 42, r(1, "api.anthropic.com", "AAAA"))
		if !ok || res.Query.Type != "AAAA" || res.Latency != 30*time.Millisecond || res.Resolver != resolver || res.Response == nil {
			t.Fatalf("AAAA: %+v %v", res, ok)
		}
		res, ok = tr.Response(t0.Add(40*time.Millisecond), 42, r(1, "api.anthropic.com", "A"))
		if !ok || res.Query.Type != "A" {
			t.Fatalf("A: %+v %v", res, ok)
		}
		if tr.Len() != 0 || len(unanswered) != 0 {
			t.Fatalf("len %d unanswered %d", tr.Len(), len(unanswered))
		}
		// A second response for the same query no longer matches.
		if _, ok := tr.Response(t0.Add(time.Second), 42, r(1, "api.anthropic.com", "A")); ok {
			t.Error("duplicate response matched")
		}
	})

	t.Run("no match", func(t *testing.T) {
		tr := NewTracker(5*time.Second, 100, nil)
		tr.Query(t0, 42, resolver, q(1, "a.example", "A"))
		for _, c := range []struct {
			pid uint32
			m   Message
		}{
			{43, r(1, "a.example", "A")}, // other process
			{42, r(2, "a.example", "A")}, // other id
			{42, r(1, "b.example", "A")}, // other question
		} {
			res, ok := tr.Response(t0, c.pid, c.m)
			if ok || res.Response == nil || res.Response.Name != c.m.Name {
				t.Errorf("%+v matched: %v", c, ok)
			}
		}
		// Without a question section only pid and id count.
		res, ok := tr.Response(t0, 42, Message{ID: 1, Response: true, RCode: "FORMERR"})
		if !ok || res.Query.Name != "a.example" {
			t.Errorf("questionless response: %+v %v", res, ok)
		}
	})

	t.Run("expire", func(t *testing.T) {
		var unanswered []Result
		tr := NewTracker(5*time.Second, 100, func(r Result) { unanswered = append(unanswered, r) })
		tr.Query(t0, 1, resolver, q(1, "a.example", "A"))
		tr.Query(t0.Add(time.Second), 1, resolver, q(2, "b.example", "A"))
		tr.Query(t0.Add(2*time.Second), 1, resolver, q(1, "a.example", "A")) // retransmission
		tr.Expire(t0.Add(4999 * time.Millisecond))
		if len(unanswered) != 0 {
			t.Fatalf("expired early: %+v", unanswered)
		}
		tr.Expire(t0.Add(5 * time.Second))
		if len(unanswered) != 1 || !unanswered[0].Expired || unanswered[0].Query.Name != "a.example" || unanswered[0].Response != nil || !unanswered[0].Sent.Equal(t0) {
			t.Fatalf("after 5s: %+v", unanswered)
		}
		if _, ok := tr.Response(t0.Add(7*time.Second), 1, r(2, "b.example", "A")); ok {
			t.Error("response after timeout matched")
		}
		if len(unanswered) != 2 || tr.Len() != 0 {
			t.Fatalf("after 7s: %d unanswered, %d pending", len(unanswered), tr.Len())
		}
	})

	t.Run("bounded", func(t *testing.T) {
		var evicted []Result
		tr := NewTracker(time.Minute, 3, func(r Result) { evicted = append(evicted, r) })
		for i := uint16(0); i < 5; i++ {
			tr.Query(t0, 1, resolver, q(i, "x.example", "A"))
		}
		if tr.Len() != 3 || tr.Evicted() != 2 || len(evicted) != 2 || !evicted[0].Evicted || evicted[0].Query.ID != 0 || evicted[1].Query.ID != 1 {
			t.Fatalf("len %d evicted %d %+v", tr.Len(), tr.Evicted(), evicted)
		}
		if _, ok := tr.Response(t0, 1, r(4, "x.example", "A")); !ok {
			t.Error("newest query lost")
		}
	})

	t.Run("same key chain bounded", func(t *testing.T) {
		tr := NewTracker(time.Minute, 1000, nil)
		for i := 0; i < 3*maxSameKey; i++ {
			tr.Query(t0, 1, resolver, q(7, strings.Repeat("a", i+1)+".example", "TXT"))
		}
		if tr.Len() != maxSameKey {
			t.Fatalf("len %d, want %d", tr.Len(), maxSameKey)
		}
		if _, ok := tr.Response(t0, 1, r(7, strings.Repeat("a", 3*maxSameKey)+".example", "TXT")); !ok {
			t.Error("newest of chain lost")
		}
	})
}

func TestSystemResolvers(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	plain := write("plain.conf", "# generated\nsearch corp.example\nnameserver 10.0.0.2 # primary\n; old\nnameserver   fe80::1%eth0\nnameserver 10.0.0.2\nnameserver not-an-ip\nnameserver\noptions edns0 trust-ad\nnameserver ::ffff:192.0.2.7\n")
	stub := write("stub.conf", "nameserver 127.0.0.53\noptions edns0\n")
	upstream := write("upstream.conf", "nameserver 1.1.1.1\nnameserver 127.0.0.53\nnameserver 2606:4700:4700::1111\n")

	tests := []struct {
		name, path, upstream string
		want                 []string
		wantErr              bool
	}{
		{"plain", plain, upstream, []string{"10.0.0.2", "fe80::1%eth0", "192.0.2.7"}, false},
		{"stub with upstreams", stub, upstream, []string{"127.0.0.53", "1.1.1.1", "2606:4700:4700::1111"}, false},
		{"stub, resolved not running", stub, filepath.Join(dir, "missing.conf"), []string{"127.0.0.53"}, false},
		{"missing", filepath.Join(dir, "nope.conf"), upstream, nil, true},
		{"empty", write("empty.conf", ""), upstream, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := systemResolvers(tt.path, tt.upstream)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v", err)
			}
			var gs []string
			for _, a := range got {
				gs = append(gs, a.String())
			}
			if !reflect.DeepEqual(gs, tt.want) {
				t.Errorf("got %q want %q", gs, tt.want)
			}
		})
	}
	// The exported form reads the real upstream path; it must at least
	// agree on a file without the stub.
	if got, err := SystemResolvers(plain); err != nil || len(got) != 3 {
		t.Errorf("SystemResolvers: %v %v", got, err)
	}
}

func TestTrackerExpirePID(t *testing.T) {
	var got []Result
	tr := NewTracker(time.Minute, 16, func(r Result) { got = append(got, r) })
	now := time.Unix(100, 0)
	rs := netip.MustParseAddrPort("10.0.0.53:53")
	tr.Query(now, 1, rs, Message{ID: 1, Name: "a.test", Type: "A"})
	tr.Query(now, 2, rs, Message{ID: 2, Name: "b.test", Type: "A"})
	tr.Query(now, 1, rs, Message{ID: 3, Name: "c.test", Type: "A"})
	tr.ExpirePID(1)
	if len(got) != 2 || got[0].Query.Name != "a.test" || got[1].Query.Name != "c.test" || !got[0].Expired {
		t.Fatalf("ExpirePID(1) reported %+v", got)
	}
	if tr.Len() != 1 {
		t.Fatalf("pending %d, want 1", tr.Len())
	}
	if _, ok := tr.Response(now, 2, Message{ID: 2, Response: true, Name: "b.test", Type: "A"}); !ok {
		t.Fatal("the other pid's query must still match")
	}
}
