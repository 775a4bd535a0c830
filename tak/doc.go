// Package tak is the service addressing catalog (TAK, tjänsteadresseringskatalog)
// as a pure value: the entities of SKLTP's TAK (RIV profiles, contracts, logical
// addresses, components, call addresses, routes, authorizations, filters and
// categorizations), the HSA tree and the per-contract producer timeouts, with the
// indexes the router needs and the reference routing (vägval) and authorization
// (anropsbehörighet) rules.
//
// A *Catalog is immutable. Changes go through a Txn, which validates them with
// TAK's rules and commits a new *Catalog that shares every untouched index shard
// with its parent, so a one-entity change to a catalog of a million routes costs
// microseconds and readers never lock.
//
// The package does no I/O and never reads the clock on its own: the time of a
// call is passed in by the router, and the time and actor of a change are stamped
// into the change by the caller. That makes every mutation a deterministic
// function of (catalog, input), which is what the Raft FSM in package catalog
// needs, and it is why both catalog (which replicates it) and router (which reads
// it) can depend on it without the router ever linking Raft.
package tak
