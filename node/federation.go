package node

import (
	"context"
	"crypto/tls"
	"fmt"
	"sort"
	"strings"
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
	tuneProbes(&fc, f.ProbeInterval)
	fc.Logger = n.log.With("subsystem", "federation")
	return federation.New(fc)
}

// federationMeta is what this node tells the federation.
func (n *Node) federationMeta() federation.Meta {
	m := n.baseMeta(n.fed)
	m.Environment = n.cfg.Federation.Environment
	return m
}

// runFederation keeps this node's federation metadata current and the
// router's Platforms table in step with the federation's members.
func (n *Node) runFederation(ctx context.Context) {
	t := time.NewTicker(n.reconcileEvery)
	defer t.Stop()
	var published federation.Meta
	for {
		if m := n.federationMeta(); m != published {
			if err := n.fed.SetMeta(m); err != nil {
				n.log.Warn("federation metadata", "err", err)
			} else {
				published = m
			}
		}
		n.router.SetPlatforms(router.NewPlatforms(n.peerPlatforms()))
		select {
		case <-ctx.Done():
			return
		case <-n.fed.Events():
		case <-t.C:
		}
	}
}

// peerPlatforms groups the alive federation members that this platform may
// route to by platform.
func (n *Node) peerPlatforms() map[string]router.PlatformNodes {
	allowed := map[string]bool{}
	for _, p := range n.cfg.Federation.AllowPlatforms {
		allowed[strings.ToLower(p)] = true
	}
	out := map[string]router.PlatformNodes{}
	for _, m := range n.fed.Members() {
		md := m.Meta
		if m.State != federation.StateAlive || md.RouterAddr == "" || md.Environment != n.cfg.Federation.Environment ||
			!allowed[strings.ToLower(md.Platform)] || m.Name != md.Platform+"/"+md.Node {
			continue
		}
		pn := out[md.Platform]
		pn.Addrs = append(pn.Addrs, md.RouterAddr)
		out[md.Platform] = pn
	}
	for k, pn := range out {
		// No distance measure yet: every node is near, in a stable order.
		sort.Strings(pn.Addrs)
		out[k] = pn
	}
	return out
}

// FederationMembers returns the federation pool's members (nil when off).
func (n *Node) FederationMembers() []federation.Member {
	if n.fed == nil {
		return nil
	}
	return n.fed.Members()
}
