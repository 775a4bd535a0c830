package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/vaxel/vaxel/federation"
	"github.com/vaxel/vaxel/router"
)

// Tracing across platforms (federation/DESIGN.md, "Tracing"). Every node
// keeps a hop record per answered call (router/hops.go). GET
// /api/v1/trace/{id}?local=1 returns this node's records for a trace or
// correlation id; without local=1 the node assembles the chain: each of its
// records, followed by the records of the next platform's node it called,
// fetched from that node's admin API with local=1 (the node is found among
// the federation members by its router address), and so on down the chain.

const (
	traceMaxDepth = 10
	traceTimeout  = 5 * time.Second
	tracePath     = "/api/v1/trace/"

	// A peer's answer, the records one assembly keeps, the peers it asks
	// and the problems it lists are bounded: a call's records on one node
	// are a few kB, and a faulty or hostile peer must not make one trace
	// query decode or hold more than that many times over.
	traceMaxAnswer     = 1 << 20
	traceMaxHops       = 1000
	traceMaxQueries    = 64
	traceMaxIncomplete = 100
	// maxTraceConcurrent bounds the assemblies running at once on a node;
	// one asked beyond it answers 503.
	maxTraceConcurrent = 4
	// peerErrorBody bounds how much of a peer's error answer is quoted.
	peerErrorBody = 512
)

// TraceAnswer is the admin API's answer to a trace query.
type TraceAnswer struct {
	ID string `json:"id"`
	// Hops are in chain order: the consumer's side first, each record
	// followed by the records of the node it called.
	Hops []router.HopRecord `json:"hops"`
	// Incomplete says which next hops could not be followed, and why.
	Incomplete []string `json:"incomplete,omitempty"`
}

func (a *admin) trace(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimSpace(r.PathValue("id"))
	if id == "" {
		httpError(w, 400, errors.New("trace needs a trace id or correlation id: /api/v1/trace/ID"))
		return
	}
	local := a.n.router.Hops(id)
	if r.URL.Query().Get("local") == "1" {
		writeJSON(w, 200, TraceAnswer{ID: id, Hops: append([]router.HopRecord{}, local...)})
		return
	}
	if len(local) == 0 {
		httpError(w, 404, fmt.Errorf("no hop record of %s on node %s (records are kept for a limited time and count; query the node that took the call)", id, a.n.cfg.Node.Name))
		return
	}
	release, ok := takeToken(w, a.traceBusy, fmt.Errorf("trace: this node is assembling %d traces already; retry", maxTraceConcurrent))
	if !ok {
		return
	}
	defer release()
	ctx, cancel := context.WithTimeout(r.Context(), traceTimeout)
	defer cancel()
	as := &assembly{seen: map[string]bool{}, out: TraceAnswer{ID: id, Hops: []router.HopRecord{}}}
	a.assemble(ctx, local, 1, as)
	writeJSON(w, 200, as.out)
}

// assembly is one trace query's state as it follows the chain.
type assembly struct {
	seen    map[string]bool
	queries int
	out     TraceAnswer
}

// incomplete notes a next hop not followed; past traceMaxIncomplete notes,
// one last says so.
func (as *assembly) incomplete(format string, args ...any) {
	switch n := len(as.out.Incomplete); {
	case n < traceMaxIncomplete:
		as.out.Incomplete = append(as.out.Incomplete, fmt.Sprintf(format, args...))
	case n == traceMaxIncomplete:
		as.out.Incomplete = append(as.out.Incomplete, "more next hops not followed; the list stops here")
	}
}

func hopKey(h *router.HopRecord) string {
	return h.Platform + "\x00" + h.Node + "\x00" + h.CorrelationID + "\x00" + h.Received.String()
}

// assemble appends recs to as.out, each followed by the chain downstream
// of it.
func (a *admin) assemble(ctx context.Context, recs []router.HopRecord, depth int, as *assembly) {
	for i := range recs {
		h := &recs[i]
		if as.seen[hopKey(h)] {
			continue
		}
		if len(as.out.Hops) >= traceMaxHops {
			as.incomplete("more than %d hop records: the rest are left out", traceMaxHops)
			return
		}
		as.seen[hopKey(h)] = true
		as.out.Hops = append(as.out.Hops, *h)
		if h.NextPlatform == "" || h.NextHop == "" || h.Forwarded.IsZero() {
			continue
		}
		if depth >= traceMaxDepth {
			as.incomplete("%s/%s → %s: chain longer than %d hops, not followed", h.Platform, h.Node, h.NextHop, traceMaxDepth)
			continue
		}
		if as.queries >= traceMaxQueries {
			as.incomplete("%s/%s → %s: %d nodes asked already, not followed", h.Platform, h.Node, h.NextHop, traceMaxQueries)
			continue
		}
		as.queries++
		down, err := a.remoteHops(ctx, h)
		if err != nil {
			as.incomplete("%s/%s → %s: %v", h.Platform, h.Node, h.NextHop, err)
			continue
		}
		a.assemble(ctx, down, depth+1, as)
	}
}

// askPeer GETs pathAndQuery from another platform's node m (its admin
// API, with this node's certificate, as a federation peer) and decodes the
// 200 answer, at most limit bytes, into v. The node must present a
// certificate for the member it advertises: its CN the member's node name
// and its HSA-ID the one the member advertises (a member could advertise
// any admin address; federationPeer applies the same rule the other way).
func (a *admin) askPeer(ctx context.Context, m federation.Member, pathAndQuery string, limit int64, v any) error {
	if a.traceClient == nil {
		return errors.New("federation is off on this node")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+m.Meta.AdminAddr+pathAndQuery, nil)
	if err != nil {
		return fmt.Errorf("query %s: %w", m.Name, err)
	}
	resp, err := a.traceClient.Do(req)
	if err != nil {
		return fmt.Errorf("query %s: %w", m.Name, err)
	}
	defer resp.Body.Close()
	if err := peerIsMember(resp.TLS, m); err != nil {
		return fmt.Errorf("query %s: %w", m.Name, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, peerErrorBody))
		return fmt.Errorf("query %s: %s: %s", m.Name, resp.Status, strings.ToValidUTF8(strings.TrimSpace(string(b)), "?"))
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fmt.Errorf("query %s: %w", m.Name, err)
	}
	if int64(len(b)) > limit {
		return fmt.Errorf("query %s: answer over %d bytes", m.Name, limit)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("query %s: %w", m.Name, err)
	}
	return nil
}

// peerIsMember checks that the server certificate of a peer's answer is
// member m's: CN its node name, HSA-ID the one it advertises.
func peerIsMember(cs *tls.ConnectionState, m federation.Member) error {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return errors.New("no server certificate")
	}
	if leaf := cs.PeerCertificates[0]; !certOfMember(leaf, m.Meta) {
		hsa, _ := router.SenderIDFromCert(leaf, nil)
		return fmt.Errorf("the admin address %s presents the certificate of %q (HSA-ID %q), not of node %s (HSA-ID %q)",
			m.Meta.AdminAddr, leaf.Subject.CommonName, hsa, m.Meta.Node, m.Meta.HSAID)
	}
	return nil
}

// certOfMember reports whether cert is that of the federation member
// advertising md: its CN is the member's node name and its HSA-ID the one
// the member advertises. Both directions of a cross-platform admin query
// apply it (federationPeer, peerIsMember).
func certOfMember(cert *x509.Certificate, md federation.Meta) bool {
	hsa, _ := router.SenderIDFromCert(cert, nil)
	return strings.EqualFold(md.Node, cert.Subject.CommonName) && (md.HSAID == "" || strings.EqualFold(md.HSAID, hsa))
}

// remoteHops fetches the records of the call h made from the node it
// called. Only that node's own records are kept.
func (a *admin) remoteHops(ctx context.Context, h *router.HopRecord) ([]router.HopRecord, error) {
	ms, err := a.n.membersOfRouter(h.NextPlatform, h.NextHop)
	if err != nil {
		return nil, err
	}
	// Several members may advertise the router (a node that came back
	// under a new name; a member advertising another's address): ask each
	// in turn, until one answers for itself (askPeer checks its
	// certificate).
	var errs []error
	for _, m := range ms {
		var ans TraceAnswer
		if err := a.askPeer(ctx, m, tracePath+url.PathEscape(h.TraceID)+"?local=1", traceMaxAnswer, &ans); err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		// The trace id may cover several calls (a consumer reusing its
		// traceparent): keep the one h made, by its correlation id, which
		// travels to the next platform (router.propagate_correlation_https).
		var own, same []router.HopRecord
		for _, d := range ans.Hops {
			if d.Platform != m.Meta.InstanceID || d.Node != m.Meta.Node {
				continue
			}
			own = append(own, d)
			if d.CorrelationID == h.CorrelationID {
				same = append(same, d)
			}
		}
		if len(same) > 0 {
			return same, nil
		}
		return own, nil
	}
	return nil, errors.Join(errs...)
}

// maxRouterMembers bounds the members asked for one next hop.
const maxRouterMembers = 3

// membersOfRouter returns the alive federation members of platform, in
// this node's environment, that advertise the router a URL names and an
// admin address: those whose gossip certificate was verified first, then
// those not checked yet; one found to carry another HSA-ID never.
func (n *Node) membersOfRouter(platform, rawURL string) ([]federation.Member, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("next hop %q: %w", rawURL, err)
	}
	var verified, unchecked []federation.Member
	for _, m := range n.FederationMembers() {
		md := m.Meta
		if m.State != federation.StateAlive || md.RouterAddr != u.Host || md.AdminAddr == "" || !strings.EqualFold(md.Platform, platform) ||
			md.Environment != n.cfg.Federation.Environment || m.Name != md.Platform+"/"+md.Node {
			continue
		}
		switch m.Binding {
		case federation.BindingVerified:
			verified = append(verified, m)
		case federation.BindingUnchecked:
			unchecked = append(unchecked, m)
		}
	}
	ms := append(verified, unchecked...)
	if len(ms) == 0 {
		return nil, fmt.Errorf("no alive federation member of %s advertises router %s and an admin address (the node stopped or left)", platform, u.Host)
	}
	return ms[:min(len(ms), maxRouterMembers)], nil
}

// federationPeer reports whether a client certificate, verified against
// the admin listener's CAs, is that of an alive node of the federation, in
// this node's environment: its CN is the member's node name and its HSA-ID
// the one the member advertises. Such a node may read hop records
// (GET /api/v1/trace/...) and nothing else.
func (n *Node) federationPeer(cert *x509.Certificate) (string, bool) {
	for _, m := range n.FederationMembers() {
		md := m.Meta
		if m.State != federation.StateAlive || md.Environment != n.cfg.Federation.Environment || m.Name != md.Platform+"/"+md.Node ||
			!certOfMember(cert, md) {
			continue
		}
		return m.Name, true
	}
	return "", false
}

// verifiedBy reports whether the connection's client certificate chains to
// roots (the admin listener accepts federation CAs too; everything but the
// trace endpoint needs the platform's CA).
func verifiedBy(roots *x509.CertPool, cs *tls.ConnectionState) bool {
	if roots == nil {
		return true
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	return err == nil
}

// newTraceClient is the client that queries other platforms' nodes, with
// this node's certificate, verifying them against federation.cas.
func newTraceClient(fedTLS *tls.Config) *http.Client {
	if fedTLS == nil {
		return nil
	}
	dialer := &net.Dialer{Timeout: 2 * time.Second}
	return &http.Client{Timeout: traceTimeout, Transport: &http.Transport{TLSClientConfig: fedTLS, DialContext: dialer.DialContext, TLSHandshakeTimeout: 2 * time.Second, MaxIdleConnsPerHost: 2, IdleConnTimeout: time.Minute}}
}
