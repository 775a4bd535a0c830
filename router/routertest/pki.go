// Package routertest holds helpers for in-process tests of the router over
// real TLS on 127.0.0.1: a test PKI generated at run time, loopback
// producers that record what they were sent, catalog and request builders,
// a SOAP fault reader and a router started for the duration of a test.
//
// It imports package router, so only external tests (package router_test)
// and other packages can use it; an internal test of package router cannot.
package routertest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"net"
	"testing"
	"time"

	"github.com/vaxel/vaxel/pki"
)

// HSA-IDs of the certificates NewPKI issues.
const (
	// ConsumerID is the SERIALNUMBER of PKI.Consumer.
	ConsumerID = "SE0000000001-CONS"
	// OtherConsumerID is the SERIALNUMBER of PKI.Other, a consumer with no
	// authorizations unless a test adds them.
	OtherConsumerID = "SE0000000002-OTHR"
	// PlatformID is the SERIALNUMBER of PKI.Platform, another platform
	// calling this one (e.g. a regional VP that may set the original
	// consumer header).
	PlatformID = "SE0000000003-RTJP"
	// ServerID is the SERIALNUMBER of PKI.Server.
	ServerID = "SE0000000000-NODE"
)

// PKI is a throw-away PKI: one trusted CA and one foreign CA, and the
// certificates the router tests need. Every field is ready to use.
type PKI struct {
	CA      *pki.CA // the consumers' and the router's CA
	Foreign *pki.CA // a CA the router does not trust

	Server   *pki.Issued // router and producer server certificate: localhost, 127.0.0.1
	Consumer *pki.Issued // SERIALNUMBER ConsumerID
	Other    *pki.Issued // SERIALNUMBER OtherConsumerID
	Platform *pki.Issued // SERIALNUMBER PlatformID
	NoSerial *pki.Issued // CN only, no SERIALNUMBER (VP002)
	Expired  *pki.Issued // SERIALNUMBER ConsumerID, expired yesterday
	Alien    *pki.Issued // SERIALNUMBER ConsumerID, issued by Foreign
}

// NoSerialCN is the common name of PKI.NoSerial; its subject string is
// "CN=" + NoSerialCN.
const NoSerialCN = "No Serial Consumer"

// NewPKI generates a PKI (ECDSA P-256, a few milliseconds).
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	ca, err := pki.NewCA("routertest CA", pki.ECDSAP256, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := pki.NewCA("routertest foreign CA", pki.ECDSAP256, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(ca *pki.CA, r pki.Request) *pki.Issued {
		t.Helper()
		is, err := ca.Issue(r)
		if err != nil {
			t.Fatal(err)
		}
		return is
	}
	now := time.Now()
	return &PKI{
		CA:      ca,
		Foreign: foreign,
		Server: issue(ca, pki.Request{CommonName: "localhost", SerialNumber: ServerID,
			DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}),
		Consumer: issue(ca, pki.Request{CommonName: "consumer", SerialNumber: ConsumerID, Client: true}),
		Other:    issue(ca, pki.Request{CommonName: "other", SerialNumber: OtherConsumerID, Client: true}),
		Platform: issue(ca, pki.Request{CommonName: "platform", SerialNumber: PlatformID, Client: true}),
		NoSerial: issue(ca, pki.Request{CommonName: NoSerialCN, Client: true}),
		Expired: issue(ca, pki.Request{CommonName: "expired", SerialNumber: ConsumerID, Client: true,
			NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)}),
		Alien: issue(foreign, pki.Request{CommonName: "alien", SerialNumber: ConsumerID, Client: true}),
	}
}

// Pool returns a pool holding the trusted CA.
func (p *PKI) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.CA.Cert)
	return pool
}

// KeyPair returns is as a tls.Certificate.
func KeyPair(t testing.TB, is *pki.Issued) tls.Certificate {
	t.Helper()
	c, err := tls.X509KeyPair(is.CertPEM, is.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// RouterTLS is the router's listener configuration: the server
// certificate, and client certificates required and verified against CA.
func (p *PKI) RouterTLS(t testing.TB) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{KeyPair(t, p.Server)},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    p.Pool(),
	}
}

// ProducerTLS is what the router presents to https producers: the server
// certificate as client certificate, CA as trusted root.
func (p *PKI) ProducerTLS(t testing.TB) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{KeyPair(t, p.Server)},
		RootCAs:      p.Pool(),
	}
}

// ClientTLS is a consumer's configuration: its certificate (none if is is
// nil) and the CA as trusted root for the router's certificate.
func (p *PKI) ClientTLS(t testing.TB, is *pki.Issued) *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: p.Pool(), ServerName: "127.0.0.1"}
	if is != nil {
		c.Certificates = []tls.Certificate{KeyPair(t, is)}
	}
	return c
}

// CertHeader is the value a TLS-terminating proxy puts in the certificate
// header (Traefik's passTLSClientCert with pem: base64 DER, "MII…").
func CertHeader(is *pki.Issued) string {
	return base64.StdEncoding.EncodeToString(is.Cert.Raw)
}
