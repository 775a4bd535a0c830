package node

import (
	"crypto/tls"
	"testing"
	"time"

	"github.com/vaxel/vaxel/catalog"
	"github.com/vaxel/vaxel/node/config"
)

// TestRaftHeartbeatDefaultIsTheCatalogs: config validates the other Raft
// timings against the heartbeat the catalog store will use when none is
// set; the two defaults must be the same value.
func TestRaftHeartbeatDefaultIsTheCatalogs(t *testing.T) {
	if got, want := config.DefaultRaftHeartbeatTimeout, catalog.DefaultConfig().HeartbeatTimeout; got != want {
		t.Fatalf("config.DefaultRaftHeartbeatTimeout = %s, catalog's default heartbeat = %s", got, want)
	}
}

// TestCatalogConfigRaftTimings: the operator's Raft timings reach the
// catalog store as set, and unset ones follow them within Raft's rules, so
// every combination config accepts is one Raft accepts.
func TestCatalogConfigRaftTimings(t *testing.T) {
	def := catalog.DefaultConfig()
	const ms = time.Millisecond
	tests := []struct {
		name                    string
		raft                    config.Raft
		heartbeat, elect, lease time.Duration
	}{
		{"defaults", config.Raft{}, def.HeartbeatTimeout, def.ElectionTimeout, def.LeaderLeaseTimeout},
		{"lease set", config.Raft{LeaderLeaseTimeout: 400 * ms}, def.HeartbeatTimeout, def.ElectionTimeout, 400 * ms},
		{"all set", config.Raft{HeartbeatTimeout: 2000 * ms, ElectionTimeout: 3000 * ms, LeaderLeaseTimeout: 1500 * ms}, 2000 * ms, 3000 * ms, 1500 * ms},
		{"short heartbeat pulls the lease down", config.Raft{HeartbeatTimeout: 100 * ms}, 100 * ms, def.ElectionTimeout, 100 * ms},
		{"long heartbeat pulls the election up", config.Raft{HeartbeatTimeout: 2000 * ms}, 2000 * ms, 2000 * ms, def.LeaderLeaseTimeout},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &config.Config{Raft: tc.raft}
			cfg.Node.Name, cfg.Node.DataDir, cfg.Raft.Bind = "n1", t.TempDir(), "127.0.0.1:0"
			cc := catalogConfig(cfg)
			if cc.HeartbeatTimeout != tc.heartbeat || cc.ElectionTimeout != tc.elect || cc.LeaderLeaseTimeout != tc.lease {
				t.Fatalf("heartbeat %s, election %s, lease %s; want %s, %s, %s",
					cc.HeartbeatTimeout, cc.ElectionTimeout, cc.LeaderLeaseTimeout, tc.heartbeat, tc.elect, tc.lease)
			}
			// Raft itself must accept the result (its own ValidateConfig,
			// through the store's; TLS is only checked for presence there).
			cc.ServerTLS, cc.ClientTLS = &tls.Config{}, &tls.Config{}
			if err := cc.Validate(); err != nil {
				t.Fatalf("catalog refuses the timings: %v", err)
			}
		})
	}
}

// TestFailoverWaitFollowsRaftTimings: an admin write waits for a new
// leader for two election rounds at the configured timings, so that with
// longer timings it does not give up before an election can end; 4 s at
// least (the defaults'), 2 min at most.
func TestFailoverWaitFollowsRaftTimings(t *testing.T) {
	const ms = time.Millisecond
	for _, tc := range []struct {
		raft config.Raft
		want time.Duration
	}{
		{config.Raft{}, 4 * time.Second},
		{config.Raft{HeartbeatTimeout: 100 * ms, ElectionTimeout: 100 * ms}, 4 * time.Second},
		{config.Raft{HeartbeatTimeout: 2000 * ms}, 16 * time.Second},
		{config.Raft{HeartbeatTimeout: 1000 * ms, ElectionTimeout: 3000 * ms}, 16 * time.Second},
		{config.Raft{HeartbeatTimeout: 20 * time.Second, ElectionTimeout: 20 * time.Second}, 2 * time.Minute},
	} {
		cfg := &config.Config{Raft: tc.raft}
		if got := failoverWait(catalogConfig(cfg)); got != tc.want {
			t.Errorf("raft %+v: failoverWait %s, want %s", tc.raft, got, tc.want)
		}
	}
}
