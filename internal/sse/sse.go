// Package sse parses Server-Sent Events (the text/event-stream format of
// the HTML standard) incrementally: bytes go in as they arrive, split
// anywhere, and complete events come out. LLM APIs stream their responses
// this way.
//
// The parsing follows the standard: lines end with CRLF, LF or CR (a CRLF
// split across two chunks counts once); a leading BOM is skipped; lines
// starting with ':' are comments; "field: value" loses one leading space of
// the value; data lines are joined with "\n"; an empty line dispatches the
// event, unless it has no data; id persists across events and is ignored
// when it contains NUL; retry takes only digits. Unknown fields are
// ignored.
package sse

import (
	"bytes"
	"strconv"
	"time"
)

// Event is one dispatched event.
type Event struct {
	// Type is the event field, "message" when the event had none.
	Type string
	// Data is the data lines joined by "\n". It belongs to the Event.
	Data []byte
	// ID is the last event ID when the event was dispatched.
	ID string
	// Retry is the reconnection time set by this event, 0 if none.
	Retry time.Duration
	// Truncated is set when a line or the data exceeded the parser's caps;
	// Data then holds only a prefix.
	Truncated bool
}

const (
	// DefaultMaxLineBytes caps one line (longer ones are cut).
	DefaultMaxLineBytes = 1 << 20
	// DefaultMaxEventBytes caps the data of one event.
	DefaultMaxEventBytes = 4 << 20
)

// Parser is an incremental event-stream parser. The zero value is ready,
// with the default caps. It is not safe for concurrent use.
type Parser struct {
	// MaxLineBytes and MaxEventBytes override the defaults when positive.
	MaxLineBytes  int
	MaxEventBytes int

	line      []byte // a line cut by the end of the previous chunk
	lineOver  bool   // that line exceeded the cap
	skipLF    bool   // the previous chunk ended with CR: a leading LF is its pair
	skipLine  bool   // after Reset: drop bytes up to the next line end
	started   bool   // past the optional BOM
	bomPrefix []byte // a BOM cut by the end of a chunk

	data      []byte
	hasData   bool
	eventType []byte
	hasType   bool
	retry     time.Duration
	truncated bool
	lastID    string
	lastType  string
}

// Parse returns the events of a complete stream. An event not followed by
// an empty line is dispatched too: a body whose capture was cut should
// still yield its last event.
func Parse(b []byte) []Event {
	var p Parser
	var out []Event
	emit := func(e Event) { out = append(out, e) }
	p.Feed(b, emit)
	p.Flush(emit)
	return out
}

// Feed consumes the next chunk of the stream, calling emit for every event
// it completes. b is not retained.
func (p *Parser) Feed(b []byte, emit func(Event)) {
	if !p.started {
		b = p.skipBOM(b)
		if !p.started {
			return
		}
	}
	if p.skipLF && len(b) > 0 {
		p.skipLF = false
		if b[0] == '\n' {
			b = b[1:]
		}
	}
	for len(b) > 0 {
		k := lineEnd(b)
		if k < 0 {
			if !p.skipLine {
				p.appendPartial(b)
			}
			return
		}
		ln := b[:k]
		if b[k] == '\r' {
			if k+1 < len(b) {
				if b[k+1] == '\n' {
					k++
				}
			} else {
				p.skipLF = true
			}
		}
		b = b[k+1:]
		if p.skipLine {
			p.skipLine = false
			continue
		}
		if len(p.line) > 0 || p.lineOver {
			p.appendPartial(ln)
			ln = p.line
		}
		p.processLine(ln, emit)
		p.line = p.line[:0]
		p.lineOver = false
	}
}

// Flush dispatches an event whose terminating empty line never came (the
// stream ended or its capture was cut), including a pending partial line.
// The standard discards such an event; a monitor would rather see it.
func (p *Parser) Flush(emit func(Event)) {
	if (len(p.line) > 0 || p.lineOver) && !p.skipLine {
		p.processLine(p.line, emit)
	}
	p.line = p.line[:0]
	p.lineOver = false
	p.dispatch(emit)
}

// Reset drops the partial line and event after the capture lost bytes; the
// bytes up to the next line end are dropped too, since they continue a
// line whose start is gone. The last event ID is kept.
func (p *Parser) Reset() {
	p.line = p.line[:0]
	p.lineOver = false
	p.skipLF = false
	p.skipLine = true
	p.started = true
	p.bomPrefix = nil
	p.clearEvent()
}

// LastEventID returns the last event ID set by the stream.
func (p *Parser) LastEventID() string { return p.lastID }

var bom = []byte{0xEF, 0xBB, 0xBF}

func (p *Parser) skipBOM(b []byte) []byte {
	want := bom[len(p.bomPrefix):]
	n := min(len(want), len(b))
	if !bytes.Equal(b[:n], want[:n]) {
		// Not a BOM: replay what looked like its start.
		p.started = true
		pre := p.bomPrefix
		p.bomPrefix = nil
		if len(pre) > 0 {
			p.appendPartial(pre)
		}
		return b
	}
	if n < len(want) {
		p.bomPrefix = append(p.bomPrefix, b[:n]...)
		return nil
	}
	p.started = true
	p.bomPrefix = nil
	return b[n:]
}

// lineEnd returns the index of the first CR or LF in b, or -1.
func lineEnd(b []byte) int {
	lf := bytes.IndexByte(b, '\n')
	search := b
	if lf >= 0 {
		search = b[:lf]
	}
	if cr := bytes.IndexByte(search, '\r'); cr >= 0 {
		return cr
	}
	return lf
}

func (p *Parser) maxLine() int {
	if p.MaxLineBytes > 0 {
		return p.MaxLineBytes
	}
	return DefaultMaxLineBytes
}

func (p *Parser) maxEvent() int {
	if p.MaxEventBytes > 0 {
		return p.MaxEventBytes
	}
	return DefaultMaxEventBytes
}

func (p *Parser) appendPartial(b []byte) {
	room := p.maxLine() - len(p.line)
	if len(b) > room {
		b = b[:max(room, 0)]
		p.lineOver = true
	}
	p.line = append(p.line, b...)
}

func (p *Parser) processLine(ln []byte, emit func(Event)) {
	if len(ln) > p.maxLine() {
		ln = ln[:p.maxLine()]
		p.lineOver = true
	}
	if p.lineOver {
		p.truncated = true
	}
	if len(ln) == 0 {
		p.dispatch(emit)
		return
	}
	if ln[0] == ':' {
		return
	}
	field, value := ln, []byte(nil)
	if c := bytes.IndexByte(ln, ':'); c >= 0 {
		field, value = ln[:c], ln[c+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(field) {
	case "data":
		room := p.maxEvent() - len(p.data)
		if p.hasData {
			room-- // the joining "\n"
		}
		if len(value) > room {
			value = value[:max(room, 0)]
			p.truncated = true
		}
		if p.hasData && room >= 0 {
			p.data = append(p.data, '\n')
		}
		p.data = append(p.data, value...)
		p.hasData = true
	case "event":
		p.eventType = append(p.eventType[:0], value...)
		p.hasType = true
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			p.lastID = string(value)
		}
	case "retry":
		if ms, ok := digits(value); ok {
			p.retry = time.Duration(ms) * time.Millisecond
		}
	}
}

func digits(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 12 {
		return 0, false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	return n, err == nil
}

func (p *Parser) dispatch(emit func(Event)) {
	if !p.hasData {
		p.clearEvent()
		return
	}
	e := Event{Type: "message", ID: p.lastID, Retry: p.retry, Truncated: p.truncated}
	if p.hasType && len(p.eventType) > 0 {
		// Streams repeat a handful of types; reuse the last string.
		if string(p.eventType) != p.lastType {
			p.lastType = string(p.eventType)
		}
		e.Type = p.lastType
	}
	e.Data = bytes.Clone(p.data)
	if e.Data == nil {
		e.Data = []byte{}
	}
	p.clearEvent()
	if emit != nil {
		emit(e)
	}
}

func (p *Parser) clearEvent() {
	p.data = p.data[:0]
	p.hasData = false
	p.eventType = p.eventType[:0]
	p.hasType = false
	p.retry = 0
	p.truncated = false
}
