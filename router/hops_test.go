package router

import (
	"fmt"
	"testing"
	"time"
)

func hopAt(trace, corr string, ans time.Time) *hopSlot {
	return &hopSlot{trace: trace, corr: corr, consumer: "C", recv: ans.Add(-time.Millisecond).UnixNano(), ans: ans.UnixNano(), status: 200}
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
	want := HopRecord{TraceID: "0af7651916cd43dd8448eb211c80319c", CorrelationID: "corr-1", Platform: mtInstance, Node: "node-1",
		Consumer: mtConsumer, OriginalConsumer: "SE-ORIG", Contract: mtContract, LogicalAddress: mtAddress,
		Producer: mtProducer, RouteURL: url + "/ok", NextHop: url + "/ok", Outcome: "ok", Status: 200}
	cmp := h
	cmp.Received, cmp.Forwarded, cmp.DownstreamAnswered, cmp.Answered = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if cmp != want {
		t.Errorf("record\n got %+v\nwant %+v", cmp, want)
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
