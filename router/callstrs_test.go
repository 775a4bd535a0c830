package router

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// mtChainCall is an internal call that carries what a call from another
// platform does: correlation id, traceparent, original consumer and routing
// history, so that every string the handler takes from a request is taken.
func mtChainCall(r *Router, corrID, trace, history string) int {
	ctx := mtRequest(mtConsumer, mtEnvelope(mtContract, mtAddress))
	ctx.Request.Header.Set(hdrCorrelationID, corrID)
	ctx.Request.Header.Set(hdrTraceparent, "00-"+trace+"-00f067aa0ba902b7-01")
	ctx.Request.Header.Set(hdrOriginalConsumer, "SE0000000001-ORIG")
	ctx.Request.Header.Set(hdrRoutingHistory, history)
	return mtCall(r, ctx)
}

// A routed call allocates nothing on the request path: the call's strings
// (ids, sender, history, original consumer, contract, logical address) are
// kept in the pooled inbound or share the request body, not allocated per
// call. Fresh heap per call was a node's steady march through new pages
// (page faults, cache misses) between garbage collections.
func TestRoutedCallAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's instrumentation allocates, and sync.Pool drops items at random; allocations are asserted in normal builds")
	}
	r := mtRouter(t, mtCatalog(t, mtProducerServer(t)))
	ctx := mtRequest(mtConsumer, mtEnvelope(mtContract, mtAddress))
	ctx.Request.Header.Set(hdrCorrelationID, "corr-1")
	ctx.Request.Header.Set(hdrTraceparent, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	ctx.Request.Header.Set(hdrOriginalConsumer, "SE0000000001-ORIG")
	ctx.Request.Header.Set(hdrRoutingHistory, "SE0000000001-ORIG#other_env")
	if st := mtCall(r, ctx); st != 200 {
		t.Fatalf("status %d: %s", st, ctx.Response.Body())
	}
	if n := testing.AllocsPerRun(200, func() { mtCall(r, ctx) }); n != 0 {
		t.Errorf("a routed call allocates %.1f times, want 0", n)
	}
	// Without the headers the node makes the ids itself, also in place.
	bare := mtRequest(mtConsumer, mtEnvelope(mtContract, mtAddress))
	if n := testing.AllocsPerRun(200, func() { mtCall(r, bare) }); n != 0 {
		t.Errorf("a routed call that starts here allocates %.1f times, want 0", n)
	}
}

// The call's strings live only as long as the call; the hop feed keeps
// records longer, so it must hold copies: a record queued by one call is
// unchanged by the calls after it, which reuse the same buffers.
func TestHopFeedOutlivesTheCallsStrings(t *testing.T) {
	r := mtRouter(t, mtCatalog(t, mtProducerServer(t)))
	f := r.FeedHops(16)
	const trace1 = "11111111111111111111111111111111"
	if st := mtChainCall(r, "corr-first", trace1, "SE0000000001-ORIG#first_env"); st != 200 {
		t.Fatalf("status %d", st)
	}
	for i := range 5 {
		trace := strings.Repeat(string(rune('2'+i)), 32)
		if st := mtChainCall(r, "corr-later-"+string(rune('a'+i)), trace, "SE0000000009-LATER#later_env"); st != 200 {
			t.Fatalf("status %d", st)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	recs, err := f.Next(ctx, make([]HopRecord, 0, 16))
	if err != nil || len(recs) != 6 {
		t.Fatalf("Next = %d records, %v; want 6", len(recs), err)
	}
	h := recs[0]
	if h.CorrelationID != "corr-first" || h.TraceID != trace1 || h.Consumer != mtConsumer ||
		h.OriginalConsumer != "SE0000000001-ORIG" || h.Contract != mtContract || h.LogicalAddress != mtAddress {
		t.Errorf("the first call's fed record changed after later calls: %+v", h)
	}
	// The store itself copies each record's bytes when it is written.
	if got := r.Hops("corr-first"); len(got) != 1 || got[0].TraceID != trace1 {
		t.Errorf("stored record of the first call: %+v", got)
	}
}

// str copies into the inbound's buffer while there is room and allocates
// beyond it; strings already handed out stay as they were either way.
func TestInboundStr(t *testing.T) {
	in := getInbound()
	defer in.release()
	a := in.str([]byte("alpha"))
	long := strings.Repeat("x", callStrs)
	b := in.str([]byte(long)) // does not fit: allocated
	c := in.join("beta", "#", "gamma")
	if a != "alpha" || b != long || c != "beta#gamma" || in.str(nil) != "" {
		t.Errorf("str/join = %q, %d bytes, %q", a, len(b), c)
	}
	if cap(in.strs) != callStrs {
		t.Errorf("the buffer grew to %d: strings already handed out would point at the old one", cap(in.strs))
	}
}

// keepHandler is a slog handler that keeps every record, as a batching
// exporter does.
type keepHandler struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *keepHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *keepHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.recs = append(h.recs, r.Clone())
	h.mu.Unlock()
	return nil
}
func (h *keepHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *keepHandler) WithGroup(string) slog.Handler      { return h }

// Calls logged through slog (no CallLogWriter) hand the handler copies: a
// handler may keep a record after the call, whose own strings are reused.
func TestSlogCallLineOutlivesTheCallsStrings(t *testing.T) {
	r := mtRouter(t, mtCatalog(t, mtProducerServer(t)))
	h := &keepHandler{}
	r.cfg.LogCalls, r.cfg.Logger = true, slog.New(h)
	if st := mtChainCall(r, "corr-first", strings.Repeat("1", 32), "SE0000000001-ORIG#first_env"); st != 200 {
		t.Fatalf("status %d", st)
	}
	for i := range 3 {
		if st := mtChainCall(r, "corr-later-"+string(rune('a'+i)), strings.Repeat(string(rune('2'+i)), 32), "SE0000000009-LATER#later_env"); st != 200 {
			t.Fatalf("status %d", st)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.recs) == 0 {
		t.Fatal("no call logged")
	}
	got := map[string]string{}
	h.recs[0].Attrs(func(a slog.Attr) bool { got[a.Key] = a.Value.String(); return true })
	if got["correlation_id"] != "corr-first" || got["trace_id"] != strings.Repeat("1", 32) || got["sender"] != mtConsumer ||
		got["original_consumer"] != "SE0000000001-ORIG" || got["contract"] != mtContract {
		t.Errorf("the first call's kept log record changed after later calls: %v", got)
	}
}
