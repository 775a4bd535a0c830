package router

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/vaxel/vaxel/pki"
)

// The consumer's certificate is read from the TLS connection without
// allocating (fasthttp's TLSConnectionState copies the whole state to the
// heap on every call), and is absent on a plain connection.
func TestPeerCertNoAlloc(t *testing.T) {
	ca, err := pki.NewCA("peercert CA", pki.ECDSAP256, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair := func(r pki.Request) tls.Certificate { return issuePair(t, ca, r) }
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	sc, cc := net.Pipe()
	defer sc.Close()
	defer cc.Close()
	srv := tls.Server(sc, &tls.Config{Certificates: []tls.Certificate{pair(pki.Request{CommonName: "localhost", DNSNames: []string{"localhost"}, Server: true})},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: roots})
	cli := tls.Client(cc, &tls.Config{ServerName: "localhost", RootCAs: roots,
		Certificates: []tls.Certificate{pair(pki.Request{CommonName: "consumer", SerialNumber: "SE0000000001-PEER", Client: true})}})
	errc := make(chan error, 1)
	go func() { errc <- cli.Handshake() }()
	if err := srv.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}

	var ctx fasthttp.RequestCtx
	ctx.Init2(srv, nil, false)
	c := peerCert(&ctx)
	if c == nil || c.Subject.SerialNumber != "SE0000000001-PEER" {
		t.Fatalf("peerCert = %v, want the consumer's certificate", c)
	}
	if n := testing.AllocsPerRun(100, func() { _ = peerCert(&ctx) }); n != 0 {
		t.Errorf("peerCert allocates %v times per call, want 0", n)
	}

	var plain fasthttp.RequestCtx
	plain.Init2(sc, nil, false)
	if c := peerCert(&plain); c != nil {
		t.Errorf("peerCert on a plain connection = %v, want nil", c.Subject)
	}
}

// issuePair issues r from ca as a tls.Certificate.
func issuePair(t testing.TB, ca *pki.CA, r pki.Request) tls.Certificate {
	t.Helper()
	is, err := ca.Issue(r)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.X509KeyPair(is.CertPEM, is.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
