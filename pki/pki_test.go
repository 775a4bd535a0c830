package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testPKI is one CA with a server and client certificate written to dir.
type testPKI struct {
	dir string
	ca  *CA
}

func newTestPKI(t *testing.T, kt KeyType) *testPKI {
	t.Helper()
	ca, err := NewCA("vaxel test CA", kt, 0)
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	p := &testPKI{dir: t.TempDir(), ca: ca}
	if err := ca.WriteDir(p.dir); err != nil {
		t.Fatalf("WriteDir: %v", err)
	}
	p.issue(t, "server", Request{
		CommonName:  "localhost",
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		Server:      true,
		KeyType:     kt,
	})
	return p
}

// issue writes a certificate as name.crt/name.key and returns it.
func (p *testPKI) issue(t *testing.T, name string, r Request) *Issued {
	t.Helper()
	is, err := p.ca.Issue(r)
	if err != nil {
		t.Fatalf("Issue %s: %v", name, err)
	}
	if err := WriteFiles(p.dir, name, is); err != nil {
		t.Fatalf("WriteFiles %s: %v", name, err)
	}
	return is
}

func (p *testPKI) path(name string) string { return filepath.Join(p.dir, name) }

// handshake runs a real loopback TLS handshake and returns the server's
// view. With TLS 1.3 the client finishes its handshake before the server has
// checked the client certificate, so only the server side tells whether the
// client was accepted.
func handshake(t *testing.T, server, client *tls.Config) (serverErr, clientErr error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer ln.Close()

	done := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if err := conn.(*tls.Conn).Handshake(); err != nil {
			done <- err
			return
		}
		_, err = conn.Write([]byte("ok"))
		done <- err
	}()

	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", ln.Addr().String(), client)
	if err == nil {
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		// Reading surfaces a rejection that arrives after the client's
		// side of a TLS 1.3 handshake has completed.
		buf := make([]byte, 2)
		if _, err = io.ReadFull(conn, buf); err == nil && string(buf) != "ok" {
			err = errors.New("unexpected server greeting " + string(buf))
		}
		conn.Close()
	}
	return <-done, err
}

func TestMutualTLS(t *testing.T) {
	p := newTestPKI(t, ECDSAP256)
	p.issue(t, "client", Request{CommonName: "consumer", SerialNumber: "SE2321000016-1234", Client: true})
	now := time.Now()
	p.issue(t, "expired", Request{
		CommonName: "expired", Client: true,
		NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour),
	})

	foreign, err := NewCA("foreign CA", ECDSAP256, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := foreign.Issue(Request{CommonName: "intruder", SerialNumber: "SE2321000016-1234", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteFiles(p.dir, "foreign", fi); err != nil {
		t.Fatal(err)
	}

	server, err := ServerTLSConfig(p.path("server.crt"), p.path("server.key"), []string{p.path(CACertFile)}, true)
	if err != nil {
		t.Fatalf("ServerTLSConfig: %v", err)
	}
	if server.MinVersion != tls.VersionTLS12 || server.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Fatalf("server config: MinVersion %x ClientAuth %v", server.MinVersion, server.ClientAuth)
	}

	tests := []struct {
		name     string
		cert     string // "" = no client certificate
		wantFail bool
	}{
		{name: "same CA", cert: "client"},
		{name: "foreign CA", cert: "foreign", wantFail: true},
		{name: "no client certificate", wantFail: true},
		{name: "expired", cert: "expired", wantFail: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var certFile, keyFile string
			if tc.cert != "" {
				certFile, keyFile = p.path(tc.cert+".crt"), p.path(tc.cert+".key")
			}
			client, err := ClientTLSConfig(certFile, keyFile, []string{p.path(CACertFile)})
			if err != nil {
				t.Fatalf("ClientTLSConfig: %v", err)
			}
			serverErr, clientErr := handshake(t, server, client)
			if tc.wantFail {
				if serverErr == nil {
					t.Fatalf("server accepted the client (client error %v)", clientErr)
				}
				if clientErr == nil {
					t.Errorf("client saw no error although the server rejected it: %v", serverErr)
				}
				return
			}
			if serverErr != nil || clientErr != nil {
				t.Fatalf("handshake: server %v, client %v", serverErr, clientErr)
			}
		})
	}
}

func TestClientRejectsForeignServerCert(t *testing.T) {
	// The client side must verify too: a server certificate from a foreign
	// CA is refused.
	p := newTestPKI(t, ECDSAP256)
	other := newTestPKI(t, ECDSAP256)
	server, err := ServerTLSConfig(p.path("server.crt"), p.path("server.key"), nil, false)
	if err != nil {
		t.Fatal(err)
	}
	client, err := ClientTLSConfig("", "", []string{other.path(CACertFile)})
	if err != nil {
		t.Fatal(err)
	}
	_, clientErr := handshake(t, server, client)
	var unknown x509.UnknownAuthorityError
	if !errors.As(clientErr, &unknown) {
		t.Fatalf("client error = %v, want x509.UnknownAuthorityError", clientErr)
	}
}

func TestSerialNumberAttribute(t *testing.T) {
	ca, err := NewCA("vaxel test CA", ECDSAP256, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	is, err := ca.Issue(Request{CommonName: "consumer", SerialNumber: "TSTNMT2321000156-B02", Organization: "Inera AB", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	// Parse the PEM, not is.Cert, so the round trip covers the encoding.
	cert, err := parseCertPEM(is.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	if got := cert.Subject.SerialNumber; got != "TSTNMT2321000156-B02" {
		t.Errorf("Subject.SerialNumber = %q", got)
	}
	if got := cert.Subject.Organization; len(got) != 1 || got[0] != "Inera AB" {
		t.Errorf("Subject.Organization = %q", got)
	}
	if len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Errorf("ExtKeyUsage = %v, want clientAuth only", cert.ExtKeyUsage)
	}
	if cert.SerialNumber.BitLen() < 64 || cert.SerialNumber.BitLen() > 128 {
		t.Errorf("certificate serial has %d bits, want a random 128-bit number", cert.SerialNumber.BitLen())
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: poolOf(ca.Cert), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("verify: %v", err)
	}
}

func TestIssueDefaults(t *testing.T) {
	ca, err := NewCA("vaxel test CA", ECDSAP256, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !ca.Cert.IsCA || ca.Cert.NotAfter.Before(time.Now().Add(DefaultCAValidity-time.Hour)) {
		t.Errorf("CA: IsCA %v NotAfter %s", ca.Cert.IsCA, ca.Cert.NotAfter)
	}
	is, err := ca.Issue(Request{CommonName: "node"})
	if err != nil {
		t.Fatal(err)
	}
	c := is.Cert
	if _, ok := c.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("default key type gave %T", c.PublicKey)
	}
	if d := time.Until(c.NotBefore); d > -30*time.Minute || d < -2*time.Hour {
		t.Errorf("NotBefore %s, want about an hour ago", c.NotBefore)
	}
	if d := time.Until(c.NotAfter); d < DefaultValidity-time.Hour || d > DefaultValidity+time.Hour {
		t.Errorf("NotAfter %s, want about a year from now", c.NotAfter)
	}
	if len(c.ExtKeyUsage) != 2 {
		t.Errorf("neither Server nor Client: ExtKeyUsage = %v, want both", c.ExtKeyUsage)
	}
	if c.IsCA {
		t.Error("leaf certificate is a CA")
	}

	if _, err := ca.Issue(Request{CommonName: "x", NotBefore: time.Now(), NotAfter: time.Now().Add(-time.Hour)}); err == nil {
		t.Error("Issue accepted NotAfter before NotBefore")
	}
	if _, err := ca.Issue(Request{CommonName: "x", KeyType: "dsa-1024"}); err == nil {
		t.Error("Issue accepted an unknown key type")
	}
}

func TestWriteDirLoadCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	ca, err := NewCA("vaxel test CA", ECDSAP256, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A pre-existing world-readable key file must not keep its mode.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, CAKeyFile), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ca.WriteDir(dir); err != nil {
		t.Fatalf("WriteDir: %v", err)
	}
	for name, want := range map[string]os.FileMode{CACertFile: 0o644, CAKeyFile: 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s mode %o, want %o", name, got, want)
		}
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(keyPEM, []byte("-----BEGIN PRIVATE KEY-----")) {
		t.Errorf("ca.key is not PKCS#8 PEM: %.40q", keyPEM)
	}

	loaded, err := LoadCA(dir)
	if err != nil {
		t.Fatalf("LoadCA: %v", err)
	}
	if !loaded.Cert.Equal(ca.Cert) {
		t.Error("loaded certificate differs")
	}
	if !bytes.Equal(loaded.CertPEM, ca.CertPEM) {
		t.Error("loaded CertPEM differs")
	}
	// The loaded key must be able to issue certificates the original CA
	// certificate verifies.
	is, err := loaded.Issue(Request{CommonName: "after reload", Server: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := is.Cert.Verify(x509.VerifyOptions{Roots: poolOf(ca.Cert)}); err != nil {
		t.Errorf("certificate from reloaded CA: %v", err)
	}

	// A key from another CA is caught at load time.
	other, err := NewCA("other", ECDSAP256, 0)
	if err != nil {
		t.Fatal(err)
	}
	otherDir := t.TempDir()
	if err := other.WriteDir(otherDir); err != nil {
		t.Fatal(err)
	}
	otherKey, err := os.ReadFile(filepath.Join(otherDir, CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, CAKeyFile), otherKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCA(dir); err == nil {
		t.Error("LoadCA accepted a key that does not match the certificate")
	}
	if _, err := LoadCA(t.TempDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadCA of empty dir: %v, want ErrNotExist", err)
	}
}

func TestWriteFilesModes(t *testing.T) {
	p := newTestPKI(t, ECDSAP256)
	for name, want := range map[string]os.FileMode{"server.crt": 0o644, "server.key": 0o600} {
		fi, err := os.Stat(p.path(name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s mode %o, want %o", name, got, want)
		}
	}
	if err := WriteFiles(p.dir, "../escape", &Issued{}); err == nil {
		t.Error("WriteFiles accepted a name with a path separator")
	}
}

func TestRSA(t *testing.T) {
	p := newTestPKI(t, RSA2048)
	if _, ok := p.ca.Key.(*rsa.PrivateKey); !ok {
		t.Fatalf("CA key is %T", p.ca.Key)
	}
	is := p.issue(t, "client", Request{CommonName: "rsa consumer", SerialNumber: "SE2321000016-RSA1", Client: true, KeyType: RSA2048})
	pub, ok := is.Cert.PublicKey.(*rsa.PublicKey)
	if !ok || pub.N.BitLen() != 2048 {
		t.Fatalf("client public key %T, want RSA 2048", is.Cert.PublicKey)
	}
	if is.Cert.KeyUsage&x509.KeyUsageKeyEncipherment == 0 {
		t.Error("RSA leaf lacks keyEncipherment")
	}
	loaded, err := LoadCA(p.dir)
	if err != nil {
		t.Fatalf("LoadCA RSA: %v", err)
	}
	if _, ok := loaded.Key.(*rsa.PrivateKey); !ok {
		t.Errorf("loaded CA key is %T", loaded.Key)
	}

	server, err := ServerTLSConfig(p.path("server.crt"), p.path("server.key"), []string{p.path(CACertFile)}, true)
	if err != nil {
		t.Fatal(err)
	}
	client, err := ClientTLSConfig(p.path("client.crt"), p.path("client.key"), []string{p.path(CACertFile)})
	if err != nil {
		t.Fatal(err)
	}
	// TLS 1.2 exercises the RSA certificate in the older handshake that
	// Java-based SKLTP components still negotiate.
	client.MaxVersion = tls.VersionTLS12
	if serverErr, clientErr := handshake(t, server, client); serverErr != nil || clientErr != nil {
		t.Fatalf("RSA handshake: server %v, client %v", serverErr, clientErr)
	}
}

func TestTLSConfigErrors(t *testing.T) {
	p := newTestPKI(t, ECDSAP256)
	crt, key := p.path("server.crt"), p.path("server.key")

	if _, err := ServerTLSConfig(crt, key, nil, true); err == nil {
		t.Error("ServerTLSConfig required client certs without a client CA")
	}
	cfg, err := ServerTLSConfig(crt, key, []string{p.path(CACertFile)}, false)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ClientAuth != tls.VerifyClientCertIfGiven {
		t.Errorf("optional client certs: ClientAuth %v", cfg.ClientAuth)
	}
	if _, err := ClientTLSConfig(crt, "", nil); err == nil {
		t.Error("ClientTLSConfig accepted a certificate without a key")
	}
	// A key file is not a certificate file.
	if _, err := CertPool(key); err == nil {
		t.Error("CertPool accepted a file without certificates")
	}
	if _, err := CertPool(filepath.Join(p.dir, "missing.crt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("CertPool of a missing file: %v", err)
	}
	if _, err := ServerTLSConfig(crt, key, []string{key}, true); err == nil {
		t.Error("ServerTLSConfig accepted a client CA file without certificates")
	}
}

func poolOf(certs ...*x509.Certificate) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool
}
