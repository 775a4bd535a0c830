package tak

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// Limits on what the change history keeps in memory (and in snapshots). A
// change larger than maxDelta entity changes (a migration import) is recorded
// without its delta and cannot be rolled back; older deltas are dropped once
// the history holds more than maxHistoryDelta, but every change keeps its
// metadata up to maxHistory changes.
const (
	maxDelta        = 200_000
	maxHistoryDelta = 1_000_000
	maxHistory      = 1000
)

// ChangeMeta says who changed the catalog, when, how and why. It is stamped
// by the node that accepted the change, before it is replicated.
type ChangeMeta struct {
	Actor   string    `json:"actor"`             // admin identity (certificate HSA-ID or token name)
	Time    time.Time `json:"time"`              // when the leader accepted the change
	Source  string    `json:"source"`            // admin, order, import, rollback, hsa, timeouts
	Comment string    `json:"comment,omitempty"` // the order's kommentar or the operator's note
}

// ChangeRecord is one committed change: one catalog version.
type ChangeRecord struct {
	Seq uint64 `json:"seq"`
	ChangeMeta
	Changes  int  `json:"changes"`  // entity changes in this version
	HasDelta bool `json:"hasDelta"` // the entity changes are kept: diff and rollback possible
}

// EntityChange is one entity's before and after in a change. Before is nil
// for a creation, After nil for a deletion. HSA tree and timeout replacements
// carry only Op and Summary.
type EntityChange struct {
	Op      string `json:"op"` // create, update, delete, hsa-tree, timeouts
	Kind    Kind   `json:"-"`
	ID      int64  `json:"id,omitempty"`
	Before  any    `json:"before,omitempty"`
	After   any    `json:"after,omitempty"`
	Summary string `json:"summary,omitempty"`
}

// MarshalJSON writes the kind by name: {"kind","op","id","before","after",
// "summary"}, each but op left out when empty, the field order and form
// encoding/json gives the struct with a kind field first. It is written by
// hand because snapshots hold up to a million of these.
func (e EntityChange) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 256)
	b = append(b, '{')
	if k := kindName(e.Kind); k != "" {
		b = append(b, `"kind":`...)
		b = appendJSONString(b, k)
		b = append(b, ',')
	}
	b = append(b, `"op":`...)
	b = appendJSONString(b, e.Op)
	if e.ID != 0 {
		b = append(b, `,"id":`...)
		b = strconv.AppendInt(b, e.ID, 10)
	}
	for _, f := range [...]struct {
		key string
		v   any
	}{{`,"before":`, e.Before}, {`,"after":`, e.After}} {
		if f.v == nil {
			continue
		}
		v, err := json.Marshal(f.v)
		if err != nil {
			return nil, err
		}
		b = append(b, f.key...)
		b = append(b, v...)
	}
	if e.Summary != "" {
		b = append(b, `,"summary":`...)
		b = appendJSONString(b, e.Summary)
	}
	return append(b, '}'), nil
}

// appendJSONString appends s as encoding/json writes a string (HTML-safe
// escaping included): directly when nothing in it needs escaping.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// UnmarshalJSON restores Before and After as the entity types of Kind.
func (e *EntityChange) UnmarshalJSON(b []byte) error {
	var w struct {
		Op      string          `json:"op"`
		Kind    string          `json:"kind"`
		ID      int64           `json:"id"`
		Before  json.RawMessage `json:"before"`
		After   json.RawMessage `json:"after"`
		Summary string          `json:"summary"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*e = EntityChange{Op: w.Op, ID: w.ID, Summary: w.Summary}
	if w.Kind == "" {
		return nil
	}
	k, ok := ParseKind(w.Kind)
	if !ok {
		return fmt.Errorf("entity change: unknown kind %q", w.Kind)
	}
	e.Kind = k
	var err error
	if len(w.Before) > 0 && string(w.Before) != "null" {
		if e.Before, err = DecodeEntity(k, w.Before); err != nil {
			return err
		}
	}
	if len(w.After) > 0 && string(w.After) != "null" {
		if e.After, err = DecodeEntity(k, w.After); err != nil {
			return err
		}
	}
	return nil
}

func kindName(k Kind) string {
	if k == 0 {
		return ""
	}
	return k.String()
}

// DecodeEntity decodes an entity of kind k from its JSON form (the form
// entities take in change records and catalog log entries).
func DecodeEntity(k Kind, b []byte) (any, error) {
	var v any
	var err error
	switch k {
	case KindRivProfile:
		var x RivProfile
		err = json.Unmarshal(b, &x)
		v = x
	case KindContract:
		var x Contract
		err = json.Unmarshal(b, &x)
		v = x
	case KindComponent:
		var x Component
		err = json.Unmarshal(b, &x)
		v = x
	case KindLogicalAddress:
		var x LogicalAddress
		err = json.Unmarshal(b, &x)
		v = x
	case KindCallAddress:
		var x CallAddress
		err = json.Unmarshal(b, &x)
		v = x
	case KindRoute:
		var x Route
		err = json.Unmarshal(b, &x)
		v = x
	case KindAuthorization:
		var x Authorization
		err = json.Unmarshal(b, &x)
		v = x
	case KindFilter:
		var x Filter
		err = json.Unmarshal(b, &x)
		v = x
	case KindCategorization:
		var x Categorization
		err = json.Unmarshal(b, &x)
		v = x
	default:
		return nil, fmt.Errorf("entity change: unknown kind %d", k)
	}
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", k, err)
	}
	return v, nil
}

// recordPut records the creation (existed false) or update of an entity. It
// is generic so that before is boxed only when it is kept: an order creates
// entities by the hundred thousand.
func recordPut[T any](t *Txn, k Kind, id int64, before T, existed bool, after T) {
	if !t.recording() {
		return
	}
	if !existed {
		t.delta = append(t.delta, EntityChange{Op: "create", Kind: k, ID: id, After: after})
		return
	}
	t.delta = append(t.delta, EntityChange{Op: "update", Kind: k, ID: id, Before: before, After: after})
}

// recordDelete records the deletion of an entity.
func (t *Txn) recordDelete(k Kind, id int64, before any) {
	if t.recording() {
		t.delta = append(t.delta, EntityChange{Op: "delete", Kind: k, ID: id, Before: before})
	}
}

// recording counts an entity change and says whether its delta is still kept.
func (t *Txn) recording() bool {
	t.n++
	if t.overflow {
		return false
	}
	if len(t.delta) >= maxDelta {
		t.overflow, t.delta = true, nil
		return false
	}
	return true
}

// reserve makes room in the delta for about n more entity changes, for a
// caller that knows how many it will make (an order): growing it change by
// change copies it over and over.
func (t *Txn) reserve(n int) {
	if t.overflow || n <= 0 {
		return
	}
	n = min(n, maxDelta-len(t.delta))
	if n > 0 && cap(t.delta)-len(t.delta) < n {
		t.delta = slices.Grow(t.delta, n)
	}
}

// changeLog is immutable like the rest of the catalog: append copies the
// record list (at most maxHistory pointers), never writes a shared array.
type changeLog struct {
	records []*loggedChange
	deltas  int
}

type loggedChange struct {
	rec   ChangeRecord
	delta []EntityChange
}

func (l changeLog) append(rec ChangeRecord, delta []EntityChange, overflow bool) changeLog {
	rec.HasDelta = !overflow
	if overflow {
		delta = nil
	}
	recs := l.records
	if len(recs) >= maxHistory {
		recs = recs[len(recs)-maxHistory+1:]
	}
	out := make([]*loggedChange, 0, len(recs)+1)
	out = append(out, recs...)
	out = append(out, &loggedChange{rec: rec, delta: delta})
	total := 0
	for _, lc := range out {
		total += len(lc.delta)
	}
	// Drop the oldest deltas until the history fits. The records stay, marked
	// as no longer rollbackable; replacing them keeps old versions unchanged.
	for i := 0; total > maxHistoryDelta && i < len(out)-1; i++ {
		if out[i].delta != nil {
			total -= len(out[i].delta)
			r := out[i].rec
			r.HasDelta = false
			out[i] = &loggedChange{rec: r}
		}
	}
	return changeLog{records: out, deltas: total}
}

// History returns the newest change records first, at most limit (0 = all kept).
func (c *Catalog) History(limit int) []ChangeRecord {
	rs := c.log.records
	out := make([]ChangeRecord, 0, len(rs))
	for i := len(rs) - 1; i >= 0; i-- {
		if limit > 0 && len(out) == limit {
			break
		}
		out = append(out, rs[i].rec)
	}
	return out
}

// ChangeDelta returns the entity changes of one version, if still kept.
func (c *Catalog) ChangeDelta(seq uint64) (ChangeRecord, []EntityChange, bool) {
	for _, lc := range c.log.records {
		if lc.rec.Seq == seq {
			return lc.rec, lc.delta, lc.rec.HasDelta
		}
	}
	return ChangeRecord{}, nil, false
}

// Diff returns every entity change after version from up to and including
// version to, oldest first. It fails if a change in between is no longer kept.
func (c *Catalog) Diff(from, to uint64) ([]EntityChange, error) {
	if from > to {
		return nil, fmt.Errorf("diff %d..%d: from is after to", from, to)
	}
	if to > c.seq {
		return nil, fmt.Errorf("diff %d..%d: newest version is %d", from, to, c.seq)
	}
	var out []EntityChange
	for seq := from + 1; seq <= to; seq++ {
		_, d, ok := c.ChangeDelta(seq)
		if !ok {
			return nil, fmt.Errorf("diff %d..%d: version %d is no longer kept in full; the history keeps the newest %d entity changes", from, to, seq, maxHistoryDelta)
		}
		out = append(out, d...)
	}
	return out, nil
}

// RevertTo undoes, newest first, every change after version seq. It refuses
// (ErrConflict) if an entity no longer looks as the undone change left it,
// which can only happen if the history was pruned in between. HSA tree and
// timeout replacements are not undone: they are loaded from files, and the
// file is the operator's version of record.
func (t *Txn) RevertTo(seq uint64) error {
	if seq >= t.c.seq {
		return fmt.Errorf("rollback to %d: newest version is %d", seq, t.c.seq)
	}
	t.keepIDs = true
	defer func() { t.keepIDs = false }()
	for v := t.c.seq; v > seq; v-- {
		_, delta, ok := t.c.ChangeDelta(v)
		if !ok {
			return fmt.Errorf("rollback to %d: version %d is not kept in full and cannot be undone: %w", seq, v, ErrConflict)
		}
		for i := len(delta) - 1; i >= 0; i-- {
			if err := t.undo(delta[i]); err != nil {
				return fmt.Errorf("rollback to %d: undo version %d: %w", seq, v, err)
			}
		}
	}
	return nil
}

func (t *Txn) undo(e EntityChange) error {
	if e.Kind == 0 {
		return nil
	}
	cur, ok := t.c.entity(e.Kind, e.ID)
	if e.After != nil && (!ok || cur != e.After) || e.After == nil && ok {
		return fmt.Errorf("%s %d changed since: %w", e.Kind, e.ID, ErrConflict)
	}
	if e.Before == nil {
		return t.Delete(e.Kind, e.ID)
	}
	return t.Put(e.Before)
}

// Put creates or updates any entity value (RivProfile, Contract, …).
func (t *Txn) Put(v any) error {
	var err error
	switch x := v.(type) {
	case RivProfile:
		_, err = t.PutRivProfile(x)
	case Contract:
		_, err = t.PutContract(x)
	case Component:
		_, err = t.PutComponent(x)
	case LogicalAddress:
		_, err = t.PutLogicalAddress(x)
	case CallAddress:
		_, err = t.PutCallAddress(x)
	case Route:
		_, err = t.PutRoute(x)
	case Authorization:
		_, err = t.PutAuthorization(x)
	case Filter:
		_, err = t.PutFilter(x)
	case Categorization:
		_, err = t.PutCategorization(x)
	default:
		err = fmt.Errorf("put: %T is not a catalog entity", v)
	}
	return err
}

// List returns every entity of a kind in id order, as the typed slice
// (RivProfiles, Contracts, …); nil for an unknown kind.
func (c *Catalog) List(k Kind) any {
	switch k {
	case KindRivProfile:
		return c.RivProfiles()
	case KindContract:
		return c.Contracts()
	case KindComponent:
		return c.Components()
	case KindLogicalAddress:
		return c.LogicalAddresses()
	case KindCallAddress:
		return c.CallAddresses()
	case KindRoute:
		return c.Routes()
	case KindAuthorization:
		return c.Authorizations()
	case KindFilter:
		return c.Filters()
	case KindCategorization:
		return c.Categorizations()
	}
	return nil
}

// Entity returns any entity by kind and id.
func (c *Catalog) Entity(k Kind, id int64) (any, bool) { return c.entity(k, id) }

func (c *Catalog) entity(k Kind, id int64) (any, bool) {
	switch k {
	case KindRivProfile:
		v, ok := c.profiles.get(id)
		return v, ok
	case KindContract:
		v, ok := c.contracts.get(id)
		return v, ok
	case KindComponent:
		v, ok := c.comps.get(id)
		return v, ok
	case KindLogicalAddress:
		v, ok := c.las.get(id)
		return v, ok
	case KindCallAddress:
		v, ok := c.addrs.get(id)
		return v, ok
	case KindRoute:
		v, ok := c.routes.get(id)
		return v, ok
	case KindAuthorization:
		v, ok := c.auths.get(id)
		return v, ok
	case KindFilter:
		v, ok := c.filters.get(id)
		return v, ok
	case KindCategorization:
		v, ok := c.cats.get(id)
		return v, ok
	}
	return nil, false
}
