// Package benchstat summarizes a benchmark figure over rounds (median and
// range), for the summaries of scripts/loadgen and scripts/benchchain: the
// machine is shared, so figures are compared as medians of several rounds.
package benchstat

import (
	"fmt"
	"math"
	"sort"
)

// Stat is the median and range of one figure over rounds.
type Stat struct {
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	Runs   []float64 `json:"runs"`
}

// Of summarizes v (kept as Runs); the median is rounded to decimals.
func Of(v []float64, decimals int) Stat {
	s := Stat{Runs: v}
	if len(v) == 0 {
		return s
	}
	c := append([]float64(nil), v...)
	sort.Float64s(c)
	s.Min, s.Max = c[0], c[len(c)-1]
	if len(c)%2 == 1 {
		s.Median = c[len(c)/2]
	} else {
		s.Median = (c[len(c)/2-1] + c[len(c)/2]) / 2
	}
	p := math.Pow(10, float64(decimals))
	s.Median = math.Round(s.Median*p) / p
	return s
}

// Format prints the median with format and, over several rounds, the range
// after it: "12 (10–15)"; "–" when there are no rounds.
func (s Stat) Format(format string) string {
	switch len(s.Runs) {
	case 0:
		return "–"
	case 1:
		return fmt.Sprintf(format, s.Median)
	}
	return fmt.Sprintf(format+" ("+format+"–"+format+")", s.Median, s.Min, s.Max)
}
