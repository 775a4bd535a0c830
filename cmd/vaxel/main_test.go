package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestDevModeCallWorks runs the README's main job in-process: a platform on
// loopback with a fresh PKI, a demo catalog applied as an order, and a call
// through the mTLS router that must come back 200 from the demo producer
// with the consumer's HSA-ID as original consumer.
func TestDevModeCallWorks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	if err := run(ctx, []string{"dev", "-once", "-port", "0", "-dir", t.TempDir()}, &out, &errb); err != nil {
		t.Fatalf("vaxel dev: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
	}
	got := out.String()
	for _, want := range []string{"HTTP 200", "PingForConfigurationResponse", "<value>" + devConsumer + "</value>", "curl --cert"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}

func TestUnknownCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"frobnicate"}, &out, &errb); err == nil {
		t.Fatal("unknown command accepted")
	}
}
