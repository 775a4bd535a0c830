package federation

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Binding a member's advertised HSA-ID to its certificate.
//
// A member's metadata, HSA-ID included, reaches the pool by gossip: it is
// what the member says of itself, relayed by others, and memberlist does
// not tell which TLS peer a state merge came from, nor check the address a
// member advertises. So the pool asks each other member itself. It opens a
// TLS stream to the member's gossip address with the pool's client
// configuration and sends one byte, bindingChallenge. The transport at the
// other end (tlsTransport.setup) answers with its member name and
//
//	HMAC-SHA256(gossip key, bindingLabel ‖ TLS exporter of this stream ‖ name)
//
// The exporter is unique to the TLS session, so only the endpoint that
// terminates this TLS stream, holding the private key of the certificate
// presented on it, can have made the proof, and only with the pool's key.
// When the name is the member's, the certificate's HSA-ID
// (Config.CertIdentity) is the member's: verified if it is the one
// advertised, a mismatch if not. A member that advertised an address where
// another server listens (another member, or any TLS server with a
// certificate of the pool's CAs) gets no valid proof for its name, and
// stays unchecked. memberlist never sees the challenge stream.
//
// A member is checked when it appears, comes back after a failure, or
// changes its address or advertised HSA-ID, and again every bindRecheck
// (bindRetryMax after a mismatch); a check without a valid answer is
// retried with a backoff. Members never checked go first.

// Binding is the state of a member's advertised HSA-ID against its
// certificate.
type Binding int

// Binding states.
const (
	// BindingUnchecked: not checked yet, no check got a valid answer, or
	// the pool does not check (Config.CertIdentity is nil).
	BindingUnchecked Binding = iota
	// BindingVerified: the member's certificate carries the HSA-ID it
	// advertises.
	BindingVerified
	// BindingMismatch: the member's certificate carries another HSA-ID
	// (Member.CertHSAID) or none.
	BindingMismatch
)

func (b Binding) String() string {
	switch b {
	case BindingVerified:
		return "verified"
	case BindingMismatch:
		return "mismatch"
	default:
		return "unchecked"
	}
}

// MarshalText makes a Binding read as its name in JSON (the admin API).
func (b Binding) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

const (
	// bindingChallenge opens a challenge stream. memberlist's streams begin
	// with a message type below 32 or its label header (244).
	bindingChallenge = 0xB1
	// bindingLabel separates the proof from any other use of the key.
	bindingLabel = "vaxel gossip member binding v1"
	// bindingExporter is the TLS exporter label (RFC 5705 / 8446 §7.5).
	bindingExporter = "EXPORTER-vaxel-gossip-binding-v1"

	// bindRecheck is how often a checked member is checked again: a
	// member's certificate may be replaced without a change of metadata.
	bindRecheck = 10 * time.Minute
	// bindRetryMin and bindRetryMax bound the backoff of a check without a
	// valid answer; a mismatch is checked again after bindRetryMax.
	bindRetryMin = 2 * time.Second
	bindRetryMax = time.Minute
	// bindTimeout bounds one check: connect, handshake, challenge, answer.
	bindTimeout = 5 * time.Second
	// bindParallel bounds the checks in flight at once.
	bindParallel = 4
	// bindTick is how often due checks are looked for; a member's
	// appearance or change is checked at once (Pool.note kicks the loop).
	bindTick = 5 * time.Second
)

// bindState is the last check of one member, for the address and
// advertised HSA-ID it was made against.
type bindState struct {
	addr, hsaID string // what was checked
	binding     Binding
	certID      string    // the certificate's HSA-ID
	next        time.Time // when to check again
	failures    int       // checks in a row without a valid answer
}

// binding returns m's binding as last checked (under p.mu).
func (p *Pool) binding(m *Member) (Binding, string) {
	b := p.bindings[m.Name]
	if b == nil || b.addr != m.Addr || b.hsaID != m.Meta.HSAID {
		return BindingUnchecked, ""
	}
	return b.binding, b.certID
}

// kickBindings asks the check loop to look for due checks now.
func (p *Pool) kickBindings() {
	select {
	case p.bindKick <- struct{}{}:
	default:
	}
}

// runBindings checks members until ctx ends, up to bindParallel at a
// time: a check of a member whose address is black-holed takes the whole
// bindTimeout, and must not hold up the first check of a new member.
// Members never checked come first (dueBindings).
func (p *Pool) runBindings(ctx context.Context) {
	t := time.NewTicker(bindTick)
	defer t.Stop()
	checks := newFlights()
	defer checks.wait(0)
	for {
		for _, m := range p.dueBindings(time.Now()) {
			checks.start(m.Name, true, bindParallel, func() { p.check(ctx, m) })
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-p.bindKick:
		case <-checks.ended: // a slot is free: look for due checks again
		}
	}
}

// dueBindings returns the alive members, this one excepted, whose check is
// due: never checked against their current address and HSA-ID (these
// first), or past their next check.
func (p *Pool) dueBindings(now time.Time) []Member {
	p.mu.Lock()
	defer p.mu.Unlock()
	var fresh, again []Member
	for name, m := range p.members {
		if name == p.cfg.Name || m.State != StateAlive || m.Meta.HSAID == "" || m.Addr == "" {
			continue
		}
		switch b := p.bindings[name]; {
		case b == nil || b.addr != m.Addr || b.hsaID != m.Meta.HSAID:
			fresh = append(fresh, *m)
		case !now.Before(b.next):
			again = append(again, *m)
		}
	}
	sort.Slice(fresh, func(i, j int) bool { return fresh[i].Name < fresh[j].Name })
	sort.Slice(again, func(i, j int) bool { return again[i].Name < again[j].Name })
	return append(fresh, again...)
}

// recheckSoon makes member name's next check due (under p.mu): it came
// back after a failure, perhaps restarted with another certificate.
func (p *Pool) recheckSoon(name string) {
	if b := p.bindings[name]; b != nil {
		b.next = time.Time{}
	}
}

// check checks m once and records the result.
func (p *Pool) check(ctx context.Context, m Member) {
	var certID string
	leaf, err := p.challenge(ctx, m)
	if err == nil {
		// A certificate without an HSA-ID binds to none: a mismatch.
		certID, _ = p.cfg.CertIdentity(leaf)
	}
	now := time.Now()
	p.mu.Lock()
	b := &bindState{addr: m.Addr, hsaID: m.Meta.HSAID}
	// prev is what Members reported for m until now.
	var prev bindState
	if old := p.bindings[m.Name]; old != nil && old.addr == b.addr && old.hsaID == b.hsaID {
		prev = *old
	}
	switch {
	case err != nil:
		// No valid answer: the member stays unchecked (or keeps what an
		// earlier check of the same address and HSA-ID found) and is
		// tried again.
		b.binding, b.certID, b.failures = prev.binding, prev.certID, prev.failures
		b.failures++
		b.next = now.Add(min(bindRetryMin<<min(b.failures-1, 5), bindRetryMax))
	case certID != "" && strings.EqualFold(certID, m.Meta.HSAID):
		b.binding, b.certID, b.next = BindingVerified, certID, now.Add(bindRecheck)
	default:
		b.binding, b.certID, b.next = BindingMismatch, certID, now.Add(bindRetryMax)
	}
	changed := prev.binding != b.binding || prev.certID != b.certID
	var ev Event
	mm, ok := p.members[m.Name]
	if ok {
		p.bindings[m.Name] = b
		ev = Event{Kind: EventUpdate, Member: *mm}
		ev.Member.Binding, ev.Member.CertHSAID = p.binding(mm)
	}
	p.mu.Unlock()
	switch {
	case err != nil:
		p.log.Debug("gossip member binding check failed", "member", m.Name, "addr", m.Addr, "err", err, "retry_in", time.Until(b.next).Round(time.Second))
	case changed && b.binding == BindingMismatch:
		p.log.Warn("gossip member advertises an HSA-ID its certificate does not carry; its HSA-ID is not trusted",
			"member", m.Name, "addr", m.Addr, "advertised_hsa_id", m.Meta.HSAID, "certificate_hsa_id", certID)
	case changed:
		p.log.Debug("gossip member binding checked", "member", m.Name, "hsa_id", certID, "binding", b.binding)
	}
	if changed && ok {
		// Consumers re-read Members on events: tell them the binding moved.
		p.emit(ev)
	}
}

// challenge opens a TLS stream to m's gossip address, sends the binding
// challenge and checks the answer: the proof of the pool's key for this
// stream and m's name. It returns the certificate m presented.
func (p *Pool) challenge(ctx context.Context, m Member) (*x509.Certificate, error) {
	p.mu.Lock()
	tr := p.tr
	p.mu.Unlock()
	if tr == nil {
		return nil, errors.New("gossip pool is not running")
	}
	ctx, cancel := context.WithTimeout(ctx, bindTimeout)
	defer cancel()
	tc, err := tr.dial(ctx, m.Addr, bindTimeout)
	if err != nil {
		return nil, err
	}
	defer tc.Close()
	// Shutdown (ctx) ends a read or write in progress.
	stop := context.AfterFunc(ctx, func() { tc.raw.Close() })
	defer stop()
	if d, ok := ctx.Deadline(); ok {
		_ = tc.SetDeadline(d)
	}
	if _, err := tc.Write([]byte{bindingChallenge}); err != nil {
		return nil, fmt.Errorf("binding challenge to %s: %w", m.Addr, err)
	}
	var n [1]byte
	if _, err := io.ReadFull(tc, n[:]); err != nil {
		return nil, fmt.Errorf("binding answer from %s: %w", m.Addr, err)
	}
	name := make([]byte, int(n[0]))
	mac := make([]byte, sha256.Size)
	if _, err := io.ReadFull(tc, name); err != nil {
		return nil, fmt.Errorf("binding answer from %s: %w", m.Addr, err)
	}
	if _, err := io.ReadFull(tc, mac); err != nil {
		return nil, fmt.Errorf("binding answer from %s: %w", m.Addr, err)
	}
	cs := tc.tls.ConnectionState()
	if string(name) != m.Name {
		return nil, fmt.Errorf("the member at %s answers as %q, not %q", m.Addr, name, m.Name)
	}
	valid := false
	for _, key := range p.cfg.Keys {
		want, err := bindingProof(cs, key, m.Name)
		if err != nil {
			return nil, err
		}
		valid = valid || hmac.Equal(mac, want)
	}
	if !valid {
		return nil, fmt.Errorf("the member at %s answers without a proof of the pool's key", m.Addr)
	}
	if len(cs.PeerCertificates) == 0 {
		return nil, fmt.Errorf("the member at %s presented no certificate", m.Addr)
	}
	return cs.PeerCertificates[0], nil
}

// answerBinding answers a binding challenge on tc: this member's name and
// its proof of key for tc.
func answerBinding(tc *tls.Conn, name string, key []byte) error {
	if len(name) > 255 {
		return fmt.Errorf("member name of %d bytes", len(name))
	}
	mac, err := bindingProof(tc.ConnectionState(), key, name)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	b.WriteByte(byte(len(name)))
	b.WriteString(name)
	b.Write(mac)
	_, err = tc.Write(b.Bytes())
	return err
}

// bindingProof is HMAC-SHA256(key, bindingLabel ‖ 0 ‖ exporter ‖ name) for
// the TLS session cs.
func bindingProof(cs tls.ConnectionState, key []byte, name string) ([]byte, error) {
	ekm, err := cs.ExportKeyingMaterial(bindingExporter, nil, 32)
	if err != nil {
		return nil, fmt.Errorf("TLS exporter: %w", err)
	}
	h := hmac.New(sha256.New, key)
	h.Write([]byte(bindingLabel))
	h.Write([]byte{0})
	h.Write(ekm)
	h.Write([]byte(name))
	return h.Sum(nil), nil
}
