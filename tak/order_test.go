package tak

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const orderPlatform = "SKLTP-TEST"

// orderSeed is the published, non-deleted content of TAK's
// tak-web-seed-data-h2.sql, under its ids, which is what TAK's
// BestallningServiceTests run against. Rows that are only created, or deleted,
// pending publication are left out: our catalog has no pending state. The ids
// are the H2 identity values (insertion order), so route 6 and authorization 7
// are those the reference's exkludera_deaktivera test checks.
func orderSeed(tb testing.TB) *Catalog {
	tb.Helper()
	tx := New().Begin()
	tx.keepIDs = true
	d := orderMustDate
	puts := []any{
		RivProfile{ID: 1, Name: "RIVTABP20", Description: "RIV TA BP 2.0-Published"},
		RivProfile{ID: 2, Name: "RIVTABP21", Description: "RIV TA BP 2.1-Published"},
		RivProfile{ID: 3, Name: "RIVTABP30", Description: "RIV TA BP 3.0-Published and updated"},

		Contract{ID: 10, Namespace: "urn:riv:crm:scheduling:GetSubjectOfCareScheduleResponder:1", Description: "Tidbokning - GetSubjectOfCareSchedule", Major: 1},
		Contract{ID: 11, Namespace: "urn:riv:itinfra:tp:PingResponder:1", Description: "Ping", Major: 1},
		Contract{ID: 12, Namespace: "urn:riv:itintegration:registry:GetLogicalAddresseesByServiceContractResponder:1", Description: "Stödtjänst VP", Major: 1},
		Contract{ID: 13, Namespace: "urn:riv:itintegration:registry:GetSupportedServiceContractsResponder:1", Description: "Stödtjänst VP", Major: 1},
		Contract{ID: 14, Namespace: "urn:riv:itintegration:engagementindex:FindContentResponder:1", Description: "Engagemangsindex - Findcontent", Major: 1},
		Contract{ID: 15, Namespace: "urn:riv:itintegration:engagementindex:ProcessNotificationResponder:1", Description: "Engagemangsindex - ProcessNotification", Major: 1},
		Contract{ID: 16, Namespace: "urn:riv:itintegration:engagementindex:UpdateResponder:1", Description: "Engagemangsindex - Update", Major: 1},

		LogicalAddress{ID: 1, HSAID: "HSA-VKK123", Description: "Demo adressat tidbok, vardcentralen kusten, Karna"},
		LogicalAddress{ID: 2, HSAID: "HSA-VKM345", Description: "Demo adressat tidbok, vardcentralen kusten, Marstrand"},
		LogicalAddress{ID: 3, HSAID: "HSA-VKY567", Description: "Demo adressat tidbok, vardcentralen kusten, Ytterby"},
		LogicalAddress{ID: 4, HSAID: "PING", Description: "VP's egna ping-tjanst"},
		LogicalAddress{ID: 5, HSAID: "5565594230", Description: "Organisation: Inera"},

		Component{ID: 1, HSAID: "SCHEDULR", Description: "Demo tidbok"},
		Component{ID: 2, HSAID: "TP", Description: "tp test client"},
		Component{ID: 3, HSAID: "PING-HSAID", Description: "VP intern ping tjänst"},
		Component{ID: 4, HSAID: "EI-HSAID", Description: "Engagemangsidex"},
		Component{ID: 5, HSAID: "VP-CACHAD-GETLOGICALADDRESSEESBYSERVICECONTRACT", Description: "VP-Cachad-GetLogicalAddresseesByServiceContract"},
		Component{ID: 6, HSAID: "5565594230", Description: "Inera som konsument, tex EI"},
		Component{ID: 7, HSAID: "AGT-TIDBOK", Description: "Producent: GetAggregatedSubjectOfCareSchedule"},

		CallAddress{ID: 1, URL: "http://33.33.33.33:8080/Schedulr-0.1/ws/GetSubjectOfCareSchedule/1", ComponentID: 1, ProfileID: 2},
		CallAddress{ID: 2, URL: "http://localhost:10000/test/Ping_Service", ComponentID: 2, ProfileID: 1},
		CallAddress{ID: 3, URL: "http://localhost:8081/skltp-ei/update-service/v1", ComponentID: 4, ProfileID: 2},
		CallAddress{ID: 4, URL: "http://localhost:8082/skltp-ei/find-content-service/v1", ComponentID: 4, ProfileID: 2},
		CallAddress{ID: 5, URL: "http://localhost:8081/skltp-ei/notification-service/v1", ComponentID: 4, ProfileID: 2},
		CallAddress{ID: 6, URL: "https://localhost:23001/vp/GetLogicalAddresseesByServiceContract/1/rivtabp21", ComponentID: 5, ProfileID: 2},
		CallAddress{ID: 7, URL: "http://localhost:8083/GetAggregatedSubjectOfCareSchedule/service/v1", ComponentID: 7, ProfileID: 2},
		CallAddress{ID: 11, URL: "http://localhost:8088/NyaServiceURL/service/v1", ComponentID: 4, ProfileID: 2},

		// Route 4 is deleted pending publication and route 10 unpublished: left out.
		Route{ID: 1, LogicalAddressID: 1, CallAddressID: 1, ContractID: 10, From: d("2013-05-24"), To: d("2113-05-24")},
		Route{ID: 2, LogicalAddressID: 2, CallAddressID: 1, ContractID: 10, From: d("2013-05-24"), To: d("2113-05-24")},
		Route{ID: 3, LogicalAddressID: 3, CallAddressID: 1, ContractID: 10, From: d("2013-05-24"), To: d("2113-05-24")},
		Route{ID: 5, LogicalAddressID: 5, CallAddressID: 6, ContractID: 12, From: d("2013-08-24"), To: d("2113-08-24")},
		Route{ID: 6, LogicalAddressID: 5, CallAddressID: 4, ContractID: 13, From: d("2013-08-24"), To: d("2113-08-24")},
		Route{ID: 7, LogicalAddressID: 5, CallAddressID: 5, ContractID: 14, From: d("2013-08-24"), To: d("2113-08-24")},
		Route{ID: 8, LogicalAddressID: 5, CallAddressID: 3, ContractID: 15, From: d("2013-08-24"), To: d("2113-08-24")},
		Route{ID: 9, LogicalAddressID: 5, CallAddressID: 7, ContractID: 16, From: d("2013-08-24"), To: d("2113-08-24")},
		Route{ID: 11, LogicalAddressID: 5, CallAddressID: 7, ContractID: 11, From: d("2013-08-24"), To: d("2014-08-24")},
		Route{ID: 12, LogicalAddressID: 1, CallAddressID: 11, ContractID: 11, From: d("2025-05-24"), To: d("2125-05-24")},

		// Authorization 9 is unpublished: left out.
		Authorization{ID: 1, Agreement: "I1", LogicalAddressID: 1, ConsumerID: 2, ContractID: 10, From: d("2013-05-24"), To: d("2113-05-24")},
		Authorization{ID: 2, Agreement: "I1", LogicalAddressID: 2, ConsumerID: 2, ContractID: 10, From: d("2013-05-24"), To: d("2113-05-24")},
		Authorization{ID: 3, Agreement: "I1", LogicalAddressID: 3, ConsumerID: 2, ContractID: 10, From: d("2013-05-24"), To: d("2113-05-24")},
		Authorization{ID: 4, Agreement: "I2", LogicalAddressID: 4, ConsumerID: 2, ContractID: 11, From: d("2013-05-28"), To: d("2113-05-28")},
		Authorization{ID: 5, Agreement: "EI", LogicalAddressID: 5, ConsumerID: 2, ContractID: 12, From: d("2013-08-24"), To: d("2113-08-24")},
		Authorization{ID: 6, Agreement: "I3", LogicalAddressID: 5, ConsumerID: 2, ContractID: 11, From: d("2013-08-24"), To: d("2113-08-24")},
		Authorization{ID: 7, Agreement: "EI", LogicalAddressID: 5, ConsumerID: 2, ContractID: 13, From: d("2013-08-24"), To: d("2113-08-24")},
		Authorization{ID: 8, Agreement: "I4", LogicalAddressID: 5, ConsumerID: 2, ContractID: 14, From: d("2013-08-25"), To: d("2113-08-25")},
		Authorization{ID: 10, Agreement: "I1", LogicalAddressID: 1, ConsumerID: 2, ContractID: 11, From: d("2025-05-24"), To: d("2125-05-24")},

		Filter{ID: 1, AuthorizationID: 5, ServiceDomain: "urn:riv:itintegration:registry:GetItems"},
		Filter{ID: 2, AuthorizationID: 7, ServiceDomain: "urn:riv:itintegration:registry:GetItems"},
		Filter{ID: 3, AuthorizationID: 8, ServiceDomain: "urn:riv:itintegration:registry:GetItems"},
		Filter{ID: 4, AuthorizationID: 8, ServiceDomain: "urn:riv:itintegration:registry:GetMoreItems"},

		Categorization{ID: 2, FilterID: 2, Category: "Category c1"},
		Categorization{ID: 3, FilterID: 3, Category: "Category c2"},
	}
	for _, v := range puts {
		if err := tx.Put(v); err != nil {
			tb.Fatalf("seed %+v: %v", v, err)
		}
	}
	tx.keepIDs = false
	return tx.Commit(ChangeMeta{Actor: "test", Source: "import"})
}

func orderMustDate(s string) Date {
	d, err := ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

func readOrderFile(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// applyOrderFile applies a test order to a fresh seed catalog and returns the
// report, the validation errors and the committed catalog (nil on errors).
func applyOrderFile(tb testing.TB, name, platform string) (*Catalog, *OrderReport, []string) {
	tb.Helper()
	base := orderSeed(tb)
	o, err := ParseOrder(readOrderFile(tb, name))
	if err != nil {
		tb.Fatalf("parse %s: %v", name, err)
	}
	tx := base.Begin()
	rep, verrs, err := ApplyOrder(tx, o, platform)
	if err != nil {
		tb.Fatalf("apply %s: %v", name, err)
	}
	if len(verrs) > 0 {
		return nil, nil, verrs
	}
	return tx.Commit(ChangeMeta{Actor: "test", Source: "order"}), rep, nil
}

// orderSectionSizes maps "in:Vägval" / "ex:Vägval" to the number of lines.
func orderSectionSizes(r *OrderReport) map[string]int {
	out := map[string]int{}
	for _, s := range r.Inkludera {
		out["in:"+s.Name] = len(s.Lines)
	}
	for _, s := range r.Exkludera {
		out["ex:"+s.Name] = len(s.Lines)
	}
	return out
}

const (
	nsActivities2 = "urn:riv:clinicalprocess:activity:actions:GetActivitiesResponder:2"
	nsSchedule    = "urn:riv:crm:scheduling:GetSubjectOfCareScheduleResponder:1"
	nsPing        = "urn:riv:itinfra:tp:PingResponder:1"
)

// orderAt is noon of a day, for ResolveRoute and Authorize.
func orderAt(s string) int64 {
	t, err := time.ParseInLocation("2006-01-02 15:04", s+" 12:00", Zone)
	if err != nil {
		panic(err)
	}
	return t.Unix()
}

// TestOrderReferenceCases runs the orders of TAK's BestallningServiceTests
// (skltp-tak.md §12.3) against the seed.
func TestOrderReferenceCases(t *testing.T) {
	tests := []struct {
		name      string
		file      string
		platform  string
		wantErrs  []string // exactly these, in any order
		errSubstr string   // or: one error containing this
		nErrs     int
		sections  map[string]int
	}{
		{
			name: "simple", file: "bestallning-test-simple.json",
			sections: map[string]int{"in:Logiska adresser": 1, "in:Tjänstekomponenter": 2, "in:Tjänstekontrakt": 1,
				"in:Anropsbehörigheter": 1, "in:Vägval": 1},
		},
		{
			name: "wrong platform", file: "bestallning-test-simple.json", platform: "ANOTHER-PLATFORM",
			wantErrs: []string{"Beställningen avser plattform SKLTP-TEST, men den här instansen av tak-web hanterar ANOTHER-PLATFORM."},
		},
		{
			name: "missing url", file: "bestallning-test-missing-url.json",
			wantErrs: []string{"Det saknas information i beställningen för att kunna skapa Vägval. (Logisk adress: TEST-001, " +
				"Tjänstekontrakt: " + nsActivities2 + ", Tjänstekomponent: PROD-001, RivTaProfil: RIVTABP21, Adress: null)"},
		},
		{
			name: "empty fields", file: "bestallning-test-empty-fields.json",
			wantErrs: []string{
				"Skapa Logisk Adress: HSA-ID får inte vara tomt",
				"Skapa Tjänstekomponent: HSA-ID får inte vara tomt",
				"Skapa Tjänstekontrakt: Namnrymd får inte vara tom",
			},
		},
		{
			name: "empty address", file: "bestallning-test-empty-address.json",
			nErrs: 1, errSubstr: "Adress får inte vara tom",
		},
		{
			name: "duplicates", file: "bestallning-test-duplicates.json",
			wantErrs: []string{
				"Anropsbehörigheten [TEST-001, KONS-001, " + nsActivities2 + "] får inte finnas på flera ställen i beställningen.",
				"Vägvalet [TEST-001, " + nsActivities2 + "] får inte finnas på flera ställen i beställningen.",
				"Tjänstekomponenten [KONS-001] får inte finnas på flera ställen i beställningen.",
				"Den logiska adressen [TEST-001] får inte finnas på flera ställen i beställningen.",
			},
		},
		{
			// TAK reports 7 errors here, one of them "Skapa Vägval: Tjänstekomponent
			// med HSAId = HSA-NYA-UNPUBLISHED-SKLTP är opublicerad och skapad av
			// skltp.": that component exists in TAK's seed, unpublished and owned
			// by another user. We have no unpublished state, so the seed holds
			// published rows only and the component simply does not exist: the
			// count is the same, the seventh text says "finns inte" instead.
			name: "missing relations", file: "bestallning-test-missing-relations.json",
			wantErrs: []string{
				"Skapa Anropsbehörighet: Tjänstekomponent med HSAId = NY-KONSUMENT finns inte.",
				"Skapa Anropsbehörighet: Tjänstekontrakt med namnrymd = urn:riv:a:b:c:UnknownContractResponder:2 finns inte.",
				"Skapa Anropsbehörighet: Logisk Adress med HSAId = NY-LOGISK-ADRESS finns inte.",
				"Skapa Vägval: RivTaProfil med namn = RIVTABP99 finns inte.",
				"Skapa Vägval: Tjänstekomponent med HSAId = HSA-NYA-UNPUBLISHED-SKLTP finns inte.",
				"Skapa Vägval: Logisk Adress med HSAId = NY-LOGISK-ADRESS finns inte.",
				"Skapa Vägval: Tjänstekontrakt med namnrymd = urn:riv:a:b:c:UnknownContractResponder:2 finns inte.",
			},
		},
		{
			// The route (5565594230, GetSupportedServiceContracts) exists and is
			// ended (an exclusion matches on address and contract only); the
			// authorization's contract does not exist.
			name: "exkludera missing", file: "bestallning-test-exkludera-missing.json",
			sections: map[string]int{"ex:Anropsbehörigheter": 1, "ex:Vägval": 1},
		},
		{
			name: "exkludera deaktivera", file: "bestallning-test-exkludera_deaktivera.json",
			sections: map[string]int{"ex:Anropsbehörigheter": 1, "ex:Vägval": 1},
		},
		{
			name: "exkludera delete", file: "bestallning-test-exkludera_delete.json",
			sections: map[string]int{"ex:Anropsbehörigheter": 1, "ex:Vägval": 1},
		},
		{
			name: "update vagval (same address: extend)", file: "bestallning-test-update-vagval.json",
			sections: map[string]int{"in:Anropsbehörigheter": 1, "in:Vägval": 1},
		},
		{
			name: "update vagval1 (other address: deactivate old, create new)", file: "bestallning-test-update-vagval1.json",
			sections: map[string]int{"in:Anropsbehörigheter": 1, "in:Vägval": 2},
		},
		{
			name: "update vagval2 (same address, starts earlier)", file: "bestallning-test-update-vagval2.json",
			sections: map[string]int{"in:Anropsbehörigheter": 1, "in:Vägval": 1},
		},
		{
			name: "update vagval3 (other address, old not started: delete old)", file: "bestallning-test-update-vagval3.json",
			sections: map[string]int{"in:Vägval": 2},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			platform := tc.platform
			if platform == "" {
				platform = orderPlatform
			}
			_, rep, errs := applyOrderFile(t, tc.file, platform)
			switch {
			case tc.wantErrs != nil:
				if !orderSameSet(errs, tc.wantErrs) {
					t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(errs, "\n"), strings.Join(tc.wantErrs, "\n"))
				}
				return
			case tc.nErrs > 0:
				if len(errs) != tc.nErrs || !strings.Contains(errs[0], tc.errSubstr) {
					t.Fatalf("errors %q, want %d containing %q", errs, tc.nErrs, tc.errSubstr)
				}
				return
			}
			if len(errs) > 0 {
				t.Fatalf("unexpected errors:\n%s", strings.Join(errs, "\n"))
			}
			if len(rep.Metadata) != 7 {
				t.Errorf("metadata has %d fields, want 7", len(rep.Metadata))
			}
			if got := orderSectionSizes(rep); !reflect.DeepEqual(got, tc.sections) {
				t.Errorf("sections %v, want %v\n%s", got, tc.sections, rep)
			}
		})
	}
}

func orderSameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}

func TestOrderSimpleReportAndEffect(t *testing.T) {
	c, rep, errs := applyOrderFile(t, "bestallning-test-simple.json", orderPlatform)
	if errs != nil {
		t.Fatal(errs)
	}
	want := `Plattform: SKLTP-TEST
Format Version: 1.0
Version: 1
Beställningstidpunkt: 2022-05-22
Genomförandetidpunkt: 2022-12-14
Utförare: test
Kommentar: null

Inkludera:
Logiska adresser:
Nyskapad: TEST-001
Tjänstekomponenter:
Nyskapad: PROD-001
Nyskapad: KONS-001
Tjänstekontrakt:
Nyskapad: urn:riv:clinicalprocess:activity:actions:GetActivitiesResponder:2
Anropsbehörigheter:
Nyskapad: TEST-001 - KONS-001 - urn:riv:clinicalprocess:activity:actions:GetActivitiesResponder:2  (2022-12-14 - 2122-12-14)
Vägval:
Nyskapad: TEST-001 - urn:riv:clinicalprocess:activity:actions:GetActivitiesResponder:2 - PROD-001 - RIVTABP21 - https://test.se (2022-12-14 - 2122-12-14)

Exkludera:
`
	if got := rep.String(); got != want {
		t.Errorf("report:\n%s\nwant:\n%s", got, want)
	}
	// TK, LA and both components exist; exactly one authorization and one route.
	if _, ok := c.ContractByNamespace(nsActivities2); !ok {
		t.Error("contract not created")
	}
	for _, h := range []string{"PROD-001", "KONS-001"} {
		if _, ok := c.ComponentByHSAID(h); !ok {
			t.Errorf("component %s not created", h)
		}
	}
	if n := len(c.AuthorizationsFor(nsActivities2, "TEST-001", "KONS-001")); n != 1 {
		t.Errorf("%d authorizations, want 1", n)
	}
	ids := c.RoutesFor(nsActivities2, "TEST-001")
	if len(ids) != 1 {
		t.Fatalf("%d routes, want 1", len(ids))
	}
	a, _ := c.Authorization(c.AuthorizationsFor(nsActivities2, "TEST-001", "KONS-001")[0])
	if a.Agreement != "AUTOTAKNING" {
		t.Errorf("agreement %q, want AUTOTAKNING", a.Agreement)
	}
	// The new route routes and the new authorization authorizes, from the
	// order's date, not before.
	o := &RoutingOptions{}
	if tgt, st := c.ResolveRoute(nsActivities2, "test-001", orderAt("2022-12-14"), o, nil); st != RouteFound || tgt.URL != "https://test.se" || tgt.Profile != "RIVTABP21" {
		t.Errorf("route: %v %+v", st, tgt)
	}
	if _, st := c.ResolveRoute(nsActivities2, "TEST-001", orderAt("2022-12-13"), o, nil); st == RouteFound {
		t.Error("route valid before the order's date")
	}
	if !c.Authorize("KONS-001", nsActivities2, "TEST-001", orderAt("2023-06-01"), o, nil) {
		t.Error("new authorization does not authorize")
	}
	if c.Authorize("PROD-001", nsActivities2, "TEST-001", orderAt("2023-06-01"), o, nil) {
		t.Error("the producer got an authorization")
	}
}

func TestOrderUpdateVagval1(t *testing.T) {
	c, rep, errs := applyOrderFile(t, "bestallning-test-update-vagval1.json", orderPlatform)
	if errs != nil {
		t.Fatal(errs)
	}
	routes := rep.Section(true, SectionRoutes)
	want := []ReportLine{
		{OrderDeactivated, "HSA-VKK123 - " + nsSchedule + " - SCHEDULR - RIVTABP21 - http://33.33.33.33:8080/Schedulr-0.1/ws/GetSubjectOfCareSchedule/1 (2013-05-24 - 2023-01-23)"},
		{OrderCreated, "HSA-VKK123 - " + nsSchedule + " - SCHEDULR - RIVTABP21 - http://33.33.33.33:8080/ny-url (2023-01-24 - 2123-01-24)"},
	}
	if !reflect.DeepEqual(routes, want) {
		t.Errorf("Vägval %+v, want %+v", routes, want)
	}
	auths := rep.Section(true, SectionAuthorizations)
	wantA := []ReportLine{{OrderUpdated, "HSA-VKK123 - TP - " + nsSchedule + "  (2013-05-24 - 2123-01-24)"}}
	if !reflect.DeepEqual(auths, wantA) {
		t.Errorf("Anropsbehörigheter %+v, want %+v", auths, wantA)
	}
	o := &RoutingOptions{}
	if tgt, st := c.ResolveRoute(nsSchedule, "HSA-VKK123", orderAt("2023-01-23"), o, nil); st != RouteFound || !strings.HasSuffix(tgt.URL, "GetSubjectOfCareSchedule/1") {
		t.Errorf("day before: %v %s, want the old address", st, tgt.URL)
	}
	if tgt, st := c.ResolveRoute(nsSchedule, "HSA-VKK123", orderAt("2023-01-24"), o, nil); st != RouteFound || tgt.URL != "http://33.33.33.33:8080/ny-url" {
		t.Errorf("order day: %v %s, want the new address", st, tgt.URL)
	}
}

func TestOrderExkluderaDeaktivera(t *testing.T) {
	c, rep, errs := applyOrderFile(t, "bestallning-test-exkludera_deaktivera.json", orderPlatform)
	if errs != nil {
		t.Fatal(errs)
	}
	// Not deleted, ended the day before the order's date.
	end := orderMustDate("2022-12-13")
	if a, ok := c.Authorization(7); !ok || a.To != end {
		t.Errorf("authorization 7: %+v %v, want to %s", a, ok, end)
	}
	if r, ok := c.Route(6); !ok || r.To != end {
		t.Errorf("route 6: %+v %v, want to %s", r, ok, end)
	}
	for _, l := range append(rep.Section(false, SectionRoutes), rep.Section(false, SectionAuthorizations)...) {
		if l.Status != OrderDeactivated {
			t.Errorf("line %+v, want %s", l, OrderDeactivated)
		}
	}
	// Filters stay with the authorization.
	if len(c.FiltersOf(7)) != 1 {
		t.Errorf("filters of 7: %v", c.FiltersOf(7))
	}
}

func TestOrderExkluderaDelete(t *testing.T) {
	c, rep, errs := applyOrderFile(t, "bestallning-test-exkludera_delete.json", orderPlatform)
	if errs != nil {
		t.Fatal(errs)
	}
	// Authorization 10 and route 12 start after the order's date: deleted, and
	// route 12's call address (11) with it, since no other route uses it.
	if _, ok := c.Authorization(10); ok {
		t.Error("authorization 10 not deleted")
	}
	if _, ok := c.Route(12); ok {
		t.Error("route 12 not deleted")
	}
	if _, ok := c.CallAddress(11); ok {
		t.Error("call address 11 not deleted with its last route")
	}
	wantR := []ReportLine{{OrderDeleted, "HSA-VKK123 - " + nsPing + " - EI-HSAID - RIVTABP21 - http://localhost:8088/NyaServiceURL/service/v1 (2025-05-24 - 2125-05-24)"}}
	if got := rep.Section(false, SectionRoutes); !reflect.DeepEqual(got, wantR) {
		t.Errorf("Vägval %+v, want %+v", got, wantR)
	}
	wantA := []ReportLine{{OrderDeleted, "HSA-VKK123 - TP - " + nsPing + "  (2025-05-24 - 2125-05-24)"}}
	if got := rep.Section(false, SectionAuthorizations); !reflect.DeepEqual(got, wantA) {
		t.Errorf("Anropsbehörigheter %+v, want %+v", got, wantA)
	}
}

func TestOrderExkluderaMissing(t *testing.T) {
	_, rep, errs := applyOrderFile(t, "bestallning-test-exkludera-missing.json", orderPlatform)
	if errs != nil {
		t.Fatal(errs)
	}
	want := []ReportLine{{OrderNotFound, "Logisk adress: 5565594230, Tjänstekonsument: TP, " +
		"Tjänstekontrakt: urn:riv:itintegration:registry:GetUnSupportedServiceContractsResponder:1"}}
	if got := rep.Section(false, SectionAuthorizations); !reflect.DeepEqual(got, want) {
		t.Errorf("Anropsbehörigheter %+v, want %+v", got, want)
	}
	for _, name := range []string{SectionLogicalAddresses, SectionComponents, SectionContracts} {
		if rep.Section(false, name) != nil {
			t.Errorf("exkludera %s reported; plain objects are ignored", name)
		}
	}
}

func TestOrderUpdateVagval3DeletesUnstartedRoute(t *testing.T) {
	c, rep, errs := applyOrderFile(t, "bestallning-test-update-vagval3.json", orderPlatform)
	if errs != nil {
		t.Fatal(errs)
	}
	lines := rep.Section(true, SectionRoutes)
	if len(lines) != 2 || lines[0].Status != OrderDeleted || lines[1].Status != OrderCreated {
		t.Fatalf("Vägval %+v", lines)
	}
	// The new route reuses the existing call address 7 (AGT-TIDBOK, RIVTABP21, same URL).
	ids := c.RoutesFor(nsPing, "HSA-VKK123")
	if len(ids) != 1 {
		t.Fatalf("routes %v", ids)
	}
	if r, _ := c.Route(ids[0]); r.CallAddressID != 7 {
		t.Errorf("new route uses call address %d, want 7", r.CallAddressID)
	}
	if _, ok := c.CallAddress(11); ok {
		t.Error("call address 11 outlived its last route")
	}
}

func TestOrderFailureLeavesBaseUnchanged(t *testing.T) {
	base := orderSeed(t)
	before := base.Counts()
	o, err := ParseOrder(readOrderFile(t, "bestallning-test-empty-address.json"))
	if err != nil {
		t.Fatal(err)
	}
	tx := base.Begin()
	_, errs, err := ApplyOrder(tx, o, orderPlatform)
	if err != nil || len(errs) == 0 {
		t.Fatalf("errs %v err %v, want validation errors", errs, err)
	}
	// The transaction already holds TEST-002 (phase 2 ran before phase 3
	// failed), which is why the caller must drop it; the base never sees it.
	if _, ok := tx.Catalog().LogicalAddressByHSAID("TEST-002"); !ok {
		t.Error("phase 2 did not run before the failing phase")
	}
	if _, ok := base.LogicalAddressByHSAID("TEST-002"); ok {
		t.Error("base catalog changed by a failed order")
	}
	if !reflect.DeepEqual(base.Counts(), before) {
		t.Errorf("counts %v, want %v", base.Counts(), before)
	}
}

func TestParseOrder(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr error
		check   func(t *testing.T, o *Order)
	}{
		{name: "empty", in: "", wantErr: ErrOrderNoJSON},
		{name: "no braces", in: "hello", wantErr: ErrOrderNoJSON},
		{name: "no plattform", in: "{}", wantErr: ErrOrderPlatform},
		{name: "unknown property", in: `{"plattform":"X","genomforandeTidpunkt":"2022-12-14T12:00:00+0000","extra":1}`},
		{name: "unknown nested property", in: `{"plattform":"X","genomforandeTidpunkt":"2022-12-14T12:00:00+0000",
			"inkludera":{"vagval":[{"adress":"http://a/b","bogus":"x"}]}}`},
		{name: "bad date", in: `{"plattform":"X","genomforandeTidpunkt":"14/12/2022"}`},
		{
			name: "wrapped in text, cleaned, both spellings", in: "Beställning 42:\n" + `{"plattform":" SKLTP-TEST\n","genomforandeTidpunkt":"2022-12-14T12:00:00+0000",
			"kommentar":"rad ett\r\nrad två","inkludera":null,
			"exkludera":{"vagval":[{"logiskadress":" LA ","tjanstekontrakt":"urn:x"}],"anropsbehorigheter":null}}` + "\nmvh",
			check: func(t *testing.T, o *Order) {
				if o.Plattform != "SKLTP-TEST" || o.Kommentar == nil || *o.Kommentar != "rad ett rad två" {
					t.Errorf("not cleaned: %q %v", o.Plattform, o.Kommentar)
				}
				if len(o.Inkludera.Vagval) != 0 || len(o.Exkludera.Anropsbehorigheter) != 0 {
					t.Error("null sections not empty")
				}
				v := o.Exkludera.Vagval[0]
				if v.LogiskAdress == nil || *v.LogiskAdress != "LA" || v.Adress != nil {
					t.Errorf("vagval %+v", v)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := ParseOrder([]byte(tc.in))
			if tc.check == nil {
				if err == nil {
					t.Fatal("no error")
				}
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, o)
		})
	}
}

func TestOrderMessagesForInvalidObjects(t *testing.T) {
	in := `{"plattform":"SKLTP-TEST","genomforandeTidpunkt":"2022-12-14T12:00:00+0000",
	"inkludera":{
		"logiskadresser":[{"hsaId":"bad id"}],
		"tjanstekomponenter":[{"hsaId":"*"}],
		"tjanstekontrakt":[{"namnrymd":"urn:a b"}]}}`
	o, err := ParseOrder([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	_, errs, err := ApplyOrder(orderSeed(t).Begin(), o, orderPlatform)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Skapa Logisk Adress: HSA-ID har ogiltigt innehåll",
		"Skapa Tjänstekomponent: HSA-ID har ogiltigt innehåll", // "*" is for logical addresses only
		"Skapa Tjänstekontrakt: Namnrymd har ogiltigt innehåll",
	}
	if !orderSameSet(errs, want) {
		t.Errorf("errors %q, want %q", errs, want)
	}
}

func TestOrderUpperCasesNewHSAIDs(t *testing.T) {
	in := `{"plattform":"SKLTP-TEST","genomforandeTidpunkt":"2024-02-29T10:00:00+0100",
	"inkludera":{
		"logiskadresser":[{"hsaId":"se123-abc"}],
		"tjanstekomponenter":[{"hsaId":"kons-x"}],
		"anropsbehorigheter":[{"logiskAdress":"se123-abc","tjanstekontrakt":"` + nsPing + `","tjanstekonsument":"kons-x"}]}}`
	o, err := ParseOrder([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	tx := orderSeed(t).Begin()
	rep, errs, err := ApplyOrder(tx, o, orderPlatform)
	if err != nil || errs != nil {
		t.Fatal(errs, err)
	}
	c := tx.Commit(ChangeMeta{})
	la, ok := c.LogicalAddressByHSAID("SE123-ABC")
	if !ok || la.HSAID != "SE123-ABC" {
		t.Errorf("logical address %+v", la)
	}
	// 2124 is a leap year, so 29 February stays; in 2100 it would not (below).
	if got := rep.Section(true, SectionAuthorizations)[0].Value; !strings.HasSuffix(got, "(2024-02-29 - 2124-02-29)") {
		t.Errorf("authorization line %q", got)
	}
	if got := addYearsClamped(orderMustDate("2000-02-29"), 100); got != orderMustDate("2100-02-28") {
		t.Errorf("2000-02-29 + 100 years = %s, want 2100-02-28 as java.util.Calendar", got)
	}
}

func TestJavaFloat(t *testing.T) {
	for _, tc := range []struct {
		in   float32
		want string
	}{{1, "1.0"}, {1.5, "1.5"}, {0, "0.0"}, {2.1, "2.1"}, {1e7, "1.0E7"}, {1.25e-4, "1.25E-4"}} {
		if got := javaFloat(tc.in); got != tc.want {
			t.Errorf("javaFloat(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// The duplicate check folds case as TAK's equalsIgnoreCase does, reports
// every occurrence that has a later twin, and keeps the order's order.
func TestOrderDuplicatesFoldCase(t *testing.T) {
	r := &orderRun{seen: map[string]bool{}}
	r.duplicates([][]string{{"a", "X"}, {"b", "y"}, {"A", "x"}, {"B", "Y"}, {"a", "x"}, {"\u212a", "1"}, {"k", "1"}}, "dup %s")
	want := []string{"dup [a, X]", "dup [b, y]", "dup [A, x]", "dup [\u212a, 1]"}
	if strings.Join(r.errs, "|") != strings.Join(want, "|") {
		t.Errorf("errors = %q, want %q", r.errs, want)
	}
}
