package router

import (
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// The remove-lists match header names in any case, and looking a name up
// allocates nothing (it runs for every header of every call).
func TestHeaderRemoveListsCaseAndAllocs(t *testing.T) {
	for _, tc := range []struct {
		name string
		drop bool
	}{
		{"Content-Type", true}, {"CONTENT-LENGTH", true}, {"X-Rivta-Routing-History", true},
		{"x-skltp-correlation-id", true}, {"TraceParent", true}, {"X-VP-Sender-Id", true},
		{"SOAPAction", false}, {"X-Custom", false}, {strings.Repeat("Content-Type", 10), false}, {"", false},
	} {
		if got := dropRequestHeader([]byte(tc.name)); got != tc.drop {
			t.Errorf("dropRequestHeader(%.30q) = %v, want %v", tc.name, got, tc.drop)
		}
	}
	k := []byte("Accept-Encoding")
	if a := testing.AllocsPerRun(100, func() { dropRequestHeader(k) }); a != 0 {
		t.Errorf("dropRequestHeader allocates %.1f times per name, want 0", a)
	}

	var src, dst fasthttp.ResponseHeader
	src.DisableNormalizing()
	dst.DisableNormalizing()
	src.Set("SOAPAction", "x")
	src.Set("Server", "producer")
	src.Set("X-Kept", "1")
	copyResponseHeaders(&dst, &src)
	if dst.Peek("SOAPAction") != nil || dst.Peek("Server") != nil || string(dst.Peek("X-Kept")) != "1" {
		t.Errorf("copyResponseHeaders kept %q", dst.String())
	}
	if a := testing.AllocsPerRun(100, func() { dst.Reset(); copyResponseHeaders(&dst, &src) }); a != 0 {
		t.Errorf("copyResponseHeaders allocates %.1f times, want 0", a)
	}
}
