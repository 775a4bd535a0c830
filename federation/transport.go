package federation

import (
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// tlsTransport is netTransport with every TCP stream (push/pull
// state sync, fallback probes) inside mutual TLS: a peer must present a
// certificate from the pool's CA before it can read or inject state. UDP
// packets (probes, gossip) cannot carry TLS; they are encrypted and
// authenticated by memberlist's keyring (AES-GCM), which the pool requires.
type tlsTransport struct {
	*netTransport
	server *tls.Config
	client *tls.Config

	streams  chan net.Conn
	sent     atomic.Uint64 // bytes sent: UDP payloads and TCP stream bytes (inside TLS)
	stop     chan struct{} // closed when Shutdown starts: stop handing streams on
	done     chan struct{} // closed when the netTransport has shut down
	stopOnce sync.Once
}

var _ memberlist.NodeAwareTransport = (*tlsTransport)(nil)

func newTLSTransport(nt *netTransport, server, client *tls.Config) *tlsTransport {
	t := &tlsTransport{netTransport: nt, server: server, client: client, streams: make(chan net.Conn), stop: make(chan struct{}), done: make(chan struct{})}
	go t.accept()
	return t
}

// accept wraps each inbound stream in a TLS server. The handshake happens on
// the first read, in memberlist's per-connection goroutine, so a slow or
// hostile peer never holds up other streams; memberlist sets a deadline on
// every stream it reads. It keeps draining (and closing) inbound streams
// until the netTransport has shut down.
func (t *tlsTransport) accept() {
	in := t.netTransport.StreamCh()
	for {
		select {
		case c := <-in:
			select {
			case t.streams <- countingConn{tls.Server(c, t.server), &t.sent}:
			case <-t.stop:
				c.Close()
			}
		case <-t.done:
			return
		}
	}
}

func (t *tlsTransport) StreamCh() <-chan net.Conn { return t.streams }

func (t *tlsTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	t.sent.Add(uint64(len(b)))
	return t.netTransport.WriteTo(b, addr)
}

func (t *tlsTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	t.sent.Add(uint64(len(b)))
	return t.netTransport.WriteToAddress(b, a)
}

// countingConn counts what a stream sends, for the pool's bandwidth figure.
type countingConn struct {
	net.Conn
	sent *atomic.Uint64
}

func (c countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.sent.Add(uint64(n))
	return n, err
}

func (t *tlsTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

func (t *tlsTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	c, err := t.netTransport.DialAddressTimeout(a, timeout)
	if err != nil {
		return nil, err
	}
	cfg := t.client
	if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
		// Members are dialled by IP:port; verify the certificate for it.
		host, _, _ := net.SplitHostPort(a.Addr)
		cfg = cfg.Clone()
		cfg.ServerName = host
	}
	tc := tls.Client(c, cfg)
	_ = tc.SetDeadline(time.Now().Add(timeout))
	if err := tc.Handshake(); err != nil {
		c.Close()
		return nil, fmt.Errorf("gossip TLS handshake with %s: %w", a.Addr, err)
	}
	_ = tc.SetDeadline(time.Time{})
	return countingConn{tc, &t.sent}, nil
}

func (t *tlsTransport) Shutdown() error {
	var err error
	t.stopOnce.Do(func() {
		close(t.stop)
		err = t.netTransport.Shutdown()
		close(t.done)
	})
	return err
}
