package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/vaxel/vaxel/pki"
)

const catalogUsage = `vaxel catalog COMMAND -admin HOST:PORT -cert FILE -key FILE -ca FILE [args]

  apply-order FILE         apply an SKLTP order (beställning JSON); prints TAK's report
  import FILE              replace the catalog with a TAK export (takdump JSON)
  export                   print the catalog as a TAK export (takdump JSON)
  list KIND                list entities (contract, logicaladdress, component, route, authorization, ...)
  explain CONSUMER CONTRACT LOGICAL-ADDRESS
                           how such a call routes now, with the reference's routing trace
  versions                 list catalog versions (who, when, what)
  rollback VERSION         undo every change after VERSION
`

func cmdCatalog(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%s", catalogUsage)
	}
	sub := args[0]
	fs := flag.NewFlagSet("catalog "+sub, flag.ContinueOnError)
	client := adminFlags(fs, "admin API address", 10*time.Minute)
	comment := fs.String("comment", "", "comment recorded with the change")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	rest := fs.Args()
	c, err := client()
	if err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	q := url.Values{}
	if *comment != "" {
		q.Set("comment", *comment)
	}
	switch sub {
	case "apply-order", "import":
		if len(rest) != 1 {
			return fmt.Errorf("catalog %s: want one file", sub)
		}
		b, err := os.ReadFile(rest[0])
		if err != nil {
			return err
		}
		path := "/api/v1/orders"
		if sub == "import" {
			path = "/api/v1/import"
		}
		return c.do(ctx, "POST", path, q, b, stdout)
	case "export":
		return c.do(ctx, "GET", "/api/v1/export", nil, nil, stdout)
	case "list":
		if len(rest) != 1 {
			return fmt.Errorf("catalog list: want a kind")
		}
		return c.do(ctx, "GET", "/api/v1/catalog/"+rest[0], nil, nil, stdout)
	case "explain":
		if len(rest) != 3 {
			return fmt.Errorf("catalog explain: want CONSUMER CONTRACT LOGICAL-ADDRESS")
		}
		v := url.Values{"consumer": {rest[0]}, "contract": {rest[1]}, "logicalAddress": {rest[2]}}
		return c.do(ctx, "GET", "/api/v1/explain", v, nil, stdout)
	case "versions":
		return c.do(ctx, "GET", "/api/v1/versions", nil, nil, stdout)
	case "rollback":
		if len(rest) != 1 {
			return fmt.Errorf("catalog rollback: want the version to return to")
		}
		q.Set("to", rest[0])
		return c.do(ctx, "POST", "/api/v1/rollback", q, nil, stdout)
	}
	return fmt.Errorf("catalog: unknown command %q\n%s", sub, catalogUsage)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

type adminClient struct {
	base string
	http *http.Client
}

// adminFlags adds the admin API's connection flags (-admin, -cert, -key,
// -ca; defaults from VAXEL_ADMIN*) to fs; after fs.Parse, the function it
// returns makes the client, whose calls take at most timeout.
func adminFlags(fs *flag.FlagSet, adminHelp string, timeout time.Duration) func() (*adminClient, error) {
	admin := fs.String("admin", envOr("VAXEL_ADMIN", "127.0.0.1:7443"), adminHelp)
	cert := fs.String("cert", os.Getenv("VAXEL_ADMIN_CERT"), "client certificate (on admin.allow)")
	key := fs.String("key", os.Getenv("VAXEL_ADMIN_KEY"), "client key")
	ca := fs.String("ca", os.Getenv("VAXEL_ADMIN_CA"), "platform CA (verifies the node)")
	return func() (*adminClient, error) {
		tc, err := pki.ClientTLSConfig(*cert, *key, []string{*ca})
		if err != nil {
			return nil, err
		}
		return &adminClient{base: "https://" + *admin, http: &http.Client{Timeout: timeout, Transport: &http.Transport{TLSClientConfig: tc}}}, nil
	}
}

func (c *adminClient) do(ctx context.Context, method, path string, q url.Values, body []byte, out io.Writer) error {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("admin API: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("admin API %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	_, err = out.Write(b)
	return err
}
