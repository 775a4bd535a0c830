// Package test is the black-box acceptance suite of skltp-vp.md §9.5: every
// case runs against the built vaxel binary over real TLS, with loopback
// producers started by the test. See README.md for the case → test table.
package test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vaxel/vaxel/test/harness"
)

// The fixture of skltp-vp.md §9.5: instance id dev_env, instance name
// "NTjP Develop", consumer certificate SERIALNUMBER tp.
const (
	instanceID   = "dev_env"
	instanceName = "NTjP Develop"
	platform     = "NTJP-DEVELOP"

	nsCert  = "urn:riv:insuranceprocess:healthreporting:GetCertificateResponder:1"
	nsAct   = "urn:riv:clinicalprocess:activity:actions:GetActivitiesResponder:1"
	nsSched = "urn:riv:crm:scheduling:GetSubjectOfCareScheduleResponder:1"
	nsPing  = "urn:riv:itintegration:monitoring:PingForConfigurationResponder:1"

	// referenceSenderPattern is the reference's default
	// certificate.senderid.subject.pattern; node A uses it so that the
	// SERIALNUMBER is read from its hex-DER form (A35).
	referenceSenderPattern = `(?:2.5.4.5|SERIALNUMBER)=([^,]+)`
	retryDelay             = 400 * time.Millisecond
)

// Consumers (certificate SERIALNUMBER = HSA-ID).
const (
	consumerTP      = "tp"
	consumerDefault = "SenderWithDefaultBehorighet" // only '*' authorizations
	consumerB02     = "TSTNMT2321000156-B02"
	consumerNobody  = "NobodysConsumer" // no authorization at all
	internalSender  = "AGP-INTERNAL"    // only as x-vp-sender-id on internal calls
)

// env is what TestMain sets up for every test: the binary, the PKI, the
// producers; nodes start on first use.
var env struct {
	dir     string
	bin     string
	pki     *harness.PKI
	admin   *harness.Cert
	certs   map[string]*harness.Cert    // by name
	clients map[string]*http.Client     // by certificate name, mTLS
	plain   *http.Client                // no client certificate (plain HTTP listener)
	http    *harness.Producer           // plain-HTTP producer
	https   *harness.Producer           // HTTPS producer, requires vaxel's client certificate
	closed  *harness.ClosedPort         // refuses connections for the whole run
	nodesMu sync.Mutex                  // guards nodes
	nodes   []*harness.Node             // every node started, stopped after the run
	shared  map[string]*sharedNodeState // lazily started shared nodes
}

type sharedNodeState struct {
	once sync.Once
	node *harness.Node
	err  error
}

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "acceptance setup:", err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (code int, err error) {
	env.dir, err = os.MkdirTemp("", "vaxel-acceptance-")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(env.dir)
	env.bin, err = harness.Build(env.dir)
	if err != nil {
		return 1, err
	}
	if env.pki, err = harness.NewPKI(filepath.Join(env.dir, "pki"), "vaxel acceptance CA"); err != nil {
		return 1, err
	}
	env.certs = map[string]*harness.Cert{}
	env.clients = map[string]*http.Client{}
	for _, c := range [][2]string{
		{"admin", "ADMIN"}, {"node-a", "SE0000000000-NODEA"}, {"node-b", "SE0000000000-NODEB"},
		{"node-c", "SE0000000000-NODEC"}, {"node-d", "SE0000000000-NODED"}, {"producer", "VP-TEST-PRODUCER"},
		{consumerTP, consumerTP}, {consumerDefault, consumerDefault}, {consumerB02, consumerB02},
		{consumerNobody, consumerNobody}, {"no-serial", ""},
	} {
		cert, err := env.pki.Issue(c[0], c[1])
		if err != nil {
			return 1, err
		}
		env.certs[c[0]] = cert
		env.clients[c[0]] = harness.Client(env.pki, cert)
	}
	env.admin = env.certs["admin"]
	env.plain = harness.Client(env.pki, nil)

	env.http = harness.NewProducer(nil, okHandler)
	defer env.http.Close()
	env.https = harness.NewProducer(env.pki.ServerTLS(env.certs["producer"], true), okHandler)
	defer env.https.Close()
	setupProducerBehaviours(env.http)
	if env.closed, err = harness.NewClosedPort(); err != nil {
		return 1, err
	}
	defer env.closed.Close()
	env.shared = map[string]*sharedNodeState{"A": {}, "B": {}}

	code = m.Run()

	env.nodesMu.Lock()
	defer env.nodesMu.Unlock()
	for _, n := range env.nodes {
		if err := n.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "node %s: %v\n", n.Cfg.Name, err)
			code = 1
		}
		if code != 0 {
			fmt.Fprintf(os.Stderr, "---- log of node %s (tail) ----\n%s\n", n.Cfg.Name, n.LogTail(60))
		}
	}
	return code, nil
}

// startNode creates and starts a node; shared nodes are stopped after the
// run, others when their test ends.
func startNode(cfg harness.NodeConfig) (*harness.Node, error) {
	cfg.Platform = platform
	cfg.PKI = env.pki
	cfg.AdminAllow = []string{"ADMIN"}
	if cfg.InstanceID == "" {
		cfg.InstanceID = instanceID
	}
	if cfg.InstanceName == "" {
		cfg.InstanceName = instanceName
	}
	// A directory of its own for every node started (go test -count=N).
	dir, err := os.MkdirTemp(env.dir, cfg.Name+"-")
	if err != nil {
		return nil, err
	}
	cfg.Dir = dir
	n, err := harness.NewNode(env.bin, cfg, env.admin)
	if err != nil {
		return nil, err
	}
	env.nodesMu.Lock()
	env.nodes = append(env.nodes, n)
	env.nodesMu.Unlock()
	if err := n.Start(); err != nil {
		return nil, err
	}
	return n, nil
}

// sharedNode starts a shared node once, with setup loading its catalog.
func sharedNode(t *testing.T, name string, cfg harness.NodeConfig, setup func(*harness.Node) error) *harness.Node {
	t.Helper()
	s := env.shared[name]
	s.once.Do(func() {
		start := time.Now()
		n, err := startNode(cfg)
		if err == nil {
			err = setup(n)
		}
		if err == nil {
			err = n.WaitReady(15 * time.Second)
		}
		if err != nil && n != nil {
			err = fmt.Errorf("%w\n---- node log ----\n%s", err, n.LogTail(40))
		}
		s.node, s.err = n, err
		t.Logf("node %s started with its catalog in %s", cfg.Name, time.Since(start).Round(time.Millisecond))
	})
	if s.err != nil {
		t.Fatalf("start node %s: %v", name, s.err)
	}
	return s.node
}

// ownNode starts a node that belongs to one test and stops with it.
func ownNode(t *testing.T, cfg harness.NodeConfig) *harness.Node {
	t.Helper()
	n, err := startNode(cfg)
	if err != nil {
		t.Fatalf("start node %s: %v", cfg.Name, err)
	}
	t.Cleanup(func() {
		if err := n.Stop(); err != nil {
			t.Errorf("stop node %s: %v", cfg.Name, err)
		}
		if t.Failed() {
			t.Logf("---- log of node %s (tail) ----\n%s", cfg.Name, n.LogTail(60))
		}
	})
	return n
}

// nodeA is the main node of §9.5: HTTPS and HTTP listeners, the reference's
// sender pattern, VP013 on for senders other than tp, correlation id not
// propagated to https producers, 400 ms retry delay, no HSA climb for routes
// of urn:riv:crm:scheduling, and the full fixture catalog.
func nodeA(t *testing.T) *harness.Node {
	return sharedNode(t, "A", harness.NodeConfig{
		Name: "node-a", Cert: env.certs["node-a"], HTTP: true,
		Router: map[string]any{
			"sender_pattern":               referenceSenderPattern,
			"original_consumer_allow_list": []string{consumerTP},
			"reject_original_consumer":     true,
			"propagate_correlation_https":  false,
			"retry_delay":                  retryDelay.String(),
			"route_climb_exceptions":       []string{"urn:riv:crm:scheduling"},
		},
	}, loadFixture)
}

// nodeB is a second node with the other switch positions: default sender
// identity (SERIALNUMBER), original-consumer allow list with a warning
// instead of VP013, correlation id propagated to https producers (the
// default). Its catalog comes from the catalog API and an order only.
func nodeB(t *testing.T) *harness.Node {
	return sharedNode(t, "B", harness.NodeConfig{
		Name: "node-b", Cert: env.certs["node-b"],
		Router: map[string]any{
			"original_consumer_allow_list": []string{consumerTP},
			"reject_original_consumer":     false,
		},
	}, loadSmallCatalog)
}

var callSeq atomic.Int64

// newID returns a unique test id for one call (see harness.TestIDHeader).
func newID(t *testing.T) string {
	return fmt.Sprintf("%s-%d", strings.ReplaceAll(t.Name(), "/", "."), callSeq.Add(1))
}

// call posts body to url as consumer (a certificate name; "" for none) with
// the headers, tagged with a fresh test id which it returns.
func call(t *testing.T, url, consumer string, body []byte, hdr map[string]string) (*harness.Response, string) {
	t.Helper()
	id := newID(t)
	h := map[string]string{harness.TestIDHeader: id}
	for k, v := range hdr {
		h[k] = v
	}
	c := env.plain
	if consumer != "" {
		c = env.clients[consumer]
		if c == nil {
			t.Fatalf("no consumer certificate %q", consumer)
		}
	}
	r, err := harness.Post(c, url, body, h)
	if err != nil {
		t.Fatalf("call %s: %v", url, err)
	}
	return r, id
}

// testdata reads a file of testdata/.
func testdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// certReq is the GetCertificate RIVTABP20 request of skltp-vp.md §10.B to addr.
func certReq(t *testing.T, addr string) []byte {
	return harness.WithAddress(testdata(t, "getcertificate-rivtabp20.xml"), addr)
}

// certReq21 is the same request in RIVTABP21 form.
func certReq21(t *testing.T, addr string) []byte {
	return harness.WithAddress(testdata(t, "getcertificate-rivtabp21.xml"), addr)
}

// actReq is a GetActivities RIVTABP21 request to addr.
func actReq(t *testing.T, addr string) []byte {
	return harness.WithAddress(testdata(t, "getactivities-rivtabp21.xml"), addr)
}

// received returns what a producer got for test id, failing unless it got
// exactly want requests.
func received(t *testing.T, p *harness.Producer, id string, want int) []harness.Received {
	t.Helper()
	got := p.Received(id)
	if len(got) != want {
		t.Fatalf("producer received %d requests for %s, want %d", len(got), id, want)
	}
	return got
}
