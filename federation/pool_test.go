package federation

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaxel/vaxel/pki"
)

// testPKI issues loopback certificates from one CA.
type testPKI struct {
	ca   *pki.CA
	pool *x509.CertPool
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	ca, err := pki.NewCA("gossip test CA", pki.ECDSAP256, 0)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return &testPKI{ca: ca, pool: pool}
}

func (p *testPKI) tls(t testing.TB, name string) (server, client *tls.Config) {
	t.Helper()
	is, err := p.ca.Issue(pki.Request{CommonName: name, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(is.CertPEM, is.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	server = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, ClientCAs: p.pool, ClientAuth: tls.RequireAndVerifyClientCert}
	client = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, RootCAs: p.pool}
	return server, client
}

var testKey = bytes.Repeat([]byte{7}, 32)

// testConfig is a fast-timing pool config on loopback.
func testConfig(t testing.TB, p *testPKI, name string, seeds ...string) Config {
	srv, cli := p.tls(t, name)
	c := DefaultConfig()
	c.Name = name
	c.BindAddr = "127.0.0.1:0"
	c.Label = "vaxel-test"
	c.Keys = [][]byte{testKey}
	c.ServerTLS, c.ClientTLS = srv, cli
	c.Seeds = seeds
	c.Meta = Meta{Platform: "P", Node: name, RouterAddr: "127.0.0.1:20000", HSAID: "SE123-" + name}
	c.ProbeInterval = 100 * time.Millisecond
	c.ProbeTimeout = 50 * time.Millisecond
	c.GossipInterval = 20 * time.Millisecond
	c.SuspicionMult = 2
	c.RejoinInterval = 200 * time.Millisecond
	return c
}

// startPool runs a pool until the test ends; stop ends it early.
func startPool(t testing.TB, c Config) (p *Pool, stop func()) {
	t.Helper()
	p, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	select {
	case <-p.Ready():
	case err := <-done:
		t.Fatalf("pool %s: %v", c.Name, err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("pool %s stop: %v", c.Name, err)
			}
		})
	}
	t.Cleanup(stop)
	return p, stop
}

func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool, show ...*Pool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			for _, p := range show {
				t.Logf("members: %s", states(p))
			}
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func states(p *Pool) string {
	var b strings.Builder
	for _, m := range p.Members() {
		fmt.Fprintf(&b, "%s=%s ", m.Name, m.State)
	}
	return strings.TrimSpace(b.String())
}

func TestPoolJoinsAndSharesMeta(t *testing.T) {
	pk := newTestPKI(t)
	a, _ := startPool(t, testConfig(t, pk, "a"))
	b, _ := startPool(t, testConfig(t, pk, "b", a.Addr()))
	c, _ := startPool(t, testConfig(t, pk, "c", b.Addr()))
	for _, p := range []*Pool{a, b, c} {
		waitFor(t, "three alive members", 5*time.Second, func() bool { return states(p) == "a=alive b=alive c=alive" })
	}
	for _, m := range a.Members() {
		if m.Meta.Node != m.Name || m.Meta.HSAID != "SE123-"+m.Name || m.Meta.Platform != "P" {
			t.Errorf("member %s meta = %+v", m.Name, m.Meta)
		}
	}
	// A metadata change reaches the others.
	meta := testConfig(t, pk, "c").Meta
	meta.HasState = true
	if err := c.SetMeta(meta); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "c's new metadata at a", 5*time.Second, func() bool {
		for _, m := range a.Members() {
			if m.Name == "c" {
				return m.Meta.HasState
			}
		}
		return false
	})
}

// RTT pings a member; an unknown member is an error, not a hang.
func TestPoolRTT(t *testing.T) {
	pk := newTestPKI(t)
	a, _ := startPool(t, testConfig(t, pk, "a"))
	b, _ := startPool(t, testConfig(t, pk, "b", a.Addr()))
	waitFor(t, "two alive members", 5*time.Second, func() bool { return states(a) == "a=alive b=alive" }, a, b)
	d, err := a.RTT("b")
	if err != nil {
		t.Fatal(err)
	}
	if d <= 0 || d > time.Second {
		t.Errorf("RTT to b on loopback = %s", d)
	}
	if _, err := a.RTT("nobody"); err == nil {
		t.Error("RTT to an unknown member succeeded")
	}
}

func TestPoolDetectsFailureAndLeave(t *testing.T) {
	pk := newTestPKI(t)
	a, _ := startPool(t, testConfig(t, pk, "a"))
	_, stopB := startPool(t, testConfig(t, pk, "b", a.Addr()))
	cc := testConfig(t, pk, "c", a.Addr())
	cc.LeaveOnStop = true
	_, stopC := startPool(t, cc)
	waitFor(t, "three alive", 5*time.Second, func() bool { return states(a) == "a=alive b=alive c=alive" })
	stopB() // crash-like: no leave message
	stopC() // graceful leave
	waitFor(t, "b failed, c left", 10*time.Second, func() bool { return states(a) == "a=alive b=failed c=left" }, a)
	t.Log(states(a))
}

// A member that comes back after a partition is rejoined by the pool, with
// no restart: here b stops answering (its pool stops), a declares it failed,
// and a new b on the same address is found by a's rejoin loop alone (b has
// no seeds).
func TestPoolRejoinsFailedMember(t *testing.T) {
	pk := newTestPKI(t)
	a, _ := startPool(t, testConfig(t, pk, "a"))
	bc := testConfig(t, pk, "b", a.Addr())
	b, stopB := startPool(t, bc)
	waitFor(t, "two alive", 5*time.Second, func() bool { return states(a) == "a=alive b=alive" })
	addr := b.Addr()
	stopB()
	waitFor(t, "b failed", 10*time.Second, func() bool { return states(a) == "a=alive b=failed" })
	bc2 := testConfig(t, pk, "b")
	bc2.BindAddr = addr
	b2, _ := startPool(t, bc2)
	waitFor(t, "b back at a", 10*time.Second, func() bool { return states(a) == "a=alive b=alive" })
	waitFor(t, "a seen by new b", 10*time.Second, func() bool { return states(b2) == "a=alive b=alive" })
}

func TestPoolRefusesWrongKeyLabelOrCA(t *testing.T) {
	pk := newTestPKI(t)
	a, _ := startPool(t, testConfig(t, pk, "a"))

	wrongKey := testConfig(t, pk, "k", a.Addr())
	wrongKey.Keys = [][]byte{bytes.Repeat([]byte{8}, 32)}
	wrongLabel := testConfig(t, pk, "l", a.Addr())
	wrongLabel.Label = "other-platform"
	foreign := newTestPKI(t)
	wrongCA := testConfig(t, foreign, "f", a.Addr())

	for _, c := range []Config{wrongKey, wrongLabel, wrongCA} {
		p, _ := startPool(t, c)
		if n, err := p.Join([]string{a.Addr()}); err == nil {
			t.Errorf("%s joined %d members; want refusal", c.Name, n)
		}
	}
	// Give stray packets time to arrive: none may make a member.
	time.Sleep(500 * time.Millisecond)
	if got := states(a); got != "a=alive" {
		t.Errorf("a's members = %q, want only a", got)
	}
}

func TestMetaEncoding(t *testing.T) {
	full := Meta{HasState: true, Leaving: true}
	for _, f := range full.fields() {
		*f = strings.Repeat("x", MaxMetaField)
	}
	b, err := full.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 512 {
		t.Fatalf("full meta is %d bytes, over memberlist's 512", len(b))
	}
	got, err := DecodeMeta(b)
	if err != nil || got != full {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	over := Meta{Platform: strings.Repeat("x", MaxMetaField+1)}
	if _, err := over.Encode(); err == nil {
		t.Error("over-long field encoded")
	}
	// A newer version with an extra field decodes; a truncated one does not panic.
	m := Meta{Platform: "P", Node: "n"}
	b, _ = m.Encode()
	b[0] = 2
	b = append(b, 3, 'n', 'e', 'w')
	if got, err := DecodeMeta(b); err != nil || got.Platform != "P" || got.Node != "n" {
		t.Errorf("newer meta: %+v, %v", got, err)
	}
	for i := range b {
		_, _ = DecodeMeta(b[:i])
	}
	if _, err := DecodeMeta([]byte{1, 0, 200}); err == nil {
		t.Error("malformed length accepted")
	}
}

// BenchmarkFederationFailureDetection: seven members with the federation
// defaults (DefaultFederationConfig, not test timings) on loopback; one
// stops without leaving; reported: seconds until every other member sees
// it failed ("detect-s", goal ≤ 5 s) and gossip bytes sent per member per
// second while all seven were up ("B/s/member").
func BenchmarkFederationFailureDetection(b *testing.B) {
	pk := newTestPKI(b)
	var detect, bw float64
	for i := 0; i < b.N; i++ {
		pools := make([]*Pool, 7)
		stops := make([]func(), 7)
		for j := range pools {
			c := DefaultFederationConfig()
			srv, cli := pk.tls(b, fmt.Sprintf("p%d", j))
			c.Name, c.BindAddr, c.Label, c.Keys = fmt.Sprintf("p%d", j), "127.0.0.1:0", "bench", [][]byte{testKey}
			c.ServerTLS, c.ClientTLS = srv, cli
			c.Meta = Meta{Platform: fmt.Sprintf("P%d", j), RouterAddr: "127.0.0.1:1"}
			if j > 0 {
				c.Seeds = []string{pools[0].Addr()}
			}
			pools[j], stops[j] = startPool(b, c)
		}
		for _, p := range pools {
			waitFor(b, "seven alive", 30*time.Second, func() bool { return strings.Count(states(p), "alive") == 7 })
		}
		var before uint64
		for _, p := range pools {
			before += p.BytesSent()
		}
		time.Sleep(5 * time.Second)
		var after uint64
		for _, p := range pools {
			after += p.BytesSent()
		}
		bw += float64(after-before) / 7 / 5
		t0 := time.Now()
		stops[6]()
		for _, p := range pools[:6] {
			waitFor(b, "p6 failed everywhere", 60*time.Second, func() bool { return strings.Contains(states(p), "p6=failed") })
		}
		d := time.Since(t0).Seconds()
		b.Logf("run %d: failure seen by all six after %.2f s", i, d)
		detect += d
		for _, s := range stops[:6] {
			s()
		}
	}
	b.ReportMetric(detect/float64(b.N), "detect-s")
	b.ReportMetric(bw/float64(b.N), "B/s/member")
}

// silentServer accepts streams on loopback and never answers; with tls it
// takes part in the TLS handshake first. It returns its address and a
// count of the streams it accepted that the peer has since closed.
func silentServer(t *testing.T, pk *testPKI, withTLS bool) (addr string, closed func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := pk.tls(t, "silent")
	var mu sync.Mutex
	n := 0
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() {
				defer func() {
					mu.Lock()
					n++
					mu.Unlock()
				}()
				var r net.Conn = c
				if withTLS {
					tc := tls.Server(c, srv)
					if tc.Handshake() != nil {
						return // the peer gave up during the handshake
					}
					r = tc
				}
				// Read and ignore until the peer closes.
				buf := make([]byte, 512)
				for {
					if _, err := r.Read(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String(), func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// An address that accepts and never answers (a hung host, a middlebox)
// holds a join for memberlist's TCPTimeout (10 s here, 30 s on WAN
// timing). It must delay neither the join of the other addresses nor the
// pool's shutdown.
func TestPoolRejoinIsNotHeldBySilentAddress(t *testing.T) {
	for _, withTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", withTLS), func(t *testing.T) {
			pk := newTestPKI(t)
			a, _ := startPool(t, testConfig(t, pk, "a"))
			silent, closed := silentServer(t, pk, withTLS)
			// memberlist joins a list's addresses in order: the silent one first.
			b, stopB := startPool(t, testConfig(t, pk, "b", silent, a.Addr()))
			waitFor(t, "b joined a past the silent seed", 3*time.Second, func() bool { return states(b) == "a=alive b=alive" }, b)
			start := time.Now()
			stopB()
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("b's pool took %s to stop with a join to a silent address in flight; want under 2 s", took)
			}
			waitFor(t, "the silent address's stream closed", 2*time.Second, func() bool { return closed() > 0 })
		})
	}
}

// When this member is alone, its seeds are what finds the others again
// (failed members' old addresses may be gone for good): more failed
// members than maxRejoins whose addresses hang must not keep the seeds
// from being joined.
func TestPoolRejoinReachesSeedsPastSilentFailedMembers(t *testing.T) {
	pk := newTestPKI(t)
	a, _ := startPool(t, testConfig(t, pk, "a"))
	b, err := New(testConfig(t, pk, "b", a.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	for i := range maxRejoins + 1 {
		name := fmt.Sprintf("gone-%d", i)
		addr, _ := silentServer(t, pk, true)
		b.members[name] = &Member{Name: name, Addr: addr, State: StateFailed, Since: time.Now()}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("b stop: %v", err)
		}
	})
	waitFor(t, "b joined its seed past the hanging failed members", 3*time.Second, func() bool {
		m, ok := member(b, "a")
		return ok && m.State == StateAlive
	}, b)
}

// Gossip spreads a metadata change for a few rounds only; a member that
// missed them learns it at the next push/pull. Here gossip and probes are
// slowed so far that the change is never gossiped: only push/pull, every
// PushPullInterval, can carry it.
func TestPoolPushPullCarriesMissedMetadata(t *testing.T) {
	pk := newTestPKI(t)
	quiet := func(c Config) Config {
		c.GossipInterval, c.ProbeInterval, c.ProbeTimeout = time.Hour, time.Hour, time.Second
		c.PushPullInterval = 300 * time.Millisecond
		return c
	}
	a, _ := startPool(t, quiet(testConfig(t, pk, "a")))
	b, _ := startPool(t, quiet(testConfig(t, pk, "b", a.Addr())))
	waitFor(t, "two alive", 5*time.Second, func() bool { return states(a) == "a=alive b=alive" })
	meta := b.cfg.Meta
	meta.RouterAddr = "127.0.0.1:20999"
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = b.SetMeta(meta) // waits (in vain) for the update to be gossiped
	}()
	t.Cleanup(func() { <-done })
	waitFor(t, "a has b's new metadata", 2*time.Second, func() bool {
		m, ok := member(a, "b")
		return ok && m.Meta.RouterAddr == "127.0.0.1:20999"
	}, a)
}
