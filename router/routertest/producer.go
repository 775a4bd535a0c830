package routertest

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Recorded is one request a Producer received.
type Recorded struct {
	Method, Path string
	Host         string
	Header       http.Header // as net/http read it: names canonicalised
	Body         []byte
	// BodyErr is the error reading the body ended with: non-nil when the
	// caller aborted the request part-way, so Body is incomplete.
	BodyErr error
}

// Handler answers a producer request; body is the full request body.
// r.Context() ends when the caller goes away or the test ends, so a
// handler that waits must also wait on it (see Hang).
type Handler func(w http.ResponseWriter, r *http.Request, body []byte)

// Producer is a loopback service producer that records every request.
type Producer struct {
	// URL is the base address, e.g. http://127.0.0.1:41234; route to
	// URL + some path.
	URL string
	// Addr is host:port.
	Addr string

	srv    *httptest.Server
	h      Handler
	ctx    context.Context // cancelled when the test ends
	cancel context.CancelFunc

	mu   sync.Mutex
	reqs []Recorded
}

// NewProducer starts a plain-HTTP producer on 127.0.0.1, stopped at the end
// of the test.
func NewProducer(t testing.TB, h Handler) *Producer {
	t.Helper()
	p := newProducer(h)
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	p.finish(t)
	return p
}

// NewProducerAt is NewProducer on a given 127.0.0.1 address, e.g. one
// from FreeAddr that a call was refused on a moment ago. It returns the
// error of binding the address, which another process may have taken.
func NewProducerAt(t testing.TB, addr string, h Handler) (*Producer, error) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := newProducer(h)
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(p.serve))
	p.srv.Listener.Close()
	p.srv.Listener = ln
	p.srv.Start()
	p.finish(t)
	return p, nil
}

// NewTLSProducer starts an https producer on 127.0.0.1 presenting
// PKI.Server and requiring a client certificate from the CA.
func NewTLSProducer(t testing.TB, k *PKI, h Handler) *Producer {
	t.Helper()
	p := newProducer(h)
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(p.serve))
	p.srv.TLS = &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{KeyPair(t, k.Server)},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    k.Pool(),
	}
	p.srv.StartTLS()
	p.finish(t)
	return p
}

func newProducer(h Handler) *Producer {
	if h == nil {
		h = Reply(http.StatusOK, nil, OKResponse)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Producer{h: h, ctx: ctx, cancel: cancel}
}

func (p *Producer) finish(t testing.TB) {
	p.URL = p.srv.URL
	p.Addr = p.srv.Listener.Addr().String()
	t.Cleanup(func() {
		p.cancel() // releases handlers that hang
		p.srv.CloseClientConnections()
		p.srv.Close()
	})
}

func (p *Producer) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	p.mu.Lock()
	p.reqs = append(p.reqs, Recorded{Method: r.Method, Path: r.URL.RequestURI(), Host: r.Host, Header: r.Header.Clone(), Body: body, BodyErr: err})
	p.mu.Unlock()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(p.ctx, cancel)()
	if err != nil {
		return // an aborted request gets no answer
	}
	p.h(w, r.WithContext(ctx), body)
}

// Count returns the number of requests received so far.
func (p *Producer) Count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.reqs)
}

// Requests returns a copy of the requests received so far.
func (p *Producer) Requests() []Recorded {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Recorded(nil), p.reqs...)
}

// Last returns the last request received; the test fails if there is none.
func (p *Producer) Last(t testing.TB) Recorded {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.reqs) == 0 {
		t.Fatal("the producer received no request")
	}
	return p.reqs[len(p.reqs)-1]
}

// OKResponse is a minimal RIVTA response body.
const OKResponse = `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Header/><soapenv:Body><urn:PingForConfigurationResponse xmlns:urn="urn:riv:itintegration:monitoring:PingForConfigurationResponder:1"><urn:pingDateTime>20260101120000</urn:pingDateTime></urn:PingForConfigurationResponse></soapenv:Body></soapenv:Envelope>`

// ProducerFault is a SOAP fault as a producer answers it.
const ProducerFault = `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault><faultcode>soap:Server</faultcode><faultstring>Producer says no</faultstring><detail><code>42</code></detail></soap:Fault></soap:Body></soap:Envelope>`

// Reply answers with status, the headers (names written exactly as given)
// and body.
func Reply(status int, header map[string]string, body string) Handler {
	return func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		for k, v := range header {
			w.Header()[k] = []string{v}
		}
		if _, ok := header["Content-Type"]; !ok {
			w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// Echo answers 200 with the request body.
func Echo() Handler {
	return func(w http.ResponseWriter, _ *http.Request, body []byte) {
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		_, _ = w.Write(body)
	}
}

// Hang waits d (or until the caller gives up or the test ends) before
// answering like Reply(200, nil, OKResponse): a producer that is too slow.
func Hang(d time.Duration) Handler {
	ok := Reply(http.StatusOK, nil, OKResponse)
	return func(w http.ResponseWriter, r *http.Request, body []byte) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			ok(w, r, body)
		case <-r.Context().Done():
		}
	}
}

// FreeAddr returns a 127.0.0.1 address nothing listens on (it was free a
// moment ago): calls to it are refused.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
