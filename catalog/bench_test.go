package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/vaxel/vaxel/catalog/command"
	"github.com/vaxel/vaxel/tak"
)

// order100k returns an SKLTP order of 100,000 routing entries (50,000 routes
// and 50,000 authorizations, on 50,000 new logical addresses) for round i.
func order100k(tb testing.TB, i int) json.RawMessage { return order100kN(tb, i, 50_000) }

// order100kN is order100k with n routes and n authorizations.
func order100kN(tb testing.TB, i, n int) json.RawMessage {
	ns := "urn:riv:bench:OrderResponder:1"
	url, prof, prod, cons := "https://producer.example.se/svc", "RIVTABP21", "BENCH-PRODUCER", "BENCH-CONSUMER"
	o := tak.Order{
		Plattform: "BENCH", FormatVersion: 1, Version: 1,
		BestallningsTidpunkt: "2026-01-01T00:00:00+0000", GenomforandeTidpunkt: "2026-01-01T00:00:00+0000",
	}
	in := &o.Inkludera
	in.Tjanstekontrakt = []tak.OrderContract{{Namnrymd: ns, Beskrivning: "bench", MajorVersion: 1}}
	in.Tjanstekomponenter = []tak.OrderComponent{{HsaID: "BENCH-PRODUCER", Beskrivning: "p"}, {HsaID: "BENCH-CONSUMER", Beskrivning: "c"}}
	in.Logiskadresser = make([]tak.OrderLogicalAddress, n)
	in.Vagval = make([]tak.OrderRoute, n)
	in.Anropsbehorigheter = make([]tak.OrderAuthorization, n)
	for j := 0; j < n; j++ {
		la := fmt.Sprintf("SE%03d-BENCH-%06d", i, j)
		in.Logiskadresser[j] = tak.OrderLogicalAddress{HsaID: la, Beskrivning: "la"}
		in.Vagval[j] = tak.OrderRoute{Adress: &url, LogiskAdress: &la, Tjanstekontrakt: &ns, Rivtaprofil: &prof, Tjanstekomponent: &prod}
		in.Anropsbehorigheter[j] = tak.OrderAuthorization{LogiskAdress: &la, Tjanstekontrakt: &ns, Tjanstekonsument: &cons}
	}
	b, err := json.Marshal(o)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// BenchmarkOrder100kThreeNodes applies an order of 100,000 entries on a
// three-node platform over mutual TLS and waits until every node serves it.
// Reported: ms from submitting to the leader until all three nodes' current
// catalogs hold the change ("visible-ms"), and until the leader acknowledged
// it ("ack-ms"). Goal: visible within 2 s.
func BenchmarkOrder100kThreeNodes(b *testing.B) {
	c := startCluster(b)
	defer c.stopAll(b)
	waitFor(b, "leader elected", 10*time.Second, func() bool { return leaderOf(c.nodes) != nil })
	ctx := context.Background()
	meta := command.Meta{Actor: "bench", Source: "admin", UnixNano: 1}
	prof := []command.Op{{Op: "put", Kind: "rivprofile", Entity: json.RawMessage(`{"name":"RIVTABP21"}`)}}
	waitFor(b, "leader elected", 10*time.Second, func() bool { return leaderOf(c.nodes) != nil })
	if res, err := leaderOf(c.nodes).s.Apply(ctx, command.TypeMutate, &command.Mutate{Meta: meta, Ops: prof}); err != nil || res.Err != nil {
		b.Fatal(err, res)
	}
	orders := make([]json.RawMessage, b.N)
	for i := range orders {
		orders[i] = order100k(b, i)
	}
	b.ResetTimer()
	var ack, visible time.Duration
	for i := 0; i < b.N; i++ {
		var l *testNode
		waitFor(b, "leader", 10*time.Second, func() bool { l = leaderOf(c.nodes); return l != nil })
		t0 := time.Now()
		res, err := l.s.Apply(ctx, command.TypeOrder, &command.Order{Meta: meta, Platform: "BENCH", Order: orders[i]})
		if err != nil {
			b.Fatalf("order: %v", err)
		}
		if res.Err != nil || len(res.Errors) > 0 {
			b.Fatalf("order refused: %v %v", res.Err, res.Errors)
		}
		ack += time.Since(t0)
		for _, n := range c.nodes {
			for n.s.Current().Seq() < res.Seq {
				time.Sleep(time.Millisecond)
			}
		}
		visible += time.Since(t0)
	}
	b.ReportMetric(float64(ack.Milliseconds())/float64(b.N), "ack-ms")
	b.ReportMetric(float64(visible.Milliseconds())/float64(b.N), "visible-ms")
}

// BenchmarkChangeVisibleThreeNodes: one admin change (a new contract) on a
// three-node platform over mutual TLS, timed from submitting it to the
// leader until all three nodes' current catalogs hold it — the time until
// every node routes with a route change (issue 3: within 1 s).
func BenchmarkChangeVisibleThreeNodes(b *testing.B) {
	c := startCluster(b)
	defer c.stopAll(b)
	ctx := context.Background()
	var worst time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var l *testNode
		waitFor(b, "leader", 10*time.Second, func() bool { l = leaderOf(c.nodes); return l != nil })
		t0 := time.Now()
		res, err := addContract(ctx, l.s, fmt.Sprintf("urn:riv:bench:V%dResponder:1", i))
		if err != nil {
			b.Fatal(err)
		}
		if res.Err != nil {
			b.Fatal(res.Err)
		}
		for _, n := range c.nodes {
			for n.s.Current().Seq() < res.Seq {
				time.Sleep(100 * time.Microsecond)
			}
		}
		worst = max(worst, time.Since(t0))
	}
	b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
}
