// Command scenario drives the federation container test of
// scripts/federation-test.sh against the three platforms of
// test/federation/docker-compose.yml (REGION-A a1..a3, NATIONAL n1..n3,
// REGION-B b1, and producer-b behind B):
//
//  1. applies each platform's catalog as an order through its admin API:
//     A routes the test contract to vaxel://NATIONAL, NATIONAL to
//     vaxel://REGION-B, B to producer-b; each platform authorizes the
//     previous one's HSA-ID (A the consumer);
//  2. checks the chain: a call into A reaches the producer with the
//     original consumer preserved and each platform's consumer being the
//     previous platform; a logical address NATIONAL does not authorize
//     answers VP007 naming NATIONAL; one trace query at A returns the three
//     hop records in order, with the same trace id and timings that nest;
//  3. runs -rate calls/s into A (round robin over a1..a3) and kills
//     (SIGKILL) the NATIONAL node the traced call went through; measures
//     the calls that failed and when, how long until no call is slowed or
//     failed by the dead node (traffic routed around) and until every A node
//     stops listing it; starts it again and measures its return;
//  4. cuts region B off the network (docker network disconnect) while calls
//     go on, checks that NATIONAL sees B gone, reconnects it (same address)
//     and measures when membership and calls recover, without restarting
//     anything;
//  5. traces a call made after the heal.
//
// It prints the figures and exits non-zero when an acceptance criterion
// fails: a wrong chain, trace or fault; a call sent after the kill failing
// (only calls in flight at the kill may fail); traffic not routed around
// within -max-reroute; membership or calls not back within -max-heal of
// the reconnection.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vaxel/vaxel/pki"
	"github.com/vaxel/vaxel/test/ctkit"
)

const (
	consumer = "SE-FT-CONSUMER"
	producer = "SE-FT-PRODUCER"
	la       = "SE-FT-LA"
	laNoAuth = "SE-FT-LA-NOAUTH" // routed by A and NATIONAL, authorized only by A
	contract = ctkit.PingContract
	// producerURL is region B's producer service of the compose file.
	producerURL = "http://producer-b:8080/ping"
)

func request(address string) string { return ctkit.PingRequest(address) }

var (
	pkiDir      = flag.String("pki", "", "directory with ca.crt, admin.{crt,key} and consumer.{crt,key}")
	routersFlag = flag.String("routers", "", "a1=PORT,a2=PORT,a3=PORT: region A's routers, published on 127.0.0.1")
	adminsFlag  = flag.String("admins", "", "node=PORT,...: every node's admin API, published on 127.0.0.1")
	composeFile = flag.String("compose-file", "", "docker-compose file")
	project     = flag.String("project", "", "docker-compose project name")
	netPrefix   = flag.String("net", "", "the network's first three octets (VAXEL_FT_NET)")
	rate        = flag.Int("rate", 200, "calls per second during the kill")
	beforeKill  = flag.Duration("before-kill", 5*time.Second, "load before the national node is killed")
	afterKill   = flag.Duration("after-kill", 10*time.Second, "load after the kill")
	maxReroute  = flag.Duration("max-reroute", 5*time.Second, "acceptance: traffic routed around the killed node within this time")
	cutFor      = flag.Duration("partition", 8*time.Second, "how long region B stays cut off")
	maxHeal     = flag.Duration("max-heal", 10*time.Second, "acceptance: membership and calls back within this time of the reconnection")
)

// platform is one platform of the federation and its catalog.
type platform struct {
	name, hsaID string
	nodes       []*node
	// route is where the test contract goes, component its HSA-ID, caller
	// the consumer the platform authorizes; noAuth: laNoAuth is routed too.
	route, component, caller string
	noAuth                   bool
}

type node struct {
	name, ip      string
	admin, router string // 127.0.0.1:port; router only for region A
	container     string
}

var (
	compose  ctkit.Compose
	adm      *ctkit.Admin
	callHTTP *http.Client
	pA, pN   *platform
	pB       *platform
	plats    []*platform
	byName   = map[string]*node{}
	routers  []*node // region A's nodes, which the consumer calls
	logf     = ctkit.Logf
	fail     = ctkit.Fail
)

func main() {
	flag.Parse()
	if err := setup(); err != nil {
		fmt.Fprintln(os.Stderr, "scenario:", err)
		os.Exit(2)
	}
	if err := run(); err != nil {
		fail("%v", err)
	}
	if failures := ctkit.Failures(); len(failures) > 0 {
		fmt.Printf("\nFEDERATION SCENARIO FAILED (%d):\n", len(failures))
		for _, f := range failures {
			fmt.Println("  -", f)
		}
		os.Exit(1)
	}
	fmt.Println("\nfederation scenario passed")
}

func setup() error {
	if *pkiDir == "" || *routersFlag == "" || *adminsFlag == "" || *composeFile == "" || *project == "" || *netPrefix == "" {
		return errors.New("-pki, -routers, -admins, -compose-file, -project and -net are required")
	}
	compose = ctkit.Compose{Project: *project, File: *composeFile}
	pA = &platform{name: "REGION-A", hsaID: "SE-REGION-A", route: "vaxel://NATIONAL", component: "SE-NATIONAL", caller: consumer, noAuth: true}
	pN = &platform{name: "NATIONAL", hsaID: "SE-NATIONAL", route: "vaxel://REGION-B", component: "SE-REGION-B", caller: "SE-REGION-A"}
	pB = &platform{name: "REGION-B", hsaID: "SE-REGION-B", route: producerURL, component: producer, caller: "SE-NATIONAL"}
	pN.noAuth = true // routed, not authorized: the VP007 case
	plats = []*platform{pA, pN, pB}
	ips := map[string]string{"a1": ".11", "a2": ".12", "a3": ".13", "n1": ".21", "n2": ".22", "n3": ".23", "b1": ".31"}
	for _, spec := range strings.Split(*adminsFlag, ",") {
		name, port, ok := strings.Cut(spec, "=")
		if !ok || ips[name] == "" {
			return fmt.Errorf("-admins %q: want node=PORT for a1..a3, n1..n3, b1", spec)
		}
		n := &node{name: name, ip: *netPrefix + ips[name], admin: "127.0.0.1:" + port}
		byName[name] = n
		switch name[0] {
		case 'a':
			pA.nodes = append(pA.nodes, n)
		case 'n':
			pN.nodes = append(pN.nodes, n)
		case 'b':
			pB.nodes = append(pB.nodes, n)
		}
	}
	for _, spec := range strings.Split(*routersFlag, ",") {
		name, port, ok := strings.Cut(spec, "=")
		n := byName[name]
		if !ok || n == nil || name[0] != 'a' {
			return fmt.Errorf("-routers %q: want a1=PORT,a2=PORT,a3=PORT", spec)
		}
		n.router = "127.0.0.1:" + port
		routers = append(routers, n)
	}
	for _, p := range plats {
		sort.Slice(p.nodes, func(i, j int) bool { return p.nodes[i].name < p.nodes[j].name })
	}
	if len(pA.nodes) != 3 || len(pN.nodes) != 3 || len(pB.nodes) != 1 || len(routers) != 3 {
		return errors.New("want admin ports of a1..a3, n1..n3, b1 and router ports of a1..a3")
	}
	ca := filepath.Join(*pkiDir, "ca.crt")
	ctc, err := pki.ClientTLSConfig(filepath.Join(*pkiDir, "consumer.crt"), filepath.Join(*pkiDir, "consumer.key"), []string{ca})
	if err != nil {
		return err
	}
	// A consumer's client: keep-alive connections to A's routers, as a real
	// consumer system holds them; a call not answered within 5 s counts as
	// failed (well above the chain's normal latency, well below the
	// producer timeout).
	callHTTP = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: ctc, MaxIdleConnsPerHost: 256, IdleConnTimeout: 30 * time.Second, TLSHandshakeTimeout: 2 * time.Second,
	}}
	atc, err := pki.ClientTLSConfig(filepath.Join(*pkiDir, "admin.crt"), filepath.Join(*pkiDir, "admin.key"), []string{ca})
	if err != nil {
		return err
	}
	adm = ctkit.NewAdmin(atc)
	return nil
}

// ---- catalogs ----

func order(p *platform) []byte {
	now := time.Now().Add(-time.Minute).Format("2006-01-02T15:04:05-0700")
	las := []string{la}
	if p.noAuth {
		las = append(las, laNoAuth)
	}
	var addrs, routes []any
	for _, a := range las {
		addrs = append(addrs, map[string]any{"hsaId": a, "beskrivning": "federation test unit"})
		routes = append(routes, map[string]any{"adress": p.route, "logiskAdress": a, "tjanstekontrakt": contract, "rivtaprofil": "RIVTABP21", "tjanstekomponent": p.component})
	}
	auths := []any{map[string]any{"logiskAdress": la, "tjanstekontrakt": contract, "tjanstekonsument": p.caller}}
	if p == pA {
		auths = append(auths, map[string]any{"logiskAdress": laNoAuth, "tjanstekontrakt": contract, "tjanstekonsument": p.caller})
	}
	b, _ := json.Marshal(map[string]any{
		"plattform": p.name, "formatVersion": 1.0, "version": 1,
		"bestallningsTidpunkt": now, "genomforandeTidpunkt": now,
		"utforare": "federation scenario", "kommentar": "federation test catalog",
		"inkludera": map[string]any{
			"tjanstekontrakt":    []any{map[string]any{"namnrymd": contract, "beskrivning": "PingForConfiguration", "majorVersion": 1}},
			"logiskadresser":     addrs,
			"tjanstekomponenter": []any{map[string]any{"hsaId": p.component, "beskrivning": "next hop"}, map[string]any{"hsaId": p.caller, "beskrivning": "caller"}},
			"anropsbehorigheter": auths,
			"vagval":             routes,
		},
	})
	return b
}

// applyCatalog applies p's catalog through any of its nodes (a follower
// forwards to the leader), retrying while the platform elects its leader.
func applyCatalog(p *platform) error {
	var last string
	steps := []struct{ path, body string }{
		{"/api/v1/catalog/rivprofile", `{"name":"RIVTABP21"}`},
		{"/api/v1/orders", string(order(p))},
	}
	for _, st := range steps {
		_, err := ctkit.WaitFor(p.name+" accepts "+st.path, 60*time.Second, 250*time.Millisecond, func() bool {
			for _, n := range p.nodes {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				code, b, err := adm.Do(ctx, n.admin, "POST", st.path, []byte(st.body))
				cancel()
				if err == nil && code == 200 {
					return true
				}
				last = fmt.Sprintf("%s: HTTP %d %v %s", n.name, code, err, ctkit.OneLine(string(b)))
			}
			return false
		})
		if err != nil {
			return fmt.Errorf("%w (last answer %s)", err, last)
		}
	}
	return nil
}

// fedView is the part of GET /api/v1/federation the scenario reads.
type fedView struct {
	Self    string `json:"self"`
	Members []struct {
		Name        string `json:"name"`
		State       string `json:"state"`
		Certificate string `json:"certificate"`
		Router      string `json:"router"`
	} `json:"members"`
	Platforms []struct {
		Name  string   `json:"name"`
		Nodes []string `json:"nodes"`
	} `json:"platforms"`
}

// routesTo returns the router addresses n would call for platform.
func routesTo(n *node, platform string) ([]string, error) {
	var v fedView
	if err := adm.GetJSON(n.admin, "/api/v1/federation", &v); err != nil {
		return nil, err
	}
	for _, p := range v.Platforms {
		if p.Name == platform {
			return p.Nodes, nil
		}
	}
	return nil, nil
}

// memberState returns member's state ("alive", "failed", …) as n sees it.
func memberState(n *node, member string) string {
	var v fedView
	if err := adm.GetJSON(n.admin, "/api/v1/federation", &v); err != nil {
		return "unknown (" + err.Error() + ")"
	}
	for _, m := range v.Members {
		if m.Name == member {
			return m.State
		}
	}
	return "absent"
}

// ---- calls ----

var vpRe = regexp.MustCompile(`VP\d{3}[^<]*`)

// result is one call's outcome.
type result struct {
	via        string
	sent, done time.Time
	ok         bool
	fault      string // "VP009 [NATIONAL] …", "HTTP 502", or the transport error
	corr       string
}

func (r result) String() string {
	if r.ok {
		return "ok"
	}
	return r.fault
}

// call sends one call for address into A's router n.
func call(n *node, address string) result {
	r := result{via: n.name, sent: time.Now()}
	resp, err := callHTTP.Post("https://"+n.router+"/vp", "text/xml;charset=UTF-8", strings.NewReader(request(address)))
	if err != nil {
		r.fault = "transport: " + err.Error()
		r.done = time.Now()
		return r
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	r.done = time.Now()
	r.corr = resp.Header.Get("x-skltp-correlation-id")
	switch {
	case err != nil:
		r.fault = "transport: " + err.Error()
	case resp.StatusCode == 200 && bytes.Contains(b, []byte("PingForConfigurationResponse")):
		r.ok = true
	default:
		if m := vpRe.Find(b); m != nil {
			r.fault = string(m)
		} else {
			r.fault = fmt.Sprintf("HTTP %d %s", resp.StatusCode, ctkit.OneLine(string(b)))
		}
	}
	return r
}

// ---- tracing ----

type hop struct {
	TraceID            string    `json:"trace_id"`
	CorrelationID      string    `json:"correlation_id"`
	Platform           string    `json:"platform"`
	Node               string    `json:"node"`
	Consumer           string    `json:"consumer"`
	OriginalConsumer   string    `json:"original_consumer"`
	NextPlatform       string    `json:"next_platform"`
	NextHop            string    `json:"next_hop"`
	Outcome            string    `json:"outcome"`
	Received           time.Time `json:"received"`
	Forwarded          time.Time `json:"forwarded"`
	DownstreamAnswered time.Time `json:"downstream_answered"`
	Answered           time.Time `json:"answered"`
}

type traceAnswer struct {
	Hops       []hop    `json:"hops"`
	Incomplete []string `json:"incomplete"`
}

// checkTrace queries the trace of a call made through A's node via and
// checks the chain; it returns the hops (nil when the query failed).
func checkTrace(what string, via *node, corr string, callEnd time.Time) []hop {
	var tr traceAnswer
	var err error
	// The hop records are written as each node answers: the trace is
	// complete at once, but a query is retried for up to 5 s of the call's
	// end, the acceptance bound.
	for {
		tr = traceAnswer{}
		err = adm.GetJSON(via.admin, "/api/v1/trace/"+corr, &tr)
		if err == nil && len(tr.Hops) == 3 || time.Since(callEnd) > 5*time.Second {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	took := time.Since(callEnd)
	if err != nil {
		fail("%s: trace %s: %v", what, corr, err)
		return nil
	}
	var chain []string
	for _, h := range tr.Hops {
		chain = append(chain, h.Platform+"/"+h.Node)
	}
	logf("%s: trace %s at %s answered %dms after the call ended: %s (incomplete: %v)", what, corr, via.name, took.Milliseconds(), strings.Join(chain, " → "), tr.Incomplete)
	if len(tr.Hops) != 3 {
		fail("%s: trace has %d hop records, want 3: %s", what, len(tr.Hops), strings.Join(chain, " → "))
		return nil
	}
	want := []struct{ platform, consumer string }{{pA.name, consumer}, {pN.name, pA.hsaID}, {pB.name, pN.hsaID}}
	for i, h := range tr.Hops {
		if h.Platform != want[i].platform || h.Consumer != want[i].consumer || h.OriginalConsumer != consumer || h.Outcome != "ok" {
			fail("%s: hop %d: platform %s consumer %s original %s outcome %s; want %s, %s, %s, ok", what, i, h.Platform, h.Consumer, h.OriginalConsumer, h.Outcome, want[i].platform, want[i].consumer, consumer)
		}
		if h.TraceID == "" || h.TraceID != tr.Hops[0].TraceID {
			fail("%s: hop %d trace id %q, hop 0 %q: want one trace id", what, i, h.TraceID, tr.Hops[0].TraceID)
		}
		// Each hop's timestamps in order, and the next hop nested inside
		// this one's forwarded … downstream answered (one host clock).
		if h.Forwarded.Before(h.Received) || h.DownstreamAnswered.Before(h.Forwarded) || h.Answered.Before(h.DownstreamAnswered) {
			fail("%s: hop %d timestamps out of order: %+v", what, i, h)
		}
		if i+1 < len(tr.Hops) {
			d := tr.Hops[i+1]
			if d.Received.Before(h.Forwarded) || h.DownstreamAnswered.Before(d.Answered) {
				fail("%s: hop %d (%s … %s) does not nest inside hop %d's forwarded … downstream answered (%s … %s)",
					what, i+1, d.Received.Format(time.StampMicro), d.Answered.Format(time.StampMicro), i, h.Forwarded.Format(time.StampMicro), h.DownstreamAnswered.Format(time.StampMicro))
			}
			if h.NextPlatform != d.Platform {
				fail("%s: hop %d names next platform %s, the next record is %s's", what, i, h.NextPlatform, d.Platform)
			}
		}
	}
	for i, h := range tr.Hops {
		own := h.Answered.Sub(h.Received) - h.DownstreamAnswered.Sub(h.Forwarded)
		logf("  hop %d %-8s %-3s consumer %-14s total %6.2fms, own %5.2fms", i, h.Platform, h.Node, h.Consumer,
			float64(h.Answered.Sub(h.Received).Microseconds())/1000, float64(own.Microseconds())/1000)
	}
	return tr.Hops
}

// ---- the scenario ----

func run() error {
	for _, n := range byName {
		id, err := compose.ContainerID(n.name)
		if err != nil {
			return err
		}
		n.container = id
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range byName {
			if !yield(k) {
				return
			}
		}
	})
	if _, err := ctkit.WaitFor("every admin API answers /health", 60*time.Second, 200*time.Millisecond, func() bool {
		for _, name := range names {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			code, _, err := adm.Do(ctx, byName[name].admin, "GET", "/health", nil)
			cancel()
			if err != nil || code != 200 {
				return false
			}
		}
		return true
	}); err != nil {
		return err
	}
	logf("all 7 admin APIs answer")

	// ---- 1. catalogs ----
	for _, p := range plats {
		if err := applyCatalog(p); err != nil {
			return err
		}
		logf("%s: catalog applied (route to %s, authorizes %s)", p.name, p.route, p.caller)
	}
	if _, err := ctkit.WaitFor("every node ready", 30*time.Second, 100*time.Millisecond, func() bool {
		for _, n := range byName {
			if !adm.Ready(n.admin) {
				return false
			}
		}
		return true
	}); err != nil {
		return err
	}
	took, err := ctkit.WaitFor("A's nodes route to 3 NATIONAL nodes and NATIONAL's to REGION-B", 30*time.Second, 100*time.Millisecond, func() bool {
		for _, hopSpec := range []struct {
			from *platform
			to   *platform
		}{{pA, pN}, {pN, pB}} {
			for _, n := range hopSpec.from.nodes {
				if got, err := routesTo(n, hopSpec.to.name); err != nil || len(got) != len(hopSpec.to.nodes) {
					return false
				}
			}
		}
		return true
	})
	if err != nil {
		// What each node saw, to tell a pool that never joined from a
		// member not routable.
		for _, name := range names {
			var v fedView
			if gerr := adm.GetJSON(byName[name].admin, "/api/v1/federation", &v); gerr != nil {
				logf("  %s: %v", name, gerr)
				continue
			}
			var ms, ps []string
			for _, m := range v.Members {
				ms = append(ms, m.Name+"="+m.State+"/"+m.Certificate+"/router:"+m.Router)
			}
			for _, pl := range v.Platforms {
				ps = append(ps, fmt.Sprintf("%s:%d", pl.Name, len(pl.Nodes)))
			}
			logf("  %s: members %v; routes %v", name, ms, ps)
		}
		return err
	}
	logf("federation formed: every node ready and routing to the next platform's nodes (%dms after the catalogs)", took.Milliseconds())
	// Every node has checked every other member's advertised HSA-ID
	// against the certificate on its gossip address.
	took, err = ctkit.WaitFor("every node finds every other member's certificate carrying its advertised HSA-ID", 30*time.Second, 200*time.Millisecond, func() bool {
		for _, n := range byName {
			var v fedView
			if err := adm.GetJSON(n.admin, "/api/v1/federation", &v); err != nil || len(v.Members) != len(byName) {
				return false
			}
			for _, m := range v.Members {
				if m.Name != v.Self && (m.State != "alive" || m.Certificate != "verified") {
					return false
				}
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	logf("every member's HSA-ID verified against its certificate by every node (%dms later)", took.Milliseconds())

	// ---- 2. the chain ----
	var traced result
	for _, n := range routers {
		r := call(n, la)
		if !r.ok {
			fail("call into %s for %s: %s", n.name, la, r)
			continue
		}
		traced = r
	}
	if r := call(routers[0], laNoAuth); r.ok || !strings.HasPrefix(r.fault, "VP007") || !strings.Contains(r.fault, "["+pN.name+"]") {
		fail("call for %s (not authorized at NATIONAL): got %q, want VP007 naming [%s]", laNoAuth, r, pN.name)
	} else {
		logf("call for %s, which NATIONAL does not authorize for REGION-A: %s", laNoAuth, ctkit.OneLine(r.fault))
	}
	if traced.corr == "" {
		return errors.New("no call went through the chain")
	}
	hops := checkTrace("chain", byName[traced.via], traced.corr, traced.done)
	if hops == nil {
		return errors.New("no trace of the chain")
	}

	// ---- 3. kill the national node in use ----
	victim := byName[hops[1].Node]
	if victim == nil {
		return fmt.Errorf("trace names national node %q, not one of n1..n3", hops[1].Node)
	}
	killPhase(victim)

	// ---- 4. partition region B ----
	partitionPhase()

	// ---- 5. trace after the heal ----
	r := call(routers[1], la)
	if !r.ok {
		fail("call after the heal: %s", r)
	} else {
		checkTrace("after the heal", byName[r.via], r.corr, r.done)
	}
	return nil
}

// killPhase runs the load, kills victim, measures, and starts it again.
func killPhase(victim *node) {
	var mu sync.Mutex
	var results []result
	var rr atomic.Uint64
	ctx, cancel := context.WithCancel(context.Background())
	every := time.Second / time.Duration(*rate)
	wg := ctkit.Loop(ctx, every, 4*(*rate), func(int) {
		n := routers[int(rr.Add(1))%len(routers)]
		r := call(n, la)
		mu.Lock()
		results = append(results, r)
		mu.Unlock()
	})
	logf("kill: %d calls/s into %s, %s before the kill", *rate, pA.name, *beforeKill)
	time.Sleep(*beforeKill)

	// Watch A's nodes drop the victim from their route to NATIONAL.
	victimRouter := victim.ip + ":20000"
	dropped := map[string]time.Time{}
	var dropMu sync.Mutex
	watchCtx, stopWatch := context.WithCancel(context.Background())
	var watchWG sync.WaitGroup
	for _, n := range pA.nodes {
		watchWG.Add(1)
		go func(n *node) {
			defer watchWG.Done()
			for watchCtx.Err() == nil {
				got, err := routesTo(n, pN.name)
				if err == nil && !slices.Contains(got, victimRouter) {
					dropMu.Lock()
					dropped[n.name] = time.Now()
					dropMu.Unlock()
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}(n)
	}

	issued := time.Now()
	if _, err := ctkit.Docker("kill", "-s", "KILL", victim.container); err != nil {
		fail("kill %s: %v", victim.name, err)
	}
	killAt := ctkit.StateTime(victim.container, "FinishedAt", issued)
	logf("kill: killed NATIONAL node %s (SIGKILL; died %dms after docker kill was issued)", victim.name, killAt.Sub(issued).Milliseconds())
	time.Sleep(*afterKill)
	cancel()
	wg.Wait()
	stopWatch()
	watchWG.Wait()

	// Before the kill: the normal latency, to tell a slowed call.
	var before []time.Duration
	for _, r := range results {
		if r.done.Before(killAt) && r.ok {
			before = append(before, r.done.Sub(r.sent))
		}
	}
	sort.Slice(before, func(i, j int) bool { return before[i] < before[j] })
	slow := 500 * time.Millisecond
	if len(before) > 0 {
		p99 := before[len(before)*99/100]
		logf("kill: before the kill %d calls ok, p50 %.1fms p99 %.1fms", len(before), ms(before[len(before)/2]), ms(p99))
		if 3*p99 > slow {
			slow = 3 * p99
		}
	} else {
		fail("kill: no call succeeded before the kill")
	}
	var total, okN, inFlightFailed, afterFailed int
	var lastBad time.Time
	faults := map[string]int{}
	for _, r := range results {
		total++
		if r.ok {
			okN++
		} else {
			faults[classify(r.fault)]++
		}
		// killAt is when docker saw the process gone, a little after it
		// died: a call that failed between the kill being issued and then
		// was in flight at the kill.
		if r.done.Before(issued) {
			continue
		}
		if !r.ok {
			if r.sent.Before(killAt) {
				inFlightFailed++
			} else {
				afterFailed++
			}
		}
		// A call sent after the kill that failed or was slowed was still
		// steered to the dead node (or waited for a connection to it).
		if !r.sent.Before(killAt) && (!r.ok || r.done.Sub(r.sent) > slow) && r.sent.After(lastBad) {
			lastBad = r.sent
		}
	}
	// Where the calls that waited for a connect timeout to the dead node
	// (federation.connect_timeout, 500 ms) fall after the kill, per half
	// second: the shape of the rerouting.
	const waited = 450 * time.Millisecond
	var shape []string
	for t := time.Duration(0); t < *afterKill; t += 500 * time.Millisecond {
		n, bad := 0, 0
		for _, r := range results {
			if d := r.sent.Sub(killAt); d >= t && d < t+500*time.Millisecond {
				n++
				if !r.ok || r.done.Sub(r.sent) > waited {
					bad++
				}
			}
		}
		if bad > 0 {
			shape = append(shape, fmt.Sprintf("+%.1fs: %d/%d", t.Seconds(), bad, n))
		}
	}
	logf("kill: calls over %dms or failed, by when they were sent after the kill: %v", waited.Milliseconds(), shape)
	var after []time.Duration
	for _, r := range results {
		if !r.sent.Before(killAt) && r.ok {
			after = append(after, r.done.Sub(r.sent))
		}
	}
	if sort.Slice(after, func(i, j int) bool { return after[i] < after[j] }); len(after) > 0 {
		logf("kill: calls sent after the kill: %d ok, p50 %.1fms p99 %.1fms max %.1fms", len(after), ms(after[len(after)/2]), ms(after[len(after)*99/100]), ms(after[len(after)-1]))
	}
	reroute := time.Duration(0)
	if !lastBad.IsZero() {
		reroute = lastBad.Sub(killAt)
	}
	logf("kill: %d calls, %d ok; faults %v", total, okN, faults)
	logf("kill: failed calls in flight at the kill: %d; failed calls sent after the kill: %d", inFlightFailed, afterFailed)
	logf("kill: traffic routed around %dms after the kill (last call sent after the kill that failed or took over %dms)", reroute.Milliseconds(), slow.Milliseconds())
	for _, n := range pA.nodes {
		if t, ok := dropped[n.name]; ok {
			logf("kill: %s stopped routing to %s %dms after the kill", n.name, victim.name, t.Sub(killAt).Milliseconds())
		} else {
			fail("kill: %s still routes to the killed node %s %s after the kill", n.name, victim.name, *afterKill)
		}
	}
	if afterFailed > 0 {
		fail("kill: %d calls sent after the kill failed (only calls in flight may fail)", afterFailed)
	}
	if reroute > *maxReroute {
		fail("kill: traffic routed around only %dms after the kill (goal %s)", reroute.Milliseconds(), *maxReroute)
	}

	// Start it again: it rejoins its platform and the federation.
	issued = time.Now()
	if _, err := ctkit.Docker("start", victim.container); err != nil {
		fail("start %s: %v", victim.name, err)
		return
	}
	startAt := ctkit.StateTime(victim.container, "StartedAt", issued)
	_, err := ctkit.WaitFor(victim.name+" routed to again by every A node", 30*time.Second, 50*time.Millisecond, func() bool {
		for _, n := range pA.nodes {
			got, err := routesTo(n, pN.name)
			if err != nil || !slices.Contains(got, victimRouter) {
				return false
			}
		}
		return true
	})
	if err != nil {
		fail("kill: %v", err)
	} else {
		logf("kill: started %s again; every A node routes to it %dms after its process started", victim.name, time.Since(startAt).Milliseconds())
	}
}

// partitionPhase cuts region B off the network and reconnects it.
func partitionPhase() {
	b := pB.nodes[0]
	network := *project + "_fed"
	var mu sync.Mutex
	var results []result
	var rr atomic.Uint64
	ctx, cancel := context.WithCancel(context.Background())
	// A gentler load: calls wait for the producer timeout while B is away.
	wg := ctkit.Loop(ctx, 50*time.Millisecond, 400, func(int) {
		r := call(routers[int(rr.Add(1))%len(routers)], la)
		mu.Lock()
		results = append(results, r)
		mu.Unlock()
	})
	time.Sleep(time.Second)
	cutAt := time.Now()
	if _, err := ctkit.Docker("network", "disconnect", "-f", network, b.container); err != nil {
		fail("partition: disconnect %s: %v", b.name, err)
		cancel()
		wg.Wait()
		return
	}
	logf("partition: %s cut off the network", b.name)
	// The cut lasts -partition, or until NATIONAL has seen B gone if that
	// takes longer (a slow runner): the heal is measured from a real split.
	gone, err := ctkit.WaitFor("NATIONAL sees REGION-B gone", 30*time.Second, 100*time.Millisecond, func() bool {
		for _, n := range pN.nodes {
			if got, err := routesTo(n, pB.name); err != nil || len(got) != 0 {
				return false
			}
		}
		return true
	})
	if err != nil {
		fail("partition: %v", err)
	} else {
		logf("partition: every NATIONAL node stopped routing to REGION-B %dms after the cut", gone.Milliseconds())
	}
	if d := *cutFor - time.Since(cutAt); d > 0 {
		time.Sleep(d)
	}
	healAt := time.Now()
	if _, err := ctkit.Docker("network", "connect", "--ip", b.ip, network, b.container); err != nil {
		fail("partition: reconnect %s: %v", b.name, err)
		cancel()
		wg.Wait()
		return
	}
	logf("partition: %s reconnected (same address %s), %s after the cut", b.name, b.ip, time.Since(cutAt).Round(time.Millisecond))
	member, err := ctkit.WaitFor("membership healed", 30*time.Second, 100*time.Millisecond, func() bool {
		for _, n := range pN.nodes {
			if got, err := routesTo(n, pB.name); err != nil || len(got) != 1 {
				return false
			}
		}
		got, err := routesTo(b, pN.name)
		return err == nil && len(got) == len(pN.nodes)
	})
	if err != nil {
		fail("partition: %v", err)
	} else {
		logf("partition: membership healed %dms after the reconnection (every NATIONAL node routes to REGION-B, REGION-B sees 3 NATIONAL nodes)", member.Milliseconds())
		if member > *maxHeal {
			fail("partition: membership healed only %dms after the reconnection (goal %s)", member.Milliseconds(), *maxHeal)
		}
	}
	// Calls: recovered when every call sent from then on succeeds.
	time.Sleep(3 * time.Second)
	cancel()
	wg.Wait()
	var lastBad time.Time
	var during, duringOK int
	for _, r := range results {
		if r.sent.After(cutAt) && r.sent.Before(healAt) {
			during++
			if r.ok {
				duringOK++
			}
		}
		if !r.ok && r.sent.After(lastBad) {
			lastBad = r.sent
		}
	}
	logf("partition: %d calls sent while B was cut off, %d ok (the others answered with a fault naming the platform that raised it)", during, duringOK)
	faults := map[string]int{}
	for _, r := range results {
		if !r.ok {
			faults[classify(r.fault)]++
		}
	}
	logf("partition: faults %v", faults)
	switch {
	case lastBad.Before(healAt):
		logf("partition: calls recovered at once: no call sent after the reconnection failed")
	case lastBad.Sub(healAt) > *maxHeal:
		fail("partition: calls failed until %dms after the reconnection (goal %s)", lastBad.Sub(healAt).Milliseconds(), *maxHeal)
	default:
		logf("partition: calls recovered %dms after the reconnection (last failed call sent then)", lastBad.Sub(healAt).Milliseconds())
	}
}

// classify shortens a fault for counting: the code and the platform.
func classify(f string) string {
	if i := strings.Index(f, "]"); strings.HasPrefix(f, "VP") && i > 0 {
		return f[:i+1]
	}
	if strings.HasPrefix(f, "transport: ") {
		if strings.Contains(f, "Timeout") || strings.Contains(f, "deadline") {
			return "client timeout"
		}
		return "transport error"
	}
	return ctkit.OneLine(f)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
