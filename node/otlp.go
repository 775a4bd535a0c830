package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/vaxel/vaxel/node/config"
	"github.com/vaxel/vaxel/pki"
	"github.com/vaxel/vaxel/router"
)

// OTLP export of hop records (federation/DESIGN.md, "OTLP export"). The
// router hands every hop record to a bounded queue (router.HopFeed) without
// waiting; one goroutine (run) turns the records into spans with the
// OpenTelemetry SDK, batches them and sends each batch with the SDK's
// OTLP/HTTP exporter. Each span carries the hop's own trace id, span id and
// parent span id, which the router also sent downstream in traceparent, so
// the spans of every platform a call crossed join into one trace in the
// collector. Nothing here is on the request path: a stuck or absent
// collector costs only the records that do not fit in the queue, and those
// are counted.

const (
	defaultOTLPQueue        = 4096 // hop records of ~200 B: about 1 MB
	defaultOTLPBatch        = 512  // the SDK batcher's default
	defaultOTLPBatchTimeout = time.Second
	defaultOTLPTimeout      = 10 * time.Second
)

// otlpExport exports hop records as spans. Built by New, run by Run.
type otlpExport struct {
	endpoint     string
	feed         *router.HopFeed
	exp          sdktrace.SpanExporter
	tp           *sdktrace.TracerProvider
	tracer       trace.Tracer
	log          *slog.Logger
	batchSize    int
	batchTimeout time.Duration
	timeout      time.Duration

	// Owned by run's goroutine: spans reach batch through spanBatch.OnEnd,
	// which span.End calls synchronously on that goroutine.
	batch   []sdktrace.ReadOnlySpan
	due     time.Time // when batch must be sent, once it holds a span
	failing bool      // the last export failed (logged once per outage)

	exported, failed atomic.Uint64 // spans
}

// newOTLPExport builds the export to trace.otlp_endpoint and attaches its
// queue to rt, so that records are queued from the router's first call
// on. It returns nil when no endpoint is set. It opens no connection.
func newOTLPExport(cfg *config.Config, rt *router.Router, log *slog.Logger) (*otlpExport, error) {
	t := cfg.Trace
	if t.OTLPEndpoint == "" {
		return nil, nil
	}
	u, err := url.Parse(t.OTLPEndpoint)
	if err != nil {
		return nil, fmt.Errorf("trace.otlp_endpoint: %w", err)
	}
	if u.Path == "" {
		// The exporter would post to "/"; every collector listens on the
		// OTLP/HTTP default.
		u.Path = "/v1/traces"
	}
	e := &otlpExport{
		endpoint:     u.Redacted(),
		log:          log,
		batchSize:    orDefault(t.OTLPBatchSize, defaultOTLPBatch),
		batchTimeout: orDefault(t.OTLPBatchTimeout, defaultOTLPBatchTimeout),
		timeout:      orDefault(t.OTLPTimeout, defaultOTLPTimeout),
	}
	opts := []otlptracehttp.Option{
		otlptracehttp.WithEndpointURL(u.String()),
		// Bounds each attempt; the context of ExportSpans bounds the
		// retries together.
		otlptracehttp.WithTimeout(e.timeout),
	}
	if u.Scheme == "https" {
		cas := t.OTLPCAs
		if len(cas) == 0 {
			cas = []string{cfg.TLS.CA}
		}
		tc, err := pki.ClientTLSConfig(cfg.TLS.Cert, cfg.TLS.Key, cas)
		if err != nil {
			return nil, fmt.Errorf("trace.otlp_endpoint: %w", err)
		}
		opts = append(opts, otlptracehttp.WithTLSClientConfig(tc))
	}
	// No I/O: the HTTP exporter connects on its first export.
	if e.exp, err = otlptracehttp.New(context.Background(), opts...); err != nil {
		return nil, fmt.Errorf("trace.otlp_endpoint: %w", err)
	}
	e.tp = sdktrace.NewTracerProvider(
		sdktrace.WithIDGenerator(hopIDs{}),
		// Every hop is exported: whether to keep a trace is the
		// collector's decision (tail sampling sees the whole chain).
		sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithSpanProcessor(spanBatch{e}),
		// Explicit, not resource.Default(): the spans say which node
		// of which platform they come from, whatever the environment says.
		sdktrace.WithResource(resource.NewWithAttributes(semconv.SchemaURL,
			semconv.ServiceName("vaxel"),
			semconv.ServiceVersion(Version),
			semconv.ServiceNamespace(cfg.Node.Platform),
			semconv.ServiceInstanceID(cfg.Node.Name),
		)),
	)
	e.tracer = e.tp.Tracer("github.com/vaxel/vaxel/router")
	if e.feed = rt.FeedHops(orDefault(t.OTLPQueueSize, defaultOTLPQueue)); e.feed == nil {
		return nil, errors.New("trace.otlp_endpoint exports hop records, which router.trace_max_records < 0 turns off")
	}
	return e, nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// run exports hop records until ctx is done, then exports what the queue
// still holds and shuts the exporter down. It returns once that is done,
// within trace.otlp_timeout of ctx being done however many batches are
// left (what has not gone by then is counted as failed). Cancel ctx after
// the router has stopped, so that the records of the calls it drained are
// exported too.
func (e *otlpExport) run(ctx context.Context) {
	// Exports run under hard, which ends one timeout after ctx: a stuck
	// collector must not hold up the node's stop once per queued batch.
	hard, cancelHard := context.WithCancel(context.Background())
	defer cancelHard()
	stopTimer := context.AfterFunc(ctx, func() {
		select {
		case <-time.After(e.timeout):
			cancelHard()
		case <-hard.Done():
		}
	})
	defer stopTimer()
	recs := make([]router.HopRecord, 0, e.batchSize)
	for {
		wait, cancel := ctx, context.CancelFunc(func() {})
		if len(e.batch) > 0 {
			wait, cancel = context.WithDeadline(ctx, e.due)
		}
		var err error
		recs, err = e.feed.Next(wait, recs[:0])
		cancel()
		for i := range recs {
			e.add(&recs[i])
			if len(e.batch) >= e.batchSize {
				e.flush(hard)
			}
		}
		clear(recs) // let the records' strings go
		if err == nil {
			// Records that keep coming never let Next see the deadline.
			if len(e.batch) > 0 && !time.Now().Before(e.due) {
				e.flush(hard)
			}
			continue
		}
		// The batch is due, or the node stops and the queue is empty
		// (Next returns queued records before the context's error).
		e.flush(hard)
		if ctx.Err() != nil {
			break
		}
	}
	// Neither does I/O: the processor is spanBatch, and the HTTP exporter
	// only stops its client.
	if err := errors.Join(e.tp.Shutdown(context.Background()), e.exp.Shutdown(context.Background())); err != nil {
		e.log.Warn("OTLP exporter shutdown", "endpoint", e.endpoint, "err", err)
	}
}

// add turns a hop record into an ended span in e.batch.
func (e *otlpExport) add(h *router.HopRecord) {
	tid, err := trace.TraceIDFromHex(h.TraceID)
	if err != nil {
		e.failed.Add(1) // the router always sets valid ids; count, do not guess
		return
	}
	sid, err := trace.SpanIDFromHex(h.SpanID)
	if err != nil {
		e.failed.Add(1)
		return
	}
	ctx := context.WithValue(context.Background(), hopIDsKey{}, hopSpanIDs{tid, sid})
	if pid, err := trace.SpanIDFromHex(h.ParentSpanID); err == nil {
		// The caller's span, usually the previous platform's hop.
		ctx = trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: tid, SpanID: pid, TraceFlags: trace.FlagsSampled, Remote: true,
		}))
	}
	name := "vaxel.hop"
	if h.Contract != "" {
		name += " " + h.Contract
	}
	// Attribute names are the hop record's JSON names under "vaxel.".
	attrs := make([]attribute.KeyValue, 0, 13)
	attrs = append(attrs,
		attribute.String("vaxel.correlation_id", h.CorrelationID),
		attribute.String("vaxel.platform", h.Platform),
		attribute.String("vaxel.node", h.Node),
		attribute.String("vaxel.consumer", h.Consumer),
		attribute.String("vaxel.original_consumer", h.OriginalConsumer),
		attribute.String("vaxel.contract", h.Contract),
		attribute.String("vaxel.logical_address", h.LogicalAddress),
		attribute.String("vaxel.outcome", h.Outcome),
		semconv.HTTPResponseStatusCode(h.Status),
	)
	for _, kv := range [...]struct{ k, v string }{
		{"vaxel.producer", h.Producer},
		{"vaxel.route_url", h.RouteURL},
		{"vaxel.next_platform", h.NextPlatform},
		{"vaxel.next_hop", h.NextHop},
	} {
		if kv.v != "" {
			attrs = append(attrs, attribute.String(kv.k, kv.v))
		}
	}
	_, sp := e.tracer.Start(ctx, name,
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithTimestamp(h.Received),
		trace.WithAttributes(attrs...))
	if !h.Forwarded.IsZero() {
		sp.AddEvent("forwarded", trace.WithTimestamp(h.Forwarded))
	}
	if !h.DownstreamAnswered.IsZero() {
		sp.AddEvent("downstream_answered", trace.WithTimestamp(h.DownstreamAnswered))
	}
	if h.Outcome != "ok" {
		sp.SetStatus(codes.Error, h.Outcome) // a VP code, or soap_fault
	}
	if len(e.batch) == 0 {
		e.due = time.Now().Add(e.batchTimeout)
	}
	sp.End(trace.WithTimestamp(h.Answered)) // → spanBatch.OnEnd
}

// flush sends e.batch, for up to trace.otlp_timeout and no longer than
// parent lasts, and empties it. A batch that fails is dropped and counted:
// retrying it would hold up newer records, which are worth more.
func (e *otlpExport) flush(parent context.Context) {
	if len(e.batch) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(parent, e.timeout)
	err := e.exp.ExportSpans(ctx, e.batch)
	cancel()
	n := uint64(len(e.batch))
	clear(e.batch)
	e.batch = e.batch[:0]
	if err != nil {
		e.failed.Add(n)
		if !e.failing {
			e.log.Warn("OTLP export failing; spans are dropped until the collector takes them again", "endpoint", e.endpoint, "spans", n, "err", err)
			e.failing = true
		}
		return
	}
	e.exported.Add(n)
	if e.failing {
		e.log.Info("OTLP export works again", "endpoint", e.endpoint)
		e.failing = false
	}
}

// collectors returns the export's series for the node's registry.
func (e *otlpExport) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "vaxel_trace_otlp_dropped_total",
			Help: "Hop records not exported because the export queue (trace.otlp_queue_size) was full.",
		}, func() float64 { return float64(e.feed.Dropped()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "vaxel_trace_otlp_exported_spans_total",
			Help: "Hop records the OTLP collector accepted as spans.",
		}, func() float64 { return float64(e.exported.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "vaxel_trace_otlp_failed_spans_total",
			Help: "Hop records whose export failed (collector unreachable, refused or too slow).",
		}, func() float64 { return float64(e.failed.Load()) }),
	}
}

// hopIDs is the SDK's IDGenerator, made to return the ids of the hop
// record being exported (put into the context by add) instead of new
// random ones: the span must be the one the router named in traceparent
// downstream, or the next platform's span would have a parent that does
// not exist.
type hopIDs struct{}

type hopIDsKey struct{}

type hopSpanIDs struct {
	trace trace.TraceID
	span  trace.SpanID
}

var _ sdktrace.IDGenerator = hopIDs{}

// NewIDs serves a hop that started its trace (no parent).
func (hopIDs) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	ids, _ := ctx.Value(hopIDsKey{}).(hopSpanIDs)
	return ids.trace, ids.span
}

// NewSpanID serves a hop with a parent: the trace id is the parent's,
// which add set to the hop's.
func (hopIDs) NewSpanID(ctx context.Context, _ trace.TraceID) trace.SpanID {
	ids, _ := ctx.Value(hopIDsKey{}).(hopSpanIDs)
	return ids.span
}

// spanBatch is the tracer provider's only span processor: it appends each
// ended span to the export's batch. The SDK calls OnEnd from span.End, on
// run's goroutine, so it needs no lock.
type spanBatch struct{ e *otlpExport }

var _ sdktrace.SpanProcessor = spanBatch{}

func (spanBatch) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (b spanBatch) OnEnd(s sdktrace.ReadOnlySpan)                 { b.e.batch = append(b.e.batch, s) }
func (spanBatch) Shutdown(context.Context) error                  { return nil }
func (spanBatch) ForceFlush(context.Context) error                { return nil }
