// Package config is the node's configuration: one YAML file, overridable by
// environment variables (VAXEL_SECTION_KEY) and flags, loaded in named phases
// (defaults → file → env → flags → derive → validate) and then frozen. It
// produces each subsystem's Config; validation messages tell the operator
// what to change.
package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole node configuration. Field comments are the operator
// documentation (docs/configuration.md is generated from the same text).
type Config struct {
	Node   Node   `yaml:"node"`
	TLS    TLS    `yaml:"tls"`
	Router Router `yaml:"router"`
	Raft   Raft   `yaml:"raft"`
	Gossip Gossip `yaml:"gossip"`
	// Federation is the gossip pool shared with other platforms.
	Federation Federation `yaml:"federation"`
	Admin      Admin      `yaml:"admin"`
	Log        Log        `yaml:"log"`
	// Trace exports hop records to an OpenTelemetry collector.
	Trace Trace `yaml:"trace"`
}

// Node identifies the node and its platform.
type Node struct {
	// Name is unique within the platform and stable across restarts; it is
	// the node's Raft id. Default: the host name.
	Name string `yaml:"name"`
	// Platform is the platform's name, the "plattform" every order must name.
	Platform string `yaml:"platform"`
	// DataDir holds the Raft log, snapshots and state. Keep it across
	// restarts: a node with an empty data dir joins as a new node.
	DataDir string `yaml:"data_dir"`
}

// TLS holds the certificates. Every listener that expects a certificate
// verifies it: the router (consumers), the admin API (operators) and Raft
// (other nodes of the platform).
type TLS struct {
	Cert string `yaml:"cert"` // the node's certificate (PEM), used as server and as client
	Key  string `yaml:"key"`  // its private key (PEM)
	// CA is the platform CA: nodes of this platform present certificates
	// from it to each other (Raft) and to the admin API.
	CA string `yaml:"ca"`
	// ClientCAs are the CAs whose certificates consumers may present to the
	// router (SITHS in production). Never list a test CA on a production
	// platform.
	ClientCAs []string `yaml:"client_cas"`
	// ProducerCAs are the CAs that producers' and next platforms' server
	// certificates are verified against. Empty: the system roots.
	ProducerCAs []string `yaml:"producer_cas"`
}

// Router configures the data plane (see skltp-vp.md §12 for the reference names).
type Router struct {
	InstanceID                string        `yaml:"instance_id"`   // vp.instance.id: this platform in routing history
	InstanceName              string        `yaml:"instance_name"` // vp.instance.name: shown in fault strings
	HTTPSAddr                 string        `yaml:"https_addr"`    // mTLS listener; default :20000
	HTTPAddr                  string        `yaml:"http_addr"`     // plain-HTTP listener behind a TLS proxy; empty = off
	HTTPAllowList             []string      `yaml:"http_allow_list"`
	CertHeader                string        `yaml:"cert_header"`
	SenderPattern             string        `yaml:"sender_pattern"` // regex with one group; empty = SERIALNUMBER
	OriginalConsumerAllowList []string      `yaml:"original_consumer_allow_list"`
	RejectOriginalConsumer    bool          `yaml:"reject_original_consumer"` // answer VP013 instead of a warning
	PropagateCorrelationHTTPS *bool         `yaml:"propagate_correlation_https"`
	MaxBodySize               int           `yaml:"max_body_size"`
	ConnectTimeout            time.Duration `yaml:"connect_timeout"`
	RetryDelay                time.Duration `yaml:"retry_delay"`
	ReadTimeout               time.Duration `yaml:"read_timeout"`
	WriteTimeout              time.Duration `yaml:"write_timeout"`
	IdleTimeout               time.Duration `yaml:"idle_timeout"`
	DefaultRoutingDelimiter   *string       `yaml:"default_routing_delimiter"` // "#"; "" turns VG#VE off
	DefaultRoutingContracts   []string      `yaml:"default_routing_contracts"`
	DefaultRoutingSenders     []string      `yaml:"default_routing_senders"`
	HSAClimbRoutes            *bool         `yaml:"hsa_climb_routes"`
	HSAClimbAuthorizations    *bool         `yaml:"hsa_climb_authorizations"`
	RouteClimbExceptions      []string      `yaml:"route_climb_exceptions"`
	AuthClimbExceptions       []string      `yaml:"auth_climb_exceptions"`
	LogCalls                  *bool         `yaml:"log_calls"`
	// TraceMaxRecords bounds the hop records kept for `vaxel trace`
	// (default 100000; negative: none kept); TraceMaxAge is how long one is
	// kept (default 15m). A store of up to about 110,000 records reserves
	// its memory when the node starts (about 59 MB for the default, resident
	// from the start on Linux 5.14 and later); a bigger one grows as calls
	// come.
	TraceMaxRecords int           `yaml:"trace_max_records"`
	TraceMaxAge     time.Duration `yaml:"trace_max_age"`
	// MaxHops bounds the platforms a call may have crossed before reaching
	// this one (x-rivta-routing-history); more is refused with VP014, as a
	// loop is. Default 10; negative: no limit.
	MaxHops int `yaml:"max_hops"`
}

// Raft configures the catalog's replication between the platform's nodes.
type Raft struct {
	Bind      string `yaml:"bind"`      // listener for other nodes, default :7301
	Advertise string `yaml:"advertise"` // address others dial; required when bind is 0.0.0.0
	// Servers is the initial voter set: every node of a new platform lists
	// the same servers, and each bootstraps the group with them on first
	// start (identical bootstrap on all nodes is safe in Raft). A node with
	// Raft state on disk ignores it. A single-node platform lists only itself
	// (or nothing).
	Servers []Peer `yaml:"servers"`
	// Raft timing; 0 takes the default, and each set value is at least
	// 5ms. A follower that hears nothing from the leader for
	// heartbeat_timeout (default 500ms) calls an election, after up to
	// election_timeout more (default 500ms, and at least heartbeat_timeout).
	// A leader that reaches no quorum of voters for leader_lease_timeout
	// (default 250ms, at most heartbeat_timeout) steps down, so writes sent
	// to a leader cut off from its platform go to the new one. Longer
	// values suit nodes far apart (a round trip of tens of ms) or a busy
	// network, at the price of a slower failover: writes return after
	// about heartbeat + election timeout when the leader is lost, and an
	// admin write waits up to 4 × (heartbeat + election), at least 4s and
	// at most 2m, for a new leader before it answers 503.
	HeartbeatTimeout   time.Duration `yaml:"heartbeat_timeout"`
	ElectionTimeout    time.Duration `yaml:"election_timeout"`
	LeaderLeaseTimeout time.Duration `yaml:"leader_lease_timeout"`
}

// DefaultRaftHeartbeatTimeout is raft.heartbeat_timeout when unset: the
// catalog store's default, which validation compares the other timings
// with (node's TestRaftHeartbeatDefaultIsTheCatalogs checks that the two
// agree; this package does not import the catalog).
const DefaultRaftHeartbeatTimeout = 500 * time.Millisecond

// minRaftTimeout is the least timing Raft accepts.
const minRaftTimeout = 5 * time.Millisecond

// Gossip configures membership inside the platform: nodes find each other
// with memberlist, the catalog leader adds joining nodes as Raft voters and
// removes nodes that left. Off when bind is empty; membership then comes
// from raft.servers alone.
type Gossip struct {
	// Bind is host:port for gossip (UDP and TCP on one port), e.g. :7946.
	Bind string `yaml:"bind"`
	// Advertise is the address others use; required when bind's host is
	// empty or 0.0.0.0. Its host is also advertised for the router and
	// admin addresses when those bind to all interfaces.
	Advertise string `yaml:"advertise"`
	// Join lists gossip addresses of other nodes of the platform (any one
	// that answers is enough). A new node with join set and
	// bootstrap_expect 0 joins an existing platform and never bootstraps.
	Join []string `yaml:"join"`
	// KeyFile holds the gossip encryption keys, base64, one per line, the
	// primary first (16, 24 or 32 bytes each; `vaxel cert gossip-key`
	// makes one). Required: gossip is never sent in clear.
	KeyFile string `yaml:"key_file"`
	// Label separates this platform's gossip from any other on the same
	// network. Default: vaxel/platform/<node.platform>.
	Label string `yaml:"label"`
	// BootstrapExpect forms a new platform once this many nodes, none of
	// them part of a platform yet, see each other (every node of the new
	// platform sets the same number). 0: do not bootstrap by gossip.
	BootstrapExpect int `yaml:"bootstrap_expect"`
	// LeaveOnStop announces a graceful leave when the node stops, and the
	// leader then removes it from the voters. Leave it false for routine
	// restarts; set it when decommissioning a node.
	LeaveOnStop bool `yaml:"leave_on_stop"`
	// ProbeInterval overrides memberlist's LAN probe interval (1s): shorter
	// detects a failed node sooner at the cost of more traffic. 0: preset.
	ProbeInterval time.Duration `yaml:"probe_interval"`
}

// Federation configures the pool in which platforms find each other's
// router nodes, so that a call address can name a platform ("vaxel://NAME")
// instead of a URL. It is separate from the platform's own gossip: its own
// key, label and (WAN) timing. Off when bind is empty.
type Federation struct {
	// Bind is host:port for federation gossip (UDP and TCP), e.g. :7947.
	Bind string `yaml:"bind"`
	// Advertise is the address other platforms use; required when bind's
	// host is empty or 0.0.0.0. Its host is also advertised for the router
	// when the router binds to all interfaces.
	Advertise string `yaml:"advertise"`
	// Join lists federation gossip addresses of other platforms' nodes.
	Join []string `yaml:"join"`
	// KeyFile holds the federation's gossip keys (format as gossip.key_file);
	// every platform of the federation has the same file. Required.
	KeyFile string `yaml:"key_file"`
	// Label separates federations sharing a network. Default:
	// vaxel/federation/<environment>.
	Label string `yaml:"label"`
	// Environment (e.g. prod, test) is advertised; members of another
	// environment are never routed to.
	Environment string `yaml:"environment"`
	// CAs are the CAs whose node certificates may take part in federation
	// gossip (SITHS in production). Default: tls.ca plus tls.producer_cas.
	CAs []string `yaml:"cas"`
	// AllowPlatforms lists the peer platforms of this platform: the ones it
	// routes to, and the ones whose calls it accepts. A call from another
	// platform of the federation (its certificate's HSA-ID is that
	// platform's) is refused with VP007 whatever the catalog authorizes,
	// and its nodes are never routed to. Empty: none.
	//
	// An entry NAME=HSA-ID pins the peer's HSA-ID: only members of NAME
	// that advertise it are routed to. Whatever is advertised (pinned or
	// not), a call to a peer's node goes through only if that node's TLS
	// certificate carries the HSA-ID (SERIALNUMBER), so a member cannot
	// draw a platform's calls to a router that is not the platform's.
	AllowPlatforms []string `yaml:"allow_platforms"`
	// ProbeInterval overrides the federation's probe interval (600ms, which
	// detects a failed node in about 3 s). 0: default.
	ProbeInterval time.Duration `yaml:"probe_interval"`
	// ConnectTimeout bounds connecting to another platform's node when the
	// platform has another node to go on to (default 500ms, shorter than
	// router.connect_timeout, which the last or only node gets): a node
	// that died is only known dead to gossip seconds later, and meanwhile
	// a call that picks it waits this long before trying the next.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
}

// PeerPlatforms returns allow_platforms as lower-case platform name →
// pinned HSA-ID ("" when the entry pins none).
func (f Federation) PeerPlatforms() map[string]string {
	out := make(map[string]string, len(f.AllowPlatforms))
	for _, p := range f.AllowPlatforms {
		name, id, _ := strings.Cut(p, "=")
		out[strings.ToLower(strings.TrimSpace(name))] = strings.TrimSpace(id)
	}
	return out
}

// Peer is a node of the platform as the others reach it.
type Peer struct {
	ID    string `yaml:"id"`
	Raft  string `yaml:"raft"`  // Raft address
	Admin string `yaml:"admin"` // admin API address, used to forward writes to the leader
}

// Admin configures the admin HTTPS API.
type Admin struct {
	Addr string `yaml:"addr"` // default 127.0.0.1:7443
	// Allow lists the identities (certificate SERIALNUMBER HSA-ID, or CN if
	// it has none) allowed to use the admin API with a client certificate
	// from the platform CA. Nodes of the platform are always allowed.
	Allow []string `yaml:"allow"`
	// TokenFile holds a bearer token also accepted (for scripts). Empty: off.
	TokenFile string `yaml:"token_file"`
	// MetricsAddr is an optional plain-HTTP listener (host:port) that
	// serves only GET /metrics, for Prometheus scrapers without a client
	// certificate or the token. The admin API serves /metrics too, behind
	// its authentication. Default empty: off. Hazard: anyone who reaches it
	// reads every consumer, contract and producer that called through this
	// node, without authentication; bind it to a monitoring interface or
	// loopback. The host must be named (0.0.0.0 only on purpose).
	MetricsAddr string `yaml:"metrics_addr"`
}

// Trace configures the optional export of hop records (router.trace_max_records)
// as OpenTelemetry spans over OTLP/HTTP: one span per hop, with the hop's
// own trace, span and parent span ids, so that the hops of every platform
// a call crossed join into one trace in the collector
// (federation/DESIGN.md, "OTLP export"). Export never slows a call: records
// wait in a bounded queue and are dropped, and counted, when it is full.
type Trace struct {
	// OTLPEndpoint is the collector's OTLP/HTTP traces URL, e.g.
	// https://collector.example:4318/v1/traces (without a path:
	// /v1/traces). Default empty: no export. With https the node presents
	// tls.cert/tls.key and verifies the collector's certificate, host name
	// included, against trace.otlp_cas. Hazard: with http, spans (consumers,
	// contracts, logical addresses) cross the network in clear; use it for
	// a collector on loopback. Of the exporter's OTEL_EXPORTER_OTLP_*
	// environment variables, headers and compression apply; endpoint,
	// timeout and TLS come from this section.
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// OTLPCAs are the CAs the collector's certificate is verified against
	// (PEM files). Empty: tls.ca, the platform CA. A collector run by
	// another team usually has a certificate from its own CA: list that
	// CA here rather than issuing it one from the platform CA.
	OTLPCAs []string `yaml:"otlp_cas"`
	// OTLPQueueSize is how many hop records may wait for export (default
	// 4096, about 1 MB). A record that finds the queue full is dropped and
	// counted in vaxel_trace_otlp_dropped_total; calls never wait for it.
	OTLPQueueSize int `yaml:"otlp_queue_size"`
	// OTLPBatchSize is the most spans sent in one request (default 512).
	OTLPBatchSize int `yaml:"otlp_batch_size"`
	// OTLPBatchTimeout is the longest a span waits for its batch to fill
	// before the batch is sent anyway (default 1s).
	OTLPBatchTimeout time.Duration `yaml:"otlp_batch_timeout"`
	// OTLPTimeout bounds one export request, retries included (default
	// 10s); a batch that has not gone through by then is dropped and
	// counted. Stopping the node waits up to this long for the spans still
	// queued.
	OTLPTimeout time.Duration `yaml:"otlp_timeout"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // json (default) or text
}

// Default returns the defaults.
func Default() Config {
	host, _ := os.Hostname()
	return Config{
		Node:   Node{Name: host, DataDir: "data"},
		Router: Router{HTTPSAddr: ":20000", CertHeader: "x-vp-auth-cert", MaxBodySize: 15 << 20},
		Raft:   Raft{Bind: ":7301"},
		Admin:  Admin{Addr: "127.0.0.1:7443"},
		Log:    Log{Level: "info", Format: "json"},
	}
}

// Load runs the phases defaults → file → env → flags → derive → validate.
// overrides are "section.key=value" pairs from the command line.
func Load(path string, env []string, overrides []string) (*Config, error) {
	c := Default()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		dec := yaml.NewDecoder(strings.NewReader(string(b)))
		dec.KnownFields(true)
		// An empty file decodes to io.EOF: it simply sets nothing.
		if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
		c.resolvePaths(filepath.Dir(path))
	}
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, "VAXEL_") {
			continue
		}
		sec, key, ok := strings.Cut(strings.ToLower(strings.TrimPrefix(k, "VAXEL_")), "_")
		if !ok {
			continue
		}
		if err := c.Set(sec+"."+key, v); err != nil {
			return nil, fmt.Errorf("environment %s: %w", k, err)
		}
	}
	for _, o := range overrides {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			return nil, fmt.Errorf("-set %q: want section.key=value", o)
		}
		if err := c.Set(k, v); err != nil {
			return nil, fmt.Errorf("-set %s: %w", k, err)
		}
	}
	c.derive()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) resolvePaths(dir string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	abs(&c.Node.DataDir)
	abs(&c.TLS.Cert)
	abs(&c.TLS.Key)
	abs(&c.TLS.CA)
	abs(&c.Admin.TokenFile)
	abs(&c.Gossip.KeyFile)
	abs(&c.Federation.KeyFile)
	for i := range c.Federation.CAs {
		abs(&c.Federation.CAs[i])
	}
	for i := range c.TLS.ClientCAs {
		abs(&c.TLS.ClientCAs[i])
	}
	for i := range c.Trace.OTLPCAs {
		abs(&c.Trace.OTLPCAs[i])
	}
	for i := range c.TLS.ProducerCAs {
		abs(&c.TLS.ProducerCAs[i])
	}
}

// Set assigns one scalar or comma-separated list field by its YAML path
// ("router.https_addr"), for env and flag overrides.
func (c *Config) Set(path, value string) error {
	sec, key, ok := strings.Cut(path, ".")
	if !ok {
		return fmt.Errorf("%q: want section.key", path)
	}
	sv := reflect.ValueOf(c).Elem()
	secField, ok := fieldByTag(sv, sec)
	if !ok {
		return fmt.Errorf("unknown section %q", sec)
	}
	f, ok := fieldByTag(secField, key)
	if !ok {
		return fmt.Errorf("unknown key %q in section %q", key, sec)
	}
	return setValue(f, value)
}

func fieldByTag(v reflect.Value, tag string) (reflect.Value, bool) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		if strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0] == tag {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

func setValue(f reflect.Value, s string) error {
	if f.Kind() == reflect.Pointer {
		nv := reflect.New(f.Type().Elem())
		if err := setValue(nv.Elem(), s); err != nil {
			return err
		}
		f.Set(nv)
		return nil
	}
	switch {
	case f.Type() == reflect.TypeOf(time.Duration(0)):
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration (e.g. 2s, 500ms)", s)
		}
		f.SetInt(int64(d))
	case f.Kind() == reflect.String:
		f.SetString(s)
	case f.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not true or false", s)
		}
		f.SetBool(b)
	case f.Kind() == reflect.Int:
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", s)
		}
		f.SetInt(int64(n))
	case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
		var out []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		f.Set(reflect.ValueOf(out))
	default:
		return fmt.Errorf("cannot be set from a flag or environment variable; use the config file")
	}
	return nil
}

func (c *Config) derive() {
	if c.Router.InstanceID == "" {
		c.Router.InstanceID = c.Node.Platform
	}
	if c.Router.InstanceName == "" {
		c.Router.InstanceName = c.Node.Platform
	}
	if len(c.Federation.CAs) == 0 && c.TLS.CA != "" {
		c.Federation.CAs = append([]string{c.TLS.CA}, c.TLS.ProducerCAs...)
	}
	if c.Federation.Environment == "" {
		c.Federation.Environment = "default"
	}
	if c.Federation.Label == "" {
		c.Federation.Label = "vaxel/federation/" + c.Federation.Environment
	}
	if c.Gossip.Label == "" && c.Node.Platform != "" {
		c.Gossip.Label = "vaxel/platform/" + c.Node.Platform
	}
	if len(c.TLS.ClientCAs) == 0 && c.TLS.CA != "" {
		c.TLS.ClientCAs = []string{c.TLS.CA}
	}
}

// Validate checks cross-field rules and says how to fix what is wrong.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Node.Name == "" {
		add("node.name is empty; set it to a name unique in the platform")
	}
	if c.Node.Platform == "" {
		add("node.platform is empty; set it to the platform's name (orders must name it)")
	}
	if c.Node.DataDir == "" {
		add("node.data_dir is empty; set a directory that survives restarts")
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") || c.TLS.Cert == "" {
		add("tls.cert and tls.key must both be set (the node's certificate and key)")
	}
	if c.TLS.CA == "" {
		add("tls.ca is empty; set the platform CA (nodes and admins present certificates from it)")
	}
	for _, f := range append([]string{c.TLS.Cert, c.TLS.Key, c.TLS.CA}, c.TLS.ClientCAs...) {
		if f != "" {
			if _, err := os.Stat(f); err != nil {
				add("%s: %v", f, err)
			}
		}
	}
	for _, a := range []struct{ name, v string }{{"router.https_addr", c.Router.HTTPSAddr}, {"raft.bind", c.Raft.Bind}, {"admin.addr", c.Admin.Addr}} {
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			add("%s %q is not host:port (e.g. :20000 or 127.0.0.1:20000)", a.name, a.v)
		}
	}
	if m := c.Admin.MetricsAddr; m != "" {
		switch host, port, err := net.SplitHostPort(m); {
		case err != nil:
			add("admin.metrics_addr %q is not host:port (e.g. 10.0.0.5:9100 or 127.0.0.1:9100)", m)
		case host == "":
			add("admin.metrics_addr %q would serve metrics without authentication on every interface; name the interface (e.g. 10.0.0.5:9100), or write 0.0.0.0:port if that is really meant", m)
		case m == c.Admin.Addr && port != "0":
			add("admin.metrics_addr and admin.addr are both %q; the metrics listener needs its own port", m)
		}
	}
	if c.Router.HTTPAddr != "" && len(c.Router.HTTPAllowList) == 0 {
		add("router.http_addr is set but router.http_allow_list is empty, which refuses every caller; list the TLS proxy and internal callers")
	}
	if c.Router.MaxBodySize <= 0 {
		add("router.max_body_size must be positive (bytes; the reference default is 15728640)")
	}
	seen := map[string]bool{}
	for _, p := range c.Raft.Servers {
		if p.ID == "" || p.Raft == "" {
			add("raft.servers: every server needs id and raft (address)")
		}
		if seen[p.ID] {
			add("raft.servers: %s listed twice", p.ID)
		}
		seen[p.ID] = true
	}
	if len(c.Raft.Servers) > 0 && !seen[c.Node.Name] {
		add("raft.servers does not list this node (%s); every node of a new platform lists the same servers, itself included", c.Node.Name)
	}
	r := c.Raft
	for _, t := range []struct {
		name string
		v    time.Duration
	}{{"raft.heartbeat_timeout", r.HeartbeatTimeout}, {"raft.election_timeout", r.ElectionTimeout}, {"raft.leader_lease_timeout", r.LeaderLeaseTimeout}} {
		if t.v != 0 && t.v < minRaftTimeout {
			add("%s is %s; set at least %s (or 0 for the default)", t.name, t.v, minRaftTimeout)
		}
	}
	hb := r.HeartbeatTimeout
	if hb == 0 {
		hb = DefaultRaftHeartbeatTimeout
	}
	if r.ElectionTimeout > 0 && r.ElectionTimeout < hb {
		add("raft.election_timeout (%s) is shorter than raft.heartbeat_timeout (%s); Raft needs it at least as long", r.ElectionTimeout, hb)
	}
	if r.LeaderLeaseTimeout > hb {
		add("raft.leader_lease_timeout (%s) is longer than raft.heartbeat_timeout (%s); Raft needs it at most as long", r.LeaderLeaseTimeout, hb)
	}
	if g := c.Gossip; g.Bind != "" {
		if _, _, err := net.SplitHostPort(g.Bind); err != nil {
			add("gossip.bind %q is not host:port (e.g. :7946)", g.Bind)
		}
		if g.KeyFile == "" {
			add("gossip.key_file is empty; gossip is always encrypted: create a key with `vaxel cert gossip-key -out FILE` and give every node of the platform the same file")
		} else if _, err := ReadGossipKeys(g.KeyFile); err != nil {
			add("gossip.key_file: %v", err)
		}
		if len(g.Label) > 255 {
			add("gossip.label is %d bytes; at most 255", len(g.Label))
		}
		if g.BootstrapExpect < 0 {
			add("gossip.bootstrap_expect must be 0 or more")
		}
		if g.BootstrapExpect > 0 && len(c.Raft.Servers) > 0 {
			add("gossip.bootstrap_expect and raft.servers both form a new platform; set only one")
		}
	} else if c.Gossip.BootstrapExpect > 0 || len(c.Gossip.Join) > 0 {
		add("gossip.bootstrap_expect and gossip.join need gossip.bind (e.g. :7946)")
	}
	if f := c.Federation; f.Bind != "" {
		if _, _, err := net.SplitHostPort(f.Bind); err != nil {
			add("federation.bind %q is not host:port (e.g. :7947)", f.Bind)
		}
		if f.KeyFile == "" {
			add("federation.key_file is empty; federation gossip is always encrypted: every platform of the federation needs the same key file (`vaxel cert gossip-key -out FILE`)")
		} else if _, err := ReadGossipKeys(f.KeyFile); err != nil {
			add("federation.key_file: %v", err)
		} else if c.Gossip.KeyFile != "" && f.KeyFile == c.Gossip.KeyFile {
			add("federation.key_file is the platform's gossip key; use a separate key, so that no other platform can join this platform's pool")
		}
		if f.Label == c.Gossip.Label {
			add("federation.label equals gossip.label; the pools must be kept apart")
		}
		for _, p := range f.AllowPlatforms {
			name, id, pinned := strings.Cut(p, "=")
			switch {
			case strings.TrimSpace(name) == "":
				add("federation.allow_platforms entry %q has no platform name; write NAME or NAME=HSA-ID", p)
			case pinned && strings.TrimSpace(id) == "":
				add("federation.allow_platforms entry %q pins an empty HSA-ID; write NAME or NAME=HSA-ID", p)
			case strings.EqualFold(strings.TrimSpace(name), c.Node.Platform):
				add("federation.allow_platforms lists this platform (%s); list the peers", p)
			}
		}
	} else if len(c.Federation.Join) > 0 {
		add("federation.join needs federation.bind (e.g. :7947)")
	}
	if e := c.Trace.OTLPEndpoint; e != "" {
		if u, err := url.Parse(e); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			add("trace.otlp_endpoint %q is not an http(s) URL; give the collector's OTLP/HTTP traces URL, e.g. https://collector.example:4318/v1/traces", e)
		}
		if c.Router.TraceMaxRecords < 0 {
			add("trace.otlp_endpoint exports hop records, which router.trace_max_records < 0 turns off; set router.trace_max_records to 0 (the default) or more, or leave trace.otlp_endpoint empty")
		}
	}
	if len(c.Trace.OTLPCAs) > 0 && !strings.HasPrefix(strings.ToLower(c.Trace.OTLPEndpoint), "https://") {
		add("trace.otlp_cas verifies an https collector, but trace.otlp_endpoint is %q; give an https endpoint or leave trace.otlp_cas empty", c.Trace.OTLPEndpoint)
	}
	if t := c.Trace; t.OTLPQueueSize < 0 || t.OTLPBatchSize < 0 || t.OTLPBatchTimeout < 0 || t.OTLPTimeout < 0 {
		add("trace.otlp_queue_size, otlp_batch_size, otlp_batch_timeout and otlp_timeout must not be negative (0: the default)")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level %q: want debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		add("log.format %q: want json or text", c.Log.Format)
	}
	return errors.Join(errs...)
}

// ReadGossipKeys reads a gossip key file: base64 keys of 16, 24 or 32
// bytes, one per line, the primary first; blank lines and lines starting
// with # are ignored.
func ReadGossipKeys(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var keys [][]byte
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := base64.StdEncoding.DecodeString(line)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: not base64", path, i+1)
		}
		if l := len(k); l != 16 && l != 24 && l != 32 {
			return nil, fmt.Errorf("%s line %d: key is %d bytes, want 16, 24 or 32", path, i+1, l)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s holds no key", path)
	}
	return keys, nil
}

// LoadDerived runs the derive and validate phases on a configuration built in
// code (dev mode, tests).
func LoadDerived(c *Config) error {
	c.derive()
	return c.Validate()
}
