// Package httpstream reassembles HTTP/1.x messages from the plaintext that
// TLS uprobes capture: ordered byte chunks of one direction of one
// connection, split anywhere, with keep-alive and pipelined messages, and
// with bytes that the capture may have lost.
//
// It is a synchronous, incremental parser: Feed bytes, get complete
// messages through a callback. Memory per connection is bounded by Config:
// the header block, the body kept, the decoded body, and the number of
// requests awaiting a response. Nothing blocks and no goroutine is started.
package httpstream

import (
	"net/http"
	"time"
)

// Direction is the side of the connection a Parser reads.
type Direction uint8

const (
	// Request: bytes the client writes (SSL_write of an agent).
	Request Direction = iota
	// Response: bytes the client reads (SSL_read of an agent).
	Response
)

func (d Direction) String() string {
	if d == Response {
		return "response"
	}
	return "request"
}

// Message is one HTTP request or response. The parser does not touch a
// Message after handing it to the callback, which may keep it.
type Message struct {
	Direction Direction

	// Request line.
	Method string
	Target string // request-target as sent, e.g. "/v1/messages?beta=true"
	// Status line.
	StatusCode int
	Reason     string

	Proto  string // "HTTP/1.1"
	Header http.Header

	// Body is the payload after removing the chunked framing and decoding
	// the Content-Encoding (and any transfer coding besides chunked).
	// When decoding failed, it holds what was decoded before the failure,
	// or the undecoded bytes for an unsupported coding.
	Body []byte
	// WireBodyLen counts the body bytes that went by after de-chunking and
	// before decoding, including those beyond MaxBodyBytes and those the
	// capture lost (Skip).
	WireBodyLen int64
	Chunked     bool
	// ContentEncoding lists the codings applied, lower case, in the order
	// they were applied (as in the header); nil for identity.
	ContentEncoding []string
	// Decoded is set when Body is the result of decoding.
	Decoded   bool
	DecodeErr error
	// SSE is set for a text/event-stream body.
	SSE bool

	// HeadersTruncated: more than MaxHeaders fields; the rest were dropped.
	HeadersTruncated bool
	// BodyTruncated: the body exceeded MaxBodyBytes; Body holds its start.
	BodyTruncated bool
	// DecodedTruncated: decoding produced more than MaxDecodedBytes; Body
	// holds the first MaxDecodedBytes (a compression bomb stops here).
	DecodedTruncated bool
	// Incomplete: bytes of this message were lost (Skip, Reset, or the
	// connection closed before the message ended).
	Incomplete bool

	// Request is, for a response read through a Conn, the request it
	// answers (matched in order). It may still be receiving its body when
	// the response arrives early.
	Request *Message

	// Begin is the time of the chunk holding the first byte, End that of
	// the chunk that completed the message.
	Begin, End time.Time
}

// Host returns the Host header of a request.
func (m *Message) Host() string { return m.Header.Get("Host") }

// Path returns the request target without its query.
func (m *Message) Path() string {
	for i := 0; i < len(m.Target); i++ {
		if m.Target[i] == '?' || m.Target[i] == '#' {
			return m.Target[:i]
		}
	}
	return m.Target
}

// Config bounds what a Parser holds. Zero fields take the defaults.
type Config struct {
	// MaxHeaderBytes caps the start line plus header block (and trailers);
	// a longer one is treated as garbage. Default 64 KiB.
	MaxHeaderBytes int
	// MaxHeaders caps the header fields kept. Default 100.
	MaxHeaders int
	// MaxBodyBytes caps the body bytes kept, as received. Default 4 MiB.
	MaxBodyBytes int
	// MaxDecodedBytes caps the decoded body. Default 8 MiB.
	MaxDecodedBytes int
	// MaxPending caps, in a Conn, the requests awaiting their response.
	// Default 64.
	MaxPending int
}

const (
	defaultMaxHeaderBytes  = 64 << 10
	defaultMaxHeaders      = 100
	defaultMaxBodyBytes    = 4 << 20
	defaultMaxDecodedBytes = 8 << 20
	defaultMaxPending      = 64
	// maxChunkLine bounds a chunk-size line including extensions.
	maxChunkLine = 4096
)

func (c Config) withDefaults() Config {
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = defaultMaxHeaderBytes
	}
	if c.MaxHeaders <= 0 {
		c.MaxHeaders = defaultMaxHeaders
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = defaultMaxBodyBytes
	}
	if c.MaxDecodedBytes <= 0 {
		c.MaxDecodedBytes = defaultMaxDecodedBytes
	}
	if c.MaxPending <= 0 {
		c.MaxPending = defaultMaxPending
	}
	return c
}
