package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/vaxel/vaxel/node"
)

const integrationsUsage = `vaxel integrations [-admin HOST:PORT -cert FILE -key FILE -ca FILE] [-consumer HSA-ID]
                   [-producer HSA-ID] [-contract NAMESPACE] [-logical-address ADDRESS] [-all] [-local] [-json]

  Every integration original consumer → platform(s) → final producer that the
  filters match, computed now from the catalogs of every federated platform
  (GET /api/v1/integrations). One line per chain; a chain that would fail says
  where and why (✗ dead end, ↺ loop, ? a platform that could not be asked).
  Give at least one filter, or -all. -local lists this platform's own edges
  (consumer → producer) instead.
`

func cmdIntegrations(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("integrations", flag.ContinueOnError)
	// The node asks every platform within 10 s; leave it that and more.
	client := adminFlags(fs, "admin API address of a node", 30*time.Second)
	consumer := fs.String("consumer", "", "original consumer's HSA-ID")
	producer := fs.String("producer", "", "final producer's HSA-ID")
	contract := fs.String("contract", "", "contract namespace (urn:riv:...)")
	la := fs.String("logical-address", "", "logical address as the consumer calls it")
	all := fs.Bool("all", false, "every integration (no filter)")
	local := fs.Bool("local", false, "this platform's own edges only")
	asJSON := fs.Bool("json", false, "print the admin API's JSON answer")
	fs.Usage = func() { fmt.Fprint(fs.Output(), integrationsUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("integrations: unexpected argument %q (filters are flags)\n%s", fs.Arg(0), integrationsUsage)
	}
	q := url.Values{}
	for k, v := range map[string]string{"consumer": *consumer, "producer": *producer, "contract": *contract, "logical_address": *la} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if len(q) == 0 && !*all {
		return fmt.Errorf("integrations: give a filter (-consumer, -producer, -contract, -logical-address) or -all\n%s", integrationsUsage)
	}
	if *all {
		q.Set("all", "1")
	}
	if *local {
		q.Set("local", "1")
	}
	c, err := client()
	if err != nil {
		return fmt.Errorf("integrations: %w", err)
	}
	var buf bytes.Buffer
	if err := c.do(ctx, "GET", "/api/v1/integrations", q, nil, &buf); err != nil {
		return err
	}
	if *asJSON {
		_, err := stdout.Write(buf.Bytes())
		return err
	}
	if *local {
		var ans node.IntegrationsLocal
		if err := json.Unmarshal(buf.Bytes(), &ans); err != nil {
			return fmt.Errorf("integrations: the admin API's answer: %w", err)
		}
		return printEdges(stdout, &ans)
	}
	var ans node.IntegrationsAnswer
	if err := json.Unmarshal(buf.Bytes(), &ans); err != nil {
		return fmt.Errorf("integrations: the admin API's answer: %w", err)
	}
	return printIntegrations(stdout, &ans)
}

// chainLine renders a chain as the operator reads it:
//
//	SE-CONSUMER → REGION-A → NATIONAL → REGION-B → SE-PRODUCER (urn:…:1, SE-LA) https://…
//	SE-CONSUMER → REGION-A → NATIONAL ✗ (urn:…:1, SE-LA) dead end: NATIONAL does not authorize …
func chainLine(ch *node.IntegrationChain) string {
	var b strings.Builder
	b.WriteString(ch.Consumer)
	last := ""
	for _, h := range ch.Hops {
		b.WriteString(" → " + h.Platform)
		last = h.Platform
	}
	// A chain that stops at a platform it could not enter (a refusal, a
	// loop back, a platform that could not be asked) names it last.
	if ch.Status != node.ChainOK && ch.EndsAt != "" && (ch.EndsAt != last || ch.Status == node.ChainLoop) {
		b.WriteString(" → " + ch.EndsAt)
	}
	where := fmt.Sprintf(" (%s, %s)", ch.Contract, ch.LogicalAddress)
	switch ch.Status {
	case node.ChainOK:
		url := ch.URL
		if ch.URLHidden {
			url = "(URL kept by " + last + ")"
		}
		b.WriteString(" → " + ch.Producer + where + " " + url)
	case node.ChainDeadEnd:
		b.WriteString(" ✗" + where + " dead end: " + ch.Reason)
	case node.ChainLoop:
		b.WriteString(" ↺" + where + " loop: " + ch.Reason)
	default:
		b.WriteString(" ?" + where + " " + ch.Status + ": " + ch.Reason)
	}
	return b.String()
}

func printIntegrations(w io.Writer, ans *node.IntegrationsAnswer) error {
	counts := map[string]int{}
	for i := range ans.Chains {
		counts[ans.Chains[i].Status]++
		if _, err := fmt.Fprintln(w, chainLine(&ans.Chains[i])); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "\n%d chains: %d ok, %d dead end, %d loop, %d incomplete; catalogs of %s\n", len(ans.Chains),
		counts[node.ChainOK], counts[node.ChainDeadEnd], counts[node.ChainLoop], counts[node.ChainIncomplete], strings.Join(ans.Platforms, ", "))
	if ans.Truncated {
		fmt.Fprintln(w, "truncated: more chains match than one answer holds; narrow with a filter")
	}
	for _, s := range ans.Incomplete {
		fmt.Fprintln(w, "incomplete:", s)
	}
	return nil
}

// printEdges prints a platform's own edges, one per line, in the chain
// line's form.
func printEdges(w io.Writer, ans *node.IntegrationsLocal) error {
	for _, e := range ans.Edges {
		line := fmt.Sprintf("%s → %s → %s (%s, %s) %s", e.Consumer, ans.Platform, e.Producer, e.Contract, e.LogicalAddress, e.URL)
		switch {
		case e.Fault != "":
			line += " ✗ " + e.Fault
		case e.Unroutable != "":
			line += " ✗ " + e.Unroutable
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "\n%d edges of platform %s (node %s, catalog version %d)\n", len(ans.Edges), ans.Platform, ans.Node, ans.CatalogVersion)
	if ans.Truncated {
		fmt.Fprintln(w, "truncated: narrow with a filter")
	}
	return nil
}
