package catalog

import (
	"context"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vaxel/vaxel/pki"
)

// TestCollector scrapes a one-node platform before it runs and after a
// write: Raft state and indexes, catalog version and entity counts.
func TestCollector(t *testing.T) {
	dir := t.TempDir()
	pkiDir := filepath.Join(dir, "pki")
	ca, err := pki.NewCA("test CA", pki.ECDSAP256, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.WriteDir(pkiDir); err != nil {
		t.Fatal(err)
	}
	is, err := ca.Issue(pki.Request{CommonName: "n1", DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.WriteFiles(pkiDir, "n1", is); err != nil {
		t.Fatal(err)
	}

	// Registered before Run, as node does: a scrape then says not_running.
	srv, _ := pki.ServerTLSConfig(filepath.Join(pkiDir, "n1.crt"), filepath.Join(pkiDir, "n1.key"), []string{filepath.Join(pkiDir, "ca.crt")}, true)
	cli, _ := pki.ClientTLSConfig(filepath.Join(pkiDir, "n1.crt"), filepath.Join(pkiDir, "n1.key"), []string{filepath.Join(pkiDir, "ca.crt")})
	cfg := DefaultConfig()
	cfg.NodeID, cfg.DataDir, cfg.BindAddr, cfg.ServerTLS, cfg.ClientTLS = "n1", filepath.Join(dir, "idle"), "127.0.0.1:0", srv, cli
	idle, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(idle.Collector()); err != nil {
		t.Fatal(err)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP vaxel_raft_state 1 for this node's current Raft state, 0 for the others.
# TYPE vaxel_raft_state gauge
vaxel_raft_state{state="candidate"} 0
vaxel_raft_state{state="follower"} 0
vaxel_raft_state{state="leader"} 0
vaxel_raft_state{state="not_running"} 1
vaxel_raft_state{state="shutdown"} 0
`), "vaxel_raft_state", "vaxel_raft_term"); err != nil {
		t.Error(err)
	}

	n := startNode(t, dir, "n1", freeAddr(t), pkiDir)
	defer n.stop(t)
	if err := n.s.Bootstrap([]Server{{ID: "n1", Address: n.s.Addr()}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "leader", 10*time.Second, n.s.IsLeader)
	if _, err := addContract(context.Background(), n.s, "urn:riv:test:MetricsResponder:1"); err != nil {
		t.Fatal(err)
	}
	// Raft answers Apply from its FSM goroutine and records the applied
	// index just after; the metric reads Raft's own figure, so wait for it.
	waitFor(t, "raft applied index to reach the write", 5*time.Second, func() bool {
		v, err := strconv.ParseUint(n.s.Stats()["applied_index"], 10, 64)
		return err == nil && v >= 2
	})
	reg = prometheus.NewPedanticRegistry()
	if err := reg.Register(n.s.Collector()); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			switch {
			case m.GetGauge() != nil:
				got[name] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				got[name] = m.GetCounter().GetValue()
			}
		}
	}
	seq := float64(n.s.Current().Seq())
	for name, ok := range map[string]func(float64) bool{
		"vaxel_raft_state{state=leader}":              func(v float64) bool { return v == 1 },
		"vaxel_raft_state{state=follower}":            func(v float64) bool { return v == 0 },
		"vaxel_raft_term":                             func(v float64) bool { return v >= 1 },
		"vaxel_raft_commit_index":                     func(v float64) bool { return v >= 2 }, // configuration + the write
		"vaxel_raft_applied_index":                    func(v float64) bool { return v >= 2 },
		"vaxel_raft_last_log_index":                   func(v float64) bool { return v >= 2 },
		"vaxel_raft_peers":                            func(v float64) bool { return v == 0 },
		"vaxel_raft_last_contact_seconds":             func(v float64) bool { return v == 0 }, // the leader
		"vaxel_catalog_version":                       func(v float64) bool { return v == seq && v >= 1 },
		"vaxel_catalog_entities{kind=contract}":       func(v float64) bool { return v == 1 },
		"vaxel_catalog_entities{kind=route}":          func(v float64) bool { return v == 0 },
		"vaxel_catalog_applied_entries_total":         func(v float64) bool { return v >= 1 },
		"vaxel_catalog_last_apply_duration_seconds":   func(v float64) bool { return v > 0 },
		"vaxel_catalog_snapshots_total":               func(v float64) bool { return v == 0 },
		"vaxel_catalog_snapshot_restores_total":       func(v float64) bool { return v == 0 },
		"vaxel_catalog_hsa_units":                     func(v float64) bool { return v >= 0 },
		"vaxel_catalog_entities{kind=authorization}":  func(v float64) bool { return v == 0 },
		"vaxel_catalog_entities{kind=categorization}": func(v float64) bool { return v == 0 },
	} {
		v, present := got[name]
		if !present || !ok(v) {
			t.Errorf("%s = %v (present %t)", name, v, present)
		}
	}
}
