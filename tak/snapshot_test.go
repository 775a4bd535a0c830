package tak

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
)

func TestSnapshotRoundTrip(t *testing.T) {
	c := vpTestCatalog(t)
	tx := c.Begin()
	r := c.Routes()[0]
	if err := tx.Delete(KindRoute, r.ID); err != nil {
		t.Fatal(err)
	}
	to, err := NewTimeouts([]TimeoutEntry{{Contract: DefaultTimeoutsName, RouteTimeout: 30000, ProducerTimeout: 29000}, {Contract: nsCert, ProducerTimeout: 1500}})
	if err != nil {
		t.Fatal(err)
	}
	tx.SetTimeouts(to)
	c = tx.Commit(ChangeMeta{Actor: "bob", Source: "admin"})

	var buf bytes.Buffer
	if err := c.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSnapshot(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if got.Seq() != c.Seq() {
		t.Errorf("seq %d, want %d", got.Seq(), c.Seq())
	}
	for _, k := range Kinds {
		if got.Counts()[k] != c.Counts()[k] {
			t.Errorf("%s: %d, want %d", k, got.Counts()[k], c.Counts()[k])
		}
	}
	if !reflect.DeepEqual(got.Routes(), c.Routes()) || !reflect.DeepEqual(got.Authorizations(), c.Authorizations()) {
		t.Error("routes or authorizations differ after restore")
	}
	if !reflect.DeepEqual(got.History(0), c.History(0)) {
		t.Errorf("history %+v, want %+v", got.History(0), c.History(0))
	}
	if got.Timeouts().Producer(nsCert).Milliseconds() != 1500 {
		t.Error("timeouts lost")
	}
	o := &RoutingOptions{Delimiter: "#"}
	if _, st := got.ResolveRoute(nsAct, "SE0000000001-1234", now, o, nil); st != RouteFound {
		t.Error("restored catalog does not climb the HSA tree")
	}
	// A rollback across a restore still works: deltas travel in the snapshot.
	rb := got.Begin()
	if err := rb.RevertTo(got.Seq() - 1); err != nil {
		t.Fatal(err)
	}
	if _, ok := rb.Commit(ChangeMeta{}).Route(r.ID); !ok {
		t.Error("rollback after restore did not bring the route back")
	}
	// Ids continue after the restored ones.
	nt := got.Begin()
	p, err := nt.PutRivProfile(RivProfile{Name: "RIVTABP30"})
	if err != nil {
		t.Fatal(err)
	}
	if p.ID <= int64(len(got.RivProfiles())) {
		t.Errorf("new id %d reuses a restored id", p.ID)
	}

	// Corruption is detected, not half-applied.
	b := buf.Bytes()
	b[len(b)/2] ^= 0xff
	if _, err := ReadSnapshot(bytes.NewReader(b)); !errors.Is(err, ErrSnapshotCorrupt) {
		t.Errorf("corrupt snapshot: err = %v, want ErrSnapshotCorrupt", err)
	}
}

// BenchmarkSnapshotMillion times writing and restoring the million-entry catalog.
func BenchmarkSnapshotMillion(b *testing.B) {
	c := buildBig(b)
	var buf bytes.Buffer
	b.Run("write", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			buf.Reset()
			if err := c.WriteSnapshot(&buf); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(buf.Len())/(1<<20), "MiB")
	})
	b.Run("restore", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := ReadSnapshot(bytes.NewReader(buf.Bytes())); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// genCatalog builds a catalog with every kind of entity and index a snapshot
// carries, through several commits: routes and authorizations at "*" and at
// addresses that differ only in case, key sets of more than one route
// (lenient), deleted and renamed entities (so ids have gaps), filters,
// categorizations, an HSA tree, timeouts and history with deltas.
func genCatalog(tb testing.TB, n int) *Catalog {
	tb.Helper()
	must := func(err error) {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
	}
	c := New()
	tx := c.Begin()
	tx.Lenient = true
	la := func(i int) string {
		if i%97 == 0 {
			return "*"
		}
		if i%13 == 0 {
			return fmt.Sprintf("se-mixed-%d", i%50) // lower case; Se-Mixed-99 below is mixed
		}
		return fmt.Sprintf("SE%010d-%04d", i%(n/4+1), i%7)
	}
	for i := 0; i < n; i++ {
		ns := fmt.Sprintf("urn:riv:test:Thing%dResponder:%d", i%9, 1+i%2)
		prod := fmt.Sprintf("PROD-%d", i%31)
		from := from2013.AddDays(i % 5)
		if _, err := tx.AddRoute(ns, la(i), prod, []string{"RIVTABP20", "RIVTABP21"}[i%2], "https://"+prod+".example.se/"+fmt.Sprint(i%3), from, to2123); err != nil {
			tb.Fatal(err)
		}
		a, err := tx.AddAuthorization(fmt.Sprintf("CONS-%d", i%17), ns, la(i+1), []string{"I1", "I2", ""}[i%3], from, to2123.AddDays(-(i % 4)))
		must(err)
		if i%10 == 0 {
			f, err := tx.PutFilter(Filter{AuthorizationID: a.ID, ServiceDomain: fmt.Sprintf("riv:domain:%d", i%4)})
			must(err)
			for j := 0; j < i%3+1; j++ {
				_, err := tx.PutCategorization(Categorization{FilterID: f.ID, Category: fmt.Sprintf("cat-%d", j)})
				must(err)
			}
		}
	}
	_, err := tx.PutLogicalAddress(LogicalAddress{HSAID: "Se-Mixed-99", Description: "upper and\nlower case"})
	must(err)
	var units []HSAUnit
	for j := 0; j < n/4+1; j += 3 {
		units = append(units,
			HSAUnit{fmt.Sprintf("SE%010d-0001", j), fmt.Sprintf("ou=u%d,c=SE", j), "unit"},
			HSAUnit{fmt.Sprintf("SE%010d-CHILD", j), fmt.Sprintf("ou=c%d,ou=u%d,c=SE", j, j), "child"},
			HSAUnit{fmt.Sprintf("se%010d-child", j), fmt.Sprintf("ou=d%d,ou=u%d,c=SE", j, j), "lower-case child"})
	}
	tree, err := BuildHSATree(units)
	must(err)
	tx.SetHSATree(tree)
	to, err := NewTimeouts([]TimeoutEntry{{Contract: DefaultTimeoutsName, RouteTimeout: 30000, ProducerTimeout: 29000}, {Contract: "urn:riv:test:Thing1Responder:1", ProducerTimeout: 1500}})
	must(err)
	tx.SetTimeouts(to)
	c = tx.Commit(ChangeMeta{Actor: "import", Source: "import"})

	// Deletes, updates and a rename, committed separately.
	tx = c.Begin()
	tx.Lenient = true
	for i, r := range c.Routes() {
		if i%11 == 0 {
			must(tx.Delete(KindRoute, r.ID))
		}
	}
	for i, a := range c.Authorizations() {
		if i%23 == 0 && len(tx.Catalog().FiltersOf(a.ID)) == 0 {
			must(tx.Delete(KindAuthorization, a.ID))
		}
	}
	for i, v := range c.Categorizations() {
		if i%5 == 0 {
			must(tx.Delete(KindCategorization, v.ID))
		}
	}
	con := c.Contracts()[2]
	con.Namespace += "-renamed"
	_, err = tx.PutContract(con)
	must(err)
	comp, _ := c.ComponentByHSAID("CONS-3")
	comp.HSAID = "Cons-Three"
	_, err = tx.PutComponent(comp)
	must(err)
	c = tx.Commit(ChangeMeta{Actor: "alice", Source: "admin"})
	return c
}

// catalogState is everything a catalog holds, as plain values: every map and
// index by content, so that two catalogs built differently compare equal
// exactly when no lookup can tell them apart.
func catalogState(c *Catalog) map[string]any {
	pm := func(m any) any {
		out := map[any]any{}
		switch m := m.(type) {
		case *pmap[int64, RivProfile]:
			m.each(func(k int64, v RivProfile) bool { out[k] = v; return true })
		case *pmap[int64, Contract]:
			m.each(func(k int64, v Contract) bool { out[k] = v; return true })
		case *pmap[int64, Component]:
			m.each(func(k int64, v Component) bool { out[k] = v; return true })
		case *pmap[int64, LogicalAddress]:
			m.each(func(k int64, v LogicalAddress) bool { out[k] = v; return true })
		case *pmap[int64, CallAddress]:
			m.each(func(k int64, v CallAddress) bool { out[k] = v; return true })
		case *pmap[int64, Route]:
			m.each(func(k int64, v Route) bool { out[k] = v; return true })
		case *pmap[int64, Authorization]:
			m.each(func(k int64, v Authorization) bool { out[k] = v; return true })
		case *pmap[int64, Filter]:
			m.each(func(k int64, v Filter) bool { out[k] = v; return true })
		case *pmap[int64, Categorization]:
			m.each(func(k int64, v Categorization) bool { out[k] = v; return true })
		case *pmap[string, int64]:
			m.each(func(k string, v int64) bool { out[k] = v; return true })
		case *pmap[ref, int32]:
			m.each(func(k ref, v int32) bool { out[k] = v; return true })
		case *pmap[ref, []int64]:
			m.each(func(k ref, v []int64) bool { out[k] = fmt.Sprint(v); return true })
		default:
			panic(fmt.Sprintf("%T", m))
		}
		return out
	}
	routes := map[hkey][]RouteTarget{}
	c.routeIdx.each(func(k hkey, s *routeSet) bool {
		for i := 0; i < s.len(); i++ {
			routes[k] = append(routes[k], *s.at(i))
		}
		return true
	})
	auths := func(f *flat[authSet]) map[hkey][]authTarget {
		out := map[hkey][]authTarget{}
		f.each(func(k hkey, s *authSet) bool {
			for i := 0; i < s.len(); i++ {
				out[k] = append(out[k], *s.at(i))
			}
			return true
		})
		return out
	}
	nodes := map[hkey]hsaNode{}
	c.hsa.nodes.each(func(k hkey, n *hsaNode) bool { nodes[k] = *n; return true })
	var log []string
	for _, lc := range c.log.records {
		b, _ := json.Marshal(snapshotChange{lc.rec, lc.delta})
		log = append(log, string(b))
	}
	return map[string]any{
		"seq": c.seq, "ids": c.ids, "count": c.count,
		"profiles": pm(&c.profiles), "contracts": pm(&c.contracts), "comps": pm(&c.comps), "las": pm(&c.las),
		"addrs": pm(&c.addrs), "routes": pm(&c.routes), "auths": pm(&c.auths), "filters": pm(&c.filters), "cats": pm(&c.cats),
		"profileByName": pm(&c.profileByName), "contractByNS": pm(&c.contractByNS), "compByHSA": pm(&c.compByHSA),
		"laByHSA": pm(&c.laByHSA), "addrByKey": pm(&c.addrByKey), "refs": pm(&c.refs), "children": pm(&c.children),
		"routeIdx": routes, "authIdx": auths(&c.authIdx), "authStar": auths(&c.authStar),
		"lens": []int{c.routeIdx.Len(), c.authIdx.Len(), c.authStar.Len(), c.hsa.Len(), c.profiles.Len(), c.routes.Len(), c.auths.Len(), c.refs.Len(), c.children.Len()},
		"hsa":  nodes, "timeouts": c.timeouts.Entries, "log": log, "deltas": c.log.deltas,
	}
}

func diffStates(t *testing.T, what string, got, want map[string]any) {
	t.Helper()
	for k := range want {
		if !reflect.DeepEqual(got[k], want[k]) {
			t.Errorf("%s: %s differs", what, k)
		}
	}
}

func restore(t testing.TB, c *Catalog, replay bool) *Catalog {
	t.Helper()
	var buf bytes.Buffer
	if err := c.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	defer func(old bool) { snapshotReplay = old }(snapshotReplay)
	snapshotReplay = replay
	got, err := ReadSnapshot(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// sameAnswers checks that two catalogs answer every listing and a sample of
// lookups alike.
func sameAnswers(t *testing.T, got, want *Catalog, qs []query) {
	t.Helper()
	lists := []struct {
		name string
		f    func(*Catalog) any
	}{
		{"profiles", func(c *Catalog) any { return c.RivProfiles() }},
		{"contracts", func(c *Catalog) any { return c.Contracts() }},
		{"components", func(c *Catalog) any { return c.Components() }},
		{"las", func(c *Catalog) any { return c.LogicalAddresses() }},
		{"addrs", func(c *Catalog) any { return c.CallAddresses() }},
		{"routes", func(c *Catalog) any { return c.Routes() }},
		{"auths", func(c *Catalog) any { return c.Authorizations() }},
		{"filters", func(c *Catalog) any { return c.Filters() }},
		{"cats", func(c *Catalog) any { return c.Categorizations() }},
		{"counts", func(c *Catalog) any { return c.Counts() }},
		{"seq", func(c *Catalog) any { return c.Seq() }},
		{"history", func(c *Catalog) any { return c.History(0) }},
		{"edges", func(c *Catalog) any { return c.HSATree().Edges() }},
		{"timeouts", func(c *Catalog) any { return c.Timeouts().Entries }},
	}
	for _, l := range lists {
		if !reflect.DeepEqual(l.f(got), l.f(want)) {
			t.Errorf("%s differ after restore", l.name)
		}
	}
	for _, a := range want.Authorizations() {
		if !reflect.DeepEqual(got.FiltersOf(a.ID), want.FiltersOf(a.ID)) || got.References(KindAuthorization, a.ID) != want.References(KindAuthorization, a.ID) {
			t.Fatalf("filters of authorization %d differ", a.ID)
		}
	}
	for _, l := range want.LogicalAddresses() {
		if got.References(KindLogicalAddress, l.ID) != want.References(KindLogicalAddress, l.ID) {
			t.Fatalf("references to %s differ", l.HSAID)
		}
		if g, _ := got.LogicalAddressByHSAID(l.HSAID); g != l {
			t.Fatalf("address %s by HSA-ID: %+v", l.HSAID, g)
		}
	}
	o := &RoutingOptions{Delimiter: "#"}
	for _, q := range qs {
		for _, d := range []int64{now, from2013.Time().Unix() + 3600, to2123.Time().Unix() + 86400*2} {
			tg, sg := got.ResolveRoute(q.ns, q.la, d, o, nil)
			tw, sw := want.ResolveRoute(q.ns, q.la, d, o, nil)
			if sg != sw || tg != tw {
				t.Fatalf("ResolveRoute(%q, %q) = %+v %d, want %+v %d", q.ns, q.la, tg, sg, tw, sw)
			}
			if ag, aw := got.Authorize(q.consumer, q.ns, q.la, d, o, nil), want.Authorize(q.consumer, q.ns, q.la, d, o, nil); ag != aw {
				t.Fatalf("Authorize(%+v) = %v, want %v", q, ag, aw)
			}
		}
		if !reflect.DeepEqual(got.RoutesFor(q.ns, q.la), want.RoutesFor(q.ns, q.la)) ||
			!reflect.DeepEqual(got.AuthorizationsFor(q.ns, q.la, q.consumer), want.AuthorizationsFor(q.ns, q.la, q.consumer)) {
			t.Fatalf("RoutesFor/AuthorizationsFor(%+v) differ", q)
		}
	}
}

// genQueries asks for every route and authorization key of c, and for the
// HSA children of every address (a climb), in three letter cases.
func genQueries(c *Catalog) []query {
	var qs []query
	for _, r := range c.Routes() {
		la, _ := c.LogicalAddress(r.LogicalAddressID)
		con, _ := c.Contract(r.ContractID)
		qs = append(qs, query{con.Namespace, la.HSAID, "CONS-1"}, query{strings.ToUpper(con.Namespace), strings.ToLower(la.HSAID) + "-child", "cons-2"})
	}
	for _, a := range c.Authorizations() {
		la, _ := c.LogicalAddress(a.LogicalAddressID)
		con, _ := c.Contract(a.ContractID)
		cons, _ := c.Component(a.ConsumerID)
		qs = append(qs, query{con.Namespace, la.HSAID, cons.HSAID}, query{con.Namespace, strings.ToUpper(la.HSAID) + "-CHILD", strings.ToLower(cons.HSAID)},
			query{con.Namespace, "SE-UNKNOWN", cons.HSAID}, query{con.Namespace, "VG#" + la.HSAID, cons.HSAID})
	}
	return qs
}

// TestSnapshotRestoreEqual holds the bulk loader to the original catalog and
// to the replay it replaces, index by index, and checks that a restored
// catalog answers and changes like the original.
func TestSnapshotRestoreEqual(t *testing.T) {
	c := genCatalog(t, 4000)
	want := catalogState(c)
	bulked := false
	snapshotBulked = func(ok bool) { bulked = ok }
	got := restore(t, c, false)
	snapshotBulked = nil
	if !bulked {
		t.Fatal("the bulk loader refused a committed catalog's snapshot")
	}
	diffStates(t, "bulk vs original", catalogState(got), want)
	diffStates(t, "replay vs original", catalogState(restore(t, c, true)), want)
	sameAnswers(t, got, c, genQueries(c))

	// The same change on both commits alike, and leaves the restored version as it was.
	change := func(c *Catalog) *Catalog {
		tx := c.Begin()
		if _, err := tx.AddRoute("urn:riv:test:Thing1Responder:1", "SE-NEW-1", "PROD-1", "RIVTABP21", "https://new.example.se/x", from2013, to2123); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.AddAuthorization("CONS-1", "urn:riv:test:Thing1Responder:1", "SE-NEW-1", "I9", from2013, to2123); err != nil {
			t.Fatal(err)
		}
		r := c.Routes()[3]
		if err := tx.Delete(KindRoute, r.ID); err != nil {
			t.Fatal(err)
		}
		f := c.Filters()[0]
		if _, err := tx.PutCategorization(Categorization{FilterID: f.ID, Category: "new"}); err != nil {
			t.Fatal(err)
		}
		la := c.LogicalAddresses()[5]
		la.HSAID += "-X"
		if _, err := tx.PutLogicalAddress(la); err != nil {
			t.Fatal(err)
		}
		return tx.Commit(ChangeMeta{Actor: "bob", Source: "admin"})
	}
	before := catalogState(got)
	nextGot, nextWant := change(got), change(c)
	diffStates(t, "restored version after a change on it", catalogState(got), before)
	diffStates(t, "changed restored vs changed original", catalogState(nextGot), catalogState(nextWant))
	sameAnswers(t, nextGot, nextWant, genQueries(nextWant))
	if _, st := nextGot.ResolveRoute("urn:riv:test:Thing1Responder:1", "SE-NEW-1", now, &RoutingOptions{}, nil); st != RouteFound {
		t.Error("route added after restore not found")
	}
}

// TestSnapshotRestoreOdd: snapshots no committed catalog writes restore
// exactly as a replay restores them, catalog or error.
func TestSnapshotRestoreOdd(t *testing.T) {
	type ent struct {
		kind Kind
		f    func(s *snapWriter)
	}
	write := func(ents ...ent) []byte {
		var buf bytes.Buffer
		s := &snapWriter{w: bufio.NewWriter(&buf)}
		s.write([]byte(snapshotMagic))
		s.byte1(snapshotVersion)
		s.uvar(7)
		s.uvar(0)
		for i := 0; i < len(ents); {
			j := i + 1 // a run of one kind is one section
			for j < len(ents) && ents[j].kind == ents[i].kind {
				j++
			}
			s.byte1(byte(ents[i].kind))
			s.uvar(uint64(j - i))
			for _, e := range ents[i:j] {
				e.f(s)
			}
			i = j
		}
		s.byte1(0)
		s.uvar(0)
		s.uvar(0)
		s.uvar(2)
		s.write([]byte("[]"))
		var sum [4]byte
		binary.BigEndian.PutUint32(sum[:], s.crc)
		s.w.Write(sum[:])
		s.w.Flush()
		return buf.Bytes()
	}
	la := func(id int64, name string) ent {
		return ent{KindLogicalAddress, func(s *snapWriter) { s.svar(id); s.str(name); s.str("") }}
	}
	con := ent{KindContract, func(s *snapWriter) { s.svar(1); s.str("urn:x"); s.str(""); s.svar(1); s.svar(0) }}
	prof := ent{KindRivProfile, func(s *snapWriter) { s.svar(1); s.str("RIVTABP21"); s.str("") }}
	comp := ent{KindComponent, func(s *snapWriter) { s.svar(1); s.str("P"); s.str("") }}
	addr := ent{KindCallAddress, func(s *snapWriter) { s.svar(1); s.str("http://x"); s.svar(1); s.svar(1) }}
	route := func(id, la int64, from, to Date) ent {
		return ent{KindRoute, func(s *snapWriter) {
			s.svar(id)
			s.svar(la)
			s.svar(1)
			s.svar(1)
			s.date(from)
			s.date(to)
		}}
	}
	auth := func(id int64) ent {
		return ent{KindAuthorization, func(s *snapWriter) {
			s.svar(id)
			s.svar(1)
			s.svar(1)
			s.svar(5)
			s.str("I1")
			s.date(from2013)
			s.date(to2123)
		}}
	}
	cases := []struct {
		name    string
		snap    []byte
		corrupt bool
	}{
		{"dangling reference", write(prof, con, comp, la(4, "A"), addr, route(1, 5, from2013, to2123)), true},
		{"dependent first", write(prof, con, comp, addr, route(1, 5, from2013, to2123), la(5, "A")), true},
		{"names clash", write(la(1, "abc"), la(2, "ABC")), true},
		{"empty name", write(la(1, "")), true},
		{"period backwards", write(prof, con, comp, la(5, "A"), addr, route(1, 5, to2123, from2013)), true},
		{"id 0", write(prof, con, comp, la(5, "A"), addr, route(0, 5, from2013, to2123)), false},
		{"repeated id", write(prof, con, comp, la(5, "A"), addr, route(1, 5, from2013, to2123), route(1, 5, from2013, from2013)), false},
		{"repeated section", write(prof, comp, la(5, "A"), addr, la(6, "B")), false},
		{"repeated authorization id", write(prof, con, comp, la(5, "A"), addr, auth(3), auth(3)), false},
		{"good", write(prof, con, comp, la(5, "A"), addr, route(1, 5, from2013, to2123)), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			read := func(replay bool) (*Catalog, error) {
				defer func(old bool) { snapshotReplay = old }(snapshotReplay)
				snapshotReplay = replay
				return ReadSnapshot(bytes.NewReader(tc.snap))
			}
			bulked := false
			snapshotBulked = func(ok bool) { bulked = ok }
			defer func() { snapshotBulked = nil }()
			got, err := read(false)
			if bulked != (tc.name == "good") {
				t.Errorf("bulk loaded: %v", bulked)
			}
			want, werr := read(true)
			if tc.corrupt {
				if !errors.Is(err, ErrSnapshotCorrupt) || !errors.Is(werr, ErrSnapshotCorrupt) {
					t.Fatalf("err = %v (replay %v), want ErrSnapshotCorrupt", err, werr)
				}
				return
			}
			if err != nil || werr != nil {
				t.Fatalf("err = %v (replay %v)", err, werr)
			}
			diffStates(t, tc.name, catalogState(got), catalogState(want))
		})
	}
}

var (
	restoredOnce sync.Once
	restoredBig  *Catalog
	restoredHeap uint64
)

// restoredMillion is the million-entry catalog after a snapshot round trip,
// checked against the original.
func restoredMillion(b *testing.B) *Catalog {
	c := buildBig(b)
	restoredOnce.Do(func() {
		var buf bytes.Buffer
		if err := c.WriteSnapshot(&buf); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		got, err := ReadSnapshot(&buf)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		restoredHeap = after.HeapAlloc - before.HeapAlloc
		if !reflect.DeepEqual(got.Counts(), c.Counts()) || !reflect.DeepEqual(got.Routes(), c.Routes()) ||
			!reflect.DeepEqual(got.Authorizations(), c.Authorizations()) || !reflect.DeepEqual(got.LogicalAddresses(), c.LogicalAddresses()) ||
			!reflect.DeepEqual(got.HSATree().Edges(), c.HSATree().Edges()) || !reflect.DeepEqual(got.History(0), c.History(0)) {
			b.Fatal("restored million-entry catalog differs from the original")
		}
		o := &RoutingOptions{Delimiter: "#"}
		for _, q := range queries(4096) {
			for _, la := range []string{q.la, laName(len(q.la) % bigLA), "SE-UNKNOWN"} {
				tg, sg := got.ResolveRoute(q.ns, la, now, o, nil)
				tw, sw := c.ResolveRoute(q.ns, la, now, o, nil)
				if tg != tw || sg != sw || got.Authorize(q.consumer, q.ns, la, now, o, nil) != c.Authorize(q.consumer, q.ns, la, now, o, nil) {
					b.Fatalf("restored catalog answers %+v differently", q)
				}
			}
		}
		restoredBig = got
	})
	return restoredBig
}

// BenchmarkLookupMillionRestored is BenchmarkLookupMillion in the catalog as
// a restarting node has it: restored from a snapshot.
func BenchmarkLookupMillionRestored(b *testing.B) {
	benchLookups(b, restoredMillion(b))
	b.ReportMetric(float64(restoredHeap)/(1<<20), "MiB-catalog")
}

// TestSnapshotReaders restores through readers that return little at a time
// or fail, and from every truncation of a snapshot.
func TestSnapshotReaders(t *testing.T) {
	c := genCatalog(t, 300)
	var buf bytes.Buffer
	if err := c.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	snap := buf.Bytes()
	want := catalogState(c)
	for name, r := range map[string]io.Reader{
		"one byte":  iotest.OneByteReader(bytes.NewReader(snap)),
		"half":      iotest.HalfReader(bytes.NewReader(snap)),
		"data+err":  iotest.DataErrReader(bytes.NewReader(snap)),
		"no Len":    io.MultiReader(bytes.NewReader(snap)),
		"trailing":  io.MultiReader(bytes.NewReader(snap), strings.NewReader("more")),
		"big first": io.MultiReader(bytes.NewReader(snap[:len(snap)/2]), bytes.NewReader(snap[len(snap)/2:])),
	} {
		got, err := ReadSnapshot(r)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		diffStates(t, name, catalogState(got), want)
	}
	if _, err := ReadSnapshot(iotest.TimeoutReader(iotest.OneByteReader(bytes.NewReader(snap)))); !errors.Is(err, ErrSnapshotCorrupt) || !errors.Is(err, iotest.ErrTimeout) {
		t.Errorf("failing reader: err = %v", err)
	}
	for n := 0; n < len(snap); n += 1 + n/50 {
		if _, err := ReadSnapshot(bytes.NewReader(snap[:n])); !errors.Is(err, ErrSnapshotCorrupt) {
			t.Fatalf("snapshot cut at %d of %d: err = %v", n, len(snap), err)
		}
	}
}
