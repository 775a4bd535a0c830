package routertest

import (
	"bytes"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Envelope21 is a RIVTABP21 request for contract ns to logical address la:
// the address in urn:riv:itintegration:registry:1 LogicalAddress and a
// Body whose first child is in ns.
func Envelope21(la, ns string) string {
	return `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:add="urn:riv:itintegration:registry:1" xmlns:urn="` + ns + `">
   <soapenv:Header><add:LogicalAddress>` + la + `</add:LogicalAddress></soapenv:Header>
   <soapenv:Body><urn:Request><urn:id>1</urn:id></urn:Request></soapenv:Body>
</soapenv:Envelope>`
}

// Envelope20 is the RIVTABP20 form of Envelope21: the address in a
// WS-Addressing To element.
func Envelope20(la, ns string) string {
	return `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:add="http://www.w3.org/2005/08/addressing" xmlns:urn="` + ns + `">
   <soapenv:Header><add:To>` + la + `</add:To></soapenv:Header>
   <soapenv:Body><urn:Request><urn:id>1</urn:id></urn:Request></soapenv:Body>
</soapenv:Envelope>`
}

// EnvelopeWith is a RIVTABP21 envelope with the given Header content
// (e.g. an address element) and Body content (e.g. "" for an empty Body).
func EnvelopeWith(header, body string) string {
	return `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:add="urn:riv:itintegration:registry:1"><soapenv:Header>` +
		header + `</soapenv:Header><soapenv:Body>` + body + `</soapenv:Body></soapenv:Envelope>`
}

// Response is what a consumer got back.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Client calls the router as a consumer.
type Client struct {
	URL  string // e.g. https://127.0.0.1:1234/vp
	HTTP *http.Client
}

// NewHTTPSClient calls the router's mTLS listener at addr with tc (see
// PKI.ClientTLS). Idle connections are closed at the end of the test.
func NewHTTPSClient(t testing.TB, addr string, tc *tls.Config) *Client {
	return newClient(t, "https://"+addr+"/vp", &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: false, MaxIdleConnsPerHost: 16})
}

// NewHTTPClient calls the router's plain-HTTP listener at addr.
func NewHTTPClient(t testing.TB, addr string) *Client {
	return newClient(t, "http://"+addr+"/vp", &http.Transport{MaxIdleConnsPerHost: 16})
}

func newClient(t testing.TB, url string, tr *http.Transport) *Client {
	c := &Client{URL: url, HTTP: &http.Client{Timeout: 20 * time.Second, Transport: tr}}
	t.Cleanup(tr.CloseIdleConnections)
	return c
}

// Do posts body with Content-Type text/xml;charset=UTF-8 and the headers,
// whose names are sent exactly as written (not canonicalised), so tests
// control their case.
func (c *Client) Do(body string, header map[string]string) (Response, error) {
	req, err := http.NewRequest(http.MethodPost, c.URL, strings.NewReader(body))
	if err != nil {
		return Response{}, err
	}
	req.Header["Content-Type"] = []string{"text/xml;charset=UTF-8"}
	req.Header["SOAPAction"] = []string{`"urn:riv:test"`}
	for k, v := range header {
		req.Header[k] = []string{v}
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, err
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// Post is Do that fails the test on a transport error.
func (c *Client) Post(t testing.TB, body string, header map[string]string) Response {
	t.Helper()
	r, err := c.Do(body, header)
	if err != nil {
		t.Fatalf("POST %s: %v", c.URL, err)
	}
	return r
}

// Fault is a SOAP 1.1 fault as the router writes it.
type Fault struct {
	Code   string // faultcode, e.g. SOAP-ENV:Client
	String string // faultstring, e.g. "VP004 [instance] Det finns …"
	Detail string // detail/detailString
}

// ParseFault reads the fault out of a SOAP 1.1 fault envelope.
func ParseFault(body []byte) (Fault, error) {
	var env struct {
		XMLName xml.Name `xml:"http://schemas.xmlsoap.org/soap/envelope/ Envelope"`
		Body    struct {
			Fault *struct {
				Code   string `xml:"faultcode"`
				String string `xml:"faultstring"`
				Detail struct {
					String string `xml:"detailString"`
				} `xml:"detail"`
			} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Fault"`
		} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Body"`
	}
	if err := xml.NewDecoder(bytes.NewReader(body)).Decode(&env); err != nil {
		return Fault{}, fmt.Errorf("not a SOAP envelope: %w: %.300q", err, body)
	}
	if env.Body.Fault == nil {
		return Fault{}, errors.New("no SOAP fault in the envelope")
	}
	f := env.Body.Fault
	return Fault{Code: f.Code, String: f.String, Detail: f.Detail.String}, nil
}
