package router

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/vaxel/vaxel/tak"
)

// Header names of the platform protocol (skltp-vp.md §2.7).
const (
	hdrCorrelationID    = "x-skltp-correlation-id"
	hdrOriginalConsumer = "x-rivta-original-serviceconsumer-hsaid"
	hdrRoutingHistory   = "x-rivta-routing-history"
	hdrSenderID         = "x-vp-sender-id"
	hdrInstanceID       = "x-vp-instance-id"
	hdrPRT              = "x-skltp-prt"
	hdrTraceparent      = "traceparent"
	faultContentType    = "text/xml; charset=UTF-8"
)

// call is the state of one request; it lives on the handler's stack and
// never outlives it (fasthttp reuses the request's buffers afterwards).
type call struct {
	start       time.Time
	corrID      string
	traceID     string
	sender      string
	internal    bool
	history     string // outbound routing history
	origIn      string
	listener    string
	info        RequestInfo
	target      tak.RouteTarget
	code        Code
	status      int
	prt         time.Duration
	producerErr string
	sent        time.Time // when the call was sent on (zero: it was not)
	nextURL     string    // the URL called: a platform's node or the producer

	// Span ids as bytes: they go into the hop record without allocating.
	spanID       [8]byte // this hop's span: the parent-id of the traceparent sent downstream
	parentSpanID [8]byte // the incoming traceparent's parent-id; zero when the call started here
}

func (r *Router) handleHTTPS(ctx *fasthttp.RequestCtx) { r.handle(ctx, true) }
func (r *Router) handleHTTP(ctx *fasthttp.RequestCtx)  { r.handle(ctx, false) }

func (r *Router) handle(ctx *fasthttp.RequestCtx, overTLS bool) {
	// The data plane must survive a bug triggered by one request: recover at
	// this boundary only, count it, answer a fault, keep serving.
	defer func() {
		if p := recover(); p != nil {
			r.stats.Panics.Add(1)
			r.cfg.Logger.Error("panic in call handling", "panic", p)
			ctx.ResetBody()
			r.writeFault(ctx, &call{corrID: string(peekHeader(&ctx.Request.Header, hdrCorrelationID))}, CodeVP009, "internal error")
		}
	}()
	if ctx.Request.IsBodyStream() && ctx.Request.Header.ContentLength() > r.cfg.MaxBodySize {
		// Refused unread, as fasthttp did when it enforced the limit.
		r.bodyReadFailed(ctx, errRequestTooLarge)
		return
	}
	// The body is read below as far as routing needs it (stream.go); what
	// the call leaves unread is drained here so the connection stays usable.
	in := getInbound()
	defer r.endBody(ctx, in)
	r.stats.Calls.Add(1)
	c := call{start: time.Now(), listener: "https"}
	if !overTLS {
		c.listener = "http"
	}
	// The call's strings are kept in in (inbound.str): valid until the
	// handler returns.
	c.corrID = in.str(peekHeader(&ctx.Request.Header, hdrCorrelationID))
	if c.corrID == "" {
		var id [36]byte
		c.corrID = in.str(appendUUID(id[:0]))
	}
	c.traceID, c.parentSpanID = traceOf(peekHeader(&ctx.Request.Header, hdrTraceparent), in)
	c.spanID = newSpanID()

	if code, detail := r.identify(ctx, &c, overTLS, in); code != 0 {
		r.fault(ctx, &c, code, detail)
		return
	}
	if name, refused := r.plats.Load().Refuses(c.sender); refused && !c.internal {
		// A platform of the federation that this platform does not peer
		// with (federation.allow_platforms) may not route through it,
		// whatever the catalog authorizes for its HSA-ID.
		r.fault(ctx, &c, CodeVP007, DetailPlatformNotAllowed(name, c.sender))
		return
	}
	if !r.readBody(ctx, in) {
		return
	}
	body := in.body
	info, origEnc := in.info, ""
	if !in.streamed {
		// The whole body is here. (A streamed body was routed on its first
		// bytes; MTOM and other encodings than UTF-8 never stream.)
		if env, isMTOM, ok := ExtractMTOM(ctx.Request.Header.ContentType(), body); isMTOM {
			if !ok {
				r.fault(ctx, &c, CodeVP015, "Inkommande begäran är ej korrekt utformat och kan därför inte behandlas.")
				return
			}
			r.cfg.Logger.Warn("MTOM/XOP not fully supported, a binary attachment could be missing", "correlation_id", strings.Clone(c.corrID))
			body = env
		}
		var err error
		if info, err = readRequest(body, true); err != nil {
			r.fault(ctx, &c, CodeVP015, err.Error())
			return
		}
		if needsRecode(info.Encoding, body) {
			utf8Body, err := DecodeToUTF8(body, info.Encoding)
			if err != nil {
				r.fault(ctx, &c, CodeVP015, err.Error())
				return
			}
			origEnc, body = info.Encoding, utf8Body
		}
	}
	c.info = info

	// VP013: who may set the original consumer (skltp-vp.md §2.4).
	if orig := peekHeader(&ctx.Request.Header, hdrOriginalConsumer); orig != nil {
		c.origIn = in.str(orig)
		if !c.internal && len(r.cfg.OriginalConsumerAllowList) > 0 && !listedFold(r.cfg.OriginalConsumerAllowList, strings.TrimSpace(c.sender)) {
			if r.cfg.RejectOriginalConsumer {
				r.fault(ctx, &c, CodeVP013, DetailOriginalConsumerNotAllowed())
				return
			}
			r.cfg.Logger.Warn("sender not allowed to set "+hdrOriginalConsumer, "sender", strings.Clone(c.sender), "correlation_id", strings.Clone(c.corrID))
		}
	}

	cat := r.cat.Load()
	if cat == nil || cat.Empty() {
		r.fault(ctx, &c, CodeVP008, DetailNoCatalog())
		return
	}
	if !info.AddressFound {
		r.fault(ctx, &c, CodeVP003, DetailNoAddress())
		return
	}
	now := r.cfg.Now().Unix()
	tgt, st := cat.ResolveRoute(info.Contract, info.LogicalAddress, now, &r.cfg.Routing, nil)
	switch st {
	case tak.RouteNone:
		ns := info.Contract
		if !info.ContractFound {
			ns = "null" // the reference prints Java's null for an empty Body
		}
		r.fault(ctx, &c, CodeVP004, DetailNoRoute(ns, info.LogicalAddress))
		return
	case tak.RouteMultiple:
		r.fault(ctx, &c, CodeVP006, DetailMultipleRoutes(info.Contract, info.LogicalAddress))
		return
	}
	c.target = tgt
	if strings.TrimSpace(tgt.URL) == "" {
		r.fault(ctx, &c, CodeVP010, DetailNoCallAddress(info.Contract, info.LogicalAddress))
		return
	}
	if !cat.Authorize(c.sender, info.Contract, info.LogicalAddress, now, &r.cfg.Routing, nil) {
		r.fault(ctx, &c, CodeVP007, DetailNoAuthorization(info.Contract, info.LogicalAddress, c.sender))
		return
	}
	out, ok := ParseProfile(tgt.Profile)
	if !ok {
		r.fault(ctx, &c, CodeVP005, DetailWrongProfile(info.Profile.String()))
		return
	}
	if out != info.Profile {
		conv, atBody, err := convertProfile(body, info.Profile, out)
		if in.streamed && (err != nil || !atBody) {
			// Rare: the converter did not reach the Body within the first
			// bytes. Convert the whole body.
			if !r.readRest(ctx, in) {
				return
			}
			body = in.body
			conv, _, err = convertProfile(body, info.Profile, out)
		}
		if err != nil {
			// The reference's detail is the parser's message alone.
			var se *SyntaxError
			if errors.As(err, &se) {
				err = se
			}
			r.fault(ctx, &c, CodeVP012, err.Error())
			return
		}
		body = conv
	}
	r.forward(ctx, &c, body, in, cat.Timeouts().Producer(info.Contract), origEnc)
}

// endBody drains what the call left of a streamed request body, bounded by
// MaxBodySize (the consumer is answered once its whole request is in, as
// when bodies were read before the handler), and releases the buffers.
func (r *Router) endBody(ctx *fasthttp.RequestCtx, in *inbound) {
	if !in.src.drain() {
		ctx.SetConnectionClose()
	}
	in.release()
}

// identify sets the consumer (sender) and the outbound routing history, or
// returns the fault of skltp-vp.md §2.3/§2.6. Loop protection runs on both
// listeners: the reference checks only its plain-HTTP listener, which leaves
// direct TLS chains unprotected (a deliberate improvement, product.md §5).
func (r *Router) identify(ctx *fasthttp.RequestCtx, c *call, overTLS bool, in *inbound) (Code, string) {
	h := &ctx.Request.Header
	if overTLS {
		cert := peerCert(ctx)
		if cert == nil {
			return CodeVP002, DetailNoSenderInHeaderCert()
		}
		id, ok := SenderIDFromCert(cert, r.cfg.SenderPattern)
		if !ok {
			return CodeVP002, DetailNoSenderInCert(SubjectString(cert))
		}
		c.sender = id
	} else {
		ip := remoteIP(ctx, in)
		if !r.cfg.HTTPAllowList.Allowed(ip) {
			return CodeVP011, DetailNotWhitelisted(ip, "CamelNettyRemoteAddress")
		}
		if sid := peekHeader(h, hdrSenderID); sid != nil && string(peekHeader(h, hdrInstanceID)) == r.cfg.InstanceID {
			if xff := peekHeader(h, r.cfg.ForwardedFor); xff != nil && !r.cfg.HTTPAllowList.Allowed(string(xff)) {
				return CodeVP011, DetailNotWhitelisted(string(xff), r.cfg.ForwardedFor)
			}
			// An internal call (AGP, EI): trusted sender, no history
			// check or entry; the history it carries goes on unchanged.
			c.sender, c.internal = in.str(sid), true
			c.history = in.str(peekHeader(h, hdrRoutingHistory))
			return 0, ""
		}
		cert, err := CertFromHeader(string(peekHeader(h, r.cfg.CertHeader)))
		switch {
		case errors.Is(err, ErrNoCertificate):
			return CodeVP002, DetailNoCertInHeader(r.cfg.CertHeader)
		case errors.Is(err, ErrUnknownCertType):
			return CodeVP002, DetailUnknownCertType(r.cfg.CertHeader)
		case err != nil:
			return CodeVP002, DetailCertParse(r.cfg.CertHeader)
		}
		id, ok := SenderIDFromCert(cert, r.cfg.SenderPattern)
		if !ok {
			return CodeVP002, DetailNoSenderInHeaderCert()
		}
		c.sender = id
	}
	hist := in.str(peekHeader(h, hdrRoutingHistory))
	if hist == "" {
		hist = c.sender
	} else {
		// The history is the sender, then one instance id per platform
		// crossed: this platform in it is a loop; more platforms than
		// MaxHops is a chain gone wrong some other way (an instance id
		// changed mid-loop, a misconfigured chain) and is refused alike.
		hops := 0
		for rest := hist; ; {
			tok, more, found := strings.Cut(rest, "#")
			if strings.TrimSpace(tok) == r.cfg.InstanceID {
				return CodeVP014, ""
			}
			hops++
			if !found {
				break
			}
			rest = more
		}
		if crossed := hops - 1; r.cfg.MaxHops > 0 && crossed > r.cfg.MaxHops {
			return CodeVP014, DetailTooManyHops(crossed, r.cfg.MaxHops)
		}
	}
	c.history = in.join(hist, "#", r.cfg.InstanceID)
	return 0, ""
}

// forward calls the producer with body: the whole request, or, when
// in.streamed, its first bytes, after which the rest of the consumer's
// body follows as it arrives (stream.go).
func (r *Router) forward(ctx *fasthttp.RequestCtx, c *call, body []byte, in *inbound, timeout time.Duration, origEnc string) {
	url := c.target.URL
	// A call address naming a platform resolves to its live router nodes
	// (platforms.go); a node that cannot be connected to is followed by
	// the next, at once.
	var alts hopOrder
	if name, ok := PlatformOf(url); ok {
		if alts = r.candidates(name); alts.len() == 0 {
			r.fault(ctx, c, CodeVP009, DetailProducerIO(url, "no live node of platform "+name+" is known in the federation"))
			return
		}
		url = alts.at(0)
	}
	c.nextURL = url
	var hc *fasthttp.HostClient
	var isHTTPS bool
	var err error
	if alts.len() > 0 {
		hc, isHTTPS, err = r.platformClient(alts.at(0), alts.hsaIDAt(0), alts.len() > 1)
	} else {
		hc, isHTTPS, err = r.client(url)
	}
	if err != nil {
		r.fault(ctx, c, CodeVP009, DetailProducerIO(url, err.Error()))
		return
	}
	pc := getProducerCall()
	defer pc.release()
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	// A large producer body streams to the consumer (pb): pb owns resp
	// until the consumer's response is written; otherwise resp goes here.
	var pb *producerBody
	defer func() {
		if pb != nil {
			_ = pb.Close()
		} else if resp != nil {
			fasthttp.ReleaseResponse(resp)
		}
	}()
	req.Header.DisableNormalizing()
	resp.Header.DisableNormalizing()
	req.SetRequestURI(url)
	req.Header.SetMethod(fasthttp.MethodPost)
	copyRequestHeaders(&req.Header, &ctx.Request.Header, r.cfg.CertHeader, r.cfg.ForwardedFor)
	// Every header below was dropped by the copy (dropRequestHeader), so it
	// is added rather than set, which would scan the headers already there
	// for its name.
	req.Header.Add(fasthttp.HeaderContentType, r.cfg.ContentType)
	req.Header.Add(fasthttp.HeaderUserAgent, r.cfg.UserAgent)
	orig := c.origIn
	if orig == "" {
		orig = c.sender
	}
	req.Header.Add(hdrOriginalConsumer, orig)
	if !isHTTPS || r.cfg.PropagateCorrelationHTTPS {
		req.Header.Add(hdrCorrelationID, c.corrID)
	}
	if !isHTTPS {
		// x-vp-* never leave the platform over TLS (§8.2): only plain-HTTP
		// producers, which are internal components, get them.
		req.Header.Add(hdrSenderID, c.sender)
		req.Header.Add(hdrInstanceID, r.cfg.InstanceID)
	}
	if c.history != "" {
		req.Header.Add(hdrRoutingHistory, c.history)
	}
	var tp [55]byte
	req.Header.AddBytesV(hdrTraceparent, appendTraceparent(tp[:0], c.traceID, c.spanID))
	var ob *outBody
	outLen := len(body)
	if in.streamed {
		outLen = -1
		if in.length >= 0 {
			outLen = len(body) + in.length - len(in.body)
		}
		ob = &outBody{head: body, rest: &in.src}
		req.SetBodyStream(ob, outLen)
	} else {
		req.SetBodyRaw(body)
	}
	req.SetTimeout(timeout)
	req.SetUserValue(producerCallKey{}, pc)

	sent := time.Now()
	c.sent = sent
	pc.deadline = sent.Add(timeout)
	if ob != nil && r.cfg.ReadTimeout > 0 {
		pc.writeBy, pc.timeout = c.start.Add(r.cfg.ReadTimeout), timeout
	}
	err = hc.Do(req, resp)
	tried := 0 // the platform node last tried
	for i := 1; err != nil && (isConnectFailure(err) || errors.Is(err, errPeerClosedConns) || errors.Is(err, errNotPlatformNode)) && i < alts.len() && (ob == nil || !ob.started()); i++ {
		// Another node of the platform, only when the call never reached
		// the one tried: it could not be connected to, refused the node's
		// certificate check, or every pooled connection to it had been
		// closed (producerTransport drops those before writing). A
		// connection that closes after the request was written is not
		// among them: the node may have read the call and passed it on, and
		// a call is never sent twice. One that cannot be connected to is
		// passed by for a while.
		if isConnectFailure(err) || errors.Is(err, errNotPlatformNode) {
			alts.markDown(tried)
		}
		next, _, cerr := r.platformClient(alts.at(i), alts.hsaIDAt(i), i < alts.len()-1)
		if cerr != nil {
			break
		}
		tried = i
		url = alts.at(i)
		c.nextURL = url
		req.SetRequestURI(url)
		req.SetTimeout(time.Until(pc.deadline))
		if ob != nil {
			req.SetBodyStream(ob, outLen)
		}
		err = next.Do(req, resp)
	}
	if alts.len() > 0 {
		if err == nil {
			alts.markUp(tried)
		} else if isConnectFailure(err) || errors.Is(err, errNotPlatformNode) {
			alts.markDown(tried)
		}
	}
	if err != nil && (isConnectFailure(err) || errors.Is(err, errPeerClosedConns)) && alts.len() == 0 && r.cfg.RetryDelay < timeout && (ob == nil || !ob.started()) {
		// One retry, and only when the producer was never reached: a
		// refused or failed connect cannot have delivered the call. It
		// fails before any byte is written, so a streamed body is still
		// whole (checked: ob.started).
		time.Sleep(r.cfg.RetryDelay)
		req.SetTimeout(timeout - r.cfg.RetryDelay)
		pc.deadline = time.Now().Add(timeout - r.cfg.RetryDelay)
		if ob != nil && pc.timeout > 0 {
			pc.timeout = timeout - r.cfg.RetryDelay
		}
		if ob != nil {
			req.SetBodyStream(ob, outLen)
		}
		err = hc.Do(req, resp)
	}
	if err != nil && in.streamed && in.src.err != nil {
		// The consumer's body failed while it streamed to the producer
		// (too large, or the consumer went away): the call is aborted and
		// answered as an unreadable request.
		r.bodyReadFailed(ctx, in.src.err)
		return
	}
	streaming := false
	if err == nil && pc.conn != nil {
		// The producer's body is large or of unknown length and still on
		// the connection: read ahead as far as the checks below need.
		pb, pc.conn, resp = newProducerBody(resp, pc.conn, r.cfg.MaxBodySize), nil, nil
		var complete bool
		complete, err = pb.fillHead()
		if err == nil && !complete && (origEnc != "" || pb.resp.StatusCode() == fasthttp.StatusInternalServerError && !containsSOAPNS(pb.head)) {
			// Re-encoding, and a fault test that must search the whole
			// body, need all of it (bounded by MaxBodySize).
			err = pb.readAll()
			complete = true
		}
		streaming = !complete
	}
	c.prt = time.Since(sent)
	// Added, not set (a scan of the headers for the name): the response
	// has none yet, and copyResponseHeaders drops the producer's.
	ctx.Response.Header.Add(hdrPRT, strconv.FormatInt(c.prt.Milliseconds(), 10))
	if err != nil {
		r.stats.ProducerErrors.Add(1)
		c.producerErr = err.Error()
		if errors.Is(err, fasthttp.ErrTimeout) {
			r.fault(ctx, c, CodeVP009, DetailProducerTimeout(url))
		} else {
			r.fault(ctx, c, CodeVP009, DetailProducerIO(url, err.Error()))
		}
		return
	}
	var rb []byte
	var status int
	if pb != nil {
		rb, status = pb.head, pb.resp.StatusCode()
	} else {
		rb, status = resp.Body(), resp.StatusCode()
	}
	switch {
	case status >= 200 && status < 300 && len(rb) == 0:
		r.fault(ctx, c, CodeVP009, DetailProducerEmpty(url, status, fasthttp.StatusMessage(status)))
		return
	case status >= 200 && status < 300, IsSOAPFault(status, rb):
		// success, or a producer SOAP fault passed through unchanged
	default:
		r.fault(ctx, c, CodeVP009, DetailProducerStatus(url, status))
		return
	}
	if pb != nil {
		copyResponseHeaders(&ctx.Response.Header, &pb.resp.Header)
	} else {
		copyResponseHeaders(&ctx.Response.Header, &resp.Header)
	}
	ctx.SetStatusCode(status)
	ct := faultContentType
	if origEnc != "" {
		if enc, err := EncodeFromUTF8(rb, origEnc); err == nil {
			rb, ct = enc, "text/xml; charset="+origEnc
		}
	}
	ctx.Response.Header.Set(fasthttp.HeaderContentType, ct)
	ctx.Response.Header.Add(hdrCorrelationID, c.corrID) // dropped by copyResponseHeaders
	if streaming {
		// The consumer's response owns pb now; fasthttp closes it once
		// the body is written, which releases the producer connection.
		// pb outlives the handler, and with it the call's strings.
		pb.log, pb.url, pb.corrID = r.cfg.Logger, url, strings.Clone(c.corrID)
		ctx.SetBodyStream(pb, max(pb.length, -1))
		pb = nil
	} else {
		ctx.Response.SetBody(rb)
	}
	c.status = status
	r.logCall(c)
}

func (r *Router) fault(ctx *fasthttp.RequestCtx, c *call, code Code, detail string) {
	r.stats.Faults.Add(1)
	c.code, c.status = code, fasthttp.StatusInternalServerError
	r.writeFault(ctx, c, code, detail)
	r.logCall(c)
}

func (r *Router) writeFault(ctx *fasthttp.RequestCtx, c *call, code Code, detail string) {
	prt := ctx.Response.Header.Peek(hdrPRT)
	var keep []byte
	if prt != nil {
		keep = append(keep, prt...)
	}
	ctx.Response.Reset()
	ctx.Response.Header.DisableNormalizing()
	ctx.SetStatusCode(fasthttp.StatusInternalServerError)
	ctx.Response.Header.Set(fasthttp.HeaderContentType, faultContentType)
	ctx.Response.Header.Set(hdrCorrelationID, c.corrID)
	if keep != nil {
		ctx.Response.Header.SetBytesV(hdrPRT, keep)
	}
	ctx.Response.SetBodyRaw(AppendFault(nil, code, r.cfg.InstanceName, detail))
}

func (r *Router) logCall(c *call) {
	// Every answered call passes here exactly once (ok or fault), so the
	// metrics are counted here too, whether or not calls are logged, and
	// the call's hop record is kept (hops.go).
	answered := time.Now()
	r.metrics.observe(c)
	r.recordHop(c, answered)
	if !r.cfg.LogCalls {
		return
	}
	lvl := slog.LevelInfo
	if c.code != 0 {
		lvl = slog.LevelWarn
	}
	if r.calls != nil {
		if callLogEnabled(r.cfg.Logger, lvl) {
			r.calls.log(c, lvl, answered)
		}
		return
	}
	// The call's strings live only until the handler returns
	// (inbound.str); a slog handler may keep a record's values longer.
	attrs := []slog.Attr{
		slog.String("event", "call"),
		slog.String("correlation_id", strings.Clone(c.corrID)),
		slog.String("trace_id", strings.Clone(c.traceID)),
		slog.String("listener", c.listener),
		slog.String("sender", strings.Clone(c.sender)),
		slog.String("contract", strings.Clone(c.info.Contract)),
		slog.String("logical_address", strings.Clone(c.info.LogicalAddress)),
		slog.String("rivversion", c.info.Profile.String()),
		slog.Int("status", c.status),
		slog.Float64("duration_ms", float64(time.Since(c.start).Microseconds())/1000),
	}
	if c.origIn != "" {
		attrs = append(attrs, slog.String("original_consumer", strings.Clone(c.origIn)))
	}
	if c.target.URL != "" {
		attrs = append(attrs, slog.String("producer", c.target.Producer), slog.String("url", c.target.URL),
			slog.Float64("producer_ms", float64(c.prt.Microseconds())/1000))
	}
	if c.code != 0 {
		attrs = append(attrs, slog.String("error_code", c.code.String()))
	}
	if c.producerErr != "" {
		attrs = append(attrs, slog.String("producer_error", c.producerErr))
	}
	r.cfg.Logger.LogAttrs(nil, lvl, "call", attrs...)
}

// peerCert returns the consumer's certificate on a TLS connection (nil
// without one). It asks the connection for its state by value:
// fasthttp's TLSConnectionState copies the state to the heap, a quarter
// of the bytes a node allocated per call.
func peerCert(ctx *fasthttp.RequestCtx) *x509.Certificate {
	tc, ok := ctx.Conn().(interface{ ConnectionState() tls.ConnectionState })
	if !ok {
		return nil
	}
	if st := tc.ConnectionState(); len(st.PeerCertificates) > 0 {
		return st.PeerCertificates[0]
	}
	return nil
}

func remoteIP(ctx *fasthttp.RequestCtx, in *inbound) string {
	if a, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			var b [64]byte
			return in.str(ip.Unmap().AppendTo(b[:0]))
		}
		return a.IP.String()
	}
	return ""
}

func listedFold(list []string, v string) bool {
	for _, x := range list {
		if strings.EqualFold(strings.TrimSpace(x), v) {
			return true
		}
	}
	return false
}

func needsRecode(enc string, body []byte) bool {
	if len(body) >= 2 && (body[0] == 0xFE && body[1] == 0xFF || body[0] == 0xFF && body[1] == 0xFE) {
		return true
	}
	return enc != "" && !strings.HasPrefix(strings.ToUpper(enc), "UTF-8")
}

// appendUUID appends a random (version 4) UUID.
func appendUUID(dst []byte) []byte {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	dst = hex.AppendEncode(dst, b[0:4])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, b[4:6])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, b[6:8])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, b[8:10])
	dst = append(dst, '-')
	return hex.AppendEncode(dst, b[10:])
}

// newSpanID returns a random span id; never the zero id, which W3C
// reserves for "no span".
func newSpanID() [8]byte {
	var b [8]byte
	for b == ([8]byte{}) {
		_, _ = rand.Read(b[:])
	}
	return b
}

// traceOf keeps the trace id of a valid W3C traceparent, so every platform
// of a chain logs the same trace id, and its parent-id, the caller's span,
// which this hop's span is the child of; otherwise it starts a new trace
// and the parent is zero. A traceparent whose trace id is valid but whose
// parent-id is not keeps the trace (the chain's records still join) without
// a parent.
func traceOf(tp []byte, in *inbound) (trace string, parent [8]byte) {
	if len(tp) >= 55 && tp[2] == '-' && tp[35] == '-' && isLowerHex(tp[3:35]) && !bytes.Equal(tp[3:35], zeroTrace) {
		if tp[52] == '-' && isLowerHex(tp[36:52]) && !bytes.Equal(tp[36:52], zeroTrace[:16]) {
			_, _ = hex.Decode(parent[:], tp[36:52])
		}
		return in.str(tp[3:35]), parent
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	var h [32]byte
	return in.str(hex.AppendEncode(h[:0], b[:])), parent
}

// appendTraceparent appends the traceparent sent downstream: this call's
// trace, this hop's span as the parent-id, sampled.
func appendTraceparent(dst []byte, trace string, span [8]byte) []byte {
	dst = append(dst, "00-"...)
	dst = append(dst, trace...)
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, span[:])
	return append(dst, "-01"...)
}

var zeroTrace = bytes.Repeat([]byte{'0'}, 32)

func isLowerHex(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
