package router

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaxel/vaxel/tak"
)

// lockedBuffer is a bytes.Buffer safe for the flusher and the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func testCalls() (ok, fault *call) {
	start := time.Now().Add(-1500 * time.Microsecond)
	ok = &call{
		start: start, corrID: "corr-1", traceID: "0af7651916cd43dd8448eb211c80319c",
		listener: "https", sender: "SE0000000000-1234", origIn: "SE0000000000-9999",
		info:   RequestInfo{Contract: "urn:riv:itintegration:registry:GetLogicalAddresseesByServiceContractResponder:2", LogicalAddress: "SE1", Profile: ProfileBP21},
		target: tak.RouteTarget{Producer: "prod", URL: "https://producer.example/svc"},
		status: 200, prt: 1234 * time.Microsecond,
	}
	fault = &call{
		start: start, corrID: "corr-2", traceID: "t2", listener: "http", sender: "S",
		info:   RequestInfo{Contract: "c", LogicalAddress: "la", Profile: ProfileBP20},
		target: tak.RouteTarget{Producer: "p", URL: "http://p"},
		code:   CodeVP009, status: 500, producerErr: "connection refused",
	}
	return ok, fault
}

var testFields = []slog.Attr{slog.String("node", "n1"), slog.String("platform", "pf"), slog.String("subsystem", "router")}

// slogLine is what the slog path writes for c at now.
func slogLine(t *testing.T, c *call, lvl slog.Level) map[string]any {
	t.Helper()
	var buf bytes.Buffer
	r := &Router{cfg: Config{LogCalls: true, Logger: slog.New(slog.NewJSONHandler(&buf, nil)).
		With("node", "n1", "platform", "pf").With("subsystem", "router")}}
	r.logCall(c)
	return decodeOne(t, buf.Bytes())
}

func decodeOne(t *testing.T, line []byte) map[string]any {
	t.Helper()
	if bytes.Count(line, []byte("\n")) != 1 || line[len(line)-1] != '\n' {
		t.Fatalf("want one line, got %q", line)
	}
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("invalid JSON %q: %v", line, err)
	}
	return m
}

func TestCallLineMatchesSlog(t *testing.T) {
	ok, fault := testCalls()
	var prefix []byte
	for _, a := range testFields {
		prefix = appendJSONAttr(prefix, a)
	}
	for _, tc := range []struct {
		c    *call
		lvl  slog.Level
		keys []string
	}{
		{ok, slog.LevelInfo, []string{"time", "level", "msg", "node", "platform", "subsystem", "event", "correlation_id", "trace_id", "listener", "sender", "contract", "logical_address", "rivversion", "status", "duration_ms", "original_consumer", "producer", "url", "producer_ms"}},
		{fault, slog.LevelWarn, []string{"time", "level", "msg", "node", "platform", "subsystem", "event", "correlation_id", "trace_id", "listener", "sender", "contract", "logical_address", "rivversion", "status", "duration_ms", "producer", "url", "producer_ms", "error_code", "producer_error"}},
	} {
		line := appendCallLine(nil, prefix, tc.c, tc.lvl, time.Now())
		got := decodeOne(t, line)
		want := slogLine(t, tc.c, tc.lvl)
		// Key order too: decode the keys in sequence.
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.Token()
		var keys []string
		for dec.More() {
			k, _ := dec.Token()
			keys = append(keys, k.(string))
			var v any
			dec.Decode(&v)
		}
		if !reflect.DeepEqual(keys, tc.keys) {
			t.Errorf("keys\n got %v\nwant %v", keys, tc.keys)
		}
		for _, m := range []map[string]any{got, want} {
			if _, err := time.Parse(time.RFC3339Nano, m["time"].(string)); err != nil {
				t.Errorf("time: %v", err)
			}
			delete(m, "time")
			// Timing differs by the microseconds between the two calls.
			if d, _ := m["duration_ms"].(float64); d < 1.5 || d > 1000 {
				t.Errorf("duration_ms %v", m["duration_ms"])
			}
			delete(m, "duration_ms")
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("line differs from slog's\n got %v\nwant %v", got, want)
		}
	}
}

func TestCallLineExactBytes(t *testing.T) {
	_, fault := testCalls()
	now := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	fault.start = now.Add(-2500 * time.Microsecond)
	fault.prt = 0
	line := appendCallLine(nil, appendJSONAttr(nil, slog.String("node", "n1")), fault, slog.LevelWarn, now)
	want := `{"time":"2026-01-02T03:04:05.123456789Z","level":"WARN","msg":"call","node":"n1","event":"call","correlation_id":"corr-2","trace_id":"t2","listener":"http","sender":"S","contract":"c","logical_address":"la","rivversion":"rivtabp20","status":500,"duration_ms":2.5,"producer":"p","url":"http://p","producer_ms":0,"error_code":"VP009","producer_error":"connection refused"}` + "\n"
	if string(line) != want {
		t.Errorf("got\n%s\nwant\n%s", line, want)
	}
}

func TestJSONStringEscaping(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quo"te`, `back\slash`, "new\nline\r\ttab", "ctl\x00\x01\x1f\x7f",
		"<script>&amp;</script>", "utf8 åäö 日本 😀", "sep\u2028\u2029", "\"}\n{\"level\":\"ERROR\"",
		"bad\xffutf8\xc3", "\xed\xa0\x80surrogate",
	} {
		b := appendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Errorf("%q: invalid JSON %s: %v", s, b, err)
			continue
		}
		if want := perByteValid(s); got != want {
			t.Errorf("%q: decoded %q", s, got)
		}
		if bytes.ContainsAny(b, "\n\r") {
			t.Errorf("%q: raw newline in %s", s, b)
		}
		// Byte-identical to slog's JSON handler.
		var sb bytes.Buffer
		slog.New(slog.NewJSONHandler(&sb, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == "time" || a.Key == "level" || a.Key == "msg" {
				return slog.Attr{}
			}
			return a
		}})).Info("", "k", s)
		if want := `{"k":` + string(b) + "}\n"; sb.String() != want {
			t.Errorf("%q: slog writes %s, we %s", s, sb.String(), b)
		}
	}
}

// perByteValid replaces each invalid UTF-8 byte with U+FFFD, as
// encoding/json does.
func perByteValid(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r) // range yields U+FFFD per invalid byte
	}
	return b.String()
}

func TestJSONFloat(t *testing.T) {
	for _, f := range []float64{0, 0.001, 1.5, 12.345, 1e6, 123456.789, 1e-7, 1e21, 3e22, -2.5} {
		j, _ := json.Marshal(f)
		if got := appendJSONFloat(nil, f); string(got) != string(j) {
			t.Errorf("%v: got %s want %s", f, got, j)
		}
	}
}

// appendJSONMillis must write what encoding/json (slog) writes for
// float64(us)/1000: every value up to 2 s, a sweep across the range it
// formats itself, its edges, and the values it hands to appendJSONFloat.
func TestJSONMillis(t *testing.T) {
	check := func(us int64) {
		t.Helper()
		j, _ := json.Marshal(float64(us) / 1000)
		if got := appendJSONMillis([]byte("x"), us); string(got) != "x"+string(j) {
			t.Fatalf("%d µs: got %s want %s", us, got[1:], j)
		}
	}
	for us := int64(0); us <= 2_000_000; us++ {
		check(us)
	}
	const top = 1<<53/1000 - 1
	for us := int64(2_000_001); us < top; us += 999_983_777 { // a prime step: every last-digit pattern
		check(us)
	}
	for _, us := range []int64{top - 1, top, top + 1, 1 << 53, -1, -1500, math.MaxInt64, math.MinInt64} {
		check(us)
	}
}

func TestCallLogStaticFields(t *testing.T) {
	attrs := []slog.Attr{slog.String("s", "x\"y"), slog.Int("i", -3), slog.Bool("b", true), slog.Duration("d", time.Second),
		slog.Group("g", slog.String("a", "1"), slog.Int("n", 2)), slog.Any("m", map[string]int{"z": 1})}
	var sb bytes.Buffer
	slog.New(slog.NewJSONHandler(&sb, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == "time" {
			return slog.Attr{}
		}
		return a
	}})).LogAttrs(context.Background(), slog.LevelInfo, "m", attrs...)
	var prefix []byte
	for _, a := range attrs {
		prefix = appendJSONAttr(prefix, a)
	}
	if want := `{"level":"INFO","msg":"m"` + string(prefix) + "}\n"; sb.String() != want {
		t.Errorf("slog %s\n ours %s", sb.String(), want)
	}
}

func TestCallLogFlushOnClose(t *testing.T) {
	var out lockedBuffer
	l := newCallLog(&out, testFields, nil)
	ok, fault := testCalls()
	for i := 0; i < 100; i++ {
		l.log(ok, slog.LevelInfo, time.Now())
		l.log(fault, slog.LevelWarn, time.Now())
	}
	l.close()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 200 {
		t.Fatalf("%d lines after close, want 200", len(lines))
	}
	for _, ln := range lines {
		decodeOne(t, []byte(ln+"\n"))
	}
	// After close, lines go out synchronously.
	l.log(ok, slog.LevelInfo, time.Now())
	if n := strings.Count(out.String(), "\n"); n != 201 {
		t.Fatalf("%d lines after a late log, want 201", n)
	}
	l.close() // idempotent
}

func TestCallLogFlushesPeriodically(t *testing.T) {
	var out lockedBuffer
	l := newCallLog(&out, nil, nil)
	defer l.close()
	ok, _ := testCalls()
	waitLines := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for strings.Count(out.String(), "\n") < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d lines written without close, want %d", strings.Count(out.String(), "\n"), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	l.log(ok, slog.LevelInfo, time.Now())
	waitLines(1)
	// A line queued after the writer went idle is flushed too.
	time.Sleep(3 * callLogFlushEvery)
	l.log(ok, slog.LevelInfo, time.Now())
	waitLines(2)
}

// With nothing queued the writer sleeps: an idle node does not wake up
// every callLogFlushEvery to flush an empty queue.
func TestCallLogIdleWriterSleeps(t *testing.T) {
	var out lockedBuffer
	l := newCallLog(&out, nil, nil)
	defer l.close()
	ok, _ := testCalls()
	l.log(ok, slog.LevelInfo, time.Now())
	deadline := time.Now().Add(5 * time.Second)
	for out.String() == "" {
		if time.Now().After(deadline) {
			t.Fatal("line not flushed without close")
		}
		time.Sleep(5 * time.Millisecond)
	}
	before := l.flushes.Load()
	time.Sleep(12 * callLogFlushEvery)
	if n := l.flushes.Load() - before; n > 1 {
		t.Errorf("the idle writer flushed %d times in %v, want at most once", n, 12*callLogFlushEvery)
	}
}

// blockingWriter blocks every Write until release is closed.
type blockingWriter struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
	n       lockedBuffer
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.entered) })
	<-w.release
	return w.n.Write(p)
}

func TestCallLogDropsWhenWriterStuck(t *testing.T) {
	w := &blockingWriter{entered: make(chan struct{}), release: make(chan struct{})}
	var warn lockedBuffer
	l := newCallLog(w, testFields, slog.New(slog.NewJSONHandler(&warn, nil)))
	ok, _ := testCalls()
	line := appendCallLine(nil, l.prefix, ok, slog.LevelInfo, time.Now())
	// Fill past the flush size so the flusher takes a batch and blocks in Write.
	for i := 0; i*len(line) < 2*callLogFlushSize; i++ {
		l.log(ok, slog.LevelInfo, time.Now())
	}
	select {
	case <-w.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("flusher never wrote")
	}
	// Now the writer is stuck: the queue grows to the bound, then drops.
	total := 2*callLogMaxPending/len(line) + 10
	for i := 0; i < total; i++ {
		l.log(ok, slog.LevelInfo, time.Now())
	}
	if l.Dropped() == 0 {
		t.Fatal("no line dropped with a stuck writer")
	}
	l.mu.Lock()
	pending := len(l.buf)
	l.mu.Unlock()
	if pending > callLogMaxPending {
		t.Fatalf("pending %d exceeds the bound", pending)
	}
	close(w.release)
	l.close()
	if !strings.Contains(warn.String(), "call log lines dropped") {
		t.Errorf("no drop warning: %q", warn.String())
	}
	written := strings.Count(w.n.String(), "\n")
	if uint64(written)+l.Dropped() < uint64(total) {
		t.Errorf("written %d + dropped %d < logged %d", written, l.Dropped(), total)
	}
}

func TestCallLogConcurrent(t *testing.T) {
	var out lockedBuffer
	l := newCallLog(&out, testFields, nil)
	ok, fault := testCalls()
	var wg sync.WaitGroup
	const G, N = 8, 500
	for g := 0; g < G; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < N; i++ {
				if i%2 == 0 {
					l.log(ok, slog.LevelInfo, time.Now())
				} else {
					l.log(fault, slog.LevelWarn, time.Now())
				}
			}
		}()
	}
	wg.Wait()
	l.close()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != G*N {
		t.Fatalf("%d lines, want %d", len(lines), G*N)
	}
	for _, ln := range lines {
		decodeOne(t, []byte(ln+"\n"))
	}
}

// TestRouterCallLogWriter runs calls through the handler with CallLogWriter
// set: lines come out on the writer, honour the logger's level, and are all
// there once FlushCallLog returns.
func TestRouterCallLogWriter(t *testing.T) {
	for _, lvl := range []slog.Level{slog.LevelInfo, slog.LevelWarn} {
		var out lockedBuffer
		cfg := DefaultConfig()
		cfg.InstanceID = mtInstance
		cfg.HTTPSAddr = "127.0.0.1:0"
		cfg.HTTPAddr = "127.0.0.1:0"
		cfg.HTTPAllowList = IPAllowList{"127.0.0.1"}
		cfg.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert}
		cfg.Logger = slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: lvl}))
		cfg.CallLogWriter = &out
		cfg.CallLogFields = testFields
		r, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		r.SetCatalog(mtCatalog(t, "http://127.0.0.1:9"))
		// One fault (VP007, not authorized).
		if st := mtCall(r, mtRequest(mtOther, mtEnvelope(mtContract, mtAddress))); st != 500 {
			t.Fatalf("status %d", st)
		}
		r.FlushCallLog()
		m := decodeOne(t, []byte(out.String()))
		if m["level"] != "WARN" || m["error_code"] != "VP007" || m["node"] != "n1" || m["msg"] != "call" {
			t.Errorf("fault line %v", m)
		}
	}
}

// BenchmarkCallLog is the cost of one call line: slog's JSON handler
// versus the batched writer, both to io.Discard.
func BenchmarkCallLog(b *testing.B) {
	ok, _ := testCalls()
	b.Run("slog", func(b *testing.B) {
		r := &Router{cfg: Config{LogCalls: true, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)).
			With("node", "n1", "platform", "pf").With("subsystem", "router")}}
		b.ReportAllocs()
		for b.Loop() {
			r.logCall(ok)
		}
	})
	b.Run("writer", func(b *testing.B) {
		r := &Router{cfg: Config{LogCalls: true, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))}}
		r.calls = newCallLog(io.Discard, testFields, nil)
		defer r.calls.close()
		b.ReportAllocs()
		for b.Loop() {
			r.logCall(ok)
		}
	})
	// To /dev/null: adds the write(2) per line that slog makes and the
	// batched writer amortizes.
	b.Run("slog-devnull", func(b *testing.B) {
		f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			b.Skip(err)
		}
		defer f.Close()
		r := &Router{cfg: Config{LogCalls: true, Logger: slog.New(slog.NewJSONHandler(f, nil)).
			With("node", "n1", "platform", "pf").With("subsystem", "router")}}
		b.ReportAllocs()
		for b.Loop() {
			r.logCall(ok)
		}
	})
	b.Run("writer-devnull", func(b *testing.B) {
		f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			b.Skip(err)
		}
		defer f.Close()
		r := &Router{cfg: Config{LogCalls: true, Logger: slog.New(slog.NewJSONHandler(f, nil))}}
		r.calls = newCallLog(f, testFields, nil)
		defer r.calls.close()
		b.ReportAllocs()
		for b.Loop() {
			r.logCall(ok)
		}
	})
	b.Run("writer-parallel", func(b *testing.B) {
		r := &Router{cfg: Config{LogCalls: true, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))}}
		r.calls = newCallLog(io.Discard, testFields, nil)
		defer r.calls.close()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				r.logCall(ok)
			}
		})
	})
}

// BenchmarkHandleOKLogged is BenchmarkHandleOK with call logging on:
// through slog (before) and through CallLogWriter (after), to io.Discard.
func BenchmarkHandleOKLogged(b *testing.B) {
	url := mtProducerServer(b)
	for _, fast := range []bool{false, true} {
		name := "log=slog"
		if fast {
			name = "log=writer"
		}
		b.Run(name, func(b *testing.B) {
			r := mtRouter(b, mtCatalog(b, url))
			r.cfg.LogCalls = true
			r.cfg.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil)).With("node", "n1", "platform", "pf").With("subsystem", "router")
			if fast {
				r.calls = newCallLog(io.Discard, testFields, nil)
				defer r.calls.close()
			}
			ctx := mtRequest(mtConsumer, mtEnvelope(mtContract, mtAddress))
			if st := mtCall(r, ctx); st != 200 {
				b.Fatalf("status %d: %s", st, ctx.Response.Body())
			}
			b.ReportAllocs()
			for b.Loop() {
				mtCall(r, ctx)
			}
		})
	}
}

// BenchmarkCallLine is the encoding alone, into a reused buffer.
func BenchmarkCallLine(b *testing.B) {
	ok, _ := testCalls()
	var prefix []byte
	for _, a := range testFields {
		prefix = appendJSONAttr(prefix, a)
	}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendCallLine(buf[:0], prefix, ok, slog.LevelInfo, time.Now())
	}
	b.SetBytes(int64(len(buf)))
}
