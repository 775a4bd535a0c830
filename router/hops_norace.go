//go:build !race

package router

// hopReserveMax caps what a store reserves when it is made: the default
// store (100,000 records) reserves about 59 MB. A store that would reserve
// more grows a chunk at a time as records come.
//
// Reserving makes the store's memory what it will be from the first call,
// which an operator can plan for, and it is what keeps a new node's
// collections as rare as a busy one's: the garbage collector runs when the
// heap has grown by its size since the last one, and a node's heap is
// mostly this store. A node whose store filled over minutes collected every
// few seconds at first, and each collection's marking stalled its calls on
// a CPU shared with the data plane (docs/benchmarks.md, the chain's tail).
// The reserve is made resident with the store (prefault): faulted in page
// by page as the first laps wrote it, it cost a new node's calls about
// 3 µs each for their first 200,000 on a paravirtualised VM.
var hopReserveMax = 64 << 20
