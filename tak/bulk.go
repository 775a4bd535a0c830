package tak

import (
	"runtime"
	"sync"
)

// Bulk loading: how ReadSnapshot builds a catalog.
//
// Replaying a snapshot through a Txn costs what a million admin changes
// cost: a lookup per reference and per natural key, an incremental
// copy-on-write update of every index per entity, shard maps and flat
// shards that grow (and are rehashed) as they fill, and a delta record per
// entity that is then thrown away. A snapshot was validated when its
// entities were committed, so the loader builds each index directly
// instead: every entity map and flat table is sized from counts and filled
// once, references are resolved through position tables, and a routing key
// costs one XOR per route, the namespace and address hashes being computed
// once per contract and per address.
//
// The result is the catalog a replay builds, index for index: the same
// entries, the same route and authorization sets in the same (file, that is
// id) order, flat shards of the same capacity (capFor of their entry count,
// which is where incremental growth also ends), refs and children of the
// same content. Only the layout of probe runs may differ, which no lookup
// can observe.
//
// The loader takes only what a replay would accept without effect on the
// result: sections in dependency order, each kind once; non-zero, unique ids;
// non-empty and unique names; every reference resolving; no validity period
// ending before it starts. Anything else (a corrupt or hand-made snapshot)
// goes through the replay, so its outcome, an error or an odd but accepted
// catalog, is exactly what it always was.

// snapSection is one entity section of a snapshot, in file order.
type snapSection struct {
	kind Kind
	n    int
}

// snapEntities holds the decoded entities of a snapshot, per kind in file
// order, and the sections they came in.
type snapEntities struct {
	sections  []snapSection
	profiles  []RivProfile
	contracts []Contract
	comps     []Component
	las       []LogicalAddress
	addrs     []CallAddress
	routes    []Route
	auths     []Authorization
	filters   []Filter
	cats      []Categorization
}

// replay builds the catalog through a lenient Txn, as every version before
// the bulk loader did. The caller seals it (seq, ids, tree, timeouts, log).
func (e *snapEntities) replay() (*Catalog, error) {
	t := New().Begin()
	t.Lenient, t.keepIDs = true, true
	var at [KindCategorization + 1]int
	for _, s := range e.sections {
		for j := 0; j < s.n; j++ {
			i := at[s.kind]
			at[s.kind]++
			var err error
			switch s.kind {
			case KindRivProfile:
				_, err = t.PutRivProfile(e.profiles[i])
			case KindContract:
				_, err = t.PutContract(e.contracts[i])
			case KindComponent:
				_, err = t.PutComponent(e.comps[i])
			case KindLogicalAddress:
				_, err = t.PutLogicalAddress(e.las[i])
			case KindCallAddress:
				_, err = t.PutCallAddress(e.addrs[i])
			case KindRoute:
				_, err = t.PutRoute(e.routes[i])
			case KindAuthorization:
				_, err = t.PutAuthorization(e.auths[i])
			case KindFilter:
				_, err = t.PutFilter(e.filters[i])
			case KindCategorization:
				_, err = t.PutCategorization(e.cats[i])
			}
			if err != nil {
				return nil, err
			}
		}
	}
	c := t.c
	return &c, nil
}

// idIndex maps the ids of one kind to positions in its decoded slice: a
// dense table when the ids are (as they nearly always are), a map otherwise.
type idIndex struct {
	min   int64
	dense []int32 // position+1 by id-min; 0 is absent
	m     map[int64]int32
}

// indexIDs indexes n ids; false if one is 0 or repeated.
func indexIDs(n int, id func(int) int64) (idIndex, bool) {
	var x idIndex
	if n == 0 {
		return x, true
	}
	lo, hi := id(0), id(0)
	for i := 1; i < n; i++ {
		v := id(i)
		lo, hi = min(lo, v), max(hi, v)
	}
	if span := uint64(hi) - uint64(lo); span < uint64(2*n+1024) {
		x.min, x.dense = lo, make([]int32, span+1)
		for i := 0; i < n; i++ {
			v := id(i)
			p := &x.dense[uint64(v)-uint64(lo)]
			if v == 0 || *p != 0 {
				return x, false
			}
			*p = int32(i + 1)
		}
		return x, true
	}
	x.m = make(map[int64]int32, n)
	for i := 0; i < n; i++ {
		v := id(i)
		if _, dup := x.m[v]; v == 0 || dup {
			return x, false
		}
		x.m[v] = int32(i)
	}
	return x, true
}

// pos returns the position of id, or -1.
func (x *idIndex) pos(id int64) int {
	if x.dense != nil {
		if o := uint64(id) - uint64(x.min); o < uint64(len(x.dense)) {
			return int(x.dense[o]) - 1
		}
		return -1
	}
	if p, ok := x.m[id]; ok {
		return int(p)
	}
	return -1
}

// bulkPMap builds a pmap of n entries, key(i) to val(i), each shard map
// allocated at its final size and filled in one go, while it is in cache.
// A later duplicate key wins, as with set; Len counts distinct keys. The
// root and shards carry no owner tag (0), which no transaction has, so the
// first write to any of them copies it.
func bulkPMap[K comparable, V any](hash func(K) uint64, n int, key func(int) K, val func(int) V) pmap[K, V] {
	m := newPMap[K, V](hash)
	if n == 0 {
		return m
	}
	order, start := byShard(n, func(i int) int { return shardOf(hash(key(i))) })
	for s := 0; s < nShards; s++ {
		idx := order[start[s]:start[s+1]]
		if len(idx) == 0 {
			continue
		}
		sm := make(map[K]V, len(idx))
		for _, i := range idx {
			sm[key(int(i))] = val(int(i))
		}
		m.r.m[s] = sm
		m.n += len(sm)
	}
	return m
}

// byShard orders 0..n-1 by shard (a stable counting sort): order[start[s]:
// start[s+1]] are the items of shard s, in their original order.
func byShard(n int, shard func(int) int) (order []int32, start *[nShards + 1]int32) {
	start = new([nShards + 1]int32)
	sh := make([]uint16, n)
	for i := range sh {
		s := shard(i)
		sh[i] = uint16(s)
		start[s+1]++
	}
	for s := 0; s < nShards; s++ {
		start[s+1] += start[s]
	}
	order = make([]int32, n)
	next := *start
	for i, s := range sh {
		order[next[s]] = int32(i)
		next[s]++
	}
	return order, start
}

// bulkFlat builds a flat table of keys (normalised in place): put is called
// for each key in order, with its value slot and whether an earlier key was
// equal. Each shard is allocated once at capFor of its entries, the capacity
// incremental inserts end at, so a bulk-built table probes like a built-up
// one. Like bulkPMap, it carries no owner tags.
func bulkFlat[V any](keys []hkey, put func(p *V, i int, existed bool)) flat[V] {
	if len(keys) == 0 {
		return flat[V]{}
	}
	for i := range keys {
		keys[i] = norm(keys[i])
	}
	order, start := byShard(len(keys), func(i int) int { return flatShardOf(keys[i]) })
	r := new(flatRoot[V])
	total := 0
	for s := 0; s < nShards; s++ {
		idx := order[start[s]:start[s+1]]
		if len(idx) == 0 {
			continue
		}
		c := capFor(len(idx))
		sh := flatShard[V]{g: make([]group[V], c/groupSlots), f: make([]uint64, max(1, c/16))}
		mask := uint64(c - 1)
		n := 0
		for _, i := range idx {
			k := keys[i]
			j := k[0] & mask
			for *sh.key(j) != (hkey{}) && *sh.key(j) != k {
				j = (j + 1) & mask
			}
			existed := *sh.key(j) == k
			if !existed {
				*sh.key(j) = k
				sh.addFilter(k)
				n++
			}
			put(sh.val(j), int(i), existed)
		}
		if w := capFor(n); w < c { // duplicates: shrink to what inserting one by one ends at
			sh = sh.copyTo(w)
		}
		r.s[s], r.n[s] = sh, int32(n)
		total += n
	}
	return flat[V]{r: r, n: total}
}

// hsaTreeBulk is HSATreeFromEdges built in one pass: the same nodes, a later
// duplicate id winning.
func hsaTreeBulk(edges []HSAParent) *HSATree {
	keys := make([]hkey, len(edges))
	for i := range edges {
		keys[i] = hsaKey(edges[i].HSAID)
	}
	h := &HSATree{}
	h.nodes = bulkFlat(keys, func(p *hsaNode, i int, _ bool) {
		e := &edges[i]
		n := hsaNode{parent: e.Parent, id: e.HSAID}
		if e.Parent != "" {
			n.parentL, n.parentH = laKeys(e.Parent)
		}
		*p = n
	})
	return h
}

// windows caches windowOf per validity period: a catalog's periods are few,
// and each windowOf costs two zone conversions.
type windows struct {
	lastFrom, lastTo Date
	last             window
	ok               bool
	m                map[[2]Date]window
}

func (w *windows) of(from, to Date) window {
	if w.ok && from == w.lastFrom && to == w.lastTo {
		return w.last
	}
	if w.m == nil {
		w.m = make(map[[2]Date]window)
	}
	win, ok := w.m[[2]Date{from, to}]
	if !ok {
		win = windowOf(from, to)
		if len(w.m) < 1<<16 {
			w.m[[2]Date{from, to}] = win
		}
	}
	w.lastFrom, w.lastTo, w.last, w.ok = from, to, win, true
	return win
}

// parallel runs fns on up to GOMAXPROCS goroutines and waits for them.
func parallel(fns ...func()) {
	workers := min(runtime.GOMAXPROCS(0), len(fns))
	if workers <= 1 {
		for _, fn := range fns {
			fn()
		}
		return
	}
	ch := make(chan func())
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for fn := range ch {
				fn()
			}
		}()
	}
	for _, fn := range fns {
		ch <- fn
	}
	close(ch)
	wg.Wait()
}

// addrTarget is what a route takes from its call address.
type addrTarget struct {
	url, profile, producer string
}

// bulk builds the catalog directly (see above); false means the entities
// need the replay. The caller seals it (seq, ids, tree, timeouts, log).
func (e *snapEntities) bulk() (*Catalog, bool) {
	last := Kind(0)
	for _, s := range e.sections {
		if s.kind <= last {
			return nil, false
		}
		last = s.kind
	}
	var (
		idx  [KindCategorization + 1]idIndex
		refs [KindCategorization + 1][]int32 // live references by position
		ok   = true
	)
	index := func(k Kind, n int, id func(int) int64) {
		var good bool
		idx[k], good = indexIDs(n, id)
		refs[k] = make([]int32, n)
		ok = ok && good
	}
	index(KindRivProfile, len(e.profiles), func(i int) int64 { return e.profiles[i].ID })
	index(KindContract, len(e.contracts), func(i int) int64 { return e.contracts[i].ID })
	index(KindComponent, len(e.comps), func(i int) int64 { return e.comps[i].ID })
	index(KindLogicalAddress, len(e.las), func(i int) int64 { return e.las[i].ID })
	index(KindCallAddress, len(e.addrs), func(i int) int64 { return e.addrs[i].ID })
	// Routes and categorizations are referred to by nothing, and
	// authorizations and filters only by filters and categorizations: their
	// ids need only be non-zero here, and unique, which their maps' sizes
	// tell below. A million authorizations without filters cost no table.
	for _, v := range e.routes {
		ok = ok && v.ID != 0
	}
	for _, v := range e.cats {
		ok = ok && v.ID != 0
	}
	if len(e.filters) > 0 {
		index(KindAuthorization, len(e.auths), func(i int) int64 { return e.auths[i].ID })
	} else {
		for _, v := range e.auths {
			ok = ok && v.ID != 0
		}
	}
	if len(e.cats) > 0 {
		index(KindFilter, len(e.filters), func(i int) int64 { return e.filters[i].ID })
	} else {
		for _, v := range e.filters {
			ok = ok && v.ID != 0
		}
	}
	if !ok {
		return nil, false
	}
	for _, v := range e.profiles {
		ok = ok && v.Name != ""
	}
	for _, v := range e.contracts {
		ok = ok && v.Namespace != ""
	}
	for _, v := range e.comps {
		ok = ok && v.HSAID != ""
	}
	for _, v := range e.las {
		ok = ok && v.HSAID != ""
	}
	if !ok {
		return nil, false
	}

	// Per-entity hashes, computed once.
	hns := make([]hkey, len(e.contracts)) // namespace
	rbase := make([]hkey, len(e.contracts))
	for i := range e.contracts {
		hns[i] = nsSeeds.lowerHash(e.contracts[i].Namespace)
		rbase[i] = routeBase(hns[i])
	}
	hla := make([]hkey, len(e.las))
	for i := range e.las {
		hla[i] = laSeeds.lowerHash(e.las[i].HSAID)
	}
	hcons := make([]hkey, len(e.comps))
	for i := range e.comps {
		hcons[i] = conSeeds.lowerHash(e.comps[i].HSAID)
	}

	// Call addresses.
	tgts := make([]addrTarget, len(e.addrs))
	for i := range e.addrs {
		a := &e.addrs[i]
		p, c := idx[KindRivProfile].pos(a.ProfileID), idx[KindComponent].pos(a.ComponentID)
		if p < 0 || c < 0 {
			return nil, false
		}
		refs[KindRivProfile][p]++
		refs[KindComponent][c]++
		tgts[i] = addrTarget{a.URL, e.profiles[p].Name, e.comps[c].HSAID}
	}

	// Routes and authorizations: references, keys and windows. The two
	// passes count references into arrays of their own, so they can run
	// side by side; the counts are added afterwards.
	var (
		rkeys   = make([]hkey, len(e.routes))
		raddr   = make([]int32, len(e.routes))
		rwin    = make([]window, len(e.routes))
		rrefs   [KindCategorization + 1][]int32
		routeOK = true

		akeys  = make([]hkey, len(e.auths))
		astar  []int32 // positions of the authorizations at "*"
		awin   = make([]window, len(e.auths))
		arefs  [KindCategorization + 1][]int32
		authOK = true
	)
	for _, k := range []Kind{KindLogicalAddress, KindContract, KindCallAddress} {
		rrefs[k] = make([]int32, len(refs[k]))
	}
	for _, k := range []Kind{KindLogicalAddress, KindContract, KindComponent} {
		arefs[k] = make([]int32, len(refs[k]))
	}
	parallel(func() {
		var ws windows
		for i := range e.routes {
			r := &e.routes[i]
			la, con, addr := idx[KindLogicalAddress].pos(r.LogicalAddressID), idx[KindContract].pos(r.ContractID), idx[KindCallAddress].pos(r.CallAddressID)
			if la < 0 || con < 0 || addr < 0 || r.From > r.To {
				routeOK = false
				return
			}
			rrefs[KindLogicalAddress][la]++
			rrefs[KindContract][con]++
			rrefs[KindCallAddress][addr]++
			rkeys[i] = rbase[con].xor(hla[la])
			raddr[i] = int32(addr)
			rwin[i] = ws.of(r.From, r.To)
		}
	}, func() {
		var ws windows
		for i := range e.auths {
			a := &e.auths[i]
			la, con, cons := idx[KindLogicalAddress].pos(a.LogicalAddressID), idx[KindContract].pos(a.ContractID), idx[KindComponent].pos(a.ConsumerID)
			if la < 0 || con < 0 || cons < 0 || a.From > a.To {
				authOK = false
				return
			}
			arefs[KindLogicalAddress][la]++
			arefs[KindContract][con]++
			arefs[KindComponent][cons]++
			akeys[i] = authBase(hns[con], hcons[cons]).xor(hla[la])
			if hla[la] == starHash {
				astar = append(astar, int32(i))
			}
			awin[i] = ws.of(a.From, a.To)
		}
	})
	if !routeOK || !authOK {
		return nil, false
	}
	for k := range refs {
		for _, add := range [][]int32{rrefs[k], arefs[k]} {
			for i, n := range add {
				refs[k][i] += n
			}
		}
	}

	// Filters and categorizations: references and children, in file order.
	filterOf := make(map[int64][]int64)
	for i := range e.filters {
		f := &e.filters[i]
		a := idx[KindAuthorization].pos(f.AuthorizationID)
		if a < 0 {
			return nil, false
		}
		refs[KindAuthorization][a]++
		filterOf[f.AuthorizationID] = append(filterOf[f.AuthorizationID], f.ID)
	}
	catOf := make(map[int64][]int64)
	for i := range e.cats {
		v := &e.cats[i]
		f := idx[KindFilter].pos(v.FilterID)
		if f < 0 {
			return nil, false
		}
		refs[KindFilter][f]++
		catOf[v.FilterID] = append(catOf[v.FilterID], v.ID)
	}

	c := &Catalog{hsa: EmptyHSATree(), timeouts: &Timeouts{}}
	idOf := func(k Kind, i int) int64 {
		switch k {
		case KindRivProfile:
			return e.profiles[i].ID
		case KindContract:
			return e.contracts[i].ID
		case KindComponent:
			return e.comps[i].ID
		case KindLogicalAddress:
			return e.las[i].ID
		case KindCallAddress:
			return e.addrs[i].ID
		case KindAuthorization:
			return e.auths[i].ID
		case KindFilter:
			return e.filters[i].ID
		}
		panic("tak: no references to " + k.String())
	}
	lowerAll := func(n int, name func(int) string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = lower(name(i))
		}
		return out
	}
	natural := func(n int, name func(int) string, id func(int) int64) (pmap[string, int64], bool) {
		keys := lowerAll(n, name)
		m := bulkPMap(hashString, n, func(i int) string { return keys[i] }, id)
		return m, m.Len() == n // a repeated name is a conflict: replay reports it
	}
	var namesOK [4]bool
	parallel(func() { // the longest first
		c.routeIdx = bulkFlat(rkeys, func(p *routeSet, i int, existed bool) {
			r := &e.routes[i]
			a := &tgts[raddr[i]]
			t := RouteTarget{RouteID: r.ID, URL: a.url, Profile: a.profile, Producer: a.producer, From: r.From, To: r.To, w: rwin[i]}
			if existed {
				*p = p.with(t)
			} else {
				*p = routeSet{first: t}
			}
		})
	}, func() {
		// Split off the keys at "*" (see authStar), keeping file order in both.
		put := func(pos []int32) func(p *authSet, i int, existed bool) {
			return func(p *authSet, i int, existed bool) {
				j := i
				if pos != nil {
					j = int(pos[i])
				}
				a := &e.auths[j]
				t := authTarget{id: a.ID, from: a.From, to: a.To, w: awin[j]}
				if existed {
					*p = p.with(t)
				} else {
					*p = authSet{first: t}
				}
			}
		}
		if len(astar) == 0 {
			c.authIdx = bulkFlat(akeys, put(nil))
			return
		}
		skeys := make([]hkey, len(astar))
		for i, j := range astar {
			skeys[i] = akeys[j]
		}
		rest := make([]int32, 0, len(akeys)-len(astar))
		for i, s := 0, 0; i < len(akeys); i++ {
			if s < len(astar) && int(astar[s]) == i {
				s++
				continue
			}
			rest = append(rest, int32(i))
		}
		mkeys := make([]hkey, len(rest))
		for i, j := range rest {
			mkeys[i] = akeys[j]
		}
		c.authIdx = bulkFlat(mkeys, put(rest))
		c.authStar = bulkFlat(skeys, put(astar))
	}, func() {
		c.auths = bulkPMap(hashInt, len(e.auths), func(i int) int64 { return e.auths[i].ID }, func(i int) Authorization { return e.auths[i] })
	}, func() {
		c.routes = bulkPMap(hashInt, len(e.routes), func(i int) int64 { return e.routes[i].ID }, func(i int) Route { return e.routes[i] })
	}, func() {
		c.profiles = bulkPMap(hashInt, len(e.profiles), func(i int) int64 { return e.profiles[i].ID }, func(i int) RivProfile { return e.profiles[i] })
		c.contracts = bulkPMap(hashInt, len(e.contracts), func(i int) int64 { return e.contracts[i].ID }, func(i int) Contract { return e.contracts[i] })
		c.comps = bulkPMap(hashInt, len(e.comps), func(i int) int64 { return e.comps[i].ID }, func(i int) Component { return e.comps[i] })
		c.las = bulkPMap(hashInt, len(e.las), func(i int) int64 { return e.las[i].ID }, func(i int) LogicalAddress { return e.las[i] })
		c.addrs = bulkPMap(hashInt, len(e.addrs), func(i int) int64 { return e.addrs[i].ID }, func(i int) CallAddress { return e.addrs[i] })
		c.filters = bulkPMap(hashInt, len(e.filters), func(i int) int64 { return e.filters[i].ID }, func(i int) Filter { return e.filters[i] })
		c.cats = bulkPMap(hashInt, len(e.cats), func(i int) int64 { return e.cats[i].ID }, func(i int) Categorization { return e.cats[i] })

		c.profileByName, namesOK[0] = natural(len(e.profiles), func(i int) string { return e.profiles[i].Name }, func(i int) int64 { return e.profiles[i].ID })
		c.contractByNS, namesOK[1] = natural(len(e.contracts), func(i int) string { return e.contracts[i].Namespace }, func(i int) int64 { return e.contracts[i].ID })
		c.compByHSA, namesOK[2] = natural(len(e.comps), func(i int) string { return e.comps[i].HSAID }, func(i int) int64 { return e.comps[i].ID })
		c.laByHSA, namesOK[3] = natural(len(e.las), func(i int) string { return e.las[i].HSAID }, func(i int) int64 { return e.las[i].ID })
		// Call addresses may share a key (lenient imports): the later one
		// holds it, as when put one by one.
		akeys := make([]string, len(e.addrs))
		for i := range e.addrs {
			akeys[i] = addrKey(e.addrs[i].ProfileID, e.addrs[i].ComponentID, e.addrs[i].URL)
		}
		c.addrByKey = bulkPMap(hashString, len(akeys), func(i int) string { return akeys[i] }, func(i int) int64 { return e.addrs[i].ID })

		type refN struct {
			r ref
			n int32
		}
		var rs []refN
		for k := range refs {
			for i, n := range refs[k] {
				if n != 0 {
					rs = append(rs, refN{ref{Kind(k), idOf(Kind(k), i)}, n})
				}
			}
		}
		c.refs = bulkPMap(hashRef, len(rs), func(i int) ref { return rs[i].r }, func(i int) int32 { return rs[i].n })

		type child struct {
			r   ref
			ids []int64
		}
		cs := make([]child, 0, len(filterOf)+len(catOf))
		for id, ids := range filterOf {
			cs = append(cs, child{ref{KindAuthorization, id}, ids[:len(ids):len(ids)]})
		}
		for id, ids := range catOf {
			cs = append(cs, child{ref{KindFilter, id}, ids[:len(ids):len(ids)]})
		}
		c.children = bulkPMap(hashRef, len(cs), func(i int) ref { return cs[i].r }, func(i int) []int64 { return cs[i].ids })
	})
	if namesOK != [4]bool{true, true, true, true} || c.routes.Len() != len(e.routes) || c.auths.Len() != len(e.auths) ||
		c.filters.Len() != len(e.filters) || c.cats.Len() != len(e.cats) {
		return nil, false
	}
	return c, true
}
