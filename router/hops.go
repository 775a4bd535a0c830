package router

import (
	"context"
	"encoding/hex"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Hop records: every answered call leaves one record of what this node did
// with it (federation/DESIGN.md, "Tracing"). Records live in a bounded
// in-memory store: sharded rings of HopConfig.MaxRecords in all (made with
// the store when they fit hopReserveMax, else grown as calls come), that
// drop records older than MaxAge. Writing one copies the call's strings
// into its chunk's byte arena and the rest into a slot under a shard lock:
// no allocation once a shard's ring and arenas have grown, and no pointer
// in the store for the garbage collector to trace. A lookup scans every
// slot; it is an operator's query, not a hot path (about a millisecond for
// 100,000 records).
//
// A HopFeed (FeedHops) also hands each stored record to a consumer off the
// request path, node's OTLP export: one non-blocking channel send of the
// slot, so recording still allocates nothing and never waits for it.

// HopConfig bounds the hop record store.
type HopConfig struct {
	// MaxRecords bounds how many records are kept (default 100,000);
	// negative turns hop records off.
	MaxRecords int
	// MaxAge is how long a record is kept (default 15 minutes).
	MaxAge time.Duration
}

const (
	defaultHopRecords = 100_000
	defaultHopAge     = 15 * time.Minute
	hopShards         = 8
	// hopChunkSize is how many records a shard allocates at a time, when
	// the store is too big to be made whole with its reserve
	// (hopReserveMax). The ring then grows chunk by chunk as records
	// arrive, and it never moves a record: a ring that doubled and copied
	// itself made a node allocate twice its final size in its first
	// minutes, copy megabytes under the shard lock in the middle of a call,
	// and run the garbage collector far more often, which showed as tens
	// of milliseconds of stall on a shared CPU.
	hopChunkSize = 1024
)

// HopRecord is one node's record of one call.
type HopRecord struct {
	TraceID       string `json:"trace_id"`
	CorrelationID string `json:"correlation_id"`
	// SpanID is this hop's span id (16 hex digits): the parent-id of the
	// traceparent this node sent downstream, so that the next platform's
	// hop is this hop's child. ParentSpanID is the parent-id of the
	// traceparent that came in: the caller's span (the previous platform's
	// hop, or the consumer's own span); empty when the call started here or
	// came without a valid traceparent.
	SpanID           string `json:"span_id"`
	ParentSpanID     string `json:"parent_span_id,omitempty"`
	Platform         string `json:"platform"` // the router's instance id
	Node             string `json:"node"`
	Consumer         string `json:"consumer"` // the sender: certificate HSA-ID or internal sender
	OriginalConsumer string `json:"original_consumer"`
	Contract         string `json:"contract"`
	LogicalAddress   string `json:"logical_address"`
	// Producer and RouteURL are the route taken: the producer component's
	// HSA-ID and the call address ("vaxel://NAME" for a platform).
	Producer string `json:"producer,omitempty"`
	RouteURL string `json:"route_url,omitempty"`
	// NextPlatform names the next platform when the route names one;
	// NextHop is the URL called: the next platform's node, or the producer.
	NextPlatform string `json:"next_platform,omitempty"`
	NextHop      string `json:"next_hop,omitempty"`
	// Outcome is "ok", "soap_fault" (a fault passed through from
	// downstream) or this node's fault code ("VP009").
	Outcome string `json:"outcome"`
	Status  int    `json:"status"`
	// Received is when the call came in, Forwarded when it was sent on,
	// DownstreamAnswered when the answer's head came back, Answered when
	// this node answered. Forwarded and DownstreamAnswered are zero for a
	// call refused before it was sent on.
	Received           time.Time `json:"received"`
	Forwarded          time.Time `json:"forwarded,omitzero"`
	DownstreamAnswered time.Time `json:"downstream_answered,omitzero"`
	Answered           time.Time `json:"answered"`
}

// hopEntry is one call's record as the request path builds it and the
// feed carries it: what varies per call. Its strings are the call's own.
type hopEntry struct {
	trace, corr, consumer, orig, contract, la, producer, routeURL, next string
	code                                                                Code
	status                                                              int32
	recv, fwd, down, ans                                                int64 // unix ns
	// Span ids stay bytes until a record is read: hex strings would be
	// two allocations per call.
	span, parent [8]byte
}

// hopStrings is how many strings a record has (hopEntry's, in order).
const hopStrings = 9

// hopMaxString bounds each string of a stored record; a longer one (an
// address or id no real call has) is stored cut. Every string is bounded
// before the router sees it (header and body limits); this keeps one
// record's bytes within an arena block whatever the limits are set to.
const hopMaxString = 2048

// hopBlock is the size of an arena block. Arenas grow a block at a time
// and never move what they hold: an arena that grew by copying itself
// stalled calls for milliseconds on the copy and its page faults.
const hopBlock = 32 << 10

// A record's strings always fit in one block.
const _ = uint(hopBlock - hopStrings*hopMaxString)

// hopReservePerRecord is the string bytes a store reserves per record when
// it is made (a call's nine strings come to 150-300 bytes); arenas still
// grow a block at a time past it. Whether a store reserves at all is
// hopReserveMax's (hops_norace.go, hops_race.go).
const hopReservePerRecord = 256

func (e *hopEntry) strings() [hopStrings]string {
	return [hopStrings]string{e.trace, e.corr, e.consumer, e.orig, e.contract, e.la, e.producer, e.routeURL, e.next}
}

// hopSlot is a stored record. It holds no pointer: its strings are bytes
// in its chunk's arena. The garbage collector then marks a whole chunk
// without looking inside it; with a string per field, a full store of
// 100,000 records was about a million pointers to trace at every
// collection, whose background marking held a CPU shared with the data
// plane for milliseconds at a time (the tail of the chain benchmark).
type hopSlot struct {
	block                uint16             // of arena[lap] holding the strings
	off                  uint16             // of the first string in the block
	lens                 [hopStrings]uint16 // of the strings, in hopEntry's order
	lap                  uint8              // which of the chunk's two arenas
	code                 Code
	status               int32
	recv, fwd, down, ans int64 // unix ns
	span, parent         [8]byte
}

// hopChunk is hopChunkSize slots and the bytes of their strings. The ring
// writes a chunk's slots in order, so when slot 0 is written again every
// slot still in use is of the lap before: the new lap's strings go to the
// other arena, and the one they replace, of two laps ago, is reused.
type hopChunk struct {
	slots []hopSlot
	arena [2]hopArena
	lap   uint8 // the arena being written
}

// hopArena is the bytes of one lap's strings: blocks of hopBlock bytes,
// filled in order; a reset keeps the blocks for the next lap.
type hopArena struct {
	blocks [][]byte
	cur    int // the block being filled
}

func (a *hopArena) reset() {
	a.cur = 0
	if len(a.blocks) > 0 {
		a.blocks[0] = a.blocks[0][:0]
	}
}

// room returns the block that n more bytes go to, and its index.
func (a *hopArena) room(n int) ([]byte, int) {
	if len(a.blocks) == 0 {
		a.blocks = append(a.blocks, make([]byte, 0, hopBlock))
	}
	if len(a.blocks[a.cur])+n > hopBlock {
		a.cur++
		if a.cur == len(a.blocks) {
			a.blocks = append(a.blocks, make([]byte, 0, hopBlock))
		}
		a.blocks[a.cur] = a.blocks[a.cur][:0]
	}
	return a.blocks[a.cur], a.cur
}

// bytes returns the block holding sl's strings, from the first one on.
func (c *hopChunk) bytes(sl *hopSlot) []byte {
	return c.arena[sl.lap].blocks[sl.block][sl.off:]
}

// str returns string k of sl (a view of the arena: copy it to keep it).
func (c *hopChunk) str(sl *hopSlot, k int) []byte {
	off := 0
	for _, n := range sl.lens[:k] {
		off += int(n)
	}
	return c.bytes(sl)[off : off+int(sl.lens[k])]
}

// put stores e in slot j.
func (c *hopChunk) put(j int, e *hopEntry) {
	if j == 0 {
		c.lap ^= 1
		c.arena[c.lap].reset()
	}
	v := e.strings()
	n := 0
	for k := range v {
		v[k] = v[k][:min(len(v[k]), hopMaxString)]
		n += len(v[k])
	}
	ar := &c.arena[c.lap]
	b, bi := ar.room(n)
	sl := &c.slots[j]
	*sl = hopSlot{block: uint16(bi), off: uint16(len(b)), lap: c.lap, code: e.code, status: e.status,
		recv: e.recv, fwd: e.fwd, down: e.down, ans: e.ans, span: e.span, parent: e.parent}
	for k, s := range v {
		b = append(b, s...)
		sl.lens[k] = uint16(len(s))
	}
	ar.blocks[bi] = b
}

// entry returns slot sl as a hopEntry with strings of its own.
func (c *hopChunk) entry(sl *hopSlot) hopEntry {
	var v [hopStrings]string
	off := 0
	a := c.bytes(sl)
	for k, n := range sl.lens {
		v[k] = string(a[off : off+int(n)])
		off += int(n)
	}
	return hopEntry{trace: v[0], corr: v[1], consumer: v[2], orig: v[3], contract: v[4], la: v[5], producer: v[6], routeURL: v[7], next: v[8],
		code: sl.code, status: sl.status, recv: sl.recv, fwd: sl.fwd, down: sl.down, ans: sl.ans, span: sl.span, parent: sl.parent}
}

type hopShard struct {
	mu sync.Mutex
	// A ring of size slots, n records from start, oldest first. Slot i is
	// chunks[i/hopChunkSize].slots[i%hopChunkSize]. A store that reserves
	// makes every chunk with itself; otherwise a chunk is made when its
	// first slot is written. The last chunk is only as long as the ring
	// needs.
	chunks []*hopChunk
	size   int
	start  int
	n      int
	// nextExpiry is when add next drops expired records (answered-time
	// nanoseconds). Checking the oldest record on every add read a slot
	// that had left the cache long before: under load the ring is far
	// larger than the cache, and that one load was most of add's time
	// (perf annotate, scripts/bench-chain). Lookups never return an
	// expired record (they check its age), so dropping them at most
	// hopExpireEvery late changes nothing a query sees.
	nextExpiry int64
	_          [64]byte // keep the shards' locks off each other's cache lines
}

// hopExpireEvery is how often a shard drops its expired records.
const hopExpireEvery = time.Second

// at returns the chunk of ring slot i and the slot's index in it (the
// chunk is nil if none was written yet).
func (sh *hopShard) at(i int) (*hopChunk, int) {
	return sh.chunks[i/hopChunkSize], i % hopChunkSize
}

// put stores e in ring slot i, allocating its chunk if it has none yet.
func (sh *hopShard) put(i int, e *hopEntry) {
	c, j := sh.at(i)
	if c == nil {
		c = sh.newChunk(i/hopChunkSize, false)
	}
	c.put(j, e)
}

// slotBytes is the memory of c's slots as bytes (they hold no pointer).
func (c *hopChunk) slotBytes() []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(c.slots))), len(c.slots)*int(unsafe.Sizeof(hopSlot{})))
}

// newChunk makes chunk k, with its arenas' reserve when reserve is set.
func (sh *hopShard) newChunk(k int, reserve bool) *hopChunk {
	n := min(hopChunkSize, sh.size-k*hopChunkSize)
	c := &hopChunk{slots: make([]hopSlot, n)}
	if reserve {
		// Both arenas' blocks are cut from one allocation, so that its
		// pages, and the slots', are made resident in a system call each
		// (prefault) rather than faulted in one by one under the shard
		// lock as the first laps write them. A block's capacity ends at
		// its own end: appending never reaches the next one.
		per := (n*hopReservePerRecord + hopBlock - 1) / hopBlock
		slab := make([]byte, len(c.arena)*per*hopBlock)
		prefault(slab)
		prefault(c.slotBytes())
		for l := range c.arena {
			blocks := make([][]byte, per)
			for b := range blocks {
				o := (l*per + b) * hopBlock
				blocks[b] = slab[o : o : o+hopBlock]
			}
			c.arena[l].blocks = blocks
		}
	}
	sh.chunks[k] = c
	return c
}

type hopStore struct {
	platform, node string
	perShard       int
	maxAge         time.Duration
	now            func() time.Time
	next           atomic.Uint32
	feed           atomic.Pointer[HopFeed] // nil: no consumer
	shards         []hopShard
}

func newHopStore(cfg HopConfig, platform, node string) *hopStore {
	if cfg.MaxRecords < 0 {
		return nil
	}
	if cfg.MaxRecords == 0 {
		cfg.MaxRecords = defaultHopRecords
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = defaultHopAge
	}
	shards := hopShards
	if cfg.MaxRecords < 64*hopShards {
		shards = 1 // a small store keeps its exact limit
	}
	s := &hopStore{
		platform: platform, node: node,
		perShard: (cfg.MaxRecords + shards - 1) / shards,
		maxAge:   cfg.MaxAge,
		now:      time.Now,
		shards:   make([]hopShard, shards),
	}
	reserve := s.perShard*len(s.shards)*(int(unsafe.Sizeof(hopSlot{}))+2*hopReservePerRecord) <= hopReserveMax
	for i := range s.shards {
		sh := &s.shards[i]
		sh.chunks = make([]*hopChunk, (s.perShard+hopChunkSize-1)/hopChunkSize)
		sh.size = s.perShard
		if reserve {
			for k := range sh.chunks {
				sh.newChunk(k, true)
			}
		}
	}
	return s
}

func (s *hopStore) add(e *hopEntry) {
	sh := &s.shards[int(s.next.Add(1))%len(s.shards)]
	cutoff := e.ans - int64(s.maxAge)
	sh.mu.Lock()
	// Records go in roughly in answered order: expire from the oldest end.
	// (An expired slot keeps its bytes until overwritten; it is out of the
	// ring, so nothing reads it.)
	if e.ans >= sh.nextExpiry {
		sh.nextExpiry = e.ans + int64(hopExpireEvery)
		for sh.n > 0 {
			c, j := sh.at(sh.start)
			if c.slots[j].ans >= cutoff {
				break
			}
			sh.start = (sh.start + 1) % s.perShard
			sh.n--
		}
	}
	if sh.n < s.perShard {
		sh.put((sh.start+sh.n)%s.perShard, e)
		sh.n++
	} else {
		// Full: the oldest goes.
		sh.put(sh.start, e)
		sh.start = (sh.start + 1) % s.perShard
	}
	sh.mu.Unlock()
	if f := s.feed.Load(); f != nil {
		f.offer(e)
	}
}

// lookup returns copies of the records whose trace id or correlation id is
// id, oldest first.
func (s *hopStore) lookup(id string) []HopRecord {
	if id == "" {
		return nil
	}
	cutoff := s.now().Add(-s.maxAge).UnixNano()
	var out []HopRecord
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for j := 0; j < sh.n; j++ {
			c, k := sh.at((sh.start + j) % s.perShard)
			sl := &c.slots[k]
			if (string(c.str(sl, 0)) == id || string(c.str(sl, 1)) == id) && sl.ans >= cutoff {
				e := c.entry(sl)
				out = append(out, s.record(&e))
			}
		}
		sh.mu.Unlock()
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Received.Before(out[j].Received) })
	return out
}

// len returns how many records are stored (expired ones included until
// they are dropped).
func (s *hopStore) len() int {
	n := 0
	for i := range s.shards {
		s.shards[i].mu.Lock()
		n += s.shards[i].n
		s.shards[i].mu.Unlock()
	}
	return n
}

func (s *hopStore) record(sl *hopEntry) HopRecord {
	h := HopRecord{
		TraceID: sl.trace, CorrelationID: sl.corr, SpanID: spanHex(sl.span), ParentSpanID: spanHex(sl.parent),
		Platform: s.platform, Node: s.node,
		Consumer: sl.consumer, OriginalConsumer: sl.orig, Contract: sl.contract, LogicalAddress: sl.la,
		Producer: sl.producer, RouteURL: sl.routeURL, NextHop: sl.next, Status: int(sl.status),
		Received: unixNano(sl.recv), Forwarded: unixNano(sl.fwd), DownstreamAnswered: unixNano(sl.down), Answered: unixNano(sl.ans),
	}
	h.NextPlatform, _ = PlatformOf(sl.routeURL)
	switch {
	case sl.code != 0:
		h.Outcome = sl.code.String()
	case sl.status >= 300:
		h.Outcome = "soap_fault"
	default:
		h.Outcome = "ok"
	}
	return h
}

// spanHex returns a span id in hex, or "" for the zero (absent) id.
func spanHex(id [8]byte) string {
	if id == ([8]byte{}) {
		return ""
	}
	return hex.EncodeToString(id[:])
}

func unixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// recordHop stores the hop record of an answered call.
func (r *Router) recordHop(c *call, answered time.Time) {
	if r.hops == nil {
		return
	}
	orig := c.origIn
	if orig == "" {
		orig = c.sender
	}
	sl := hopEntry{
		trace: c.traceID, corr: c.corrID, consumer: c.sender, orig: orig,
		contract: c.info.Contract, la: c.info.LogicalAddress,
		producer: c.target.Producer, routeURL: c.target.URL, next: c.nextURL,
		code: c.code, status: int32(c.status),
		recv: c.start.UnixNano(), ans: answered.UnixNano(),
		span: c.spanID, parent: c.parentSpanID,
	}
	if !c.sent.IsZero() {
		sl.fwd = c.sent.UnixNano()
		if c.prt > 0 {
			sl.down = sl.fwd + int64(c.prt)
		}
	}
	r.hops.add(&sl)
}

// Hops returns copies of this node's hop records whose trace id or
// correlation id is id, oldest first; nil when hop records are off.
func (r *Router) Hops(id string) []HopRecord {
	if r.hops == nil {
		return nil
	}
	return r.hops.lookup(id)
}

// HopFeed is a bounded queue of hop records for one consumer off the
// request path (node's OTLP export). The router adds every record it stores
// without ever waiting: a record that finds the queue full is dropped and
// counted, so a slow or stuck consumer costs calls nothing but those
// records. Next is for one goroutine at a time; Dropped for any.
type HopFeed struct {
	s       *hopStore
	ch      chan hopEntry
	dropped atomic.Uint64
}

// FeedHops starts handing every hop record stored from now on to a new
// HopFeed that holds up to size records (at least 1) until they are read.
// It returns nil when hop records are off (HopConfig.MaxRecords < 0).
// Call it before Run; a later call replaces the earlier feed, whose reader
// then gets nothing more.
func (r *Router) FeedHops(size int) *HopFeed {
	if r.hops == nil {
		return nil
	}
	// The buffer is the queue: it absorbs the calls that come while the
	// consumer is busy exporting the previous batch.
	f := &HopFeed{s: r.hops, ch: make(chan hopEntry, max(size, 1))}
	r.hops.feed.Store(f)
	return f
}

func (f *HopFeed) offer(sl *hopEntry) {
	if len(f.ch) == cap(f.ch) {
		// Full: drop without copying (the select below still decides
		// when the reader takes one in between).
		f.dropped.Add(1)
		return
	}
	// The queue outlives the call, and the call's strings do not
	// (inbound.str): the queued record gets copies. Those from the catalog
	// and the platform table (producer, routeURL, next) are not the call's.
	e := *sl
	e.trace, e.corr, e.consumer = strings.Clone(e.trace), strings.Clone(e.corr), strings.Clone(e.consumer)
	e.orig, e.contract, e.la = strings.Clone(e.orig), strings.Clone(e.contract), strings.Clone(e.la)
	select {
	case f.ch <- e:
	default:
		f.dropped.Add(1)
	}
}

// Next waits until a record is queued or ctx is done. It then appends the
// queued records to dst without waiting for more, up to cap(dst) (at least
// one), and returns dst. Queued records are returned before ctx's error, so
// that after the router has stopped, calling Next with a cancelled ctx until
// it returns an error drains the queue.
func (f *HopFeed) Next(ctx context.Context, dst []HopRecord) ([]HopRecord, error) {
	select {
	case sl := <-f.ch:
		dst = append(dst, f.s.record(&sl))
	default:
		select {
		case sl := <-f.ch:
			dst = append(dst, f.s.record(&sl))
		case <-ctx.Done():
			return dst, ctx.Err()
		}
	}
	for len(dst) < cap(dst) {
		select {
		case sl := <-f.ch:
			dst = append(dst, f.s.record(&sl))
		default:
			return dst, nil
		}
	}
	return dst, nil
}

// Dropped returns how many records found the queue full since FeedHops.
func (f *HopFeed) Dropped() uint64 { return f.dropped.Load() }
