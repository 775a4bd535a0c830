package catalog

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// tlsLayer is a raft.StreamLayer over mutual TLS: a node accepts Raft
// connections only from holders of a certificate from the platform's CA, so
// nobody else can join the group or read the catalog off the wire.
type tlsLayer struct {
	ln        net.Listener
	advertise net.Addr
	client    *tls.Config
}

var _ raft.StreamLayer = (*tlsLayer)(nil)

func newTLSLayer(bind, advertise string, server, client *tls.Config) (*tlsLayer, error) {
	if server == nil || client == nil {
		return nil, errors.New("raft transport needs TLS: set the node certificate, key and platform CA")
	}
	srv := server.Clone()
	srv.ClientAuth = tls.RequireAndVerifyClientCert
	ln, err := tls.Listen("tcp", bind, srv)
	if err != nil {
		return nil, fmt.Errorf("listen for raft on %s: %w", bind, err)
	}
	adv := ln.Addr()
	if advertise != "" {
		a, err := net.ResolveTCPAddr("tcp", advertise)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("raft advertise address %q: %w", advertise, err)
		}
		if a.IP == nil || a.IP.IsUnspecified() {
			ln.Close()
			return nil, fmt.Errorf("raft advertise address %q is not routable; set an IP other nodes can reach", advertise)
		}
		adv = a
	} else if tcp, ok := adv.(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("raft binds %s: set the raft advertise address to an IP other nodes can reach", bind)
	}
	return &tlsLayer{ln: ln, advertise: adv, client: client}, nil
}

func (l *tlsLayer) Accept() (net.Conn, error) { return l.ln.Accept() }
func (l *tlsLayer) Close() error              { return l.ln.Close() }
func (l *tlsLayer) Addr() net.Addr            { return l.advertise }

func (l *tlsLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	cfg := l.client.Clone()
	if cfg.ServerName == "" {
		// Nodes are addressed by IP:port in the Raft configuration; the
		// platform CA is private, so verify the chain and accept the node
		// certificate's own name (every node certificate carries the
		// platform's node SAN, see pki).
		host, _, err := net.SplitHostPort(string(address))
		if err == nil {
			cfg.ServerName = host
		}
	}
	return tls.DialWithDialer(d, "tcp", string(address), cfg)
}
