// Package ctkit holds what the container scenarios (test/container/scenario,
// test/federation/scenario) share: a log with failures, polling, docker and
// docker-compose commands, a bounded call loop and an mTLS admin client.
// The scenarios are black-box drivers of the built image: they talk to the
// nodes only through published ports and the docker CLI.
package ctkit

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Start is when the scenario started; log lines are stamped from it.
var Start = time.Now()

var (
	failMu   sync.Mutex
	failures []string
)

// Logf prints a line stamped with the time since Start.
func Logf(format string, args ...any) {
	fmt.Printf("[%6.2fs] %s\n", time.Since(Start).Seconds(), fmt.Sprintf(format, args...))
}

// Fail records an acceptance failure and logs it; the scenario goes on.
func Fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	failMu.Lock()
	failures = append(failures, msg)
	failMu.Unlock()
	Logf("FAIL: %s", msg)
}

// Failures returns the failures recorded so far.
func Failures() []string {
	failMu.Lock()
	defer failMu.Unlock()
	return append([]string(nil), failures...)
}

// WaitFor polls ok every interval until it holds or timeout passes.
func WaitFor(what string, timeout, every time.Duration, ok func() bool) (time.Duration, error) {
	t0 := time.Now()
	for {
		if ok() {
			return time.Since(t0), nil
		}
		if time.Since(t0) > timeout {
			return time.Since(t0), fmt.Errorf("%s: not within %s", what, timeout)
		}
		time.Sleep(every)
	}
}

// OneLine shortens s to one line for a log.
func OneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// PingContract is the contract the scenarios call (the demo producer
// answers it).
const PingContract = "urn:riv:itintegration:monitoring:PingForConfigurationResponder:1"

// PingRequest is a RIVTA 2.1 PingForConfiguration call to address.
func PingRequest(address string) string {
	return `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:add="urn:riv:itintegration:registry:1" xmlns:urn="` + PingContract + `">
   <soapenv:Header><add:LogicalAddress>` + address + `</add:LogicalAddress></soapenv:Header>
   <soapenv:Body><urn:PingForConfiguration><urn:serviceContractNamespace>` + PingContract + `</urn:serviceContractNamespace><urn:logicalAddress>` + address + `</urn:logicalAddress></urn:PingForConfiguration></soapenv:Body>
</soapenv:Envelope>
`
}

// Compose is a docker-compose project.
type Compose struct{ Project, File string }

// Run runs a docker-compose command of the project.
func (c Compose) Run(args ...string) error {
	cmd := exec.Command("docker-compose", append([]string{"-p", c.Project, "-f", c.File}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("docker-compose %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// ContainerID returns the container of a compose service.
func (c Compose) ContainerID(service string) (string, error) {
	out, err := exec.Command("docker-compose", "-p", c.Project, "-f", c.File, "ps", "-q", service).Output()
	id := strings.TrimSpace(string(out))
	if err != nil || id == "" {
		return "", fmt.Errorf("container of %s: %v %s", service, err, out)
	}
	return id, nil
}

// Docker runs the docker CLI (much quicker than docker-compose, which takes
// seconds to start, so a kill is timed closely).
func Docker(args ...string) (string, error) {
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// StateTime reads a container's State.StartedAt or State.FinishedAt as the
// engine recorded it (the host clock), falling back to fallback.
func StateTime(id, field string, fallback time.Time) time.Time {
	out, err := Docker("inspect", "-f", "{{.State."+field+"}}", id)
	if err != nil {
		return fallback
	}
	t, err := time.Parse(time.RFC3339Nano, out)
	if err != nil || t.Year() < 2000 {
		return fallback
	}
	return t
}

// Loop calls f every interval, each in its own goroutine, with at most
// maxInFlight running, until ctx ends; Wait on the result for the calls
// still running. A tick that finds maxInFlight running is skipped rather
// than queued, so the load stays bounded.
func Loop(ctx context.Context, every time.Duration, maxInFlight int, f func(i int)) *sync.WaitGroup {
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxInFlight)
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for i := 1; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			select {
			case sem <- struct{}{}:
			default:
				continue
			}
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				defer func() { <-sem }()
				f(i)
			}(i)
		}
	}()
	return &wg
}

// Admin is an mTLS client of nodes' admin APIs.
type Admin struct{ HTTP *http.Client }

// NewAdmin returns an admin client presenting the certificate of tc.
func NewAdmin(tc *tls.Config) *Admin {
	return &Admin{HTTP: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: tc, MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second, TLSHandshakeTimeout: 2 * time.Second,
	}}}
}

// Do sends one request to the admin API at addr (host:port).
func (a *Admin) Do(ctx context.Context, addr, method, path string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "https://"+addr+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.HTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// GetJSON GETs path from addr within 3 s and decodes the 200 answer into v.
func (a *Admin) GetJSON(addr, path string, v any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	code, b, err := a.Do(ctx, addr, "GET", path, nil)
	if err != nil {
		return err
	}
	if code != 200 {
		return fmt.Errorf("GET %s on %s: HTTP %d %s", path, addr, code, strings.TrimSpace(string(b)))
	}
	return json.Unmarshal(b, v)
}

// Ready reports whether the node at addr answers /ready with 200.
func (a *Admin) Ready(addr string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	code, _, err := a.Do(ctx, addr, "GET", "/ready", nil)
	return err == nil && code == 200
}
