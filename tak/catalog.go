package tak

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// RouteTarget is what the router needs of one route, resolved through its call
// address, RIV profile and producer so a lookup touches one map entry.
type RouteTarget struct {
	RouteID  int64
	URL      string
	Profile  string // RIV profile name as written in the catalog, e.g. "RIVTABP21"
	Producer string // HSA-ID of the producing component
	From, To Date
	w        window
}

// Valid reports whether the route is valid at now (unix seconds).
func (t *RouteTarget) Valid(now int64) bool { return t.w.valid(now) }

type authTarget struct {
	id       int64
	from, to Date
	w        window
}

type ref struct {
	kind Kind
	id   int64
}

func hashRef(r ref) uint64 { return hashInt(r.id) ^ uint64(r.kind)<<56 }

// Catalog is one immutable version of the catalog. The zero value is not
// usable; start from New. All methods are safe for concurrent use.
type Catalog struct {
	seq   uint64                        // change sequence number of the last committed change
	ids   [KindCategorization + 1]int64 // highest id handed out per kind
	count [KindCategorization + 1]int

	profiles  pmap[int64, RivProfile]
	contracts pmap[int64, Contract]
	comps     pmap[int64, Component]
	las       pmap[int64, LogicalAddress]
	addrs     pmap[int64, CallAddress]
	routes    pmap[int64, Route]
	auths     pmap[int64, Authorization]
	filters   pmap[int64, Filter]
	cats      pmap[int64, Categorization]

	// natural keys, lower-cased: TAK's MySQL collation is case-insensitive.
	profileByName pmap[string, int64]
	contractByNS  pmap[string, int64]
	compByHSA     pmap[string, int64]
	laByHSA       pmap[string, int64]
	addrByKey     pmap[string, int64] // profileID/componentID/url (url case-sensitive, as in TAK 3.2)

	// routing indexes, keyed by the hashes of the lower-cased names (see
	// flat.go) so the router can look up the strings of a request directly
	// and climb the HSA tree without hashing a string per level.
	routeIdx flat[routeSet] // routeKey(ns, la)
	authIdx  flat[authSet]  // authKey(ns, la, consumer) for every la but "*"
	// authStar holds the authorizations at "*" apart: every authorization
	// lookup that misses its address probes "*" next, and default
	// authorizations are few, so this table stays in cache and that probe
	// costs no page walk in the big one.
	authStar flat[authSet]

	refs     pmap[ref, int32]   // live references to an entity; delete needs zero
	children pmap[ref, []int64] // filters of an authorization, categorizations of a filter

	hsa      *HSATree
	timeouts *Timeouts
	log      changeLog
}

// New returns an empty catalog.
func New() *Catalog {
	return &Catalog{
		profiles:      newPMap[int64, RivProfile](hashInt),
		contracts:     newPMap[int64, Contract](hashInt),
		comps:         newPMap[int64, Component](hashInt),
		las:           newPMap[int64, LogicalAddress](hashInt),
		addrs:         newPMap[int64, CallAddress](hashInt),
		routes:        newPMap[int64, Route](hashInt),
		auths:         newPMap[int64, Authorization](hashInt),
		filters:       newPMap[int64, Filter](hashInt),
		cats:          newPMap[int64, Categorization](hashInt),
		profileByName: newPMap[string, int64](hashString),
		contractByNS:  newPMap[string, int64](hashString),
		compByHSA:     newPMap[string, int64](hashString),
		laByHSA:       newPMap[string, int64](hashString),
		addrByKey:     newPMap[string, int64](hashString),
		refs:          newPMap[ref, int32](hashRef),
		children:      newPMap[ref, []int64](hashRef),
		hsa:           EmptyHSATree(),
		timeouts:      &Timeouts{},
	}
}

// Seq is the sequence number of the last change committed into this version;
// 0 for an empty, never changed catalog.
func (c *Catalog) Seq() uint64 { return c.seq }

// Empty reports whether the catalog holds no routes and no authorizations.
func (c *Catalog) Empty() bool { return c.routes.Len() == 0 && c.auths.Len() == 0 }

// Counts returns the number of entities per kind.
func (c *Catalog) Counts() map[Kind]int {
	out := make(map[Kind]int, len(Kinds))
	for _, k := range Kinds {
		out[k] = c.count[k]
	}
	return out
}

// HSATree returns the HSA tree used for tree climbing.
func (c *Catalog) HSATree() *HSATree { return c.hsa }

// Timeouts returns the per-contract producer timeouts.
func (c *Catalog) Timeouts() *Timeouts { return c.timeouts }

// RivProfile returns the profile with the id.
func (c *Catalog) RivProfile(id int64) (RivProfile, bool) { return c.profiles.get(id) }

// Contract returns the contract with the id.
func (c *Catalog) Contract(id int64) (Contract, bool) { return c.contracts.get(id) }

// Component returns the component with the id.
func (c *Catalog) Component(id int64) (Component, bool) { return c.comps.get(id) }

// LogicalAddress returns the logical address with the id.
func (c *Catalog) LogicalAddress(id int64) (LogicalAddress, bool) { return c.las.get(id) }

// CallAddress returns the call address with the id.
func (c *Catalog) CallAddress(id int64) (CallAddress, bool) { return c.addrs.get(id) }

// Route returns the route with the id.
func (c *Catalog) Route(id int64) (Route, bool) { return c.routes.get(id) }

// Authorization returns the authorization with the id.
func (c *Catalog) Authorization(id int64) (Authorization, bool) { return c.auths.get(id) }

// Filter returns the filter with the id.
func (c *Catalog) Filter(id int64) (Filter, bool) { return c.filters.get(id) }

// Categorization returns the categorization with the id.
func (c *Catalog) Categorization(id int64) (Categorization, bool) { return c.cats.get(id) }

// RivProfileByName finds a profile by name, case-insensitively.
func (c *Catalog) RivProfileByName(name string) (RivProfile, bool) {
	return lookupByKey(&c.profileByName, &c.profiles, name)
}

// ContractByNamespace finds a contract by namespace, case-insensitively.
func (c *Catalog) ContractByNamespace(ns string) (Contract, bool) {
	return lookupByKey(&c.contractByNS, &c.contracts, ns)
}

// ComponentByHSAID finds a component by HSA-ID, case-insensitively.
func (c *Catalog) ComponentByHSAID(id string) (Component, bool) {
	return lookupByKey(&c.compByHSA, &c.comps, id)
}

// LogicalAddressByHSAID finds a logical address by HSA-ID, case-insensitively.
func (c *Catalog) LogicalAddressByHSAID(id string) (LogicalAddress, bool) {
	return lookupByKey(&c.laByHSA, &c.las, id)
}

// CallAddressByKey finds a call address by its natural key (profile, component, exact URL).
func (c *Catalog) CallAddressByKey(profileID, componentID int64, url string) (CallAddress, bool) {
	id, ok := c.addrByKey.get(addrKey(profileID, componentID, url))
	if !ok {
		return CallAddress{}, false
	}
	return c.addrs.get(id)
}

func lookupByKey[V any](idx *pmap[string, int64], m *pmap[int64, V], key string) (V, bool) {
	id, ok := idx.get(lower(key))
	if !ok {
		var zero V
		return zero, false
	}
	return m.get(id)
}

// RoutesFor returns the ids of every route, valid or not, for a contract at a
// logical address (exact, no climbing), sorted.
func (c *Catalog) RoutesFor(contractNS, la string) []int64 {
	ts := c.routeIdx.find(routeKey(contractNS, la))
	if ts == nil {
		return []int64{}
	}
	out := make([]int64, 0, ts.len())
	for i := 0; i < ts.len(); i++ {
		out = append(out, ts.at(i).RouteID)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// AuthorizationsFor returns the ids of every authorization, valid or not, of a
// consumer for a contract at a logical address (exact), sorted.
func (c *Catalog) AuthorizationsFor(contractNS, la, consumer string) []int64 {
	key, star := authKey(contractNS, la, consumer)
	ts := c.authIndex(star).find(key)
	if ts == nil {
		return []int64{}
	}
	out := make([]int64, 0, ts.len())
	for i := 0; i < ts.len(); i++ {
		out = append(out, ts.at(i).id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// FiltersOf returns the filter ids of an authorization, sorted.
func (c *Catalog) FiltersOf(authID int64) []int64 { return c.childIDs(KindAuthorization, authID) }

// CategorizationsOf returns the categorization ids of a filter, sorted.
func (c *Catalog) CategorizationsOf(filterID int64) []int64 { return c.childIDs(KindFilter, filterID) }

func (c *Catalog) childIDs(k Kind, id int64) []int64 {
	ids, _ := c.children.get(ref{k, id})
	out := append([]int64(nil), ids...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// References returns how many live entities refer to the entity.
func (c *Catalog) References(k Kind, id int64) int {
	n, _ := c.refs.get(ref{k, id})
	return int(n)
}

// Each* iterate in ascending id order; they copy the ids first, so they cost
// O(n log n) and are meant for export and listing, not for the request path.

// RivProfiles returns every profile in id order.
func (c *Catalog) RivProfiles() []RivProfile { return sortedValues(&c.profiles) }

// Contracts returns every contract in id order.
func (c *Catalog) Contracts() []Contract { return sortedValues(&c.contracts) }

// Components returns every component in id order.
func (c *Catalog) Components() []Component { return sortedValues(&c.comps) }

// LogicalAddresses returns every logical address in id order.
func (c *Catalog) LogicalAddresses() []LogicalAddress { return sortedValues(&c.las) }

// CallAddresses returns every call address in id order.
func (c *Catalog) CallAddresses() []CallAddress { return sortedValues(&c.addrs) }

// Routes returns every route in id order.
func (c *Catalog) Routes() []Route { return sortedValues(&c.routes) }

// Authorizations returns every authorization in id order.
func (c *Catalog) Authorizations() []Authorization { return sortedValues(&c.auths) }

// Filters returns every filter in id order.
func (c *Catalog) Filters() []Filter { return sortedValues(&c.filters) }

// Categorizations returns every categorization in id order.
func (c *Catalog) Categorizations() []Categorization { return sortedValues(&c.cats) }

func sortedValues[V any](m *pmap[int64, V]) []V {
	type kv struct {
		k int64
		v V
	}
	tmp := make([]kv, 0, m.Len())
	m.each(func(k int64, v V) bool { tmp = append(tmp, kv{k, v}); return true })
	sort.Slice(tmp, func(i, j int) bool { return tmp[i].k < tmp[j].k })
	out := make([]V, len(tmp))
	for i := range tmp {
		out[i] = tmp[i].v
	}
	return out
}

// routeKey is the routing-index key of a contract at a logical address.
func routeKey(ns, la string) hkey {
	return routeBase(nsSeeds.lowerHash(ns)).xor(laSeeds.lowerHash(la))
}

// authKey is the authorization-index key of a consumer calling a contract at
// a logical address, and whether the address is "*" (see authStar).
func authKey(ns, la, consumer string) (hkey, bool) {
	hla := laSeeds.lowerHash(la)
	return authBase(nsSeeds.lowerHash(ns), conSeeds.lowerHash(consumer)).xor(hla), hla == starHash
}

// authIndex is authStar for keys at "*", authIdx for the rest.
func (c *Catalog) authIndex(star bool) *flat[authSet] {
	if star {
		return &c.authStar
	}
	return &c.authIdx
}

// routeSet holds the routes of one (contract, logical address). Nearly every
// key has exactly one, so the first lives inline in the table and a hit
// costs no extra pointer chase; the rest sit behind one pointer so that the
// common case pays 8 bytes, not a slice header and a count, per table slot
// (the table holds about twice as many slots as entries). A routeSet in an
// index is never empty: the last route out deletes the key. A set is never
// changed in place once stored; with and without build new ones.
type routeSet struct {
	first RouteTarget
	more  *[]RouteTarget
}

func (s *routeSet) len() int {
	if s.more == nil {
		return 1
	}
	return 1 + len(*s.more)
}

func (s *routeSet) at(i int) *RouteTarget {
	if i == 0 {
		return &s.first
	}
	return &(*s.more)[i-1]
}

func (s routeSet) with(t RouteTarget) routeSet {
	var more []RouteTarget
	if s.more != nil {
		more = append(more, *s.more...)
	}
	more = append(more, t)
	s.more = &more
	return s
}

// without returns the set without route id, and false if that leaves it empty.
func (s routeSet) without(id int64) (routeSet, bool) {
	var out routeSet
	n := 0
	for i := 0; i < s.len(); i++ {
		if t := s.at(i); t.RouteID != id {
			if n == 0 {
				out = routeSet{first: *t}
			} else {
				out = out.with(*t)
			}
			n++
		}
	}
	return out, n > 0
}

// authSet is routeSet for authorizations.
type authSet struct {
	first authTarget
	more  *[]authTarget
}

func (s *authSet) len() int {
	if s.more == nil {
		return 1
	}
	return 1 + len(*s.more)
}

func (s *authSet) at(i int) *authTarget {
	if i == 0 {
		return &s.first
	}
	return &(*s.more)[i-1]
}

func (s authSet) with(t authTarget) authSet {
	var more []authTarget
	if s.more != nil {
		more = append(more, *s.more...)
	}
	more = append(more, t)
	s.more = &more
	return s
}

func (s authSet) without(id int64) (authSet, bool) {
	var out authSet
	n := 0
	for i := 0; i < s.len(); i++ {
		if t := s.at(i); t.id != id {
			if n == 0 {
				out = authSet{first: *t}
			} else {
				out = out.with(*t)
			}
			n++
		}
	}
	return out, n > 0
}

func addrKey(profileID, componentID int64, url string) string {
	var b strings.Builder
	b.Grow(len(url) + 24)
	writeInt(&b, profileID)
	b.WriteByte('/')
	writeInt(&b, componentID)
	b.WriteByte('/')
	b.WriteString(url)
	return b.String()
}

func writeInt(b *strings.Builder, v int64) {
	var tmp [20]byte
	i := len(tmp)
	u := uint64(v)
	if v < 0 {
		u = uint64(-v)
	}
	for {
		i--
		tmp[i] = byte('0' + u%10)
		u /= 10
		if u == 0 {
			break
		}
	}
	if v < 0 {
		i--
		tmp[i] = '-'
	}
	b.Write(tmp[i:])
}

func lower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || ('A' <= c && c <= 'Z') {
			return string(appendLower(make([]byte, 0, len(s)), s))
		}
	}
	return s
}

// appendLower appends s lower-cased, matching Java's toLowerCase for the
// characters HSA-IDs and namespaces use; it allocates only if dst is too small.
func appendLower(dst []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		dst = utf8.AppendRune(dst, unicode.ToLower(r))
		i += n
	}
	return dst
}
