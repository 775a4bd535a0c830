package tak

import (
	"encoding/binary"
	"hash/maphash"
	"math/bits"
)

// Routing keys.
//
// The routing indexes and the HSA tree are keyed by hkey, a 128-bit hash, so
// that a probe compares 16 inline bytes and never chases a pointer to key
// bytes, and so that an HSA climb step never hashes a string: the index key of
// a level is formed from per-name hashes that the tree already holds.
//
// Every name is lower-cased (TAK's collation is case-insensitive) and hashed
// once to 128 bits with two independent, secret, per-process maphash seeds.
// Each role (namespace, logical address, consumer) has its own pair of seeds,
// so the hashes of different roles are independent even for equal strings.
// The index keys combine them:
//
//	route key = perm(hns) ^ hla
//	auth key  = perm(hns ^ hcons) ^ hla
//
// perm is a fixed bijection, so for two different (ns, la) pairs the keys can
// only be equal if two independent uniform 128-bit values coincide: either the
// hashes of two different names of one role (if only that role differs), or
// one hash equals a value fixed by the other role's hashes. Either way the
// chance is 2^-128 per pair of keys, taking maphash with a secret random seed
// as a random function, as the rest of the package does; the same argument
// applies to the auth key one role at a time. The table reserves one bit (see
// norm), which leaves 127. For n keys in a table and q lookups over the life
// of a process, the chance of any false match is at most
// (n²/2 + q·n)·2^-127: with 2^23 keys and 2^50 lookups, below 2^-54. The
// seeds never leave the process and no hash is ever shown, so a caller cannot
// search for a collision; nothing built from hkeys reaches the Raft log or a
// snapshot, so nodes need not agree on the seeds.
//
// The combination is linear in hla on purpose: per call, the namespace (and
// consumer) part is computed once, and each level of a climb costs one XOR.

// hkey is a 128-bit key of the flat tables.
type hkey [2]uint64

func (a hkey) xor(b hkey) hkey { return hkey{a[0] ^ b[0], a[1] ^ b[1]} }

type seeds [2]maphash.Seed

var (
	nsSeeds  = seeds{maphash.MakeSeed(), maphash.MakeSeed()}
	laSeeds  = seeds{maphash.MakeSeed(), maphash.MakeSeed()}
	conSeeds = seeds{maphash.MakeSeed(), maphash.MakeSeed()}
)

func (s *seeds) str(x string) hkey { return hkey{maphash.String(s[0], x), maphash.String(s[1], x)} }
func (s *seeds) bytes(b []byte) hkey {
	return hkey{maphash.Bytes(s[0], b), maphash.Bytes(s[1], b)}
}

// lowerBuf is the stack buffer names are lower-cased into for hashing; a
// longer name (TAK allows 255 characters) takes lowerHashSlow's bigger one.
// Zeroing the buffer is part of the cost of every hash.
const lowerBuf = 128

// lowerInto writes lower(x) (appendLower's lower-casing) to buf. ASCII, which
// namespaces and HSA-IDs nearly always are, is done eight bytes at a time:
// lower-casing byte by byte was a third of the time of a lookup. For an ASCII
// x of at most 64 bytes (small) it also returns which bytes lower-casing
// changed, bit i for byte i. lowerHash and laKeys write its loop out for
// their common case; the tests hold them to it.
func lowerInto(buf *[lowerBuf]byte, x string) (b []byte, caseBits uint64, small bool) {
	const hi = 0x8080808080808080
	n := len(x)
	switch {
	case n > len(buf):
		return appendLower(nil, x), 0, false
	case n < 8:
		for i := 0; i < n; i++ {
			c := x[i]
			if c >= 0x80 {
				return appendLower(buf[:0], x), 0, false
			}
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
				caseBits |= 1 << i
			}
			buf[i] = c
		}
		return buf[:n], caseBits, true
	}
	// Whole words, then the last eight bytes (overlapping the previous word,
	// which lowers the same bytes to the same values and sets the same case
	// bits again). Non-ASCII is checked once, at the end.
	var or uint64
	for i := 0; ; i += 8 {
		if i+8 > n {
			i = n - 8
		}
		w := le64(x[i : i+8])
		or |= w
		lw, m := lower8(w)
		binary.LittleEndian.PutUint64(buf[i:i+8], lw)
		// Gather the eight flags (bit 7 of each byte) into bits i..i+7;
		// the multiplication moves byte j's bit to bit 56+j without carries.
		caseBits |= (m >> 7 * 0x0102040810204080) >> 56 << i
		if i+8 == n {
			break
		}
	}
	if or&hi != 0 {
		return appendLower(buf[:0], x), 0, false
	}
	return buf[:n], caseBits, n <= 64
}

func le64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// lower8 lower-cases the eight ASCII bytes of w. For bytes below 0x80,
// b+0x3f has its top bit set iff b >= 'A', and b+0x25 iff b > 'Z'; no byte
// carries into the next. The result's top bits flag the bytes changed.
func lower8(w uint64) (lowered, changed uint64) {
	const hi = 0x8080808080808080
	m := (w + 0x3f3f3f3f3f3f3f3f) &^ (w + 0x2525252525252525) & hi
	return w | m>>2, m // 0x80>>2 is 'a'-'A'
}

// lowerHash hashes lower(x). The common case, an ASCII name of 8 to 128
// bytes, is lowerInto written out here: the call and its results cost a
// third of the time of the whole hash.
func (s *seeds) lowerHash(x string) hkey {
	const hi = 0x8080808080808080
	n := len(x)
	if n < 8 || n > lowerBuf {
		return s.lowerHashSlow(x)
	}
	var buf [lowerBuf]byte
	var or uint64
	for i := 0; ; i += 8 {
		if i+8 > n {
			i = n - 8 // the last eight bytes, overlapping lowered ones
		}
		w := le64(x[i : i+8])
		or |= w
		lw, _ := lower8(w)
		binary.LittleEndian.PutUint64(buf[i:i+8], lw)
		if i+8 == n {
			break
		}
	}
	if or&hi != 0 {
		return s.lowerHashSlow(x)
	}
	return hkey{maphash.Bytes(s[0], buf[:n]), maphash.Bytes(s[1], buf[:n])}
}

func (s *seeds) lowerHashSlow(x string) hkey {
	var buf [256]byte // up to TAK's 255 characters without allocating
	return s.bytes(appendLower(buf[:0], x))
}

// hsaSeeds hash the HSA key of names laKeys cannot derive it for.
var hsaSeeds = seeds{maphash.MakeSeed(), maphash.MakeSeed()}

// laKeys returns the case-insensitive hash of a logical address (its part of
// an index key) and its exact-case key in the HSA tree (which is
// case-sensitive, as in the reference).
//
// The exact key costs no second hash for names of at most 64 ASCII bytes,
// which HSA-IDs are: it is the lower-case hash with the case bits xored into
// its first word. Two such names with the same lower-case form differ in their
// case bits, so their keys differ; names with different lower-case forms have
// independent lower-case hashes, so their keys coincide with chance 2^-128,
// and so do those of other names, which get an independently seeded hash of
// the exact bytes. A short lower-case ASCII name's exact key is its
// lower-case hash.
func laKeys(la string) (lowerH, exactH hkey) {
	const hi = 0x8080808080808080
	n := len(la)
	if n < 8 || n > 64 {
		return laKeysSlow(la)
	}
	// lowerInto written out, as in lowerHash.
	var buf [64]byte
	var or, caseBits uint64
	for i := 0; ; i += 8 {
		if i+8 > n {
			i = n - 8
		}
		w := le64(la[i : i+8])
		or |= w
		lw, m := lower8(w)
		binary.LittleEndian.PutUint64(buf[i:i+8], lw)
		caseBits |= (m >> 7 * 0x0102040810204080) >> 56 << i
		if i+8 == n {
			break
		}
	}
	if or&hi != 0 {
		return laKeysSlow(la)
	}
	lowerH = hkey{maphash.Bytes(laSeeds[0], buf[:n]), maphash.Bytes(laSeeds[1], buf[:n])}
	return lowerH, hkey{lowerH[0] ^ caseBits, lowerH[1]} // not [1]: norm sets its low bit
}

func laKeysSlow(la string) (lowerH, exactH hkey) {
	if len(la) > lowerBuf {
		return laSeeds.lowerHashSlow(la), hsaSeeds.str(la)
	}
	var buf [lowerBuf]byte
	b, caseBits, small := lowerInto(&buf, la)
	lowerH = laSeeds.bytes(b)
	if small {
		return lowerH, hkey{lowerH[0] ^ caseBits, lowerH[1]}
	}
	return lowerH, hsaSeeds.str(la)
}

// hsaKey is the HSA tree key of an exact-case HSA-ID.
func hsaKey(id string) hkey {
	_, k := laKeys(id)
	return k
}

// perm is a fixed bijection on 128 bits: each step (a multiplication by an
// odd constant modulo 2^128, or xoring one half with a function of the other)
// is invertible. It keeps the combination of role hashes from being a plain
// XOR of them, so no linear relation between hashes can carry into the keys.
func perm(x hkey) hkey {
	lo, hi := x[0], x[1]
	h, l := bits.Mul64(lo, 0x9E3779B97F4A7C15)
	hi = h + lo*0xD6E8FEB86659FD93 + hi*0x9E3779B97F4A7C15
	lo = l ^ bits.RotateLeft64(hi, 32)
	hi ^= lo >> 29
	h, l = bits.Mul64(lo, 0xFF51AFD7ED558CCD)
	hi = h + lo*0xC4CEB9FE1A85EC53 + hi*0xFF51AFD7ED558CCD
	lo = l ^ bits.RotateLeft64(hi, 32)
	hi ^= lo >> 29
	return hkey{lo, hi}
}

// routeBase is the namespace part of a route key; routeBase(hns) ^ hla is the key.
func routeBase(hns hkey) hkey { return perm(hns) }

// authBase is the (namespace, consumer) part of an authorization key;
// authBase(hns, hcons) ^ hla is the key. The roles' seeds are independent, so
// hns ^ hcons already determines the pair up to chance 2^-128.
func authBase(hns, hcons hkey) hkey { return perm(hns.xor(hcons)) }

// The flat table.
//
// flat is a persistent open-addressing hash table from hkey to V with the
// same sharding and copy-on-write discipline as pmap: nShards shards under a
// root, the root copied once per transaction and each shard copied once per
// transaction that writes it (owner tags), so a committed version is never
// written. A shard is a power-of-two number of slots filled by linear
// probing to a load of at most 0.7; deletion shifts entries back, so there
// are no tombstones.
//
// What a lookup costs in a catalog of a million entries is the number of
// pages it touches: every probe of the big arrays lands on a page the TLB
// does not hold, and under virtualisation that walk costs about as much as
// the cache miss. Measured here, each such probe cost ~130 ns whether or not
// it overlapped with others, so the layout aims at one page per probe, and at
// none for a key that is absent:
//
//   - Slots are laid out in groups of eight: eight keys (two cache lines),
//     then their eight values, so a hit reads key and value from one page,
//     and a scan past occupied slots stays in the key lines.
//   - Each shard has a small Bloom filter (4 bits per slot, 3 bits per key in
//     one 64-bit word; 3% false positives at this load). The filters of a
//     table are 1/100 to 1/200 of its size, so they mostly stay in cache and
//     TLB, and a probe for an absent key, which is most probes of a climbing
//     lookup (the address itself, the levels without an entry), usually ends
//     there: that halved the time of a climbing lookup. A deleted key's bits
//     stay set until the shard is next copied, which rebuilds the filter.
//   - The root holds the shard headers inline, and is hot in cache.
type flat[V any] struct {
	r *flatRoot[V]
	n int
}

const groupSlots = 8

type group[V any] struct {
	keys [groupSlots]hkey // hkey{} marks an empty slot
	vals [groupSlots]V    // the value of an empty slot is zero, so it holds no garbage
}

type flatShard[V any] struct {
	g []group[V] // len is 0 or a power of two
	f []uint64   // Bloom filter, one word per 16 slots (at least one)
}

func (s *flatShard[V]) slots() int         { return len(s.g) * groupSlots }
func (s *flatShard[V]) key(i uint64) *hkey { return &s.g[i/groupSlots].keys[i%groupSlots] }
func (s *flatShard[V]) val(i uint64) *V    { return &s.g[i/groupSlots].vals[i%groupSlots] }

// filterAt returns the filter word index and the bits of a normalised key.
// They come from k[1], which the home slot and the shard (both from k[0])
// do not use; its low bit is the one norm sets.
func filterAt(k hkey, words int) (int, uint64) {
	w := int(k[1]>>1) & (words - 1)
	bits := uint64(1)<<(k[1]>>46&63) | uint64(1)<<(k[1]>>52&63) | uint64(1)<<(k[1]>>58)
	return w, bits
}

// mayHave reports whether the normalised key k may be in s: false is certain.
func (s *flatShard[V]) mayHave(k hkey) bool {
	if len(s.f) == 0 {
		return false
	}
	w, b := filterAt(k, len(s.f))
	return s.f[w]&b == b
}

func (s *flatShard[V]) addFilter(k hkey) {
	w, b := filterAt(k, len(s.f))
	s.f[w] |= b
}

type flatRoot[V any] struct {
	s     [nShards]flatShard[V]
	n     [nShards]int32 // entries per shard
	owner [nShards]uint64
	tag   uint64
}

// flatLoad is the maximum load in tenths.
const flatLoad = 7

// norm reserves hkey{} for empty slots by setting one bit of every key.
func norm(k hkey) hkey { k[1] |= 1; return k }

func flatShardOf(k hkey) int { return int(k[0] >> (64 - shardBits)) }

// capFor is the smallest capacity in slots (a power of two, at least one
// group) holding n entries at load ≤ 0.7.
func capFor(n int) int {
	c := groupSlots
	for n*10 > c*flatLoad {
		c <<= 1
	}
	return c
}

func (m *flat[V]) Len() int { return m.n }

// find returns a pointer to the value of k, or nil. The pointer is into a
// shard that the caller must treat as read-only; in a committed catalog it is
// never written again.
func (m *flat[V]) find(k hkey) *V {
	if m.r == nil {
		return nil
	}
	k = norm(k)
	s := &m.r.s[flatShardOf(k)]
	if !s.mayHave(k) {
		return nil
	}
	mask := uint64(s.slots() - 1)
	for i := k[0] & mask; ; i = (i + 1) & mask {
		gr := &s.g[i/groupSlots]
		switch gr.keys[i%groupSlots] {
		case k:
			return &gr.vals[i%groupSlots]
		case hkey{}:
			return nil
		}
	}
}

// home is the first half of a lookup on the request path: it returns the
// home slot of k (its key and value) and the normalised key to compare, or
// nil if k is certainly absent. A caller reads the fields it needs from the
// value before comparing the key, so that key line and value line, which
// share a page, are fetched together rather than one after the other (that
// alone was ~100 ns a hit); if the key is neither k nor empty, scan goes on.
// The pointers are into a shard that the caller must treat as read-only.
func (m *flat[V]) home(k hkey) (*hkey, *V, hkey) {
	if m.r == nil {
		return nil, nil, k
	}
	k = norm(k)
	s := &m.r.s[flatShardOf(k)]
	if !s.mayHave(k) {
		return nil, nil, k
	}
	i := k[0] & uint64(s.slots()-1)
	gr := &s.g[i/groupSlots]
	return &gr.keys[i%groupSlots], &gr.vals[i%groupSlots], k
}

// scan finishes a lookup whose home slot held another key: k is normalised.
func (m *flat[V]) scan(k hkey) *V {
	s := &m.r.s[flatShardOf(k)]
	mask := uint64(s.slots() - 1)
	for i := (k[0] + 1) & mask; ; i = (i + 1) & mask {
		gr := &s.g[i/groupSlots]
		switch gr.keys[i%groupSlots] {
		case k:
			return &gr.vals[i%groupSlots]
		case hkey{}:
			return nil
		}
	}
}

func (m *flat[V]) get(k hkey) (V, bool) {
	if p := m.find(k); p != nil {
		return *p, true
	}
	var zero V
	return zero, false
}

// writable returns shard i owned by the transaction tag, with capacity for
// want entries at load ≤ 0.7. Copying is where a shard's capacity is chosen:
// it grows past load 0.7 and shrinks when a quarter of the capacity would do.
// Within one transaction a shard only grows.
func (m *flat[V]) writable(i int, tag uint64, want int) *flatShard[V] {
	switch {
	case m.r == nil:
		m.r = &flatRoot[V]{tag: tag}
	case m.r.tag != tag:
		nr := new(flatRoot[V])
		*nr = *m.r
		nr.tag = tag
		m.r = nr
	}
	s := &m.r.s[i]
	if m.r.owner[i] != tag {
		c := s.slots()
		if w := capFor(want); w > c || w*4 <= c {
			c = w
		}
		*s = s.copyTo(c)
		m.r.owner[i] = tag
	} else if want*10 > s.slots()*flatLoad {
		*s = s.copyTo(capFor(want))
	}
	return s
}

// copyTo returns a copy of s with c slots (a power of two that holds it) and
// a filter rebuilt from the keys present.
func (s *flatShard[V]) copyTo(c int) flatShard[V] {
	ns := flatShard[V]{g: make([]group[V], c/groupSlots), f: make([]uint64, max(1, c/16))}
	if c == s.slots() {
		copy(ns.g, s.g)
		for gi := range ns.g {
			for _, k := range ns.g[gi].keys {
				if k != (hkey{}) {
					ns.addFilter(k)
				}
			}
		}
		return ns
	}
	// Reinsert into the final capacity: with linear probing the total
	// displacement does not depend on insertion order, so this is linear
	// even though slot order correlates with hash order.
	mask := uint64(c - 1)
	for gi := range s.g {
		og := &s.g[gi]
		for j, k := range og.keys {
			if k == (hkey{}) {
				continue
			}
			i := k[0] & mask
			for *ns.key(i) != (hkey{}) {
				i = (i + 1) & mask
			}
			*ns.key(i) = k
			*ns.val(i) = og.vals[j]
			ns.addFilter(k)
		}
	}
	return ns
}

// put returns a pointer to the value slot of k in the transaction's copy,
// inserting a zero value if k is absent (existed reports which). The pointer
// is valid until the next write to m.
func (m *flat[V]) put(k hkey, tag uint64) (p *V, existed bool) {
	k = norm(k)
	si := flatShardOf(k)
	s := m.writable(si, tag, int(m.shardLen(si))+1)
	mask := uint64(s.slots() - 1)
	i := k[0] & mask
	for ; *s.key(i) != (hkey{}); i = (i + 1) & mask {
		if *s.key(i) == k {
			return s.val(i), true
		}
	}
	*s.key(i) = k
	s.addFilter(k)
	m.r.n[si]++
	m.n++
	return s.val(i), false
}

// shardLen is the number of entries in shard i.
func (m *flat[V]) shardLen(i int) int32 {
	if m.r == nil {
		return 0
	}
	return m.r.n[i]
}

func (m *flat[V]) set(k hkey, v V, tag uint64) {
	p, _ := m.put(k, tag)
	*p = v
}

// del removes k. Deletion shifts the rest of the probe run back instead of
// leaving a tombstone, so lookups never scan dead slots and a shard never
// needs a cleanup rehash.
func (m *flat[V]) del(k hkey, tag uint64) {
	if m.find(k) == nil {
		return
	}
	k = norm(k)
	si := flatShardOf(k)
	s := m.writable(si, tag, int(m.r.n[si]))
	mask := uint64(s.slots() - 1)
	i := k[0] & mask
	for *s.key(i) != k {
		i = (i + 1) & mask
	}
	var zero V
	for j := (i + 1) & mask; *s.key(j) != (hkey{}); j = (j + 1) & mask {
		// The entry at j may fill the hole at i if i lies on its probe
		// path, i.e. its home is at least as far back from j as i is.
		if home := s.key(j)[0] & mask; (j-home)&mask >= (j-i)&mask {
			*s.key(i), *s.val(i) = *s.key(j), *s.val(j)
			i = j
		}
	}
	*s.key(i), *s.val(i) = hkey{}, zero
	m.r.n[si]--
	m.n--
	if m.r.n[si] == 0 {
		*s = flatShard[V]{}
	}
}

// each calls fn for every entry (its key as stored, see norm) until fn
// returns false. Order is unspecified; callers that produce output sort it.
func (m *flat[V]) each(fn func(hkey, *V) bool) {
	if m.r == nil {
		return
	}
	for si := range m.r.s {
		for gi := range m.r.s[si].g {
			g := &m.r.s[si].g[gi]
			for j, k := range g.keys {
				if k != (hkey{}) && !fn(k, &g.vals[j]) {
					return
				}
			}
		}
	}
}
