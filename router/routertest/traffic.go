package routertest

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Traffic is background load of calls that must all succeed, run while a
// test throws bad input at the same router. It is bounded in calls and in
// time, so a hung router cannot hang the test.
type Traffic struct {
	stop     chan struct{}
	wg       sync.WaitGroup
	calls    atomic.Int64
	ok       atomic.Int64
	mu       sync.Mutex
	failures []string
}

// StartTraffic runs one goroutine per client, each posting body in a loop
// and checking the answer with check (nil error: success), until Stop, at
// most maxCalls calls in all, or maxDur, whichever comes first.
func StartTraffic(clients []*Client, body string, check func(Response) error, maxCalls int, maxDur time.Duration) *Traffic {
	tr := &Traffic{stop: make(chan struct{})}
	deadline := time.Now().Add(maxDur)
	for _, c := range clients {
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			for {
				select {
				case <-tr.stop:
					return
				default:
				}
				if time.Now().After(deadline) || tr.calls.Add(1) > int64(maxCalls) {
					return
				}
				resp, err := c.Do(body, nil)
				if err == nil {
					err = check(resp)
				}
				if err != nil {
					tr.mu.Lock()
					tr.failures = append(tr.failures, err.Error())
					tr.mu.Unlock()
					continue
				}
				tr.ok.Add(1)
			}
		}()
	}
	return tr
}

// OK returns the number of successful calls so far.
func (tr *Traffic) OK() int { return int(tr.ok.Load()) }

// Stop ends the load and returns the successful calls and the failures.
func (tr *Traffic) Stop() (ok int, failures []string) {
	select {
	case <-tr.stop:
	default:
		close(tr.stop)
	}
	tr.wg.Wait()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.OK(), append([]string(nil), tr.failures...)
}

// CheckOK accepts a 200 with exactly body.
func CheckOK(body string) func(Response) error {
	return func(r Response) error {
		if r.Status != http.StatusOK {
			f, _ := ParseFault(r.Body)
			return fmt.Errorf("status %d: %s %s", r.Status, f.String, f.Detail)
		}
		if string(r.Body) != body {
			return fmt.Errorf("status 200 but body %.200q", r.Body)
		}
		return nil
	}
}

// RawRequest is an HTTP/1.1 POST of body to /vp on host with the headers
// (written as given, in sorted order) and a Content-Length, unless the
// headers set Content-Length or Transfer-Encoding themselves.
func RawRequest(host string, header map[string]string, body string) []byte {
	var b strings.Builder
	b.WriteString("POST /vp HTTP/1.1\r\nHost: " + host + "\r\nContent-Type: text/xml;charset=UTF-8\r\n")
	keys := make([]string, 0, len(header))
	own := false
	for k := range header {
		keys = append(keys, k)
		if strings.EqualFold(k, "Content-Length") || strings.EqualFold(k, "Transfer-Encoding") {
			own = true
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteString(k + ": " + header[k] + "\r\n")
	}
	if !own {
		b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n")
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	return []byte(b.String())
}

// DialTLS opens a TLS connection to addr with tc and completes the
// handshake within timeout. With TLS 1.3 the server checks the client
// certificate after the client considers the handshake done, so a refused
// certificate shows up on the first read, not here.
func DialTLS(addr string, tc *tls.Config, timeout time.Duration) (*tls.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	c, err := tls.DialWithDialer(d, "tcp", addr, tc)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Exchange writes req on c (concurrently, so a server that answers before
// reading everything cannot deadlock the test) and reads one response
// within timeout. The connection is closed afterwards.
func Exchange(c net.Conn, req []byte, timeout time.Duration) (*http.Response, []byte, error) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(req)
		werr <- err
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		if we := <-werr; we != nil {
			return nil, nil, fmt.Errorf("read: %w (write: %v)", err, we)
		}
		return nil, nil, fmt.Errorf("read: %w", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, body, err
}

// WaitClosed reads from c until the peer closes it or timeout passes, and
// returns how long that took and everything read. closed is false on timeout.
func WaitClosed(c net.Conn, timeout time.Duration) (took time.Duration, got []byte, closed bool) {
	t0 := time.Now()
	_ = c.SetReadDeadline(t0.Add(timeout))
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			ne, ok := err.(net.Error)
			return time.Since(t0), got, !(ok && ne.Timeout())
		}
	}
}
