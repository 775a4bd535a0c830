package fsm_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/vaxel/vaxel/catalog/command"
	"github.com/vaxel/vaxel/catalog/fsm"
	"github.com/vaxel/vaxel/tak"
)

// The SKLTP order of tak-web's BestallningServiceTests (simple), for platform orderPlatform.
const (
	orderPlatform = "SKLTP-TEST"
	nsOrder       = "urn:riv:clinicalprocess:activity:actions:GetActivitiesResponder:2"
	nsTest        = "urn:riv:vaxel:test:GetThingsResponder:1"
)

// baseTime is when the test "leader" accepted the first change; entries are
// stamped baseTime + n seconds, never with the clock.
var baseTime = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano()

func meta(n int, source string) command.Meta {
	return command.Meta{Actor: "alice", Source: source, Comment: fmt.Sprintf("change %d", n), UnixNano: baseTime + int64(n)*int64(time.Second)}
}

// ent encodes an entity in its catalog JSON form, as the admin API passes it on.
func ent(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func put(v any) command.Op {
	return command.Op{Op: "put", Kind: kindOf(v).String(), Entity: ent(v)}
}

func del(k tak.Kind, id int64) command.Op { return command.Op{Op: "delete", Kind: k.String(), ID: id} }

func kindOf(v any) tak.Kind {
	switch v.(type) {
	case tak.RivProfile:
		return tak.KindRivProfile
	case tak.Contract:
		return tak.KindContract
	case tak.Component:
		return tak.KindComponent
	case tak.LogicalAddress:
		return tak.KindLogicalAddress
	case tak.CallAddress:
		return tak.KindCallAddress
	case tak.Route:
		return tak.KindRoute
	case tak.Authorization:
		return tak.KindAuthorization
	case tak.Filter:
		return tak.KindFilter
	case tak.Categorization:
		return tak.KindCategorization
	}
	panic(fmt.Sprintf("%T is not an entity", v))
}

func date(s string) tak.Date {
	d, err := tak.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

func at(s string) int64 { return date(s).Time().Add(12 * time.Hour).Unix() }

// tlog sends the FSM's log to the test log.
type tlog struct{ t testing.TB }

func (w tlog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func newFSM(t testing.TB) *fsm.FSM {
	return fsm.New(slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
}

// entry is one log entry before encoding.
type entry struct {
	typ     command.Type
	payload any
}

func encode(t testing.TB, e entry) []byte {
	t.Helper()
	b, err := command.Encode(e.typ, e.payload)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// applyBytes applies raw entry bytes at a log index, as Raft would.
func applyBytes(f *fsm.FSM, index uint64, data []byte) any {
	return f.Apply(&raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data})
}

func apply(t testing.TB, f *fsm.FSM, index uint64, e entry) *fsm.Result {
	t.Helper()
	got := applyBytes(f, index, encode(t, e))
	res, ok := got.(*fsm.Result)
	if !ok || res == nil {
		t.Fatalf("apply %s: result %#v, want *fsm.Result", e.typ, got)
	}
	return res
}

func mustApply(t testing.TB, f *fsm.FSM, index uint64, e entry) *fsm.Result {
	t.Helper()
	res := apply(t, f, index, e)
	if res.Err != nil || len(res.Errors) > 0 {
		t.Fatalf("apply %s refused: %v %v", e.typ, res.Err, res.Errors)
	}
	return res
}

func readTestdata(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// seedOps builds a small, complete integration from nothing: every kind once,
// ids 1 each.
func seedOps() []command.Op {
	return []command.Op{
		put(tak.RivProfile{Name: "RIVTABP21"}),
		put(tak.Contract{Namespace: nsTest, Major: 1}),
		put(tak.Component{HSAID: "SE0000000001-PROD", Description: "producer"}),
		put(tak.Component{HSAID: "SE0000000002-CONS", Description: "consumer"}),
		put(tak.LogicalAddress{HSAID: "SE0000000003-LA"}),
		put(tak.CallAddress{URL: "https://producer.example/things", ProfileID: 1, ComponentID: 1}),
		put(tak.Route{LogicalAddressID: 1, ContractID: 1, CallAddressID: 1, From: date("2020-01-01"), To: date("2120-01-01")}),
		put(tak.Authorization{ConsumerID: 2, ContractID: 1, LogicalAddressID: 1, Agreement: "I1", From: date("2020-01-01"), To: date("2120-01-01")}),
		put(tak.Filter{AuthorizationID: 1, ServiceDomain: "urn:riv:vaxel:test"}),
		put(tak.Categorization{FilterID: 1, Category: "c1"}),
	}
}

func seedFSM(t testing.TB) *fsm.FSM {
	t.Helper()
	f := newFSM(t)
	mustApply(t, f, 1, entry{command.TypeMutate, &command.Mutate{Meta: meta(1, "admin"), Ops: seedOps()}})
	return f
}

// drain empties Changed, so a test can see whether the next Apply signals.
func drain(f *fsm.FSM) {
	select {
	case <-f.Changed():
	default:
	}
}

func signalled(f *fsm.FSM) bool {
	select {
	case <-f.Changed():
		return true
	default:
		return false
	}
}

// TestApplyEntryTypes applies each entry type to a seeded catalog and checks
// the Result the writer gets and the catalog every node ends up with.
func TestApplyEntryTypes(t *testing.T) {
	simpleOrder := readTestdata(t, "../../tak/testdata/bestallning-test-simple.json")
	dump := readTestdata(t, "../../tak/testdata/tak-pubversion-export.json")
	tests := []struct {
		name    string
		e       entry
		seq     uint64
		applied int
		check   func(t *testing.T, res *fsm.Result, c *tak.Catalog)
	}{
		{
			name: "mutate create", seq: 2, applied: 2,
			e: entry{command.TypeMutate, &command.Mutate{Meta: meta(2, "admin"), Ops: []command.Op{
				put(tak.LogicalAddress{HSAID: "SE0000000004-LA", Description: "second\naddress "}),
				put(tak.Route{LogicalAddressID: 2, ContractID: 1, CallAddressID: 1, From: date("2024-01-01"), To: date("2024-12-31")}),
			}}},
			check: func(t *testing.T, res *fsm.Result, c *tak.Catalog) {
				// Stored is what the catalog holds, with ids and TAK's cleanup.
				want := []any{
					tak.LogicalAddress{ID: 2, HSAID: "SE0000000004-LA", Description: "second address"},
					tak.Route{ID: 2, LogicalAddressID: 2, ContractID: 1, CallAddressID: 1, From: date("2024-01-01"), To: date("2024-12-31")},
				}
				if fmt.Sprint(res.Stored) != fmt.Sprint(want) {
					t.Errorf("stored %+v, want %+v", res.Stored, want)
				}
				tgt, st := c.ResolveRoute(nsTest, "SE0000000004-LA", at("2024-06-01"), &tak.RoutingOptions{}, nil)
				if st != tak.RouteFound || tgt.URL != "https://producer.example/things" {
					t.Errorf("new route: %v %+v", st, tgt)
				}
			},
		},
		{
			name: "mutate update and delete", seq: 2, applied: 3,
			e: entry{command.TypeMutate, &command.Mutate{Meta: meta(2, "admin"), Ops: []command.Op{
				put(tak.Contract{ID: 1, Namespace: nsTest, Major: 1, Minor: 2, Description: "updated"}),
				del(tak.KindCategorization, 1),
				del(tak.KindFilter, 1),
			}}},
			check: func(t *testing.T, res *fsm.Result, c *tak.Catalog) {
				if len(res.Stored) != 3 || res.Stored[0] != (tak.Contract{ID: 1, Namespace: nsTest, Major: 1, Minor: 2, Description: "updated"}) || res.Stored[1] != nil || res.Stored[2] != nil {
					t.Errorf("stored %#v", res.Stored)
				}
				if k, ok := c.Contract(1); !ok || k.Minor != 2 {
					t.Errorf("contract 1 = %+v", k)
				}
				if c.Counts()[tak.KindFilter] != 0 || c.Counts()[tak.KindCategorization] != 0 {
					t.Errorf("counts after delete: %v", c.Counts())
				}
				_, delta, ok := c.ChangeDelta(2)
				if !ok || len(delta) != 3 || delta[0].Op != "update" || delta[1].Op != "delete" {
					t.Errorf("delta %+v", delta)
				}
			},
		},
		{
			name: "order", seq: 2, applied: 7,
			e: entry{command.TypeOrder, &command.Order{Meta: meta(2, "order"), Platform: orderPlatform, Order: simpleOrder}},
			check: func(t *testing.T, res *fsm.Result, c *tak.Catalog) {
				for _, want := range []string{"Plattform: SKLTP-TEST", "Inkludera:", "Nyskapad: TEST-001 - " + nsOrder + " - PROD-001 - RIVTABP21 - https://test.se (2022-12-14 - 2122-12-14)"} {
					if !strings.Contains(res.Report, want) {
						t.Errorf("report lacks %q:\n%s", want, res.Report)
					}
				}
				o := &tak.RoutingOptions{}
				if tgt, st := c.ResolveRoute(nsOrder, "TEST-001", at("2023-01-01"), o, nil); st != tak.RouteFound || tgt.URL != "https://test.se" {
					t.Errorf("ordered route: %v %+v", st, tgt)
				}
				if !c.Authorize("KONS-001", nsOrder, "TEST-001", at("2023-01-01"), o, nil) {
					t.Error("ordered authorization does not authorize")
				}
				// The seeded integration is untouched.
				if len(c.Contracts()) != 2 {
					t.Errorf("contracts %+v", c.Contracts())
				}
			},
		},
		{
			name: "import replaces the content", seq: 2, applied: 52,
			e: entry{command.TypeImport, &command.Import{Meta: meta(2, "import"), Dump: dump}},
			check: func(t *testing.T, res *fsm.Result, c *tak.Catalog) {
				want := map[tak.Kind]int{tak.KindRivProfile: 2, tak.KindContract: 7, tak.KindLogicalAddress: 5, tak.KindComponent: 7,
					tak.KindCallAddress: 7, tak.KindAuthorization: 8, tak.KindRoute: 9, tak.KindFilter: 4, tak.KindCategorization: 3}
				for _, k := range tak.Kinds {
					if c.Counts()[k] != want[k] {
						t.Errorf("%s: %d, want %d", k, c.Counts()[k], want[k])
					}
				}
				if _, ok := c.ContractByNamespace(nsTest); ok {
					t.Error("the seeded contract survived the import")
				}
				// An import keeps the history but cannot be rolled back.
				h := c.History(0)
				if len(h) != 2 || h[0].Source != "import" || h[0].HasDelta {
					t.Errorf("history %+v", h)
				}
			},
		},
		{
			name: "rollback", seq: 3, applied: 4,
			e: entry{command.TypeRollback, &command.Rollback{Meta: meta(3, "rollback"), ToSeq: 1}},
			check: func(t *testing.T, res *fsm.Result, c *tak.Catalog) {
				// Before the table case ran, setup added version 2 (below);
				// the rollback to 1 removes it again.
				if _, ok := c.ContractByNamespace("urn:riv:vaxel:test:ExtraResponder:1"); ok {
					t.Error("version 2's contract survived the rollback")
				}
				if len(c.Contracts()) != 1 || len(c.Routes()) != 1 || len(c.LogicalAddresses()) != 1 {
					t.Errorf("catalog after rollback: %v", c.Counts())
				}
				if k, _ := c.Contract(1); k.Description != "" {
					t.Errorf("contract 1 after rollback: %+v", k)
				}
				if h := c.History(1)[0]; h.Source != "rollback" || h.Actor != "alice" {
					t.Errorf("rollback record %+v", h)
				}
			},
		},
		{
			name: "hsa tree", seq: 2, applied: 0,
			e: entry{command.TypeHSATree, &command.HSATree{Meta: meta(2, "hsa"), Edges: []tak.HSAParent{
				{HSAID: "SE0000000003-LA", Parent: "SE0000000003-UNIT"},
				{HSAID: "SE0000000003-UNIT", Parent: "SE"},
			}}},
			check: func(t *testing.T, res *fsm.Result, c *tak.Catalog) {
				if p := c.HSATree().Parent("SE0000000003-LA"); p != "SE0000000003-UNIT" {
					t.Errorf("parent %q", p)
				}
				// A route for the parent now serves the child through the climb.
				tgt, st := c.ResolveRoute(nsTest, "SE0000000003-LA", at("2024-01-01"), &tak.RoutingOptions{}, nil)
				if st != tak.RouteFound || tgt.URL == "" {
					t.Errorf("route %v", st)
				}
				if c.HSATree().Len() != 2 {
					t.Errorf("tree holds %d units", c.HSATree().Len())
				}
			},
		},
		{
			name: "timeouts", seq: 2, applied: 0,
			e: entry{command.TypeTimeouts, &command.Timeouts{Meta: meta(2, "timeouts"), Entries: []tak.TimeoutEntry{
				{Contract: tak.DefaultTimeoutsName, RouteTimeout: 30000, ProducerTimeout: 29000},
				{Contract: nsTest, ProducerTimeout: 1500},
			}}},
			check: func(t *testing.T, res *fsm.Result, c *tak.Catalog) {
				if d := c.Timeouts().Producer(nsTest); d != 1500*time.Millisecond {
					t.Errorf("timeout %s", d)
				}
				if d := c.Timeouts().Producer("urn:other"); d != 29*time.Second {
					t.Errorf("default timeout %s", d)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := seedFSM(t)
			if tc.e.typ == command.TypeRollback {
				mustApply(t, f, 2, entry{command.TypeMutate, &command.Mutate{Meta: meta(2, "admin"), Ops: []command.Op{
					put(tak.Contract{Namespace: "urn:riv:vaxel:test:ExtraResponder:1"}),
					put(tak.Route{LogicalAddressID: 1, ContractID: 2, CallAddressID: 1, From: date("2020-01-01"), To: date("2120-01-01")}),
					put(tak.Contract{ID: 1, Namespace: nsTest, Major: 1, Description: "changed"}),
				}}})
				// And a few more changes to undo, spread over versions.
				mustApply(t, f, 3, entry{command.TypeMutate, &command.Mutate{Meta: meta(2, "admin"), Ops: []command.Op{
					put(tak.LogicalAddress{HSAID: "SE0000000009-LA"}),
				}}})
				tc.seq++
			}
			drain(f)
			res := apply(t, f, 10, tc.e)
			if res.Err != nil || res.Errors != nil {
				t.Fatalf("refused: %v %v", res.Err, res.Errors)
			}
			if res.Seq != tc.seq || res.Applied != tc.applied {
				t.Errorf("result seq %d applied %d, want %d %d", res.Seq, res.Applied, tc.seq, tc.applied)
			}
			c := f.Current()
			if c.Seq() != res.Seq {
				t.Errorf("catalog seq %d, result seq %d", c.Seq(), res.Seq)
			}
			if !signalled(f) {
				t.Error("Changed not signalled")
			}
			rec := c.History(1)[0]
			m := metaOf(tc.e.payload)
			if rec.Seq != res.Seq || rec.Actor != m.Actor || rec.Source != m.Source || rec.Comment != m.Comment || !rec.Time.Equal(time.Unix(0, m.UnixNano)) {
				t.Errorf("change record %+v, want the entry's meta %+v", rec, m)
			}
			tc.check(t, res, c)
		})
	}
}

func metaOf(p any) command.Meta {
	switch x := p.(type) {
	case *command.Mutate:
		return x.Meta
	case *command.Order:
		return x.Meta
	case *command.Import:
		return x.Meta
	case *command.Rollback:
		return x.Meta
	case *command.HSATree:
		return x.Meta
	case *command.Timeouts:
		return x.Meta
	}
	panic(fmt.Sprintf("%T", p))
}

// TestApplyRefused: a change the catalog's rules refuse comes back in Result
// with nothing applied: same catalog value, same version, no Changed signal.
func TestApplyRefused(t *testing.T) {
	dump := readTestdata(t, "../../tak/testdata/tak-pubversion-export.json")
	order := readTestdata(t, "../../tak/testdata/bestallning-test-simple.json")
	mut := func(ops ...command.Op) entry {
		return entry{command.TypeMutate, &command.Mutate{Meta: meta(5, "admin"), Ops: ops}}
	}
	tests := []struct {
		name    string
		e       entry
		errIs   error  // Result.Err must wrap this, if set
		errText string // Result.Err must contain this, if set
		errors  string // one of Result.Errors must contain this, if set
	}{
		{name: "unknown kind", e: mut(command.Op{Op: "put", Kind: "widget", Entity: json.RawMessage(`{}`)}), errText: `unknown kind "widget"`},
		{name: "unknown op", e: mut(command.Op{Op: "upsert", Kind: "contract", Entity: ent(tak.Contract{Namespace: "urn:x"})}), errText: `unknown op "upsert"`},
		{name: "entity JSON of the wrong shape", e: mut(command.Op{Op: "put", Kind: "contract", Entity: json.RawMessage(`{"namespace":17}`)}), errText: "op 0"},
		{name: "route to a missing contract", e: mut(put(tak.Route{LogicalAddressID: 1, ContractID: 99, CallAddressID: 1, From: date("2020-01-01"), To: date("2020-02-01")})), errIs: tak.ErrNotFound},
		{name: "update of a missing id", e: mut(put(tak.Contract{ID: 42, Namespace: "urn:x"})), errIs: tak.ErrNotFound},
		{name: "delete of a missing id", e: mut(del(tak.KindLogicalAddress, 42)), errIs: tak.ErrNotFound},
		{name: "delete in use", e: mut(del(tak.KindContract, 1)), errIs: tak.ErrInUse},
		{name: "duplicate namespace", e: mut(put(tak.Contract{Namespace: strings.ToUpper(nsTest)})), errIs: tak.ErrConflict},
		{name: "overlapping route", e: mut(put(tak.Route{LogicalAddressID: 1, ContractID: 1, CallAddressID: 1, From: date("2030-01-01"), To: date("2030-02-01")})), errIs: tak.ErrConflict},
		{name: "invalid HSA-ID", e: mut(put(tak.Component{HSAID: "bad id"})), errText: "TAK does not allow"},
		{
			// All or nothing: the first op was fine, the second is refused.
			name: "batch with one bad op",
			e: mut(put(tak.LogicalAddress{HSAID: "SE0000000005-LA"}),
				put(tak.Authorization{ConsumerID: 2, ContractID: 1, LogicalAddressID: 1, Agreement: " ", From: date("2020-01-01"), To: date("2020-02-01")})),
			errText: "op 1: authorization agreement",
		},
		{name: "order for another platform", e: entry{command.TypeOrder, &command.Order{Meta: meta(5, "order"), Platform: "NTJP-PROD", Order: order}}, errors: "Beställningen avser plattform SKLTP-TEST"},
		{name: "order that does not parse", e: entry{command.TypeOrder, &command.Order{Meta: meta(5, "order"), Platform: orderPlatform, Order: json.RawMessage(`{"plattform":"SKLTP-TEST","bogus":1}`)}}, errText: "bogus"},
		{name: "order with unknown RIV profile", e: entry{command.TypeOrder, &command.Order{Meta: meta(5, "order"), Platform: orderPlatform,
			Order: bytes.ReplaceAll(order, []byte("RIVTABP21"), []byte("RIVTABP99"))}}, errors: "RIVTABP99"},
		{name: "import with a broken relationship", e: entry{command.TypeImport, &command.Import{Meta: meta(5, "import"),
			Dump: bytes.Replace(dump, []byte(`"tjanstekomponent" : 1`), []byte(`"tjanstekomponent" : 999`), 1)}}, errText: "999"},
		{name: "import of a non-dump", e: entry{command.TypeImport, &command.Import{Meta: meta(5, "import"), Dump: json.RawMessage(`[1,2]`)}}, errText: ""},
		{name: "rollback to the current version", e: entry{command.TypeRollback, &command.Rollback{Meta: meta(5, "rollback"), ToSeq: 1}}, errText: "newest version is 1"},
		{name: "rollback to the future", e: entry{command.TypeRollback, &command.Rollback{Meta: meta(5, "rollback"), ToSeq: 7}}, errText: "newest version is 1"},
		{name: "timeouts not positive", e: entry{command.TypeTimeouts, &command.Timeouts{Meta: meta(5, "timeouts"), Entries: []tak.TimeoutEntry{{Contract: nsTest, ProducerTimeout: 0}}}}, errText: "must be a positive"},
		{name: "timeouts listed twice", e: entry{command.TypeTimeouts, &command.Timeouts{Meta: meta(5, "timeouts"), Entries: []tak.TimeoutEntry{{Contract: nsTest, ProducerTimeout: 1}, {Contract: nsTest, ProducerTimeout: 2}}}}, errText: "listed twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := seedFSM(t)
			before := f.Current()
			want := snapshotBytes(t, before)
			drain(f)
			res := apply(t, f, 2, tc.e)
			if res.Err == nil && len(res.Errors) == 0 {
				t.Fatalf("accepted: %+v", res)
			}
			if tc.errIs != nil && !errors.Is(res.Err, tc.errIs) {
				t.Errorf("err = %v, want %v", res.Err, tc.errIs)
			}
			if tc.errText != "" && (res.Err == nil || !strings.Contains(res.Err.Error(), tc.errText)) {
				t.Errorf("err = %v, want it to mention %q", res.Err, tc.errText)
			}
			if tc.errors != "" && !strings.Contains(strings.Join(res.Errors, "\n"), tc.errors) {
				t.Errorf("errors = %q, want one mentioning %q", res.Errors, tc.errors)
			}
			if res.Seq != 1 || res.Applied != 0 || res.Report != "" || res.Stored != nil {
				t.Errorf("refused result %+v, want seq 1 and nothing applied", res)
			}
			if f.Current() != before {
				t.Error("refused change replaced the catalog")
			}
			if signalled(f) {
				t.Error("refused change signalled Changed")
			}
			if got := snapshotBytes(t, f.Current()); !bytes.Equal(got, want) {
				t.Error("refused change altered the catalog")
			}
		})
	}
}

// TestRollbackPastImport: an import has no delta, so no rollback crosses it.
func TestRollbackPastImport(t *testing.T) {
	f := seedFSM(t)
	mustApply(t, f, 2, entry{command.TypeImport, &command.Import{Meta: meta(2, "import"), Dump: readTestdata(t, "../../tak/testdata/tak-pubversion-export.json")}})
	mustApply(t, f, 3, entry{command.TypeMutate, &command.Mutate{Meta: meta(3, "admin"), Ops: []command.Op{put(tak.Contract{Namespace: nsTest})}}})
	res := apply(t, f, 4, entry{command.TypeRollback, &command.Rollback{Meta: meta(4, "rollback"), ToSeq: 1}})
	if !errors.Is(res.Err, tak.ErrConflict) || res.Seq != 3 {
		t.Fatalf("rollback across an import: %+v, want ErrConflict at seq 3", res)
	}
	// Back to just after the import is fine, and the import's ids continue.
	res = mustApply(t, f, 5, entry{command.TypeRollback, &command.Rollback{Meta: meta(5, "rollback"), ToSeq: 2}})
	if res.Seq != 4 || res.Applied != 1 {
		t.Errorf("rollback to 2: %+v", res)
	}
	if _, ok := f.Current().ContractByNamespace(nsTest); ok {
		t.Error("contract of version 3 survived")
	}
	res = mustApply(t, f, 6, entry{command.TypeMutate, &command.Mutate{Meta: meta(6, "admin"), Ops: []command.Op{put(tak.Contract{Namespace: nsTest})}}})
	if c := res.Stored[0].(tak.Contract); c.ID != 18 {
		// The dump's highest contract id is 16; 17 went to the undone
		// version 3 and is never handed out again.
		t.Errorf("new contract id %d, want 18", c.ID)
	}
}

// TestApplyUnknownType: an entry this build does not know stops the node
// (its catalog would otherwise diverge) unless its type carries the
// ignore-if-unknown bit.
func TestApplyUnknownType(t *testing.T) {
	tests := []struct {
		name      string
		data      []byte
		wantPanic string
	}{
		{name: "unknown type", data: []byte{0x7f, 0, '{', '}'}, wantPanic: "upgrade this node"},
		{name: "unknown type with the ignore bit", data: []byte{0x80 | 0x7f, 0, '{', '}'}},
		{name: "unknown ignorable type with a deflated payload", data: mustEncode(t, command.IgnoreUnknown|0x42, map[string]string{"x": strings.Repeat("y", 40<<10)})},
		{name: "known type with a corrupt payload", data: []byte{byte(command.TypeMutate), 0, '{'}, wantPanic: "decode mutate entry"},
		{name: "too short", data: []byte{1}, wantPanic: "catalog entry 7"},
		// command.Decode leaves an order's JSON unchecked; Apply must still
		// stop on one that is not JSON, as it did when Decode checked it.
		{name: "order entry with corrupt order JSON", data: append([]byte{byte(command.TypeOrder), 0}, `{"meta":{},"platform":"SKLTP-TEST","order":{"plattform":"SKLTP-TEST"]}`...), wantPanic: "decode order entry"},
		{name: "order entry with an order that is not an object", data: append([]byte{byte(command.TypeOrder), 0}, `{"meta":{},"platform":"SKLTP-TEST","order":{"plattform":"SKLTP-TEST"} x}`...), wantPanic: "decode order entry"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := seedFSM(t)
			before := f.Current()
			drain(f)
			var got any
			panicked := func() (p any) {
				defer func() { p = recover() }()
				got = applyBytes(f, 7, tc.data)
				return nil
			}()
			switch {
			case tc.wantPanic == "" && panicked != nil:
				t.Fatalf("panicked: %v", panicked)
			case tc.wantPanic != "" && panicked == nil:
				t.Fatalf("applied (result %#v), want the node to stop", got)
			case tc.wantPanic != "" && !strings.Contains(fmt.Sprint(panicked), tc.wantPanic):
				t.Errorf("panic %q, want it to mention %q", panicked, tc.wantPanic)
			}
			if tc.wantPanic == "" && got != nil {
				t.Errorf("skipped entry returned %#v, want nil", got)
			}
			if f.Current() != before || signalled(f) {
				t.Error("catalog changed")
			}
		})
	}
}

func mustEncode(t testing.TB, typ command.Type, payload any) []byte {
	b, err := command.Encode(typ, payload)
	if err != nil {
		t.Fatal(err)
	}
	if b[1] == 0 {
		t.Fatal("payload not compressed; make it bigger")
	}
	return b
}

// TestApplyNonCommandLogs: Raft's own entries (configuration, barriers, noops)
// reach Apply too and change nothing.
func TestApplyNonCommandLogs(t *testing.T) {
	f := seedFSM(t)
	before := f.Current()
	for _, typ := range []raft.LogType{raft.LogNoop, raft.LogBarrier, raft.LogConfiguration} {
		if got := f.Apply(&raft.Log{Index: 5, Type: typ, Data: []byte{1, 0, '{', '}'}}); got != nil {
			t.Errorf("%s: result %#v", typ, got)
		}
	}
	if f.Current() != before {
		t.Error("catalog changed")
	}
}

// memSink is a raft.SnapshotSink in memory.
type memSink struct {
	bytes.Buffer
	failAfter         int // fail writes once this many bytes were written (0: never)
	cancelled, closed bool
}

func (s *memSink) ID() string { return "mem" }

func (s *memSink) Write(p []byte) (int, error) {
	if s.failAfter > 0 && s.Len()+len(p) > s.failAfter {
		return 0, errors.New("disk full")
	}
	return s.Buffer.Write(p)
}

func (s *memSink) Cancel() error { s.cancelled = true; return nil }
func (s *memSink) Close() error  { s.closed = true; return nil }

func persist(t testing.TB, f *fsm.FSM) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	if !sink.closed || sink.cancelled {
		t.Fatalf("sink closed %v cancelled %v", sink.closed, sink.cancelled)
	}
	return sink.Bytes()
}

func snapshotBytes(t testing.TB, c *tak.Catalog) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := c.WriteSnapshot(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func restore(t testing.TB, b []byte) *fsm.FSM {
	t.Helper()
	f := newFSM(t)
	rc := &trackedReader{Reader: bytes.NewReader(b)}
	if err := f.Restore(rc); err != nil {
		t.Fatal(err)
	}
	if !rc.closed {
		t.Error("Restore did not close the snapshot reader")
	}
	return f
}

type trackedReader struct {
	io.Reader
	closed bool
}

func (r *trackedReader) Close() error { r.closed = true; return nil }

// fullCatalog applies one entry of every type, ending with a catalog that
// holds every kind, an HSA tree, timeouts and a history with deltas.
func fullCatalog(t testing.TB) *fsm.FSM {
	f := newFSM(t)
	for i, e := range goldenEntries(t) {
		mustApply(t, f, uint64(i+1), e)
	}
	return f
}

// TestSnapshotRestore: Persist then Restore into a fresh FSM gives the same
// catalog: entities, ids, HSA tree, timeouts and history (so a rollback works
// across a restore).
func TestSnapshotRestore(t *testing.T) {
	f := fullCatalog(t)
	want := describe(t, f.Current())
	b := persist(t, f)
	g := restore(t, b)
	if got := describe(t, g.Current()); got != want {
		t.Fatalf("restored catalog differs:\n%s", diffLines(got, want))
	}
	if !signalled(g) {
		t.Error("Restore did not signal Changed")
	}
	// Both FSMs go on identically from here.
	next := entry{command.TypeRollback, &command.Rollback{Meta: meta(50, "rollback"), ToSeq: f.Current().Seq() - 3}}
	r1, r2 := mustApply(t, f, 100, next), mustApply(t, g, 100, next)
	if r1.Seq != r2.Seq || r1.Applied != r2.Applied || r1.Applied == 0 {
		t.Errorf("rollback after restore: %+v vs %+v", r2, r1)
	}
	if a, b := describe(t, f.Current()), describe(t, g.Current()); a != b {
		t.Errorf("catalogs diverged after restore:\n%s", diffLines(b, a))
	}
	// Entity listings, as the admin API and the router read them.
	for _, k := range tak.Kinds {
		a, _ := json.Marshal(f.Current().List(k))
		b, _ := json.Marshal(g.Current().List(k))
		if !bytes.Equal(a, b) {
			t.Errorf("%s listing differs", k)
		}
	}
}

// TestSnapshotIsPinned: Snapshot pins the catalog; changes applied before
// Persist runs are not in it.
func TestSnapshotIsPinned(t *testing.T) {
	f := seedFSM(t)
	want := describe(t, f.Current())
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, f, 2, entry{command.TypeMutate, &command.Mutate{Meta: meta(2, "admin"), Ops: []command.Op{put(tak.Contract{Namespace: "urn:riv:later:1"})}}})
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	if got := describe(t, restore(t, sink.Bytes()).Current()); got != want {
		t.Errorf("snapshot holds a later change:\n%s", diffLines(got, want))
	}
}

// TestPersistFailure: a failing sink is cancelled, not closed.
func TestPersistFailure(t *testing.T) {
	f := fullCatalog(t)
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{failAfter: 1}
	if err := snap.Persist(sink); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Persist err = %v, want the sink's error", err)
	}
	if !sink.cancelled || sink.closed {
		t.Errorf("sink cancelled %v closed %v, want cancelled only", sink.cancelled, sink.closed)
	}
}

// TestRestoreCorrupt: a corrupt or truncated snapshot is refused whole and
// the FSM keeps the catalog it had.
func TestRestoreCorrupt(t *testing.T) {
	good := persist(t, fullCatalog(t))
	flip := append([]byte(nil), good...)
	flip[len(flip)/2] ^= 0x55
	tests := []struct {
		name string
		b    []byte
	}{
		{"bit flip", flip},
		{"truncated", good[:len(good)-7]},
		{"empty", nil},
		{"not a snapshot", []byte("VXTAQ\x01garbage")},
		{"future format version", append([]byte("VXTAK\x7f"), good[6:]...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := seedFSM(t)
			before := f.Current()
			drain(f)
			err := f.Restore(io.NopCloser(bytes.NewReader(tc.b)))
			if err == nil {
				t.Fatal("corrupt snapshot restored")
			}
			if f.Current() != before || signalled(f) {
				t.Error("a refused snapshot replaced the catalog")
			}
		})
	}
}

// describe renders everything a catalog holds as text, one item per line in
// a fixed order, so two catalogs compare by text and a golden file can hold
// one: version, id counters, entities by kind in id order, HSA edges,
// timeouts, and the history (newest first) with each version's delta.
func describe(t testing.TB, c *tak.Catalog) string {
	t.Helper()
	var b strings.Builder
	line := func(prefix string, v any) {
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %s\n", prefix, j)
	}
	fmt.Fprintf(&b, "seq %d\n", c.Seq())
	for _, k := range tak.Kinds {
		fmt.Fprintf(&b, "lastid %s %d\n", k, c.LastID(k))
	}
	for _, k := range tak.Kinds {
		j, err := json.Marshal(c.List(k))
		if err != nil {
			t.Fatal(err)
		}
		var list []json.RawMessage
		if err := json.Unmarshal(j, &list); err != nil {
			t.Fatal(err)
		}
		for _, e := range list {
			fmt.Fprintf(&b, "%s %s\n", k, e)
		}
	}
	for _, e := range c.HSATree().Edges() {
		fmt.Fprintf(&b, "hsa %s %s\n", e.HSAID, e.Parent)
	}
	for _, e := range c.Timeouts().Entries {
		line("timeout", e)
	}
	for _, r := range c.History(0) {
		line("version", r)
		_, d, _ := c.ChangeDelta(r.Seq)
		for _, e := range d {
			line("  change", e)
		}
	}
	return b.String()
}

// diffLines shows the first lines where got and want differ.
func diffLines(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	var out []string
	for i := 0; i < max(len(g), len(w)) && len(out) < 20; i++ {
		var a, b string
		if i < len(g) {
			a = g[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if a != b {
			out = append(out, fmt.Sprintf("line %d:\n  got  %s\n  want %s", i+1, a, b))
		}
	}
	return strings.Join(out, "\n")
}

// TestApplyOrderEntryNotAsEncoded: an order entry in a form Encode does not
// write (here a repeated "order" key, the last of which counts) applies the
// order encoding/json decodes, although command.Decode took the order out
// unchecked.
func TestApplyOrderEntryNotAsEncoded(t *testing.T) {
	f := seedFSM(t)
	good := `{"plattform":"SKLTP-TEST","genomforandeTidpunkt":"2026-01-01T00:00:00+0000","kommentar":"last","inkludera":{"logiskadresser":[{"hsaId":"SE-NOT-AS-ENCODED","beskrivning":"x"}]}}`
	data := append([]byte{byte(command.TypeOrder), 0}, `{"meta":{"actor":"a","source":"order","time":1},"platform":"SKLTP-TEST","order":{"plattform":"OTHER"},"order":`+good+`}`...)
	res, ok := applyBytes(f, 9, data).(*fsm.Result)
	if !ok || res.Err != nil || len(res.Errors) > 0 {
		t.Fatalf("result %#v", res)
	}
	if _, ok := f.Current().LogicalAddressByHSAID("SE-NOT-AS-ENCODED"); !ok {
		t.Error("the last order in the entry was not applied")
	}
}
