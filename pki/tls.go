package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// ServerTLSConfig returns a TLS server configuration presenting the key pair
// in certFile/keyFile, with TLS 1.2 as the minimum version.
//
// Client certificates are verified against the CA certificates in
// clientCAFiles. With requireClientCert the handshake fails unless the
// client presents a certificate that verifies (RequireAndVerifyClientCert,
// like the reference's needClientAuth=true); without it a certificate is
// verified if given (VerifyClientCertIfGiven) and not requested at all when
// clientCAFiles is empty. Requiring client certificates without any client
// CA is an error, since no client could ever connect.
//
// Each call returns a new *tls.Config that the caller owns.
func ServerTLSConfig(certFile, keyFile string, clientCAFiles []string, requireClientCert bool) (*tls.Config, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("server TLS: both certificate and key file must be set")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("server TLS: load key pair %s, %s: %w", certFile, keyFile, err)
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.NoClientCert,
	}
	switch {
	case len(clientCAFiles) > 0:
		pool, err := CertPool(clientCAFiles...)
		if err != nil {
			return nil, fmt.Errorf("server TLS: client CAs: %w", err)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		if requireClientCert {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
	case requireClientCert:
		return nil, errors.New("server TLS: client certificates required but no client CA file given")
	}
	return cfg, nil
}

// ClientTLSConfig returns a TLS client configuration with TLS 1.2 as the
// minimum version. certFile and keyFile are the client certificate; leave
// both empty to connect without one. Server certificates are verified
// against rootCAFiles, or against the system roots if it is empty.
//
// Each call returns a new *tls.Config that the caller owns; set ServerName
// on it when dialling by an address that is not in the server certificate.
func ClientTLSConfig(certFile, keyFile string, rootCAFiles []string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case certFile != "" && keyFile != "":
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("client TLS: load key pair %s, %s: %w", certFile, keyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	case certFile != "" || keyFile != "":
		return nil, errors.New("client TLS: either both certificate and key file must be set, or neither")
	}
	if len(rootCAFiles) > 0 {
		pool, err := CertPool(rootCAFiles...)
		if err != nil {
			return nil, fmt.Errorf("client TLS: root CAs: %w", err)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// CertPool returns a pool holding every certificate in the PEM files. A file
// that holds no certificate is an error: silently trusting nothing (or, for
// a client, falling back to nothing) would surface much later as a
// confusing handshake failure.
func CertPool(files ...string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		if !pool.AppendCertsFromPEM(data) {
			return nil, fmt.Errorf("read CA file %s: no PEM certificate found", f)
		}
	}
	return pool, nil
}
