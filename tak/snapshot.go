package tak

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// Snapshot format (see catalog/DESIGN.md). A compact binary stream, because a
// catalog of a million routes and authorizations must snapshot and restore in
// seconds on every node:
//
//	magic "VXTAK" | format version (1 byte)
//	seq uvarint | ids: count uvarint, then per kind (kind byte, id varint)
//	per kind in dependency order: kind byte, count uvarint, entities (fields in struct order;
//	  strings as uvarint length + bytes, ints as varints, dates as varints)
//	0 byte (end of entities)
//	HSA tree: count uvarint, (id, parent) strings
//	timeouts: count uvarint, (contract string, routetimeout varint, producertimeout varint)
//	change history: uvarint length + JSON ([]snapshotChange)
//	CRC-32 (IEEE, big endian) of everything before it
//
// New fields are added only by bumping the format version; readers keep
// decoding every older version (golden files in catalog/fsm/testdata).
const (
	snapshotMagic   = "VXTAK"
	snapshotVersion = 1
)

// ErrSnapshotCorrupt is returned when a snapshot fails its checksum or does not parse.
var ErrSnapshotCorrupt = errors.New("catalog snapshot corrupt")

type snapWriter struct {
	w   *bufio.Writer
	crc uint32
	buf [binary.MaxVarintLen64]byte
	err error
}

func (s *snapWriter) write(b []byte) {
	if s.err != nil {
		return
	}
	s.crc = crc32.Update(s.crc, crc32.IEEETable, b)
	_, s.err = s.w.Write(b)
}
func (s *snapWriter) byte1(b byte)  { s.write([]byte{b}) }
func (s *snapWriter) uvar(v uint64) { s.write(s.buf[:binary.PutUvarint(s.buf[:], v)]) }
func (s *snapWriter) svar(v int64)  { s.write(s.buf[:binary.PutVarint(s.buf[:], v)]) }
func (s *snapWriter) str(v string)  { s.uvar(uint64(len(v))); s.write([]byte(v)) }
func (s *snapWriter) date(d Date)   { s.svar(int64(d)) }

// WriteSnapshot streams the catalog to w. It reads only this immutable
// version, so it can run while newer versions are being committed.
func (c *Catalog) WriteSnapshot(w io.Writer) error {
	s := &snapWriter{w: bufio.NewWriterSize(w, 1<<20)}
	s.write([]byte(snapshotMagic))
	s.byte1(snapshotVersion)
	s.uvar(c.seq)
	s.uvar(uint64(len(Kinds)))
	for _, k := range Kinds {
		s.byte1(byte(k))
		s.svar(c.ids[k])
	}
	s.byte1(byte(KindRivProfile))
	s.uvar(uint64(c.profiles.Len()))
	for _, v := range c.RivProfiles() {
		s.svar(v.ID)
		s.str(v.Name)
		s.str(v.Description)
	}
	s.byte1(byte(KindContract))
	s.uvar(uint64(c.contracts.Len()))
	for _, v := range c.Contracts() {
		s.svar(v.ID)
		s.str(v.Namespace)
		s.str(v.Description)
		s.svar(v.Major)
		s.svar(v.Minor)
	}
	s.byte1(byte(KindComponent))
	s.uvar(uint64(c.comps.Len()))
	for _, v := range c.Components() {
		s.svar(v.ID)
		s.str(v.HSAID)
		s.str(v.Description)
	}
	s.byte1(byte(KindLogicalAddress))
	s.uvar(uint64(c.las.Len()))
	for _, v := range c.LogicalAddresses() {
		s.svar(v.ID)
		s.str(v.HSAID)
		s.str(v.Description)
	}
	s.byte1(byte(KindCallAddress))
	s.uvar(uint64(c.addrs.Len()))
	for _, v := range c.CallAddresses() {
		s.svar(v.ID)
		s.str(v.URL)
		s.svar(v.ProfileID)
		s.svar(v.ComponentID)
	}
	s.byte1(byte(KindRoute))
	s.uvar(uint64(c.routes.Len()))
	for _, v := range c.Routes() {
		s.svar(v.ID)
		s.svar(v.LogicalAddressID)
		s.svar(v.ContractID)
		s.svar(v.CallAddressID)
		s.date(v.From)
		s.date(v.To)
	}
	s.byte1(byte(KindAuthorization))
	s.uvar(uint64(c.auths.Len()))
	for _, v := range c.Authorizations() {
		s.svar(v.ID)
		s.svar(v.ConsumerID)
		s.svar(v.ContractID)
		s.svar(v.LogicalAddressID)
		s.str(v.Agreement)
		s.date(v.From)
		s.date(v.To)
	}
	s.byte1(byte(KindFilter))
	s.uvar(uint64(c.filters.Len()))
	for _, v := range c.Filters() {
		s.svar(v.ID)
		s.svar(v.AuthorizationID)
		s.str(v.ServiceDomain)
	}
	s.byte1(byte(KindCategorization))
	s.uvar(uint64(c.cats.Len()))
	for _, v := range c.Categorizations() {
		s.svar(v.ID)
		s.svar(v.FilterID)
		s.str(v.Category)
	}
	s.byte1(0)
	edges := c.hsa.Edges()
	s.uvar(uint64(len(edges)))
	for _, e := range edges {
		s.str(e.HSAID)
		s.str(e.Parent)
	}
	s.uvar(uint64(len(c.timeouts.Entries)))
	for _, e := range c.timeouts.Entries {
		s.str(e.Contract)
		s.svar(e.RouteTimeout)
		s.svar(e.ProducerTimeout)
	}
	hist, err := json.Marshal(c.log.export())
	if err != nil {
		return fmt.Errorf("encode change history: %w", err)
	}
	s.uvar(uint64(len(hist)))
	s.write(hist)
	if s.err != nil {
		return fmt.Errorf("write catalog snapshot: %w", s.err)
	}
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], s.crc)
	if _, err := s.w.Write(sum[:]); err != nil {
		return fmt.Errorf("write catalog snapshot: %w", err)
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("write catalog snapshot: %w", err)
	}
	return nil
}

type snapshotChange struct {
	Record ChangeRecord   `json:"record"`
	Delta  []EntityChange `json:"delta,omitempty"`
}

func (l changeLog) export() []snapshotChange {
	out := make([]snapshotChange, len(l.records))
	for i, lc := range l.records {
		out[i] = snapshotChange{Record: lc.rec, Delta: lc.delta}
	}
	return out
}

type snapReader struct {
	r   *bufio.Reader
	crc uint32
	err error
}

func (s *snapReader) ReadByte() (byte, error) {
	b, err := s.r.ReadByte()
	if err == nil {
		s.crc = crc32.Update(s.crc, crc32.IEEETable, []byte{b})
	}
	return b, err
}

func (s *snapReader) fail(err error) {
	if s.err == nil {
		s.err = err
	}
}

func (s *snapReader) byte1() byte {
	if s.err != nil {
		return 0
	}
	b, err := s.ReadByte()
	s.fail(err)
	return b
}

func (s *snapReader) uvar() uint64 {
	if s.err != nil {
		return 0
	}
	v, err := binary.ReadUvarint(s)
	s.fail(err)
	return v
}

func (s *snapReader) svar() int64 {
	if s.err != nil {
		return 0
	}
	v, err := binary.ReadVarint(s)
	s.fail(err)
	return v
}

// maxSnapString bounds every length read from a snapshot, so a corrupt
// length cannot make restore allocate without limit.
const maxSnapString = 64 << 20

func (s *snapReader) bytes() []byte {
	n := s.uvar()
	if s.err != nil {
		return nil
	}
	if n > maxSnapString {
		s.fail(fmt.Errorf("length %d: %w", n, ErrSnapshotCorrupt))
		return nil
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(s.r, b); err != nil {
		s.fail(err)
		return nil
	}
	s.crc = crc32.Update(s.crc, crc32.IEEETable, b)
	return b
}

func (s *snapReader) str() string { return string(s.bytes()) }
func (s *snapReader) date() Date  { return Date(s.svar()) }

func (s *snapReader) count(limit uint64) int {
	n := s.uvar()
	if n > limit {
		s.fail(fmt.Errorf("count %d: %w", n, ErrSnapshotCorrupt))
		return 0
	}
	return int(n)
}

// ReadSnapshot rebuilds a catalog from WriteSnapshot's stream, aside from any
// catalog in use; the caller swaps it in.
func ReadSnapshot(r io.Reader) (*Catalog, error) {
	s := &snapReader{r: bufio.NewReaderSize(r, 1<<20)}
	magic := make([]byte, len(snapshotMagic)+1)
	for i := range magic {
		magic[i] = s.byte1()
	}
	if s.err != nil || string(magic[:len(snapshotMagic)]) != snapshotMagic {
		return nil, fmt.Errorf("read catalog snapshot header: %w", ErrSnapshotCorrupt)
	}
	if v := magic[len(snapshotMagic)]; v != snapshotVersion {
		return nil, fmt.Errorf("catalog snapshot format %d: this build reads format %d; upgrade the node", v, snapshotVersion)
	}
	const maxEntities = 1 << 28
	seq := s.uvar()
	var ids [KindCategorization + 1]int64
	for i, n := 0, s.count(64); i < n; i++ {
		k := Kind(s.byte1())
		v := s.svar()
		if k >= KindRivProfile && k <= KindCategorization {
			ids[k] = v
		}
	}
	t := New().Begin()
	t.Lenient, t.keepIDs = true, true
	put := func(err error) {
		if err != nil {
			s.fail(fmt.Errorf("restore: %w", err))
		}
	}
	for s.err == nil {
		k := Kind(s.byte1())
		if k == 0 {
			break
		}
		n := s.count(maxEntities)
		for i := 0; i < n && s.err == nil; i++ {
			switch k {
			case KindRivProfile:
				_, err := t.PutRivProfile(RivProfile{ID: s.svar(), Name: s.str(), Description: s.str()})
				put(err)
			case KindContract:
				_, err := t.PutContract(Contract{ID: s.svar(), Namespace: s.str(), Description: s.str(), Major: s.svar(), Minor: s.svar()})
				put(err)
			case KindComponent:
				_, err := t.PutComponent(Component{ID: s.svar(), HSAID: s.str(), Description: s.str()})
				put(err)
			case KindLogicalAddress:
				_, err := t.PutLogicalAddress(LogicalAddress{ID: s.svar(), HSAID: s.str(), Description: s.str()})
				put(err)
			case KindCallAddress:
				_, err := t.PutCallAddress(CallAddress{ID: s.svar(), URL: s.str(), ProfileID: s.svar(), ComponentID: s.svar()})
				put(err)
			case KindRoute:
				_, err := t.PutRoute(Route{ID: s.svar(), LogicalAddressID: s.svar(), ContractID: s.svar(), CallAddressID: s.svar(), From: s.date(), To: s.date()})
				put(err)
			case KindAuthorization:
				_, err := t.PutAuthorization(Authorization{ID: s.svar(), ConsumerID: s.svar(), ContractID: s.svar(), LogicalAddressID: s.svar(), Agreement: s.str(), From: s.date(), To: s.date()})
				put(err)
			case KindFilter:
				_, err := t.PutFilter(Filter{ID: s.svar(), AuthorizationID: s.svar(), ServiceDomain: s.str()})
				put(err)
			case KindCategorization:
				_, err := t.PutCategorization(Categorization{ID: s.svar(), FilterID: s.svar(), Category: s.str()})
				put(err)
			default:
				s.fail(fmt.Errorf("entity kind %d: %w", k, ErrSnapshotCorrupt))
			}
		}
	}
	edges := make([]HSAParent, s.count(maxEntities))
	for i := range edges {
		edges[i] = HSAParent{HSAID: s.str(), Parent: s.str()}
	}
	tos := make([]TimeoutEntry, s.count(1<<20))
	for i := range tos {
		tos[i] = TimeoutEntry{Contract: s.str(), RouteTimeout: s.svar(), ProducerTimeout: s.svar()}
	}
	hist := s.bytes()
	want := s.crc
	var sum [4]byte
	if s.err == nil {
		if _, err := io.ReadFull(s.r, sum[:]); err != nil {
			s.fail(err)
		}
	}
	if s.err != nil {
		return nil, fmt.Errorf("read catalog snapshot: %w", errors.Join(s.err, ErrSnapshotCorrupt))
	}
	if binary.BigEndian.Uint32(sum[:]) != want {
		return nil, fmt.Errorf("read catalog snapshot: checksum mismatch: %w", ErrSnapshotCorrupt)
	}
	var changes []snapshotChange
	if err := json.Unmarshal(hist, &changes); err != nil {
		return nil, fmt.Errorf("read catalog snapshot history: %w", errors.Join(err, ErrSnapshotCorrupt))
	}
	timeouts, err := NewTimeouts(tos)
	if err != nil {
		return nil, fmt.Errorf("read catalog snapshot: %w", err)
	}
	// Seal by hand rather than Commit: restoring is not a change, so it must
	// not add a version or a history record.
	c := t.c
	c.seq, c.ids = seq, ids
	c.hsa = HSATreeFromEdges(edges)
	c.timeouts = timeouts
	var log changeLog
	for _, ch := range changes {
		log.records = append(log.records, &loggedChange{rec: ch.Record, delta: ch.Delta})
		log.deltas += len(ch.Delta)
	}
	c.log = log
	for _, k := range Kinds {
		c.count[k] = c.lenOf(k)
	}
	return &c, nil
}
