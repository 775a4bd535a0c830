package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/vaxel/vaxel/federation"
	"github.com/vaxel/vaxel/node"
	"github.com/vaxel/vaxel/node/config"
)

// devFedPlatform is one platform of dev mode's federation.
type devFedPlatform struct {
	name  string   // platform name, the "plattform" of its orders
	hsaID string   // the platform's HSA-ID: SERIALNUMBER of its nodes' certificates
	nodes []string // node names (certificate CN, Raft id)
	allow []string // federation.allow_platforms
	// Its catalog: the demo contract at the demo address goes to route
	// (served by component), and consumer may call it.
	route, component, consumer string
	running                    []*devFedNode
}

type devFedNode struct {
	name   string
	n      *node.Node
	cancel context.CancelFunc
	done   chan error
}

// stop stops the node and waits for it.
func (d *devFedNode) stop() error {
	d.cancel()
	select {
	case err := <-d.done:
		return err
	case <-time.After(20 * time.Second):
		return fmt.Errorf("node %s did not stop within 20 s", d.name)
	}
}

// cmdDevFederation starts three federated platforms on loopback: region A
// (three nodes), the national platform (three nodes) and region B (one
// node, with the demo producer behind it). A consumer calls A; A routes the
// demo contract to vaxel://NATIONAL, NATIONAL to vaxel://REGION-B, B to the
// producer. One test CA (SITHS in production) issues every certificate; each
// platform has its own gossip key, all share one federation key.
func cmdDevFederation(ctx context.Context, abs string, port int, verbose, once bool, stdout, stderr io.Writer) (err error) {
	start := time.Now()
	pA := &devFedPlatform{name: "REGION-A", hsaID: "SE-REGION-A", nodes: []string{"a-1", "a-2", "a-3"}, allow: []string{"NATIONAL"},
		route: devFedRoute("NATIONAL"), component: "SE-NATIONAL", consumer: devConsumer}
	pN := &devFedPlatform{name: "NATIONAL", hsaID: "SE-NATIONAL", nodes: []string{"national-1", "national-2", "national-3"}, allow: []string{"REGION-A", "REGION-B"},
		route: devFedRoute("REGION-B"), component: "SE-REGION-B", consumer: "SE-REGION-A"}
	pB := &devFedPlatform{name: "REGION-B", hsaID: "SE-REGION-B", nodes: []string{"b-1"}, allow: []string{"NATIONAL"},
		component: devProducer, consumer: "SE-NATIONAL"}
	plats := []*devFedPlatform{pA, pN, pB}

	pkiDir, issue, err := devPKI(abs, "vaxel dev federation CA")
	if err != nil {
		return err
	}
	for _, p := range plats {
		for _, nn := range p.nodes {
			if err := issue(nn, p.hsaID); err != nil {
				return err
			}
		}
	}
	for _, c := range [][2]string{{"consumer", devConsumer}, {"admin", "ADMIN"}} {
		if err := issue(c[0], c[1]); err != nil {
			return err
		}
	}
	writeKey := func(name string) (string, error) {
		k, err := newGossipKey()
		if err != nil {
			return "", err
		}
		f := filepath.Join(pkiDir, name)
		return f, os.WriteFile(f, []byte(k+"\n"), 0o600)
	}
	fedKey, err := writeKey("federation.key")
	if err != nil {
		return err
	}
	gossipKeys := map[string]string{}
	for _, p := range plats {
		if gossipKeys[p.name], err = writeKey("gossip-" + strings.ToLower(p.name) + ".key"); err != nil {
			return err
		}
	}

	producerURL, stopProducer, err := startDemoProducer()
	if err != nil {
		return err
	}
	defer stopProducer()
	pB.route = producerURL

	var logOut io.Writer = io.Discard
	if verbose {
		logOut = &syncWriter{w: stderr}
	}

	// Stop every node on the way out, one at a time: the consumer's side
	// first, so that no call is in flight towards a platform that is
	// stopping; in each platform the followers before the catalog leader,
	// so that no election starts.
	defer func() {
		for _, p := range plats {
			order := append([]*devFedNode(nil), p.running...)
			sort.SliceStable(order, func(i, j int) bool { return !order[i].n.Store().IsLeader() && order[j].n.Store().IsLeader() })
			for _, d := range order {
				if e := d.stop(); e != nil && err == nil {
					err = fmt.Errorf("node %s/%s: %w", p.name, d.name, e)
				}
			}
		}
	}()

	startNode := func(p *devFedPlatform, i int, gossipJoin, fedJoin []string) (*devFedNode, error) {
		name := p.nodes[i]
		cfg := config.Default()
		cfg.Node = config.Node{Name: name, Platform: p.name, DataDir: filepath.Join(abs, "data", name)}
		cfg.TLS = config.TLS{Cert: filepath.Join(pkiDir, name+".crt"), Key: filepath.Join(pkiDir, name+".key"), CA: filepath.Join(pkiDir, "ca.crt"),
			ProducerCAs: []string{filepath.Join(pkiDir, "ca.crt")}}
		cfg.Router.HTTPSAddr = "127.0.0.1:0"
		if p == pA && i == 0 {
			cfg.Router.HTTPSAddr = fmt.Sprintf("127.0.0.1:%d", port)
		}
		cfg.Raft.Bind = "127.0.0.1:0"
		// Short timings, as in the node tests: quick to form, still calm
		// on a loaded machine. (Discovery does not wait for probes: a
		// joining member learns the pool at once.)
		cfg.Raft.HeartbeatTimeout = 500 * time.Millisecond
		cfg.Raft.ElectionTimeout = 500 * time.Millisecond
		cfg.Admin.Addr = "127.0.0.1:0"
		cfg.Admin.Allow = []string{"ADMIN"}
		cfg.Gossip = config.Gossip{Bind: "127.0.0.1:0", KeyFile: gossipKeys[p.name], Join: gossipJoin, ProbeInterval: 200 * time.Millisecond}
		// Every node of a new platform expects them all; all but the first
		// also join the first.
		cfg.Gossip.BootstrapExpect = len(p.nodes)
		cfg.Federation = config.Federation{Bind: "127.0.0.1:0", KeyFile: fedKey, AllowPlatforms: p.allow, Join: fedJoin, ProbeInterval: 500 * time.Millisecond}
		cfg.Log.Format = "json"
		if err := config.LoadDerived(&cfg); err != nil {
			return nil, fmt.Errorf("%s/%s: %w", p.name, name, err)
		}
		log := slog.New(slog.NewJSONHandler(logOut, nil)).With("node", name, "platform", p.name)
		n, err := node.New(&cfg, log, node.WithCallLog(logOut, slog.String("node", name), slog.String("platform", p.name)))
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %w", p.name, name, err)
		}
		runCtx, cancel := context.WithCancel(context.Background())
		d := &devFedNode{name: name, n: n, cancel: cancel, done: make(chan error, 1)}
		go func() { d.done <- n.Run(runCtx) }()
		p.running = append(p.running, d)
		return d, nil
	}

	// The first node of each platform: NATIONAL's first is the federation's
	// seed; the others join the first of their platform.
	firstNat, err := startNode(pN, 0, nil, nil)
	if err != nil {
		return err
	}
	fedSeed, err := selfAddr(ctx, firstNat, firstNat.n.FederationMembers, pN.name+"/"+firstNat.name)
	if err != nil {
		return err
	}
	seeds := map[*devFedPlatform]string{}
	for _, p := range plats {
		d := firstNat
		if p != pN {
			if d, err = startNode(p, 0, nil, []string{fedSeed}); err != nil {
				return err
			}
		}
		if seeds[p], err = selfAddr(ctx, d, d.n.Members, d.name); err != nil {
			return err
		}
	}
	for _, p := range plats {
		for i := 1; i < len(p.nodes); i++ {
			if _, err := startNode(p, i, []string{seeds[p]}, []string{fedSeed}); err != nil {
				return err
			}
		}
	}

	// Each platform's catalog, applied as an SKLTP order through its leader.
	for _, p := range plats {
		if err := devFedCatalog(ctx, p); err != nil {
			return err
		}
	}
	// Every node ready (it holds its platform's catalog), and the platforms
	// on the call's path see the next platform's nodes.
	deadline := time.Now().Add(30 * time.Second)
	wait := func(what string, cond func() bool) error {
		for !cond() {
			if err := devFedAlive(ctx, plats); err != nil {
				return err
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("timed out waiting for %s", what)
			}
			time.Sleep(25 * time.Millisecond)
		}
		return nil
	}
	for _, p := range plats {
		for _, d := range p.running {
			if err := wait(p.name+"/"+d.name+" ready", func() bool { ok, _ := d.n.Readiness(); return ok }); err != nil {
				return err
			}
		}
	}
	for _, hop := range [][2]*devFedPlatform{{pA, pN}, {pN, pB}} {
		for _, d := range hop[0].running {
			if err := wait(fmt.Sprintf("%s/%s to see the %d nodes of %s", hop[0].name, d.name, len(hop[1].nodes), hop[1].name), func() bool {
				return len(fedRouters(d.n, hop[1].name)) == len(hop[1].nodes)
			}); err != nil {
				return err
			}
		}
	}
	startup := time.Since(start)

	aHTTPS, _ := pA.running[0].n.RouterAddrs()
	reqFile := filepath.Join(abs, "request.xml")
	if err := os.WriteFile(reqFile, []byte(devRequest), 0o644); err != nil {
		return err
	}
	// The routers pick up a federation change on its event, or within a
	// second: retry a call that finds no node of a platform yet.
	var status int
	var body, corr string
	for {
		status, body, corr, err = demoCall(pkiDir, aHTTPS)
		if err == nil && status == http.StatusOK || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("demo call: %w", err)
	}

	fmt.Fprintf(stdout, "vaxel dev -federation: three federated platforms are running on loopback (started in %.1f s).\n", startup.Seconds())
	for _, p := range plats {
		fmt.Fprintf(stdout, "\n  %s (HSA-ID %s, federation.allow_platforms %s)\n", p.name, p.hsaID, strings.Join(p.allow, ","))
		for _, d := range p.running {
			h, _ := d.n.RouterAddrs()
			role := ""
			if d.n.Store().IsLeader() {
				role = "  (catalog leader)"
			}
			fmt.Fprintf(stdout, "    %-11s router https://%s/vp   admin https://%s%s\n", d.name, h, d.n.AdminAddr(), role)
		}
		fmt.Fprintf(stdout, "    routes %s at %s to %s\n", devContract, devAddress, p.route)
		fmt.Fprintf(stdout, "    authorizes %s\n", p.consumer)
	}
	fmt.Fprintf(stdout, `
Client certificates in %s: consumer.crt (%s), admin.crt (ADMIN, on every admin.allow).

A call into %s as consumer %s, through %s to the demo producer behind %s:

  HTTP %d, x-skltp-correlation-id: %s
%s

Repeat it with:
  curl --cert %s/consumer.crt --key %s/consumer.key --cacert %s/ca.crt \
       -H 'Content-Type: text/xml;charset=UTF-8' --data-binary @%s https://%s/vp

Follow it across the platforms:
  vaxel trace -admin %s -cert %s/admin.crt -key %s/admin.key -ca %s/ca.crt %s
`, pkiDir, devConsumer, pA.name, devConsumer, pN.name, pB.name, status, corr, indent(body),
		pkiDir, pkiDir, pkiDir, reqFile, aHTTPS,
		pA.running[0].n.AdminAddr(), pkiDir, pkiDir, pkiDir, corr)
	if status != http.StatusOK {
		return fmt.Errorf("demo call answered HTTP %d", status)
	}
	if once {
		return nil
	}
	fmt.Fprintln(stdout, "\nPress Ctrl-C to stop.")
	select {
	case <-ctx.Done():
		return nil
	case err := <-firstDone(plats):
		return err
	}
}

func devFedRoute(platform string) string { return "vaxel://" + platform }

// selfAddr waits until a pool lists this node and returns its address.
func selfAddr(ctx context.Context, d *devFedNode, members func() []federation.Member, name string) (string, error) {
	deadline := time.After(10 * time.Second)
	for {
		for _, m := range members() {
			if m.Name == name && m.Addr != "" {
				return m.Addr, nil
			}
		}
		select {
		case err := <-d.done:
			d.done <- err // keep it for stop
			return "", fmt.Errorf("node %s stopped: %v", d.name, err)
		case <-ctx.Done():
			return "", ctx.Err()
		case <-deadline:
			return "", fmt.Errorf("node %s: no gossip address within 10 s", d.name)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// fedRouters returns the router addresses of platform's alive nodes as n
// sees them in the federation pool (what its router's Platforms table is
// built from).
func fedRouters(n *node.Node, platform string) []string {
	var out []string
	for _, m := range n.FederationMembers() {
		if m.State == federation.StateAlive && strings.EqualFold(m.Meta.Platform, platform) && m.Meta.RouterAddr != "" {
			out = append(out, m.Meta.RouterAddr)
		}
	}
	return out
}

// devFedAlive reports a node that has stopped on its own.
func devFedAlive(ctx context.Context, plats []*devFedPlatform) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	for _, p := range plats {
		for _, d := range p.running {
			select {
			case err := <-d.done:
				d.done <- err
				return fmt.Errorf("node %s/%s stopped: %v", p.name, d.name, err)
			default:
			}
		}
	}
	return nil
}

// firstDone delivers the result of the first node to stop on its own.
func firstDone(plats []*devFedPlatform) <-chan error {
	ch := make(chan error, 1)
	go func() {
		for {
			if err := devFedAlive(context.Background(), plats); err != nil {
				ch <- err
				return
			}
			time.Sleep(500 * time.Millisecond)
		}
	}()
	return ch
}

// devFedCatalog applies a platform's demo catalog through its leader,
// retrying while the platform elects one (or leadership moves).
func devFedCatalog(ctx context.Context, p *devFedPlatform) error {
	deadline := time.Now().Add(20 * time.Second)
	var first, last error
	for time.Now().Before(deadline) {
		if err := devFedAlive(ctx, []*devFedPlatform{p}); err != nil {
			return err
		}
		for _, d := range p.running {
			if !d.n.Catalog().Empty() {
				return nil // applied, though its answer was lost (the order is one entry)
			}
			if d.n.Store().IsLeader() {
				if last = applyDemoOrder(ctx, d.n, p.name, p.route, p.component, p.consumer); last == nil {
					return nil
				}
				if first == nil {
					first = last
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if last == nil {
		return fmt.Errorf("platform %s: no catalog leader elected within 20 s", p.name)
	}
	if first.Error() != last.Error() {
		return fmt.Errorf("platform %s: demo catalog: %w (first attempt: %v)", p.name, last, first)
	}
	return fmt.Errorf("platform %s: demo catalog: %w", p.name, last)
}
