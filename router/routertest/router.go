package routertest

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaxel/vaxel/router"
)

// Identity of the router under test.
const (
	InstanceID   = "test_env"
	InstanceName = "vaxel test"
)

// Config is router.DefaultConfig on 127.0.0.1 with the test PKI: the
// mTLS listener and the plain-HTTP listener on free ports, 127.0.0.1
// allow-listed, instance InstanceID/InstanceName, a short retry delay and
// server timeouts short enough for a test to shut down quickly.
func (p *PKI) Config(t testing.TB) router.Config {
	cfg := router.DefaultConfig()
	cfg.InstanceID = InstanceID
	cfg.InstanceName = InstanceName
	cfg.HTTPSAddr = "127.0.0.1:0"
	cfg.TLS = p.RouterTLS(t)
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.HTTPAllowList = router.IPAllowList{"127.0.0.1"}
	cfg.ProducerTLS = p.ProducerTLS(t)
	cfg.ConnectTimeout = 2 * time.Second
	cfg.RetryDelay = 100 * time.Millisecond
	cfg.ReadTimeout = 10 * time.Second
	cfg.WriteTimeout = 10 * time.Second
	cfg.IdleTimeout = 10 * time.Second
	cfg.Logger = slog.New(slog.NewTextHandler(&testWriter{t: t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return cfg
}

// Router is a router running for the duration of a test.
type Router struct {
	*router.Router
	HTTPS string // mTLS listener host:port
	HTTP  string // plain-HTTP listener host:port, "" if off
}

// Start runs router.New(cfg) until the end of the test and waits until it
// listens. The catalog, if not nil, is set before the first call.
func Start(t testing.TB, cfg router.Config) *Router {
	t.Helper()
	r, err := router.New(cfg)
	if err != nil {
		t.Fatalf("router.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	select {
	case <-r.Ready():
	case err := <-done:
		cancel()
		t.Fatalf("router stopped before it was ready: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("router not ready within 10 s")
	}
	https, http := r.Addrs()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("router Run: %v", err)
			}
		case <-time.After(cfg.WriteTimeout + 5*time.Second):
			t.Errorf("router did not stop within %s", cfg.WriteTimeout+5*time.Second)
		}
	})
	return &Router{Router: r, HTTPS: https, HTTP: http}
}

// testWriter sends the router's log to the test log while the test runs.
type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		// Logging after the test has finished panics; the router may log
		// while it shuts down.
		defer func() {
			if recover() != nil {
				w.done = true
			}
		}()
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}
