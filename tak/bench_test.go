package tak

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
)

// The million-entry catalog: bigN routes and bigN authorizations over
// bigN/10 logical addresses and 10 contracts, 1000 producers and 1000
// consumers, plus an HSA tree in which every logical address has a child
// unit with no routes of its own — the lookups below go through that child,
// so each one climbs one HSA level for the route and, after missing the
// exact and "*" authorizations, for the authorization too.
const (
	bigN  = 1_000_000
	bigLA = bigN / 10
)

var (
	bigOnce  sync.Once
	bigCat   *Catalog
	bigHeap  uint64
	bigBuild time.Duration
)

func laName(j int) string    { return fmt.Sprintf("SE2321000016-%06d", j) }
func childName(j int) string { return fmt.Sprintf("SE2321000016-C%06d", j) }
func nsName(k int) string {
	return fmt.Sprintf("urn:riv:clinicalprocess:healthcond:description:GetThing%dResponder:%d", k, 1+k%3)
}
func consumerName(j int) string { return fmt.Sprintf("CONSUMER-%04d", j%1000) }

func buildBig(tb testing.TB) *Catalog {
	bigOnce.Do(func() {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		tx := New().Begin()
		for i := 0; i < bigN; i++ {
			j, k := i%bigLA, i/bigLA
			prod := fmt.Sprintf("PRODUCER-%04d", j%1000)
			if _, err := tx.AddRoute(nsName(k), laName(j), prod, "RIVTABP21", "https://"+prod+".example.se/svc", from2013, to2123); err != nil {
				tb.Fatal(err)
			}
			if _, err := tx.AddAuthorization(consumerName(j), nsName(k), laName(j), "I1", from2013, to2123); err != nil {
				tb.Fatal(err)
			}
		}
		units := make([]HSAUnit, 0, 2*bigLA)
		for j := 0; j < bigLA; j++ {
			units = append(units,
				HSAUnit{laName(j), fmt.Sprintf("ou=u%d,c=SE", j), "unit"},
				HSAUnit{childName(j), fmt.Sprintf("ou=c%d,ou=u%d,c=SE", j, j), "child"})
		}
		tree, err := BuildHSATree(units)
		if err != nil {
			tb.Fatal(err)
		}
		tx.SetHSATree(tree)
		bigCat = tx.Commit(ChangeMeta{Source: "import"})
		bigBuild = time.Since(start)
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		bigHeap = after.HeapAlloc - before.HeapAlloc
	})
	return bigCat
}

type query struct{ ns, la, consumer string }

func queries(n int) []query {
	qs := make([]query, n)
	for i := range qs {
		j := (i * 7919) % bigLA
		qs[i] = query{nsName(i % 10), childName(j), consumerName(j)}
	}
	return qs
}

// benchLookups runs route + authorization lookups (one HSA climb each) in c.
func benchLookups(b *testing.B, c *Catalog) {
	qs := queries(4096)
	o := &RoutingOptions{Delimiter: "#"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q := &qs[i&4095]
		t, st := c.ResolveRoute(q.ns, q.la, now, o, nil)
		if st != RouteFound || t.URL == "" || !c.Authorize(q.consumer, q.ns, q.la, now, o, nil) {
			b.Fatalf("lookup %+v: status %d", q, st)
		}
	}
}

// BenchmarkLookupMillion measures route + authorization, both climbing one
// HSA level, in the million-route, million-authorization catalog. Goal: under
// 1 µs and 0 allocs/op. MiB-catalog is the heap the catalog holds.
func BenchmarkLookupMillion(b *testing.B) {
	benchLookups(b, buildBig(b))
	b.ReportMetric(float64(bigHeap)/(1<<20), "MiB-catalog")
	b.ReportMetric(bigBuild.Seconds(), "s-build")
}

// BenchmarkLookupExact is the common case: a route and authorization on the
// logical address itself.
func BenchmarkLookupExact(b *testing.B) {
	c := buildBig(b)
	qs := queries(4096)
	for i := range qs {
		qs[i].la = laName((i * 7919) % bigLA)
	}
	o := &RoutingOptions{Delimiter: "#"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q := &qs[i&4095]
		if _, st := c.ResolveRoute(q.ns, q.la, now, o, nil); st != RouteFound || !c.Authorize(q.consumer, q.ns, q.la, now, o, nil) {
			b.Fatalf("lookup %+v failed", q)
		}
	}
}

// BenchmarkCommit100k commits 100,000 new routes and authorizations into the
// million-entry catalog as one change (an order of that size).
func BenchmarkCommit100k(b *testing.B) {
	c := buildBig(b)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		tx := c.Begin()
		for j := 0; j < 50_000; j++ {
			la := fmt.Sprintf("NEW-%d-%06d", i, j)
			if _, err := tx.AddRoute(nsName(j%10), la, "PRODUCER-0001", "RIVTABP21", "https://PRODUCER-0001.example.se/svc", from2013, to2123); err != nil {
				b.Fatal(err)
			}
			if _, err := tx.AddAuthorization("CONSUMER-0001", nsName(j%10), la, "I1", from2013, to2123); err != nil {
				b.Fatal(err)
			}
		}
		tx.Commit(ChangeMeta{Source: "order"})
	}
}

// BenchmarkCommitOne is a single admin change on the million-entry catalog.
func BenchmarkCommitOne(b *testing.B) {
	c := buildBig(b)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		tx := c.Begin()
		if _, err := tx.AddAuthorization("CONSUMER-0001", nsName(1), laName(5), "I2", to2123.AddDays(1), to2123.AddDays(2)); err != nil {
			b.Fatal(err)
		}
		tx.Commit(ChangeMeta{Source: "admin"})
	}
}
