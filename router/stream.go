package router

// Large messages stream through the router instead of being held whole, so
// that memory does not grow with message size × concurrency.
//
// Requests. The server streams request bodies (fasthttp StreamRequestBody).
// A body of known length up to streamThreshold is read whole and handled as
// before. Of a larger body, or one sent chunked, the router reads
// streamThreshold bytes and runs ReadRequest on them. ReadRequest stops at
// the start tag of the first child of Body; when that tag lies within the
// bytes read, the result is the one the whole body gives (checked at every
// cut point by TestStreamPrefixDecidesLikeWholeBody and FuzzStreamPrefix),
// and the call is routed on it. The
// producer then gets those bytes (converted, if the route's RIV profile
// differs: convertProfile touches nothing after the Body start tag)
// followed by the rest of the consumer's body, copied from one connection
// to the other as it arrives.
//
// What is still read whole, up to MaxBodySize: a request whose first Body
// child is not within the first streamThreshold bytes (the router reads on,
// doubling, until it is, as the reference parses whatever it aggregated;
// this also covers requests that are not well-formed there, whose VP015
// must be the whole document's); MTOM requests (the envelope is the last
// match of a regular expression over the whole body); requests in another
// encoding than UTF-8 (re-encoded to UTF-8 before they are sent, and their
// answer back); and, rarely, a RIV conversion whose parser does not reach
// the Body within the prefix.
//
// Responses. producerTransport reads a producer response with a
// Content-Length up to streamThreshold whole, exactly as fasthttp does; a
// larger or chunked one is left on the connection. forward reads up to
// streamThreshold of it to decide (empty body → VP009, SOAP fault
// passthrough) and then hands the rest to the consumer as it arrives
// (producerBody), releasing the producer connection when the consumer's
// response is written. Still read whole: a response whose status is 500
// and whose first streamThreshold bytes lack the SOAP envelope namespace
// (the fault-passthrough test is a search of the whole body), and the
// response to a request in another encoding (re-encoded).
//
// Limits. MaxBodySize still bounds both directions. A request with a larger
// Content-Length gets, before its body is read, the answer the server gives
// when fasthttp refuses a body (refuseRequest: 413, connection closed); a
// chunked request gets it when its body passes the limit, also while it
// streams to the producer, whose call is then aborted. A producer response
// with a larger Content-Length is VP009 as before, without reading it; a
// chunked response passing the limit while it streams is cut off (no last
// chunk) and the consumer's connection closed: its status line has gone out.
//
// Timeouts. A streamed request is written to the producer as fast as the
// consumer sends it; the contract's producer timeout counts from the end of
// that write (producerCall.writeBy), as it does when the request is read
// first, and bounds the producer's answer, streamed or not. A producer that
// stalls in the middle of a streamed answer cuts the consumer's response
// off instead of giving VP009.
//
// One difference remains that streaming cannot avoid: fasthttp 1.74's
// server reports a chunked request whose consumer disconnects exactly
// between two chunks as a complete body, so the producer then gets a
// document cut short (not well-formed XML) as a complete request; fasthttp
// used to answer 400 to the gone consumer instead. The producer side does
// not have this problem: heldConn decodes chunked answers strictly.
//
// Memory per streamed call is four pooled buffers of streamThreshold
// (request prefix, response head, one copy buffer per direction) plus
// fasthttp's and crypto/tls's per-connection buffers, some 400 KiB
// whatever the message size; TestLargeBodyConcurrentMemory measures it.

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"
)

// streamThreshold is the size up to which bodies are read whole; larger
// bodies stream. Calls of 1–2 kB, the common case, never stream.
const streamThreshold = 64 << 10

// soapEnvelopeNS marks a producer's SOAP fault (IsSOAPFault).
var soapEnvelopeNS = []byte("http://schemas.xmlsoap.org/soap/envelope/")

// Buffers for request prefixes and response heads, in two sizes so that
// the common small call takes (and, after a GC empties the pool, makes) a
// small one.
const smallBuf = 8 << 10

var (
	smallBufPool = sync.Pool{New: func() any { b := make([]byte, smallBuf); return &b }}
	bufPool      = sync.Pool{New: func() any { b := make([]byte, streamThreshold); return &b }}
)

// getBuf returns a pooled buffer of at least n bytes, n <= streamThreshold.
func getBuf(n int) *[]byte {
	if n <= smallBuf {
		return smallBufPool.Get().(*[]byte)
	}
	return bufPool.Get().(*[]byte)
}

func putBuf(b *[]byte) {
	if len(*b) == smallBuf {
		smallBufPool.Put(b)
	} else {
		bufPool.Put(b)
	}
}

// inbound is the consumer's request body as far as the call has read it.
// It is pooled: the common call allocates nothing for it.
type inbound struct {
	bufp *[]byte // pooled buffer behind body, if any
	body []byte  // the whole body, or its first bytes when streamed
	src  inStream
	// streamed: body holds only the first bytes; the rest is unread in src.
	streamed bool
	info     RequestInfo // ReadRequest(body), when streamed
	length   int         // Content-Length of the whole body, or -1 (chunked)
	// spent is the pooled buffer readMore replaced: strings of the call
	// may still share its memory, so it goes back to the pool only when
	// the call ends.
	spent *[]byte

	// strs holds the call's own strings (str): ids, sender, history,
	// original consumer. Its capacity is kept across calls.
	strs []byte
}

// callStrs is the capacity of inbound.strs: a call's ids, sender, history
// and original consumer come to about 200 bytes.
const callStrs = 1024

var inbounds = sync.Pool{New: func() any { return &inbound{strs: make([]byte, 0, callStrs)} }}

func getInbound() *inbound { return inbounds.Get().(*inbound) }

func (in *inbound) release() {
	if in.bufp != nil {
		putBuf(in.bufp)
	}
	if in.spent != nil {
		putBuf(in.spent)
	}
	*in = inbound{strs: in.strs[:0]}
	inbounds.Put(in)
}

// str returns b as a string without allocating: the bytes are copied into
// in.strs, which is reused by the next call once this one has released in.
// The request path's strings (the call's ids, sender, history, contract,
// logical address; the last two share the request body's memory, see
// readRequest) are therefore valid only until the handler returns. Whatever
// keeps one longer must copy it: the hop feed (HopFeed.offer), a streamed
// response (producerBody.corrID), a slog handler (logCall, the warnings in
// handle). A string that does not fit in what is left of in.strs is
// allocated, as before.
func (in *inbound) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(in.strs)+len(b) > cap(in.strs) {
		return string(b)
	}
	n := len(in.strs)
	in.strs = append(in.strs, b...)
	return aliasString(in.strs[n:])
}

// join returns a+sep+b as str does.
func (in *inbound) join(a, sep, b string) string {
	n := len(in.strs)
	if n+len(a)+len(sep)+len(b) > cap(in.strs) {
		return a + sep + b
	}
	in.strs = append(append(append(in.strs, a...), sep...), b...)
	return aliasString(in.strs[n:])
}

// aliasString is b as a string that shares b's memory. The caller
// guarantees that b does not change while the string is in use.
func aliasString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// inStream is the server's request body stream with MaxBodySize enforced.
type inStream struct {
	r      io.Reader
	n      int // bytes read from conn
	limit  int
	length int // Content-Length, or -1
	eof    bool
	err    error // sticky
}

// errRequestTooLarge is a request body that passed MaxBodySize.
var errRequestTooLarge = fmt.Errorf("request: %w", fasthttp.ErrBodyTooLarge)

func (s *inStream) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.eof {
		return 0, io.EOF
	}
	n, err := s.r.Read(p)
	s.n += n
	if s.n > s.limit {
		s.err = errRequestTooLarge
		return 0, s.err
	}
	switch {
	case err == io.EOF && s.length >= 0 && s.n < s.length:
		// fasthttp's request stream ends quietly when the consumer
		// goes away before its Content-Length.
		err = io.ErrUnexpectedEOF
		s.err = err
	case err == io.EOF:
		s.eof = true
	case err != nil:
		s.err = err
	}
	return n, err
}

// fill reads into b until it is full or the body ends.
func (s *inStream) fill(b []byte) (int, error) {
	n, empty := 0, 0
	for n < len(b) {
		m, err := s.Read(b[n:])
		n += m
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if m > 0 {
			empty = 0
		} else if empty++; empty > 100 {
			return n, io.ErrNoProgress
		}
	}
	return n, nil
}

// drain discards what the call left of the body, so that the connection
// can carry the next request; it reports whether that worked.
func (s *inStream) drain() bool {
	if s.r == nil || s.eof {
		return s.err == nil
	}
	if s.err != nil {
		return false
	}
	_, err := io.Copy(io.Discard, s)
	return err == nil
}

// readBody reads the request body into in, as far as routing needs it (see
// the top of this file). It answers the consumer itself and returns false
// when the body is too large or cannot be read.
func (r *Router) readBody(ctx *fasthttp.RequestCtx, in *inbound) bool {
	if !ctx.Request.IsBodyStream() {
		// A server without body streaming, or a request without a body.
		in.body = ctx.Request.Body()
		return true
	}
	length := ctx.Request.Header.ContentLength()
	in.length = length
	in.src = inStream{r: ctx.RequestBodyStream(), limit: r.cfg.MaxBodySize, length: length}
	if length >= 0 && length <= streamThreshold {
		in.bufp = getBuf(length)
	} else {
		in.bufp = getBuf(streamThreshold)
	}
	buf := *in.bufp
	if length >= 0 && length <= len(buf) {
		buf = buf[:length]
	}
	n, err := in.src.fill(buf)
	if err != nil {
		r.bodyReadFailed(ctx, err)
		return false
	}
	in.body = buf[:n]
	if in.src.eof || length >= 0 && n == length {
		return true
	}
	// More follows. Stream, if the first bytes are enough to route.
	whole := rivtaContainsFold(ctx.Request.Header.ContentType(), "application/xop+xml")
	for !whole {
		info, err := readRequest(in.body, true)
		if err == nil && info.ContractFound {
			if needsRecode(info.Encoding, in.body) {
				break
			}
			in.streamed, in.info = true, info
			return true
		}
		// Not decided yet: read as much again and look once more.
		if !r.readMore(ctx, in, 2*len(in.body)) {
			return false
		}
		if in.src.eof || in.length >= 0 && len(in.body) == in.length {
			return true
		}
	}
	return r.readRest(ctx, in)
}

// readMore grows in.body to at most size bytes (past MaxBodySize by one,
// so that the limit trips).
func (r *Router) readMore(ctx *fasthttp.RequestCtx, in *inbound, size int) bool {
	size = min(size, r.cfg.MaxBodySize+1)
	if in.length >= 0 {
		size = min(size, in.length)
	}
	if size <= len(in.body) {
		size = len(in.body) + 1 // defensive: always make progress
	}
	b := in.body
	if cap(b) < size {
		b = make([]byte, len(in.body), size)
		copy(b, in.body)
		if in.bufp != nil {
			// Kept until the call ends: its strings may share the buffer.
			in.spent, in.bufp = in.bufp, nil
		}
	}
	n, err := in.src.fill(b[len(b):size])
	if err != nil {
		r.bodyReadFailed(ctx, err)
		return false
	}
	in.body = b[:len(b)+n]
	return true
}

// readRest reads the whole body into in.body; the call then continues as
// for a small body.
func (r *Router) readRest(ctx *fasthttp.RequestCtx, in *inbound) bool {
	for !in.src.eof && (in.length < 0 || len(in.body) < in.length) {
		size := 2 * len(in.body)
		if in.length >= 0 {
			size = in.length // known: one allocation
		}
		if !r.readMore(ctx, in, size) {
			return false
		}
	}
	in.streamed = false
	return true
}

// bodyReadFailed answers a request whose body could not be read as the
// server answers one it refuses before the handler runs (refuseRequest: 413
// for a body over MaxBodySize, 408 on a timeout, else 400), and closes the
// connection, as fasthttp does then.
func (r *Router) bodyReadFailed(ctx *fasthttp.RequestCtx, err error) {
	ctx.Response.Reset()
	refuseRequest(ctx, err)
	ctx.SetConnectionClose()
	if !errors.Is(err, errRequestTooLarge) {
		r.cfg.Logger.Debug("request body read failed", "error", err)
	}
}

// outBody is what the producer gets of a streamed request: the first bytes
// (converted, if the RIV profile changes) and then the rest of the
// consumer's body.
type outBody struct {
	head     []byte
	off      int
	rest     *inStream
	restRead bool
}

func (o *outBody) Read(p []byte) (int, error) {
	if o.off < len(o.head) {
		n := copy(p, o.head[o.off:])
		o.off += n
		return n, nil
	}
	o.restRead = true
	return o.rest.Read(p)
}

// started reports whether any of the body was taken for sending.
func (o *outBody) started() bool { return o.off > 0 || o.restRead }

// producerCall carries what producerTransport needs beyond the request (its
// deadline, which fasthttp keeps private) and hands back the connection of
// a response whose body was left on it. It travels as a user value of the
// outbound request and is pooled.
type producerCall struct {
	deadline time.Time // of the whole exchange, as req.SetTimeout gives fasthttp
	// A streamed request is written as fast as the consumer sends it. So
	// that a slow consumer does not eat the producer's timeout, its write
	// is bounded by writeBy (the consumer's own read deadline) and the
	// producer gets timeout from the end of the write: what it gets when
	// the request is read first, as the reference does.
	writeBy time.Time
	timeout time.Duration
	conn    bodyConn // set when the response body is left on the connection
}

type producerCallKey struct{}

var producerCalls = sync.Pool{New: func() any { return new(producerCall) }}

func getProducerCall() *producerCall { return producerCalls.Get().(*producerCall) }

func (pc *producerCall) release() {
	*pc = producerCall{}
	producerCalls.Put(pc)
}

// bodyConn is a producer connection with a response body still on it:
// Read yields the body (io.EOF only at its proper end), release gives the
// connection back once the body has been read, or closes it.
type bodyConn interface {
	io.Reader
	release(discard bool)
}

// heldConn is a bodyConn. C is fasthttp's unexported connection type,
// inferred from AcquireConn.
//
// It decodes the body itself rather than through fasthttp's body stream,
// which reports a connection that ends between two chunks as a clean end:
// forwarded, that would be a truncated message passed off as complete.
type heldConn[C any] struct {
	hc       *fasthttp.HostClient
	br       *bufio.Reader
	cc       C
	closeNow bool
	keep     func(C)
	drop     func(C)

	length int // Content-Length; -1 chunked; -2 until the connection closes
	left   int // bytes left of the body (length >= 0) or of the chunk
	done   bool
	err    error
}

func holdConn[C any](hc *fasthttp.HostClient, br *bufio.Reader, cc C, length int, closeNow bool, keep, drop func(C)) *heldConn[C] {
	h := &heldConn[C]{hc: hc, br: br, cc: cc, closeNow: closeNow || length < -1, keep: keep, drop: drop, length: length}
	if length >= 0 {
		h.left = length
	}
	return h
}

func (h *heldConn[C]) release(discard bool) {
	h.hc.ReleaseReader(h.br)
	if discard || h.closeNow || !h.done {
		h.drop(h.cc)
	} else {
		h.keep(h.cc)
	}
}

// errBrokenChunk is a chunked producer body that does not follow RFC 9112 §7.1.
var errBrokenChunk = errors.New("malformed chunked response body")

func (h *heldConn[C]) Read(p []byte) (int, error) {
	if h.done {
		return 0, io.EOF
	}
	if h.err != nil {
		return 0, h.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if h.length == -1 && h.left == 0 {
		n, err := h.chunkSize()
		if err != nil {
			h.err = err
			return 0, err
		}
		if n == 0 {
			if err := h.trailer(); err != nil {
				h.err = err
				return 0, err
			}
			h.done = true
			return 0, io.EOF
		}
		h.left = n
	}
	if h.length != -2 {
		p = p[:min(len(p), h.left)]
	}
	n, err := h.br.Read(p)
	h.left -= n
	switch {
	case err == io.EOF && h.length == -2:
		h.done = true
		return n, io.EOF
	case err == io.EOF:
		err = io.ErrUnexpectedEOF
	case err == nil && h.left == 0 && h.length >= 0:
		h.done = true
		return n, io.EOF
	case err == nil && h.left == 0 && h.length == -1:
		err = h.crlf()
	}
	if err != nil {
		h.err = err
	}
	return n, err
}

// chunkSize reads a chunk-size line: hex digits, optional extensions, CRLF.
func (h *heldConn[C]) chunkSize() (int, error) {
	line, err := h.br.ReadSlice('\n')
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, err
	}
	n, digits := 0, 0
	for _, c := range line {
		var d int
		switch {
		case '0' <= c && c <= '9':
			d = int(c - '0')
		case 'a' <= c && c <= 'f':
			d = int(c-'a') + 10
		case 'A' <= c && c <= 'F':
			d = int(c-'A') + 10
		default:
			d = -1
		}
		if d < 0 {
			break
		}
		if digits++; digits > 15 {
			return 0, errBrokenChunk
		}
		n = n<<4 | d
	}
	rest := line[digits:]
	if digits == 0 || len(rest) < 2 || rest[len(rest)-2] != '\r' || !(rest[0] == '\r' || rest[0] == ';' || rest[0] == ' ' || rest[0] == '\t') {
		return 0, errBrokenChunk
	}
	return n, nil
}

func (h *heldConn[C]) crlf() error {
	var b [2]byte
	if _, err := io.ReadFull(h.br, b[:]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	if b != [2]byte{'\r', '\n'} {
		return errBrokenChunk
	}
	return nil
}

// trailer skips the trailer section up to and including its empty line.
func (h *heldConn[C]) trailer() error {
	for range 100 {
		line, err := h.br.ReadSlice('\n')
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		if len(line) == 2 && line[0] == '\r' {
			return nil
		}
	}
	return errBrokenChunk
}

var errTooManyInterim = errors.New("too many 1xx informational responses from the producer")

// producerTransport is fasthttp's HostClient transport (client.go
// transport.RoundTrip, v1.74.0, followed line by line) with one change: a
// response body with a Content-Length above streamThreshold, or without
// one, is not read but left on the connection for the router to stream
// (producerCall.conn). fasthttp's own StreamResponseBody would do that for
// every response, at four allocations per call, and cannot tell small
// bodies from large ones before the call.
type producerTransport struct{}

func (producerTransport) RoundTrip(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response) (retry bool, err error) {
	pc, _ := req.UserValue(producerCallKey{}).(*producerCall)
	var deadline time.Time
	var timeout time.Duration
	if pc != nil && !pc.deadline.IsZero() {
		deadline = pc.deadline
		timeout = time.Until(deadline)
	}

	cc, err := hc.AcquireConn(timeout, req.ConnectionClose())
	if err != nil {
		return false, err
	}
	// A pooled connection the peer has closed (a node stopping, a
	// producer's idle timeout) is dropped before anything is written on
	// it, and another taken: a request written to it would fail with no
	// way to tell whether the peer read it, and such a request is never
	// sent again (the handler fails over on connection failures only).
	for tries := 0; peerClosed(cc.Conn()); tries++ {
		hc.CloseConn(cc)
		if tries == maxClosedConns {
			return false, errPeerClosedConns
		}
		if cc, err = hc.AcquireConn(timeout, req.ConnectionClose()); err != nil {
			return false, err
		}
	}
	conn := cc.Conn()
	resp.ParseNetConn(conn)

	writeDeadline := deadline
	if hc.WriteTimeout > 0 {
		if t := time.Now().Add(hc.WriteTimeout); writeDeadline.IsZero() || t.Before(writeDeadline) {
			writeDeadline = t
		}
	}
	paced := pc != nil && !pc.writeBy.IsZero()
	if paced {
		writeDeadline = pc.writeBy
	}
	if err = conn.SetWriteDeadline(writeDeadline); err != nil {
		hc.CloseConn(cc)
		return true, err
	}
	resetConnection := false
	if hc.MaxConnDuration > 0 && time.Since(cc.CreatedTime()) > hc.MaxConnDuration && !req.ConnectionClose() {
		req.SetConnectionClose()
		resetConnection = true
	}
	bw := hc.AcquireWriter(conn)
	err = req.Write(bw)
	if resetConnection {
		req.Header.ResetConnectionClose()
	}
	if err == nil {
		err = bw.Flush()
	}
	hc.ReleaseWriter(bw)
	if x, ok := err.(interface{ Timeout() bool }); ok && x.Timeout() {
		err = fasthttp.ErrTimeout
	}
	if err != nil {
		hc.CloseConn(cc)
		return true, err
	}

	readDeadline := deadline
	if paced {
		readDeadline = time.Now().Add(pc.timeout)
	}
	if hc.ReadTimeout > 0 {
		if t := time.Now().Add(hc.ReadTimeout); readDeadline.IsZero() || t.Before(readDeadline) {
			readDeadline = t
		}
	}
	if err = conn.SetReadDeadline(readDeadline); err != nil {
		hc.CloseConn(cc)
		return true, err
	}
	if req.Header.IsHead() {
		resp.SkipBody = true
	}
	if hc.DisableHeaderNamesNormalizing {
		resp.Header.DisableNormalizing()
	}

	br := hc.AcquireReader(conn)
	// Response.ReadLimitBody, split so that the body can be left unread.
	err = resp.Header.Read(br)
	for n := 0; err == nil; n++ {
		if st := resp.Header.StatusCode(); st < 100 || st > 199 || st == fasthttp.StatusSwitchingProtocols {
			break
		}
		if n >= 100 {
			err = errTooManyInterim
			break
		}
		err = resp.Header.Read(br)
	}
	length := resp.Header.ContentLength()
	st := resp.Header.StatusCode()
	skipBody := resp.SkipBody || st == fasthttp.StatusNotModified || st == fasthttp.StatusNoContent || st < 200
	if err == nil && (pc == nil || skipBody || length >= 0 && length <= streamThreshold || hc.MaxResponseBodySize > 0 && length > hc.MaxResponseBodySize) {
		// Read whole, as fasthttp does (a length over the limit fails here,
		// before the body is read).
		if !skipBody {
			err = resp.ReadBody(br, hc.MaxResponseBodySize)
			if err == nil && length == -1 {
				err = resp.Header.ReadTrailer(br)
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
			}
		}
		if err == nil {
			hc.ReleaseReader(br)
			if resetConnection || req.ConnectionClose() || resp.ConnectionClose() {
				hc.CloseConn(cc)
			} else {
				hc.ReleaseConn(cc)
			}
			return false, nil
		}
	}
	if err != nil {
		hc.ReleaseReader(br)
		hc.CloseConn(cc)
		return err != fasthttp.ErrBodyTooLarge, err
	}
	// Large or of unknown length: leave it on the connection.
	pc.conn = holdConn(hc, br, cc, length, resetConnection || req.ConnectionClose() || resp.ConnectionClose(), hc.ReleaseConn, hc.CloseConn)
	return false, nil
}

// producerBody is a producer's response body on its way to the consumer.
// It owns the producer's response, and through conn its connection, until
// Close, which fasthttp calls once the consumer's response is written (or
// the router calls when it answers something else).
type producerBody struct {
	resp   *fasthttp.Response
	conn   bodyConn
	length int // Content-Length, or < 0
	n      int // bytes read from conn
	limit  int
	eof    bool
	err    error

	bufp *[]byte // pooled buffer behind head, if any
	head []byte  // read ahead to decide; head[off:] not yet passed on
	off  int

	// Set when the body goes to the consumer: a cut-off is logged then.
	log         *slog.Logger
	url, corrID string
}

func newProducerBody(resp *fasthttp.Response, conn bodyConn, limit int) *producerBody {
	return &producerBody{resp: resp, conn: conn, length: resp.Header.ContentLength(), limit: limit}
}

func (b *producerBody) read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.eof {
		return 0, io.EOF
	}
	n, err := b.conn.Read(p)
	b.n += n
	if b.n > b.limit {
		b.err = fasthttp.ErrBodyTooLarge
		return 0, b.err
	}
	switch {
	case err == io.EOF:
		b.eof = true
	case err != nil:
		b.err = err
	}
	return n, err
}

// fillHead reads up to streamThreshold bytes ahead; complete reports
// whether that was the whole body.
func (b *producerBody) fillHead() (complete bool, err error) {
	b.bufp = getBuf(streamThreshold)
	buf := *b.bufp
	n, empty := 0, 0
	for n < len(buf) && !b.eof {
		m, err := b.read(buf[n:])
		n += m
		if err != nil && err != io.EOF {
			return false, err
		}
		if m > 0 {
			empty = 0
		} else if empty++; empty > 100 {
			return false, io.ErrNoProgress
		}
	}
	b.head = buf[:n]
	return b.eof, nil
}

// readAll reads the rest of the body behind head, up to the limit.
func (b *producerBody) readAll() error {
	size := max(2*len(b.head), 1)
	if b.length >= 0 {
		size = b.length
	}
	buf := make([]byte, len(b.head), min(size, b.limit+1))
	copy(buf, b.head)
	for !b.eof {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		m, err := b.read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err != nil && err != io.EOF {
			return err
		}
	}
	if b.bufp != nil {
		putBuf(b.bufp)
		b.bufp = nil
	}
	b.head = buf
	return nil
}

func (b *producerBody) Read(p []byte) (int, error) {
	if b.off < len(b.head) {
		n := copy(p, b.head[b.off:])
		b.off += n
		return n, nil
	}
	return b.read(p)
}

// Close gives the producer connection back if the body was read to its
// end, closes it otherwise, and releases the response.
func (b *producerBody) Close() error {
	if b.resp == nil {
		return nil
	}
	b.conn.release(!b.eof || b.err != nil)
	if b.log != nil && (!b.eof || b.err != nil) {
		// The consumer's status line went out already; all that is left
		// to do is to say why its response ended early.
		reason := "the consumer stopped reading"
		if b.err != nil {
			reason = b.err.Error()
		}
		b.log.Warn("producer answer cut off while streaming to the consumer", "url", b.url,
			"correlation_id", b.corrID, "bytes", b.n, "reason", reason)
	}
	fasthttp.ReleaseResponse(b.resp)
	if b.bufp != nil {
		putBuf(b.bufp)
	}
	*b = producerBody{}
	return nil
}

func containsSOAPNS(b []byte) bool { return bytes.Contains(b, soapEnvelopeNS) }

// copyOut writes what r yields to w through a pooled streamThreshold
// buffer, gathering at least half of it (a few TLS records) per write.
// fasthttp would copy a body stream 4 KiB at a time, one TLS record and
// one system call each; copying each record as it comes still cost a large
// call a third more time than reading it whole first, gathering costs
// nothing (docs/benchmarks.md). r's Read does all the accounting (limits,
// ends), so the bytes are exactly those Read gives.
func copyOut(w io.Writer, r io.Reader) (int64, error) {
	bp := getBuf(streamThreshold)
	defer putBuf(bp)
	var total int64
	buf := *bp
	for {
		n, empty := 0, 0
		var err error
		for n < len(buf)/2 && err == nil {
			var m int
			m, err = r.Read(buf[n:])
			n += m
			if m > 0 {
				empty = 0
			} else if empty++; empty > 100 {
				err = io.ErrNoProgress
			}
		}
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// WriteTo and SupportsBodyWriteTo make outBody a fasthttp.BodyWriterTo.
func (o *outBody) WriteTo(w io.Writer) (int64, error) { return copyOut(w, readerOnly{o}) }

// SupportsBodyWriteTo tells fasthttp that WriteTo gives what Read gives.
func (o *outBody) SupportsBodyWriteTo() bool { return true }

// WriteTo and SupportsBodyWriteTo make producerBody a fasthttp.BodyWriterTo.
func (b *producerBody) WriteTo(w io.Writer) (int64, error) { return copyOut(w, readerOnly{b}) }

// SupportsBodyWriteTo tells fasthttp that WriteTo gives what Read gives.
func (b *producerBody) SupportsBodyWriteTo() bool { return true }

// readerOnly hides WriteTo, so that copyOut's reads go through Read.
type readerOnly struct{ io.Reader }

var (
	_ fasthttp.BodyWriterTo = (*outBody)(nil)
	_ fasthttp.BodyWriterTo = (*producerBody)(nil)
)

// maxClosedConns bounds the pooled connections found closed by their peer
// that one call drops before it gives up (errPeerClosedConns); a pool
// that ran dry dials a new connection first.
const maxClosedConns = 64

// errPeerClosedConns: every pooled connection tried had been closed by the
// peer. Nothing was written: like a failed connect, the call never reached
// the peer.
var errPeerClosedConns = errors.New("every pooled connection had been closed by the peer")

// peerClosed reports whether the peer of c, a pooled client connection
// (rawio, perhaps inside TLS), has closed it. Connections without the raw
// path (other systems) are not checked.
func peerClosed(c net.Conn) bool {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	pc, ok := c.(interface{ PeerClosed() bool })
	return ok && pc.PeerClosed()
}
