package harness

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

// TestIDHeader is a header the tests put on every call; vaxel forwards
// arbitrary headers, so a producer can tell which test's call it received.
const TestIDHeader = "X-Test-Id"

// Received is one request as a producer saw it.
type Received struct {
	Method string
	Path   string // path and query as requested
	Header http.Header
	Body   []byte
	// PeerHSAID is the SERIALNUMBER of the client certificate the caller
	// (vaxel) presented; only on a TLS producer that asks for one.
	PeerHSAID string
	At        time.Time
}

// Handler answers one producer call; body is the request body, already read.
type Handler func(w http.ResponseWriter, r *http.Request, body []byte)

// Producer is a loopback service producer that records every request and
// answers by path.
type Producer struct {
	URL string // scheme://127.0.0.1:port

	srv      *httptest.Server
	mu       sync.Mutex
	received []Received
	handlers map[string]Handler
	fallback Handler
}

// NewProducer starts a producer on 127.0.0.1; with tlsCfg it serves HTTPS.
// Paths without a handler get fallback.
func NewProducer(tlsCfg *tls.Config, fallback Handler) *Producer {
	p := &Producer{handlers: map[string]Handler{}, fallback: fallback}
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(p.serve))
	p.srv.Config.ReadHeaderTimeout = 10 * time.Second
	if tlsCfg != nil {
		p.srv.TLS = tlsCfg
		p.srv.StartTLS()
	} else {
		p.srv.Start()
	}
	p.URL = p.srv.URL
	return p
}

// Handle sets the handler for a path (exact match, query ignored).
func (p *Producer) Handle(path string, h Handler) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.handlers[path] = h
}

func (p *Producer) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	rec := Received{Method: r.Method, Path: r.URL.RequestURI(), Header: r.Header.Clone(), Body: body, At: time.Now()}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		rec.PeerHSAID = r.TLS.PeerCertificates[0].Subject.SerialNumber
	}
	p.mu.Lock()
	p.received = append(p.received, rec)
	h := p.handlers[r.URL.Path]
	p.mu.Unlock()
	if h == nil {
		h = p.fallback
	}
	h(w, r, body)
}

// Received returns the requests that carried TestIDHeader id, in order.
func (p *Producer) Received(id string) []Received {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Received
	for _, r := range p.received {
		if r.Header.Get(TestIDHeader) == id {
			out = append(out, r)
		}
	}
	return out
}

// Close stops the producer (it waits for calls in progress).
func (p *Producer) Close() { p.srv.Close() }

// Sleep waits d or until the caller has gone, whichever comes first, so a
// slow producer never outlives the call that is waiting on it.
func Sleep(r *http.Request, d time.Duration) {
	select {
	case <-time.After(d):
	case <-r.Context().Done():
	}
}

// Serve serves h on ln until the returned function is called.
func Serve(ln net.Listener, h http.Handler) (stop func()) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return func() { _ = srv.Close() }
}
