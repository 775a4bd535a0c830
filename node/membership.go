package node

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vaxel/vaxel/catalog"
	"github.com/vaxel/vaxel/federation"
	"github.com/vaxel/vaxel/node/config"
)

// Membership inside a platform. The rules, in one place (catalog/DESIGN.md
// repeats them):
//
//   - A node with Raft state on disk never bootstraps: it rejoins with its
//     data, and the others' Raft configuration still lists it.
//   - raft.servers (static): every node of a new platform lists the same
//     servers and bootstraps that configuration; identical bootstraps are
//     one bootstrap in Raft.
//   - gossip.bootstrap_expect N: a new node waits until it sees exactly N
//     alive members of its platform, none of which holds Raft state, and
//     bootstraps with all of them. Each of the N does the same with the same
//     set, so again the bootstraps are identical. If any member holds state,
//     the platform exists and the node waits to be added instead; if more
//     than N new nodes are present the node refuses to guess and waits for
//     the operator (no split brain on first start).
//   - gossip.join without bootstrap_expect: the node joins an existing
//     platform and never bootstraps.
//   - Neither: a single-node platform bootstraps itself.
//   - Only the leader changes the voter set, from gossip: it adds alive
//     members of its platform that are missing (or moved to a new Raft
//     address) and removes members that announced a graceful leave. A
//     member that merely failed stays a voter: it is most likely
//     restarting, and removing it would shrink the quorum behind the
//     operator's back.

// gossipPool builds the platform's gossip pool from the configuration.
func gossipPool(cfg *config.Config, serverTLS, clientTLS *tls.Config, n *Node) (*federation.Pool, error) {
	keys, err := config.ReadGossipKeys(cfg.Gossip.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("gossip keys: %w", err)
	}
	fc := federation.DefaultConfig()
	fc.Name = cfg.Node.Name
	fc.BindAddr = cfg.Gossip.Bind
	fc.AdvertiseAddr = cfg.Gossip.Advertise
	fc.Label = cfg.Gossip.Label
	fc.Keys = keys
	fc.ServerTLS, fc.ClientTLS = serverTLS, clientTLS
	fc.Seeds = cfg.Gossip.Join
	fc.LeaveOnStop = cfg.Gossip.LeaveOnStop
	fc.Meta = n.localMeta()
	// Tests run with short timings; production keeps the pool's defaults.
	tuneProbes(&fc, cfg.Gossip.ProbeInterval)
	fc.Logger = n.log.With("subsystem", "gossip")
	return federation.New(fc)
}

// tuneProbes derives a pool's timing from a configured probe interval
// (0: keep the defaults).
func tuneProbes(fc *federation.Config, interval time.Duration) {
	if interval <= 0 {
		return
	}
	fc.ProbeInterval = interval
	fc.ProbeTimeout = interval / 2
	fc.GossipInterval = interval / 5
	fc.RejoinInterval = 2 * interval
}

// localMeta is what this node advertises in its platform's pool.
func (n *Node) localMeta() federation.Meta {
	m := n.baseMeta(n.pool)
	if n.store != nil {
		m.RaftAddr = n.store.Addr()
		m.HasState, _ = n.store.HasState()
	}
	return m
}

// baseMeta holds what every pool learns about this node: identity and the
// router and admin addresses as reachable from pool p's network (an
// unspecified bind host is replaced by the host p advertises).
func (n *Node) baseMeta(p *federation.Pool) federation.Meta {
	m := federation.Meta{
		Platform:   n.cfg.Node.Platform,
		Node:       n.cfg.Node.Name,
		InstanceID: n.cfg.Router.InstanceID,
		HSAID:      n.hsaID,
		Version:    Version,
	}
	advHost := ""
	if p != nil {
		advHost, _, _ = net.SplitHostPort(p.Addr())
	}
	if n.router != nil {
		h, _ := n.router.Addrs()
		m.RouterAddr = advertised(h, advHost)
	}
	m.AdminAddr = advertised(n.AdminAddr(), advHost)
	return m
}

// advertised replaces an unspecified bind host (":7443", "0.0.0.0:7443") by
// the host this node advertises in gossip.
func advertised(bound, host string) string {
	h, p, err := net.SplitHostPort(bound)
	if err != nil || host == "" {
		return bound
	}
	if ip := net.ParseIP(h); h == "" || ip != nil && ip.IsUnspecified() {
		return net.JoinHostPort(host, p)
	}
	return bound
}

// runMembership keeps this node's gossip metadata current, bootstraps by
// gossip when configured, and, while this node leads, reconciles the Raft
// voters with the platform's members. It returns when ctx ends.
func (n *Node) runMembership(ctx context.Context, bootstrapByGossip bool) {
	t := time.NewTicker(n.reconcileEvery)
	defer t.Stop()
	var published federation.Meta
	for {
		if m := n.localMeta(); m != published {
			if err := n.pool.SetMeta(m); err != nil {
				n.log.Warn("gossip metadata", "err", err)
			} else {
				published = m
			}
		}
		if bootstrapByGossip && !published.HasState {
			if done := n.bootstrapIfExpected(); done {
				bootstrapByGossip = false
			}
		}
		if n.store.IsLeader() {
			n.reconcileVoters()
		}
		select {
		case <-ctx.Done():
			return
		case <-n.pool.Events():
		case <-t.C:
		}
	}
}

// platformMembers returns the alive members of this node's platform that
// advertise a Raft address.
func (n *Node) platformMembers() (alive []federation.Member, left []federation.Member) {
	for _, m := range n.pool.Members() {
		if m.Meta.Platform != n.cfg.Node.Platform || m.Meta.Node != m.Name || m.Meta.RaftAddr == "" {
			continue
		}
		switch m.State {
		case federation.StateAlive:
			alive = append(alive, m)
		case federation.StateLeft:
			left = append(left, m)
		}
	}
	return alive, left
}

// bootstrapIfExpected applies the bootstrap_expect rule; it reports true
// when nothing more is to be done (bootstrapped, or the platform exists).
func (n *Node) bootstrapIfExpected() bool {
	expect := n.cfg.Gossip.BootstrapExpect
	alive, _ := n.platformMembers()
	for _, m := range alive {
		if m.Meta.HasState && m.Name != n.cfg.Node.Name {
			n.log.Info("platform already formed; waiting for its leader to add this node", "member", m.Name)
			return true
		}
	}
	switch {
	case len(alive) < expect:
		return false
	case len(alive) > expect:
		n.warnOnce("bootstrap-over", "more new nodes than gossip.bootstrap_expect see each other; not bootstrapping, to avoid forming two platforms",
			"expect", expect, "seen", len(alive))
		return false
	}
	servers := make([]catalog.Server, 0, len(alive))
	for _, m := range alive {
		servers = append(servers, catalog.Server{ID: m.Name, Address: m.Meta.RaftAddr})
	}
	sort.Slice(servers, func(i, j int) bool { return servers[i].ID < servers[j].ID })
	n.log.Info("bootstrapping new platform from gossip", "servers", servers)
	if err := n.store.Bootstrap(servers); err != nil {
		n.log.Error("bootstrap", "err", err)
		return false
	}
	return true
}

// reconcileVoters runs on the leader: alive members missing from the Raft
// configuration become voters, members that left are removed.
func (n *Node) reconcileVoters() {
	servers, err := n.store.Servers()
	if err != nil {
		n.log.Warn("read raft configuration", "err", err)
		return
	}
	inRaft := make(map[string]string, len(servers))
	for _, s := range servers {
		inRaft[s.ID] = s.Address
	}
	alive, left := n.platformMembers()
	for _, m := range alive {
		if addr, ok := inRaft[m.Name]; ok && addr == m.Meta.RaftAddr {
			continue
		}
		n.log.Info("adding platform member as voter", "member", m.Name, "raft", m.Meta.RaftAddr)
		if err := n.store.AddVoter(m.Name, m.Meta.RaftAddr); err != nil {
			n.log.Warn("add voter", "member", m.Name, "err", err)
		}
	}
	for _, m := range left {
		if _, ok := inRaft[m.Name]; !ok || m.Name == n.cfg.Node.Name {
			continue
		}
		n.log.Info("removing platform member that left", "member", m.Name)
		if err := n.store.RemoveServer(m.Name); err != nil {
			n.log.Warn("remove server", "member", m.Name, "err", err)
		}
	}
}

// Members returns the platform's gossip members (nil without gossip).
func (n *Node) Members() []federation.Member {
	if n.pool == nil {
		return nil
	}
	return n.pool.Members()
}

// isPlatformNode reports whether name is an alive gossip member of this
// platform (a node whose certificate common name is its node name).
func (n *Node) isPlatformNode(name string) bool {
	if n.pool == nil {
		return false
	}
	alive, _ := n.platformMembers()
	for _, m := range alive {
		if strings.EqualFold(m.Name, name) {
			return true
		}
	}
	return false
}

func (n *Node) warnOnce(key, msg string, args ...any) {
	n.mu.Lock()
	seen := n.warned[key]
	if n.warned == nil {
		n.warned = map[string]bool{}
	}
	n.warned[key] = true
	n.mu.Unlock()
	if !seen {
		n.log.Warn(msg, args...)
	}
}

// poolRun is a running gossip pool, or nothing when the pool is off.
type poolRun struct {
	cancel context.CancelFunc
	done   chan error
	failed <-chan error // receives if the pool stops on its own; nil when off
	result error
	once   sync.Once
}

// runPool starts p (nil: off) and waits until it listens.
func runPool(p *federation.Pool) (*poolRun, error) {
	pr := &poolRun{cancel: func() {}, done: make(chan error, 1)}
	if p == nil {
		pr.done <- nil
		return pr, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr.cancel = cancel
	go func() { pr.done <- p.Run(ctx) }()
	select {
	case <-p.Ready():
	case err := <-pr.done:
		cancel()
		return nil, err
	}
	// failed shares done: whoever receives first (the node's select, or
	// stop) records the result for the other.
	failed := make(chan error, 1)
	go func() {
		err := <-pr.done
		pr.result = err
		failed <- err
		close(failed)
	}()
	pr.failed = failed
	return pr, nil
}

// stop stops the pool (once) and returns its error.
func (pr *poolRun) stop() error {
	pr.once.Do(func() {
		pr.cancel()
		if pr.failed == nil {
			pr.result = <-pr.done
			return
		}
		for range pr.failed {
		}
	})
	return pr.result
}
