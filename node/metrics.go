package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// newMetricsHandler builds the node's registry and the handler that serves
// it. The registry is the node's own, not prometheus.DefaultRegisterer: the
// tests run several nodes in one process, and nothing else in the binary
// registers metrics. The router and the catalog each hand over one
// prometheus.Collector (the narrowest type the client library offers); the
// series are listed in docs/ARCHITECTURE.md, "Metrics".
func newMetricsHandler(n *Node) (http.Handler, error) {
	reg := prometheus.NewRegistry()
	cs := []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		n.router.Collector(),
		n.store.Collector(),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "vaxel_build_info",
			Help:        "Always 1; the version label is the running vaxel version.",
			ConstLabels: prometheus.Labels{"version": Version},
		}, func() float64 { return 1 }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vaxel_node_ready",
			Help: "1 when the node can route (it holds a catalog and its router listens), as GET /ready.",
		}, func() float64 {
			if ok, _ := n.Readiness(); ok {
				return 1
			}
			return 0
		}),
	}
	if n.otlp != nil {
		cs = append(cs, n.otlp.collectors()...)
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		// A collector that fails leaves out its series, not the scrape.
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             20 * time.Second,
	}), nil
}

// scrapeListener is the optional plain-HTTP listener of admin.metrics_addr.
type scrapeListener struct {
	srv  *http.Server
	addr atomic.Pointer[string] // bound address, once listening
}

// startScrape listens on admin.metrics_addr (if set) and serves GET /metrics
// there, without authentication, until the returned stop is called; stop
// returns once the listener has stopped. A listener that fails after it
// started is logged and the node goes on: metrics are not worth stopping
// the router for.
func (a *admin) startScrape() (stop func(), err error) {
	addr := a.n.cfg.Admin.MetricsAddr
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen admin.metrics_addr %s: %w", addr, err)
	}
	bound := ln.Addr().String()
	a.scrape.addr.Store(&bound)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.metrics)
	a.scrape.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := a.scrape.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.n.log.Error("metrics listener stopped; /metrics is still served on the admin API", "addr", bound, "err", err)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := a.scrape.srv.Shutdown(ctx); err != nil {
			a.scrape.srv.Close()
		}
		<-done
	}, nil
}

// MetricsAddr returns the bound admin.metrics_addr listener, empty if it
// is off or not yet listening.
func (n *Node) MetricsAddr() string {
	if p := n.admin.scrape.addr.Load(); p != nil {
		return *p
	}
	return ""
}
