package tak

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
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

// snapDecoder reads a snapshot through a buffer of its own: a field costs
// no call per byte, a string is compared (for interning) in the buffer
// without a copy, and the checksum is taken a buffer at a time.
type snapDecoder struct {
	r      io.Reader
	b      []byte // b[p:] is read from r but not yet decoded
	p      int
	crc    uint32 // of the bytes decoded and dropped from b
	rerr   error  // what r returned last, once it returned an error
	err    error
	intern map[string]string
}

const snapBuf = 1 << 20

// fill makes n undecoded bytes available, if the stream holds them.
func (d *snapDecoder) fill(n int) bool {
	if len(d.b)-d.p >= n {
		return true
	}
	d.crc = crc32.Update(d.crc, crc32.IEEETable, d.b[:d.p])
	if n > cap(d.b) {
		nb := make([]byte, len(d.b)-d.p, max(n, snapBuf))
		copy(nb, d.b[d.p:])
		d.b = nb
	} else {
		d.b = d.b[:copy(d.b, d.b[d.p:])]
	}
	d.p = 0
	for empty := 0; len(d.b) < n && d.rerr == nil; {
		m, err := d.r.Read(d.b[len(d.b):cap(d.b)])
		d.b = d.b[:len(d.b)+m]
		if err != nil {
			d.rerr = err
		} else if m > 0 {
			empty = 0
		} else if empty++; empty > 100 {
			d.rerr = io.ErrNoProgress
		}
	}
	return len(d.b) >= n
}

// short records that the stream ended (or failed) inside a field.
func (d *snapDecoder) short() {
	if d.rerr != nil && d.rerr != io.EOF {
		d.fail(d.rerr)
		return
	}
	d.fail(io.ErrUnexpectedEOF)
}

// crcSoFar is the checksum of every byte decoded.
func (d *snapDecoder) crcSoFar() uint32 { return crc32.Update(d.crc, crc32.IEEETable, d.b[:d.p]) }

func (d *snapDecoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *snapDecoder) byte1() byte {
	if d.err != nil {
		return 0
	}
	if d.p >= len(d.b) && !d.fill(1) {
		d.short()
		return 0
	}
	b := d.b[d.p]
	d.p++
	return b
}

var errVarint = errors.New("varint overflows 64 bits")

func (d *snapDecoder) uvar() uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.b)-d.p < binary.MaxVarintLen64 {
		d.fill(binary.MaxVarintLen64) // fewer at the end of the stream
	}
	v, n := binary.Uvarint(d.b[d.p:])
	if n <= 0 {
		if n == 0 {
			d.short()
		} else {
			d.fail(errVarint)
		}
		return 0
	}
	d.p += n
	return v
}

// svar reads a signed varint: an unsigned one, zig-zag decoded, exactly as
// binary.Varint does.
func (d *snapDecoder) svar() int64 {
	ux := d.uvar()
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x
}

// maxSnapString bounds every length read from a snapshot, so a corrupt
// length cannot make restore allocate without limit.
const maxSnapString = 64 << 20

// bytes returns the next length-prefixed field; it aliases the buffer, so
// it is valid until the next read.
func (d *snapDecoder) bytes() []byte {
	n := d.uvar()
	if d.err != nil {
		return nil
	}
	if n > maxSnapString {
		d.fail(fmt.Errorf("length %d: %w", n, ErrSnapshotCorrupt))
		return nil
	}
	if !d.fill(int(n)) {
		d.short()
		return nil
	}
	b := d.b[d.p : d.p+int(n) : d.p+int(n)]
	d.p += int(n)
	return b
}

func (d *snapDecoder) str() string { return string(d.bytes()) }
func (d *snapDecoder) date() Date  { return Date(d.svar()) }

// maxIntern bounds the strings istr shares.
const maxIntern = 4096

// istr is str for fields whose values repeat (agreements, descriptions,
// URLs, categories): equal values share one string.
func (d *snapDecoder) istr() string {
	b := d.bytes()
	if len(b) == 0 {
		return ""
	}
	if s, ok := d.intern[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(d.intern) < maxIntern {
		if d.intern == nil {
			d.intern = make(map[string]string)
		}
		d.intern[s] = s
	}
	return s
}

func (d *snapDecoder) count(limit uint64) int {
	n := d.uvar()
	if n > limit {
		d.fail(fmt.Errorf("count %d: %w", n, ErrSnapshotCorrupt))
		return 0
	}
	return int(n)
}

// prealloc bounds the room made for a count read from a snapshot, so a
// corrupt count cannot make restore preallocate much.
func prealloc(n int) int { return min(n, 1<<21) }

// Test hooks: snapshotReplay makes ReadSnapshot replay every snapshot, to
// hold the bulk loader to the replay; snapshotBulked, if set, is told
// whether the bulk loader took a snapshot.
var (
	snapshotReplay bool
	snapshotBulked func(bool)
)

// ReadSnapshot rebuilds a catalog from WriteSnapshot's stream, aside from any
// catalog in use; the caller swaps it in. The snapshot is decoded and its checksum verified before anything is built;
// the catalog is then bulk-loaded (see bulk.go).
func ReadSnapshot(r io.Reader) (*Catalog, error) {
	d := &snapDecoder{r: r, b: make([]byte, 0, snapBuf)}
	if !d.fill(len(snapshotMagic)+1) || string(d.b[:len(snapshotMagic)]) != snapshotMagic {
		if d.rerr != nil && d.rerr != io.EOF {
			return nil, fmt.Errorf("read catalog snapshot header: %w", errors.Join(d.rerr, ErrSnapshotCorrupt))
		}
		return nil, fmt.Errorf("read catalog snapshot header: %w", ErrSnapshotCorrupt)
	}
	if v := d.b[len(snapshotMagic)]; v != snapshotVersion {
		return nil, fmt.Errorf("catalog snapshot format %d: this build reads format %d; upgrade the node", v, snapshotVersion)
	}
	d.p = len(snapshotMagic) + 1
	const maxEntities = 1 << 28
	seq := d.uvar()
	var ids [KindCategorization + 1]int64
	for i, n := 0, d.count(64); i < n; i++ {
		k := Kind(d.byte1())
		v := d.svar()
		if k >= KindRivProfile && k <= KindCategorization {
			ids[k] = v
		}
	}
	var e snapEntities
	for d.err == nil {
		k := Kind(d.byte1())
		if k == 0 {
			break
		}
		n := d.count(maxEntities)
		if n == 0 {
			continue
		}
		e.sections = append(e.sections, snapSection{k, n})
		m := prealloc(n)
		switch k {
		case KindRivProfile:
			e.profiles = slices.Grow(e.profiles, m)
			for i := 0; i < n && d.err == nil; i++ {
				e.profiles = append(e.profiles, RivProfile{ID: d.svar(), Name: d.str(), Description: cleanDescription(d.istr())})
			}
		case KindContract:
			e.contracts = slices.Grow(e.contracts, m)
			for i := 0; i < n && d.err == nil; i++ {
				e.contracts = append(e.contracts, Contract{ID: d.svar(), Namespace: d.str(), Description: cleanDescription(d.istr()), Major: d.svar(), Minor: d.svar()})
			}
		case KindComponent:
			e.comps = slices.Grow(e.comps, m)
			for i := 0; i < n && d.err == nil; i++ {
				e.comps = append(e.comps, Component{ID: d.svar(), HSAID: d.str(), Description: cleanDescription(d.istr())})
			}
		case KindLogicalAddress:
			e.las = slices.Grow(e.las, m)
			for i := 0; i < n && d.err == nil; i++ {
				e.las = append(e.las, LogicalAddress{ID: d.svar(), HSAID: d.str(), Description: cleanDescription(d.istr())})
			}
		case KindCallAddress:
			e.addrs = slices.Grow(e.addrs, m)
			for i := 0; i < n && d.err == nil; i++ {
				e.addrs = append(e.addrs, CallAddress{ID: d.svar(), URL: d.istr(), ProfileID: d.svar(), ComponentID: d.svar()})
			}
		case KindRoute:
			e.routes = slices.Grow(e.routes, m)
			for i := 0; i < n && d.err == nil; i++ {
				e.routes = append(e.routes, Route{ID: d.svar(), LogicalAddressID: d.svar(), ContractID: d.svar(), CallAddressID: d.svar(), From: d.date(), To: d.date()})
			}
		case KindAuthorization:
			e.auths = slices.Grow(e.auths, m)
			for i := 0; i < n && d.err == nil; i++ {
				e.auths = append(e.auths, Authorization{ID: d.svar(), ConsumerID: d.svar(), ContractID: d.svar(), LogicalAddressID: d.svar(), Agreement: d.istr(), From: d.date(), To: d.date()})
			}
		case KindFilter:
			e.filters = slices.Grow(e.filters, m)
			for i := 0; i < n && d.err == nil; i++ {
				e.filters = append(e.filters, Filter{ID: d.svar(), AuthorizationID: d.svar(), ServiceDomain: d.istr()})
			}
		case KindCategorization:
			e.cats = slices.Grow(e.cats, m)
			for i := 0; i < n && d.err == nil; i++ {
				e.cats = append(e.cats, Categorization{ID: d.svar(), FilterID: d.svar(), Category: d.istr()})
			}
		default:
			d.fail(fmt.Errorf("entity kind %d: %w", k, ErrSnapshotCorrupt))
		}
	}
	n := d.count(maxEntities)
	edges := make([]HSAParent, 0, prealloc(n))
	for i := 0; i < n && d.err == nil; i++ {
		edges = append(edges, HSAParent{HSAID: d.str(), Parent: d.istr()})
	}
	n = d.count(1 << 20)
	tos := make([]TimeoutEntry, 0, prealloc(n))
	for i := 0; i < n && d.err == nil; i++ {
		tos = append(tos, TimeoutEntry{Contract: d.str(), RouteTimeout: d.svar(), ProducerTimeout: d.svar()})
	}
	hist := bytes.Clone(d.bytes()) // the buffer moves on below
	want := d.crcSoFar()
	if d.err == nil && !d.fill(4) {
		d.short()
	}
	if d.err != nil {
		return nil, fmt.Errorf("read catalog snapshot: %w", errors.Join(d.err, ErrSnapshotCorrupt))
	}
	if binary.BigEndian.Uint32(d.b[d.p:]) != want {
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
	tree := make(chan *HSATree, 1) // built beside the entities
	go func() { tree <- hsaTreeBulk(edges) }()
	var c *Catalog
	ok := false
	if !snapshotReplay {
		c, ok = e.bulk()
		if snapshotBulked != nil {
			snapshotBulked(ok)
		}
	}
	if !ok {
		// Not what a committed catalog writes: replay it, to get exactly
		// the catalog or the error a replay always gave.
		if c, err = e.replay(); err != nil {
			<-tree
			return nil, fmt.Errorf("read catalog snapshot: %w", errors.Join(fmt.Errorf("restore: %w", err), ErrSnapshotCorrupt))
		}
	}
	// Seal by hand rather than Commit: restoring is not a change, so it must
	// not add a version or a history record.
	c.seq, c.ids = seq, ids
	c.hsa = <-tree
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
	return c, nil
}
