package node

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaxel/vaxel/catalog/command"
	"github.com/vaxel/vaxel/node/config"
	"github.com/vaxel/vaxel/pki"
)

// gossipPlatform is a test platform whose nodes find each other by gossip.
type gossipPlatform struct {
	t       *testing.T
	dir     string
	keyFile string
	seed    string // gossip address of the first node started
	ca      *pki.CA
}

func newGossipPlatform(t *testing.T) *gossipPlatform {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.NewCA("membership test CA", pki.ECDSAP256, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	admin, err := ca.Issue(pki.Request{CommonName: "admin", SerialNumber: "ADMIN"})
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.WriteFiles(dir, "admin", admin); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i * 7)
	}
	kf := filepath.Join(dir, "gossip.key")
	if err := os.WriteFile(kf, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &gossipPlatform{t: t, dir: dir, keyFile: kf, ca: ca}
}

type runningNode struct {
	*Node
	stop func()
}

// config returns a gossip node configuration; expect > 0 bootstraps by gossip.
func (p *gossipPlatform) config(name string, expect int, join ...string) *config.Config {
	t := p.t
	is, err := p.ca.Issue(pki.Request{CommonName: name, SerialNumber: "SE-" + strings.ToUpper(name), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.WriteFiles(p.dir, name, is); err != nil {
		t.Fatal(err)
	}
	c := config.Default()
	c.Node = config.Node{Name: name, Platform: "GOSSIPTEST", DataDir: filepath.Join(p.dir, "data", name)}
	c.TLS = config.TLS{Cert: filepath.Join(p.dir, name+".crt"), Key: filepath.Join(p.dir, name+".key"), CA: filepath.Join(p.dir, "ca.crt")}
	c.Router.HTTPSAddr = "127.0.0.1:0"
	c.Raft.Bind = "127.0.0.1:0"
	// Short enough to keep the test quick, long enough not to flap on a
	// loaded 2-core CI machine under the race detector.
	c.Raft.HeartbeatTimeout = 500 * time.Millisecond
	c.Raft.ElectionTimeout = 500 * time.Millisecond
	c.Admin.Addr = "127.0.0.1:0"
	c.Admin.Allow = []string{"ADMIN"}
	c.Gossip = config.Gossip{Bind: "127.0.0.1:0", KeyFile: p.keyFile, BootstrapExpect: expect, Join: join, ProbeInterval: 100 * time.Millisecond}
	if err := config.LoadDerived(&c); err != nil {
		t.Fatal(err)
	}
	return &c
}

func (p *gossipPlatform) start(c *config.Config) *runningNode {
	t := p.t
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("node", c.Node.Name)
	}
	n, err := New(c, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	waitFor(t, c.Node.Name+" gossip up", 20*time.Second, func() bool { return (n.pool == nil || n.pool.Addr() != "") && n.AdminAddr() != "" })
	var once sync.Once
	rn := &runningNode{Node: n, stop: func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("%s stopped: %v", c.Node.Name, err)
				}
			case <-time.After(20 * time.Second):
				// The goroutines tell which stage of the ordered shutdown hangs.
				var b strings.Builder
				_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
				t.Errorf("%s did not stop within 20 s; goroutines:\n%s", c.Node.Name, b.String())
			}
		})
	}}
	t.Cleanup(rn.stop)
	return rn
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func voters(n *Node) string {
	s, err := n.store.Servers()
	if err != nil {
		return "error: " + err.Error()
	}
	var ids []string
	for _, v := range s {
		ids = append(ids, v.ID)
	}
	return strings.Join(ids, ",")
}

func leaderOf(nodes ...*runningNode) *runningNode {
	for _, n := range nodes {
		if n.store.IsLeader() {
			return n
		}
	}
	return nil
}

func putProfile(t *testing.T, n *Node, name string) {
	t.Helper()
	ops := []command.Op{{Op: "put", Kind: "rivprofile", Entity: json.RawMessage(fmt.Sprintf(`{"name":%q}`, name))}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := n.store.Apply(ctx, command.TypeMutate, &command.Mutate{Meta: command.Meta{Actor: "test", Source: "admin", UnixNano: 1}, Ops: ops})
	if err != nil {
		t.Fatal(err)
	}
	if res.Err != nil {
		t.Fatal(res.Err)
	}
}

func hasProfile(n *Node, name string) bool {
	_, ok := n.Catalog().RivProfileByName(name)
	return ok
}

// Three new nodes with bootstrap_expect 3 form one platform by gossip (no
// static server list); a fourth that only joins is added as a voter by the
// leader and receives the catalog; when it leaves gracefully the leader
// removes it; a write sent to a follower's admin API is forwarded to the
// leader found through gossip.
func TestGossipBootstrapJoinAndLeave(t *testing.T) {
	p := newGossipPlatform(t)
	a := p.start(p.config("a", 3))
	b := p.start(p.config("b", 3, a.pool.Addr()))
	// Before the third node arrives nobody may bootstrap.
	time.Sleep(500 * time.Millisecond)
	if has, _ := a.store.HasState(); has {
		t.Fatal("a bootstrapped with 2 of 3 expected nodes")
	}
	c := p.start(p.config("c", 3, b.pool.Addr()))
	nodes := []*runningNode{a, b, c}
	waitFor(t, "a leader", 20*time.Second, func() bool { return leaderOf(nodes...) != nil })
	for _, n := range nodes {
		waitFor(t, n.cfg.Node.Name+" sees 3 voters", 20*time.Second, func() bool { return voters(n.Node) == "a,b,c" })
	}
	lead := leaderOf(nodes...)
	putProfile(t, lead.Node, "RIVTABP21")

	dc := p.config("d", 0, a.pool.Addr())
	dc.Gossip.LeaveOnStop = true
	d := p.start(dc)
	waitFor(t, "d added as voter", 20*time.Second, func() bool { return voters(lead.Node) == "a,b,c,d" })
	waitFor(t, "d has the catalog", 20*time.Second, func() bool { return hasProfile(d.Node, "RIVTABP21") })

	// A write to a follower's admin API, forwarded through gossip.
	var follower *runningNode
	for _, n := range nodes {
		if n != lead {
			follower = n
			break
		}
	}
	adminPost(t, p, follower.AdminAddr(), "/api/v1/catalog/rivprofile", `{"name":"RIVTABP20"}`)
	for _, n := range append(nodes, d) {
		waitFor(t, n.cfg.Node.Name+" has the forwarded write", 5*time.Second, func() bool { return hasProfile(n.Node, "RIVTABP20") })
	}

	d.stop()
	waitFor(t, "d removed after leaving", 20*time.Second, func() bool { return voters(lead.Node) == "a,b,c" })
}

// A failed node stays a voter and, restarted on its data, rejoins.
func TestGossipRestartRejoinsWithData(t *testing.T) {
	p := newGossipPlatform(t)
	a := p.start(p.config("a", 3))
	b := p.start(p.config("b", 3, a.pool.Addr()))
	cc := p.config("c", 3, a.pool.Addr())
	c := p.start(cc)
	nodes := []*runningNode{a, b, c}
	waitFor(t, "a leader", 20*time.Second, func() bool { return leaderOf(nodes...) != nil })
	putProfile(t, leaderOf(nodes...).Node, "RIVTABP21")
	waitFor(t, "c has the catalog", 5*time.Second, func() bool { return hasProfile(c.Node, "RIVTABP21") })

	gossipAddr := c.pool.Addr()
	c.stop()
	lead := leaderOf(a, b)
	waitFor(t, "a leader among a, b", 20*time.Second, func() bool { lead = leaderOf(a, b); return lead != nil })
	putProfile(t, lead.Node, "RIVTABP20")
	time.Sleep(time.Second) // several probe rounds: c is failed, not left
	if got := voters(lead.Node); got != "a,b,c" {
		t.Fatalf("voters after c failed = %s; a failed node must stay a voter", got)
	}
	// Restart c on its data and gossip address, with a new Raft port: the
	// leader learns the new Raft address from gossip.
	cc.Gossip.Bind = gossipAddr
	c2 := p.start(cc)
	waitFor(t, "restarted c catches up", 20*time.Second, func() bool { return hasProfile(c2.Node, "RIVTABP20") })
	waitFor(t, "c's new raft address in the configuration", 20*time.Second, func() bool {
		s, _ := lead.store.Servers()
		for _, v := range s {
			if v.ID == "c" {
				return v.Address == c2.store.Addr()
			}
		}
		return false
	})
}

func adminPost(t *testing.T, p *gossipPlatform, addr, path, body string) {
	t.Helper()
	tc, err := pki.ClientTLSConfig(filepath.Join(p.dir, "admin.crt"), filepath.Join(p.dir, "admin.key"), []string{filepath.Join(p.dir, "ca.crt")})
	if err != nil {
		t.Fatal(err)
	}
	tc = chainOnly(tc)
	cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
	resp, err := cl.Post("https://"+addr+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST %s: HTTP %d %s", path, resp.StatusCode, b)
	}
}
