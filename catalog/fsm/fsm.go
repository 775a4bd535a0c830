// Package fsm applies committed catalog log entries to the catalog: the
// raft.FSM of a platform's catalog. Apply is a pure function of (catalog,
// entry): the time and actor come inside the entry, configuration never
// reaches it, and it never touches the network or disk.
package fsm

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/vaxel/vaxel/catalog/command"
	"github.com/vaxel/vaxel/tak"
)

var _ raft.FSM = (*FSM)(nil)

// Result is what Apply returns to the writer (through raft's ApplyFuture).
// A change refused by the catalog's rules is a Result with Err or Errors set
// and nothing applied; a Raft failure never looks like this.
type Result struct {
	Seq     uint64   // catalog version after the change (unchanged if refused)
	Err     error    // the change was refused (validation, conflict, not found)
	Errors  []string // an order's validation errors, in TAK's texts
	Report  string   // an order's report
	Stored  []any    // entities as stored by a Mutate, in op order (with their ids)
	Applied int      // entity changes made
}

// FSM holds the current catalog. Readers use Current; they never block Apply.
type FSM struct {
	cur    atomic.Pointer[tak.Catalog]
	notify chan struct{}
	log    *slog.Logger

	// Counters for metrics: written by Apply, Persist and Restore, read at
	// scrape time through Stats.
	lastApply atomic.Int64  // nanoseconds the last applied entry took
	applied   atomic.Uint64 // command entries applied since start
	snapshots atomic.Uint64 // snapshots persisted since start
	restores  atomic.Uint64 // snapshots restored since start
}

// Stats are an FSM's counters since it was created.
type Stats struct {
	LastApply time.Duration // how long the last applied entry took
	Applied   uint64        // command entries applied (refused changes included)
	Snapshots uint64        // snapshots persisted
	Restores  uint64        // snapshots restored (on start, or installed from the leader)
}

// Stats returns the counters; safe for concurrent use.
func (f *FSM) Stats() Stats {
	return Stats{
		LastApply: time.Duration(f.lastApply.Load()),
		Applied:   f.applied.Load(),
		Snapshots: f.snapshots.Load(),
		Restores:  f.restores.Load(),
	}
}

// New returns an FSM holding an empty catalog.
func New(log *slog.Logger) *FSM {
	f := &FSM{notify: make(chan struct{}, 1), log: log}
	f.cur.Store(tak.New())
	return f
}

// Current returns the catalog as of the last applied entry.
func (f *FSM) Current() *tak.Catalog { return f.cur.Load() }

// Changed is signalled (coalesced, never blocking Apply) after every change
// of Current. Size one: a slow reader sees only the newest catalog, which is
// all a router needs.
func (f *FSM) Changed() <-chan struct{} { return f.notify }

func (f *FSM) set(c *tak.Catalog) {
	f.cur.Store(c)
	select {
	case f.notify <- struct{}{}:
	default:
	}
}

// Apply implements raft.FSM.
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	start := time.Now()
	defer func() {
		f.lastApply.Store(int64(time.Since(start)))
		f.applied.Add(1)
	}()
	typ, payload, err := command.Decode(l.Data)
	if err != nil {
		if errors.Is(err, command.ErrUnknownType) && typ&command.IgnoreUnknown != 0 {
			f.log.Warn("skipping catalog entry of unknown type", "type", uint8(typ), "index", l.Index)
			return nil
		}
		// A committed entry this node cannot apply would make its catalog
		// diverge from the platform's: stop rather than serve wrong routes.
		panic(fmt.Sprintf("catalog entry %d: %v (upgrade this node)", l.Index, err))
	}
	cur := f.Current()
	var res *Result
	switch p := payload.(type) {
	case *command.Mutate:
		res = f.applyMutate(cur, p)
	case *command.Order:
		res, err = f.applyOrder(cur, p, l.Data)
		if err != nil {
			panic(fmt.Sprintf("catalog entry %d: %v (upgrade this node)", l.Index, err))
		}
	case *command.Import:
		res = f.applyImport(cur, p)
	case *command.Rollback:
		res = f.applyRollback(cur, p)
	case *command.HSATree:
		t := cur.Begin()
		t.SetHSATree(tak.HSATreeFromEdges(p.Edges))
		res = f.commit(t, p.Meta)
	case *command.Timeouts:
		to, err := tak.NewTimeouts(p.Entries)
		if err != nil {
			return &Result{Seq: cur.Seq(), Err: err}
		}
		t := cur.Begin()
		t.SetTimeouts(to)
		res = f.commit(t, p.Meta)
	}
	f.log.Debug("applied catalog entry", "type", typ.String(), "index", l.Index, "seq", res.Seq,
		"refused", res.Err != nil || len(res.Errors) > 0, "duration", time.Since(start))
	return res
}

func (f *FSM) commit(t *tak.Txn, m command.Meta) *Result {
	n := t.Changes()
	c := t.Commit(m.ChangeMeta())
	f.set(c)
	return &Result{Seq: c.Seq(), Applied: n}
}

func (f *FSM) applyMutate(cur *tak.Catalog, p *command.Mutate) *Result {
	t := cur.Begin()
	stored := make([]any, 0, len(p.Ops))
	for i, op := range p.Ops {
		kind, ok := tak.ParseKind(op.Kind)
		if !ok {
			return &Result{Seq: cur.Seq(), Err: fmt.Errorf("op %d: unknown kind %q", i, op.Kind)}
		}
		switch op.Op {
		case "delete":
			if err := t.Delete(kind, op.ID); err != nil {
				return &Result{Seq: cur.Seq(), Err: fmt.Errorf("op %d: %w", i, err)}
			}
			stored = append(stored, nil)
		case "put":
			v, err := tak.DecodeEntity(kind, op.Entity)
			if err != nil {
				return &Result{Seq: cur.Seq(), Err: fmt.Errorf("op %d: %w", i, err)}
			}
			if err := t.Put(v); err != nil {
				return &Result{Seq: cur.Seq(), Err: fmt.Errorf("op %d: %w", i, err)}
			}
			// Put fills in a new entity's id; read back what was stored.
			stored = append(stored, lastStored(t, kind, v))
		default:
			return &Result{Seq: cur.Seq(), Err: fmt.Errorf("op %d: unknown op %q (want put or delete)", i, op.Op)}
		}
	}
	res := f.commit(t, p.Meta)
	res.Stored = stored
	return res
}

// applyOrder applies an order entry; data is the whole entry. An error means
// the entry cannot be decoded (as from command.Decode), not a refused order.
func (f *FSM) applyOrder(cur *tak.Catalog, p *command.Order, data []byte) (*Result, error) {
	o, exact, err := tak.ParseOrderExact(p.Order)
	if !exact {
		// command.Decode left the order's JSON unchecked. It is not exactly
		// one JSON object, so decode the entry in full as every node always
		// has, and refuse it (stop) or parse the order as decoded that way.
		_, v, derr := command.DecodeChecked(data)
		if derr != nil {
			return nil, derr
		}
		p = v.(*command.Order)
		o, err = tak.ParseOrder(p.Order)
	}
	if err != nil {
		return &Result{Seq: cur.Seq(), Err: err}, nil
	}
	t := cur.Begin()
	rep, errs, err := tak.ApplyOrder(t, o, p.Platform)
	if err != nil {
		return &Result{Seq: cur.Seq(), Err: err}, nil
	}
	if len(errs) > 0 {
		return &Result{Seq: cur.Seq(), Errors: errs}, nil
	}
	res := f.commit(t, p.Meta)
	res.Report = rep.String()
	return res, nil
}

func (f *FSM) applyImport(cur *tak.Catalog, p *command.Import) *Result {
	t := tak.New().Begin()
	t.Lenient = true
	if _, err := tak.ImportTakdump(t, p.Dump); err != nil {
		return &Result{Seq: cur.Seq(), Err: err}
	}
	c := cur.Replace(t, p.Meta.ChangeMeta())
	f.set(c)
	return &Result{Seq: c.Seq(), Applied: c.History(1)[0].Changes}
}

func (f *FSM) applyRollback(cur *tak.Catalog, p *command.Rollback) *Result {
	t := cur.Begin()
	if err := t.RevertTo(p.ToSeq); err != nil {
		return &Result{Seq: cur.Seq(), Err: err}
	}
	return f.commit(t, p.Meta)
}

// lastStored returns the entity as stored: for an update the id is known; for
// a creation it is the highest id of its kind, which Put just handed out.
func lastStored(t *tak.Txn, k tak.Kind, v any) any {
	id := entityID(v)
	if id == 0 {
		id = t.Catalog().LastID(k)
	}
	got, _ := t.Catalog().Entity(k, id)
	return got
}

func entityID(v any) int64 {
	switch x := v.(type) {
	case tak.RivProfile:
		return x.ID
	case tak.Contract:
		return x.ID
	case tak.Component:
		return x.ID
	case tak.LogicalAddress:
		return x.ID
	case tak.CallAddress:
		return x.ID
	case tak.Route:
		return x.ID
	case tak.Authorization:
		return x.ID
	case tak.Filter:
		return x.ID
	case tak.Categorization:
		return x.ID
	}
	return 0
}

// Snapshot implements raft.FSM. It only pins the current immutable catalog;
// Persist does the I/O while Apply goes on.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	return &snapshot{c: f.Current(), f: f}, nil
}

// Restore implements raft.FSM: the new catalog is built aside and swapped in
// whole, so readers see the old one or the new one, never a mix.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	c, err := tak.ReadSnapshot(rc)
	if err != nil {
		return fmt.Errorf("restore catalog: %w", err)
	}
	f.set(c)
	f.restores.Add(1)
	return nil
}

type snapshot struct {
	c *tak.Catalog
	f *FSM
}

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.c.WriteSnapshot(sink); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("persist catalog snapshot: %w", err)
	}
	if err := sink.Close(); err != nil {
		return err
	}
	s.f.snapshots.Add(1)
	return nil
}

func (s *snapshot) Release() {}
