package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The p99 verdict counts a round as noise only when the generator itself
// was late (gen_lag_us), not when a slow answer held up the next call on
// its connection (the rest of send_lag_us): that is the chain's own doing
// and must count against it. Results of an older loadgen, without
// gen_lag_us, fall back to the whole send lag.
func TestP99VerdictUsesGeneratorsOwnLag(t *testing.T) {
	write := func(genLag bool) string {
		var b strings.Builder
		for rd := 1; rd <= 3; rd++ {
			for _, v := range []struct {
				target   string
				p50, p99 float64
				sendLag  float64
			}{{direct, 100, 300, 50}, {nginxChain, 500, 3000, 200}, {vaxelChain, 500, 6000, 4000}} {
				gl := ""
				if genLag {
					gl = `,"gen_lag_us":{"p99":100}`
				}
				fmt.Fprintf(&b, `{"target":%q,"round":%d,"mode":"rate","target_rate":1000,"calls":15000,"rps":1000,"latency_us":{"p50":%g,"p90":%g,"p99":%g,"max":%g},"send_lag_us":{"p99":%g}%s,"pid_cpu_us_per_call":100}`+"\n",
					v.target, rd, v.p50, v.p50, v.p99, v.p99, v.sendLag, gl)
			}
		}
		f := filepath.Join(t.TempDir(), "results.jsonl")
		if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	p99Verdict := func(in string) string {
		s, bad, err := run(in, 3, 300, io.Discard)
		if err != nil || bad != 0 {
			t.Fatalf("run: bad %d, err %v", bad, err)
		}
		for _, g := range s.Goals {
			if strings.HasPrefix(g.Name, "p99") {
				return g.Verdict
			}
		}
		t.Fatal("no p99 goal")
		return ""
	}
	if got := p99Verdict(write(true)); got != "MISSED" {
		t.Errorf("with the generator's own lag small: verdict %q, want MISSED (decidable)", got)
	}
	if got := p99Verdict(write(false)); !strings.HasPrefix(got, "not decidable") {
		t.Errorf("with only the whole send lag: verdict %q, want not decidable", got)
	}
}

// With a bare chain in the rounds, its ratios against nginx and vaxel's
// against it are computed per round and printed, in the order computed.
func TestBareChainRatios(t *testing.T) {
	var b strings.Builder
	for rd := 1; rd <= 2; rd++ {
		for _, v := range []struct {
			target   string
			p99, cpu float64
		}{{direct, 300, 50}, {nginxChain, 2000, 300}, {bareChain, 1000 * float64(rd), 200}, {vaxelChain, 3000, 300}} {
			fmt.Fprintf(&b, `{"target":%q,"round":%d,"mode":"rate","target_rate":1000,"calls":15000,"rps":1000,"latency_us":{"p50":100,"p90":100,"p99":%g,"max":%g},"send_lag_us":{"p99":10},"gen_lag_us":{"p99":10},"pid_cpu_us_per_call":%g}`+"\n",
				v.target, rd, v.p99, v.p99, v.cpu)
		}
	}
	f := filepath.Join(t.TempDir(), "results.jsonl")
	if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	s, bad, err := run(f, 3, 300, &out)
	if err != nil || bad != 0 {
		t.Fatalf("run: bad %d, err %v", bad, err)
	}
	for name, want := range map[string]float64{
		"p99_bare_chain_over_nginx_chain":          0.75, // 0.5 and 1.0
		"p99_vaxel_chain_over_bare_chain":          2.25, // 3.0 and 1.5
		"cpu_per_call_bare_chain_over_nginx_chain": 0.667,
	} {
		if got, ok := s.Ratios[name]; !ok || got.Median != want {
			t.Errorf("%s = %+v, want median %g", name, got, want)
		}
	}
	text := out.String()
	if i, j := strings.Index(text, "| p99_vaxel_chain_over_nginx_chain |"), strings.Index(text, "| p99_vaxel_chain_over_bare_chain |"); i < 0 || j < 0 || j < i {
		t.Errorf("ratios not printed in the order computed:\n%s", text)
	}
}

// A second vaxel chain (bench-chain's VAXEL_B) is compared with the first
// round by round; without one, none of those ratios is made up. The
// verdicts stay the first chain's.
func TestVaxelBChainRatios(t *testing.T) {
	write := func(withB bool) string {
		var b strings.Builder
		for rd := 1; rd <= 3; rd++ {
			runs := []struct {
				target        string
				p50, p99, cpu float64
			}{{direct, 80, 300, 50}, {nginxChain, 400, 2000, 300}, {vaxelChain, 400, 1000 * float64(rd), 240}}
			if withB {
				runs = append(runs, struct {
					target        string
					p50, p99, cpu float64
				}{vaxelB, 500, 2000, 300})
			}
			for _, v := range runs {
				fmt.Fprintf(&b, `{"target":%q,"round":%d,"mode":"rate","target_rate":1000,"calls":15000,"rps":1000,"latency_us":{"p50":%g,"p90":%g,"p99":%g,"max":%g},"send_lag_us":{"p99":10},"gen_lag_us":{"p99":10},"pid_cpu_us_per_call":%g}`+"\n",
					v.target, rd, v.p50, v.p50, v.p99, v.p99, v.cpu)
			}
		}
		f := filepath.Join(t.TempDir(), "results.jsonl")
		if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	var out strings.Builder
	s, bad, err := run(write(true), 3, 300, &out)
	if err != nil || bad != 0 {
		t.Fatalf("run: bad %d, err %v", bad, err)
	}
	for name, want := range map[string]float64{
		"p99_vaxel_chain_over_vaxel_b_chain":          1,   // 0.5, 1.0 and 1.5
		"p50_vaxel_chain_over_vaxel_b_chain":          0.8, // 400 / 500
		"cpu_per_call_vaxel_chain_over_vaxel_b_chain": 0.8,
		"p99_vaxel_b_chain_over_nginx_chain":          1,
	} {
		if got, ok := s.Ratios[name]; !ok || got.Median != want {
			t.Errorf("%s = %+v, want median %g", name, got, want)
		}
	}
	if fg := s.Variants[vaxelB]; fg == nil || fg.P99.Median != 2000 {
		t.Errorf("vaxel-b-chain figures = %+v, want p99 median 2000", fg)
	}
	if !strings.Contains(out.String(), "| vaxel-b-chain |") {
		t.Errorf("vaxel-b-chain not in the medians table:\n%s", out.String())
	}
	// The p99 verdict is vaxel-chain's (median 2000 against nginx's 2000).
	for _, g := range s.Goals {
		if strings.HasPrefix(g.Name, "p99") && g.Verdict != "met" {
			t.Errorf("p99 verdict %q (%s), want met: vaxel-chain's p99 equals nginx's", g.Verdict, g.Detail)
		}
	}

	s, _, err = run(write(false), 3, 300, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for name := range s.Ratios {
		if strings.Contains(name, "vaxel_b") {
			t.Errorf("ratio %s made up without a vaxel-b-chain run", name)
		}
	}
}
