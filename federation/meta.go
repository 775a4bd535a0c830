package federation

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Meta is what a member advertises about itself in gossip. It travels in
// memberlist's node metadata, which is limited to 512 bytes, so it is
// encoded compactly and every field is bounded (MaxMetaField).
//
// Encoding, version 1: [version byte][flags byte] then the string fields in
// the order of the struct, each as uvarint length + bytes. Fields are only
// ever appended: a decoder reads the fields it knows and ignores any that a
// newer version added after them, so mixed-version pools interoperate.
type Meta struct {
	Platform    string // platform name (the "plattform" of orders)
	Environment string // e.g. prod, test; pools never mix environments
	Node        string // node name, the node's Raft id
	RouterAddr  string // router HTTPS address (host:port) other platforms call
	AdminAddr   string // admin API address, used to forward writes to the leader
	RaftAddr    string // Raft address, used by the leader to add the node as a voter
	HSAID       string // the platform's HSA-ID (its consumer identity at the next hop)
	InstanceID  string // the platform's instance id in x-rivta-routing-history
	Version     string // software version

	// HasState is set once the node holds Raft state: it belongs to a
	// formed platform and must never take part in a bootstrap.
	HasState bool
	// Leaving is set just before a graceful leave. memberlist reports a
	// member that left and one that died alike (its leave notification
	// does not carry the state), so the pool tells them apart by this.
	Leaving bool
}

// MetaVersion is the encoding version written by this build.
const MetaVersion = 1

// MaxMetaField bounds every string field, so that a fully populated Meta
// always fits memberlist's limit (9 fields × (1 + 48) + 2 = 443 < 512).
const MaxMetaField = 48

const (
	flagHasState = 1 << iota
	flagLeaving
)

// Encode returns the wire form of m.
func (m Meta) Encode() ([]byte, error) {
	fields := m.fields()
	b := make([]byte, 0, 128)
	var flags byte
	if m.HasState {
		flags |= flagHasState
	}
	if m.Leaving {
		flags |= flagLeaving
	}
	b = append(b, MetaVersion, flags)
	for i, f := range fields {
		if len(*f) > MaxMetaField {
			return nil, fmt.Errorf("gossip metadata field %d (%q) is %d bytes, at most %d", i, *f, len(*f), MaxMetaField)
		}
		b = binary.AppendUvarint(b, uint64(len(*f)))
		b = append(b, *f...)
	}
	return b, nil
}

// DecodeMeta parses the wire form written by Encode, of this or any later
// version.
func DecodeMeta(b []byte) (Meta, error) {
	var m Meta
	if len(b) < 2 {
		return m, errors.New("gossip metadata: too short")
	}
	if b[0] < 1 {
		return m, fmt.Errorf("gossip metadata: unknown version %d", b[0])
	}
	m.HasState = b[1]&flagHasState != 0
	m.Leaving = b[1]&flagLeaving != 0
	b = b[2:]
	for _, f := range m.fields() {
		if len(b) == 0 {
			break // an older encoder wrote fewer fields
		}
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) || n > MaxMetaField {
			return Meta{}, errors.New("gossip metadata: malformed field")
		}
		*f = string(b[k : k+int(n)])
		b = b[k+int(n):]
	}
	return m, nil
}

func (m *Meta) fields() []*string {
	return []*string{&m.Platform, &m.Environment, &m.Node, &m.RouterAddr, &m.AdminAddr, &m.RaftAddr, &m.HSAID, &m.InstanceID, &m.Version}
}
