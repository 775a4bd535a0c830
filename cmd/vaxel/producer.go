package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// cmdDemoProducer serves the demo producer of 'vaxel dev' alone: a plain-HTTP
// RIVTA producer answering PingForConfiguration on every path. It exists so a
// container image holding only the vaxel binary can also run the producer of a
// demo or test platform (test/container).
func cmdDemoProducer(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("demo-producer", flag.ContinueOnError)
	addr := fs.String("addr", ":8080", "listen address (plain HTTP)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("demo-producer: %w", err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: demoProducerHandler()}
	fmt.Fprintf(stdout, "demo producer listening on http://%s/ping\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}
