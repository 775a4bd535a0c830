package router

// Large messages: proof that the router's memory does not grow with message
// size × concurrency, plus the behaviours that must survive streaming
// (limit, retry, faults, RIV conversion, recode) and the benchmarks recorded
// in docs/benchmarks.md ("Large messages").
//
// Everything runs in one process: a consumer client, the router (TLS
// listener, TLS to the producer) and a producer, all on 127.0.0.1. The
// client and the producer never hold a message: they generate bodies on the
// fly (lbGen) and hash what they receive as it arrives, so the memory the
// test sees beyond a fixed per-connection overhead is the router's.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net"
	"os"
	"runtime"
	rtmetrics "runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/vaxel/vaxel/pki"
	"github.com/vaxel/vaxel/tak"
)

const (
	lbContract  = "urn:riv:clinicalprocess:healthcond:description:GetCareDocumentationResponder:2"
	lbAddress   = "SE2321000016-LB21" // routed with RIVTABP21 (no conversion)
	lbAddress20 = "SE2321000016-LB20" // routed with RIVTABP20 (21→20 conversion)
	lbNoRoute   = "SE2321000016-NONE"
	lbDead      = "SE2321000016-DEAD" // routed to a port that refuses connections
	lbSender    = "SE2321000016-CONS"
	lbInstance  = "lb-test"

	lbHdrRespSize = "x-lb-resp-size"  // producer: response body size
	lbHdrStatus   = "x-lb-status"     // producer: response status
	lbHdrChunked  = "x-lb-chunked"    // producer: answer without Content-Length
	lbHdrDelay    = "x-lb-delay-ms"   // producer: wait before answering
	lbHdrReqSHA   = "x-lb-req-sha256" // producer → consumer: hash of the request it got
	lbHdrReqLen   = "x-lb-req-len"
)

// lbEnv is one router between one consumer and one producer, all TLS.
type lbEnv struct {
	r        *Router
	client   *fasthttp.HostClient // consumer → router https, client certificate lbSender
	internal *fasthttp.HostClient // internal caller → router http (x-vp-sender-id)
	prod     *lbProducer
	certs    lbTLS
	prodURL  string
	deadURL  string // a call address that refuses connections
}

type lbTLS struct {
	routerServer, routerClient, consumer, producer *tls.Config
}

func lbCerts(t testing.TB) lbTLS {
	t.Helper()
	ca, err := pki.NewCA("lb test CA", pki.ECDSAP256, 0)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	pair := func(r pki.Request) tls.Certificate { return issuePair(t, ca, r) }
	loop := []net.IP{net.IPv4(127, 0, 0, 1)}
	router := pair(pki.Request{CommonName: "router", SerialNumber: lbInstance, IPAddresses: loop})
	consumer := pair(pki.Request{CommonName: "consumer", SerialNumber: lbSender, Client: true})
	producer := pair(pki.Request{CommonName: "producer", IPAddresses: loop, Server: true})
	return lbTLS{
		routerServer: &tls.Config{Certificates: []tls.Certificate{router}, ClientCAs: pool,
			ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12},
		routerClient: &tls.Config{Certificates: []tls.Certificate{router}, RootCAs: pool, MinVersion: tls.VersionTLS12},
		consumer:     &tls.Config{Certificates: []tls.Certificate{consumer}, RootCAs: pool, MinVersion: tls.VersionTLS12},
		producer:     &tls.Config{Certificates: []tls.Certificate{producer}, MinVersion: tls.VersionTLS12},
	}
}

func lbCatalog(t testing.TB, producerURL, deadURL string, timeouts ...tak.TimeoutEntry) *tak.Catalog {
	t.Helper()
	from, _ := tak.ParseDate("2020-01-01")
	to, _ := tak.ParseDate("2120-01-01")
	tx := tak.New().Begin()
	for _, r := range []struct{ la, profile, url string }{
		{lbAddress, "RIVTABP21", producerURL},
		{lbAddress20, "RIVTABP20", producerURL},
		{lbDead, "RIVTABP21", deadURL},
	} {
		if _, err := tx.AddRoute(lbContract, r.la, "PRODUCER-"+r.la, r.profile, r.url, from, to); err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{lbSender, "INTERNAL"} {
			if _, err := tx.AddAuthorization(s, lbContract, r.la, "I1", from, to); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(timeouts) > 0 {
		to, err := tak.NewTimeouts(timeouts)
		if err != nil {
			t.Fatal(err)
		}
		tx.SetTimeouts(to)
	}
	return tx.Commit(tak.ChangeMeta{Actor: "test", Source: "import"})
}

func newLBEnv(t testing.TB, tune func(*Config)) *lbEnv {
	t.Helper()
	certs := lbCerts(t)
	prod := startLBProducer(t, certs.producer)
	// A port that refuses connections: bind, take the address, close.
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "https://" + dead.Addr().String() + "/dead"
	dead.Close()

	cfg := DefaultConfig()
	cfg.InstanceID = lbInstance
	cfg.HTTPSAddr = "127.0.0.1:0"
	cfg.TLS = certs.routerServer
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.HTTPAllowList = IPAllowList{"127.0.0.1"}
	cfg.ProducerTLS = certs.routerClient
	cfg.LogCalls = false
	cfg.RetryDelay = 50 * time.Millisecond
	// A small hop store: the default one reserves some 59 MB when it is
	// made, and with that much live heap the collector lets more garbage
	// pile up before it runs, which the memory bound below (a peak of the
	// heap, garbage included) would count as the bodies' doing.
	cfg.Hops.MaxRecords = 1000
	if tune != nil {
		tune(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	prodURL := "https://" + prod.addr + "/producer"
	r.SetCatalog(lbCatalog(t, prodURL, deadURL))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("router did not stop")
		}
	})
	select {
	case <-r.Ready():
	case err := <-done:
		t.Fatalf("router: %v", err)
	}
	httpsAddr, httpAddr := r.Addrs()
	return &lbEnv{
		r: r,
		client: &fasthttp.HostClient{Addr: httpsAddr, IsTLS: true, TLSConfig: certs.consumer,
			StreamResponseBody: true, ReadTimeout: time.Minute, WriteTimeout: time.Minute, MaxConns: 64},
		internal: &fasthttp.HostClient{Addr: httpAddr, StreamResponseBody: true,
			ReadTimeout: time.Minute, WriteTimeout: time.Minute, MaxConns: 64},
		prod:    prod,
		certs:   certs,
		prodURL: prodURL,
		deadURL: deadURL,
	}
}

// lbProducer hashes each request as it arrives and answers with a generated
// body of the size the consumer asked for (header x-lb-resp-size).
type lbProducer struct {
	addr      string
	calls     atomic.Int64
	inFlight  atomic.Int64
	maxFlight atomic.Int64
	lastLen   atomic.Int64
	chunked   atomic.Int64 // requests that arrived without Content-Length
}

var lbCopyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func lbCopy(w io.Writer, r io.Reader) (int64, error) {
	bp := lbCopyBufs.Get().(*[]byte)
	defer lbCopyBufs.Put(bp)
	return io.CopyBuffer(w, r, *bp)
}

func startLBProducer(t testing.TB, tc *tls.Config) *lbProducer {
	t.Helper()
	p := &lbProducer{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	s := &fasthttp.Server{
		Handler:            p.handle,
		StreamRequestBody:  true,
		MaxRequestBodySize: 1 << 30,
		ReadTimeout:        time.Minute,
		WriteTimeout:       time.Minute,
		Logger:             lbNopLogger{},
	}
	go s.Serve(tls.NewListener(ln, tc)) //nolint:errcheck // ends with Shutdown
	t.Cleanup(func() { _ = s.Shutdown() })
	return p
}

type lbNopLogger struct{}

func (lbNopLogger) Printf(string, ...any) {}

func (p *lbProducer) handle(ctx *fasthttp.RequestCtx) {
	p.calls.Add(1)
	n := p.inFlight.Add(1)
	defer p.inFlight.Add(-1)
	for {
		m := p.maxFlight.Load()
		if n <= m || p.maxFlight.CompareAndSwap(m, n) {
			break
		}
	}
	if ctx.Request.Header.ContentLength() < 0 {
		p.chunked.Add(1)
	}
	h := sha256.New()
	var got int64
	if s := ctx.RequestBodyStream(); s != nil {
		var err error
		if got, err = lbCopy(h, s); err != nil {
			ctx.Error("producer read: "+err.Error(), fasthttp.StatusBadRequest)
			return
		}
	} else {
		b := ctx.Request.Body()
		h.Write(b)
		got = int64(len(b))
	}
	p.lastLen.Store(got)
	if ms, err := strconv.Atoi(string(ctx.Request.Header.Peek(lbHdrDelay))); err == nil {
		time.Sleep(time.Duration(ms) * time.Millisecond)
	}
	ctx.Response.Header.Set(lbHdrReqSHA, hex.EncodeToString(h.Sum(nil)))
	ctx.Response.Header.Set(lbHdrReqLen, strconv.FormatInt(got, 10))
	status := fasthttp.StatusOK
	if s, err := strconv.Atoi(string(ctx.Request.Header.Peek(lbHdrStatus))); err == nil {
		status = s
	}
	ctx.SetStatusCode(status)
	size, _ := strconv.ParseInt(string(ctx.Request.Header.Peek(lbHdrRespSize)), 10, 64)
	ctx.SetContentType("text/xml; charset=UTF-8")
	if size <= 64<<10 && len(ctx.Request.Header.Peek(lbHdrChunked)) == 0 {
		ctx.Response.SetBodyRaw(lbSmallResponse(size))
		return
	}
	if len(ctx.Request.Header.Peek(lbHdrChunked)) > 0 {
		ctx.SetBodyStream(newLBResponse(size), -1)
		return
	}
	ctx.SetBodyStream(newLBResponse(size), int(size))
}

var lbSmall sync.Map // size → generated response body

func lbSmallResponse(n int64) []byte {
	if v, ok := lbSmall.Load(n); ok {
		return v.([]byte)
	}
	b, _ := io.ReadAll(newLBResponse(n))
	lbSmall.Store(n, b)
	return b
}

// lbGen generates head + filler + tail, exactly n bytes, without holding
// them. The filler repeats with a prime period, so lost, repeated or
// reordered bytes change the hash.
type lbGen struct {
	head, tail []byte
	n, off     int64
}

// lbPattern is the filler: lbPeriod letters, and the same again so that a
// read can copy up to lbPeriod bytes from any phase.
const lbPeriod = 65521

var lbPattern = func() []byte {
	b := make([]byte, 2*lbPeriod)
	for i := range lbPeriod {
		b[i] = 'a' + byte((i*7+i>>7)%26)
	}
	copy(b[lbPeriod:], b[:lbPeriod])
	return b
}()

func (g *lbGen) Read(p []byte) (int, error) {
	if g.off >= g.n {
		return 0, io.EOF
	}
	if rem := g.n - g.off; int64(len(p)) > rem {
		p = p[:rem]
	}
	head, tailAt := int64(len(g.head)), g.n-int64(len(g.tail))
	n := 0
	for n < len(p) {
		o := g.off + int64(n)
		switch {
		case o < head:
			n += copy(p[n:], g.head[o:])
		case o >= tailAt:
			n += copy(p[n:], g.tail[o-tailAt:])
		default:
			phase := (o - head) % lbPeriod
			m := min(int64(len(p)-n), tailAt-o, lbPeriod)
			n += copy(p[n:n+int(m)], lbPattern[phase:phase+m])
		}
	}
	g.off += int64(n)
	return n, nil
}

func lbRequestHead(address string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>` +
		`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:riv:itintegration:registry:1" xmlns:urn1="` + lbContract + `">` +
		`<soapenv:Header><urn:LogicalAddress>` + address + `</urn:LogicalAddress></soapenv:Header>` +
		`<soapenv:Body><urn1:GetCareDocumentation><urn1:patientId><urn1:id>191212121212</urn1:id></urn1:patientId><urn1:note>`
}

const lbRequestTail = `</urn1:note></urn1:GetCareDocumentation></soapenv:Body></soapenv:Envelope>`

func newLBRequest(address string, n int64) *lbGen {
	head := lbRequestHead(address)
	if n < int64(len(head)+len(lbRequestTail)) {
		panic("lb request too small")
	}
	return &lbGen{head: []byte(head), tail: []byte(lbRequestTail), n: n}
}

const (
	lbResponseHead = `<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>` +
		`<GetCareDocumentationResponse xmlns="` + lbContract + `"><careDocumentation><body>`
	lbResponseTail = `</body></careDocumentation></GetCareDocumentationResponse></soapenv:Body></soapenv:Envelope>`
)

func newLBResponse(n int64) *lbGen {
	if n < int64(len(lbResponseHead)+len(lbResponseTail)) {
		return &lbGen{n: n, head: bytes.Repeat([]byte("x"), int(n))}
	}
	return &lbGen{head: []byte(lbResponseHead), tail: []byte(lbResponseTail), n: n}
}

// lbDigest is the hash of everything r yields.
func lbDigest(t testing.TB, r io.Reader) string {
	t.Helper()
	h := sha256.New()
	if _, err := lbCopy(h, r); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// lbCall is one consumer call whose body streams from gen; the response
// body is hashed as it arrives.
type lbCall struct {
	client   *fasthttp.HostClient
	internal bool // call the http listener as an internal component
	body     io.Reader
	size     int    // request Content-Length; -1 sends it chunked
	respSize int64  // asked of the producer
	status   int    // asked of the producer (0: 200)
	chunked  bool   // producer answers chunked
	header   string // extra request header "k: v"
}

type lbResult struct {
	status          int
	contentLength   int
	respSHA         string
	respLen         int64
	reqSHA, reqLen  string // as the producer saw them
	body            []byte // first 4 KiB of the response
	connectionClose bool
}

func (c lbCall) do(t testing.TB) lbResult {
	t.Helper()
	res, err := c.run()
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (c lbCall) run() (lbResult, error) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	scheme := "https://"
	if c.internal {
		scheme = "http://"
	}
	req.SetRequestURI(scheme + c.client.Addr + "/vp")
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("text/xml; charset=UTF-8")
	if c.internal {
		req.Header.Set(hdrSenderID, "INTERNAL")
		req.Header.Set(hdrInstanceID, lbInstance)
	}
	req.Header.Set(lbHdrRespSize, strconv.FormatInt(c.respSize, 10))
	if c.status != 0 {
		req.Header.Set(lbHdrStatus, strconv.Itoa(c.status))
	}
	if c.chunked {
		req.Header.Set(lbHdrChunked, "1")
	}
	if k, v, ok := strings.Cut(c.header, ": "); ok {
		req.Header.Set(k, v)
	}
	req.SetBodyStream(c.body, c.size)
	req.SetTimeout(2 * time.Minute)
	if err := c.client.Do(req, resp); err != nil {
		return lbResult{}, fmt.Errorf("call: %w", err)
	}
	res := lbResult{
		status:          resp.StatusCode(),
		contentLength:   resp.Header.ContentLength(),
		reqSHA:          string(resp.Header.Peek(lbHdrReqSHA)),
		reqLen:          string(resp.Header.Peek(lbHdrReqLen)),
		connectionClose: resp.ConnectionClose(),
	}
	h := sha256.New()
	w := &lbHeadWriter{h: h, max: 4 << 10}
	var err error
	if s := resp.BodyStream(); s != nil {
		res.respLen, err = lbCopy(w, s)
	} else {
		var n int
		n, err = w.Write(resp.Body())
		res.respLen = int64(n)
	}
	if err != nil {
		return res, fmt.Errorf("read response: %w", err)
	}
	res.respSHA, res.body = hex.EncodeToString(h.Sum(nil)), w.head
	return res, nil
}

type lbHeadWriter struct {
	h    hash.Hash
	head []byte
	max  int
}

func (w *lbHeadWriter) Write(p []byte) (int, error) {
	if room := w.max - len(w.head); room > 0 {
		w.head = append(w.head, p[:min(room, len(p))]...)
	}
	return w.h.Write(p)
}

// lbHashes caches the digests of generated bodies.
var lbHashes sync.Map

func lbRequestSHA(t testing.TB, address string, n int64) string {
	key := fmt.Sprintf("req %s %d", address, n)
	if v, ok := lbHashes.Load(key); ok {
		return v.(string)
	}
	d := lbDigest(t, newLBRequest(address, n))
	lbHashes.Store(key, d)
	return d
}

func lbResponseSHA(t testing.TB, n int64) string {
	key := fmt.Sprintf("resp %d", n)
	if v, ok := lbHashes.Load(key); ok {
		return v.(string)
	}
	d := lbDigest(t, newLBResponse(n))
	lbHashes.Store(key, d)
	return d
}

// lbHeap samples the Go heap without stopping the world.
type lbHeap struct {
	base, peak, allocs0 uint64
	stop                chan struct{}
	done                chan struct{}
}

const (
	lbMetricHeap   = "/memory/classes/heap/objects:bytes" // live and not yet swept objects
	lbMetricAllocs = "/gc/heap/allocs:bytes"              // cumulative
)

func lbRead(name string) uint64 {
	s := []rtmetrics.Sample{{Name: name}}
	rtmetrics.Read(s)
	return s[0].Value.Uint64()
}

func startLBHeap() *lbHeap {
	runtime.GC()
	h := &lbHeap{stop: make(chan struct{}), done: make(chan struct{})}
	h.base = lbRead(lbMetricHeap)
	h.peak = h.base
	h.allocs0 = lbRead(lbMetricAllocs)
	go func() {
		defer close(h.done)
		tk := time.NewTicker(time.Millisecond)
		defer tk.Stop()
		s := []rtmetrics.Sample{{Name: lbMetricHeap}}
		for {
			select {
			case <-h.stop:
				return
			case <-tk.C:
				rtmetrics.Read(s)
				if v := s[0].Value.Uint64(); v > h.peak {
					h.peak = v
				}
			}
		}
	}()
	return h
}

// end returns the peak heap growth over the baseline and the bytes
// allocated since start.
func (h *lbHeap) end() (peakGrowth, allocated uint64) {
	close(h.stop)
	<-h.done
	return h.peak - h.base, lbRead(lbMetricAllocs) - h.allocs0
}

func lbMiB(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// TestLargeBodyConcurrentMemory proxies eight calls of 10 MiB in each
// direction at once, checks every byte by hash, and bounds the heap the
// whole process needed while they were in flight.
//
// How the bound is measured: the heap is sampled every millisecond through
// runtime/metrics (no stop-the-world) during the run, and its peak is
// compared with the heap just after a GC before the run; the bytes allocated
// during the run are reported as well. Client and producer generate and hash
// on the fly, so their share is a few buffers per connection; everything
// else that could grow with the message is the router's. Buffering the
// bodies, as the router did before, needs at least size × concurrency × 2
// (request and response held at once) = 160 MiB here; it measured a peak
// of 261–303 MiB and as much allocated.
//
// The bound: a streamed call holds four streamThreshold buffers (request
// prefix, response head, a copy buffer each way) and fasthttp's and
// crypto/tls's buffers for two connections, some 400 KiB whatever the
// size; eight calls, the client's and producer's buffers and the garbage of
// new TLS handshakes stay well under lbHeapBound, a tenth of what buffering
// needs. Measured: 2.6–4.3 MiB peak, 4.7–7.4 MiB allocated.
func TestLargeBodyConcurrentMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 160 MB over TLS")
	}
	size, conc := int64(10<<20), 8
	if raceEnabled {
		size = 2 << 20 // same shape, less crypto under the race detector
	}
	const lbHeapBound = 16 << 20
	env := newLBEnv(t, nil)
	reqSHA, respSHA := lbRequestSHA(t, lbAddress, size), lbResponseSHA(t, size)

	// Warm up connections and pools so that the measurement sees the
	// steady state, not first-use allocations.
	for range 2 {
		lbCall{client: env.client, body: newLBRequest(lbAddress, 256<<10), size: 256 << 10, respSize: 256 << 10}.do(t)
	}

	heap := startLBHeap()
	var wg sync.WaitGroup
	results := make([]lbResult, conc)
	start := make(chan struct{})
	for i := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := lbCall{client: env.client, body: newLBRequest(lbAddress, size), size: int(size), respSize: size}.run()
			if err != nil {
				t.Errorf("call %d: %v", i, err)
			}
			results[i] = res
		}()
	}
	close(start)
	wg.Wait()
	peak, allocated := heap.end()

	for i, res := range results {
		if res.status != 200 || res.reqSHA != reqSHA || res.respSHA != respSHA || res.respLen != size {
			t.Errorf("call %d: status %d, request hash ok %v (len %s), response hash ok %v (len %d); body %.300q",
				i, res.status, res.reqSHA == reqSHA, res.reqLen, res.respSHA == respSHA, res.respLen, res.body)
		}
	}
	t.Logf("%d × %d MiB each way: peak heap growth %s, allocated %s, producer saw up to %d calls at once",
		conc, size>>20, lbMiB(peak), lbMiB(allocated), env.prod.maxFlight.Load())
	if raceEnabled {
		// The race detector makes sync.Pool drop a share of what is put
		// back, so pooled buffers are made again: only the peak counts.
		allocated = 0
	}
	if peak > lbHeapBound || allocated > lbHeapBound {
		t.Errorf("peak heap growth %s, allocated %s: over the bound of %s (buffering needs %s)",
			lbMiB(peak), lbMiB(allocated), lbMiB(lbHeapBound), lbMiB(uint64(2*size)*uint64(conc)))
	}
}

// BenchmarkProxy1kB is the common call: a 1 kB request and a 1 kB response
// through the router's TLS listener to a TLS producer, over pooled
// keep-alive connections. allocs/op and B/op count the whole process:
// client, router and producer (whose handler allocates a few objects per
// call for the hash it returns).
func BenchmarkProxy1kB(b *testing.B) { lbBench(b, 1<<10) }

// BenchmarkProxy10MB sends 10 MiB and gets 10 MiB back per call; client and
// producer stream, so B/op is what the router needs per large call.
func BenchmarkProxy10MB(b *testing.B) { lbBench(b, 10<<20) }

func lbBench(b *testing.B, size int) {
	env := newLBEnv(b, nil)
	small := size <= 64<<10
	var raw []byte
	client := env.client
	if small {
		raw, _ = io.ReadAll(newLBRequest(lbAddress, int64(size)))
		certs := env.client.TLSConfig
		client = &fasthttp.HostClient{Addr: env.client.Addr, IsTLS: true, TLSConfig: certs,
			ReadTimeout: time.Minute, WriteTimeout: time.Minute}
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	call := func() {
		req.Reset()
		req.SetRequestURI("https://" + client.Addr + "/vp")
		req.Header.SetMethod(fasthttp.MethodPost)
		req.Header.SetContentType("text/xml; charset=UTF-8")
		req.Header.Set(lbHdrRespSize, strconv.Itoa(size))
		if small {
			req.SetBodyRaw(raw)
		} else {
			req.SetBodyStream(newLBRequest(lbAddress, int64(size)), size)
		}
		if err := client.Do(req, resp); err != nil {
			b.Fatal(err)
		}
		var n int64
		if s := resp.BodyStream(); s != nil {
			n, _ = lbCopy(io.Discard, s)
			_ = resp.CloseBodyStream()
		} else {
			n = int64(len(resp.Body()))
		}
		if resp.StatusCode() != 200 || n != int64(size) {
			b.Fatalf("status %d, %d bytes", resp.StatusCode(), n)
		}
	}
	for range 3 {
		call()
	}
	b.SetBytes(2 * int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		call()
	}
}

// lbDo is a call with a generated request of n bytes to address (Content-
// Length, or chunked when chunked is set).
func (e *lbEnv) do(t testing.TB, address string, n int64, chunked bool, respSize int64, mod func(*lbCall)) lbResult {
	t.Helper()
	c := lbCall{client: e.client, body: newLBRequest(address, n), size: int(n), respSize: respSize}
	if chunked {
		c.size = -1
	}
	if mod != nil {
		mod(&c)
	}
	return c.do(t)
}

func lbFaultCode(res lbResult) string {
	b := string(res.body)
	i := strings.Index(b, "<faultstring>")
	if res.status != 500 || i < 0 {
		return ""
	}
	return b[i+len("<faultstring>") : i+len("<faultstring>")+5]
}

// TestLargeBodyStreams covers what a streamed call must keep: content,
// framing towards the producer, RIV conversion, the SOAP fault passthrough
// and the producer-side VP009 cases, for bodies past streamThreshold.
func TestLargeBodyStreams(t *testing.T) {
	env := newLBEnv(t, nil)
	const n = 3 << 20
	converted := func(t *testing.T) string {
		full, _ := io.ReadAll(newLBRequest(lbAddress20, n))
		conv, err := ConvertProfile(full, ProfileBP21, ProfileBP20)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(conv, full) || !bytes.Contains(conv[:1024], []byte("<urn:To>")) {
			t.Fatalf("conversion did nothing: %.300q", conv)
		}
		return lbDigest(t, bytes.NewReader(conv))
	}(t)
	tests := []struct {
		name      string
		address   string
		chunked   bool
		respSize  int64
		mod       func(*lbCall)
		wantReq   string // request hash at the producer; "" = the generated body's
		wantCode  string // VP code, or "" for a passthrough
		status    int
		prodChunk bool // the producer got the request chunked
	}{
		{name: "content length", address: lbAddress, respSize: n, status: 200},
		{name: "chunked request goes out chunked", address: lbAddress, chunked: true, respSize: n, status: 200, prodChunk: true},
		{name: "chunked response", address: lbAddress, respSize: n, status: 200, mod: func(c *lbCall) { c.chunked = true }},
		{name: "small chunked response is read whole", address: lbAddress, respSize: 900, status: 200, mod: func(c *lbCall) { c.chunked = true }},
		{name: "RIV 2.1 to 2.0 on the first bytes", address: lbAddress20, respSize: 1000, status: 200},
		{name: "RIV conversion of a chunked request", address: lbAddress20, chunked: true, respSize: 1000, status: 200, prodChunk: true},
		{name: "large SOAP fault passed through", address: lbAddress, respSize: n, status: 500, mod: func(c *lbCall) { c.status = 500 }},
		{name: "large non-2xx is VP009", address: lbAddress, respSize: n, wantCode: "VP009", mod: func(c *lbCall) { c.status = 404 }},
		{name: "empty chunked 2xx is VP009", address: lbAddress, respSize: 0, wantCode: "VP009", mod: func(c *lbCall) { c.chunked = true }},
		{name: "no route, body drained", address: lbNoRoute, respSize: 100, wantCode: "VP004"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			chunkedBefore := env.prod.chunked.Load()
			res := env.do(t, tc.address, n, tc.chunked, tc.respSize, tc.mod)
			if tc.wantCode != "" {
				if got := lbFaultCode(res); got != tc.wantCode {
					t.Fatalf("got status %d, fault %q, want %s: %.400q", res.status, got, tc.wantCode, res.body)
				}
				if res.connectionClose {
					t.Error("fault closed the connection; the rest of the body should have been drained")
				}
				return
			}
			wantReq := lbRequestSHA(t, tc.address, n)
			if tc.address == lbAddress20 {
				wantReq = converted
			}
			if res.status != tc.status || res.reqSHA != wantReq || res.respSHA != lbResponseSHA(t, tc.respSize) || res.respLen != tc.respSize {
				t.Fatalf("status %d (want %d), request hash ok %v (producer got %s bytes), response hash ok %v (%d bytes): %.300q",
					res.status, tc.status, res.reqSHA == wantReq, res.reqLen, res.respSHA == lbResponseSHA(t, tc.respSize), res.respLen, res.body)
			}
			if got := env.prod.chunked.Load() > chunkedBefore; got != tc.prodChunk {
				t.Errorf("producer got the request chunked = %v, want %v", got, tc.prodChunk)
			}
		})
	}
}

// TestLargeBodyRecodeIsBuffered: a request in ISO-8859-1 is re-encoded to
// UTF-8 for the producer and the answer back, as before; it is read whole.
func TestLargeBodyRecodeIsBuffered(t *testing.T) {
	env := newLBEnv(t, nil)
	head := strings.Replace(lbRequestHead(lbAddress), `encoding="UTF-8"`, `encoding="ISO-8859-1"`, 1) + "V\xe4xj\xf6 "
	body := append([]byte(head), bytes.Repeat([]byte("\xe5\xe4\xf6 abc "), 200<<10/8)...)
	body = append(body, lbRequestTail...)
	wantReq, err := DecodeToUTF8(body, "ISO-8859-1")
	if err != nil {
		t.Fatal(err)
	}
	const respSize = 300 << 10
	resp, _ := io.ReadAll(newLBResponse(respSize))
	wantResp, err := EncodeFromUTF8(resp, "ISO-8859-1")
	if err != nil {
		t.Fatal(err)
	}
	res := lbCall{client: env.client, body: bytes.NewReader(body), size: len(body), respSize: respSize}.do(t)
	if res.status != 200 || res.reqSHA != lbDigest(t, bytes.NewReader(wantReq)) || res.respSHA != lbDigest(t, bytes.NewReader(wantResp)) {
		t.Fatalf("status %d, request ok %v, response ok %v: %.300q", res.status,
			res.reqSHA == lbDigest(t, bytes.NewReader(wantReq)), res.respSHA == lbDigest(t, bytes.NewReader(wantResp)), res.body)
	}
}

// TestLargeBodyRetryAfterRefusedConnect: the one retry after a refused
// connect sends the whole streamed body, because a failed connect takes
// nothing of it. The producer's port refuses the first attempt and listens
// before the retry.
func TestLargeBodyRetryAfterRefusedConnect(t *testing.T) {
	env := newLBEnv(t, func(c *Config) { c.RetryDelay = 400 * time.Millisecond })
	addr := strings.TrimSuffix(strings.TrimPrefix(env.deadURL, "https://"), "/dead")
	late := &lbProducer{}
	var srv *fasthttp.Server
	up := make(chan error, 1)
	go func() {
		time.Sleep(100 * time.Millisecond)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			up <- err
			return
		}
		srv = &fasthttp.Server{Handler: late.handle, StreamRequestBody: true, MaxRequestBodySize: 1 << 30, Logger: lbNopLogger{}}
		up <- nil
		_ = srv.Serve(tls.NewListener(ln, env.certs.producer))
	}()
	const n = 2 << 20
	start := time.Now()
	res := env.do(t, lbDead, n, false, 5000, nil)
	if err := <-up; err != nil {
		t.Skipf("could not take the refused port back: %v", err)
	}
	t.Cleanup(func() { _ = srv.Shutdown() })
	if res.status != 200 || res.reqSHA != lbRequestSHA(t, lbDead, n) || res.respLen != 5000 {
		t.Fatalf("status %d, request hash ok %v (producer got %s bytes): %.400q", res.status, res.reqSHA == lbRequestSHA(t, lbDead, n), res.reqLen, res.body)
	}
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Errorf("answered after %v, before the retry delay", d)
	}
	if late.calls.Load() != 1 {
		t.Errorf("producer got %d calls, want 1", late.calls.Load())
	}
}

// TestLargeBodyRefusedConnectIsVP009: no producer at all: VP009 after the
// retry, and the streamed body is drained, keeping the connection.
func TestLargeBodyRefusedConnectIsVP009(t *testing.T) {
	env := newLBEnv(t, nil)
	start := time.Now()
	res := env.do(t, lbDead, 1<<20, true, 100, nil)
	if lbFaultCode(res) != "VP009" || !strings.Contains(string(res.body), "refused") {
		t.Fatalf("status %d: %.500q", res.status, res.body)
	}
	if time.Since(start) < 50*time.Millisecond {
		t.Error("no retry delay")
	}
	if res.connectionClose {
		t.Error("connection closed")
	}
	if res := env.do(t, lbAddress, 100<<10, false, 100, nil); res.status != 200 {
		t.Fatalf("next call: status %d", res.status)
	}
}

// lbRaw sends raw bytes over a new TLS connection to the router and returns
// everything the router sends back until it closes the connection.
func (e *lbEnv) raw(t *testing.T, write func(w io.Writer) error) []byte {
	t.Helper()
	addr, _ := e.r.Addrs()
	conn, err := tls.Dial("tcp", addr, e.certs.consumer)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	errc := make(chan error, 1)
	go func() { errc <- write(conn) }()
	got, err := io.ReadAll(conn)
	if err != nil && len(got) == 0 {
		t.Fatalf("read: %v (write: %v)", err, <-errc)
	}
	<-errc
	return got
}

func lbRawHead(length string) string {
	h := "POST /vp HTTP/1.1\r\nHost: vaxel\r\nContent-Type: text/xml; charset=UTF-8\r\n" + lbHdrRespSize + ": 100\r\n"
	if length == "chunked" {
		return h + "Transfer-Encoding: chunked\r\n\r\n"
	}
	return h + "Content-Length: " + length + "\r\n\r\n"
}

// TestLargeBodyLimits: MaxBodySize still bounds both directions.
func TestLargeBodyLimits(t *testing.T) {
	const limit = 1 << 20
	env := newLBEnv(t, func(c *Config) { c.MaxBodySize = limit })
	ok := func(t *testing.T, got []byte, want string) {
		t.Helper()
		if !bytes.HasPrefix(got, []byte(want)) || !bytes.Contains(got, []byte("\r\nConnection: close\r\n")) {
			t.Fatalf("got %.300q, want %q and Connection: close", got, want)
		}
	}
	t.Run("request Content-Length over the limit, refused unread", func(t *testing.T) {
		ok(t, env.raw(t, func(w io.Writer) error {
			// fasthttp reads the first 8 KiB of a body before the handler
			// runs; send just those, so that closing resets nothing.
			if _, err := io.WriteString(w, lbRawHead(strconv.Itoa(limit+1))); err != nil {
				return err
			}
			_, err := io.CopyN(w, newLBRequest(lbAddress, limit+1), 8<<10)
			return err
		}), "HTTP/1.1 413 ")
	})
	t.Run("chunked request passing the limit while it streams", func(t *testing.T) {
		ok(t, env.raw(t, func(w io.Writer) error {
			// One chunk of limit+1 bytes, then nothing more: everything
			// sent is read, so closing does not reset the connection.
			if _, err := io.WriteString(w, lbRawHead("chunked")+strconv.FormatInt(limit+1, 16)+"\r\n"); err != nil {
				return err
			}
			if _, err := io.Copy(w, newLBRequest(lbAddress, limit+1)); err != nil {
				return err
			}
			_, err := io.WriteString(w, "\r\n")
			return err
		}), "HTTP/1.1 413 ")
	})
	t.Run("response Content-Length over the limit is VP009", func(t *testing.T) {
		res := env.do(t, lbAddress, 1000, false, limit+1, nil)
		if lbFaultCode(res) != "VP009" || !strings.Contains(string(res.body), fasthttp.ErrBodyTooLarge.Error()) {
			t.Fatalf("status %d: %.500q", res.status, res.body)
		}
	})
	t.Run("chunked response passing the limit is cut off", func(t *testing.T) {
		got := env.raw(t, func(w io.Writer) error {
			h := strings.Replace(lbRawHead("1000"), "\r\n\r\n", "\r\n"+lbHdrChunked+": 1\r\nConnection: close\r\n\r\n", 1)
			h = strings.Replace(h, lbHdrRespSize+": 100", lbHdrRespSize+": "+strconv.Itoa(2*limit), 1)
			if _, err := io.WriteString(w, h); err != nil {
				return err
			}
			_, err := io.Copy(w, newLBRequest(lbAddress, 1000))
			return err
		})
		if !bytes.HasPrefix(got, []byte("HTTP/1.1 200 ")) || !bytes.Contains(got, []byte("Transfer-Encoding: chunked")) {
			t.Fatalf("got %.300q", got)
		}
		if bytes.HasSuffix(got, []byte("\r\n0\r\n\r\n")) || len(got) > limit+100<<10 {
			t.Fatalf("response of %d bytes ends like a complete chunked body: %q", len(got), got[max(0, len(got)-20):])
		}
	})
}

// lbPrefixInputs are documents for the prefix property: the reference
// examples, and variants that put the interesting bytes (references, CDATA,
// comments, multi-byte characters, malformed markup, other encodings) where
// a cut can fall into them.
func lbPrefixInputs(t testing.TB) [][]byte {
	var docs [][]byte
	for _, name := range rivtaExamples(t) {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, b)
	}
	tail := "\n      <urn:GetCertificateRequest>\n         <urn:certificateId>?</urn:certificateId>\n      </urn:GetCertificateRequest>\n   </soapenv:Body>\n</soapenv:Envelope>"
	for _, s := range []string{
		rivta20("\n      <add:To>HttpsProducer</add:To>\n   "),
		rivta20(`<add:To>A&amp;B&#x20;C&#65;&lt;</add:To>`),
		rivta20(`<add:To><![CDATA[CD<ADDR>]]></add:To>`),
		rivta20(`<add:To><!--C-->ADDR</add:To>`),
		rivta20(`<add:To>FIRST</add:To><add:LogicalAddress>SECOND</add:LogicalAddress>`),
		rivta20("<add:To>a\r\nb\rc</add:To>"),
		"\xef\xbb\xbf" + rivta20(`<add:To>BOM</add:To>`),
		`<e:Envelope xmlns:e="e"><e:Header><ä:To xmlns:ä="x">Växjö 😀</ä:To></e:Header><e:Body><c:Å xmlns:c="c"/></e:Body></e:Envelope>`,
		rivtaEnv20 + `<soapenv:Header><add:To>A</add:To></soapenv:Header><soapenv:Body><urn:Req><<<& broken </wrong>`,
		rivtaEnv20 + "<soapenv:Body><urn:Req>\xff\xfe</soapenv:Body>",
		rivtaEnv20 + `<soapenv:Header><add:To>A</add:To></soapenv:Header><soapenv:Body></soapenv:Body></soapenv:Envelope>`,
		rivtaEnv20 + `<soapenv:Header><add:To>A</add:To></soapenv:Header></soapenv:Envelope><!-- epilog -->` + "\n",
		rivtaEnv20 + `<soapenv:Header><add:To>A</add:To></soapenv:Header></soapenv:Envelope>junk`,
		rivtaEnv20 + `<soapenv:Header><add:To>A<soapenv:Body><x:Y xmlns:x="y"/></soapenv:Body></add:To></soapenv:Header><soapenv:Body><urn:Z/></soapenv:Body></soapenv:Envelope>`,
		rivtaEnv20 + "<soapenv:Header><add:To>A\x01</add:To></soapenv:Header><soapenv:Body><urn:Z/></soapenv:Body></soapenv:Envelope>",
		rivtaEnv20 + "<soapenv:Header><add:To>\xc3</add:To></soapenv:Header><soapenv:Body><urn:Z/></soapenv:Body></soapenv:Envelope>",
		`<?xml version="1.0" encoding="ISO-8859-1"?>` + rivta20("<add:To>V\xe4xj\xf6</add:To>"),
		`<?xml version="1.0" encoding="UTF-16"?>` + rivta20("<add:To>U16</add:To>"),
		`<?xml version="1.1"?>` + rivta20("<add:To>X11</add:To>"),
		`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Header><h:LogicalAddress xmlns:h="urn:riv:itintegration:registry:1">SE1</h:LogicalAddress></soapenv:Header><soapenv:Body><c:R xmlns:c="urn:c" a="&lt;&#x10FFFF;"/>` + tail,
		`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Header><h:LogicalAddress xmlns:h="urn:riv:itintegration:registry:1">SE1</h:LogicalAddress></soapenv:Header><soapenv:Body><c:R xmlns:c="urn:c" xmlns:c="urn:d"/>` + tail,
	} {
		docs = append(docs, []byte(s))
	}
	docs = append(docs, rivtaUTF16(rivta20("<add:To>UTF16</add:To>"), true, true), rivtaUTF16(rivta20("<add:To>UTF16</add:To>"), false, false))
	return docs
}

// lbCheckPrefix is the property the router routes on (stream.go): for every
// cut, when the first bytes decide a streamed call (ReadRequest finds the
// first Body child, no re-encoding), the whole document gives the same
// RequestInfo; and when convertProfile reaches the Body within those bytes,
// its output followed by the rest equals converting the whole document.
func lbCheckPrefix(t *testing.T, doc []byte, cut int) {
	full, fullErr := ReadRequest(doc)
	prefix := doc[:cut]
	info, err := ReadRequest(prefix)
	if err != nil || !info.ContractFound || needsRecode(info.Encoding, prefix) {
		return // not decided by the prefix: the router reads on
	}
	if fullErr != nil || info != full {
		t.Fatalf("cut %d of %q:\nprefix gives %+v\nwhole gives  %+v, %v", cut, doc, info, full, fullErr)
	}
	for _, pair := range [][2]Profile{{ProfileBP20, ProfileBP21}, {ProfileBP21, ProfileBP20}} {
		conv, atBody, err := convertProfile(prefix, pair[0], pair[1])
		if err != nil || !atBody {
			continue // the router converts the whole body then
		}
		want, err := ConvertProfile(doc, pair[0], pair[1])
		if got := append(conv, doc[cut:]...); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("cut %d of %q, %v→%v:\nprefix+rest %q\nwhole       %q (%v)", cut, doc, pair[0], pair[1], got, want, err)
		}
	}
}

func TestStreamPrefixDecidesLikeWholeBody(t *testing.T) {
	decided, step := 0, 1
	if raceEnabled {
		step = 7 // the parser has no goroutines; this only saves time
	}
	for _, doc := range lbPrefixInputs(t) {
		for cut := 0; cut <= len(doc); cut += step {
			lbCheckPrefix(t, doc, cut)
			if info, err := ReadRequest(doc[:cut]); err == nil && info.ContractFound {
				decided++
			}
		}
	}
	if decided == 0 {
		t.Fatal("no cut decided anything: the property was not exercised")
	}
}

func FuzzStreamPrefix(f *testing.F) {
	for _, doc := range lbPrefixInputs(f) {
		f.Add(doc, uint16(len(doc)/2))
	}
	f.Fuzz(func(t *testing.T, doc []byte, cut uint16) {
		lbCheckPrefix(t, doc, int(cut)%(len(doc)+1))
	})
}

// lbSlow yields r with a pause before each piece: a slow consumer.
type lbSlow struct {
	r     io.Reader
	piece int
	pause time.Duration
	left  int // of the current piece
}

func (s *lbSlow) Read(p []byte) (int, error) {
	if s.left == 0 {
		time.Sleep(s.pause)
		s.left = s.piece
	}
	n, err := s.r.Read(p[:min(len(p), s.left)])
	s.left -= n
	return n, err
}

// TestLargeBodyTimeouts: the contract's producer timeout counts from the
// end of a streamed request's upload, as when the request is read first,
// and still bounds the producer's answer.
func TestLargeBodyTimeouts(t *testing.T) {
	env := newLBEnv(t, nil)
	env.r.SetCatalog(lbCatalog(t, env.prodURL, env.deadURL, tak.TimeoutEntry{Contract: lbContract, ProducerTimeout: 400}))
	const n = 1 << 20
	t.Run("slow consumer upload longer than the timeout", func(t *testing.T) {
		start := time.Now()
		res := env.do(t, lbAddress, n, false, 1000, func(c *lbCall) {
			c.body = &lbSlow{r: c.body, piece: 64 << 10, pause: 50 * time.Millisecond}
		})
		if res.status != 200 || res.reqSHA != lbRequestSHA(t, lbAddress, n) {
			t.Fatalf("status %d after %v: %.400q", res.status, time.Since(start), res.body)
		}
		if d := time.Since(start); d < 600*time.Millisecond {
			t.Fatalf("upload took only %v; the test needs it longer than the timeout", d)
		}
	})
	t.Run("slow producer", func(t *testing.T) {
		res := env.do(t, lbAddress, n, false, 1000, func(c *lbCall) { c.header = lbHdrDelay + ": 1500" })
		if lbFaultCode(res) != "VP009" || !strings.Contains(string(res.body), "Timeout when waiting on response from producer") {
			t.Fatalf("status %d: %.500q", res.status, res.body)
		}
	})
}

// TestLargeBodyTruncatedChunkedAnswer: a producer that closes its
// connection between two chunks of a large answer has not sent the whole
// answer; the consumer's response must not end like a complete one (the
// router decodes producer chunks itself, since fasthttp's stream would call
// this a clean end).
func TestLargeBodyTruncatedChunkedAnswer(t *testing.T) {
	env := newLBEnv(t, nil)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", env.certs.producer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		br := bufio.NewReader(c)
		length := 0
		for range 100 {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && strings.EqualFold(k, "Content-Length") {
				length, _ = strconv.Atoi(strings.TrimSpace(v))
			}
			if line == "\r\n" {
				break
			}
		}
		if _, err := io.CopyN(io.Discard, br, int64(length)); err != nil {
			return
		}
		piece := bytes.Repeat([]byte("x"), 50<<10)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n")
		for range 4 { // 200 KiB, then the connection ends between chunks
			fmt.Fprintf(c, "%x\r\n%s\r\n", len(piece), piece)
		}
	}()
	env.r.SetCatalog(lbCatalog(t, "https://"+ln.Addr().String()+"/cut", env.deadURL))
	got := env.raw(t, func(w io.Writer) error {
		h := strings.Replace(lbRawHead("1000"), "\r\n\r\n", "\r\nConnection: close\r\n\r\n", 1)
		if _, err := io.WriteString(w, h); err != nil {
			return err
		}
		_, err := io.Copy(w, newLBRequest(lbAddress, 1000))
		return err
	})
	if !bytes.HasPrefix(got, []byte("HTTP/1.1 200 ")) {
		t.Fatalf("got %.300q", got)
	}
	if bytes.HasSuffix(got, []byte("\r\n0\r\n\r\n")) {
		t.Fatalf("a truncated answer (%d bytes) was passed on as complete", len(got))
	}
}
