package httpstream

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

var t0 = time.Unix(1700000000, 0)

// collect feeds chunks to a fresh parser and returns the messages.
func collect(dir Direction, cfg Config, chunks ...[]byte) ([]*Message, *Parser) {
	var out []*Message
	p := NewParser(dir, cfg, func(m *Message) { out = append(out, m) })
	for _, c := range chunks {
		p.Feed(c, t0)
	}
	return out, p
}

// splits returns stream cut into pieces of size n.
func splits(stream []byte, n int) [][]byte {
	var out [][]byte
	for len(stream) > 0 {
		k := min(n, len(stream))
		out = append(out, stream[:k])
		stream = stream[k:]
	}
	return out
}

// checkSplitInvariant asserts that every chunking yields the same messages
// as feeding the stream whole.
func checkSplitInvariant(t *testing.T, dir Direction, cfg Config, stream []byte) []*Message {
	t.Helper()
	whole, _ := collect(dir, cfg, stream)
	for n := 1; n <= len(stream); n++ {
		if n > 64 && n%97 != 0 {
			continue // all small sizes, a sample of large ones
		}
		got, _ := collect(dir, cfg, splits(stream, n)...)
		if !reflect.DeepEqual(got, whole) {
			t.Fatalf("chunk size %d: %d messages differ from whole-stream parse (%d)\n got %s\nwant %s", n, len(got), len(whole), dump(got), dump(whole))
		}
	}
	return whole
}

func dump(ms []*Message) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "{%s %s %d body=%q inc=%v}", m.Method, m.Target, m.StatusCode, m.Body, m.Incomplete)
	}
	return b.String()
}

const anthropicReq = "POST /v1/messages HTTP/1.1\r\nHost: api.anthropic.com\r\nContent-Type: application/json\r\n" +
	"x-api-key: sk-ant-xxx\r\nanthropic-version: 2023-06-01\r\nContent-Length: 27\r\n\r\n" + `{"model":"claude","a":[1]}` + "\n"

func TestRequestContentLength(t *testing.T) {
	stream := []byte(anthropicReq + anthropicReq)
	ms := checkSplitInvariant(t, Request, Config{}, stream)
	if len(ms) != 2 {
		t.Fatalf("%d messages", len(ms))
	}
	m := ms[0]
	if m.Method != "POST" || m.Target != "/v1/messages" || m.Proto != "HTTP/1.1" || m.Host() != "api.anthropic.com" ||
		m.Header.Get("X-Api-Key") != "sk-ant-xxx" || string(m.Body) != `{"model":"claude","a":[1]}`+"\n" || m.WireBodyLen != 27 ||
		m.Incomplete || m.Chunked || m.SSE || m.Direction != Request {
		t.Errorf("unexpected %+v", m)
	}
}

func TestRequestWithoutBody(t *testing.T) {
	stream := []byte("\r\nGET /v1/models?limit=5 HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.0\nHost: y\n\n")
	ms := checkSplitInvariant(t, Request, Config{}, stream)
	if len(ms) != 2 || ms[0].Path() != "/v1/models" || ms[0].Body != nil || ms[1].Target != "/b" || ms[1].Host() != "y" || ms[1].Proto != "HTTP/1.0" {
		t.Fatalf("%s", dump(ms))
	}
}

func chunked(body string, size int, ext string) string {
	var b strings.Builder
	for len(body) > 0 {
		k := min(size, len(body))
		fmt.Fprintf(&b, "%x%s\r\n%s\r\n", k, ext, body[:k])
		body = body[k:]
	}
	b.WriteString("0\r\n")
	return b.String()
}

const sseBody = "event: message_start\ndata: {\"type\":\"message_start\"}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"

func TestChunkedSSEResponse(t *testing.T) {
	resp := "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n" +
		chunked(sseBody, 17, ";ext=1") + "X-Trailer: t\r\n\r\n" +
		"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno"
	ms := checkSplitInvariant(t, Response, Config{}, []byte(resp))
	if len(ms) != 2 {
		t.Fatalf("%d messages", len(ms))
	}
	if m := ms[0]; m.StatusCode != 200 || m.Reason != "OK" || !m.SSE || !m.Chunked || string(m.Body) != sseBody || m.WireBodyLen != int64(len(sseBody)) {
		t.Errorf("sse: %+v", m)
	}
	if m := ms[1]; m.StatusCode != 404 || string(m.Body) != "no" || m.SSE {
		t.Errorf("404: %+v", m)
	}
}

func compress(t testing.TB, coding string, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	var w interface {
		Write([]byte) (int, error)
		Close() error
	}
	switch coding {
	case "gzip":
		w = gzip.NewWriter(&b)
	case "deflate":
		w = zlib.NewWriter(&b)
	case "rawdeflate":
		w, _ = flate.NewWriter(&b, flate.BestSpeed)
	case "br":
		w = brotli.NewWriter(&b)
	case "zstd":
		zw, err := zstd.NewWriter(&b)
		if err != nil {
			t.Fatal(err)
		}
		w = zw
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func response(headers string, body []byte) []byte {
	return append([]byte(fmt.Sprintf("HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\n\r\n", headers, len(body))), body...)
}

func TestContentEncoding(t *testing.T) {
	payload := []byte(strings.Repeat(`{"type":"message","usage":{"input_tokens":12}}`, 50))
	for _, c := range []struct{ coding, header string }{
		{"gzip", "gzip"}, {"gzip", "x-gzip"}, {"deflate", "deflate"}, {"rawdeflate", "deflate"}, {"br", "br"}, {"zstd", "zstd"},
	} {
		t.Run(c.coding+"/"+c.header, func(t *testing.T) {
			enc := compress(t, c.coding, payload)
			ms, _ := collect(Response, Config{}, response("Content-Encoding: "+c.header+"\r\n", enc))
			if len(ms) != 1 || !bytes.Equal(ms[0].Body, payload) || !ms[0].Decoded || ms[0].DecodeErr != nil || ms[0].WireBodyLen != int64(len(enc)) {
				t.Fatalf("%+v", ms)
			}
		})
	}
	t.Run("stacked and chunked transfer coding", func(t *testing.T) {
		enc := compress(t, "br", compress(t, "gzip", payload))
		resp := "HTTP/1.1 200 OK\r\nContent-Encoding: gzip, br\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(string(enc), 100, "") + "\r\n"
		ms := checkSplitInvariant(t, Response, Config{}, []byte(resp))
		if len(ms) != 1 || !bytes.Equal(ms[0].Body, payload) || !reflect.DeepEqual(ms[0].ContentEncoding, []string{"gzip", "br"}) {
			t.Fatalf("%+v", ms)
		}
	})
	t.Run("unsupported", func(t *testing.T) {
		ms, _ := collect(Response, Config{}, response("Content-Encoding: compress\r\n", []byte("raw")))
		if len(ms) != 1 || string(ms[0].Body) != "raw" || ms[0].Decoded || !errors.Is(ms[0].DecodeErr, ErrUnsupportedEncoding) {
			t.Fatalf("%+v", ms[0])
		}
	})
	t.Run("corrupt", func(t *testing.T) {
		ms, _ := collect(Response, Config{}, response("Content-Encoding: gzip\r\n", []byte("not gzip at all")))
		if len(ms) != 1 || ms[0].DecodeErr == nil || string(ms[0].Body) != "not gzip at all" || ms[0].Decoded {
			t.Fatalf("%+v", ms[0])
		}
	})
	t.Run("cut by the capture keeps the decoded start", func(t *testing.T) {
		big := bytes.Repeat([]byte("0123456789abcdef"), 1<<14)
		enc := compress(t, "gzip", big)
		full := response("Content-Encoding: gzip\r\n", enc)
		cut := len(full) - len(enc)/2
		var ms []*Message
		p := NewParser(Response, Config{}, func(m *Message) { ms = append(ms, m) })
		p.Feed(full[:cut], t0)
		p.Skip(int64(len(full) - cut))
		if len(ms) != 1 || !ms[0].Incomplete || ms[0].DecodeErr == nil || len(ms[0].Body) == 0 || !bytes.HasPrefix(big, ms[0].Body) || ms[0].WireBodyLen != int64(len(enc)) {
			t.Fatalf("%d msgs, body %d bytes, err %v", len(ms), len(ms[0].Body), ms[0].DecodeErr)
		}
	})
}

func TestDecompressionBomb(t *testing.T) {
	zeros := make([]byte, 64<<20)
	for _, coding := range []string{"gzip", "br", "zstd", "deflate"} {
		t.Run(coding, func(t *testing.T) {
			enc := compress(t, coding, zeros)
			cfg := Config{MaxDecodedBytes: 1 << 20}
			ms, _ := collect(Response, cfg, response("Content-Encoding: "+coding+"\r\n", enc))
			if len(ms) != 1 || len(ms[0].Body) != 1<<20 || !ms[0].DecodedTruncated {
				t.Fatalf("%d compressed -> body %d truncated %v err %v", len(enc), len(ms[0].Body), ms[0].DecodedTruncated, ms[0].DecodeErr)
			}
		})
	}
}

func TestBodyCap(t *testing.T) {
	body := strings.Repeat("x", 1000)
	req := fmt.Sprintf("POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n%sGET /next HTTP/1.1\r\n\r\n", len(body), body)
	ms := checkSplitInvariant(t, Request, Config{MaxBodyBytes: 100}, []byte(req))
	if len(ms) != 2 || len(ms[0].Body) != 100 || !ms[0].BodyTruncated || ms[0].WireBodyLen != 1000 || ms[1].Target != "/next" {
		t.Fatalf("%s", dump(ms))
	}
	chunkedReq := "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(body, 300, "") + "\r\n"
	ms = checkSplitInvariant(t, Request, Config{MaxBodyBytes: 100}, []byte(chunkedReq))
	if len(ms) != 1 || len(ms[0].Body) != 100 || !ms[0].BodyTruncated || ms[0].WireBodyLen != 1000 {
		t.Fatalf("%s", dump(ms))
	}
}

func TestHeaderLimits(t *testing.T) {
	var h strings.Builder
	for i := 0; i < 10; i++ {
		fmt.Fprintf(&h, "X-H%d: %d\r\n", i, i)
	}
	req := "GET / HTTP/1.1\r\n" + h.String() + "\r\n"
	ms, _ := collect(Request, Config{MaxHeaders: 4}, []byte(req))
	if len(ms) != 1 || !ms[0].HeadersTruncated || len(ms[0].Header) != 4 || ms[0].Header.Get("X-H3") != "3" {
		t.Fatalf("%+v", ms)
	}

	// A header block over the byte cap is garbage; the parser recovers at
	// the next request line.
	long := "GET /a HTTP/1.1\r\nX-Long: " + strings.Repeat("a", 300) + "\r\n\r\nGET /b HTTP/1.1\r\n\r\n"
	ms = checkSplitInvariant(t, Request, Config{MaxHeaderBytes: 200}, []byte(long))
	if len(ms) != 1 || ms[0].Target != "/b" {
		t.Fatalf("%s", dump(ms))
	}
	_, p := collect(Request, Config{MaxHeaderBytes: 200}, []byte(long))
	if p.Malformed() != 1 {
		t.Errorf("malformed = %d", p.Malformed())
	}
}

func TestHeaderParsing(t *testing.T) {
	req := "GET / HTTP/1.1\r\nhost: a\r\nX-Fold: one\r\n  two\r\nbad line\r\nX-Multi: 1\r\nx-multi: 2\r\n: empty\r\nSp ace: x\r\n\r\n"
	ms, _ := collect(Request, Config{}, []byte(req))
	want := http.Header{"Host": {"a"}, "X-Fold": {"one two"}, "X-Multi": {"1", "2"}}
	if len(ms) != 1 || !reflect.DeepEqual(ms[0].Header, want) {
		t.Fatalf("%#v", ms[0].Header)
	}
}

func TestMalformedFraming(t *testing.T) {
	tests := []struct {
		name    string
		dir     Direction
		stream  string
		targets []string // targets or status codes of the messages expected
	}{
		{"garbage then request", Request, "\x16\x03\x01 binary junk\r\nmore\nGET /ok HTTP/1.1\r\n\r\n", []string{"/ok"}},
		{"bad request line", Request, "HELLO\r\nGET /ok HTTP/1.1\r\n\r\n", []string{"/ok"}},
		{"conflicting content-length", Request, "POST /a HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcGET /b HTTP/1.1\r\n\r\n", nil},
		{"agreeing content-length list", Request, "POST /a HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\nabc", []string{"/a"}},
		{"negative content-length", Request, "POST /a HTTP/1.1\r\nContent-Length: -1\r\n\r\n\r\nGET /b HTTP/1.1\r\n\r\n", []string{"/b"}},
		{"transfer-coded request not chunked", Request, "POST /a HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nxx\r\nGET /b HTTP/1.1\r\n\r\n", []string{"/b"}},
		{"bad chunk size emits incomplete", Response, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", []string{"200!", "201"}},
		{"missing chunk CRLF", Response, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\nHTTP/1.1 202 Accepted\r\n\r\n", []string{"200!"}},
		{"bad status line", Response, "HTTP/1.1 2000 OK\r\nHTTP/1.1 204 No Content\r\n\r\n", []string{"204"}},
		{"huge chunk size", Response, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", []string{"200!"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms := checkSplitInvariant(t, tt.dir, Config{}, []byte(tt.stream))
			var got []string
			for _, m := range ms {
				s := m.Target
				if tt.dir == Response {
					s = fmt.Sprint(m.StatusCode)
				}
				if m.Incomplete {
					s += "!"
				}
				got = append(got, s)
			}
			if !reflect.DeepEqual(got, tt.targets) {
				t.Errorf("got %q want %q", got, tt.targets)
			}
		})
	}
}

func TestUntilClose(t *testing.T) {
	var ms []*Message
	p := NewParser(Response, Config{}, func(m *Message) { ms = append(ms, m) })
	p.Feed([]byte("HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"a\":"), t0)
	p.Feed([]byte("1}"), t0.Add(time.Second))
	if len(ms) != 0 {
		t.Fatal("emitted before close")
	}
	p.Close(t0.Add(2 * time.Second))
	if len(ms) != 1 || string(ms[0].Body) != `{"a":1}` || ms[0].Incomplete || !ms[0].End.Equal(t0.Add(2*time.Second)) || !ms[0].Begin.Equal(t0) {
		t.Fatalf("%+v", ms)
	}
}

func TestSkipStaysInStep(t *testing.T) {
	var ms []*Message
	p := NewParser(Request, Config{}, func(m *Message) { ms = append(ms, m) })
	body := strings.Repeat("b", 100)
	full := "POST /a HTTP/1.1\r\nContent-Length: 100\r\n\r\n" + body
	p.Feed([]byte(full[:len(full)-60]), t0) // 40 body bytes seen
	p.Skip(50)                              // 50 lost
	p.Feed([]byte(body[:10]+"GET /b HTTP/1.1\r\n\r\n"), t0)
	if len(ms) != 2 || !ms[0].Incomplete || len(ms[0].Body) != 50 || ms[0].WireBodyLen != 100 || ms[1].Target != "/b" || ms[1].Incomplete {
		t.Fatalf("%s", dump(ms))
	}

	// Chunked: a loss inside one chunk keeps the framing.
	ms = nil
	stream := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(strings.Repeat("c", 64), 32, "") + "\r\n"
	r := NewParser(Response, Config{}, func(m *Message) { ms = append(ms, m) })
	k := strings.Index(stream, "cccc") + 4
	r.Feed([]byte(stream[:k]), t0)
	r.Skip(20)
	r.Feed([]byte(stream[k+20:]), t0)
	if len(ms) != 1 || !ms[0].Incomplete || len(ms[0].Body) != 44 || ms[0].WireBodyLen != 64 {
		t.Fatalf("%s wire=%d", dump(ms), ms[0].WireBodyLen)
	}
}

func TestSkipLosesPlace(t *testing.T) {
	var ms []*Message
	p := NewParser(Request, Config{}, func(m *Message) { ms = append(ms, m) })
	p.Feed([]byte("POST /a HTTP/1.1\r\nContent-Length: 10\r\n\r\n12345"), t0)
	p.Skip(500) // more than the body: the next request's start was lost too
	if len(ms) != 1 || !ms[0].Incomplete || string(ms[0].Body) != "12345" {
		t.Fatalf("%s", dump(ms))
	}
	// The next captured write begins a request.
	p.Feed([]byte("GET /c HTTP/1.1\r\n\r\n"), t0)
	if len(ms) != 2 || ms[1].Target != "/c" || p.Resyncs() != 1 {
		t.Fatalf("%s resyncs %d", dump(ms), p.Resyncs())
	}
	// Reset inside headers drops the partial message; a start line split
	// across the next two chunks is still found.
	p.Feed([]byte("GET /lost HTTP/1.1\r\nHost"), t0)
	p.Reset()
	p.Feed([]byte("PO"), t0)
	p.Feed([]byte("ST /d HTTP/1.1\r\nContent-Length: 1\r\n\r\nx"), t0)
	if len(ms) != 3 || ms[2].Target != "/d" || string(ms[2].Body) != "x" {
		t.Fatalf("%s", dump(ms))
	}
	// A gap landing mid-body: the rest of the body is skipped until a
	// line that starts a request.
	p.Reset()
	p.Feed([]byte("tail of a body\r\n{\"json\": 1}\nDELETE /e HTTP/1.1\r\n\r\n"), t0)
	if len(ms) != 4 || ms[3].Method != "DELETE" {
		t.Fatalf("%s", dump(ms))
	}
}

func TestCloseIncomplete(t *testing.T) {
	ms, p := collect(Response, Config{}, []byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n"+chunked(sseBody, 10, "")[:40]))
	p.Close(t0)
	if len(ms) != 0 {
		t.Fatal("emitted early")
	}
	var got []*Message
	p2 := NewParser(Response, Config{}, func(m *Message) { got = append(got, m) })
	p2.Feed([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n"+chunked(sseBody, 10, "")[:40]), t0)
	p2.Close(t0)
	if len(got) != 1 || !got[0].Incomplete || !got[0].SSE || len(got[0].Body) == 0 {
		t.Fatalf("%s", dump(got))
	}
}

func TestConnPairing(t *testing.T) {
	var reqs, resps []*Message
	c := NewConn(Config{}, func(m *Message) { reqs = append(reqs, m) }, func(m *Message) { resps = append(resps, m) })
	c.Request().Feed([]byte("HEAD /h HTTP/1.1\r\nHost: a\r\n\r\nPOST /p HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"), t0)
	c.Response().Feed([]byte("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"), t0) // HEAD: no body
	c.Response().Feed([]byte("HTTP/1.1 100 Continue\r\n\r\n"), t0)
	c.Request().Feed([]byte("{}"), t0)
	c.Response().Feed([]byte("HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"), t0)
	if len(reqs) != 2 || len(resps) != 2 {
		t.Fatalf("reqs %d resps %d", len(reqs), len(resps))
	}
	if resps[0].Request != reqs[0] || resps[0].Body != nil || resps[1].Request != reqs[1] || string(resps[1].Body) != "ok" || string(reqs[1].Body) != "{}" {
		t.Fatalf("pairing: %s / %s", dump(reqs), dump(resps))
	}
	// A response without a request is still reported.
	c.Response().Feed([]byte("HTTP/1.1 204 No Content\r\n\r\n"), t0)
	if len(resps) != 3 || resps[2].Request != nil || c.Unmatched() != 1 {
		t.Fatalf("unmatched: %d %d", len(resps), c.Unmatched())
	}
}

func TestConnResponseLost(t *testing.T) {
	var resps []*Message
	c := NewConn(Config{}, nil, func(m *Message) { resps = append(resps, m) })
	c.Request().Feed([]byte("GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n"), t0)
	c.Response().Reset() // responses 1 and 2 were lost entirely
	c.Response().Feed([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), t0)
	if len(resps) != 1 || resps[0].Request == nil || resps[0].Request.Target != "/3" {
		t.Fatalf("%+v", resps)
	}
}

func TestPassthrough(t *testing.T) {
	t.Run("http2 preface", func(t *testing.T) {
		var n int
		c := NewConn(Config{}, func(*Message) { n++ }, func(*Message) { n++ })
		c.Request().Feed([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04\x00\x00\x00\x00\x00GET / HTTP/1.1\r\n\r\n"), t0)
		c.Response().Feed([]byte("HTTP/1.1 200 OK\r\n\r\n"), t0)
		if !c.Request().HTTP2() || !c.Request().Passthrough() || !c.Response().Passthrough() || n != 0 {
			t.Fatalf("h2 %v pass %v n %d", c.Request().HTTP2(), c.Request().Passthrough(), n)
		}
	})
	t.Run("upgrade", func(t *testing.T) {
		var resps []*Message
		c := NewConn(Config{}, nil, func(m *Message) { resps = append(resps, m) })
		c.Request().Feed([]byte("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"), t0)
		c.Response().Feed([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello"), t0)
		c.Request().Feed([]byte("GET /not-http HTTP/1.1\r\n\r\n"), t0)
		if len(resps) != 1 || resps[0].StatusCode != 101 || !c.Request().Passthrough() {
			t.Fatalf("%s", dump(resps))
		}
	})
	t.Run("connect", func(t *testing.T) {
		var resps []*Message
		c := NewConn(Config{}, nil, func(m *Message) { resps = append(resps, m) })
		c.Request().Feed([]byte("CONNECT api.anthropic.com:443 HTTP/1.1\r\nHost: api.anthropic.com:443\r\n\r\n"), t0)
		c.Response().Feed([]byte("HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03tls"), t0)
		if len(resps) != 1 || resps[0].Body != nil || !c.Response().Passthrough() {
			t.Fatalf("%s", dump(resps))
		}
	})
}

func TestConnPendingBounded(t *testing.T) {
	c := NewConn(Config{MaxPending: 3}, nil, nil)
	for i := 0; i < 10; i++ {
		c.Request().Feed([]byte("GET / HTTP/1.1\r\n\r\n"), t0)
	}
	if len(c.pending) != 3 || c.Unmatched() != 7 {
		t.Fatalf("pending %d unmatched %d", len(c.pending), c.Unmatched())
	}
}
