package router

import (
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// PlatformScheme starts a call address that names a platform of the
// federation instead of a producer URL: "vaxel://NATIONAL". The router
// resolves it, call by call, to the live router nodes of that platform as
// gossip last saw them (Platforms), and calls one of them as a producer with
// this platform's own certificate, so that the next platform authorizes this
// platform's HSA-ID as the consumer (skltp-vp.md §8).
const PlatformScheme = "vaxel://"

// Platforms is an immutable table of the federation's platforms: for each
// platform name, the router addresses (host:port, HTTPS) of its live nodes,
// nearest first. node builds a new one on every federation membership
// change and swaps it in with SetPlatforms.
type Platforms struct {
	byName map[string]PlatformNodes // by lower-case platform name
	urls   map[string][]string      // the same nodes as call URLs, built once
	// down holds, per node (aligned with urls), until when (unix ns) calls
	// pass it by: a node that could not be connected to is tried last for
	// DownHold. Gossip takes seconds to declare a node failed; without
	// this, every call spread to a dead node in that time would wait for
	// the connect timeout before going to the next one.
	// The marks are shared by pointer with the tables that follow (inherit),
	// so a call still holding an older table marks the node for all.
	down map[string][]*atomic.Int64
	next atomic.Uint32 // spreads calls over a platform's nodes
	// refused maps the HSA-IDs (lower case) of federation platforms that
	// are not on this platform's allow-list to their names: a call whose
	// sender is one of them is refused whatever the catalog authorizes.
	refused map[string]string
}

// DownHold is how long a platform node that could not be connected to is
// tried only after the others: longer than gossip takes to declare a dead
// node failed (3-5 s in the federation's timing, more when the pool is
// large or the suspicion goes unconfirmed), so that calls do not start
// waiting for the connect timeout again before the node leaves the table.
const DownHold = 10 * time.Second

// maxMarked bounds the nodes per platform that can be passed by (a bit
// mask); a larger platform's further nodes are always tried in turn.
const maxMarked = 64

// PlatformNodes are a platform's live router addresses (host:port, HTTPS),
// nearest first; calls are spread over the first Near of them and go to the
// others only when those cannot be connected to.
type PlatformNodes struct {
	Addrs []string
	Near  int // 0 or more than len(Addrs): all are near
	// HSAIDs, aligned with Addrs, are the HSA-IDs the nodes' TLS
	// certificates must carry (SERIALNUMBER); a node whose certificate
	// carries another is not called. Empty (or an empty entry): no check.
	HSAIDs []string
}

// NewPlatforms builds a table; the slices are copied.
func NewPlatforms(m map[string]PlatformNodes) *Platforms {
	p := &Platforms{byName: make(map[string]PlatformNodes, len(m)), urls: make(map[string][]string, len(m)),
		down: make(map[string][]*atomic.Int64, len(m))}
	for name, pn := range m {
		if len(pn.Addrs) == 0 {
			continue
		}
		if pn.Near <= 0 || pn.Near > len(pn.Addrs) {
			pn.Near = len(pn.Addrs)
		}
		pn.Addrs = append([]string(nil), pn.Addrs...)
		ids := make([]string, len(pn.Addrs))
		copy(ids, pn.HSAIDs)
		pn.HSAIDs = ids
		key := strings.ToLower(name)
		p.byName[key] = pn
		urls := make([]string, len(pn.Addrs))
		for i, a := range pn.Addrs {
			urls[i] = "https://" + a + "/vp"
		}
		p.urls[key] = urls
		marks := make([]*atomic.Int64, len(urls))
		for i := range marks {
			marks[i] = new(atomic.Int64)
		}
		p.down[key] = marks
	}
	return p
}

// Refuse returns p with the federation platforms whose calls this platform
// refuses: platform HSA-ID → platform name. Call it before SetPlatforms;
// the table is immutable once in use.
func (p *Platforms) Refuse(ids map[string]string) *Platforms {
	p.refused = make(map[string]string, len(ids))
	for id, name := range ids {
		p.refused[strings.ToLower(id)] = name
	}
	return p
}

// Refuses returns the platform a sender's HSA-ID belongs to, when calls
// from that platform are refused.
func (p *Platforms) Refuses(sender string) (string, bool) {
	if p == nil || len(p.refused) == 0 {
		return "", false
	}
	var buf [64]byte
	name, ok := p.refused[string(lowerKey(&buf, sender))]
	return name, ok
}

// lowerKey lower-cases s into buf for a map lookup, without allocating
// for an ASCII s that fits (platform names and HSA-IDs; strings.ToLower
// would allocate per call for the usual capitals).
func lowerKey(buf *[64]byte, s string) []byte {
	key := buf[:0]
	for i := 0; i < len(s) && len(key) < len(buf); i++ {
		c := s[i]
		if c >= 0x80 {
			break // not ASCII: strings.ToLower, below, as the keys were made
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		key = append(key, c)
	}
	if len(key) < len(s) {
		return []byte(strings.ToLower(s)) // too long for buf, or not ASCII
	}
	return key
}

// Nodes returns a platform's entry (for status pages and tests).
func (p *Platforms) Nodes(platform string) (PlatformNodes, bool) {
	if p == nil {
		return PlatformNodes{}, false
	}
	pn, ok := p.byName[strings.ToLower(platform)]
	pn.Addrs = append([]string(nil), pn.Addrs...)
	pn.HSAIDs = append([]string(nil), pn.HSAIDs...)
	return pn, ok
}

// SetPlatforms swaps in the federation table used by calls that start after
// it returns. node rebuilds the table on every membership event and every
// second: a table equal to the one in use is not swapped in, and a new one
// keeps the down marks of the nodes it still has, so that a node that could
// not be connected to stays passed by until gossip drops it.
func (r *Router) SetPlatforms(p *Platforms) {
	if old := r.plats.Load(); old != nil && p != nil {
		if old.equal(p) {
			return
		}
		p.inherit(old)
	}
	r.plats.Store(p)
	r.pruneClients(p)
}

// pruneClients drops the clients of other platforms' nodes that p no
// longer lists: nodes come and go (a container back on a new address), and
// each address a node ever had would otherwise keep a client for the
// node's lifetime. A call holding a dropped client finishes on it; its
// idle connections close after MaxIdleConnDuration.
func (r *Router) pruneClients(p *Platforms) {
	cur := r.clients.Load()
	if cur == nil {
		return
	}
	live := func(hostport string) bool {
		if p == nil {
			return false
		}
		for _, pn := range p.byName {
			if slices.Contains(pn.Addrs, hostport) {
				return true
			}
		}
		return false
	}
	r.clientsMu.Lock()
	defer r.clientsMu.Unlock()
	cur = r.clients.Load()
	var next map[clientKey]*fasthttp.HostClient
	for k := range *cur {
		if k.hsaID == "" || live(k.hostport) {
			continue
		}
		if next == nil {
			next = maps.Clone(*cur)
		}
		delete(next, k)
	}
	if next != nil {
		r.clients.Store(&next)
	}
}

// equal reports whether q routes exactly as p does.
func (p *Platforms) equal(q *Platforms) bool {
	if len(p.byName) != len(q.byName) || len(p.refused) != len(q.refused) {
		return false
	}
	for k, a := range p.byName {
		b, ok := q.byName[k]
		if !ok || a.Near != b.Near || !slices.Equal(a.Addrs, b.Addrs) || !slices.Equal(a.HSAIDs, b.HSAIDs) {
			return false
		}
	}
	for k, v := range p.refused {
		if w, ok := q.refused[k]; !ok || v != w {
			return false
		}
	}
	return true
}

// inherit takes over old's down marks (the same counters) for the nodes p
// still has, and its round-robin position. p is not in use yet.
func (p *Platforms) inherit(old *Platforms) {
	p.next.Store(old.next.Load())
	for k, urls := range p.urls {
		oldURLs := old.urls[k]
		for i, u := range urls {
			if j := slices.Index(oldURLs, u); j >= 0 {
				p.down[k][i] = old.down[k][j]
			}
		}
	}
}

// Platforms returns the federation table in use (nil before the first
// SetPlatforms).
func (r *Router) Platforms() *Platforms { return r.plats.Load() }

// PlatformOf returns the platform named by a call address ("vaxel://NAME"), if it names one.
func PlatformOf(url string) (string, bool) {
	if len(url) <= len(PlatformScheme) || !strings.EqualFold(url[:len(PlatformScheme)], PlatformScheme) {
		return "", false
	}
	name := url[len(PlatformScheme):]
	if i := strings.IndexAny(name, "/?#"); i >= 0 {
		name = name[:i]
	}
	return name, name != ""
}

// hopOrder is the order in which a call tries a platform's nodes: round
// robin over the near nodes from start, then the far ones; nodes marked
// down (mask, taken when the order was made) come after all the others.
// It is a view on the table's prebuilt URLs, so choosing a node allocates
// nothing.
type hopOrder struct {
	urls        []string
	hsaIDs      []string // aligned with urls: what each node's certificate must carry
	down        []*atomic.Int64
	near, start int
	mask        uint64 // bit k: node k is marked down
	// probe is 1 + the node this call tries first, because its hold ended
	// and this call renewed it; 0: none.
	probe int
}

func (h hopOrder) len() int { return len(h.urls) }

// base returns the index of the k-th node in round-robin order.
func (h hopOrder) base(k int) int {
	if k < h.near {
		return (h.start + k) % h.near
	}
	return k
}

// index returns the index in urls of the i-th node to try: the node to
// probe, if any, then the others as ordered.
func (h hopOrder) index(i int) int {
	if h.probe == 0 {
		return h.ordered(i)
	}
	p := h.probe - 1
	if i == 0 {
		return p
	}
	for k := 0; k < len(h.urls); k++ {
		if b := h.ordered(k); b != p {
			if i--; i == 0 {
				return b
			}
		}
	}
	return p // not reached: i < len
}

// ordered returns the index in urls of the i-th node in order: the nodes
// not marked down in base order, then the marked ones in base order.
func (h hopOrder) ordered(i int) int {
	if h.mask == 0 {
		return h.base(i)
	}
	for pass := 0; pass < 2; pass++ {
		for k := 0; k < len(h.urls); k++ {
			b := h.base(k)
			if marked := b < maxMarked && h.mask&(1<<b) != 0; marked == (pass == 1) {
				if i == 0 {
					return b
				}
				i--
			}
		}
	}
	return h.base(0) // not reached: i < len
}

// at returns the i-th node to try.
func (h hopOrder) at(i int) string { return h.urls[h.index(i)] }

// hsaIDAt returns the HSA-ID the i-th node's certificate must carry.
func (h hopOrder) hsaIDAt(i int) string { return h.hsaIDs[h.index(i)] }

// markDown passes the i-th node by for DownHold: it could not be
// connected to.
func (h hopOrder) markDown(i int) {
	if j := h.index(i); j < len(h.down) {
		h.down[j].Store(time.Now().Add(DownHold).UnixNano())
	}
}

// markUp clears the i-th node's mark: it answered.
func (h hopOrder) markUp(i int) {
	if j := h.index(i); j < len(h.down) && h.down[j].Load() != 0 {
		h.down[j].Store(0)
	}
}

// candidates returns the order in which to try a platform's nodes: calls
// are spread round robin over the near nodes, each followed by the other
// near nodes and then the far ones, so that a node whose connection fails
// is followed by the next; nodes that recently could not be connected to
// come last. Empty when the platform has no live node.
func (r *Router) candidates(platform string) hopOrder {
	p := r.plats.Load()
	if p == nil {
		return hopOrder{}
	}
	var buf [64]byte
	key := lowerKey(&buf, platform)
	// Map lookups with string(key) do not copy.
	pn, urls := p.byName[string(key)], p.urls[string(key)]
	if len(urls) == 0 {
		return hopOrder{}
	}
	h := hopOrder{urls: urls, hsaIDs: pn.HSAIDs, down: p.down[string(key)], near: pn.Near, start: int(p.next.Add(1)-1) % pn.Near}
	var now int64
	for j := range h.down {
		if j >= maxMarked {
			break
		}
		if until := h.down[j].Load(); until != 0 {
			if now == 0 {
				now = time.Now().UnixNano()
			}
			// When a hold ends, one call (the one that renews it) tries
			// the node, first, whether it is near or far; all others keep
			// passing it by. A node that is still unreachable then costs
			// one call a connect timeout per DownHold, not every call that
			// picks it; one that answers is cleared (markUp). Tried after
			// the others, it would be reached only when they all failed,
			// and a node that came back would stay passed by.
			// One probe per call: a second expired node is left, hold
			// and all, to the next call, not renewed unprobed.
			if until > now || h.probe != 0 || !h.down[j].CompareAndSwap(until, now+int64(DownHold)) {
				h.mask |= 1 << j
			} else {
				h.probe = j + 1
			}
		}
	}
	return h
}
