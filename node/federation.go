package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vaxel/vaxel/federation"
	"github.com/vaxel/vaxel/node/config"
	"github.com/vaxel/vaxel/router"
)

// The federation pool: every node of every federated platform is a member,
// named "<platform>/<node>", advertising its router address. node turns the
// alive members of the peer platforms on federation.allow_platforms (same
// environment) into the router's Platforms table, so that a call address
// "vaxel://NAME" reaches a live node of platform NAME. The pool has its own
// key and label: a platform can join the federation without being able to
// join another platform's own pool.

// federationPool builds the federation pool from the configuration.
func federationPool(cfg *config.Config, serverTLS, clientTLS *tls.Config, n *Node) (*federation.Pool, error) {
	f := cfg.Federation
	keys, err := config.ReadGossipKeys(f.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("federation keys: %w", err)
	}
	fc := federation.DefaultFederationConfig()
	fc.Name = cfg.Node.Platform + "/" + cfg.Node.Name
	fc.BindAddr, fc.AdvertiseAddr = f.Bind, f.Advertise
	fc.Label = f.Label
	fc.Keys = keys
	fc.ServerTLS, fc.ClientTLS = serverTLS, clientTLS
	fc.Seeds = f.Join
	fc.Meta = n.federationMeta()
	// Each member's advertised HSA-ID is checked against the certificate
	// it presents, read as this node reads its own (SERIALNUMBER).
	fc.CertIdentity = func(c *x509.Certificate) (string, error) {
		if id, ok := router.SenderIDFromCert(c, nil); ok {
			return id, nil
		}
		return "", errors.New("certificate carries no HSA-ID (SERIALNUMBER)")
	}
	tuneProbes(&fc, f.ProbeInterval)
	fc.Logger = n.log.With("subsystem", "federation")
	return federation.New(fc)
}

// federationMeta is what this node tells the federation. Its router is
// advertised only once the node is ready: a node that has just (re)started
// may not hold its catalog yet, and other platforms would otherwise route
// calls to it that it answers with VP008.
func (n *Node) federationMeta() federation.Meta {
	m := n.baseMeta(n.fed)
	m.Environment = n.cfg.Federation.Environment
	if ok, _ := n.Readiness(); !ok {
		m.RouterAddr = ""
	}
	return m
}

// runFederation keeps this node's federation metadata current and the
// router's Platforms table in step with the federation's members.
func (n *Node) runFederation(ctx context.Context) {
	t := time.NewTicker(n.reconcileEvery)
	defer t.Stop()
	var published federation.Meta
	ready := n.ready // readiness changes the metadata: publish it at once
	seen := map[string]refusedPlatform{}
	dist := &distances{rtt: map[string]time.Duration{}}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		n.measureDistances(ctx, dist)
	}()
	defer wg.Wait() // no ping on a pool that is stopping
	for {
		if m := n.federationMeta(); m != published {
			if err := n.fed.SetMeta(m); err != nil {
				n.log.Warn("federation metadata", "err", err)
			} else {
				published = m
			}
		}
		n.router.SetPlatforms(router.NewPlatforms(n.peerPlatforms(dist)).Refuse(n.refusedPlatforms(seen)))
		select {
		case <-ctx.Done():
			return
		case <-n.fed.Events():
		case <-ready:
			ready = nil
		case <-t.C:
		}
	}
}

// peerPlatforms groups the alive federation members that this platform may
// route to by platform, each platform's nodes nearest first (dist; nil:
// all near, in address order).
func (n *Node) peerPlatforms(dist *distances) map[string]router.PlatformNodes {
	byPlatform := map[string][]fedNode{}
	for _, m := range n.fed.Members() {
		md := m.Meta
		if !n.routable(m) {
			continue
		}
		// One group per platform whatever the case its members spell it
		// in (the router's table is case-insensitive).
		k := strings.ToLower(md.Platform)
		byPlatform[k] = append(byPlatform[k], fedNode{addr: md.RouterAddr, hsaID: md.HSAID, rtt: dist.get(m.Name)})
	}
	out := map[string]router.PlatformNodes{}
	for k, nodes := range byPlatform {
		out[k] = nearestFirst(nodes)
	}
	return out
}

// routable says whether m is a node this platform may route calls to: an
// alive member of an allowed peer platform in the same environment, whose
// router is advertised (it is ready), that advertises an HSA-ID (the one
// pinned in allow_platforms, if any; the router checks the node's
// certificate against it on every connection), unless its gossip
// certificate was found to carry another. (A member not checked yet is routable: the
// router's check on connection covers it, and a new node takes calls at
// once.)
func (n *Node) routable(m federation.Member) bool {
	md := m.Meta
	if m.State != federation.StateAlive || md.RouterAddr == "" || md.HSAID == "" || md.Environment != n.cfg.Federation.Environment || m.Name != md.Platform+"/"+md.Node {
		return false
	}
	if m.Binding == federation.BindingMismatch {
		return false
	}
	pinned, ok := n.cfg.Federation.PeerPlatforms()[strings.ToLower(md.Platform)]
	return ok && (pinned == "" || strings.EqualFold(pinned, md.HSAID))
}

// fedNode is a platform's node as distance ordering sees it; rtt 0: not
// measured yet.
type fedNode struct {
	addr, hsaID string
	rtt         time.Duration
}

// nearestFirst orders a platform's nodes by measured round trip (unmeasured
// ones last, by address) and counts as near those within twice the nearest
// one's round trip plus 2 ms: calls are spread over the near nodes, so a
// platform that runs nodes in two data centres is called in the closer one
// while it has live nodes there, and jitter between nodes of one data
// centre does not split them. With nothing measured, every node is near.
func nearestFirst(nodes []fedNode) router.PlatformNodes {
	sort.Slice(nodes, func(i, j int) bool {
		a, b := nodes[i], nodes[j]
		if (a.rtt == 0) != (b.rtt == 0) {
			return b.rtt == 0
		}
		if a.rtt != b.rtt {
			return a.rtt < b.rtt
		}
		return a.addr < b.addr
	})
	pn := router.PlatformNodes{Addrs: make([]string, len(nodes)), HSAIDs: make([]string, len(nodes))}
	for i, x := range nodes {
		pn.Addrs[i], pn.HSAIDs[i] = x.addr, x.hsaID
	}
	if len(nodes) == 0 || nodes[0].rtt == 0 {
		return pn // nothing measured: all near
	}
	limit := 2*nodes[0].rtt + 2*time.Millisecond
	for _, x := range nodes {
		if x.rtt == 0 || x.rtt > limit {
			break
		}
		pn.Near++
	}
	return pn
}

// distances holds the smoothed round trip to federation members.
type distances struct {
	mu  sync.Mutex
	rtt map[string]time.Duration
}

func (d *distances) get(name string) time.Duration {
	if d == nil {
		return 0
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rtt[name]
}

// distanceEvery is how often the nodes this platform routes to are pinged.
const distanceEvery = 5 * time.Second

// measureDistances pings the nodes this platform routes to, one at a time,
// every distanceEvery, and keeps an exponentially smoothed round trip per
// node (a quarter of each new sample), so that one slow answer does not
// reorder a platform's nodes. Members that left are forgotten.
func (n *Node) measureDistances(ctx context.Context, d *distances) {
	t := time.NewTicker(distanceEvery)
	defer t.Stop()
	for {
		members := n.fed.Members()
		live := map[string]bool{}
		for _, m := range members {
			if ctx.Err() != nil {
				return
			}
			if !n.routable(m) {
				continue
			}
			live[m.Name] = true
			rtt, err := n.fed.RTT(m.Name)
			if err != nil {
				continue // failure detection is gossip's job
			}
			d.mu.Lock()
			if old := d.rtt[m.Name]; old > 0 {
				rtt = old + (rtt-old)/4
			}
			d.rtt[m.Name] = max(rtt, time.Microsecond)
			d.mu.Unlock()
		}
		d.mu.Lock()
		for name := range d.rtt {
			if !live[name] {
				delete(d.rtt, name)
			}
		}
		d.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// maxRefused bounds the platform HSA-IDs remembered as refused.
const maxRefused = 10000

// refusedFor is how long a non-peer platform's HSA-ID stays refused after
// its last member was seen (memberlist forgets failed members sooner).
const refusedFor = 72 * time.Hour

// refusedPlatforms returns the HSA-IDs of the federation's platforms that
// are not on federation.allow_platforms, with their names: calls from them
// are refused (router.Platforms.Refuse). Only an HSA-ID that an alive
// member proved its certificate carries counts (federation.BindingVerified),
// for a refusal and for trust alike: a member cannot have a consumer's
// HSA-ID refused by advertising it, nor one refused lifted by calling
// itself a peer's. seen remembers such platforms for refusedFor after
// their members were last seen alive, so that one whose nodes left the
// pool or failed is still refused if its certificate reaches the router.
// An HSA-ID that this platform or a peer platform also holds is never
// refused: a misconfigured platform (say a test platform that reuses a
// production certificate) must not lock a peer out. (While the peer's
// member is not yet checked, such an HSA-ID can be refused for a moment.)
func (n *Node) refusedPlatforms(seen map[string]refusedPlatform) map[string]string {
	now := time.Now()
	peers := n.cfg.Federation.PeerPlatforms()
	allowed := map[string]bool{strings.ToLower(n.cfg.Node.Platform): true}
	trusted := map[string]bool{strings.ToLower(n.hsaID): true}
	for name, pinned := range peers {
		allowed[name] = true
		if pinned != "" {
			trusted[strings.ToLower(pinned)] = true
		}
	}
	for _, m := range n.fed.Members() {
		md := m.Meta
		if md.HSAID == "" || md.Platform == "" || m.Name != md.Platform+"/"+md.Node {
			continue
		}
		// Only what an alive member proved counts: a member's platform
		// name is its own claim, so an unchecked "peer" member must not
		// lift a refusal, nor an unchecked stranger cause one.
		if m.State != federation.StateAlive || m.Binding != federation.BindingVerified {
			continue
		}
		if allowed[strings.ToLower(md.Platform)] {
			// A peer's member: trusted, unless the peer's HSA-ID is
			// pinned and this one advertises another.
			if pin := peers[strings.ToLower(md.Platform)]; pin == "" || strings.EqualFold(pin, md.HSAID) {
				trusted[strings.ToLower(md.HSAID)] = true
			}
			continue
		}
		if _, ok := seen[md.HSAID]; ok || len(seen) < maxRefused {
			seen[md.HSAID] = refusedPlatform{name: md.Platform, seen: now}
		}
	}
	out := make(map[string]string, len(seen))
	for id, r := range seen {
		switch {
		case now.Sub(r.seen) > refusedFor:
			delete(seen, id)
		case trusted[strings.ToLower(id)]:
			// Also a peer's (or this platform's): never refused.
		default:
			out[id] = r.name
		}
	}
	return out
}

// refusedPlatform is a non-peer platform's HSA-ID as last seen.
type refusedPlatform struct {
	name string
	seen time.Time
}

// FederationMembers returns the federation pool's members (nil when off).
func (n *Node) FederationMembers() []federation.Member {
	if n.fed == nil {
		return nil
	}
	return n.fed.Members()
}

// federationView answers GET /api/v1/federation: the federation pool's
// members as this node sees them, and the platforms its router routes to
// (what "vaxel://NAME" resolves to right now), so that an operator can see
// why a platform is or is not reachable from here.
func (a *admin) federationView(w http.ResponseWriter, r *http.Request) {
	type member struct {
		Name        string    `json:"name"`
		State       string    `json:"state"`
		Since       time.Time `json:"since"`
		Gossip      string    `json:"gossip"`
		Platform    string    `json:"platform"`
		Environment string    `json:"environment"`
		Node        string    `json:"node"`
		Router      string    `json:"router"`
		Admin       string    `json:"admin"`
		HSAID       string    `json:"hsa_id"`
		// Certificate is hsa_id checked against the member's gossip
		// certificate: verified, mismatch (CertHSAID is the
		// certificate's) or unchecked.
		Certificate federation.Binding `json:"certificate"`
		CertHSAID   string             `json:"certificate_hsa_id,omitempty"`
		InstanceID  string             `json:"instance_id"`
		Version     string             `json:"version"`
	}
	type platform struct {
		Name  string   `json:"name"`
		Nodes []string `json:"nodes"` // router addresses, in the order calls prefer them
		Near  int      `json:"near"`  // calls are spread over the first Near
	}
	out := struct {
		Enabled   bool       `json:"enabled"`
		Self      string     `json:"self,omitempty"`
		Allow     []string   `json:"allow_platforms"`
		Members   []member   `json:"members"`
		Platforms []platform `json:"platforms"`
	}{Enabled: a.n.fed != nil, Allow: append([]string{}, a.n.cfg.Federation.AllowPlatforms...), Members: []member{}, Platforms: []platform{}}
	if a.n.fed == nil {
		writeJSON(w, 200, out)
		return
	}
	out.Self = a.n.cfg.Node.Platform + "/" + a.n.cfg.Node.Name
	for _, m := range a.n.fed.Members() {
		md := m.Meta
		out.Members = append(out.Members, member{Name: m.Name, State: m.State.String(), Since: m.Since, Gossip: m.Addr,
			Platform: md.Platform, Environment: md.Environment, Node: md.Node, Router: md.RouterAddr, Admin: md.AdminAddr,
			HSAID: md.HSAID, Certificate: m.Binding, CertHSAID: m.CertHSAID, InstanceID: md.InstanceID, Version: md.Version})
	}
	sort.Slice(out.Members, func(i, j int) bool { return out.Members[i].Name < out.Members[j].Name })
	table := a.n.router.Platforms()
	for _, entry := range out.Allow {
		name, _, _ := strings.Cut(entry, "=")
		if pn, ok := table.Nodes(name); ok {
			out.Platforms = append(out.Platforms, platform{Name: name, Nodes: pn.Addrs, Near: pn.Near})
		} else {
			out.Platforms = append(out.Platforms, platform{Name: name, Nodes: []string{}})
		}
	}
	writeJSON(w, 200, out)
}
