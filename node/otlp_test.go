package node

import (
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/vaxel/vaxel/node/config"
	"github.com/vaxel/vaxel/pki"
	"github.com/vaxel/vaxel/router"
)

// otlpCollector is a fake OTLP/HTTP collector on loopback: it decodes each
// export request and keeps the spans, with their resource's attributes.
type otlpCollector struct {
	url     string
	release chan struct{} // non-nil: requests wait until it is closed (a stuck collector)

	mu       sync.Mutex
	spans    []otlpSpan
	requests int
	clients  []string // CN of the client certificate of each TLS request
}

type otlpSpan struct {
	resource map[string]string
	*tracepb.Span
}

// startOTLPCollector starts a collector; with tc it serves HTTPS with that
// configuration; stuck makes it take requests and not answer them until
// the returned collector's release is closed.
func startOTLPCollector(t *testing.T, tc *tls.Config, stuck bool) *otlpCollector {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &otlpCollector{url: "http://" + ln.Addr().String() + "/v1/traces"}
	if stuck {
		c.release = make(chan struct{})
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c.release != nil {
			<-c.release
		}
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "want POST /v1/traces application/x-protobuf", http.StatusBadRequest)
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		b, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		c.requests++
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			c.clients = append(c.clients, r.TLS.PeerCertificates[0].Subject.CommonName)
		}
		for _, rs := range req.GetResourceSpans() {
			res := otlpAttrs(rs.GetResource().GetAttributes())
			for _, ss := range rs.GetScopeSpans() {
				for _, sp := range ss.GetSpans() {
					c.spans = append(c.spans, otlpSpan{res, sp})
				}
			}
		}
		c.mu.Unlock()
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	})}
	if tc != nil {
		c.url = "https://" + ln.Addr().String() + "/v1/traces"
		ln = tls.NewListener(ln, tc)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		if c.release != nil {
			select {
			case <-c.release:
			default:
				close(c.release)
			}
		}
		srv.Close()
	})
	return c
}

// trace returns the spans received of the trace with the hex id.
func (c *otlpCollector) trace(id string) []otlpSpan {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []otlpSpan
	for _, s := range c.spans {
		if hex.EncodeToString(s.GetTraceId()) == id {
			out = append(out, s)
		}
	}
	return out
}

// otlpAttrs flattens OTLP attributes to strings (ints in decimal).
func otlpAttrs(kvs []*commonpb.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		switch v := kv.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.GetKey()] = v.StringValue
		case *commonpb.AnyValue_IntValue:
			m[kv.GetKey()] = fmt.Sprint(v.IntValue)
		default:
			m[kv.GetKey()] = fmt.Sprintf("%v", kv.GetValue())
		}
	}
	return m
}

// otlpPlatform starts a one-node platform (no platform gossip) exporting
// to endpoint; with fedKey it joins the federation through join.
func otlpPlatform(t *testing.T, p *gossipPlatform, node, name string, tr config.Trace, fedKey string, allow []string, join ...string) *runningNode {
	t.Helper()
	c := fedSingle(t, p, node, name, fedKey, allow, join...)
	c.Trace = tr
	if err := config.LoadDerived(c); err != nil {
		t.Fatal(err)
	}
	return p.start(c)
}

func spanHexID(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return hex.EncodeToString(b)
}

// A call crosses platforms A → B → producer, with a traceparent from the
// consumer. Both nodes export their hop as a span to an HTTPS collector
// (presenting their node certificate): each span has exactly its hop
// record's trace id, span id and parent span id, so B's span is the child
// of A's and A's the child of the consumer's span; name, kind, times,
// events, attributes and resource come from the record. A call refused at
// A is a root span with an error status.
func TestOTLPExportAcrossPlatforms(t *testing.T) {
	p := newGossipPlatform(t)
	issueConsumer(t, p)
	fedKey := filepath.Join(p.dir, "federation.key")
	if err := os.WriteFile(fedKey, []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{42}, 32))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	is, err := p.ca.Issue(pki.Request{CommonName: "collector", IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.WriteFiles(p.dir, "collector", is); err != nil {
		t.Fatal(err)
	}
	ctc, err := pki.ServerTLSConfig(filepath.Join(p.dir, "collector.crt"), filepath.Join(p.dir, "collector.key"), []string{filepath.Join(p.dir, "ca.crt")}, true)
	if err != nil {
		t.Fatal(err)
	}
	col := startOTLPCollector(t, ctc, false)
	producer := startFedProducer(t)

	tr := config.Trace{OTLPEndpoint: col.url, OTLPBatchTimeout: 50 * time.Millisecond}
	b := otlpPlatform(t, p, "b1", "B", tr, fedKey, []string{"A"}) // B takes calls from A
	a := otlpPlatform(t, p, "a1", "A", tr, fedKey, []string{"B"}, b.fed.Addr())
	applyOrder(t, a.Node, "A", fedOrder("A", "SE-B", "vaxel://B", "SE-CONSUMER", []string{fedLA, fedLANoAuth}, []string{fedLA}))
	applyOrder(t, b.Node, "B", fedOrder("B", "SE-PRODUCER", producer.url, a.hsaID, []string{fedLA}, []string{fedLA}))
	for _, x := range []*runningNode{a, b} {
		waitFor(t, x.cfg.Node.Name+" ready", 20*time.Second, func() bool { ok, _ := x.Readiness(); return ok })
	}
	waitFor(t, "A sees B", 20*time.Second, func() bool { _, ok := a.router.Platforms().Nodes("B"); return ok })

	const traceID, consumerSpan = "5c1e0a7e3f9d4b2a8c6e4f1a2b3c4d5e", "a1b2c3d4e5f60718"
	aAddr, _ := a.RouterAddrs()
	if code, _ := fedCall(t, p.dir, aAddr, fedLA, "traceparent", "00-"+traceID+"-"+consumerSpan+"-01"); code != 200 {
		t.Fatalf("A→B→producer: HTTP %d", code)
	}
	hopsA, hopsB := a.router.Hops(traceID), b.router.Hops(traceID)
	if len(hopsA) != 1 || len(hopsB) != 1 {
		t.Fatalf("hop records: %d at A, %d at B; want one each", len(hopsA), len(hopsB))
	}
	hopA, hopB := hopsA[0], hopsB[0]
	if hopA.ParentSpanID != consumerSpan || hopB.ParentSpanID != hopA.SpanID || hopB.SpanID == hopA.SpanID {
		t.Errorf("hop records: A span %s parent %s, B span %s parent %s; want A the consumer's (%s) child and B A's", hopA.SpanID, hopA.ParentSpanID, hopB.SpanID, hopB.ParentSpanID, consumerSpan)
	}
	waitFor(t, "two spans of the trace at the collector", 10*time.Second, func() bool { return len(col.trace(traceID)) >= 2 })
	spans := col.trace(traceID)
	if len(spans) != 2 {
		t.Fatalf("%d spans of the trace, want 2 (one per hop)", len(spans))
	}
	bySpan := map[string]otlpSpan{}
	for _, s := range spans {
		bySpan[spanHexID(s.GetSpanId())] = s
	}
	for _, h := range []router.HopRecord{hopA, hopB} {
		s, ok := bySpan[h.SpanID]
		if !ok {
			t.Errorf("no span with %s's hop span id %s; span ids: %v", h.Platform, h.SpanID, slices.Collect(maps.Keys(bySpan)))
			continue
		}
		checkHopSpan(t, s, h)
	}
	if s := bySpan[hopB.SpanID]; spanHexID(s.GetParentSpanId()) != spanHexID(bySpan[hopA.SpanID].GetSpanId()) {
		t.Errorf("B's span parent %s, want A's span %s", spanHexID(s.GetParentSpanId()), hopA.SpanID)
	}

	// Refused at A (VP007): a root span (no traceparent came), error status.
	if code, _ := fedCall(t, p.dir, aAddr, fedLANoAuth, "x-skltp-correlation-id", "otlp-refused"); code != 500 {
		t.Fatalf("call without authorization: HTTP %d, want 500", code)
	}
	refused := a.router.Hops("otlp-refused")
	if len(refused) != 1 || refused[0].Outcome != "VP007" || refused[0].ParentSpanID != "" {
		t.Fatalf("refused call's hop record: %+v", refused)
	}
	waitFor(t, "the refused call's span", 10*time.Second, func() bool { return len(col.trace(refused[0].TraceID)) == 1 })
	checkHopSpan(t, col.trace(refused[0].TraceID)[0], refused[0])

	col.mu.Lock()
	clients := append([]string(nil), col.clients...)
	col.mu.Unlock()
	for _, cn := range clients {
		if cn != "a1" && cn != "b1" {
			t.Errorf("collector saw client certificate %q, want the nodes' own", cn)
		}
	}
	if len(clients) == 0 {
		t.Error("the nodes did not present their certificates to the https collector")
	}
	// The collector has the spans a little before the exporter counts them.
	waitFor(t, "A to count 2 spans exported", 5*time.Second, func() bool { return a.otlp.exported.Load() >= 2 })
	if got := a.otlp.feed.Dropped() + a.otlp.failed.Load(); got != 0 {
		t.Errorf("A dropped or failed %d spans with the collector up", got)
	}
}

// checkHopSpan compares an exported span with the hop record it came from.
func checkHopSpan(t *testing.T, s otlpSpan, h router.HopRecord) {
	t.Helper()
	if got := spanHexID(s.GetTraceId()); got != h.TraceID {
		t.Errorf("%s span trace id %s, want %s", h.Platform, got, h.TraceID)
	}
	if got := spanHexID(s.GetSpanId()); got != h.SpanID {
		t.Errorf("%s span id %s, want %s", h.Platform, got, h.SpanID)
	}
	if got := spanHexID(s.GetParentSpanId()); got != h.ParentSpanID {
		t.Errorf("%s span parent %q, want %q", h.Platform, got, h.ParentSpanID)
	}
	if s.GetName() != "vaxel.hop "+h.Contract || s.GetKind() != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("%s span %q kind %v, want %q SERVER", h.Platform, s.GetName(), s.GetKind(), "vaxel.hop "+h.Contract)
	}
	if s.GetStartTimeUnixNano() != uint64(h.Received.UnixNano()) || s.GetEndTimeUnixNano() != uint64(h.Answered.UnixNano()) {
		t.Errorf("%s span [%d, %d], want received..answered [%d, %d]", h.Platform, s.GetStartTimeUnixNano(), s.GetEndTimeUnixNano(), h.Received.UnixNano(), h.Answered.UnixNano())
	}
	want := map[string]string{
		"vaxel.correlation_id":      h.CorrelationID,
		"vaxel.platform":            h.Platform,
		"vaxel.node":                h.Node,
		"vaxel.consumer":            h.Consumer,
		"vaxel.original_consumer":   h.OriginalConsumer,
		"vaxel.contract":            h.Contract,
		"vaxel.logical_address":     h.LogicalAddress,
		"vaxel.outcome":             h.Outcome,
		"http.response.status_code": fmt.Sprint(h.Status),
		"vaxel.producer":            h.Producer,
		"vaxel.route_url":           h.RouteURL,
		"vaxel.next_platform":       h.NextPlatform,
		"vaxel.next_hop":            h.NextHop,
	}
	got := otlpAttrs(s.GetAttributes())
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s span attribute %s = %q, want %q", h.Platform, k, got[k], v)
		}
	}
	if h.Platform == "" || h.Consumer == "" || h.Contract == "" {
		t.Errorf("hop record lacks the fields under test: %+v", h)
	}
	events := map[string]uint64{}
	for _, e := range s.GetEvents() {
		events[e.GetName()] = e.GetTimeUnixNano()
	}
	wantEvents := map[string]uint64{}
	if !h.Forwarded.IsZero() {
		wantEvents["forwarded"] = uint64(h.Forwarded.UnixNano())
	}
	if !h.DownstreamAnswered.IsZero() {
		wantEvents["downstream_answered"] = uint64(h.DownstreamAnswered.UnixNano())
	}
	if fmt.Sprint(events) != fmt.Sprint(wantEvents) {
		t.Errorf("%s span events %v, want %v", h.Platform, events, wantEvents)
	}
	st := s.GetStatus()
	if h.Outcome == "ok" && st.GetCode() != tracepb.Status_STATUS_CODE_UNSET {
		t.Errorf("%s span status %v, want unset for ok", h.Platform, st)
	}
	if h.Outcome != "ok" && (st.GetCode() != tracepb.Status_STATUS_CODE_ERROR || st.GetMessage() != h.Outcome) {
		t.Errorf("%s span status %v, want error %s", h.Platform, st, h.Outcome)
	}
	if r := s.resource; r["service.name"] != "vaxel" || r["service.instance.id"] != h.Node || r["service.namespace"] != h.Platform {
		t.Errorf("%s span resource %v, want service vaxel, instance %s, namespace %s", h.Platform, r, h.Node, h.Platform)
	}
}

// A collector that refuses connections, or takes them and never answers,
// fails no call and slows none: calls return in far less than the export
// timeout, the records beyond the small queue are dropped and counted,
// the node keeps its own hop records, and it stops within the timeout.
func TestOTLPCollectorDown(t *testing.T) {
	for _, stuck := range []bool{false, true} {
		name := "refused"
		if stuck {
			name = "stuck"
		}
		t.Run(name, func(t *testing.T) {
			p := newGossipPlatform(t)
			issueConsumer(t, p)
			producer := startFedProducer(t)
			var endpoint string
			var col *otlpCollector
			if stuck {
				col = startOTLPCollector(t, nil, true)
				endpoint = col.url
			} else {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				endpoint = "http://" + ln.Addr().String() + "/v1/traces"
				ln.Close()
			}
			const timeout = 4 * time.Second
			n := otlpPlatform(t, p, "d1", "D", config.Trace{OTLPEndpoint: endpoint, OTLPQueueSize: 2, OTLPBatchSize: 1, OTLPBatchTimeout: time.Millisecond, OTLPTimeout: timeout}, "", nil)
			applyOrder(t, n.Node, "D", fedOrder("D", "SE-PRODUCER", producer.url, "SE-CONSUMER", []string{fedLA}, []string{fedLA}))
			waitFor(t, "ready", 20*time.Second, func() bool { ok, _ := n.Readiness(); return ok })

			addr, _ := n.RouterAddrs()
			const calls = 20
			for i := range calls {
				start := time.Now()
				if code, _ := fedCall(t, p.dir, addr, fedLA, "x-skltp-correlation-id", fmt.Sprint("down-", i)); code != 200 {
					t.Fatalf("call %d: HTTP %d", i, code)
				}
				// Generous for a loaded machine, far below the timeout a
				// call waiting on the export would take.
				if took := time.Since(start); took > timeout/2 {
					t.Errorf("call %d took %s with the collector %s", i, took, name)
				}
			}
			for i := range calls {
				if h := n.router.Hops(fmt.Sprint("down-", i)); len(h) != 1 {
					t.Errorf("call %d: %d hop records kept, want 1", i, len(h))
				}
			}
			if stuck {
				// One record is being exported, two wait; the rest are dropped.
				if got := n.otlp.feed.Dropped(); got < calls-4 {
					t.Errorf("dropped %d records with the collector stuck, want at least %d", got, calls-4)
				}
			} else {
				waitFor(t, "failed exports counted", 10*time.Second, func() bool { return n.otlp.failed.Load() > 0 })
			}
			start := time.Now()
			n.stop()
			if took := time.Since(start); took > timeout+3*time.Second {
				t.Errorf("stopping took %s with the collector %s, want about the export timeout %s at most", took, name, timeout)
			}
		})
	}
}

// A collector whose certificate comes from its own CA, not the platform's:
// without trace.otlp_cas the node refuses it (no span leaves the node);
// with the collector's CA listed it exports, still presenting the node's
// certificate.
func TestOTLPCollectorOwnCA(t *testing.T) {
	p := newGossipPlatform(t)
	issueConsumer(t, p)
	colCA, err := pki.NewCA("collector CA", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	colDir := filepath.Join(p.dir, "collector-pki")
	if err := colCA.WriteDir(colDir); err != nil {
		t.Fatal(err)
	}
	is, err := colCA.Issue(pki.Request{CommonName: "collector", IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.WriteFiles(colDir, "collector", is); err != nil {
		t.Fatal(err)
	}
	// The collector takes node certificates from the platform CA.
	ctc, err := pki.ServerTLSConfig(filepath.Join(colDir, "collector.crt"), filepath.Join(colDir, "collector.key"), []string{filepath.Join(p.dir, "ca.crt")}, true)
	if err != nil {
		t.Fatal(err)
	}
	producer := startFedProducer(t)
	for _, own := range []bool{false, true} {
		name, node := "platform CA", "c1"
		if own {
			name, node = "otlp_cas", "c2"
		}
		t.Run(name, func(t *testing.T) {
			col := startOTLPCollector(t, ctc, false)
			tr := config.Trace{OTLPEndpoint: col.url, OTLPBatchSize: 1, OTLPBatchTimeout: 10 * time.Millisecond, OTLPTimeout: 2 * time.Second}
			if own {
				tr.OTLPCAs = []string{filepath.Join(colDir, "ca.crt")}
			}
			n := otlpPlatform(t, p, node, "C"+node, tr, "", nil)
			applyOrder(t, n.Node, "C"+node, fedOrder("C"+node, "SE-PRODUCER", producer.url, "SE-CONSUMER", []string{fedLA}, []string{fedLA}))
			waitFor(t, "ready", 20*time.Second, func() bool { ok, _ := n.Readiness(); return ok })
			addr, _ := n.RouterAddrs()
			if code, _ := fedCall(t, p.dir, addr, fedLA); code != 200 {
				t.Fatalf("call: HTTP %d", code)
			}
			if !own {
				waitFor(t, "the export to fail", 10*time.Second, func() bool { return n.otlp.failed.Load() > 0 })
				col.mu.Lock()
				defer col.mu.Unlock()
				if len(col.spans) != 0 {
					t.Fatalf("collector got %d spans from a node that cannot verify it", len(col.spans))
				}
				return
			}
			waitFor(t, "the span exported", 10*time.Second, func() bool { return n.otlp.exported.Load() >= 1 })
			col.mu.Lock()
			defer col.mu.Unlock()
			if len(col.spans) == 0 || len(col.clients) == 0 || col.clients[0] != node {
				t.Fatalf("collector got %d spans from clients %q, want the call's span from %s", len(col.spans), col.clients, node)
			}
		})
	}
}

// Configuration: an endpoint must be an http(s) URL, needs hop records, and
// the sizes and durations cannot be negative.
func TestOTLPConfigValidation(t *testing.T) {
	p := newGossipPlatform(t)
	base := p.config("v1", 0)
	tests := []struct {
		name    string
		set     func(c *config.Config)
		wantErr string
	}{
		{"off by default", func(c *config.Config) {}, ""},
		{"https", func(c *config.Config) { c.Trace.OTLPEndpoint = "https://collector.example:4318/v1/traces" }, ""},
		{"http", func(c *config.Config) { c.Trace.OTLPEndpoint = "http://127.0.0.1:4318" }, ""},
		{"no scheme", func(c *config.Config) { c.Trace.OTLPEndpoint = "collector.example:4318" }, "trace.otlp_endpoint"},
		{"grpc scheme", func(c *config.Config) { c.Trace.OTLPEndpoint = "grpc://collector:4317" }, "not an http(s) URL"},
		{"hop records off", func(c *config.Config) {
			c.Trace.OTLPEndpoint = "https://collector.example"
			c.Router.TraceMaxRecords = -1
		}, "router.trace_max_records"},
		{"own CA", func(c *config.Config) {
			c.Trace.OTLPEndpoint = "https://collector.example:4318"
			c.Trace.OTLPCAs = []string{"/etc/vaxel/collector-ca.crt"}
		}, ""},
		{"CA without https", func(c *config.Config) {
			c.Trace.OTLPEndpoint = "http://127.0.0.1:4318"
			c.Trace.OTLPCAs = []string{"/etc/vaxel/collector-ca.crt"}
		}, "trace.otlp_cas"},
		{"CA without endpoint", func(c *config.Config) { c.Trace.OTLPCAs = []string{"/etc/vaxel/collector-ca.crt"} }, "trace.otlp_cas"},
		{"negative queue", func(c *config.Config) { c.Trace.OTLPQueueSize = -1 }, "must not be negative"},
		{"negative timeout", func(c *config.Config) { c.Trace.OTLPTimeout = -time.Second }, "must not be negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := *base
			tc.set(&c)
			err := c.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error %v, want one mentioning %q", err, tc.wantErr)
			}
		})
	}
	c := *base
	if err := c.Set("trace.otlp_endpoint", "https://collector.example:4318/v1/traces"); err != nil || c.Trace.OTLPEndpoint == "" {
		t.Errorf("trace.otlp_endpoint from a flag or VAXEL_TRACE_OTLP_ENDPOINT: %v", err)
	}
}
