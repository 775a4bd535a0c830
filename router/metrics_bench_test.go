package router

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/vaxel/vaxel/tak"
)

// Fixture of the metrics tests and benchmarks: one contract, one producer
// component, one consumer, calling in over the plain-HTTP listener as an
// internal component (x-vp-sender-id), so no certificate is needed and the
// handler can be driven directly with a RequestCtx.
const (
	mtInstance = "mt_env"
	mtContract = "urn:riv:itintegration:monitoring:PingForConfigurationResponder:1"
	mtAddress  = "SE0000000002-MT"
	mtConsumer = "SE0000000001-MTCONS"
	mtProducer = "MT-PRODUCER"
	mtOther    = "SE0000000009-NOAUTH" // a component of the catalog without authorizations
)

func mtEnvelope(ns, la string) []byte {
	return []byte(`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:add="urn:riv:itintegration:registry:1" xmlns:urn="` + ns + `">` +
		`<soapenv:Header><add:LogicalAddress>` + la + `</add:LogicalAddress></soapenv:Header>` +
		`<soapenv:Body><urn:PingForConfiguration><urn:logicalAddress>` + la + `</urn:logicalAddress></urn:PingForConfiguration></soapenv:Body></soapenv:Envelope>`)
}

// mtProducerServer answers every call 200 with a small SOAP response, or a
// SOAP fault (HTTP 500) when the request path ends in /fault.
func mtProducerServer(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/xml; charset=UTF-8")
		if string(ctx.Path()) == "/fault" {
			ctx.SetStatusCode(fasthttp.StatusInternalServerError)
			ctx.SetBodyString(`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><soapenv:Fault><faultcode>soapenv:Server</faultcode><faultstring>producer says no</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>`)
			return
		}
		ctx.SetBodyString(`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><PingForConfigurationResponse/></soapenv:Body></soapenv:Envelope>`)
	}}
	go func() { _ = s.Serve(ln) }()
	tb.Cleanup(func() { _ = s.Shutdown() })
	return "http://" + ln.Addr().String()
}

// mtCatalog routes mtContract at mtAddress to producerURL+"/ok" and at
// "FAULTING" to producerURL+"/fault"; mtConsumer may call both.
func mtCatalog(tb testing.TB, producerURL string) *tak.Catalog {
	tb.Helper()
	from, to := tak.DateOf(time.Now()).AddYears(-1), tak.DateOf(time.Now()).AddYears(10)
	tx := tak.New().Begin()
	if _, err := tx.AddRoute(mtContract, mtAddress, mtProducer, "RIVTABP21", producerURL+"/ok", from, to); err != nil {
		tb.Fatal(err)
	}
	if _, err := tx.AddRoute(mtContract, "FAULTING", mtProducer, "RIVTABP21", producerURL+"/fault", from, to); err != nil {
		tb.Fatal(err)
	}
	for _, la := range []string{mtAddress, "FAULTING"} {
		if _, err := tx.AddAuthorization(mtConsumer, mtContract, la, "mt", from, to); err != nil {
			tb.Fatal(err)
		}
	}
	if _, err := tx.EnsureComponent(mtOther); err != nil {
		tb.Fatal(err)
	}
	return tx.Commit(tak.ChangeMeta{})
}

func mtRouter(tb testing.TB, cat *tak.Catalog) *Router {
	tb.Helper()
	cfg := DefaultConfig()
	cfg.InstanceID = mtInstance
	cfg.HTTPSAddr = "127.0.0.1:0"
	cfg.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert}
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.HTTPAllowList = IPAllowList{"127.0.0.1"}
	cfg.LogCalls = false
	r, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	r.SetCatalog(cat)
	return r
}

// mtRequest is an internal call from sender over the plain-HTTP listener.
func mtRequest(sender string, body []byte) *fasthttp.RequestCtx {
	var req fasthttp.Request
	req.Header.DisableNormalizing()
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURI("/vp")
	req.Header.Set(hdrSenderID, sender)
	req.Header.Set(hdrInstanceID, mtInstance)
	req.Header.SetContentType("text/xml; charset=UTF-8")
	req.SetBody(body)
	ctx := &fasthttp.RequestCtx{}
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
	return ctx
}

// mtCall runs one call through the handler and returns the HTTP status.
func mtCall(r *Router, ctx *fasthttp.RequestCtx) int {
	ctx.Response.Reset()
	r.handle(ctx, false)
	return ctx.Response.StatusCode()
}

// BenchmarkHandleOK is a whole successful call through the handler to a
// loopback producer (LogCalls off: the log line is not what is measured).
// Most of the time is the producer round trip over loopback. The
// metrics=off run is the baseline for the cost of counting.
func BenchmarkHandleOK(b *testing.B) {
	url := mtProducerServer(b)
	for _, on := range []bool{false, true} {
		b.Run(mtMetricsName(on), func(b *testing.B) {
			r := mtRouter(b, mtCatalog(b, url))
			if !on {
				r.metrics = nil
			}
			ctx := mtRequest(mtConsumer, mtEnvelope(mtContract, mtAddress))
			if st := mtCall(r, ctx); st != 200 {
				b.Fatalf("status %d: %s", st, ctx.Response.Body())
			}
			b.ReportAllocs()
			for b.Loop() {
				mtCall(r, ctx)
			}
		})
	}
}

// BenchmarkHandleFault is a call refused with VP007 (no authorization): the
// whole handler without any network I/O.
func BenchmarkHandleFault(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(mtMetricsName(on), func(b *testing.B) {
			r := mtRouter(b, mtCatalog(b, "http://127.0.0.1:9"))
			if !on {
				r.metrics = nil
			}
			ctx := mtRequest(mtOther, mtEnvelope(mtContract, mtAddress))
			if st := mtCall(r, ctx); st != 500 {
				b.Fatalf("status %d", st)
			}
			b.ReportAllocs()
			for b.Loop() {
				mtCall(r, ctx)
			}
		})
	}
}

func mtMetricsName(on bool) string {
	if on {
		return "metrics=on"
	}
	return "metrics=off"
}
