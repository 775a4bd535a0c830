package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vaxel/vaxel/federation"
	"github.com/vaxel/vaxel/router"
	"github.com/vaxel/vaxel/tak"
)

// The integrations view (federation/DESIGN.md, "Integrations view"): every
// chain original consumer → platform(s) → final producer, computed live
// from the catalogs of the federated platforms. SKLTP publishes the same
// thing as "existing integrations" from nightly TAK dumps, joined by hand
// and without HSA climbs or wildcards (skltp-tak.md §9.4); here each
// platform evaluates its own catalog with its router's own rules.
//
// GET /api/v1/integrations?local=1 returns this platform's edges: for every
// address a route or authorization names, the route a call would take now
// and every consumer the router would let through. Without local=1 the node
// asks one alive node of every federated platform for its edges (local=1,
// the only thing a peer platform's node may read here), starts a chain at
// every edge whose consumer is not a platform, and follows "vaxel://NAME"
// edges to platform NAME's edges for the calling platform's HSA-ID.

const (
	integrationsPath = "/api/v1/integrations"
	// integrationsTimeout bounds a whole federated query: fetching every
	// platform's edges plus the per-address lookups of the walk.
	integrationsTimeout = 10 * time.Second
	// maxChains bounds the answer; an operator narrows with a filter.
	maxChains = 10_000
	// maxChainSteps bounds the walk's work (a chain per start edge, fanned
	// out where a wildcard route meets several routes downstream).
	maxChainSteps = 200_000
	// maxLocalEdges bounds a local answer (about 350 bytes of JSON each).
	maxLocalEdges = 100_000
	// maxLocalChecks bounds the authorization lookups of a local answer
	// (well under a second: a lookup costs about 100 ns).
	maxLocalChecks = 5_000_000
	// maxLocalConcurrent bounds the local answers a node computes at once.
	// Every federated platform's nodes may ask for them; without a bound,
	// a few peers' walks at once would take every CPU from the node's
	// router. One asked beyond it answers 503 at once, and the walk asks
	// the platform's next node.
	maxLocalConcurrent = 2
	// integrationsMaxAnswer bounds another platform's local answer: its
	// edges for the filter, which for all=1 on a large catalog run to
	// tens of MB.
	integrationsMaxAnswer = 64 << 20
	// maxLookups bounds the per-address questions a walk asks other
	// platforms when their edge list has no exact match (wildcard and
	// HSA-climb routes, dead-end reasons).
	maxLookups = 500
	// maxPlatforms bounds how many platforms a walk asks for their edges.
	maxPlatforms = 64
	// maxFilterLen bounds each filter value (HSA-IDs are at most 64
	// characters, contract namespaces a few hundred).
	maxFilterLen = 512
)

// IntegrationsFilter narrows an integrations query. Empty fields match all.
type IntegrationsFilter struct {
	Consumer       string `json:"consumer,omitempty"`
	Producer       string `json:"producer,omitempty"`
	Contract       string `json:"contract,omitempty"`
	LogicalAddress string `json:"logical_address,omitempty"`
}

func (f IntegrationsFilter) empty() bool {
	return f.Consumer == "" && f.Producer == "" && f.Contract == "" && f.LogicalAddress == ""
}

// IntegrationEdge is one way through one platform: a consumer may call a
// contract at a logical address, and the call goes to a producer (another
// platform when NextPlatform is set).
type IntegrationEdge struct {
	Consumer string `json:"consumer"`
	Contract string `json:"contract"`
	// LogicalAddress is the address the consumer puts in its call; "*"
	// stands for every address the platform routes by its default route.
	LogicalAddress string `json:"logical_address"`
	// AuthorizedAt is the address of the authorization that admits the
	// consumer: LogicalAddress itself, "*" or an HSA-tree parent.
	AuthorizedAt string `json:"authorized_at"`
	// RoutedAt is the address of the route taken: LogicalAddress itself,
	// an HSA-tree parent or "*".
	RoutedAt string `json:"routed_at"`
	Producer string `json:"producer"`
	URL      string `json:"url"`
	// URLHidden is set when the producer's URL was left out because the
	// edges went to another platform's node (hideProducerURLs).
	URLHidden  bool   `json:"url_hidden,omitempty"`
	RivProfile string `json:"riv_profile"`
	// NextPlatform names the platform a "vaxel://NAME" call address points to.
	NextPlatform string `json:"next_platform,omitempty"`
	// Unroutable says why this platform's router has no node of
	// NextPlatform to call right now (not on federation.allow_platforms,
	// or no alive node of it in gossip).
	Unroutable string `json:"unroutable,omitempty"`
	// Fault is the VP fault every such call gets here (VP006: more than
	// one valid route; VP010: a route without call address).
	Fault string `json:"fault,omitempty"`
}

// IntegrationsLocal is one platform's edges, as one of its nodes sees its
// catalog now (GET /api/v1/integrations?local=1).
type IntegrationsLocal struct {
	Platform       string            `json:"platform"`
	Node           string            `json:"node"`
	CatalogVersion uint64            `json:"catalog_version"`
	Edges          []IntegrationEdge `json:"edges"`
	// Truncated is set when the edges stopped at a bound (maxLocalEdges
	// edges or maxLocalChecks lookups); narrow with a filter.
	Truncated bool `json:"truncated,omitempty"`
	// Explanation is the router's evaluation of a call, given when the
	// query names a contract and a logical address (explain's answer).
	Explanation *Explanation `json:"explanation,omitempty"`
}

// Chain statuses.
const (
	ChainOK         = "ok"         // reaches a producer
	ChainDeadEnd    = "dead_end"   // a platform would refuse the call; Reason says why
	ChainLoop       = "loop"       // the call would return to a platform it crossed (VP014)
	ChainIncomplete = "incomplete" // a platform could not be asked, or a bound was reached
)

// IntegrationHop is one platform's part of a chain.
type IntegrationHop struct {
	Platform string `json:"platform"`
	IntegrationEdge
}

// IntegrationChain is one integration: an original consumer's calls for a
// contract at a logical address, through every platform, to the final
// producer, or to the point where they would fail.
type IntegrationChain struct {
	Consumer       string           `json:"consumer"` // the original consumer
	Contract       string           `json:"contract"`
	LogicalAddress string           `json:"logical_address"`
	Hops           []IntegrationHop `json:"hops"`
	// Producer, URL and RivProfile are the final producer's, when Status is ok.
	Producer string `json:"producer,omitempty"`
	URL      string `json:"url,omitempty"`
	// URLHidden: the producer is behind another platform, which keeps its
	// URL to itself (ask that platform's admin API).
	URLHidden  bool   `json:"url_hidden,omitempty"`
	RivProfile string `json:"riv_profile,omitempty"`
	Status     string `json:"status"`
	// EndsAt names the platform where a chain that is not ok stops (it
	// may be a platform past the last hop: the one that would refuse).
	EndsAt string `json:"ends_at,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// IntegrationsAnswer is the admin API's answer to a federated integrations
// query.
type IntegrationsAnswer struct {
	Filter IntegrationsFilter `json:"filter"`
	// Platforms are those whose edges were read, this node's first.
	Platforms []string           `json:"platforms"`
	Chains    []IntegrationChain `json:"chains"`
	// Truncated is set when more chains match than the answer holds.
	Truncated bool `json:"truncated"`
	// Incomplete says what could not be read (a platform without an alive
	// node, a node that did not answer, a truncated edge list), and why.
	Incomplete []string `json:"incomplete,omitempty"`
}

func (a *admin) integrations(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, all, local, err := parseIntegrationsQuery(q)
	if err != nil {
		httpError(w, 400, err)
		return
	}
	if f.empty() && !all {
		httpError(w, 400, errors.New("integrations needs a filter (consumer, producer, contract, logical_address) or all=1: /api/v1/integrations?consumer=SE...&contract=urn:..."))
		return
	}
	if local {
		release, ok := takeToken(w, a.localBusy, fmt.Errorf("integrations: this node is computing %d local answers already; retry, or ask another node of the platform", maxLocalConcurrent))
		if !ok {
			return
		}
		defer release()
		out := a.localIntegrations(f, time.Now())
		if strings.HasPrefix(actorOf(r), "federation:") {
			hideProducerURLs(out)
		}
		writeJSON(w, 200, out)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), integrationsTimeout)
	defer cancel()
	writeJSON(w, 200, a.federatedIntegrations(ctx, f))
}

// parseIntegrationsQuery validates the query: known parameters only (a
// misspelt filter must not silently widen the answer), each value once,
// bounded and printable.
func parseIntegrationsQuery(q url.Values) (f IntegrationsFilter, all, local bool, err error) {
	for k, vs := range q {
		if len(vs) != 1 {
			return f, false, false, fmt.Errorf("integrations: give %s once", k)
		}
		v := strings.TrimSpace(vs[0])
		if len(v) > maxFilterLen {
			return f, false, false, fmt.Errorf("integrations: %s is %d bytes, at most %d", k, len(v), maxFilterLen)
		}
		if strings.IndexFunc(v, func(c rune) bool { return c < 0x20 || c == 0x7f }) >= 0 {
			return f, false, false, fmt.Errorf("integrations: %s contains a control character", k)
		}
		switch k {
		case "consumer":
			f.Consumer = v
		case "producer":
			f.Producer = v
		case "contract":
			f.Contract = v
		case "logical_address":
			f.LogicalAddress = v
		case "all", "local":
			if v != "1" && v != "0" && v != "" {
				return f, false, false, fmt.Errorf("integrations: %s is 1 or 0, not %q", k, v)
			}
			if k == "all" {
				all = v == "1"
			} else {
				local = v == "1"
			}
		default:
			return f, false, false, fmt.Errorf("integrations: unknown parameter %q; filters are consumer, producer, contract, logical_address, with all=1 and local=1", k)
		}
	}
	return f, all, local, nil
}

// localIntegrations lists this platform's edges that match f, from the
// catalog the router serves now, evaluated with the router's own rules
// (tak.Catalog.ResolveRoute and Authorize with its routing options). With
// a logical address in f, that one address is evaluated, so an HSA climb
// or a wildcard that covers it shows; without, every address a route or an
// authorization names is.
func (a *admin) localIntegrations(f IntegrationsFilter, now time.Time) *IntegrationsLocal {
	c := a.n.router.Catalog()
	if c == nil {
		c = a.n.store.Current()
	}
	out := localEdges(c, a.n.router.RoutingOptions(), a.n.router.Platforms(), f, now)
	out.Platform, out.Node = a.n.cfg.Node.Platform, a.n.cfg.Node.Name
	if f.Contract != "" && f.LogicalAddress != "" {
		e := Explain(c, a.n.router, f.Consumer, f.Contract, f.LogicalAddress, now)
		out.Explanation = &e
	}
	return out
}

// hideProducerURLs blanks the call addresses of producers in an answer
// for another platform's node: a peer learns which producer component
// serves a chain (and which platform comes next), not where the producer
// lives, as SKLTP's own integrations listing hides physical addresses.
func hideProducerURLs(out *IntegrationsLocal) {
	for i := range out.Edges {
		if e := &out.Edges[i]; e.NextPlatform == "" && e.URL != "" {
			e.URL, e.URLHidden = "", true
		}
	}
	if e := out.Explanation; e != nil {
		if _, next := router.PlatformOf(e.URL); !next {
			e.URL = ""
		}
	}
}

// contractAddrs is what one contract's routes and authorizations name:
// their addresses and consumers, lower-cased key → as written.
type contractAddrs struct {
	ns        string
	addrs     map[string]string
	consumers map[string]string
}

func localEdges(c *tak.Catalog, o *tak.RoutingOptions, plats *router.Platforms, f IntegrationsFilter, now time.Time) *IntegrationsLocal {
	out := &IntegrationsLocal{CatalogVersion: c.Seq(), Edges: []IntegrationEdge{}}
	byNS := map[string]*contractAddrs{}
	entry := func(contractID int64) *contractAddrs {
		k, ok := c.Contract(contractID)
		if !ok || f.Contract != "" && !strings.EqualFold(k.Namespace, f.Contract) {
			return nil
		}
		key := strings.ToLower(k.Namespace)
		e := byNS[key]
		if e == nil {
			e = &contractAddrs{ns: k.Namespace, addrs: map[string]string{}, consumers: map[string]string{}}
			byNS[key] = e
		}
		return e
	}
	addr := func(e *contractAddrs, laID int64) {
		if la, ok := c.LogicalAddress(laID); ok {
			e.addrs[strings.ToLower(la.HSAID)] = la.HSAID
		}
	}
	// Expired and future entries are collected too: the lookups below
	// apply validity exactly as a call now would.
	for _, rt := range c.Routes() {
		if e := entry(rt.ContractID); e != nil {
			addr(e, rt.LogicalAddressID)
		}
	}
	for _, au := range c.Authorizations() {
		e := entry(au.ContractID)
		if e == nil {
			continue
		}
		addr(e, au.LogicalAddressID)
		if comp, ok := c.Component(au.ConsumerID); ok {
			e.consumers[strings.ToLower(comp.HSAID)] = comp.HSAID
		}
	}
	nsKeys := sortedKeys(byNS)
	unix := now.Unix()
	checks := 0
	for _, nk := range nsKeys {
		e := byNS[nk]
		if f.LogicalAddress != "" {
			// Evaluate exactly the address asked for, whether or not an
			// entity names it: a climb or a wildcard may cover it.
			e.addrs = map[string]string{strings.ToLower(f.LogicalAddress): f.LogicalAddress}
		}
		if f.Consumer != "" {
			// Authorizations never climb on the consumer: one that no
			// authorization of the contract names cannot call it.
			v, ok := e.consumers[strings.ToLower(f.Consumer)]
			if !ok {
				continue
			}
			e.consumers = map[string]string{strings.ToLower(f.Consumer): v}
		}
		consumers := sortedValuesOf(e.consumers)
		for _, la := range sortedValuesOf(e.addrs) {
			tgt, st := c.ResolveRoute(e.ns, la, unix, o, nil)
			if st == tak.RouteNone || f.Producer != "" && !strings.EqualFold(tgt.Producer, f.Producer) {
				continue
			}
			edge := IntegrationEdge{Contract: e.ns, LogicalAddress: la, Producer: tgt.Producer, URL: tgt.URL, RivProfile: tgt.Profile, RoutedAt: routeAddress(c, tgt.RouteID)}
			switch {
			case st == tak.RouteMultiple:
				edge.Fault = "VP006: more than one valid route"
			case tgt.URL == "":
				edge.Fault = "VP010: the route has no call address"
			}
			if name, ok := router.PlatformOf(tgt.URL); ok {
				edge.NextPlatform = name
				if _, ok := plats.Nodes(name); !ok {
					edge.Unroutable = "no alive node of " + name + " this platform may route to (federation.allow_platforms, gossip)"
				}
			}
			for _, con := range consumers {
				if checks++; checks > maxLocalChecks || len(out.Edges) >= maxLocalEdges {
					out.Truncated = true
					return out
				}
				if !c.Authorize(con, e.ns, la, unix, o, nil) {
					continue
				}
				// Again with a trace, whose last step is the address of
				// the authorization that matched; only for the hits.
				var tr tak.Trace
				c.Authorize(con, e.ns, la, unix, o, &tr)
				edge.Consumer, edge.AuthorizedAt = con, lastStep(&tr)
				out.Edges = append(out.Edges, edge)
			}
		}
	}
	return out
}

// routeAddress is the logical address a route is registered at.
func routeAddress(c *tak.Catalog, routeID int64) string {
	rt, ok := c.Route(routeID)
	if !ok {
		return ""
	}
	la, _ := c.LogicalAddress(rt.LogicalAddressID)
	return la.HSAID
}

// lastStep is the last address a lookup trace visited ("la,(default),*" → "*").
func lastStep(tr *tak.Trace) string {
	s := tr.String()
	return s[strings.LastIndexByte(s, ',')+1:]
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// sortedValuesOf returns a lower-case-keyed map's values in key order.
func sortedValuesOf(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		out = append(out, m[k])
	}
	return out
}

// platformEdges is one platform's edges as the walk knows them.
type platformEdges struct {
	name string
	err  error // why the platform could not be read
	ans  *IntegrationsLocal
	// byCaller indexes the edges by lower-case consumer and contract.
	byCaller map[[2]string][]IntegrationEdge
}

func newPlatformEdges(name string, ans *IntegrationsLocal) *platformEdges {
	p := &platformEdges{name: name, ans: ans, byCaller: map[[2]string][]IntegrationEdge{}}
	for _, e := range ans.Edges {
		k := [2]string{strings.ToLower(e.Consumer), strings.ToLower(e.Contract)}
		p.byCaller[k] = append(p.byCaller[k], e)
	}
	return p
}

// walk is the state of one federated integrations query.
type walk struct {
	a       *admin
	ctx     context.Context
	f       IntegrationsFilter
	self    string                    // this node's platform
	plats   map[string]*platformEdges // by lower-case platform name
	members map[string][]federation.Member
	ids     map[string][]string // platform (lower) → its nodes' HSA-IDs
	idPlat  map[string]string   // HSA-ID (lower) → platform
	lookups map[[3]string]*IntegrationsLocal
	nLookup int
	missing map[string]bool // platforms routed to that have no alive node, reported once
	steps   int
	out     *IntegrationsAnswer
}

// federatedIntegrations builds every chain that matches f across the
// federation. What it cannot read it lists under Incomplete; it never fails.
func (a *admin) federatedIntegrations(ctx context.Context, f IntegrationsFilter) *IntegrationsAnswer {
	wk := &walk{a: a, ctx: ctx, f: f, self: a.n.cfg.Node.Platform, plats: map[string]*platformEdges{},
		members: map[string][]federation.Member{}, ids: map[string][]string{}, idPlat: map[string]string{},
		lookups: map[[3]string]*IntegrationsLocal{}, missing: map[string]bool{}, out: &IntegrationsAnswer{Filter: f, Platforms: []string{}, Chains: []IntegrationChain{}}}
	wk.platformIDs()
	wk.fetchAll()
	wk.build()
	return wk.out
}

// platformIDs learns every federated platform's nodes and HSA-IDs (what
// the next platform sees as the consumer when a platform calls it), from
// the federation's members in this node's environment.
func (wk *walk) platformIDs() {
	n := wk.a.n
	add := func(platform, hsa string) {
		if hsa == "" {
			return
		}
		p := strings.ToLower(platform)
		if _, dup := wk.idPlat[strings.ToLower(hsa)]; !dup {
			wk.idPlat[strings.ToLower(hsa)] = platform
			wk.ids[p] = append(wk.ids[p], hsa)
		}
	}
	add(wk.self, n.hsaID)
	for _, m := range n.FederationMembers() {
		md := m.Meta
		if md.Environment != n.cfg.Federation.Environment || m.Name != md.Platform+"/"+md.Node || md.Platform == "" {
			continue
		}
		// Failed members still name their platform's identity.
		add(md.Platform, md.HSAID)
		if m.State == federation.StateAlive && md.AdminAddr != "" && !strings.EqualFold(md.Platform, wk.self) {
			p := strings.ToLower(md.Platform)
			wk.members[p] = append(wk.members[p], m)
		}
	}
}

// fetchParallel bounds the platforms asked at once: each answer may be tens
// of megabytes until it is decoded.
const fetchParallel = 4

// fetchAll reads this platform's edges locally and every other platform's
// from one of its alive nodes, fetchParallel at a time.
func (wk *walk) fetchAll() {
	fetch := IntegrationsFilter{Contract: wk.f.Contract, LogicalAddress: wk.f.LogicalAddress}
	wk.plats[strings.ToLower(wk.self)] = newPlatformEdges(wk.self, wk.a.localIntegrations(fetch, time.Now()))
	names := sortedKeys(wk.members)
	if len(names) > maxPlatforms {
		wk.out.Incomplete = append(wk.out.Incomplete, fmt.Sprintf("%d platforms in the federation; read the first %d only", len(names), maxPlatforms))
		names = names[:maxPlatforms]
	}
	res := make([]*platformEdges, len(names))
	var wg sync.WaitGroup
	sem := make(chan struct{}, fetchParallel)
	for i, p := range names {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			ms := wk.members[p]
			ans, err := wk.ask(ms, fetch, true)
			if err != nil {
				res[i] = &platformEdges{name: ms[0].Meta.Platform, err: err}
				return
			}
			res[i] = newPlatformEdges(ms[0].Meta.Platform, ans)
		})
	}
	wg.Wait()
	wk.out.Platforms = append(wk.out.Platforms, wk.self)
	for _, pe := range res {
		wk.plats[strings.ToLower(pe.name)] = pe
		if pe.err != nil {
			wk.out.Incomplete = append(wk.out.Incomplete, fmt.Sprintf("platform %s: %v", pe.name, pe.err))
			continue
		}
		wk.out.Platforms = append(wk.out.Platforms, pe.name)
	}
	for _, name := range append([]string{strings.ToLower(wk.self)}, names...) {
		if pe := wk.plats[name]; pe.err == nil && pe.ans.Truncated {
			wk.out.Incomplete = append(wk.out.Incomplete, fmt.Sprintf("platform %s: its edge list was truncated at a bound; narrow with contract= or logical_address=", pe.name))
		}
	}
}

// ask queries the platform of ms (its alive nodes) for its local edges,
// trying the next node when one cannot be reached.
func (wk *walk) ask(ms []federation.Member, f IntegrationsFilter, all bool) (*IntegrationsLocal, error) {
	if wk.a.traceClient == nil {
		return nil, errors.New("federation is off on this node")
	}
	q := url.Values{"local": {"1"}}
	if all {
		q.Set("all", "1")
	}
	for k, v := range map[string]string{"consumer": f.Consumer, "contract": f.Contract, "logical_address": f.LogicalAddress} {
		if v != "" {
			q.Set(k, v)
		}
	}
	sorted := append([]federation.Member(nil), ms...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	var errs []error
	for _, m := range sorted {
		ans, err := wk.askNode(m, q)
		if err == nil {
			return ans, nil
		}
		errs = append(errs, err)
		if wk.ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

func (wk *walk) askNode(m federation.Member, q url.Values) (*IntegrationsLocal, error) {
	var ans IntegrationsLocal
	if err := wk.a.askPeer(wk.ctx, m, integrationsPath+"?"+q.Encode(), integrationsMaxAnswer, &ans); err != nil {
		return nil, err
	}
	return &ans, nil
}

// build starts a chain at every edge whose consumer is no platform (an
// original consumer), this platform's first, and follows it.
func (wk *walk) build() {
	order := []string{strings.ToLower(wk.self)}
	for _, k := range sortedKeys(wk.plats) {
		if k != order[0] {
			order = append(order, k)
		}
	}
walk:
	for _, k := range order {
		pe := wk.plats[k]
		if pe.err != nil {
			continue
		}
		for _, e := range pe.ans.Edges {
			if wk.f.Consumer != "" {
				// A platform's HSA-ID asked for by name starts chains
				// too: what that platform's calls go through from here.
				if !strings.EqualFold(e.Consumer, wk.f.Consumer) {
					continue
				}
			} else if _, isPlatform := wk.idPlat[strings.ToLower(e.Consumer)]; isPlatform {
				continue
			}
			ch := IntegrationChain{Consumer: e.Consumer, Contract: e.Contract, LogicalAddress: e.LogicalAddress}
			if !wk.follow(ch, pe.name, e) {
				break walk
			}
		}
	}
	sort.SliceStable(wk.out.Chains, func(i, j int) bool {
		x, y := &wk.out.Chains[i], &wk.out.Chains[j]
		if x.Consumer != y.Consumer {
			return x.Consumer < y.Consumer
		}
		if x.Contract != y.Contract {
			return x.Contract < y.Contract
		}
		return x.LogicalAddress < y.LogicalAddress
	})
}

// follow appends edge e of platform p to chain ch and follows it to its
// end. It reports false once a bound stops the walk.
func (wk *walk) follow(ch IntegrationChain, p string, e IntegrationEdge) bool {
	if wk.steps++; wk.steps > maxChainSteps {
		wk.out.Truncated = true
		return false
	}
	// Each branch owns its hops: a wildcard fans out below.
	ch.Hops = append(append([]IntegrationHop(nil), ch.Hops...), IntegrationHop{Platform: p, IntegrationEdge: e})
	if e.LogicalAddress != "*" {
		ch.LogicalAddress = e.LogicalAddress
	}
	switch {
	case e.Fault != "":
		return wk.end(ch, ChainDeadEnd, p, p+": "+e.Fault)
	case e.NextPlatform == "":
		ch.Producer, ch.URL, ch.URLHidden, ch.RivProfile = e.Producer, e.URL, e.URLHidden, e.RivProfile
		return wk.end(ch, ChainOK, "", "")
	}
	q := e.NextPlatform
	for _, h := range ch.Hops {
		if strings.EqualFold(h.Platform, q) {
			return wk.end(ch, ChainLoop, q, fmt.Sprintf("%s routes back to %s, which the call already crossed (VP014)", p, q))
		}
	}
	if len(ch.Hops) >= traceMaxDepth {
		return wk.end(ch, ChainIncomplete, q, fmt.Sprintf("chain longer than %d platforms, not followed", traceMaxDepth))
	}
	qe := wk.plats[strings.ToLower(q)]
	switch {
	case qe == nil && wk.a.n.fed == nil:
		return wk.end(ch, ChainIncomplete, q, "federation is off on this node")
	case qe == nil && len(wk.members[strings.ToLower(q)]) > 0:
		return wk.end(ch, ChainIncomplete, q, fmt.Sprintf("platform %s not read: only %d platforms are read per query", q, maxPlatforms))
	case qe == nil:
		why := "no alive node of platform " + q + " in the federation"
		if !wk.missing[strings.ToLower(q)] {
			wk.missing[strings.ToLower(q)] = true
			wk.out.Incomplete = append(wk.out.Incomplete, "platform "+q+": no alive node in the federation")
		}
		return wk.end(ch, ChainIncomplete, q, why)
	case qe.err != nil:
		return wk.end(ch, ChainIncomplete, q, fmt.Sprintf("platform %s could not be asked: %v", q, qe.err))
	case e.Unroutable != "":
		return wk.end(ch, ChainDeadEnd, p, p+": "+e.Unroutable)
	}
	callers := wk.ids[strings.ToLower(p)]
	if len(callers) == 0 {
		return wk.end(ch, ChainIncomplete, q, "the HSA-ID of platform "+p+" is not known (no member advertises it)")
	}
	next := wk.matches(qe, callers, e.Contract, ch.LogicalAddress)
	if len(next) == 0 {
		// No listed edge: ask q to evaluate exactly this address (its
		// HSA climb and wildcards cover addresses no entity names), which
		// also says why a call would fail.
		ans, err := wk.lookup(qe, callers[0], e.Contract, ch.LogicalAddress)
		if err != nil {
			return wk.end(ch, ChainIncomplete, q, err.Error())
		}
		next = filterCallers(ans.Edges, callers)
		if len(next) == 0 {
			return wk.end(ch, ChainDeadEnd, q, deadEndReason(q, callers[0], e.Contract, ch.LogicalAddress, ans.Explanation))
		}
	}
	for _, ne := range next {
		if !wk.follow(ch, qe.name, ne) {
			return false
		}
	}
	return true
}

// matches returns q's edges for any of the caller's HSA-IDs, the contract
// and the address ("*": every address), one per route.
func (wk *walk) matches(qe *platformEdges, callers []string, ns, la string) []IntegrationEdge {
	var out []IntegrationEdge
	seen := map[string]bool{}
	for _, id := range callers {
		for _, e := range qe.byCaller[[2]string{strings.ToLower(id), strings.ToLower(ns)}] {
			if la != "*" && !strings.EqualFold(e.LogicalAddress, la) {
				continue
			}
			k := strings.ToLower(e.LogicalAddress + "\x00" + e.RoutedAt + "\x00" + e.URL)
			if !seen[k] {
				seen[k] = true
				out = append(out, e)
			}
		}
	}
	return out
}

func filterCallers(edges []IntegrationEdge, callers []string) []IntegrationEdge {
	var out []IntegrationEdge
	for _, e := range edges {
		for _, id := range callers {
			if strings.EqualFold(e.Consumer, id) {
				out = append(out, e)
				break
			}
		}
	}
	return out
}

// lookup asks platform qe to evaluate one call (caller, contract, address),
// once per query and within maxLookups.
func (wk *walk) lookup(qe *platformEdges, caller, ns, la string) (*IntegrationsLocal, error) {
	key := [3]string{strings.ToLower(qe.name), strings.ToLower(ns), strings.ToLower(la)}
	if ans, ok := wk.lookups[key]; ok {
		return ans, nil
	}
	if wk.nLookup++; wk.nLookup > maxLookups {
		return nil, fmt.Errorf("not evaluated: more than %d per-address lookups in one query; narrow with a filter", maxLookups)
	}
	f := IntegrationsFilter{Consumer: caller, Contract: ns, LogicalAddress: la}
	var ans *IntegrationsLocal
	if strings.EqualFold(qe.name, wk.self) {
		ans = wk.a.localIntegrations(f, time.Now())
	} else {
		var err error
		if ans, err = wk.ask(wk.members[strings.ToLower(qe.name)], f, false); err != nil {
			return nil, fmt.Errorf("platform %s could not be asked: %w", qe.name, err)
		}
	}
	wk.lookups[key] = ans
	return ans, nil
}

// deadEndReason says, from platform q's evaluation, why it would refuse
// the caller's call.
func deadEndReason(q, caller, ns, la string, ex *Explanation) string {
	if ex == nil {
		return fmt.Sprintf("%s has no route %s may call for %s at %s", q, caller, ns, la)
	}
	switch ex.Outcome {
	case "VP004":
		return fmt.Sprintf("%s has no route for %s at %s (VP004; looked up %s)", q, ns, la, ex.RouteTrace)
	case "VP006":
		return fmt.Sprintf("%s has more than one valid route for %s at %s (VP006)", q, ns, la)
	case "VP010":
		return fmt.Sprintf("%s's route for %s at %s has no call address (VP010)", q, ns, la)
	case "VP007":
		return fmt.Sprintf("%s does not authorize %s for %s at %s (VP007; looked up %s)", q, caller, ns, la, ex.AuthorizationTrace)
	}
	return fmt.Sprintf("%s answers %s for %s calling %s at %s", q, ex.Outcome, caller, ns, la)
}

// end records a finished chain if it passes the producer filter. It
// reports false once the answer is full.
func (wk *walk) end(ch IntegrationChain, status, at, reason string) bool {
	ch.Status, ch.EndsAt, ch.Reason = status, at, reason
	if wk.f.Producer != "" {
		// A complete chain's producer is its final one; a broken chain
		// is matched on the producer of its last hop.
		last := ch.Hops[len(ch.Hops)-1].Producer
		if !strings.EqualFold(last, wk.f.Producer) {
			return true
		}
	}
	if len(wk.out.Chains) >= maxChains {
		wk.out.Truncated = true
		return false
	}
	wk.out.Chains = append(wk.out.Chains, ch)
	return true
}
