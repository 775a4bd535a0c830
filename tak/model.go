package tak

import (
	"fmt"
	"time"
	_ "time/tzdata" // the container image is FROM scratch: carry the zone database in the binary
)

// Kind names an entity type of the catalog. The string forms are the keys
// used in the admin API and in change records; they never change.
type Kind uint8

// Entity kinds, in TAK's publication order (dependencies first).
const (
	KindRivProfile Kind = iota + 1
	KindContract
	KindComponent
	KindLogicalAddress
	KindCallAddress
	KindRoute
	KindAuthorization
	KindFilter
	KindCategorization
)

var kindNames = [...]string{
	KindRivProfile:     "rivprofile",
	KindContract:       "contract",
	KindComponent:      "component",
	KindLogicalAddress: "logicaladdress",
	KindCallAddress:    "calladdress",
	KindRoute:          "route",
	KindAuthorization:  "authorization",
	KindFilter:         "filter",
	KindCategorization: "categorization",
}

// Kinds lists every kind in dependency order.
var Kinds = []Kind{KindRivProfile, KindContract, KindComponent, KindLogicalAddress,
	KindCallAddress, KindRoute, KindAuthorization, KindFilter, KindCategorization}

func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// ParseKind accepts the names of String.
func ParseKind(s string) (Kind, bool) {
	for i, n := range kindNames {
		if n != "" && n == s {
			return Kind(i), true
		}
	}
	return 0, false
}

// RivProfile is a RIV TA profile (RIVTABP20, RIVTABP21, …).
type RivProfile struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// Contract is a service contract (tjänstekontrakt), keyed by its responder namespace.
type Contract struct {
	ID          int64  `json:"id"`
	Namespace   string `json:"namespace"`
	Description string `json:"description,omitempty"`
	Major       int64  `json:"major"`
	Minor       int64  `json:"minor"`
}

// LogicalAddress is a logical address (logisk adress), usually an HSA-ID; "*" is
// the default-routing wildcard.
type LogicalAddress struct {
	ID          int64  `json:"id"`
	HSAID       string `json:"hsaId"`
	Description string `json:"description,omitempty"`
}

// Component is a connected system (tjänstekomponent): a consumer, a producer or both.
type Component struct {
	ID          int64  `json:"id"`
	HSAID       string `json:"hsaId"`
	Description string `json:"description,omitempty"`
}

// CallAddress is the address a producer is called at (anropsadress): URL and RIV profile.
type CallAddress struct {
	ID          int64  `json:"id"`
	URL         string `json:"url"`
	ProfileID   int64  `json:"profileId"`
	ComponentID int64  `json:"componentId"`
}

// Route (vägval) sends calls for a contract to a logical address to a call address.
type Route struct {
	ID               int64 `json:"id"`
	LogicalAddressID int64 `json:"logicalAddressId"`
	ContractID       int64 `json:"contractId"`
	CallAddressID    int64 `json:"callAddressId"`
	From             Date  `json:"from"`
	To               Date  `json:"to"`
}

// Authorization (anropsbehörighet) lets a consumer call a contract at a logical address.
type Authorization struct {
	ID               int64  `json:"id"`
	ConsumerID       int64  `json:"consumerId"`
	ContractID       int64  `json:"contractId"`
	LogicalAddressID int64  `json:"logicalAddressId"`
	Agreement        string `json:"agreement"`
	From             Date   `json:"from"`
	To               Date   `json:"to"`
}

// Filter is a service-domain filter on an authorization (used by EI and aggregating services).
type Filter struct {
	ID              int64  `json:"id"`
	AuthorizationID int64  `json:"authorizationId"`
	ServiceDomain   string `json:"serviceDomain"`
}

// Categorization is a category of a filter.
type Categorization struct {
	ID       int64  `json:"id"`
	FilterID int64  `json:"filterId"`
	Category string `json:"category"`
}

// Date is a civil date (TAK validity is whole days), counted in days since
// 1970-01-01. A validity period [From, To] runs from 00:00 on From to the end
// of To in Zone, both ends inclusive, which is what the reference recommends
// (skltp-tak.md §13.3): an order that ends one route the day before its
// replacement starts leaves neither a gap nor an overlap.
type Date int32

// Zone is the zone validity dates are read in: the platform's legal time.
var Zone = mustZone("Europe/Stockholm")

func mustZone(name string) *time.Location {
	z, err := time.LoadLocation(name)
	if err != nil {
		panic(fmt.Sprintf("load zone %s: %v", name, err)) // tzdata is embedded; cannot happen
	}
	return z
}

// DateOf returns the civil date of t in Zone.
func DateOf(t time.Time) Date {
	y, m, d := t.In(Zone).Date()
	return civil(y, m, d)
}

func civil(y int, m time.Month, d int) Date {
	return Date(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

// ParseDate accepts "2006-01-02" and the timestamp forms TAK and its exports
// write ("2006-01-02T15:04:05-0700", RFC 3339, with or without millis or zone);
// a timestamp is reduced to its date in Zone.
func ParseDate(s string) (Date, error) {
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return civil(t.Date()), nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05Z0700", "2006-01-02T15:04:05.000Z0700",
		time.RFC3339Nano, "2006-01-02T15:04:05.000", "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, Zone); err == nil {
			return DateOf(t), nil
		}
	}
	return 0, fmt.Errorf("date %q: want YYYY-MM-DD or an ISO 8601 timestamp", s)
}

// Time is the start of the day in Zone.
func (d Date) Time() time.Time {
	y, m, dd := time.Unix(int64(d)*86400, 0).UTC().Date()
	return time.Date(y, m, dd, 0, 0, 0, 0, Zone)
}

// AddDays returns d moved by n days.
func (d Date) AddDays(n int) Date { return d + Date(n) }

// AddYears returns the same day n years later (TAK's default end is +100 years).
func (d Date) AddYears(n int) Date {
	y, m, dd := time.Unix(int64(d)*86400, 0).UTC().Date()
	return civil(y+n, m, dd)
}

func (d Date) String() string { return time.Unix(int64(d)*86400, 0).UTC().Format("2006-01-02") }

// MarshalText writes YYYY-MM-DD.
func (d Date) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText accepts what ParseDate accepts.
func (d *Date) UnmarshalText(b []byte) error {
	v, err := ParseDate(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// window is a validity period as unix seconds, [from, to).
type window struct{ from, to int64 }

func windowOf(from, to Date) window {
	return window{from.Time().Unix(), to.AddDays(1).Time().Unix()}
}

func (w window) valid(now int64) bool { return w.from <= now && now < w.to }

// overlaps is TAK's inclusive overlap rule on whole days.
func overlaps(aFrom, aTo, bFrom, bTo Date) bool { return !(aTo < bFrom) && !(aFrom > bTo) }
