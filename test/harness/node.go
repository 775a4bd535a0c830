package harness

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// NodeConfig describes a node to run. Router holds router settings beyond
// the ones the harness sets itself (keys as in node/config: "sender_pattern",
// "retry_delay", …).
type NodeConfig struct {
	Name         string // node.name and CN of the node certificate
	Platform     string // node.platform
	InstanceID   string // router.instance_id
	InstanceName string // router.instance_name
	Dir          string // working directory: config file and data dir
	PKI          *PKI
	Cert         *Cert    // the node's certificate (router server, producer client, raft)
	AdminAllow   []string // admin.allow
	HTTP         bool     // also open the plain-HTTP router listener
	Router       map[string]any
}

// Node is a running (or stopped) vaxel process.
type Node struct {
	Cfg        NodeConfig
	Bin        string
	ConfigFile string
	DataDir    string
	HTTPSAddr  string // router mTLS listener host:port
	HTTPAddr   string // router plain-HTTP listener host:port ("" if off)
	AdminAddr  string
	RaftAddr   string

	admin *http.Client

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	exit   error
	log    *syncBuffer
	starts int
}

// syncBuffer is a bytes.Buffer safe for the process's output goroutines and
// the test reading it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// FreePort returns a loopback TCP address that was free a moment ago.
func FreePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// NewNode writes the configuration of cfg (fixed loopback ports, so a
// restart keeps its addresses) and validates it with `vaxel check-config`.
// adminCert is the operator certificate the harness uses on the admin API;
// its HSA-ID must be on cfg.AdminAllow.
func NewNode(bin string, cfg NodeConfig, adminCert *Cert) (*Node, error) {
	n := &Node{Cfg: cfg, Bin: bin, DataDir: filepath.Join(cfg.Dir, "data"), ConfigFile: filepath.Join(cfg.Dir, "vaxel.yaml")}
	var err error
	for _, p := range []*string{&n.HTTPSAddr, &n.AdminAddr, &n.RaftAddr} {
		if *p, err = FreePort(); err != nil {
			return nil, err
		}
	}
	if cfg.HTTP {
		if n.HTTPAddr, err = FreePort(); err != nil {
			return nil, err
		}
	}
	router := map[string]any{
		"instance_id":   cfg.InstanceID,
		"instance_name": cfg.InstanceName,
		"https_addr":    n.HTTPSAddr,
	}
	if cfg.HTTP {
		router["http_addr"] = n.HTTPAddr
		router["http_allow_list"] = []string{"127.0.0.1"}
	}
	for k, v := range cfg.Router {
		router[k] = v
	}
	doc := map[string]any{
		"node": map[string]any{"name": cfg.Name, "platform": cfg.Platform, "data_dir": n.DataDir},
		"tls": map[string]any{
			"cert": cfg.Cert.CertFile, "key": cfg.Cert.KeyFile, "ca": cfg.PKI.CAFile,
			"client_cas": []string{cfg.PKI.CAFile}, "producer_cas": []string{cfg.PKI.CAFile},
		},
		"router": router,
		"raft":   map[string]any{"bind": n.RaftAddr},
		"admin":  map[string]any{"addr": n.AdminAddr, "allow": cfg.AdminAllow},
		"log":    map[string]any{"level": "info", "format": "json"},
	}
	// JSON is YAML: the file is what an operator could have written.
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(n.ConfigFile, b, 0o600); err != nil {
		return nil, err
	}
	check := exec.Command(bin, "check-config", "-config", n.ConfigFile)
	check.Env = cleanEnv()
	out, err := check.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("vaxel check-config: %w\n%s\nconfig:\n%s", err, out, b)
	}
	n.admin = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg.PKI.ClientTLS(adminCert)}}
	return n, nil
}

// Start runs `vaxel run -config …` and waits until the admin API answers
// /health. It does not wait for readiness (a node without a catalog is
// never ready).
func (n *Node) Start() error {
	n.mu.Lock()
	if n.cmd != nil {
		n.mu.Unlock()
		return errors.New("node already running")
	}
	if n.log == nil {
		n.log = &syncBuffer{}
	}
	n.starts++
	fmt.Fprintf(n.log, "---- start %d ----\n", n.starts)
	cmd := exec.Command(n.Bin, "run", "-config", n.ConfigFile)
	cmd.Stdout, cmd.Stderr = n.log, n.log
	cmd.Env = cleanEnv()
	killWithParent(cmd)
	if err := cmd.Start(); err != nil {
		n.mu.Unlock()
		return fmt.Errorf("start vaxel: %w", err)
	}
	done := make(chan struct{})
	n.cmd, n.done, n.exit = cmd, done, nil
	n.mu.Unlock()
	go func() {
		err := cmd.Wait()
		n.mu.Lock()
		n.exit = err
		n.mu.Unlock()
		close(done)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("vaxel exited during start: %v\n%s", n.exitErr(), n.Log())
		default:
		}
		if r, err := n.AdminDo("GET", "/health", nil); err == nil && r.Status == 200 {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = n.Stop()
	return fmt.Errorf("vaxel admin API did not answer /health within 20 s\n%s", n.Log())
}

// cleanEnv drops VAXEL_* variables of the surrounding shell, which would
// override the test configuration.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VAXEL_") {
			env = append(env, kv)
		}
	}
	return env
}

func (n *Node) exitErr() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.exit
}

// Stop sends SIGTERM and waits up to 15 s for a clean exit (then kills the
// process). It returns the process's exit error: nil for a clean shutdown.
func (n *Node) Stop() error {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case <-done:
		err = n.exitErr()
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		err = errors.New("vaxel did not stop within 15 s of SIGTERM; killed")
	}
	n.mu.Lock()
	n.cmd = nil
	n.mu.Unlock()
	return err
}

// Running reports whether the process is running.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// Log returns everything the process wrote to stdout and stderr.
func (n *Node) Log() string {
	if n.log == nil {
		return ""
	}
	return n.log.String()
}

// LogTail returns the last lines of the log.
func (n *Node) LogTail(lines int) string {
	ls := strings.Split(strings.TrimRight(n.Log(), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// HTTPSURL is the router's mTLS endpoint.
func (n *Node) HTTPSURL() string { return "https://" + n.HTTPSAddr + "/vp" }

// HTTPURL is the router's plain-HTTP endpoint.
func (n *Node) HTTPURL() string { return "http://" + n.HTTPAddr + "/vp" }

// AdminDo calls the admin API with the operator certificate.
func (n *Node) AdminDo(method, path string, body []byte) (*Response, error) {
	req, err := http.NewRequest(method, "https://"+n.AdminAddr+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	resp, err := n.admin.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b, Elapsed: time.Since(start)}, nil
}

// Write sends a catalog write to the admin API and retries while the node
// has no Raft leader yet (503), for up to 15 s. Any other status than 200 is
// an error carrying the answer.
func (n *Node) Write(method, path string, body []byte) (*Response, error) {
	deadline := time.Now().Add(15 * time.Second)
	for {
		r, err := n.AdminDo(method, path, body)
		if err == nil && r.Status == 200 {
			return r, nil
		}
		if time.Now().After(deadline) || (err == nil && r.Status != http.StatusServiceUnavailable) {
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", method, path, err)
			}
			return r, fmt.Errorf("%s %s: HTTP %d: %s", method, path, r.Status, r.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WaitReady polls /ready until it answers 200, for up to timeout.
func (n *Node) WaitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		r, err := n.AdminDo("GET", "/ready", nil)
		if err == nil && r.Status == 200 {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("HTTP %d %s", r.Status, r.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("node %s not ready within %s: %s", n.Cfg.Name, timeout, last)
}
