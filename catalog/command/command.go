// Package command is the wire format of catalog log entries: a type byte,
// a flags byte and a JSON payload. It outlives any in-memory representation,
// so types are numbered explicitly and append-only, never reused, and golden
// fixtures in catalog/fsm/testdata pin the encoding.
package command

import (
	"bytes"
	"compress/flate"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/vaxel/vaxel/tak"
)

// Type identifies a log entry. Values are permanent.
type Type uint8

// IgnoreUnknown marks a type an older node may skip instead of stopping:
// only for entries that do not change the catalog's content.
const IgnoreUnknown Type = 0x80

// Entry types.
const (
	TypeMutate   Type = 1 // admin create/update/delete of entities, one batch
	TypeOrder    Type = 2 // an SKLTP order (beställning), applied atomically
	TypeImport   Type = 3 // replace the catalog content with a TAK export (takdump)
	TypeRollback Type = 4 // undo every change after a version
	TypeHSATree  Type = 5 // replace the HSA tree
	TypeTimeouts Type = 6 // replace the per-contract timeouts
)

func (t Type) String() string {
	switch t &^ IgnoreUnknown {
	case TypeMutate:
		return "mutate"
	case TypeOrder:
		return "order"
	case TypeImport:
		return "import"
	case TypeRollback:
		return "rollback"
	case TypeHSATree:
		return "hsa-tree"
	case TypeTimeouts:
		return "timeouts"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

const flagDeflate = 1 << 0

// compressAbove is where payloads get deflated: orders and imports are large
// and repetitive JSON, and every byte is written to disk on each node and
// sent to each follower.
const compressAbove = 32 << 10

// MaxPayload bounds a decoded payload, so a corrupt or hostile entry cannot
// make a node allocate without limit.
const MaxPayload = 512 << 20

// ErrUnknownType is returned for an entry type this build does not know.
var ErrUnknownType = errors.New("unknown catalog entry type")

// Meta is stamped by the node that accepted the change, before replication,
// so applying the entry never reads the clock.
type Meta struct {
	Actor    string `json:"actor"`
	Source   string `json:"source"`
	Comment  string `json:"comment,omitempty"`
	UnixNano int64  `json:"time"`
}

// ChangeMeta converts to the catalog's form.
func (m Meta) ChangeMeta() tak.ChangeMeta {
	return tak.ChangeMeta{Actor: m.Actor, Source: m.Source, Comment: m.Comment, Time: time.Unix(0, m.UnixNano).UTC()}
}

// Op is one entity change in a Mutate batch. Entity holds the entity in its
// catalog JSON form (tak's json tags are part of this format).
type Op struct {
	Op     string          `json:"op"` // put, delete
	Kind   string          `json:"kind"`
	ID     int64           `json:"id,omitempty"`
	Entity json.RawMessage `json:"entity,omitempty"`
}

// Mutate is a batch of admin changes, applied all or nothing.
type Mutate struct {
	Meta Meta `json:"meta"`
	Ops  []Op `json:"ops"`
}

// Order carries an SKLTP order verbatim plus the platform name it must name.
type Order struct {
	Meta     Meta            `json:"meta"`
	Platform string          `json:"platform"`
	Order    json.RawMessage `json:"order"`
}

// Import replaces the catalog's content with a TAK export.
type Import struct {
	Meta Meta            `json:"meta"`
	Dump json.RawMessage `json:"dump"`
}

// Rollback undoes every change after ToSeq.
type Rollback struct {
	Meta  Meta   `json:"meta"`
	ToSeq uint64 `json:"toSeq"`
}

// HSATree replaces the HSA tree; the leader parses the file and links the
// tree, so followers apply the same edges.
type HSATree struct {
	Meta  Meta            `json:"meta"`
	Edges []tak.HSAParent `json:"edges"`
}

// Timeouts replaces the per-contract producer timeouts.
type Timeouts struct {
	Meta    Meta               `json:"meta"`
	Entries []tak.TimeoutEntry `json:"entries"`
}

// Encode builds a log entry.
func Encode(t Type, payload any) ([]byte, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("encode %s entry: %w", t, err)
	}
	var flags byte
	if len(body) > compressAbove {
		var buf bytes.Buffer
		w, _ := flate.NewWriter(&buf, flate.BestSpeed)
		if _, err := w.Write(body); err != nil {
			return nil, fmt.Errorf("compress %s entry: %w", t, err)
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("compress %s entry: %w", t, err)
		}
		body, flags = buf.Bytes(), flagDeflate
	}
	return append([]byte{byte(t), flags}, body...), nil
}

// Decode splits an entry into its type and decoded payload (a pointer to one
// of the payload structs above).
//
// An order entry's Order is taken out of the entry as it stands, without
// checking that it is JSON: an order of 100,000 entries is over 10 MB of
// JSON, and the caller parses it anyway. The caller must then confirm that
// Order is exactly one JSON value (tak.ParseOrderExact tells) and otherwise
// decode the entry with DecodeChecked, which is what Decode did before.
func Decode(b []byte) (Type, any, error) { return decode(b, false) }

// DecodeChecked is Decode checking all of the payload, an order's JSON
// included: it fails on every entry encoding/json would refuse.
func DecodeChecked(b []byte) (Type, any, error) { return decode(b, true) }

func decode(b []byte, checked bool) (Type, any, error) {
	if len(b) < 2 {
		return 0, nil, fmt.Errorf("decode catalog entry: %d bytes", len(b))
	}
	t, flags, body := Type(b[0]), b[1], b[2:]
	if flags&flagDeflate != 0 {
		d, err := inflate(body)
		if err != nil {
			return t, nil, fmt.Errorf("decompress %s entry: %w", t, err)
		}
		if len(d) > MaxPayload {
			return t, nil, fmt.Errorf("decode %s entry: payload over %d bytes", t, MaxPayload)
		}
		body = d
	}
	var v any
	switch t &^ IgnoreUnknown {
	case TypeMutate:
		v = &Mutate{}
	case TypeOrder:
		if !checked {
			if o, ok := decodeOrderUnchecked(body); ok {
				return t, o, nil
			}
		}
		v = &Order{}
	case TypeImport:
		v = &Import{}
	case TypeRollback:
		v = &Rollback{}
	case TypeHSATree:
		v = &HSATree{}
	case TypeTimeouts:
		v = &Timeouts{}
	default:
		return t, nil, fmt.Errorf("%w %d", ErrUnknownType, uint8(t))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return t, nil, fmt.Errorf("decode %s entry: %w", t, err)
	}
	return t, v, nil
}

// decodeOrderUnchecked decodes an order payload in the form Encode writes
// it, {"meta":…,"platform":…,"order":…}, decoding meta and platform but
// leaving order unread: it is the rest of the payload up to the final brace.
// If order is one JSON value the result is what json.Unmarshal gives; if it
// is not, the payload was not one Encode wrote (see Decode). Anything else
// (other key order, spacing, duplicate meta or platform) is not ok, and is
// left to json.Unmarshal.
func decodeOrderUnchecked(body []byte) (*Order, bool) {
	const metaKey, platformKey, orderKey = `{"meta":`, `,"platform":`, `,"order":`
	rest, ok := bytes.CutPrefix(body, []byte(metaKey))
	if !ok || len(rest) == 0 || rest[len(rest)-1] != '}' {
		return nil, false
	}
	rest = rest[:len(rest)-1]
	var o Order
	if rest, ok = decodeFirst(rest, &o.Meta); !ok {
		return nil, false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(platformKey)); !ok {
		return nil, false
	}
	if rest, ok = decodeFirst(rest, &o.Platform); !ok {
		return nil, false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(orderKey)); !ok || len(rest) == 0 {
		return nil, false
	}
	// Unlike json.RawMessage's UnmarshalJSON this does not copy: Order
	// shares the entry's (or the inflated payload's) bytes.
	o.Order = rest
	return &o, true
}

// decodeFirst decodes the JSON value b starts with into v and returns what
// follows it. Only v's value is read, not the rest of b.
func decodeFirst(b []byte, v any) ([]byte, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return nil, false
	}
	return b[dec.InputOffset():], true
}

// inflate decompresses a payload, reading at most MaxPayload+1 bytes. It
// inflates twice, first only to learn the size: that is cheap next to
// growing a buffer step by step to the 10 MB or more of a large order.
func inflate(body []byte) ([]byte, error) {
	n, err := io.Copy(io.Discard, io.LimitReader(flate.NewReader(bytes.NewReader(body)), MaxPayload+1))
	if err != nil {
		return nil, err
	}
	d := make([]byte, n)
	if _, err := io.ReadFull(flate.NewReader(bytes.NewReader(body)), d); err != nil {
		return nil, err
	}
	return d, nil
}
