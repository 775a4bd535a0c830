package node

import (
	"time"

	"github.com/vaxel/vaxel/router"
	"github.com/vaxel/vaxel/tak"
)

// Explanation says how a call would be routed now, with the reference's traces.
type Explanation struct {
	Contract           string `json:"contract"`
	LogicalAddress     string `json:"logicalAddress"`
	Consumer           string `json:"consumer"`
	Outcome            string `json:"outcome"` // routed, or the VP code the call would get
	RouteTrace         string `json:"routeTrace"`
	AuthorizationTrace string `json:"authorizationTrace,omitempty"`
	URL                string `json:"url,omitempty"`
	Profile            string `json:"rivProfile,omitempty"`
	Producer           string `json:"producer,omitempty"`
	RouteID            int64  `json:"routeId,omitempty"`
	ProducerTimeoutMS  int64  `json:"producerTimeoutMs"`
}

// Explain evaluates a call's route and authorization in c at time now.
func Explain(c *tak.Catalog, rt *router.Router, consumer, ns, la string, now time.Time) Explanation {
	o := rt.RoutingOptions()
	e := Explanation{Contract: ns, LogicalAddress: la, Consumer: consumer, ProducerTimeoutMS: c.Timeouts().Producer(ns).Milliseconds()}
	var rtr, atr tak.Trace
	tgt, st := c.ResolveRoute(ns, la, now.Unix(), o, &rtr)
	e.RouteTrace = rtr.String()
	switch st {
	case tak.RouteNone:
		e.Outcome = "VP004"
		return e
	case tak.RouteMultiple:
		e.Outcome = "VP006"
		return e
	}
	e.URL, e.Profile, e.Producer, e.RouteID = tgt.URL, tgt.Profile, tgt.Producer, tgt.RouteID
	ok := c.Authorize(consumer, ns, la, now.Unix(), o, &atr)
	e.AuthorizationTrace = atr.String()
	switch {
	case tgt.URL == "":
		e.Outcome = "VP010"
	case !ok:
		e.Outcome = "VP007"
	default:
		e.Outcome = "routed"
	}
	return e
}
