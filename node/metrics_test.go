package node

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vaxel/vaxel/catalog/command"
	"github.com/vaxel/vaxel/node/config"
	"github.com/vaxel/vaxel/pki"
)

const (
	mxAdminID = "SE0000000000-MXADMIN"
	mxToken   = "mx-0123456789abcdef-0123456789abcdef"
)

// TestMetricsEndpoints runs a one-node platform with admin.metrics_addr on
// and scrapes it: on the admin API with an operator certificate and with
// the token (and not without either), and on the plain listener, which
// serves /metrics and nothing else.
func TestMetricsEndpoints(t *testing.T) {
	dir := t.TempDir()
	pkiDir := filepath.Join(dir, "pki")
	ca, err := pki.NewCA("mx CA", pki.ECDSAP256, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.WriteDir(pkiDir); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][2]string{{"mx-node", "SE0000000000-MXNODE"}, {"mx-admin", mxAdminID}, {"mx-outsider", "SE0000000000-MXOUT"}} {
		is, err := ca.Issue(pki.Request{CommonName: c[0], SerialNumber: c[1], DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}})
		if err != nil {
			t.Fatal(err)
		}
		if err := pki.WriteFiles(pkiDir, c[0], is); err != nil {
			t.Fatal(err)
		}
	}
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte(mxToken), 0o600); err != nil {
		t.Fatal(err)
	}
	f := func(n string) string { return filepath.Join(pkiDir, n) }

	cfg := config.Default()
	cfg.Node = config.Node{Name: "mx-node", Platform: "MX", DataDir: filepath.Join(dir, "data")}
	cfg.TLS = config.TLS{Cert: f("mx-node.crt"), Key: f("mx-node.key"), CA: f("ca.crt")}
	cfg.Router.HTTPSAddr = "127.0.0.1:0"
	cfg.Raft.Bind = "127.0.0.1:0"
	cfg.Raft.HeartbeatTimeout, cfg.Raft.ElectionTimeout = 500*time.Millisecond, 500*time.Millisecond
	cfg.Admin = config.Admin{Addr: "127.0.0.1:0", Allow: []string{mxAdminID}, TokenFile: token, MetricsAddr: "127.0.0.1:0"}
	if err := config.LoadDerived(&cfg); err != nil {
		t.Fatal(err)
	}
	n, err := New(&cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var runErr error
	stopped := make(chan struct{})
	go func() {
		runErr = n.Run(ctx)
		close(stopped)
	}()
	defer func() {
		cancel()
		<-stopped
		if runErr != nil {
			t.Errorf("node stopped: %v", runErr)
		}
		if n.MetricsAddr() != "" {
			if _, err := net.DialTimeout("tcp", n.MetricsAddr(), time.Second); err == nil {
				t.Errorf("metrics listener %s still accepts after the node stopped", n.MetricsAddr())
			}
		}
	}()
	deadline := time.Now().Add(15 * time.Second)
	for !n.Store().IsLeader() || n.AdminAddr() == "" || n.MetricsAddr() == "" {
		select {
		case <-stopped:
			t.Fatalf("node stopped at start: %v", runErr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("node not leading with both listeners within 15 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	ent, _ := json.Marshal(map[string]string{"namespace": "urn:riv:vaxel:test:MetricsResponder:1"})
	if _, err := n.Store().Apply(ctx, command.TypeMutate, &command.Mutate{
		Meta: command.Meta{Actor: "test", Source: "admin", UnixNano: time.Now().UnixNano()},
		Ops:  []command.Op{{Op: "put", Kind: "contract", Entity: ent}},
	}); err != nil {
		t.Fatal(err)
	}

	client := func(cert string) *http.Client {
		var cf, kf string
		if cert != "" {
			cf, kf = f(cert+".crt"), f(cert+".key")
		}
		tc, err := pki.ClientTLSConfig(cf, kf, []string{f("ca.crt")})
		if err != nil {
			t.Fatal(err)
		}
		tr := &http.Transport{TLSClientConfig: tc}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Timeout: 20 * time.Second, Transport: tr}
	}
	get := func(c *http.Client, url, bearer string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	series := []string{
		`vaxel_raft_state{state="leader"} 1`,
		`vaxel_raft_state{state="follower"} 0`,
		"vaxel_raft_term ",
		"vaxel_raft_commit_index ",
		"vaxel_raft_applied_index ",
		"vaxel_raft_last_log_index ",
		"vaxel_catalog_version 1\n",
		`vaxel_catalog_entities{kind="contract"} 1`,
		`vaxel_catalog_entities{kind="route"} 0`,
		"vaxel_catalog_applied_entries_total ",
		"vaxel_catalog_last_apply_duration_seconds ",
		"vaxel_catalog_snapshots_total 0",
		"vaxel_router_catalog_version ",
		"vaxel_router_panics_total 0",
		`vaxel_build_info{version="` + Version + `"} 1`,
		"vaxel_node_ready 0", // a contract alone routes nothing
		"go_goroutines ",
		"process_start_time_seconds ",
	}
	admin := "https://" + n.AdminAddr() + "/metrics"
	for _, c := range []struct {
		name   string
		client *http.Client
		bearer string
		want   int
	}{
		{"operator certificate", client("mx-admin"), "", 200},
		{"node certificate", client("mx-node"), "", 200},
		{"bearer token", client(""), mxToken, 200},
		{"certificate not on admin.allow", client("mx-outsider"), "", 403},
		{"no credentials", client(""), "", 401},
		{"wrong token", client(""), mxToken + "x", 401},
	} {
		code, body := get(c.client, admin, c.bearer)
		if code != c.want {
			t.Errorf("%s: GET /metrics on the admin API: HTTP %d, want %d", c.name, code, c.want)
			continue
		}
		if code != 200 {
			continue
		}
		for _, s := range series {
			if !strings.Contains(body, s) {
				t.Errorf("%s: the admin API's /metrics lacks %q", c.name, s)
			}
		}
	}

	plain := &http.Client{Timeout: 20 * time.Second}
	code, body := get(plain, "http://"+n.MetricsAddr()+"/metrics", "")
	if code != 200 {
		t.Fatalf("GET /metrics on admin.metrics_addr: HTTP %d", code)
	}
	for _, s := range series {
		if !strings.Contains(body, s) {
			t.Errorf("admin.metrics_addr /metrics lacks %q", s)
		}
	}
	for _, path := range []string{"/api/v1/catalog", "/status", "/api/v1/export"} {
		if code, _ := get(plain, "http://"+n.MetricsAddr()+path, ""); code != http.StatusNotFound {
			t.Errorf("GET %s on admin.metrics_addr: HTTP %d, want 404 (metrics only)", path, code)
		}
	}
}
