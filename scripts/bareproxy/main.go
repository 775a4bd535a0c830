// Command bareproxy is the floor of scripts/bench: the least a reverse proxy
// built on fasthttp (vaxel's HTTP library) can do for the benchmark's call —
// terminate the consumer's mTLS (client certificate required and verified),
// forward the request unchanged to one producer over a pooled keep-alive
// HostClient, and copy the answer back. No routing, no catalog, no headers
// touched, no log. The benchmark runs it beside nginx and vaxel so that what
// vaxel adds on top of its library, and what the library itself costs
// against nginx, are measured apart in the same run.
//
// With -rawio it makes its socket calls through router/rawio as vaxel does,
// to measure that change on the bare proxy alone (scripts/bench runs it
// without).
//
// With -upstream-tls it calls its upstream over TLS, presenting its own
// certificate (-cert, -key) and verifying the upstream's against -ca, as a
// vaxel node calls the next platform's node. scripts/bench-chain chains
// three of them this way, beside the nginx and the vaxel chains.
//
// It runs until SIGINT/SIGTERM or -max-time (a bound, default 2 h).
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/vaxel/vaxel/pki"
	"github.com/vaxel/vaxel/router/rawio"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "HTTPS listen address (client certificate required)")
	upstream := flag.String("upstream", "", "upstream host:port (plain HTTP unless -upstream-tls)")
	upTLS := flag.Bool("upstream-tls", false, "call the upstream over TLS with -cert and -key, verifying its certificate against -ca")
	cert := flag.String("cert", "", "certificate: the server's, and the client's towards the upstream with -upstream-tls")
	key := flag.String("key", "", "key of -cert")
	ca := flag.String("ca", "", "CA that client certificates (and, with -upstream-tls, the upstream's) are verified against")
	maxTime := flag.Duration("max-time", 2*time.Hour, "exit after this long (bound)")
	raw := flag.Bool("rawio", false, "make socket reads and writes through router/rawio, as vaxel does")
	pprofAddr := flag.String("pprof", "", "serve Go's profiles (/debug/pprof/) on this loopback address; empty: off")
	flag.Parse()
	if *pprofAddr != "" {
		// For comparing profiles with vaxel's (its admin API serves the same,
		// behind authentication); unauthenticated, so loopback only.
		host, _, err := net.SplitHostPort(*pprofAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			fmt.Fprintf(os.Stderr, "bareproxy: -pprof %q: want a loopback IP and port\n", *pprofAddr)
			os.Exit(2)
		}
		go func() { fmt.Fprintln(os.Stderr, "bareproxy: pprof:", http.ListenAndServe(*pprofAddr, nil)) }()
	}
	if err := run(*addr, *upstream, *cert, *key, *ca, *maxTime, *raw, *upTLS); err != nil {
		fmt.Fprintln(os.Stderr, "bareproxy:", err)
		os.Exit(1)
	}
}

func run(addr, upstream, cert, key, ca string, maxTime time.Duration, raw, upTLS bool) error {
	if upstream == "" {
		return fmt.Errorf("-upstream is required")
	}
	tc, err := pki.ServerTLSConfig(cert, key, []string{ca}, true)
	if err != nil {
		return err
	}
	scheme := "http"
	var uc *tls.Config
	if upTLS {
		if uc, err = pki.ClientTLSConfig(cert, key, []string{ca}); err != nil {
			return err
		}
		// Verified by the host it is dialled at, as vaxel does.
		if uc.ServerName, _, err = net.SplitHostPort(upstream); err != nil {
			return fmt.Errorf("-upstream %q: %w", upstream, err)
		}
		scheme = "https"
	}
	hc := &fasthttp.HostClient{
		Addr:                          upstream,
		IsTLS:                         upTLS,
		TLSConfig:                     uc,
		MaxConns:                      1024,
		MaxIdleConnDuration:           10 * time.Second,
		ReadTimeout:                   30 * time.Second,
		WriteTimeout:                  30 * time.Second,
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
		NoDefaultUserAgentHeader:      true,
	}
	if raw {
		hc.Dial = func(a string) (net.Conn, error) {
			c, err := fasthttp.Dial(a)
			if err != nil {
				return nil, err
			}
			return rawio.Wrap(c), nil
		}
	}
	h := func(ctx *fasthttp.RequestCtx) {
		// The request is forwarded as it came; Connection is hop-by-hop.
		ctx.Request.Header.Del("Connection")
		// The server parsed an https URI; the upstream leg's is the client's.
		ctx.Request.URI().SetScheme(scheme)
		if err := hc.Do(&ctx.Request, &ctx.Response); err != nil {
			ctx.Error("producer: "+err.Error(), fasthttp.StatusBadGateway)
			return
		}
		ctx.Response.Header.Del("Connection")
	}
	srv := &fasthttp.Server{
		Handler:                       h,
		Name:                          "bareproxy",
		ReadTimeout:                   2 * time.Minute,
		WriteTimeout:                  time.Minute,
		IdleTimeout:                   5 * time.Minute,
		DisableHeaderNamesNormalizing: true,
		NoDefaultServerHeader:         true,
		NoDefaultContentType:          true,
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	if raw {
		ln = rawio.Listener(ln)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(tls.NewListener(ln, tc)) }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-sig:
	case <-time.After(maxTime):
	}
	return srv.Shutdown()
}
