// Package federation is vaxel's gossip membership, on hashicorp/memberlist.
// A Pool is one gossip pool: the nodes of one platform (LAN timing), or the
// platforms of a federation (WAN timing, its own key and label). Each member
// advertises a versioned Meta (platform, addresses, HSA-ID…).
//
// Every pool is encrypted and labelled: UDP gossip is sealed with the pool's
// keyring (AES-GCM, verified both ways), TCP state exchange runs inside
// mutual TLS against the pool's CA, and the label keeps pools that share a
// network (or a key) apart. A node with the wrong key, label or certificate
// cannot join.
//
// memberlist forgets a failed member after a while and never calls it again,
// so two halves of a partition would stay apart after the network heals. A
// Pool therefore keeps failed members' addresses and its seeds, and keeps
// trying to join them until they answer (Serf's reconnect, simplified):
// members heal on their own, with no restart.
//
// Nothing here imports Raft or the router; node turns pool events into
// catalog voter changes and routing targets.
package federation

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Config configures a Pool.
type Config struct {
	// Name is this member's name, unique in the pool (the node name in a
	// platform pool; "platform/node" in the federation pool).
	Name string
	// BindAddr is host:port for gossip, UDP and TCP on the same port
	// (port 0: any free port, see Addr).
	BindAddr string
	// AdvertiseAddr is host:port the others use; empty: BindAddr, which then
	// must name a concrete IP.
	AdvertiseAddr string
	// Label separates pools (memberlist rejects traffic with another label).
	Label string
	// Keys is the keyring, primary first: 16, 24 or 32 bytes each. Further
	// keys are accepted on receive, for key rotation.
	Keys [][]byte
	// ServerTLS and ClientTLS protect the TCP streams. Both must verify the
	// peer's certificate against the pool's CA.
	ServerTLS, ClientTLS *tls.Config
	// Seeds are addresses joined at start and whenever this member is alone.
	Seeds []string
	// Meta is advertised until SetMeta changes it.
	Meta Meta
	// WAN selects memberlist's WAN timing (federation between platforms);
	// false selects LAN timing (nodes of one platform).
	WAN bool
	// RejoinInterval is how often seeds and failed members are retried.
	RejoinInterval time.Duration
	// ReapAfter forgets a failed or left member after this long.
	ReapAfter time.Duration
	// LeaveOnStop announces a graceful leave when Run ends, so the others
	// see StateLeft rather than StateFailed.
	LeaveOnStop bool
	// CertIdentity, when set, returns the HSA-ID a member certificate
	// carries; the pool then checks every other member's advertised
	// Meta.HSAID against the certificate it presents (binding.go) and
	// reports the result in Member.Binding. nil: members are not checked.
	// The check trusts the certificate chain as ClientTLS verifies it.
	CertIdentity func(*x509.Certificate) (string, error)

	// Optional timing overrides (zero: the preset's); tests shorten them.
	ProbeInterval  time.Duration
	ProbeTimeout   time.Duration
	GossipInterval time.Duration
	SuspicionMult  int
	// PushPullInterval is how often a member exchanges its whole state
	// with a random other one (memberlist's anti-entropy). Gossip spreads a
	// metadata change only for a few rounds; a member that joined while it
	// spread can keep the old metadata (a node's router address, published
	// when it is ready) until this exchange.
	PushPullInterval time.Duration

	Logger *slog.Logger
}

// DefaultConfig returns defaults for a platform (LAN) pool.
func DefaultConfig() Config {
	// Push/pull every 10 s, not memberlist's 30 s (LAN) or 60 s (WAN):
	// the federation scenario saw nodes that joined while a member's
	// "ready" metadata spread keep its old metadata, and route without it,
	// for over 30 s. One exchange is a TLS stream to one member, a few
	// kB: cheap for pools of tens of nodes.
	return Config{RejoinInterval: 5 * time.Second, ReapAfter: 72 * time.Hour, PushPullInterval: 10 * time.Second}
}

// DefaultFederationConfig returns defaults for the federation pool: WAN
// settings (TCP timeouts, push/pull and gossip fan-out for links between
// sites) with failure detection tightened to about 3 s (2.6-3.4 s measured
// for 7 members, BenchmarkFederationFailureDetection; 800 ms probes gave
// 3.4-5.4 s, over the 5 s goal once in 5), which routing around a lost node
// of another platform needs: memberlist's WAN preset (5 s probes,
// suspicion × 6) takes over 30 s.
func DefaultFederationConfig() Config {
	c := DefaultConfig()
	c.WAN = true
	c.ProbeInterval = 600 * time.Millisecond
	c.ProbeTimeout = 300 * time.Millisecond
	c.GossipInterval = 200 * time.Millisecond
	c.SuspicionMult = 3
	return c
}

// Validate checks cfg.
func (c *Config) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("gossip: a member name is required"))
	}
	if _, _, err := net.SplitHostPort(c.BindAddr); err != nil {
		errs = append(errs, fmt.Errorf("gossip bind address %q: %w", c.BindAddr, err))
	}
	if c.Label == "" || len(c.Label) > memberlist.LabelMaxSize {
		errs = append(errs, fmt.Errorf("gossip label %q: must be 1-%d bytes", c.Label, memberlist.LabelMaxSize))
	}
	if len(c.Keys) == 0 {
		errs = append(errs, errors.New("gossip: an encryption key is required (gossip is never sent in clear)"))
	}
	for i, k := range c.Keys {
		if l := len(k); l != 16 && l != 24 && l != 32 {
			errs = append(errs, fmt.Errorf("gossip key %d is %d bytes, want 16, 24 or 32", i+1, l))
		}
	}
	if c.ServerTLS == nil || c.ClientTLS == nil {
		errs = append(errs, errors.New("gossip: TLS configurations are required"))
	}
	if c.RejoinInterval <= 0 || c.ReapAfter <= 0 {
		errs = append(errs, errors.New("gossip: rejoin interval and reap time must be positive"))
	}
	if _, err := c.Meta.Encode(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// State is a member's liveness as this member sees it.
type State int

// Member states.
const (
	StateAlive  State = iota // answering probes
	StateFailed              // stopped answering; may come back
	StateLeft                // announced a graceful leave
)

func (s State) String() string {
	switch s {
	case StateAlive:
		return "alive"
	case StateFailed:
		return "failed"
	case StateLeft:
		return "left"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// Member is a pool member as this member last saw it. It is a copy.
type Member struct {
	Name  string
	Addr  string // gossip address
	Meta  Meta
	State State
	Since time.Time // when State last changed
	// Binding is Meta.HSAID checked against the member's certificate
	// (Config.CertIdentity); CertHSAID is the certificate's HSA-ID when
	// checked.
	Binding   Binding
	CertHSAID string
}

// EventKind says what happened to a member.
type EventKind int

// Event kinds.
const (
	EventJoin EventKind = iota
	EventUpdate
	EventFail
	EventLeave
)

// Event is one membership change.
type Event struct {
	Kind   EventKind
	Member Member
}

// Pool is one gossip pool. Create with New, run with Run.
type Pool struct {
	cfg Config
	log *slog.Logger

	events  chan Event
	dropped atomic.Uint64
	ready   chan struct{}

	mu       sync.Mutex // guards ml, tr, meta, members, bindings, addr
	ml       *memberlist.Memberlist
	tr       *tlsTransport
	meta     Meta
	members  map[string]*Member
	bindings map[string]*bindState // by member name
	addr     string
	bindKick chan struct{}
}

// New validates cfg and returns a Pool; Run starts it.
func New(cfg Config) (*Pool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Pool{
		cfg:      cfg,
		log:      cfg.Logger,
		events:   make(chan Event, 256),
		ready:    make(chan struct{}),
		meta:     cfg.Meta,
		members:  map[string]*Member{},
		bindings: map[string]*bindState{},
		bindKick: make(chan struct{}, 1),
	}, nil
}

// Ready is closed once the pool listens and Addr is known.
func (p *Pool) Ready() <-chan struct{} { return p.ready }

// Addr is the advertised gossip address (after Ready).
func (p *Pool) Addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}

// Events delivers membership changes. Delivery never blocks memberlist: when
// the buffer (256) is full the event is dropped and counted (Dropped), so a
// consumer must treat events as hints and read Members for the full state.
func (p *Pool) Events() <-chan Event { return p.events }

// BytesSent is what this member has sent to the pool (UDP payloads and TCP
// stream bytes, before TLS framing) since it started.
func (p *Pool) BytesSent() uint64 {
	p.mu.Lock()
	tr := p.tr
	p.mu.Unlock()
	if tr == nil {
		return 0
	}
	return tr.sent.Load()
}

// Dropped counts events dropped because the consumer lagged.
func (p *Pool) Dropped() uint64 { return p.dropped.Load() }

// Members returns every known member, this one included, sorted by name.
func (p *Pool) Members() []Member {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Member, 0, len(p.members))
	for _, m := range p.members {
		c := *m
		c.Binding, c.CertHSAID = p.binding(m)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// SetMeta changes what this member advertises and gossips the change.
func (p *Pool) SetMeta(m Meta) error {
	if _, err := m.Encode(); err != nil {
		return err
	}
	p.mu.Lock()
	p.meta = m
	ml := p.ml
	p.mu.Unlock()
	if ml == nil {
		return nil
	}
	if err := ml.UpdateNode(5 * time.Second); err != nil {
		return fmt.Errorf("gossip metadata update: %w", err)
	}
	return nil
}

// RTT measures the round trip to a member with one gossip ping (UDP,
// encrypted and labelled like all gossip), bounded by the probe timeout.
// The federation uses it to prefer a platform's nearest nodes.
func (p *Pool) RTT(name string) (time.Duration, error) {
	p.mu.Lock()
	ml := p.ml
	m, ok := p.members[name]
	var addr string
	if ok {
		addr = m.Addr
	}
	p.mu.Unlock()
	if ml == nil {
		return 0, errors.New("gossip pool is not running")
	}
	if !ok || addr == "" {
		return 0, fmt.Errorf("gossip ping %s: not a known member", name)
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return 0, fmt.Errorf("gossip ping %s at %s: %w", name, addr, err)
	}
	// Timed here, around the whole ping: memberlist's own figure starts
	// after the send and ends when its handler saw the ack, so an ack that
	// arrives before the send returns gives a negative round trip (seen on
	// loopback).
	t0 := time.Now()
	if _, err := ml.Ping(name, ua); err != nil {
		return 0, fmt.Errorf("gossip ping %s at %s: %w", name, addr, err)
	}
	return time.Since(t0), nil
}

// Join contacts the given gossip addresses; it succeeds if any answers.
func (p *Pool) Join(addrs []string) (int, error) {
	p.mu.Lock()
	ml := p.ml
	p.mu.Unlock()
	if ml == nil {
		return 0, errors.New("gossip pool is not running")
	}
	n, err := ml.Join(addrs)
	if n > 0 {
		return n, nil
	}
	if err != nil {
		return 0, fmt.Errorf("gossip join %v: %w", addrs, err)
	}
	return 0, fmt.Errorf("gossip join %v: no member answered", addrs)
}

// Run starts gossip and blocks until ctx is cancelled; then it leaves (if
// configured) and shuts memberlist down.
func (p *Pool) Run(ctx context.Context) error {
	ml, err := p.start()
	if err != nil {
		return err
	}
	close(p.ready)
	var checks sync.WaitGroup
	checkCtx, stopChecks := context.WithCancel(ctx)
	defer stopChecks()
	if p.cfg.CertIdentity != nil {
		checks.Add(1)
		go func() {
			defer checks.Done()
			p.runBindings(checkCtx)
		}()
	}
	joins := newFlights()
	p.rejoin(ml, joins)
	t := time.NewTicker(p.cfg.RejoinInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			// End a check in flight (it uses the transport's TLS
			// configuration and keys) before memberlist shuts down.
			stopChecks()
			checks.Wait()
			if p.cfg.LeaveOnStop {
				p.mu.Lock()
				p.meta.Leaving = true
				p.mu.Unlock()
				if err := ml.UpdateNode(2 * time.Second); err != nil {
					p.log.Warn("gossip leave intent", "err", err)
				}
				if err := ml.Leave(5 * time.Second); err != nil {
					p.log.Warn("gossip leave", "err", err)
				}
			}
			err := ml.Shutdown()
			// The transport's shutdown ended the joins' streams.
			if !joins.wait(rejoinStopWait) {
				p.log.Debug("gossip: a join is still resolving its address at shutdown; not waiting for it")
			}
			if err != nil {
				return fmt.Errorf("gossip shutdown: %w", err)
			}
			return nil
		case <-t.C:
			p.reap()
			p.rejoin(ml, joins)
		}
	}
}

func (p *Pool) start() (*memberlist.Memberlist, error) {
	host, port, _ := net.SplitHostPort(p.cfg.BindAddr)
	bindPort, err := strconv.Atoi(port)
	if err != nil {
		return nil, fmt.Errorf("gossip bind port %q: %w", port, err)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	stdlog := slog.NewLogLogger(p.log.Handler(), slog.LevelDebug)
	nt, err := listenTransport(host, bindPort, p.log)
	if err != nil {
		return nil, fmt.Errorf("gossip listen on %s: %w", p.cfg.BindAddr, err)
	}
	bindPort = nt.Port()
	advHost, advPort := host, bindPort
	if p.cfg.AdvertiseAddr != "" {
		h, ps, err := net.SplitHostPort(p.cfg.AdvertiseAddr)
		if err != nil {
			nt.Shutdown()
			return nil, fmt.Errorf("gossip advertise address %q: %w", p.cfg.AdvertiseAddr, err)
		}
		advHost = h
		if ps != "0" && ps != "" {
			if advPort, err = strconv.Atoi(ps); err != nil {
				nt.Shutdown()
				return nil, fmt.Errorf("gossip advertise port %q: %w", ps, err)
			}
		}
	}
	if ip := net.ParseIP(advHost); ip == nil || ip.IsUnspecified() {
		nt.Shutdown()
		return nil, fmt.Errorf("gossip: advertise address must be a concrete IP (bind is %s); set it", p.cfg.BindAddr)
	}

	var mc *memberlist.Config
	if p.cfg.WAN {
		mc = memberlist.DefaultWANConfig()
	} else {
		mc = memberlist.DefaultLANConfig()
	}
	mc.Name = p.cfg.Name
	mc.BindAddr, mc.BindPort = host, bindPort
	mc.AdvertiseAddr, mc.AdvertisePort = advHost, advPort
	mc.Label = p.cfg.Label
	kr, err := memberlist.NewKeyring(p.cfg.Keys, p.cfg.Keys[0])
	if err != nil {
		nt.Shutdown()
		return nil, fmt.Errorf("gossip keyring: %w", err)
	}
	mc.Keyring = kr
	mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	// No LZW on gossip: its messages are a few hundred bytes, which LZW does
	// not shrink, and every compressed message allocated a new LZW writer
	// (tens of kB) — the largest source of garbage on an idle node, and so
	// of its garbage collections. Compressed messages from other nodes are
	// still read.
	mc.EnableCompression = false
	tr := newTLSTransport(nt, p.cfg.ServerTLS, p.cfg.ClientTLS, p.cfg.Name, p.cfg.Keys[0])
	mc.Transport = tr
	d := &delegate{p: p}
	mc.Delegate, mc.Events, mc.Conflict = d, d, d
	mc.Logger = stdlog
	if p.cfg.ProbeInterval > 0 {
		mc.ProbeInterval = p.cfg.ProbeInterval
	}
	if p.cfg.ProbeTimeout > 0 {
		mc.ProbeTimeout = p.cfg.ProbeTimeout
	}
	if p.cfg.GossipInterval > 0 {
		mc.GossipInterval = p.cfg.GossipInterval
	}
	if p.cfg.SuspicionMult > 0 {
		mc.SuspicionMult = p.cfg.SuspicionMult
	}
	if p.cfg.PushPullInterval > 0 {
		mc.PushPullInterval = p.cfg.PushPullInterval
	}
	// A dead member stays in memberlist's list (and receives gossip) for
	// this long; the pool's own rejoin covers longer partitions.
	mc.GossipToTheDeadTime = 30 * time.Second
	if p.cfg.WAN {
		mc.GossipToTheDeadTime = 60 * time.Second
	}
	// A failed member may come back on a new address (a container gets a
	// new IP): after this long its name may be reclaimed by the new
	// address. memberlist's default never allows it.
	mc.DeadNodeReclaimTime = mc.GossipToTheDeadTime

	ml, err := memberlist.Create(mc)
	if err != nil {
		mc.Transport.Shutdown()
		return nil, fmt.Errorf("gossip start: %w", err)
	}
	p.mu.Lock()
	p.ml, p.tr = ml, tr
	p.addr = net.JoinHostPort(advHost, strconv.Itoa(advPort))
	p.mu.Unlock()
	p.log.Info("gossip pool started", "addr", p.Addr(), "label", p.cfg.Label, "wan", p.cfg.WAN)
	return ml, nil
}

// maxRejoins bounds the joins of failed members' addresses in flight at
// once; further addresses wait for a later round. Seeds are not counted:
// there are few of them, and when this member is alone they are what
// finds the others again (a failed member's old address may be gone for
// good, e.g. a container that came back on a new IP).
const maxRejoins = 8

// rejoinStopWait bounds how long Run waits, after memberlist has shut
// down, for joins still in flight. The transport's shutdown ends their
// streams at once, but a seed given as a DNS name may still be resolving
// (memberlist's lookup takes no context); such a join fails by itself
// once resolved, since the transport no longer dials.
const rejoinStopWait = 3 * time.Second

// rejoin tries the seeds when this member is alone, and failed members'
// addresses always: that is how a partition heals. Each address is joined
// on a goroutine of its own (joins): a join can take memberlist's
// TCPTimeout (30 s on WAN timing) at an address that accepts and never
// answers, and such an address must hold up neither the other addresses
// nor the pool's loop. Seeds go first and are not counted against
// maxRejoins.
func (p *Pool) rejoin(ml *memberlist.Memberlist, joins *flights) {
	p.mu.Lock()
	var failed []string
	alive := 0
	for _, m := range p.members {
		switch {
		case m.Name == p.cfg.Name:
		case m.State == StateAlive:
			alive++
		case m.State == StateFailed:
			failed = append(failed, m.Addr)
		}
	}
	p.mu.Unlock()
	join := func(addr string) func() {
		return func() {
			if n, err := ml.Join([]string{addr}); n == 0 && err != nil {
				p.log.Debug("gossip rejoin: no answer", "target", addr, "err", err)
			}
		}
	}
	if alive == 0 {
		for _, addr := range p.cfg.Seeds {
			joins.start(addr, false, 0, join(addr))
		}
	}
	for _, addr := range failed {
		joins.start(addr, true, maxRejoins, join(addr))
	}
}

// reap forgets members that failed or left more than ReapAfter ago.
func (p *Pool) reap() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for name, m := range p.members {
		if m.State != StateAlive && time.Since(m.Since) > p.cfg.ReapAfter {
			delete(p.members, name)
			delete(p.bindings, name)
		}
	}
}

func (p *Pool) note(kind EventKind, n *memberlist.Node) {
	meta, err := DecodeMeta(n.Meta)
	if err != nil {
		p.log.Warn("gossip member with unreadable metadata", "member", n.Name, "err", err)
	}
	state := StateAlive
	switch {
	case kind == EventLeave || kind == EventFail && meta.Leaving:
		kind, state = EventLeave, StateLeft
	case kind == EventFail:
		state = StateFailed
	}
	p.mu.Lock()
	m := p.members[n.Name]
	if m == nil {
		m = &Member{Name: n.Name}
		p.members[n.Name] = m
	}
	if m.State != state || m.Since.IsZero() {
		m.Since = time.Now()
	}
	if state == StateAlive && m.State != StateAlive {
		p.recheckSoon(n.Name)
	}
	m.Addr = n.Address()
	m.Meta = meta
	m.State = state
	ev := Event{Kind: kind, Member: *m}
	ev.Member.Binding, ev.Member.CertHSAID = p.binding(m)
	p.mu.Unlock()
	p.emit(ev)
	if p.cfg.CertIdentity != nil && state == StateAlive {
		p.kickBindings()
	}
}

// emit delivers ev without blocking (Events).
func (p *Pool) emit(ev Event) {
	select {
	case p.events <- ev:
	default:
		p.dropped.Add(1)
	}
}

// delegate connects memberlist's callbacks to the pool. memberlist calls
// them with its own locks held: they copy what they keep and never block.
type delegate struct{ p *Pool }

var (
	_ memberlist.Delegate         = (*delegate)(nil)
	_ memberlist.EventDelegate    = (*delegate)(nil)
	_ memberlist.ConflictDelegate = (*delegate)(nil)
)

func (d *delegate) NodeMeta(limit int) []byte {
	d.p.mu.Lock()
	m := d.p.meta
	d.p.mu.Unlock()
	b, err := m.Encode()
	if err != nil || len(b) > limit {
		// Validate and SetMeta refuse such metadata; never send it.
		return nil
	}
	return b
}

func (d *delegate) NotifyMsg([]byte)                           {}
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}

func (d *delegate) NotifyJoin(n *memberlist.Node)   { d.p.note(EventJoin, n) }
func (d *delegate) NotifyUpdate(n *memberlist.Node) { d.p.note(EventUpdate, n) }
func (d *delegate) NotifyLeave(n *memberlist.Node) {
	// n.State is not updated by memberlist at this point (it sets the
	// state on its own record, not on the embedded Node), so a graceful
	// leave is recognised by Meta.Leaving in note.
	if n.State == memberlist.StateLeft {
		d.p.note(EventLeave, n)
		return
	}
	d.p.note(EventFail, n)
}

func (d *delegate) NotifyConflict(existing, other *memberlist.Node) {
	d.p.log.Error("gossip: two members use one name; give every node a unique node.name",
		"name", existing.Name, "existing", existing.Address(), "other", other.Address())
}
