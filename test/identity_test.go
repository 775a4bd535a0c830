package test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vaxel/vaxel/test/harness"
)

// A28: a request that is not well-formed before the first Body child is
// VP015 (Client) with the parser's message as detail (SoapUI 2.12.1/2.12.2).
func TestA28_MalformedEnvelopeVP015(t *testing.T) {
	n := nodeA(t)
	broken := `<felaktigt format soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:riv:itintegration:registry:1">
   <soapenv:Header><urn:LogicalAddress>HttpProducer</urn:LogicalAddress></soapenv:Header>
   <soapenv:Body><x/></soapenv:Body>
</soapenv:Envelope>`
	r, _ := call(t, n.HTTPSURL(), consumerTP, []byte(broken), nil)
	faultDetail(t, r, "VP015", "Unexpected character 's' (code 115) expected '='\n at [row,col {unknown-source}]: [1,19]")

	brokenBody := strings.Replace(string(certReq21(t, "HttpProducer")), "<soapenv:Body>", "<--soapenv:Body>", 1)
	r, id := call(t, n.HTTPSURL(), consumerTP, []byte(brokenBody), nil)
	if d := fault(t, r, "VP015"); d == "" {
		t.Errorf("VP015 without the parser's message")
	}
	received(t, env.http, id, 0)

	r, _ = call(t, n.HTTPSURL(), consumerTP, nil, nil)
	fault(t, r, "VP015")
}

// dialFrom returns an HTTP client whose connections come from source, a
// loopback address other than 127.0.0.1 (Linux routes all of 127/8 to lo).
func dialFrom(source string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
}

// A29: the plain-HTTP listener refuses a peer that is not on the allow
// list with VP011 naming the peer address.
func TestA29_HTTPListenerPeerNotAllowedVP011(t *testing.T) {
	n := nodeA(t)
	c := dialFrom("127.0.0.2")
	r, err := harness.Post(c, n.HTTPURL(), certReq(t, "HttpProducer"), map[string]string{"x-vp-auth-cert": env.certs[consumerTP].HeaderPEM()})
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && errors.Is(err, syscall.EADDRNOTAVAIL) {
			t.Skipf("cannot send from 127.0.0.2 on this system: %v", err)
		}
		t.Fatal(err)
	}
	faultDetail(t, r, "VP011", "Caller was not on the white list of accepted IP-addresses.  IP-address: 127.0.0.2. HTTP header that caused checking: CamelNettyRemoteAddress")
}

// A30: on the HTTP listener an internal call (x-vp-sender-id with this
// platform's x-vp-instance-id, from an allowed peer) is made as the sender
// in the header, without routing history; an X-Forwarded-For that is not
// allowed is VP011.
func TestA30_InternalCallSenderHeader(t *testing.T) {
	n := nodeA(t)
	hdr := map[string]string{"x-vp-sender-id": internalSender, "x-vp-instance-id": instanceID}
	r, id := call(t, n.HTTPURL(), "", certReq(t, "HttpProducer"), hdr)
	ok(t, r)
	got := received(t, env.http, id, 1)[0]
	if v := got.Header.Get("x-vp-sender-id"); v != internalSender {
		t.Errorf("producer x-vp-sender-id %q, want %q from the internal header", v, internalSender)
	}
	if v := got.Header.Get("x-rivta-original-serviceconsumer-hsaid"); v != internalSender {
		t.Errorf("original consumer %q, want %q", v, internalSender)
	}
	if v := got.Header.Get("x-rivta-routing-history"); v != "" {
		t.Errorf("internal call got routing history %q; internal calls have none", v)
	}
	// The header sender is authorised as itself: it may not call where tp may.
	r, _ = call(t, n.HTTPURL(), "", certReq(t, "ProducerNonSoap"), hdr)
	faultDetail(t, r, "VP007", "Authorization missing for serviceNamespace: "+nsCert+", receiverId: ProducerNonSoap, senderId: "+internalSender)

	hdr["X-Forwarded-For"] = "10.20.30.40"
	r, id = call(t, n.HTTPURL(), "", certReq(t, "HttpProducer"), hdr)
	faultDetail(t, r, "VP011", "Caller was not on the white list of accepted IP-addresses.  IP-address: 10.20.30.40. HTTP header that caused checking: X-Forwarded-For")
	received(t, env.http, id, 0)
}

// A31: with another platform's x-vp-instance-id the sender header is
// ignored and the certificate header used; without a certificate header
// the call is VP002.
func TestA31_OtherInstanceUsesCertHeader(t *testing.T) {
	n := nodeA(t)
	for _, form := range []struct{ name, value string }{
		{"PEM", env.certs[consumerTP].HeaderPEM()},
		{"Traefik base64", env.certs[consumerTP].HeaderBase64()},
	} {
		t.Run(form.name, func(t *testing.T) {
			r, id := call(t, n.HTTPURL(), "", certReq(t, "HttpProducer"), map[string]string{
				"x-vp-sender-id": internalSender, "x-vp-instance-id": "other", "x-vp-auth-cert": form.value,
			})
			ok(t, r)
			got := received(t, env.http, id, 1)[0]
			if v := got.Header.Get("x-vp-sender-id"); v != consumerTP {
				t.Errorf("producer x-vp-sender-id %q, want %q from the certificate header", v, consumerTP)
			}
			if v := got.Header.Get("x-vp-auth-cert"); v != "" {
				t.Errorf("the certificate header went to the producer")
			}
		})
	}
	t.Run("no certificate header", func(t *testing.T) {
		r, _ := call(t, n.HTTPURL(), "", certReq(t, "HttpProducer"), map[string]string{"x-vp-sender-id": internalSender, "x-vp-instance-id": "other"})
		faultDetail(t, r, "VP002", "No certificate found in httpheader x-vp-auth-cert")
	})
	t.Run("not a certificate", func(t *testing.T) {
		r, _ := call(t, n.HTTPURL(), "", certReq(t, "HttpProducer"), map[string]string{"x-vp-auth-cert": "garbage"})
		faultDetail(t, r, "VP002", "Exception, unkown certificate type found in httpheader x-vp-auth-cert")
	})
}

// A32: a certificate caller on the HTTP listener without routing history
// starts it: <consumer>#<instance id>; an existing history is extended.
func TestA32_RoutingHistoryAppended(t *testing.T) {
	n := nodeA(t)
	for _, tc := range []struct{ in, want string }{
		{"", consumerTP + "#" + instanceID},
		{"SE-CONSUMER-HSAID#SE-RTJP-HSAID", "SE-CONSUMER-HSAID#SE-RTJP-HSAID#" + instanceID},
	} {
		hdr := map[string]string{"x-vp-auth-cert": env.certs[consumerTP].HeaderPEM()}
		if tc.in != "" {
			hdr["x-rivta-routing-history"] = tc.in
		}
		r, id := call(t, n.HTTPURL(), "", certReq(t, "HttpProducer"), hdr)
		ok(t, r)
		if v := received(t, env.http, id, 1)[0].Header.Get("x-rivta-routing-history"); v != tc.want {
			t.Errorf("history %q: producer got %q, want %q", tc.in, v, tc.want)
		}
	}
}

// A33: a history that already holds this platform's instance id is a loop:
// VP014 (Server) with an empty detail. vaxel checks on its TLS listener too
// (a deliberate improvement, product.md §5), whatever the header name's case.
func TestA33_RoutingLoopVP014(t *testing.T) {
	n := nodeA(t)
	for _, tc := range []struct{ name, url, consumer, header string }{
		{"http listener", n.HTTPURL(), "", "x-rivta-routing-history"},
		{"https listener", n.HTTPSURL(), consumerTP, "x-rivta-routing-history"},
		{"canonical header case", n.HTTPSURL(), consumerTP, "X-Rivta-Routing-History"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{tc.header: "a#" + instanceID}
			if tc.consumer == "" {
				hdr["x-vp-auth-cert"] = env.certs[consumerTP].HeaderPEM()
			}
			r, id := call(t, tc.url, tc.consumer, certReq(t, "HttpProducer"), hdr)
			faultDetail(t, r, "VP014", "")
			received(t, env.http, id, 0)
		})
	}
	t.Run("own id among others, with spaces", func(t *testing.T) {
		r, _ := call(t, n.HTTPSURL(), consumerTP, certReq(t, "HttpProducer"), map[string]string{"x-rivta-routing-history": "x#b# " + instanceID + " #c"})
		faultDetail(t, r, "VP014", "")
	})
}

// A34: over TLS, a certificate without SERIALNUMBER is VP002 naming the
// subject as the reference prints it.
func TestA34_CertWithoutSerialNumberVP002(t *testing.T) {
	n := nodeA(t)
	r, _ := call(t, n.HTTPSURL(), "no-serial", certReq(t, "HttpProducer"), nil)
	faultDetail(t, r, "VP002", "No senderId found in Certificate: CN=no-serial")
}

// A35: the reference's sender pattern sees SERIALNUMBER in its hex-DER
// form (2.5.4.5=#1314…); the decoded value is the consumer.
func TestA35_HexSerialNumberDecoded(t *testing.T) {
	n := nodeA(t)
	r, id := call(t, n.HTTPSURL(), consumerB02, certReq(t, "HttpProducer"), nil)
	ok(t, r)
	if v := received(t, env.http, id, 1)[0].Header.Get("x-vp-sender-id"); v != consumerB02 {
		t.Errorf("sender %q, want the decoded SERIALNUMBER %q", v, consumerB02)
	}
	// Same through the certificate header of the HTTP listener.
	r, id = call(t, n.HTTPURL(), "", certReq(t, "HttpProducer"), map[string]string{"x-vp-auth-cert": env.certs[consumerB02].HeaderPEM()})
	ok(t, r)
	if v := received(t, env.http, id, 1)[0].Header.Get("x-vp-sender-id"); v != consumerB02 {
		t.Errorf("sender %q via header, want %q", v, consumerB02)
	}
}

// The HTTPS listener refuses a TLS client without a certificate in the
// handshake (needClientAuth), before any HTTP.
func TestA34_NoClientCertificateHandshakeRefused(t *testing.T) {
	n := nodeA(t)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: env.pki.Pool()}}}
	resp, err := c.Post(n.HTTPSURL(), "text/xml", strings.NewReader(string(certReq(t, "HttpProducer"))))
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("call without client certificate answered %d %s; want the handshake refused", resp.StatusCode, b)
	}
}
