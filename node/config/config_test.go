package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFiles(t *testing.T) (dir string) {
	dir = t.TempDir()
	for _, f := range []string{"node.crt", "node.key", "ca.crt"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const base = `
node: {name: n1, platform: REGION-A, data_dir: data}
tls: {cert: node.crt, key: node.key, ca: ca.crt}
router: {https_addr: ":20000"}
`

func TestLoadPhases(t *testing.T) {
	dir := writeFiles(t)
	path := filepath.Join(dir, "vaxel.yaml")
	if err := os.WriteFile(path, []byte(base), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, []string{"VAXEL_ROUTER_HTTPS_ADDR=127.0.0.1:21000", "PATH=/bin"}, []string{"router.retry_delay=500ms"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Router.HTTPSAddr != "127.0.0.1:21000" {
		t.Errorf("env override: https_addr = %q", c.Router.HTTPSAddr)
	}
	if c.Router.RetryDelay.String() != "500ms" {
		t.Errorf("flag override: retry_delay = %v", c.Router.RetryDelay)
	}
	if c.TLS.Cert != filepath.Join(dir, "node.crt") || c.Node.DataDir != filepath.Join(dir, "data") {
		t.Errorf("relative paths not resolved against the file: %q %q", c.TLS.Cert, c.Node.DataDir)
	}
	if c.Router.InstanceID != "REGION-A" || len(c.TLS.ClientCAs) != 1 {
		t.Errorf("derived values: instance id %q, client CAs %v", c.Router.InstanceID, c.TLS.ClientCAs)
	}
}

func TestValidationTellsWhatToFix(t *testing.T) {
	dir := writeFiles(t)
	tests := []struct {
		name, yaml, want string
	}{
		{"no platform", strings.Replace(base, "platform: REGION-A, ", "", 1), "node.platform is empty"},
		{"http without allow list", strings.Replace(base, `https_addr: ":20000"`, `https_addr: ":20000", http_addr: ":8080"`, 1), "http_allow_list is empty"},
		{"bad address", strings.Replace(base, `":20000"`, `"20000"`, 1), "router.https_addr"},
		{"unknown key", base + "bogus: 1\n", "bogus"},
		{"servers without this node", base + "raft: {servers: [{id: n2, raft: \"10.0.0.2:7301\"}]}\n", "does not list this node"},
		{"metrics on every interface by accident", base + "admin: {metrics_addr: \":9100\"}\n", "admin.metrics_addr \":9100\" would serve metrics without authentication"},
		{"metrics addr not host:port", base + "admin: {metrics_addr: \"9100\"}\n", "admin.metrics_addr \"9100\" is not host:port"},
		{"metrics on the admin port", base + "admin: {addr: \"127.0.0.1:7443\", metrics_addr: \"127.0.0.1:7443\"}\n", "needs its own port"},
		{"peer pinned to an empty HSA-ID", base + "federation: {bind: \":7947\", allow_platforms: [\"NATIONAL=\"]}\n", "pins an empty HSA-ID"},
		{"peer without a name", base + "federation: {bind: \":7947\", allow_platforms: [\"=SE-X\"]}\n", "has no platform name"},
		{"lease longer than the default heartbeat", base + "raft: {leader_lease_timeout: 600ms}\n", "raft.leader_lease_timeout (600ms) is longer than raft.heartbeat_timeout (500ms)"},
		{"lease longer than the heartbeat", base + "raft: {heartbeat_timeout: 100ms, leader_lease_timeout: 200ms}\n", "raft.leader_lease_timeout (200ms) is longer than raft.heartbeat_timeout (100ms)"},
		{"election shorter than the heartbeat", base + "raft: {heartbeat_timeout: 2s, election_timeout: 1s}\n", "raft.election_timeout (1s) is shorter than raft.heartbeat_timeout (2s)"},
		{"lease below Raft's minimum", base + "raft: {leader_lease_timeout: 1ms}\n", "raft.leader_lease_timeout is 1ms; set at least 5ms"},
		{"negative heartbeat", base + "raft: {heartbeat_timeout: -1s}\n", "raft.heartbeat_timeout is -1s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "vaxel.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path, nil, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}
