package router

import (
	"strings"
	"sync/atomic"
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
	next   atomic.Uint32            // spreads calls over a platform's nodes
}

// PlatformNodes are a platform's live router addresses (host:port, HTTPS),
// nearest first; calls are spread over the first Near of them and go to the
// others only when those cannot be connected to.
type PlatformNodes struct {
	Addrs []string
	Near  int // 0 or more than len(Addrs): all are near
}

// NewPlatforms builds a table; the slices are copied.
func NewPlatforms(m map[string]PlatformNodes) *Platforms {
	p := &Platforms{byName: make(map[string]PlatformNodes, len(m)), urls: make(map[string][]string, len(m))}
	for name, pn := range m {
		if len(pn.Addrs) == 0 {
			continue
		}
		if pn.Near <= 0 || pn.Near > len(pn.Addrs) {
			pn.Near = len(pn.Addrs)
		}
		pn.Addrs = append([]string(nil), pn.Addrs...)
		key := strings.ToLower(name)
		p.byName[key] = pn
		urls := make([]string, len(pn.Addrs))
		for i, a := range pn.Addrs {
			urls[i] = "https://" + a + "/vp"
		}
		p.urls[key] = urls
	}
	return p
}

// Nodes returns a platform's entry (for status pages and tests).
func (p *Platforms) Nodes(platform string) (PlatformNodes, bool) {
	if p == nil {
		return PlatformNodes{}, false
	}
	pn, ok := p.byName[strings.ToLower(platform)]
	pn.Addrs = append([]string(nil), pn.Addrs...)
	return pn, ok
}

// SetPlatforms swaps in the federation table used by calls that start after
// it returns.
func (r *Router) SetPlatforms(p *Platforms) { r.plats.Store(p) }

// Platforms returns the federation table in use (nil before the first
// SetPlatforms).
func (r *Router) Platforms() *Platforms { return r.plats.Load() }

// platformOf returns the platform named by a call address, if it names one.
func platformOf(url string) (string, bool) {
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
// robin over the near nodes from start, then the far ones. It is a view
// on the table's prebuilt URLs, so choosing a node allocates nothing.
type hopOrder struct {
	urls        []string
	near, start int
}

func (h hopOrder) len() int { return len(h.urls) }

// at returns the i-th node to try.
func (h hopOrder) at(i int) string {
	if i < h.near {
		return h.urls[(h.start+i)%h.near]
	}
	return h.urls[i]
}

// candidates returns the order in which to try a platform's nodes: calls
// are spread round robin over the near nodes, each followed by the other
// near nodes and then the far ones, so that a node whose connection fails
// is followed by the next. Empty when the platform has no live node.
func (r *Router) candidates(platform string) hopOrder {
	p := r.plats.Load()
	if p == nil {
		return hopOrder{}
	}
	key := strings.ToLower(platform)
	pn, urls := p.byName[key], p.urls[key]
	if len(urls) == 0 {
		return hopOrder{}
	}
	return hopOrder{urls: urls, near: pn.Near, start: int(p.next.Add(1)-1) % pn.Near}
}
