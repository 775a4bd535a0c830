package router

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/vaxel/vaxel/router/rawio"
	"github.com/vaxel/vaxel/tak"
)

// Router serves RIVTA calls. Construct with New, feed catalogs with
// SetCatalog, run with Run.
type Router struct {
	cfg Config
	cat atomic.Pointer[tak.Catalog]
	// plats resolves call addresses that name a platform (platforms.go).
	plats atomic.Pointer[Platforms]

	clientsMu sync.Mutex // guards clients; the map is read through an atomic copy
	clients   atomic.Pointer[map[clientKey]*fasthttp.HostClient]

	addrMu    sync.Mutex // guards httpsAddr, httpAddr
	httpsAddr string
	httpAddr  string
	ready     chan struct{}

	stats   Stats
	metrics *routerMetrics
	calls   *callLog  // nil: calls are logged through cfg.Logger
	hops    *hopStore // nil: hop records are off
}

// Stats are the router's counters since start.
type Stats struct {
	Calls, Faults, ProducerErrors, Panics atomic.Uint64
}

// New validates cfg and returns a Router that answers VP008 until it gets a catalog.
func New(cfg Config) (*Router, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Router{cfg: cfg, ready: make(chan struct{})}
	r.metrics = newMetrics(&r.cat, &r.stats)
	r.hops = newHopStore(cfg.Hops, cfg.InstanceID, cfg.NodeName)
	if cfg.LogCalls && cfg.CallLogWriter != nil {
		r.calls = newCallLog(cfg.CallLogWriter, cfg.CallLogFields, cfg.Logger)
	}
	empty := map[clientKey]*fasthttp.HostClient{}
	r.clients.Store(&empty)
	return r, nil
}

// SetCatalog swaps in the catalog used by calls that start after it returns.
func (r *Router) SetCatalog(c *tak.Catalog) { r.cat.Store(c) }

// Catalog returns the catalog in use (nil before the first SetCatalog).
func (r *Router) Catalog() *tak.Catalog { return r.cat.Load() }

// Stats returns the live counters.
func (r *Router) Stats() *Stats { return &r.stats }

// Ready is closed when the listeners are bound.
func (r *Router) Ready() <-chan struct{} { return r.ready }

// Addrs returns the bound listener addresses (after Ready); http is empty if off.
func (r *Router) Addrs() (https, http string) {
	r.addrMu.Lock()
	defer r.addrMu.Unlock()
	return r.httpsAddr, r.httpAddr
}

func (r *Router) server(name string, h fasthttp.RequestHandler) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:            h,
		Name:               "vaxel",
		ReadTimeout:        r.cfg.ReadTimeout,
		WriteTimeout:       r.cfg.WriteTimeout,
		IdleTimeout:        r.cfg.IdleTimeout,
		MaxRequestBodySize: r.cfg.MaxBodySize,
		// Bodies stream: the handler reads what routing needs and copies
		// the rest to the producer (stream.go). fasthttp then no longer
		// enforces MaxRequestBodySize; the handler does.
		StreamRequestBody: true,
		ReadBufferSize:    r.cfg.MaxHeaderSize,
		// Header names go out as they came in: SOAP stacks and the
		// reference's filters care about byte-exact names.
		DisableHeaderNamesNormalizing: true,
		DisablePreParseMultipartForm:  true,
		NoDefaultServerHeader:         true,
		NoDefaultContentType:          true,
		ReduceMemoryUsage:             false,
		Logger:                        fasthttpLogger{r.cfg.Logger.With("listener", name)},
		ErrorHandler:                  refuseRequest,
	}
}

// refuseRequest answers a request fasthttp refuses before the handler
// runs. fasthttp's default says 400 to a body over MaxBodySize; the
// reference's Netty aggregator says 413 (skltp-vp.md §2.1), so do we. The
// rest is fasthttp's default: 431 for a header block over MaxHeaderSize,
// 408 on a read timeout, 400 otherwise.
func refuseRequest(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		ctx.Error("Request Entity Too Large", fasthttp.StatusRequestEntityTooLarge)
	case errors.As(err, &small):
		ctx.Error("Too big request header", fasthttp.StatusRequestHeaderFieldsTooLarge)
	case errors.As(err, &ne) && ne.Timeout():
		ctx.Error("Request timeout", fasthttp.StatusRequestTimeout)
	default:
		ctx.Error("Error when parsing request", fasthttp.StatusBadRequest)
	}
}

// Run binds the listeners, serves until ctx is cancelled, then stops
// accepting, lets calls in flight finish (bounded by the server timeouts) and
// returns once every listener has stopped.
func (r *Router) Run(ctx context.Context) error {
	// Once the listeners have stopped (the deferred call runs after the
	// shutdown below), write out every queued call line.
	defer r.FlushCallLog()
	lnTLS, err := net.Listen("tcp", r.cfg.HTTPSAddr)
	if err != nil {
		return fmt.Errorf("listen https %s: %w", r.cfg.HTTPSAddr, err)
	}
	lnTLS = rawio.Listener(lnTLS)
	tlsCfg := r.cfg.TLS.Clone()
	type srv struct {
		s  *fasthttp.Server
		ln net.Listener
	}
	servers := []srv{{r.server("https", r.handleHTTPS), tls.NewListener(lnTLS, tlsCfg)}}
	r.addrMu.Lock()
	r.httpsAddr = lnTLS.Addr().String()
	r.addrMu.Unlock()
	if r.cfg.HTTPAddr != "" {
		ln, err := net.Listen("tcp", r.cfg.HTTPAddr)
		if err != nil {
			lnTLS.Close()
			return fmt.Errorf("listen http %s: %w", r.cfg.HTTPAddr, err)
		}
		servers = append(servers, srv{r.server("http", r.handleHTTP), rawio.Listener(ln)})
		r.addrMu.Lock()
		r.httpAddr = ln.Addr().String()
		r.addrMu.Unlock()
	}
	close(r.ready)

	errs := make(chan error, len(servers))
	for _, s := range servers {
		go func() { errs <- s.s.Serve(s.ln) }()
	}
	var first error
	select {
	case <-ctx.Done():
	case first = <-errs:
	}
	sctx, cancel := context.WithTimeout(context.Background(), r.cfg.WriteTimeout+time.Second)
	defer cancel()
	for _, s := range servers {
		if err := s.s.ShutdownWithContext(sctx); err != nil && first == nil {
			first = fmt.Errorf("stop router: %w", err)
		}
	}
	if first != nil && !errors.Is(first, net.ErrClosed) {
		return first
	}
	return nil
}

// FlushCallLog writes every queued call line and stops the background call
// log writer; lines logged afterwards are written synchronously. Run calls
// it once the listeners have stopped.
func (r *Router) FlushCallLog() {
	if r.calls != nil {
		r.calls.close()
	}
}

// CallLogDropped returns how many call lines were dropped because
// CallLogWriter fell too far behind.
func (r *Router) CallLogDropped() uint64 {
	if r.calls == nil {
		return 0
	}
	return r.calls.Dropped()
}

type fasthttpLogger struct {
	l interface{ Warn(string, ...any) }
}

func (f fasthttpLogger) Printf(format string, args ...any) { f.l.Warn(fmt.Sprintf(format, args...)) }

// RoutingOptions returns the routing switches in use (read-only).
func (r *Router) RoutingOptions() *tak.RoutingOptions { return &r.cfg.Routing }
