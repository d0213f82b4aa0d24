package sse

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// feedAll parses stream in pieces of size n (0: whole) without Flush.
func feedAll(p *Parser, stream string, n int) []Event {
	var out []Event
	emit := func(e Event) { out = append(out, e) }
	if n <= 0 {
		n = len(stream) + 1
	}
	for len(stream) > 0 {
		k := min(n, len(stream))
		p.Feed([]byte(stream[:k]), emit)
		stream = stream[k:]
	}
	return out
}

func ev(typ, data, id string) Event { return Event{Type: typ, Data: []byte(data), ID: id} }

func TestParser(t *testing.T) {
	tests := []struct {
		name   string
		stream string
		want   []Event
	}{
		{"multi-line data", "data: YHOO\ndata: +2\ndata: 10\n\n", []Event{ev("message", "YHOO\n+2\n10", "")}},
		{"comments and ids", ": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n",
			[]Event{ev("message", "first event", "1"), ev("message", "second event", ""), ev("message", " third event", "")}},
		{"empty data fields", "data\n\ndata\ndata\n\ndata:", []Event{ev("message", "", ""), ev("message", "\n", "")}},
		{"space after colon optional", "data:test\n\ndata: test\n\n", []Event{ev("message", "test", ""), ev("message", "test", "")}},
		{"event type", "event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\ndata: 1\n\n",
			[]Event{ev("add", "73857293", ""), ev("remove", "2153", ""), ev("message", "1", "")}},
		{"empty event type is message", "event:\ndata: x\n\n", []Event{ev("message", "x", "")}},
		{"line endings", "data: a\r\n\r\ndata: b\r\rdata: c\n\ndata: d\r\n\n", []Event{ev("message", "a", ""), ev("message", "b", ""), ev("message", "c", ""), ev("message", "d", "")}},
		{"bom", "\xEF\xBB\xBFdata: x\n\n", []Event{ev("message", "x", "")}},
		{"second bom is content", "\xEF\xBB\xBF\xEF\xBB\xBFdata: x\n\n", nil},
		{"not a bom", "\xEFdata: x\n\ndata: y\n\n", []Event{ev("message", "y", "")}},
		{"id with NUL ignored", "id: 7\ndata: a\n\nid: 8\x00\ndata: b\n\n", []Event{ev("message", "a", "7"), ev("message", "b", "7")}},
		{"no data, no event", "event: ping\n\n: keepalive\n\nid: 3\n\n", nil},
		{"unknown field", "foo: bar\ndata: x\nData: y\n\n", []Event{ev("message", "x", "")}},
		{"colon in value", "data: {\"a\": \"b:c\"}\n\n", []Event{ev("message", `{"a": "b:c"}`, "")}},
		{"unterminated event waits", "data: x\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for n := 0; n <= len(tt.stream); n++ {
				var p Parser
				got := feedAll(&p, tt.stream, n)
				if !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("chunk %d:\n got %+v\nwant %+v", n, got, tt.want)
				}
			}
		})
	}
}

func TestRetry(t *testing.T) {
	got := Parse([]byte("retry: 1500\ndata: a\n\nretry: 15x\ndata: b\n\n"))
	if len(got) != 2 || got[0].Retry != 1500*time.Millisecond || got[1].Retry != 0 {
		t.Fatalf("%+v", got)
	}
}

func TestParseFlushes(t *testing.T) {
	got := Parse([]byte("event: message_delta\ndata: {\"usage\":1}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}"))
	want := []Event{ev("message_delta", `{"usage":1}`, ""), ev("message_stop", `{"type":"message_stop"}`, "")}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v", got)
	}
	if Parse(nil) != nil || Parse([]byte(": only a comment")) != nil {
		t.Error("events from nothing")
	}
}

func TestCaps(t *testing.T) {
	p := Parser{MaxLineBytes: 16, MaxEventBytes: 20}
	long := "data: " + strings.Repeat("x", 40) + "\n\n"
	got := feedAll(&p, long+"data: ok\n\n", 0)
	if len(got) != 2 || !got[0].Truncated || len(got[0].Data) != 10 || got[1].Truncated || string(got[1].Data) != "ok" {
		t.Fatalf("line cap: %+v", got)
	}
	// The same, with the long line split across chunks.
	p = Parser{MaxLineBytes: 16, MaxEventBytes: 20}
	if got := feedAll(&p, long, 3); len(got) != 1 || !got[0].Truncated || len(got[0].Data) != 10 {
		t.Fatalf("split line cap: %+v", got)
	}
	p = Parser{MaxLineBytes: 16, MaxEventBytes: 20}
	got = feedAll(&p, strings.Repeat("data: 123456789\n", 5)+"\n", 0)
	if len(got) != 1 || !got[0].Truncated || len(got[0].Data) != 20 || string(got[0].Data) != "123456789\n123456789\n"[:20] {
		t.Fatalf("event cap: %+v", got)
	}
}

func TestReset(t *testing.T) {
	var p Parser
	var got []Event
	emit := func(e Event) { got = append(got, e) }
	p.Feed([]byte("id: 5\ndata: first\ndata: par"), emit)
	p.Reset()
	p.Feed([]byte("tial\n\ndata: ok\n\n"), emit)
	if len(got) != 1 || string(got[0].Data) != "ok" || got[0].ID != "5" || p.LastEventID() != "5" {
		t.Fatalf("%+v", got)
	}
}

// anthropicStream is the shape of a Messages API stream.
func anthropicStream(n int) string {
	var b strings.Builder
	b.WriteString("event: message_start\r\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude-sonnet-4-5\"}}\r\n\r\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "event: content_block_delta\r\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"word%d \"}}\r\n\r\n", i)
		if i%50 == 0 {
			b.WriteString("event: ping\r\ndata: {\"type\": \"ping\"}\r\n\r\n")
		}
	}
	b.WriteString("event: message_stop\r\ndata: {\"type\":\"message_stop\"}\r\n\r\n")
	return b.String()
}

func TestSplitInvariance(t *testing.T) {
	stream := anthropicStream(20)
	var p Parser
	whole := feedAll(&p, stream, 0)
	if len(whole) != 23 || whole[2].Type != "ping" || whole[22].Type != "message_stop" {
		t.Fatalf("%d events", len(whole))
	}
	for n := 1; n < 200; n++ {
		var q Parser
		if got := feedAll(&q, stream, n); !reflect.DeepEqual(got, whole) {
			t.Fatalf("chunk size %d differs", n)
		}
	}
}

func FuzzSSE(f *testing.F) {
	f.Add([]byte(anthropicStream(2)), uint8(3), uint8(5))
	f.Add([]byte("\xEF\xBB\xBFdata: x\r\rdata\r\n\r\n"), uint8(1), uint8(2))
	f.Add([]byte("id: \x00\nretry: 99999999999999\ndata:"), uint8(4), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, a, b uint8) {
		cfg := Parser{MaxLineBytes: 64, MaxEventBytes: 128}
		whole := cfg
		var want []Event
		whole.Feed(data, func(e Event) { want = append(want, e) })
		chunked := cfg
		var got []Event
		sizes := [2]int{int(a%16) + 1, int(b%16) + 1}
		for off, k := 0, 0; off < len(data); k++ {
			end := min(off+sizes[k%2], len(data))
			chunked.Feed(data[off:end], func(e Event) { got = append(got, e) })
			off = end
			if len(chunked.line) > 64 || len(chunked.data) > 128 {
				t.Fatalf("unbounded: line %d data %d", len(chunked.line), len(chunked.data))
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("chunked %+v\nwhole %+v", got, want)
		}
		for _, e := range want {
			if len(e.Data) > 128 {
				t.Fatalf("data %d", len(e.Data))
			}
		}
		Parse(data)
	})
}

func BenchmarkFeed(b *testing.B) {
	stream := []byte(anthropicStream(500))
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	var p Parser
	n := 0
	emit := func(Event) { n++ }
	for b.Loop() {
		for off := 0; off < len(stream); off += 1024 {
			p.Feed(stream[off:min(off+1024, len(stream))], emit)
		}
	}
}
