package router

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// Calls are spread round robin over a platform's near nodes, each order
// continuing with the other near nodes and then the far ones; names match
// case-insensitively; choosing allocates nothing.
func TestCandidatesOrder(t *testing.T) {
	r := &Router{}
	r.SetPlatforms(NewPlatforms(map[string]PlatformNodes{"National": {Addrs: []string{"n1:1", "n2:1", "far:1"}, Near: 2}}))
	order := func() string {
		h := r.candidates("NATIONAL")
		var out []string
		for i := 0; i < h.len(); i++ {
			out = append(out, strings.TrimSuffix(strings.TrimPrefix(h.at(i), "https://"), ":1/vp"))
		}
		return strings.Join(out, ",")
	}
	for _, want := range []string{"n1,n2,far", "n2,n1,far", "n1,n2,far"} {
		if got := order(); got != want {
			t.Fatalf("order = %s, want %s", got, want)
		}
	}
	if h := r.candidates("unknown"); h.len() != 0 {
		t.Errorf("unknown platform has %d candidates", h.len())
	}
	if n := testing.AllocsPerRun(100, func() { _ = r.candidates("national").at(1) }); n != 0 {
		t.Errorf("choosing a node allocates %v times", n)
	}
	if name, ok := PlatformOf("VAXEL://National/x"); !ok || name != "National" {
		t.Errorf("platformOf = %q, %t", name, ok)
	}
}

// A node that could not be connected to is tried after the others for
// DownHold, by every call, and the order still lists every node once;
// when every node is marked, all are still tried.
func TestCandidatesPassMarkedNodeBy(t *testing.T) {
	r := &Router{}
	r.SetPlatforms(NewPlatforms(map[string]PlatformNodes{"N": {Addrs: []string{"n1:1", "n2:1", "n3:1"}}}))
	order := func(h hopOrder) string {
		var out []string
		for i := 0; i < h.len(); i++ {
			out = append(out, strings.TrimSuffix(strings.TrimPrefix(h.at(i), "https://"), ":1/vp"))
		}
		return strings.Join(out, ",")
	}
	h := r.candidates("N")
	if got := order(h); got != "n1,n2,n3" {
		t.Fatalf("order = %s", got)
	}
	h.markDown(0) // n1 refused the connection
	for _, want := range []string{"n2,n3,n1", "n3,n2,n1", "n2,n3,n1"} {
		if got := order(r.candidates("N")); got != want {
			t.Fatalf("after n1 was marked down: order = %s, want %s", got, want)
		}
	}
	h = r.candidates("N")
	for i := 0; i < h.len(); i++ {
		if strings.Contains(h.at(i), "n2:") {
			h.markDown(i)
		}
	}
	for i := 0; i < 2; i++ {
		if got := order(r.candidates("N")); !strings.HasPrefix(got, "n3,") {
			t.Fatalf("n1 and n2 marked down: order = %s, want n3 first", got)
		}
	}
	r.candidates("N").markDown(0) // n3: now all are marked
	for i := 0; i < 3; i++ {
		got := strings.Split(order(r.candidates("N")), ",")
		if len(got) != 3 || got[0] == got[1] || got[1] == got[2] || got[0] == got[2] {
			t.Fatalf("all marked down: order %v, want each node once", got)
		}
	}
	// The node rebuilds the table every second: an equal table is not
	// swapped in, and a changed one keeps the marks of the nodes it still
	// has (n2 and n3 marked; n1 dropped by gossip; n4 new).
	before := r.Platforms()
	r.SetPlatforms(NewPlatforms(map[string]PlatformNodes{"N": {Addrs: []string{"n1:1", "n2:1", "n3:1"}}}))
	if r.Platforms() != before {
		t.Fatal("an equal table was swapped in")
	}
	r.SetPlatforms(NewPlatforms(map[string]PlatformNodes{"N": {Addrs: []string{"n2:1", "n3:1", "n4:1"}}}))
	if r.Platforms() == before {
		t.Fatal("a changed table was not swapped in")
	}
	for i := 0; i < 3; i++ {
		if got := order(r.candidates("N")); !strings.HasPrefix(got, "n4,") {
			t.Fatalf("after the table changed: order = %s, want n4 (never marked) first", got)
		}
	}
	// A call that took its order from the old table and fails after the
	// swap still marks the node for the calls that use the new table.
	held := r.candidates("N")
	r.SetPlatforms(NewPlatforms(map[string]PlatformNodes{"N": {Addrs: []string{"n2:1", "n3:1", "n4:1", "n5:1"}}}))
	for i := 0; i < held.len(); i++ {
		if strings.Contains(held.at(i), "n4:") {
			held.markDown(i)
		}
	}
	for i := 0; i < 4; i++ {
		if got := order(r.candidates("N")); !strings.HasPrefix(got, "n5,") {
			t.Fatalf("n2, n3, n4 marked (n4 through the old table): order = %s, want n5 first", got)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = r.candidates("N").at(2) }); n != 0 {
		t.Errorf("choosing a node allocates %v times", n)
	}
}

// When a node's hold ends, exactly one call tries it (it renews the hold
// for the others); if the node answers, its mark is cleared.
func TestCandidatesProbeAfterHold(t *testing.T) {
	r := &Router{}
	r.SetPlatforms(NewPlatforms(map[string]PlatformNodes{"N": {Addrs: []string{"n1:1", "n2:1"}}}))
	p := r.Platforms()
	n1 := p.down["n"][0]
	n1.Store(time.Now().Add(-time.Millisecond).UnixNano()) // a hold that just ended
	probes := 0
	var prober hopOrder
	for i := 0; i < 10; i++ {
		h := r.candidates("N")
		if h.mask&1 == 0 {
			probes++
			prober = h
		}
	}
	if probes != 1 {
		t.Fatalf("%d calls tried n1 after its hold ended, want exactly 1", probes)
	}
	if until := n1.Load(); until <= time.Now().UnixNano() {
		t.Fatal("the probing call did not renew the hold for the others")
	}
	for i := 0; i < prober.len(); i++ {
		if strings.Contains(prober.at(i), "n1:") {
			prober.markUp(i) // n1 answered
		}
	}
	if n1.Load() != 0 || r.candidates("N").mask != 0 {
		t.Fatal("n1 answered the probe but is still marked")
	}

	// The probing call tries the node first, near or far: tried after
	// the others, it would only be reached when they all failed, and a
	// node that came back would stay passed by. The order still lists
	// every node once.
	r.SetPlatforms(NewPlatforms(map[string]PlatformNodes{"F": {Addrs: []string{"n1:1", "n2:1", "far:1"}, Near: 2}}))
	for _, node := range []int{0, 1, 2} {
		r.Platforms().down["f"][node].Store(time.Now().Add(-time.Millisecond).UnixNano())
		var seen []string
		for i := 0; i < 4; i++ {
			h := r.candidates("F")
			if h.mask&(1<<node) != 0 {
				continue // passes the node by: not the probing call
			}
			for k := 0; k < h.len(); k++ {
				seen = append(seen, strings.TrimSuffix(strings.TrimPrefix(h.at(k), "https://"), ":1/vp"))
			}
		}
		want := []string{"n1", "n2", "far"}[node]
		if len(seen) != 3 || seen[0] != want || seen[1] == seen[2] || seen[1] == want || seen[2] == want {
			t.Errorf("the call probing %s after its hold tried %v; want it first, then each other node once", want, seen)
		}
		r.Platforms().down["f"][node].Store(0)
	}

	// Two holds ended: one call probes one node, and the next call the
	// other; the second is not renewed by a call that does not try it.
	past := time.Now().Add(-time.Millisecond).UnixNano()
	r.Platforms().down["f"][0].Store(past)
	r.Platforms().down["f"][2].Store(past)
	var probed []string
	for i := 0; i < 2; i++ {
		h := r.candidates("F")
		probed = append(probed, strings.TrimSuffix(strings.TrimPrefix(h.at(0), "https://"), ":1/vp"))
	}
	if slices.Sort(probed); strings.Join(probed, ",") != "far,n1" {
		t.Errorf("two nodes whose holds ended: the next two calls tried %v first; want each of n1 and far once", probed)
	}
}

// Platform names match case-insensitively, non-ASCII ones too.
func TestCandidatesNonASCIIName(t *testing.T) {
	r := &Router{}
	r.SetPlatforms(NewPlatforms(map[string]PlatformNodes{"Region-Skåne": {Addrs: []string{"s1:1"}}}))
	for _, name := range []string{"REGION-SKÅNE", "region-skåne", "Region-Skåne"} {
		if h := r.candidates(name); h.len() != 1 {
			t.Errorf("candidates(%q) = %d nodes, want 1", name, h.len())
		}
	}
}

// The client of a node the platform table no longer lists is dropped;
// clients of producers and of listed nodes are kept.
func TestSetPlatformsPrunesClients(t *testing.T) {
	r := &Router{}
	empty := map[clientKey]*fasthttp.HostClient{}
	r.clients.Store(&empty)
	r.SetPlatforms(NewPlatforms(map[string]PlatformNodes{"N": {Addrs: []string{"n1:1", "n2:1"}, HSAIDs: []string{"SE-N", "SE-N"}}}))
	for _, u := range []string{"https://n1:1/vp", "https://n2:1/vp"} {
		if _, _, err := r.platformClient(u, "SE-N", false); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := r.clientWith("https://producer:1/p", time.Second, ""); err != nil {
		t.Fatal(err)
	}
	r.SetPlatforms(NewPlatforms(map[string]PlatformNodes{"N": {Addrs: []string{"n2:1", "n3:1"}, HSAIDs: []string{"SE-N", "SE-N"}}}))
	var got []string
	for k := range *r.clients.Load() {
		got = append(got, k.hostport)
	}
	slices.Sort(got)
	if strings.Join(got, ",") != "n2:1,producer:1" {
		t.Errorf("clients after n1 left the table: %v, want n2's and the producer's", got)
	}
}
