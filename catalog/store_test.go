package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vaxel/vaxel/catalog/command"
	"github.com/vaxel/vaxel/pki"
)

type testNode struct {
	s      *Store
	cancel context.CancelFunc
	done   chan error
}

func startNode(t testing.TB, dir string, id, bind string, pkiDir string) *testNode {
	t.Helper()
	srv, err := pki.ServerTLSConfig(filepath.Join(pkiDir, id+".crt"), filepath.Join(pkiDir, id+".key"), []string{filepath.Join(pkiDir, "ca.crt")}, true)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := pki.ClientTLSConfig(filepath.Join(pkiDir, id+".crt"), filepath.Join(pkiDir, id+".key"), []string{filepath.Join(pkiDir, "ca.crt")})
	if err != nil {
		t.Fatal(err)
	}
	cli.ServerName = "localhost"
	cfg := DefaultConfig()
	cfg.NodeID, cfg.DataDir, cfg.BindAddr = id, filepath.Join(dir, id), bind
	cfg.ServerTLS, cfg.ClientTLS = srv, cli
	// Fast timings keep the test short; the failover bound below is the
	// product's (3 s) with these.
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 500*time.Millisecond, 500*time.Millisecond, 250*time.Millisecond
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &testNode{s: s, cancel: cancel, done: make(chan error, 1)}
	go func() { n.done <- s.Run(ctx) }()
	select {
	case <-s.Ready():
	case err := <-n.done:
		t.Fatalf("start %s: %v", id, err)
	}
	return n
}

func (n *testNode) stop(t testing.TB) {
	n.cancel()
	if err := <-n.done; err != nil {
		t.Errorf("stop %s: %v", n.s.ID(), err)
	}
}

func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < timeout {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s", what, timeout)
	return 0
}

func leaderOf(nodes []*testNode) *testNode {
	for _, n := range nodes {
		if n != nil && n.s.IsLeader() {
			return n
		}
	}
	return nil
}

func addContract(ctx context.Context, s *Store, ns string) (*Result, error) {
	ent, _ := json.Marshal(map[string]string{"namespace": ns})
	return s.Apply(ctx, command.TypeMutate, &command.Mutate{
		Meta: command.Meta{Actor: "test", Source: "admin", UnixNano: time.Now().UnixNano()},
		Ops:  []command.Op{{Op: "put", Kind: "contract", Entity: ent}},
	})
}

// cluster is an in-process platform of three stores over mutual TLS.
type cluster struct {
	dir, pkiDir string
	ids         []string
	addrs       map[string]string
	nodes       []*testNode
}

// startCluster issues a PKI, starts three stores and bootstraps them.
func startCluster(t testing.TB) *cluster {
	t.Helper()
	c := &cluster{dir: t.TempDir(), ids: []string{"n1", "n2", "n3"}, addrs: map[string]string{}}
	c.pkiDir = filepath.Join(c.dir, "pki")
	ca, err := pki.NewCA("test CA", pki.ECDSAP256, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.WriteDir(c.pkiDir); err != nil {
		t.Fatal(err)
	}
	var servers []Server
	for _, id := range c.ids {
		is, err := ca.Issue(pki.Request{CommonName: id, DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}})
		if err != nil {
			t.Fatal(err)
		}
		if err := pki.WriteFiles(c.pkiDir, id, is); err != nil {
			t.Fatal(err)
		}
		c.addrs[id] = freeAddr(t)
		servers = append(servers, Server{ID: id, Address: c.addrs[id]})
	}
	c.nodes = make([]*testNode, len(c.ids))
	for i, id := range c.ids {
		c.nodes[i] = c.start(t, id)
		if err := c.nodes[i].s.Bootstrap(servers); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func (c *cluster) start(t testing.TB, id string) *testNode {
	return startNode(t, c.dir, id, c.addrs[id], c.pkiDir)
}

// stopAll stops the nodes still running.
func (c *cluster) stopAll(t testing.TB) {
	for i, n := range c.nodes {
		if n != nil {
			n.stop(t)
			c.nodes[i] = nil
		}
	}
}

// TestThreeNodePlatform: bootstrap, replicate, refuse writes on followers,
// lose the leader (writes resume within 3 s, nothing acknowledged is lost),
// and restart every node with its data.
func TestThreeNodePlatform(t *testing.T) {
	c := startCluster(t)
	dir, pkiDir, ids, addrs, nodes := c.dir, c.pkiDir, c.ids, c.addrs, c.nodes
	defer func() {
		for _, n := range nodes {
			if n != nil {
				n.stop(t)
			}
		}
	}()
	ctx := context.Background()
	waitFor(t, "leader elected", 10*time.Second, func() bool { return leaderOf(nodes) != nil })

	acked := 0
	for i := 0; i < 5; i++ {
		// A client retries a write refused for want of a leader (an election
		// on this busy machine); what must hold is that acknowledged writes
		// are never lost.
		waitFor(t, fmt.Sprintf("write %d acknowledged", i), 10*time.Second, func() bool {
			l := leaderOf(nodes)
			if l == nil {
				return false
			}
			res, err := addContract(ctx, l.s, fmt.Sprintf("urn:riv:test:C%dResponder:1", i))
			return err == nil && res.Err == nil
		})
		acked++
	}
	for _, n := range nodes {
		waitFor(t, n.s.ID()+" replicated", 5*time.Second, func() bool { return len(n.s.Current().Contracts()) == acked })
	}
	for _, n := range nodes {
		if !n.s.IsLeader() {
			_, err := addContract(ctx, n.s, "urn:riv:test:FollowerResponder:1")
			var nl *NotLeaderError
			if !errors.As(err, &nl) || nl.LeaderID == "" {
				t.Fatalf("write on follower %s: err = %v, want NotLeaderError naming the leader", n.s.ID(), err)
			}
			break
		}
	}

	// Kill the leader; writes must resume on the others within 3 s.
	old := leaderOf(nodes)
	for i, n := range nodes {
		if n == old {
			n.stop(t)
			nodes[i] = nil
		}
	}
	took := waitFor(t, "new leader accepting writes", 3*time.Second, func() bool {
		l := leaderOf(nodes)
		if l == nil {
			return false
		}
		res, err := addContract(ctx, l.s, "urn:riv:test:AfterFailoverResponder:1")
		return err == nil && res.Err == nil
	})
	// A graceful stop hands leadership over, hence milliseconds; a crash
	// (no transfer) is exercised by the container scenario.
	t.Logf("writes resumed %s after the leader stopped gracefully", took)
	acked++

	// Restart everything: each node serves its own data again.
	had := map[string]int{old.s.ID(): acked - 1}
	for i, n := range nodes {
		if n != nil {
			had[n.s.ID()] = len(n.s.Current().Contracts())
			n.stop(t)
			nodes[i] = nil
		}
	}
	for i, id := range ids {
		nodes[i] = startNode(t, dir, id, addrs[id], pkiDir)
		// A gracefully stopped node snapshots on the way out, so it has
		// its catalog back before any leader is elected. It may have more:
		// entries committed but not yet applied when it stopped are
		// re-applied from its log (RestoreCommittedLogs); never more than
		// were acknowledged.
		if got := len(nodes[i].s.Current().Contracts()); got < had[id] || got > acked {
			t.Errorf("%s right after restart: %d contracts, want the %d it had when it stopped, up to the %d acknowledged", id, got, had[id], acked)
		}
	}
	waitFor(t, "leader after restart", 10*time.Second, func() bool { return leaderOf(nodes) != nil })
	for _, n := range nodes {
		waitFor(t, n.s.ID()+" catalog after restart", 5*time.Second, func() bool { return len(n.s.Current().Contracts()) == acked })
	}
}

// HasState answers from the disk until the node has state, then without
// touching it again: node asks every second, and raft's check creates and
// removes a file in the data directory each time.
func TestHasStateLatches(t *testing.T) {
	c := startCluster(t)
	defer c.stopAll(t)
	n := c.nodes[0]
	waitFor(t, "a leader", 10*time.Second, func() bool { return leaderOf(c.nodes) != nil })
	if has, err := n.s.HasState(); !has || err != nil {
		t.Fatalf("HasState after bootstrap = %v, %v; want true", has, err)
	}
	// With the snapshot directory replaced by a file, a look at the disk
	// fails; the remembered answer does not.
	snaps := filepath.Join(c.dir, "n1", "snapshots")
	if err := os.RemoveAll(snaps); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(snaps, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	has, err := n.s.HasState()
	if err := os.Remove(snaps); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(snaps, 0o750); err != nil {
		t.Fatal(err)
	}
	if !has || err != nil {
		t.Errorf("HasState with the disk unreadable = %v, %v; want the remembered true", has, err)
	}
}

// A node without state keeps looking at the disk (nothing is latched).
func TestHasStateFalseUntilBootstrap(t *testing.T) {
	c := startCluster(t)
	defer c.stopAll(t)
	dir := t.TempDir()
	// A fourth store, never bootstrapped, with the cluster's PKI (n1's
	// certificate: it does not join anything).
	fresh := startNode(t, dir, "n1", freeAddr(t), c.pkiDir)
	defer fresh.stop(t)
	for i := 0; i < 2; i++ {
		if has, err := fresh.s.HasState(); has || err != nil {
			t.Fatalf("HasState of a new store = %v, %v; want false", has, err)
		}
	}
	if err := fresh.s.Bootstrap([]Server{{ID: "n1", Address: fresh.s.Addr()}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new store has state", 10*time.Second, func() bool { has, _ := fresh.s.HasState(); return has })
}
