package tak

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// checkFlat verifies the invariants of every shard of m against want: the
// entry counts, every key reachable from its home slot without crossing an
// empty slot, every key passing its shard's filter, and empty slots zeroed.
func checkFlat(t *testing.T, m *flat[int], want map[hkey]int) {
	t.Helper()
	if m.Len() != len(want) {
		t.Fatalf("Len = %d, want %d", m.Len(), len(want))
	}
	seen := 0
	if m.r != nil {
		for si := range m.r.s {
			s := &m.r.s[si]
			n := 0
			mask := uint64(s.slots() - 1)
			for i := uint64(0); i < uint64(s.slots()); i++ {
				k := *s.key(i)
				if k == (hkey{}) {
					if *s.val(i) != 0 {
						t.Fatalf("shard %d slot %d: empty slot holds %d", si, i, *s.val(i))
					}
					continue
				}
				n++
				if flatShardOf(k) != si {
					t.Fatalf("key %x in shard %d, belongs in %d", k, si, flatShardOf(k))
				}
				for j := k[0] & mask; j != i; j = (j + 1) & mask {
					if *s.key(j) == (hkey{}) {
						t.Fatalf("shard %d: key %x at %d unreachable from home %d (empty at %d)", si, k, i, k[0]&mask, j)
					}
				}
				if !s.mayHave(k) {
					t.Fatalf("shard %d: key %x fails its filter", si, k)
				}
			}
			if n != int(m.r.n[si]) {
				t.Fatalf("shard %d: %d keys, count says %d", si, n, m.r.n[si])
			}
			if n > 0 && n*10 > s.slots()*flatLoad {
				t.Fatalf("shard %d: %d keys in %d slots is over load 0.7", si, n, s.slots())
			}
			seen += n
		}
	}
	if seen != len(want) {
		t.Fatalf("%d keys stored, want %d", seen, len(want))
	}
	for k, v := range want {
		p := m.find(k)
		if p == nil || *p != v {
			t.Fatalf("find(%x) = %v, want %d", k, p, v)
		}
		if got, ok := m.get(k); !ok || got != v {
			t.Fatalf("get(%x) = %d, %v, want %d", k, got, ok, v)
		}
	}
}

// key builds a normalised key in shard si with home slot bits home.
func key(si int, home, rest uint64) hkey {
	return hkey{uint64(si)<<(64-shardBits) | home&(1<<(64-shardBits)-1), rest | 1}
}

func randKey(r *rand.Rand) hkey { return norm(hkey{r.Uint64(), r.Uint64()}) }

func TestFlatInsertDeleteGrow(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var m flat[int]
	want := map[hkey]int{}
	var keys []hkey
	tag := txnGen.Add(1)
	for i := 0; i < 20000; i++ {
		k := randKey(r)
		keys = append(keys, k)
		if _, existed := m.put(k, tag); existed {
			t.Fatalf("put(%x): new key reported as existing", k)
		}
		m.set(k, i+1, tag)
		want[k] = i + 1
	}
	checkFlat(t, &m, want)
	for i, k := range keys {
		if i%3 == 0 {
			m.del(k, tag)
			delete(want, k)
		}
	}
	m.del(randKey(r), tag) // absent: no-op
	checkFlat(t, &m, want)
	for i, k := range keys {
		if i%3 == 0 {
			if p, existed := m.put(k, tag); existed || *p != 0 {
				t.Fatalf("reinserted key: existed %v, value %d", existed, *p)
			}
			m.set(k, -i, tag)
			want[k] = -i
		}
	}
	checkFlat(t, &m, want)
	for _, k := range keys {
		m.del(k, tag)
	}
	checkFlat(t, &m, map[hkey]int{})
	for si := range m.r.s {
		if m.r.s[si].g != nil || m.r.s[si].f != nil {
			t.Fatalf("shard %d keeps its arrays when empty", si)
		}
	}
}

// TestFlatCopyOnWrite writes into the shards of a committed version from a
// new transaction (overwrite, insert with growth, delete with backward shift)
// and checks that the old version is unchanged, down to its slots.
func TestFlatCopyOnWrite(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var v1 flat[int]
	want1 := map[hkey]int{}
	tag1 := txnGen.Add(1)
	for i := 0; i < 3000; i++ {
		k := key(7, r.Uint64(), r.Uint64()) // many keys in one shard
		v1.set(k, i+1, tag1)
		want1[k] = i + 1
	}
	for i := 0; i < 3000; i++ {
		k := randKey(r)
		v1.set(k, i+1, tag1)
		want1[k] = i + 1
	}
	checkFlat(t, &v1, want1)
	old := snapshotFlat(&v1)

	v2 := v1 // as Begin does: a new transaction shares every shard
	tag2 := txnGen.Add(1)
	want2 := map[hkey]int{}
	for k, v := range want1 {
		want2[k] = v
	}
	n := 0
	for k := range want1 {
		switch n % 3 {
		case 0:
			v2.set(k, -1, tag2)
			want2[k] = -1
		case 1:
			v2.del(k, tag2)
			delete(want2, k)
		}
		n++
	}
	for i := 0; i < 5000; i++ { // shard 7 grows past its capacity in v2
		k := key(7, r.Uint64(), r.Uint64())
		v2.set(k, 100+i, tag2)
		want2[k] = 100 + i
	}
	checkFlat(t, &v2, want2)
	checkFlat(t, &v1, want1)
	if got := snapshotFlat(&v1); got != old {
		t.Fatalf("committed version changed by a later transaction")
	}
	if v1.r == v2.r || &v1.r.s[7].g[0] == &v2.r.s[7].g[0] {
		t.Fatalf("transaction wrote the committed root or shard")
	}

	// A third transaction from v1 that deletes everything leaves v1 alone too.
	v3 := v1
	tag3 := txnGen.Add(1)
	for k := range want1 {
		v3.del(k, tag3)
	}
	checkFlat(t, &v3, map[hkey]int{})
	checkFlat(t, &v1, want1)
	if got := snapshotFlat(&v1); got != old {
		t.Fatalf("committed version changed by a deleting transaction")
	}
}

// snapshotFlat renders every slot and filter word of m.
func snapshotFlat(m *flat[int]) string {
	var b strings.Builder
	for si := range m.r.s {
		s := &m.r.s[si]
		fmt.Fprintf(&b, "%d %d %v|", si, m.r.n[si], s.f)
		for gi := range s.g {
			fmt.Fprint(&b, s.g[gi].keys, s.g[gi].vals)
		}
	}
	return b.String()
}

// TestFlatBackwardShift deletes every position of probe runs built to test
// the shift: one long run of keys with mixed homes that wraps around the end
// of the shard, so that some entries must move back across the wrap and
// others must stay because their home lies after the hole.
func TestFlatBackwardShift(t *testing.T) {
	const slots = 64 // a shard of 45 keys at most
	homes := []uint64{60, 60, 61, 63, 62, 0, 60, 1, 1, 3, 2, 62, 5, 0, 4, 6, 63, 9}
	var base flat[int]
	tag := txnGen.Add(1)
	want := map[hkey]int{}
	var keys []hkey
	for i, h := range homes {
		k := key(3, h, uint64(i)<<8)
		keys = append(keys, k)
		base.set(k, i+1, tag)
		want[k] = i + 1
	}
	for i := 0; i < 20; i++ { // fill to 38 keys, homes away from the run
		k := key(3, 20+uint64(i), 1<<40|uint64(i)<<8)
		base.set(k, 1000+i, tag)
		want[k] = 1000 + i
	}
	if got := base.r.s[3].slots(); got != slots {
		t.Fatalf("shard has %d slots, want %d for this test", got, slots)
	}
	checkFlat(t, &base, want)
	for _, victim := range keys {
		m := base // a fresh transaction per deletion; base stays intact
		w := map[hkey]int{}
		for k, v := range want {
			w[k] = v
		}
		m.del(victim, txnGen.Add(1))
		delete(w, victim)
		checkFlat(t, &m, w)
	}
	checkFlat(t, &base, want)

	// Delete them all, in an order unrelated to the slots, within one transaction.
	m := base
	tag2 := txnGen.Add(1)
	r := rand.New(rand.NewPCG(5, 6))
	for _, i := range r.Perm(len(keys)) {
		m.del(keys[i], tag2)
		delete(want, keys[i])
		checkFlat(t, &m, want)
	}
}

// TestFlatManyKeysOneShard puts every key in one shard, most on a few home
// slots, through growth, deletion, reinsertion and shrinking.
func TestFlatManyKeysOneShard(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	var m flat[int]
	want := map[hkey]int{}
	tag := txnGen.Add(1)
	var keys []hkey
	for i := 0; i < 10000; i++ {
		h := r.Uint64()
		if i%2 == 0 {
			h = uint64(i % 5) // clustered homes (modulo any capacity)
		}
		k := key(1000, h, r.Uint64())
		keys = append(keys, k)
		m.set(k, i, tag)
		want[k] = i
	}
	checkFlat(t, &m, want)
	if got := m.r.s[1000].slots(); got != capFor(10000) {
		t.Fatalf("shard has %d slots, want %d", got, capFor(10000))
	}
	for _, k := range keys[:9900] {
		m.del(k, tag)
		delete(want, k)
	}
	checkFlat(t, &m, want)
	if got := m.r.s[1000].slots(); got != capFor(10000) {
		t.Fatalf("shard shrank within its transaction: %d slots", got)
	}
	// The next transaction's copy shrinks it.
	m2 := m
	m2.set(keys[0], 1, txnGen.Add(1))
	want2 := map[hkey]int{keys[0]: 1}
	for k, v := range want {
		want2[k] = v
	}
	checkFlat(t, &m2, want2)
	if got := m2.r.s[1000].slots(); got != capFor(101) {
		t.Fatalf("copy of a sparse shard has %d slots, want %d", got, capFor(101))
	}
	checkFlat(t, &m, want)
}

// TestFlatFilter checks that a deleted key's filter bits, left behind by
// del, do not make it findable, and that the next copy drops them.
func TestFlatFilter(t *testing.T) {
	var m flat[int]
	tag := txnGen.Add(1)
	k := key(9, 5, 0xabcdef<<8)
	other := key(9, 6, 0x123456<<8)
	m.set(k, 1, tag)
	m.set(other, 2, tag)
	m.del(k, tag)
	if !m.r.s[9].mayHave(k) {
		t.Fatalf("del cleared filter bits that other keys may share")
	}
	if m.find(k) != nil {
		t.Fatalf("deleted key found")
	}
	m2 := m
	m2.set(other, 3, txnGen.Add(1))
	if m2.r.s[9].mayHave(k) {
		w, b := filterAt(other, len(m2.r.s[9].f))
		if w2, b2 := filterAt(k, len(m2.r.s[9].f)); w != w2 || b2&^b != 0 {
			t.Fatalf("copy kept the filter bits of a deleted key")
		}
	}
	var empty flat[int]
	if empty.find(k) != nil || empty.Len() != 0 {
		t.Fatalf("zero table is not empty")
	}
	if hk, _, _ := empty.home(k); hk != nil {
		t.Fatalf("zero table has a home slot")
	}
}

// TestFlatRandomOps runs random operations over many transactions against a
// map, keeping every committed version and checking them all at the end.
func TestFlatRandomOps(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	type version struct {
		m    flat[int]
		want map[hkey]int
	}
	var versions []version
	var cur flat[int]
	want := map[hkey]int{}
	var pool []hkey
	for i := 0; i < 300; i++ {
		pool = append(pool, key(r.IntN(4), r.Uint64()%16, r.Uint64()))
	}
	for txn := 0; txn < 60; txn++ {
		tag := txnGen.Add(1)
		for op := 0; op < 50; op++ {
			k := pool[r.IntN(len(pool))]
			if r.IntN(3) == 0 {
				cur.del(k, tag)
				delete(want, k)
			} else {
				v := r.IntN(1000) + 1
				cur.set(k, v, tag)
				want[k] = v
			}
		}
		checkFlat(t, &cur, want)
		w := map[hkey]int{}
		for k, v := range want {
			w[k] = v
		}
		versions = append(versions, version{cur, w})
	}
	for i := range versions {
		checkFlat(t, &versions[i].m, versions[i].want)
	}
}

func TestLowerInto(t *testing.T) {
	var names []string
	for n := 0; n <= 70; n++ {
		var b strings.Builder
		for i := 0; i < n; i++ {
			b.WriteByte("aZ09_-:.Q"[(i*7+n)%9])
		}
		names = append(names, b.String())
	}
	names = append(names, "SE2321000016-C000123", "ÅRE-Vårdcentral", "xyzÉ", "@[`{", "_", strings.Repeat("A", 128), strings.Repeat("b", 129))
	for _, x := range names {
		var buf [lowerBuf]byte
		got, caseBits, small := lowerInto(&buf, x)
		if want := appendLower(nil, x); string(got) != string(want) {
			t.Fatalf("lowerInto(%q) = %q, want %q", x, got, want)
		}
		ascii := utf8.ValidString(x) && strings.IndexFunc(x, func(r rune) bool { return r >= utf8.RuneSelf }) < 0
		if small != (ascii && len(x) <= 64) {
			t.Fatalf("lowerInto(%q): small = %v", x, small)
		}
		if !small {
			continue
		}
		var want uint64
		for i := 0; i < len(x); i++ {
			if 'A' <= x[i] && x[i] <= 'Z' {
				want |= 1 << i
			}
		}
		if caseBits != want {
			t.Fatalf("lowerInto(%q): case bits %b, want %b", x, caseBits, want)
		}
	}
}

// TestHashFastPaths checks lowerHash and laKeys, which write lowerInto out
// for ASCII names, against the general path for every length around the
// word and buffer boundaries.
func TestHashFastPaths(t *testing.T) {
	var names []string
	for n := 0; n <= 140; n++ {
		var b strings.Builder
		for i := 0; i < n; i++ {
			b.WriteByte("aZ09_-:.Q"[(i*5+n)%9])
		}
		names = append(names, b.String())
		if n > 0 {
			names = append(names, b.String()[:n-1]+"É")
		}
	}
	names = append(names, strings.Repeat("X", 255), strings.Repeat("x", 300))
	for _, x := range names {
		if got, want := nsSeeds.lowerHash(x), nsSeeds.bytes(appendLower(nil, x)); got != want {
			t.Fatalf("lowerHash(%q) differs from the hash of lower(x)", x)
		}
		lo, ex := laKeys(x)
		slo, sex := laKeysSlow(x)
		if lo != slo || ex != sex {
			t.Fatalf("laKeys(%q) differs from laKeysSlow", x)
		}
		if lo != laSeeds.lowerHash(x) {
			t.Fatalf("laKeys(%q): index hash differs from lowerHash", x)
		}
	}
}

func TestNameKeys(t *testing.T) {
	// Case variants share the index hash and differ in the tree key; a
	// short lower-case ASCII name's tree key is its index hash.
	variants := []string{"se2321000016-a1", "SE2321000016-A1", "Se2321000016-a1", "se2321000016-A1",
		"ÅRE-1", "åre-1", "Åre-1", strings.Repeat("Ab", 40), strings.Repeat("aB", 40), strings.Repeat("ab", 40)}
	exact := map[hkey]string{}
	for _, v := range variants {
		lo, ex := laKeys(v)
		if lo != laSeeds.lowerHash(v) {
			t.Fatalf("laKeys(%q): index hash differs from lowerHash", v)
		}
		if lo2, _ := laKeys(string(appendLower(nil, v))); lo != lo2 {
			t.Fatalf("laKeys(%q): index hash depends on case", v)
		}
		if ex != hsaKey(v) {
			t.Fatalf("hsaKey(%q) differs from laKeys", v)
		}
		if o, dup := exact[ex]; dup {
			t.Fatalf("tree keys of %q and %q coincide", v, o)
		}
		exact[ex] = v
		if string(appendLower(nil, v)) == v && len(v) <= 64 && utf8.RuneCountInString(v) == len(v) && lo != ex {
			t.Fatalf("laKeys(%q): lower-case name with a tree key of its own", v)
		}
	}
	if rootKey != hsaKey(HSARoot) || rootKey == hsaKey("se") {
		t.Fatalf("root key")
	}
	// Roles are independent: the same string hashes differently per role,
	// and keys of different pairs differ.
	if nsSeeds.lowerHash("x") == laSeeds.lowerHash("x") || routeKey("a", "b") == routeKey("b", "a") ||
		ak("a", "b", "c") == ak("a", "c", "b") || routeKey("NS", "La") != routeKey("ns", "LA") {
		t.Fatalf("key combination")
	}
}

func TestHSATreeEdges(t *testing.T) {
	edges := []HSAParent{{"B", "A"}, {"C", "B"}, {"A", ""}, {"c", "X"}, {"D", "A"}, {"D", "C"}}
	h := HSATreeFromEdges(edges)
	if h.Len() != 5 {
		t.Fatalf("Len = %d, want 5", h.Len())
	}
	want := []HSAParent{{"A", ""}, {"B", "A"}, {"C", "B"}, {"D", "C"}, {"c", "X"}}
	if got := fmt.Sprint(h.Edges()); got != fmt.Sprint(want) {
		t.Fatalf("Edges = %v, want %v", got, want)
	}
	for id, p := range map[string]string{"A": "SE", "B": "A", "C": "B", "c": "X", "D": "C", "d": "SE", "unknown": "SE", "SE": "SE"} {
		if got := h.Parent(id); got != p {
			t.Fatalf("Parent(%q) = %q, want %q", id, got, p)
		}
	}
	if got := HSATreeFromEdges(h.Edges()).Edges(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("round trip: %v", got)
	}
	if e := EmptyHSATree(); e.Len() != 0 || len(e.Edges()) != 0 || e.Parent("A") != "SE" {
		t.Fatalf("empty tree")
	}
	if z := (&HSATree{}); z.Parent("A") != "SE" || z.Len() != 0 {
		t.Fatalf("zero tree")
	}
}

func ak(ns, la, consumer string) hkey {
	k, _ := authKey(ns, la, consumer)
	return k
}
