package catalog

import (
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaxel/vaxel/tak"
)

// raftStates are the values of vaxel_raft_state's state label: Raft's own
// states lower-cased, and not_running before Run starts Raft or after it stops.
var raftStates = []string{"follower", "candidate", "leader", "shutdown", "not_running"}

// collector reports the Store's Raft and catalog state. Everything is read
// at scrape time from Stats, Current and the FSM's counters, so metrics cost
// the write and read paths nothing.
type collector struct {
	s *Store

	state, term, lastLogIndex, commitIndex, appliedIndex, snapshotIndex, fsmPending, peers, lastContact *prometheus.Desc

	version, entities, hsaUnits, lastApply, applied, snapshots, restores *prometheus.Desc
}

// Collector returns the catalog's metrics for a registry the caller owns.
// Every series it reports is listed in docs/ARCHITECTURE.md, "Metrics". A
// scrape takes a snapshot of Raft's counters through the Raft loop (as
// Stats does) and is otherwise lock-free.
func (s *Store) Collector() prometheus.Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &collector{
		s:             s,
		state:         d("vaxel_raft_state", "1 for this node's current Raft state, 0 for the others.", "state"),
		term:          d("vaxel_raft_term", "Current Raft term."),
		lastLogIndex:  d("vaxel_raft_last_log_index", "Index of the last entry in this node's Raft log."),
		commitIndex:   d("vaxel_raft_commit_index", "Highest Raft log index known to be committed."),
		appliedIndex:  d("vaxel_raft_applied_index", "Highest Raft log index applied to this node's catalog."),
		snapshotIndex: d("vaxel_raft_last_snapshot_index", "Raft log index of the last snapshot."),
		fsmPending:    d("vaxel_raft_fsm_pending", "Committed batches waiting to be applied to the catalog."),
		peers:         d("vaxel_raft_peers", "Other voters in the Raft configuration (0 if this node is not a voter)."),
		lastContact:   d("vaxel_raft_last_contact_seconds", "Time since a follower last heard from the leader; 0 on the leader; absent before any contact."),
		version:       d("vaxel_catalog_version", "Version (change sequence number) of this node's catalog."),
		entities:      d("vaxel_catalog_entities", "Entities in this node's catalog, by kind (route and authorization are the routing rules).", "kind"),
		hsaUnits:      d("vaxel_catalog_hsa_units", "Units in the HSA tree used for tree climbing."),
		lastApply:     d("vaxel_catalog_last_apply_duration_seconds", "How long applying the last catalog log entry took on this node."),
		applied:       d("vaxel_catalog_applied_entries_total", "Catalog log entries applied on this node since start (refused changes included)."),
		snapshots:     d("vaxel_catalog_snapshots_total", "Catalog snapshots this node persisted since start."),
		restores:      d("vaxel_catalog_snapshot_restores_total", "Catalog snapshots this node restored since start (at start-up, or installed from the leader)."),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.state, c.term, c.lastLogIndex, c.commitIndex, c.appliedIndex, c.snapshotIndex,
		c.fsmPending, c.peers, c.lastContact, c.version, c.entities, c.hsaUnits, c.lastApply, c.applied, c.snapshots, c.restores} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}

	st := c.s.Stats()
	state := strings.ToLower(st["state"])
	if state == "notrunning" {
		state = "not_running"
	}
	for _, s := range raftStates {
		v := 0.0
		if s == state {
			v = 1
		}
		gauge(c.state, v, s)
	}
	for _, n := range []struct {
		d   *prometheus.Desc
		key string
	}{
		{c.term, "term"}, {c.lastLogIndex, "last_log_index"}, {c.commitIndex, "commit_index"},
		{c.appliedIndex, "applied_index"}, {c.snapshotIndex, "last_snapshot_index"},
		{c.fsmPending, "fsm_pending"}, {c.peers, "num_peers"},
	} {
		if v, err := strconv.ParseUint(st[n.key], 10, 64); err == nil {
			gauge(n.d, float64(v))
		}
	}
	// last_contact is "0" on the leader, "never" before any contact, else a
	// time.Duration's String.
	if d, err := time.ParseDuration(st["last_contact"]); err == nil {
		gauge(c.lastContact, d.Seconds())
	}

	cat := c.s.Current()
	gauge(c.version, float64(cat.Seq()))
	counts := cat.Counts()
	for _, k := range tak.Kinds {
		gauge(c.entities, float64(counts[k]), k.String())
	}
	gauge(c.hsaUnits, float64(cat.HSATree().Len()))

	fs := c.s.fsm.Stats()
	gauge(c.lastApply, fs.LastApply.Seconds())
	counter(c.applied, float64(fs.Applied))
	counter(c.snapshots, float64(fs.Snapshots))
	counter(c.restores, float64(fs.Restores))
}
