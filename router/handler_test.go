package router_test

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vaxel/vaxel/router"
	"github.com/vaxel/vaxel/router/routertest"
	"github.com/vaxel/vaxel/tak"
)

// Handler-level tests: a router over real TLS on 127.0.0.1, consumers with
// certificates from a test PKI, loopback producers that record what they
// got. Expected faults are written out from skltp-vp.md §4 rather than
// taken from package router, so a wrong text in the product fails here.

const (
	nsPing     = routertest.NSPing
	nsCert     = routertest.NSCert
	consumerID = routertest.ConsumerID
	instance   = routertest.InstanceID
)

// vpFaults are faultcode and faultstring text of each code (skltp-vp.md §4.2).
var vpFaults = map[string]struct {
	code, text string
}{
	"VP002": {"SOAP-ENV:Client", "Fel i klientcertifikat. Saknas, är av felaktig typ, eller är felaktigt utformad."},
	"VP003": {"SOAP-ENV:Client", "Logisk adressat (ReceiverId) saknas i RivHeadern i inkommande meddelande."},
	"VP004": {"SOAP-ENV:Client", "Det finns inget vägval i tjänsteadresseringskatalogen som matchar anropets logiska adressat (ReceiverId) och tjänstekontrakt. Kontrollera uppgifterna i anropet och vid behov, beställ konfigurering i aktuell tjänsteplattform."},
	"VP005": {"SOAP-ENV:Client", "Tjänsteproducenten stödjer inte anropets angivna rivta-version. Kontrollera uppgifterna."},
	"VP006": {"SOAP-ENV:Server", "Internt fel i tjänsteplattformen. Det finns fler än en tjänsteproducent definierad i tjänsteadresseringskatalogen som matchar logisk adressat (ReceiverId), tjänstekontrakt och dagens datum. Tyder på felkonfiguration. Rapportera felet till tjänsteplattformsförvaltningen."},
	"VP007": {"SOAP-ENV:Server", "Tjänstekonsumenten saknar behörighet att anropa den logiska adressaten via detta tjänstekontrakt. Kontrollera uppgifterna och vid behov, tillse att det beställs konfiguration i aktuell tjänsteplattform."},
	"VP008": {"SOAP-ENV:Server", "Internt fel i tjänsteplattformen. Ingen kontakt med tjänsteadresseringskatalogen. Informera tjänsteplattformsförvaltningen."},
	"VP009": {"SOAP-ENV:Server", "Fel vid kontakt med tjänsteproducenten."},
	"VP010": {"SOAP-ENV:Server", "Internt fel i tjänsteplattformen. URL saknas för tjänsteproducenten i tjänsteplattformens tjänsteadresseringskatalog."},
	"VP011": {"SOAP-ENV:Client", "Anrop har gjorts utanför TLS vilket ej är tillåtet. Tjänstekonsumenten ska alltid använda TLS för säker kommunikation."},
	"VP012": {"SOAP-ENV:Server", "Internt fel i tjänsteplattformen. Nödvändiga resurser saknas för att VP skall fungera."},
	"VP013": {"SOAP-ENV:Client", "Enligt tjänsteplattformens konfiguration saknar tjänstekonsumenten rätt att använda headern x-rivta-original-serviceconsumer-hsaid. Kontakta tjänsteplattformsförvaltningen."},
	"VP014": {"SOAP-ENV:Server", "Anropsförmedlingen för den logiska adressaten har givit upphov till rundgång mellan tjänsteplattformar. Rapportera felet till tjänsteplattformsförvaltningen."},
	"VP015": {"SOAP-ENV:Client", "Anrop ej korrekt utformat och kan därför inte behandlas."},
}

// wantFault checks a fault answer: HTTP 500, text/xml; charset=UTF-8, a
// correlation id, a SAAJ-style envelope, faultcode and faultstring of code,
// and the detail matched by match.
func wantFaultMatch(t *testing.T, resp routertest.Response, code string, match func(string) bool, wantDetail string) routertest.Fault {
	t.Helper()
	if resp.Status != http.StatusInternalServerError {
		t.Errorf("status = %d, want 500 (body %.400q)", resp.Status, resp.Body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/xml; charset=UTF-8" {
		t.Errorf("Content-Type = %q, want %q", ct, "text/xml; charset=UTF-8")
	}
	if resp.Header.Get("x-skltp-correlation-id") == "" {
		t.Error("fault without x-skltp-correlation-id")
	}
	if !strings.HasPrefix(string(resp.Body), `<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">`) {
		t.Errorf("body does not start with the SAAJ envelope: %.200q", resp.Body)
	}
	f, err := routertest.ParseFault(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	want, ok := vpFaults[code]
	if !ok {
		t.Fatalf("no documented text for %s", code)
	}
	if f.Code != want.code {
		t.Errorf("faultcode = %q, want %q", f.Code, want.code)
	}
	if ws := code + " [" + routertest.InstanceName + "] " + want.text; f.String != ws {
		t.Errorf("faultstring = %q\nwant          %q", f.String, ws)
	}
	if !match(f.Detail) {
		t.Errorf("detailString = %q\nwant %s", f.Detail, wantDetail)
	}
	return f
}

func wantFault(t *testing.T, resp routertest.Response, code, detail string) routertest.Fault {
	t.Helper()
	return wantFaultMatch(t, resp, code, func(s string) bool { return s == detail }, strconv.Quote(detail))
}

func wantFaultPrefix(t *testing.T, resp routertest.Response, code, prefix, suffix string) routertest.Fault {
	t.Helper()
	return wantFaultMatch(t, resp, code, func(s string) bool {
		return strings.HasPrefix(s, prefix) && strings.HasSuffix(s, suffix) && len(s) > len(prefix)+len(suffix)
	}, strconv.Quote(prefix)+" … "+strconv.Quote(suffix))
}

func wantOK(t *testing.T, resp routertest.Response) {
	t.Helper()
	if resp.Status != http.StatusOK {
		f, _ := routertest.ParseFault(resp.Body)
		t.Fatalf("status = %d, want 200 (%s %s)", resp.Status, f.String, f.Detail)
	}
}

func wantHeader(t *testing.T, h http.Header, name, want string) {
	t.Helper()
	if vs := h.Values(name); len(vs) != 1 || vs[0] != want {
		t.Errorf("%s = %q, want exactly [%q]", name, vs, want)
	}
}

func wantNoHeader(t *testing.T, h http.Header, names ...string) {
	t.Helper()
	for _, n := range names {
		if vs := h.Values(n); len(vs) != 0 {
			t.Errorf("%s = %q, want it absent", n, vs)
		}
	}
}

// start runs a router with k.Config, changed by mod, and catalog cat (none
// if nil).
func start(t *testing.T, k *routertest.PKI, mod func(*router.Config), cat *tak.Catalog) *routertest.Router {
	t.Helper()
	cfg := k.Config(t)
	if mod != nil {
		mod(&cfg)
	}
	r := routertest.Start(t, cfg)
	if cat != nil {
		r.SetCatalog(cat)
	}
	return r
}

func TestHandlerIdentity(t *testing.T) {
	k := routertest.NewPKI(t)
	prod := routertest.NewProducer(t, nil)
	const internalSender = "SE0000000009-AGP"
	cat := routertest.NewCatalog(t).
		RouteAuth(nsPing, "SE-LA", "RIVTABP21", prod.URL+"/ping", consumerID, internalSender).
		Build()
	r := start(t, k, nil, cat)
	req := routertest.Envelope21("SE-LA", nsPing)
	plain := routertest.NewHTTPClient(t, r.HTTP)
	consumer := routertest.NewHTTPSClient(t, r.HTTPS, k.ClientTLS(t, k.Consumer))

	t.Run("https certificate without SERIALNUMBER is VP002", func(t *testing.T) {
		c := routertest.NewHTTPSClient(t, r.HTTPS, k.ClientTLS(t, k.NoSerial))
		wantFault(t, c.Post(t, req, nil), "VP002", "No senderId found in Certificate: CN="+routertest.NoSerialCN)
	})
	t.Run("https x-vp-sender-id is ignored", func(t *testing.T) {
		n := prod.Count()
		resp := consumer.Post(t, req, map[string]string{"x-vp-sender-id": internalSender, "x-vp-instance-id": instance})
		wantOK(t, resp)
		if prod.Count() != n+1 {
			t.Fatalf("producer got %d requests, want 1", prod.Count()-n)
		}
		wantHeader(t, prod.Last(t).Header, "x-vp-sender-id", consumerID)
		// The other consumer is not authorized; naming an authorized one
		// in the header must not help.
		other := routertest.NewHTTPSClient(t, r.HTTPS, k.ClientTLS(t, k.Other))
		wantFault(t, other.Post(t, req, map[string]string{"x-vp-sender-id": consumerID, "x-vp-instance-id": instance}), "VP007",
			"Authorization missing for serviceNamespace: "+nsPing+", receiverId: SE-LA, senderId: "+routertest.OtherConsumerID)
	})

	plainCases := []struct {
		name   string
		header map[string]string
		code   string // "" for success
		detail string
		sender string // x-vp-sender-id the producer must see on success
	}{
		{"no certificate header is VP002", nil, "VP002", "No certificate found in httpheader x-vp-auth-cert", ""},
		{"certificate header of unknown type is VP002", map[string]string{"x-vp-auth-cert": "not a certificate"},
			"VP002", "Exception, unkown certificate type found in httpheader x-vp-auth-cert", ""},
		{"certificate header that does not parse is VP002", map[string]string{"x-vp-auth-cert": "MIIBrokenCertificate"},
			"VP002", "Exception occured parsing certificate in httpheader x-vp-auth-cert", ""},
		{"certificate without SERIALNUMBER is VP002", map[string]string{"x-vp-auth-cert": routertest.CertHeader(k.NoSerial)},
			"VP002", "No senderId found in Certificate", ""},
		{"certificate header", map[string]string{"x-vp-auth-cert": routertest.CertHeader(k.Consumer)}, "", "", consumerID},
		{"certificate header name in another case", map[string]string{"X-Vp-Auth-Cert": routertest.CertHeader(k.Consumer)}, "", "", consumerID},
		{"x-vp-sender-id of another instance is not trusted", map[string]string{"x-vp-sender-id": internalSender, "x-vp-instance-id": "other_env"},
			"VP002", "No certificate found in httpheader x-vp-auth-cert", ""},
		{"internal call", map[string]string{"x-vp-sender-id": internalSender, "x-vp-instance-id": instance}, "", "", internalSender},
		{"internal call, header names in another case", map[string]string{"X-Vp-Sender-Id": internalSender, "X-VP-Instance-ID": instance}, "", "", internalSender},
		{"internal call from an allow-listed proxy", map[string]string{"x-vp-sender-id": internalSender, "x-vp-instance-id": instance, "X-Forwarded-For": "127.0.0.1"}, "", "", internalSender},
		{"internal call through a proxy not allow-listed is VP011",
			map[string]string{"x-vp-sender-id": internalSender, "x-vp-instance-id": instance, "X-Forwarded-For": "192.0.2.7"},
			"VP011", "Caller was not on the white list of accepted IP-addresses.  IP-address: 192.0.2.7. HTTP header that caused checking: X-Forwarded-For", ""},
		{"internal call through a proxy not allow-listed, lower-case header, is VP011",
			map[string]string{"x-vp-sender-id": internalSender, "x-vp-instance-id": instance, "x-forwarded-for": "192.0.2.7"},
			"VP011", "Caller was not on the white list of accepted IP-addresses.  IP-address: 192.0.2.7. HTTP header that caused checking: X-Forwarded-For", ""},
	}
	for _, tc := range plainCases {
		t.Run("http "+tc.name, func(t *testing.T) {
			n := prod.Count()
			resp := plain.Post(t, req, tc.header)
			if tc.code != "" {
				wantFault(t, resp, tc.code, tc.detail)
				if prod.Count() != n {
					t.Errorf("the producer was called")
				}
				return
			}
			wantOK(t, resp)
			got := prod.Last(t)
			wantHeader(t, got.Header, "x-vp-sender-id", tc.sender)
			wantHeader(t, got.Header, "x-vp-instance-id", instance)
			wantNoHeader(t, got.Header, "x-vp-auth-cert", "X-Forwarded-For")
		})
	}

	t.Run("http peer not on the allow-list is VP011", func(t *testing.T) {
		strict := start(t, k, func(c *router.Config) { c.HTTPAllowList = router.IPAllowList{"10."} }, cat)
		c := routertest.NewHTTPClient(t, strict.HTTP)
		const detail = "Caller was not on the white list of accepted IP-addresses.  IP-address: 127.0.0.1. HTTP header that caused checking: CamelNettyRemoteAddress"
		n := prod.Count()
		for _, h := range []map[string]string{
			{"x-vp-sender-id": internalSender, "x-vp-instance-id": instance},
			{"x-vp-auth-cert": routertest.CertHeader(k.Consumer)},
			nil,
		} {
			wantFault(t, c.Post(t, req, h), "VP011", detail)
		}
		if prod.Count() != n {
			t.Errorf("the producer was called")
		}
		// The mTLS listener of the same router has no allow-list.
		wantOK(t, routertest.NewHTTPSClient(t, strict.HTTPS, k.ClientTLS(t, k.Consumer)).Post(t, req, nil))
	})
}

func TestHandlerOriginalConsumer(t *testing.T) {
	const hdr = "x-rivta-original-serviceconsumer-hsaid"
	k := routertest.NewPKI(t)
	prod := routertest.NewProducer(t, nil)
	cat := routertest.NewCatalog(t).
		RouteAuth(nsPing, "SE-LA", "RIVTABP21", prod.URL+"/ping", consumerID, routertest.PlatformID, "SE0000000009-AGP").
		Build()
	reject := start(t, k, func(c *router.Config) {
		c.OriginalConsumerAllowList = []string{" " + routertest.PlatformID + " "}
		c.RejectOriginalConsumer = true
	}, cat)
	warn := start(t, k, func(c *router.Config) {
		c.OriginalConsumerAllowList = []string{routertest.PlatformID}
	}, cat)
	req := routertest.Envelope21("SE-LA", nsPing)
	const vp013 = "Sender is not approved to set header x-rivta-original-serviceconsumer-hsaid."

	tests := []struct {
		name   string
		r      *routertest.Router
		plain  bool // over the HTTP listener as an internal call
		cert   bool // as the platform (allow-listed) instead of the consumer
		header map[string]string
		code   string
		want   string // header value the producer must see
	}{
		{"consumer not allowed is VP013", reject, false, false, map[string]string{hdr: "SE-ORIGIN"}, "VP013", ""},
		{"consumer not allowed, header name in another case, is VP013", reject, false, false, map[string]string{"X-Rivta-Original-Serviceconsumer-Hsaid": "SE-ORIGIN"}, "VP013", ""},
		{"consumer not allowed, empty header, is VP013 (present counts)", reject, false, false, map[string]string{hdr: ""}, "VP013", ""},
		{"consumer without the header gets its own id forwarded", reject, false, false, nil, "", consumerID},
		{"empty header is replaced by the consumer's id", warn, false, false, map[string]string{hdr: ""}, "", consumerID},
		{"allow-listed platform's value is forwarded unchanged", reject, false, true, map[string]string{hdr: "SE-ORIGIN"}, "", "SE-ORIGIN"},
		{"internal call is not checked", reject, true, false, map[string]string{hdr: "SE-ORIGIN", "x-vp-sender-id": "SE0000000009-AGP", "x-vp-instance-id": instance}, "", "SE-ORIGIN"},
		{"without RejectOriginalConsumer only a warning", warn, false, false, map[string]string{hdr: "SE-ORIGIN"}, "", "SE-ORIGIN"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c *routertest.Client
			switch {
			case tc.plain:
				c = routertest.NewHTTPClient(t, tc.r.HTTP)
			case tc.cert:
				c = routertest.NewHTTPSClient(t, tc.r.HTTPS, k.ClientTLS(t, k.Platform))
			default:
				c = routertest.NewHTTPSClient(t, tc.r.HTTPS, k.ClientTLS(t, k.Consumer))
			}
			n := prod.Count()
			resp := c.Post(t, req, tc.header)
			if tc.code != "" {
				wantFault(t, resp, tc.code, vp013)
				if prod.Count() != n {
					t.Error("the producer was called")
				}
				return
			}
			wantOK(t, resp)
			wantHeader(t, prod.Last(t).Header, hdr, tc.want)
		})
	}
}

func TestHandlerRoutingHistory(t *testing.T) {
	const hdr = "x-rivta-routing-history"
	k := routertest.NewPKI(t)
	prod := routertest.NewProducer(t, nil)
	cat := routertest.NewCatalog(t).RouteAuth(nsPing, "SE-LA", "RIVTABP21", prod.URL+"/ping", consumerID).Build()
	r := start(t, k, nil, cat)
	req := routertest.Envelope21("SE-LA", nsPing)
	// crossed returns a history of n other platforms after the sender.
	crossed := func(n int) string {
		h := "SE-ORIGIN"
		for i := 1; i <= n; i++ {
			h += "#NTjP_P" + strconv.Itoa(i)
		}
		return h
	}
	listeners := []struct {
		name string
		c    *routertest.Client
		cert map[string]string
	}{
		{"https", routertest.NewHTTPSClient(t, r.HTTPS, k.ClientTLS(t, k.Consumer)), nil},
		{"http", routertest.NewHTTPClient(t, r.HTTP), map[string]string{"x-vp-auth-cert": routertest.CertHeader(k.Consumer)}},
	}
	tests := []struct {
		name    string
		header  map[string]string
		loop    bool
		forward string
	}{
		{"no history starts one with the consumer", nil, false, consumerID + "#" + instance},
		{"history is extended", map[string]string{hdr: "SE-ORIGIN#NTjP_OTHER"}, false, "SE-ORIGIN#NTjP_OTHER#" + instance},
		{"own instance last is VP014", map[string]string{hdr: "SE-ORIGIN#" + instance}, true, ""},
		{"own instance in the middle, with spaces, is VP014", map[string]string{hdr: "SE-ORIGIN# " + instance + " #NTjP_OTHER"}, true, ""},
		{"header name in another case is VP014", map[string]string{"X-Rivta-Routing-History": "SE-ORIGIN#" + instance}, true, ""},
		{"instance id as a substring is no loop", map[string]string{hdr: "SE-ORIGIN#" + instance + "2"}, false, "SE-ORIGIN#" + instance + "2#" + instance},
		{"10 platforms crossed is within the hop limit", map[string]string{hdr: crossed(10)}, false, crossed(10) + "#" + instance},
		{"11 platforms crossed is over the hop limit", map[string]string{hdr: crossed(11)}, true, ""},
	}
	t.Run("internal call passes the history on unchanged", func(t *testing.T) {
		// Internal calls (AGP, EI) get no routing-history processing: no
		// check, nothing appended, but the header is not in the reference's
		// remove-list, so it reaches the producer as it came (§2.6, §2.7).
		c := routertest.NewHTTPClient(t, r.HTTP)
		internal := map[string]string{"x-vp-sender-id": consumerID, "x-vp-instance-id": instance}
		wantOK(t, c.Post(t, req, internal))
		wantNoHeader(t, prod.Last(t).Header, hdr)
		internal[hdr] = "SE-ORIGIN#" + instance
		wantOK(t, c.Post(t, req, internal))
		wantHeader(t, prod.Last(t).Header, hdr, "SE-ORIGIN#"+instance)
	})
	for _, l := range listeners {
		for _, tc := range tests {
			t.Run(l.name+" "+tc.name, func(t *testing.T) {
				h := map[string]string{}
				for k, v := range l.cert {
					h[k] = v
				}
				for k, v := range tc.header {
					h[k] = v
				}
				n := prod.Count()
				resp := l.c.Post(t, req, h)
				if tc.loop {
					detail := ""
					if strings.Contains(tc.name, "hop limit") {
						detail = "Routing history shows 11 platforms crossed; the limit is 10 (router.max_hops)"
					}
					wantFault(t, resp, "VP014", detail)
					if prod.Count() != n {
						t.Error("the producer was called")
					}
					return
				}
				wantOK(t, resp)
				wantHeader(t, prod.Last(t).Header, hdr, tc.forward)
			})
		}
	}
}

func TestHandlerNoCatalog(t *testing.T) {
	k := routertest.NewPKI(t)
	const detail = "No contact with TAK at startup, and no local cache to fallback on, not possible to route call"
	req := routertest.Envelope21("SE-LA", nsPing)

	r := start(t, k, nil, nil)
	c := routertest.NewHTTPSClient(t, r.HTTPS, k.ClientTLS(t, k.Consumer))
	wantFault(t, c.Post(t, req, nil), "VP008", detail)
	// VP015 comes before VP008.
	wantFaultPrefix(t, c.Post(t, "<nope", nil), "VP015", "", "")

	r.SetCatalog(tak.New())
	wantFault(t, c.Post(t, req, nil), "VP008", detail)
	wantFault(t, routertest.NewHTTPClient(t, r.HTTP).Post(t, req, map[string]string{"x-vp-auth-cert": routertest.CertHeader(k.Consumer)}), "VP008", detail)
}

func TestHandlerRequestFaults(t *testing.T) {
	k := routertest.NewPKI(t)
	prod := routertest.NewProducer(t, nil)
	u := prod.URL + "/ping"
	cat := routertest.NewCatalog(t).
		RouteAuth(nsPing, "SE-OK", "RIVTABP21", u, consumerID).
		RouteAuth(nsPing, "SE-MULTI", "RIVTABP21", u+"/a", consumerID).
		Route(nsPing, "SE-MULTI", "RIVTABP20", u+"/b").
		RouteAuth(nsPing, "SE-NOURL", "RIVTABP21", "", consumerID).
		Route(nsPing, "SE-NOAUTH", "RIVTABP21", u).
		RouteAuth(nsPing, "SE-RIV22", "RIVTABP22", u, consumerID).
		RouteAuth(nsPing, "SE-RIV20", "RIVTABP20", u, consumerID).
		Build()
	r := start(t, k, nil, cat)
	c := routertest.NewHTTPSClient(t, r.HTTPS, k.ClientTLS(t, k.Consumer))
	body := `<urn:Request xmlns:urn="` + nsPing + `"/>`
	la := func(a string) string { return `<add:LogicalAddress>` + a + `</add:LogicalAddress>` }
	const noAddr = "No receiverId (logical address) found in message header. "
	noRoute := func(ns, a string) string {
		return "No receiverId (logical address) found for serviceNamespace: " + ns + ", receiverId: " + a
	}

	tests := []struct {
		name, req, code, detail string
	}{
		{"empty address is VP003", routertest.EnvelopeWith(la(""), body), "VP003", noAddr},
		{"whitespace address is VP003", routertest.EnvelopeWith(la(" \n\t "), body), "VP003", noAddr},
		{"no address element is VP003", routertest.EnvelopeWith("", body), "VP003", noAddr},
		{"unknown address is VP004", routertest.Envelope21("SE-NOROUTE", nsPing), "VP004", noRoute(nsPing, "SE-NOROUTE")},
		{"address with a space is VP004 with a hint", routertest.Envelope21(" SE-OK", nsPing), "VP004", noRoute(nsPing, " SE-OK") + ". Whitespace detected in incoming request!"},
		{"unknown contract is VP004", routertest.Envelope21("SE-OK", nsCert), "VP004", noRoute(nsCert, "SE-OK")},
		{"empty Body is VP004 with namespace null", routertest.EnvelopeWith(la("SE-OK"), ""), "VP004", noRoute("null", "SE-OK")},
		{"missing Body is VP004 with namespace null",
			`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:add="urn:riv:itintegration:registry:1"><soapenv:Header>` + la("SE-OK") + `</soapenv:Header></soapenv:Envelope>`,
			"VP004", noRoute("null", "SE-OK")},
		{"no route wins over no authorization (VP004, not VP007)", routertest.Envelope21("SE-NOAUTH-NOROUTE", nsPing), "VP004", noRoute(nsPing, "SE-NOAUTH-NOROUTE")},
		{"two routes is VP006", routertest.Envelope21("SE-MULTI", nsPing), "VP006",
			"More than one receiverId (logical address) with matching Riv-version found for serviceNamespace: " + nsPing + ", receiverId: SE-MULTI"},
		{"no authorization is VP007", routertest.Envelope21("SE-NOAUTH", nsPing), "VP007",
			"Authorization missing for serviceNamespace: " + nsPing + ", receiverId: SE-NOAUTH, senderId: " + consumerID},
		{"route without URL is VP010", routertest.Envelope21("SE-NOURL", nsPing), "VP010",
			"Physical Address field is empty in Service Producer for serviceNamespace: " + nsPing + ", receiverId: SE-NOURL"},
		{"unknown RIV profile is VP005", routertest.Envelope21("SE-RIV22", nsPing), "VP005",
			"No receiverId (logical address) with matching Riv-version found for rivtabp21"},
		{"unknown RIV profile, 2.0 request, is VP005", routertest.Envelope20("SE-RIV22", nsPing), "VP005",
			"No receiverId (logical address) with matching Riv-version found for rivtabp20"},
		{"SoapUI 2.12.1 broken envelope is VP015",
			`<felaktigt format soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:riv:itintegration:registry:1">
   <soapenv:Header><urn:LogicalAddress>SE-OK</urn:LogicalAddress></soapenv:Header>
   <soapenv:Body><x/></soapenv:Body>
</soapenv:Envelope>`,
			"VP015", "Unexpected character 's' (code 115) expected '='\n at [row,col {unknown-source}]: [1,19]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := prod.Count()
			wantFault(t, c.Post(t, tc.req, nil), tc.code, tc.detail)
			if prod.Count() != n {
				t.Error("the producer was called")
			}
		})
	}

	t.Run("not XML is VP015", func(t *testing.T) {
		for _, req := range []string{"", "hello", "<soapenv:Envelope", `<a><b></a>`} {
			wantFaultPrefix(t, c.Post(t, req, nil), "VP015", "", "")
		}
	})
	t.Run("RIV conversion failure is VP012", func(t *testing.T) {
		// Well-formed up to the first Body child, which is all the reader
		// looks at, but the address element is never closed: converting
		// the header for the RIVTABP20 producer fails.
		req := `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:add="urn:riv:itintegration:registry:1"><soapenv:Header>` +
			`<add:LogicalAddress>SE-RIV20<soapenv:Body>` + body + `</soapenv:Body></soapenv:Envelope>`
		n := prod.Count()
		f := wantFaultPrefix(t, c.Post(t, req, nil), "VP012", "", "")
		// The reference's detail is the parser's message itself.
		if !regexp.MustCompile(`\n at \[row,col \{unknown-source\}\]: \[\d+,\d+\]$`).MatchString(f.Detail) || strings.HasPrefix(f.Detail, "convert") {
			t.Errorf("VP012 detail %q is not the parser message", f.Detail)
		}
		if prod.Count() != n {
			t.Error("the producer was called")
		}
	})
	t.Run("a good call still works", func(t *testing.T) {
		wantOK(t, c.Post(t, routertest.Envelope21("SE-OK", nsPing), nil))
	})
}

func TestHandlerProducerFaults(t *testing.T) {
	k := routertest.NewPKI(t)
	const slowTimeout = 400 * time.Millisecond
	status500 := routertest.NewProducer(t, routertest.Reply(500, nil, "Internal Server Error, not SOAP"))
	status404 := routertest.NewProducer(t, routertest.Reply(404, nil, "Not Found"))
	empty := routertest.NewProducer(t, routertest.Reply(200, nil, ""))
	fault := routertest.NewProducer(t, routertest.Reply(500, map[string]string{"X-Producer": "yes"}, routertest.ProducerFault))
	fault200 := routertest.NewProducer(t, routertest.Reply(200, nil, routertest.ProducerFault))
	notSOAP := routertest.NewProducer(t, routertest.Reply(202, map[string]string{"Content-Type": "text/plain"}, "accepted, not SOAP"))
	slow := routertest.NewProducer(t, routertest.Hang(30*time.Second))
	refused := "http://" + routertest.FreeAddr(t) + "/refused"
	lateAddr := routertest.FreeAddr(t)
	late := "http://" + lateAddr + "/late"

	cat := routertest.NewCatalog(t).
		RouteAuth(nsPing, "SE-500", "RIVTABP21", status500.URL+"/p", consumerID).
		RouteAuth(nsPing, "SE-404", "RIVTABP21", status404.URL+"/p", consumerID).
		RouteAuth(nsPing, "SE-EMPTY", "RIVTABP21", empty.URL+"/p", consumerID).
		RouteAuth(nsPing, "SE-FAULT", "RIVTABP21", fault.URL+"/p", consumerID).
		RouteAuth(nsPing, "SE-FAULT200", "RIVTABP21", fault200.URL+"/p", consumerID).
		RouteAuth(nsPing, "SE-NOTSOAP", "RIVTABP21", notSOAP.URL+"/p", consumerID).
		RouteAuth(nsPing, "SE-REFUSED", "RIVTABP21", refused, consumerID).
		RouteAuth(nsPing, "SE-LATE", "RIVTABP21", late, consumerID).
		RouteAuth(nsCert, "SE-SLOW", "RIVTABP21", slow.URL+"/p", consumerID).
		Timeout(nsCert, slowTimeout).
		Build()
	const retryDelay = 300 * time.Millisecond
	r := start(t, k, func(c *router.Config) { c.RetryDelay = retryDelay }, cat)
	c := routertest.NewHTTPSClient(t, r.HTTPS, k.ClientTLS(t, k.Consumer))
	camel := func(url, class, msg string) string {
		return "Error connecting to service producer at address " + url + ". Exception Caught by Camel when contacting producer. Exception information: (" + class + ": " + msg + ")"
	}
	failed := func(url string, code int) string {
		s := strconv.Itoa(code)
		return camel(url, "org.apache.camel.component.netty.http.NettyHttpOperationFailedException",
			"Netty HTTP operation failed invoking "+url+" with statusCode: "+s) + "\nVP_PRODUCER_EXCEPTION_HTTP_STATUS=" + s
	}

	t.Run("producer 500 without SOAP is VP009", func(t *testing.T) {
		wantFault(t, c.Post(t, routertest.Envelope21("SE-500", nsPing), nil), "VP009", failed(status500.URL+"/p", 500))
	})
	t.Run("producer 404 is VP009", func(t *testing.T) {
		wantFault(t, c.Post(t, routertest.Envelope21("SE-404", nsPing), nil), "VP009", failed(status404.URL+"/p", 404))
	})
	t.Run("producer 200 without body is VP009", func(t *testing.T) {
		wantFault(t, c.Post(t, routertest.Envelope21("SE-EMPTY", nsPing), nil), "VP009",
			"Error connecting to service producer at address "+empty.URL+"/p. Empty message when server responded with status code: 200 OK")
	})
	t.Run("producer SOAP fault passes through unchanged", func(t *testing.T) {
		resp := c.Post(t, routertest.Envelope21("SE-FAULT", nsPing), map[string]string{"x-skltp-correlation-id": "corr-fault"})
		if resp.Status != 500 || string(resp.Body) != routertest.ProducerFault {
			t.Fatalf("got %d %q, want 500 and the producer's fault unchanged", resp.Status, resp.Body)
		}
		wantHeader(t, resp.Header, "Content-Type", "text/xml; charset=UTF-8")
		wantHeader(t, resp.Header, "x-skltp-correlation-id", "corr-fault")
		wantHeader(t, resp.Header, "X-Producer", "yes")
	})
	t.Run("producer 200 SOAP fault and 202 non-SOAP pass through", func(t *testing.T) {
		resp := c.Post(t, routertest.Envelope21("SE-FAULT200", nsPing), nil)
		if resp.Status != 200 || string(resp.Body) != routertest.ProducerFault {
			t.Errorf("got %d %q, want 200 and the producer's body", resp.Status, resp.Body)
		}
		resp = c.Post(t, routertest.Envelope21("SE-NOTSOAP", nsPing), nil)
		if resp.Status != 202 || string(resp.Body) != "accepted, not SOAP" {
			t.Errorf("got %d %q, want 202 and the producer's body", resp.Status, resp.Body)
		}
		wantHeader(t, resp.Header, "Content-Type", "text/xml; charset=UTF-8")
	})
	t.Run("refused connection is retried once, then VP009", func(t *testing.T) {
		t0 := time.Now()
		resp := c.Post(t, routertest.Envelope21("SE-REFUSED", nsPing), nil)
		el := time.Since(t0)
		wantFaultPrefix(t, resp, "VP009", "Error connecting to service producer at address "+refused+
			". Exception Caught by Camel when contacting producer. Exception information: (java.net.ConnectException: ", ")")
		if el < retryDelay {
			t.Errorf("VP009 after %s: no retry after the %s retry delay", el, retryDelay)
		}
		if el > retryDelay+5*time.Second {
			t.Errorf("VP009 after %s: more than one retry?", el)
		}
	})
	t.Run("refused connection succeeds on the retry", func(t *testing.T) {
		type result struct {
			resp routertest.Response
			err  error
		}
		// A longer retry delay than the other cases, so that the producer
		// is surely up for the retry even on a loaded machine.
		const lateDelay = time.Second
		rl := start(t, k, func(c *router.Config) { c.RetryDelay = lateDelay }, cat)
		cl := routertest.NewHTTPSClient(t, rl.HTTPS, k.ClientTLS(t, k.Consumer))
		done := make(chan result, 1)
		go func() {
			resp, err := cl.Do(routertest.Envelope21("SE-LATE", nsPing), nil)
			done <- result{resp, err}
		}()
		time.Sleep(lateDelay / 10) // the first attempt is refused by now
		p, err := routertest.NewProducerAt(t, lateAddr, nil)
		if err != nil {
			<-done
			t.Skipf("cannot bind %s again: %v", lateAddr, err)
		}
		res := <-done
		if res.err != nil {
			t.Fatal(res.err)
		}
		wantOK(t, res.resp)
		if string(res.resp.Body) != routertest.OKResponse {
			t.Errorf("body = %q", res.resp.Body)
		}
		if p.Count() != 1 {
			t.Errorf("producer got %d requests, want 1", p.Count())
		}
	})
	t.Run("producer timeout is VP009 and not retried", func(t *testing.T) {
		t0 := time.Now()
		resp := c.Post(t, routertest.Envelope21("SE-SLOW", nsCert), nil)
		el := time.Since(t0)
		wantFault(t, resp, "VP009", camel(slow.URL+"/p", "io.netty.handler.timeout.ReadTimeoutException", "Timeout when waiting on response from producer."))
		if el < slowTimeout || el > slowTimeout+5*time.Second {
			t.Errorf("VP009 after %s, want about the contract's %s", el, slowTimeout)
		}
		if resp.Header.Get("x-skltp-prt") == "" {
			t.Error("no x-skltp-prt although the producer was called")
		}
		// A retry would arrive within the retry delay.
		time.Sleep(retryDelay + 200*time.Millisecond)
		if n := slow.Count(); n != 1 {
			t.Errorf("producer saw %d requests, want exactly 1 (a timeout must not be retried)", n)
		}
	})
}

func TestHandlerHeaders(t *testing.T) {
	k := routertest.NewPKI(t)
	respHeaders := map[string]string{
		"SOAPAction":              `"urn:x"`,
		"MULE_ENCODING":           "UTF-8",
		"X-MULE_SESSION":          "s",
		"LOCAL_CERTIFICATE":       "c",
		"PEER_CERTIFICATES":       "c",
		"http.method":             "POST",
		"X-Random-Header":         "kept",
		"x-rivta-routing-history": "SE-ORIGIN#" + instance + "#NEXT", // echoed by a downstream component
		"Content-Type":            "text/plain;charset=UTF-8",
		"x-skltp-correlation-id":  "from-producer",
		"x-skltp-prt":             "999999",
	}
	plainProd := routertest.NewProducer(t, routertest.Reply(200, respHeaders, routertest.OKResponse))
	tlsProd := routertest.NewTLSProducer(t, k, nil)
	cat := routertest.NewCatalog(t).
		RouteAuth(nsPing, "SE-HTTP", "RIVTABP21", plainProd.URL+"/svc?x=1", consumerID).
		RouteAuth(nsPing, "SE-HTTPS", "RIVTABP21", tlsProd.URL+"/svc", consumerID).
		Build()
	r := start(t, k, nil, cat)
	noCorrHTTPS := start(t, k, func(c *router.Config) { c.PropagateCorrelationHTTPS = false }, cat)
	c := routertest.NewHTTPSClient(t, r.HTTPS, k.ClientTLS(t, k.Consumer))

	consumerHeaders := map[string]string{
		"x-rivta-acting-on-behalf-of-hsaid": "SE-ACTOR",
		"X-Custom-Header":                   "custom",
		"x-skltp-correlation-id":            "corr-123",
		"x-vp-sender-id":                    "SE-SPOOF",
		"x-vp-instance-id":                  "spoof_env",
		"x-vp-auth-cert":                    "cert",
		"X-VP-Whatever":                     "x",
		"X-Forwarded-For":                   "192.0.2.1",
		"X-Forwarded-Host":                  "proxy",
		"X-Forwarded-Tls-Client-Cert":       "cert",
		"MULE_CORRELATION_ID":               "m",
		"X-MULE_SESSION":                    "m",
		"PEER_CERTIFICATES":                 "c",
		"Accept-Encoding":                   "gzip, deflate",
		"User-Agent":                        "consumer-agent/1.0",
		"Via":                               "1.1 proxy",
		"Pragma":                            "no-cache",
		"Content-Type":                      "text/xml; charset=utf-8",
	}
	dropped := []string{"x-vp-auth-cert", "X-VP-Whatever", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Tls-Client-Cert",
		"MULE_CORRELATION_ID", "X-MULE_SESSION", "PEER_CERTIFICATES", "Accept-Encoding", "Via", "Pragma"}

	t.Run("request headers to an http producer", func(t *testing.T) {
		resp := c.Post(t, routertest.Envelope21("SE-HTTP", nsPing), consumerHeaders)
		wantOK(t, resp)
		got := plainProd.Last(t)
		if got.Method != http.MethodPost || got.Path != "/svc?x=1" {
			t.Errorf("producer got %s %s, want POST /svc?x=1", got.Method, got.Path)
		}
		if got.Host != plainProd.Addr {
			t.Errorf("Host = %q, want %q", got.Host, plainProd.Addr)
		}
		wantHeader(t, got.Header, "SOAPAction", `"urn:riv:test"`)
		wantHeader(t, got.Header, "x-rivta-acting-on-behalf-of-hsaid", "SE-ACTOR")
		wantHeader(t, got.Header, "X-Custom-Header", "custom")
		wantHeader(t, got.Header, "x-skltp-correlation-id", "corr-123")
		wantHeader(t, got.Header, "x-vp-sender-id", consumerID)
		wantHeader(t, got.Header, "x-vp-instance-id", instance)
		wantHeader(t, got.Header, "x-rivta-original-serviceconsumer-hsaid", consumerID)
		wantHeader(t, got.Header, "x-rivta-routing-history", consumerID+"#"+instance)
		wantHeader(t, got.Header, "User-Agent", "SKLTP VP/4.3.x (vaxel)")
		wantHeader(t, got.Header, "Content-Type", "text/xml;charset=UTF-8")
		wantNoHeader(t, got.Header, dropped...)
		if string(got.Body) != routertest.Envelope21("SE-HTTP", nsPing) {
			t.Errorf("producer got body %q, want the request unchanged", got.Body)
		}
	})
	t.Run("request headers to an https producer", func(t *testing.T) {
		wantOK(t, c.Post(t, routertest.Envelope21("SE-HTTPS", nsPing), consumerHeaders))
		got := tlsProd.Last(t)
		wantNoHeader(t, got.Header, "x-vp-sender-id", "x-vp-instance-id")
		wantNoHeader(t, got.Header, dropped...)
		wantHeader(t, got.Header, "x-skltp-correlation-id", "corr-123")
		wantHeader(t, got.Header, "x-rivta-original-serviceconsumer-hsaid", consumerID)
		wantHeader(t, got.Header, "x-rivta-routing-history", consumerID+"#"+instance)
		wantHeader(t, got.Header, "X-Custom-Header", "custom")

		c2 := routertest.NewHTTPSClient(t, noCorrHTTPS.HTTPS, k.ClientTLS(t, k.Consumer))
		resp := c2.Post(t, routertest.Envelope21("SE-HTTPS", nsPing), consumerHeaders)
		wantOK(t, resp)
		wantNoHeader(t, tlsProd.Last(t).Header, "x-skltp-correlation-id")
		wantHeader(t, resp.Header, "x-skltp-correlation-id", "corr-123")
	})
	t.Run("response headers to the consumer", func(t *testing.T) {
		resp := c.Post(t, routertest.Envelope21("SE-HTTP", nsPing), map[string]string{"x-skltp-correlation-id": "corr-resp", "X-Consumer-Only": "x"})
		wantOK(t, resp)
		if string(resp.Body) != routertest.OKResponse {
			t.Errorf("body = %q, want the producer's", resp.Body)
		}
		wantHeader(t, resp.Header, "X-Random-Header", "kept")
		wantHeader(t, resp.Header, "x-rivta-routing-history", "SE-ORIGIN#"+instance+"#NEXT")
		wantHeader(t, resp.Header, "Content-Type", "text/xml; charset=UTF-8")
		wantHeader(t, resp.Header, "x-skltp-correlation-id", "corr-resp")
		wantHeader(t, resp.Header, "Content-Length", strconv.Itoa(len(routertest.OKResponse)))
		wantNoHeader(t, resp.Header, "SOAPAction", "MULE_ENCODING", "X-MULE_SESSION", "LOCAL_CERTIFICATE", "PEER_CERTIFICATES", "http.method", "X-Consumer-Only")
		prt := resp.Header.Values("x-skltp-prt")
		if len(prt) != 1 || prt[0] == "999999" {
			t.Errorf("x-skltp-prt = %q, want the router's round-trip time only", prt)
		} else if ms, err := strconv.Atoi(prt[0]); err != nil || ms < 0 || ms > 10000 {
			t.Errorf("x-skltp-prt = %q, want milliseconds", prt[0])
		}
	})
	t.Run("correlation id", func(t *testing.T) {
		for _, name := range []string{"x-skltp-correlation-id", "X-Skltp-Correlation-Id"} {
			resp := c.Post(t, routertest.Envelope21("SE-HTTP", nsPing), map[string]string{name: "corr-" + name})
			wantOK(t, resp)
			wantHeader(t, resp.Header, "x-skltp-correlation-id", "corr-"+name)
			wantHeader(t, plainProd.Last(t).Header, "x-skltp-correlation-id", "corr-"+name)
		}
		// Without one the router makes one up, the same for producer and consumer.
		resp := c.Post(t, routertest.Envelope21("SE-HTTP", nsPing), nil)
		wantOK(t, resp)
		id := resp.Header.Get("x-skltp-correlation-id")
		if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(id) {
			t.Errorf("generated correlation id %q is not a UUID", id)
		}
		wantHeader(t, plainProd.Last(t).Header, "x-skltp-correlation-id", id)
		// Faults carry it too, on both listeners.
		f := c.Post(t, routertest.Envelope21("SE-NONE", nsPing), map[string]string{"x-skltp-correlation-id": "corr-fault"})
		wantFault(t, f, "VP004", "No receiverId (logical address) found for serviceNamespace: "+nsPing+", receiverId: SE-NONE")
		wantHeader(t, f.Header, "x-skltp-correlation-id", "corr-fault")
		f = routertest.NewHTTPClient(t, r.HTTP).Post(t, "<bad", map[string]string{"X-Skltp-Correlation-Id": "corr-http", "x-vp-auth-cert": routertest.CertHeader(k.Consumer)})
		wantFaultPrefix(t, f, "VP015", "", "")
		wantHeader(t, f.Header, "x-skltp-correlation-id", "corr-http")
	})
	t.Run("traceparent", func(t *testing.T) {
		const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
		re := regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-01$`)
		for _, name := range []string{"traceparent", "Traceparent"} {
			wantOK(t, c.Post(t, routertest.Envelope21("SE-HTTP", nsPing), map[string]string{name: "00-" + trace + "-00f067aa0ba902b7-01"}))
			tp := plainProd.Last(t).Header.Values("traceparent")
			if len(tp) != 1 {
				t.Fatalf("%s: producer got traceparent %q, want one", name, tp)
			}
			m := re.FindStringSubmatch(tp[0])
			if m == nil || m[1] != trace || m[2] == "00f067aa0ba902b7" {
				t.Errorf("%s: producer got traceparent %q, want trace %s continued with a new parent id", name, tp[0], trace)
			}
		}
		for _, bad := range []string{"", "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"} {
			h := map[string]string{}
			if bad != "" {
				h["traceparent"] = bad
			}
			wantOK(t, c.Post(t, routertest.Envelope21("SE-HTTP", nsPing), h))
			tp := plainProd.Last(t).Header.Get("traceparent")
			m := re.FindStringSubmatch(tp)
			if m == nil || strings.EqualFold(m[1], trace) || m[1] == strings.Repeat("0", 32) {
				t.Errorf("traceparent %q in: producer got %q, want a new valid trace", bad, tp)
			}
		}
	})
}

func TestHandlerRIVConversion(t *testing.T) {
	k := routertest.NewPKI(t)
	prod := routertest.NewProducer(t, routertest.Echo())
	cat := routertest.NewCatalog(t).
		RouteAuth(nsPing, "SE-P20", "RIVTABP20", prod.URL+"/20", consumerID).
		RouteAuth(nsPing, "SE-P21", "rivtabp21", prod.URL+"/21", consumerID).
		Build()
	r := start(t, k, nil, cat)
	c := routertest.NewHTTPSClient(t, r.HTTPS, k.ClientTLS(t, k.Consumer))
	const decl = `<?xml version="1.0" encoding="UTF-8"?>`
	tests := []struct {
		name, req, want string
	}{
		{"2.1 request to a 2.0 producer", routertest.Envelope21("SE-P20", nsPing), decl + routertest.Envelope20("SE-P20", nsPing)},
		{"2.0 request to a 2.1 producer", routertest.Envelope20("SE-P21", nsPing), decl + routertest.Envelope21("SE-P21", nsPing)},
		{"2.1 request to a 2.1 producer is untouched", routertest.Envelope21("SE-P21", nsPing), routertest.Envelope21("SE-P21", nsPing)},
		{"2.0 request to a 2.0 producer is untouched", routertest.Envelope20("SE-P20", nsPing), routertest.Envelope20("SE-P20", nsPing)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := c.Post(t, tc.req, nil)
			wantOK(t, resp)
			if got := string(prod.Last(t).Body); got != tc.want {
				t.Errorf("producer got\n%s\nwant\n%s", got, tc.want)
			}
			if string(resp.Body) != tc.want {
				t.Errorf("the producer's answer was not passed back unchanged: %q", resp.Body)
			}
		})
	}
}

// A call address naming a platform goes to a node of it only if the node's
// TLS certificate carries the HSA-ID the federation gave for it: a node
// presenting another is never sent the call (VP009), one presenting it is.
func TestHandlerPlatformNodeCertificateHSAID(t *testing.T) {
	k := routertest.NewPKI(t)
	node := routertest.NewTLSProducer(t, k, nil) // presents PKI.Server (SERIALNUMBER ServerID)
	addr := strings.TrimPrefix(node.URL, "https://")
	cat := routertest.NewCatalog(t).RouteAuth(nsPing, "SE-LA", "RIVTABP21", "vaxel://NATIONAL", consumerID).Build()
	r := start(t, k, nil, cat)
	c := routertest.NewHTTPSClient(t, r.HTTPS, k.ClientTLS(t, k.Consumer))
	req := routertest.Envelope21("SE-LA", nsPing)

	r.SetPlatforms(router.NewPlatforms(map[string]router.PlatformNodes{"NATIONAL": {Addrs: []string{addr}, HSAIDs: []string{"SE0000000001-OTHER"}}}))
	resp := c.Post(t, req, nil)
	if resp.Status != 500 || !strings.Contains(string(resp.Body), "VP009") || !strings.Contains(string(resp.Body), "SE0000000001-OTHER") {
		t.Fatalf("node with another HSA-ID: HTTP %d %s; want VP009 naming the HSA-ID wanted", resp.Status, resp.Body)
	}
	if node.Count() != 0 {
		t.Fatalf("the node whose certificate is not the platform's got %d calls", node.Count())
	}

	r.SetPlatforms(router.NewPlatforms(map[string]router.PlatformNodes{"NATIONAL": {Addrs: []string{addr}, HSAIDs: []string{routertest.ServerID}}}))
	wantOK(t, c.Post(t, req, nil))
	if node.Count() != 1 {
		t.Fatalf("the platform's node got %d calls, want 1", node.Count())
	}

	// With a node that is not the platform's first in the table, calls go
	// on to the next (nothing was sent to the first: its handshake failed).
	other := routertest.NewTLSProducer(t, k, nil)
	r.SetPlatforms(router.NewPlatforms(map[string]router.PlatformNodes{"NATIONAL": {
		Addrs:  []string{strings.TrimPrefix(other.URL, "https://"), addr},
		HSAIDs: []string{"SE0000000001-OTHER", routertest.ServerID},
		Near:   1,
	}}))
	for i := 0; i < 3; i++ {
		wantOK(t, c.Post(t, req, nil))
	}
	if other.Count() != 0 || node.Count() != 4 {
		t.Fatalf("calls: %d to the node that is not the platform's, %d to the platform's; want 0 and 4", other.Count(), node.Count())
	}
}
