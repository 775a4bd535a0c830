package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/vaxel/vaxel/node"
)

func TestChainLine(t *testing.T) {
	const ns = "urn:riv:test:GetThingsResponder:1"
	hop := func(platform, producer, url string) node.IntegrationHop {
		return node.IntegrationHop{Platform: platform, IntegrationEdge: node.IntegrationEdge{Producer: producer, URL: url}}
	}
	for _, tc := range []struct {
		name string
		ch   node.IntegrationChain
		want string
	}{
		{"ok", node.IntegrationChain{Consumer: "SE-C", Contract: ns, LogicalAddress: "SE-LA", Status: node.ChainOK,
			Hops:     []node.IntegrationHop{hop("A", "SE-NAT", "vaxel://NATIONAL"), hop("NATIONAL", "SE-B", "vaxel://B"), hop("B", "SE-P", "https://p/x")},
			Producer: "SE-P", URL: "https://p/x"},
			"SE-C → A → NATIONAL → B → SE-P (" + ns + ", SE-LA) https://p/x"},
		// Refused by a platform the chain did not enter: it is named.
		{"dead end downstream", node.IntegrationChain{Consumer: "SE-C", Contract: ns, LogicalAddress: "SE-LA", Status: node.ChainDeadEnd,
			Hops: []node.IntegrationHop{hop("A", "SE-NAT", "vaxel://NATIONAL")}, EndsAt: "NATIONAL", Reason: "NATIONAL does not authorize SE-A (VP007)"},
			"SE-C → A → NATIONAL ✗ (" + ns + ", SE-LA) dead end: NATIONAL does not authorize SE-A (VP007)"},
		// Failing at the last hop's own platform: not named twice.
		{"dead end here", node.IntegrationChain{Consumer: "SE-C", Contract: ns, LogicalAddress: "SE-LA", Status: node.ChainDeadEnd,
			Hops: []node.IntegrationHop{hop("A", "SE-P", "https://p/x")}, EndsAt: "A", Reason: "A: VP006: more than one valid route"},
			"SE-C → A ✗ (" + ns + ", SE-LA) dead end: A: VP006: more than one valid route"},
		// A platform routing to itself loops back to the last hop.
		{"loop", node.IntegrationChain{Consumer: "SE-C", Contract: ns, LogicalAddress: "SE-LA", Status: node.ChainLoop,
			Hops: []node.IntegrationHop{hop("A", "SE-A", "vaxel://A")}, EndsAt: "A", Reason: "A routes back to A"},
			"SE-C → A → A ↺ (" + ns + ", SE-LA) loop: A routes back to A"},
		{"incomplete", node.IntegrationChain{Consumer: "SE-C", Contract: ns, LogicalAddress: "SE-LA", Status: node.ChainIncomplete,
			Hops: []node.IntegrationHop{hop("A", "SE-G", "vaxel://GHOST")}, EndsAt: "GHOST", Reason: "no alive node"},
			"SE-C → A → GHOST ? (" + ns + ", SE-LA) incomplete: no alive node"},
	} {
		if got := chainLine(&tc.ch); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}

	var b bytes.Buffer
	ans := &node.IntegrationsAnswer{Platforms: []string{"A", "B"}, Truncated: true, Incomplete: []string{"platform X: down"},
		Chains: []node.IntegrationChain{{Consumer: "SE-C", Status: node.ChainOK}, {Consumer: "SE-C", Status: node.ChainDeadEnd}}}
	if err := printIntegrations(&b, ans); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"2 chains: 1 ok, 1 dead end, 0 loop, 0 incomplete; catalogs of A, B", "truncated:", "incomplete: platform X: down"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}

// Without a filter or -all the command refuses before calling the node.
func TestIntegrationsNeedsAFilter(t *testing.T) {
	err := cmdIntegrations(context.Background(), []string{"-admin", "127.0.0.1:1"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "give a filter") {
		t.Errorf("no filter: %v, want a request for one", err)
	}
}
