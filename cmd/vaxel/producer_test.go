package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestDemoProducer runs 'vaxel demo-producer' (what the container platform's
// producer service runs) and calls it as the router would.
func TestDemoProducer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"demo-producer", "-addr", "127.0.0.1:0"}, pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("no listening line: %v", err)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	_, url, ok := strings.Cut(strings.TrimSpace(line), "listening on ")
	if !ok {
		t.Fatalf("unexpected first line %q", line)
	}
	req, _ := http.NewRequest("POST", url, strings.NewReader(devRequest))
	req.Header.Set("x-rivta-original-serviceconsumer-hsaid", devConsumer)
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "PingForConfigurationResponse") || !strings.Contains(string(b), "<value>"+devConsumer+"</value>") {
		t.Fatalf("HTTP %d %s", resp.StatusCode, b)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo-producer stopped with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("demo-producer did not stop")
	}
}
