package node

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vaxel/vaxel/catalog/command"
	"github.com/vaxel/vaxel/pki"
	"github.com/vaxel/vaxel/tak"
)

const fedLAGhost = "SE-LA-GHOST"

// integrationsFederation is the federation of TestTraceAcrossThreePlatforms
// (A → N → B → producer, each routing to the next by name), with two
// broken integrations: N routes fedLANoAuth to B but does not authorize A
// for it, and A routes fedLAGhost to a platform GHOST that has no node.
type integrationsFederation struct {
	p        *gossipPlatform
	a, n, b  *runningNode
	producer *fedProducer
}

func newIntegrationsFederation(t *testing.T) *integrationsFederation {
	p := newGossipPlatform(t) // one CA for all: SITHS in production
	issueConsumer(t, p)
	is, err := p.ca.Issue(pki.Request{CommonName: "stranger", SerialNumber: "SE-STRANGER"})
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.WriteFiles(p.dir, "stranger", is); err != nil {
		t.Fatal(err)
	}
	fedKey := writeFedKey(t, p, 42)
	producer := startFedProducer(t)

	a, n, b := threePlatforms(t, p, fedKey)

	applyOrder(t, a.Node, "A", fedOrder("A", "SE-N", "vaxel://N", "SE-CONSUMER", []string{fedLA, fedLANoAuth}, []string{fedLA, fedLANoAuth}))
	applyOrderOnly(t, a.Node, "A", fedOrder("A", "SE-GHOST", "vaxel://GHOST", "SE-CONSUMER", []string{fedLAGhost}, []string{fedLAGhost}))
	applyOrder(t, n.Node, "N", fedOrder("N", "SE-B", "vaxel://B", a.hsaID, []string{fedLA, fedLANoAuth}, []string{fedLA}))
	applyOrder(t, b.Node, "B", fedOrder("B", "SE-PRODUCER", producer.url, n.hsaID, []string{fedLA}, []string{fedLA}))
	for _, x := range []*runningNode{a, n, b} {
		waitFor(t, x.cfg.Node.Name+" ready", 20*time.Second, func() bool { ok, _ := x.Readiness(); return ok })
	}
	waitFor(t, "A sees N, N sees B", 20*time.Second, func() bool {
		_, an := a.router.Platforms().Nodes("N")
		_, nb := n.router.Platforms().Nodes("B")
		return an && nb
	})
	// A asks N and B for their edges; they admit A's node only once they
	// see it alive in the federation.
	for _, x := range []*runningNode{a, n, b} {
		waitFor(t, x.cfg.Node.Name+" knows every member's admin address and HSA-ID", 20*time.Second, func() bool {
			k := 0
			for _, m := range x.FederationMembers() {
				if m.Meta.AdminAddr != "" && m.Meta.HSAID != "" {
					k++
				}
			}
			return k == 3
		})
	}
	return &integrationsFederation{p: p, a: a, n: n, b: b, producer: producer}
}

// applyOrderOnly applies a further order on a platform whose RIV profile
// exists (applyOrder creates it).
func applyOrderOnly(t *testing.T, n *Node, platform string, order json.RawMessage) {
	t.Helper()
	res, err := n.store.Apply(t.Context(), command.TypeOrder, &command.Order{Meta: command.Meta{Actor: "test", Source: "admin", UnixNano: 1}, Platform: platform, Order: order})
	if err == nil && (res.Err != nil || len(res.Errors) > 0) {
		t.Fatalf("order: %v %v", res.Err, res.Errors)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func (f *integrationsFederation) query(t *testing.T, cert string, n *runningNode, q url.Values) (int, []byte) {
	t.Helper()
	return traceGet(t, f.p.dir, cert, n.AdminAddr(), integrationsPath+"?"+q.Encode())
}

func (f *integrationsFederation) chains(t *testing.T, q url.Values) IntegrationsAnswer {
	t.Helper()
	st, raw := f.query(t, "admin", f.a, q)
	if st != 200 {
		t.Fatalf("integrations %s at A: HTTP %d %s", q.Encode(), st, raw)
	}
	var ans IntegrationsAnswer
	if err := json.Unmarshal(raw, &ans); err != nil {
		t.Fatal(err)
	}
	return ans
}

func chainAt(ans IntegrationsAnswer, la string) *IntegrationChain {
	for i := range ans.Chains {
		if ans.Chains[i].LogicalAddress == la {
			return &ans.Chains[i]
		}
	}
	return nil
}

func hopPlatforms(ch *IntegrationChain) string {
	var ps []string
	for _, h := range ch.Hops {
		ps = append(ps, h.Platform)
	}
	return strings.Join(ps, "→")
}

// The integrations view across three platforms, asked at A: the consumer's
// integration A → N → B reaches the producer; a filter by the producer at
// B finds the same chain; the missing authorization at N is a dead end
// naming N; a route to a platform with no node in the federation is
// incomplete; another platform's node may read A's own edges (local=1),
// and nothing more, and other certificates may not.
func TestIntegrationsAcrossThreePlatforms(t *testing.T) {
	f := newIntegrationsFederation(t)

	ans := f.chains(t, url.Values{"consumer": {"SE-CONSUMER"}})
	if len(ans.Chains) != 3 || ans.Truncated {
		t.Fatalf("consumer SE-CONSUMER: %d chains (truncated %v), want 3: %+v", len(ans.Chains), ans.Truncated, ans)
	}
	if got := strings.Join(ans.Platforms, ","); got != "A,B,N" {
		t.Errorf("platforms read = %s, want A (this node's) then B, N", got)
	}

	ok := chainAt(ans, fedLA)
	if ok == nil || ok.Status != ChainOK || hopPlatforms(ok) != "A→N→B" {
		t.Fatalf("chain at %s = %+v, want ok through A→N→B", fedLA, ok)
	}
	wantConsumers := []string{"SE-CONSUMER", f.a.hsaID, f.n.hsaID}
	wantProducers := []string{"SE-N", "SE-B", "SE-PRODUCER"}
	for i, h := range ok.Hops {
		if h.Consumer != wantConsumers[i] || h.Producer != wantProducers[i] || h.Contract != fedContract || h.LogicalAddress != fedLA {
			t.Errorf("hop %d = %+v, want consumer %s producer %s", i, h, wantConsumers[i], wantProducers[i])
		}
	}
	// B keeps its producer's URL to itself: A's operator sees the producer
	// component, and that B has its address.
	if ok.Consumer != "SE-CONSUMER" || ok.Producer != "SE-PRODUCER" || ok.URL != "" || !ok.URLHidden || ok.Contract != fedContract {
		t.Errorf("chain ends = consumer %s producer %s url %q (hidden %t) contract %s, want SE-CONSUMER, SE-PRODUCER, hidden URL, %s", ok.Consumer, ok.Producer, ok.URL, ok.URLHidden, ok.Contract, fedContract)
	}

	dead := chainAt(ans, fedLANoAuth)
	if dead == nil || dead.Status != ChainDeadEnd || dead.EndsAt != "N" || hopPlatforms(dead) != "A" ||
		!strings.Contains(dead.Reason, "N does not authorize "+f.a.hsaID) || !strings.Contains(dead.Reason, "VP007") {
		t.Errorf("chain at %s = %+v, want a dead end at N: N does not authorize %s (VP007)", fedLANoAuth, dead, f.a.hsaID)
	}

	ghost := chainAt(ans, fedLAGhost)
	if ghost == nil || ghost.Status != ChainIncomplete || ghost.EndsAt != "GHOST" || !strings.Contains(ghost.Reason, "GHOST") {
		t.Errorf("chain at %s = %+v, want incomplete at GHOST", fedLAGhost, ghost)
	}
	if !strings.Contains(strings.Join(ans.Incomplete, "\n"), "GHOST") {
		t.Errorf("incomplete = %q, want GHOST named", ans.Incomplete)
	}

	// By the final producer, at B, asked at A: the chain is found walking
	// from A's consumer.
	byProducer := f.chains(t, url.Values{"producer": {"SE-PRODUCER"}})
	if len(byProducer.Chains) != 1 {
		t.Fatalf("producer SE-PRODUCER: %d chains, want 1: %+v", len(byProducer.Chains), byProducer)
	}
	if got := byProducer.Chains[0]; got.Consumer != "SE-CONSUMER" || got.Status != ChainOK || hopPlatforms(&got) != "A→N→B" || !got.URLHidden {
		t.Errorf("producer SE-PRODUCER: chain %+v, want SE-CONSUMER through A→N→B to B's producer", got)
	}
	// Contract and logical address narrow every platform's answer.
	if got := f.chains(t, url.Values{"contract": {fedContract}, "logical_address": {fedLA}}); len(got.Chains) != 1 || hopPlatforms(&got.Chains[0]) != "A→N→B" {
		t.Errorf("contract and logical address: %+v, want the one chain A→N→B", got)
	}

	// Without a filter and without all=1: refused; a misspelt filter too.
	for _, q := range []url.Values{{}, {"logicalAddress": {fedLA}}} {
		if st, raw := f.query(t, "admin", f.a, q); st != 400 {
			t.Errorf("integrations?%s: HTTP %d %s, want 400", q.Encode(), st, raw)
		}
	}

	// Another platform's node reads A's own edges, and only those.
	local := url.Values{"local": {"1"}, "all": {"1"}}
	st, raw := f.query(t, "n1", f.a, local)
	var own IntegrationsLocal
	if st != 200 || json.Unmarshal(raw, &own) != nil || own.Platform != "A" || len(own.Edges) != 3 {
		t.Errorf("N's node reading A's edges: HTTP %d %s; want A's 3 edges", st, raw)
	}
	// B's own operator sees the producer's URL; a peer platform's node
	// does not.
	st, raw = f.query(t, "admin", f.b, local)
	if own = (IntegrationsLocal{}); st != 200 || json.Unmarshal(raw, &own) != nil || len(own.Edges) != 1 || own.Edges[0].URL != f.producer.url {
		t.Errorf("B's admin reading B's edges: HTTP %d %s; want the producer's URL %s", st, raw, f.producer.url)
	}
	st, raw = f.query(t, "n1", f.b, local)
	if own = (IntegrationsLocal{}); st != 200 || json.Unmarshal(raw, &own) != nil || len(own.Edges) != 1 || own.Edges[0].URL != "" || !own.Edges[0].URLHidden {
		t.Errorf("N's node reading B's edges: HTTP %d %s; want the producer's URL hidden", st, raw)
	}
	if st, raw := f.query(t, "n1", f.a, url.Values{"all": {"1"}}); st != 403 {
		t.Errorf("N's node asking A for the federation's chains: HTTP %d %s; want 403", st, raw)
	}
	if st, raw := f.query(t, "stranger", f.a, local); st != 403 {
		t.Errorf("a certificate neither on admin.allow nor of a federation node reading A's edges: HTTP %d %s; want 403", st, raw)
	}
}

// localEdges evaluates addresses with the router's rules: a default route
// ("*"), an HSA-climb route, wildcard and exact authorizations, an expired
// authorization and the platform a call address names. (Two valid routes
// at one address, VP006, cannot be made through tak: it refuses overlaps.)
func TestIntegrationsLocalEdges(t *testing.T) {
	const ns = "urn:riv:test:GetThingsResponder:1"
	now := time.Now()
	from, to := tak.DateOf(now).AddYears(-1), tak.DateOf(now).AddYears(10)
	tx := tak.New().Begin()
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(tx.AddRoute(ns, "*", "SE-P1", "RIVTABP21", "https://p1.example/x", from, to))
	must(tx.AddRoute(ns, "SE-PARENT", "SE-NAT", "RIVTABP21", "vaxel://NAT", from, to))
	must(tx.AddAuthorization("SE-C1", ns, "SE-UNIT", "i1", from, to))
	must(tx.AddAuthorization("SE-C2", ns, "*", "i2", from, to))
	must(tx.AddAuthorization("SE-C3", ns, "SE-GONE", "i3", from, tak.DateOf(now).AddDays(-2)))
	tx.SetHSATree(tak.HSATreeFromEdges([]tak.HSAParent{{HSAID: "SE-CHILD", Parent: "SE-PARENT"}}))
	c := tx.Commit(tak.ChangeMeta{})
	o := &tak.RoutingOptions{Delimiter: "#"}

	key := func(e IntegrationEdge) string {
		return strings.Join([]string{e.Consumer, e.LogicalAddress, e.AuthorizedAt, e.RoutedAt, e.Producer, e.NextPlatform, e.Fault}, " ")
	}
	got := func(f IntegrationsFilter) []string {
		ans := localEdges(c, o, nil, f, now)
		if ans.Truncated {
			t.Errorf("%+v: truncated", f)
		}
		var out []string
		for _, e := range ans.Edges {
			out = append(out, key(e))
		}
		return out
	}
	check := func(name string, f IntegrationsFilter, want ...string) {
		t.Helper()
		if g := got(f); strings.Join(g, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s:\n got %q\nwant %q", name, g, want)
		}
	}
	// SE-C3's authorization has expired: no edge. SE-C2 may call every
	// address a route names (and "*"); SE-C1 only SE-UNIT, which the
	// default route takes.
	check("all", IntegrationsFilter{},
		"SE-C2 * * * SE-P1  ",
		"SE-C2 SE-GONE * * SE-P1  ",
		"SE-C2 SE-PARENT * SE-PARENT SE-NAT NAT ",
		"SE-C1 SE-UNIT SE-UNIT * SE-P1  ",
		"SE-C2 SE-UNIT * * SE-P1  ")
	// An address no entity names is evaluated when asked for: it climbs
	// to its parent's route.
	check("logical address", IntegrationsFilter{LogicalAddress: "SE-CHILD"}, "SE-C2 SE-CHILD * SE-PARENT SE-NAT NAT ")
	check("consumer", IntegrationsFilter{Consumer: "se-c1"}, "SE-C1 SE-UNIT SE-UNIT * SE-P1  ")
	check("producer", IntegrationsFilter{Producer: "SE-NAT"}, "SE-C2 SE-PARENT * SE-PARENT SE-NAT NAT ")
	check("other contract", IntegrationsFilter{Contract: "urn:riv:other:1"})

	if e := localEdges(c, o, nil, IntegrationsFilter{Producer: "SE-NAT"}, now).Edges; len(e) != 1 || e[0].Unroutable == "" {
		t.Errorf("an edge to a platform the router has no node of: %+v, want it marked unroutable", e)
	}
}

// A filter is bounded, known and given once.
func TestIntegrationsQueryValidation(t *testing.T) {
	for _, q := range []string{"consumer=a&consumer=b", "logicalAddress=x", "local=yes", "consumer=" + strings.Repeat("x", maxFilterLen+1), "consumer=a%0Ab"} {
		v, _ := url.ParseQuery(q)
		if _, _, _, err := parseIntegrationsQuery(v); err == nil {
			t.Errorf("%s: accepted", q)
		}
	}
	v, _ := url.ParseQuery("consumer=SE-C&producer=SE-P&contract=urn:x&logical_address=SE-LA&all=1&local=1")
	f, all, local, err := parseIntegrationsQuery(v)
	if err != nil || !all || !local || f != (IntegrationsFilter{Consumer: "SE-C", Producer: "SE-P", Contract: "urn:x", LogicalAddress: "SE-LA"}) {
		t.Errorf("parse = %+v %v %v %v", f, all, local, err)
	}
}

// A node computes at most maxLocalConcurrent local answers at once: one
// asked beyond that is refused at once with 503 and Retry-After (the
// asking walk then tries the platform's next node), and the bound frees
// again as answers finish.
func TestIntegrationsLocalBounded(t *testing.T) {
	a := &admin{localBusy: make(chan struct{}, maxLocalConcurrent)}
	for range maxLocalConcurrent {
		a.localBusy <- struct{}{} // answers in progress
	}
	ask := func() *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		a.integrations(w, httptest.NewRequest(http.MethodGet, integrationsPath+"?local=1&consumer=SE-C1", nil))
		return w
	}
	w := ask()
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("local answer while %d are computed: %d %q (Retry-After %q), want 503 with Retry-After", maxLocalConcurrent, w.Code, w.Body, w.Header().Get("Retry-After"))
	}
	if len(a.localBusy) != maxLocalConcurrent {
		t.Errorf("a refused request changed the count of answers in progress to %d", len(a.localBusy))
	}
	// Invalid queries are still answered 400 first, whatever the load.
	w = httptest.NewRecorder()
	a.integrations(w, httptest.NewRequest(http.MethodGet, integrationsPath+"?local=1&colour=red", nil))
	if w.Code != http.StatusBadRequest {
		t.Errorf("an invalid query under load: %d, want 400", w.Code)
	}
}
