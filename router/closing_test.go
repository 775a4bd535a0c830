package router_test

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vaxel/vaxel/router"
	"github.com/vaxel/vaxel/router/routertest"
)

// closingServer is a TLS server that, for each request it reads whole,
// either answers it (200, keep-alive) and then closes the connection
// anyway, as a server does at its idle timeout, or (answer false) closes
// without answering, as a node killed after reading a call does. It
// counts the requests it read.
type closingServer struct {
	addr string
	got  atomic.Int32
}

func newClosingServer(t *testing.T, k *routertest.PKI, answer bool) *closingServer {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", k.ProducerTLS(t))
	if err != nil {
		t.Fatal(err)
	}
	s := &closingServer{addr: ln.Addr().String()}
	serve(t, ln, func(c net.Conn) {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return
		}
		s.got.Add(1)
		if answer {
			const body = `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body/></soap:Envelope>`
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=UTF-8\r\nContent-Length: "+
				strconv.Itoa(len(body))+"\r\n\r\n"+body)
		}
	})
	return s
}

// serve accepts on ln until the test ends and hands each connection to
// handle on a goroutine of its own; the listener and every connection
// still open are closed when the test ends.
func serve(t *testing.T, ln net.Listener, handle func(net.Conn)) {
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go handle(c)
		}
	}()
}

// A pooled connection the peer closed while idle is not written on: each
// call goes on a new connection and reaches the producer once.
func TestHandlerSkipsConnectionsThePeerClosed(t *testing.T) {
	k := routertest.NewPKI(t)
	prod := newClosingServer(t, k, true)
	cat := routertest.NewCatalog(t).RouteAuth(nsPing, "SE-LA", "RIVTABP21", "https://"+prod.addr+"/p", consumerID).Build()
	r := start(t, k, nil, cat)
	c := routertest.NewHTTPSClient(t, r.HTTPS, k.ClientTLS(t, k.Consumer))
	for i := range 3 {
		resp := c.Post(t, routertest.Envelope21("SE-LA", nsPing), nil)
		if resp.Status != http.StatusOK {
			t.Fatalf("call %d on a connection the producer had closed: HTTP %d %s", i+1, resp.Status, resp.Body)
		}
		time.Sleep(50 * time.Millisecond) // the producer's close arrives
	}
	if n := prod.got.Load(); n != 3 {
		t.Errorf("the producer read %d requests, want 3", n)
	}
}

// A node of a platform that read the whole call and then closed the
// connection without answering (killed, say) may have passed the call on:
// the call fails, and is never sent to another node of the platform.
func TestHandlerNeverResendsACallANodeRead(t *testing.T) {
	k := routertest.NewPKI(t)
	bad := newClosingServer(t, k, false)
	good := routertest.NewTLSProducer(t, k, nil)
	cat := routertest.NewCatalog(t).RouteAuth(nsPing, "SE-LA", "RIVTABP21", "vaxel://NATIONAL", consumerID).Build()
	r := start(t, k, nil, cat)
	c := routertest.NewHTTPSClient(t, r.HTTPS, k.ClientTLS(t, k.Consumer))
	r.SetPlatforms(router.NewPlatforms(map[string]router.PlatformNodes{"NATIONAL": {
		Addrs:  []string{bad.addr, strings.TrimPrefix(good.URL, "https://")},
		HSAIDs: []string{routertest.ServerID, routertest.ServerID},
		Near:   1,
	}}))
	resp := c.Post(t, routertest.Envelope21("SE-LA", nsPing), nil)
	if resp.Status == http.StatusOK {
		t.Errorf("a call the first node read and dropped was answered OK: it was sent again")
	}
	if bad.got.Load() != 1 || good.Count() != 0 {
		t.Errorf("the node that read the call got it %d times, the other node %d times; want 1 and 0", bad.got.Load(), good.Count())
	}
}

// A node of a platform that accepts connections but never completes the
// TLS handshake (frozen) is passed by within the platform connect timeout,
// and the call goes to another node: nothing was sent to the frozen one.
func TestHandlerPassesFrozenPlatformNodeBy(t *testing.T) {
	k := routertest.NewPKI(t)
	frozen, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(t, frozen, func(net.Conn) {}) // holds each connection open, silent
	good := routertest.NewTLSProducer(t, k, nil)
	cat := routertest.NewCatalog(t).RouteAuth(nsPing, "SE-LA", "RIVTABP21", "vaxel://NATIONAL", consumerID).Build()
	r := start(t, k, nil, cat)
	c := routertest.NewHTTPSClient(t, r.HTTPS, k.ClientTLS(t, k.Consumer))
	r.SetPlatforms(router.NewPlatforms(map[string]router.PlatformNodes{"NATIONAL": {
		Addrs:  []string{frozen.Addr().String(), strings.TrimPrefix(good.URL, "https://")},
		HSAIDs: []string{routertest.ServerID, routertest.ServerID},
		Near:   1,
	}}))
	start := time.Now()
	resp := c.Post(t, routertest.Envelope21("SE-LA", nsPing), nil)
	took := time.Since(start)
	if resp.Status != http.StatusOK || good.Count() != 1 {
		t.Fatalf("call with the first node frozen: HTTP %d, %d calls at the other node; want 200 and 1: %s", resp.Status, good.Count(), resp.Body)
	}
	if limit := router.DefaultConfig().PlatformConnectTimeout + time.Second; took > limit {
		t.Errorf("the call took %s with the first node frozen; want under %s (the platform connect timeout and a call)", took, limit)
	}
}
