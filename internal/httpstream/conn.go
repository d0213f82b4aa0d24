package httpstream

import "time"

// Conn pairs the two directions of one client connection: feed what the
// client writes to Request() and what it reads to Response(). Responses
// are matched to requests in order (HTTP/1.1 answers in request order,
// pipelined or not), which also tells the response parser when a response
// has no body (HEAD) or opens a tunnel (CONNECT).
type Conn struct {
	req, resp Parser
	pending   []*Message // requests whose response has not started
	max       int
	unmatched uint64
}

// NewConn returns a Conn calling onRequest and onResponse (either may be
// nil) for every complete message. Each response carries its Request.
func NewConn(cfg Config, onRequest, onResponse func(*Message)) *Conn {
	c := &Conn{}
	c.req.init(Request, cfg, onRequest)
	c.resp.init(Response, cfg, onResponse)
	c.req.conn, c.resp.conn = c, c
	c.max = c.req.cfg.MaxPending
	return c
}

// Request returns the parser of the client-to-server direction.
func (c *Conn) Request() *Parser { return &c.req }

// Response returns the parser of the server-to-client direction.
func (c *Conn) Response() *Parser { return &c.resp }

// Close ends both directions.
func (c *Conn) Close(ts time.Time) {
	c.req.Close(ts)
	c.resp.Close(ts)
	c.pending = nil
}

// Unmatched counts responses that found no request to answer, and requests
// dropped from a full queue.
func (c *Conn) Unmatched() uint64 { return c.unmatched }

func (c *Conn) pushRequest(m *Message) {
	if len(c.pending) >= c.max {
		c.pending[0] = nil
		c.pending = c.pending[1:]
		c.unmatched++
	}
	c.pending = append(c.pending, m)
}

func (c *Conn) nextRequest() *Message {
	if len(c.pending) == 0 {
		c.unmatched++
		return nil
	}
	m := c.pending[0]
	c.pending[0] = nil
	c.pending = c.pending[1:]
	return m
}

// responseLost is called when the response parser lost its place: the
// responses inside the gap are unknown. Clients rarely pipeline, so the
// next response most likely answers the latest request; keeping only it
// stops one gap from shifting every later pairing.
func (c *Conn) responseLost() {
	if n := len(c.pending); n > 1 {
		c.unmatched += uint64(n - 1)
		copy(c.pending, c.pending[n-1:])
		clear(c.pending[1:n])
		c.pending = c.pending[:1]
	}
}

func (c *Conn) passthrough() {
	c.req.st = stPassthrough
	c.resp.st = stPassthrough
	c.req.msg, c.resp.msg = nil, nil
	c.pending = nil
}
