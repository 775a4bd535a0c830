package router

import (
	"strings"
	"testing"
)

// Calls are spread round robin over a platform's near nodes, each order
// continuing with the other near nodes and then the far ones; names match
// case-insensitively; choosing allocates nothing.
func TestCandidatesOrder(t *testing.T) {
	r := &Router{}
	r.SetPlatforms(NewPlatforms(map[string]PlatformNodes{"National": {Addrs: []string{"n1:1", "n2:1", "far:1"}, Near: 2}}))
	order := func() string {
		h := r.candidates("NATIONAL")
		var out []string
		for i := 0; i < h.len(); i++ {
			out = append(out, strings.TrimSuffix(strings.TrimPrefix(h.at(i), "https://"), ":1/vp"))
		}
		return strings.Join(out, ",")
	}
	for _, want := range []string{"n1,n2,far", "n2,n1,far", "n1,n2,far"} {
		if got := order(); got != want {
			t.Fatalf("order = %s, want %s", got, want)
		}
	}
	if h := r.candidates("unknown"); h.len() != 0 {
		t.Errorf("unknown platform has %d candidates", h.len())
	}
	if n := testing.AllocsPerRun(100, func() { _ = r.candidates("national").at(1) }); n != 0 {
		t.Errorf("choosing a node allocates %v times", n)
	}
	if name, ok := platformOf("VAXEL://National/x"); !ok || name != "National" {
		t.Errorf("platformOf = %q, %t", name, ok)
	}
}
