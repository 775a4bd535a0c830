// Command loadgen is the load generator of scripts/bench: it POSTs one fixed
// request file over N keep-alive connections, plain HTTP or HTTPS with a
// client certificate (which wrk and hey cannot present), and prints one JSON
// object with throughput, latency percentiles and error counts.
//
// Two modes:
//
//	-rate 0      closed loop: every connection sends its next request as soon
//	             as the previous answer is read, for -d (maximum throughput).
//	-rate R      open loop at R calls/s (wrk2's model): call k is due at
//	             t0 + k/R and goes on connection k mod N; its latency is
//	             measured from when it was due, not from when it was sent, so
//	             a stall delays and counts every call behind it (no
//	             coordinated omission). The wait uses nanosleep with a 1 µs
//	             timer slack, not Go's timers, which wake at millisecond
//	             granularity on an idle process; how late sends still were is
//	             reported as send_lag_us, and the part of it the generator
//	             itself added (not waiting for a slow answer on the same
//	             connection) as gen_lag_us: only that part is noise.
//
// Each connection is owned by one goroutine (a fasthttp HostClient with
// MaxConns 1, or a net/http Transport with one connection), so -c is exactly
// the number of TCP connections. Everything is bounded: -d plus -warmup, a
// per-call -timeout, and -n (a cap on calls).
//
// -pids samples /proc/PID/stat (utime+stime) of other processes at the
// start and end of the measured window, so CPU time per call of a proxy is
// taken over exactly the calls counted (nginx: list master and workers).
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

type options struct {
	url, body, contentType, soapAction string
	cert, key, ca, serverName          string
	conns                              int
	dur, warmup, timeout               time.Duration
	rate                               float64
	maxCalls                           int64
	client                             string
	expectBytes                        int
	pids                               string
	label, target                      string
	round                              int
	sleep                              string
	spin                               time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.url, "url", "", "target URL, http:// or https:// (required)")
	flag.StringVar(&o.body, "body", "", "file with the request body to POST (required)")
	flag.StringVar(&o.contentType, "content-type", "text/xml;charset=UTF-8", "Content-Type of the request")
	flag.StringVar(&o.soapAction, "soapaction", "", "SOAPAction header (empty: none)")
	flag.StringVar(&o.cert, "cert", "", "client certificate (PEM) for https")
	flag.StringVar(&o.key, "key", "", "client key (PEM) for https")
	flag.StringVar(&o.ca, "ca", "", "CA (PEM) that the server certificate is verified against")
	flag.StringVar(&o.serverName, "servername", "", "TLS server name (default: the URL's host)")
	flag.IntVar(&o.conns, "c", 64, "keep-alive connections (one goroutine each)")
	flag.DurationVar(&o.dur, "d", 10*time.Second, "measured duration")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "load before the measured window (not counted)")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Second, "per-call timeout (write + read)")
	flag.Float64Var(&o.rate, "rate", 0, "calls per second, open loop; 0 = closed loop, maximum throughput")
	flag.Int64Var(&o.maxCalls, "n", 50_000_000, "stop after this many calls (bound)")
	flag.StringVar(&o.client, "client", "fasthttp", "client implementation: fasthttp or nethttp")
	flag.IntVar(&o.expectBytes, "expect-bytes", 0, "count answers whose body is not this long as bad_body (0: no check)")
	flag.StringVar(&o.pids, "pids", "", "comma-separated PIDs whose CPU time is sampled over the measured window")
	flag.StringVar(&o.label, "label", "", "free text copied into the output")
	flag.StringVar(&o.target, "target", "", "name of the system under test, copied into the output (summarize groups by it)")
	flag.StringVar(&o.sleep, "sleep", "nanosleep", "open loop: how to wait for a call's due time: nanosleep (1 µs timer slack) or go (time.Sleep, millisecond wake-ups on an idle process)")
	flag.DurationVar(&o.spin, "spin", 0, "open loop: wake this much before a call's due time and spin to it (trades generator CPU for send precision)")
	flag.IntVar(&o.round, "round", 0, "round number, copied into the output (summarize pairs targets by it)")
	if len(os.Args) > 1 && os.Args[1] == "summarize" {
		if err := summarize(os.Args[2:], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen summarize:", err)
			os.Exit(1)
		}
		return
	}
	flag.Parse()
	res, err := run(&o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// Result is what loadgen prints.
type Result struct {
	Target       string       `json:"target,omitempty"`
	Round        int          `json:"round,omitempty"`
	Label        string       `json:"label,omitempty"`
	URL          string       `json:"url"`
	Mode         string       `json:"mode"` // "max" or "rate"
	Client       string       `json:"client"`
	Conns        int          `json:"conns"`
	TargetRate   float64      `json:"target_rate,omitempty"`
	DurationS    float64      `json:"duration_s"`
	Calls        int64        `json:"calls"` // completed in the window, any outcome
	OK           int64        `json:"ok"`    // HTTP 200 with the expected body size
	RPS          float64      `json:"rps"`   // completed calls per second in the window
	Errors       int64        `json:"errors"`
	ErrorSamples []string     `json:"error_samples,omitempty"`
	Non200       int64        `json:"non200"`
	BadBody      int64        `json:"bad_body"`
	Latency      Percentiles  `json:"latency_us"`
	SendLag      *Percentiles `json:"send_lag_us,omitempty"`
	// GenLag is the part of SendLag the generator itself added: how late a
	// call was sent after it was due or after the previous answer on its
	// connection came back, whichever was later. SendLag minus GenLag is
	// the server's own doing (a slow answer holds up the next call on
	// its connection), which is not noise.
	GenLag        *Percentiles `json:"gen_lag_us,omitempty"`
	GenCPUPerCall float64      `json:"gen_cpu_us_per_call"` // this process, user+sys
	GenCPUUtil    float64      `json:"gen_cpu_cores"`
	PIDs          []int        `json:"pids,omitempty"`
	PIDCPUPerCall float64      `json:"pid_cpu_us_per_call,omitempty"`
	PIDCPUUtil    float64      `json:"pid_cpu_cores,omitempty"`
	// PIDReadsPerCall and PIDWritesPerCall are the read and write system
	// calls of the PIDs per call over the measured window.
	PIDReadsPerCall  float64 `json:"pid_reads_per_call,omitempty"`
	PIDWritesPerCall float64 `json:"pid_writes_per_call,omitempty"`
	Unfinished       int64   `json:"unfinished,omitempty"` // rate mode: due in the window but not sent (the bound hit)
}

// Percentiles are in microseconds.
type Percentiles struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
	N    int64   `json:"n"`
}

// caller makes one call on its own connection.
type caller interface {
	call() (status int, bodyLen int, err error)
	close()
}

func run(o *options) (*Result, error) {
	if o.url == "" || o.body == "" {
		return nil, errors.New("-url and -body are required")
	}
	if o.conns < 1 || o.conns > 10000 {
		return nil, fmt.Errorf("-c %d: want 1..10000", o.conns)
	}
	if o.dur <= 0 || o.dur > time.Hour || o.warmup < 0 || o.warmup > 10*time.Minute {
		return nil, errors.New("-d must be in (0, 1h] and -warmup in [0, 10m]")
	}
	if o.rate < 0 || o.rate > 1e6 {
		return nil, errors.New("-rate must be in [0, 1e6]")
	}
	body, err := os.ReadFile(o.body)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(o.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("-url %q: want http(s)://host:port/path", o.url)
	}
	var tc *tls.Config
	if u.Scheme == "https" {
		if tc, err = clientTLS(o, u); err != nil {
			return nil, err
		}
	}
	pids, err := parsePIDs(o.pids)
	if err != nil {
		return nil, err
	}
	callers := make([]caller, o.conns)
	for i := range callers {
		switch o.client {
		case "fasthttp":
			callers[i] = newFastCaller(o, u, tc, body)
		case "nethttp":
			callers[i] = newNetCaller(o, u, tc, body)
		default:
			return nil, fmt.Errorf("-client %q: want fasthttp or nethttp", o.client)
		}
	}
	defer func() {
		for _, c := range callers {
			c.close()
		}
	}()
	// Open every connection (and TLS session) before the clock starts.
	for i, c := range callers {
		if _, _, err := c.call(); err != nil {
			return nil, fmt.Errorf("connection %d: first call: %w", i, err)
		}
	}

	w := &window{}
	workers := make([]*worker, o.conns)
	var wg sync.WaitGroup
	start := time.Now()
	w.begin = start.Add(o.warmup)
	w.end = w.begin.Add(o.dur)
	hardStop := w.end.Add(o.timeout + 2*time.Second)
	var budget atomic.Int64
	budget.Store(o.maxCalls)

	// Sample CPU at the window's edges from a separate goroutine.
	cpuDone := make(chan cpuSample, 1)
	go func() {
		time.Sleep(time.Until(w.begin))
		a := sampleCPU(pids)
		time.Sleep(time.Until(w.end))
		b := sampleCPU(pids)
		cpuDone <- b.minus(a)
	}()

	for i := range workers {
		wk := &worker{id: i, c: callers[i], w: w, o: o, budget: &budget, hardStop: hardStop}
		workers[i] = wk
		wg.Add(1)
		go func() {
			defer wg.Done()
			if o.rate > 0 {
				wk.runRate(start)
			} else {
				wk.runMax()
			}
		}()
	}
	wg.Wait()
	cpu := <-cpuDone

	res := &Result{Target: o.target, Round: o.round, Label: o.label, URL: o.url, Client: o.client, Conns: o.conns, DurationS: o.dur.Seconds(), PIDs: pids}
	var lat, lag, glag hist
	var samples []string
	for _, wk := range workers {
		lat.merge(&wk.lat)
		lag.merge(&wk.lag)
		glag.merge(&wk.glag)
		res.Calls += wk.calls
		res.OK += wk.ok
		res.Errors += wk.errors
		res.Non200 += wk.non200
		res.BadBody += wk.badBody
		res.Unfinished += wk.unfinished
		if wk.errSample != "" && len(samples) < 5 {
			samples = append(samples, wk.errSample)
		}
	}
	res.ErrorSamples = samples
	res.RPS = float64(res.Calls) / o.dur.Seconds()
	res.Latency = lat.percentiles()
	if o.rate > 0 {
		res.Mode, res.TargetRate = "rate", o.rate
		p, g := lag.percentiles(), glag.percentiles()
		res.SendLag, res.GenLag = &p, &g
	} else {
		res.Mode = "max"
	}
	if res.Calls > 0 {
		res.GenCPUPerCall = round2(cpu.self.Seconds() * 1e6 / float64(res.Calls))
		if len(pids) > 0 {
			res.PIDCPUPerCall = round2(cpu.pids.Seconds() * 1e6 / float64(res.Calls))
			res.PIDReadsPerCall = round2(float64(cpu.reads) / float64(res.Calls))
			res.PIDWritesPerCall = round2(float64(cpu.writes) / float64(res.Calls))
		}
	}
	res.GenCPUUtil = round2(cpu.self.Seconds() / cpu.wall.Seconds())
	if len(pids) > 0 {
		res.PIDCPUUtil = round2(cpu.pids.Seconds() / cpu.wall.Seconds())
	}
	res.RPS = round2(res.RPS)
	return res, nil
}

type window struct{ begin, end time.Time }

type worker struct {
	id         int
	c          caller
	w          *window
	o          *options
	budget     *atomic.Int64
	hardStop   time.Time
	lat, lag   hist
	glag       hist // lag the generator added (see Result.GenLag)
	calls, ok  int64
	errors     int64
	non200     int64
	badBody    int64
	unfinished int64
	errSample  string
}

func (wk *worker) record(due, ready, sent, done time.Time, status, n int, err error) {
	if due.Before(wk.w.begin) || !done.Before(wk.w.end) && wk.o.rate == 0 {
		return // warm-up, or (closed loop) finished after the window
	}
	if wk.o.rate > 0 && !due.Before(wk.w.end) {
		return
	}
	wk.calls++
	wk.lat.add(done.Sub(due))
	if wk.o.rate > 0 {
		wk.lag.add(sent.Sub(due))
		wk.glag.add(sent.Sub(ready))
	}
	switch {
	case err != nil:
		wk.errors++
		if wk.errSample == "" {
			wk.errSample = err.Error()
		}
	case status != 200:
		wk.non200++
	case wk.o.expectBytes > 0 && n != wk.o.expectBytes:
		wk.badBody++
	default:
		wk.ok++
	}
}

// runMax is the closed loop: send, read, repeat until the window ends.
func (wk *worker) runMax() {
	for {
		now := time.Now()
		if !now.Before(wk.w.end) || wk.budget.Add(-1) < 0 {
			return
		}
		st, n, err := wk.c.call()
		done := time.Now()
		wk.record(now, now, now, done, st, n, err)
		if err != nil && isFatal(err) {
			time.Sleep(10 * time.Millisecond) // do not spin on a dead server
		}
	}
}

// runRate sends calls id, id+N, id+2N, … each at its due time.
func (wk *worker) runRate(t0 time.Time) {
	interval := float64(time.Second) / wk.o.rate
	n := int64(wk.o.conns)
	total := wk.w.end.Sub(t0)
	var prevDone time.Time // when the previous answer on this connection came
	for k := int64(wk.id); ; k += n {
		off := time.Duration(float64(k) * interval)
		if off >= total {
			return
		}
		due := t0.Add(off)
		if time.Now().After(wk.hardStop) || wk.budget.Add(-1) < 0 {
			if due.After(wk.w.begin) {
				wk.unfinished++
			}
			continue
		}
		if wk.o.sleep == "go" {
			time.Sleep(time.Until(due.Add(-wk.o.spin)))
		} else {
			sleepUntil(due.Add(-wk.o.spin))
		}
		for wk.o.spin > 0 && time.Now().Before(due) {
		}
		sent := time.Now()
		st, nb, err := wk.c.call()
		done := time.Now()
		ready := due
		if prevDone.After(ready) {
			ready = prevDone
		}
		wk.record(due, ready, sent, done, st, nb, err)
		prevDone = done
	}
}

// sleepUntil blocks the thread in nanosleep with a 1 µs timer slack: Go's
// timers sleep at least a millisecond when the process is otherwise idle
// (netpoll's epoll_wait timeout), which would add up to 1 ms to open-loop
// latencies.
func sleepUntil(t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	const prSetTimerslack = 29
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetTimerslack, 1000, 0)
	ts := syscall.NsecToTimespec(int64(d))
	for {
		var rem syscall.Timespec
		err := syscall.Nanosleep(&ts, &rem)
		if err != syscall.EINTR {
			return
		}
		ts = rem
	}
}

func isFatal(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) || errors.Is(err, fasthttp.ErrConnectionClosed)
}

func clientTLS(o *options, u *url.URL) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.serverName}
	if tc.ServerName == "" {
		tc.ServerName = u.Hostname()
	}
	if o.cert != "" || o.key != "" {
		kp, err := tls.LoadX509KeyPair(o.cert, o.key)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{kp}
	}
	if o.ca != "" {
		b, err := os.ReadFile(o.ca)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("%s: no PEM certificate", o.ca)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// fastCaller: a fasthttp HostClient limited to one connection, and a request
// built once and re-sent.
type fastCaller struct {
	hc   *fasthttp.HostClient
	req  *fasthttp.Request
	resp *fasthttp.Response
}

func newFastCaller(o *options, u *url.URL, tc *tls.Config, body []byte) *fastCaller {
	host := u.Host
	if u.Port() == "" {
		if u.Scheme == "https" {
			host += ":443"
		} else {
			host += ":80"
		}
	}
	hc := &fasthttp.HostClient{
		Addr:                          host,
		IsTLS:                         u.Scheme == "https",
		TLSConfig:                     tc,
		MaxConns:                      1,
		MaxIdleConnDuration:           time.Hour,
		ReadTimeout:                   o.timeout,
		WriteTimeout:                  o.timeout,
		NoDefaultUserAgentHeader:      true,
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
		MaxIdemponentCallAttempts:     1,
		MaxConnWaitTimeout:            o.timeout,
	}
	req := &fasthttp.Request{}
	req.SetRequestURI(u.String())
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType(o.contentType)
	if o.soapAction != "" {
		req.Header.Set("SOAPAction", o.soapAction)
	}
	req.SetBodyRaw(body)
	return &fastCaller{hc: hc, req: req, resp: &fasthttp.Response{}}
}

func (f *fastCaller) call() (int, int, error) {
	f.resp.Reset()
	err := f.hc.Do(f.req, f.resp)
	if err != nil {
		return 0, 0, err
	}
	return f.resp.StatusCode(), len(f.resp.Body()), nil
}

func (f *fastCaller) close() { f.hc.CloseIdleConnections() }

// netCaller: a net/http Transport with one connection.
type netCaller struct {
	cl   *http.Client
	tr   *http.Transport
	url  string
	body []byte
	hdr  http.Header
	buf  bytes.Buffer
}

func newNetCaller(o *options, u *url.URL, tc *tls.Config, body []byte) *netCaller {
	tr := &http.Transport{
		TLSClientConfig:     tc,
		MaxConnsPerHost:     1,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     time.Hour,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	h := http.Header{"Content-Type": {o.contentType}}
	if o.soapAction != "" {
		h["SOAPAction"] = []string{o.soapAction}
	}
	return &netCaller{cl: &http.Client{Transport: tr, Timeout: o.timeout}, tr: tr, url: u.String(), body: body, hdr: h}
}

func (c *netCaller) call() (int, int, error) {
	req, err := http.NewRequest(http.MethodPost, c.url, bytes.NewReader(c.body))
	if err != nil {
		return 0, 0, err
	}
	req.Header = c.hdr
	resp, err := c.cl.Do(req)
	if err != nil {
		return 0, 0, err
	}
	c.buf.Reset()
	_, err = c.buf.ReadFrom(io.LimitReader(resp.Body, 64<<20))
	resp.Body.Close()
	return resp.StatusCode, c.buf.Len(), err
}

func (c *netCaller) close() { c.tr.CloseIdleConnections() }

// hist is a log-linear histogram of durations in nanoseconds (HDR-like): exact
// below 256 ns, then 128 buckets per power of two (relative error < 0.8 %).
const (
	subBits  = 8
	subCount = 1 << subBits
	half     = subCount / 2
	nBuckets = subCount + (64-subBits)*half
)

type hist struct {
	b        [nBuckets]uint64
	n        int64
	sum, max uint64
}

func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	e := bits.Len64(v) - subBits
	return subCount + (e-1)*half + int(v>>uint(e)) - half
}

// valueOf is the midpoint of bucket i.
func valueOf(i int) float64 {
	if i < subCount {
		return float64(i)
	}
	e := (i-subCount)/half + 1
	m := uint64((i-subCount)%half + half)
	lo := m << uint(e)
	return float64(lo) + float64(uint64(1)<<uint(e))/2
}

func (h *hist) add(d time.Duration) {
	v := uint64(0)
	if d > 0 {
		v = uint64(d)
	}
	h.b[bucketOf(v)]++
	h.n++
	h.sum += v
	if v > h.max {
		h.max = v
	}
}

func (h *hist) merge(o *hist) {
	for i, c := range o.b {
		h.b[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	if o.max > h.max {
		h.max = o.max
	}
}

func (h *hist) quantile(q float64) float64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.b {
		seen += c
		if seen >= rank {
			return math.Min(valueOf(i), float64(h.max))
		}
	}
	return float64(h.max)
}

func (h *hist) percentiles() Percentiles {
	us := func(ns float64) float64 { return math.Round(ns/10) / 100 }
	p := Percentiles{N: h.n, Max: us(float64(h.max))}
	if h.n == 0 {
		return p
	}
	p.P50, p.P90, p.P99, p.P999 = us(h.quantile(0.5)), us(h.quantile(0.9)), us(h.quantile(0.99)), us(h.quantile(0.999))
	p.Mean = us(float64(h.sum) / float64(h.n))
	return p
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }

// CPU accounting: this process from getrusage, others from /proc/PID/stat.
type cpuSample struct {
	wall, self, pids time.Duration
	at               time.Time
	// reads and writes are the read and write system calls of the
	// processes (/proc/PID/io syscr, syscw; readable by their owner or
	// root): a proxy's CPU per call is mostly system calls.
	reads, writes int64
}

func (b cpuSample) minus(a cpuSample) cpuSample {
	return cpuSample{wall: b.at.Sub(a.at), self: b.self - a.self, pids: b.pids - a.pids, reads: b.reads - a.reads, writes: b.writes - a.writes}
}

var clkTck = 100.0 // USER_HZ; 100 on every Linux architecture Go supports here

func sampleCPU(pids []int) cpuSample {
	s := cpuSample{at: time.Now()}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	for _, p := range pids {
		s.pids += procCPU(p)
		r, w := procSyscalls(p)
		s.reads += r
		s.writes += w
	}
	return s
}

// procSyscalls returns the read and write system calls of a process so
// far (0, 0 when /proc/PID/io cannot be read).
func procSyscalls(pid int) (reads, writes int64) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/io")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		switch k {
		case "syscr":
			reads = n
		case "syscw":
			writes = n
		}
	}
	return reads, writes
}

// procCPU is utime+stime of a process (all its threads) from /proc/PID/stat.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may contain spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return time.Duration((ut + st) / clkTck * float64(time.Second))
}

func parsePIDs(s string) ([]int, error) {
	var out []int
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("-pids: %q is not a PID", p)
		}
		if _, err := os.Stat("/proc/" + p + "/stat"); err != nil {
			return nil, fmt.Errorf("-pids: process %d: %w", n, err)
		}
		out = append(out, n)
	}
	sort.Ints(out)
	return out, nil
}
