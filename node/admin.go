package node

import (
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vaxel/vaxel/catalog"
	"github.com/vaxel/vaxel/catalog/command"
	"github.com/vaxel/vaxel/pki"
	"github.com/vaxel/vaxel/router"
	"github.com/vaxel/vaxel/tak"
)

// maxAdminBody bounds an admin request body (a TAK export of a large
// platform is tens of MB; a million-entry one about 300 MB).
const maxAdminBody = 512 << 20

// hdrActor carries the operator's identity when a follower forwards a write
// to the leader; it is believed only from another node of the platform.
const hdrActor = "X-Vaxel-Actor"

type admin struct {
	n     *Node
	srv   *http.Server
	token []byte
	allow map[string]bool
	nodes map[string]bool
	fwd   *http.Client
	// platformCAs verifies that a client certificate is of this platform's
	// CA when the listener also accepts federation CAs (trace queries from
	// other platforms' nodes); nil when it accepts the platform CA only.
	platformCAs *x509.CertPool
	traceClient *http.Client // queries other platforms' nodes (trace.go); nil without federation

	metrics http.Handler   // GET /metrics (metrics.go)
	scrape  scrapeListener // admin.metrics_addr, when set

	// localBusy holds a token per local integrations answer being
	// computed (integrations.go, maxLocalConcurrent).
	localBusy chan struct{}
	// traceBusy holds a token per trace being assembled (trace.go,
	// maxTraceConcurrent).
	traceBusy chan struct{}
}

func newAdmin(n *Node) (*admin, error) {
	var err error
	a := &admin{n: n, allow: map[string]bool{}, nodes: map[string]bool{strings.ToLower(n.cfg.Node.Name): true},
		localBusy: make(chan struct{}, maxLocalConcurrent), traceBusy: make(chan struct{}, maxTraceConcurrent)}
	for _, id := range n.cfg.Admin.Allow {
		a.allow[strings.ToLower(id)] = true
	}
	for _, p := range n.cfg.Raft.Servers {
		a.nodes[strings.ToLower(p.ID)] = true
	}
	if f := n.cfg.Admin.TokenFile; f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("admin token: %w", err)
		}
		if a.token = bytes.TrimSpace(b); len(a.token) < 16 {
			return nil, fmt.Errorf("admin token in %s is shorter than 16 characters; generate a long random one", f)
		}
	}
	cas := []string{n.cfg.TLS.CA}
	if n.fed != nil && len(n.cfg.Federation.CAs) > 0 {
		// Other platforms' nodes query hop records (GET /api/v1/trace/…)
		// with their node certificates; auth keeps every other endpoint
		// to certificates of the platform CA.
		cas = append(cas, n.cfg.Federation.CAs...)
		if a.platformCAs, err = pki.CertPool(n.cfg.TLS.CA); err != nil {
			return nil, fmt.Errorf("admin TLS: %w", err)
		}
		a.traceClient = newTraceClient(n.fedTLS)
	}
	tc, err := pki.ServerTLSConfig(n.cfg.TLS.Cert, n.cfg.TLS.Key, cas, false)
	if err != nil {
		return nil, fmt.Errorf("admin TLS: %w", err)
	}
	if a.metrics, err = newMetricsHandler(n); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	a.routes(mux)
	a.srv = &http.Server{
		Handler:           a.auth(mux),
		TLSConfig:         tc,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute,
		WriteTimeout:      5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	// A dead leader's address must fail fast (the write is then retried
	// on the new leader); an answer may take long (a large import).
	dialer := &net.Dialer{Timeout: 2 * time.Second}
	a.fwd = &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{TLSClientConfig: n.nodeTLS, DialContext: dialer.DialContext, TLSHandshakeTimeout: 5 * time.Second}}
	return a, nil
}

func (a *admin) run(ctx context.Context) error {
	stopScrape, err := a.startScrape()
	if err != nil {
		return err
	}
	defer stopScrape()
	ln, err := net.Listen("tcp", a.n.cfg.Admin.Addr)
	if err != nil {
		return fmt.Errorf("listen admin %s: %w", a.n.cfg.Admin.Addr, err)
	}
	a.n.mu.Lock()
	a.n.adminAddr = ln.Addr().String()
	a.n.mu.Unlock()
	errc := make(chan error, 1)
	go func() { errc <- a.srv.Serve(tls.NewListener(ln, a.srv.TLSConfig)) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.srv.Shutdown(sctx); err != nil {
			return fmt.Errorf("stop admin API: %w", err)
		}
		return nil
	case err := <-errc:
		return err
	}
}

type ctxKey struct{}

// auth admits the platform's nodes, allow-listed operator certificates and
// the bearer token. Health and readiness are open (probes carry no
// credentials), everything else needs an identity, which becomes the actor of
// any change.
func (a *admin) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/health", "/ready":
			next.ServeHTTP(w, r)
			return
		}
		actor, certID, fromNode := "", "", false
		verified := r.TLS != nil && len(r.TLS.PeerCertificates) > 0 && len(r.TLS.VerifiedChains) > 0
		if verified && verifiedBy(a.platformCAs, r.TLS) {
			cert := r.TLS.PeerCertificates[0]
			id, ok := router.SenderIDFromCert(cert, nil)
			if !ok {
				id = cert.Subject.CommonName
			}
			certID = id
			switch {
			case a.nodes[strings.ToLower(cert.Subject.CommonName)] || a.nodes[strings.ToLower(id)] || a.n.isPlatformNode(cert.Subject.CommonName):
				actor, fromNode = "node:"+cert.Subject.CommonName, true
				if fwd := r.Header.Get(hdrActor); fwd != "" {
					actor = fwd
				}
			case a.allow[strings.ToLower(id)]:
				actor = id
			}
		}
		if actor == "" && verified && r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, tracePath) && r.URL.Query().Get("local") == "1" {
			// Another platform's node assembling a trace: this node's hop
			// records only (local=1), never an assembly of its own.
			if name, ok := a.n.federationPeer(r.TLS.PeerCertificates[0]); ok {
				actor = "federation:" + name
			}
		}
		if actor == "" && verified && r.Method == http.MethodGet && r.URL.Path == integrationsPath && r.URL.Query().Get("local") == "1" {
			// Another platform's node building the integrations view: its
			// own edges only (local=1), never the fan-out to the federation.
			if name, ok := a.n.federationPeer(r.TLS.PeerCertificates[0]); ok {
				actor = "federation:" + name
			}
		}
		if actor == "" && len(a.token) > 0 {
			if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok &&
				subtle.ConstantTimeCompare([]byte(tok), a.token) == 1 {
				actor = "token"
			}
		}
		if actor == "" && certID != "" {
			// Authenticated by the platform CA, but not allowed.
			httpError(w, http.StatusForbidden, fmt.Errorf("admin API: certificate %s is not on admin.allow; add its HSA-ID (or CN) there, or use the bearer token", certID))
			return
		}
		if actor == "" {
			httpError(w, http.StatusUnauthorized, errors.New("admin API: present a client certificate on admin.allow (or of a platform node), or the bearer token"))
			return
		}
		if !fromNode {
			// Believed only from a node; from anyone else it would make a
			// follower refuse the write as already forwarded (see write).
			r.Header.Del(hdrActor)
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, actor)))
	})
}

func actorOf(r *http.Request) string { s, _ := r.Context().Value(ctxKey{}).(string); return s }

func (a *admin) routes(m *http.ServeMux) {
	m.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]string{"status": "UP"}) })
	m.HandleFunc("GET /ready", func(w http.ResponseWriter, r *http.Request) {
		ok, why := a.n.Readiness()
		code := http.StatusOK
		if !ok {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, map[string]any{"ready": ok, "reason": why})
	})
	m.HandleFunc("GET /status", a.status)
	m.HandleFunc("GET /resetcache", a.resetCache)
	m.HandleFunc("POST /resetcache", a.resetCache)
	m.HandleFunc("GET /api/v1/catalog", a.summary)
	m.HandleFunc("GET /api/v1/catalog/{kind}", a.list)
	m.HandleFunc("GET /api/v1/catalog/{kind}/{id}", a.get)
	m.HandleFunc("POST /api/v1/catalog/{kind}", a.put)
	m.HandleFunc("PUT /api/v1/catalog/{kind}/{id}", a.put)
	m.HandleFunc("DELETE /api/v1/catalog/{kind}/{id}", a.del)
	m.HandleFunc("POST /api/v1/orders", a.order)
	m.HandleFunc("POST /api/v1/import", a.importDump)
	m.HandleFunc("GET /api/v1/export", a.export)
	m.HandleFunc("GET /api/v1/versions", a.versions)
	m.HandleFunc("GET /api/v1/versions/{seq}", a.version)
	m.HandleFunc("GET /api/v1/diff", a.diff)
	m.HandleFunc("POST /api/v1/rollback", a.rollback)
	m.HandleFunc("GET /api/v1/explain", a.explain)
	m.HandleFunc("PUT /api/v1/hsa-tree", a.hsaTree)
	m.HandleFunc("PUT /api/v1/timeouts", a.timeouts)
	m.HandleFunc("GET /api/v1/raft", a.raft)
	// Behind auth like everything but /health and /ready: scrapers present
	// a certificate on admin.allow or the bearer token (or use
	// admin.metrics_addr).
	m.Handle("GET /metrics", a.metrics)
	m.HandleFunc("GET /api/v1/members", a.members)
	m.HandleFunc("GET /api/v1/federation", a.federationView)
	m.HandleFunc("GET /api/v1/trace/{id}", a.trace)
	m.HandleFunc("GET "+integrationsPath, a.integrations)
	// Go's profiles, behind the same admin authentication: how an operator
	// (and scripts/bench PROFILE=1) sees where a node's CPU and memory go
	// under real traffic. A CPU profile is bounded by the server's
	// WriteTimeout (pprof refuses a longer one).
	m.HandleFunc("GET /debug/pprof/", pprof.Index)
	m.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	m.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	m.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func httpError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func (a *admin) status(w http.ResponseWriter, r *http.Request) {
	c := a.n.store.Current()
	up := time.Since(a.n.started)
	rs := a.n.router.Stats()
	https, http := a.n.router.Addrs()
	eps := []string{"https://" + https + "/vp"}
	if http != "" {
		eps = append(eps, "http://"+http+"/vp")
	}
	ready, _ := a.n.Readiness()
	writeJSON(w, 200, map[string]any{
		"Name":                "vaxel",
		"Version":             Version,
		"ServiceStatus":       "Started",
		"Uptime":              fmt.Sprintf("%d days, %d hours, %d minutes, %d seconds", int(up.Hours())/24, int(up.Hours())%24, int(up.Minutes())%60, int(up.Seconds())%60),
		"TakCacheInitialized": strconv.FormatBool(ready),
		"TakCacheResetInfo":   fmt.Sprintf("Version:%d vagval:%d behorigheter:%d", c.Seq(), c.Counts()[tak.KindRoute], c.Counts()[tak.KindAuthorization]),
		"HsaCacheInitialized": "true",
		"HsaCacheResetInfo":   fmt.Sprintf("newNum:%d", c.HSATree().Len()),
		"Endpoints":           eps,
		"Calls":               rs.Calls.Load(),
		"Faults":              rs.Faults.Load(),
		"RaftState":           a.n.store.Stats()["state"],
	})
}

// resetCache answers SKLTP's TAK reset URL, which tak-monitor and operators'
// scripts call: the catalog is live, so there is nothing to reload; the text
// says what the node serves, in the reference's line format.
func (a *admin) resetCache(w http.ResponseWriter, r *http.Request) {
	c := a.n.store.Current()
	host, _ := os.Hostname()
	ok := !c.Empty()
	w.Header().Set("Content-Type", "text/html;")
	fmt.Fprintf(w, "<br>Host: %s<br>Time: %s<br>Catalog is replicated live (version %d); nothing to reload.<br>Init TAK cache loaded number of permissions: %d<br>Init TAK cache loaded number of virtualizations: %d<br>Init done, was successful: %t",
		host, time.Now().Format("2006-01-02 15:04:05"), c.Seq(), c.Counts()[tak.KindAuthorization], c.Counts()[tak.KindRoute], ok)
}

func (a *admin) summary(w http.ResponseWriter, r *http.Request) {
	c := a.n.store.Current()
	counts := map[string]int{}
	for k, v := range c.Counts() {
		counts[k.String()] = v
	}
	writeJSON(w, 200, map[string]any{"version": c.Seq(), "counts": counts, "hsaUnits": c.HSATree().Len()})
}

func kindOf(w http.ResponseWriter, r *http.Request) (tak.Kind, bool) {
	k, ok := tak.ParseKind(r.PathValue("kind"))
	if !ok {
		httpError(w, 404, fmt.Errorf("unknown kind %q; kinds: rivprofile, contract, component, logicaladdress, calladdress, route, authorization, filter, categorization", r.PathValue("kind")))
	}
	return k, ok
}

func (a *admin) list(w http.ResponseWriter, r *http.Request) {
	k, ok := kindOf(w, r)
	if !ok {
		return
	}
	writeJSON(w, 200, a.n.store.Current().List(k))
}

func (a *admin) get(w http.ResponseWriter, r *http.Request) {
	k, ok := kindOf(w, r)
	if !ok {
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		httpError(w, 400, fmt.Errorf("id %q is not a number", r.PathValue("id")))
		return
	}
	v, ok := a.n.store.Current().Entity(k, id)
	if !ok {
		httpError(w, 404, fmt.Errorf("%s %d does not exist", k, id))
		return
	}
	writeJSON(w, 200, v)
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAdminBody))
	if err != nil {
		httpError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("read request body: %w", err))
		return nil, false
	}
	return b, true
}

func (a *admin) meta(r *http.Request, source string) command.Meta {
	return command.Meta{Actor: actorOf(r), Source: source, Comment: r.URL.Query().Get("comment"), UnixNano: time.Now().UnixNano()}
}

func (a *admin) put(w http.ResponseWriter, r *http.Request) {
	k, ok := kindOf(w, r)
	if !ok {
		return
	}
	b, ok := readBody(w, r)
	if !ok {
		return
	}
	if !json.Valid(b) {
		httpError(w, 400, errors.New("entity JSON: the body is not JSON; send the entity as a JSON object"))
		return
	}
	if id := r.PathValue("id"); id != "" {
		// The path names the entity; make the body agree.
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			httpError(w, 400, fmt.Errorf("entity JSON: %w", err))
			return
		}
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			httpError(w, 400, fmt.Errorf("id %q is not a number", id))
			return
		}
		m["id"] = n
		b, _ = json.Marshal(m)
	}
	a.write(w, r, command.TypeMutate, &command.Mutate{Meta: a.meta(r, "admin"), Ops: []command.Op{{Op: "put", Kind: k.String(), Entity: b}}})
}

func (a *admin) del(w http.ResponseWriter, r *http.Request) {
	k, ok := kindOf(w, r)
	if !ok {
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		httpError(w, 400, fmt.Errorf("id %q is not a number", r.PathValue("id")))
		return
	}
	a.write(w, r, command.TypeMutate, &command.Mutate{Meta: a.meta(r, "admin"), Ops: []command.Op{{Op: "delete", Kind: k.String(), ID: id}}})
}

func (a *admin) order(w http.ResponseWriter, r *http.Request) {
	b, ok := readBody(w, r)
	if !ok {
		return
	}
	if !json.Valid(bytes.TrimSpace(trimToObject(b))) {
		httpError(w, 400, errors.New("Beställning does not contain JSON object"))
		return
	}
	a.write(w, r, command.TypeOrder, &command.Order{Meta: a.meta(r, "order"), Platform: a.n.cfg.Node.Platform, Order: trimToObject(b)})
}

// trimToObject keeps the outermost {...}, as TAK does with pasted orders.
func trimToObject(b []byte) []byte {
	i, j := bytes.IndexByte(b, '{'), bytes.LastIndexByte(b, '}')
	if i < 0 || j < i {
		return b
	}
	return b[i : j+1]
}

func (a *admin) importDump(w http.ResponseWriter, r *http.Request) {
	b, ok := readBody(w, r)
	if !ok {
		return
	}
	if !json.Valid(b) {
		httpError(w, 400, errors.New("import: the body is not JSON; send a TAK export (takdump) file"))
		return
	}
	a.write(w, r, command.TypeImport, &command.Import{Meta: a.meta(r, "import"), Dump: b})
}

func (a *admin) export(w http.ResponseWriter, r *http.Request) {
	c := a.n.store.Current()
	b, err := tak.ExportTakdump(c, tak.ExportMeta{Actor: actorOf(r), Time: time.Now(), Comment: "Export from platform " + a.n.cfg.Node.Platform})
	if err != nil {
		httpError(w, 500, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="takdump_%s.json"`, strings.ToLower(a.n.cfg.Node.Platform)))
	_, _ = w.Write(b)
}

func (a *admin) versions(w http.ResponseWriter, r *http.Request) {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	writeJSON(w, 200, a.n.store.Current().History(limit))
}

func (a *admin) version(w http.ResponseWriter, r *http.Request) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil {
		httpError(w, 400, fmt.Errorf("version %q is not a number", r.PathValue("seq")))
		return
	}
	rec, delta, ok := a.n.store.Current().ChangeDelta(seq)
	if rec.Seq == 0 {
		httpError(w, 404, fmt.Errorf("version %d is not in the history", seq))
		return
	}
	writeJSON(w, 200, map[string]any{"record": rec, "delta": delta, "complete": ok})
}

func (a *admin) diff(w http.ResponseWriter, r *http.Request) {
	from, err1 := strconv.ParseUint(r.URL.Query().Get("from"), 10, 64)
	to, err2 := strconv.ParseUint(r.URL.Query().Get("to"), 10, 64)
	if err1 != nil || err2 != nil {
		httpError(w, 400, errors.New("diff needs from and to version numbers: /api/v1/diff?from=3&to=5"))
		return
	}
	d, err := a.n.store.Current().Diff(from, to)
	if err != nil {
		httpError(w, 400, err)
		return
	}
	writeJSON(w, 200, d)
}

func (a *admin) rollback(w http.ResponseWriter, r *http.Request) {
	to, err := strconv.ParseUint(r.URL.Query().Get("to"), 10, 64)
	if err != nil {
		httpError(w, 400, errors.New("rollback needs the version to return to: /api/v1/rollback?to=3"))
		return
	}
	a.write(w, r, command.TypeRollback, &command.Rollback{Meta: a.meta(r, "rollback"), ToSeq: to})
}

func (a *admin) hsaTree(w http.ResponseWriter, r *http.Request) {
	b, ok := readBody(w, r)
	if !ok {
		return
	}
	units, warnings, err := tak.ParseHSAFile(bytes.NewReader(b))
	if err != nil {
		httpError(w, 400, err)
		return
	}
	tree, err := tak.BuildHSATree(units)
	if err != nil {
		httpError(w, 400, err)
		return
	}
	for _, wmsg := range warnings {
		a.n.log.Warn("HSA file", "warning", wmsg)
	}
	// A follower forwards the file itself to the leader (see forwardBody).
	r.Body = io.NopCloser(bytes.NewReader(b))
	a.write(w, r, command.TypeHSATree, &command.HSATree{Meta: a.meta(r, "hsa"), Edges: tree.Edges()})
}

func (a *admin) timeouts(w http.ResponseWriter, r *http.Request) {
	b, ok := readBody(w, r)
	if !ok {
		return
	}
	t, err := tak.ParseTimeouts(b)
	if err != nil {
		httpError(w, 400, err)
		return
	}
	a.write(w, r, command.TypeTimeouts, &command.Timeouts{Meta: a.meta(r, "timeouts"), Entries: t.Entries})
}

func (a *admin) raft(w http.ResponseWriter, r *http.Request) {
	servers, err := a.n.store.Servers()
	if err != nil {
		httpError(w, 503, err)
		return
	}
	writeJSON(w, 200, map[string]any{"servers": servers, "stats": a.n.store.Stats()})
}

// members lists the platform's gossip members as this node sees them.
func (a *admin) members(w http.ResponseWriter, r *http.Request) {
	type member struct {
		Name     string    `json:"name"`
		State    string    `json:"state"`
		Since    time.Time `json:"since"`
		Gossip   string    `json:"gossip"`
		Platform string    `json:"platform"`
		Router   string    `json:"router"`
		Admin    string    `json:"admin"`
		Raft     string    `json:"raft"`
		HSAID    string    `json:"hsa_id"`
		Version  string    `json:"version"`
		HasState bool      `json:"has_state"`
	}
	out := []member{}
	for _, m := range a.n.Members() {
		out = append(out, member{Name: m.Name, State: m.State.String(), Since: m.Since, Gossip: m.Addr, Platform: m.Meta.Platform,
			Router: m.Meta.RouterAddr, Admin: m.Meta.AdminAddr, Raft: m.Meta.RaftAddr, HSAID: m.Meta.HSAID, Version: m.Meta.Version, HasState: m.Meta.HasState})
	}
	writeJSON(w, 200, map[string]any{"gossip": a.n.pool != nil, "members": out})
}

// explain answers why a consumer's call for a contract to a logical address
// routes where it does, with the reference's lookup traces.
func (a *admin) explain(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	consumer, ns, la := q.Get("consumer"), q.Get("contract"), q.Get("logicalAddress")
	if ns == "" || la == "" {
		httpError(w, 400, errors.New("explain needs contract and logicalAddress (and consumer): /api/v1/explain?consumer=X&contract=urn:...&logicalAddress=Y"))
		return
	}
	writeJSON(w, 200, Explain(a.n.store.Current(), a.n.router, consumer, ns, la, time.Now()))
}

// write applies a change on the leader, forwarding it there from a follower.
func (a *admin) write(w http.ResponseWriter, r *http.Request, typ command.Type, payload any) {
	// During a failover there is briefly no leader, or the known leader is
	// gone. A write that certainly did not reach a leader (none known, or
	// the connection to it could not be made) is retried for up to
	// failoverWait, so the operator sees a delay rather than an error.
	deadline := time.Now().Add(a.n.failoverWait)
	var res *catalog.Result
	var err error
	for {
		res, err = a.n.store.Apply(r.Context(), typ, payload)
		var nl *catalog.NotLeaderError
		if !errors.As(err, &nl) {
			break
		}
		if r.Header.Get(hdrActor) != "" {
			httpError(w, http.StatusServiceUnavailable, fmt.Errorf("forwarded write reached a non-leader: %w", err))
			return
		}
		ferr := a.forward(w, r, payload)
		if ferr == nil {
			return
		}
		if time.Now().After(deadline) {
			httpError(w, ferr.status, ferr.err)
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err != nil {
		httpError(w, http.StatusServiceUnavailable, err)
		return
	}
	// Applied here (this node leads): the router routes by it before the
	// answer goes out.
	a.n.publishCatalog()
	code := http.StatusOK
	out := map[string]any{"version": res.Seq, "changes": res.Applied}
	switch {
	case res.Err != nil:
		code = http.StatusUnprocessableEntity
		// Not found names an entity of an admin change; in an uploaded
		// file (an import) it is a flaw of the file, hence 422.
		if errors.Is(res.Err, tak.ErrNotFound) && typ == command.TypeMutate {
			code = http.StatusNotFound
		} else if errors.Is(res.Err, tak.ErrConflict) || errors.Is(res.Err, tak.ErrInUse) {
			code = http.StatusConflict
		}
		out["error"] = res.Err.Error()
	case len(res.Errors) > 0:
		code = http.StatusUnprocessableEntity
		out["errors"] = res.Errors
	}
	if res.Report != "" {
		out["report"] = res.Report
	}
	if len(res.Stored) > 0 {
		out["stored"] = res.Stored
	}
	writeJSON(w, code, out)
}

// takeToken takes a token from busy, a channel whose capacity bounds some
// costly answers running at once, and returns its release; when none is
// free it answers 503 with Retry-After and busyErr, and reports false.
func takeToken(w http.ResponseWriter, busy chan struct{}, busyErr error) (release func(), ok bool) {
	select {
	case busy <- struct{}{}:
		return func() { <-busy }, true
	default:
		w.Header().Set("Retry-After", "1")
		httpError(w, http.StatusServiceUnavailable, busyErr)
		return nil, false
	}
}

// retryable is a forwarding failure that left the write unsent.
type retryable struct {
	status int
	err    error
}

// forward re-sends the admin request to the leader's admin API with this
// node's certificate, naming the operator in hdrActor, and copies the answer
// back. It returns a retryable failure, having written nothing, when no
// leader is known or its admin API could not be connected to: the write was
// then certainly not applied.
func (a *admin) forward(w http.ResponseWriter, r *http.Request, payload any) *retryable {
	addr, err := a.n.leaderAdmin()
	if err != nil {
		return &retryable{http.StatusServiceUnavailable, err}
	}
	var body []byte
	if r.Body != nil {
		// The body was consumed; rebuild it from what the handler decoded.
		body, err = forwardBody(r, payload)
		if err != nil {
			httpError(w, 500, err)
			return nil
		}
	}
	u := "https://" + addr + r.URL.RequestURI()
	req, err := http.NewRequestWithContext(r.Context(), r.Method, u, bytes.NewReader(body))
	if err != nil {
		httpError(w, 500, err)
		return nil
	}
	req.Header.Set("Content-Type", r.Header.Get("Content-Type"))
	req.Header.Set(hdrActor, actorOf(r))
	resp, err := a.fwd.Do(req)
	if err != nil {
		err = fmt.Errorf("forward to leader %s: %w", addr, err)
		var op *net.OpError
		var dns *net.DNSError
		if errors.As(err, &dns) || errors.As(err, &op) && op.Op == "dial" {
			return &retryable{http.StatusBadGateway, err}
		}
		httpError(w, http.StatusBadGateway, err)
		return nil
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
	return nil
}

// forwardBody re-encodes what a write carried in the form its endpoint reads.
func forwardBody(r *http.Request, payload any) ([]byte, error) {
	switch p := payload.(type) {
	case *command.Mutate:
		if len(p.Ops) == 1 && p.Ops[0].Op == "put" {
			return p.Ops[0].Entity, nil
		}
		return nil, nil
	case *command.Order:
		return p.Order, nil
	case *command.Import:
		return p.Dump, nil
	case *command.Timeouts:
		return json.Marshal(p.Entries)
	case *command.HSATree:
		return io.ReadAll(r.Body) // the file as uploaded, kept by hsaTree
	}
	return nil, nil
}
