// Command scenario drives the container test of scripts/container-test.sh
// against the three-node platform of test/container/docker-compose.yml:
//
//  1. loads the demo catalog through the admin API and checks a call through
//     every node;
//  2. runs a bounded call load (consumer certificate, spread over the nodes
//     that answer /ready, as a load balancer would; a call whose connection
//     fails is retried on the next node) and a bounded write load (one order
//     every 100 ms, round robin over the nodes' admin APIs, so most go to a
//     follower and are forwarded);
//  3. kills the leader's container (SIGKILL) and measures when writes are
//     accepted again; sends a write to a follower; starts the container
//     again and watches it come back (what its router answers before it has
//     the catalog, when it is ready, when it has caught up); -cycles repeats
//     this step;
//  4. checks that every acknowledged write is on all three nodes, restarts
//     all nodes (docker-compose restart, a graceful stop) and checks that
//     each comes back with the same catalog and routes without VP008.
//
// It prints the figures and exits non-zero if an acceptance criterion fails:
// an acknowledged write missing on a node, a balanced call answered with a
// fault (VP008 above all) or by no node, writes not accepted again within
// -max-write-gap of the kill, a write sent to a follower refused, the catalog
// changed by the restart. It needs the docker and docker-compose commands
// (for the kill, start and restart) and the ports published on 127.0.0.1.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vaxel/vaxel/pki"
	"github.com/vaxel/vaxel/test/ctkit"
)

const (
	platform = "CT"
	consumer = "SE0000000001-CT"
	address  = "SE0000000002-CT"
	producer = "CT-PRODUCER"
	contract = ctkit.PingContract
	// producerURL is the demo producer service of the compose file.
	producerURL = "http://producer:8080/ping"
)

var request = ctkit.PingRequest(address)

var (
	pkiDir      = flag.String("pki", "", "directory with ca.crt, admin.{crt,key} and consumer.{crt,key}")
	nodesFlag   = flag.String("nodes", "", "node1=ROUTER_PORT:ADMIN_PORT,... (published on 127.0.0.1); names are compose services")
	composeFile = flag.String("compose-file", "", "docker-compose file")
	project     = flag.String("project", "", "docker-compose project name")
	rate        = flag.Int("rate", 50, "calls per second")
	writeEvery  = flag.Duration("write-every", 100*time.Millisecond, "interval between catalog writes")
	beforeKill  = flag.Duration("before-kill", 5*time.Second, "load before the leader is killed")
	downFor     = flag.Duration("down", 6*time.Second, "how long the killed node stays down")
	afterStart  = flag.Duration("after-start", 6*time.Second, "load after the killed node is started again")
	maxGap      = flag.Duration("max-write-gap", 3*time.Second, "acceptance: writes accepted again within this time after the kill")
	cyclesFlag  = flag.Int("cycles", 1, "how many times the leader is killed and started again")
)

type node struct {
	name          string
	router, admin string // 127.0.0.1:port
	container     string // docker container id
	up            atomic.Bool
}

var (
	nodes    []*node
	callHTTP *http.Client
	adminTLS *tls.Config
	adm      *ctkit.Admin
)

func logf(format string, args ...any) { ctkit.Logf(format, args...) }

func fail(format string, args ...any) { ctkit.Fail(format, args...) }

func main() {
	flag.Parse()
	if err := setup(); err != nil {
		fmt.Fprintln(os.Stderr, "scenario:", err)
		os.Exit(2)
	}
	if err := run(); err != nil {
		fail("%v", err)
	}
	if failures := ctkit.Failures(); len(failures) > 0 {
		fmt.Printf("\nCONTAINER SCENARIO FAILED (%d):\n", len(failures))
		for _, f := range failures {
			fmt.Println("  -", f)
		}
		os.Exit(1)
	}
	fmt.Println("\ncontainer scenario passed")
}

func setup() error {
	if *pkiDir == "" || *nodesFlag == "" || *composeFile == "" || *project == "" {
		return errors.New("-pki, -nodes, -compose-file and -project are required")
	}
	for _, spec := range strings.Split(*nodesFlag, ",") {
		name, ports, ok := strings.Cut(spec, "=")
		rp, ap, ok2 := strings.Cut(ports, ":")
		if !ok || !ok2 {
			return fmt.Errorf("-nodes %q: want name=ROUTER_PORT:ADMIN_PORT", spec)
		}
		n := &node{name: name, router: "127.0.0.1:" + rp, admin: "127.0.0.1:" + ap}
		n.up.Store(true)
		nodes = append(nodes, n)
	}
	ca := filepath.Join(*pkiDir, "ca.crt")
	ctc, err := pki.ClientTLSConfig(filepath.Join(*pkiDir, "consumer.crt"), filepath.Join(*pkiDir, "consumer.key"), []string{ca})
	if err != nil {
		return err
	}
	callHTTP = &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		TLSClientConfig: ctc, MaxIdleConnsPerHost: 32, IdleConnTimeout: 30 * time.Second, TLSHandshakeTimeout: 2 * time.Second,
	}}
	adminTLS, err = pki.ClientTLSConfig(filepath.Join(*pkiDir, "admin.crt"), filepath.Join(*pkiDir, "admin.key"), []string{ca})
	if err != nil {
		return err
	}
	adm = ctkit.NewAdmin(adminTLS)
	return nil
}

// ---- admin API ----

func adminDo(ctx context.Context, n *node, method, path string, body []byte) (int, []byte, error) {
	return adm.Do(ctx, n.admin, method, path, body)
}

func getJSON(n *node, path string, v any) error { return adm.GetJSON(n.admin, path, v) }

func ready(n *node) bool { return adm.Ready(n.admin) }

type raftInfo struct {
	Servers []struct {
		ID     string `json:"id"`
		Leader bool   `json:"leader"`
	} `json:"servers"`
	Stats map[string]string `json:"stats"`
}

// leaderSeenBy returns the leader as n sees it and n's own Raft state.
func leaderSeenBy(n *node) (leader, state string, err error) {
	var ri raftInfo
	if err := getJSON(n, "/api/v1/raft", &ri); err != nil {
		return "", "", err
	}
	for _, s := range ri.Servers {
		if s.Leader {
			leader = s.ID
		}
	}
	return leader, ri.Stats["state"], nil
}

// findLeader returns the node that says it leads, among ns.
func findLeader(ns []*node) *node {
	for _, n := range ns {
		if _, st, err := leaderSeenBy(n); err == nil && st == "Leader" {
			return n
		}
	}
	return nil
}

func waitFor(what string, timeout time.Duration, every time.Duration, ok func() bool) (time.Duration, error) {
	return ctkit.WaitFor(what, timeout, every, ok)
}

type catalogSummary struct {
	Version uint64         `json:"version"`
	Counts  map[string]int `json:"counts"`
}

func summary(n *node) (catalogSummary, error) {
	var s catalogSummary
	err := getJSON(n, "/api/v1/catalog", &s)
	return s, err
}

// logicalAddresses returns the HSA-IDs of n's logical addresses.
func logicalAddresses(n *node) (map[string]bool, error) {
	var list []struct {
		HSAID string `json:"hsaId"`
	}
	if err := getJSON(n, "/api/v1/catalog/logicaladdress", &list); err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, e := range list {
		out[e.HSAID] = true
	}
	return out, nil
}

func order(comment string, la string) []byte {
	now := time.Now().Format("2006-01-02T15:04:05-0700")
	o := map[string]any{
		"plattform": platform, "formatVersion": 1.0, "version": 1,
		"bestallningsTidpunkt": now, "genomforandeTidpunkt": now,
		"utforare": "container scenario", "kommentar": comment,
		"inkludera": map[string]any{
			"logiskadresser":     []any{map[string]any{"hsaId": la, "beskrivning": comment}},
			"anropsbehorigheter": []any{map[string]any{"logiskAdress": la, "tjanstekontrakt": contract, "tjanstekonsument": consumer}},
			"vagval":             []any{map[string]any{"adress": producerURL, "logiskAdress": la, "tjanstekontrakt": contract, "rivtaprofil": "RIVTABP21", "tjanstekomponent": producer}},
		},
	}
	b, _ := json.Marshal(o)
	return b
}

// ---- one kill-and-restart cycle ----

type cycle struct {
	n                    int
	victim, newLeader    *node
	killAt, startAt      time.Time
	electedAfter         time.Duration
	followerWrite        string
	firstAnswer, firstOK time.Duration
	readyAt, caughtUp    time.Duration
	vp008Direct          int
	gap, maxAckGap       time.Duration // from the write log, see figures
}

// killAndRestart kills the leader's container, measures the failover,
// writes to a follower, starts the container again after -down and watches
// it come back. Calls and writes keep flowing throughout.
func killAndRestart(c int, writes *writeLog) (*cycle, error) {
	cy := &cycle{n: c, followerWrite: "no follower found"}
	cy.victim = findLeader(nodes)
	if cy.victim == nil {
		return nil, errors.New("no leader before the kill")
	}
	victim := cy.victim
	id := victim.container
	issued := time.Now()
	if _, err := docker("kill", "-s", "KILL", id); err != nil {
		return nil, err
	}
	var survivors []*node
	for _, n := range nodes {
		if n != victim {
			survivors = append(survivors, n)
		}
	}
	var electedAt time.Time
	_, errElect := waitFor("a new leader among the survivors", 15*time.Second, 25*time.Millisecond, func() bool {
		cy.newLeader = findLeader(survivors)
		electedAt = time.Now()
		return cy.newLeader != nil
	})
	// The engine's record of when the process died is the kill time.
	cy.killAt = stateTime(id, "FinishedAt", issued)
	cy.electedAfter = electedAt.Sub(cy.killAt)
	logf("cycle %d: killed leader %s (SIGKILL; died %dms after docker kill was issued)", c, victim.name, cy.killAt.Sub(issued).Milliseconds())
	if errElect != nil {
		fail("cycle %d: %v", c, errElect)
	} else {
		logf("cycle %d: new leader %s, %dms after the kill", c, cy.newLeader.name, cy.electedAfter.Milliseconds())
	}

	// A write sent to a follower after the failover (forwarded to the leader).
	for _, n := range survivors {
		if n == cy.newLeader {
			continue
		}
		// The follower forwards to the leader it knows; right after the
		// election it may not know it yet (it answers 503 then), so wait.
		if _, err := waitFor(n.name+" knows the new leader", 5*time.Second, 25*time.Millisecond, func() bool {
			l, _, err := leaderSeenBy(n)
			return err == nil && cy.newLeader != nil && l == cy.newLeader.name
		}); err != nil {
			fail("cycle %d: %v", c, err)
		}
		la := fmt.Sprintf("SE-CT-LA-FOLLOWER-%d", c)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		code, b, err := adminDo(ctx, n, "POST", "/api/v1/orders", order("write to a follower after failover", la))
		cancel()
		if err != nil || code != 200 {
			cy.followerWrite = fmt.Sprintf("FAILED on %s: HTTP %d %v %s", n.name, code, err, oneLine(string(b)))
			fail("cycle %d: write sent to follower %s after failover: HTTP %d %v %s", c, n.name, code, err, oneLine(string(b)))
		} else {
			cy.followerWrite = "ok via " + n.name
			writes.mu.Lock()
			writes.writes = append(writes.writes, &write{n: -1, la: la, node: n.name, sent: time.Now(), done: time.Now(), acked: true, status: 200})
			writes.mu.Unlock()
		}
		logf("cycle %d: write sent to follower %s after failover: %s", c, n.name, cy.followerWrite)
		break
	}

	if d := *downFor - time.Since(cy.killAt); d > 0 {
		time.Sleep(d)
	}
	issued = time.Now()
	if _, err := docker("start", id); err != nil {
		return nil, err
	}
	cy.startAt = stateTime(id, "StartedAt", issued)
	logf("cycle %d: started %s again (process started %dms after docker start was issued)", c, victim.name, cy.startAt.Sub(issued).Milliseconds())

	// Watch the restarted node directly (outside the balanced load): what
	// does its router answer before it has the catalog, and when is it back?
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && (cy.firstOK == 0 || cy.readyAt == 0) {
		ok, fault, err := callOnce(victim)
		if err == nil && cy.firstAnswer == 0 {
			cy.firstAnswer = time.Since(cy.startAt)
		}
		if fault == "VP008" {
			cy.vp008Direct++
		}
		if ok && cy.firstOK == 0 {
			cy.firstOK = time.Since(cy.startAt)
		}
		if cy.readyAt == 0 && ready(victim) {
			cy.readyAt = time.Since(cy.startAt)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if cy.firstOK == 0 {
		fail("cycle %d: restarted node %s routed no call within 30 s", c, victim.name)
	}
	if _, err := waitFor("restarted node catches up", 30*time.Second, 50*time.Millisecond, func() bool {
		l := findLeader(nodes)
		if l == nil {
			return false
		}
		ls, err1 := summary(l)
		vs, err2 := summary(victim)
		return err1 == nil && err2 == nil && vs.Version >= ls.Version
	}); err != nil {
		fail("cycle %d: %v", c, err)
	} else {
		cy.caughtUp = time.Since(cy.startAt)
	}
	logf("cycle %d: restarted %s: router answering after %dms, first OK call %dms, /ready %dms, caught up with the leader %dms (%d VP008 answers to direct calls before)",
		c, victim.name, cy.firstAnswer.Milliseconds(), cy.firstOK.Milliseconds(), cy.readyAt.Milliseconds(), cy.caughtUp.Milliseconds(), cy.vp008Direct)
	return cy, nil
}

// figures computes, from the write log of the whole run, when writes were
// accepted again: the first acknowledgement of a write sent after the kill,
// and the longest time between acknowledgements around the kill.
func (cy *cycle) figures(ws []*write) {
	cy.gap = -1
	var first time.Time
	var acks []time.Time
	for _, w := range ws {
		if !w.acked || w.n < 0 {
			continue
		}
		if w.sent.After(cy.killAt) && (first.IsZero() || w.done.Before(first)) {
			first = w.done
		}
		if w.done.After(cy.killAt.Add(-time.Second)) && w.done.Before(cy.startAt) {
			acks = append(acks, w.done)
		}
	}
	if !first.IsZero() {
		cy.gap = first.Sub(cy.killAt)
	}
	slices.SortFunc(acks, func(a, b time.Time) int { return a.Compare(b) })
	for i := 1; i < len(acks); i++ {
		cy.maxAckGap = max(cy.maxAckGap, acks[i].Sub(acks[i-1]))
	}
}

// ---- docker ----

func compose(args ...string) error {
	return ctkit.Compose{Project: *project, File: *composeFile}.Run(args...)
}

// containerID returns the container of a compose service.
func containerID(service string) (string, error) {
	return ctkit.Compose{Project: *project, File: *composeFile}.ContainerID(service)
}

// docker runs the docker CLI (much quicker than docker-compose, which takes
// seconds to start, so the kill is timed closely).
func docker(args ...string) (string, error) { return ctkit.Docker(args...) }

// stateTime reads a container's State.StartedAt or State.FinishedAt as the
// engine recorded it (the host clock), falling back to fallback.
func stateTime(id, field string, fallback time.Time) time.Time {
	return ctkit.StateTime(id, field, fallback)
}

// ---- calls ----

type callStats struct {
	mu        sync.Mutex
	total     int
	ok        int
	faults    map[string]int // VP code (or HTTP status) → count
	retried   int            // attempts that failed to connect and went to another node
	failed    int            // calls that no node answered
	lastErr   string
	latencies []time.Duration
}

var faultRe = regexp.MustCompile(`VP\d{3}`)

// callOnce makes one call to n: ok, or the fault code, or a transport error.
func callOnce(n *node) (ok bool, fault string, err error) {
	resp, err := callHTTP.Post("https://"+n.router+"/vp", "text/xml;charset=UTF-8", strings.NewReader(request))
	if err != nil {
		return false, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return false, "", err
	}
	if resp.StatusCode == 200 && bytes.Contains(b, []byte("PingForConfigurationResponse")) {
		return true, "", nil
	}
	if m := faultRe.Find(b); m != nil {
		return false, string(m), nil
	}
	return false, fmt.Sprintf("HTTP %d", resp.StatusCode), nil
}

var rr atomic.Uint64

// call routes one call as a load balancer would: round robin over the nodes
// that are up; a connection failure marks the node down and the call goes to
// the next node.
func (s *callStats) call() {
	t0 := time.Now()
	first := int(rr.Add(1))
	var lastErr error
	tried := 0
	for i := 0; i < len(nodes); i++ {
		n := nodes[(first+i)%len(nodes)]
		if !n.up.Load() {
			continue
		}
		tried++
		ok, fault, err := callOnce(n)
		if err != nil {
			n.up.Store(false)
			lastErr = fmt.Errorf("%s: %w", n.name, err)
			s.mu.Lock()
			s.retried++
			s.mu.Unlock()
			continue
		}
		s.mu.Lock()
		s.total++
		if ok {
			s.ok++
			s.latencies = append(s.latencies, time.Since(t0))
		} else {
			s.faults[fault]++
		}
		s.mu.Unlock()
		return
	}
	s.mu.Lock()
	s.total++
	s.failed++
	if lastErr != nil {
		s.lastErr = lastErr.Error()
	} else {
		s.lastErr = fmt.Sprintf("no node up (tried %d)", tried)
	}
	s.mu.Unlock()
}

// prober marks nodes up when /ready answers 200 and down otherwise, every
// 200 ms, like a load balancer's health check.
func prober(ctx context.Context) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		for _, n := range nodes {
			n.up.Store(ready(n))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func loop(ctx context.Context, every time.Duration, maxInFlight int, f func(i int)) *sync.WaitGroup {
	return ctkit.Loop(ctx, every, maxInFlight, f)
}

// ---- writes ----

type write struct {
	n          int
	la         string
	node       string
	sent, done time.Time
	acked      bool
	status     int
	err        string
}

type writeLog struct {
	mu     sync.Mutex
	writes []*write
}

func (wl *writeLog) do(i int) {
	w := &write{n: i, la: fmt.Sprintf("SE-CT-LA-%05d", i), sent: time.Now()}
	body := order(fmt.Sprintf("write %d", i), w.la)
	for k := 0; k < len(nodes); k++ {
		n := nodes[(i+k)%len(nodes)]
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		code, b, err := adminDo(ctx, n, "POST", "/api/v1/orders", body)
		cancel()
		w.node, w.status = n.name, code
		if err != nil {
			w.err = err.Error()
			continue // this node is unreachable: the next one
		}
		w.acked = code == 200
		if !w.acked {
			w.err = strings.TrimSpace(string(b))
		}
		break
	}
	w.done = time.Now()
	wl.mu.Lock()
	wl.writes = append(wl.writes, w)
	wl.mu.Unlock()
}

func (wl *writeLog) snapshot() []*write {
	wl.mu.Lock()
	defer wl.mu.Unlock()
	out := slices.Clone(wl.writes)
	sort.Slice(out, func(i, j int) bool { return out[i].sent.Before(out[j].sent) })
	return out
}

// reason classifies why a write was not acknowledged.
func reason(w *write) string {
	switch {
	case w.status == 0:
		return "no answer"
	case strings.Contains(w.err, "forward to leader"):
		return fmt.Sprintf("HTTP %d forward to the old leader failed", w.status)
	case strings.Contains(w.err, "no catalog leader"):
		return fmt.Sprintf("HTTP %d no leader elected", w.status)
	}
	return fmt.Sprintf("HTTP %d %s", w.status, oneLine(w.err))
}

// ---- the scenario ----

func run() error {
	logf("nodes: %s", *nodesFlag)
	for _, n := range nodes {
		id, err := containerID(n.name)
		if err != nil {
			return err
		}
		n.container = id
	}
	if _, err := waitFor("all admin APIs answer /health", 60*time.Second, 200*time.Millisecond, func() bool {
		for _, n := range nodes {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			code, _, err := adminDo(ctx, n, "GET", "/health", nil)
			cancel()
			if err != nil || code != 200 {
				return false
			}
		}
		return true
	}); err != nil {
		return err
	}
	var leader *node
	el, err := waitFor("a catalog leader", 30*time.Second, 100*time.Millisecond, func() bool { leader = findLeader(nodes); return leader != nil })
	if err != nil {
		return err
	}
	logf("leader %s (elected %.2fs after the admin APIs answered)", leader.name, el.Seconds())

	// The demo catalog, sent to a follower (forwarded to the leader).
	follower := nodes[0]
	for _, n := range nodes {
		if n != leader {
			follower = n
			break
		}
	}
	ctx := context.Background()
	for _, p := range []string{"RIVTABP20", "RIVTABP21"} {
		if code, b, err := adminDo(ctx, follower, "POST", "/api/v1/catalog/rivprofile", []byte(fmt.Sprintf(`{"name":%q}`, p))); err != nil || code != 200 {
			return fmt.Errorf("create RIV profile %s via follower %s: HTTP %d %v %s", p, follower.name, code, err, b)
		}
	}
	now := time.Now().Format("2006-01-02T15:04:05-0700")
	demo, _ := json.Marshal(map[string]any{
		"plattform": platform, "formatVersion": 1.0, "version": 1,
		"bestallningsTidpunkt": now, "genomforandeTidpunkt": now,
		"utforare": "container scenario", "kommentar": "demo catalog",
		"inkludera": map[string]any{
			"tjanstekontrakt":    []any{map[string]any{"namnrymd": contract, "beskrivning": "PingForConfiguration", "majorVersion": 1}},
			"logiskadresser":     []any{map[string]any{"hsaId": address, "beskrivning": "Demo care unit"}},
			"tjanstekomponenter": []any{map[string]any{"hsaId": producer, "beskrivning": "Demo producer"}, map[string]any{"hsaId": consumer, "beskrivning": "Demo consumer"}},
			"anropsbehorigheter": []any{map[string]any{"logiskAdress": address, "tjanstekontrakt": contract, "tjanstekonsument": consumer}},
			"vagval":             []any{map[string]any{"adress": producerURL, "logiskAdress": address, "tjanstekontrakt": contract, "rivtaprofil": "RIVTABP21", "tjanstekomponent": producer}},
		},
	})
	if code, b, err := adminDo(ctx, follower, "POST", "/api/v1/orders", demo); err != nil || code != 200 {
		return fmt.Errorf("demo order via follower %s: HTTP %d %v %s", follower.name, code, err, b)
	}
	logf("demo catalog applied through follower %s", follower.name)
	if _, err := waitFor("all nodes ready", 30*time.Second, 100*time.Millisecond, func() bool {
		for _, n := range nodes {
			if !ready(n) {
				return false
			}
		}
		return true
	}); err != nil {
		return err
	}
	for _, n := range nodes {
		ok, fault, err := callOnce(n)
		if !ok {
			return fmt.Errorf("first call through %s: fault %q, error %v", n.name, fault, err)
		}
	}
	logf("all nodes ready; a call through each node works")

	// ---- load, kill, restart ----
	calls := &callStats{faults: map[string]int{}}
	writes := &writeLog{}
	loadCtx, stopLoad := context.WithCancel(context.Background())
	probeCtx, stopProbe := context.WithCancel(context.Background())
	go prober(probeCtx)
	callsWG := loop(loadCtx, time.Second/time.Duration(*rate), 128, func(int) { calls.call() })
	writesWG := loop(loadCtx, *writeEvery, 128, writes.do)
	loadStart := time.Now()
	logf("load running: %d calls/s, one order every %s", *rate, *writeEvery)
	time.Sleep(*beforeKill)
	var cycles []*cycle
	for c := 1; c <= *cyclesFlag; c++ {
		cy, err := killAndRestart(c, writes)
		if err != nil {
			stopLoad()
			stopProbe()
			return err
		}
		cycles = append(cycles, cy)
		time.Sleep(*afterStart)
	}
	stopLoad()
	callsWG.Wait()
	writesWG.Wait()
	stopProbe()

	// ---- figures ----
	ws := writes.snapshot()
	fmt.Printf("\n== figures (load %.1fs)\n", time.Since(loadStart).Seconds())
	for _, cy := range cycles {
		cy.figures(ws)
		fmt.Printf("cycle %d: killed leader %s; new leader %s after %dms; first write acknowledged %dms after the kill (limit %s); longest gap between acknowledged writes %dms; write sent to a follower after the failover: %s\n",
			cy.n, cy.victim.name, nameOf(cy.newLeader), cy.electedAfter.Milliseconds(), cy.gap.Milliseconds(), *maxGap, cy.maxAckGap.Milliseconds(), cy.followerWrite)
		fmt.Printf("cycle %d: restarted %s: router answering %dms after its process started, /ready %dms, first OK call %dms, caught up with the leader %dms; %d VP008 answers to direct calls before\n",
			cy.n, cy.victim.name, cy.firstAnswer.Milliseconds(), cy.readyAt.Milliseconds(), cy.firstOK.Milliseconds(), cy.caughtUp.Milliseconds(), cy.vp008Direct)
		if cy.gap < 0 {
			fail("cycle %d: no write was acknowledged after the kill", cy.n)
		} else if cy.gap > *maxGap {
			fail("cycle %d: writes accepted again %dms after the kill (limit %s)", cy.n, cy.gap.Milliseconds(), *maxGap)
		}
	}
	acked, refused, unreach := 0, 0, 0
	why := map[string]int{}
	for _, w := range ws {
		switch {
		case w.acked:
			acked++
		case w.status != 0:
			refused++
			why[reason(w)]++
		default:
			unreach++
			why[reason(w)]++
		}
	}
	fmt.Printf("writes: %d sent, %d acknowledged, %d refused, %d reached no node; not acknowledged: %v\n", len(ws), acked, refused, unreach, why)
	calls.mu.Lock()
	lat := slices.Clone(calls.latencies)
	slices.Sort(lat)
	fmt.Printf("calls: %d, ok %d, faults %v, failed (no node answered) %d, connection failures retried on another node %d\n",
		calls.total, calls.ok, calls.faults, calls.failed, calls.retried)
	if len(lat) > 0 {
		fmt.Printf("call latency: p50 %s, p99 %s, max %s\n", lat[len(lat)/2].Round(100*time.Microsecond), lat[len(lat)*99/100].Round(100*time.Microsecond), lat[len(lat)-1].Round(100*time.Microsecond))
	}
	if calls.faults["VP008"] > 0 {
		fail("%d balanced calls failed with VP008 (no catalog)", calls.faults["VP008"])
	}
	for code, k := range calls.faults {
		if code != "VP008" {
			fail("%d balanced calls answered %s", k, code)
		}
	}
	if calls.failed > 0 {
		fail("%d calls reached no node (last error: %s)", calls.failed, calls.lastErr)
	}
	if calls.ok == 0 {
		fail("no call succeeded")
	}
	calls.mu.Unlock()

	// ---- every acknowledged write on every node ----
	var want []string
	for _, w := range ws {
		if w.acked {
			want = append(want, w.la)
		}
	}
	if err := checkAll("after the failover", want); err != nil {
		fail("%v", err)
	}

	// ---- restart every node ----
	before, err := summary(nodes[0])
	if err != nil {
		return err
	}
	rs := time.Now()
	// Watch each router directly while the nodes restart: what it answers
	// between coming back and having the catalog again.
	type back struct {
		firstOK time.Duration
		vp008   int
	}
	backs := make([]back, len(nodes))
	var watch sync.WaitGroup
	for i, n := range nodes {
		watch.Add(1)
		go func() {
			defer watch.Done()
			sawDown := false
			for time.Since(rs) < 90*time.Second {
				ok, fault, err := callOnce(n)
				switch {
				case err != nil:
					sawDown = true
				case sawDown && ok:
					backs[i].firstOK = time.Since(rs)
					return
				case sawDown && fault == "VP008":
					backs[i].vp008++
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
	}
	if err := compose("restart", "-t", "20"); err != nil {
		return err
	}
	logf("docker-compose restart took %dms", time.Since(rs).Milliseconds())
	if _, err := waitFor("all nodes ready after the restart", 60*time.Second, 100*time.Millisecond, func() bool {
		for _, n := range nodes {
			if !ready(n) {
				return false
			}
		}
		return true
	}); err != nil {
		return err
	}
	allReady := time.Since(rs)
	watch.Wait()
	for i, n := range nodes {
		fmt.Printf("restart of all nodes: %s routed again %dms after the restart began; %d VP008 answers to direct calls before\n", n.name, backs[i].firstOK.Milliseconds(), backs[i].vp008)
		// A gracefully stopped node snapshots its catalog and has it back
		// when it starts, before any leader is elected.
		if backs[i].firstOK == 0 {
			fail("%s routed no call within 90 s of the restart", n.name)
		}
		if backs[i].vp008 > 0 {
			fail("%s answered VP008 (no catalog) %d times after a graceful restart", n.name, backs[i].vp008)
		}
	}
	if err := checkAll("after restarting all nodes", want); err != nil {
		fail("%v", err)
	}
	for _, n := range nodes {
		s, err := summary(n)
		if err != nil {
			fail("%v", err)
			continue
		}
		if s.Version != before.Version || !mapsEqual(s.Counts, before.Counts) {
			fail("%s after restart: version %d counts %v, before: version %d counts %v", n.name, s.Version, s.Counts, before.Version, before.Counts)
		}
	}
	// Writes and calls work after the restart.
	wa := time.Now()
	var postWrite string
	if _, err := waitFor("a write after restarting all nodes", 15*time.Second, 100*time.Millisecond, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		code, b, err := adminDo(ctx, nodes[int(time.Now().UnixNano()%3)], "POST", "/api/v1/orders", order("write after restart", "SE-CT-LA-RESTART"))
		postWrite = fmt.Sprintf("HTTP %d %v %s", code, err, oneLine(string(b)))
		return err == nil && code == 200
	}); err != nil {
		fail("%v (last: %s)", err, postWrite)
	}
	for _, n := range nodes {
		if ok, fault, err := callOnce(n); !ok {
			fail("call through %s after restart: fault %q error %v", n.name, fault, err)
		}
	}
	fmt.Printf("restart of all nodes: all ready %dms after the restart began, catalog version %d with %v kept on every node; a write accepted %dms after all were ready\n",
		allReady.Milliseconds(), before.Version, before.Counts, time.Since(wa).Milliseconds())
	return nil
}

// checkAll waits until the three nodes report the same catalog version, then
// checks every HSA-ID in want is a logical address on each.
func checkAll(when string, want []string) error {
	var versions []uint64
	_, err := waitFor("nodes converge "+when, 20*time.Second, 100*time.Millisecond, func() bool {
		versions = versions[:0]
		for _, n := range nodes {
			s, err := summary(n)
			if err != nil {
				return false
			}
			versions = append(versions, s.Version)
		}
		return versions[0] == versions[1] && versions[1] == versions[2]
	})
	if err != nil {
		return fmt.Errorf("%v (versions %v)", err, versions)
	}
	for _, n := range nodes {
		have, err := logicalAddresses(n)
		if err != nil {
			return err
		}
		var missing []string
		for _, la := range want {
			if !have[la] {
				missing = append(missing, la)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("%s: %d acknowledged writes missing on %s: %v", when, len(missing), n.name, missing)
		}
	}
	logf("%s: all %d acknowledged writes present on all nodes (catalog version %d everywhere)", when, len(want), versions[0])
	return nil
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func nameOf(n *node) string {
	if n == nil {
		return "none"
	}
	return n.name
}

func oneLine(s string) string { return ctkit.OneLine(s) }
