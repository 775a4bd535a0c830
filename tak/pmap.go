package tak

import (
	"hash/maphash"
	"sync/atomic"
)

// shardBits sets the fan-out of every index. 1024 shards keep a shard near
// a thousand entries at a million entries, so a one-entity change copies
// about a thousand map slots plus the 8 KiB root.
const (
	shardBits = 10
	nShards   = 1 << shardBits
)

// seed is per process: shard placement is an in-memory detail that never
// reaches the Raft log or a snapshot, so nodes need not agree on it.
var seed = maphash.MakeSeed()

// txnGen hands out owner tags; a tag is never reused, so a committed
// catalog can never see one of its shards written again.
var txnGen atomic.Uint64

func hashString(s string) uint64 { return maphash.String(seed, s) }
func hashInt(x int64) uint64 {
	u := uint64(x) * 0x9E3779B97F4A7C15
	return u ^ (u >> 29)
}

func shardOf(h uint64) int { return int(h >> (64 - shardBits)) }

// root holds the shard maps inline (no per-shard struct), so a lookup costs
// one dependent load less; owner[i] tags which transaction may write shard i.
type root[K comparable, V any] struct {
	m     [nShards]map[K]V
	owner [nShards]uint64
	tag   uint64
}

// pmap is a persistent hash map: a value of pmap is never changed once the
// transaction that built it has committed. Writes through a transaction tag
// copy the root and each touched shard once per transaction.
type pmap[K comparable, V any] struct {
	r    *root[K, V]
	n    int
	hash func(K) uint64
}

func newPMap[K comparable, V any](hash func(K) uint64) pmap[K, V] {
	return pmap[K, V]{r: &root[K, V]{}, hash: hash}
}

func (m *pmap[K, V]) Len() int { return m.n }

func (m *pmap[K, V]) get(k K) (V, bool) {
	v, ok := m.r.m[shardOf(m.hash(k))][k]
	return v, ok
}

// writable returns the shard map for k, copied into the transaction if needed.
func (m *pmap[K, V]) writable(k K, tag uint64) map[K]V {
	if m.r.tag != tag {
		nr := *m.r
		nr.tag = tag
		m.r = &nr
	}
	i := shardOf(m.hash(k))
	s := m.r.m[i]
	if m.r.owner[i] != tag {
		ns := make(map[K]V, len(s)+1)
		for kk, vv := range s {
			ns[kk] = vv
		}
		s = ns
		m.r.m[i] = s
		m.r.owner[i] = tag
	}
	return s
}

func (m *pmap[K, V]) set(k K, v V, tag uint64) {
	s := m.writable(k, tag)
	if _, ok := s[k]; !ok {
		m.n++
	}
	s[k] = v
}

func (m *pmap[K, V]) del(k K, tag uint64) {
	if _, ok := m.get(k); !ok {
		return
	}
	delete(m.writable(k, tag), k)
	m.n--
}

// each calls fn for every entry until fn returns false. Order is unspecified;
// callers that produce output sort it.
func (m *pmap[K, V]) each(fn func(K, V) bool) {
	for _, s := range m.r.m {
		for k, v := range s {
			if !fn(k, v) {
				return
			}
		}
	}
}
