package httpstream

import (
	"bytes"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"
)

type state uint8

const (
	stStart       state = iota // between messages
	stHeaders                  // reading the start line and header block
	stBody                     // Content-Length body
	stChunkSize                // reading a chunk-size line
	stChunkData                // inside a chunk
	stChunkCR                  // expecting the CRLF after chunk data
	stChunkLF                  // got its CR, expecting LF
	stTrailers                 // reading trailer fields after the last chunk
	stUntilClose               // response body delimited by connection close
	stResync                   // lost our place: looking for a start line
	stPassthrough              // not HTTP/1 any more (upgrade, CONNECT, HTTP/2)
)

// Parser parses one direction of one connection. Create it with NewParser,
// or use the pair of a Conn. It is not safe for concurrent use.
type Parser struct {
	dir  Direction
	cfg  Config
	emit func(*Message)
	conn *Conn

	st        state
	msg       *Message
	line      []byte // header block, trailer block or chunk-size line so far
	lineStart int    // start in line of the line being read
	lines     int
	remaining int64 // bytes left in the Content-Length body or the chunk
	body      []byte
	codings   []string // transfer codings besides chunked, as applied
	ts        time.Time

	// Resync: whether the next byte starts a line, and a possible start
	// line cut by the end of the previous chunk.
	atLineStart bool
	carry       []byte

	http2     bool
	malformed uint64
	resyncs   uint64
}

// NewParser returns a parser for one direction of a connection, calling
// emit for every complete message. A standalone response parser does not
// know the request methods, so it assumes no response answers HEAD or
// CONNECT; a Conn knows.
func NewParser(dir Direction, cfg Config, emit func(*Message)) *Parser {
	p := &Parser{}
	p.init(dir, cfg, emit)
	return p
}

func (p *Parser) init(dir Direction, cfg Config, emit func(*Message)) {
	p.dir = dir
	p.cfg = cfg.withDefaults()
	p.emit = emit
}

// HTTP2 reports whether the connection turned out to speak HTTP/2 (its
// client preface was seen); such a connection is not parsed further.
func (p *Parser) HTTP2() bool { return p.http2 }

// Passthrough reports whether the parser stopped interpreting bytes: after
// a protocol switch (101), a CONNECT tunnel, or the HTTP/2 preface.
func (p *Parser) Passthrough() bool { return p.st == stPassthrough }

// Malformed counts start lines and framing that did not parse.
func (p *Parser) Malformed() uint64 { return p.malformed }

// Resyncs counts the times the parser lost its place in the stream.
func (p *Parser) Resyncs() uint64 { return p.resyncs }

// Feed consumes the next chunk of the stream, captured at ts, and emits the
// messages it completes. b is not retained.
func (p *Parser) Feed(b []byte, ts time.Time) {
	p.ts = ts
	if p.st == stResync && len(p.carry) > 0 {
		b = p.resumeCarry(b)
	}
	for len(b) > 0 {
		switch p.st {
		case stStart:
			for len(b) > 0 && (b[0] == '\r' || b[0] == '\n') {
				b = b[1:]
			}
			if len(b) > 0 {
				p.begin()
			}
		case stHeaders:
			b = p.headers(b)
		case stBody:
			k := int(min(p.remaining, int64(len(b))))
			p.appendBody(b[:k])
			p.remaining -= int64(k)
			b = b[k:]
			if p.remaining == 0 {
				p.finish()
			}
		case stChunkSize:
			b = p.chunkSize(b)
		case stChunkData:
			k := int(min(p.remaining, int64(len(b))))
			p.appendBody(b[:k])
			p.remaining -= int64(k)
			b = b[k:]
			if p.remaining == 0 {
				p.st = stChunkCR
			}
		case stChunkCR:
			switch b[0] {
			case '\r':
				p.st = stChunkLF
			case '\n':
				p.st = stChunkSize
			default:
				p.lose(true)
				continue
			}
			b = b[1:]
		case stChunkLF:
			if b[0] != '\n' {
				p.lose(true)
				continue
			}
			b = b[1:]
			p.st = stChunkSize
		case stTrailers:
			b = p.trailers(b)
		case stUntilClose:
			p.appendBody(b)
			b = nil
		case stResync:
			b = p.resync(b)
		case stPassthrough:
			return
		}
	}
}

// Skip tells the parser that the capture lost n bytes at this point of the
// stream (the kernel caps the bytes copied per call). Inside a body or a
// chunk that is at least n bytes long, the parser stays in step and only
// marks the message Incomplete; elsewhere it emits what it has of the
// current message as Incomplete and looks for the next start line.
func (p *Parser) Skip(n int64) {
	if n <= 0 {
		return
	}
	switch p.st {
	case stBody, stChunkData:
		if n <= p.remaining {
			p.msg.Incomplete = true
			p.msg.WireBodyLen += n
			p.remaining -= n
			if p.remaining == 0 {
				if p.st == stBody {
					p.finish()
				} else {
					p.st = stChunkCR
				}
			}
			return
		}
	case stUntilClose:
		p.msg.Incomplete = true
		p.msg.WireBodyLen += n
		return
	case stStart:
		// Whatever followed the last message is gone; the next chunk may
		// start anywhere.
	case stPassthrough:
		return
	}
	p.lose(false)
}

// Reset tells the parser that an unknown number of bytes was lost. The
// current message, if its headers were complete, is emitted Incomplete;
// then the parser looks for the next start line.
func (p *Parser) Reset() {
	if p.st == stPassthrough {
		return
	}
	p.lose(false)
}

// Close ends the stream: a body delimited by the connection's close is
// complete; any other message in progress is emitted Incomplete.
func (p *Parser) Close(ts time.Time) {
	p.ts = ts
	switch p.st {
	case stUntilClose:
		p.finish()
	case stBody, stChunkSize, stChunkData, stChunkCR, stChunkLF, stTrailers:
		p.msg.Incomplete = true
		p.finish()
	}
	p.msg = nil
	p.carry = nil
	p.line = p.line[:0]
	if p.st != stPassthrough {
		p.st = stStart
	}
}

func (p *Parser) begin() {
	p.msg = &Message{Direction: p.dir, Begin: p.ts}
	p.line = p.line[:0]
	p.lineStart = 0
	p.lines = 0
	p.st = stHeaders
}

// lose abandons the current position. With malformed set, the bytes did
// not parse (as opposed to being lost by the capture).
func (p *Parser) lose(malformed bool) {
	if malformed {
		p.malformed++
	}
	p.resyncs++
	if p.msg != nil && p.st != stHeaders && p.st != stStart {
		p.msg.Incomplete = true
		p.finish()
	}
	p.msg = nil
	p.line = p.line[:0]
	p.carry = p.carry[:0]
	p.body = nil
	p.st = stResync
	// After a capture gap the next chunk usually starts a new write, so
	// its first byte may begin a message; after garbage, only a new line
	// may.
	p.atLineStart = !malformed
	if p.conn != nil && p.dir == Response {
		p.conn.responseLost()
	}
}

// headers accumulates the header block line by line.
func (p *Parser) headers(b []byte) []byte {
	for len(b) > 0 {
		k := bytes.IndexByte(b, '\n')
		if k < 0 {
			p.appendLine(b)
			return nil
		}
		if !p.appendLine(b[:k+1]) {
			p.atLineStart = true
			return b[k+1:]
		}
		b = b[k+1:]
		ln := trimEOL(p.line[p.lineStart:])
		if p.lines == 0 {
			if !p.startLine(ln) {
				p.lose(true)
				p.atLineStart = true
				return b
			}
		} else if len(ln) == 0 {
			p.headersDone()
			return b
		}
		p.lines++
		p.lineStart = len(p.line)
	}
	return b
}

// appendLine adds header bytes, enforcing MaxHeaderBytes.
func (p *Parser) appendLine(b []byte) bool {
	if len(p.line)+len(b) > p.cfg.MaxHeaderBytes {
		p.lose(true)
		return false
	}
	p.line = append(p.line, b...)
	return true
}

func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}

// startLine parses the request or status line into p.msg.
func (p *Parser) startLine(ln []byte) bool {
	m := p.msg
	if p.dir == Request {
		sp1 := bytes.IndexByte(ln, ' ')
		if sp1 <= 0 {
			return false
		}
		rest := ln[sp1+1:]
		sp2 := bytes.LastIndexByte(rest, ' ')
		if sp2 <= 0 {
			return false
		}
		method, target, proto := ln[:sp1], rest[:sp2], rest[sp2+1:]
		if !isToken(method) || !validProto(proto) {
			return false
		}
		m.Method, m.Target, m.Proto = string(method), string(target), string(proto)
		return true
	}
	if len(ln) < 12 || !validProto(ln[:8]) || ln[8] != ' ' {
		return false
	}
	code := ln[9:12]
	if code[0] < '1' || code[0] > '5' || !isDigit(code[1]) || !isDigit(code[2]) || (len(ln) > 12 && ln[12] != ' ') {
		return false
	}
	m.Proto = string(ln[:8])
	m.StatusCode = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	if len(ln) > 13 {
		m.Reason = string(ln[13:])
	}
	return true
}

func validProto(b []byte) bool {
	return len(b) == 8 && string(b[:5]) == "HTTP/" && isDigit(b[5]) && b[6] == '.' && isDigit(b[7])
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isToken: RFC 9110 tchar+.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !isTchar(c) {
			return false
		}
	}
	return true
}

func isTchar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', isDigit(c):
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// parseFields parses header field lines (the block after the start line).
// Invalid lines are skipped, as lenient clients do; obsolete line folding
// joins a continuation to the previous value.
func parseFields(block []byte, maxFields int, h http.Header) (truncated bool) {
	var lastKey string
	n := 0
	for len(block) > 0 {
		var ln []byte
		if k := bytes.IndexByte(block, '\n'); k >= 0 {
			ln, block = block[:k+1], block[k+1:]
		} else {
			ln, block = block, nil
		}
		ln = trimEOL(ln)
		if len(ln) == 0 {
			continue
		}
		if ln[0] == ' ' || ln[0] == '\t' {
			if lastKey != "" {
				vs := h[lastKey]
				vs[len(vs)-1] += " " + string(bytes.TrimSpace(ln))
			}
			continue
		}
		c := bytes.IndexByte(ln, ':')
		if c <= 0 || !isToken(ln[:c]) {
			lastKey = ""
			continue
		}
		if n >= maxFields {
			truncated = true
			lastKey = ""
			continue
		}
		n++
		key := textproto.CanonicalMIMEHeaderKey(string(ln[:c]))
		h[key] = append(h[key], string(bytes.Trim(ln[c+1:], " \t")))
		lastKey = key
	}
	return truncated
}

// headersDone decides how the body is framed (RFC 9112 §6.3).
func (p *Parser) headersDone() {
	m := p.msg
	block := p.line
	if k := bytes.IndexByte(block, '\n'); k >= 0 {
		block = block[k+1:]
	}
	m.Header = make(http.Header)
	m.HeadersTruncated = parseFields(block, p.cfg.MaxHeaders, m.Header)
	p.line = p.line[:0]

	if p.dir == Request && m.Method == "PRI" && m.Target == "*" && m.Proto == "HTTP/2.0" {
		p.http2 = true
		p.msg = nil
		p.st = stPassthrough
		if p.conn != nil {
			p.conn.passthrough()
		}
		return
	}
	if ct := m.Header.Get("Content-Type"); ct != "" {
		mt, _, _ := strings.Cut(ct, ";")
		m.SSE = strings.EqualFold(strings.TrimSpace(mt), "text/event-stream")
	}
	m.ContentEncoding = codingList(m.Header.Values("Content-Encoding"))

	var req *Message
	if p.dir == Response {
		if m.StatusCode >= 100 && m.StatusCode < 200 && m.StatusCode != 101 {
			// Interim response (100 Continue, 103 Early Hints): the
			// final one follows; nothing to report.
			p.msg = nil
			p.st = stStart
			return
		}
		if p.conn != nil {
			req = p.conn.nextRequest()
			m.Request = req
		}
		switch {
		case m.StatusCode == 101,
			req != nil && req.Method == "CONNECT" && m.StatusCode/100 == 2:
			p.finish()
			p.st = stPassthrough
			if p.conn != nil {
				p.conn.passthrough()
			}
			return
		case m.StatusCode == 204, m.StatusCode == 304, req != nil && req.Method == "HEAD":
			p.finish()
			return
		}
	} else if p.conn != nil {
		p.conn.pushRequest(m)
	}

	if te := codingList(m.Header.Values("Transfer-Encoding")); len(te) > 0 {
		if te[len(te)-1] == "chunked" {
			m.Chunked = true
			p.codings = te[:len(te)-1]
			p.st = stChunkSize
			return
		}
		if p.dir == Request {
			// A request body must be chunked when transfer-coded.
			p.lose(true)
			return
		}
		p.codings = te
		p.st = stUntilClose
		return
	}
	if cls := m.Header.Values("Content-Length"); len(cls) > 0 {
		n, ok := contentLength(cls)
		if !ok {
			p.lose(true)
			return
		}
		if n == 0 {
			p.finish()
			return
		}
		p.remaining = n
		p.body = make([]byte, 0, min(n, int64(p.cfg.MaxBodyBytes), 64<<10))
		p.st = stBody
		return
	}
	if p.dir == Request {
		p.finish()
		return
	}
	p.st = stUntilClose
}

// codingList splits coding header values into lower-case names, dropping
// identity.
func codingList(values []string) []string {
	var out []string
	for _, v := range values {
		for _, c := range strings.Split(v, ",") {
			c = strings.ToLower(strings.TrimSpace(c))
			if c != "" && c != "identity" {
				out = append(out, c)
			}
		}
	}
	return out
}

// contentLength accepts repeated or listed values only when they agree.
func contentLength(values []string) (int64, bool) {
	n := int64(-1)
	for _, v := range values {
		for _, s := range strings.Split(v, ",") {
			s = strings.TrimSpace(s)
			if s == "" || len(s) > 18 {
				return 0, false
			}
			for i := 0; i < len(s); i++ {
				if !isDigit(s[i]) {
					return 0, false
				}
			}
			x, _ := strconv.ParseInt(s, 10, 64)
			if n >= 0 && x != n {
				return 0, false
			}
			n = x
		}
	}
	return n, n >= 0
}

func (p *Parser) chunkSize(b []byte) []byte {
	k := bytes.IndexByte(b, '\n')
	if k < 0 {
		if len(p.line)+len(b) > maxChunkLine {
			p.lose(true)
			return nil
		}
		p.line = append(p.line, b...)
		return nil
	}
	if len(p.line)+k > maxChunkLine {
		p.lose(true)
		p.atLineStart = true
		return b[k+1:]
	}
	ln := b[:k+1]
	if len(p.line) > 0 {
		p.line = append(p.line, ln...)
		ln = p.line
	}
	b = b[k+1:]
	size, ok := parseChunkSize(trimEOL(ln))
	p.line = p.line[:0]
	if !ok {
		p.lose(true)
		p.atLineStart = true
		return b
	}
	if size == 0 {
		p.st = stTrailers
		p.lineStart = 0
		return b
	}
	p.remaining = size
	p.st = stChunkData
	return b
}

// parseChunkSize reads the hex size before any chunk extension.
func parseChunkSize(ln []byte) (int64, bool) {
	if k := bytes.IndexByte(ln, ';'); k >= 0 {
		ln = ln[:k]
	}
	ln = bytes.TrimRight(ln, " \t")
	if len(ln) == 0 || len(ln) > 15 { // 15 hex digits: < 2^60 bytes
		return 0, false
	}
	var n int64
	for _, c := range ln {
		var d byte
		switch {
		case isDigit(c):
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		n = n<<4 | int64(d)
	}
	return n, true
}

// trailers skips the trailer section up to its empty line.
func (p *Parser) trailers(b []byte) []byte {
	for len(b) > 0 {
		k := bytes.IndexByte(b, '\n')
		if k < 0 {
			if len(p.line)+len(b) > p.cfg.MaxHeaderBytes {
				p.lose(true)
				return nil
			}
			p.line = append(p.line, b...)
			return nil
		}
		if len(p.line)+k+1 > p.cfg.MaxHeaderBytes {
			p.lose(true)
			p.atLineStart = true
			return b[k+1:]
		}
		p.line = append(p.line, b[:k+1]...)
		b = b[k+1:]
		if len(trimEOL(p.line[p.lineStart:])) == 0 {
			p.line = p.line[:0]
			p.finish()
			return b
		}
		p.lineStart = len(p.line)
	}
	return b
}

func (p *Parser) appendBody(b []byte) {
	m := p.msg
	m.WireBodyLen += int64(len(b))
	room := p.cfg.MaxBodyBytes - len(p.body)
	if len(b) > room {
		b = b[:max(room, 0)]
		m.BodyTruncated = true
	}
	p.body = append(p.body, b...)
}

// finish decodes the body and emits the message.
func (p *Parser) finish() {
	m := p.msg
	m.End = p.ts
	body := p.body
	p.body = nil
	codings := slices.Concat(p.codings, m.ContentEncoding)
	p.codings = nil
	if len(codings) > 0 && len(body) > 0 {
		out, truncated, err := decode(codings, body, p.cfg.MaxDecodedBytes)
		if err != nil {
			m.DecodeErr = err
		}
		if out != nil {
			body = out
			m.Decoded = true
		}
		m.DecodedTruncated = truncated
	}
	if len(body) > 0 {
		m.Body = body
	}
	p.msg = nil
	p.st = stStart
	if p.emit != nil {
		p.emit(m)
	}
}

// Methods that may start a request line after a resync.
var methods = [...]string{"GET ", "POST ", "PUT ", "DELETE ", "PATCH ", "HEAD ", "OPTIONS ", "CONNECT ", "TRACE "}

// startMatch tells whether data begins a start line of the parser's
// direction: yes, no, or undecided for want of bytes.
func (p *Parser) startMatch(data []byte) (match, more bool) {
	if p.dir == Response {
		return prefixMatch(data, "HTTP/1.")
	}
	for _, m := range methods {
		if ok, need := prefixMatch(data, m); ok || need {
			return ok, need
		}
	}
	return false, false
}

func prefixMatch(data []byte, pre string) (match, more bool) {
	if len(data) >= len(pre) {
		return string(data[:len(pre)]) == pre, false
	}
	return false, string(data) == pre[:len(data)]
}

// resync looks for a start line at line beginnings.
func (p *Parser) resync(b []byte) []byte {
	pos := 0
	if !p.atLineStart {
		k := bytes.IndexByte(b, '\n')
		if k < 0 {
			return nil
		}
		pos = k + 1
	}
	p.atLineStart = false
	for pos < len(b) {
		ok, more := p.startMatch(b[pos:])
		if ok {
			p.st = stStart
			return b[pos:]
		}
		if more {
			p.carry = append(p.carry[:0], b[pos:]...)
			return nil
		}
		k := bytes.IndexByte(b[pos:], '\n')
		if k < 0 {
			return nil
		}
		pos += k + 1
	}
	p.atLineStart = true
	return nil
}

// resumeCarry decides on a start line cut by the previous chunk's end.
func (p *Parser) resumeCarry(b []byte) []byte {
	probe := append(p.carry, b[:min(len(b), 16)]...)
	ok, more := p.startMatch(probe)
	if more {
		p.carry = append(p.carry, b...)
		return nil
	}
	carry := p.carry
	p.carry = nil
	if !ok {
		return b
	}
	p.st = stStart
	p.begin()
	p.line = append(p.line, carry...)
	return b
}
