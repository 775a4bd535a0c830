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
	ctx, cancel := context.WithTimeout(r.Context(), traceTimeout)
	defer cancel()
	out := TraceAnswer{ID: id, Hops: []router.HopRecord{}}
	a.assemble(ctx, local, 1, map[string]bool{}, &out)
	writeJSON(w, 200, out)
}

func hopKey(h *router.HopRecord) string {
	return h.Platform + "\x00" + h.Node + "\x00" + h.CorrelationID + "\x00" + h.Received.String()
}

// assemble appends recs to out, each followed by the chain downstream of it.
func (a *admin) assemble(ctx context.Context, recs []router.HopRecord, depth int, seen map[string]bool, out *TraceAnswer) {
	for i := range recs {
		h := &recs[i]
		if seen[hopKey(h)] {
			continue
		}
		seen[hopKey(h)] = true
		out.Hops = append(out.Hops, *h)
		if h.NextPlatform == "" || h.NextHop == "" || h.Forwarded.IsZero() {
			continue
		}
		if depth >= traceMaxDepth {
			out.Incomplete = append(out.Incomplete, fmt.Sprintf("%s/%s → %s: chain longer than %d hops, not followed", h.Platform, h.Node, h.NextHop, traceMaxDepth))
			continue
		}
		down, err := a.remoteHops(ctx, h)
		if err != nil {
			out.Incomplete = append(out.Incomplete, fmt.Sprintf("%s/%s → %s: %v", h.Platform, h.Node, h.NextHop, err))
			continue
		}
		a.assemble(ctx, down, depth+1, seen, out)
	}
}

// askPeer GETs pathAndQuery from another platform's node m (its admin
// API, with this node's certificate, as a federation peer) and decodes the
// 200 answer into v; answers are bounded to 64 MiB.
func (a *admin) askPeer(ctx context.Context, m federation.Member, pathAndQuery string, v any) error {
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
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("query %s: %w", m.Name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("query %s: %s: %s", m.Name, resp.Status, strings.TrimSpace(string(b)))
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("query %s: %w", m.Name, err)
	}
	return nil
}

// remoteHops fetches the records of the call h made from the node it called.
func (a *admin) remoteHops(ctx context.Context, h *router.HopRecord) ([]router.HopRecord, error) {
	m, err := a.n.memberOfRouter(h.NextHop)
	if err != nil {
		return nil, err
	}
	var ans TraceAnswer
	if err := a.askPeer(ctx, m, tracePath+url.PathEscape(h.TraceID)+"?local=1", &ans); err != nil {
		return nil, err
	}
	// The trace id may cover several calls (a consumer reusing its
	// traceparent): keep the one h made, by its correlation id, which
	// travels to the next platform (router.propagate_correlation_https).
	var same []router.HopRecord
	for _, d := range ans.Hops {
		if d.CorrelationID == h.CorrelationID {
			same = append(same, d)
		}
	}
	if len(same) > 0 {
		return same, nil
	}
	return ans.Hops, nil
}

// memberOfRouter returns the alive federation member whose router a URL
// names.
func (n *Node) memberOfRouter(rawURL string) (federation.Member, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return federation.Member{}, fmt.Errorf("next hop %q: %w", rawURL, err)
	}
	for _, m := range n.FederationMembers() {
		if m.State == federation.StateAlive && m.Meta.RouterAddr == u.Host {
			if m.Meta.AdminAddr == "" {
				return m, fmt.Errorf("federation member %s advertises no admin address", m.Name)
			}
			return m, nil
		}
	}
	return federation.Member{}, fmt.Errorf("no alive federation member has router %s (the node stopped or left)", u.Host)
}

// federationPeer reports whether a client certificate, verified against
// the admin listener's CAs, is that of an alive node of the federation, in
// this node's environment: its CN is the member's node name and its HSA-ID
// the one the member advertises. Such a node may read hop records
// (GET /api/v1/trace/...) and nothing else.
func (n *Node) federationPeer(cert *x509.Certificate) (string, bool) {
	hsa, _ := router.SenderIDFromCert(cert, nil)
	for _, m := range n.FederationMembers() {
		md := m.Meta
		if m.State != federation.StateAlive || md.Environment != n.cfg.Federation.Environment || m.Name != md.Platform+"/"+md.Node ||
			!strings.EqualFold(md.Node, cert.Subject.CommonName) || md.HSAID != "" && !strings.EqualFold(md.HSAID, hsa) {
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
