// Package node wires the catalog, the router and (later) federation into one
// running platform node. It depends on every subsystem; only cmd/vaxel and
// test code may import it. It owns the start/stop order, turns each catalog
// change into a router catalog swap, and hosts the admin API, forwarding
// catalog writes to the leader.
package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/vaxel/vaxel/catalog"
	"github.com/vaxel/vaxel/federation"
	"github.com/vaxel/vaxel/node/config"
	"github.com/vaxel/vaxel/pki"
	"github.com/vaxel/vaxel/router"
	"github.com/vaxel/vaxel/tak"
)

// Node is one running node of a platform.
type Node struct {
	cfg    *config.Config
	log    *slog.Logger
	store  *catalog.Store
	router *router.Router
	admin  *admin
	pool   *federation.Pool // platform gossip; nil when gossip is off
	fed    *federation.Pool // federation gossip; nil when federation is off
	otlp   *otlpExport      // hop records as OTLP spans; nil when trace.otlp_endpoint is empty
	hsaID  string           // the platform's HSA-ID, from the node certificate

	reconcileEvery time.Duration
	// failoverWait bounds how long an admin write waits for a catalog
	// leader during a failover (failoverWait()).
	failoverWait time.Duration

	nodeTLS *tls.Config // client side: Raft, forwarding to the leader
	fedTLS  *tls.Config // client side towards other platforms' nodes (trace queries); nil when federation is off
	ready   chan struct{}
	started time.Time

	mu        sync.Mutex // guards adminAddr, warned
	adminAddr string
	warned    map[string]bool

	pubMu sync.Mutex // serializes publishCatalog
}

// Option adjusts how New builds a node.
type Option func(*options)

type options struct {
	callLogW      io.Writer
	callLogFields []slog.Attr
}

// WithCallLog writes the router's per-call lines straight to w, batched,
// instead of through the node logger (router.Config.CallLogWriter). Use it
// only when the node logger is a JSON logger writing to w; fields are the
// static attributes that logger carries (e.g. node, platform), so the call
// lines keep them. w must be safe for concurrent use with the logger's own
// writes (an *os.File is).
func WithCallLog(w io.Writer, fields ...slog.Attr) Option {
	return func(o *options) { o.callLogW, o.callLogFields = w, fields }
}

// New builds a node from a validated configuration. It opens nothing; Run does.
func New(cfg *config.Config, log *slog.Logger, opts ...Option) (*Node, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	serverTLS, err := pki.ServerTLSConfig(cfg.TLS.Cert, cfg.TLS.Key, []string{cfg.TLS.CA}, true)
	if err != nil {
		return nil, fmt.Errorf("node TLS: %w", err)
	}
	clientTLS, err := pki.ClientTLSConfig(cfg.TLS.Cert, cfg.TLS.Key, []string{cfg.TLS.CA})
	if err != nil {
		return nil, fmt.Errorf("node TLS: %w", err)
	}
	// Nodes address each other by IP:port; node certificates need not carry
	// those IPs. Verify the chain against the platform CA (that is what
	// makes a peer a member of this platform) rather than the host name.
	clientTLS = chainOnly(clientTLS)

	cc := catalogConfig(cfg)
	cc.ServerTLS, cc.ClientTLS = serverTLS, clientTLS
	cc.Logger = log.With("subsystem", "catalog")
	store, err := catalog.New(cc)
	if err != nil {
		return nil, err
	}

	rc, err := routerConfig(cfg, log)
	if err != nil {
		return nil, err
	}
	if o.callLogW != nil {
		rc.CallLogWriter = o.callLogW
		rc.CallLogFields = append(append([]slog.Attr(nil), o.callLogFields...), slog.String("subsystem", "router"))
	}
	rt, err := router.New(rc)
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: log, store: store, router: rt, nodeTLS: clientTLS, ready: make(chan struct{}), started: time.Now(), reconcileEvery: time.Second,
		failoverWait: failoverWait(cc)}
	if n.otlp, err = newOTLPExport(cfg, rt, log.With("subsystem", "otlp")); err != nil {
		return nil, err
	}
	if len(serverTLS.Certificates) > 0 && serverTLS.Certificates[0].Leaf != nil {
		n.hsaID, _ = router.SenderIDFromCert(serverTLS.Certificates[0].Leaf, nil)
	}
	if cfg.Gossip.Bind != "" {
		if n.pool, err = gossipPool(cfg, serverTLS, clientTLS, n); err != nil {
			return nil, err
		}
	}
	if cfg.Federation.Bind != "" {
		// Other platforms' nodes carry certificates from their own CAs.
		fsrv, err := pki.ServerTLSConfig(cfg.TLS.Cert, cfg.TLS.Key, cfg.Federation.CAs, true)
		if err != nil {
			return nil, fmt.Errorf("federation TLS: %w", err)
		}
		fcli, err := pki.ClientTLSConfig(cfg.TLS.Cert, cfg.TLS.Key, cfg.Federation.CAs)
		if err != nil {
			return nil, fmt.Errorf("federation TLS: %w", err)
		}
		n.fedTLS = chainOnly(fcli)
		if n.fed, err = federationPool(cfg, fsrv, n.fedTLS, n); err != nil {
			return nil, err
		}
	}
	n.admin, err = newAdmin(n)
	if err != nil {
		return nil, err
	}
	return n, nil
}

// catalogConfig is the catalog store's configuration, without TLS and
// logger. Raft timings the operator left unset follow the ones set:
// Raft wants heartbeat ≥ leader lease and election ≥ heartbeat, so an
// unset lease never exceeds a shorter heartbeat and an unset election
// timeout never falls below a longer one. A value that is set is used as
// it is (config validation refuses a set pair that Raft would).
func catalogConfig(cfg *config.Config) catalog.Config {
	cc := catalog.DefaultConfig()
	cc.NodeID = cfg.Node.Name
	cc.DataDir = cfg.Node.DataDir
	cc.BindAddr = cfg.Raft.Bind
	cc.AdvertiseAddr = cfg.Raft.Advertise
	r := cfg.Raft
	if r.HeartbeatTimeout > 0 {
		cc.HeartbeatTimeout = r.HeartbeatTimeout
	}
	switch {
	case r.ElectionTimeout > 0:
		cc.ElectionTimeout = r.ElectionTimeout
	case cc.ElectionTimeout < cc.HeartbeatTimeout:
		cc.ElectionTimeout = cc.HeartbeatTimeout
	}
	switch {
	case r.LeaderLeaseTimeout > 0:
		cc.LeaderLeaseTimeout = r.LeaderLeaseTimeout
	case cc.LeaderLeaseTimeout > cc.HeartbeatTimeout:
		cc.LeaderLeaseTimeout = cc.HeartbeatTimeout
	}
	return cc
}

// failoverWait is how long an admin write waits for a catalog leader
// during a failover before it answers 503: two election rounds at the
// configured timings (a follower notices the leader gone within two
// heartbeat timeouts, an election round takes up to two election
// timeouts), so that a longer raft.heartbeat_timeout or election_timeout
// lengthens it. At least 4 s, which is that for the default timings
// (500 ms each); at most 2 min, well inside the admin API's write
// timeout.
func failoverWait(cc catalog.Config) time.Duration {
	return min(max(4*(cc.HeartbeatTimeout+cc.ElectionTimeout), 4*time.Second), 2*time.Minute)
}

func routerConfig(cfg *config.Config, log *slog.Logger) (router.Config, error) {
	rc := router.DefaultConfig()
	c := cfg.Router
	rc.InstanceID, rc.InstanceName = c.InstanceID, c.InstanceName
	rc.NodeName = cfg.Node.Name
	rc.HTTPSAddr, rc.HTTPAddr = c.HTTPSAddr, c.HTTPAddr
	rc.HTTPAllowList = router.IPAllowList(c.HTTPAllowList)
	if c.CertHeader != "" {
		rc.CertHeader = c.CertHeader
	}
	if c.SenderPattern != "" {
		re, err := regexp.Compile(c.SenderPattern)
		if err != nil {
			return rc, fmt.Errorf("router.sender_pattern: %w", err)
		}
		rc.SenderPattern = re
	}
	rc.OriginalConsumerAllowList = c.OriginalConsumerAllowList
	rc.RejectOriginalConsumer = c.RejectOriginalConsumer
	switch {
	case c.MaxHops > 0:
		rc.MaxHops = c.MaxHops
	case c.MaxHops < 0:
		rc.MaxHops = 0 // no limit
	}
	if c.PropagateCorrelationHTTPS != nil {
		rc.PropagateCorrelationHTTPS = *c.PropagateCorrelationHTTPS
	}
	if c.MaxBodySize > 0 {
		rc.MaxBodySize = c.MaxBodySize
	}
	set := func(dst *time.Duration, v time.Duration) {
		if v > 0 {
			*dst = v
		}
	}
	set(&rc.ConnectTimeout, c.ConnectTimeout)
	set(&rc.PlatformConnectTimeout, cfg.Federation.ConnectTimeout)
	set(&rc.RetryDelay, c.RetryDelay)
	set(&rc.ReadTimeout, c.ReadTimeout)
	set(&rc.WriteTimeout, c.WriteTimeout)
	set(&rc.IdleTimeout, c.IdleTimeout)
	if c.DefaultRoutingDelimiter != nil {
		rc.Routing.Delimiter = *c.DefaultRoutingDelimiter
	}
	rc.Routing.DefaultRoutingContracts = c.DefaultRoutingContracts
	rc.Routing.DefaultRoutingSenders = c.DefaultRoutingSenders
	if c.HSAClimbRoutes != nil {
		rc.Routing.NoRouteClimb = !*c.HSAClimbRoutes
	}
	if c.HSAClimbAuthorizations != nil {
		rc.Routing.NoAuthClimb = !*c.HSAClimbAuthorizations
	}
	rc.Routing.RouteClimbExceptions = c.RouteClimbExceptions
	rc.Routing.AuthClimbExceptions = c.AuthClimbExceptions
	if c.LogCalls != nil {
		rc.LogCalls = *c.LogCalls
	}
	if c.TraceMaxRecords != 0 {
		rc.Hops.MaxRecords = c.TraceMaxRecords
	}
	set(&rc.Hops.MaxAge, c.TraceMaxAge)
	srvTLS, err := pki.ServerTLSConfig(cfg.TLS.Cert, cfg.TLS.Key, cfg.TLS.ClientCAs, true)
	if err != nil {
		return rc, fmt.Errorf("router TLS: %w", err)
	}
	rc.TLS = srvTLS
	prodTLS, err := pki.ClientTLSConfig(cfg.TLS.Cert, cfg.TLS.Key, cfg.TLS.ProducerCAs)
	if err != nil {
		return rc, fmt.Errorf("producer TLS: %w", err)
	}
	rc.ProducerTLS = prodTLS
	rc.Logger = log.With("subsystem", "router")
	return rc, nil
}

// chainOnly keeps full chain verification against the configured roots but
// does not bind the certificate to the dialled host name.
func chainOnly(c *tls.Config) *tls.Config {
	c = c.Clone()
	roots := c.RootCAs
	c.InsecureSkipVerify = true // replaced by VerifyConnection below, which verifies the chain
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("peer presented no certificate")
		}
		opts := x509VerifyOptions(roots, cs)
		_, err := cs.PeerCertificates[0].Verify(opts)
		return err
	}
	return c
}

// Ready is closed when the node's listeners are up and it holds a catalog
// (see Readiness); it never closes for a node that never gets one.
func (n *Node) Ready() <-chan struct{} { return n.ready }

// Store returns the node's catalog replica (for tests and the CLI in-process).
func (n *Node) Store() *catalog.Store { return n.store }

// RouterAddrs returns the bound router listeners.
func (n *Node) RouterAddrs() (https, http string) { return n.router.Addrs() }

// AdminAddr returns the bound admin listener.
func (n *Node) AdminAddr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.adminAddr
}

// Catalog returns the catalog the router serves from.
func (n *Node) Catalog() *tak.Catalog { return n.store.Current() }

// publishCatalog hands the router the store's current catalog. A goroutine
// does it on every change of the store; a write through the admin API does
// it too before it answers, so that a call sent after the acknowledged
// write is routed by it on the node that applied it (the goroutine may run
// later). The lock keeps the two from storing out of order: each reads
// Current under it, and Current only moves forward.
func (n *Node) publishCatalog() {
	n.pubMu.Lock()
	n.router.SetCatalog(n.store.Current())
	n.pubMu.Unlock()
}

// Run starts the node and blocks until ctx is cancelled. Start order:
// catalog (Raft) → bootstrap if new → router fed by catalog changes → admin
// API. Stop order is the reverse, for a reason each: the admin API stops
// taking writes first; the router stops accepting calls and drains those in
// flight while the catalog is still there to have routed them; the catalog
// last, handing leadership over so the platform's writes resume at once.
func (n *Node) Run(ctx context.Context) error {
	// The router flushes its call log when its Run returns; this covers
	// the paths that return before the router starts.
	defer n.router.FlushCallLog()
	catCtx, stopCat := context.WithCancel(context.Background())
	catDone := make(chan error, 1)
	go func() { catDone <- n.store.Run(catCtx) }()
	select {
	case <-n.store.Ready():
	case err := <-catDone:
		stopCat()
		return err
	case <-ctx.Done():
		stopCat()
		return <-catDone
	}
	// Gossip inside the platform, then the federation's: both optional.
	gs, err := runPool(n.pool)
	if err != nil {
		stopCat()
		<-catDone
		return err
	}
	fd, err := runPool(n.fed)
	if err != nil {
		gs.stop()
		stopCat()
		<-catDone
		return err
	}
	byGossip, err := n.maybeBootstrap()
	if err != nil {
		fd.stop()
		gs.stop()
		stopCat()
		<-catDone
		return err
	}

	// The OTLP export stops after the router (below), so that the records
	// of the calls the router drains on its way out are exported too.
	exCtx, stopExport := context.WithCancel(context.Background())
	exDone := make(chan struct{})
	go func() {
		defer close(exDone)
		if n.otlp != nil {
			n.otlp.run(exCtx)
		}
	}()
	rtCtx, stopRouter := context.WithCancel(context.Background())
	rtDone := make(chan error, 1)
	n.publishCatalog()
	go func() { rtDone <- n.router.Run(rtCtx) }()
	feedDone := make(chan struct{})
	go func() {
		defer close(feedDone)
		for {
			select {
			case <-rtCtx.Done():
				return
			case <-n.store.Changed():
				n.publishCatalog()
			}
		}
	}()

	adCtx, stopAdmin := context.WithCancel(context.Background())
	adDone := make(chan error, 1)
	go func() { adDone <- n.admin.run(adCtx) }()

	readyDone := make(chan struct{})
	go func() {
		defer close(readyDone)
		n.waitReady(rtCtx)
	}()
	memDone := make(chan struct{})
	go func() {
		defer close(memDone)
		if n.pool != nil {
			n.runMembership(rtCtx, byGossip)
		}
	}()
	fedDone := make(chan struct{})
	go func() {
		defer close(fedDone)
		if n.fed != nil {
			n.runFederation(rtCtx)
		}
	}()

	select {
	case <-ctx.Done():
	case err = <-rtDone:
		err = fmt.Errorf("router stopped: %w", err)
		rtDone <- nil
	case err = <-adDone:
		err = fmt.Errorf("admin API stopped: %w", err)
		adDone <- nil
	case err = <-catDone:
		err = fmt.Errorf("catalog stopped: %w", err)
		catDone <- nil
	case err = <-gs.failed:
		err = fmt.Errorf("gossip stopped: %w", err)
	case err = <-fd.failed:
		err = fmt.Errorf("federation gossip stopped: %w", err)
	}
	n.log.Info("node stopping")
	stopAdmin()
	if e := <-adDone; e != nil && err == nil {
		err = e
	}
	stopRouter()
	if e := <-rtDone; e != nil && err == nil {
		err = e
	}
	<-feedDone
	stopExport()
	<-exDone
	<-readyDone
	<-memDone
	<-fedDone
	// Gossip stops before the catalog: with leave_on_stop the others see
	// the leave while this node can still hand leadership over.
	if e := fd.stop(); e != nil && err == nil {
		err = e
	}
	if e := gs.stop(); e != nil && err == nil {
		err = e
	}
	stopCat()
	if e := <-catDone; e != nil && err == nil {
		err = e
	}
	n.log.Info("node stopped")
	return err
}

// maybeBootstrap applies the bootstrap rules (membership.go) at start. It
// reports whether bootstrapping is left to gossip (bootstrap_expect), which
// runMembership then does once the expected nodes see each other.
func (n *Node) maybeBootstrap() (byGossip bool, err error) {
	has, err := n.store.HasState()
	if err != nil {
		return false, fmt.Errorf("check raft state: %w", err)
	}
	switch {
	case has:
		return false, nil
	case len(n.cfg.Raft.Servers) > 0:
		servers := []catalog.Server{}
		for _, p := range n.cfg.Raft.Servers {
			servers = append(servers, catalog.Server{ID: p.ID, Address: p.Raft})
		}
		n.log.Info("bootstrapping new platform from raft.servers", "servers", servers)
		return false, n.store.Bootstrap(servers)
	case n.pool != nil && n.cfg.Gossip.BootstrapExpect > 0:
		n.log.Info("new platform: waiting for the expected nodes in gossip", "expect", n.cfg.Gossip.BootstrapExpect)
		return true, nil
	case n.pool != nil && len(n.cfg.Gossip.Join) > 0:
		n.log.Info("new node: joining the platform through gossip; the leader adds it as a voter", "join", n.cfg.Gossip.Join)
		return false, nil
	}
	self := []catalog.Server{{ID: n.cfg.Node.Name, Address: n.store.Addr()}}
	n.log.Info("bootstrapping new single-node platform", "servers", self)
	return false, n.store.Bootstrap(self)
}

// Readiness reports whether the node can route: it holds a catalog with
// routes or authorizations (an empty catalog answers every call VP008, the
// reference's "TAK not initialised") and its router listens.
func (n *Node) Readiness() (bool, string) {
	c := n.store.Current()
	if c.Empty() {
		return false, "no catalog: the node has not received a catalog with routes and authorizations"
	}
	if h, _ := n.router.Addrs(); h == "" {
		return false, "router not listening"
	}
	return true, fmt.Sprintf("catalog version %d", c.Seq())
}

func (n *Node) waitReady(ctx context.Context) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		if ok, _ := n.Readiness(); ok {
			close(n.ready)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// leaderAdmin returns the admin address of the catalog leader: from gossip
// when on, else from raft.servers.
func (n *Node) leaderAdmin() (string, error) {
	id, addr := n.store.Leader()
	if id == "" {
		return "", errors.New("no catalog leader is elected; retry shortly")
	}
	for _, m := range n.Members() {
		if m.Name == id && m.State == federation.StateAlive && m.Meta.AdminAddr != "" {
			return m.Meta.AdminAddr, nil
		}
	}
	for _, p := range n.cfg.Raft.Servers {
		if p.ID == id || p.Raft == addr {
			if p.Admin == "" {
				return "", fmt.Errorf("leader %s has no admin address in raft.servers", id)
			}
			return p.Admin, nil
		}
	}
	return "", fmt.Errorf("leader %s (%s) is neither an alive gossip member nor in raft.servers", id, addr)
}
