package routertest

import (
	"strings"
	"testing"
	"time"

	"github.com/vaxel/vaxel/tak"
)

// Contracts the router tests use.
const (
	// NSPing is PingForConfiguration, the contract of the §3.6 example.
	NSPing = "urn:riv:itintegration:monitoring:PingForConfigurationResponder:1"
	// NSCert is GetCertificate, the contract of the reference's VP tests.
	NSCert = "urn:riv:insuranceprocess:healthreporting:GetCertificateResponder:1"
)

// Validity of everything a Catalog adds: valid today for a long time.
var (
	ValidFrom = tak.DateOf(time.Now()).AddYears(-10)
	ValidTo   = tak.DateOf(time.Now()).AddYears(100)
)

// Catalog builds a *tak.Catalog for a test. It is lenient, as an import
// from SKLTP is: it accepts an empty call address and two routes for one
// address and contract, which the VP010 and VP006 tests need. Methods
// chain; any error fails the test.
type Catalog struct {
	t        testing.TB
	tx       *tak.Txn
	timeouts []tak.TimeoutEntry
}

// NewCatalog starts an empty catalog.
func NewCatalog(t testing.TB) *Catalog {
	tx := tak.New().Begin()
	tx.Lenient = true
	return &Catalog{t: t, tx: tx}
}

// Route adds a route (vägval) for contract ns at logical address la to
// url with the RIV profile (e.g. "RIVTABP21"). The producer component is
// named after the address.
func (c *Catalog) Route(ns, la, profile, url string) *Catalog {
	c.t.Helper()
	if _, err := c.tx.AddRoute(ns, la, producerName(la, url), profile, url, ValidFrom, ValidTo); err != nil {
		c.t.Fatalf("route %s %s %s %q: %v", ns, la, profile, url, err)
	}
	return c
}

// Auth adds an authorization (anropsbehörighet) of consumer for ns at la.
func (c *Catalog) Auth(consumer, ns, la string) *Catalog {
	c.t.Helper()
	if _, err := c.tx.AddAuthorization(consumer, ns, la, "routertest", ValidFrom, ValidTo); err != nil {
		c.t.Fatalf("authorization %s %s %s: %v", consumer, ns, la, err)
	}
	return c
}

// RouteAuth adds a route and authorizes each consumer for it.
func (c *Catalog) RouteAuth(ns, la, profile, url string, consumers ...string) *Catalog {
	c.t.Helper()
	c.Route(ns, la, profile, url)
	for _, s := range consumers {
		c.Auth(s, ns, la)
	}
	return c
}

// Timeout sets the producer timeout of contract ns (tak.DefaultTimeoutsName
// for all others).
func (c *Catalog) Timeout(ns string, d time.Duration) *Catalog {
	c.timeouts = append(c.timeouts, tak.TimeoutEntry{Contract: ns, ProducerTimeout: d.Milliseconds()})
	return c
}

// Build commits the catalog.
func (c *Catalog) Build() *tak.Catalog {
	c.t.Helper()
	if len(c.timeouts) > 0 {
		to, err := tak.NewTimeouts(c.timeouts)
		if err != nil {
			c.t.Fatal(err)
		}
		c.tx.SetTimeouts(to)
	}
	return c.tx.Commit(tak.ChangeMeta{Actor: "routertest", Source: "import"})
}

// producerName derives a component HSA-ID from the address and URL: one
// component per route keeps two routes of one address (VP006) apart.
func producerName(la, url string) string {
	n := "P-" + la + "-" + url
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, n)
}
