package catalog

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/vaxel/vaxel/catalog/command"
	"github.com/vaxel/vaxel/catalog/fsm"
	"github.com/vaxel/vaxel/tak"
)

// ErrNotLeader is returned when a write reaches a node that is not the leader.
// NotLeaderError carries where the leader is, if known.
var ErrNotLeader = errors.New("not the catalog leader")

// ErrNotRunning is returned by calls that need Raft before Run has started it
// or after it stopped.
var ErrNotRunning = errors.New("catalog not running")

// NotLeaderError says which node leads, so the caller can forward.
type NotLeaderError struct {
	LeaderID   string
	LeaderAddr string // Raft address; node maps it to the leader's admin address
}

func (e *NotLeaderError) Error() string {
	if e.LeaderID == "" {
		return "not the catalog leader; no leader is elected"
	}
	return fmt.Sprintf("not the catalog leader; leader is %s (%s)", e.LeaderID, e.LeaderAddr)
}

func (e *NotLeaderError) Unwrap() error { return ErrNotLeader }

// Config configures a Store. Zero durations take DefaultConfig's values.
type Config struct {
	NodeID        string // stable, unique in the platform (default: the node name)
	DataDir       string // raft.db and snapshots/ live here; keep it across restarts
	BindAddr      string // Raft listener, e.g. 10.0.0.5:7301 or 127.0.0.1:0
	AdvertiseAddr string // address other nodes dial; needed when BindAddr is 0.0.0.0
	ServerTLS     *tls.Config
	ClientTLS     *tls.Config

	// Raft timing. Failover takes about HeartbeatTimeout to notice plus up
	// to 2×ElectionTimeout to elect; defaults give writes back within 3 s.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	// SnapshotThreshold is how many entries since the last snapshot trigger
	// a new one; TrailingLogs how many entries are kept behind it so a
	// lagging follower can catch up without a full snapshot install.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64
	// ApplyTimeout bounds how long a write waits to be committed.
	ApplyTimeout time.Duration

	Logger *slog.Logger
}

// DefaultConfig returns timing for nodes of one platform on a LAN: half of
// hashicorp/raft's defaults. With raft's (1 s) a follower notices a dead
// leader on a randomised 1–2 s timer and then elects, and the container
// scenario measured writes back after up to 2.8 s: too close to the 3 s
// promise. With 500 ms failover takes about 1–1.5 s.
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout:   500 * time.Millisecond,
		ElectionTimeout:    500 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond,
		// How soon followers learn that an entry is committed, and so
		// apply it: raft's 50 ms made a change reach all three nodes after
		// 88 ms; 5 ms gives 15 ms (BenchmarkChangeVisibleThreeNodes), for
		// about 0.6 % of a core per idle node.
		CommitTimeout:     5 * time.Millisecond,
		SnapshotThreshold: 8192,
		SnapshotInterval:  120 * time.Second,
		TrailingLogs:      10240,
		ApplyTimeout:      30 * time.Second,
	}
}

// Validate checks the configuration and says how to fix it.
func (c *Config) Validate() error {
	d := DefaultConfig()
	fill := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	fill(&c.HeartbeatTimeout, d.HeartbeatTimeout)
	fill(&c.ElectionTimeout, d.ElectionTimeout)
	fill(&c.LeaderLeaseTimeout, d.LeaderLeaseTimeout)
	fill(&c.CommitTimeout, d.CommitTimeout)
	fill(&c.SnapshotInterval, d.SnapshotInterval)
	fill(&c.ApplyTimeout, d.ApplyTimeout)
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = d.SnapshotThreshold
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = d.TrailingLogs
	}
	switch {
	case c.NodeID == "":
		return errors.New("catalog: node id is empty; set node.name")
	case c.DataDir == "":
		return errors.New("catalog: data directory is empty; set node.data_dir")
	case c.BindAddr == "":
		return errors.New("catalog: raft bind address is empty; set raft.bind")
	case c.ServerTLS == nil || c.ClientTLS == nil:
		return errors.New("catalog: raft needs mutual TLS; set tls.cert, tls.key and tls.ca")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	rc := c.raftConfig()
	if err := raft.ValidateConfig(rc); err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	return nil
}

func (c *Config) raftConfig() *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.NodeID)
	rc.HeartbeatTimeout = c.HeartbeatTimeout
	rc.ElectionTimeout = c.ElectionTimeout
	rc.LeaderLeaseTimeout = c.LeaderLeaseTimeout
	rc.CommitTimeout = c.CommitTimeout
	rc.SnapshotThreshold = c.SnapshotThreshold
	rc.SnapshotInterval = c.SnapshotInterval
	rc.TrailingLogs = c.TrailingLogs
	return rc
}

// Server is a member of the Raft configuration.
type Server struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Voter   bool   `json:"voter"`
	Leader  bool   `json:"leader"`
}

// Store is a node's replica of the platform catalog.
type Store struct {
	cfg  Config
	log  *slog.Logger
	fsm  *fsm.FSM
	addr string

	mu    sync.RWMutex // guards raft, bolt, layer while Run starts and stops them
	raft  *raft.Raft
	bolt  *raftboltdb.BoltStore
	layer *tlsLayer
	ready chan struct{}

	crashStop bool // tests: stop without transfer or snapshot, like a kill

	// hasState latches HasState's answer once it is true: state on disk
	// does not go away under a running node, and node asks every second.
	hasState atomic.Bool
}

// New validates cfg and returns a Store; Run starts it.
func New(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Store{cfg: cfg, log: cfg.Logger, fsm: fsm.New(cfg.Logger), ready: make(chan struct{})}, nil
}

// Current returns the catalog as of the last applied entry; never nil.
func (s *Store) Current() *tak.Catalog { return s.fsm.Current() }

// Changed is signalled after each change of Current (coalesced).
func (s *Store) Changed() <-chan struct{} { return s.fsm.Changed() }

// Ready is closed once Raft runs and Addr is known.
func (s *Store) Ready() <-chan struct{} { return s.ready }

// Addr is the Raft address other nodes use for this node (after Ready).
func (s *Store) Addr() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.addr
}

// ID is this node's Raft server id.
func (s *Store) ID() string { return s.cfg.NodeID }

// Run opens the stores, starts Raft and blocks until ctx is cancelled, then
// shuts down: leadership is handed over if this node leads (so writes resume
// at once instead of after an election timeout), Raft stops, the bolt file
// closes. It returns only after all of that.
func (s *Store) Run(ctx context.Context) error {
	if err := os.MkdirAll(s.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create catalog data dir: %w", err)
	}
	bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(s.cfg.DataDir, "raft.db")})
	if err != nil {
		return fmt.Errorf("open raft log %s: %w", filepath.Join(s.cfg.DataDir, "raft.db"), err)
	}
	hl := hclog.New(&hclog.LoggerOptions{Name: "raft", JSONFormat: true, Output: slogWriter{s.log}, Level: hclog.Info})
	snaps, err := raft.NewFileSnapshotStoreWithLogger(s.cfg.DataDir, 2, hl)
	if err != nil {
		bolt.Close()
		return fmt.Errorf("open raft snapshots in %s: %w", s.cfg.DataDir, err)
	}
	layer, err := newTLSLayer(s.cfg.BindAddr, s.cfg.AdvertiseAddr, s.cfg.ServerTLS, s.cfg.ClientTLS)
	if err != nil {
		bolt.Close()
		return err
	}
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: layer, MaxPool: 3, Timeout: 10 * time.Second, Logger: hl,
	})
	rc := s.cfg.raftConfig()
	rc.Logger = hl
	rc.RestoreCommittedLogs = true
	r, err := raft.NewRaft(rc, s.fsm, &commitTrackingStore{BoltStore: bolt}, bolt, snaps, trans)
	if err != nil {
		trans.Close()
		bolt.Close()
		return fmt.Errorf("start raft: %w", err)
	}
	s.mu.Lock()
	s.raft, s.bolt, s.layer, s.addr = r, bolt, layer, layer.Addr().String()
	s.mu.Unlock()
	close(s.ready)
	s.log.Info("catalog started", "node", s.cfg.NodeID, "raft_addr", s.addr, "catalog_seq", s.Current().Seq())

	<-ctx.Done()

	if s.crashStop {
		// Test hook: stop as a killed process would, with no leadership
		// transfer and no snapshot.
		s.mu.Lock()
		s.raft = nil
		s.mu.Unlock()
		err := r.Shutdown().Error()
		trans.Close()
		bolt.Close()
		return err
	}
	if r.State() == raft.Leader {
		if err := r.LeadershipTransfer().Error(); err != nil {
			s.log.Warn("leadership transfer before shutdown", "err", err)
		}
	}
	// Snapshot what this node has applied (all committed), so that after a
	// restart it serves all of it at once, before any leader is elected:
	// Raft restores the latest snapshot on start and replays only the
	// entries the log records as committed (logstore.go), a record that
	// trails by a write; the rest would wait for a leader (on a restart of
	// every node, for the election).
	if err := r.Snapshot().Error(); err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		s.log.Warn("snapshot before shutdown", "err", err)
	}
	s.mu.Lock()
	s.raft = nil
	s.mu.Unlock()
	err = r.Shutdown().Error()
	trans.Close()
	if cerr := bolt.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("stop catalog: %w", err)
	}
	return nil
}

func (s *Store) r() (*raft.Raft, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.raft == nil {
		return nil, ErrNotRunning
	}
	return s.raft, nil
}

// HasState reports whether this node has ever been part of a Raft group
// (a log, a snapshot or a term on disk). Bootstrap only nodes without.
//
// Until the answer is yes, each call looks at the disk: raft's check opens
// a snapshot store, which creates and removes a file in the data
// directory. node advertises the answer in gossip and asks every second;
// on a node sharing its CPU with the data plane that file work showed as
// a millisecond stall per second, so a yes is remembered.
func (s *Store) HasState() (bool, error) {
	if s.hasState.Load() {
		return true, nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.bolt == nil {
		return false, ErrNotRunning
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(s.cfg.DataDir, 2, hclog.NewNullLogger())
	if err != nil {
		return false, err
	}
	has, err := raft.HasExistingState(s.bolt, s.bolt, snaps)
	if has && err == nil {
		s.hasState.Store(true)
	}
	return has, err
}

// Bootstrap forms a new platform from servers. It must run on exactly one
// set of nodes exactly once; node decides when (see DESIGN.md).
func (s *Store) Bootstrap(servers []Server) error {
	r, err := s.r()
	if err != nil {
		return err
	}
	cfg := raft.Configuration{}
	for _, sv := range servers {
		cfg.Servers = append(cfg.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(sv.ID), Address: raft.ServerAddress(sv.Address)})
	}
	if err := r.BootstrapCluster(cfg).Error(); err != nil {
		return fmt.Errorf("bootstrap catalog: %w", err)
	}
	return nil
}

// IsLeader reports whether this node leads the platform's catalog.
func (s *Store) IsLeader() bool {
	r, err := s.r()
	return err == nil && r.State() == raft.Leader
}

// Leader returns the leader's id and Raft address, empty if none is known.
func (s *Store) Leader() (id, addr string) {
	r, err := s.r()
	if err != nil {
		return "", ""
	}
	a, i := r.LeaderWithID()
	return string(i), string(a)
}

// Servers returns the Raft configuration.
func (s *Store) Servers() ([]Server, error) {
	r, err := s.r()
	if err != nil {
		return nil, err
	}
	f := r.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("read raft configuration: %w", err)
	}
	_, leader := r.LeaderWithID()
	var out []Server
	for _, sv := range f.Configuration().Servers {
		out = append(out, Server{ID: string(sv.ID), Address: string(sv.Address), Voter: sv.Suffrage == raft.Voter, Leader: sv.ID == leader})
	}
	return out, nil
}

// AddVoter adds a node to the Raft configuration (leader only). It is
// idempotent for a node already present at the same address.
func (s *Store) AddVoter(id, addr string) error {
	r, err := s.r()
	if err != nil {
		return err
	}
	if r.State() != raft.Leader {
		return s.notLeader(r)
	}
	if err := r.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, s.cfg.ApplyTimeout).Error(); err != nil {
		return mapRaftErr(r, err, "add voter "+id)
	}
	return nil
}

// RemoveServer removes a node from the Raft configuration (leader only).
func (s *Store) RemoveServer(id string) error {
	r, err := s.r()
	if err != nil {
		return err
	}
	if r.State() != raft.Leader {
		return s.notLeader(r)
	}
	if err := r.RemoveServer(raft.ServerID(id), 0, s.cfg.ApplyTimeout).Error(); err != nil {
		return mapRaftErr(r, err, "remove server "+id)
	}
	return nil
}

// Stats returns Raft's own counters (state, term, indexes, …).
func (s *Store) Stats() map[string]string {
	r, err := s.r()
	if err != nil {
		return map[string]string{"state": "NotRunning"}
	}
	return r.Stats()
}

func (s *Store) notLeader(r *raft.Raft) error {
	a, i := r.LeaderWithID()
	return &NotLeaderError{LeaderID: string(i), LeaderAddr: string(a)}
}

func mapRaftErr(r *raft.Raft, err error, what string) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		a, i := r.LeaderWithID()
		return fmt.Errorf("%s: %w", what, &NotLeaderError{LeaderID: string(i), LeaderAddr: string(a)})
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%s: %w", what, ErrNotRunning)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Result is the outcome of a write; Err and Errors mean it was refused and
// nothing changed.
type Result = fsm.Result

// Apply replicates one encoded entry (see package command) and waits until
// it is applied on this node. Only the leader accepts writes.
func (s *Store) Apply(ctx context.Context, typ command.Type, payload any) (*Result, error) {
	r, err := s.r()
	if err != nil {
		return nil, err
	}
	if r.State() != raft.Leader {
		return nil, s.notLeader(r)
	}
	b, err := command.Encode(typ, payload)
	if err != nil {
		return nil, err
	}
	timeout := s.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	f := r.Apply(b, timeout)
	if err := f.Error(); err != nil {
		return nil, mapRaftErr(r, err, "apply "+typ.String())
	}
	res, ok := f.Response().(*Result)
	if !ok || res == nil {
		return nil, fmt.Errorf("apply %s: no result from the catalog", typ)
	}
	return res, nil
}

// Barrier waits until every entry committed before the call is applied on
// this node (leader only): after it, Current reflects all acknowledged writes.
func (s *Store) Barrier(timeout time.Duration) error {
	r, err := s.r()
	if err != nil {
		return err
	}
	if err := r.Barrier(timeout).Error(); err != nil {
		return mapRaftErr(r, err, "barrier")
	}
	return nil
}

// slogWriter adapts hclog's JSON lines (raft logs through hclog) to our
// logger, so the node writes one log stream.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Info(string(trimNL(p)), "subsystem", "raft")
	return len(p), nil
}

func trimNL(p []byte) []byte {
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
	}
	return p
}
