// Command benchchain summarizes the runs of scripts/bench-chain: the loadgen
// results (one JSON line per run, fixed-rate open loop) of the direct call,
// a chain of three nginx proxies, a chain of three bare fasthttp proxies
// (scripts/bareproxy) and a chain of three federated vaxel platforms, in
// interleaved rounds. It prints every run, the medians over
// rounds, the added p50 per hop ((chain p50 − direct p50) / hops, per round,
// then the median) and the vaxel-chain / nginx-chain p99 ratio (per round,
// then the median), with verdicts against issue 3's speed goal. A second
// vaxel chain, "vaxel-b-chain" (bench-chain's VAXEL_B: another build or
// other router settings), is summarized beside the first, with the ratios
// of the two per round; the verdicts are the first chain's:
//
//	p50 ≤ 0.3 ms added per hop; p99 no worse than three chained nginx proxies.
//
// It is separate from `loadgen summarize` because that one pairs one proxy
// with one proxy; here the unit is the hop, and the comparison is chain to
// chain.
//
// It exits 1 when a run had errors, wrong answers or unsent calls, after
// printing, so that a broken run cannot pass for a result.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"

	"github.com/vaxel/vaxel/scripts/benchstat"
)

// The variants, as scripts/bench-chain names them with loadgen -target.
const (
	direct     = "direct"
	nginxChain = "nginx-chain"
	bareChain  = "bare-chain"
	vaxelChain = "vaxel-chain"
	vaxelB     = "vaxel-b-chain"
)

var variants = []string{direct, nginxChain, bareChain, vaxelChain, vaxelB}

// result is the part of loadgen's output that is used here (see
// scripts/loadgen/main.go, Result).
type result struct {
	Target     string   `json:"target"`
	Round      int      `json:"round"`
	Mode       string   `json:"mode"`
	TargetRate float64  `json:"target_rate"`
	Calls      int64    `json:"calls"`
	RPS        float64  `json:"rps"`
	Errors     int64    `json:"errors"`
	ErrSamples []string `json:"error_samples"`
	Non200     int64    `json:"non200"`
	BadBody    int64    `json:"bad_body"`
	Unfinished int64    `json:"unfinished"`
	Latency    struct {
		P50 float64 `json:"p50"`
		P90 float64 `json:"p90"`
		P99 float64 `json:"p99"`
		Max float64 `json:"max"`
	} `json:"latency_us"`
	SendLag *struct {
		P99 float64 `json:"p99"`
	} `json:"send_lag_us"`
	// GenLag is the lag the generator itself added (loadgen's gen_lag_us);
	// absent in results of an older loadgen.
	GenLag *struct {
		P99 float64 `json:"p99"`
	} `json:"gen_lag_us"`
	CPUPerCall float64 `json:"pid_cpu_us_per_call"`
}

func (r *result) bad() int64 { return r.Errors + r.Non200 + r.BadBody + r.Unfinished }

// ownLagP99 is the p99 of the lag the generator itself added to sends, or,
// for results without it, the whole send lag (which also holds the waits
// for a slow answer on the same connection, the server's doing).
func (r *result) ownLagP99() (float64, bool) {
	switch {
	case r.GenLag != nil:
		return r.GenLag.P99, true
	case r.SendLag != nil:
		return r.SendLag.P99, true
	}
	return 0, false
}

// Stat is the median and range of one figure over rounds.
type Stat = benchstat.Stat

func stat(v []float64) Stat { return benchstat.Of(v, 3) }

// Figures of one variant over rounds.
type Figures struct {
	P50        Stat  `json:"p50_us"`
	P90        Stat  `json:"p90_us"`
	P99        Stat  `json:"p99_us"`
	Max        Stat  `json:"max_us"`
	LagP99     Stat  `json:"send_lag_p99_us"`
	CPUPerCall Stat  `json:"server_cpu_us_per_call"`
	RPS        Stat  `json:"rps"`
	AddedP50   *Stat `json:"added_p50_per_hop_us,omitempty"` // (chain − direct) / hops, same round
	AddedP99   *Stat `json:"added_p99_per_hop_us,omitempty"`
	Calls      int64 `json:"calls"`
	Bad        int64 `json:"errors_wrong_or_unsent"`
}

// Goal is one part of the speed goal with its verdict.
type Goal struct {
	Name    string  `json:"name"`
	Value   float64 `json:"value"`
	Limit   float64 `json:"limit"`
	Verdict string  `json:"verdict"` // met, MISSED, or not decidable
	Detail  string  `json:"detail"`
}

// Summary is written as JSON with -out.
type Summary struct {
	Rounds   int                 `json:"rounds"`
	Hops     int                 `json:"hops"`
	Rate     float64             `json:"rate"`
	Variants map[string]*Figures `json:"variants"`
	Ratios   map[string]Stat     `json:"ratios"`
	Goals    []Goal              `json:"goals"`

	runs map[string]map[int]*result // variant → round → run
}

func runsOf(s *Summary, variant string) map[int]*result { return s.runs[variant] }

func main() {
	in := flag.String("in", "", "results.jsonl written by scripts/bench-chain (required)")
	out := flag.String("out", "", "also write the summary as JSON here")
	hops := flag.Int("hops", 3, "proxies in each chain")
	hopGoal := flag.Float64("p50-per-hop-us", 300, "goal: added p50 per hop at most this (µs)")
	flag.Parse()
	s, bad, err := run(*in, *hops, *hopGoal, os.Stdout)
	if err == nil && *out != "" {
		var b []byte
		if b, err = json.MarshalIndent(s, "", "  "); err == nil {
			err = os.WriteFile(*out, append(b, '\n'), 0o644)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchchain:", err)
		os.Exit(1)
	}
	if bad > 0 {
		fmt.Fprintf(os.Stderr, "benchchain: %d call(s) failed, answered wrongly or were not sent; the figures above are not valid\n", bad)
		os.Exit(1)
	}
}

func run(in string, hops int, hopGoal float64, w io.Writer) (*Summary, int64, error) {
	if in == "" {
		return nil, 0, errors.New("-in is required")
	}
	if hops < 1 {
		return nil, 0, errors.New("-hops must be at least 1")
	}
	f, err := os.Open(in)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	runs := map[string]map[int]*result{} // variant → round → run
	rounds := map[int]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		r := &result{}
		if err := json.Unmarshal([]byte(line), r); err != nil {
			return nil, 0, fmt.Errorf("%s: %w", in, err)
		}
		if r.Mode != "rate" {
			return nil, 0, fmt.Errorf("%s: a %q run of %s; this summary is of fixed-rate runs only", in, r.Mode, r.Target)
		}
		if runs[r.Target] == nil {
			runs[r.Target] = map[int]*result{}
		}
		runs[r.Target][r.Round] = r
		rounds[r.Round] = true
	}
	if err := sc.Err(); err != nil {
		return nil, 0, err
	}
	var roundList []int
	for r := range rounds {
		roundList = append(roundList, r)
	}
	sort.Ints(roundList)
	if len(roundList) == 0 {
		return nil, 0, fmt.Errorf("%s holds no runs", in)
	}

	s := &Summary{Rounds: len(roundList), Hops: hops, Variants: map[string]*Figures{}, Ratios: map[string]Stat{}, runs: runs}
	var bad int64
	fmt.Fprintf(w, "\nEvery run (open loop; latency in µs from each call's scheduled send time)\n\n")
	fmt.Fprintf(w, "| round | variant | calls/s | p50 | p90 | p99 | max | send lag p99 | server CPU µs/call | errors / wrong / unsent |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, rd := range roundList {
		for _, v := range variants {
			r, ok := runs[v][rd]
			if !ok {
				continue
			}
			if s.Rate == 0 {
				s.Rate = r.TargetRate
			}
			lag := "–"
			if r.SendLag != nil {
				lag = fmt.Sprintf("%.0f", r.SendLag.P99)
			}
			fmt.Fprintf(w, "| %d | %s | %.0f | %.0f | %.0f | %.0f | %.0f | %s | %.1f | %d / %d / %d |\n", rd, v, r.RPS, r.Latency.P50, r.Latency.P90,
				r.Latency.P99, r.Latency.Max, lag, r.CPUPerCall, r.Errors, r.Non200+r.BadBody, r.Unfinished)
			bad += r.bad()
			for _, e := range r.ErrSamples {
				fmt.Fprintf(w, "|   | error sample: %s |\n", e)
			}
		}
	}

	for _, v := range variants {
		byRound := runs[v]
		if len(byRound) == 0 {
			continue
		}
		var p50, p90, p99, mx, lag, cpu, rps, a50, a99 []float64
		fg := &Figures{}
		for _, rd := range roundList {
			r, ok := byRound[rd]
			if !ok {
				continue
			}
			p50, p90, p99, mx = append(p50, r.Latency.P50), append(p90, r.Latency.P90), append(p99, r.Latency.P99), append(mx, r.Latency.Max)
			cpu, rps = append(cpu, r.CPUPerCall), append(rps, r.RPS)
			if r.SendLag != nil {
				lag = append(lag, r.SendLag.P99)
			}
			// Per round: the direct call measured minutes apart would
			// carry the machine's drift into the difference.
			if d, ok := runs[direct][rd]; ok && v != direct {
				a50 = append(a50, round((r.Latency.P50-d.Latency.P50)/float64(hops), 1))
				a99 = append(a99, round((r.Latency.P99-d.Latency.P99)/float64(hops), 1))
			}
			fg.Calls += r.Calls
			fg.Bad += r.bad()
		}
		fg.P50, fg.P90, fg.P99, fg.Max, fg.LagP99, fg.CPUPerCall, fg.RPS = stat(p50), stat(p90), stat(p99), stat(mx), stat(lag), stat(cpu), stat(rps)
		if len(a50) > 0 {
			s50, s99 := stat(a50), stat(a99)
			fg.AddedP50, fg.AddedP99 = &s50, &s99
		}
		s.Variants[v] = fg
	}

	var ratioOrder []string // as computed, which is the order printed
	ratio := func(name, num, den string, get func(*result) float64) {
		ratioOrder = append(ratioOrder, name)
		var v []float64
		for _, rd := range roundList {
			a, ok1 := runs[num][rd]
			b, ok2 := runs[den][rd]
			if ok1 && ok2 && get(b) != 0 {
				v = append(v, round(get(a)/get(b), 3))
			}
		}
		if len(v) > 0 {
			s.Ratios[name] = stat(v)
		}
	}
	ratio("p99_vaxel_chain_over_nginx_chain", vaxelChain, nginxChain, func(r *result) float64 { return r.Latency.P99 })
	ratio("p50_vaxel_chain_over_nginx_chain", vaxelChain, nginxChain, func(r *result) float64 { return r.Latency.P50 })
	ratio("cpu_per_call_vaxel_chain_over_nginx_chain", vaxelChain, nginxChain, func(r *result) float64 { return r.CPUPerCall })
	// The bare chain apart: what fasthttp and Go's runtime cost against
	// nginx, and what vaxel adds on top of them.
	ratio("p99_bare_chain_over_nginx_chain", bareChain, nginxChain, func(r *result) float64 { return r.Latency.P99 })
	ratio("p99_vaxel_chain_over_bare_chain", vaxelChain, bareChain, func(r *result) float64 { return r.Latency.P99 })
	ratio("cpu_per_call_bare_chain_over_nginx_chain", bareChain, nginxChain, func(r *result) float64 { return r.CPUPerCall })
	// A change against the code (or settings) before it, when both ran.
	ratio("p99_vaxel_chain_over_vaxel_b_chain", vaxelChain, vaxelB, func(r *result) float64 { return r.Latency.P99 })
	ratio("p50_vaxel_chain_over_vaxel_b_chain", vaxelChain, vaxelB, func(r *result) float64 { return r.Latency.P50 })
	ratio("cpu_per_call_vaxel_chain_over_vaxel_b_chain", vaxelChain, vaxelB, func(r *result) float64 { return r.CPUPerCall })
	ratio("p99_vaxel_b_chain_over_nginx_chain", vaxelB, nginxChain, func(r *result) float64 { return r.Latency.P99 })

	fmt.Fprintf(w, "\nMedians of %d round(s) at %.0f calls/s; (min–max) over rounds; \"per hop\" = (chain − direct) / %d, same round\n\n", s.Rounds, s.Rate, hops)
	fmt.Fprintf(w, "| variant | p50 µs | p90 µs | p99 µs | max µs | added p50 per hop µs | added p99 per hop µs | server CPU µs/call | send lag p99 µs |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, v := range variants {
		fg := s.Variants[v]
		if fg == nil {
			continue
		}
		a50, a99 := "–", "–"
		if fg.AddedP50 != nil {
			a50, a99 = fg.AddedP50.Format("%.0f"), fg.AddedP99.Format("%.0f")
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", v, fg.P50.Format("%.0f"), fg.P90.Format("%.0f"), fg.P99.Format("%.0f"),
			fg.Max.Format("%.0f"), a50, a99, fg.CPUPerCall.Format("%.1f"), fg.LagP99.Format("%.0f"))
	}
	if len(s.Ratios) > 0 {
		fmt.Fprintf(w, "\nRatios (each round's pair, then the median over rounds)\n\n| ratio | median (min–max) |\n|---|---|\n")
		for _, k := range ratioOrder {
			if st, ok := s.Ratios[k]; ok {
				fmt.Fprintf(w, "| %s | %s |\n", k, st.Format("%.3f"))
			}
		}
	}

	s.Goals = goals(s, hopGoal, bad)
	fmt.Fprintf(w, "\nGoal (issue 3): added latency per platform hop at %.0f calls/s\n\n", s.Rate)
	for _, g := range s.Goals {
		fmt.Fprintf(w, "- %s: %s. %s\n", g.Name, g.Verdict, g.Detail)
	}
	return s, bad, nil
}

func goals(s *Summary, hopGoal float64, bad int64) []Goal {
	v, n, d := s.Variants[vaxelChain], s.Variants[nginxChain], s.Variants[direct]
	var out []Goal
	invalid := ""
	if bad > 0 {
		invalid = fmt.Sprintf(" NOT VALID: %d call(s) failed, answered wrongly or were not sent.", bad)
	}
	if v != nil && v.AddedP50 != nil {
		g := Goal{Name: fmt.Sprintf("p50 ≤ %.0f µs added per hop (vaxel chain)", hopGoal), Value: v.AddedP50.Median, Limit: hopGoal, Verdict: verdict(v.AddedP50.Median <= hopGoal)}
		g.Detail = fmt.Sprintf("vaxel %s µs per hop (chain p50 %.0f µs, direct %.0f µs)", v.AddedP50.Format("%.0f"), v.P50.Median, d.P50.Median)
		if n != nil && n.AddedP50 != nil {
			g.Detail += fmt.Sprintf("; nginx chain %s µs per hop", n.AddedP50.Format("%.0f"))
		}
		g.Detail += "." + invalid
		out = append(out, g)
	}
	if v != nil && n != nil {
		r := s.Ratios["p99_vaxel_chain_over_nginx_chain"]
		g := Goal{Name: "p99 of the vaxel chain ≤ p99 of the nginx chain", Value: r.Median, Limit: 1, Verdict: verdict(r.Median <= 1)}
		g.Detail = fmt.Sprintf("per-round ratio vaxel/nginx %s; medians vaxel %.0f µs, nginx %.0f µs (ratio of medians %.3f).", r.Format("%.3f"), v.P99.Median, n.P99.Median, round(v.P99.Median/n.P99.Median, 3))
		// A round's pair says nothing about the proxies when the generator
		// itself was late, in either chain's run, by a sizeable part of the
		// smaller p99: then other load on the machine set the p99s. Waiting
		// for a slow answer on the same connection is not the generator's
		// lateness: it is the chain's, and counts against it.
		var noisy, paired int
		for rd, vr := range runsOf(s, vaxelChain) {
			nr, ok := runsOf(s, nginxChain)[rd]
			if !ok {
				continue
			}
			vl, ok1 := vr.ownLagP99()
			nl, ok2 := nr.ownLagP99()
			if !ok1 || !ok2 {
				continue
			}
			paired++
			if math.Max(vl, nl) >= 0.25*math.Min(vr.Latency.P99, nr.Latency.P99) {
				noisy++
			}
		}
		if noisy > 0 {
			g.Detail += fmt.Sprintf(" CAVEAT: in %d of %d round(s) the generator's own send lag p99 in a chain's run was a quarter or more of the smaller chain p99: other load on the machine, not the proxies, set those p99s.", noisy, paired)
			if 2*noisy >= paired {
				g.Verdict = "not decidable (" + g.Verdict + " as measured)"
			}
		}
		if len(r.Runs) < 3 {
			g.Detail += fmt.Sprintf(" Only %d round(s): a p99 verdict needs several.", len(r.Runs))
		}
		g.Detail += invalid
		out = append(out, g)
	}
	return out
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func round(f float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(f*p) / p
}
