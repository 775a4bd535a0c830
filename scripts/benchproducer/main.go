// Command benchproducer is the producer of scripts/bench: a fasthttp server
// on loopback that reads the request and answers every POST with one fixed
// SOAP response of -size bytes (default 2,048), HTTP/1.1 keep-alive. Plain
// HTTP by default (the direct leg of the benchmark and the proxies' producer
// leg); -tls-addr adds an HTTPS listener that requires a client certificate,
// for measuring the direct call over mTLS.
//
// It runs until SIGINT/SIGTERM or -max-time (a bound, default 2 h).
package main

import (
	"bytes"
	"crypto/tls"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/vaxel/vaxel/pki"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "plain HTTP listen address")
	tlsAddr := flag.String("tls-addr", "", "HTTPS (client certificate required) listen address; empty: off")
	cert := flag.String("cert", "", "server certificate for -tls-addr")
	key := flag.String("key", "", "server key for -tls-addr")
	ca := flag.String("ca", "", "client CA for -tls-addr")
	size := flag.Int("size", 2048, "response body size in bytes")
	maxTime := flag.Duration("max-time", 2*time.Hour, "exit after this long (bound)")
	addrFile := flag.String("addr-file", "", "write the bound plain address here once listening")
	flag.Parse()
	if err := run(*addr, *tlsAddr, *cert, *key, *ca, *size, *maxTime, *addrFile); err != nil {
		fmt.Fprintln(os.Stderr, "benchproducer:", err)
		os.Exit(1)
	}
}

// Response builds a well-formed RIVTA-style SOAP response of exactly n bytes
// (n ≥ 400), padded inside an element so a parser sees a normal document.
func Response(n int) []byte {
	head := `<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Header/><soap:Body><GetBenchResponse xmlns="urn:riv:vaxel:bench:GetBenchResponder:1"><result><resultCode>OK</resultCode></result><payload>`
	tail := `</payload></GetBenchResponse></soap:Body></soap:Envelope>`
	pad := n - len(head) - len(tail)
	if pad < 0 {
		pad = 0
	}
	var b bytes.Buffer
	b.WriteString(head)
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	for i := 0; i < pad; i++ {
		b.WriteByte(alphabet[i%len(alphabet)])
	}
	b.WriteString(tail)
	return b.Bytes()
}

func run(addr, tlsAddr, cert, key, ca string, size int, maxTime time.Duration, addrFile string) error {
	body := Response(size)
	h := func(ctx *fasthttp.RequestCtx) {
		if !ctx.IsPost() {
			ctx.SetStatusCode(fasthttp.StatusMethodNotAllowed)
			return
		}
		_ = ctx.PostBody() // read (fasthttp has read it already)
		ctx.Response.Header.SetContentType("text/xml;charset=UTF-8")
		ctx.Response.SetBodyRaw(body)
	}
	srv := &fasthttp.Server{
		Handler:                       h,
		Name:                          "benchproducer",
		ReadTimeout:                   2 * time.Minute,
		WriteTimeout:                  time.Minute,
		IdleTimeout:                   5 * time.Minute,
		DisableHeaderNamesNormalizing: true,
		NoDefaultDate:                 true,
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	if tlsAddr != "" {
		tc, err := serverTLS(cert, key, ca)
		if err != nil {
			return err
		}
		tln, err := net.Listen("tcp", tlsAddr)
		if err != nil {
			return err
		}
		go func() { errc <- srv.Serve(tls.NewListener(tln, tc)) }()
		fmt.Fprintf(os.Stderr, "benchproducer: https://%s (client certificate required)\n", tln.Addr())
	}
	fmt.Fprintf(os.Stderr, "benchproducer: http://%s, %d-byte responses\n", ln.Addr(), len(body))
	if addrFile != "" {
		if err := os.WriteFile(addrFile, []byte(ln.Addr().String()+"\n"), 0o644); err != nil {
			return err
		}
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-sig:
	case <-time.After(maxTime):
		fmt.Fprintln(os.Stderr, "benchproducer: -max-time reached")
	case err := <-errc:
		return err
	}
	return srv.Shutdown()
}

func serverTLS(cert, key, ca string) (*tls.Config, error) {
	return pki.ServerTLSConfig(cert, key, []string{ca}, true)
}
