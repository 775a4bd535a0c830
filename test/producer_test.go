package test

import (
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vaxel/vaxel/test/harness"
)

// A22: a refused connection is retried once, after the retry delay, and
// then answered VP009; if the producer comes up meanwhile, the retry
// succeeds.
func TestA22_ConnectionRefusedRetriedOnce(t *testing.T) {
	n := nodeA(t)
	t.Run("refused twice", func(t *testing.T) {
		r, _ := call(t, n.HTTPSURL(), consumerTP, certReq(t, "ReceiverNoProducerAvailable"), nil)
		url := "http://" + env.closed.Addr + "/Im/not/available"
		d := fault(t, r, "VP009")
		if !strings.HasPrefix(d, vp009Prefix(url)) {
			t.Errorf("detail %q, want prefix %q", d, vp009Prefix(url))
		}
		// One retry after retryDelay; a second retry would take another retryDelay.
		if r.Elapsed < retryDelay || r.Elapsed >= 2*retryDelay {
			t.Errorf("VP009 after %s, want one retry: between %s and %s", r.Elapsed, retryDelay, 2*retryDelay)
		}
	})
	t.Run("producer up for the retry", func(t *testing.T) {
		// A route of its own, added live, to a port that refuses until the
		// producer starts listening on it, between the first attempt and
		// the retry.
		port, err := harness.NewClosedPort()
		if err != nil {
			t.Fatal(err)
		}
		defer port.Close()
		addr := "ReceiverRetry" + strconv.FormatInt(callSeq.Add(1), 10)
		o := newOrder()
		o.route(addr, nsCert, "RIVTABP20", "http://"+port.Addr+"/retry")
		o.auth(consumerTP, nsCert, addr)
		if _, err := n.Write("POST", "/api/v1/orders", o.json()); err != nil {
			t.Fatal(err)
		}
		var calls atomic.Int32
		started := make(chan func(), 1)
		go func() {
			time.Sleep(retryDelay / 4)
			ln, err := port.Listen()
			if err != nil {
				t.Errorf("listen %s: %v", port.Addr, err)
				started <- func() {}
				return
			}
			started <- harness.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				okHandler(w, r, nil)
			}))
		}()
		r, _ := call(t, n.HTTPSURL(), consumerTP, certReq(t, addr), nil)
		stop := <-started
		defer stop()
		ok(t, r)
		if c := calls.Load(); c != 1 {
			t.Errorf("producer got %d calls, want 1 (the retry)", c)
		}
		if r.Elapsed < retryDelay {
			t.Errorf("answered after %s; the retry should wait %s", r.Elapsed, retryDelay)
		}
	})
}

// A23: a producer slower than the contract's producer timeout gets VP009
// "Timeout when waiting on response from producer." with no retry. The
// timeout is the contract's own entry of the timeout file (PUT
// /api/v1/timeouts), else its default_timeouts entry.
func TestA23_ProducerTimeout(t *testing.T) {
	n := nodeA(t)
	slow := env.http.URL + pathSlow
	timeoutDetail := vp009Prefix(slow) + "io.netty.handler.timeout.ReadTimeoutException: Timeout when waiting on response from producer.)"
	ping := harness.WithAddress(testdata(t, "pingforconfiguration-request-rivtabp21.xml"), "SlowProducer")
	delay := (pingTimeout + defaultTimeout) / 2 // longer than PingForConfiguration's, shorter than the default

	t.Run("per-contract timeout", func(t *testing.T) {
		r, id := call(t, n.HTTPSURL(), consumerTP, ping, map[string]string{delayHeader: delay.String()})
		faultDetail(t, r, "VP009", timeoutDetail)
		if r.Elapsed < pingTimeout || r.Elapsed >= delay {
			t.Errorf("VP009 after %s, want after the contract's %s and before the producer answered (%s)", r.Elapsed, pingTimeout, delay)
		}
		received(t, env.http, id, 1) // no retry
	})
	t.Run("default timeout applies to other contracts", func(t *testing.T) {
		r, _ := call(t, n.HTTPSURL(), consumerTP, certReq(t, "SlowProducer"), map[string]string{delayHeader: delay.String()})
		ok(t, r)
		long := defaultTimeout + time.Second
		r, id := call(t, n.HTTPSURL(), consumerTP, certReq(t, "SlowProducer"), map[string]string{delayHeader: long.String()})
		faultDetail(t, r, "VP009", timeoutDetail)
		if r.Elapsed < defaultTimeout || r.Elapsed >= long {
			t.Errorf("VP009 after %s, want after the default %s and before %s", r.Elapsed, defaultTimeout, long)
		}
		received(t, env.http, id, 1)
	})
}

// A24: a producer's SOAP fault with HTTP 500 reaches the consumer unchanged,
// with status 500.
func TestA24_ProducerSOAPFaultPassedThrough(t *testing.T) {
	n := nodeA(t)
	r, id := call(t, n.HTTPSURL(), consumerTP, certReq(t, "ProducerSoapFault500"), nil)
	if r.Status != 500 {
		t.Fatalf("status %d, want the producer's 500", r.Status)
	}
	if want := string(testdata(t, "producer-soapfault.xml")); string(r.Body) != want {
		t.Errorf("body\n got %q\nwant the producer's fault unchanged %q", r.Body, want)
	}
	received(t, env.http, id, 1)
}

// A25: any other non-2xx producer answer (404, 500 without a SOAP
// envelope) is VP009 with VP_PRODUCER_EXCEPTION_HTTP_STATUS, not retried.
func TestA25_ProducerHTTPErrorVP009(t *testing.T) {
	n := nodeA(t)
	for _, tc := range []struct{ addr, path, status string }{
		{"Producer404", pathNotFound, "404"},
		{"Producer500", pathError500, "500"},
	} {
		r, id := call(t, n.HTTPSURL(), consumerTP, certReq(t, tc.addr), nil)
		url := env.http.URL + tc.path
		d := fault(t, r, "VP009")
		if !strings.HasPrefix(d, vp009Prefix(url)) || !strings.HasSuffix(d, "\nVP_PRODUCER_EXCEPTION_HTTP_STATUS="+tc.status) {
			t.Errorf("%s detail %q, want %q…\\nVP_PRODUCER_EXCEPTION_HTTP_STATUS=%s", tc.addr, d, vp009Prefix(url), tc.status)
		}
		received(t, env.http, id, 1)
	}
}

// A26: a 200 without a body is VP009 "Empty message …".
func TestA26_EmptyResponseVP009(t *testing.T) {
	n := nodeA(t)
	r, _ := call(t, n.HTTPSURL(), consumerTP, certReq(t, "ProducerEmpty"), nil)
	faultDetail(t, r, "VP009", "Error connecting to service producer at address "+env.http.URL+pathEmpty+". Empty message when server responded with status code: 200 OK")
}

// A27: a 200 with a non-SOAP body or with a SOAP fault passes through
// unchanged with 200.
func TestA27_Non500PassedThrough(t *testing.T) {
	n := nodeA(t)
	for _, tc := range []struct{ addr, body string }{
		{"ProducerNonSoap", nonSOAPBody},
		{"ProducerSoapFault200", string(testdata(t, "producer-soapfault.xml"))},
	} {
		r, _ := call(t, n.HTTPSURL(), consumerTP, certReq(t, tc.addr), nil)
		if r.Status != 200 || string(r.Body) != tc.body {
			t.Errorf("%s: %d %q, want 200 with the producer's body %q", tc.addr, r.Status, r.Body, tc.body)
		}
	}
}
