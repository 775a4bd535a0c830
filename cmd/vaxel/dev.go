package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vaxel/vaxel/catalog/command"
	"github.com/vaxel/vaxel/node"
	"github.com/vaxel/vaxel/node/config"
	"github.com/vaxel/vaxel/pki"
)

// Demo identities and the demo contract. HSA-IDs follow TAK's character rules.
const (
	devPlatform = "DEV"
	devConsumer = "SE0000000001-DEMO"
	devAddress  = "SE0000000002-DEMO"
	devProducer = "DEMO-PRODUCER"
	devContract = "urn:riv:itintegration:monitoring:PingForConfigurationResponder:1"
)

const devRequest = `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:add="urn:riv:itintegration:registry:1" xmlns:urn="urn:riv:itintegration:monitoring:PingForConfigurationResponder:1">
   <soapenv:Header><add:LogicalAddress>` + devAddress + `</add:LogicalAddress></soapenv:Header>
   <soapenv:Body><urn:PingForConfiguration><urn:serviceContractNamespace>` + devContract + `</urn:serviceContractNamespace><urn:logicalAddress>` + devAddress + `</urn:logicalAddress></urn:PingForConfiguration></soapenv:Body>
</soapenv:Envelope>
`

// cmdDev starts a one-node platform on loopback: a fresh test PKI, a demo
// producer, the node, and a demo catalog applied as an SKLTP order; then it
// makes a call through the router with the consumer's certificate, prints it
// and the curl command that repeats it, and runs until interrupted. With
// -federation it starts three federated platforms instead (devfed.go).
func cmdDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	dir := fs.String("dir", ".vaxel-dev", "working directory for the PKI, data and request file (recreated)")
	port := fs.Int("port", 20000, "router HTTPS port on 127.0.0.1 (0 = any free port)")
	verbose := fs.Bool("v", false, "write the node's JSON log to stderr")
	once := fs.Bool("once", false, "exit after the demo call (for scripts and tests)")
	fed := fs.Bool("federation", false, "start three federated platforms instead (region A, NATIONAL, region B) and call across them; -port is region A's first router")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *fed {
		dirSet := false
		fs.Visit(func(f *flag.Flag) { dirSet = dirSet || f.Name == "dir" })
		if !dirSet {
			*dir = ".vaxel-dev-federation"
		}
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	if *fed {
		return cmdDevFederation(ctx, abs, *port, *verbose, *once, stdout, stderr)
	}
	pkiDir, issue, err := devPKI(abs, "vaxel dev CA")
	if err != nil {
		return err
	}
	for _, c := range [][2]string{{"node-1", "SE0000000000-DEVNODE"}, {"consumer", devConsumer}, {"admin", "ADMIN"}} {
		if err := issue(c[0], c[1]); err != nil {
			return err
		}
	}

	producerURL, stopProducer, err := startDemoProducer()
	if err != nil {
		return err
	}
	defer stopProducer()

	cfg := config.Default()
	cfg.Node = config.Node{Name: "node-1", Platform: devPlatform, DataDir: filepath.Join(abs, "data", "node-1")}
	cfg.TLS = config.TLS{Cert: filepath.Join(pkiDir, "node-1.crt"), Key: filepath.Join(pkiDir, "node-1.key"), CA: filepath.Join(pkiDir, "ca.crt")}
	cfg.Router.HTTPSAddr = fmt.Sprintf("127.0.0.1:%d", *port)
	cfg.Router.InstanceName = "vaxel DEV"
	cfg.Raft.Bind = "127.0.0.1:0"
	cfg.Admin.Addr = "127.0.0.1:0"
	cfg.Admin.Allow = []string{"ADMIN"}
	// Gossip on, as on a real platform: a further node started with
	// gossip.join pointing here would be added as a voter by this one.
	key, err := newGossipKey()
	if err != nil {
		return err
	}
	cfg.Gossip.KeyFile = filepath.Join(pkiDir, "gossip.key")
	if err := os.WriteFile(cfg.Gossip.KeyFile, []byte(key+"\n"), 0o600); err != nil {
		return err
	}
	cfg.Gossip.Bind = "127.0.0.1:0"
	cfg.Log.Format = "json"
	if err := config.LoadDerived(&cfg); err != nil {
		return err
	}
	logOut := io.Discard
	if *verbose {
		logOut = &syncWriter{w: stderr}
	}
	log := slog.New(slog.NewJSONHandler(logOut, nil)).With("node", "node-1", "platform", devPlatform)
	n, err := node.New(&cfg, log, node.WithCallLog(logOut, slog.String("node", "node-1"), slog.String("platform", devPlatform)))
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- n.Run(runCtx) }()

	if err := waitLeader(ctx, n, done); err != nil {
		return err
	}
	if err := loadDemoCatalog(ctx, n, producerURL); err != nil {
		cancel()
		<-done
		return err
	}
	select {
	case <-n.Ready():
	case err := <-done:
		return fmt.Errorf("node stopped: %w", err)
	case <-time.After(10 * time.Second):
		cancel()
		<-done
		return fmt.Errorf("node did not become ready within 10 s")
	}
	https, _ := n.RouterAddrs()
	reqFile := filepath.Join(abs, "request.xml")
	if err := os.WriteFile(reqFile, []byte(devRequest), 0o644); err != nil {
		return err
	}
	status, body, corr, err := demoCall(pkiDir, https)
	if err != nil {
		cancel()
		<-done
		return fmt.Errorf("demo call: %w", err)
	}
	fmt.Fprintf(stdout, `vaxel dev: platform %q is running (one node, catalog replicated by Raft).
  router (mTLS)   https://%s/vp
  admin API       https://%s   (client certificate %s/admin.crt)
  demo producer   %s

A call through the platform, as consumer %s, for contract
%s at logical address %s:

  HTTP %d, x-skltp-correlation-id: %s
%s

Repeat it with:
  curl --cert %s/consumer.crt --key %s/consumer.key --cacert %s/ca.crt \
       -H 'Content-Type: text/xml;charset=UTF-8' --data-binary @%s https://%s/vp

Explain the routing:
  vaxel catalog explain -admin %s -cert %s/admin.crt -key %s/admin.key -ca %s/ca.crt \
       %s %s %s
`, devPlatform, https, n.AdminAddr(), pkiDir, producerURL, devConsumer, devContract, devAddress,
		status, corr, indent(body), pkiDir, pkiDir, pkiDir, reqFile, https,
		n.AdminAddr(), pkiDir, pkiDir, pkiDir, devConsumer, devContract, devAddress)
	if status != http.StatusOK {
		cancel()
		<-done
		return fmt.Errorf("demo call answered HTTP %d", status)
	}
	if *once {
		cancel()
		return <-done
	}
	fmt.Fprintln(stdout, "\nPress Ctrl-C to stop.")
	return <-done
}

// devPKI recreates dir with a fresh test CA in dir/pki and returns a
// function that issues a loopback certificate (CN name, SERIALNUMBER hsa)
// into it.
func devPKI(dir, caName string) (pkiDir string, issue func(name, hsa string) error, err error) {
	if err := os.RemoveAll(dir); err != nil {
		return "", nil, fmt.Errorf("clean %s: %w", dir, err)
	}
	pkiDir = filepath.Join(dir, "pki")
	ca, err := pki.NewCA(caName, pki.ECDSAP256, 0)
	if err != nil {
		return "", nil, err
	}
	if err := ca.WriteDir(pkiDir); err != nil {
		return "", nil, err
	}
	issue = func(name, hsa string) error {
		is, err := ca.Issue(pki.Request{CommonName: name, SerialNumber: hsa, DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}})
		if err != nil {
			return err
		}
		return pki.WriteFiles(pkiDir, name, is)
	}
	return pkiDir, issue, nil
}

func indent(s string) string { return "  " + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n  ") }

func waitLeader(ctx context.Context, n *node.Node, done <-chan error) error {
	deadline := time.After(15 * time.Second)
	for !n.Store().IsLeader() {
		select {
		case err := <-done:
			return fmt.Errorf("node stopped: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return fmt.Errorf("no catalog leader elected within 15 s")
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// loadDemoCatalog creates the RIV profiles with an admin change, then the
// demo integration with an SKLTP order, exactly as an operator would.
func loadDemoCatalog(ctx context.Context, n *node.Node, producerURL string) error {
	return applyDemoOrder(ctx, n, devPlatform, producerURL, devProducer, devConsumer)
}

// applyDemoOrder gives platform's catalog (through n, its leader) the RIV
// profiles, then with an order the demo contract at the demo address routed
// to url (served by component) and authorized for consumer.
func applyDemoOrder(ctx context.Context, n *node.Node, platform, url, component, consumer string) error {
	meta := command.Meta{Actor: "vaxel dev", Source: "admin", UnixNano: time.Now().UnixNano()}
	var ops []command.Op
	for _, p := range []string{"RIVTABP20", "RIVTABP21"} {
		if _, ok := n.Catalog().RivProfileByName(p); ok {
			continue // a retry after a lost answer
		}
		ops = append(ops, command.Op{Op: "put", Kind: "rivprofile", Entity: json.RawMessage(fmt.Sprintf(`{"name":%q}`, p))})
	}
	if len(ops) > 0 {
		res, err := n.Store().Apply(ctx, command.TypeMutate, &command.Mutate{Meta: meta, Ops: ops})
		if err != nil {
			return err
		}
		if res.Err != nil {
			return res.Err
		}
	}
	today := time.Now().Format("2006-01-02T15:04:05-0700")
	order := fmt.Sprintf(`{
  "plattform": %q, "formatVersion": 1.0, "version": 1,
  "bestallningsTidpunkt": %q, "genomforandeTidpunkt": %q,
  "utforare": "vaxel dev", "kommentar": "demo catalog",
  "inkludera": {
    "tjanstekontrakt": [{"namnrymd": %q, "beskrivning": "PingForConfiguration", "majorVersion": 1}],
    "logiskadresser": [{"hsaId": %q, "beskrivning": "Demo care unit"}],
    "tjanstekomponenter": [{"hsaId": %q, "beskrivning": "Demo producer"}, {"hsaId": %q, "beskrivning": "Demo consumer"}],
    "anropsbehorigheter": [{"logiskAdress": %q, "tjanstekontrakt": %q, "tjanstekonsument": %q}],
    "vagval": [{"adress": %q, "logiskAdress": %q, "tjanstekontrakt": %q, "rivtaprofil": "RIVTABP21", "tjanstekomponent": %q}]
  }
}`, platform, today, today, devContract, devAddress, component, consumer,
		devAddress, devContract, consumer, url, devAddress, devContract, component)
	meta.Source = "order"
	res, err := n.Store().Apply(ctx, command.TypeOrder, &command.Order{Meta: meta, Platform: platform, Order: json.RawMessage(order)})
	if err != nil {
		return err
	}
	if res.Err != nil || len(res.Errors) > 0 {
		return fmt.Errorf("demo order refused: %v %v", res.Err, res.Errors)
	}
	return nil
}

func demoCall(pkiDir, addr string) (int, string, string, error) {
	tc, err := pki.ClientTLSConfig(filepath.Join(pkiDir, "consumer.crt"), filepath.Join(pkiDir, "consumer.key"), []string{filepath.Join(pkiDir, "ca.crt")})
	if err != nil {
		return 0, "", "", err
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
	resp, err := c.Post("https://"+addr+"/vp", "text/xml;charset=UTF-8", strings.NewReader(devRequest))
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get("x-skltp-correlation-id"), nil
}

// startDemoProducer answers PingForConfiguration like a RIVTA producer.
func startDemoProducer() (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: demoProducerHandler()}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String() + "/ping", func() { _ = srv.Close() }, nil
}

// demoProducerHandler answers every request with a PingForConfiguration
// response (also served alone by 'vaxel demo-producer', see producer.go).
func demoProducerHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		// The platforms the call crossed, when it says (federation).
		var history string
		if h := r.Header.Get("x-rivta-routing-history"); h != "" {
			history = "<configuration><name>routingHistory</name><value>" + html.EscapeString(h) + "</value></configuration>"
		}
		fmt.Fprintf(w, `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Header/><soapenv:Body><PingForConfigurationResponse xmlns="urn:riv:itintegration:monitoring:PingForConfigurationResponder:1"><version>1.0</version><pingDateTime>%s</pingDateTime><configuration><name>originalConsumer</name><value>%s</value></configuration>%s</PingForConfigurationResponse></soapenv:Body></soapenv:Envelope>`,
			time.Now().Format("20060102150405"), html.EscapeString(r.Header.Get("x-rivta-original-serviceconsumer-hsaid")), history)
	})
}
