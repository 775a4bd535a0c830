package tak

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
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
