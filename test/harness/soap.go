package harness

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// SOAP11NS is the SOAP 1.1 envelope namespace.
const SOAP11NS = "http://schemas.xmlsoap.org/soap/envelope/"

// Response is an HTTP answer, read whole.
type Response struct {
	Status  int
	Header  http.Header
	Body    []byte
	Elapsed time.Duration
}

// Client returns an HTTP client for consumer calls: HTTP/1.1 with
// keep-alive, presenting cert over TLS (nil: no client certificate).
func Client(p *PKI, cert *Cert) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:     p.ClientTLS(cert),
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: tr}
}

// Post sends a SOAP call. Header names in hdr are sent exactly as written
// (no canonicalisation). Content-Type defaults to text/xml;charset=UTF-8.
func Post(c *http.Client, url string, body []byte, hdr map[string]string) (*Response, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header["Content-Type"] = []string{"text/xml;charset=UTF-8"}
	for k, v := range hdr {
		if strings.EqualFold(k, "Content-Type") {
			delete(req.Header, "Content-Type")
		}
		req.Header[k] = []string{v}
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b, Elapsed: time.Since(start)}, nil
}

// Fault is a SOAP 1.1 fault as a consumer reads it.
type Fault struct {
	EnvelopeNS string
	Code       string // faultcode, e.g. "SOAP-ENV:Client"
	String     string // faultstring
	Detail     string // detail/detailString
	HasDetail  bool   // a <detailString> element is present
}

type faultEnvelope struct {
	XMLName xml.Name
	Body    struct {
		Fault *struct {
			Code   string `xml:"faultcode"`
			String string `xml:"faultstring"`
			Detail *struct {
				String *string `xml:"detailString"`
			} `xml:"detail"`
		} `xml:"Fault"`
	} `xml:"Body"`
}

// ParseFault reads a SOAP 1.1 fault envelope.
func ParseFault(b []byte) (*Fault, error) {
	var e faultEnvelope
	if err := xml.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("not XML: %w", err)
	}
	if e.XMLName.Local != "Envelope" {
		return nil, fmt.Errorf("root element is %s, not Envelope", e.XMLName.Local)
	}
	if e.Body.Fault == nil {
		return nil, errors.New("no Fault in Body")
	}
	f := &Fault{EnvelopeNS: e.XMLName.Space, Code: e.Body.Fault.Code, String: e.Body.Fault.String}
	if d := e.Body.Fault.Detail; d != nil && d.String != nil {
		f.Detail, f.HasDetail = *d.String, true
	}
	return f, nil
}

var addressElem = regexp.MustCompile(`(<(?:[A-Za-z_][\w.\-]*:)?(?:To|LogicalAddress)\b[^>]*>)([^<]*)(</)`)

// WithAddress returns a RIVTA request with the text of its first
// To/LogicalAddress header element replaced by addr (XML-escaped).
func WithAddress(tmpl []byte, addr string) []byte {
	var esc bytes.Buffer
	_ = xml.EscapeText(&esc, []byte(addr))
	done := false
	return addressElem.ReplaceAllFunc(tmpl, func(m []byte) []byte {
		if done {
			return m
		}
		done = true
		sm := addressElem.FindSubmatch(m)
		out := append([]byte{}, sm[1]...)
		out = append(out, esc.Bytes()...)
		return append(out, sm[3]...)
	})
}

// Element is an element of a parsed XML document: its name, direct text and
// children, enough to check what a producer received.
type Element struct {
	Name     xml.Name
	Attr     []xml.Attr
	Text     string
	Children []*Element
}

// ParseXML parses a document into Elements.
func ParseXML(b []byte) (*Element, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	var stack []*Element
	var root *Element
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			e := &Element{Name: t.Name, Attr: t.Attr}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.Children = append(p.Children, e)
			} else {
				root = e
			}
			stack = append(stack, e)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].Text += string(t)
			}
		}
	}
	if root == nil {
		return nil, errors.New("empty document")
	}
	return root, nil
}

// Child returns the first direct child with the local name.
func (e *Element) Child(local string) *Element {
	for _, c := range e.Children {
		if c.Name.Local == local {
			return c
		}
	}
	return nil
}

// Find returns every element below e (e included) with the local name.
func (e *Element) Find(local string) []*Element {
	var out []*Element
	var walk func(*Element)
	walk = func(x *Element) {
		if x.Name.Local == local {
			out = append(out, x)
		}
		for _, c := range x.Children {
			walk(c)
		}
	}
	walk(e)
	return out
}
