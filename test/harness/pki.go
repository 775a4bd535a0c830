package harness

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"path/filepath"
	"strings"

	"github.com/vaxel/vaxel/pki"
)

// PKI is a throw-away certificate authority generated at run time, with the
// certificates issued from it written beside it in Dir.
type PKI struct {
	Dir    string
	CA     *pki.CA
	CAFile string
	pool   *x509.CertPool
}

// Cert is an issued certificate, its files and its TLS form.
type Cert struct {
	Name     string
	HSAID    string
	CertFile string
	KeyFile  string
	CertPEM  []byte
	X509     *x509.Certificate
	TLS      tls.Certificate
}

// NewPKI creates a CA in dir (ca.crt, ca.key).
func NewPKI(dir, name string) (*PKI, error) {
	ca, err := pki.NewCA(name, pki.ECDSAP256, 0)
	if err != nil {
		return nil, err
	}
	if err := ca.WriteDir(dir); err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return &PKI{Dir: dir, CA: ca, CAFile: filepath.Join(dir, pki.CACertFile), pool: pool}, nil
}

// Issue issues a certificate for name (file base name and CN) with hsaID in
// the subject SERIALNUMBER (none if empty), valid for localhost and
// 127.0.0.1, usable as client and server certificate.
func (p *PKI) Issue(name, hsaID string) (*Cert, error) {
	is, err := p.CA.Issue(pki.Request{
		CommonName:   name,
		SerialNumber: hsaID,
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	})
	if err != nil {
		return nil, err
	}
	if err := pki.WriteFiles(p.Dir, name, is); err != nil {
		return nil, err
	}
	kp, err := tls.X509KeyPair(is.CertPEM, is.KeyPEM)
	if err != nil {
		return nil, fmt.Errorf("key pair %s: %w", name, err)
	}
	return &Cert{
		Name: name, HSAID: hsaID,
		CertFile: filepath.Join(p.Dir, name+".crt"), KeyFile: filepath.Join(p.Dir, name+".key"),
		CertPEM: is.CertPEM, X509: is.Cert, TLS: kp,
	}, nil
}

// Pool returns a pool holding the CA.
func (p *PKI) Pool() *x509.CertPool { return p.pool }

// ClientTLS returns a client configuration presenting c (none if nil) and
// trusting the CA.
func (p *PKI) ClientTLS(c *Cert) *tls.Config {
	tc := &tls.Config{RootCAs: p.pool, MinVersion: tls.VersionTLS12}
	if c != nil {
		tc.Certificates = []tls.Certificate{c.TLS}
	}
	return tc
}

// ServerTLS returns a server configuration presenting c; with
// requireClient, clients must present a certificate from the CA.
func (p *PKI) ServerTLS(c *Cert, requireClient bool) *tls.Config {
	tc := &tls.Config{Certificates: []tls.Certificate{c.TLS}, MinVersion: tls.VersionTLS12}
	if requireClient {
		tc.ClientAuth = tls.RequireAndVerifyClientCert
		tc.ClientCAs = p.pool
	}
	return tc
}

// HeaderPEM is the certificate as a TLS-terminating proxy puts it in a
// header: PEM with the line breaks removed (header values are one line).
func (c *Cert) HeaderPEM() string {
	return strings.ReplaceAll(strings.TrimSpace(string(c.CertPEM)), "\n", "")
}

// HeaderBase64 is the Traefik form: the base64 DER without PEM armour.
func (c *Cert) HeaderBase64() string {
	s := strings.TrimSpace(string(c.CertPEM))
	s = strings.TrimPrefix(s, "-----BEGIN CERTIFICATE-----")
	s = strings.TrimSuffix(s, "-----END CERTIFICATE-----")
	return strings.ReplaceAll(s, "\n", "")
}
