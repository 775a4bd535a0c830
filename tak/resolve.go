package tak

import "strings"

// RoutingOptions are the platform's routing switches of skltp-vp.md §3.4.
// They change how the catalog is read, not what it holds.
type RoutingOptions struct {
	// Delimiter enables the deprecated "VG#VE" default routing when non-empty
	// (reference default "#").
	Delimiter string
	// DefaultRoutingContracts and DefaultRoutingSenders restrict which
	// contracts and consumers may be authorized through VG#VE addressing;
	// empty means all. They apply to authorization only, as in the reference.
	DefaultRoutingContracts []string
	DefaultRoutingSenders   []string
	// NoRouteClimb and NoAuthClimb turn the HSA tree climb off by default;
	// the zero value climbs, as the reference does.
	NoRouteClimb, NoAuthClimb bool
	// RouteClimbExceptions and AuthClimbExceptions are namespace prefixes for
	// which the default is inverted (hsa.lookup.*.exceptedNamespaces).
	RouteClimbExceptions, AuthClimbExceptions []string
}

func climbs(off bool, exceptions []string, ns string) bool {
	on := !off
	for _, p := range exceptions {
		if p != "" && strings.HasPrefix(ns, p) {
			return !on
		}
	}
	return on
}

// Trace collects the steps of a lookup in the reference's log format
// ("la,(parent),SE,(default),*"). A nil *Trace records nothing, which keeps
// the request path free of allocations.
type Trace struct{ steps []string }

func (t *Trace) add(s string) {
	if t != nil {
		t.steps = append(t.steps, s)
	}
}

// String renders the steps comma-separated.
func (t *Trace) String() string {
	if t == nil {
		return ""
	}
	return strings.Join(t.steps, ",")
}

// RouteStatus is the outcome of a route lookup.
type RouteStatus uint8

// Route lookup outcomes.
const (
	RouteFound    RouteStatus = iota + 1
	RouteNone                 // VP004
	RouteMultiple             // VP006
)

// maxClimb bounds an HSA climb: a corrupt tree with a cycle must not hang a request.
const maxClimb = 64

// ResolveRoute finds the route for a contract at a logical address at time now
// (unix seconds) with the reference order: VG#VE (exclusive), exact, HSA tree
// climb up to and including "SE", then "*". More than one valid route at the
// level that matched is RouteMultiple, whatever their RIV profiles.
func (c *Catalog) ResolveRoute(ns, la string, now int64, o *RoutingOptions, tr *Trace) (RouteTarget, RouteStatus) {
	// The namespace is hashed once per call; a level's key is then base ^
	// (that level's address hash), and the climb takes the next address's
	// hashes from the tree, so no string is hashed per level.
	base := routeBase(nsSeeds.lowerHash(ns))
	if o.Delimiter != "" && strings.Contains(la, o.Delimiter) {
		tr.add("(leaf)")
		var found RouteTarget
		st := RouteNone
		eachDefaultPart(la, o.Delimiter, func(part string) bool {
			tr.add(part)
			found, st = c.routeAt(base.xor(laSeeds.lowerHash(part)), now)
			return st == RouteNone
		})
		return found, st
	}
	tr.add(la)
	laL, cur := laKeys(la)
	if t, st := c.routeAt(base.xor(laL), now); st != RouteNone {
		return t, st
	}
	if climbs(o.NoRouteClimb, o.RouteClimbExceptions, ns) {
		tr.add("(parent)")
		for i := 0; cur != rootKey && i < maxClimb; i++ {
			p := c.hsa.up(cur)
			tr.add(p.parent)
			if t, st := c.routeAt(base.xor(p.parentL), now); st != RouteNone {
				return t, st
			}
			cur = p.parentH
		}
	}
	tr.add("(default)")
	tr.add("*")
	return c.routeAt(base.xor(starHash), now)
}

// starHash is the address hash of the default-routing wildcard "*".
var starHash = laSeeds.lowerHash("*")

func (c *Catalog) routeAt(key hkey, now int64) (RouteTarget, RouteStatus) {
	hk, ts, k := c.routeIdx.home(key)
	if hk == nil {
		return RouteTarget{}, RouteNone
	}
	// Read the value before comparing the key (see flat.home): all of the
	// first target, which is what a hit returns and spans two cache lines.
	first, one := ts.first, ts.more == nil
	if *hk == k && one {
		if first.w.valid(now) {
			return first, RouteFound
		}
		return RouteTarget{}, RouteNone
	}
	switch *hk {
	case hkey{}:
		return RouteTarget{}, RouteNone
	case k:
		return routeIn(ts, now)
	}
	return routeIn(c.routeIdx.scan(k), now)
}

// routeIn applies the validity rules to the routes of one level (nil: none).
func routeIn(ts *routeSet, now int64) (RouteTarget, RouteStatus) {
	if ts == nil {
		return RouteTarget{}, RouteNone
	}
	if ts.more == nil { // the common case: one route
		if ts.first.w.valid(now) {
			return ts.first, RouteFound
		}
		return RouteTarget{}, RouteNone
	}
	n, hit := 0, -1
	for i := 0; i < ts.len(); i++ {
		if ts.at(i).w.valid(now) {
			n++
			hit = i
		}
	}
	switch n {
	case 0:
		return RouteTarget{}, RouteNone
	case 1:
		return *ts.at(hit), RouteFound
	}
	return *ts.at(hit), RouteMultiple
}

// Authorize reports whether consumer may call the contract at the logical
// address at time now, in the reference order (different from routing):
// VG#VE (at most two parts, allow-lists), exact, "*", then HSA climb.
func (c *Catalog) Authorize(consumer, ns, la string, now int64, o *RoutingOptions, tr *Trace) bool {
	// As in ResolveRoute: namespace and consumer are hashed once per call.
	base := authBase(nsSeeds.lowerHash(ns), conSeeds.lowerHash(consumer))
	if o.Delimiter != "" && strings.Contains(la, o.Delimiter) {
		tr.add("(leaf)")
		if countDefaultParts(la, o.Delimiter) > 2 || !listed(o.DefaultRoutingContracts, ns) || !listed(o.DefaultRoutingSenders, consumer) {
			tr.add("Invalid parameters")
			return false
		}
		ok := false
		eachDefaultPart(la, o.Delimiter, func(part string) bool {
			tr.add(part)
			h := laSeeds.lowerHash(part)
			ok = c.authAt(c.authIndex(h == starHash), base.xor(h), now)
			return !ok
		})
		return ok
	}
	tr.add(la)
	laL, cur := laKeys(la)
	if c.authAt(c.authIndex(laL == starHash), base.xor(laL), now) {
		return true
	}
	tr.add("(default)")
	tr.add("*")
	if c.authAt(&c.authStar, base.xor(starHash), now) {
		return true
	}
	if climbs(o.NoAuthClimb, o.AuthClimbExceptions, ns) {
		tr.add("(parent)")
		for i := 0; cur != rootKey && i < maxClimb; i++ {
			p := c.hsa.up(cur)
			tr.add(p.parent)
			if c.authAt(c.authIndex(p.parentL == starHash), base.xor(p.parentL), now) {
				return true
			}
			cur = p.parentH
		}
	}
	return false
}

func (c *Catalog) authAt(idx *flat[authSet], key hkey, now int64) bool {
	hk, ts, k := idx.home(key)
	if hk == nil {
		return false
	}
	// Read the value before comparing the key: see flat.home.
	if valid := ts.first.w.valid(now); *hk == k && valid {
		return true
	}
	switch *hk {
	case hkey{}:
		return false
	case k:
		return authIn(ts, now)
	}
	return authIn(idx.scan(k), now)
}

// authIn reports whether any authorization of one level (nil: none) is valid.
func authIn(ts *authSet, now int64) bool {
	if ts == nil {
		return false
	}
	for i := 0; i < ts.len(); i++ {
		if ts.at(i).w.valid(now) {
			return true
		}
	}
	return false
}

func listed(list []string, v string) bool {
	if len(list) == 0 {
		return true
	}
	for _, x := range list {
		if strings.EqualFold(strings.TrimSpace(x), v) {
			return true
		}
	}
	return false
}

// eachDefaultPart visits the distinct parts of "VG#VE" in reverse order of
// first occurrence (the reference reverses a de-duplicated list, so VE is
// tried first), without allocating.
func eachDefaultPart(la, delim string, fn func(string) bool) {
	n := strings.Count(la, delim) + 1
	for i := n - 1; i >= 0; i-- {
		p := nthPart(la, delim, i)
		dup := false
		for j := 0; j < i; j++ {
			if nthPart(la, delim, j) == p {
				dup = true
				break
			}
		}
		if !dup && !fn(p) {
			return
		}
	}
}

func countDefaultParts(la, delim string) int {
	n := strings.Count(la, delim) + 1
	distinct := 0
	for i := 0; i < n; i++ {
		p, dup := nthPart(la, delim, i), false
		for j := 0; j < i; j++ {
			if nthPart(la, delim, j) == p {
				dup = true
				break
			}
		}
		if !dup {
			distinct++
		}
	}
	return distinct
}

func nthPart(s, delim string, n int) string {
	for ; n > 0; n-- {
		i := strings.Index(s, delim)
		if i < 0 {
			return ""
		}
		s = s[i+len(delim):]
	}
	if i := strings.Index(s, delim); i >= 0 {
		return s[:i]
	}
	return s
}
