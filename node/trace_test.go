package node

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vaxel/vaxel/federation"
	"github.com/vaxel/vaxel/node/config"
	"github.com/vaxel/vaxel/pki"
)

// traceGet queries an admin API with the named certificate of the test PKI.
func traceGet(t *testing.T, dir, certName, adminAddr, path string) (int, []byte) {
	t.Helper()
	st, b, err := traceQuery(dir, certName, adminAddr, path)
	if err != nil {
		t.Fatal(err)
	}
	return st, b
}

// traceQuery is traceGet for goroutines other than the test's, which may
// not end the test.
func traceQuery(dir, certName, adminAddr, path string) (int, []byte, error) {
	tc, err := pki.ClientTLSConfig(filepath.Join(dir, certName+".crt"), filepath.Join(dir, certName+".key"), []string{filepath.Join(dir, "ca.crt")})
	if err != nil {
		return 0, nil, err
	}
	cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc, DisableKeepAlives: true}}
	resp, err := cl.Get("https://" + adminAddr + path)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// A call crosses three platforms, A → N → B → producer, each routing to the
// next by name. One trace query on A's admin API returns the three hop
// records in chain order, with the same trace id and timings that nest.
func TestTraceAcrossThreePlatforms(t *testing.T) {
	p := newGossipPlatform(t) // one CA for all: SITHS in production
	issueConsumer(t, p)
	fedKey := writeFedKey(t, p, 42)
	producer := startFedProducer(t)

	a, n, b := threePlatforms(t, p, fedKey)

	applyOrder(t, a.Node, "A", fedOrder("A", "SE-N", "vaxel://N", "SE-CONSUMER", []string{fedLA}, []string{fedLA}))
	applyOrder(t, n.Node, "N", fedOrder("N", "SE-B", "vaxel://B", a.hsaID, []string{fedLA}, []string{fedLA}))
	applyOrder(t, b.Node, "B", fedOrder("B", "SE-PRODUCER", producer.url, n.hsaID, []string{fedLA}, []string{fedLA}))
	for _, x := range []*runningNode{a, n, b} {
		waitFor(t, x.cfg.Node.Name+" ready", 20*time.Second, func() bool { ok, _ := x.Readiness(); return ok })
	}
	waitFor(t, "A sees N, N sees B", 20*time.Second, func() bool {
		_, an := a.router.Platforms().Nodes("N")
		_, nb := n.router.Platforms().Nodes("B")
		return an && nb
	})
	waitFor(t, "A knows every member's admin address", 20*time.Second, func() bool {
		k := 0
		for _, m := range a.FederationMembers() {
			if m.Meta.AdminAddr != "" && m.Meta.RouterAddr != "" {
				k++
			}
		}
		return k == 3
	})

	aAddr, _ := a.RouterAddrs()
	code, body := fedCall(t, p.dir, aAddr, fedLA)
	if code != 200 {
		t.Fatalf("A→N→B→producer: HTTP %d %s", code, body)
	}
	end := time.Now()
	h := producer.last()
	if got := h.Get("x-rivta-original-serviceconsumer-hsaid"); got != "SE-CONSUMER" {
		t.Errorf("original consumer at the producer = %q, want SE-CONSUMER", got)
	}
	if got := h.Get("x-rivta-routing-history"); !strings.Contains(got, "A#N#B") {
		t.Errorf("routing history at the producer = %q, want A, N, B", got)
	}
	tp := h.Get("traceparent")
	if len(tp) < 55 {
		t.Fatalf("traceparent at the producer = %q", tp)
	}
	traceID, corrID := tp[3:35], h.Get("x-skltp-correlation-id")

	st, raw := traceGet(t, p.dir, "admin", a.AdminAddr(), "/api/v1/trace/"+traceID)
	if took := time.Since(end); took > 5*time.Second {
		t.Errorf("trace answered %s after the call's end, want within 5 s", took)
	}
	if st != 200 {
		t.Fatalf("trace: HTTP %d %s", st, raw)
	}
	var ans TraceAnswer
	if err := json.Unmarshal(raw, &ans); err != nil {
		t.Fatal(err)
	}
	if len(ans.Hops) != 3 || len(ans.Incomplete) > 0 {
		t.Fatalf("trace: %d hops (incomplete: %v), want 3:\n%s", len(ans.Hops), ans.Incomplete, raw)
	}
	want := []struct{ platform, node, consumer, nextPlatform string }{
		{"A", "a1", "SE-CONSUMER", "N"},
		{"N", "n1", a.hsaID, "B"},
		{"B", "b1", n.hsaID, ""},
	}
	for i, w := range want {
		hop := ans.Hops[i]
		if hop.Platform != w.platform || hop.Node != w.node || hop.Consumer != w.consumer || hop.NextPlatform != w.nextPlatform ||
			hop.OriginalConsumer != "SE-CONSUMER" || hop.TraceID != traceID || hop.CorrelationID != corrID ||
			hop.Outcome != "ok" || hop.Contract != fedContract || hop.LogicalAddress != fedLA {
			t.Errorf("hop %d = %+v, want platform %s node %s consumer %s next platform %q, trace %s, correlation %s", i, hop, w.platform, w.node, w.consumer, w.nextPlatform, traceID, corrID)
		}
		if !(!hop.Received.After(hop.Forwarded) && !hop.Forwarded.After(hop.DownstreamAnswered) && !hop.DownstreamAnswered.After(hop.Answered)) {
			t.Errorf("hop %d: timestamps out of order: received %v forwarded %v downstream %v answered %v", i, hop.Received, hop.Forwarded, hop.DownstreamAnswered, hop.Answered)
		}
		if i > 0 {
			up := ans.Hops[i-1]
			if hop.Received.Before(up.Forwarded) || hop.Answered.After(up.DownstreamAnswered) {
				t.Errorf("hop %d [%v, %v] is not within hop %d's downstream time [%v, %v]", i, hop.Received, hop.Answered, i-1, up.Forwarded, up.DownstreamAnswered)
			}
		}
	}
	if got := ans.Hops[2].NextHop; got != producer.url {
		t.Errorf("B's next hop = %q, want the producer %s", got, producer.url)
	}
	if nh, _ := n.RouterAddrs(); ans.Hops[0].NextHop != "https://"+nh+"/vp" {
		t.Errorf("A's next hop = %q, want N's node https://%s/vp", ans.Hops[0].NextHop, nh)
	}

	// By correlation id too.
	if st, raw := traceGet(t, p.dir, "admin", a.AdminAddr(), "/api/v1/trace/"+corrID); st != 200 || bytes.Count(raw, []byte(`"platform"`)) != 3 {
		t.Errorf("trace by correlation id: HTTP %d %s", st, raw)
	}
	// Another platform's node may read hop records, and nothing else.
	if st, raw := traceGet(t, p.dir, "n1", b.AdminAddr(), "/api/v1/trace/"+traceID+"?local=1"); st != 200 || bytes.Count(raw, []byte(`"platform"`)) != 1 {
		t.Errorf("N's node reading B's hop records: HTTP %d %s", st, raw)
	}
	if st, raw := traceGet(t, p.dir, "n1", b.AdminAddr(), "/api/v1/catalog"); st == 200 {
		t.Errorf("N's node reading B's catalog: HTTP %d %s; want refused", st, raw)
	}
	// ... and may not make B assemble a trace (a fan-out of B's own).
	if st, raw := traceGet(t, p.dir, "n1", b.AdminAddr(), "/api/v1/trace/"+traceID); st == 200 {
		t.Errorf("N's node asking B to assemble a trace: HTTP %d %s; want refused", st, raw)
	}

	// A member that advertises B's router under a name that sorts first,
	// with a certificate carrying B's HSA-ID (so its binding checks out)
	// but another node's admin address, must not answer for b1: its admin
	// address presents n1's certificate, and what it answers is not b1's.
	keys, err := config.ReadGossipKeys(fedKey)
	if err != nil {
		t.Fatal(err)
	}
	bRouter, _ := b.RouterAddrs()
	joinBareMember(t, p, a.Node, keys, federation.Meta{Platform: "B", Node: "0rogue", HSAID: b.hsaID, InstanceID: "B",
		RouterAddr: bRouter, AdminAddr: n.AdminAddr()}, "0rogue", b.hsaID, "")
	waitFor(t, "A verified the rogue member", 20*time.Second, func() bool {
		for _, m := range a.FederationMembers() {
			if m.Name == "B/0rogue" {
				return m.Binding == federation.BindingVerified
			}
		}
		return false
	})
	st, raw = traceGet(t, p.dir, "admin", a.AdminAddr(), "/api/v1/trace/"+traceID)
	ans = TraceAnswer{}
	if err := json.Unmarshal(raw, &ans); st != 200 || err != nil {
		t.Fatalf("trace with a rogue member: HTTP %d %s", st, raw)
	}
	if len(ans.Hops) != 3 || ans.Hops[2].Platform != "B" || ans.Hops[2].Node != "b1" {
		t.Errorf("trace with a rogue member advertising B's router: %d hops, want A, N and b1's record:\n%s", len(ans.Hops), raw)
	}
}
