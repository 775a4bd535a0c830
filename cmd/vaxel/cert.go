package main

import (
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/vaxel/vaxel/pki"
)

// cmdCert manages the development/test PKI. Production certificates come
// from SITHS; this tool exists so dev mode, tests and trials need nothing else.
func cmdCert(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("cert: want 'ca', 'issue' or 'gossip-key'")
	}
	switch args[0] {
	case "ca":
		fs := flag.NewFlagSet("cert ca", flag.ContinueOnError)
		dir := fs.String("dir", "pki", "directory for ca.crt and ca.key")
		name := fs.String("name", "vaxel test CA", "CA common name")
		rsa := fs.Bool("rsa", false, "RSA-2048 instead of ECDSA P-256")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		kt := pki.ECDSAP256
		if *rsa {
			kt = pki.RSA2048
		}
		ca, err := pki.NewCA(*name, kt, 0)
		if err != nil {
			return err
		}
		if err := ca.WriteDir(*dir); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s/ca.crt and %s/ca.key\n", *dir, *dir)
		return nil
	case "issue":
		fs := flag.NewFlagSet("cert issue", flag.ContinueOnError)
		dir := fs.String("dir", "pki", "directory holding ca.crt/ca.key; the certificate is written here")
		name := fs.String("name", "", "file name and common name (required)")
		hsa := fs.String("hsa-id", "", "HSA-ID for the subject SERIALNUMBER (the consumer/platform identity)")
		hosts := fs.String("hosts", "localhost,127.0.0.1", "comma-separated DNS names and IPs")
		days := fs.Int("days", 365, "validity in days")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *name == "" {
			return fmt.Errorf("cert issue: -name is required")
		}
		ca, err := pki.LoadCA(*dir)
		if err != nil {
			return err
		}
		req := pki.Request{CommonName: *name, SerialNumber: *hsa, NotAfter: time.Now().AddDate(0, 0, *days)}
		for _, h := range strings.Split(*hosts, ",") {
			if h = strings.TrimSpace(h); h == "" {
				continue
			}
			if ip := net.ParseIP(h); ip != nil {
				req.IPAddresses = append(req.IPAddresses, ip)
			} else {
				req.DNSNames = append(req.DNSNames, h)
			}
		}
		is, err := ca.Issue(req)
		if err != nil {
			return err
		}
		if err := pki.WriteFiles(*dir, *name, is); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s/%s.crt and %s/%s.key\n", *dir, *name, *dir, *name)
		return nil
	case "gossip-key":
		fs := flag.NewFlagSet("cert gossip-key", flag.ContinueOnError)
		out := fs.String("out", "", "write the key file here (mode 0600); empty: print the key")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		k, err := newGossipKey()
		if err != nil {
			return err
		}
		if *out == "" {
			fmt.Fprintln(stdout, k)
			return nil
		}
		if err := os.WriteFile(*out, []byte(k+"\n"), 0o600); err != nil {
			return fmt.Errorf("write gossip key: %w", err)
		}
		fmt.Fprintf(stdout, "wrote %s (give every node of the platform the same file)\n", *out)
		return nil
	}
	return fmt.Errorf("cert: unknown command %q; want 'ca', 'issue' or 'gossip-key'", args[0])
}

// newGossipKey returns a random 32-byte key (AES-256) in base64, the form
// gossip.key_file holds.
func newGossipKey() (string, error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return "", fmt.Errorf("gossip key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(k), nil
}
