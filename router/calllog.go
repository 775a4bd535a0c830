package router

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// The per-call log line is the hottest log statement of the node. slog's
// JSON handler spends a few microseconds encoding a dozen attributes and
// issues one write(2) per line; callLog encodes the same line with append
// functions into a stack buffer, queues it in memory and writes the queue in
// batches from a background goroutine. The line is byte-for-byte what slog's
// JSON handler writes (same keys, order, escaping and number format).

// A batch goes out every callLogFlushEvery or once callLogFlushSize is
// queued; at 1,000 calls/s the two coincide (about 600 bytes a line). Each
// write(2) enters the runtime's system call path, which wakes its monitor
// thread (sysmon) when the node was idle a moment before; sysmon then polls
// every 20 µs for up to a millisecond and moves the processor between
// threads. At 25 ms the three nodes of scripts/bench-chain made 7 % more
// context switches than the bare fasthttp chain, at 100 ms 2–3 %
// (docs/benchmarks.md). A line reaches the log within 100 ms, well inside
// what an operator tailing it notices.
const (
	callLogFlushEvery  = 100 * time.Millisecond
	callLogFlushSize   = 64 << 10             // flush early once this much is queued
	callLogMaxPending  = 8 << 20              // beyond this, lines are dropped (writer stuck)
	callLogBufSize     = 4 * callLogFlushSize // initial capacity of each buffer
	callLogShrinkAfter = 2 * time.Second      // of small batches, before a big buffer goes
)

type callLog struct {
	w      io.Writer
	prefix []byte       // pre-encoded static fields: `,"node":"n1",…`
	warn   *slog.Logger // reports dropped lines

	mu       sync.Mutex // guards buf, spare, closed, sleeping
	buf      []byte
	spare    []byte
	closed   bool
	sleeping bool // the writer waits for wake, its ticker stopped
	dropped  atomic.Uint64
	flushes  atomic.Uint64 // flushes run, for the tests

	wmu      sync.Mutex // serializes flushes, so batches reach w in order
	reported uint64     // dropped count already reported; under wmu
	lastBig  time.Time  // when a batch last exceeded callLogBufSize; under wmu

	wake chan struct{} // a line was queued while the writer sleeps
	kick chan struct{} // the queue passed callLogFlushSize
	stop chan struct{}
	done chan struct{}
}

func newCallLog(w io.Writer, fields []slog.Attr, warn *slog.Logger) *callLog {
	l := &callLog{
		w:     w,
		warn:  warn,
		buf:   make([]byte, 0, callLogBufSize),
		spare: make([]byte, 0, callLogBufSize),
		wake:  make(chan struct{}, 1),
		kick:  make(chan struct{}, 1),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	for _, a := range fields {
		l.prefix = appendJSONAttr(l.prefix, a)
	}
	go l.run()
	return l
}

// Dropped returns how many lines were dropped because the writer fell
// more than callLogMaxPending behind.
func (l *callLog) Dropped() uint64 { return l.dropped.Load() }

// run writes the queue every callLogFlushEvery, or at once when it passes
// callLogFlushSize. A tick that finds nothing queued stops the ticker
// until a line is: a ticker running on an idle node (every 25 ms then)
// woke it 40 times a second, which with the runtime's spinning after each
// wake-up was most of an idle node's CPU. Under load the ticker keeps
// running and a call queues its line without waking anything. (A version that armed a timer
// from the first line of each batch, by a channel send from the call's
// goroutine, measured worse on the pinned benchmark chain: p99 median
// 2.37 ms over 9 runs against 2.19 ms with the ticker, docs/benchmarks.md.)
func (l *callLog) run() {
	defer close(l.done)
	t := time.NewTicker(callLogFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-l.kick:
		case <-l.stop:
			l.flush()
			return
		}
		if l.flush() > 0 {
			continue
		}
		l.mu.Lock()
		if len(l.buf) > 0 {
			l.mu.Unlock()
			continue
		}
		l.sleeping = true
		l.mu.Unlock()
		t.Stop()
		select {
		case <-l.wake:
		case <-l.kick:
			l.flush()
		case <-l.stop:
			l.flush()
			return
		}
		// Awake: writes stop sending wakes, and one sent before this
		// point is stale (its line is queued; the ticker will write it).
		l.mu.Lock()
		l.sleeping = false
		l.mu.Unlock()
		select {
		case <-l.wake:
		default:
		}
		t.Reset(callLogFlushEvery)
	}
}

// close flushes every queued line and stops the background writer. Lines
// logged after close are written synchronously, so none is lost.
func (l *callLog) close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	<-l.done
}

// flush writes what is queued and returns how many bytes that was. The
// write happens outside mu so callers never wait on the writer.
func (l *callLog) flush() int {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.flushes.Add(1)
	l.mu.Lock()
	out := l.buf
	l.buf = l.spare[:0]
	l.spare = nil
	l.mu.Unlock()
	n := len(out)
	if n > 0 {
		_, _ = l.w.Write(out)
	}
	// A burst may have grown the buffers. Keep them while batches stay
	// big, so they are not regrown at every flush, and let the memory go
	// after a second or so of small batches.
	if now := time.Now(); len(out) > callLogBufSize {
		l.lastBig = now
	} else if cap(out) > callLogBufSize && now.Sub(l.lastBig) > callLogShrinkAfter {
		out = make([]byte, 0, callLogBufSize)
	}
	l.mu.Lock()
	if l.spare == nil {
		l.spare = out[:0]
	}
	l.mu.Unlock()
	if d := l.dropped.Load(); d > l.reported && l.warn != nil {
		l.warn.Warn("call log lines dropped: the log writer is not keeping up",
			"dropped", d-l.reported, "dropped_total", d)
		l.reported = d
	}
	return n
}

// write queues one encoded line (ending in '\n').
func (l *callLog) write(line []byte) {
	l.mu.Lock()
	if len(l.buf)+len(line) > callLogMaxPending {
		l.mu.Unlock()
		l.dropped.Add(1)
		return
	}
	l.buf = append(l.buf, line...)
	n, closed, wake := len(l.buf), l.closed, l.sleeping
	l.sleeping = false
	l.mu.Unlock()
	switch {
	case closed:
		l.flush()
	case n >= callLogFlushSize:
		select {
		case l.kick <- struct{}{}:
		default:
		}
	case wake:
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

// log encodes c as one JSON line and queues it.
func (l *callLog) log(c *call, lvl slog.Level, now time.Time) {
	var stack [1024]byte
	b := appendCallLine(stack[:0], l.prefix, c, lvl, now)
	l.write(b)
}

// appendCallLine appends the line slog's JSON handler would write for
// logCall's attributes, prefix being the logger's pre-encoded static fields.
func appendCallLine(b, prefix []byte, c *call, lvl slog.Level, now time.Time) []byte {
	b = append(b, `{"time":"`...)
	b = now.Round(0).AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"`...)
	b = append(b, lvl.String()...)
	b = append(b, `","msg":"call"`...)
	b = append(b, prefix...)
	b = append(b, `,"event":"call","correlation_id":`...)
	b = appendJSONString(b, c.corrID)
	b = append(b, `,"trace_id":`...)
	b = appendJSONString(b, c.traceID)
	b = append(b, `,"listener":`...)
	b = appendJSONString(b, c.listener)
	b = append(b, `,"sender":`...)
	b = appendJSONString(b, c.sender)
	b = append(b, `,"contract":`...)
	b = appendJSONString(b, c.info.Contract)
	b = append(b, `,"logical_address":`...)
	b = appendJSONString(b, c.info.LogicalAddress)
	b = append(b, `,"rivversion":`...)
	b = appendJSONString(b, c.info.Profile.String())
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(c.status), 10)
	b = append(b, `,"duration_ms":`...)
	b = appendJSONMillis(b, now.Sub(c.start).Microseconds())
	if c.origIn != "" {
		b = append(b, `,"original_consumer":`...)
		b = appendJSONString(b, c.origIn)
	}
	if c.target.URL != "" {
		b = append(b, `,"producer":`...)
		b = appendJSONString(b, c.target.Producer)
		b = append(b, `,"url":`...)
		b = appendJSONString(b, c.target.URL)
		b = append(b, `,"producer_ms":`...)
		b = appendJSONMillis(b, c.prt.Microseconds())
	}
	if c.code != 0 {
		b = append(b, `,"error_code":`...)
		b = appendJSONString(b, c.code.String())
	}
	if c.producerErr != "" {
		b = append(b, `,"producer_error":`...)
		b = appendJSONString(b, c.producerErr)
	}
	return append(b, "}\n"...)
}

// appendJSONAttr appends `,"key":value` as slog's JSON handler would.
func appendJSONAttr(b []byte, a slog.Attr) []byte {
	v := a.Value.Resolve()
	if a.Key == "" && v.Kind() != slog.KindGroup || v.Kind() == slog.KindGroup && len(v.Group()) == 0 {
		return b
	}
	if v.Kind() == slog.KindGroup && a.Key == "" {
		for _, g := range v.Group() {
			b = appendJSONAttr(b, g)
		}
		return b
	}
	b = append(b, ',')
	b = appendJSONString(b, a.Key)
	b = append(b, ':')
	switch v.Kind() {
	case slog.KindString:
		b = appendJSONString(b, v.String())
	case slog.KindInt64:
		b = strconv.AppendInt(b, v.Int64(), 10)
	case slog.KindUint64:
		b = strconv.AppendUint(b, v.Uint64(), 10)
	case slog.KindFloat64:
		b = appendJSONFloat(b, v.Float64())
	case slog.KindBool:
		b = strconv.AppendBool(b, v.Bool())
	case slog.KindDuration:
		b = strconv.AppendInt(b, int64(v.Duration()), 10)
	case slog.KindTime:
		b = append(b, '"')
		b = v.Time().AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	case slog.KindGroup:
		b = append(b, '{')
		n := len(b)
		for _, g := range v.Group() {
			b = appendJSONAttr(b, g)
		}
		if len(b) > n && b[n] == ',' {
			b = append(b[:n], b[n+1:]...)
		}
		b = append(b, '}')
	default:
		if j, err := json.Marshal(v.Any()); err == nil {
			b = append(b, j...)
		} else {
			b = appendJSONString(b, v.String())
		}
	}
	return b
}

// appendJSONMillis appends us microseconds as milliseconds, exactly as
// appendJSONFloat(b, float64(us)/1000) does, without strconv's float
// formatting (a third of the line's cost). Below 2^53/1000 µs (285 years)
// distinct thousandths are distinct float64s, so the shortest form
// AppendFloat finds is the decimal itself: the integer part, then up to
// three digits with trailing zeros dropped.
func appendJSONMillis(b []byte, us int64) []byte {
	if us < 0 || us >= 1<<53/1000 {
		return appendJSONFloat(b, float64(us)/1000)
	}
	b = strconv.AppendInt(b, us/1000, 10)
	frac := us % 1000
	if frac == 0 {
		return b
	}
	d := [4]byte{'.', byte('0' + frac/100), byte('0' + frac/10%10), byte('0' + frac%10)}
	n := 4
	for d[n-1] == '0' {
		n--
	}
	return append(b, d[:n]...)
}

// appendJSONFloat formats f as encoding/json does (which is what slog uses).
func appendJSONFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return appendJSONString(b, strconv.FormatFloat(f, 'g', -1, 64))
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	n := len(b)
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		if m := len(b) - n; m >= 4 && b[len(b)-4] == 'e' && b[len(b)-3] == '-' && b[len(b)-2] == '0' {
			b[len(b)-2] = b[len(b)-1]
			b = b[:len(b)-1]
		}
	}
	return b
}

const lowerHex = "0123456789abcdef"

// appendJSONString appends s quoted and escaped as slog's JSON handler
// does: quote, backslash and control characters escaped, invalid UTF-8 as
// U+FFFD, U+2028 and U+2029 escaped; <, > and & left alone.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', lowerHex[c>>4], lowerHex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', lowerHex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// callLogEnabled reports whether lines at lvl pass the logger's level.
func callLogEnabled(l *slog.Logger, lvl slog.Level) bool {
	return l.Enabled(context.Background(), lvl)
}
