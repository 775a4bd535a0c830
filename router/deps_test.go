package router

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the data plane free of the control plane: the router reads
// immutable catalogs pushed by node and must not link Raft, bolt or gossip.
func TestDeps(t *testing.T) {
	bad := map[string]string{
		"github.com/hashicorp/raft":         "router is the data plane; catalog state reaches it via node",
		"go.etcd.io/bbolt":                  "router never touches the catalog's storage",
		"github.com/hashicorp/memberlist":   "membership reaches the router via node",
		"github.com/vaxel/vaxel/catalog":    "router reads *tak.Catalog values, not the store",
		"github.com/vaxel/vaxel/node":       "node imports router, never the reverse",
		"github.com/vaxel/vaxel/federation": "federation reaches the router via node",
	}
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list unavailable: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for b, why := range bad {
			if dep == b || strings.HasPrefix(dep, b+"/") {
				t.Errorf("router depends on %s: %s", dep, why)
			}
		}
	}
}
