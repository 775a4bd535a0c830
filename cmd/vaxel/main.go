// Command vaxel runs a node of a healthcare service platform, a development
// platform on loopback, and the operator tooling (certificates, catalog,
// configuration check).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/vaxel/vaxel/node"
	"github.com/vaxel/vaxel/node/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// A second Ctrl-C kills the process: stop catching signals once shutdown begins.
	go func() { <-ctx.Done(); stop() }()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "vaxel:", err)
		os.Exit(1)
	}
}

const usage = `vaxel — a node of a healthcare service platform (RIVTA router + replicated catalog)

Usage:
  vaxel dev [-dir DIR]                 start a complete platform on loopback with a test PKI,
                                       demo catalog and demo producer, and make a call that works
  vaxel dev -federation                three federated platforms (A, NATIONAL, B) on loopback and
                                       a call from A through NATIONAL to B's demo producer
  vaxel run -config FILE [-set k=v]    run a node
  vaxel check-config -config FILE      validate a configuration and exit
  vaxel cert ca|issue ...              development/test PKI
  vaxel catalog ...                    catalog commands against a node's admin API
  vaxel trace [-admin ADDR ...] ID     a call's hop records across the federation, by trace
                                       or correlation id
  vaxel integrations [-admin ADDR ...] -consumer|-producer|-contract|-logical-address X
                                       original consumer → platforms → final producer chains,
                                       live from every federated platform's catalog
  vaxel demo-producer [-addr :8080]    serve dev mode's demo producer alone (containers, tests)
  vaxel version
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("no command given")
	}
	switch args[0] {
	case "run":
		return cmdRun(ctx, args[1:], stderr)
	case "dev":
		return cmdDev(ctx, args[1:], stdout, stderr)
	case "check-config":
		return cmdCheckConfig(args[1:], stdout)
	case "cert":
		return cmdCert(args[1:], stdout)
	case "catalog":
		return cmdCatalog(ctx, args[1:], stdout)
	case "trace":
		return cmdTrace(ctx, args[1:], stdout)
	case "integrations":
		return cmdIntegrations(ctx, args[1:], stdout)
	case "demo-producer":
		return cmdDemoProducer(ctx, args[1:], stdout)
	case "version":
		fmt.Fprintln(stdout, node.Version)
		return nil
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

func loadConfig(fs *flag.FlagSet, args []string) (*config.Config, error) {
	path := fs.String("config", "", "configuration file (YAML)")
	var sets multiFlag
	fs.Var(&sets, "set", "override a setting: section.key=value (repeatable)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *path == "" {
		return nil, fmt.Errorf("%s: -config is required", fs.Name())
	}
	return config.Load(*path, os.Environ(), sets)
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.Log.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// callLogOption sends the per-call lines of a JSON logger straight to w,
// batched (router.Config.CallLogWriter), with the logger's node and
// platform attributes. Text logs keep going through slog.
func callLogOption(cfg *config.Config, w io.Writer) []node.Option {
	if cfg.Log.Format == "text" {
		return nil
	}
	return []node.Option{node.WithCallLog(w, slog.String("node", cfg.Node.Name), slog.String("platform", cfg.Node.Platform))}
}

// syncWriter serializes writes from the logger and the batched call log
// when they share a writer that is not safe for concurrent use.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func cmdRun(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, err := loadConfig(flag.NewFlagSet("run", flag.ContinueOnError), args)
	if err != nil {
		return err
	}
	w := &syncWriter{w: stderr}
	log := newLogger(cfg, w).With("node", cfg.Node.Name, "platform", cfg.Node.Platform)
	n, err := node.New(cfg, log, callLogOption(cfg, w)...)
	if err != nil {
		return err
	}
	return n.Run(ctx)
}

func cmdCheckConfig(args []string, stdout io.Writer) error {
	cfg, err := loadConfig(flag.NewFlagSet("check-config", flag.ContinueOnError), args)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "configuration OK: node %s of platform %s, router %s, admin %s, raft %s\n",
		cfg.Node.Name, cfg.Node.Platform, cfg.Router.HTTPSAddr, cfg.Admin.Addr, cfg.Raft.Bind)
	return nil
}
