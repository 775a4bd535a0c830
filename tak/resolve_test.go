package tak

import (
	"errors"
	"testing"
	"time"
)

const (
	nsCert = "urn:riv:insuranceprocess:healthreporting:GetCertificateResponder:1"
	nsAct  = "urn:riv:clinicalprocess:activity:actions:GetActivitiesResponder:1"
)

var (
	from2013 = mustDate("2013-08-09")
	to2123   = mustDate("2123-08-09")
	now      = time.Date(2026, 11, 22, 12, 0, 0, 0, Zone).Unix()
)

func mustDate(s string) Date {
	d, err := ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

// vpTestCatalog is the reference's VP test TAK (skltp-vp.md §10.F) and HSA
// tree SE0000000001-1234 → …2 → …3 → …4 → SE.
func vpTestCatalog(t testing.TB) *Catalog {
	t.Helper()
	tx := New().Begin()
	tx.Lenient = true // the fixture holds an empty address and two overlapping routes, on purpose
	routes := []struct{ la, profile, ns, url string }{
		{"HttpProducer", "RIVTABP20", nsCert, "http://localhost:19000/vardgivare-b/tjanst2"},
		{"HttpsProducer", "RIVTABP20", nsCert, "https://localhost:19001/vardgivare-b/tjanst2"},
		{"NotAuthorizedReceiver", "RIVTABP20", nsCert, "http://localhost:19000/vardgivare-b/tjanst2"},
		{"ReceiverNoProducerAvailable", "RIVTABP20", nsCert, "https://localhost:1974/Im/not/available"},
		{"ReceiverUnknownRivVersion", "RIVTABP22", nsCert, "http://localhost:19000/vardgivare-b/tjanst2"},
		{"ReceiverMultipleVagval", "RIVTABP20", nsCert, "http://localhost:19000/a"},
		{"ReceiverMultipleVagval", "RIVTABP21", nsCert, "http://localhost:19000/b"},
		{"ReceiverNoPhysicalAddress", "RIVTABP21", nsCert, ""},
		{"SE0000000003-1234", "RIVTABP21", nsAct, "http://localhost:19000/treeclimbing"},
		{"*", "RIVTABP21", nsAct, "http://localhost:19000/default"},
		{"FirstReceiverRiv21", "RIVTABP21", nsAct, "http://localhost:19000/first"},
		{"SecondReceiverRiv21", "RIVTABP21", nsAct, "http://localhost:19000/second"},
	}
	for _, r := range routes {
		if _, err := tx.AddRoute(r.ns, r.la, "PRODUCER-"+r.la, r.profile, r.url, from2013, to2123); err != nil {
			t.Fatalf("add route %v: %v", r, err)
		}
	}
	auths := []struct{ sender, ns, la string }{
		{"tp", nsCert, "HttpProducer"},
		{"tp", nsCert, "HttpsProducer"},
		{"tp", nsCert, "ReceiverMultipleVagval"},
		{"tp", nsCert, "ReceiverNoPhysicalAddress"},
		{"tp", nsCert, "ReceiverUnknownRivVersion"},
		{"tp", nsCert, "ReceiverNoProducerAvailable"},
		{"SenderWithDefaultBehorighet", nsCert, "*"},
		{"SenderWithDefaultBehorighet", nsAct, "*"},
		{"SenderWithDefaultBehorighet", nsAct, "SE0000000003-1234"},
		{"SenderWithDefaultBehorighet", nsAct, "FirstReceiverRiv21"},
		{"SenderWithDefaultBehorighet", nsAct, "SecondReceiverRiv21"},
		{"tp", nsAct, "GetActivitiesReceiverWithNoExplicitVagval"},
		{"ClimbSender", nsAct, "SE0000000003-1234"},
	}
	for _, a := range auths {
		if _, err := tx.AddAuthorization(a.sender, a.ns, a.la, "I1", from2013, to2123); err != nil {
			t.Fatalf("add authorization %v: %v", a, err)
		}
	}
	tree, err := BuildHSATree([]HSAUnit{
		{"SE0000000001-1234", "ou=a,ou=b,ou=c,ou=d,c=SE", "1"},
		{"SE0000000002-1234", "ou=b,ou=c,ou=d,c=SE", "2"},
		{"SE0000000003-1234", "ou=c,ou=d,c=SE", "3"},
		{"SE0000000004-1234", "ou=d,c=SE", "4"},
		{"SE", "c=SE", "Sverige"},
	})
	if err != nil {
		t.Fatal(err)
	}
	tx.SetHSATree(tree)
	return tx.Commit(ChangeMeta{Actor: "test", Source: "import"})
}

func TestResolveRoute(t *testing.T) {
	c := vpTestCatalog(t)
	def := &RoutingOptions{Delimiter: "#"}
	noClimb := &RoutingOptions{Delimiter: "#", RouteClimbExceptions: []string{"urn:riv:clinicalprocess:activity"}}
	tests := []struct {
		name      string
		ns, la    string
		opts      *RoutingOptions
		want      RouteStatus
		wantURL   string
		wantTrace string
	}{
		{"exact", nsCert, "HttpProducer", def, RouteFound, "http://localhost:19000/vardgivare-b/tjanst2", "HttpProducer"},
		{"case-insensitive address (A7)", nsCert, "httpsproducer", def, RouteFound, "https://localhost:19001/vardgivare-b/tjanst2", "httpsproducer"},
		{"case-insensitive contract", "URN:RIV:insuranceprocess:healthreporting:GetCertificateResponder:1", "HttpProducer", def, RouteFound, "http://localhost:19000/vardgivare-b/tjanst2", "HttpProducer"},
		{"unknown address (A9)", nsCert, "NoVagvalReceiver", def, RouteNone, "", "NoVagvalReceiver,(parent),SE,(default),*"},
		{"whitespace kept (A6)", nsCert, " HttpsProducer", def, RouteNone, "", ""},
		{"multiple (A10)", nsCert, "ReceiverMultipleVagval", def, RouteMultiple, "", ""},
		{"default * (A15)", nsAct, "AnyReceiver", def, RouteFound, "http://localhost:19000/default", "AnyReceiver,(parent),SE,(default),*"},
		{"tree climb before * (A16)", nsAct, "SE0000000001-1234", def, RouteFound, "http://localhost:19000/treeclimbing", "SE0000000001-1234,(parent),SE0000000002-1234,SE0000000003-1234"},
		{"climb disabled (A17)", nsAct, "SE0000000001-1234", noClimb, RouteFound, "http://localhost:19000/default", "SE0000000001-1234,(default),*"},
		{"VG#VE tries VE first (A18)", nsAct, "FirstReceiverRiv21#SecondReceiverRiv21", def, RouteFound, "http://localhost:19000/second", "(leaf),SecondReceiverRiv21"},
		{"VG#VE falls back to VG", nsAct, "FirstReceiverRiv21#NotValidReceiver", def, RouteFound, "http://localhost:19000/first", "(leaf),NotValidReceiver,FirstReceiverRiv21"},
		{"VG#VE never falls back to *", nsAct, "Nope1#Nope2", def, RouteNone, "", "(leaf),Nope2,Nope1"},
		{"delimiter off", nsAct, "FirstReceiverRiv21#SecondReceiverRiv21", &RoutingOptions{}, RouteFound, "http://localhost:19000/default", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := &Trace{}
			got, st := c.ResolveRoute(tc.ns, tc.la, now, tc.opts, tr)
			if st != tc.want {
				t.Fatalf("status = %d, want %d (trace %s)", st, tc.want, tr)
			}
			if tc.wantURL != "" && got.URL != tc.wantURL {
				t.Errorf("url = %q, want %q", got.URL, tc.wantURL)
			}
			if tc.wantTrace != "" && tr.String() != tc.wantTrace {
				t.Errorf("trace = %q, want %q", tr, tc.wantTrace)
			}
		})
	}
}

func TestAuthorize(t *testing.T) {
	c := vpTestCatalog(t)
	def := &RoutingOptions{Delimiter: "#"}
	tests := []struct {
		name       string
		sender, ns string
		la         string
		opts       *RoutingOptions
		want       bool
		wantTrace  string
	}{
		{"exact", "tp", nsCert, "HttpProducer", def, true, "HttpProducer"},
		{"sender case-insensitive", "TP", nsCert, "httpproducer", def, true, ""},
		{"missing (A13)", "tp", nsCert, "NotAuthorizedReceiver", def, false, "NotAuthorizedReceiver,(default),*,(parent),SE"},
		{"default * authorization", "SenderWithDefaultBehorighet", nsCert, "AnyReceiver", def, true, "AnyReceiver,(default),*"},
		{"child of authorized unit", "ClimbSender", nsAct, "SE0000000001-1234", def, true, "SE0000000001-1234,(default),*,(parent),SE0000000002-1234,SE0000000003-1234"},
		{"parent of authorized unit", "ClimbSender", nsAct, "SE0000000004-1234", def, false, "SE0000000004-1234,(default),*,(parent),SE"},
		{"climb disabled for authorization", "ClimbSender", nsAct, "SE0000000001-1234", &RoutingOptions{NoAuthClimb: true}, false, ""},
		{"no sender wildcard", "other", nsCert, "HttpProducer", def, false, ""},
		{"VG#VE", "SenderWithDefaultBehorighet", nsAct, "FirstReceiverRiv21#SecondReceiverRiv21", def, true, "(leaf),SecondReceiverRiv21"},
		{"VG#VE three parts refused", "SenderWithDefaultBehorighet", nsAct, "A#FirstReceiverRiv21#SecondReceiverRiv21", def, false, "(leaf),Invalid parameters"},
		{"VG#VE contract not allowed", "SenderWithDefaultBehorighet", nsAct, "FirstReceiverRiv21#SecondReceiverRiv21",
			&RoutingOptions{Delimiter: "#", DefaultRoutingContracts: []string{nsCert}}, false, ""},
		{"VG#VE with VE == VG", "SenderWithDefaultBehorighet", nsAct, "SecondReceiverRiv21#SecondReceiverRiv21", def, true, "(leaf),SecondReceiverRiv21"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := &Trace{}
			if got := c.Authorize(tc.sender, tc.ns, tc.la, now, tc.opts, tr); got != tc.want {
				t.Fatalf("Authorize = %v, want %v (trace %s)", got, tc.want, tr)
			}
			if tc.wantTrace != "" && tr.String() != tc.wantTrace {
				t.Errorf("trace = %q, want %q", tr, tc.wantTrace)
			}
		})
	}
}

func TestValidityIsEvaluatedAtCallTime(t *testing.T) {
	tx := New().Begin()
	d := mustDate("2026-11-22")
	if _, err := tx.AddRoute(nsCert, "LA", "P", "RIVTABP21", "http://p/1", d, d.AddDays(1)); err != nil {
		t.Fatal(err)
	}
	c := tx.Commit(ChangeMeta{})
	o := &RoutingOptions{}
	at := func(s string) int64 {
		tm, err := time.ParseInLocation("2006-01-02 15:04:05", s, Zone)
		if err != nil {
			t.Fatal(err)
		}
		return tm.Unix()
	}
	for _, tc := range []struct {
		when string
		want RouteStatus
	}{
		{"2026-11-21 23:59:59", RouteNone},
		{"2026-11-22 00:00:00", RouteFound},
		{"2026-11-23 23:59:59", RouteFound}, // the end date is inclusive
		{"2026-11-24 00:00:00", RouteNone},
	} {
		if _, st := c.ResolveRoute(nsCert, "LA", at(tc.when), o, nil); st != tc.want {
			t.Errorf("at %s: status %d, want %d", tc.when, st, tc.want)
		}
	}
}

func TestOverlapRules(t *testing.T) {
	tx := New().Begin()
	d := mustDate("2026-01-01")
	if _, err := tx.AddRoute(nsCert, "LA", "P", "RIVTABP21", "http://p/1", d, d.AddDays(10)); err != nil {
		t.Fatal(err)
	}
	// Another producer, another profile, same (address, contract), overlapping dates: refused.
	_, err := tx.AddRoute(nsCert, "la", "Q", "RIVTABP20", "http://q/1", d.AddDays(10), d.AddDays(20))
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("overlapping route: err = %v, want ErrConflict", err)
	}
	if _, err := tx.AddRoute(nsCert, "la", "Q", "RIVTABP20", "http://q/1", d.AddDays(11), d.AddDays(20)); err != nil {
		t.Fatalf("adjacent route: %v", err)
	}
	if _, err := tx.AddAuthorization("C", nsCert, "LA", "I1", d, d.AddDays(5)); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.AddAuthorization("c", nsCert, "LA", "I2", d.AddDays(5), d.AddDays(6)); !errors.Is(err, ErrConflict) {
		t.Fatalf("overlapping authorization: err = %v, want ErrConflict", err)
	}
	if _, err := tx.AddAuthorization("C", nsCert, "LA", " I1", d.AddDays(7), d.AddDays(8)); err == nil {
		t.Fatal("agreement with leading space accepted")
	}
}

func TestDeleteNeedsNoDependents(t *testing.T) {
	tx := New().Begin()
	r, err := tx.AddRoute(nsCert, "LA", "P", "RIVTABP21", "http://p/1", from2013, to2123)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Delete(KindCallAddress, r.CallAddressID); !errors.Is(err, ErrInUse) {
		t.Fatalf("delete used call address: %v, want ErrInUse", err)
	}
	if err := tx.Delete(KindRoute, r.ID); err != nil {
		t.Fatal(err)
	}
	if err := tx.Delete(KindCallAddress, r.CallAddressID); err != nil {
		t.Fatalf("delete unused call address: %v", err)
	}
	c := tx.Commit(ChangeMeta{})
	if _, st := c.ResolveRoute(nsCert, "LA", now, &RoutingOptions{}, nil); st != RouteNone {
		t.Fatal("deleted route still resolves")
	}
}

func TestImmutability(t *testing.T) {
	base := vpTestCatalog(t)
	tx := base.Begin()
	la, _ := base.LogicalAddressByHSAID("HttpProducer")
	la.HSAID = "RenamedProducer"
	if _, err := tx.PutLogicalAddress(la); err != nil {
		t.Fatal(err)
	}
	next := tx.Commit(ChangeMeta{})
	o := &RoutingOptions{}
	if _, st := base.ResolveRoute(nsCert, "HttpProducer", now, o, nil); st != RouteFound {
		t.Error("base catalog changed by a later transaction")
	}
	if _, st := next.ResolveRoute(nsCert, "HttpProducer", now, o, nil); st != RouteNone {
		t.Error("old name still routes after rename")
	}
	if _, st := next.ResolveRoute(nsCert, "renamedproducer", now, o, nil); st != RouteFound {
		t.Error("new name does not route after rename")
	}
	if !next.Authorize("tp", nsCert, "RenamedProducer", now, o, nil) {
		t.Error("authorization not re-keyed after rename")
	}
	if base.Seq()+1 != next.Seq() {
		t.Errorf("seq %d -> %d", base.Seq(), next.Seq())
	}
}

func TestRevertAndDiff(t *testing.T) {
	c1 := vpTestCatalog(t)
	tx := c1.Begin()
	if _, err := tx.AddRoute(nsCert, "NewReceiver", "P", "RIVTABP21", "http://p/new", from2013, to2123); err != nil {
		t.Fatal(err)
	}
	r, _ := c1.Route(c1.RoutesFor(nsCert, "HttpProducer")[0])
	if err := tx.Delete(KindRoute, r.ID); err != nil {
		t.Fatal(err)
	}
	c2 := tx.Commit(ChangeMeta{Actor: "alice", Source: "admin", Comment: "move"})
	d, err := c2.Diff(c1.Seq(), c2.Seq())
	if err != nil {
		t.Fatal(err)
	}
	if len(d) == 0 {
		t.Fatal("empty diff")
	}
	rb := c2.Begin()
	if err := rb.RevertTo(c1.Seq()); err != nil {
		t.Fatal(err)
	}
	c3 := rb.Commit(ChangeMeta{Source: "rollback"})
	o := &RoutingOptions{}
	if _, st := c3.ResolveRoute(nsCert, "HttpProducer", now, o, nil); st != RouteFound {
		t.Error("rollback did not restore the deleted route")
	}
	if _, st := c3.ResolveRoute(nsCert, "NewReceiver", now, o, nil); st != RouteNone {
		t.Error("rollback did not remove the added route")
	}
	if got, want := c3.Counts(), c1.Counts(); got[KindRoute] != want[KindRoute] || got[KindCallAddress] != want[KindCallAddress] {
		t.Errorf("counts after rollback %v, want %v", got, want)
	}
	if h := c3.History(1); h[0].Source != "rollback" || c3.History(0)[1].Actor != "alice" {
		t.Errorf("history %+v", c3.History(0))
	}
}
