package router

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func hopAt(trace, corr string, ans time.Time) *hopEntry {
	return &hopEntry{trace: trace, corr: corr, consumer: "C", recv: ans.Add(-time.Millisecond).UnixNano(), ans: ans.UnixNano(), status: 200}
}

func TestHopStoreLimits(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := newHopStore(HopConfig{MaxRecords: 10, MaxAge: time.Minute}, "P", "n1")
	s.now = func() time.Time { return now }
	for i := 0; i < 25; i++ {
		s.add(hopAt(fmt.Sprintf("t%d", i), fmt.Sprintf("c%d", i), now))
	}
	if got := s.len(); got != 10 {
		t.Fatalf("stored %d records, want the limit 10", got)
	}
	if got := s.lookup("t14"); len(got) != 0 {
		t.Errorf("t14 should have been evicted by count, got %v", got)
	}
	for _, id := range []string{"t15", "c15", "t24", "c24"} {
		got := s.lookup(id)
		if len(got) != 1 {
			t.Fatalf("lookup %s: %d records, want 1", id, len(got))
		}
		if got[0].Platform != "P" || got[0].Node != "n1" || got[0].Outcome != "ok" {
			t.Errorf("lookup %s: %+v", id, got[0])
		}
	}
	// Copies: changing a result does not change the store.
	got := s.lookup("t20")
	got[0].Consumer = "changed"
	if again := s.lookup("t20"); again[0].Consumer != "C" {
		t.Errorf("lookup returned a view of the store: %q", again[0].Consumer)
	}

	// By age: records older than MaxAge are not returned, and are dropped
	// as new ones come.
	now = now.Add(2 * time.Minute)
	if got := s.lookup("t20"); len(got) != 0 {
		t.Errorf("expired record returned: %v", got)
	}
	s.add(hopAt("fresh", "cfresh", now))
	if got := s.len(); got != 1 {
		t.Errorf("after expiry: %d records stored, want 1", got)
	}
	if got := s.lookup("cfresh"); len(got) != 1 || got[0].TraceID != "fresh" {
		t.Errorf("lookup by correlation id: %v", got)
	}
	// Several records of one trace come back oldest first.
	s.add(hopAt("fresh", "c2", now.Add(time.Second)))
	if got := s.lookup("fresh"); len(got) != 2 || got[0].CorrelationID != "cfresh" || got[1].CorrelationID != "c2" {
		t.Errorf("two records of a trace: %v", got)
	}
}

// Expired records are never returned and are dropped within
// hopExpireEvery of expiring (add looks at the oldest record only that
// often).
func TestHopStoreExpiresWithinASecond(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	now := t0
	s := newHopStore(HopConfig{MaxRecords: 100, MaxAge: 100 * time.Millisecond}, "P", "n1")
	s.now = func() time.Time { return now }
	s.add(hopAt("old", "c-old", now))
	now = t0.Add(500 * time.Millisecond)
	s.add(hopAt("a", "c-a", now))
	if got := s.lookup("old"); len(got) != 0 {
		t.Errorf("expired record returned: %v", got)
	}
	if got := s.lookup("a"); len(got) != 1 {
		t.Errorf("fresh record: %v", got)
	}
	now = t0.Add(hopExpireEvery)
	s.add(hopAt("b", "c-b", now))
	if got := s.len(); got != 1 {
		t.Errorf("%d records a second on, want 1 (b): old and a expired", got)
	}
}

// The ring takes memory a chunk at a time as records come, never more than
// its bound, and never moves a record: once it has wrapped, adding a record
// allocates nothing (a ring that doubled and copied itself allocated twice
// its size and stalled calls on the copy).
func TestHopStoreChunks(t *testing.T) {
	// A store too big to reserve its memory when made (hopReserveMax).
	defer func(m int) { hopReserveMax = m }(hopReserveMax)
	hopReserveMax = 0
	now := time.Unix(1_800_000_000, 0)
	const per = hopChunkSize + 10 // per shard: one whole chunk and a partial one
	const max = hopShards * per
	s := newHopStore(HopConfig{MaxRecords: max, MaxAge: time.Hour}, "P", "n1")
	s.now = func() time.Time { return now }
	chunks := func() (n int) {
		for i := range s.shards {
			for _, c := range s.shards[i].chunks {
				if c != nil {
					n++
				}
			}
		}
		return n
	}
	if len(s.shards) != hopShards || chunks() != 0 {
		t.Fatalf("a new store: %d shards, %d chunks allocated; want %d and 0", len(s.shards), chunks(), hopShards)
	}
	// Records go to the shards in turn: hopChunkSize records each fill one chunk.
	n := 0
	for ; n < hopShards*hopChunkSize; n++ {
		s.add(hopAt(fmt.Sprint("t", n), "", now))
	}
	if got := chunks(); got != hopShards {
		t.Errorf("after %d records: %d chunks allocated, want %d", n, got, hopShards)
	}
	for ; n < 2*max; n++ {
		s.add(hopAt(fmt.Sprint("t", n), "", now))
	}
	if got := chunks(); got != 2*hopShards {
		t.Errorf("after wrapping: %d chunks allocated, want %d", got, 2*hopShards)
	}
	if got := s.len(); got != max {
		t.Errorf("stored %d, want %d", got, max)
	}
	// The oldest kept and the newest, across the wrap and chunk edges.
	for _, i := range []int{max, max + hopShards*hopChunkSize - 1, max + hopShards*hopChunkSize, 2*max - 1} {
		if got := s.lookup(fmt.Sprint("t", i)); len(got) != 1 {
			t.Errorf("t%d: %d records, want 1", i, len(got))
		}
	}
	if got := s.lookup(fmt.Sprint("t", max-1)); len(got) != 0 {
		t.Errorf("t%d should have been evicted", max-1)
	}
	rec := hopAt("steady", "", now)
	if a := testing.AllocsPerRun(100, func() { s.add(rec) }); a != 0 {
		t.Errorf("adding to a full ring allocates %.1f times, want 0", a)
	}
	// The last chunk is only as long as the ring needs; so is a small store's.
	if got := len(s.shards[0].chunks[1].slots); got != per-hopChunkSize {
		t.Errorf("last chunk holds %d slots, want %d", got, per-hopChunkSize)
	}
	small := newHopStore(HopConfig{MaxRecords: 10, MaxAge: time.Hour}, "P", "n1")
	small.add(hopAt("x", "", now))
	if got := len(small.shards[0].chunks[0].slots); got != 10 {
		t.Errorf("a 10-record store allocated %d slots", got)
	}
}

func TestHopStoreShardedLimit(t *testing.T) {
	s := newHopStore(HopConfig{MaxRecords: 1000, MaxAge: time.Hour}, "P", "n1")
	now := time.Now()
	for i := 0; i < 5000; i++ {
		s.add(hopAt(fmt.Sprint(i), "", now))
	}
	if got := s.len(); got > 1000+hopShards || got < 1000 {
		t.Errorf("stored %d, want about 1000", got)
	}
	if newHopStore(HopConfig{MaxRecords: -1}, "", "") != nil {
		t.Error("negative MaxRecords should turn hop records off")
	}
}

func TestHopRecordOfCall(t *testing.T) {
	url := mtProducerServer(t)
	r := mtRouter(t, mtCatalog(t, url))
	r.cfg.NodeName = "node-1"
	r.hops.node = "node-1"
	ctx := mtRequest(mtConsumer, mtEnvelope(mtContract, mtAddress))
	ctx.Request.Header.Set(hdrCorrelationID, "corr-1")
	ctx.Request.Header.Set(hdrOriginalConsumer, "SE-ORIG")
	ctx.Request.Header.Set(hdrTraceparent, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	before := time.Now()
	if st := mtCall(r, ctx); st != 200 {
		t.Fatalf("status %d: %s", st, ctx.Response.Body())
	}
	got := r.Hops("0af7651916cd43dd8448eb211c80319c")
	if len(got) != 1 {
		t.Fatalf("%d records, want 1", len(got))
	}
	h := got[0]
	want := HopRecord{TraceID: "0af7651916cd43dd8448eb211c80319c", CorrelationID: "corr-1", SpanID: h.SpanID, ParentSpanID: "b7ad6b7169203331",
		Platform: mtInstance, Node: "node-1",
		Consumer: mtConsumer, OriginalConsumer: "SE-ORIG", Contract: mtContract, LogicalAddress: mtAddress,
		Producer: mtProducer, RouteURL: url + "/ok", NextHop: url + "/ok", Outcome: "ok", Status: 200}
	cmp := h
	cmp.Received, cmp.Forwarded, cmp.DownstreamAnswered, cmp.Answered = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if cmp != want {
		t.Errorf("record\n got %+v\nwant %+v", cmp, want)
	}
	if !validSpanID(h.SpanID) {
		t.Errorf("span id %q: want 16 lower-case hex digits, not all zero", h.SpanID)
	}
	if h.Received.Before(before.Truncate(0)) || h.Forwarded.Before(h.Received) || h.DownstreamAnswered.Before(h.Forwarded) || h.Answered.Before(h.DownstreamAnswered) || h.Answered.After(time.Now()) {
		t.Errorf("timestamps out of order: %v %v %v %v", h.Received, h.Forwarded, h.DownstreamAnswered, h.Answered)
	}
	if by := r.Hops("corr-1"); len(by) != 1 || by[0].TraceID != h.TraceID {
		t.Errorf("lookup by correlation id: %v", by)
	}

	// A fault passed through from the producer, and the router's own fault.
	ctx = mtRequest(mtConsumer, mtEnvelope(mtContract, "FAULTING"))
	ctx.Request.Header.Set(hdrCorrelationID, "corr-2")
	mtCall(r, ctx)
	if got := r.Hops("corr-2"); len(got) != 1 || got[0].Outcome != "soap_fault" || got[0].Status != 500 {
		t.Errorf("producer fault: %+v", got)
	}
	ctx = mtRequest(mtOther, mtEnvelope(mtContract, mtAddress))
	ctx.Request.Header.Set(hdrCorrelationID, "corr-3")
	mtCall(r, ctx)
	if got := r.Hops("corr-3"); len(got) != 1 || got[0].Outcome != "VP007" || !got[0].Forwarded.IsZero() || got[0].NextHop != "" {
		t.Errorf("router fault: %+v", got)
	}
}

// BenchmarkRecordHop is the hot-path cost of a hop record once the store's
// rings have grown: no allocation.
func BenchmarkRecordHop(b *testing.B) {
	r := mtRouter(b, mtCatalog(b, "http://127.0.0.1:9"))
	r.hops = newHopStore(HopConfig{MaxRecords: 10_000, MaxAge: time.Hour}, "P", "n")
	c := call{start: time.Now(), corrID: "corr", traceID: "trace", sender: "S", status: 200, sent: time.Now(), prt: time.Millisecond}
	c.target.URL, c.target.Producer, c.nextURL = "https://p/x", "P", "https://p/x"
	for i := 0; i < 20_000; i++ {
		r.recordHop(&c, time.Now())
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.recordHop(&c, time.Now())
		}
	})
}

func validSpanID(s string) bool {
	return len(s) == 16 && isLowerHex([]byte(s)) && s != "0000000000000000"
}

// tpProducer is a loopback producer that keeps the last traceparent it got.
func tpProducer(t *testing.T) (url string, last func() string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var tp string
	s := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		mu.Lock()
		tp = string(ctx.Request.Header.Peek(hdrTraceparent))
		mu.Unlock()
		ctx.SetContentType("text/xml; charset=UTF-8")
		ctx.SetBodyString(`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><PingForConfigurationResponse/></soapenv:Body></soapenv:Envelope>`)
	}}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Shutdown() })
	return "http://" + ln.Addr().String(), func() string {
		mu.Lock()
		defer mu.Unlock()
		return tp
	}
}

// Each hop's span id is the parent-id of the traceparent it sends
// downstream (so the next platform's hop is its child), and its parent span
// id is the parent-id of the traceparent that came in; a call that came
// without one is a root. A call refused before it was sent on still has a
// span of its own.
func TestHopRecordSpanIDs(t *testing.T) {
	url, lastTP := tpProducer(t)
	r := mtRouter(t, mtCatalog(t, url))

	const trace, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	ctx := mtRequest(mtConsumer, mtEnvelope(mtContract, mtAddress))
	ctx.Request.Header.Set(hdrCorrelationID, "span-1")
	ctx.Request.Header.Set(hdrTraceparent, "00-"+trace+"-"+parent+"-01")
	if st := mtCall(r, ctx); st != 200 {
		t.Fatalf("status %d: %s", st, ctx.Response.Body())
	}
	got := r.Hops("span-1")
	if len(got) != 1 {
		t.Fatalf("%d records, want 1", len(got))
	}
	h := got[0]
	if h.TraceID != trace || h.ParentSpanID != parent || !validSpanID(h.SpanID) || h.SpanID == parent {
		t.Errorf("trace %s span %q parent %q; want trace %s, a new span, parent %s", h.TraceID, h.SpanID, h.ParentSpanID, trace, parent)
	}
	if tp, want := lastTP(), "00-"+trace+"-"+h.SpanID+"-01"; tp != want {
		t.Errorf("traceparent downstream = %q, want %q (the hop's span as parent-id)", tp, want)
	}

	// No traceparent: a new trace, and this hop is its root.
	ctx = mtRequest(mtConsumer, mtEnvelope(mtContract, mtAddress))
	ctx.Request.Header.Set(hdrCorrelationID, "span-2")
	mtCall(r, ctx)
	got = r.Hops("span-2")
	if len(got) != 1 || got[0].ParentSpanID != "" || !validSpanID(got[0].SpanID) || len(got[0].TraceID) != 32 || got[0].TraceID == trace {
		t.Fatalf("call without traceparent: %+v", got)
	}
	if tp, want := lastTP(), "00-"+got[0].TraceID+"-"+got[0].SpanID+"-01"; tp != want {
		t.Errorf("traceparent downstream = %q, want %q", tp, want)
	}
	if b, _ := json.Marshal(got[0]); !bytes.Contains(b, []byte(`"span_id":"`+got[0].SpanID+`"`)) || bytes.Contains(b, []byte("parent_span_id")) {
		t.Errorf("JSON of a root hop: %s", b)
	}

	// Refused (VP007): never sent on, still a span, still the caller's child.
	ctx = mtRequest(mtOther, mtEnvelope(mtContract, mtAddress))
	ctx.Request.Header.Set(hdrCorrelationID, "span-3")
	ctx.Request.Header.Set(hdrTraceparent, "00-"+trace+"-"+parent+"-00")
	mtCall(r, ctx)
	if got := r.Hops("span-3"); len(got) != 1 || got[0].Outcome != "VP007" || !validSpanID(got[0].SpanID) || got[0].ParentSpanID != parent {
		t.Errorf("refused call: %+v", got)
	}
}

func TestTraceOf(t *testing.T) {
	const trace, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	tests := []struct {
		name, tp   string
		keepTrace  bool
		wantParent string
	}{
		{"valid", "00-" + trace + "-" + parent + "-01", true, parent},
		{"not sampled", "00-" + trace + "-" + parent + "-00", true, parent},
		{"later version with more fields", "01-" + trace + "-" + parent + "-01-what-comes", true, parent},
		{"absent", "", false, ""},
		{"upper-case trace", "00-" + strings.ToUpper(trace) + "-" + parent + "-01", false, ""},
		{"zero trace", "00-00000000000000000000000000000000-" + parent + "-01", false, ""},
		{"short", "00-" + trace + "-" + parent[:15] + "-01", false, ""},
		{"zero parent", "00-" + trace + "-0000000000000000-01", true, ""},
		{"upper-case parent", "00-" + trace + "-" + strings.ToUpper(parent) + "-01", true, ""},
		{"parent not followed by a dash", "00-" + trace + "-" + parent + "x01", true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := getInbound()
			defer in.release()
			gotTrace, gotParent := traceOf([]byte(tc.tp), in)
			if (gotTrace == trace) != tc.keepTrace || len(gotTrace) != 32 || !isLowerHex([]byte(gotTrace)) {
				t.Errorf("trace = %q, keep %s: %v", gotTrace, trace, tc.keepTrace)
			}
			if p := spanHex(gotParent); p != tc.wantParent {
				t.Errorf("parent = %q, want %q", p, tc.wantParent)
			}
		})
	}
}

// A feed gets every stored record, never makes recording wait (a full queue
// drops and counts), and drains before reporting a cancelled context.
func TestHopFeed(t *testing.T) {
	r := mtRouter(t, mtCatalog(t, "http://127.0.0.1:9"))
	r.hops = newHopStore(HopConfig{MaxRecords: 100, MaxAge: time.Hour}, "P", "n1")
	f := r.FeedHops(3)
	c := call{start: time.Now(), traceID: "t", sender: "S", status: 200, spanID: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}, parentSpanID: [8]byte{9}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 5 {
			c.corrID = fmt.Sprint("c", i)
			r.recordHop(&c, time.Now())
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("recording waited for the feed's reader")
	}
	if got := f.Dropped(); got != 2 {
		t.Errorf("dropped %d, want 2 (5 records, room for 3)", got)
	}
	if got := r.hops.len(); got != 5 {
		t.Errorf("store holds %d, want all 5: the feed does not decide what is kept", got)
	}

	recs, err := f.Next(t.Context(), make([]HopRecord, 0, 2))
	if err != nil || len(recs) != 2 || recs[0].CorrelationID != "c0" || recs[1].CorrelationID != "c1" {
		t.Fatalf("Next = %+v, %v; want c0, c1 (up to cap)", recs, err)
	}
	if h := recs[0]; h.SpanID != "0102030405060708" || h.ParentSpanID != "0900000000000000" || h.Platform != "P" || h.Node != "n1" || h.Outcome != "ok" {
		t.Errorf("fed record: %+v", h)
	}
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	recs, err = f.Next(stopped, nil)
	if err != nil || len(recs) != 1 || recs[0].CorrelationID != "c2" {
		t.Errorf("Next with a cancelled context and a record queued = %+v, %v; want c2 first", recs, err)
	}
	if recs, err = f.Next(stopped, nil); err == nil || len(recs) != 0 {
		t.Errorf("Next on an empty queue with a cancelled context = %+v, %v; want the context's error", recs, err)
	}

	r.hops = nil
	if r.FeedHops(10) != nil {
		t.Error("FeedHops with hop records off should return nil")
	}
}

// BenchmarkRecordHopFed is BenchmarkRecordHop with a feed attached and a
// reader draining it, as the OTLP export does: a record is also copied into
// the feed's buffer (or dropped when the reader falls behind), and
// recording still allocates nothing.
func BenchmarkRecordHopFed(b *testing.B) {
	r := mtRouter(b, mtCatalog(b, "http://127.0.0.1:9"))
	r.hops = newHopStore(HopConfig{MaxRecords: 10_000, MaxAge: time.Hour}, "P", "n")
	f := r.FeedHops(4096)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		buf := make([]HopRecord, 0, 512)
		for {
			var err error
			if buf, err = f.Next(ctx, buf[:0]); err != nil {
				return
			}
		}
	}()
	c := call{start: time.Now(), corrID: "corr", traceID: "trace", sender: "S", status: 200, sent: time.Now(), prt: time.Millisecond, spanID: newSpanID()}
	c.target.URL, c.target.Producer, c.nextURL = "https://p/x", "P", "https://p/x"
	for i := 0; i < 20_000; i++ {
		r.recordHop(&c, time.Now())
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.recordHop(&c, time.Now())
		}
	})
}

// A store within hopReserveMax takes its memory when it is made: every
// chunk and the arenas' reserve, so that a new node's heap is what a busy
// one's is (see hopReserveMax), and recording allocates nothing from the
// first call on.
func TestHopStoreReserves(t *testing.T) {
	defer func(m int) { hopReserveMax = m }(hopReserveMax)
	hopReserveMax = 64 << 20                 // as in production builds (race builds reserve nothing)
	s := newHopStore(HopConfig{}, "P", "n1") // the default: 100,000 records
	var slots, blocks int
	for i := range s.shards {
		for _, c := range s.shards[i].chunks {
			if c == nil {
				t.Fatal("a chunk of the default store was not made with the store")
			}
			slots += len(c.slots)
			blocks += len(c.arena[0].blocks) + len(c.arena[1].blocks)
		}
	}
	if slots != defaultHopRecords {
		t.Errorf("%d slots, want %d", slots, defaultHopRecords)
	}
	if got, want := blocks*hopBlock, 2*defaultHopRecords*hopReservePerRecord; got < want || got > want+want/8 {
		t.Errorf("%d arena bytes reserved, want about %d", got, want)
	}
	now := time.Now()
	i := 0
	e := hopAt("t", "c", now)
	e.contract = "urn:riv:clinicalprocess:healthcond:description:GetCareDocumentationResponder:2"
	e.routeURL, e.next = "vaxel://NATIONAL", "https://127.0.0.1:28200/vp"
	if a := testing.AllocsPerRun(5000, func() { i++; s.add(e) }); a != 0 {
		t.Errorf("recording into a new store allocates %.2f times, want 0", a)
	}
	if s.len() < 5000 {
		t.Errorf("stored %d", s.len())
	}
}

// A stored record holds no pointer, so that the garbage collector marks a
// chunk of records without tracing into it: with a string per field, a full
// store was about a million pointers to trace at every collection.
func TestHopSlotHasNoPointers(t *testing.T) {
	var walk func(reflect.Type) string
	walk = func(ty reflect.Type) string {
		switch ty.Kind() {
		case reflect.Pointer, reflect.String, reflect.Slice, reflect.Map, reflect.Chan, reflect.Func, reflect.Interface, reflect.UnsafePointer:
			return ty.String()
		case reflect.Array:
			return walk(ty.Elem())
		case reflect.Struct:
			for i := range ty.NumField() {
				if p := walk(ty.Field(i).Type); p != "" {
					return ty.Field(i).Name + " " + p
				}
			}
		}
		return ""
	}
	if p := walk(reflect.TypeFor[hopSlot]()); p != "" {
		t.Errorf("hopSlot holds a pointer: %s", p)
	}
	if k := reflect.TypeFor[hopArena]().Field(0).Type.Elem().Elem().Kind(); k != reflect.Uint8 {
		t.Errorf("an arena block holds %s, want bytes", k)
	}
}

// An arena grows a block at a time and never moves a block: records of a
// lap that spans several blocks all read back, and the first block's bytes
// stay where they were (an arena that grew by copying itself stalled calls
// on the copy).
func TestHopArenaGrowsWithoutMoving(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := newHopStore(HopConfig{MaxRecords: 100, MaxAge: time.Hour}, "P", "n1")
	s.now = func() time.Time { return now }
	big := func(i int) *hopEntry {
		e := hopAt(fmt.Sprint("t", i), fmt.Sprint("c", i), now)
		e.la = strings.Repeat(string(rune('a'+i%26)), hopMaxString)
		return e
	}
	s.add(big(0))
	c := s.shards[0].chunks[0]
	first := &c.arena[c.lap].blocks[0][0]
	const n = 3 * hopBlock / hopMaxString // three blocks' worth
	for i := 1; i < n; i++ {
		s.add(big(i))
	}
	if got := len(c.arena[c.lap].blocks); got < 3 {
		t.Fatalf("%d blocks for %d records of %d bytes, want at least 3", got, n, hopMaxString)
	}
	if &c.arena[c.lap].blocks[0][0] != first {
		t.Error("the arena's first block moved as the arena grew")
	}
	for i := range n {
		if got := s.lookup(fmt.Sprint("c", i)); len(got) != 1 || got[0].LogicalAddress != big(i).la {
			t.Fatalf("record %d did not read back whole", i)
		}
	}
}

// Records read back whole, string for string, however many laps the ring
// has made over its chunks' two arenas, with expiry in between; a string
// over hopMaxString is stored cut.
func TestHopStoreLapsKeepStrings(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := newHopStore(HopConfig{MaxRecords: 10, MaxAge: time.Minute}, "P", "n1")
	s.now = func() time.Time { return now }
	entry := func(i int) *hopEntry {
		n := i % 7 * 13 // strings of varying lengths
		return &hopEntry{trace: fmt.Sprintf("trace-%d", i), corr: fmt.Sprintf("corr-%d-%s", i, strings.Repeat("c", n)),
			consumer: fmt.Sprint("consumer-", i), orig: strings.Repeat("o", n), contract: fmt.Sprint("urn:contract:", i),
			la: fmt.Sprint("la-", i), producer: fmt.Sprint("prod-", i), routeURL: fmt.Sprintf("https://p%d/x", i), next: fmt.Sprintf("https://n%d/y", i),
			status: int32(200 + i), recv: now.UnixNano() - 1000, fwd: now.UnixNano() - 900, down: now.UnixNano() - 100, ans: now.UnixNano(),
			span: [8]byte{byte(i), 1}, parent: [8]byte{byte(i), 2}}
	}
	check := func(i int) {
		t.Helper()
		want := entry(i)
		got := s.lookup(want.corr)
		if len(got) != 1 {
			t.Fatalf("record %d: %d found, want 1", i, len(got))
		}
		if w := s.record(want); got[0] != w {
			t.Fatalf("record %d read back\n got %+v\nwant %+v", i, got[0], w)
		}
	}
	next, kept := 0, 0 // kept: the oldest record not expired
	for lap := 0; lap < 5; lap++ {
		for range 10 {
			s.add(entry(next))
			next++
			for i := max(kept, next-10); i < next; i++ {
				check(i)
			}
		}
		if lap == 2 {
			// All expire; the ring goes on from where it was.
			now = now.Add(2 * time.Minute)
			if got := s.lookup(entry(next - 1).corr); len(got) != 0 {
				t.Fatalf("expired record returned: %v", got)
			}
			kept = next
			s.add(entry(next))
			next++
			if got := s.len(); got != 1 {
				t.Fatalf("after expiry: %d records, want 1", got)
			}
			check(next - 1)
		}
	}

	long := entry(next)
	long.la = strings.Repeat("L", hopMaxString+100)
	s.add(long)
	got := s.lookup(long.corr)
	if len(got) != 1 || got[0].LogicalAddress != long.la[:hopMaxString] || got[0].NextHop != long.next {
		t.Errorf("a long string: stored %d bytes (want %d), next hop %q", len(got[0].LogicalAddress), hopMaxString, got[0].NextHop)
	}
}

// BenchmarkGCFullHopStore is a garbage collection with a full default
// store (100,000 records) in the heap: what every collection of a busy
// node pays for its hop records.
func BenchmarkGCFullHopStore(b *testing.B) {
	s := newHopStore(HopConfig{}, "P", "n1")
	now := time.Now()
	for i := range defaultHopRecords {
		// The call's strings are heap strings of their own, as in a call.
		e := hopEntry{trace: fmt.Sprintf("%032x", i), corr: fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i), consumer: fmt.Sprint("SE000000000", i%50),
			contract: "urn:riv:clinicalprocess:healthcond:description:GetCareDocumentationResponder:2", la: fmt.Sprint("SE00000000", i%1000),
			producer: "SE0000000004-P", routeURL: "vaxel://NATIONAL", next: "https://127.0.0.1:28200/vp", status: 200, recv: now.UnixNano(), ans: now.UnixNano()}
		e.orig = e.consumer
		s.add(&e)
	}
	runtime.GC()
	b.ResetTimer()
	for b.Loop() {
		runtime.GC()
	}
	runtime.KeepAlive(s)
}
