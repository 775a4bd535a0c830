package router

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaxel/vaxel/tak"
)

// Label values that stand for "no value". A label holds only a bounded value:
// a contract namespace or component HSA-ID as the catalog spells it, a
// fault code, or one of these. Raw request data never becomes a label.
const (
	// labelNone: the call ended before the value was known (no contract in
	// an unparsable request, no consumer before identification, no producer
	// before a route was found).
	labelNone = ""
	// labelUnknown: the call carried a value, but the catalog has no such
	// contract or component.
	labelUnknown = "unknown"
)

// Outcomes of a call besides its VP code ("VP004", …).
const (
	outcomeOK        = "ok"         // the producer answered 2xx
	outcomeSOAPFault = "soap_fault" // the producer's SOAP fault, passed through
	resultFault      = "fault"      // call_duration's result for every VP code
)

// latencyBuckets span a loopback producer (sub-millisecond) to the longest
// producer timeout in use (30 s).
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20, 30}

// routerMetrics are the router's Prometheus series. The hot path does one map
// lookup per call, keyed by the call's raw values lower-cased in a stack
// buffer, in a read-only map of resolved series; it allocates nothing. Only
// a key not yet in that map takes the slow path, which checks each value
// against the catalog, replaces what the catalog does not know, and finds
// or creates the series of the resulting bounded label set. The map holds
// only keys built from catalog values, so garbage in a request can make a
// call slower but can never add a series or a map entry.
type routerMetrics struct {
	cat   *atomic.Pointer[tak.Catalog] // the router's: the slow path checks values against it
	stats *Stats

	calls    *prometheus.CounterVec   // contract, consumer, producer, outcome
	duration *prometheus.HistogramVec // contract, result
	producer *prometheus.HistogramVec // producer
	panics   prometheus.CounterFunc
	version  prometheus.GaugeFunc

	// read is never modified once published; new series go to dirty and
	// are promoted into a fresh read map in batches (as sync.Map does), so
	// copying stays amortised O(1) per new series.
	read atomic.Pointer[map[string]*series]

	mu     sync.Mutex // guards dirty, misses
	dirty  map[string]*series
	misses int // locked lookups since the last promotion
}

// series is the resolved children of one label set.
type series struct {
	calls    prometheus.Counter
	duration prometheus.Observer
	producer prometheus.Observer // nil when the producer label is empty
}

func newMetrics(cat *atomic.Pointer[tak.Catalog], stats *Stats) *routerMetrics {
	m := &routerMetrics{
		cat:   cat,
		stats: stats,
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vaxel_router_calls_total",
			Help: "Calls answered, by contract namespace, consumer HSA-ID and producer component HSA-ID as the catalog spells them (\"unknown\" if not in the catalog, \"\" if the call ended before the value was known), and outcome: ok, soap_fault (the producer's fault passed through) or the VP code.",
		}, []string{"contract", "consumer", "producer", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vaxel_router_call_duration_seconds",
			Help:    "Time from accepting a call to its answer, by contract and result (ok, soap_fault, fault).",
			Buckets: latencyBuckets,
		}, []string{"contract", "result"}),
		producer: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vaxel_router_producer_duration_seconds",
			Help:    "Time waiting for the producer (the x-skltp-prt value), including a retried connect and timeouts, by producer component.",
			Buckets: latencyBuckets,
		}, []string{"producer"}),
		dirty: map[string]*series{},
	}
	m.panics = prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "vaxel_router_panics_total",
		Help: "Calls that hit a bug and were answered VP009 by the panic guard (not in vaxel_router_calls_total).",
	}, func() float64 { return float64(stats.Panics.Load()) })
	m.version = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vaxel_router_catalog_version",
		Help: "Catalog version (change sequence number) new calls are routed with; lags vaxel_catalog_version briefly after a change.",
	}, func() float64 {
		if c := cat.Load(); c != nil {
			return float64(c.Seq())
		}
		return 0
	})
	empty := map[string]*series{}
	m.read.Store(&empty)
	return m
}

// Describe implements prometheus.Collector.
func (m *routerMetrics) Describe(ch chan<- *prometheus.Desc) {
	m.calls.Describe(ch)
	m.duration.Describe(ch)
	m.producer.Describe(ch)
	m.panics.Describe(ch)
	m.version.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *routerMetrics) Collect(ch chan<- prometheus.Metric) {
	m.calls.Collect(ch)
	m.duration.Collect(ch)
	m.producer.Collect(ch)
	m.panics.Collect(ch)
	m.version.Collect(ch)
}

// Collector returns the router's metrics for a registry the caller owns
// (one per node, so several routers in one process never collide). Every
// series it reports is listed in docs/ARCHITECTURE.md, "Metrics".
func (r *Router) Collector() prometheus.Collector { return r.metrics }

// observe counts one answered call. It is safe for concurrent use and, once
// the call's label set has been seen, allocates nothing. A nil m counts
// nothing (the benchmarks' baseline).
func (m *routerMetrics) observe(c *call) {
	if m == nil {
		return
	}
	outcome := outcomeOf(c)
	var buf [320]byte // namespaces run to about 100 bytes; longer keys spill to the heap
	key, ok := appendSeg(buf[:0], c.info.Contract)
	if ok {
		key, ok = appendSeg(key, c.sender)
	}
	if ok {
		key, ok = appendSeg(key, c.target.Producer)
	}
	if ok {
		key, ok = appendSeg(key, outcome)
	}
	var s *series
	if ok {
		s = (*m.read.Load())[string(key)]
	}
	if s == nil {
		s = m.resolve(c, outcome)
		if s == nil {
			return
		}
	}
	s.calls.Inc()
	s.duration.Observe(time.Since(c.start).Seconds())
	if s.producer != nil && c.prt > 0 {
		s.producer.Observe(c.prt.Seconds())
	}
}

// resolve is the slow path: it maps the call's values to catalog values (or
// labelNone/labelUnknown) and returns that label set's series, creating it
// once. It returns nil only if the client library refuses a label value.
func (m *routerMetrics) resolve(c *call, outcome string) *series {
	cat := m.cat.Load()
	contract := labelUnknown
	switch {
	case c.info.Contract == "":
		contract = labelNone
	case cat != nil:
		if ct, ok := cat.ContractByNamespace(c.info.Contract); ok {
			contract = ct.Namespace
		}
	}
	consumer, producer := componentLabel(cat, c.sender), componentLabel(cat, c.target.Producer)
	key := appendLabel(nil, contract)
	key = appendLabel(key, consumer)
	key = appendLabel(key, producer)
	key, _ = appendSeg(key, outcome) // outcomes are a handful of short constants
	k := string(key)
	if s := (*m.read.Load())[k]; s != nil {
		return s
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	read := *m.read.Load()
	s := read[k]
	if s == nil {
		s = m.dirty[k]
	}
	if s == nil {
		var err error
		if s, err = m.newSeries(contract, consumer, producer, outcome); err != nil {
			return nil
		}
		m.dirty[k] = s
	}
	// Promote once the locked lookups since the last promotion have paid
	// for copying the map.
	if m.misses++; len(m.dirty) > 0 && m.misses >= 8+len(read)/8 {
		next := make(map[string]*series, len(read)+len(m.dirty))
		for k, v := range read {
			next[k] = v
		}
		for k, v := range m.dirty {
			next[k] = v
		}
		m.read.Store(&next)
		m.dirty, m.misses = map[string]*series{}, 0
	}
	return s
}

func (m *routerMetrics) newSeries(contract, consumer, producer, outcome string) (*series, error) {
	calls, err := m.calls.GetMetricWithLabelValues(contract, consumer, producer, outcome)
	if err != nil {
		return nil, err
	}
	result := outcome
	if result != outcomeOK && result != outcomeSOAPFault {
		result = resultFault
	}
	dur, err := m.duration.GetMetricWithLabelValues(contract, result)
	if err != nil {
		return nil, err
	}
	s := &series{calls: calls, duration: dur}
	if producer != labelNone {
		if s.producer, err = m.producer.GetMetricWithLabelValues(producer); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func componentLabel(cat *tak.Catalog, hsaID string) string {
	if hsaID == "" {
		return labelNone
	}
	if cat != nil {
		if co, ok := cat.ComponentByHSAID(hsaID); ok {
			return co.HSAID
		}
	}
	return labelUnknown
}

func outcomeOf(c *call) string {
	switch {
	case c.code != 0:
		return c.code.String()
	case c.status >= 200 && c.status < 300:
		return outcomeOK
	default:
		return outcomeSOAPFault
	}
}

// Keys are length-prefixed segments, so no choice of values can make two
// label sets share a key. unknownSeg marks labelUnknown; a raw value can
// never produce it (appendSeg refuses lengths ≥ 0xffff), so a request
// carrying the text "unknown" takes the slow path rather than hit the
// unknown series directly. (A catalog entity spelt "unknown" would share
// the unknown series; contracts are URNs and components HSA-IDs.)
const unknownSeg = 0xffff

// appendSeg appends s, ASCII lower-cased as the catalog matches names
// (case-insensitively). It reports false for a value too long to key.
func appendSeg(dst []byte, s string) ([]byte, bool) {
	if len(s) >= unknownSeg {
		return dst, false
	}
	dst = append(dst, byte(len(s)>>8), byte(len(s)))
	n := len(dst)
	dst = append(dst, s...)
	for i := n; i < len(dst); i++ {
		if b := dst[i]; 'A' <= b && b <= 'Z' {
			dst[i] = b + 'a' - 'A'
		}
	}
	return dst, true
}

// appendLabel appends a resolved label value (a catalog value or a marker).
func appendLabel(dst []byte, v string) []byte {
	if v == labelUnknown {
		return append(dst, unknownSeg>>8, unknownSeg&0xff)
	}
	dst, _ = appendSeg(dst, v) // catalog values are far shorter than 64 KiB
	return dst
}
