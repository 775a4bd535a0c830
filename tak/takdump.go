package tak

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A takdump is TAK's PubVersion JSON, formatVersion 1 (skltp-tak.md §3.4): the
// whole published catalog with TAK's ids and id-based relationships. TAK's
// nightly export (§8) ships the same document to other platforms and to the
// Cooperation API, which is why the odd key casing has to stay exactly as TAK
// writes it.

// takdumpTimeLayout is Java's "yyyy-MM-dd'T'HH:mm:ssZ".
const takdumpTimeLayout = "2006-01-02T15:04:05-0700"

// ExportMeta is the header of an export.
type ExportMeta struct {
	Version string    // "version": TAK's PubVersion id; empty means the catalog's Seq
	Time    time.Time // "tidpunkt", written in Zone
	Actor   string    // "utforare"
	Comment string    // "kommentar"
}

// Export shapes, field order as TAK writes them.
type (
	tdOut struct {
		FormatVersion string    `json:"formatVersion"`
		Version       string    `json:"version"`
		Tidpunkt      string    `json:"tidpunkt"`
		Utforare      string    `json:"utforare"`
		Kommentar     string    `json:"kommentar"`
		Data          tdOutData `json:"data"`
	}
	tdOutData struct {
		Rivtaprofil          []tdOutProfile  `json:"rivtaprofil"`
		Tjanstekontrakt      []tdOutContract `json:"tjanstekontrakt"`
		Logiskadress         []tdOutHSA      `json:"logiskadress"`
		Tjanstekomponent     []tdOutHSA      `json:"tjanstekomponent"`
		Anropsadress         []tdOutAddress  `json:"anropsadress"`
		Anropsbehorighet     []tdOutAuth     `json:"anropsbehorighet"`
		Vagval               []tdOutRoute    `json:"vagval"`
		Filter               []tdOutFilter   `json:"filter"`
		Filtercategorization []tdOutCat      `json:"filtercategorization"`
	}
	tdOutProfile struct {
		ID          int64  `json:"id"`
		Namn        string `json:"namn"`
		Beskrivning string `json:"beskrivning"`
		Pubversion  string `json:"pubversion"`
	}
	tdOutContract struct {
		ID           int64  `json:"id"`
		Namnrymd     string `json:"namnrymd"`
		Beskrivning  string `json:"beskrivning"`
		MajorVersion int64  `json:"majorVersion"`
		MinorVersion int64  `json:"minorVersion"`
		Pubversion   string `json:"pubversion"`
	}
	tdOutHSA struct {
		ID          int64  `json:"id"`
		HsaID       string `json:"hsaId"`
		Beskrivning string `json:"beskrivning"`
		Pubversion  string `json:"pubversion"`
	}
	tdOutAddress struct {
		ID            int64  `json:"id"`
		Adress        string `json:"adress"`
		Pubversion    string `json:"pubversion"`
		Relationships struct {
			Rivtaprofil      int64 `json:"rivtaprofil"`
			Tjanstekomponent int64 `json:"tjanstekomponent"`
		} `json:"relationships"`
	}
	tdOutAuth struct {
		ID                int64  `json:"id"`
		Integrationsavtal string `json:"integrationsavtal"`
		FromTidpunkt      string `json:"fromTidpunkt"`
		TomTidpunkt       string `json:"tomTidpunkt"`
		Pubversion        string `json:"pubversion"`
		Relationships     struct {
			LogiskAdress     int64 `json:"logiskAdress"`
			Tjanstekomponent int64 `json:"tjanstekomponent"` // the consumer
			Tjanstekontrakt  int64 `json:"tjanstekontrakt"`
		} `json:"relationships"`
	}
	tdOutRoute struct {
		ID            int64  `json:"id"`
		FromTidpunkt  string `json:"fromTidpunkt"`
		TomTidpunkt   string `json:"tomTidpunkt"`
		Pubversion    string `json:"pubversion"`
		Relationships struct {
			Anropsadress    int64 `json:"anropsadress"`
			Logiskadress    int64 `json:"logiskadress"`
			Tjanstekontrakt int64 `json:"tjanstekontrakt"`
		} `json:"relationships"`
	}
	tdOutFilter struct {
		ID            int64  `json:"id"`
		Servicedomain string `json:"servicedomain"`
		Pubversion    string `json:"pubversion"`
		Relationships struct {
			Anropsbehorighet int64 `json:"anropsbehorighet"`
		} `json:"relationships"`
	}
	tdOutCat struct {
		ID            int64  `json:"id"`
		Category      string `json:"category"`
		Pubversion    string `json:"pubversion"`
		Relationships struct {
			Filter int64 `json:"filter"`
		} `json:"relationships"`
	}
)

// takdumpDate writes a whole-day date as TAK does: local midnight with its
// offset, "2009-03-10T00:00:00+0100".
func takdumpDate(d Date) string { return d.Time().Format(takdumpTimeLayout) }

// ExportTakdump writes the catalog as a takdump (PubVersion JSON, formatVersion
// 1) with id-based relationships, entities in id order. Our catalog keeps no
// per-row publication version, so every row's "pubversion" is the export's
// version.
func ExportTakdump(c *Catalog, meta ExportMeta) ([]byte, error) {
	if c == nil {
		return nil, errors.New("export takdump: nil catalog")
	}
	ver := meta.Version
	if ver == "" {
		ver = strconv.FormatUint(c.Seq(), 10)
	}
	doc := tdOut{FormatVersion: "1", Version: ver, Tidpunkt: meta.Time.In(Zone).Format(takdumpTimeLayout),
		Utforare: meta.Actor, Kommentar: meta.Comment}
	d := &doc.Data
	// Empty lists are written as [], as TAK does, never null.
	ps := c.RivProfiles()
	d.Rivtaprofil = make([]tdOutProfile, 0, len(ps))
	for _, p := range ps {
		d.Rivtaprofil = append(d.Rivtaprofil, tdOutProfile{p.ID, p.Name, p.Description, ver})
	}
	cs := c.Contracts()
	d.Tjanstekontrakt = make([]tdOutContract, 0, len(cs))
	for _, v := range cs {
		d.Tjanstekontrakt = append(d.Tjanstekontrakt, tdOutContract{v.ID, v.Namespace, v.Description, v.Major, v.Minor, ver})
	}
	las := c.LogicalAddresses()
	d.Logiskadress = make([]tdOutHSA, 0, len(las))
	for _, v := range las {
		d.Logiskadress = append(d.Logiskadress, tdOutHSA{v.ID, v.HSAID, v.Description, ver})
	}
	comps := c.Components()
	d.Tjanstekomponent = make([]tdOutHSA, 0, len(comps))
	for _, v := range comps {
		d.Tjanstekomponent = append(d.Tjanstekomponent, tdOutHSA{v.ID, v.HSAID, v.Description, ver})
	}
	addrs := c.CallAddresses()
	d.Anropsadress = make([]tdOutAddress, 0, len(addrs))
	for _, v := range addrs {
		o := tdOutAddress{ID: v.ID, Adress: v.URL, Pubversion: ver}
		o.Relationships.Rivtaprofil, o.Relationships.Tjanstekomponent = v.ProfileID, v.ComponentID
		d.Anropsadress = append(d.Anropsadress, o)
	}
	auths := c.Authorizations()
	d.Anropsbehorighet = make([]tdOutAuth, 0, len(auths))
	for _, v := range auths {
		o := tdOutAuth{ID: v.ID, Integrationsavtal: v.Agreement, FromTidpunkt: takdumpDate(v.From),
			TomTidpunkt: takdumpDate(v.To), Pubversion: ver}
		o.Relationships.LogiskAdress, o.Relationships.Tjanstekomponent, o.Relationships.Tjanstekontrakt =
			v.LogicalAddressID, v.ConsumerID, v.ContractID
		d.Anropsbehorighet = append(d.Anropsbehorighet, o)
	}
	routes := c.Routes()
	d.Vagval = make([]tdOutRoute, 0, len(routes))
	for _, v := range routes {
		o := tdOutRoute{ID: v.ID, FromTidpunkt: takdumpDate(v.From), TomTidpunkt: takdumpDate(v.To), Pubversion: ver}
		o.Relationships.Anropsadress, o.Relationships.Logiskadress, o.Relationships.Tjanstekontrakt =
			v.CallAddressID, v.LogicalAddressID, v.ContractID
		d.Vagval = append(d.Vagval, o)
	}
	fs := c.Filters()
	d.Filter = make([]tdOutFilter, 0, len(fs))
	for _, v := range fs {
		o := tdOutFilter{ID: v.ID, Servicedomain: v.ServiceDomain, Pubversion: ver}
		o.Relationships.Anropsbehorighet = v.AuthorizationID
		d.Filter = append(d.Filter, o)
	}
	cats := c.Categorizations()
	d.Filtercategorization = make([]tdOutCat, 0, len(cats))
	for _, v := range cats {
		o := tdOutCat{ID: v.ID, Category: v.Category, Pubversion: ver}
		o.Relationships.Filter = v.FilterID
		d.Filtercategorization = append(d.Filtercategorization, o)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // URLs keep their & and ? readable, as Jackson writes them
	enc.SetIndent("", "  ")
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("export takdump: %w", err)
	}
	return buf.Bytes(), nil
}

// Import shapes. One entity shape serves every list: each list reads the
// fields it needs. Relationship values are ids (numbers) or, in the
// Cooperation import format, natural keys (strings).
type (
	tdIn struct {
		FormatVersion json.RawMessage `json:"formatVersion"`
		Version       json.RawMessage `json:"version"`
		Data          *tdInData       `json:"data"`
	}
	tdInData struct {
		Rivtaprofil      []tdInEntity `json:"rivtaprofil"`
		Tjanstekontrakt  []tdInEntity `json:"tjanstekontrakt"`
		Logiskadress     []tdInEntity `json:"logiskadress"`
		Tjanstekomponent []tdInEntity `json:"tjanstekomponent"`
		// The Cooperation import format splits components into consumers and
		// producers; a component that is both appears in both lists.
		Tjanstekonsument     []tdInEntity `json:"tjanstekonsument"`
		Tjansteproducent     []tdInEntity `json:"tjansteproducent"`
		Anropsadress         []tdInEntity `json:"anropsadress"`
		Anropsbehorighet     []tdInEntity `json:"anropsbehorighet"`
		Vagval               []tdInEntity `json:"vagval"`
		Filter               []tdInEntity `json:"filter"`
		Filtercategorization []tdInEntity `json:"filtercategorization"`
	}
	tdInEntity struct {
		ID                int64                      `json:"id"`
		Namn              string                     `json:"namn"`
		Beskrivning       string                     `json:"beskrivning"`
		Namnrymd          string                     `json:"namnrymd"`
		MajorVersion      int64                      `json:"majorVersion"`
		MinorVersion      int64                      `json:"minorVersion"`
		HsaID             string                     `json:"hsaId"`
		Adress            string                     `json:"adress"`
		Integrationsavtal string                     `json:"integrationsavtal"`
		FromTidpunkt      string                     `json:"fromTidpunkt"`
		TomTidpunkt       string                     `json:"tomTidpunkt"`
		Servicedomain     string                     `json:"servicedomain"`
		Category          string                     `json:"category"`
		Relationships     map[string]json.RawMessage `json:"relationships"`
	}
)

// tdRawText reads a header value TAK writes as a string but others as a number.
func tdRawText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return strings.TrimSpace(string(raw))
}

// ImportTakdump builds the content of a takdump or PubVersion JSON inside t,
// which the caller started on an empty catalog, under TAK's ids. It imports
// leniently (t.Lenient for its duration): SKLTP data can hold what TAK's
// validator refuses today, and the router must see that data as SKLTP's VP
// does. Referential integrity is still enforced: a relationship to an id the
// file does not hold fails the import, as TAK's reader does ("Missing
// relationship in jsonfile"). It returns the number of entities per kind.
//
// A route or authorization whose tomTidpunkt is before its fromTidpunkt is
// left out (with the filters and categorizations under it) and not counted:
// TAK's orders write such rows when they end a row on the day it starts
// (tom = from − 1), no reader can ever find them valid, and our catalog
// refuses the reversed period.
//
// Both relationship spellings TAK has used are read (logiskAdress/logiskadress;
// tjanstekomponent/tjanstekonsument for an authorization's consumer), and a
// relationship given as a string is looked up by natural key, which reads the
// Cooperation import format too.
func ImportTakdump(t *Txn, b []byte) (map[Kind]int, error) {
	if t == nil {
		return nil, errors.New("import takdump: nil transaction")
	}
	for _, k := range Kinds {
		if t.c.lenOf(k) > 0 {
			return nil, fmt.Errorf("import takdump: the catalog already holds %ss; import needs an empty one", k)
		}
	}
	var doc tdIn
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("import takdump: %w", err)
	}
	if fv := tdRawText(doc.FormatVersion); fv != "1" && fv != "1.0" {
		return nil, fmt.Errorf("import takdump: formatVersion %q, want 1", fv)
	}
	if doc.Data == nil {
		return nil, errors.New("import takdump: no data")
	}
	lenient, keep := t.Lenient, t.keepIDs
	// keepIDs lets the puts create entities under the file's ids, which the
	// relationships and every consumer of the export refer to.
	t.Lenient, t.keepIDs = true, true
	defer func() { t.Lenient, t.keepIDs = lenient, keep }()
	im := &takdumpImport{t: t, c: t.Catalog(), version: tdRawText(doc.Version), counts: map[Kind]int{}, skipped: map[Kind]map[int64]bool{}}
	if err := im.run(doc.Data); err != nil {
		return nil, fmt.Errorf("import takdump: %w", err)
	}
	return im.counts, nil
}

type takdumpImport struct {
	t       *Txn
	c       *Catalog
	version string
	counts  map[Kind]int
	// skipped holds the ids of rows left out because they can never be
	// valid (see dates), so the rows that hang off them are left out too.
	skipped map[Kind]map[int64]bool
}

// skip leaves a row out of the import.
func (im *takdumpImport) skip(k Kind, id int64) {
	if im.skipped[k] == nil {
		im.skipped[k] = map[int64]bool{}
	}
	im.skipped[k][id] = true
}

// parentSkipped reports whether a relationship points at a skipped row.
func (im *takdumpImport) parentSkipped(m map[string]json.RawMessage, k Kind, name string) bool {
	r, err := tdRelOf(m, name)
	return err == nil && r.set && r.key == "" && im.skipped[k][r.id]
}

// tdRel is one relationship value: an id, or a natural key.
type tdRel struct {
	id  int64
	key string
	set bool
}

func (r tdRel) String() string {
	if r.key != "" {
		return strconv.Quote(r.key)
	}
	return strconv.FormatInt(r.id, 10)
}

// tdRelOf reads a relationship; names are alternative spellings, tried in
// order, each exactly first and then case-insensitively (smallest key first,
// so a file with both spellings reads the same every time).
func tdRelOf(m map[string]json.RawMessage, names ...string) (tdRel, error) {
	for _, n := range names {
		key, ok := n, false
		if _, ok = m[n]; !ok {
			for k := range m {
				if strings.EqualFold(k, n) && (!ok || k < key) {
					key, ok = k, true
				}
			}
		}
		if !ok {
			continue
		}
		raw := bytes.TrimSpace(m[key])
		if len(raw) == 0 || string(raw) == "null" {
			continue
		}
		if raw[0] == '"' {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return tdRel{}, fmt.Errorf("relationship %s: %w", key, err)
			}
			return tdRel{key: s, set: true}, nil
		}
		var id int64
		if err := json.Unmarshal(raw, &id); err != nil {
			return tdRel{}, fmt.Errorf("relationship %s: %w", key, err)
		}
		return tdRel{id: id, set: true}, nil
	}
	return tdRel{}, nil
}

func (im *takdumpImport) missing(list string, id int64, relName string, r tdRel) error {
	return fmt.Errorf("Missing relationship in jsonfile in version %s: %s %d refers to %s %s: %w",
		im.version, list, id, relName, r, ErrNotFound)
}

// resolve finds the entity a relationship names: by id, or by natural key.
func (im *takdumpImport) resolve(list string, id int64, m map[string]json.RawMessage, k Kind, names ...string) (int64, error) {
	r, err := tdRelOf(m, names...)
	if err != nil {
		return 0, fmt.Errorf("%s %d: %w", list, id, err)
	}
	if !r.set {
		return 0, fmt.Errorf("%s %d: no %s relationship: %w", list, id, names[0], ErrNotFound)
	}
	if r.key == "" {
		if _, ok := im.c.Entity(k, r.id); ok {
			return r.id, nil
		}
		return 0, im.missing(list, id, names[0], r)
	}
	var found int64
	var ok bool
	switch k {
	case KindRivProfile:
		var v RivProfile
		v, ok = im.c.RivProfileByName(r.key)
		found = v.ID
	case KindContract:
		var v Contract
		v, ok = im.c.ContractByNamespace(r.key)
		found = v.ID
	case KindComponent:
		var v Component
		v, ok = im.c.ComponentByHSAID(r.key)
		found = v.ID
	case KindLogicalAddress:
		var v LogicalAddress
		v, ok = im.c.LogicalAddressByHSAID(r.key)
		found = v.ID
	}
	if !ok {
		return 0, im.missing(list, id, names[0], r)
	}
	return found, nil
}

func (im *takdumpImport) checkID(list string, id int64, k Kind) error {
	if id <= 0 {
		return fmt.Errorf("%s: id %d: want a positive id", list, id)
	}
	if _, dup := im.c.Entity(k, id); dup {
		return fmt.Errorf("%s: id %d appears twice: %w", list, id, ErrConflict)
	}
	return nil
}

func (im *takdumpImport) put(list string, k Kind, id int64, v any) error {
	if err := im.t.Put(v); err != nil {
		return fmt.Errorf("%s %d: %w", list, id, err)
	}
	im.counts[k]++
	return nil
}

func (im *takdumpImport) dates(list string, e tdInEntity) (from, to Date, err error) {
	if from, err = ParseDate(e.FromTidpunkt); err != nil {
		return 0, 0, fmt.Errorf("%s %d fromTidpunkt: %w", list, e.ID, err)
	}
	if to, err = ParseDate(e.TomTidpunkt); err != nil {
		return 0, 0, fmt.Errorf("%s %d tomTidpunkt: %w", list, e.ID, err)
	}
	return from, to, nil
}

// run imports in TAK's publication order, dependencies first.
func (im *takdumpImport) run(d *tdInData) error {
	for _, e := range d.Rivtaprofil {
		if err := im.checkID("rivtaprofil", e.ID, KindRivProfile); err != nil {
			return err
		}
		if err := im.put("rivtaprofil", KindRivProfile, e.ID, RivProfile{ID: e.ID, Name: e.Namn, Description: e.Beskrivning}); err != nil {
			return err
		}
	}
	for _, e := range d.Tjanstekontrakt {
		if err := im.checkID("tjanstekontrakt", e.ID, KindContract); err != nil {
			return err
		}
		v := Contract{ID: e.ID, Namespace: e.Namnrymd, Description: e.Beskrivning, Major: e.MajorVersion, Minor: e.MinorVersion}
		if err := im.put("tjanstekontrakt", KindContract, e.ID, v); err != nil {
			return err
		}
	}
	compList := map[int64]string{} // component id -> the list that created it
	for _, list := range []struct {
		name string
		es   []tdInEntity
	}{{"tjanstekomponent", d.Tjanstekomponent}, {"tjanstekonsument", d.Tjanstekonsument}, {"tjansteproducent", d.Tjansteproducent}} {
		for _, e := range list.es {
			if old, ok := im.c.Component(e.ID); ok && compList[e.ID] != list.name {
				// The same component listed as consumer and producer.
				if !strings.EqualFold(old.HSAID, e.HsaID) {
					return fmt.Errorf("%s: id %d is both %q and %q: %w", list.name, e.ID, old.HSAID, e.HsaID, ErrConflict)
				}
				continue
			}
			if err := im.checkID(list.name, e.ID, KindComponent); err != nil {
				return err
			}
			if err := im.put(list.name, KindComponent, e.ID, Component{ID: e.ID, HSAID: e.HsaID, Description: e.Beskrivning}); err != nil {
				return err
			}
			compList[e.ID] = list.name
		}
	}
	for _, e := range d.Logiskadress {
		if err := im.checkID("logiskadress", e.ID, KindLogicalAddress); err != nil {
			return err
		}
		if err := im.put("logiskadress", KindLogicalAddress, e.ID, LogicalAddress{ID: e.ID, HSAID: e.HsaID, Description: e.Beskrivning}); err != nil {
			return err
		}
	}
	for _, e := range d.Anropsadress {
		const list = "anropsadress"
		if err := im.checkID(list, e.ID, KindCallAddress); err != nil {
			return err
		}
		p, err := im.resolve(list, e.ID, e.Relationships, KindRivProfile, "rivtaprofil")
		if err != nil {
			return err
		}
		comp, err := im.resolve(list, e.ID, e.Relationships, KindComponent, "tjanstekomponent", "tjansteproducent")
		if err != nil {
			return err
		}
		if err := im.put(list, KindCallAddress, e.ID, CallAddress{ID: e.ID, URL: e.Adress, ProfileID: p, ComponentID: comp}); err != nil {
			return err
		}
	}
	for _, e := range d.Anropsbehorighet {
		const list = "anropsbehorighet"
		if err := im.checkID(list, e.ID, KindAuthorization); err != nil {
			return err
		}
		la, err := im.resolve(list, e.ID, e.Relationships, KindLogicalAddress, "logiskAdress")
		if err != nil {
			return err
		}
		cons, err := im.resolve(list, e.ID, e.Relationships, KindComponent, "tjanstekomponent", "tjanstekonsument")
		if err != nil {
			return err
		}
		con, err := im.resolve(list, e.ID, e.Relationships, KindContract, "tjanstekontrakt")
		if err != nil {
			return err
		}
		from, to, err := im.dates(list, e)
		if err != nil {
			return err
		}
		if from > to {
			im.skip(KindAuthorization, e.ID)
			continue
		}
		v := Authorization{ID: e.ID, ConsumerID: cons, ContractID: con, LogicalAddressID: la, Agreement: e.Integrationsavtal, From: from, To: to}
		if err := im.put(list, KindAuthorization, e.ID, v); err != nil {
			return err
		}
	}
	for _, e := range d.Vagval {
		const list = "vagval"
		if err := im.checkID(list, e.ID, KindRoute); err != nil {
			return err
		}
		addr, err := im.routeAddress(e)
		if err != nil {
			return err
		}
		la, err := im.resolve(list, e.ID, e.Relationships, KindLogicalAddress, "logiskadress")
		if err != nil {
			return err
		}
		con, err := im.resolve(list, e.ID, e.Relationships, KindContract, "tjanstekontrakt")
		if err != nil {
			return err
		}
		from, to, err := im.dates(list, e)
		if err != nil {
			return err
		}
		if from > to {
			im.skip(KindRoute, e.ID)
			continue
		}
		v := Route{ID: e.ID, LogicalAddressID: la, ContractID: con, CallAddressID: addr, From: from, To: to}
		if err := im.put(list, KindRoute, e.ID, v); err != nil {
			return err
		}
	}
	for _, e := range d.Filter {
		const list = "filter"
		if err := im.checkID(list, e.ID, KindFilter); err != nil {
			return err
		}
		if im.parentSkipped(e.Relationships, KindAuthorization, "anropsbehorighet") {
			im.skip(KindFilter, e.ID)
			continue
		}
		auth, err := im.resolve(list, e.ID, e.Relationships, KindAuthorization, "anropsbehorighet")
		if err != nil {
			return err
		}
		if err := im.put(list, KindFilter, e.ID, Filter{ID: e.ID, AuthorizationID: auth, ServiceDomain: e.Servicedomain}); err != nil {
			return err
		}
	}
	for _, e := range d.Filtercategorization {
		const list = "filtercategorization"
		if err := im.checkID(list, e.ID, KindCategorization); err != nil {
			return err
		}
		if im.parentSkipped(e.Relationships, KindFilter, "filter") {
			continue
		}
		f, err := im.resolve(list, e.ID, e.Relationships, KindFilter, "filter")
		if err != nil {
			return err
		}
		if err := im.put(list, KindCategorization, e.ID, Categorization{ID: e.ID, FilterID: f, Category: e.Category}); err != nil {
			return err
		}
	}
	return nil
}

// routeAddress resolves a route's call address: an id, or in the Cooperation
// import format the URL plus the RIV profile and producer that key it.
func (im *takdumpImport) routeAddress(e tdInEntity) (int64, error) {
	const list = "vagval"
	r, err := tdRelOf(e.Relationships, "anropsadress")
	if err != nil {
		return 0, fmt.Errorf("%s %d: %w", list, e.ID, err)
	}
	if !r.set || r.key == "" {
		return im.resolve(list, e.ID, e.Relationships, KindCallAddress, "anropsadress")
	}
	p, err := im.resolve(list, e.ID, e.Relationships, KindRivProfile, "rivtaProfil", "rivtaprofil")
	if err != nil {
		return 0, err
	}
	comp, err := im.resolve(list, e.ID, e.Relationships, KindComponent, "tjansteproducent", "tjanstekomponent")
	if err != nil {
		return 0, err
	}
	a, ok := im.c.CallAddressByKey(p, comp, r.key)
	if !ok {
		return 0, im.missing(list, e.ID, "anropsadress", r)
	}
	return a.ID, nil
}
