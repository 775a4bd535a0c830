package tak

// Replace returns a new version of c whose content is that of t (a
// transaction started on New(), e.g. filled by ImportTakdump), keeping c's
// version sequence and history. The import is recorded as one change without
// a delta: a migration is undone by importing the previous export, not by
// rollback.
func (c *Catalog) Replace(t *Txn, meta ChangeMeta) *Catalog {
	if t.committed {
		panic("tak: Replace with a committed Txn")
	}
	t.committed = true
	n := t.c
	n.seq = c.seq + 1
	for _, k := range Kinds {
		n.count[k] = n.lenOf(k)
		if c.ids[k] > n.ids[k] {
			// Never hand out an id again that an earlier version used:
			// history and diffs refer to entities by id.
			n.ids[k] = c.ids[k]
		}
	}
	changes := 0
	for _, k := range Kinds {
		changes += n.count[k]
	}
	n.log = c.log.append(ChangeRecord{Seq: n.seq, ChangeMeta: meta, Changes: changes}, nil, true)
	return &n
}

// LastID returns the highest id handed out for a kind.
func (c *Catalog) LastID(k Kind) int64 { return c.ids[k] }
