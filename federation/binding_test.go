package federation

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vaxel/vaxel/pki"
)

// certSerial is the test pools' CertIdentity: the subject's SERIALNUMBER,
// where vaxel's certificates carry the HSA-ID.
func certSerial(c *x509.Certificate) (string, error) {
	if c.Subject.SerialNumber == "" {
		return "", errors.New("no HSA-ID")
	}
	return c.Subject.SerialNumber, nil
}

// withCert gives c a certificate whose SERIALNUMBER is hsaID ("": none).
func withCert(t *testing.T, p *testPKI, c Config, hsaID string) Config {
	t.Helper()
	is, err := p.ca.Issue(pki.Request{CommonName: c.Name, SerialNumber: hsaID, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(is.CertPEM, is.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	c.ServerTLS = c.ServerTLS.Clone()
	c.ClientTLS = c.ClientTLS.Clone()
	c.ServerTLS.Certificates = []tls.Certificate{cert}
	c.ClientTLS.Certificates = []tls.Certificate{cert}
	return c
}

// checkingPool starts pool "a", which checks its members' bindings.
func checkingPool(t *testing.T, pk *testPKI) *Pool {
	t.Helper()
	c := testConfig(t, pk, "a")
	c.CertIdentity = certSerial
	a, _ := startPool(t, c)
	return a
}

// honestConfig is member "honest", joining a, whose certificate carries
// the HSA-ID it advertises.
func honestConfig(t *testing.T, pk *testPKI, a *Pool) Config {
	t.Helper()
	c := withCert(t, pk, testConfig(t, pk, "honest", a.Addr()), "SE-HONEST")
	c.Meta.HSAID = "SE-HONEST"
	return c
}

func member(p *Pool, name string) (Member, bool) {
	for _, m := range p.Members() {
		if m.Name == name {
			return m, true
		}
	}
	return Member{}, false
}

// A pool with CertIdentity checks each member's advertised HSA-ID against
// the certificate on its gossip address: a member whose certificate
// carries the HSA-ID it advertises is verified; one advertising another
// platform's, or with a certificate carrying none, is a mismatch; a member
// that changes its advertised HSA-ID is checked again at once. A pool
// without CertIdentity checks nothing.
func TestPoolBindsAdvertisedHSAIDToCertificate(t *testing.T) {
	pk := newTestPKI(t)
	a := checkingPool(t, pk)

	honest := honestConfig(t, pk, a)
	liar := withCert(t, pk, testConfig(t, pk, "liar", a.Addr()), "SE-LIAR")
	liar.Meta.HSAID = "SE-HONEST"
	none := withCert(t, pk, testConfig(t, pk, "none", a.Addr()), "")
	none.Meta.HSAID = "SE-NONE"
	h, _ := startPool(t, honest)
	startPool(t, liar)
	startPool(t, none)

	want := map[string]struct {
		b      Binding
		certID string
	}{
		"honest": {BindingVerified, "SE-HONEST"},
		"liar":   {BindingMismatch, "SE-LIAR"},
		"none":   {BindingMismatch, ""},
	}
	waitFor(t, "a's checks of honest, liar and none", 10*time.Second, func() bool {
		for name, w := range want {
			if m, ok := member(a, name); !ok || m.Binding != w.b || m.CertHSAID != w.certID {
				return false
			}
		}
		return true
	}, a)

	// The change reaches a's event consumers.
	seen := false
	for !seen {
		select {
		case ev := <-a.Events():
			seen = ev.Member.Name == "liar" && ev.Member.Binding == BindingMismatch
		case <-time.After(5 * time.Second):
			t.Fatal("no event carried liar's mismatch")
		}
	}

	// honest now claims another HSA-ID: checked again, no longer verified.
	m := honest.Meta
	m.HSAID = "SE-SOMEONE-ELSE"
	if err := h.SetMeta(m); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "honest's new HSA-ID checked", 10*time.Second, func() bool {
		m, ok := member(a, "honest")
		return ok && m.Meta.HSAID == "SE-SOMEONE-ELSE" && m.Binding == BindingMismatch && m.CertHSAID == "SE-HONEST"
	}, a)

	// honest itself has no CertIdentity: it checks nobody.
	time.Sleep(200 * time.Millisecond)
	for _, m := range h.Members() {
		if m.Binding != BindingUnchecked || m.CertHSAID != "" {
			t.Errorf("a pool without CertIdentity reports %s as %s (%q)", m.Name, m.Binding, m.CertHSAID)
		}
	}
	if got, _ := BindingMismatch.MarshalText(); string(got) != "mismatch" {
		t.Errorf("BindingMismatch marshals as %q", got)
	}
}

// A check that cannot connect leaves the member unchecked and is retried
// with a backoff; what an earlier check of the same address and HSA-ID
// found is kept meanwhile.
func TestPoolBindingUnreachableMember(t *testing.T) {
	pk := newTestPKI(t)
	a := checkingPool(t, pk)

	// A member known from gossip whose gossip address does not answer.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	a.mu.Lock()
	a.members["ghost"] = &Member{Name: "ghost", Addr: dead, Meta: Meta{Platform: "G", Node: "ghost", HSAID: "SE-GHOST"}, State: StateAlive, Since: time.Now()}
	a.mu.Unlock()
	a.kickBindings()
	var b bindState
	waitFor(t, "a tried ghost", 10*time.Second, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		if s := a.bindings["ghost"]; s != nil {
			b = *s
			return true
		}
		return false
	})
	if b.binding != BindingUnchecked || b.failures != 1 {
		t.Fatalf("after a failed check: %+v, want unchecked with 1 failure", b)
	}
	if d := time.Until(b.next); d < bindRetryMin/2 || d > bindRetryMin {
		t.Errorf("next check in %v, want about %v", d, bindRetryMin)
	}
	if m, _ := member(a, "ghost"); m.Binding != BindingUnchecked {
		t.Errorf("ghost reads as %s", m.Binding)
	}

	// A verified member whose address stops answering stays verified
	// until a check succeeds with another answer.
	a.mu.Lock()
	a.bindings["ghost"] = &bindState{addr: dead, hsaID: "SE-GHOST", binding: BindingVerified, certID: "SE-GHOST", next: time.Now().Add(time.Hour)}
	a.mu.Unlock()
	a.check(t.Context(), Member{Name: "ghost", Addr: dead, Meta: Meta{HSAID: "SE-GHOST"}})
	if m, _ := member(a, "ghost"); m.Binding != BindingVerified {
		t.Errorf("a verified member that did not answer a recheck reads as %s", m.Binding)
	}
	a.mu.Lock()
	f := a.bindings["ghost"].failures
	a.mu.Unlock()
	if f != 1 {
		t.Errorf("failures = %d, want 1", f)
	}
}

// A member that advertises another member's gossip address gets no valid
// answer for its own name there (the other member answers with its own),
// and stays unchecked, whatever the certificate at that address carries.
// A member whose name answers with a proof under another key is not
// verified either.
func TestPoolBindingNeedsTheMembersOwnProof(t *testing.T) {
	pk := newTestPKI(t)
	a := checkingPool(t, pk)
	honest := honestConfig(t, pk, a)
	h, _ := startPool(t, honest)
	waitFor(t, "honest verified", 10*time.Second, func() bool {
		m, ok := member(a, "honest")
		return ok && m.Binding == BindingVerified
	}, a)

	spoof := Member{Name: "spoof", Addr: h.Addr(), Meta: Meta{HSAID: "SE-HONEST"}, State: StateAlive}
	if _, err := a.challenge(t.Context(), spoof); err == nil || !strings.Contains(err.Error(), `answers as "honest"`) {
		t.Errorf("challenge of spoof at honest's address: %v, want honest's answer refused", err)
	}
	a.mu.Lock()
	a.members["spoof"] = &spoof
	a.mu.Unlock()
	a.check(t.Context(), spoof)
	if m, _ := member(a, "spoof"); m.Binding != BindingUnchecked {
		t.Errorf("spoof at honest's address reads as %s", m.Binding)
	}

	// The right name, but a proof under a key a does not hold.
	other := withCert(t, pk, testConfig(t, pk, "keyless"), "SE-K")
	other.Keys = [][]byte{bytes.Repeat([]byte{9}, 32)}
	k, _ := startPool(t, other)
	if _, err := a.challenge(t.Context(), Member{Name: "keyless", Addr: k.Addr()}); err == nil || !strings.Contains(err.Error(), "without a proof") {
		t.Errorf("challenge of a member with another key: %v, want its proof refused", err)
	}
}

// Members whose gossip addresses accept and never answer each hold a
// check for bindTimeout; a member that appears after them is still
// checked at once.
func TestPoolBindingNotHeldBySilentMembers(t *testing.T) {
	pk := newTestPKI(t)
	a := checkingPool(t, pk)
	a.mu.Lock()
	for i := range bindParallel - 1 {
		// Named to sort before "honest": never-checked members are
		// checked in name order.
		name := fmt.Sprintf("aa-silent-%d", i)
		addr, _ := silentServer(t, pk, true)
		a.members[name] = &Member{Name: name, Addr: addr, Meta: Meta{Platform: "S", Node: name, HSAID: "SE-" + name}, State: StateAlive, Since: time.Now()}
	}
	a.mu.Unlock()
	a.kickBindings()
	time.Sleep(200 * time.Millisecond) // the silent members' checks start
	startPool(t, honestConfig(t, pk, a))
	waitFor(t, "honest verified while the silent members' checks hang", bindTimeout/2, func() bool {
		m, _ := member(a, "honest")
		return m.Binding == BindingVerified
	}, a)
}
