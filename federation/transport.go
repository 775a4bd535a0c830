package federation

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
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
	// name and key answer binding challenges (binding.go): this member's
	// name, and the key its proof is made with (the keyring's primary).
	name string
	key  []byte
	// setups bounds the inbound streams in their TLS handshake and first
	// byte at once: each holds a goroutine for up to streamSetupTimeout.
	setups chan struct{}

	streams  chan net.Conn
	sent     atomic.Uint64 // bytes sent: UDP payloads and TCP stream bytes (inside TLS)
	stop     chan struct{} // closed when Shutdown starts: stop handing streams on
	done     chan struct{} // closed when the netTransport has shut down
	stopOnce sync.Once

	// Outbound streams (push/pull, joins, fallback probes) end when the
	// transport shuts down: memberlist gives a stream up to TCPTimeout
	// (30 s on WAN timing), and a join to an address that accepts and
	// never answers would otherwise hold shutdown that long.
	dialCtx     context.Context
	cancelDials context.CancelFunc
	outMu       sync.Mutex
	out         map[*outboundConn]struct{} // nil once shut down
}

var _ memberlist.NodeAwareTransport = (*tlsTransport)(nil)

func newTLSTransport(nt *netTransport, server, client *tls.Config, name string, key []byte) *tlsTransport {
	t := &tlsTransport{netTransport: nt, server: server, client: client, name: name, key: key,
		setups: make(chan struct{}, maxStreamSetups), streams: make(chan net.Conn), stop: make(chan struct{}), done: make(chan struct{}),
		out: make(map[*outboundConn]struct{})}
	t.dialCtx, t.cancelDials = context.WithCancel(context.Background())
	go t.accept()
	return t
}

const (
	// streamSetupTimeout bounds an inbound stream's TLS handshake and its
	// first byte; memberlist's own deadline (TCPTimeout) starts after.
	streamSetupTimeout = 10 * time.Second
	// maxStreamSetups bounds the inbound streams being set up at once;
	// beyond it a new stream is closed at once. Push/pull and fallback
	// probes open a few streams a minute.
	maxStreamSetups = 128
)

// accept sets up each inbound stream on a goroutine of its own, so a slow
// or hostile peer never holds up other streams. It keeps draining (and
// closing) inbound streams until the netTransport has shut down.
func (t *tlsTransport) accept() {
	in := t.netTransport.StreamCh()
	for {
		select {
		case c := <-in:
			select {
			case t.setups <- struct{}{}:
				go func() {
					defer func() { <-t.setups }()
					t.setup(c)
				}()
			default:
				t.log.Warn("gossip: too many streams being set up; closing a new one", "from", c.RemoteAddr())
				c.Close()
			}
		case <-t.done:
			return
		}
	}
}

// setup runs the TLS handshake of an inbound stream and reads its first
// byte: a binding challenge is answered here (binding.go), anything else is
// memberlist's and goes to it with the byte put back. A stream that ends
// after the handshake is closed quietly.
func (t *tlsTransport) setup(c net.Conn) {
	tc := tls.Server(c, t.server)
	_ = tc.SetDeadline(time.Now().Add(streamSetupTimeout))
	var first [1]byte
	if err := tc.Handshake(); err != nil {
		t.log.Debug("gossip stream TLS handshake failed", "from", c.RemoteAddr(), "err", err)
		c.Close()
		return
	}
	if _, err := io.ReadFull(tc, first[:]); err != nil {
		tc.Close()
		return
	}
	if first[0] == bindingChallenge {
		if err := answerBinding(tc, t.name, t.key); err != nil {
			t.log.Debug("gossip binding challenge not answered", "from", c.RemoteAddr(), "err", err)
		}
		tc.Close()
		return
	}
	_ = tc.SetDeadline(time.Time{})
	select {
	case t.streams <- countingConn{&peekedConn{Conn: tc, first: first[0], has: true}, &t.sent}:
	case <-t.stop:
		tc.Close()
	}
}

// peekedConn is a stream whose first byte was read already: Read returns
// it first.
type peekedConn struct {
	net.Conn
	first byte
	has   bool
}

func (c *peekedConn) Read(b []byte) (int, error) {
	if c.has && len(b) > 0 {
		b[0], c.has = c.first, false
		return 1, nil
	}
	return c.Conn.Read(b)
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
	return t.dial(t.dialCtx, a.Addr, timeout)
}

// dial opens a TLS stream to addr, connected and handshaken within
// timeout; ctx ends the connect and the handshake early, and Shutdown
// ends the stream whenever it is still open.
func (t *tlsTransport) dial(ctx context.Context, addr string, timeout time.Duration) (*outboundConn, error) {
	c, err := (&net.Dialer{Timeout: timeout}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(c, t.clientFor(addr))
	oc := &outboundConn{Conn: countingConn{tc, &t.sent}, tls: tc, raw: c, t: t}
	if !t.track(oc) {
		c.Close()
		return nil, errors.New("gossip transport is shut down")
	}
	_ = tc.SetDeadline(time.Now().Add(timeout))
	if err := tc.HandshakeContext(ctx); err != nil {
		oc.Close()
		return nil, fmt.Errorf("gossip TLS handshake with %s: %w", addr, err)
	}
	_ = tc.SetDeadline(time.Time{})
	return oc, nil
}

// track registers an outbound stream so Shutdown can end it; false once
// the transport is shut down.
func (t *tlsTransport) track(oc *outboundConn) bool {
	t.outMu.Lock()
	defer t.outMu.Unlock()
	if t.out == nil {
		return false
	}
	t.out[oc] = struct{}{}
	return true
}

// outboundConn is a stream this member opened; closing it forgets it.
// Shutdown closes the TCP connection of any still open, which ends a read
// or write in progress; memberlist then closes the stream itself.
type outboundConn struct {
	net.Conn           // the TLS stream, counted
	tls      *tls.Conn // the TLS stream itself
	raw      net.Conn  // the TCP connection under it
	t        *tlsTransport
	once     sync.Once
}

// Write closes the stream when a write fails: a TLS stream is unusable
// after a failed write, and one caller (memberlist's label header) returns
// on such an error without closing it, which would keep it in out until
// Shutdown.
func (c *outboundConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err != nil {
		c.Close()
	}
	return n, err
}

func (c *outboundConn) Close() error {
	var err error
	c.once.Do(func() {
		c.t.outMu.Lock()
		delete(c.t.out, c)
		c.t.outMu.Unlock()
		err = c.Conn.Close()
	})
	return err
}

// clientFor is the client TLS configuration for a member at addr.
func (t *tlsTransport) clientFor(addr string) *tls.Config {
	cfg := t.client
	if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
		// Members are dialled by IP:port; verify the certificate for it.
		host, _, _ := net.SplitHostPort(addr)
		cfg = cfg.Clone()
		cfg.ServerName = host
	}
	return cfg
}

func (t *tlsTransport) Shutdown() error {
	var err error
	t.stopOnce.Do(func() {
		close(t.stop)
		t.cancelDials()
		t.outMu.Lock()
		out := t.out
		t.out = nil
		t.outMu.Unlock()
		for oc := range out {
			oc.raw.Close()
		}
		err = t.netTransport.Shutdown()
		close(t.done)
	})
	return err
}
