package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// KeyType selects the key algorithm of a generated certificate.
type KeyType string

const (
	// ECDSAP256 is the default: small keys and fast handshakes.
	ECDSAP256 KeyType = "ecdsa-p256"
	// RSA2048 matches SITHS function certificates, which are RSA; use it to
	// test against peers that only accept RSA.
	RSA2048 KeyType = "rsa-2048"
)

const (
	// DefaultCAValidity is used by NewCA when validFor is zero.
	DefaultCAValidity = 10 * 365 * 24 * time.Hour
	// DefaultValidity is the lifetime of an issued certificate whose
	// Request.NotAfter is zero.
	DefaultValidity = 365 * 24 * time.Hour

	// backdate absorbs clock skew between the machine that issues a
	// certificate and the machines that verify it.
	backdate = time.Hour
)

// File names used by WriteDir and LoadCA.
const (
	CACertFile = "ca.crt"
	CAKeyFile  = "ca.key"
)

// CA is a development certificate authority. It is safe for concurrent use
// once created; Issue does not modify it.
type CA struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte
}

// Request describes a certificate to issue.
type Request struct {
	CommonName string
	// SerialNumber is the HSA-ID. It goes into the subject attribute
	// SERIALNUMBER (OID 2.5.4.5), where SITHS puts it and where the router
	// looks for the consumer identity. It is unrelated to the certificate's
	// serial number, which is always random.
	SerialNumber string
	Organization string
	DNSNames     []string
	IPAddresses  []net.IP
	// Server and Client set the extended key usages serverAuth and
	// clientAuth. If neither is set the certificate gets both, which is what
	// a platform certificate used in both directions needs.
	Server, Client bool
	// NotBefore defaults to one hour ago (clock skew), NotAfter to now plus
	// DefaultValidity. Both may lie in the past, to test expiry.
	NotBefore, NotAfter time.Time
	// KeyType defaults to ECDSAP256.
	KeyType KeyType
}

// Issued is a certificate and its private key.
type Issued struct {
	CertPEM []byte
	KeyPEM  []byte // PKCS#8
	Cert    *x509.Certificate
}

// NewCA creates a self-signed CA valid from one hour ago for validFor
// (DefaultCAValidity if zero).
func NewCA(commonName string, keyType KeyType, validFor time.Duration) (*CA, error) {
	if commonName == "" {
		return nil, errors.New("new CA: empty common name")
	}
	if validFor < 0 {
		return nil, fmt.Errorf("new CA: negative validity %s", validFor)
	}
	if validFor == 0 {
		validFor = DefaultCAValidity
	}
	key, err := generateKey(keyType)
	if err != nil {
		return nil, fmt.Errorf("new CA %q: %w", commonName, err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("new CA %q: %w", commonName, err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(validFor),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		// Leaves only: a development CA has no business signing
		// intermediates, and a stolen dev CA key is then less useful.
		MaxPathLen:     0,
		MaxPathLenZero: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("new CA %q: create certificate: %w", commonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("new CA %q: parse certificate: %w", commonName, err)
	}
	return &CA{Cert: cert, Key: key, CertPEM: encodeCert(der)}, nil
}

// Issue creates a certificate signed by ca and a fresh private key for it.
func (ca *CA) Issue(r Request) (*Issued, error) {
	name := r.CommonName
	if name == "" {
		name = r.SerialNumber
	}
	now := time.Now()
	notBefore := r.NotBefore
	if notBefore.IsZero() {
		notBefore = now.Add(-backdate)
	}
	notAfter := r.NotAfter
	if notAfter.IsZero() {
		notAfter = now.Add(DefaultValidity)
	}
	if !notAfter.After(notBefore) {
		return nil, fmt.Errorf("issue %q: NotAfter %s is not after NotBefore %s",
			name, notAfter.Format(time.RFC3339), notBefore.Format(time.RFC3339))
	}
	key, err := generateKey(r.KeyType)
	if err != nil {
		return nil, fmt.Errorf("issue %q: %w", name, err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("issue %q: %w", name, err)
	}

	subject := pkix.Name{CommonName: r.CommonName, SerialNumber: r.SerialNumber}
	if r.Organization != "" {
		subject.Organization = []string{r.Organization}
	}
	var ext []x509.ExtKeyUsage
	if r.Server || !r.Client {
		ext = append(ext, x509.ExtKeyUsageServerAuth)
	}
	if r.Client || !r.Server {
		ext = append(ext, x509.ExtKeyUsageClientAuth)
	}
	usage := x509.KeyUsageDigitalSignature
	if _, isRSA := key.(*rsa.PrivateKey); isRSA {
		// TLS 1.2 RSA key exchange encrypts the premaster secret to the
		// certificate key; strict peers (Java among them) check this bit.
		usage |= x509.KeyUsageKeyEncipherment
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subject,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              usage,
		ExtKeyUsage:           ext,
		BasicConstraintsValid: true,
		DNSNames:              r.DNSNames,
		IPAddresses:           r.IPAddresses,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, fmt.Errorf("issue %q: create certificate: %w", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("issue %q: parse certificate: %w", name, err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, fmt.Errorf("issue %q: %w", name, err)
	}
	return &Issued{CertPEM: encodeCert(der), KeyPEM: keyPEM, Cert: cert}, nil
}

// WriteDir writes ca.crt (0644) and ca.key (0600, PKCS#8 PEM) into dir,
// creating dir (0700) if needed and replacing existing files.
func (ca *CA) WriteDir(dir string) error {
	keyPEM, err := encodeKey(ca.Key)
	if err != nil {
		return fmt.Errorf("write CA to %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write CA: %w", err)
	}
	if err := writeFile(filepath.Join(dir, CACertFile), ca.CertPEM, 0o644); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, CAKeyFile), keyPEM, 0o600)
}

// LoadCA reads a CA written by WriteDir. It checks that the certificate is a
// CA and that the key belongs to it, so a mixed-up directory fails here
// rather than with an unverifiable certificate later.
func LoadCA(dir string) (*CA, error) {
	certPath := filepath.Join(dir, CACertFile)
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("read CA certificate: %w", err)
	}
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("read CA certificate %s: %w", certPath, err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("read CA certificate %s: not a CA certificate", certPath)
	}
	keyPath := filepath.Join(dir, CAKeyFile)
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("read CA key: %w", err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("read CA key %s: %w", keyPath, err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("read CA key %s: key does not match certificate %s", keyPath, certPath)
	}
	return &CA{Cert: cert, Key: key, CertPEM: certPEM}, nil
}

// WriteFiles writes is as name.crt (0644) and name.key (0600) into dir,
// creating dir (0700) if needed and replacing existing files.
func WriteFiles(dir, name string, is *Issued) error {
	if name == "" || strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return fmt.Errorf("write certificate files: invalid name %q", name)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write certificate files: %w", err)
	}
	if err := writeFile(filepath.Join(dir, name+".crt"), is.CertPEM, 0o644); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, name+".key"), is.KeyPEM, 0o600)
}

func generateKey(kt KeyType) (crypto.Signer, error) {
	switch kt {
	case "", ECDSAP256:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate %s key: %w", ECDSAP256, err)
		}
		return k, nil
	case RSA2048:
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("generate %s key: %w", RSA2048, err)
		}
		return k, nil
	default:
		return nil, fmt.Errorf("unknown key type %q (want %q or %q)", kt, ECDSAP256, RSA2048)
	}
}

// randomSerial returns a random positive 128-bit serial number. Random
// serials keep certificates from two independently generated dev CAs (or
// two runs of the same test) from colliding.
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("generate serial number: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// parseCertPEM returns the first certificate in data.
func parseCertPEM(data []byte) (*x509.Certificate, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no CERTIFICATE PEM block")
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		return x509.ParseCertificate(block.Bytes)
	}
}

// parseKeyPEM accepts PKCS#8 (what this package writes) and, because
// operators may bring keys made with openssl, PKCS#1 RSA and SEC 1 EC keys.
func parseKeyPEM(data []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no private key PEM block")
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported private key type %T", key)
		}
		return signer, nil
	}
}

// writeFile replaces path atomically with data and mode. Going through a
// temporary file matters for keys: os.WriteFile keeps the mode of an
// existing file, so a key written over a 0644 file would stay readable.
func writeFile(path string, data []byte, mode os.FileMode) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// Remove is a no-op after a successful rename.
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
