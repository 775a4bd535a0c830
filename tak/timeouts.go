package tak

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// DefaultTimeoutsName is the entry that applies to contracts without their own
// (timeout.json.file.default.tjanstekontrakt.name in the reference).
const DefaultTimeoutsName = "default_timeouts"

// BuiltinProducerTimeout applies when the catalog holds no default entry (reference: 29 000 ms).
const BuiltinProducerTimeout = 29 * time.Second

// TimeoutEntry is one entry of the reference's timeoutconfig.json.
type TimeoutEntry struct {
	Contract        string `json:"tjanstekontrakt"`
	RouteTimeout    int64  `json:"routetimeout,omitempty"` // parsed and kept for export; unused, as in the reference
	ProducerTimeout int64  `json:"producertimeout"`        // milliseconds
}

// Timeouts are the per-contract producer timeouts. Contract names match
// exactly (case-sensitive), as in the reference.
type Timeouts struct {
	Entries []TimeoutEntry
	byName  map[string]time.Duration
}

// NewTimeouts builds the lookup table, refusing non-positive timeouts and duplicates.
func NewTimeouts(entries []TimeoutEntry) (*Timeouts, error) {
	t := &Timeouts{Entries: append([]TimeoutEntry(nil), entries...), byName: make(map[string]time.Duration, len(entries))}
	sort.Slice(t.Entries, func(i, j int) bool { return t.Entries[i].Contract < t.Entries[j].Contract })
	for _, e := range t.Entries {
		if e.Contract == "" {
			return nil, fmt.Errorf("timeouts: entry without tjanstekontrakt")
		}
		if e.ProducerTimeout <= 0 {
			return nil, fmt.Errorf("timeouts: %s: producertimeout must be a positive number of milliseconds", e.Contract)
		}
		if _, dup := t.byName[e.Contract]; dup {
			return nil, fmt.Errorf("timeouts: %s listed twice", e.Contract)
		}
		t.byName[e.Contract] = time.Duration(e.ProducerTimeout) * time.Millisecond
	}
	return t, nil
}

// ParseTimeouts reads the reference's timeoutconfig.json (a JSON array).
func ParseTimeouts(b []byte) (*Timeouts, error) {
	var es []TimeoutEntry
	if err := json.Unmarshal(b, &es); err != nil {
		return nil, fmt.Errorf("timeouts: %w", err)
	}
	return NewTimeouts(es)
}

// Producer returns the producer timeout for a contract namespace.
func (t *Timeouts) Producer(ns string) time.Duration {
	if d, ok := t.byName[ns]; ok {
		return d
	}
	if d, ok := t.byName[DefaultTimeoutsName]; ok {
		return d
	}
	return BuiltinProducerTimeout
}
