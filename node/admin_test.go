package node_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaxel/vaxel/node"
	"github.com/vaxel/vaxel/node/config"
	"github.com/vaxel/vaxel/pki"
)

// Identities of the test platform. The operator's HSA-ID is in admin.allow;
// the other certificate comes from the same CA but is not.
const (
	testPlatform  = "SKLTP-TEST" // the platform the reference's order files name
	adminID       = "SE0000000000-ADMIN"
	outsiderID    = "SE0000000000-OUTSIDER"
	testToken     = "0123456789abcdef-test-token-0123456789"
	nsTest        = "urn:riv:vaxel:test:GetThingsResponder:1"
	nsOrder       = "urn:riv:clinicalprocess:activity:actions:GetActivitiesResponder:2"
	tdata         = "../tak/testdata/"
	takdumpExport = "takdump_ntjp_test.EXCERPT-tak-export-format.json"
	takdumpCoop   = "takdump_ntjp_test.EXCERPT-cooperation-import-format.json"
)

// testPKI is a platform CA with certificates in a directory, made at run time.
type testPKI struct {
	dir string
	ca  *pki.CA
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{dir: filepath.Join(t.TempDir(), "pki")}
	var err error
	if p.ca, err = pki.NewCA("vaxel test CA", pki.ECDSAP256, 0); err != nil {
		t.Fatal(err)
	}
	if err := p.ca.WriteDir(p.dir); err != nil {
		t.Fatal(err)
	}
	p.issue(t, adminID, adminID)
	p.issue(t, outsiderID, outsiderID)
	// A certificate of another CA, for an operator of some other platform.
	foreign, err := pki.NewCA("foreign CA", pki.ECDSAP256, 0)
	if err != nil {
		t.Fatal(err)
	}
	is, err := foreign.Issue(pki.Request{CommonName: "foreign", SerialNumber: adminID})
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.WriteFiles(p.dir, "foreign", is); err != nil {
		t.Fatal(err)
	}
	return p
}

// issue writes name.crt and name.key; hsaID goes into SERIALNUMBER.
func (p *testPKI) issue(t *testing.T, name, hsaID string) {
	t.Helper()
	is, err := p.ca.Issue(pki.Request{CommonName: name, SerialNumber: hsaID, DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.WriteFiles(p.dir, name, is); err != nil {
		t.Fatal(err)
	}
}

func (p *testPKI) file(name string) string { return filepath.Join(p.dir, name) }

// tlog sends a node's log to the test log until the node has stopped.
type tlog struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *tlog) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(b), "\n"))
	}
	return len(b), nil
}

func (w *tlog) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

type testNode struct {
	*node.Node
	name string
}

// nodeConfig is a node of testPlatform on loopback, as cmd/vaxel's dev mode
// builds one. servers, if given, is the platform's raft.servers.
func nodeConfig(t *testing.T, p *testPKI, name, raftAddr, adminAddr string, servers []config.Peer) *config.Config {
	t.Helper()
	tokenFile := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(tokenFile, []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Node = config.Node{Name: name, Platform: testPlatform, DataDir: filepath.Join(t.TempDir(), "data")}
	cfg.TLS = config.TLS{Cert: p.file(name + ".crt"), Key: p.file(name + ".key"), CA: p.file("ca.crt")}
	cfg.Router.HTTPSAddr = "127.0.0.1:0"
	cfg.Raft.Bind = raftAddr
	cfg.Raft.Servers = servers
	// Leader lease is 500 ms in the catalog; heartbeat may not be shorter.
	cfg.Raft.HeartbeatTimeout, cfg.Raft.ElectionTimeout = 500*time.Millisecond, 500*time.Millisecond
	cfg.Admin.Addr = adminAddr
	cfg.Admin.Allow = []string{adminID}
	cfg.Admin.TokenFile = tokenFile
	if err := config.LoadDerived(&cfg); err != nil {
		t.Fatal(err)
	}
	return &cfg
}

// startNode runs a node until the test ends and waits for its admin API.
func startNode(t *testing.T, cfg *config.Config) *testNode {
	t.Helper()
	n, stop, err := launch(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return n
}

// launch starts a node and waits until its admin API listens. stop stops
// it and reports how it ended; on an error the node is already stopped.
func launch(t *testing.T, cfg *config.Config) (n *testNode, stop func() error, err error) {
	lw := &tlog{t: t}
	log := slog.New(slog.NewTextHandler(lw, &slog.HandlerOptions{Level: slog.LevelWarn})).With("node", cfg.Node.Name)
	nd, err := node.New(cfg, log)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	var runErr error
	stopped := make(chan struct{})
	go func() {
		runErr = nd.Run(ctx)
		close(stopped)
	}()
	stop = func() error {
		defer lw.stop()
		cancel()
		select {
		case <-stopped:
			if runErr != nil {
				return fmt.Errorf("node %s stopped: %w", cfg.Node.Name, runErr)
			}
			return nil
		case <-time.After(30 * time.Second):
			return fmt.Errorf("node %s did not stop within 30 s", cfg.Node.Name)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for nd.AdminAddr() == "" {
		select {
		case <-stopped:
			lw.stop()
			return nil, nil, fmt.Errorf("node %s stopped at start: %w", cfg.Node.Name, runErr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = stop()
			return nil, nil, fmt.Errorf("node %s: admin API not listening within 10 s", cfg.Node.Name)
		}
	}
	return &testNode{Node: nd, name: cfg.Node.Name}, stop, nil
}

// startPlatform starts nodes that list each other in raft.servers. Their
// addresses must be known before they listen, so ports are picked free and
// then bound, and another process may take one in between: then the whole
// platform starts again on other ports.
func startPlatform(t *testing.T, p *testPKI, names []string) []*testNode {
	t.Helper()
	for attempt := 1; ; attempt++ {
		var servers []config.Peer
		for _, nm := range names {
			servers = append(servers, config.Peer{ID: nm, Raft: freeAddr(t), Admin: freeAddr(t)})
		}
		nodes := make([]*testNode, len(names))
		stops := make([]func() error, len(names))
		errs := make([]error, len(names))
		var wg sync.WaitGroup
		for i := range names {
			cfg := nodeConfig(t, p, names[i], servers[i].Raft, servers[i].Admin, servers)
			wg.Add(1)
			go func() {
				defer wg.Done()
				nodes[i], stops[i], errs[i] = launch(t, cfg)
			}()
		}
		wg.Wait()
		err := errors.Join(errs...)
		if err == nil {
			for _, stop := range stops {
				t.Cleanup(func() {
					if err := stop(); err != nil {
						t.Error(err)
					}
				})
			}
			return nodes
		}
		for _, stop := range stops {
			if stop != nil {
				_ = stop()
			}
		}
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatal(err)
		}
		t.Logf("starting the platform again on other ports: %v", err)
	}
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// client is an admin API client: with a certificate (cert != "") and/or a
// bearer token, verifying the node against the platform CA.
type client struct {
	t     *testing.T
	http  *http.Client
	token string
}

func newClient(t *testing.T, p *testPKI, cert, token string) *client {
	t.Helper()
	var certFile, keyFile string
	if cert != "" {
		certFile, keyFile = p.file(cert+".crt"), p.file(cert+".key")
	}
	tc, err := pki.ClientTLSConfig(certFile, keyFile, []string{p.file("ca.crt")})
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: tc}
	t.Cleanup(tr.CloseIdleConnections)
	return &client{t: t, http: &http.Client{Timeout: 30 * time.Second, Transport: tr}, token: token}
}

// presentAnyway makes the client send its certificate whatever CAs the
// server asks for.
func (c *client) presentAnyway() *client {
	tc := c.http.Transport.(*http.Transport).TLSClientConfig
	cert := tc.Certificates[0]
	tc.Certificates = nil
	tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	return c
}

// try sends a request and returns the transport error instead of failing.
func (c *client) try(method, url string, body []byte, hdr ...string) (int, []byte, http.Header, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header, err
}

func (c *client) do(method, url string, body []byte, hdr ...string) (int, []byte) {
	c.t.Helper()
	code, b, _, err := c.try(method, url, body, hdr...)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, url, err)
	}
	return code, b
}

// want sends a request, checks the status and decodes a JSON answer into out.
func (c *client) want(code int, method, url string, body []byte, out any) []byte {
	c.t.Helper()
	got, b := c.do(method, url, body)
	if got != code {
		c.t.Fatalf("%s %s: HTTP %d, want %d: %s", method, url, got, code, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: decode %s: %v", method, url, b, err)
		}
	}
	return b
}

func js(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// writeResult is what every catalog write answers.
type writeResult struct {
	Version uint64            `json:"version"`
	Changes int               `json:"changes"`
	Error   string            `json:"error"`
	Errors  []string          `json:"errors"`
	Report  string            `json:"report"`
	Stored  []json.RawMessage `json:"stored"`
}

// storedID is the id of the first entity a write stored.
func (w writeResult) storedID(t *testing.T) int64 {
	t.Helper()
	if len(w.Stored) == 0 {
		t.Fatalf("write stored nothing: %+v", w)
	}
	var e struct {
		ID int64 `json:"id"`
	}
	if err := json.Unmarshal(w.Stored[0], &e); err != nil || e.ID == 0 {
		t.Fatalf("stored %s: no id (%v)", w.Stored[0], err)
	}
	return e.ID
}

type changeRecord struct {
	Seq      uint64 `json:"seq"`
	Actor    string `json:"actor"`
	Source   string `json:"source"`
	Comment  string `json:"comment"`
	Changes  int    `json:"changes"`
	HasDelta bool   `json:"hasDelta"`
}

type explanation struct {
	Outcome            string `json:"outcome"`
	RouteTrace         string `json:"routeTrace"`
	AuthorizationTrace string `json:"authorizationTrace"`
	URL                string `json:"url"`
	Profile            string `json:"rivProfile"`
	Producer           string `json:"producer"`
	ProducerTimeoutMS  int64  `json:"producerTimeoutMs"`
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// listing is every entity of the catalog, by kind, as the admin API lists them.
func listing(t *testing.T, c *client, base string) map[string]json.RawMessage {
	t.Helper()
	out := map[string]json.RawMessage{}
	for _, k := range []string{"rivprofile", "contract", "component", "logicaladdress", "calladdress", "route", "authorization", "filter", "categorization"} {
		var raw json.RawMessage
		c.want(200, "GET", base+"/api/v1/catalog/"+k, nil, &raw)
		var compact bytes.Buffer
		if err := json.Compact(&compact, raw); err != nil {
			t.Fatal(err)
		}
		out[k] = compact.Bytes()
	}
	return out
}

const hsaFile = `<?xml version="1.0" encoding="UTF-8"?>
<FileGetHsaUnitsResponse xmlns="urn:riv:hsa:HsaWsResponder:3">
  <startDate>2024-03-01T12:00:00.000+01:00</startDate>
  <endDate>2024-03-01T12:00:01.000+01:00</endDate>
  <hsaUnits>
    <hsaUnit><hsaIdentity>TEST-001</hsaIdentity><DN>ou=Test,o=Region,c=SE</DN><name>Test</name></hsaUnit>
    <hsaUnit><hsaIdentity>TEST-001-CHILD</hsaIdentity><DN>ou=Child,ou=Test,o=Region,c=SE</DN><name>Child</name></hsaUnit>
    <hsaUnit><hsaIdentity>SE</hsaIdentity><DN>c=SE</DN><name>Sverige</name></hsaUnit>
  </hsaUnits>
</FileGetHsaUnitsResponse>
`

// TestAdminAPI runs every admin endpoint against one node. Subtests share the
// node and build on each other's catalog, in order.
func TestAdminAPI(t *testing.T) {
	p := newTestPKI(t)
	// A name with capitals: node names are often host names.
	const name = "Vaxel-Node-1"
	p.issue(t, name, "SE0000000000-NODE1")
	n := startNode(t, nodeConfig(t, p, name, "127.0.0.1:0", "127.0.0.1:0", nil))
	base := "https://" + n.AdminAddr()
	waitFor(t, "catalog leader", 10*time.Second, n.Store().IsLeader)

	admin := newClient(t, p, adminID, "")
	anon := newClient(t, p, "", "")

	t.Run("health and readiness before a catalog", func(t *testing.T) {
		var h map[string]string
		anon.want(200, "GET", base+"/health", nil, &h)
		if h["status"] != "UP" {
			t.Errorf("health %v", h)
		}
		var r struct {
			Ready  bool   `json:"ready"`
			Reason string `json:"reason"`
		}
		anon.want(503, "GET", base+"/ready", nil, &r)
		if r.Ready || !strings.Contains(r.Reason, "no catalog") {
			t.Errorf("ready %+v", r)
		}
		var st map[string]any
		admin.want(200, "GET", base+"/status", nil, &st)
		if st["Name"] != "vaxel" || st["TakCacheInitialized"] != "false" || st["RaftState"] != "Leader" || st["Version"] == "" {
			t.Errorf("status %v", st)
		}
	})

	t.Run("authentication", func(t *testing.T) {
		url := base + "/api/v1/catalog"
		tests := []struct {
			name      string
			c         *client
			code      int
			tlsRefuse bool
		}{
			{name: "no certificate, no token", c: anon, code: http.StatusUnauthorized},
			{name: "platform certificate not on admin.allow", c: newClient(t, p, outsiderID, ""), code: http.StatusForbidden},
			{name: "certificate on admin.allow", c: admin, code: http.StatusOK},
			{name: "node certificate", c: newClient(t, p, name, ""), code: http.StatusOK},
			{name: "bearer token", c: newClient(t, p, "", testToken), code: http.StatusOK},
			{name: "wrong token", c: newClient(t, p, "", strings.Repeat("x", len(testToken))), code: http.StatusUnauthorized},
			{name: "token prefix", c: newClient(t, p, "", testToken[:16]), code: http.StatusUnauthorized},
			{name: "outsider certificate with the token", c: newClient(t, p, outsiderID, testToken), code: http.StatusOK},
			// Go's TLS client keeps back a certificate the server's CA list
			// does not cover; curl and Java send it anyway.
			{name: "certificate of a foreign CA, kept back", c: newClient(t, p, "foreign", ""), code: http.StatusUnauthorized},
			{name: "certificate of a foreign CA, presented", c: newClient(t, p, "foreign", "").presentAnyway(), tlsRefuse: true},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				code, body, _, err := tc.c.try("GET", url, nil)
				if tc.tlsRefuse {
					if err == nil {
						t.Fatalf("HTTP %d, want the TLS handshake refused: %s", code, body)
					}
					if !strings.Contains(err.Error(), "tls") && !strings.Contains(err.Error(), "certificate") {
						t.Errorf("err = %v, want a TLS refusal", err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if code != tc.code {
					t.Errorf("HTTP %d, want %d: %s", code, tc.code, body)
				}
			})
		}
		// Probes need no credentials even without a client certificate.
		for _, path := range []string{"/health", "/ready"} {
			if code, _ := anon.do("GET", base+path, nil); code == http.StatusUnauthorized || code == http.StatusForbidden {
				t.Errorf("%s refused an anonymous probe: %d", path, code)
			}
		}
		// Every other endpoint is closed to an anonymous caller.
		for _, ep := range [][2]string{{"GET", "/status"}, {"GET", "/resetcache"}, {"GET", "/api/v1/export"}, {"POST", "/api/v1/orders"},
			{"POST", "/api/v1/import"}, {"GET", "/api/v1/versions"}, {"POST", "/api/v1/rollback?to=0"}, {"GET", "/api/v1/raft"},
			{"PUT", "/api/v1/timeouts"}, {"PUT", "/api/v1/hsa-tree"}, {"DELETE", "/api/v1/catalog/contract/1"},
			{"GET", "/debug/pprof/"}, {"GET", "/debug/pprof/heap"}, {"GET", "/debug/pprof/profile?seconds=1"}} {
			if code, _ := anon.do(ep[0], base+ep[1], nil); code != http.StatusUnauthorized {
				t.Errorf("anonymous %s %s: HTTP %d, want 401", ep[0], ep[1], code)
			}
		}
		// A certificate the CA signed but admin.allow does not list gets no
		// profile either: a profile shows the node's internals.
		if code, _ := newClient(t, p, outsiderID, "").do("GET", base+"/debug/pprof/heap", nil); code != http.StatusForbidden {
			t.Errorf("outsider GET /debug/pprof/heap: HTTP %d, want 403", code)
		}
	})

	t.Run("profiles for an admin", func(t *testing.T) {
		code, body := admin.do("GET", base+"/debug/pprof/goroutine?debug=1", nil)
		if code != 200 || !bytes.Contains(body, []byte("goroutine profile:")) {
			t.Fatalf("goroutine profile: HTTP %d: %.200s", code, body)
		}
		code, body = admin.do("GET", base+"/debug/pprof/profile?seconds=1", nil)
		if code != 200 || len(body) < 2 || body[0] != 0x1f || body[1] != 0x8b {
			t.Fatalf("CPU profile: HTTP %d, %d bytes, want a gzipped profile", code, len(body))
		}
	})

	// The integration every later subtest routes through.
	var laID, conID, prodID, consID, addrID int64
	t.Run("catalog create", func(t *testing.T) {
		var w writeResult
		admin.want(200, "POST", base+"/api/v1/catalog/rivprofile", js(map[string]string{"name": "RIVTABP21"}), &w)
		if w.Version != 1 || w.Changes != 1 {
			t.Errorf("first write: %+v", w)
		}
		profID := w.storedID(t)
		admin.want(200, "POST", base+"/api/v1/catalog/contract?comment=first+contract", js(map[string]any{"namespace": nsTest, "major": 1}), &w)
		conID = w.storedID(t)
		admin.want(200, "POST", base+"/api/v1/catalog/component", js(map[string]string{"hsaId": "SE0000000001-PROD"}), &w)
		prodID = w.storedID(t)
		admin.want(200, "POST", base+"/api/v1/catalog/component", js(map[string]string{"hsaId": "SE0000000002-CONS"}), &w)
		consID = w.storedID(t)
		admin.want(200, "POST", base+"/api/v1/catalog/logicaladdress", js(map[string]string{"hsaId": "SE0000000003-LA"}), &w)
		laID = w.storedID(t)
		admin.want(200, "POST", base+"/api/v1/catalog/calladdress", js(map[string]any{"url": "https://127.0.0.1:1/things", "profileId": profID, "componentId": prodID}), &w)
		addrID = w.storedID(t)
		admin.want(200, "POST", base+"/api/v1/catalog/route", js(map[string]any{"logicalAddressId": laID, "contractId": conID, "callAddressId": addrID, "from": "2020-01-01", "to": "2120-01-01"}), &w)
		admin.want(200, "POST", base+"/api/v1/catalog/authorization", js(map[string]any{"consumerId": consID, "contractId": conID, "logicalAddressId": laID, "agreement": "I1", "from": "2020-01-01", "to": "2120-01-01"}), &w)
		if w.Version != 8 {
			t.Errorf("version %d after 8 writes", w.Version)
		}
		var con map[string]any
		admin.want(200, "GET", fmt.Sprintf("%s/api/v1/catalog/contract/%d", base, conID), nil, &con)
		if con["namespace"] != nsTest {
			t.Errorf("contract %v", con)
		}
		var sum struct {
			Version uint64         `json:"version"`
			Counts  map[string]int `json:"counts"`
		}
		admin.want(200, "GET", base+"/api/v1/catalog", nil, &sum)
		if sum.Version != 8 || sum.Counts["route"] != 1 || sum.Counts["authorization"] != 1 || sum.Counts["component"] != 2 {
			t.Errorf("summary %+v", sum)
		}
		// The writer is the certificate's HSA-ID, with the operator's comment.
		var h []changeRecord
		admin.want(200, "GET", base+"/api/v1/versions", nil, &h)
		if len(h) != 8 || h[0].Seq != 8 || h[6].Comment != "first contract" {
			t.Fatalf("versions %+v", h)
		}
		for _, r := range h {
			if r.Actor != adminID || r.Source != "admin" {
				t.Errorf("version %+v, want actor %s, source admin", r, adminID)
			}
		}
	})

	t.Run("ready with a catalog", func(t *testing.T) {
		select {
		case <-n.Ready():
		case <-time.After(5 * time.Second):
			t.Fatal("Ready not closed")
		}
		var r struct {
			Ready bool `json:"ready"`
		}
		anon.want(200, "GET", base+"/ready", nil, &r)
		var st map[string]any
		admin.want(200, "GET", base+"/status", nil, &st)
		if st["TakCacheInitialized"] != "true" || !strings.Contains(fmt.Sprint(st["TakCacheResetInfo"]), "vagval:1 behorigheter:1") {
			t.Errorf("status %v", st)
		}
	})

	t.Run("catalog CRUD", func(t *testing.T) {
		// One entity of each kind through its whole life: POST, GET, list,
		// PUT, GET, then DELETE (dependents first) and GET 404.
		tests := []struct {
			kind           string
			create, update map[string]any
			field          string // compared after the update
		}{
			{"contract", map[string]any{"namespace": "urn:riv:vaxel:crud:CrudResponder:1", "major": 1}, map[string]any{"namespace": "urn:riv:vaxel:crud:CrudResponder:1", "major": 1, "minor": 3, "description": "updated"}, "minor"},
			{"logicaladdress", map[string]any{"hsaId": "SE0000000004-CRUD"}, map[string]any{"hsaId": "SE0000000004-CRUD", "description": "a care unit"}, "description"},
			{"component", map[string]any{"hsaId": "SE0000000005-CRUD"}, map[string]any{"hsaId": "SE0000000005-RENAMED"}, "hsaId"},
			{"route", map[string]any{"logicalAddressId": laID, "contractId": conID, "callAddressId": addrID, "from": "1990-01-01", "to": "1999-12-31"},
				map[string]any{"logicalAddressId": laID, "contractId": conID, "callAddressId": addrID, "from": "1990-01-01", "to": "1995-06-30"}, "to"},
			{"authorization", map[string]any{"consumerId": consID, "contractId": conID, "logicalAddressId": laID, "agreement": "I2", "from": "1990-01-01", "to": "1999-12-31"},
				map[string]any{"consumerId": consID, "contractId": conID, "logicalAddressId": laID, "agreement": "I3", "from": "1990-01-01", "to": "1999-12-31"}, "agreement"},
		}
		ids := map[string]int64{}
		for _, tc := range tests {
			url := base + "/api/v1/catalog/" + tc.kind
			var w writeResult
			admin.want(200, "POST", url, js(tc.create), &w)
			id := w.storedID(t)
			ids[tc.kind] = id
			var got map[string]any
			admin.want(200, "GET", fmt.Sprintf("%s/%d", url, id), nil, &got)
			var stored map[string]any
			if err := json.Unmarshal(w.Stored[0], &stored); err != nil || !reflect.DeepEqual(got, stored) {
				t.Errorf("%s: GET %v, stored %v", tc.kind, got, stored)
			}
			var list []map[string]any
			admin.want(200, "GET", url, nil, &list)
			if !containsID(list, id) {
				t.Errorf("%s %d not listed: %v", tc.kind, id, list)
			}
			// The path names the entity, whatever id the body carries.
			upd := map[string]any{"id": 999999}
			for k, v := range tc.update {
				upd[k] = v
			}
			admin.want(200, "PUT", fmt.Sprintf("%s/%d", url, id), js(upd), &w)
			if w.Changes != 1 {
				t.Errorf("%s update: %+v", tc.kind, w)
			}
			admin.want(200, "GET", fmt.Sprintf("%s/%d", url, id), nil, &got)
			if fmt.Sprint(got[tc.field]) != fmt.Sprint(tc.update[tc.field]) || got["id"] != float64(id) {
				t.Errorf("%s after update: %v, want %s = %v", tc.kind, got, tc.field, tc.update[tc.field])
			}
		}
		for i := len(tests) - 1; i >= 0; i-- {
			kind := tests[i].kind
			url := fmt.Sprintf("%s/api/v1/catalog/%s/%d", base, kind, ids[kind])
			var w writeResult
			admin.want(200, "DELETE", url, nil, &w)
			if w.Changes != 1 {
				t.Errorf("delete %s: %+v", kind, w)
			}
			admin.want(404, "GET", url, nil, nil)
			admin.want(404, "DELETE", url, nil, nil)
		}
	})

	t.Run("catalog refusals", func(t *testing.T) {
		cat := base + "/api/v1/catalog/"
		tests := []struct {
			name, method, path string
			body               []byte
			code               int
			msg                string
		}{
			{"duplicate namespace", "POST", "contract", js(map[string]any{"namespace": strings.ToUpper(nsTest)}), 409, "already used"},
			{"overlapping route", "POST", "route", js(map[string]any{"logicalAddressId": laID, "contractId": conID, "callAddressId": addrID, "from": "2050-01-01", "to": "2050-12-31"}), 409, "overlaps"},
			{"overlapping authorization", "POST", "authorization", js(map[string]any{"consumerId": consID, "contractId": conID, "logicalAddressId": laID, "agreement": "I9", "from": "2050-01-01", "to": "2050-12-31"}), 409, "overlaps"},
			{"reference to a missing entity", "POST", "authorization", js(map[string]any{"consumerId": 999, "contractId": conID, "logicalAddressId": laID, "agreement": "I9", "from": "2050-01-01", "to": "2050-12-31"}), 404, "does not exist"},
			{"invalid HSA-ID", "POST", "component", js(map[string]any{"hsaId": "not valid"}), 422, "TAK does not allow"},
			{"reversed period", "POST", "route", js(map[string]any{"logicalAddressId": laID, "contractId": conID, "callAddressId": addrID, "from": "1999-01-01", "to": "1990-12-31"}), 422, "is after"},
			{"body not JSON", "POST", "logicaladdress", []byte("hsaId=X"), 400, "entity JSON"},
			{"update body not JSON", "PUT", fmt.Sprintf("contract/%d", conID), []byte("nope"), 400, "entity JSON"},
			{"update of a missing id", "PUT", "contract/4242", js(map[string]any{"namespace": "urn:x:1"}), 404, "does not exist"},
			{"delete in use", "DELETE", fmt.Sprintf("contract/%d", conID), nil, 409, "is used by"},
			{"delete of a missing id", "DELETE", "logicaladdress/4242", nil, 404, "does not exist"},
			{"unknown kind", "GET", "widget", nil, 404, "unknown kind"},
			{"unknown kind write", "POST", "widget", js(map[string]any{}), 404, "unknown kind"},
			{"id not a number", "GET", "contract/abc", nil, 400, "not a number"},
			{"missing entity", "GET", "route/4242", nil, 404, "does not exist"},
		}
		before := listing(t, admin, base)
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				code, b := admin.do(tc.method, cat+tc.path, tc.body)
				if code != tc.code || !strings.Contains(string(b), tc.msg) {
					t.Errorf("HTTP %d %s, want %d mentioning %q", code, b, tc.code, tc.msg)
				}
			})
		}
		if after := listing(t, admin, base); !reflect.DeepEqual(after, before) {
			t.Error("a refused change altered the catalog")
		}
	})

	t.Run("actor header from an operator is ignored", func(t *testing.T) {
		var w writeResult
		admin.want(200, "POST", base+"/api/v1/catalog/rivprofile", js(map[string]string{"name": "RIVTABP20"}), &w)
		code, b := admin.do("POST", base+"/api/v1/catalog/logicaladdress", js(map[string]string{"hsaId": "SE0000000006-SPOOF"}), "X-Vaxel-Actor", "mallory")
		if code != 200 {
			t.Fatalf("HTTP %d %s", code, b)
		}
		tok := newClient(t, p, "", testToken)
		tok.want(200, "POST", base+"/api/v1/catalog/logicaladdress", js(map[string]string{"hsaId": "SE0000000007-TOKEN"}), &w)
		var h []changeRecord
		admin.want(200, "GET", base+"/api/v1/versions?limit=2", nil, &h)
		if len(h) != 2 || h[1].Actor != adminID || h[0].Actor != "token" {
			t.Errorf("versions %+v, want the token write by token and the one before by %s", h, adminID)
		}
	})

	var orderSeq uint64
	t.Run("orders", func(t *testing.T) {
		order := readFile(t, tdata+"bestallning-test-simple.json")
		var w writeResult
		admin.want(200, "POST", base+"/api/v1/orders?comment=ticket+42", order, &w)
		orderSeq = w.Version
		want := "Nyskapad: TEST-001 - " + nsOrder + " - PROD-001 - RIVTABP21 - https://test.se (2022-12-14 - 2122-12-14)"
		if !strings.Contains(w.Report, want) || !strings.HasPrefix(w.Report, "Plattform: SKLTP-TEST\n") || w.Changes != 7 {
			t.Errorf("order answer %+v, want a report with %q", w, want)
		}
		var h []changeRecord
		admin.want(200, "GET", base+"/api/v1/versions?limit=1", nil, &h)
		if h[0].Seq != orderSeq || h[0].Source != "order" || h[0].Actor != adminID || h[0].Comment != "ticket 42" {
			t.Errorf("order version %+v", h[0])
		}
		// Another platform's order, pasted with text around it as the order
		// tool produces it: parsed, then refused with TAK's text.
		other := append([]byte("Beställning:\n"), bytes.Replace(order, []byte(testPlatform), []byte("NTJP-PROD"), 1)...)
		other = append(other, "\n-- end --\n"...)
		admin.want(422, "POST", base+"/api/v1/orders", other, &w)
		if len(w.Errors) != 1 || !strings.Contains(w.Errors[0], "Beställningen avser plattform NTJP-PROD") || w.Version != orderSeq {
			t.Errorf("other platform's order: %+v", w)
		}
		code, b := admin.do("POST", base+"/api/v1/orders", []byte("no order here"))
		if code != 400 || !strings.Contains(string(b), "does not contain JSON object") {
			t.Errorf("not an order: HTTP %d %s", code, b)
		}
		code, b = admin.do("POST", base+"/api/v1/orders", []byte(`{"plattform":"SKLTP-TEST","unknown":1}`))
		if code != 422 {
			t.Errorf("order with an unknown field: HTTP %d %s", code, b)
		}
	})

	t.Run("explain", func(t *testing.T) {
		explain := func(consumer, ns, la string) explanation {
			var e explanation
			admin.want(200, "GET", fmt.Sprintf("%s/api/v1/explain?consumer=%s&contract=%s&logicalAddress=%s", base, consumer, ns, la), nil, &e)
			return e
		}
		e := explain("KONS-001", nsOrder, "TEST-001")
		if e.Outcome != "routed" || e.URL != "https://test.se" || e.Profile != "RIVTABP21" || e.Producer != "PROD-001" || e.RouteTrace != "TEST-001" || e.AuthorizationTrace == "" {
			t.Errorf("explain %+v", e)
		}
		if e.ProducerTimeoutMS != 29000 {
			t.Errorf("producer timeout %d ms, want the built-in 29000", e.ProducerTimeoutMS)
		}
		if e := explain("PROD-001", nsOrder, "TEST-001"); e.Outcome != "VP007" || !strings.Contains(e.AuthorizationTrace, "TEST-001") {
			t.Errorf("unauthorized consumer: %+v", e)
		}
		if e := explain("KONS-001", nsOrder, "NOWHERE-1"); e.Outcome != "VP004" || !strings.Contains(e.RouteTrace, "NOWHERE-1") || !strings.Contains(e.RouteTrace, "*") {
			t.Errorf("unknown address: %+v", e)
		}
		code, b := admin.do("GET", base+"/api/v1/explain?consumer=X", nil)
		if code != 400 || !strings.Contains(string(b), "needs contract and logicalAddress") {
			t.Errorf("explain without parameters: HTTP %d %s", code, b)
		}
	})

	t.Run("hsa tree", func(t *testing.T) {
		var w writeResult
		admin.want(200, "PUT", base+"/api/v1/hsa-tree", []byte(hsaFile), &w)
		var e explanation
		admin.want(200, "GET", base+"/api/v1/explain?consumer=KONS-001&contract="+nsOrder+"&logicalAddress=TEST-001-CHILD", nil, &e)
		if e.Outcome != "routed" || e.RouteTrace != "TEST-001-CHILD,(parent),TEST-001" {
			t.Errorf("explain through the tree: %+v", e)
		}
		var sum struct {
			HSAUnits int `json:"hsaUnits"`
		}
		admin.want(200, "GET", base+"/api/v1/catalog", nil, &sum)
		if sum.HSAUnits < 2 {
			t.Errorf("summary holds %d HSA units", sum.HSAUnits)
		}
		var h []changeRecord
		admin.want(200, "GET", base+"/api/v1/versions?limit=1", nil, &h)
		if h[0].Source != "hsa" || h[0].Actor != adminID {
			t.Errorf("version %+v", h[0])
		}
		dup := strings.Replace(hsaFile, "ou=Child,ou=Test", "ou=Test", 1)
		if code, b := admin.do("PUT", base+"/api/v1/hsa-tree", []byte(dup)); code != 400 || !strings.Contains(string(b), "DN") {
			t.Errorf("duplicate DN: HTTP %d %s", code, b)
		}
		if code, b := admin.do("PUT", base+"/api/v1/hsa-tree", []byte("<hsaUnits><hsaUnit>")); code != 400 {
			t.Errorf("broken XML: HTTP %d %s", code, b)
		}
	})

	t.Run("timeouts", func(t *testing.T) {
		var w writeResult
		admin.want(200, "PUT", base+"/api/v1/timeouts", js([]map[string]any{
			{"tjanstekontrakt": "default_timeouts", "routetimeout": 30000, "producertimeout": 25000},
			{"tjanstekontrakt": nsOrder, "producertimeout": 1234},
		}), &w)
		var e explanation
		admin.want(200, "GET", base+"/api/v1/explain?consumer=KONS-001&contract="+nsOrder+"&logicalAddress=TEST-001", nil, &e)
		if e.ProducerTimeoutMS != 1234 {
			t.Errorf("producer timeout %d ms, want 1234", e.ProducerTimeoutMS)
		}
		admin.want(200, "GET", base+"/api/v1/explain?consumer=SE0000000002-CONS&contract="+nsTest+"&logicalAddress=SE0000000003-LA", nil, &e)
		if e.ProducerTimeoutMS != 25000 || e.Outcome != "routed" {
			t.Errorf("default timeout: %+v", e)
		}
		if code, b := admin.do("PUT", base+"/api/v1/timeouts", js([]map[string]any{{"tjanstekontrakt": nsOrder, "producertimeout": 0}})); code != 400 {
			t.Errorf("zero timeout: HTTP %d %s", code, b)
		}
		if code, b := admin.do("PUT", base+"/api/v1/timeouts", []byte(`{"not":"an array"}`)); code != 400 {
			t.Errorf("not an array: HTTP %d %s", code, b)
		}
	})

	t.Run("versions and diff", func(t *testing.T) {
		var all []changeRecord
		admin.want(200, "GET", base+"/api/v1/versions", nil, &all)
		if len(all) < 10 || all[0].Source != "timeouts" || all[1].Source != "hsa" {
			t.Fatalf("versions %+v", all)
		}
		for i := 1; i < len(all); i++ {
			if all[i].Seq != all[i-1].Seq-1 {
				t.Errorf("versions not newest first: %+v", all)
				break
			}
		}
		var two []changeRecord
		admin.want(200, "GET", base+"/api/v1/versions?limit=2", nil, &two)
		if !reflect.DeepEqual(two, all[:2]) {
			t.Errorf("limit=2: %+v", two)
		}
		var v struct {
			Record   changeRecord     `json:"record"`
			Delta    []map[string]any `json:"delta"`
			Complete bool             `json:"complete"`
		}
		admin.want(200, "GET", fmt.Sprintf("%s/api/v1/versions/%d", base, orderSeq), nil, &v)
		if v.Record.Seq != orderSeq || v.Record.Source != "order" || !v.Complete || len(v.Delta) != 7 {
			t.Errorf("order version: %+v", v)
		}
		for _, d := range v.Delta {
			if d["op"] != "create" || d["after"] == nil {
				t.Errorf("order delta entry %v", d)
			}
		}
		admin.want(404, "GET", base+"/api/v1/versions/99999", nil, nil)
		admin.want(400, "GET", base+"/api/v1/versions/latest", nil, nil)

		var diff []map[string]any
		admin.want(200, "GET", fmt.Sprintf("%s/api/v1/diff?from=%d&to=%d", base, orderSeq-1, orderSeq), nil, &diff)
		if !reflect.DeepEqual(diff, v.Delta) {
			t.Errorf("diff over the order %v, want its delta", diff)
		}
		admin.want(200, "GET", fmt.Sprintf("%s/api/v1/diff?from=%d&to=%d", base, 0, all[0].Seq), nil, &diff)
		if len(diff) < 8+7 {
			t.Errorf("diff over everything: %d changes", len(diff))
		}
		for _, q := range []string{"from=3", "from=x&to=4", fmt.Sprintf("from=4&to=%d", all[0].Seq+5), "from=5&to=4"} {
			if code, b := admin.do("GET", base+"/api/v1/diff?"+q, nil); code != 400 {
				t.Errorf("diff?%s: HTTP %d %s", q, code, b)
			}
		}
	})

	t.Run("rollback", func(t *testing.T) {
		before := listing(t, admin, base)
		// Add, then undo.
		var w writeResult
		admin.want(200, "POST", base+"/api/v1/catalog/logicaladdress", js(map[string]string{"hsaId": "SE0000000008-UNDO"}), &w)
		admin.want(200, "PUT", fmt.Sprintf("%s/api/v1/catalog/contract/%d", base, conID), js(map[string]any{"namespace": nsTest, "major": 1, "description": "to be undone"}), &w)
		undoTo := w.Version - 2
		admin.want(200, "POST", fmt.Sprintf("%s/api/v1/rollback?to=%d&comment=oops", base, undoTo), nil, &w)
		if w.Changes != 2 || w.Version != undoTo+3 {
			t.Errorf("rollback answer %+v", w)
		}
		if after := listing(t, admin, base); !reflect.DeepEqual(after, before) {
			t.Errorf("rollback did not restore the catalog:\n%s\nwant\n%s", after["logicaladdress"], before["logicaladdress"])
		}
		var h []changeRecord
		admin.want(200, "GET", base+"/api/v1/versions?limit=1", nil, &h)
		if h[0].Source != "rollback" || h[0].Actor != adminID || h[0].Comment != "oops" {
			t.Errorf("rollback version %+v", h[0])
		}
		// Back past the order: its route goes again.
		admin.want(200, "POST", fmt.Sprintf("%s/api/v1/rollback?to=%d", base, orderSeq-1), nil, &w)
		var e explanation
		admin.want(200, "GET", base+"/api/v1/explain?consumer=KONS-001&contract="+nsOrder+"&logicalAddress=TEST-001", nil, &e)
		if e.Outcome != "VP004" {
			t.Errorf("the order's route survived the rollback: %+v", e)
		}
		if code, b := admin.do("POST", base+"/api/v1/rollback?to=99999", nil); code != 422 || !strings.Contains(string(b), "newest version") {
			t.Errorf("rollback to the future: HTTP %d %s", code, b)
		}
		if code, b := admin.do("POST", base+"/api/v1/rollback", nil); code != 400 {
			t.Errorf("rollback without a version: HTTP %d %s", code, b)
		}
	})

	t.Run("raft", func(t *testing.T) {
		var r struct {
			Servers []struct {
				ID      string `json:"id"`
				Address string `json:"address"`
				Voter   bool   `json:"voter"`
				Leader  bool   `json:"leader"`
			} `json:"servers"`
			Stats map[string]string `json:"stats"`
		}
		admin.want(200, "GET", base+"/api/v1/raft", nil, &r)
		if len(r.Servers) != 1 || r.Servers[0].ID != name || !r.Servers[0].Voter || !r.Servers[0].Leader || r.Servers[0].Address != n.Store().Addr() {
			t.Errorf("servers %+v", r.Servers)
		}
		if r.Stats["state"] != "Leader" || r.Stats["last_log_index"] == "" {
			t.Errorf("stats %v", r.Stats)
		}
	})

	t.Run("resetcache", func(t *testing.T) {
		for _, m := range []string{"GET", "POST"} {
			code, b := admin.do(m, base+"/resetcache", nil)
			if code != 200 || !strings.Contains(string(b), "Init done, was successful: true") || !strings.Contains(string(b), "loaded number of virtualizations: 1") {
				t.Errorf("%s /resetcache: HTTP %d %s", m, code, b)
			}
		}
	})

	t.Run("import and export", func(t *testing.T) {
		var first map[string]json.RawMessage
		for _, file := range []string{takdumpExport, takdumpCoop} {
			var w writeResult
			admin.want(200, "POST", base+"/api/v1/import?comment="+strings.ReplaceAll(file, " ", "+"), readFile(t, tdata+file), &w)
			if w.Changes != 12 {
				t.Errorf("%s: import %+v, want 12 entities", file, w)
			}
			imported := listing(t, admin, base)
			if first == nil {
				first = imported
			} else if !reflect.DeepEqual(imported, first) {
				// Both files hold the same catalog, in TAK's two spellings.
				t.Errorf("%s imports a different catalog than %s", file, takdumpExport)
			}
			code, dump, hdr, err := admin.try("GET", base+"/api/v1/export", nil)
			if err != nil || code != 200 {
				t.Fatalf("export: HTTP %d %v", code, err)
			}
			if cd := hdr.Get("Content-Disposition"); cd != `attachment; filename="takdump_skltp-test.json"` {
				t.Errorf("Content-Disposition %q", cd)
			}
			var doc struct {
				FormatVersion string                     `json:"formatVersion"`
				Utforare      string                     `json:"utforare"`
				Data          map[string]json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal(dump, &doc); err != nil || doc.FormatVersion != "1" || doc.Utforare != adminID || len(doc.Data) == 0 {
				t.Errorf("export: %v %s", err, dump)
			}
			// The export imports back to the same catalog.
			admin.want(200, "POST", base+"/api/v1/import", dump, &w)
			if again := listing(t, admin, base); !reflect.DeepEqual(again, imported) {
				for k := range imported {
					if !bytes.Equal(again[k], imported[k]) {
						t.Errorf("%s: %s after the round trip, want %s", k, again[k], imported[k])
					}
				}
			}
		}
		var h []changeRecord
		admin.want(200, "GET", base+"/api/v1/versions?limit=1", nil, &h)
		if h[0].Source != "import" || h[0].Actor != adminID || h[0].HasDelta {
			t.Errorf("import version %+v", h[0])
		}
		var e explanation
		admin.want(200, "GET", base+"/api/v1/explain?consumer=VS-1&contract=urn:riv:itintegration:engagementindex:UpdateResponder:1&logicalAddress=5565594230", nil, &e)
		if e.Outcome != "routed" || e.URL != "http://ine-tit-app05.sth.basefarm.net:8081/skltp-ei/update-service/v1" {
			t.Errorf("imported route: %+v", e)
		}
		if code, b := admin.do("POST", base+"/api/v1/import", []byte("not json")); code != 400 {
			t.Errorf("import of non-JSON: HTTP %d %s", code, b)
		}
		before := listing(t, admin, base)
		if code, b := admin.do("POST", base+"/api/v1/import", []byte(`{"formatVersion":"1","data":{"vagval":[{"id":1,"relationships":{"anropsadress":5}}]}}`)); code != 422 {
			t.Errorf("import of a broken dump: HTTP %d %s", code, b)
		}
		if after := listing(t, admin, base); !reflect.DeepEqual(after, before) {
			t.Error("a refused import changed the catalog")
		}
	})
}

func containsID(list []map[string]any, id int64) bool {
	for _, e := range list {
		if e["id"] == float64(id) {
			return true
		}
	}
	return false
}

// TestAdminWriteForwarding: on a three-node platform, writes sent to a
// follower's admin API reach the leader, keep the operator as their actor,
// and show on every node.
func TestAdminWriteForwarding(t *testing.T) {
	p := newTestPKI(t)
	names := []string{"n1", "n2", "n3"}
	for _, nm := range names {
		p.issue(t, nm, "")
	}
	nodes := startPlatform(t, p, names)
	var leader *testNode
	var followers []*testNode
	waitFor(t, "a leader known to every node", 15*time.Second, func() bool {
		leader, followers = nil, nil
		for _, n := range nodes {
			if id, _ := n.Store().Leader(); id == "" {
				return false
			}
			if n.Store().IsLeader() {
				leader = n
			} else {
				followers = append(followers, n)
			}
		}
		return leader != nil && len(followers) == 2
	})
	f := followers[0]
	fbase := "https://" + f.AdminAddr()
	admin := newClient(t, p, adminID, "")
	t.Logf("leader %s, writing through %s", leader.name, f.name)

	var w writeResult
	admin.want(200, "POST", fbase+"/api/v1/catalog/rivprofile?comment=via+follower", js(map[string]string{"name": "RIVTABP21"}), &w)
	if w.Version != 1 || w.storedID(t) != 1 {
		t.Errorf("forwarded create: %+v", w)
	}
	admin.want(200, "POST", fbase+"/api/v1/catalog/contract", js(map[string]any{"namespace": nsTest}), &w)
	conID := w.storedID(t)
	admin.want(200, "PUT", fmt.Sprintf("%s/api/v1/catalog/contract/%d", fbase, conID), js(map[string]any{"namespace": nsTest, "description": "updated via follower"}), &w)
	// A refusal comes back through the follower with the leader's status.
	if code, b := admin.do("POST", fbase+"/api/v1/catalog/contract", js(map[string]any{"namespace": nsTest})); code != 409 {
		t.Errorf("forwarded duplicate: HTTP %d %s", code, b)
	}
	admin.want(200, "POST", fbase+"/api/v1/orders", readFile(t, tdata+"bestallning-test-simple.json"), &w)
	if !strings.Contains(w.Report, "Nyskapad: TEST-001") {
		t.Errorf("forwarded order: %+v", w)
	}
	admin.want(200, "PUT", fbase+"/api/v1/timeouts", js([]map[string]any{{"tjanstekontrakt": nsOrder, "producertimeout": 4321}}), &w)
	admin.want(200, "PUT", fbase+"/api/v1/hsa-tree", []byte(hsaFile), &w)
	admin.want(200, "POST", fbase+"/api/v1/catalog/logicaladdress", js(map[string]string{"hsaId": "SE0000000009-GONE"}), &w)
	laID := w.storedID(t)
	admin.want(200, "DELETE", fmt.Sprintf("%s/api/v1/catalog/logicaladdress/%d", fbase, laID), nil, &w)
	admin.want(200, "POST", fmt.Sprintf("%s/api/v1/rollback?to=%d", fbase, w.Version-2), nil, &w) // undo the create and delete
	// An operator cannot name another actor, on a follower either (there
	// the header must not pass for an already forwarded write).
	if code, b := admin.do("POST", fbase+"/api/v1/catalog/logicaladdress", js(map[string]string{"hsaId": "SE0000000012-SPOOF"}), "X-Vaxel-Actor", "mallory"); code != 200 {
		t.Errorf("operator write naming an actor, through a follower: HTTP %d %s", code, b)
	}
	newClient(t, p, "", testToken).want(200, "POST", fbase+"/api/v1/catalog/component", js(map[string]string{"hsaId": "SE0000000010-TOKEN"}), &w)
	last := w.Version

	// Every node holds every change, with the operator as its actor.
	want := listing(t, admin, "https://"+leader.AdminAddr())
	wantSources := []string{"admin", "admin", "rollback", "admin", "admin", "hsa", "timeouts", "order", "admin", "admin", "admin"}
	for _, n := range nodes {
		nbase := "https://" + n.AdminAddr()
		waitFor(t, n.name+" has every change", 10*time.Second, func() bool { return n.Catalog().Seq() == last })
		if got := listing(t, admin, nbase); !reflect.DeepEqual(got, want) {
			t.Errorf("%s holds a different catalog than the leader", n.name)
		}
		var h []changeRecord
		admin.want(200, "GET", nbase+"/api/v1/versions", nil, &h)
		if len(h) != len(wantSources) {
			t.Fatalf("%s: versions %+v", n.name, h)
		}
		for i, r := range h {
			wantActor := adminID
			if i == 0 {
				wantActor = "token"
			}
			if r.Actor != wantActor || r.Source != wantSources[i] {
				t.Errorf("%s: version %d %+v, want actor %s source %s", n.name, r.Seq, r, wantActor, wantSources[i])
			}
		}
		if h[len(h)-1].Comment != "via follower" {
			t.Errorf("%s: the comment was lost on the way: %+v", n.name, h[len(h)-1])
		}
		var e explanation
		admin.want(200, "GET", nbase+"/api/v1/explain?consumer=KONS-001&contract="+nsOrder+"&logicalAddress=TEST-001-CHILD", nil, &e)
		if e.Outcome != "routed" || e.ProducerTimeoutMS != 4321 {
			t.Errorf("%s: explain %+v", n.name, e)
		}
		var ready struct {
			Ready bool `json:"ready"`
		}
		newClient(t, p, "", "").want(200, "GET", nbase+"/ready", nil, &ready)
	}
	// A follower does not forward what a leader forwarded to it: a node
	// naming an actor to a non-leader gets 503, never a forwarding loop.
	nodeClient := newClient(t, p, f.name, "")
	code, b := nodeClient.do("POST", "https://"+followers[1].AdminAddr()+"/api/v1/catalog/logicaladdress", js(map[string]string{"hsaId": "SE0000000011-LOOP"}), "X-Vaxel-Actor", adminID)
	if code != http.StatusServiceUnavailable || !strings.Contains(string(b), "non-leader") {
		t.Errorf("forwarded write to a follower: HTTP %d %s", code, b)
	}
}
