package router

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"time"

	"github.com/vaxel/vaxel/tak"
)

// Config configures a Router. DefaultConfig gives the reference's values.
type Config struct {
	// InstanceID identifies this platform in x-rivta-routing-history and in
	// x-vp-instance-id (vp.instance.id); InstanceName is shown in fault
	// strings "VPnnn [InstanceName] …" (vp.instance.name).
	InstanceID   string
	InstanceName string
	// NodeName names this node in hop records (node.name).
	NodeName string

	// HTTPSAddr is the mTLS listener (required). TLS must require and verify
	// client certificates from the consumers' CAs.
	HTTPSAddr string
	TLS       *tls.Config

	// HTTPAddr is the optional plain-HTTP listener for a TLS-terminating
	// proxy and internal callers (AGP, EI). Every caller's IP must be on
	// HTTPAllowList; the consumer's certificate comes in CertHeader.
	HTTPAddr      string
	HTTPAllowList IPAllowList
	CertHeader    string // default x-vp-auth-cert
	ForwardedFor  string // default X-Forwarded-For

	// SenderPattern extracts the consumer HSA-ID from the certificate subject
	// (certificate.senderid.subject.pattern); nil uses the SERIALNUMBER attribute.
	SenderPattern *regexp.Regexp

	// OriginalConsumerAllowList lists consumers allowed to set
	// x-rivta-original-serviceconsumer-hsaid (empty: all). RejectOriginalConsumer
	// answers VP013 to others instead of logging a warning.
	OriginalConsumerAllowList []string
	RejectOriginalConsumer    bool

	// PropagateCorrelationHTTPS sends x-skltp-correlation-id to https
	// producers too. The reference defaults to false, its Helm chart to
	// true; we default to true because one correlation id across every
	// platform of a chain is a product promise.
	PropagateCorrelationHTTPS bool

	UserAgent   string // outbound User-Agent
	ContentType string // outbound Content-Type

	// MaxBodySize bounds request and response bodies (vp.max.receive.length).
	// Bodies over 64 KiB stream through the router rather than being held
	// (stream.go), so this is a limit on messages, not on memory.
	MaxBodySize int

	// ConnectTimeout bounds connecting to a producer; RetryDelay is the wait
	// before the one retry a refused connection gets (vp.producer.retry.delay).
	ConnectTimeout time.Duration
	RetryDelay     time.Duration
	// PlatformConnectTimeout bounds connecting to another platform's node
	// (a call address vaxel://NAME) when there is another node to go on
	// to; the last (or only) one gets ConnectTimeout. Shorter than
	// ConnectTimeout: until gossip declares a dead node failed, calls that
	// pick it wait this long before the next node is tried (and it is then
	// passed by, DownHold).
	PlatformConnectTimeout time.Duration
	// MaxHops bounds the platforms a call may have crossed before this one
	// (instance ids in x-rivta-routing-history after the sender): more is
	// refused with VP014, as a loop is. 0: no limit.
	MaxHops int
	// ProducerTLS is the client certificate and trusted CAs for https producers
	// and the next platform.
	ProducerTLS *tls.Config
	// MaxConnsPerProducer bounds pooled connections per producer host.
	MaxConnsPerProducer int

	// Routing are the VG#VE and HSA-climb switches.
	Routing tak.RoutingOptions

	// ReadTimeout and WriteTimeout bound a consumer's request read and
	// response write (slow clients); IdleTimeout closes idle keep-alive
	// connections. All three let shutdown finish.
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// MaxHeaderSize bounds the request header block.
	MaxHeaderSize int

	// LogCalls writes one structured line per call.
	LogCalls bool
	Logger   *slog.Logger
	// CallLogWriter, when set, takes the per-call lines off slog: they are
	// encoded as the JSON line slog's JSON handler would write, queued and
	// written to CallLogWriter in batches (every ~100 ms or 64 KiB), and
	// flushed when Run returns. Use it only when Logger is a JSON logger
	// writing to the same place; nil logs calls through Logger. Logger's
	// level still applies. CallLogFields are the static attributes Logger
	// carries (its With attributes, e.g. node, platform, subsystem), written
	// after msg as slog would.
	CallLogWriter io.Writer
	CallLogFields []slog.Attr
	// Hops bounds the store of hop records, one per answered call, that
	// traces are assembled from (hops.go).
	Hops HopConfig
	// Now is the clock; tests inject one. Routes are valid at Now().
	Now func() time.Time
}

// DefaultConfig returns the reference defaults (skltp-vp.md §12).
func DefaultConfig() Config {
	return Config{
		InstanceID:                "dev_env",
		InstanceName:              "SKLTP_DEFAULT_NAME",
		CertHeader:                "x-vp-auth-cert",
		ForwardedFor:              "X-Forwarded-For",
		PropagateCorrelationHTTPS: true,
		UserAgent:                 "SKLTP VP/4.3.x (vaxel)",
		ContentType:               "text/xml;charset=UTF-8",
		MaxBodySize:               15 << 20,
		ConnectTimeout:            2 * time.Second,
		PlatformConnectTimeout:    500 * time.Millisecond,
		MaxHops:                   10,
		RetryDelay:                2 * time.Second,
		MaxConnsPerProducer:       512,
		Routing:                   tak.RoutingOptions{Delimiter: "#"},
		ReadTimeout:               60 * time.Second,
		WriteTimeout:              60 * time.Second,
		IdleTimeout:               120 * time.Second,
		MaxHeaderSize:             64 << 10,
		LogCalls:                  true,
		Hops:                      HopConfig{MaxRecords: defaultHopRecords, MaxAge: defaultHopAge},
	}
}

// Validate checks the configuration and says how to fix it.
func (c *Config) Validate() error {
	switch {
	case c.InstanceID == "":
		return errors.New("router: instance id is empty; set router.instance_id (the platform's id in routing history)")
	case c.HTTPSAddr == "":
		return errors.New("router: https address is empty; set router.https_addr")
	case c.TLS == nil:
		return errors.New("router: the https listener needs TLS; set tls.cert, tls.key and tls.client_ca")
	case c.TLS.ClientAuth != tls.RequireAndVerifyClientCert:
		return errors.New("router: the https listener must require and verify client certificates")
	case c.MaxBodySize <= 0:
		return fmt.Errorf("router: max body size %d must be positive", c.MaxBodySize)
	case c.HTTPAddr != "" && len(c.HTTPAllowList) == 0:
		return errors.New("router: the http listener is on but router.http_allow_list is empty, which refuses every caller (VP011); list the proxy and internal callers, or turn the http listener off")
	}
	if c.SenderPattern != nil && c.SenderPattern.NumSubexp() < 1 {
		return fmt.Errorf("router: sender pattern %q has no capturing group for the HSA-ID", c.SenderPattern)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}
