package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestDevFederationCallWorks runs 'vaxel dev -federation' in-process: three
// federated platforms on loopback (3 + 3 + 1 nodes), their catalogs applied
// as orders, and a call into region A that crosses the national platform to
// the demo producer behind region B, which must answer 200 with the
// original consumer and the platforms crossed.
func TestDevFederationCallWorks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	start := time.Now()
	if err := run(ctx, []string{"dev", "-federation", "-once", "-port", "0", "-dir", t.TempDir()}, &out, &errb); err != nil {
		t.Fatalf("vaxel dev -federation: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
	}
	t.Logf("started, called and stopped in %s", time.Since(start).Round(time.Millisecond))
	got := out.String()
	for _, want := range []string{
		"HTTP 200", "PingForConfigurationResponse",
		"<value>" + devConsumer + "</value>",
		"REGION-A#NATIONAL#REGION-B</value>",
		"curl --cert", "vaxel trace -admin 127.0.0.1:",
		"national-3", "b-1",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}
