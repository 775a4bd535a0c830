package tak

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Orders (beställningar) are TAK's bulk JSON format for creating, extending and
// ending routes and authorizations (skltp-tak.md §7). ApplyOrder reproduces
// tak-web's BestallningService: the same phases in the same order, the same
// Swedish error texts and the same report, so operators and the order tool
// (Beställningsstödet) see what they saw from TAK.
//
// TAK builds an order on detached entity copies and saves them only after the
// whole order validated. Here the order is applied to a Txn as it goes and the
// caller drops the Txn when there are errors, which gives the same
// all-or-nothing result: the base catalog is immutable.
//
// TAK also refuses orders that refer to objects created, but not yet
// published, by another user ("… är opublicerad och skapad av U."). Our
// catalog has no unpublished state: every committed change is live at once
// and owned by nobody, so those checks have nothing to look at and are left
// out.

// Order is a parsed order. Field names follow the JSON.
type Order struct {
	Plattform            string       `json:"plattform"`
	FormatVersion        float32      `json:"formatVersion"`
	Version              int          `json:"version"`
	BestallningsTidpunkt string       `json:"bestallningsTidpunkt"` // "yyyy-MM-dd'T'HH:mm:ssZ"
	GenomforandeTidpunkt string       `json:"genomforandeTidpunkt"` // its date in Zone is the effective date
	Utforare             *string      `json:"utforare"`             // nil prints as "null" in the report, as TAK does
	Kommentar            *string      `json:"kommentar"`
	Inkludera            OrderSection `json:"inkludera"` // create or extend
	Exkludera            OrderSection `json:"exkludera"` // end or delete
}

// OrderSection is the inkludera or exkludera part of an order. A missing or
// null list is empty.
type OrderSection struct {
	Tjanstekontrakt    []OrderContract       `json:"tjanstekontrakt"`
	Logiskadresser     []OrderLogicalAddress `json:"logiskadresser"`
	Tjanstekomponenter []OrderComponent      `json:"tjanstekomponenter"`
	Anropsbehorigheter []OrderAuthorization  `json:"anropsbehorigheter"`
	Vagval             []OrderRoute          `json:"vagval"`
}

// OrderContract is a service contract in an order.
type OrderContract struct {
	Namnrymd     string `json:"namnrymd"`
	Beskrivning  string `json:"beskrivning"`
	MajorVersion int64  `json:"majorVersion"`
}

// OrderLogicalAddress is a logical address in an order.
type OrderLogicalAddress struct {
	HsaID       string `json:"hsaId"`
	Beskrivning string `json:"beskrivning"`
}

// OrderComponent is a service component in an order.
type OrderComponent struct {
	HsaID       string `json:"hsaId"`
	Beskrivning string `json:"beskrivning"`
}

// OrderAuthorization is an authorization (anropsbehörighet) in an order. The
// fields are pointers because TAK tells a missing value ("saknas information")
// from an empty one (which fails later, as "finns inte").
type OrderAuthorization struct {
	LogiskAdress     *string `json:"logiskAdress"`
	Tjanstekontrakt  *string `json:"tjanstekontrakt"`
	Tjanstekonsument *string `json:"tjanstekonsument"`
}

// OrderRoute is a route (vägval) in an order. TAK accepts both "logiskAdress"
// and "logiskadress"; encoding/json matches keys case-insensitively, so the
// one tag takes both.
type OrderRoute struct {
	Adress           *string `json:"adress"`
	LogiskAdress     *string `json:"logiskAdress"`
	Tjanstekontrakt  *string `json:"tjanstekontrakt"`
	Rivtaprofil      *string `json:"rivtaprofil"`
	Tjanstekomponent *string `json:"tjanstekomponent"`
}

// Errors of ParseOrder, with TAK's texts (skltp-tak.md §7.2).
var (
	ErrOrderNoJSON   = errors.New("Beställning does not contain JSON object")
	ErrOrderPlatform = errors.New("Bestallning is missing mandatory field: plattform")
)

// ParseOrder reads an order. Text outside the outermost {…} is dropped (the
// order tool wraps orders in text), unknown properties are refused as TAK's
// Jackson mapper does, and string values are cleaned: trimmed, newlines to
// spaces, carriage returns removed.
func ParseOrder(b []byte) (*Order, error) {
	o, _, err := ParseOrderExact(b)
	return o, err
}

// ParseOrderExact is ParseOrder that also reports whether b is exactly one
// JSON object, with no text around it and nothing after it. If so, b is
// valid JSON, since ParseOrder read all of it: a caller that took b out of a
// larger JSON document unchecked (a log entry) need not scan it separately.
// exact is false whenever the JSON could not be decoded.
func ParseOrderExact(b []byte) (o *Order, exact bool, err error) {
	i, j := bytes.IndexByte(b, '{'), bytes.LastIndexByte(b, '}')
	if i < 0 || j < i {
		return nil, false, ErrOrderNoJSON
	}
	dec := json.NewDecoder(bytes.NewReader(b[i : j+1]))
	dec.DisallowUnknownFields()
	o = new(Order)
	if err := dec.Decode(o); err != nil {
		return nil, false, fmt.Errorf("beställning: %w", err)
	}
	exact = i == 0 && j == len(b)-1 && dec.InputOffset() == int64(len(b))
	o, err = o.validate()
	return o, exact, err
}

// validate cleans a decoded order and checks its mandatory fields.
func (o *Order) validate() (*Order, error) {
	o.clean()
	if o.Plattform == "" {
		return nil, ErrOrderPlatform
	}
	if o.GenomforandeTidpunkt == "" {
		// TAK dies on a null pointer here; the effective date is mandatory.
		return nil, errors.New("Bestallning is missing mandatory field: genomforandeTidpunkt")
	}
	if _, err := ParseDate(o.GenomforandeTidpunkt); err != nil {
		return nil, fmt.Errorf("beställning genomforandeTidpunkt: %w", err)
	}
	if o.BestallningsTidpunkt != "" {
		if _, err := ParseDate(o.BestallningsTidpunkt); err != nil {
			return nil, fmt.Errorf("beställning bestallningsTidpunkt: %w", err)
		}
	}
	return o, nil
}

// cleanOrderText is TAK's JsonUtils.cleanupString.
func cleanOrderText(s string) string {
	s = strings.ReplaceAll(s, "\r", "")
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.TrimSpace(s)
}

func cleanOrderPtr(p *string) {
	if p != nil {
		*p = cleanOrderText(*p)
	}
}

func (o *Order) clean() {
	o.Plattform = cleanOrderText(o.Plattform)
	o.BestallningsTidpunkt = cleanOrderText(o.BestallningsTidpunkt)
	o.GenomforandeTidpunkt = cleanOrderText(o.GenomforandeTidpunkt)
	cleanOrderPtr(o.Utforare)
	cleanOrderPtr(o.Kommentar)
	for _, s := range []*OrderSection{&o.Inkludera, &o.Exkludera} {
		for i := range s.Tjanstekontrakt {
			v := &s.Tjanstekontrakt[i]
			v.Namnrymd, v.Beskrivning = cleanOrderText(v.Namnrymd), cleanOrderText(v.Beskrivning)
		}
		for i := range s.Logiskadresser {
			v := &s.Logiskadresser[i]
			v.HsaID, v.Beskrivning = cleanOrderText(v.HsaID), cleanOrderText(v.Beskrivning)
		}
		for i := range s.Tjanstekomponenter {
			v := &s.Tjanstekomponenter[i]
			v.HsaID, v.Beskrivning = cleanOrderText(v.HsaID), cleanOrderText(v.Beskrivning)
		}
		for i := range s.Anropsbehorigheter {
			v := &s.Anropsbehorigheter[i]
			cleanOrderPtr(v.LogiskAdress)
			cleanOrderPtr(v.Tjanstekontrakt)
			cleanOrderPtr(v.Tjanstekonsument)
		}
		for i := range s.Vagval {
			v := &s.Vagval[i]
			cleanOrderPtr(v.Adress)
			cleanOrderPtr(v.LogiskAdress)
			cleanOrderPtr(v.Tjanstekontrakt)
			cleanOrderPtr(v.Rivtaprofil)
			cleanOrderPtr(v.Tjanstekomponent)
		}
	}
}

// OrderStatus is what an order did to one entity, in TAK's words.
type OrderStatus string

// Report statuses (BestallningsRapport.Status).
const (
	OrderCreated     OrderStatus = "Nyskapad"
	OrderUpdated     OrderStatus = "Uppdaterad"
	OrderDeleted     OrderStatus = "Borttagen"
	OrderDeactivated OrderStatus = "Deaktiverad" // its end date is now before the order's effective date
	OrderNotFound    OrderStatus = "Existerar ej"
)

// ReportField is one metadata line of a report.
type ReportField struct {
	Name, Value string
}

// ReportLine is one entity line of a report.
type ReportLine struct {
	Status OrderStatus
	Value  string
}

// ReportSection is one heading of a report ("Vägval", …) and its lines.
type ReportSection struct {
	Name  string
	Lines []ReportLine
}

// OrderReport is what an applied order did, as TAK reports it (§7.4): seven
// metadata fields, then the Inkludera and Exkludera sections, each holding
// only the non-empty headings in the order Logiska adresser, Tjänstekomponenter,
// Tjänstekontrakt, Anropsbehörigheter, Vägval.
type OrderReport struct {
	Metadata  []ReportField
	Inkludera []ReportSection
	Exkludera []ReportSection
}

// Report section headings, in report order.
const (
	SectionLogicalAddresses = "Logiska adresser"
	SectionComponents       = "Tjänstekomponenter"
	SectionContracts        = "Tjänstekontrakt"
	SectionAuthorizations   = "Anropsbehörigheter"
	SectionRoutes           = "Vägval"
)

// String renders the report exactly as TAK's BestallningsRapport.toString.
// An order of 100,000 entries has a report of some 20 MB: it is sized first
// and written in one allocation.
func (r *OrderReport) String() string {
	parts := [...]struct {
		name     string
		sections []ReportSection
	}{{"Inkludera", r.Inkludera}, {"Exkludera", r.Exkludera}}
	n := 0
	for _, f := range r.Metadata {
		n += len(f.Name) + len(": ") + len(f.Value) + len("\n")
	}
	for _, part := range parts {
		n += len("\n") + len(part.name) + len(":\n")
		for _, s := range part.sections {
			n += len(s.Name) + len(":\n")
			for _, l := range s.Lines {
				n += len(l.Status) + len(": ") + len(l.Value) + len("\n")
			}
		}
	}
	var b strings.Builder
	b.Grow(n)
	for _, f := range r.Metadata {
		b.WriteString(f.Name)
		b.WriteString(": ")
		b.WriteString(f.Value)
		b.WriteByte('\n')
	}
	for _, part := range parts {
		b.WriteByte('\n')
		b.WriteString(part.name)
		b.WriteString(":\n")
		for _, s := range part.sections {
			b.WriteString(s.Name)
			b.WriteString(":\n")
			for _, l := range s.Lines {
				b.WriteString(string(l.Status))
				b.WriteString(": ")
				b.WriteString(l.Value)
				b.WriteByte('\n')
			}
		}
	}
	return b.String()
}

// Section returns the lines under a heading of Inkludera (inkludera true) or
// Exkludera, or nil when the report has no such heading.
func (r *OrderReport) Section(inkludera bool, name string) []ReportLine {
	ss := r.Exkludera
	if inkludera {
		ss = r.Inkludera
	}
	for _, s := range ss {
		if s.Name == name {
			return s.Lines
		}
	}
	return nil
}

// The content rules of TAK's EntityValidator, as messages.properties words them.
var (
	orderReContract = regexp.MustCompile(`^[0-9a-zA-Z_.:\-]+$`)
	orderReAddress  = regexp.MustCompile(`^[0-9a-zA-Z_.:/\-?&]*$`)
)

// ApplyOrder validates the order and applies it inside t. platform is this
// platform's name (tak.platform); an order for another platform is refused
// before anything else is looked at. The effective date is the date of
// genomforandeTidpunkt in Zone, and new routes and authorizations run to that
// date plus 100 years; the clock is never read.
//
// Validation errors are TAK's Swedish texts, deduplicated, in the order found;
// when there are any the report is nil and the caller must drop t, since part
// of the order may already be applied to it. err is for internal failures.
func ApplyOrder(t *Txn, o *Order, platform string) (*OrderReport, []string, error) {
	if t == nil || o == nil {
		return nil, nil, errors.New("apply order: nil transaction or order")
	}
	from, err := ParseDate(o.GenomforandeTidpunkt)
	if err != nil {
		return nil, nil, fmt.Errorf("apply order genomforandeTidpunkt: %w", err)
	}
	r := &orderRun{t: t, c: t.Catalog(), o: o, platform: platform, from: from, to: addYearsClamped(from, 100), seen: map[string]bool{}}
	// Each entry of an order is about one entity change: size the change
	// record once rather than growing it entry by entry.
	n := 0
	for _, s := range []*OrderSection{&o.Inkludera, &o.Exkludera} {
		n += len(s.Tjanstekontrakt) + len(s.Logiskadresser) + len(s.Tjanstekomponenter) + len(s.Anropsbehorigheter) + len(s.Vagval)
	}
	t.reserve(n)
	// Phases as BestallningService#buildBestallningsData: each runs only when
	// the ones before found nothing wrong.
	phases := []func() error{r.checkPlatform, r.preparePlain, r.prepareRelations, r.prepareComplex}
	for _, phase := range phases {
		if err := phase(); err != nil {
			return nil, nil, err
		}
		if len(r.errs) > 0 {
			return nil, r.errs, nil
		}
	}
	if err := r.deleteOrphanAddresses(); err != nil {
		return nil, nil, err
	}
	return r.report(), nil, nil
}

// orderRun is the state of one ApplyOrder.
type orderRun struct {
	t        *Txn
	c        *Catalog // t's live view
	o        *Order
	platform string
	from, to Date
	errs     []string

	fromText, toText string // from and to as text, once needed (dateText)
	seen             map[string]bool

	// report lines per heading, filled as entities are touched: an order
	// touches each route and authorization at most once (the duplicate check
	// sees to that), so a line is final when it is written.
	in, ex map[string][]ReportLine

	authRel  []authRelations  // per inkludera authorization, from prepareRelations
	routeRel []routeRelations // per inkludera route
	orphans  []int64          // call addresses whose last route may be gone
}

type authRelations struct{ la, consumer, contract int64 }

type routeRelations struct{ la, contract, addr int64 }

func (r *orderRun) fail(msg string) {
	if !r.seen[msg] {
		r.seen[msg] = true
		r.errs = append(r.errs, msg)
	}
}

func (r *orderRun) line(inkludera bool, section string, st OrderStatus, v string) {
	m := &r.ex
	if inkludera {
		m = &r.in
	}
	if *m == nil {
		*m = map[string][]ReportLine{}
	}
	(*m)[section] = append((*m)[section], ReportLine{st, v})
}

// txnError turns a refusal of the Txn into a validation error: it depends on
// the catalog's data (say, an overlap SKLTP data already held), not on a bug.
func (r *orderRun) txnError(prefix string, err error) error {
	var ve *ValidationError
	if errors.As(err, &ve) {
		r.fail(prefix + ": " + err.Error())
		return nil
	}
	return err
}

// Phase 1.
func (r *orderRun) checkPlatform() error {
	// TAK skips the check when tak.platform is unset; its default
	// ("SKLTP-DEFAULT") makes that never happen, so here it always applies.
	if r.o.Plattform != r.platform {
		r.fail(fmt.Sprintf("Beställningen avser plattform %s, men den här instansen av tak-web hanterar %s.", r.o.Plattform, r.platform))
	}
	return nil
}

// Phase 2: duplicates, exkludera, inkludera plain objects (preparePlainObjects).
func (r *orderRun) preparePlain() error {
	r.checkDuplicates()
	for _, v := range r.o.Exkludera.Vagval {
		if err := r.excludeRoute(v); err != nil {
			return err
		}
	}
	for _, v := range r.o.Exkludera.Anropsbehorigheter {
		if err := r.excludeAuthorization(v); err != nil {
			return err
		}
	}
	// Plain objects under exkludera are ignored: TAK stopped deleting them by
	// order (NTP-2291) and leaves them out of the report.
	for _, v := range r.o.Inkludera.Logiskadresser {
		if err := r.includeLogicalAddress(v); err != nil {
			return err
		}
	}
	for _, v := range r.o.Inkludera.Tjanstekomponenter {
		if err := r.includeComponent(v); err != nil {
			return err
		}
	}
	for _, v := range r.o.Inkludera.Tjanstekontrakt {
		if err := r.includeContract(v); err != nil {
			return err
		}
	}
	return nil
}

func orderStr(p *string) string {
	if p == nil {
		return "null" // Java's String.format of a null
	}
	return *p
}

// checkDuplicates is BestallningsDataValidator#validateDataDubletter: the same
// key twice across inkludera and exkludera of one kind, case-insensitively.
func (r *orderRun) checkDuplicates() {
	in, ex := &r.o.Inkludera, &r.o.Exkludera
	var keys [][]string
	for _, s := range []*OrderSection{in, ex} {
		for _, v := range s.Anropsbehorigheter {
			keys = append(keys, []string{orderStr(v.LogiskAdress), orderStr(v.Tjanstekonsument), orderStr(v.Tjanstekontrakt)})
		}
	}
	r.duplicates(keys, "Anropsbehörigheten %s får inte finnas på flera ställen i beställningen.")
	keys = keys[:0]
	for _, s := range []*OrderSection{in, ex} {
		for _, v := range s.Vagval {
			// A route's identity in an order is (logical address, contract) only.
			keys = append(keys, []string{orderStr(v.LogiskAdress), orderStr(v.Tjanstekontrakt)})
		}
	}
	r.duplicates(keys, "Vägvalet %s får inte finnas på flera ställen i beställningen.")
	keys = keys[:0]
	for _, s := range []*OrderSection{in, ex} {
		for _, v := range s.Tjanstekontrakt {
			keys = append(keys, []string{v.Namnrymd})
		}
	}
	r.duplicates(keys, "Tjänstekontraktet %s får inte finnas på flera ställen i beställningen.")
	keys = keys[:0]
	for _, s := range []*OrderSection{in, ex} {
		for _, v := range s.Tjanstekomponenter {
			keys = append(keys, []string{v.HsaID})
		}
	}
	r.duplicates(keys, "Tjänstekomponenten %s får inte finnas på flera ställen i beställningen.")
	keys = keys[:0]
	for _, s := range []*OrderSection{in, ex} {
		for _, v := range s.Logiskadresser {
			keys = append(keys, []string{v.HsaID})
		}
	}
	r.duplicates(keys, "Den logiska adressen %s får inte finnas på flera ställen i beställningen.")
}

// duplicates reports each key that occurs again later in the order, once per
// occurrence that has a later twin (TAK's nested loop with break), compared
// case-insensitively. It runs in linear time: an order of 100,000 entries
// would take minutes with the pairwise comparison.
func (r *orderRun) duplicates(keys [][]string, msg string) {
	later := make(map[string]struct{}, len(keys))
	dup := make([]bool, len(keys))
	var b strings.Builder
	for i := len(keys) - 1; i >= 0; i-- {
		b.Reset()
		for _, f := range keys[i] {
			foldInto(&b, f)
			b.WriteByte(0)
		}
		k := b.String()
		if _, ok := later[k]; ok {
			dup[i] = true
		}
		later[k] = struct{}{}
	}
	for i, d := range dup {
		if d {
			// Java's List.toString: "[a, b]".
			r.fail(fmt.Sprintf(msg, "["+strings.Join(keys[i], ", ")+"]"))
		}
	}
}

// foldInto writes s with every rune replaced by the smallest rune of its
// Unicode simple case-folding orbit, so that two strings are EqualFold
// exactly when their folded forms are equal.
func foldInto(b *strings.Builder, s string) {
	for _, r := range s {
		if r < utf8.RuneSelf {
			// ASCII: the orbit of a letter is its two cases (k and s also
			// reach U+212A and U+017F, which are larger), so the smallest
			// is the upper case.
			c := byte(r)
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			b.WriteByte(c)
			continue
		}
		min := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < min {
				min = f
			}
		}
		b.WriteRune(min)
	}
}

func routeOrderText(v OrderRoute) string {
	return fmt.Sprintf("Logisk adress: %s, Tjänstekontrakt: %s, Tjänstekomponent: %s, RivTaProfil: %s, Adress: %s",
		orderStr(v.LogiskAdress), orderStr(v.Tjanstekontrakt), orderStr(v.Tjanstekomponent), orderStr(v.Rivtaprofil), orderStr(v.Adress))
}

func authOrderText(v OrderAuthorization) string {
	return fmt.Sprintf("Logisk adress: %s, Tjänstekonsument: %s, Tjänstekontrakt: %s",
		orderStr(v.LogiskAdress), orderStr(v.Tjanstekonsument), orderStr(v.Tjanstekontrakt))
}

// overlappingRoutes are the routes for (contract, address) that overlap the
// order's [from, to]; TAK's VagvalService#getVagval.
func (r *orderRun) overlappingRoutes(ns, la string) []Route {
	var out []Route
	for _, id := range r.c.RoutesFor(ns, la) {
		if v, ok := r.c.Route(id); ok && overlaps(v.From, v.To, r.from, r.to) {
			out = append(out, v)
		}
	}
	return out
}

func (r *orderRun) overlappingAuthorizations(ns, la, consumer string) []Authorization {
	var out []Authorization
	for _, id := range r.c.AuthorizationsFor(ns, la, consumer) {
		if v, ok := r.c.Authorization(id); ok && overlaps(v.From, v.To, r.from, r.to) {
			out = append(out, v)
		}
	}
	return out
}

// Report lines are written once per entity of an order (100,000 for a large
// one), so they are concatenated rather than formatted.
func (r *orderRun) routeText(v Route) string {
	la, _ := r.c.LogicalAddress(v.LogicalAddressID)
	con, _ := r.c.Contract(v.ContractID)
	a, _ := r.c.CallAddress(v.CallAddressID)
	p, _ := r.c.RivProfile(a.ProfileID)
	comp, _ := r.c.Component(a.ComponentID)
	return la.HSAID + " - " + con.Namespace + " - " + comp.HSAID + " - " + p.Name + " - " + a.URL +
		" (" + r.dateText(v.From) + " - " + r.dateText(v.To) + ")"
}

func (r *orderRun) authText(v Authorization) string {
	la, _ := r.c.LogicalAddress(v.LogicalAddressID)
	con, _ := r.c.Contract(v.ContractID)
	cons, _ := r.c.Component(v.ConsumerID)
	// Two spaces before the dates, as TAK writes it.
	return la.HSAID + " - " + cons.HSAID + " - " + con.Namespace +
		"  (" + r.dateText(v.From) + " - " + r.dateText(v.To) + ")"
}

// dateText is d.String(), remembered for the order's own from and to dates,
// which most report lines carry.
func (r *orderRun) dateText(d Date) string {
	switch d {
	case r.from:
		if r.fromText == "" {
			r.fromText = d.String()
		}
		return r.fromText
	case r.to:
		if r.toText == "" {
			r.toText = d.String()
		}
		return r.toText
	}
	return d.String()
}

func (r *orderRun) routeDuplicateError(v Route) {
	la, _ := r.c.LogicalAddress(v.LogicalAddressID)
	con, _ := r.c.Contract(v.ContractID)
	r.fail(fmt.Sprintf("Det finns mer än ett vagval i databasen med dessa parametrar %s - %s.", la.HSAID, con.Namespace))
}

func (r *orderRun) authDuplicateError(v Authorization) {
	la, _ := r.c.LogicalAddress(v.LogicalAddressID)
	con, _ := r.c.Contract(v.ContractID)
	cons, _ := r.c.Component(v.ConsumerID)
	r.fail(fmt.Sprintf("Det finns mer än en anropsbehörighet i databasen med dessa parametrar %s - %s - %s.", la.HSAID, con.Namespace, cons.HSAID))
}

// endStatus is how TAK reports an existing route or authorization it touched.
func (r *orderRun) endStatus(to Date) OrderStatus {
	if r.from > to {
		return OrderDeactivated
	}
	return OrderUpdated
}

// deactivateRoute ends a route the day before the order's date, or deletes it
// when it has not started by then (and its call address with it when no other
// route uses that). TAK deletes only when from < existing.from; at equality it
// writes tom = from − 1 < from, a period our catalog refuses, and such a route
// can never be valid, so it is deleted too.
func (r *orderRun) deactivateRoute(old Route) (OrderStatus, string, error) {
	if r.from <= old.From {
		text := r.routeText(old)
		if err := r.t.Delete(KindRoute, old.ID); err != nil {
			return "", "", fmt.Errorf("delete route %d: %w", old.ID, err)
		}
		r.orphans = append(r.orphans, old.CallAddressID)
		return OrderDeleted, text, nil
	}
	old.To = r.from.AddDays(-1)
	v, err := r.t.PutRoute(old)
	if err != nil {
		return "", "", r.txnError("Skapa Vägval", err)
	}
	return r.endStatus(v.To), r.routeText(v), nil
}

// deactivateAuthorization is deactivateRoute for authorizations. A deleted
// authorization takes its filters and their categorizations with it: TAK
// soft-deletes the authorization alone and leaves them dangling.
func (r *orderRun) deactivateAuthorization(old Authorization) (OrderStatus, string, error) {
	if r.from <= old.From {
		text := r.authText(old)
		for _, f := range r.c.FiltersOf(old.ID) {
			for _, cat := range r.c.CategorizationsOf(f) {
				if err := r.t.Delete(KindCategorization, cat); err != nil {
					return "", "", fmt.Errorf("delete categorization %d: %w", cat, err)
				}
			}
			if err := r.t.Delete(KindFilter, f); err != nil {
				return "", "", fmt.Errorf("delete filter %d: %w", f, err)
			}
		}
		if err := r.t.Delete(KindAuthorization, old.ID); err != nil {
			return "", "", fmt.Errorf("delete authorization %d: %w", old.ID, err)
		}
		return OrderDeleted, text, nil
	}
	old.To = r.from.AddDays(-1)
	v, err := r.t.PutAuthorization(old)
	if err != nil {
		return "", "", r.txnError("Skapa Anropsbehörighet", err)
	}
	return r.endStatus(v.To), r.authText(v), nil
}

func (r *orderRun) excludeRoute(v OrderRoute) error {
	var found []Route
	if v.LogiskAdress != nil && v.Tjanstekontrakt != nil {
		found = r.overlappingRoutes(*v.Tjanstekontrakt, *v.LogiskAdress)
	}
	switch len(found) {
	case 0:
		r.line(false, SectionRoutes, OrderNotFound, routeOrderText(v))
	case 1:
		st, text, err := r.deactivateRoute(found[0])
		if err != nil || st == "" {
			return err
		}
		r.line(false, SectionRoutes, st, text)
	default:
		r.routeDuplicateError(found[0])
	}
	return nil
}

func (r *orderRun) excludeAuthorization(v OrderAuthorization) error {
	var found []Authorization
	if v.LogiskAdress != nil && v.Tjanstekontrakt != nil && v.Tjanstekonsument != nil {
		found = r.overlappingAuthorizations(*v.Tjanstekontrakt, *v.LogiskAdress, *v.Tjanstekonsument)
	}
	switch len(found) {
	case 0:
		r.line(false, SectionAuthorizations, OrderNotFound, authOrderText(v))
	case 1:
		st, text, err := r.deactivateAuthorization(found[0])
		if err != nil || st == "" {
			return err
		}
		r.line(false, SectionAuthorizations, st, text)
	default:
		r.authDuplicateError(found[0])
	}
	return nil
}

// orderTextLen counts characters, near enough to Java's UTF-16 length for the 255 limit.
func orderTextLen(s string) int { return utf8.RuneCountInString(s) }

// orderHSAIDErrors are TAK's rules for a new HSA-ID. An empty value gets only the
// "empty" message, as in TAK (the empty-fields order gives one error per object).
func orderHSAIDErrors(v string, allowStar bool) []string {
	if v == "" {
		return []string{"HSA-ID får inte vara tomt"}
	}
	var out []string
	if orderTextLen(v) > 255 {
		out = append(out, "HSA-ID har felaktig längd")
	}
	if !(allowStar && v == "*") && !isOrderHSAID(v) {
		out = append(out, "HSA-ID har ogiltigt innehåll")
	}
	return out
}

// isOrderHSAID is TAK's HSA-ID rule, ^[0-9a-zA-Z_\-]+$, without a regexp (it
// runs for every logical address of an order).
func isOrderHSAID(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func orderDescriptionErrors(v string) []string {
	if orderTextLen(v) > 255 {
		return []string{"Beskrivning har felaktig längd"}
	}
	return nil
}

func (r *orderRun) failAll(prefix string, msgs ...[]string) bool {
	n := 0
	for _, ms := range msgs {
		for _, m := range ms {
			r.fail(prefix + m)
			n++
		}
	}
	return n > 0
}

// includeLogicalAddress creates a logical address the catalog lacks. One that
// exists is left alone, description included, and is not reported.
func (r *orderRun) includeLogicalAddress(v OrderLogicalAddress) error {
	if _, ok := r.c.LogicalAddressByHSAID(v.HsaID); ok {
		return nil
	}
	if r.failAll("Skapa Logisk Adress: ", orderDescriptionErrors(v.Beskrivning), orderHSAIDErrors(v.HsaID, true)) {
		return nil
	}
	// New HSA-IDs are stored upper-case (BestallningService#updateHsaIdUpperCase).
	la, err := r.t.PutLogicalAddress(LogicalAddress{HSAID: strings.ToUpper(v.HsaID), Description: v.Beskrivning})
	if err != nil {
		return r.txnError("Skapa Logisk Adress", err)
	}
	r.line(true, SectionLogicalAddresses, OrderCreated, la.HSAID)
	return nil
}

func (r *orderRun) includeComponent(v OrderComponent) error {
	if _, ok := r.c.ComponentByHSAID(v.HsaID); ok {
		return nil
	}
	if r.failAll("Skapa Tjänstekomponent: ", orderDescriptionErrors(v.Beskrivning), orderHSAIDErrors(v.HsaID, false)) {
		return nil
	}
	comp, err := r.t.PutComponent(Component{HSAID: strings.ToUpper(v.HsaID), Description: v.Beskrivning})
	if err != nil {
		return r.txnError("Skapa Tjänstekomponent", err)
	}
	r.line(true, SectionComponents, OrderCreated, comp.HSAID)
	return nil
}

func (r *orderRun) includeContract(v OrderContract) error {
	if _, ok := r.c.ContractByNamespace(v.Namnrymd); ok {
		return nil
	}
	var ns []string
	switch {
	case v.Namnrymd == "":
		ns = []string{"Namnrymd får inte vara tom"}
	default:
		if orderTextLen(v.Namnrymd) > 255 {
			ns = append(ns, "Namnrymd har felaktig längd")
		}
		if !orderReContract.MatchString(v.Namnrymd) {
			ns = append(ns, "Namnrymd har ogiltigt innehåll")
		}
	}
	if r.failAll("Skapa Tjänstekontrakt: ", orderDescriptionErrors(v.Beskrivning), ns) {
		return nil
	}
	con, err := r.t.PutContract(Contract{Namespace: v.Namnrymd, Description: v.Beskrivning, Major: v.MajorVersion})
	if err != nil {
		return r.txnError("Skapa Tjänstekontrakt", err)
	}
	r.line(true, SectionContracts, OrderCreated, con.Namespace)
	return nil
}

// Phase 3: required fields, then relations (prepareComplexObjectsRelations).
func (r *orderRun) prepareRelations() error {
	const missing = "Det saknas information i beställningen för att kunna %s. (%s)"
	for _, v := range r.o.Inkludera.Vagval {
		if v.Adress == nil || v.Rivtaprofil == nil || v.Tjanstekomponent == nil || v.LogiskAdress == nil || v.Tjanstekontrakt == nil {
			r.fail(fmt.Sprintf(missing, "skapa Vägval", routeOrderText(v)))
		}
	}
	for _, v := range r.o.Exkludera.Vagval {
		if v.Rivtaprofil == nil || v.Tjanstekomponent == nil || v.LogiskAdress == nil || v.Tjanstekontrakt == nil {
			r.fail(fmt.Sprintf(missing, "radera Vägval", routeOrderText(v)))
		}
	}
	for _, v := range r.o.Inkludera.Anropsbehorigheter {
		if v.LogiskAdress == nil || v.Tjanstekontrakt == nil || v.Tjanstekonsument == nil {
			r.fail(fmt.Sprintf(missing, "skapa Anropsbehörighet", authOrderText(v)))
		}
	}
	for _, v := range r.o.Exkludera.Anropsbehorigheter {
		if v.LogiskAdress == nil || v.Tjanstekontrakt == nil || v.Tjanstekonsument == nil {
			r.fail(fmt.Sprintf(missing, "radera Anropsbehörighet", authOrderText(v)))
		}
	}
	if len(r.errs) > 0 {
		return nil // the relation checks below need every field
	}
	for _, v := range r.o.Inkludera.Anropsbehorigheter {
		r.authRel = append(r.authRel, r.authorizationRelations(v))
	}
	for _, v := range r.o.Inkludera.Vagval {
		rel, err := r.routeRelations(v)
		if err != nil {
			return err
		}
		r.routeRel = append(r.routeRel, rel)
	}
	return nil
}

// Relations resolve against the transaction, which holds the catalog plus the
// objects this order created in phase 2: TAK's "database, else the order".
func (r *orderRun) authorizationRelations(v OrderAuthorization) authRelations {
	const p = "Skapa Anropsbehörighet: "
	cons, okCons := r.c.ComponentByHSAID(*v.Tjanstekonsument)
	if !okCons {
		r.fail(fmt.Sprintf(p+"Tjänstekomponent med HSAId = %s finns inte.", *v.Tjanstekonsument))
	}
	con, okCon := r.c.ContractByNamespace(*v.Tjanstekontrakt)
	if !okCon {
		r.fail(fmt.Sprintf(p+"Tjänstekontrakt med namnrymd = %s finns inte.", *v.Tjanstekontrakt))
	}
	la, okLA := r.c.LogicalAddressByHSAID(*v.LogiskAdress)
	if !okLA {
		r.fail(fmt.Sprintf(p+"Logisk Adress med HSAId = %s finns inte.", *v.LogiskAdress))
	}
	return authRelations{la: la.ID, consumer: cons.ID, contract: con.ID}
}

func (r *orderRun) routeRelations(v OrderRoute) (routeRelations, error) {
	const p = "Skapa Vägval: "
	// The RIV profile must exist already: an order cannot create one.
	prof, okProf := r.c.RivProfileByName(*v.Rivtaprofil)
	if !okProf {
		r.fail(fmt.Sprintf(p+"RivTaProfil med namn = %s finns inte.", *v.Rivtaprofil))
	}
	comp, okComp := r.c.ComponentByHSAID(*v.Tjanstekomponent)
	if !okComp {
		r.fail(fmt.Sprintf(p+"Tjänstekomponent med HSAId = %s finns inte.", *v.Tjanstekomponent))
	}
	la, okLA := r.c.LogicalAddressByHSAID(*v.LogiskAdress)
	if !okLA {
		r.fail(fmt.Sprintf(p+"Logisk Adress med HSAId = %s finns inte.", *v.LogiskAdress))
	}
	con, okCon := r.c.ContractByNamespace(*v.Tjanstekontrakt)
	if !okCon {
		r.fail(fmt.Sprintf(p+"Tjänstekontrakt med namnrymd = %s finns inte.", *v.Tjanstekontrakt))
	}
	rel := routeRelations{la: la.ID, contract: con.ID}
	if !okProf || !okComp || !okLA || !okCon {
		return rel, nil
	}
	// Reuse the call address with this profile, producer and exact URL
	// (created earlier in this order or already in the catalog), else create it.
	if a, ok := r.c.CallAddressByKey(prof.ID, comp.ID, *v.Adress); ok {
		rel.addr = a.ID
		return rel, nil
	}
	url := *v.Adress
	var msgs []string
	switch {
	case strings.TrimSpace(url) == "":
		msgs = []string{"Adress får inte vara tom"}
	default:
		if !orderReAddress.MatchString(url) {
			msgs = append(msgs, "Adress har ogiltigt innehåll")
		}
		if n := orderTextLen(url); n < 5 || n > 255 {
			msgs = append(msgs, "Adress har felaktig längd")
		}
	}
	if r.failAll(p, msgs) {
		return rel, nil
	}
	a, err := r.t.PutCallAddress(CallAddress{URL: url, ProfileID: prof.ID, ComponentID: comp.ID})
	if err != nil {
		return rel, r.txnError("Skapa Vägval", err)
	}
	rel.addr = a.ID
	return rel, nil
}

// Phase 4: authorizations, then routes (prepareComplexObjects).
func (r *orderRun) prepareComplex() error {
	for i, v := range r.o.Inkludera.Anropsbehorigheter {
		if err := r.includeAuthorization(v, r.authRel[i]); err != nil {
			return err
		}
	}
	for i, v := range r.o.Inkludera.Vagval {
		if err := r.includeRoute(v, r.routeRel[i]); err != nil {
			return err
		}
	}
	return nil
}

func (r *orderRun) includeAuthorization(v OrderAuthorization, rel authRelations) error {
	found := r.overlappingAuthorizations(*v.Tjanstekontrakt, *v.LogiskAdress, *v.Tjanstekonsument)
	switch len(found) {
	case 0:
		a, err := r.t.PutAuthorization(Authorization{ConsumerID: rel.consumer, ContractID: rel.contract,
			LogicalAddressID: rel.la, Agreement: "AUTOTAKNING", From: r.from, To: r.to})
		if err != nil {
			return r.txnError("Skapa Anropsbehörighet", err)
		}
		r.line(true, SectionAuthorizations, OrderCreated, r.authText(a))
	case 1:
		a := found[0]
		if r.from < a.From {
			a.From = r.from
		}
		a.To = r.to
		a, err := r.t.PutAuthorization(a)
		if err != nil {
			return r.txnError("Skapa Anropsbehörighet", err)
		}
		r.line(true, SectionAuthorizations, r.endStatus(a.To), r.authText(a))
	default:
		r.authDuplicateError(found[0])
	}
	return nil
}

func (r *orderRun) includeRoute(v OrderRoute, rel routeRelations) error {
	found := r.overlappingRoutes(*v.Tjanstekontrakt, *v.LogiskAdress)
	if len(found) > 1 {
		r.routeDuplicateError(found[0])
		return nil
	}
	if len(found) == 1 {
		old := found[0]
		oldAddr, _ := r.c.CallAddress(old.CallAddressID)
		newAddr, _ := r.c.CallAddress(rel.addr)
		if oldAddr.ProfileID == newAddr.ProfileID && oldAddr.ComponentID == newAddr.ComponentID && oldAddr.URL == newAddr.URL {
			// Same producer, profile and URL: extend the route.
			if r.from < old.From {
				old.From = r.from
			}
			old.To = r.to
			nv, err := r.t.PutRoute(old)
			if err != nil {
				return r.txnError("Skapa Vägval", err)
			}
			r.line(true, SectionRoutes, r.endStatus(nv.To), r.routeText(nv))
			return nil
		}
		// Another address: end the old route first so the new one does not
		// overlap it, then report both (old, then new).
		st, text, err := r.deactivateRoute(old)
		if err != nil || st == "" {
			return err
		}
		r.line(true, SectionRoutes, st, text)
	}
	nv, err := r.t.PutRoute(Route{LogicalAddressID: rel.la, ContractID: rel.contract, CallAddressID: rel.addr, From: r.from, To: r.to})
	if err != nil {
		return r.txnError("Skapa Vägval", err)
	}
	r.line(true, SectionRoutes, OrderCreated, r.routeText(nv))
	return nil
}

// deleteOrphanAddresses deletes the call addresses of deleted routes that no
// route uses any more. It runs last, so an address this order reuses elsewhere
// survives (TAK would delete it under the new route).
func (r *orderRun) deleteOrphanAddresses() error {
	for _, id := range r.orphans {
		if _, ok := r.c.CallAddress(id); !ok || r.c.References(KindCallAddress, id) > 0 {
			continue
		}
		if err := r.t.Delete(KindCallAddress, id); err != nil {
			return fmt.Errorf("delete call address %d: %w", id, err)
		}
	}
	return nil
}

func (r *orderRun) report() *OrderReport {
	o := r.o
	opt := func(p *string) string {
		if p == nil {
			return "null"
		}
		return *p
	}
	date := func(s string) string {
		if s == "" {
			return "null"
		}
		d, err := ParseDate(s)
		if err != nil {
			return s
		}
		return d.String() // TAK prints a java.sql.Date: yyyy-MM-dd
	}
	rep := &OrderReport{Metadata: []ReportField{
		{"Plattform", o.Plattform},
		{"Format Version", javaFloat(o.FormatVersion)},
		{"Version", strconv.Itoa(o.Version)},
		{"Beställningstidpunkt", date(o.BestallningsTidpunkt)},
		{"Genomförandetidpunkt", date(o.GenomforandeTidpunkt)},
		{"Utförare", opt(o.Utforare)},
		{"Kommentar", opt(o.Kommentar)},
	}}
	order := []string{SectionLogicalAddresses, SectionComponents, SectionContracts, SectionAuthorizations, SectionRoutes}
	for _, name := range order {
		if ls := r.in[name]; len(ls) > 0 {
			rep.Inkludera = append(rep.Inkludera, ReportSection{name, ls})
		}
		if ls := r.ex[name]; len(ls) > 0 {
			rep.Exkludera = append(rep.Exkludera, ReportSection{name, ls})
		}
	}
	return rep
}

// javaFloat formats like Java's Float.toString, which TAK uses for "Format
// Version": "1.0", "1.5", "1.0E7".
func javaFloat(f float32) string {
	v := float64(f)
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "Infinity"
	case math.IsInf(v, -1):
		return "-Infinity"
	case v == 0:
		if math.Signbit(v) {
			return "-0.0"
		}
		return "0.0"
	}
	if a := math.Abs(v); a >= 1e-3 && a < 1e7 {
		s := strconv.FormatFloat(v, 'f', -1, 32)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	s := strconv.FormatFloat(v, 'E', -1, 32) // "1E+07"
	mant, exp, _ := strings.Cut(s, "E")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	neg := strings.HasPrefix(exp, "-")
	exp = strings.TrimLeft(strings.TrimLeft(exp, "+-"), "0")
	if neg {
		exp = "-" + exp
	}
	return mant + "E" + exp
}

// addYearsClamped adds years the way java.util.Calendar does: 29 February
// becomes 28 February in a year without it (Date.AddYears would roll over
// to 1 March).
func addYearsClamped(d Date, n int) Date {
	y, m, dd := d.Time().Date()
	last := time.Date(y+n, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
	if dd > last {
		dd = last
	}
	return civil(y+n, m, dd)
}
