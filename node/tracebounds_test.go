package node

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vaxel/vaxel/federation"
	"github.com/vaxel/vaxel/node/config"
	"github.com/vaxel/vaxel/pki"
	"github.com/vaxel/vaxel/router"
)

// hostilePeer is platform B's only node as A sees it in the federation: a
// bare federation member whose router answers calls and whose admin API
// answers trace queries as the test's mode says, with as many records, as
// deep a chain or as slow an answer as a faulty or hostile node might.
type hostilePeer struct {
	routerAddr, adminAddr string
	mode                  atomic.Value // string
	queries               atomic.Int64
	received              atomic.Int64 // makes each answered record distinct
	release               chan struct{}
	releaseOnce           sync.Once
	held                  atomic.Int64 // queries waiting in mode "slow"
}

// wideFanOut is how many onward records the first answer of mode "wide"
// holds: more than traceMaxQueries can follow, and more left unfollowed
// than traceMaxIncomplete notes can list.
const wideFanOut = traceMaxQueries + traceMaxIncomplete + 36

func (hp *hostilePeer) set(mode string) { hp.mode.Store(mode); hp.queries.Store(0) }

// records returns n of B/b1's records of trace, each pointing on to b1's
// own router when onward.
func (hp *hostilePeer) records(trace string, n int, onward bool) []router.HopRecord {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	out := make([]router.HopRecord, n)
	for i := range out {
		h := router.HopRecord{TraceID: trace, CorrelationID: "c", Platform: "B", Node: "b1", Outcome: "ok", Status: 200,
			Received: base.Add(time.Duration(hp.received.Add(1)) * time.Microsecond)}
		h.Answered = h.Received
		if onward {
			h.NextPlatform, h.NextHop, h.Forwarded = "B", "https://"+hp.routerAddr+"/vp", h.Received
		}
		out[i] = h
	}
	return out
}

func (hp *hostilePeer) admin(w http.ResponseWriter, r *http.Request) {
	q := hp.queries.Add(1)
	trace := strings.TrimPrefix(r.URL.Path, tracePath)
	var recs []router.HopRecord
	switch hp.mode.Load().(string) {
	case "huge":
		// Valid JSON, one byte over the bound.
		w.Header().Set("Content-Type", "application/json")
		pad := strings.Repeat("x", traceMaxAnswer)
		fmt.Fprintf(w, `{"id":%q,"hops":[],"pad":%q}`, trace, pad)
		return
	case "many":
		recs = hp.records(trace, traceMaxHops+500, false)
	case "deep":
		recs = hp.records(trace, 1, true)
	case "wide":
		// The first answer points on to wideFanOut nodes; each answers
		// one record that ends there.
		if q == 1 {
			recs = hp.records(trace, wideFanOut, true)
		} else {
			recs = hp.records(trace, 1, false)
		}
	case "slow":
		hp.held.Add(1)
		defer hp.held.Add(-1)
		select {
		case <-hp.release:
		case <-r.Context().Done():
			return
		}
		recs = hp.records(trace, 1, false)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(TraceAnswer{ID: trace, Hops: recs})
}

// startHostilePeer joins seed's federation as B/b1 (HSA-ID SE-B), with a
// router that answers every call and the admin API above, both over mutual
// TLS with b1's certificate.
func startHostilePeer(t *testing.T, p *gossipPlatform, seed *Node, fedKey string) *hostilePeer {
	t.Helper()
	hp := &hostilePeer{release: make(chan struct{})}
	hp.set("")
	t.Cleanup(func() { hp.releaseOnce.Do(func() { close(hp.release) }) })
	// b1's certificate, as askPeer requires of the admin address: CN b1,
	// HSA-ID SE-B. joinBareMember issues the member's own alike.
	crt, key, ca := issueCert(t, p, "b1", "SE-B")
	listen := func(h http.Handler) string {
		tc, err := pki.ServerTLSConfig(crt, key, []string{ca}, true)
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: h, TLSConfig: tc, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.ServeTLS(ln, "", "") }()
		t.Cleanup(func() { _ = srv.Close() })
		return ln.Addr().String()
	}
	hp.routerAddr = listen(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		_, _ = io.WriteString(w, `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><ok/></soapenv:Body></soapenv:Envelope>`)
	}))
	hp.adminAddr = listen(http.HandlerFunc(hp.admin))
	keys, err := config.ReadGossipKeys(fedKey)
	if err != nil {
		t.Fatal(err)
	}
	joinBareMember(t, p, seed, keys, federation.Meta{Platform: "B", Node: "b1", HSAID: "SE-B", InstanceID: "B",
		RouterAddr: hp.routerAddr, AdminAddr: hp.adminAddr}, "b1", "SE-B", "")
	return hp
}

// A trace assembly asks other platforms' nodes for their records, and a
// faulty or hostile node must not make it unbounded: an answer over
// traceMaxAnswer bytes is refused, records past traceMaxHops are left out,
// a chain is followed at most traceMaxDepth deep and to traceMaxQueries
// nodes, the notes of what was not followed stop at traceMaxIncomplete,
// a silent node holds the query no longer than traceTimeout, and no more
// than maxTraceConcurrent assemblies run at once. Each bound is said in
// the answer's incomplete notes, and A's own record always comes back.
func TestTraceAssemblyBoundsAgainstHostilePeer(t *testing.T) {
	p := newGossipPlatform(t)
	issueConsumer(t, p)
	fedKey := writeFedKey(t, p, 51)
	a := p.start(fedSingle(t, p, "a1", "A", fedKey, []string{"B"}))
	hp := startHostilePeer(t, p, a.Node, fedKey)

	applyOrder(t, a.Node, "A", fedOrder("A", "SE-B", "vaxel://B", "SE-CONSUMER", []string{fedLA}, []string{fedLA}))
	waitFor(t, "a1 ready", 20*time.Second, func() bool { ok, _ := a.Readiness(); return ok })
	waitFor(t, "A verified B/b1", 20*time.Second, func() bool {
		for _, m := range a.FederationMembers() {
			if m.Name == "B/b1" {
				return m.Binding == federation.BindingVerified && m.Meta.AdminAddr != ""
			}
		}
		return false
	})
	waitFor(t, "A routes to B", 20*time.Second, func() bool { _, ok := a.router.Platforms().Nodes("B"); return ok })
	aAddr, _ := a.RouterAddrs()
	const corr = "trace-bounds-1"
	if code, body := fedCall(t, p.dir, aAddr, fedLA, "x-skltp-correlation-id", corr); code != 200 {
		t.Fatalf("A→B: HTTP %d %s", code, body)
	}

	trace := func(t *testing.T) TraceAnswer {
		t.Helper()
		st, raw := traceGet(t, p.dir, "admin", a.AdminAddr(), "/api/v1/trace/"+corr)
		var ans TraceAnswer
		if err := json.Unmarshal(raw, &ans); st != 200 || err != nil {
			t.Fatalf("trace: HTTP %d %s", st, raw)
		}
		if len(ans.Hops) == 0 || ans.Hops[0].Platform != "A" || ans.Hops[0].NextPlatform != "B" {
			t.Fatalf("trace does not start with A's record of the call to B: %+v", ans.Hops)
		}
		return ans
	}
	noted := func(t *testing.T, ans TraceAnswer, want string) {
		t.Helper()
		for _, s := range ans.Incomplete {
			if strings.Contains(s, want) {
				return
			}
		}
		t.Errorf("incomplete notes %q do not say %q", ans.Incomplete, want)
	}

	t.Run("answer over the size bound", func(t *testing.T) {
		hp.set("huge")
		ans := trace(t)
		if len(ans.Hops) != 1 {
			t.Errorf("%d records, want A's alone", len(ans.Hops))
		}
		noted(t, ans, fmt.Sprintf("answer over %d bytes", traceMaxAnswer))
	})
	t.Run("more records than the store bound", func(t *testing.T) {
		hp.set("many")
		ans := trace(t)
		if len(ans.Hops) != traceMaxHops {
			t.Errorf("%d records, want %d", len(ans.Hops), traceMaxHops)
		}
		noted(t, ans, fmt.Sprintf("more than %d hop records", traceMaxHops))
	})
	t.Run("chain deeper than the depth bound", func(t *testing.T) {
		hp.set("deep")
		ans := trace(t)
		if len(ans.Hops) != traceMaxDepth || hp.queries.Load() != traceMaxDepth-1 {
			t.Errorf("%d records from %d queries, want %d from %d", len(ans.Hops), hp.queries.Load(), traceMaxDepth, traceMaxDepth-1)
		}
		noted(t, ans, fmt.Sprintf("chain longer than %d hops", traceMaxDepth))
	})
	t.Run("fan-out past the query bound", func(t *testing.T) {
		hp.set("wide")
		ans := trace(t)
		if q := hp.queries.Load(); q != traceMaxQueries {
			t.Errorf("B/b1 was asked %d times, want %d", q, traceMaxQueries)
		}
		if want := 1 + wideFanOut + traceMaxQueries - 1; len(ans.Hops) != want {
			t.Errorf("%d records, want %d", len(ans.Hops), want)
		}
		if len(ans.Incomplete) != traceMaxIncomplete+1 || !strings.Contains(ans.Incomplete[traceMaxIncomplete], "the list stops here") {
			t.Errorf("%d incomplete notes %q; want %d, the last saying the list stops", len(ans.Incomplete), ans.Incomplete, traceMaxIncomplete+1)
		}
		noted(t, ans, fmt.Sprintf("%d nodes asked already", traceMaxQueries))
	})
	t.Run("silent peer and concurrent assemblies", func(t *testing.T) {
		hp.set("slow")
		type result struct {
			ans  TraceAnswer
			took time.Duration
		}
		results := make(chan result, maxTraceConcurrent)
		for range maxTraceConcurrent {
			go func() {
				start := time.Now()
				st, raw, err := traceQuery(p.dir, "admin", a.AdminAddr(), "/api/v1/trace/"+corr)
				var ans TraceAnswer
				if err == nil {
					err = json.Unmarshal(raw, &ans)
				}
				if st != 200 || err != nil {
					t.Errorf("held trace: HTTP %d %s (%v)", st, raw, err)
				}
				results <- result{ans, time.Since(start)}
			}()
		}
		waitFor(t, "the assemblies held by B/b1", 5*time.Second, func() bool { return hp.held.Load() == maxTraceConcurrent })
		if st, raw := traceGet(t, p.dir, "admin", a.AdminAddr(), "/api/v1/trace/"+corr); st != http.StatusServiceUnavailable {
			t.Errorf("trace beyond %d at once: HTTP %d %s, want 503", maxTraceConcurrent, st, raw)
		}
		for range maxTraceConcurrent {
			r := <-results
			if r.took < traceTimeout-time.Second || r.took > traceTimeout+3*time.Second {
				t.Errorf("a trace held by a silent peer answered after %s, want about %s", r.took, traceTimeout)
			}
			if len(r.ans.Hops) != 1 || len(r.ans.Incomplete) != 1 {
				t.Errorf("held trace: %d records, notes %q; want A's record and one note", len(r.ans.Hops), r.ans.Incomplete)
			}
		}
		// The tokens are back: a query answers again.
		hp.releaseOnce.Do(func() { close(hp.release) })
		if ans := trace(t); len(ans.Hops) != 2 || len(ans.Incomplete) != 0 {
			t.Errorf("after the silent peer: %d records, notes %q; want A's and B's", len(ans.Hops), ans.Incomplete)
		}
	})
}
