package router

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/vaxel/vaxel/router/rawio"
)

// client returns the pooled keep-alive client for the producer of url,
// creating it on first use. The map is copied on write and read without a
// lock: producers are few and stable, calls are many.
func (r *Router) client(url string) (*fasthttp.HostClient, bool, error) {
	return r.clientWith(url, r.cfg.ConnectTimeout, "")
}

// platformClient is client for a node of another platform, whose TLS
// certificate must carry hsaID (when not empty). With another node to go
// on to (more), connecting is bounded by PlatformConnectTimeout, so that a
// dead node costs little; without, by ConnectTimeout, as for a producer: a
// short bound would only fail a call on a slow connect. (Clients are kept
// by scheme, host, HSA-ID and bound: a producer URL on the same host and
// port shares the first one made.)
func (r *Router) platformClient(url, hsaID string, more bool) (*fasthttp.HostClient, bool, error) {
	connect := r.cfg.ConnectTimeout
	if more {
		connect = min(r.cfg.PlatformConnectTimeout, connect)
	}
	return r.clientWith(url, connect, hsaID)
}

func (r *Router) clientWith(url string, connect time.Duration, hsaID string) (*fasthttp.HostClient, bool, error) {
	scheme, hostport, ok := splitURL(url)
	if !ok {
		return nil, false, fmt.Errorf("call address %q is not an http(s) URL", url)
	}
	isTLS := scheme == "https"
	key := clientKey{scheme, hostport, hsaID, connect}
	if hc, ok := (*r.clients.Load())[key]; ok {
		return hc, isTLS, nil
	}
	r.clientsMu.Lock()
	defer r.clientsMu.Unlock()
	cur := *r.clients.Load()
	if hc, ok := cur[key]; ok {
		return hc, isTLS, nil
	}
	addr := hostport
	if _, _, err := net.SplitHostPort(addr); err != nil {
		if isTLS {
			addr += ":443"
		} else {
			addr += ":80"
		}
	}
	var tc *tls.Config
	if isTLS {
		if r.cfg.ProducerTLS != nil {
			tc = r.cfg.ProducerTLS.Clone()
		} else {
			tc = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		if tc.ServerName == "" {
			tc.ServerName, _, _ = net.SplitHostPort(addr)
		}
		if hsaID != "" {
			// Another platform's node: besides the chain and the host
			// name, its certificate must be the platform's (the HSA-ID it
			// advertises in the federation, or the one pinned).
			want := hsaID
			tc.VerifyConnection = func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 {
					return errors.New("platform node presented no certificate")
				}
				got, _ := SenderIDFromCert(cs.PeerCertificates[0], nil)
				if !strings.EqualFold(got, want) {
					return fmt.Errorf("%w: %s presents HSA-ID %q, not the platform's %q", errNotPlatformNode, addr, got, want)
				}
				return nil
			}
		}
	}
	hc := &fasthttp.HostClient{
		Addr:      addr,
		IsTLS:     isTLS,
		TLSConfig: tc,
		Dial: func(a string) (net.Conn, error) {
			c, err := (&net.Dialer{Timeout: connect}).Dial("tcp", a)
			if err != nil {
				return nil, err
			}
			if hsaID == "" || !isTLS {
				return rawio.Wrap(c), nil
			}
			return platformHandshake(rawio.Wrap(c), tc, connect)
		},
		MaxConns: r.cfg.MaxConnsPerProducer,
		// Waiting for a free pooled connection is not connecting: it keeps
		// the producers' bound even for another platform's node.
		MaxConnWaitTimeout:  r.cfg.ConnectTimeout,
		MaxIdleConnDuration: 10 * time.Second,
		MaxResponseBodySize: r.cfg.MaxBodySize,
		// Reads small response bodies whole and leaves large ones on the
		// connection for the router to stream (stream.go).
		Transport: producerTransport{},
		// The client writes the request within this bound; it also bounds
		// the TLS handshake, which fasthttp otherwise runs without a deadline.
		WriteTimeout:                  r.cfg.ConnectTimeout + 30*time.Second,
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
		NoDefaultUserAgentHeader:      true,
		// Nothing is retried here. A pooled keep-alive connection the
		// producer closed while idle is dropped before the request is
		// written on it, and the call goes on a new connection
		// (producerTransport; reference: ConnectionResetByPeerProblemIT). A
		// connection that fails once the request is written may have
		// delivered it, so the call is not sent again.
		RetryIfErr: func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
	}
	next := make(map[clientKey]*fasthttp.HostClient, len(cur)+1)
	for k, v := range cur {
		next[k] = v
	}
	next[key] = hc
	r.clients.Store(&next)
	return hc, isTLS, nil
}

// platformHandshake runs the TLS handshake with another platform's node
// within connect, as part of connecting (fasthttp then uses the TLS
// connection as it is). A failed or timed-out handshake is a failed
// connect (isConnectFailure): nothing of the call was written, so the
// call goes on to another node of the platform. fasthttp's own handshake
// would be bounded by its write timeout only (30 s and more), and a node
// that accepts connections but is frozen would hold every call spread to
// it that long.
func platformHandshake(c net.Conn, cfg *tls.Config, connect time.Duration) (net.Conn, error) {
	tc := tls.Client(c, cfg)
	_ = tc.SetDeadline(time.Now().Add(connect))
	if err := tc.Handshake(); err != nil {
		c.Close()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: fmt.Errorf("TLS handshake: %w", err)}
	}
	_ = tc.SetDeadline(time.Time{})
	return tc, nil
}

// errNotPlatformNode: the node's certificate does not carry its platform's
// HSA-ID. The handshake failed, so the call was not sent: like a refused
// connection, the next node of the platform is tried.
var errNotPlatformNode = errors.New("not the platform's node")

// clientKey names a pooled client: a struct of the URL's parts, so that
// looking one up builds no string.
type clientKey struct {
	scheme, hostport string
	hsaID            string        // another platform's node: the HSA-ID its certificate must carry
	connect          time.Duration // the connect bound its Dial uses
}

func splitURL(u string) (scheme, hostport string, ok bool) {
	i := strings.Index(u, "://")
	if i < 0 {
		return "", "", false
	}
	scheme = strings.ToLower(u[:i])
	if scheme != "http" && scheme != "https" {
		return "", "", false
	}
	rest := u[i+3:]
	if j := strings.IndexAny(rest, "/?#"); j >= 0 {
		rest = rest[:j]
	}
	return scheme, rest, rest != ""
}

// isConnectFailure reports whether the producer was never reached: the
// connection was refused or could not be made in time.
func isConnectFailure(err error) bool {
	if errors.Is(err, fasthttp.ErrDialTimeout) || errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// copyRequestHeaders forwards the consumer's headers minus the reference's
// remove-list (skltp-vp.md §2.7: x-vp*, X-Forwarded*, MULE_*, X-MULE_*,
// PEER_CERTIFICATES, Connection, accept-encoding), the headers Camel never
// copies (hop-by-hop, Host, Content-Length, …) and those the router sets.
func copyRequestHeaders(dst, src *fasthttp.RequestHeader, certHeader, xff string) {
	for k, v := range src.All() {
		if dropRequestHeader(k) || strings.EqualFold(string(k), certHeader) || strings.EqualFold(string(k), xff) {
			continue
		}
		dst.AddBytesKV(k, v)
	}
}

// headerNameBuf holds a lower-cased header name for the remove-lists below;
// every name on them is shorter, so a longer name matches none.
const headerNameBuf = 64

// lowerName lower-cases k (ASCII) into buf without allocating; a name that
// does not fit comes back empty, which matches no listed name. strings.ToLower
// on each header of each call was a quarter of a node's garbage.
func lowerName(buf *[headerNameBuf]byte, k []byte) []byte {
	if len(k) > len(buf) {
		return nil
	}
	for i, c := range k {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return buf[:len(k)]
}

func dropRequestHeader(k []byte) bool {
	switch {
	case hasPrefixFold(k, "x-vp"), hasPrefixFold(k, "x-forwarded"), hasPrefixFold(k, "mule_"), hasPrefixFold(k, "x-mule_"),
		hasPrefixFold(k, "proxy-"):
		return true
	}
	var lb [headerNameBuf]byte
	switch string(lowerName(&lb, k)) {
	case "peer_certificates", "connection", "accept-encoding", "content-length", "content-type", "host",
		"cache-control", "date", "pragma", "trailer", "transfer-encoding", "upgrade", "via", "warning", "keep-alive", "te",
		"user-agent", hdrOriginalConsumer, hdrCorrelationID, hdrRoutingHistory, hdrTraceparent, "tracestate":
		return true
	}
	return false
}

// copyResponseHeaders passes the producer's headers to the consumer minus
// the reference's response remove-list and hop-by-hop headers.
func copyResponseHeaders(dst *fasthttp.ResponseHeader, src *fasthttp.ResponseHeader) {
	for k, v := range src.All() {
		if hasPrefixFold(k, "mule_") || hasPrefixFold(k, "x-mule_") || hasPrefixFold(k, "proxy-") {
			continue
		}
		var lb [headerNameBuf]byte
		switch string(lowerName(&lb, k)) {
		case "soapaction", "local_certificate", "peer_certificates", "http.method", "connection", "keep-alive",
			"transfer-encoding", "content-length", "content-type", "upgrade", "te", "trailer", "date", "server",
			hdrCorrelationID, hdrPRT:
			continue
		}
		dst.AddBytesKV(k, v)
	}
}

func hasPrefixFold(b []byte, p string) bool {
	return len(b) >= len(p) && strings.EqualFold(string(b[:len(p)]), p)
}
