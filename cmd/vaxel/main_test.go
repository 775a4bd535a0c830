package main

import (
	"bytes"
	"context"
	"encoding/json"
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

// TestDevModeCallLine checks the call line of dev mode's call reaches the
// log (through the batched call log) with the node's identification, and
// is flushed by the time the node has stopped.
func TestDevModeCallLine(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	if err := run(ctx, []string{"dev", "-once", "-v", "-port", "0", "-dir", t.TempDir()}, &out, &errb); err != nil {
		t.Fatalf("vaxel dev: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
	}
	var found bool
	for _, ln := range strings.Split(errb.String(), "\n") {
		if !strings.Contains(ln, `"msg":"call"`) {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(ln), &m); err != nil {
			t.Fatalf("call line is not JSON: %v\n%s", err, ln)
		}
		if m["node"] != "node-1" || m["platform"] != devPlatform || m["subsystem"] != "router" || m["event"] != "call" || m["status"] != float64(200) {
			t.Errorf("call line %s", ln)
		}
		found = true
	}
	if !found {
		t.Errorf("no call line in the log:\n%s", errb.String())
	}
}
