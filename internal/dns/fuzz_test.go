package dns

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

func FuzzParseUDP(f *testing.F) {
	f.Add(rawQuery)
	f.Add(rawResponse)
	f.Add([]byte{})
	f.Add(mustHex("123481800001000100000000076578616d706c6503636f6d0000010001c00c000500010000000a0002c00c")) // CNAME loop to itself
	f.Add(mustHex("123481800001000100000000c00c00010001"))                                                   // pointer to itself
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseUDP(b)
		if len(m.Answers) > MaxAnswers {
			t.Fatalf("%d answers", len(m.Answers))
		}
		if err == nil && m.RCode == "" {
			t.Fatal("parsed without an rcode")
		}
		_ = m.AnswerStrings()
	})
}

// FuzzTCPStream checks that feeding a stream in arbitrary chunks yields the
// same messages as parsing it whole, and that the buffer stays bounded.
func FuzzTCPStream(f *testing.F) {
	f.Add(tcpBytes(rawQuery, rawResponse), uint8(3), uint8(5))
	f.Add([]byte{0, 0, 0, 1, 0}, uint8(1), uint8(1))
	f.Add([]byte{0xff, 0xff, 1, 2, 3}, uint8(2), uint8(7))
	f.Fuzz(func(t *testing.T, stream []byte, a, b uint8) {
		type out struct {
			m   Message
			bad bool
		}
		var whole, chunked []out
		var s1, s2 TCPStream
		s1.Feed(stream, func(m Message, err error) { whole = append(whole, out{m, err != nil}) })
		sizes := [2]int{int(a%64) + 1, int(b%64) + 1}
		for off, k := 0, 0; off < len(stream); k++ {
			end := min(off+sizes[k%2], len(stream))
			s2.Feed(stream[off:end], func(m Message, err error) { chunked = append(chunked, out{m, err != nil}) })
			off = end
			if s2.Buffered() > maxFrame {
				t.Fatalf("buffered %d", s2.Buffered())
			}
		}
		if !reflect.DeepEqual(whole, chunked) || s1.Buffered() != s2.Buffered() {
			t.Fatalf("whole %d msgs (%d left), chunked %d msgs (%d left)", len(whole), s1.Buffered(), len(chunked), s2.Buffered())
		}
	})
}

func BenchmarkParseUDP(b *testing.B) {
	msg := build(b, dnsmessage.Header{ID: 7, Response: true}, "api.anthropic.com.", dnsmessage.TypeA,
		rr{"api.anthropic.com.", &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("edge.example.net.")}},
		rr{"edge.example.net.", &dnsmessage.AResource{A: [4]byte{1, 2, 3, 4}}},
		rr{"edge.example.net.", &dnsmessage.AResource{A: [4]byte{1, 2, 3, 5}}},
	)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := ParseUDP(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTracker(b *testing.B) {
	tr := NewTracker(5*time.Second, 4096, nil)
	t0 := time.Unix(0, 0)
	q := Message{Name: "api.anthropic.com", Type: "A"}
	r := Message{Response: true, Name: "api.anthropic.com", Type: "A"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		q.ID, r.ID = uint16(i), uint16(i)
		now := t0.Add(time.Duration(i) * time.Millisecond)
		tr.Query(now, 1, resolverBench, q)
		tr.Response(now, 1, r)
		i++
	}
}

var resolverBench = netip.MustParseAddrPort("127.0.0.53:53")
