package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/vaxel/vaxel/node"
	"github.com/vaxel/vaxel/router"
)

func TestPrintTrace(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	ans := &node.TraceAnswer{ID: "t1", Hops: []router.HopRecord{
		{TraceID: "t1", CorrelationID: "c1", Platform: "A", Node: "a1", Consumer: "SE-C", OriginalConsumer: "SE-C", Outcome: "ok",
			NextPlatform: "N", NextHop: "https://10.0.0.2:20000/vp", Received: ms(0), Forwarded: ms(1), DownstreamAnswered: ms(9), Answered: ms(10)},
		{TraceID: "t1", CorrelationID: "c1", Platform: "N", Node: "n1", Consumer: "SE-A", OriginalConsumer: "SE-C", Outcome: "VP007",
			Received: ms(2), Answered: ms(4)},
	}, Incomplete: []string{"x: gone"}}
	var b bytes.Buffer
	if err := printTrace(&b, ans); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"trace t1  correlation c1", "N https://10.0.0.2:20000/vp", "10.000ms  8.000ms     2.000ms", "VP007", "2.000ms   -           2.000ms", "incomplete: x: gone"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
