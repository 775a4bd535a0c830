package test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/vaxel/vaxel/test/harness"
)

const (
	wsAddressingNS = "http://www.w3.org/2005/08/addressing"
	registryNS     = "urn:riv:itintegration:registry:1"
)

// rivHeader returns the address elements in the Header of a SOAP envelope
// the producer received.
func rivHeader(t *testing.T, body []byte) (to, la []*harness.Element, doc *harness.Element) {
	t.Helper()
	doc, err := harness.ParseXML(body)
	if err != nil {
		t.Fatalf("producer body is not XML: %v\n%s", err, body)
	}
	h := doc.Child("Header")
	if h == nil {
		t.Fatalf("producer body has no SOAP Header:\n%s", body)
	}
	return h.Find("To"), h.Find("LogicalAddress"), doc
}

// A5: a RIVTABP20 request to a RIVTABP21 route reaches the producer with
// LogicalAddress in urn:riv:itintegration:registry:1, and a RIVTABP21
// request to a RIVTABP20 route with To in WS-Addressing (the reference's
// PingForConfiguration example, §3.6).
func TestA05_RIVConversion(t *testing.T) {
	n := nodeA(t)
	t.Run("20 to 21", func(t *testing.T) {
		r, id := call(t, n.HTTPSURL(), consumerTP, certReq(t, "ReceiverRiv21"), nil)
		ok(t, r)
		got := received(t, env.http, id, 1)[0]
		to, la, doc := rivHeader(t, got.Body)
		if len(to) != 0 || len(la) != 1 {
			t.Fatalf("producer header has %d To and %d LogicalAddress, want 0 and 1:\n%s", len(to), len(la), got.Body)
		}
		if la[0].Name.Space != registryNS || la[0].Text != "ReceiverRiv21" {
			t.Errorf("LogicalAddress {%s}%q, want {%s}ReceiverRiv21", la[0].Name.Space, la[0].Text, registryNS)
		}
		if strings.Contains(string(got.Body), wsAddressingNS) {
			t.Errorf("converted request still declares WS-Addressing:\n%s", got.Body)
		}
		if b := doc.Child("Body"); b == nil || len(b.Find("certificateId")) != 1 {
			t.Errorf("converted request lost its body:\n%s", got.Body)
		}
	})
	t.Run("21 to 20 (PingForConfiguration example)", func(t *testing.T) {
		r, id := call(t, n.HTTPSURL(), consumerTP, testdata(t, "pingforconfiguration-request-rivtabp21.xml"), nil)
		ok(t, r)
		got := received(t, env.http, id, 1)[0]
		to, la, doc := rivHeader(t, got.Body)
		if len(to) != 1 || len(la) != 0 {
			t.Fatalf("producer header has %d To and %d LogicalAddress, want 1 and 0:\n%s", len(to), len(la), got.Body)
		}
		if to[0].Name.Space != wsAddressingNS || to[0].Text != "local-ping-producer" {
			t.Errorf("To {%s}%q, want {%s}local-ping-producer", to[0].Name.Space, to[0].Text, wsAddressingNS)
		}
		if strings.Contains(string(got.Body), registryNS) {
			t.Errorf("converted request still declares %s:\n%s", registryNS, got.Body)
		}
		if b := doc.Child("Body"); b == nil || len(b.Children) != 1 || b.Children[0].Name.Space != nsPing {
			t.Errorf("converted request body is not PingForConfiguration:\n%s", got.Body)
		}
	})
	t.Run("same profile untouched", func(t *testing.T) {
		body := testdata(t, "pingforconfiguration-request-rivtabp20.xml")
		r, id := call(t, n.HTTPSURL(), consumerTP, body, nil)
		ok(t, r)
		if got := received(t, env.http, id, 1)[0]; string(got.Body) != string(body) {
			t.Errorf("RIVTABP20 request to a RIVTABP20 route changed:\n%s", got.Body)
		}
	})
}

// A6: leading or trailing whitespace in the logical address is kept, so
// there is no route; the detail says so.
func TestA06_WhitespaceInAddressVP004(t *testing.T) {
	n := nodeA(t)
	for _, addr := range []string{" HttpsProducer", "HttpsProducer "} {
		r, id := call(t, n.HTTPSURL(), consumerTP, certReq(t, addr), nil)
		faultDetail(t, r, "VP004", "No receiverId (logical address) found for serviceNamespace: "+nsCert+", receiverId: "+addr+". Whitespace detected in incoming request!")
		received(t, env.https, id, 0)
	}
}

// A7: logical address, contract and consumer match case-insensitively.
func TestA07_CaseInsensitiveAddress(t *testing.T) {
	n := nodeA(t)
	for _, addr := range []string{"httpsproducer", "HTTPSPRODUCER", "hTTpsProducer"} {
		r, id := call(t, n.HTTPSURL(), consumerTP, certReq(t, addr), nil)
		ok(t, r)
		received(t, env.https, id, 1)
	}
}

// A8: an empty or blank logical address is VP003 (Client).
func TestA08_EmptyAddressVP003(t *testing.T) {
	n := nodeA(t)
	for _, la := range []string{`<add:LogicalAddress/>`, `<add:LogicalAddress></add:LogicalAddress>`, "<add:LogicalAddress>  \n </add:LogicalAddress>"} {
		body := strings.Replace(string(certReq21(t, "X")), `<add:LogicalAddress>X</add:LogicalAddress>`, la, 1)
		r, _ := call(t, n.HTTPSURL(), consumerTP, []byte(body), nil)
		faultDetail(t, r, "VP003", "No receiverId (logical address) found in message header. ")
	}
	// No address element at all.
	r, _ := call(t, n.HTTPSURL(), consumerTP, []byte(`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Header/><soapenv:Body><urn:GetCertificateRequest xmlns:urn="`+nsCert+`"/></soapenv:Body></soapenv:Envelope>`), nil)
	faultDetail(t, r, "VP003", "No receiverId (logical address) found in message header. ")
}

// vp004Example is the VP004 fault of skltp-vp.md §4.1, byte for byte, with
// the instance name of this fixture.
const vp004Example = `<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Header/><SOAP-ENV:Body><SOAP-ENV:Fault><faultcode>SOAP-ENV:Client</faultcode><faultstring>VP004 [NTjP Develop] Det finns inget vägval i tjänsteadresseringskatalogen som matchar anropets logiska adressat (ReceiverId) och tjänstekontrakt. Kontrollera uppgifterna i anropet och vid behov, beställ konfigurering i aktuell tjänsteplattform.</faultstring><detail><detailString>No receiverId (logical address) found for serviceNamespace: urn:riv:insuranceprocess:healthreporting:GetCertificateResponder:1, receiverId: NoVagvalReceiver</detailString></detail></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>`

// A9: an unknown logical address is VP004 (Client) with the exact detail;
// the whole fault is the reference's, byte for byte.
func TestA09_NoRouteVP004(t *testing.T) {
	n := nodeA(t)
	r, _ := call(t, n.HTTPSURL(), consumerTP, certReq(t, "NoVagvalReceiver"), nil)
	faultDetail(t, r, "VP004", "No receiverId (logical address) found for serviceNamespace: "+nsCert+", receiverId: NoVagvalReceiver")
	if string(r.Body) != vp004Example {
		t.Errorf("fault body\n got %s\nwant %s", r.Body, vp004Example)
	}
}

// A10: two valid routes for the address (even with different RIV
// profiles) is VP006 (Server).
func TestA10_MultipleRoutesVP006(t *testing.T) {
	n := nodeA(t)
	r, _ := call(t, n.HTTPSURL(), consumerTP, certReq(t, "ReceiverMultipleVagval"), nil)
	faultDetail(t, r, "VP006", "More than one receiverId (logical address) with matching Riv-version found for serviceNamespace: "+nsCert+", receiverId: ReceiverMultipleVagval")
}

// A11: a route with a RIV profile other than RIVTABP20/21 is VP005.
func TestA11_UnknownRIVProfileVP005(t *testing.T) {
	n := nodeA(t)
	r, _ := call(t, n.HTTPSURL(), consumerTP, certReq(t, "ReceiverUnknownRivVersion"), nil)
	faultDetail(t, r, "VP005", "No receiverId (logical address) with matching Riv-version found for rivtabp20")
	r, _ = call(t, n.HTTPSURL(), consumerTP, certReq21(t, "ReceiverUnknownRivVersion"), nil)
	faultDetail(t, r, "VP005", "No receiverId (logical address) with matching Riv-version found for rivtabp21")
}

// A12: a route whose call address has no URL is VP010.
func TestA12_NoPhysicalAddressVP010(t *testing.T) {
	n := nodeA(t)
	r, _ := call(t, n.HTTPSURL(), consumerTP, certReq(t, "ReceiverNoPhysicalAddress"), nil)
	faultDetail(t, r, "VP010", "Physical Address field is empty in Service Producer for serviceNamespace: "+nsCert+", receiverId: ReceiverNoPhysicalAddress")
}

// A13: a consumer without authorization for the address is VP007 (Server).
func TestA13_NotAuthorizedVP007(t *testing.T) {
	n := nodeA(t)
	r, id := call(t, n.HTTPSURL(), consumerTP, certReq(t, "NotAuthorizedReceiver"), nil)
	faultDetail(t, r, "VP007", "Authorization missing for serviceNamespace: "+nsCert+", receiverId: NotAuthorizedReceiver, senderId: tp")
	received(t, env.http, id, 0)
}

// A14: routing is decided before authorization: an unauthorised consumer
// calling an address without a route gets VP004, not VP007.
func TestA14_RouteBeforeAuthorization(t *testing.T) {
	n := nodeA(t)
	r, _ := call(t, n.HTTPSURL(), consumerNobody, certReq(t, "NoVagvalReceiver"), nil)
	fault(t, r, "VP004")
	if strings.Contains(string(r.Body), "VP007") {
		t.Errorf("VP004 fault mentions VP007:\n%s", r.Body)
	}
	// The same consumer is indeed unauthorised where a route exists.
	r, _ = call(t, n.HTTPSURL(), consumerNobody, certReq(t, "HttpProducer"), nil)
	faultDetail(t, r, "VP007", "Authorization missing for serviceNamespace: "+nsCert+", receiverId: HttpProducer, senderId: "+consumerNobody)
}

// explain asks the admin API how a call would be routed, with the
// reference's lookup traces.
func explain(t *testing.T, n *harness.Node, consumer, ns, la string) (routeTrace, authTrace, outcome string) {
	t.Helper()
	q := url.Values{"consumer": {consumer}, "contract": {ns}, "logicalAddress": {la}}
	r, err := n.AdminDo("GET", "/api/v1/explain?"+q.Encode(), nil)
	if err != nil || r.Status != 200 {
		t.Fatalf("explain: %v %+v", err, r)
	}
	var e struct {
		Outcome            string `json:"outcome"`
		RouteTrace         string `json:"routeTrace"`
		AuthorizationTrace string `json:"authorizationTrace"`
	}
	if err := json.Unmarshal(r.Body, &e); err != nil {
		t.Fatalf("explain: %v: %s", err, r.Body)
	}
	return e.RouteTrace, e.AuthorizationTrace, e.Outcome
}

// A15: a consumer with only a '*' authorization calling an address without
// a route of its own is routed by the '*' route (standardvägval), after the
// HSA climb found nothing.
func TestA15_DefaultRouteAndAuthorization(t *testing.T) {
	n := nodeA(t)
	r, id := call(t, n.HTTPSURL(), consumerDefault, actReq(t, "AnyReceiver"), nil)
	ok(t, r)
	if got := received(t, env.http, id, 1)[0]; got.Path != "/default" {
		t.Errorf("routed to %s, want the '*' producer /default", got.Path)
	}
	rt, at, outcome := explain(t, n, consumerDefault, nsAct, "AnyReceiver")
	if rt != "AnyReceiver,(parent),SE,(default),*" || at != "AnyReceiver,(default),*" || outcome != "routed" {
		t.Errorf("traces %q / %q (%s), want AnyReceiver,(parent),SE,(default),* / AnyReceiver,(default),* (routed)", rt, at, outcome)
	}
	// A '*' route is no authorization: tp has none for AnyReceiver.
	r, _ = call(t, n.HTTPSURL(), consumerTP, actReq(t, "AnyReceiver"), nil)
	faultDetail(t, r, "VP007", "Authorization missing for serviceNamespace: "+nsAct+", receiverId: AnyReceiver, senderId: tp")
	// An explicit route wins over '*'.
	r, id = call(t, n.HTTPSURL(), consumerDefault, actReq(t, "HttpProducer"), nil)
	ok(t, r)
	if got := received(t, env.http, id, 1)[0]; got.Path != "/activities" {
		t.Errorf("routed to %s, want the explicit route /activities", got.Path)
	}
}

// A16: an address whose grand-parent in the HSA tree has a route is routed
// there: the HSA climb comes before the '*' route.
func TestA16_HSAClimb(t *testing.T) {
	n := nodeA(t)
	r, id := call(t, n.HTTPSURL(), consumerDefault, actReq(t, "SE0000000001-1234"), nil)
	ok(t, r)
	if got := received(t, env.http, id, 1)[0]; got.Path != "/climb" {
		t.Errorf("routed to %s, want the tree-climb producer /climb", got.Path)
	}
	rt, _, _ := explain(t, n, consumerDefault, nsAct, "SE0000000001-1234")
	if want := "SE0000000001-1234,(parent),SE0000000002-1234,SE0000000003-1234"; rt != want {
		t.Errorf("route trace %q, want %q", rt, want)
	}
}

// A17: for a namespace excepted from the route climb (router
// route_climb_exceptions, the reference's hsa.lookup.vagval.exceptedNamespaces,
// matched by prefix) the same data gives VP004.
func TestA17_HSAClimbDisabledVP004(t *testing.T) {
	n := nodeA(t)
	sched := testdata(t, "rivtabp21-request-GetSubjectOfCareSchedule.xml")
	r, _ := call(t, n.HTTPSURL(), consumerDefault, harness.WithAddress(sched, "SE0000000001-1234"), nil)
	faultDetail(t, r, "VP004", "No receiverId (logical address) found for serviceNamespace: "+nsSched+", receiverId: SE0000000001-1234")
	// The route itself is there.
	r, id := call(t, n.HTTPSURL(), consumerDefault, harness.WithAddress(sched, "SE0000000003-1234"), nil)
	ok(t, r)
	received(t, env.http, id, 1)
}

// A18: old-style default routing "VG#VE" tries VE first, then VG, with no
// HSA climb and no '*'; more than two parts are refused by authorization.
func TestA18_DefaultRoutingVGVE(t *testing.T) {
	n := nodeA(t)
	for _, tc := range []struct{ addr, path string }{
		{"FirstReceiverRiv21#SecondReceiverRiv21", "/second"},
		{"SecondReceiverRiv21#FirstReceiverRiv21", "/first"},
		{"NotValidReceiver#SecondReceiverRiv21", "/second"},
		{"FirstReceiverRiv21#NotValidReceiver", "/first"},
	} {
		r, id := call(t, n.HTTPSURL(), consumerDefault, actReq(t, tc.addr), nil)
		ok(t, r)
		if got := received(t, env.http, id, 1)[0]; got.Path != tc.path {
			t.Errorf("%s routed to %s, want %s", tc.addr, got.Path, tc.path)
		}
	}
	// Neither part has a route: no fallback to '*' (which exists for this contract).
	r, _ := call(t, n.HTTPSURL(), consumerDefault, actReq(t, "NotValid1#NotValid2"), nil)
	faultDetail(t, r, "VP004", "No receiverId (logical address) found for serviceNamespace: "+nsAct+", receiverId: NotValid1#NotValid2")
	// Three parts.
	addr := "FirstReceiverRiv21#SecondReceiverRiv21#Third"
	r, _ = call(t, n.HTTPSURL(), consumerDefault, actReq(t, addr), nil)
	faultDetail(t, r, "VP007", "Authorization missing for serviceNamespace: "+nsAct+", receiverId: "+addr+", senderId: "+consumerDefault)
}
