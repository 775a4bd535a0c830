package fsm_test

import (
	"bytes"
	"compress/flate"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/vaxel/vaxel/catalog/command"
	"github.com/vaxel/vaxel/catalog/fsm"
	"github.com/vaxel/vaxel/tak"
)

// update rewrites the golden fixtures in testdata from the entries below:
//
//	go test ./catalog/fsm -run Golden -update
//
// Only do that for a new platform format on purpose, and keep the old files:
// every released entry and snapshot format must stay readable (testdata/README.md).
var update = flag.Bool("update", false, "rewrite the golden log entries and snapshot in testdata")

// goldenFile names one golden log entry: files sort in apply order.
type goldenFile struct {
	name string
	e    entry
}

// goldenEntries is one entry of every type, as the leader would have written
// them (times stamped, never read from the clock), building a small catalog
// with every kind, an HSA tree, timeouts and a history with deltas. Ids
// follow from the imported dump (its highest ids: profile 2, contract 16,
// component 7, logical address 5, call address 7, route 9, authorization 8,
// filter 4, categorization 3).
func goldenEntries(t testing.TB) []entry {
	var es []entry
	for _, g := range goldenFiles(t) {
		if g.e.typ&command.IgnoreUnknown == 0 {
			es = append(es, g.e)
		}
	}
	return es
}

func goldenFiles(t testing.TB) []goldenFile {
	// Copies of tak/testdata/tak-pubversion-export.json and
	// bestallning-test-simple.json, so the fixtures do not move with those.
	dump := readTestdata(t, "testdata/input-takdump.json")
	order := readTestdata(t, "testdata/input-order.json")
	// A platform's timeoutconfig.json is long; this one is long enough to be
	// deflated (command compresses payloads above 32 KiB), which pins that
	// flag in a fixture too.
	timeouts := []tak.TimeoutEntry{
		{Contract: tak.DefaultTimeoutsName, RouteTimeout: 30000, ProducerTimeout: 29000},
		{Contract: nsTest, ProducerTimeout: 1500},
	}
	for i := range 340 {
		timeouts = append(timeouts, tak.TimeoutEntry{Contract: fmt.Sprintf("urn:riv:vaxel:golden:Contract%03dResponder:1", i), RouteTimeout: 30000, ProducerTimeout: int64(1000 + i)})
	}
	return []goldenFile{
		{"entry-1-import.bin", entry{command.TypeImport, &command.Import{Meta: meta(1, "import"), Dump: dump}}},
		{"entry-2-mutate.bin", entry{command.TypeMutate, &command.Mutate{Meta: meta(2, "admin"), Ops: []command.Op{
			put(tak.Contract{Namespace: nsTest, Major: 1, Description: "Test contract"}),                                                                  // 17
			put(tak.Component{HSAID: "SE0000000001-PROD", Description: "producer"}),                                                                       // 8
			put(tak.Component{HSAID: "SE0000000002-CONS", Description: "consumer"}),                                                                       // 9
			put(tak.LogicalAddress{HSAID: "SE0000000003-LA", Description: "care unit"}),                                                                   // 6
			put(tak.CallAddress{URL: "https://producer.example/things", ProfileID: 2, ComponentID: 8}),                                                    // 8
			put(tak.Route{LogicalAddressID: 6, ContractID: 17, CallAddressID: 8, From: date("2020-01-01"), To: date("2120-01-01")}),                       // 10
			put(tak.Authorization{ConsumerID: 9, ContractID: 17, LogicalAddressID: 6, Agreement: "I9", From: date("2020-01-01"), To: date("2120-01-01")}), // 9
			put(tak.Filter{AuthorizationID: 9, ServiceDomain: "urn:riv:vaxel:test"}),                                                                      // 5
			put(tak.Categorization{FilterID: 5, Category: "c1"}),                                                                                          // 4
			put(tak.Contract{ID: 11, Namespace: "urn:riv:itinfra:tp:PingResponder:1", Major: 1, Description: "Ping, updated"}),
			del(tak.KindCategorization, 2),
		}}}},
		{"entry-3-order.bin", entry{command.TypeOrder, &command.Order{Meta: meta(3, "order"), Platform: orderPlatform, Order: order}}},
		{"entry-4-timeouts.bin", entry{command.TypeTimeouts, &command.Timeouts{Meta: meta(4, "timeouts"), Entries: timeouts}}},
		{"entry-5-hsa-tree.bin", entry{command.TypeHSATree, &command.HSATree{Meta: meta(5, "hsa"), Edges: []tak.HSAParent{
			{HSAID: "SE0000000003-LA", Parent: "SE0000000003-UNIT"},
			{HSAID: "SE0000000003-UNIT", Parent: "SE"},
			{HSAID: "TEST-001-CHILD", Parent: "TEST-001"},
		}}}},
		{"entry-6-mutate-undone.bin", entry{command.TypeMutate, &command.Mutate{Meta: meta(6, "admin"), Ops: []command.Op{
			put(tak.Contract{Namespace: "urn:riv:vaxel:test:UndoneResponder:1"}), // 19
			put(tak.LogicalAddress{ID: 1, HSAID: "HSA-VKK123", Description: "changed, then rolled back"}),
			del(tak.KindRoute, 9),
		}}}},
		{"entry-7-rollback.bin", entry{command.TypeRollback, &command.Rollback{Meta: meta(7, "rollback"), ToSeq: 5}}},
		// A type from a newer release that an older node may skip.
		{"entry-8-unknown-ignorable.bin", entry{command.IgnoreUnknown | 0x7e, map[string]string{"note": "a later entry type with the ignore-if-unknown bit"}}},
	}
}

const goldenCatalog = "catalog.golden.txt"

// TestGolden replays the golden log entries into a fresh FSM and restores the
// golden snapshot into another: both must give the expected catalog. Entries
// and snapshot are also re-encoded and compared byte for byte: a difference
// means the wire format changed (or an encoder became non-deterministic),
// which needs a new format version, not a quiet rewrite.
func TestGolden(t *testing.T) {
	files := goldenFiles(t)
	if *update {
		writeGolden(t, files)
	}

	// Replay the entries as Raft would, from the bytes on disk.
	f := newFSM(t)
	for i, g := range files {
		b := readTestdata(t, filepath.Join("testdata", g.name))
		typ, payload, err := command.Decode(b)
		known := err == nil
		if !known && g.e.typ&command.IgnoreUnknown == 0 {
			t.Fatalf("%s: %v", g.name, err)
		}
		if typ != g.e.typ {
			t.Fatalf("%s: type %s, want %s", g.name, typ, g.e.typ)
		}
		if want := encode(t, g.e); !bytes.Equal(inflated(t, b), inflated(t, want)) {
			t.Errorf("%s: the encoding of a %s entry changed (or is not deterministic); keep this file readable and add a new fixture (see testdata/README.md)", g.name, typ)
		}
		if known {
			// Compare with the payload as it comes back from a fresh
			// encoding (JSON compacts raw payloads on the way in).
			_, want, err := command.Decode(encode(t, g.e))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(payload, want) {
				t.Errorf("%s decodes to %+v, want %+v", g.name, payload, want)
			}
		}
		before := f.Current()
		got := applyBytes(f, uint64(i+1), b)
		if !known {
			if got != nil || f.Current() != before {
				t.Errorf("%s: an ignorable unknown entry changed the catalog (result %#v)", g.name, got)
			}
			continue
		}
		res := resultOf(t, g.name, got)
		if res.Seq != before.Seq()+1 {
			t.Errorf("%s: seq %d after %d", g.name, res.Seq, before.Seq())
		}
	}
	if readTestdata(t, "testdata/entry-4-timeouts.bin")[1] != 1 {
		t.Error("entry-4-timeouts.bin is not deflated; the fixture should pin the compressed form")
	}
	want := string(readTestdata(t, filepath.Join("testdata", goldenCatalog)))
	replayed := f.Current()
	if got := describe(t, replayed); got != want {
		t.Errorf("catalog from the golden entries differs from %s:\n%s", goldenCatalog, diffLines(got, want))
	}
	checkGoldenCatalog(t, "replayed entries", replayed)

	// Every snapshot format ever written must restore to the same catalog.
	snaps, err := filepath.Glob("testdata/snapshot-v*.bin")
	if err != nil || len(snaps) == 0 {
		t.Fatalf("no golden snapshots in testdata (%v); run with -update", err)
	}
	current := snapshotBytes(t, replayed)
	currentName := fmt.Sprintf("snapshot-v%d.bin", current[5])
	sawCurrent := false
	for _, p := range snaps {
		b := readTestdata(t, p)
		g := restore(t, b)
		if got := describe(t, g.Current()); got != want {
			t.Errorf("%s restores to a different catalog:\n%s", p, diffLines(got, want))
		}
		checkGoldenCatalog(t, p, g.Current())
		if filepath.Base(p) == currentName {
			sawCurrent = true
			if !bytes.Equal(b, current) {
				t.Errorf("%s: the snapshot writer's output changed without a new format version (or is not deterministic)", p)
			}
		}
	}
	if !sawCurrent {
		t.Errorf("no golden snapshot of the current format (%s); run with -update", currentName)
	}
}

// inflated returns an entry with its payload decompressed: deflate's
// output may change between Go releases, the entry's content may not.
func inflated(t *testing.T, b []byte) []byte {
	t.Helper()
	if len(b) < 2 || b[1]&1 == 0 {
		return b
	}
	body, err := io.ReadAll(flate.NewReader(bytes.NewReader(b[2:])))
	if err != nil {
		t.Fatalf("inflate entry: %v", err)
	}
	return append([]byte{b[0], b[1]}, body...)
}

func resultOf(t *testing.T, name string, v any) *fsm.Result {
	t.Helper()
	res, ok := v.(*fsm.Result)
	if !ok || res == nil {
		t.Fatalf("%s: result %#v", name, v)
	}
	if res.Err != nil || len(res.Errors) > 0 {
		t.Fatalf("%s refused: %v %v", name, res.Err, res.Errors)
	}
	return res
}

func writeGolden(t *testing.T, files []goldenFile) {
	t.Helper()
	if err := os.MkdirAll("testdata", 0o755); err != nil {
		t.Fatal(err)
	}
	f := newFSM(t)
	for i, g := range files {
		b := encode(t, g.e)
		if err := os.WriteFile(filepath.Join("testdata", g.name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		if g.e.typ&command.IgnoreUnknown == 0 {
			mustApply(t, f, uint64(i+1), g.e)
		}
	}
	snap := snapshotBytes(t, f.Current())
	name := fmt.Sprintf("snapshot-v%d.bin", snap[5])
	if err := os.WriteFile(filepath.Join("testdata", name), persist(t, f), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", goldenCatalog), []byte(describe(t, f.Current())), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %d entries, %s and %s", len(files), name, goldenCatalog)
}

// checkGoldenCatalog says in words what the golden catalog must hold, so a
// fixture regenerated by mistake cannot bless a wrong catalog.
func checkGoldenCatalog(t *testing.T, from string, c *tak.Catalog) {
	t.Helper()
	errorf := func(format string, args ...any) { t.Errorf(from+": "+format, args...) }
	if c.Seq() != 7 {
		errorf("seq %d, want 7", c.Seq())
	}
	wantCounts := map[tak.Kind]int{
		tak.KindRivProfile: 2, tak.KindContract: 7 + 1 + 1, tak.KindComponent: 7 + 2 + 2, tak.KindLogicalAddress: 5 + 1 + 1,
		tak.KindCallAddress: 7 + 1 + 1, tak.KindRoute: 9 + 1 + 1, tak.KindAuthorization: 8 + 1 + 1, tak.KindFilter: 4 + 1,
		tak.KindCategorization: 3 + 1 - 1,
	}
	for _, k := range tak.Kinds {
		if c.Counts()[k] != wantCounts[k] {
			errorf("%s: %d, want %d", k, c.Counts()[k], wantCounts[k])
		}
	}
	// The rolled-back version's contract took id 19 for good.
	if c.LastID(tak.KindContract) != 19 {
		errorf("last contract id %d, want 19", c.LastID(tak.KindContract))
	}
	if _, ok := c.ContractByNamespace("urn:riv:vaxel:test:UndoneResponder:1"); ok {
		errorf("the rolled-back contract is there")
	}
	if _, ok := c.Route(9); !ok {
		errorf("route 9, deleted then rolled back, is missing")
	}
	if la, _ := c.LogicalAddress(1); la.Description != "Demo adressat tidbok, vardcentralen kusten, Karna" {
		errorf("logical address 1 = %+v, want the imported description back", la)
	}
	if k, _ := c.Contract(11); k.Description != "Ping, updated" {
		errorf("contract 11 = %+v", k)
	}
	if _, ok := c.Categorization(2); ok {
		errorf("categorization 2 was deleted")
	}
	o := &tak.RoutingOptions{}
	now := at("2024-06-01")
	if tgt, st := c.ResolveRoute(nsTest, "SE0000000003-LA", now, o, nil); st != tak.RouteFound || tgt.URL != "https://producer.example/things" || tgt.Profile != "RIVTABP21" {
		errorf("admin route: %v %+v", st, tgt)
	}
	if !c.Authorize("SE0000000002-CONS", nsTest, "SE0000000003-LA", now, o, nil) {
		errorf("admin authorization does not authorize")
	}
	// The order's route serves a child unit through the HSA tree.
	if tgt, st := c.ResolveRoute(nsOrder, "TEST-001-CHILD", now, o, nil); st != tak.RouteFound || tgt.URL != "https://test.se" {
		errorf("ordered route via the HSA tree: %v %+v", st, tgt)
	}
	if !c.Authorize("KONS-001", nsOrder, "TEST-001-CHILD", now, o, nil) {
		errorf("ordered authorization via the HSA tree does not authorize")
	}
	if d := c.Timeouts().Producer(nsTest); d != 1500*time.Millisecond {
		errorf("timeout %s", d)
	}
	if n := len(c.Timeouts().Entries); n != 342 {
		errorf("%d timeouts", n)
	}
	h := c.History(0)
	wantSources := []string{"rollback", "admin", "hsa", "timeouts", "order", "admin", "import"}
	if len(h) != len(wantSources) {
		errorf("history of %d versions, want %d", len(h), len(wantSources))
		return
	}
	for i, r := range h {
		n := len(h) - i
		if r.Seq != uint64(n) || r.Source != wantSources[i] || r.Actor != "alice" || !r.Time.Equal(time.Unix(0, baseTime+int64(n)*int64(time.Second))) || r.Comment != fmt.Sprintf("change %d", n) {
			errorf("version %d: %+v", n, r)
		}
	}
	if _, _, ok := c.ChangeDelta(1); ok {
		errorf("the import has a delta")
	}
	if _, d, ok := c.ChangeDelta(7); !ok || len(d) != 3 {
		errorf("rollback delta %+v", d)
	}
}
