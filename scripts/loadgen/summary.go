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

// Summary is what `loadgen summarize` writes as JSON: per mode and target the
// median and range over rounds, the ratios the goals are stated in, and the
// goal verdicts.
type Summary struct {
	Rounds  int                            `json:"rounds"`
	Targets map[string]map[string]*Figures `json:"targets"` // mode → target → figures
	Ratios  map[string]Stat                `json:"ratios"`
	Goals   []Goal                         `json:"goals"`
}

// Stat is the median and range of one figure over rounds.
type Stat = benchstat.Stat

// Figures of one target in one mode.
type Figures struct {
	RPS        Stat  `json:"rps"`
	CPUPerCall Stat  `json:"cpu_us_per_call"` // the -pids processes
	GenCPU     Stat  `json:"gen_cpu_us_per_call"`
	P50        Stat  `json:"p50_us"`
	P90        Stat  `json:"p90_us"`
	P99        Stat  `json:"p99_us"`
	P999       Stat  `json:"p99_9_us"`
	Max        Stat  `json:"max_us"`
	LagP99     Stat  `json:"send_lag_p99_us"`
	GenLagP99  Stat  `json:"gen_lag_p99_us"`         // the generator's own part (Result.GenLag)
	AddedP50   *Stat `json:"added_p50_us,omitempty"` // minus direct, same round
	AddedP99   *Stat `json:"added_p99_us,omitempty"`
	Errors     int64 `json:"errors"`
	Non200     int64 `json:"non200"`
	BadBody    int64 `json:"bad_body"`
	Calls      int64 `json:"calls"`
}

// Goal is one of the goals with its verdict.
type Goal struct {
	Name   string  `json:"name"`
	Vaxel  float64 `json:"vaxel"`
	Limit  float64 `json:"limit"`
	Met    bool    `json:"met"`
	Detail string  `json:"detail"`
}

func stat(v []float64) Stat { return benchstat.Of(v, 2) }

func summarize(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("summarize", flag.ContinueOnError)
	in := fs.String("in", "", "JSON lines written by loadgen runs with -target and -round (required)")
	out := fs.String("out", "", "write the summary JSON here")
	slack := fs.Float64("p50-slack-us", 100, "goal: vaxel's p50 at the fixed rate ≤ nginx's + this")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" {
		return errors.New("-in is required")
	}
	f, err := os.Open(*in)
	if err != nil {
		return err
	}
	defer f.Close()
	// mode → target → round → result
	runs := map[string]map[string]map[int]*Result{}
	rounds := map[int]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var r Result
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return fmt.Errorf("%s: %w", *in, err)
		}
		if runs[r.Mode] == nil {
			runs[r.Mode] = map[string]map[int]*Result{}
		}
		if runs[r.Mode][r.Target] == nil {
			runs[r.Mode][r.Target] = map[int]*Result{}
		}
		runs[r.Mode][r.Target][r.Round] = &r
		rounds[r.Round] = true
	}
	if err := sc.Err(); err != nil {
		return err
	}
	var roundList []int
	for r := range rounds {
		roundList = append(roundList, r)
	}
	sort.Ints(roundList)

	s := &Summary{Rounds: len(roundList), Targets: map[string]map[string]*Figures{}, Ratios: map[string]Stat{}}
	for mode, byTarget := range runs {
		s.Targets[mode] = map[string]*Figures{}
		for target, byRound := range byTarget {
			var rps, cpu, gen, p50, p90, p99, p999, mx, lag, glag, a50, a99 []float64
			fg := &Figures{}
			for _, rd := range roundList {
				r, ok := byRound[rd]
				if !ok {
					continue
				}
				rps = append(rps, r.RPS)
				cpu = append(cpu, r.PIDCPUPerCall)
				gen = append(gen, r.GenCPUPerCall)
				p50 = append(p50, r.Latency.P50)
				p90 = append(p90, r.Latency.P90)
				p99 = append(p99, r.Latency.P99)
				p999 = append(p999, r.Latency.P999)
				mx = append(mx, r.Latency.Max)
				if r.SendLag != nil {
					lag = append(lag, r.SendLag.P99)
				}
				if r.GenLag != nil {
					glag = append(glag, r.GenLag.P99)
				}
				if d, ok := byTarget["direct"][rd]; ok && target != "direct" {
					a50 = append(a50, round2(r.Latency.P50-d.Latency.P50))
					a99 = append(a99, round2(r.Latency.P99-d.Latency.P99))
				}
				fg.Errors += r.Errors
				fg.Non200 += r.Non200
				fg.BadBody += r.BadBody
				fg.Calls += r.Calls
			}
			fg.RPS, fg.CPUPerCall, fg.GenCPU = stat(rps), stat(cpu), stat(gen)
			fg.P50, fg.P90, fg.P99, fg.P999, fg.Max, fg.LagP99, fg.GenLagP99 = stat(p50), stat(p90), stat(p99), stat(p999), stat(mx), stat(lag), stat(glag)
			if len(a50) > 0 {
				st50, st99 := stat(a50), stat(a99)
				fg.AddedP50, fg.AddedP99 = &st50, &st99
			}
			s.Targets[mode][target] = fg
		}
	}

	// Ratios per round (same round, back to back), then their median.
	ratio := func(name, mode, num, den string, get func(*Result) float64) {
		var v []float64
		for _, rd := range roundList {
			a, ok1 := runs[mode][num][rd]
			b, ok2 := runs[mode][den][rd]
			if ok1 && ok2 && get(b) != 0 {
				v = append(v, math.Round(get(a)/get(b)*1000)/1000)
			}
		}
		if len(v) > 0 {
			s.Ratios[name] = stat(v)
		}
	}
	rpsOf := func(r *Result) float64 { return r.RPS }
	cpuOf := func(r *Result) float64 { return r.PIDCPUPerCall }
	ratio("max_rps_vaxel_over_nginx", "max", "vaxel", "nginx", rpsOf)
	ratio("max_rps_vaxel_over_direct", "max", "vaxel", "direct", rpsOf)
	ratio("max_rps_nginx_over_direct", "max", "nginx", "direct", rpsOf)
	ratio("max_cpu_per_call_vaxel_over_nginx", "max", "vaxel", "nginx", cpuOf)
	ratio("rate_cpu_per_call_vaxel_over_nginx", "rate", "vaxel", "nginx", cpuOf)
	ratio("rate_p50_vaxel_over_nginx", "rate", "vaxel", "nginx", func(r *Result) float64 { return r.Latency.P50 })
	ratio("rate_p99_vaxel_over_nginx", "rate", "vaxel", "nginx", func(r *Result) float64 { return r.Latency.P99 })
	// The bare fasthttp proxy: what vaxel adds to its HTTP library, and what
	// the library alone costs against nginx.
	ratio("max_rps_vaxel_over_bare", "max", "vaxel", "bare", rpsOf)
	ratio("max_rps_bare_over_nginx", "max", "bare", "nginx", rpsOf)
	ratio("max_cpu_per_call_vaxel_over_bare", "max", "vaxel", "bare", cpuOf)
	ratio("max_cpu_per_call_bare_over_nginx", "max", "bare", "nginx", cpuOf)

	get := func(mode, target string) *Figures {
		if m := s.Targets[mode]; m != nil {
			return m[target]
		}
		return nil
	}
	if v, n := get("max", "vaxel"), get("max", "nginx"); v != nil && n != nil {
		s.Goals = append(s.Goals, Goal{Name: "throughput: vaxel ≥ nginx (req/s, median)", Vaxel: v.RPS.Median, Limit: n.RPS.Median,
			Met: v.RPS.Median >= n.RPS.Median, Detail: fmt.Sprintf("per-round ratio median %.3f (%.3f–%.3f)", s.Ratios["max_rps_vaxel_over_nginx"].Median, s.Ratios["max_rps_vaxel_over_nginx"].Min, s.Ratios["max_rps_vaxel_over_nginx"].Max)})
	}
	if v, n := get("rate", "vaxel"), get("rate", "nginx"); v != nil && n != nil {
		// Added latency (minus the direct call of the same round) when the
		// direct call was measured; otherwise the absolute p50s.
		g := Goal{Name: fmt.Sprintf("fixed rate: vaxel p50 ≤ nginx p50 + %.0f µs", *slack), Vaxel: v.P50.Median, Limit: round2(n.P50.Median + *slack),
			Met: v.P50.Median <= n.P50.Median+*slack, Detail: addedDetail(v, n)}
		if v.AddedP50 != nil && n.AddedP50 != nil {
			g = Goal{Name: fmt.Sprintf("fixed rate: vaxel added p50 ≤ nginx added p50 + %.0f µs", *slack), Vaxel: v.AddedP50.Median, Limit: round2(n.AddedP50.Median + *slack),
				Met: v.AddedP50.Median <= n.AddedP50.Median+*slack, Detail: fmt.Sprintf("absolute p50: vaxel %.0f µs, nginx %.0f µs, direct %.0f µs", v.P50.Median, n.P50.Median, s.Targets["rate"]["direct"].P50.Median)}
		}
		s.Goals = append(s.Goals, g,
			Goal{Name: "fixed rate: vaxel p99 ≤ nginx p99", Vaxel: v.P99.Median, Limit: n.P99.Median,
				Met: v.P99.Median <= n.P99.Median, Detail: fmt.Sprintf("per-round ratio median %.3f (%.3f–%.3f)", s.Ratios["rate_p99_vaxel_over_nginx"].Median, s.Ratios["rate_p99_vaxel_over_nginx"].Min, s.Ratios["rate_p99_vaxel_over_nginx"].Max) + noiseCaveat(s, n)})
	}
	printSummary(stdout, s)
	if *out != "" {
		b, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(*out, append(b, '\n'), 0o644)
	}
	return nil
}

// noiseCaveat warns when the generator itself was late by a sizeable part
// of the p99 being compared: then the machine, not the proxy, sets the p99.
// Only the generator's own lag counts (not waiting for a slow answer on the
// same connection, which is the proxy's doing); results of an older loadgen
// have only the whole send lag.
func noiseCaveat(s *Summary, n *Figures) string {
	var lags []float64
	for _, f := range s.Targets["rate"] {
		if len(f.GenLagP99.Runs) > 0 {
			lags = append(lags, f.GenLagP99.Runs...)
		} else {
			lags = append(lags, f.LagP99.Runs...)
		}
	}
	lag := stat(lags).Median
	if len(lags) == 0 || lag < 0.25*n.P99.Median {
		return ""
	}
	return fmt.Sprintf(". CAVEAT: the generator's own send lag p99 (median %.0f µs) is %.0f %% of nginx's p99: other load on the machine, not the proxies, sets these p99s; the verdict is noise", lag, 100*lag/n.P99.Median)
}

func addedDetail(v, n *Figures) string {
	if v.AddedP50 == nil || n.AddedP50 == nil {
		return ""
	}
	return fmt.Sprintf("added p50 over direct: vaxel %.0f µs, nginx %.0f µs", v.AddedP50.Median, n.AddedP50.Median)
}

func printSummary(w io.Writer, s *Summary) {
	targets := []string{"direct", "nginx", "vaxel", "bare"}
	fmt.Fprintf(w, "\nMedians of %d round(s); (min–max) over rounds.\n", s.Rounds)
	if m := s.Targets["max"]; m != nil {
		fmt.Fprintf(w, "\nMaximum throughput (closed loop)\n\n| target | req/s | CPU µs/call (server) | p50 µs | p99 µs | generator CPU µs/call | errors | non-200 |\n|---|---|---|---|---|---|---|---|\n")
		for _, t := range targets {
			if f := m[t]; f != nil {
				fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %d | %d |\n", t, f.RPS.Format("%.0f"), f.CPUPerCall.Format("%.1f"),
					f.P50.Format("%.0f"), f.P99.Format("%.0f"), f.GenCPU.Format("%.1f"), f.Errors, f.Non200+f.BadBody)
			}
		}
	}
	if m := s.Targets["rate"]; m != nil {
		fmt.Fprintf(w, "\nFixed rate (open loop, latency from the scheduled send time)\n\n| target | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | added p50 µs | added p99 µs | CPU µs/call (server) | send lag p99 µs | own lag p99 µs | errors | non-200 |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, t := range targets {
			if f := m[t]; f != nil {
				a50, a99 := "–", "–"
				if f.AddedP50 != nil {
					a50, a99 = f.AddedP50.Format("%.0f"), f.AddedP99.Format("%.0f")
				}
				fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d | %d |\n", t, f.P50.Format("%.0f"), f.P90.Format("%.0f"),
					f.P99.Format("%.0f"), f.P999.Format("%.0f"), f.Max.Format("%.0f"), a50, a99, f.CPUPerCall.Format("%.1f"), f.LagP99.Format("%.0f"), f.GenLagP99.Format("%.0f"), f.Errors, f.Non200+f.BadBody)
			}
		}
	}
	if len(s.Ratios) > 0 {
		fmt.Fprintf(w, "\nRatios (each round's pair, then the median over rounds)\n\n| ratio | median (min–max) |\n|---|---|\n")
		var names []string
		for k := range s.Ratios {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			fmt.Fprintf(w, "| %s | %s |\n", k, s.Ratios[k].Format("%.3f"))
		}
	}
	if len(s.Goals) > 0 {
		fmt.Fprintf(w, "\nGoals\n\n")
		for _, g := range s.Goals {
			v := "MISSED"
			if g.Met {
				v = "met"
			}
			fmt.Fprintf(w, "- %s: vaxel %.1f vs %.1f → %s. %s\n", g.Name, g.Vaxel, g.Limit, v, g.Detail)
		}
	}
}
