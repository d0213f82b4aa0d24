package httpstream

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

var fuzzCfg = Config{MaxHeaderBytes: 512, MaxHeaders: 8, MaxBodyBytes: 256, MaxDecodedBytes: 1024, MaxPending: 4}

func fuzzSeeds(f *testing.F) {
	f.Add([]byte(anthropicReq), uint8(7), uint8(0))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n"+chunked(sseBody, 9, ";x")+"T: 1\r\n\r\n"), uint8(3), uint8(1))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 5\r\n\r\n\x1f\x8b\x08\x00\x00"), uint8(2), uint8(2))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\nPO"), uint8(1), uint8(3))
	f.Add([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), uint8(5), uint8(4))
	f.Add([]byte("HTTP/1.1 101 S\r\n\r\nxx"), uint8(5), uint8(5))
	f.Add([]byte("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nfffffff\r\nabc"), uint8(4), uint8(6))
}

// FuzzHTTPStream checks, on both directions, that feeding in chunks yields
// exactly what feeding the whole stream does, and that the caps hold.
func FuzzHTTPStream(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte, a, b uint8) {
		for _, dir := range []Direction{Request, Response} {
			whole, wp := collect(dir, fuzzCfg, data)
			sizes := [2]int{int(a%32) + 1, int(b%32) + 1}
			var got []*Message
			p := NewParser(dir, fuzzCfg, func(m *Message) { got = append(got, m) })
			for off, k := 0, 0; off < len(data); k++ {
				end := min(off+sizes[k%2], len(data))
				p.Feed(data[off:end], t0)
				off = end
				checkBounds(t, p)
			}
			if !reflect.DeepEqual(got, whole) || p.st != wp.st {
				t.Fatalf("%v: chunked %s\nwhole %s", dir, dump(got), dump(whole))
			}
			for _, m := range whole {
				checkMessage(t, m)
			}
		}
	})
}

// FuzzHTTPStreamGaps interleaves Skip, Reset and Close with the bytes, on a
// Conn, to exercise recovery paths.
func FuzzHTTPStreamGaps(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte, a, ops uint8) {
		var msgs []*Message
		c := NewConn(fuzzCfg, func(m *Message) { msgs = append(msgs, m) }, func(m *Message) { msgs = append(msgs, m) })
		size := int(a%16) + 1
		for off, k := 0, 0; off < len(data); k++ {
			end := min(off+size, len(data))
			p := c.Request()
			if (int(ops)>>(k%8))&1 == 1 {
				p = c.Response()
			}
			p.Feed(data[off:end], t0)
			switch (int(ops) + k) % 5 {
			case 1:
				p.Skip(int64(k))
			case 2:
				p.Reset()
			}
			off = end
			checkBounds(t, &c.req)
			checkBounds(t, &c.resp)
			if len(c.pending) > fuzzCfg.MaxPending {
				t.Fatalf("pending %d", len(c.pending))
			}
		}
		c.Close(t0)
		for _, m := range msgs {
			checkMessage(t, m)
		}
	})
}

func checkBounds(t *testing.T, p *Parser) {
	t.Helper()
	if len(p.line) > max(fuzzCfg.MaxHeaderBytes, maxChunkLine) || len(p.body) > fuzzCfg.MaxBodyBytes || len(p.carry) > 16 {
		t.Fatalf("unbounded: line %d body %d carry %d", len(p.line), len(p.body), len(p.carry))
	}
}

func checkMessage(t *testing.T, m *Message) {
	t.Helper()
	if len(m.Body) > max(fuzzCfg.MaxBodyBytes, fuzzCfg.MaxDecodedBytes) || len(m.Header) > fuzzCfg.MaxHeaders {
		t.Fatalf("message over caps: body %d headers %d", len(m.Body), len(m.Header))
	}
	if !m.Decoded && len(m.Body) > fuzzCfg.MaxBodyBytes {
		t.Fatalf("raw body %d", len(m.Body))
	}
	if int64(len(m.Body)) > m.WireBodyLen && !m.Decoded {
		t.Fatalf("body %d > wire %d", len(m.Body), m.WireBodyLen)
	}
}

// TestZstdBombBounded: however the frame is laid out (single segment with
// a declared size, or windowed blocks), decoding stops at the cap or is
// refused; it never holds the whole output.
func TestZstdBombBounded(t *testing.T) {
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	frame := enc.EncodeAll(make([]byte, 32<<20), nil)
	ms, _ := collect(Response, Config{}, response("Content-Encoding: zstd\r\n", frame))
	if len(ms) != 1 || len(ms[0].Body) > defaultMaxDecodedBytes || (ms[0].DecodeErr == nil && !ms[0].DecodedTruncated) {
		t.Fatalf("%d msgs err %v body %d", len(ms), ms[0].DecodeErr, len(ms[0].Body))
	}
}

func benchStream(n int) []byte {
	var b strings.Builder
	body := `{"model":"claude-sonnet-4-5","max_tokens":8192,"stream":true,"messages":[{"role":"user","content":"` + strings.Repeat("please refactor this function ", 250) + `"}]}`
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "POST /v1/messages?beta=true HTTP/1.1\r\nHost: api.anthropic.com\r\nUser-Agent: claude-cli/2.0.0\r\nContent-Type: application/json\r\nAccept: application/json\r\nanthropic-version: 2023-06-01\r\nx-api-key: sk-ant-xxx\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	}
	return []byte(b.String())
}

func BenchmarkRequests(b *testing.B) {
	stream := benchStream(10)
	chunks := splits(stream, 4096)
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	n := 0
	p := NewParser(Request, Config{}, func(*Message) { n++ })
	for b.Loop() {
		for _, c := range chunks {
			p.Feed(c, t0)
		}
	}
	if n == 0 {
		b.Fatal("no messages")
	}
}

func BenchmarkChunkedSSE(b *testing.B) {
	var events strings.Builder
	for i := 0; i < 500; i++ {
		fmt.Fprintf(&events, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"token %d \"}}\n\n", i)
	}
	stream := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(events.String(), 150, "") + "\r\n")
	chunks := splits(stream, 1024)
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	p := NewParser(Response, Config{}, nil)
	for b.Loop() {
		for _, c := range chunks {
			p.Feed(c, t0)
		}
	}
}

func BenchmarkGzipResponse(b *testing.B) {
	payload := []byte(strings.Repeat(`{"type":"message","content":[{"type":"text","text":"hello"}],"usage":{"input_tokens":12}}`, 200))
	stream := response("Content-Type: application/json\r\nContent-Encoding: gzip\r\n", compress(b, "gzip", payload))
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	p := NewParser(Response, Config{}, nil)
	for b.Loop() {
		p.Feed(stream, t0)
	}
}
