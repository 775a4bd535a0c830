// Package router is the data plane of a node: the RIVTA router that replaces
// SKLTP's VP. It accepts SOAP calls on an HTTPS listener that requires client
// certificates (and optionally a plain-HTTP listener behind a TLS-terminating
// proxy), identifies the consumer, reads the contract and logical address
// without building a DOM, checks the authorization and resolves the route in
// the current catalog, and forwards the call to the producer or the next
// platform, with the reference's headers, error codes and fault texts.
//
// The router reads an immutable *tak.Catalog swapped in atomically by the
// node on every catalog change (SetCatalog); it never imports Raft, gossip or
// the node, and a request reads one catalog for its whole life.
package router
