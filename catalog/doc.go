// Package catalog keeps a platform's service catalog (TAK) replicated on every
// node with Raft: hashicorp/raft with its log and stable store in raft-boltdb
// (bbolt), snapshots on disk, and mutual TLS between nodes.
//
// Writes are accepted by the leader only (ErrNotLeader elsewhere; package
// node forwards them). Reads never touch Raft: Current returns the immutable
// catalog as of the last applied entry, and Changed signals each new one.
// See DESIGN.md for the entry and snapshot formats and the bootstrap and
// membership rules.
package catalog
