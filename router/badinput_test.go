package router_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaxel/vaxel/router"
	"github.com/vaxel/vaxel/router/routertest"
)

// TestBadInput throws malformed, oversized, slow and unauthenticated input
// at one router while background good traffic runs against it: each bad
// input must get its documented fault or a TLS refusal, and every good call
// must still succeed.
func TestBadInput(t *testing.T) {
	const (
		readTimeout = time.Second
		maxBody     = 64 << 10
		maxHeader   = 16 << 10
		goodLA      = "SE-GOOD"
	)
	k := routertest.NewPKI(t)
	prod := routertest.NewProducer(t, nil)
	cat := routertest.NewCatalog(t).RouteAuth(nsPing, goodLA, "RIVTABP21", prod.URL+"/ping", consumerID).Build()
	r := start(t, k, func(c *router.Config) {
		// No loopback peer is allowed on the plain-HTTP listener.
		c.HTTPAllowList = router.IPAllowList{"10."}
		c.ReadTimeout = readTimeout
		c.MaxBodySize = maxBody
		c.MaxHeaderSize = maxHeader
	}, cat)
	good := routertest.Envelope21(goodLA, nsPing)
	consumer := routertest.NewHTTPSClient(t, r.HTTPS, k.ClientTLS(t, k.Consumer))

	var clients []*routertest.Client
	for range 4 {
		clients = append(clients, routertest.NewHTTPSClient(t, r.HTTPS, k.ClientTLS(t, k.Consumer)))
	}
	load := routertest.StartTraffic(clients, good, routertest.CheckOK(routertest.OKResponse), 20000, 45*time.Second)
	stopped := false
	defer func() {
		if !stopped {
			load.Stop()
		}
	}()
	// during repeats the bad input f until good calls have completed
	// meanwhile (at least once, bounded in rounds and time), so the bad
	// input really interleaves with the good traffic.
	during := func(t *testing.T, f func()) {
		t.Helper()
		before, deadline := load.OK(), time.Now().Add(5*time.Second)
		for i := 0; ; i++ {
			t0 := time.Now()
			f()
			if d := time.Since(t0); d > 500*time.Millisecond {
				t.Logf("bad input round %d took %s; good calls %d -> %d", i, d, before, load.OK())
			}
			if t.Failed() || load.OK() >= before+3 || i == 199 || time.Now().After(deadline) {
				break
			}
		}
		if !t.Failed() && load.OK() == before {
			t.Errorf("no good call completed meanwhile")
		}
	}
	waitGood := func(n int) {
		deadline := time.Now().Add(10 * time.Second)
		for target := load.OK() + n; load.OK() < target && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitGood(5)

	t.Run("malformed XML is VP015", func(t *testing.T) {
		for _, tc := range []struct{ req, detail string }{
			{`<felaktigt format soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">`,
				"Unexpected character 's' (code 115) expected '='\n at [row,col {unknown-source}]: [1,19]"},
			{strings.Replace(good, "<soapenv:Body>", "<--soapenv:Body>", 1), ""},
			{good[:len(good)/3], ""},
			{"\x00\x01\x02binary", ""},
			{strings.Repeat("<a>", 10000), ""},
		} {
			during(t, func() {
				resp := consumer.Post(t, tc.req, nil)
				if tc.detail != "" {
					wantFault(t, resp, "VP015", tc.detail)
				} else {
					wantFaultPrefix(t, resp, "VP015", "", "")
				}
			})
		}
	})
	t.Run("missing Body is VP004 with namespace null", func(t *testing.T) {
		for _, req := range []string{
			`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:add="urn:riv:itintegration:registry:1"><soapenv:Header><add:LogicalAddress>` + goodLA + `</add:LogicalAddress></soapenv:Header></soapenv:Envelope>`,
			routertest.EnvelopeWith(`<add:LogicalAddress>`+goodLA+`</add:LogicalAddress>`, ""),
		} {
			during(t, func() {
				wantFault(t, consumer.Post(t, req, nil), "VP004",
					"No receiverId (logical address) found for serviceNamespace: null, receiverId: "+goodLA)
			})
		}
	})
	t.Run("huge headers are refused with 431", func(t *testing.T) {
		for name, h := range map[string]map[string]string{
			"one huge header": {"X-Huge": strings.Repeat("a", 4*maxHeader)},
			"many headers":    manyHeaders(2000),
		} {
			during(t, func() {
				c, err := routertest.DialTLS(r.HTTPS, k.ClientTLS(t, k.Consumer), 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				resp, _, err := routertest.Exchange(c, routertest.RawRequest("127.0.0.1", h, good), 10*time.Second)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
					t.Errorf("%s: status %d, want 431", name, resp.StatusCode)
				}
			})
		}
	})
	t.Run("body over the limit is refused with 413", func(t *testing.T) {
		big := strings.Repeat("x", 2*maxBody)
		cases := []struct {
			name string
			raw  []byte
		}{
			// Refused on the declared length: only the first 16 KiB of
			// the body follow, then the client waits for the answer.
			{"declared length", routertest.RawRequest("127.0.0.1", map[string]string{"Content-Length": strconv.Itoa(10 * maxBody)}, (good + big)[:16<<10])},
			{"sent body", routertest.RawRequest("127.0.0.1", nil, good+big)},
			{"chunked body", routertest.RawRequest("127.0.0.1", map[string]string{"Transfer-Encoding": "chunked"}, chunked(good+big, 8<<10))},
		}
		for _, tc := range cases {
			during(t, func() {
				c, err := routertest.DialTLS(r.HTTPS, k.ClientTLS(t, k.Consumer), 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				resp, _, err := routertest.Exchange(c, tc.raw, 10*time.Second)
				if err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				if resp.StatusCode != http.StatusRequestEntityTooLarge {
					t.Errorf("%s: status %d, want 413", tc.name, resp.StatusCode)
				}
			})
		}
		// Just under the limit still works.
		pad := strings.Repeat(" ", maxBody-len(good)-1)
		wantOK(t, consumer.Post(t, good+pad, nil))
	})
	t.Run("slow clients are cut by ReadTimeout and block nobody", func(t *testing.T) {
		const slow = 20
		bound := readTimeout + 3*time.Second
		var wg sync.WaitGroup
		errs := make(chan string, 3*slow)
		ctls := k.ClientTLS(t, k.Consumer)
		func() {
			for i := range slow {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var c net.Conn
					var err error
					t0 := time.Now()
					if i%3 == 0 { // TCP only: not even a TLS handshake
						c, err = net.DialTimeout("tcp", r.HTTPS, 5*time.Second)
					} else {
						c, err = routertest.DialTLS(r.HTTPS, ctls, 5*time.Second)
					}
					if err != nil {
						if i%3 != 0 && time.Since(t0) >= readTimeout*9/10 {
							return // a slow handshake, cut by the server: fine
						}
						errs <- err.Error()
						return
					}
					defer c.Close()
					stop := make(chan struct{})
					defer close(stop)
					switch i % 3 {
					case 1: // TLS, then the request line and nothing more
						// A write error is the server having cut the
						// connection already (a slow handshake under load).
						_, _ = c.Write([]byte("POST /vp HTTP/1.1\r\n"))
					case 2: // slowloris: headers trickled, one byte every 50 ms
						req := routertest.RawRequest("127.0.0.1", map[string]string{"X-Slow": strings.Repeat("s", 400)}, good)
						go func() {
							for _, b := range req {
								select {
								case <-stop:
									return
								case <-time.After(50 * time.Millisecond):
								}
								if _, err := c.Write([]byte{b}); err != nil {
									return // cut by the server
								}
							}
						}()
					}
					_, got, closed := routertest.WaitClosed(c, bound)
					took := time.Since(t0)
					switch {
					case !closed:
						errs <- "slow connection " + strconv.Itoa(i) + " still open after " + bound.String()
					case took > bound:
						errs <- "slow connection " + strconv.Itoa(i) + " cut after " + took.String()
					case strings.Contains(string(got), " 200 "):
						errs <- "slow connection " + strconv.Itoa(i) + " got a 200"
					}
				}()
			}
			// Good calls go on while the slow connections are held open.
			time.Sleep(readTimeout / 2)
			before := load.OK()
			waitGood(10)
			if load.OK() < before+10 {
				errs <- "good traffic stalled while slow clients were connected"
			}
			wg.Wait()
		}()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
	})
	t.Run("certificate from a foreign CA is refused by TLS", func(t *testing.T) {
		during(t, func() { tlsRefused(t, r.HTTPS, k.ClientTLS(t, k.Alien), good) })
	})
	t.Run("expired certificate is refused by TLS", func(t *testing.T) {
		during(t, func() { tlsRefused(t, r.HTTPS, k.ClientTLS(t, k.Expired), good) })
	})
	t.Run("no certificate is refused by TLS", func(t *testing.T) {
		during(t, func() { tlsRefused(t, r.HTTPS, k.ClientTLS(t, nil), good) })
	})
	t.Run("plain HTTP on the TLS listener gets no answer", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", r.HTTPS, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write(routertest.RawRequest("127.0.0.1", nil, good)); err != nil {
			t.Fatal(err)
		}
		_, got, closed := routertest.WaitClosed(c, readTimeout+3*time.Second)
		if !closed || strings.Contains(string(got), "HTTP/1.1 200") {
			t.Errorf("closed=%v, got %q", closed, got)
		}
	})
	t.Run("certificate without SERIALNUMBER is VP002", func(t *testing.T) {
		c := routertest.NewHTTPSClient(t, r.HTTPS, k.ClientTLS(t, k.NoSerial))
		during(t, func() {
			wantFault(t, c.Post(t, good, nil), "VP002", "No senderId found in Certificate: CN="+routertest.NoSerialCN)
		})
	})
	t.Run("x-vp-sender-id from a peer not allow-listed is VP011", func(t *testing.T) {
		c := routertest.NewHTTPClient(t, r.HTTP)
		for _, h := range []map[string]string{
			{"x-vp-sender-id": consumerID, "x-vp-instance-id": instance},
			{"X-Vp-Sender-Id": consumerID, "X-Vp-Instance-Id": instance, "X-Forwarded-For": "10.0.0.1"},
			{"x-vp-auth-cert": routertest.CertHeader(k.Consumer)},
		} {
			during(t, func() {
				wantFault(t, c.Post(t, good, h), "VP011",
					"Caller was not on the white list of accepted IP-addresses.  IP-address: 127.0.0.1. HTTP header that caused checking: CamelNettyRemoteAddress")
			})
		}
	})

	ok, failures := load.Stop()
	stopped = true
	for i, f := range failures {
		if i == 10 {
			t.Errorf("… and %d more failed good calls", len(failures)-10)
			break
		}
		t.Errorf("good call failed: %s", f)
	}
	if ok < 20 {
		t.Errorf("only %d good calls completed", ok)
	}
	reqs := prod.Requests()
	if len(reqs) < ok {
		t.Errorf("producer saw %d calls, fewer than the %d good calls", len(reqs), ok)
	}
	// No bad input reached the producer as a request: every request it
	// got whole is the good one (once padded to just under the limit). An
	// oversized chunked body may have started streaming before it passed
	// the limit; then the producer call must have been aborted, so the
	// producer never got a complete request (stream.go, "Limits").
	aborted := 0
	for _, q := range reqs {
		if q.BodyErr != nil {
			aborted++
			continue
		}
		if strings.TrimRight(string(q.Body), " ") != good {
			t.Errorf("producer got a request that is not the good one: %d bytes, %.200q … %q", len(q.Body), q.Body, q.Body[max(0, len(q.Body)-40):])
			break
		}
	}
	if aborted > 0 {
		t.Logf("%d oversized requests reached the producer in part and were aborted", aborted)
	}
	t.Logf("%d good calls succeeded during the bad input", ok)
}

// tlsRefused checks that a consumer with tc cannot get an HTTP answer: the
// handshake, or the first read after it (TLS 1.3), fails with a TLS alert.
func tlsRefused(t *testing.T, addr string, tc *tls.Config, body string) {
	t.Helper()
	for _, max := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		tc := tc.Clone()
		tc.MaxVersion = max
		c, err := routertest.DialTLS(addr, tc, 5*time.Second)
		if err == nil {
			var resp *http.Response
			resp, _, err = routertest.Exchange(c, routertest.RawRequest("127.0.0.1", nil, body), 5*time.Second)
			if err == nil {
				t.Fatalf("TLS 1.%d: got HTTP %d, want a TLS refusal", max-tls.VersionTLS10, resp.StatusCode)
			}
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "tls") {
			t.Errorf("TLS 1.%d: %v, want a TLS alert", max-tls.VersionTLS10, err)
		} else if !strings.Contains(err.Error(), "tls: ") {
			t.Errorf("TLS 1.%d: %v, want a TLS alert", max-tls.VersionTLS10, err)
		}
	}
}

func manyHeaders(n int) map[string]string {
	h := make(map[string]string, n)
	for i := range n {
		h["X-Many-"+strconv.Itoa(i)] = "value"
	}
	return h
}

// chunked encodes body in chunks of size n, with the terminating chunk.
func chunked(body string, n int) string {
	var b strings.Builder
	for len(body) > 0 {
		m := min(n, len(body))
		b.WriteString(strconv.FormatInt(int64(m), 16) + "\r\n" + body[:m] + "\r\n")
		body = body[m:]
	}
	b.WriteString("0\r\n\r\n")
	return b.String()
}
