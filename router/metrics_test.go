package router

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// TestMetricsCountCalls makes calls through the handler and checks every
// label of vaxel_router_calls_total and the histogram counts: ok, a
// producer SOAP fault, VP faults at each stage of a call, and a contract
// spelt in another case, which must count under the catalog's spelling.
func TestMetricsCountCalls(t *testing.T) {
	r := mtRouter(t, mtCatalog(t, mtProducerServer(t)))
	calls := []struct {
		name   string
		body   func() []byte
		sender string
		remote string
		want   int
	}{
		{"ok", func() []byte { return mtEnvelope(mtContract, mtAddress) }, mtConsumer, "", 200},
		{"ok, contract in upper case", func() []byte { return mtEnvelope(strings.ToUpper(mtContract), mtAddress) }, mtConsumer, "", 200},
		{"producer SOAP fault", func() []byte { return mtEnvelope(mtContract, "FAULTING") }, mtConsumer, "", 500},
		{"VP007, consumer in the catalog", func() []byte { return mtEnvelope(mtContract, mtAddress) }, mtOther, "", 500},
		{"VP007, consumer not in the catalog", func() []byte { return mtEnvelope(mtContract, mtAddress) }, "SE0000000000-STRANGER", "", 500},
		{"VP004, contract not in the catalog", func() []byte { return mtEnvelope("urn:riv:no:SuchResponder:1", mtAddress) }, mtConsumer, "", 500},
		{"VP015, malformed", func() []byte { return []byte("<soapenv:Envelope") }, mtConsumer, "", 500},
		{"VP011, caller not allow-listed", func() []byte { return mtEnvelope(mtContract, mtAddress) }, mtConsumer, "10.9.9.9", 500},
	}
	for _, c := range calls {
		ctx := mtRequest(c.sender, c.body())
		if c.remote != "" {
			ctx.SetRemoteAddr(&net.TCPAddr{IP: net.ParseIP(c.remote), Port: 40000})
		}
		if st := mtCall(r, ctx); st != c.want {
			t.Fatalf("%s: status %d, want %d: %s", c.name, st, c.want, ctx.Response.Body())
		}
	}

	const want = `
# HELP vaxel_router_calls_total Calls answered, by contract namespace, consumer HSA-ID and producer component HSA-ID as the catalog spells them ("unknown" if not in the catalog, "" if the call ended before the value was known), and outcome: ok, soap_fault (the producer's fault passed through) or the VP code.
# TYPE vaxel_router_calls_total counter
vaxel_router_calls_total{consumer="SE0000000001-MTCONS",contract="urn:riv:itintegration:monitoring:PingForConfigurationResponder:1",outcome="ok",producer="MT-PRODUCER"} 2
vaxel_router_calls_total{consumer="SE0000000001-MTCONS",contract="urn:riv:itintegration:monitoring:PingForConfigurationResponder:1",outcome="soap_fault",producer="MT-PRODUCER"} 1
vaxel_router_calls_total{consumer="SE0000000009-NOAUTH",contract="urn:riv:itintegration:monitoring:PingForConfigurationResponder:1",outcome="VP007",producer="MT-PRODUCER"} 1
vaxel_router_calls_total{consumer="unknown",contract="urn:riv:itintegration:monitoring:PingForConfigurationResponder:1",outcome="VP007",producer="MT-PRODUCER"} 1
vaxel_router_calls_total{consumer="SE0000000001-MTCONS",contract="unknown",outcome="VP004",producer=""} 1
vaxel_router_calls_total{consumer="SE0000000001-MTCONS",contract="",outcome="VP015",producer=""} 1
vaxel_router_calls_total{consumer="",contract="",outcome="VP011",producer=""} 1
`
	if err := testutil.CollectAndCompare(r.Collector(), strings.NewReader(want), "vaxel_router_calls_total"); err != nil {
		t.Error(err)
	}

	mfs := mtGather(t, r)
	for _, h := range []struct {
		name   string
		labels map[string]string
		count  uint64
	}{
		{"vaxel_router_call_duration_seconds", map[string]string{"contract": mtContract, "result": "ok"}, 2},
		{"vaxel_router_call_duration_seconds", map[string]string{"contract": mtContract, "result": "soap_fault"}, 1},
		{"vaxel_router_call_duration_seconds", map[string]string{"contract": mtContract, "result": "fault"}, 2},
		{"vaxel_router_call_duration_seconds", map[string]string{"contract": "unknown", "result": "fault"}, 1},
		{"vaxel_router_call_duration_seconds", map[string]string{"contract": "", "result": "fault"}, 2},
		// VP007 calls had a route, hence a producer label, but never reached it.
		{"vaxel_router_producer_duration_seconds", map[string]string{"producer": mtProducer}, 3},
	} {
		if got := mtHistogramCount(mfs, h.name, h.labels); got != h.count {
			t.Errorf("%s%v: %d samples, want %d", h.name, h.labels, got, h.count)
		}
	}
	if n := testutil.CollectAndCount(r.Collector(), "vaxel_router_producer_duration_seconds"); n != 1 {
		t.Errorf("%d producer histograms, want 1 (no producer label for calls without a route)", n)
	}
	if got := testutil.ToFloat64(r.metrics.version); got != float64(r.Catalog().Seq()) {
		t.Errorf("vaxel_router_catalog_version = %v, want %d", got, r.Catalog().Seq())
	}
}

// TestMetricsCardinality sends garbage: random contract namespaces and
// random internal sender ids. None of it is in the catalog, so after the
// first call of each kind no series and no cache entry may be added.
func TestMetricsCardinality(t *testing.T) {
	r := mtRouter(t, mtCatalog(t, "http://127.0.0.1:9"))
	garbage := func() string {
		var b [12]byte
		_, _ = rand.Read(b[:])
		return hex.EncodeToString(b[:])
	}
	call := func(sender, ns string) {
		ctx := mtRequest(sender, mtEnvelope(ns, mtAddress))
		if st := mtCall(r, ctx); st != 500 {
			t.Fatalf("status %d for garbage, want a fault", st)
		}
	}
	count := func() (series, cached int) {
		series = testutil.CollectAndCount(r.Collector(), "vaxel_router_calls_total", "vaxel_router_call_duration_seconds", "vaxel_router_producer_duration_seconds")
		r.metrics.mu.Lock()
		defer r.metrics.mu.Unlock()
		return series, len(*r.metrics.read.Load()) + len(r.metrics.dirty)
	}
	call(mtConsumer, "urn:riv:garbage:"+garbage())
	call("SE-"+garbage(), "urn:riv:garbage:"+garbage())
	series0, cached0 := count()
	for i := 0; i < 1000; i++ {
		if i%2 == 0 {
			call(mtConsumer, "urn:riv:garbage:"+garbage()+":"+strings.Repeat("X", i%50))
		} else {
			call("SE"+garbage(), "URN:"+garbage())
		}
	}
	series, cached := count()
	if series != series0 || cached != cached0 {
		t.Errorf("1000 garbage calls: %d series and %d cache entries, want %d and %d as after the first", series, cached, series0, cached0)
	}
	if got := testutil.ToFloat64(r.metrics.calls.WithLabelValues("unknown", mtConsumer, "", "VP004")); got != 501 {
		t.Errorf("garbage contracts from a known consumer counted %v times under contract=\"unknown\", want 501", got)
	}
}

// TestMetricsHotPathAllocs: counting a call whose label set has been seen
// allocates nothing.
func TestMetricsHotPathAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's instrumentation allocates; allocations are asserted in normal builds")
	}
	r := mtRouter(t, mtCatalog(t, "http://127.0.0.1:9"))
	c := mtOKCall(r)
	for i := 0; i < 100; i++ { // past promotion into the read map
		r.metrics.observe(c)
	}
	if n := testing.AllocsPerRun(1000, func() { r.metrics.observe(c) }); n != 0 {
		t.Errorf("observe allocates %v times per call, want 0", n)
	}
}

// BenchmarkObserve is the metrics' share of a call: label key, one map
// lookup, a counter and two histograms.
func BenchmarkObserve(b *testing.B) {
	r := mtRouter(b, mtCatalog(b, "http://127.0.0.1:9"))
	c := mtOKCall(r)
	for i := 0; i < 100; i++ {
		r.metrics.observe(c)
	}
	b.ReportAllocs()
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			r.metrics.observe(c)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				r.metrics.observe(c)
			}
		})
	})
}

// mtOKCall is the state of a successful call as the handler leaves it.
func mtOKCall(r *Router) *call {
	c := &call{sender: mtConsumer, status: 200, prt: 3e6}
	c.info.Contract = mtContract
	c.target.Producer = mtProducer
	return c
}

func mtGather(t *testing.T, r *Router) []*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(r.Collector()); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

func mtHistogramCount(mfs []*dto.MetricFamily, name string, labels map[string]string) uint64 {
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; !ok || v != lp.GetValue() {
					continue next
				}
			}
			return m.GetHistogram().GetSampleCount()
		}
	}
	return 0
}
