package test

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vaxel/vaxel/test/harness"
)

// catalogCounts returns the number of routes and authorizations the
// node's catalog holds.
func catalogCounts(t *testing.T, n *harness.Node) (routes, auths int) {
	t.Helper()
	r, err := n.AdminDo("GET", "/api/v1/catalog", nil)
	if err != nil || r.Status != 200 {
		t.Fatalf("GET /api/v1/catalog: %v %+v", err, r)
	}
	var s struct {
		Counts map[string]int `json:"counts"`
	}
	if err := json.Unmarshal(r.Body, &s); err != nil {
		t.Fatalf("catalog summary: %v: %s", err, r.Body)
	}
	return s.Counts["route"], s.Counts["authorization"]
}

// catalogVersion returns the node's catalog version and history length.
func catalogVersion(t *testing.T, n *harness.Node) (version uint64, history int) {
	t.Helper()
	r, err := n.AdminDo("GET", "/api/v1/catalog", nil)
	if err != nil || r.Status != 200 {
		t.Fatalf("GET /api/v1/catalog: %v %+v", err, r)
	}
	var s struct {
		Version uint64 `json:"version"`
	}
	if err := json.Unmarshal(r.Body, &s); err != nil {
		t.Fatalf("catalog summary: %v: %s", err, r.Body)
	}
	r, err = n.AdminDo("GET", "/api/v1/versions", nil)
	if err != nil || r.Status != 200 {
		t.Fatalf("GET /api/v1/versions: %v %+v", err, r)
	}
	var h []json.RawMessage
	if err := json.Unmarshal(r.Body, &h); err != nil {
		t.Fatalf("versions: %v: %s", err, r.Body)
	}
	return s.Version, len(h)
}

// status reads /status as a map of its fields.
func status(t *testing.T, n *harness.Node, query string) (map[string]any, *harness.Response) {
	t.Helper()
	r, err := n.AdminDo("GET", "/status"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != 200 {
		t.Fatalf("/status%s: %d %s", query, r.Status, r.Body)
	}
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("/status%s is not a JSON object: %v\n%s", query, err, r.Body)
	}
	return m, r
}

// ready returns the /ready status code.
func ready(t *testing.T, n *harness.Node) int {
	t.Helper()
	r, err := n.AdminDo("GET", "/ready", nil)
	if err != nil {
		t.Fatal(err)
	}
	return r.Status
}

// A19: a node that has no catalog (the reference: TAK down at start and no
// local copy) answers every call VP008 and is not ready; VP015 and VP013
// still come first, VP003 after.
func TestA19_NoCatalogVP008NotReady(t *testing.T) {
	n := ownNode(t, harness.NodeConfig{Name: "node-c", Cert: env.certs["node-c"]})
	const detail = "No contact with TAK at startup, and no local cache to fallback on, not possible to route call"
	r, _ := call(t, n.HTTPSURL(), consumerTP, certReq(t, "HttpProducer"), nil)
	faultDetail(t, r, "VP008", detail)
	r, _ = call(t, n.HTTPSURL(), consumerTP, []byte(strings.Replace(string(certReq21(t, "X")), ">X<", "><", 1)), nil)
	faultDetail(t, r, "VP008", detail) // VP008 before VP003
	r, _ = call(t, n.HTTPSURL(), consumerTP, []byte("<felaktigt format"), nil)
	fault(t, r, "VP015")

	if code := ready(t, n); code == 200 {
		t.Errorf("/ready = 200 for a node without catalog")
	}
	if r, err := n.AdminDo("GET", "/health", nil); err != nil || r.Status != 200 {
		t.Errorf("/health of a running node without catalog: %v %+v, want 200 (alive, not ready)", err, r)
	}
	if st, _ := status(t, n, ""); st["TakCacheInitialized"] != "false" {
		t.Errorf("/status TakCacheInitialized = %v, want \"false\"", st["TakCacheInitialized"])
	}
}

// A20: a restarted node (same data dir) serves from its own Raft data: the
// reference's "TAK down, local file present → routes from file", without
// anything re-applied.
func TestA20_RestartServesFromOwnData(t *testing.T) {
	n := ownNode(t, harness.NodeConfig{Name: "node-d", Cert: env.certs["node-d"]})
	if err := loadSmallCatalog(n); err != nil {
		t.Fatal(err)
	}
	if err := n.WaitReady(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	r, _ := call(t, n.HTTPSURL(), consumerTP, certReq(t, "HttpProducer"), nil)
	ok(t, r)
	version, history := catalogVersion(t, n)

	if err := n.Stop(); err != nil {
		t.Fatalf("SIGTERM: %v (want a clean exit)", err)
	}
	if r, err := harness.Post(env.clients[consumerTP], n.HTTPSURL(), certReq(t, "HttpProducer"), nil); err == nil {
		t.Fatalf("stopped node answered %d", r.Status)
	}
	start := time.Now()
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	if err := n.WaitReady(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("restarted and ready in %s", time.Since(start).Round(time.Millisecond))
	r, id := call(t, n.HTTPSURL(), consumerTP, certReq(t, "HttpProducer"), nil)
	ok(t, r)
	received(t, env.http, id, 1)
	r, _ = call(t, n.HTTPSURL(), consumerTP, certReq(t, "NotInCatalog"), nil)
	fault(t, r, "VP004")
	if v, h := catalogVersion(t, n); v != version || h != history {
		t.Errorf("after restart: version %d with %d history records, want %d and %d as before", v, h, version, history)
	}
}

// A21: a catalog change that fails (the reference: a TAK refresh that
// fails after a good load) leaves the catalog in use as it was.
func TestA21_FailedChangeKeepsCatalog(t *testing.T) {
	n := nodeB(t)
	before, _ := catalogVersion(t, n)
	bad := newOrder()
	bad.route("HttpProducer", nsCert, "RIVTABP99", env.http.URL+"/elsewhere") // no such RIV profile
	bad.auth(consumerNobody, nsCert, "HttpProducer")
	r, err := n.AdminDo("POST", "/api/v1/orders", bad.json())
	if err != nil {
		t.Fatal(err)
	}
	if r.Status == 200 {
		t.Fatalf("order with an unknown RIV profile accepted: %s", r.Body)
	}
	if r, _ := n.AdminDo("POST", "/api/v1/import", []byte("{not json")); r == nil || r.Status == 200 {
		t.Fatalf("broken import accepted")
	}
	if after, _ := catalogVersion(t, n); after != before {
		t.Errorf("catalog version %d after refused changes, want %d", after, before)
	}
	if code := ready(t, n); code != 200 {
		t.Errorf("/ready = %d after a refused change, want 200", code)
	}
	r, id := call(t, n.HTTPSURL(), consumerTP, certReq(t, "HttpProducer"), nil)
	ok(t, r)
	if got := received(t, env.http, id, 1)[0]; got.Path != pathOK {
		t.Errorf("routed to %s, want %s as before the refused order", got.Path, pathOK)
	}
	r, _ = call(t, n.HTTPSURL(), consumerNobody, certReq(t, "HttpProducer"), nil)
	fault(t, r, "VP007")
}

var uptime = regexp.MustCompile(`^\d+ days, \d+ hours, \d+ minutes, \d+ seconds$`)

// hsaCount matches the size of the fixture HSA tree: five units, of which
// four have a parent.
var hsaCount = regexp.MustCompile(`newNum:[45]\b`)

// A39: /status answers the reference's JSON (§5.1): pretty-printed,
// string values, service and catalog state, the router endpoints.
// ?memory and ?netty select JVM allocator figures in the reference; vaxel
// has none and answers the same document, so scripts calling them work.
func TestA39_Status(t *testing.T) {
	n := nodeA(t)
	routes, auths := catalogCounts(t, n)
	if routes < 20 || auths < 20 {
		t.Fatalf("catalog holds %d routes and %d authorizations; the fixture has more", routes, auths)
	}
	for _, q := range []string{"", "?memory", "?netty"} {
		st, r := status(t, n, q)
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("/status%s Content-Type %q, want application/json", q, ct)
		}
		if !strings.Contains(string(r.Body), "\n  \"") {
			t.Errorf("/status%s is not pretty-printed with indent 2:\n%s", q, r.Body)
		}
		for _, k := range []string{"Name", "Version", "ServiceStatus", "Uptime", "TakCacheInitialized", "TakCacheResetInfo", "HsaCacheInitialized", "HsaCacheResetInfo"} {
			if _, isString := st[k].(string); !isString {
				t.Errorf("/status%s %s = %#v, want a string", q, k, st[k])
			}
		}
		if st["ServiceStatus"] != "Started" || st["TakCacheInitialized"] != "true" || st["HsaCacheInitialized"] != "true" {
			t.Errorf("/status%s ServiceStatus %v TakCacheInitialized %v HsaCacheInitialized %v, want Started, true, true",
				q, st["ServiceStatus"], st["TakCacheInitialized"], st["HsaCacheInitialized"])
		}
		if s, _ := st["Uptime"].(string); !uptime.MatchString(s) {
			t.Errorf("/status%s Uptime %q, want \"D days, H hours, M minutes, S seconds\"", q, s)
		}
		counts := "vagval:" + strconv.Itoa(routes) + " behorigheter:" + strconv.Itoa(auths)
		if s, _ := st["TakCacheResetInfo"].(string); !strings.Contains(s, counts) {
			t.Errorf("/status%s TakCacheResetInfo %q, want it to count %q", q, s, counts)
		}
		if s, _ := st["HsaCacheResetInfo"].(string); !hsaCount.MatchString(s) {
			t.Errorf("/status%s HsaCacheResetInfo %q, want newNum:4 or 5 (the units of the HSA file, with or without the root SE)", q, s)
		}
		eps, _ := st["Endpoints"].([]any)
		var found []string
		for _, e := range eps {
			if s, _ := e.(string); s == n.HTTPSURL() || s == n.HTTPURL() {
				found = append(found, s)
			}
		}
		if len(found) != 2 {
			t.Errorf("/status%s Endpoints %v, want %s and %s", q, eps, n.HTTPSURL(), n.HTTPURL())
		}
	}
}

// A40: /resetcache (called by tak-monitor on every node) answers 200,
// text/html, in the reference's <br> line format, ending with whether the
// node has a catalog. There is nothing to reload: the catalog is live.
func TestA40_ResetCache(t *testing.T) {
	n := nodeA(t)
	routes, auths := catalogCounts(t, n)
	for _, method := range []string{"GET", "POST"} {
		r, err := n.AdminDo(method, "/resetcache", nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != 200 || r.Header.Get("Content-Type") != "text/html;" {
			t.Fatalf("%s /resetcache: %d %q, want 200 text/html;", method, r.Status, r.Header.Get("Content-Type"))
		}
		b := string(r.Body)
		for _, want := range []string{
			"<br>Host: ", "<br>Time: ",
			"<br>Init TAK cache loaded number of permissions: " + strconv.Itoa(auths),
			"<br>Init TAK cache loaded number of virtualizations: " + strconv.Itoa(routes),
		} {
			if !strings.Contains(b, want) {
				t.Errorf("%s /resetcache lacks %q:\n%s", method, want, b)
			}
		}
		if !strings.HasPrefix(b, "<br>Host: ") || !strings.HasSuffix(b, "<br>Init done, was successful: true") {
			t.Errorf("%s /resetcache body:\n%s\nwant <br>Host: … <br>Init done, was successful: true", method, b)
		}
		if _, err := time.Parse("2006-01-02 15:04:05", between(b, "<br>Time: ", "<br>")); err != nil {
			t.Errorf("/resetcache Time is not yyyy-MM-dd HH:mm:ss: %v", err)
		}
	}
	// Calls are routed as before.
	r, _ := call(t, n.HTTPSURL(), consumerTP, certReq(t, "HttpProducer"), nil)
	ok(t, r)
}

func between(s, a, b string) string {
	_, s, _ = strings.Cut(s, a)
	s, _, _ = strings.Cut(s, b)
	return s
}
