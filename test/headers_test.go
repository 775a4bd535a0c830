package test

import (
	"bytes"
	"encoding/binary"
	"regexp"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/vaxel/vaxel/test/harness"
)

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// A1: RIV20 GetCertificate to HttpProducer over HTTPS: the producer gets a
// POST to the route's path with VP's outbound headers; the consumer gets the
// producer's body, 200, x-skltp-prt and x-skltp-correlation-id.
func TestA01_HappyPathHTTPProducer(t *testing.T) {
	n := nodeA(t)
	body := certReq(t, "HttpProducer")
	r, id := call(t, n.HTTPSURL(), consumerTP, body, map[string]string{
		"SOAPAction":                        "urn:riv:insuranceprocess:healthreporting:GetCertificateResponder:1:GetCertificate",
		"x-rivta-acting-on-behalf-of-hsaid": "SE0000000001-1234",
		"Accept-Encoding":                   "gzip, deflate",
		"X-Forwarded-For":                   "10.1.2.3",
		"MULE_SESSION":                      "leftover",
	})
	ok(t, r)
	if want := string(testdata(t, "getcertificate-response.xml")); string(r.Body) != want {
		t.Errorf("consumer body\n got %q\nwant the producer's %q", r.Body, want)
	}
	got := received(t, env.http, id, 1)[0]
	if got.Method != "POST" || got.Path != pathOK {
		t.Errorf("producer got %s %s, want POST %s", got.Method, got.Path, pathOK)
	}
	if !bytes.Equal(got.Body, body) {
		t.Errorf("producer body differs from the consumer's (same RIV profile: untouched)\n got %q\nwant %q", got.Body, body)
	}
	h := got.Header
	for k, want := range map[string]string{
		"x-rivta-original-serviceconsumer-hsaid": consumerTP,
		"x-vp-sender-id":                         consumerTP,
		"x-vp-instance-id":                       instanceID,
		"Content-Type":                           "text/xml;charset=UTF-8",
		"SOAPAction":                             "urn:riv:insuranceprocess:healthreporting:GetCertificateResponder:1:GetCertificate",
		"x-rivta-acting-on-behalf-of-hsaid":      "SE0000000001-1234",
	} {
		if v := h.Get(k); v != want {
			t.Errorf("producer header %s = %q, want %q", k, v, want)
		}
	}
	if ua := h.Get("User-Agent"); !strings.HasPrefix(ua, "SKLTP VP/") {
		t.Errorf("producer User-Agent %q, want VP's configured agent (SKLTP VP/…), not the consumer's", ua)
	}
	corr := h.Get("x-skltp-correlation-id")
	if !uuidV4.MatchString(corr) {
		t.Errorf("producer x-skltp-correlation-id %q is not a generated UUIDv4", corr)
	}
	if rc := r.Header.Get("x-skltp-correlation-id"); rc != corr {
		t.Errorf("consumer got correlation id %q, producer %q; want the same", rc, corr)
	}
	// The remove-list of §2.7.
	for k, v := range h {
		for _, removed := range []string{"Accept-Encoding", "X-Forwarded-For", "MULE_SESSION"} {
			if strings.EqualFold(k, removed) {
				t.Errorf("producer got %s: %q; VP removes it", k, v)
			}
		}
	}
}

// A2: the same call to an https producer carries no x-vp-* headers (not
// even ones the consumer sent), and the correlation id only where the
// propagate flag is on: node A has it off, node B has the default (on).
func TestA02_HTTPSProducerNoInternalHeaders(t *testing.T) {
	for _, tc := range []struct {
		name       string
		node       func(*testing.T) *NodeRef
		wantCorr   bool
		wantCaller string
	}{
		{"propagate off (node A)", refA, false, "SE0000000000-NODEA"},
		{"propagate on (node B)", refB, true, "SE0000000000-NODEB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := tc.node(t)
			r, id := call(t, n.HTTPSURL(), consumerTP, certReq(t, "HttpsProducer"), map[string]string{
				"x-vp-sender-id":         "spoofed",
				"x-vp-instance-id":       instanceID,
				"x-skltp-correlation-id": "corr-" + tc.name,
			})
			ok(t, r)
			got := received(t, env.https, id, 1)[0]
			if got.PeerHSAID != tc.wantCaller {
				t.Errorf("https producer saw client certificate %q, want the node's %q", got.PeerHSAID, tc.wantCaller)
			}
			for k := range got.Header {
				if strings.HasPrefix(strings.ToLower(k), "x-vp") {
					t.Errorf("https producer got %s: %q; x-vp-* never go to https producers", k, got.Header.Get(k))
				}
			}
			if v := got.Header.Get("x-rivta-original-serviceconsumer-hsaid"); v != consumerTP {
				t.Errorf("original consumer %q, want %q (set for https producers too)", v, consumerTP)
			}
			corr := got.Header.Get("x-skltp-correlation-id")
			if tc.wantCorr && corr != "corr-"+tc.name {
				t.Errorf("https producer correlation id %q, want the consumer's", corr)
			}
			if !tc.wantCorr && corr != "" {
				t.Errorf("https producer got correlation id %q with propagation off", corr)
			}
			if rc := r.Header.Get("x-skltp-correlation-id"); rc != "corr-"+tc.name {
				t.Errorf("consumer got correlation id %q, want its own back", rc)
			}
		})
	}
}

// NodeRef is a started node as the table tests use it.
type NodeRef = harness.Node

func refA(t *testing.T) *NodeRef { return nodeA(t) }
func refB(t *testing.T) *NodeRef { return nodeB(t) }

// A3: a consumer's x-skltp-correlation-id goes to the http producer and
// back to the consumer unchanged, whatever case the header name is sent in
// (HTTP header names are case-insensitive; Java and .NET stacks send both).
func TestA03_CorrelationIDPropagated(t *testing.T) {
	n := nodeA(t)
	for _, name := range []string{"x-skltp-correlation-id", "X-Skltp-Correlation-Id"} {
		t.Run(name, func(t *testing.T) {
			r, id := call(t, n.HTTPSURL(), consumerTP, certReq(t, "HttpProducer"), map[string]string{name: "abc-" + name})
			ok(t, r)
			got := received(t, env.http, id, 1)[0]
			if v := got.Header.Get("x-skltp-correlation-id"); v != "abc-"+name {
				t.Errorf("producer correlation id %q, want %q", v, "abc-"+name)
			}
			if v := r.Header.Get("x-skltp-correlation-id"); v != "abc-"+name {
				t.Errorf("consumer correlation id %q, want %q", v, "abc-"+name)
			}
		})
	}
	t.Run("same id on two calls and on faults", func(t *testing.T) {
		for _, addr := range []string{"HttpProducer", "HttpProducer", "NoSuchReceiver"} {
			r, _ := call(t, n.HTTPSURL(), consumerTP, certReq(t, addr), map[string]string{"x-skltp-correlation-id": "1.3.2"})
			if v := r.Header.Get("x-skltp-correlation-id"); v != "1.3.2" {
				t.Errorf("%s: correlation id %q, want 1.3.2", addr, v)
			}
		}
	})
}

// A4: x-rivta-original-serviceconsumer-hsaid from an allowed sender is
// forwarded unchanged; from another sender it is refused with VP013 (node A,
// flag on) or forwarded with a warning in the log (node B, flag off).
func TestA04_OriginalConsumer(t *testing.T) {
	const hdr = "x-rivta-original-serviceconsumer-hsaid"
	t.Run("allowed sender", func(t *testing.T) {
		n := nodeA(t)
		r, id := call(t, n.HTTPSURL(), consumerTP, certReq(t, "HttpProducer"), map[string]string{hdr: "KONSUMENT2"})
		ok(t, r)
		if v := received(t, env.http, id, 1)[0].Header.Get(hdr); v != "KONSUMENT2" {
			t.Errorf("producer got original consumer %q, want KONSUMENT2 unchanged", v)
		}
	})
	t.Run("not allowed, VP013 on", func(t *testing.T) {
		n := nodeA(t)
		// SenderWithDefaultBehorighet may call HttpProducer ('*'), but may not set the header.
		r, id := call(t, n.HTTPSURL(), consumerDefault, certReq(t, "HttpProducer"), map[string]string{hdr: "KONSUMENT2"})
		faultDetail(t, r, "VP013", "Sender is not approved to set header x-rivta-original-serviceconsumer-hsaid.")
		received(t, env.http, id, 0)
		// Without the header the same consumer is routed.
		r, _ = call(t, n.HTTPSURL(), consumerDefault, certReq(t, "HttpProducer"), nil)
		ok(t, r)
	})
	t.Run("not allowed, warning only", func(t *testing.T) {
		n := nodeB(t)
		r, id := call(t, n.HTTPSURL(), consumerDefault, certReq(t, "HttpProducer"), map[string]string{hdr: "KONSUMENT2"})
		ok(t, r)
		if v := received(t, env.http, id, 1)[0].Header.Get(hdr); v != "KONSUMENT2" {
			t.Errorf("producer got original consumer %q, want KONSUMENT2 forwarded", v)
		}
		if !logHas(n, "WARN", hdr, consumerDefault) {
			t.Errorf("no WARN log line naming %s and sender %s; log tail:\n%s", hdr, consumerDefault, n.LogTail(20))
		}
	})
	t.Run("absent: set to the sender", func(t *testing.T) {
		n := nodeA(t)
		r, id := call(t, n.HTTPSURL(), consumerDefault, certReq(t, "HttpProducer"), nil)
		ok(t, r)
		if v := received(t, env.http, id, 1)[0].Header.Get(hdr); v != consumerDefault {
			t.Errorf("producer got original consumer %q, want the sender %q", v, consumerDefault)
		}
	})
}

// logHas reports whether a line of the node's log has level and contains
// every string of want.
func logHas(n *harness.Node, level string, want ...string) bool {
	for _, line := range strings.Split(n.Log(), "\n") {
		if !strings.Contains(line, `"level":"`+level+`"`) {
			continue
		}
		all := true
		for _, w := range want {
			all = all && strings.Contains(line, w)
		}
		if all {
			return true
		}
	}
	return false
}

// A36: of the producer's response headers, SOAPAction, MULE_* and X-MULE_*
// are removed, others kept, and Content-Type becomes text/xml; charset=UTF-8.
func TestA36_ResponseHeaderFilter(t *testing.T) {
	n := nodeA(t)
	r, _ := call(t, n.HTTPSURL(), consumerTP, certReq(t, "ProducerHeaders"), nil)
	ok(t, r)
	for _, k := range []string{"SOAPAction", "MULE_X", "X-MULE_X"} {
		if v := r.Header.Get(k); v != "" {
			t.Errorf("consumer got response header %s: %q; VP removes it", k, v)
		}
	}
	if v := r.Header.Get("MyRandomHeader"); v != "kept" {
		t.Errorf("MyRandomHeader = %q, want kept", v)
	}
	if v := r.Header.Get("x-rivta-routing-history"); v != "mock-producer" {
		t.Errorf("producer's x-rivta-routing-history = %q, want it passed through", v)
	}
	if v := r.Header.Get("Content-Type"); v != "text/xml; charset=UTF-8" {
		t.Errorf("Content-Type %q, want text/xml; charset=UTF-8 (producer sent text/plain)", v)
	}
}

// utf16BE encodes s as UTF-16 big-endian with a byte-order mark, as Java's
// "UTF-16" charset writes it.
func utf16BE(s string) []byte {
	var b bytes.Buffer
	b.Write([]byte{0xFE, 0xFF})
	for _, u := range utf16.Encode([]rune(s)) {
		_ = binary.Write(&b, binary.BigEndian, u)
	}
	return b.Bytes()
}

// decodeUTF16 decodes UTF-16 with an optional byte-order mark (big-endian
// without one).
func decodeUTF16(b []byte) (string, bool) {
	if len(b)%2 != 0 {
		return "", false
	}
	var order binary.ByteOrder = binary.BigEndian
	if len(b) >= 2 && b[0] == 0xFF && b[1] == 0xFE {
		order, b = binary.LittleEndian, b[2:]
	} else if len(b) >= 2 && b[0] == 0xFE && b[1] == 0xFF {
		b = b[2:]
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = order.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u)), true
}

// A37: a UTF-16 request reaches the producer as UTF-8 (body and
// Content-Type); the answer comes back in UTF-16 with charset=UTF-16.
func TestA37_UTF16Request(t *testing.T) {
	n := nodeA(t)
	xmlText := `<?xml version="1.0" encoding="UTF-16"?>` + string(certReq(t, "HttpProducer"))
	r, id := call(t, n.HTTPSURL(), consumerTP, utf16BE(xmlText), map[string]string{"Content-Type": "text/xml;charset=UTF-16"})
	if r.Status != 200 {
		t.Fatalf("status %d; body:\n%s", r.Status, r.Body)
	}
	got := received(t, env.http, id, 1)[0]
	if !utf8.Valid(got.Body) || !bytes.Contains(got.Body, []byte("<urn:GetCertificateRequest>")) {
		t.Fatalf("producer body is not the request in UTF-8:\n%q", got.Body)
	}
	if bytes.Contains(bytes.ToUpper(got.Body), []byte(`ENCODING="UTF-16"`)) {
		t.Errorf("producer body is UTF-8 but its XML declaration still says UTF-16:\n%s", got.Body)
	}
	if ct := got.Header.Get("Content-Type"); ct != "text/xml;charset=UTF-8" {
		t.Errorf("producer Content-Type %q, want text/xml;charset=UTF-8", ct)
	}
	if ct := r.Header.Get("Content-Type"); ct != "text/xml; charset=UTF-16" {
		t.Errorf("consumer Content-Type %q, want text/xml; charset=UTF-16", ct)
	}
	s, okUTF16 := decodeUTF16(r.Body)
	if !okUTF16 || s != string(testdata(t, "getcertificate-response.xml")) {
		t.Errorf("consumer body is not the producer's answer in UTF-16:\n%q", r.Body)
	}
}

// A41: an MTOM (multipart/related, application/xop+xml) request is
// forwarded as the plain SOAP envelope with Content-Type text/xml.
func TestA41_MTOMForwardedAsPlainSOAP(t *testing.T) {
	n := nodeA(t)
	env21 := `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header><h:LogicalAddress xmlns:h="urn:riv:itintegration:registry:1">HttpProducer</h:LogicalAddress></s:Header><s:Body><GetCertificateRequest xmlns="urn:riv:insuranceprocess:healthreporting:GetCertificateResponder:1"><certificateId>1</certificateId></GetCertificateRequest></s:Body></s:Envelope>`
	const boundary = "uuid:2b0d9d3d-f8bf-4a78-b9ad-62e0996d1872+id=1"
	mtom := "--" + boundary + "\r\n" +
		"Content-ID: <http://tempuri.org/0>\r\n" +
		"Content-Transfer-Encoding: 8bit\r\n" +
		"Content-Type: application/xop+xml;charset=utf-8;type=\"text/xml\"\r\n\r\n" +
		env21 + "\r\n--" + boundary + "--\r\n"
	ct := `multipart/related; type="application/xop+xml";start="<http://tempuri.org/0>";boundary="` + boundary + `";start-info="text/xml"`
	r, id := call(t, n.HTTPSURL(), consumerTP, []byte(mtom), map[string]string{"Content-Type": ct})
	if r.Status != 200 {
		t.Fatalf("status %d; body:\n%s", r.Status, r.Body)
	}
	got := received(t, env.http, id, 1)[0]
	// HttpProducer is RIVTABP20: the envelope is converted, so compare its parts.
	doc, err := harness.ParseXML(got.Body)
	if err != nil {
		t.Fatalf("producer body is not one XML document: %v\n%s", err, got.Body)
	}
	if doc.Name.Local != "Envelope" || doc.Name.Space != harness.SOAP11NS {
		t.Errorf("producer body root %v, want the SOAP envelope", doc.Name)
	}
	if bytes.Contains(got.Body, []byte("--uuid:")) || bytes.Contains(got.Body, []byte("Content-ID")) {
		t.Errorf("producer body still has MIME parts:\n%s", got.Body)
	}
	if c := got.Header.Get("Content-Type"); c != "text/xml;charset=UTF-8" {
		t.Errorf("producer Content-Type %q, want text/xml;charset=UTF-8", c)
	}
	if len(doc.Find("certificateId")) != 1 {
		t.Errorf("producer body lost the request body:\n%s", got.Body)
	}
}
