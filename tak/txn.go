package tak

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode"
)

// ErrNotFound is returned when a change names an entity that does not exist.
var ErrNotFound = errors.New("not found")

// ErrInUse is returned when an entity that others refer to is deleted.
var ErrInUse = errors.New("in use")

// ErrConflict is returned when a change would break a uniqueness or overlap
// rule, or a rollback finds an entity changed since the version it undoes.
var ErrConflict = errors.New("conflict")

// ValidationError says which field of which entity broke which rule.
type ValidationError struct {
	Kind  Kind
	Field string
	Value string
	Msg   string
	Err   error // ErrNotFound, ErrConflict or nil
}

func (e *ValidationError) Error() string {
	if e.Value != "" {
		return fmt.Sprintf("%s %s %q: %s", e.Kind, e.Field, e.Value, e.Msg)
	}
	return fmt.Sprintf("%s %s: %s", e.Kind, e.Field, e.Msg)
}

func (e *ValidationError) Unwrap() error { return e.Err }

func invalid(k Kind, field, value, msg string) error {
	return &ValidationError{Kind: k, Field: field, Value: value, Msg: msg}
}

func conflict(k Kind, field, value, msg string) error {
	return &ValidationError{Kind: k, Field: field, Value: value, Msg: msg, Err: ErrConflict}
}

func notFound(k Kind, id int64) error {
	return &ValidationError{Kind: k, Field: "id", Value: fmt.Sprint(id), Msg: "does not exist", Err: ErrNotFound}
}

// Txn collects changes to a catalog. It is not safe for concurrent use. If any
// call returns an error the caller should drop the Txn: the base catalog is
// never affected, which is what makes an order all-or-nothing.
type Txn struct {
	c   Catalog
	tag uint64

	// Lenient skips TAK's format and overlap rules (not referential
	// integrity): catalogs exported from SKLTP can hold data its validator
	// would refuse today (two routes for one address and contract, an empty
	// call address), and the router must answer those with VP006/VP010 as the
	// reference does, so an import has to accept them.
	Lenient bool

	// keepIDs lets a put with an unknown id create the entity under that id
	// (import and rollback restore ids; admin and order changes get new ones).
	keepIDs bool

	delta     []EntityChange
	n         int  // entity changes, also those past maxDelta
	overflow  bool // delta stopped at maxDelta; the change cannot be rolled back
	committed bool
}

// Begin starts a transaction on c. c itself never changes.
func (c *Catalog) Begin() *Txn { return &Txn{c: *c, tag: txnGen.Add(1)} }

// Catalog returns the state as changed so far, for reads inside the
// transaction. It must not be kept after Commit.
func (t *Txn) Catalog() *Catalog { return &t.c }

// Changes returns the number of entity changes made so far.
func (t *Txn) Changes() int { return t.n }

var (
	reContract = regexp.MustCompile(`^[0-9a-zA-Z_.:\-]*$`)
	reHSAID    = regexp.MustCompile(`^[0-9a-zA-Z_\-]*$`)
	reAddress  = regexp.MustCompile(`^[0-9a-zA-Z_.:/\-?&]*$`)
)

func hasOuterSpace(s string) bool { return s != strings.TrimSpace(s) }

// cleanDescription applies TAK's cleanup of free text: trimmed, newlines to spaces.
func cleanDescription(s string) string {
	s = strings.ReplaceAll(s, "\r", "")
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.TrimSpace(s)
}

func (t *Txn) nextID(k Kind, want int64) (int64, error) {
	if want != 0 {
		if !t.keepIDs {
			return 0, notFound(k, want)
		}
		if want > t.c.ids[k] {
			t.c.ids[k] = want
		}
		return want, nil
	}
	t.c.ids[k]++
	return t.c.ids[k], nil
}

func (t *Txn) incRef(k Kind, id int64, by int32) {
	r := ref{k, id}
	n, _ := t.c.refs.get(r)
	if n+by == 0 {
		t.c.refs.del(r, t.tag)
		return
	}
	t.c.refs.set(r, n+by, t.tag)
}

func (t *Txn) addChild(parent ref, id int64) {
	ids, _ := t.c.children.get(parent)
	t.c.children.set(parent, append(append([]int64(nil), ids...), id), t.tag)
}

func (t *Txn) removeChild(parent ref, id int64) {
	ids, _ := t.c.children.get(parent)
	out := make([]int64, 0, len(ids))
	for _, x := range ids {
		if x != id {
			out = append(out, x)
		}
	}
	if len(out) == 0 {
		t.c.children.del(parent, t.tag)
		return
	}
	t.c.children.set(parent, out, t.tag)
}

func checkName(k Kind, field, v string, re *regexp.Regexp, allowStar, lenient bool) error {
	if v == "" {
		return invalid(k, field, v, "must not be empty")
	}
	if lenient {
		return nil
	}
	if len(v) > 255 {
		return invalid(k, field, v, "must be at most 255 characters")
	}
	if allowStar && v == "*" {
		return nil
	}
	if re != nil && !re.MatchString(v) {
		return invalid(k, field, v, "contains characters TAK does not allow ("+re.String()+")")
	}
	if hasOuterSpace(v) {
		return invalid(k, field, v, "must not start or end with whitespace")
	}
	return nil
}

// setKey moves a natural key from old to new, refusing a key another entity holds.
func (t *Txn) setKey(idx *pmap[string, int64], k Kind, field, oldName, newName string, id int64) error {
	nk := lower(newName)
	if other, ok := idx.get(nk); ok && other != id {
		return conflict(k, field, newName, fmt.Sprintf("already used by %s %d", k, other))
	}
	if oldName != "" && lower(oldName) != nk {
		idx.del(lower(oldName), t.tag)
	}
	idx.set(nk, id, t.tag)
	return nil
}

// PutRivProfile creates (ID 0) or updates a RIV profile.
func (t *Txn) PutRivProfile(p RivProfile) (RivProfile, error) {
	p.Description = cleanDescription(p.Description)
	if err := checkName(KindRivProfile, "name", p.Name, nil, false, t.Lenient); err != nil {
		return p, err
	}
	old, exists := t.c.profiles.get(p.ID)
	if !exists {
		id, err := t.nextID(KindRivProfile, p.ID)
		if err != nil {
			return p, err
		}
		p.ID = id
	}
	if err := t.setKey(&t.c.profileByName, KindRivProfile, "name", old.Name, p.Name, p.ID); err != nil {
		return p, err
	}
	renamed := exists && old.Name != p.Name
	var rs []Route
	if renamed {
		rs = t.unindexRoutesWhere(func(r Route) bool {
			a, _ := t.c.addrs.get(r.CallAddressID)
			return a.ProfileID == p.ID
		})
	}
	t.c.profiles.set(p.ID, p, t.tag)
	t.reindexRoutes(rs)
	recordPut(t, KindRivProfile, p.ID, old, exists, p)
	return p, nil
}

// PutContract creates (ID 0) or updates a contract.
func (t *Txn) PutContract(v Contract) (Contract, error) {
	v.Description = cleanDescription(v.Description)
	if err := checkName(KindContract, "namespace", v.Namespace, reContract, false, t.Lenient); err != nil {
		return v, err
	}
	old, exists := t.c.contracts.get(v.ID)
	if !exists {
		id, err := t.nextID(KindContract, v.ID)
		if err != nil {
			return v, err
		}
		v.ID = id
	}
	if err := t.setKey(&t.c.contractByNS, KindContract, "namespace", old.Namespace, v.Namespace, v.ID); err != nil {
		return v, err
	}
	var rs []Route
	var as []Authorization
	if exists && old.Namespace != v.Namespace {
		rs = t.unindexRoutesWhere(func(r Route) bool { return r.ContractID == v.ID })
		as = t.unindexAuthsWhere(func(a Authorization) bool { return a.ContractID == v.ID })
	}
	t.c.contracts.set(v.ID, v, t.tag)
	t.reindexRoutes(rs)
	t.reindexAuths(as)
	recordPut(t, KindContract, v.ID, old, exists, v)
	return v, nil
}

// PutComponent creates (ID 0) or updates a component.
func (t *Txn) PutComponent(v Component) (Component, error) {
	v.Description = cleanDescription(v.Description)
	if err := checkName(KindComponent, "hsaId", v.HSAID, reHSAID, false, t.Lenient); err != nil {
		return v, err
	}
	old, exists := t.c.comps.get(v.ID)
	if !exists {
		id, err := t.nextID(KindComponent, v.ID)
		if err != nil {
			return v, err
		}
		v.ID = id
	}
	if err := t.setKey(&t.c.compByHSA, KindComponent, "hsaId", old.HSAID, v.HSAID, v.ID); err != nil {
		return v, err
	}
	var rs []Route
	var as []Authorization
	if exists && old.HSAID != v.HSAID {
		rs = t.unindexRoutesWhere(func(r Route) bool {
			a, _ := t.c.addrs.get(r.CallAddressID)
			return a.ComponentID == v.ID
		})
		as = t.unindexAuthsWhere(func(a Authorization) bool { return a.ConsumerID == v.ID })
	}
	t.c.comps.set(v.ID, v, t.tag)
	t.reindexRoutes(rs)
	t.reindexAuths(as)
	recordPut(t, KindComponent, v.ID, old, exists, v)
	return v, nil
}

// PutLogicalAddress creates (ID 0) or updates a logical address.
func (t *Txn) PutLogicalAddress(v LogicalAddress) (LogicalAddress, error) {
	v.Description = cleanDescription(v.Description)
	if err := checkName(KindLogicalAddress, "hsaId", v.HSAID, reHSAID, true, t.Lenient); err != nil {
		return v, err
	}
	old, exists := t.c.las.get(v.ID)
	if !exists {
		id, err := t.nextID(KindLogicalAddress, v.ID)
		if err != nil {
			return v, err
		}
		v.ID = id
	}
	if err := t.setKey(&t.c.laByHSA, KindLogicalAddress, "hsaId", old.HSAID, v.HSAID, v.ID); err != nil {
		return v, err
	}
	var rs []Route
	var as []Authorization
	if exists && old.HSAID != v.HSAID {
		rs = t.unindexRoutesWhere(func(r Route) bool { return r.LogicalAddressID == v.ID })
		as = t.unindexAuthsWhere(func(a Authorization) bool { return a.LogicalAddressID == v.ID })
	}
	t.c.las.set(v.ID, v, t.tag)
	t.reindexRoutes(rs)
	t.reindexAuths(as)
	recordPut(t, KindLogicalAddress, v.ID, old, exists, v)
	return v, nil
}

// PutCallAddress creates (ID 0) or updates a call address.
func (t *Txn) PutCallAddress(v CallAddress) (CallAddress, error) {
	if !t.Lenient {
		switch {
		case strings.TrimSpace(v.URL) == "":
			return v, invalid(KindCallAddress, "url", v.URL, "must not be empty")
		case len(v.URL) < 5 || len(v.URL) > 255:
			return v, invalid(KindCallAddress, "url", v.URL, "must be 5 to 255 characters")
		case !reAddress.MatchString(v.URL):
			return v, invalid(KindCallAddress, "url", v.URL, "contains characters TAK does not allow ("+reAddress.String()+")")
		}
	}
	if _, ok := t.c.profiles.get(v.ProfileID); !ok {
		return v, notFound(KindRivProfile, v.ProfileID)
	}
	if _, ok := t.c.comps.get(v.ComponentID); !ok {
		return v, notFound(KindComponent, v.ComponentID)
	}
	old, exists := t.c.addrs.get(v.ID)
	if !exists {
		id, err := t.nextID(KindCallAddress, v.ID)
		if err != nil {
			return v, err
		}
		v.ID = id
	}
	nk := addrKey(v.ProfileID, v.ComponentID, v.URL)
	if other, ok := t.c.addrByKey.get(nk); ok && other != v.ID {
		if !t.Lenient {
			return v, conflict(KindCallAddress, "url", v.URL, fmt.Sprintf("already exists for this profile and component as call address %d", other))
		}
	}
	var rs []Route
	if exists {
		if ok := addrKey(old.ProfileID, old.ComponentID, old.URL); ok != nk {
			if id, _ := t.c.addrByKey.get(ok); id == v.ID {
				t.c.addrByKey.del(ok, t.tag)
			}
		}
		t.incRef(KindRivProfile, old.ProfileID, -1)
		t.incRef(KindComponent, old.ComponentID, -1)
		if old != v {
			rs = t.unindexRoutesWhere(func(r Route) bool { return r.CallAddressID == v.ID })
		}
	}
	t.c.addrByKey.set(nk, v.ID, t.tag)
	t.incRef(KindRivProfile, v.ProfileID, 1)
	t.incRef(KindComponent, v.ComponentID, 1)
	t.c.addrs.set(v.ID, v, t.tag)
	t.reindexRoutes(rs)
	recordPut(t, KindCallAddress, v.ID, old, exists, v)
	return v, nil
}

// PutRoute creates (ID 0) or updates a route.
func (t *Txn) PutRoute(v Route) (Route, error) {
	la, ok := t.c.las.get(v.LogicalAddressID)
	if !ok {
		return v, notFound(KindLogicalAddress, v.LogicalAddressID)
	}
	con, ok := t.c.contracts.get(v.ContractID)
	if !ok {
		return v, notFound(KindContract, v.ContractID)
	}
	if _, ok := t.c.addrs.get(v.CallAddressID); !ok {
		return v, notFound(KindCallAddress, v.CallAddressID)
	}
	if v.From > v.To {
		return v, invalid(KindRoute, "from", v.From.String(), "is after to "+v.To.String())
	}
	if !t.Lenient {
		ts := t.c.routeIdx.find(routeKey(con.Namespace, la.HSAID))
		for i := 0; ts != nil && i < ts.len(); i++ {
			if o := ts.at(i); o.RouteID != v.ID && overlaps(v.From, v.To, o.From, o.To) {
				return v, conflict(KindRoute, "from", v.From.String(), fmt.Sprintf(
					"route %d for %s at %s overlaps %s..%s", o.RouteID, con.Namespace, la.HSAID, o.From, o.To))
			}
		}
	}
	old, exists := t.c.routes.get(v.ID)
	if !exists {
		id, err := t.nextID(KindRoute, v.ID)
		if err != nil {
			return v, err
		}
		v.ID = id
	} else {
		t.unindexRoute(old)
		t.routeRefs(old, -1)
	}
	t.c.routes.set(v.ID, v, t.tag)
	t.routeRefs(v, 1)
	t.indexRoute(v)
	recordPut(t, KindRoute, v.ID, old, exists, v)
	return v, nil
}

// PutAuthorization creates (ID 0) or updates an authorization.
func (t *Txn) PutAuthorization(v Authorization) (Authorization, error) {
	la, ok := t.c.las.get(v.LogicalAddressID)
	if !ok {
		return v, notFound(KindLogicalAddress, v.LogicalAddressID)
	}
	con, ok := t.c.contracts.get(v.ContractID)
	if !ok {
		return v, notFound(KindContract, v.ContractID)
	}
	cons, ok := t.c.comps.get(v.ConsumerID)
	if !ok {
		return v, notFound(KindComponent, v.ConsumerID)
	}
	if v.From > v.To {
		return v, invalid(KindAuthorization, "from", v.From.String(), "is after to "+v.To.String())
	}
	if !t.Lenient {
		if strings.TrimSpace(v.Agreement) == "" || hasOuterSpace(v.Agreement) {
			return v, invalid(KindAuthorization, "agreement", v.Agreement, "must not be empty or start or end with whitespace")
		}
		key, star := authKey(con.Namespace, la.HSAID, cons.HSAID)
		ts := t.c.authIndex(star).find(key)
		for i := 0; ts != nil && i < ts.len(); i++ {
			if o := ts.at(i); o.id != v.ID && overlaps(v.From, v.To, o.from, o.to) {
				return v, conflict(KindAuthorization, "from", v.From.String(), fmt.Sprintf(
					"authorization %d for %s to call %s at %s overlaps %s..%s", o.id, cons.HSAID, con.Namespace, la.HSAID, o.from, o.to))
			}
		}
	}
	old, exists := t.c.auths.get(v.ID)
	if !exists {
		id, err := t.nextID(KindAuthorization, v.ID)
		if err != nil {
			return v, err
		}
		v.ID = id
	} else {
		t.unindexAuth(old)
		t.authRefs(old, -1)
	}
	t.c.auths.set(v.ID, v, t.tag)
	t.authRefs(v, 1)
	t.indexAuth(v)
	recordPut(t, KindAuthorization, v.ID, old, exists, v)
	return v, nil
}

// PutFilter creates (ID 0) or updates a filter.
func (t *Txn) PutFilter(v Filter) (Filter, error) {
	if !t.Lenient && (v.ServiceDomain == "" || strings.IndexFunc(v.ServiceDomain, unicode.IsSpace) >= 0 || len(v.ServiceDomain) > 255) {
		return v, invalid(KindFilter, "serviceDomain", v.ServiceDomain, "must be 1 to 255 characters without whitespace")
	}
	if _, ok := t.c.auths.get(v.AuthorizationID); !ok {
		return v, notFound(KindAuthorization, v.AuthorizationID)
	}
	for _, id := range t.c.FiltersOf(v.AuthorizationID) {
		if f, _ := t.c.filters.get(id); id != v.ID && strings.EqualFold(f.ServiceDomain, v.ServiceDomain) && !t.Lenient {
			return v, conflict(KindFilter, "serviceDomain", v.ServiceDomain, fmt.Sprintf("already on authorization %d as filter %d", v.AuthorizationID, id))
		}
	}
	old, exists := t.c.filters.get(v.ID)
	if !exists {
		id, err := t.nextID(KindFilter, v.ID)
		if err != nil {
			return v, err
		}
		v.ID = id
	} else {
		t.removeChild(ref{KindAuthorization, old.AuthorizationID}, old.ID)
		t.incRef(KindAuthorization, old.AuthorizationID, -1)
	}
	t.addChild(ref{KindAuthorization, v.AuthorizationID}, v.ID)
	t.incRef(KindAuthorization, v.AuthorizationID, 1)
	t.c.filters.set(v.ID, v, t.tag)
	recordPut(t, KindFilter, v.ID, old, exists, v)
	return v, nil
}

// PutCategorization creates (ID 0) or updates a categorization.
func (t *Txn) PutCategorization(v Categorization) (Categorization, error) {
	if !t.Lenient && (strings.TrimSpace(v.Category) == "" || hasOuterSpace(v.Category)) {
		return v, invalid(KindCategorization, "category", v.Category, "must not be empty or start or end with whitespace")
	}
	if _, ok := t.c.filters.get(v.FilterID); !ok {
		return v, notFound(KindFilter, v.FilterID)
	}
	for _, id := range t.c.CategorizationsOf(v.FilterID) {
		if x, _ := t.c.cats.get(id); id != v.ID && x.Category == v.Category && !t.Lenient {
			return v, conflict(KindCategorization, "category", v.Category, fmt.Sprintf("already on filter %d", v.FilterID))
		}
	}
	old, exists := t.c.cats.get(v.ID)
	if !exists {
		id, err := t.nextID(KindCategorization, v.ID)
		if err != nil {
			return v, err
		}
		v.ID = id
	} else {
		t.removeChild(ref{KindFilter, old.FilterID}, old.ID)
		t.incRef(KindFilter, old.FilterID, -1)
	}
	t.addChild(ref{KindFilter, v.FilterID}, v.ID)
	t.incRef(KindFilter, v.FilterID, 1)
	t.c.cats.set(v.ID, v, t.tag)
	recordPut(t, KindCategorization, v.ID, old, exists, v)
	return v, nil
}

// Delete removes an entity nothing refers to any more; TAK's dependency
// rules (skltp-tak.md §2.2) are exactly "no live dependents".
func (t *Txn) Delete(k Kind, id int64) error {
	if n := t.c.References(k, id); n > 0 {
		return &ValidationError{Kind: k, Field: "id", Value: fmt.Sprint(id),
			Msg: fmt.Sprintf("is used by %d other entities; delete those first", n), Err: ErrInUse}
	}
	switch k {
	case KindRivProfile:
		old, ok := t.c.profiles.get(id)
		if !ok {
			return notFound(k, id)
		}
		t.c.profileByName.del(lower(old.Name), t.tag)
		t.c.profiles.del(id, t.tag)
		t.recordDelete(k, id, old)
	case KindContract:
		old, ok := t.c.contracts.get(id)
		if !ok {
			return notFound(k, id)
		}
		t.c.contractByNS.del(lower(old.Namespace), t.tag)
		t.c.contracts.del(id, t.tag)
		t.recordDelete(k, id, old)
	case KindComponent:
		old, ok := t.c.comps.get(id)
		if !ok {
			return notFound(k, id)
		}
		t.c.compByHSA.del(lower(old.HSAID), t.tag)
		t.c.comps.del(id, t.tag)
		t.recordDelete(k, id, old)
	case KindLogicalAddress:
		old, ok := t.c.las.get(id)
		if !ok {
			return notFound(k, id)
		}
		t.c.laByHSA.del(lower(old.HSAID), t.tag)
		t.c.las.del(id, t.tag)
		t.recordDelete(k, id, old)
	case KindCallAddress:
		old, ok := t.c.addrs.get(id)
		if !ok {
			return notFound(k, id)
		}
		if key := addrKey(old.ProfileID, old.ComponentID, old.URL); true {
			if x, _ := t.c.addrByKey.get(key); x == id {
				t.c.addrByKey.del(key, t.tag)
			}
		}
		t.incRef(KindRivProfile, old.ProfileID, -1)
		t.incRef(KindComponent, old.ComponentID, -1)
		t.c.addrs.del(id, t.tag)
		t.recordDelete(k, id, old)
	case KindRoute:
		old, ok := t.c.routes.get(id)
		if !ok {
			return notFound(k, id)
		}
		t.unindexRoute(old)
		t.routeRefs(old, -1)
		t.c.routes.del(id, t.tag)
		t.recordDelete(k, id, old)
	case KindAuthorization:
		old, ok := t.c.auths.get(id)
		if !ok {
			return notFound(k, id)
		}
		t.unindexAuth(old)
		t.authRefs(old, -1)
		t.c.auths.del(id, t.tag)
		t.recordDelete(k, id, old)
	case KindFilter:
		old, ok := t.c.filters.get(id)
		if !ok {
			return notFound(k, id)
		}
		t.removeChild(ref{KindAuthorization, old.AuthorizationID}, id)
		t.incRef(KindAuthorization, old.AuthorizationID, -1)
		t.c.filters.del(id, t.tag)
		t.recordDelete(k, id, old)
	case KindCategorization:
		old, ok := t.c.cats.get(id)
		if !ok {
			return notFound(k, id)
		}
		t.removeChild(ref{KindFilter, old.FilterID}, id)
		t.incRef(KindFilter, old.FilterID, -1)
		t.c.cats.del(id, t.tag)
		t.recordDelete(k, id, old)
	default:
		return fmt.Errorf("delete: unknown kind %d", k)
	}
	return nil
}

func (t *Txn) routeRefs(r Route, by int32) {
	t.incRef(KindLogicalAddress, r.LogicalAddressID, by)
	t.incRef(KindContract, r.ContractID, by)
	t.incRef(KindCallAddress, r.CallAddressID, by)
}

func (t *Txn) authRefs(a Authorization, by int32) {
	t.incRef(KindLogicalAddress, a.LogicalAddressID, by)
	t.incRef(KindContract, a.ContractID, by)
	t.incRef(KindComponent, a.ConsumerID, by)
}

func (t *Txn) routeTarget(r Route) (hkey, RouteTarget) {
	la, _ := t.c.las.get(r.LogicalAddressID)
	con, _ := t.c.contracts.get(r.ContractID)
	addr, _ := t.c.addrs.get(r.CallAddressID)
	prof, _ := t.c.profiles.get(addr.ProfileID)
	comp, _ := t.c.comps.get(addr.ComponentID)
	return routeKey(con.Namespace, la.HSAID), RouteTarget{
		RouteID: r.ID, URL: addr.URL, Profile: prof.Name, Producer: comp.HSAID,
		From: r.From, To: r.To, w: windowOf(r.From, r.To),
	}
}

func (t *Txn) indexRoute(r Route) {
	key, tgt := t.routeTarget(r)
	if p, ok := t.c.routeIdx.put(key, t.tag); ok {
		*p = p.with(tgt)
	} else {
		*p = routeSet{first: tgt}
	}
}

func (t *Txn) unindexRoute(r Route) {
	key, _ := t.routeTarget(r)
	ts, ok := t.c.routeIdx.get(key)
	if !ok {
		return
	}
	if out, ok := ts.without(r.ID); ok {
		t.c.routeIdx.set(key, out, t.tag)
	} else {
		t.c.routeIdx.del(key, t.tag)
	}
}

func (t *Txn) authTarget(a Authorization) (*flat[authSet], hkey, authTarget) {
	la, _ := t.c.las.get(a.LogicalAddressID)
	con, _ := t.c.contracts.get(a.ContractID)
	cons, _ := t.c.comps.get(a.ConsumerID)
	key, star := authKey(con.Namespace, la.HSAID, cons.HSAID)
	return t.c.authIndex(star), key, authTarget{id: a.ID, from: a.From, to: a.To, w: windowOf(a.From, a.To)}
}

func (t *Txn) indexAuth(a Authorization) {
	idx, key, tgt := t.authTarget(a)
	if p, ok := idx.put(key, t.tag); ok {
		*p = p.with(tgt)
	} else {
		*p = authSet{first: tgt}
	}
}

func (t *Txn) unindexAuth(a Authorization) {
	idx, key, _ := t.authTarget(a)
	ts, ok := idx.get(key)
	if !ok {
		return
	}
	if out, ok := ts.without(a.ID); ok {
		idx.set(key, out, t.tag)
	} else {
		idx.del(key, t.tag)
	}
}

// unindexRoutesWhere takes the matching routes out of the routing index before
// a rename changes their key; reindexRoutes puts them back under the new one.
// A rename scans every route: renames are rare operator actions, and keeping a
// reverse index per referenced entity would cost memory on every node for them.
func (t *Txn) unindexRoutesWhere(pred func(Route) bool) []Route {
	var out []Route
	t.c.routes.each(func(_ int64, r Route) bool {
		if pred(r) {
			out = append(out, r)
		}
		return true
	})
	// Map iteration order differs per process; re-indexing in id order keeps
	// every node's route sets in the same order.
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	for _, r := range out {
		t.unindexRoute(r)
	}
	return out
}

func (t *Txn) reindexRoutes(rs []Route) {
	for _, r := range rs {
		t.indexRoute(r)
	}
}

func (t *Txn) unindexAuthsWhere(pred func(Authorization) bool) []Authorization {
	var out []Authorization
	t.c.auths.each(func(_ int64, a Authorization) bool {
		if pred(a) {
			out = append(out, a)
		}
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	for _, a := range out {
		t.unindexAuth(a)
	}
	return out
}

func (t *Txn) reindexAuths(as []Authorization) {
	for _, a := range as {
		t.indexAuth(a)
	}
}

// SetHSATree replaces the HSA tree used for tree climbing.
func (t *Txn) SetHSATree(h *HSATree) {
	if h == nil {
		h = EmptyHSATree()
	}
	t.c.hsa = h
	t.delta = append(t.delta, EntityChange{Op: "hsa-tree", Summary: fmt.Sprintf("%d units", h.Len())})
}

// SetTimeouts replaces the per-contract producer timeouts.
func (t *Txn) SetTimeouts(to *Timeouts) {
	if to == nil {
		to = &Timeouts{}
	}
	t.c.timeouts = to
	t.delta = append(t.delta, EntityChange{Op: "timeouts", Summary: fmt.Sprintf("%d entries", len(to.Entries))})
}

// Commit seals the transaction and returns the new catalog version. meta is
// stamped by the caller (the Raft leader), never read from the clock here.
func (t *Txn) Commit(meta ChangeMeta) *Catalog {
	if t.committed {
		panic("tak: Txn committed twice")
	}
	t.committed = true
	t.c.seq++
	for _, k := range Kinds {
		t.c.count[k] = t.c.lenOf(k)
	}
	t.c.log = t.c.log.append(ChangeRecord{Seq: t.c.seq, ChangeMeta: meta, Changes: t.n}, t.delta, t.overflow)
	c := t.c
	return &c
}

func (c *Catalog) lenOf(k Kind) int {
	switch k {
	case KindRivProfile:
		return c.profiles.Len()
	case KindContract:
		return c.contracts.Len()
	case KindComponent:
		return c.comps.Len()
	case KindLogicalAddress:
		return c.las.Len()
	case KindCallAddress:
		return c.addrs.Len()
	case KindRoute:
		return c.routes.Len()
	case KindAuthorization:
		return c.auths.Len()
	case KindFilter:
		return c.filters.Len()
	case KindCategorization:
		return c.cats.Len()
	}
	return 0
}
