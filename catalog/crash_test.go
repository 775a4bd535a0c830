package catalog

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// A platform whose nodes are all killed (no snapshot, no leadership
// transfer) and of which one node restarts alone: that node must serve the
// catalog it had committed, from its own Raft log, with no leader to tell it
// the commit index (A20: "a restarted node serves from its own Raft data").
func TestKilledNodeRestartsAloneWithCommittedCatalog(t *testing.T) {
	c := startCluster(t)
	nodes := c.nodes
	waitFor(t, "leader elected", 10*time.Second, func() bool { return leaderOf(nodes) != nil })
	const writes = 6
	for i := 0; i < writes; i++ {
		waitFor(t, fmt.Sprintf("write %d", i), 10*time.Second, func() bool {
			l := leaderOf(nodes)
			if l == nil {
				return false
			}
			res, err := addContract(context.Background(), l.s, fmt.Sprintf("urn:riv:test:K%dResponder:1", i))
			return err == nil && res.Err == nil
		})
	}
	for _, n := range nodes {
		waitFor(t, n.s.ID()+" replicated", 5*time.Second, func() bool { return len(n.s.Current().Contracts()) == writes })
	}
	for _, n := range nodes {
		n.s.crashStop = true
		n.stop(t)
	}

	// n1 alone: no quorum, no leader, yet its committed entries are back.
	// The durable commit index trails the log by one write, so the last
	// write may only come with a leader.
	alone := c.start(t, "n1")
	defer alone.stop(t)
	// Raft re-applies them on its FSM goroutine, just after start.
	got := 0
	deadline := time.Now().Add(5 * time.Second)
	for got < writes-1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		got = len(alone.s.Current().Contracts())
	}
	if got < writes-1 {
		t.Fatalf("n1 restarted alone after a kill serves %d contracts, want at least %d of the %d committed", got, writes-1, writes)
	}
	if alone.s.IsLeader() {
		t.Fatal("n1 alone became leader")
	}
	t.Logf("n1 alone after kill: %d of %d committed writes served", got, writes)
}
