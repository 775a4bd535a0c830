package router

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf16"

	"github.com/valyala/fasthttp"
)

// Consumer identity (reference §2.3). These functions are pure so that the
// HTTPS route (peer certificate), the HTTP route (certificate in a header
// set by a TLS-terminating proxy) and the tests share one implementation.

// SenderIDFromCert returns the consumer HSA-ID carried in cert.
//
// With pattern nil it is the subject attribute SERIALNUMBER (OID 2.5.4.5),
// where SITHS puts the HSA-ID. With a pattern (compatibility with the
// reference's certificate.senderid.subject.pattern, e.g. `OU=([^,]+)` or the
// reference default `(?:2.5.4.5|SERIALNUMBER)=([^,]+)`) it is group 1 of the
// first match against SubjectString(cert). Because SubjectString renders
// SERIALNUMBER as hex-encoded DER, a matched value starting with '#' is
// decoded: the reference drops '#' and the 2-byte tag/length and hex-decodes
// the rest (SenderIdExtractor); this implementation parses the DER value
// properly, which gives the same result for every value shorter than 128
// bytes and a correct one for longer values.
//
// It returns false if there is no certificate, no match, an empty value or
// an undecodable hex value. A pattern without a capturing group never
// matches; configuration validation should reject it.
func SenderIDFromCert(cert *x509.Certificate, pattern *regexp.Regexp) (string, bool) {
	if cert == nil {
		return "", false
	}
	if pattern == nil {
		// crypto/x509 has already decoded the DER string, so no hex rule.
		id := cert.Subject.SerialNumber
		return id, id != ""
	}
	m := pattern.FindStringSubmatch(SubjectString(cert))
	if len(m) < 2 || m[1] == "" {
		return "", false
	}
	if hexDER, ok := strings.CutPrefix(m[1], "#"); ok {
		return decodeHexDERString(hexDER)
	}
	return m[1], true
}

// decodeHexDERString decodes the RFC 2253 "#<hex of DER>" form of a string
// attribute value (without the '#').
func decodeHexDERString(h string) (string, bool) {
	der, err := hex.DecodeString(h)
	if err != nil {
		return "", false
	}
	var v asn1.RawValue
	rest, err := asn1.Unmarshal(der, &v)
	if err != nil || len(rest) != 0 || v.Class != asn1.ClassUniversal || v.IsCompound {
		return "", false
	}
	s, ok := derStringValue(v.Tag, v.Bytes)
	if !ok || s == "" {
		return "", false
	}
	return s, true
}

// rfc2253Keywords are the attribute types Java's X500Principal.getName()
// writes by keyword; every other type, SERIALNUMBER and emailAddress
// included, is written as a dotted OID with a hex DER value.
var rfc2253Keywords = map[string]string{
	"2.5.4.3":                    "CN",
	"2.5.4.6":                    "C",
	"2.5.4.7":                    "L",
	"2.5.4.8":                    "ST",
	"2.5.4.9":                    "STREET",
	"2.5.4.10":                   "O",
	"2.5.4.11":                   "OU",
	"0.9.2342.19200300.100.1.25": "DC",
	"0.9.2342.19200300.100.1.1":  "UID",
}

// subjectAVA keeps the raw attribute value: the hex form must reproduce the
// exact DER (string type included), which pkix.Name has already discarded.
type subjectAVA struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

// subjectRDNSET is one relative distinguished name; encoding/asn1 treats a
// slice type whose name ends in SET as an ASN.1 SET.
type subjectRDNSET []subjectAVA

// SubjectString renders the certificate subject the way Java's
// X500Principal.getName() does (RFC 2253): most-specific RDN first, no
// spaces after ',', multi-valued RDNs joined with '+', only CN, C, L, ST,
// STREET, O, OU, DC and UID as keywords, and every other attribute as
// <dotted OID>=#<lower-case hex of the DER value>, so SERIALNUMBER appears as
// `2.5.4.5=#1314...`. Text values are escaped as Java does. Operator regexes
// written for SKLTP (certificate.senderid.subject.pattern) therefore keep
// matching.
//
// A subject that cannot be parsed falls back to Go's pkix.Name.String().
func SubjectString(cert *x509.Certificate) string {
	if cert == nil {
		return ""
	}
	var rdns []subjectRDNSET
	if rest, err := asn1.Unmarshal(cert.RawSubject, &rdns); err != nil || len(rest) != 0 {
		return cert.Subject.String()
	}
	var b strings.Builder
	for i := len(rdns) - 1; i >= 0; i-- {
		if i != len(rdns)-1 {
			b.WriteByte(',')
		}
		for j, ava := range rdns[i] {
			if j > 0 {
				b.WriteByte('+')
			}
			writeRFC2253AVA(&b, ava)
		}
	}
	return b.String()
}

// writeRFC2253AVA writes one attribute: keyword (or dotted OID) '=' value,
// where the value is text only for a keyword attribute of a string type.
func writeRFC2253AVA(b *strings.Builder, ava subjectAVA) {
	kw, known := rfc2253Keywords[ava.Type.String()]
	if !known {
		kw = ava.Type.String()
	}
	b.WriteString(kw)
	b.WriteByte('=')
	v := ava.Value
	if known && v.Class == asn1.ClassUniversal && !v.IsCompound && javaStringTags[v.Tag] {
		if s, ok := derStringValue(v.Tag, v.Bytes); ok {
			b.WriteString(rfc2253Escape(s))
			return
		}
	}
	b.WriteByte('#')
	b.WriteString(hex.EncodeToString(v.FullBytes))
}

// rfc2253Escape escapes like Java's AVA.toRFC2253String: a backslash before
// each of ,=+<>#;"\ (anywhere, not only where RFC 2253 requires it), "\00"
// for NUL, and a backslash before leading and trailing spaces and CRs.
func rfc2253Escape(s string) string {
	const escapees = ",=+<>#;\"\\"
	var esc []rune
	for _, r := range s {
		switch {
		case strings.ContainsRune(escapees, r):
			esc = append(esc, '\\', r)
		case r == 0:
			esc = append(esc, '\\', '0', '0')
		default:
			esc = append(esc, r)
		}
	}
	blank := func(r rune) bool { return r == ' ' || r == '\r' }
	lead := 0
	for lead < len(esc) && blank(esc[lead]) {
		lead++
	}
	trail := len(esc) - 1
	for trail >= 0 && blank(esc[trail]) {
		trail--
	}
	var b strings.Builder
	for i, r := range esc {
		if i < lead || i > trail {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// javaStringTags are the string types Java renders as text under a keyword
// (AVA.isDerString); other types are written in hex. Java (17/18) then
// reads the content bytes as UTF-8 whatever the type, which garbles
// non-ASCII T61String and BMPString values; derStringValue decodes them
// properly instead, as nobody writes regexes against the garbled form.
var javaStringTags = map[int]bool{
	asn1.TagPrintableString: true,
	asn1.TagT61String:       true,
	asn1.TagIA5String:       true,
	tagGeneralString:        true,
	asn1.TagBMPString:       true,
	asn1.TagUTF8String:      true,
}

// ASN.1 string tags encoding/asn1 has no constants for.
const (
	tagNumericString   = 18
	tagVisibleString   = 26
	tagGeneralString   = 27
	tagUniversalString = 28
)

// derStringValue decodes the content of a DER string of the given universal
// tag. ok is false for non-string types.
func derStringValue(tag int, b []byte) (string, bool) {
	switch tag {
	case asn1.TagPrintableString, asn1.TagIA5String, asn1.TagUTF8String,
		tagGeneralString, tagNumericString, tagVisibleString:
		return string(b), true
	case asn1.TagT61String:
		// Java reads T61String as ISO-8859-1.
		r := make([]rune, len(b))
		for i, c := range b {
			r[i] = rune(c)
		}
		return string(r), true
	case asn1.TagBMPString:
		if len(b)%2 != 0 {
			return "", false
		}
		u := make([]uint16, len(b)/2)
		for i := range u {
			u[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
		}
		return string(utf16.Decode(u)), true
	case tagUniversalString:
		if len(b)%4 != 0 {
			return "", false
		}
		r := make([]rune, len(b)/4)
		for i := range r {
			r[i] = rune(b[4*i])<<24 | rune(b[4*i+1])<<16 | rune(b[4*i+2])<<8 | rune(b[4*i+3])
		}
		return string(r), true
	}
	return "", false
}

var (
	// ErrNoCertificate is returned by CertFromHeader for an empty value
	// (VP002 "No certificate found in httpheader <name>").
	ErrNoCertificate = errors.New("no certificate")
	// ErrUnknownCertType is returned by CertFromHeader for a value that is
	// neither PEM nor base64 DER (VP002 "Exception, unkown certificate type
	// found in httpheader <name>").
	ErrUnknownCertType = errors.New("unknown certificate type")
	// ErrCertParse wraps every CertFromHeader error about a value that looks
	// like a certificate but does not decode or parse (VP002 "Exception
	// occured parsing certificate in httpheader <name>").
	ErrCertParse = errors.New("certificate parse error")
)

const (
	pemCertBegin = "-----BEGIN CERTIFICATE-----"
	pemCertEnd   = "-----END CERTIFICATE-----"
)

// CertFromHeader parses the client certificate that a TLS-terminating proxy
// put into a request header, following the reference's PemConverter:
//
//   - a PEM certificate; whitespace inside the base64 body is ignored, since
//     proxies fold or drop the newlines. Only the first certificate is used.
//   - a value starting with "MII" (base64 DER, as Traefik's passTLSClientCert
//     `pem: true` sends it today); a chain is comma separated and only the
//     part before the first ',' is used.
//
// Deliberate extension (the reference does no URL-decoding): a value that
// starts with "-----BEGIN%20" or contains "%0A" is URL-decoded first, which
// accepts URL-escaped PEM such as nginx's $ssl_client_escaped_cert, and an
// "MII" value containing '%' is URL-decoded too, which accepts Traefik 1.7,
// whose passTLSClientCert URL-escaped the base64 (%2B, %2F, %3D). Base64
// never contains '%', so neither rule changes how a value the reference
// accepts is read.
//
// The error wraps ErrNoCertificate, ErrUnknownCertType or ErrCertParse, one
// per VP002 detail. The certificate is not verified; the caller trusts the
// header only because it trusts the proxy that set it.
func CertFromHeader(value string) (*x509.Certificate, error) {
	v := strings.TrimSpace(value)
	if v == "" {
		return nil, ErrNoCertificate
	}
	if strings.HasPrefix(v, "-----BEGIN%20") || strings.Contains(v, "%0A") || strings.Contains(v, "%0a") ||
		(strings.HasPrefix(v, "MII") && strings.Contains(v, "%")) {
		// PathUnescape, not QueryUnescape: a literal '+' is base64, not a space.
		u, err := url.PathUnescape(v)
		if err != nil {
			return nil, fmt.Errorf("%w: url-decode: %w", ErrCertParse, err)
		}
		v = strings.TrimSpace(u)
	}

	var b64 string
	switch {
	case strings.Contains(v, pemCertBegin):
		_, body, _ := strings.Cut(v, pemCertBegin)
		body, _, found := strings.Cut(body, pemCertEnd)
		if !found {
			return nil, fmt.Errorf("%w: PEM without %s", ErrCertParse, pemCertEnd)
		}
		b64 = body
	case strings.HasPrefix(v, "MII"):
		b64, _, _ = strings.Cut(v, ",")
	default:
		return nil, ErrUnknownCertType
	}
	der, err := base64.StdEncoding.DecodeString(removeSpace(b64))
	if err != nil {
		return nil, fmt.Errorf("%w: base64: %w", ErrCertParse, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCertParse, err)
	}
	return cert, nil
}

func removeSpace(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
}

// IPAllowList is the reference's ip.whitelist: callers of the plain-HTTP
// route (normally the TLS-terminating proxy and platform-internal
// components) must be on it (VP011).
type IPAllowList []string

// ParseIPAllowList splits a comma-separated list and trims the entries.
// Empty entries are dropped: since matching is by prefix, an empty entry
// (from "a,,b" or a trailing comma) would allow every address.
func ParseIPAllowList(s string) IPAllowList {
	var l IPAllowList
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			l = append(l, e)
		}
	}
	return l
}

// Allowed reports whether ip, trimmed, starts with one of the entries,
// trimmed. This is the reference's string prefix match, kept for
// compatibility with existing whitelists such as "127.0.0.1,10.": "10."
// allows 10.0.0.0/8, but "10.1" also allows 10.100.0.1 and "127.0.0.1"
// allows 127.0.0.10. An empty ip and an empty list are never allowed.
//
// ip is compared as written, so pass the bare address (no port, IPv4-mapped
// IPv6 unmapped), e.g. netip.AddrPort.Addr().Unmap().String(). An
// X-Forwarded-For value with several addresses is checked as one string,
// i.e. by its first address, as in the reference.
func (l IPAllowList) Allowed(ip string) bool {
	ip = strings.TrimSpace(ip)
	if ip == "" {
		return false
	}
	for _, e := range l {
		// Entries are trimmed again: a list may be built without
		// ParseIPAllowList.
		if e = strings.TrimSpace(e); e != "" && strings.HasPrefix(ip, e) {
			return true
		}
	}
	return false
}

// peekHeader returns the value of the request header name, matching the
// name case-insensitively as HTTP requires: the listeners keep header names
// as sent (DisableHeaderNamesNormalizing), which makes fasthttp's Peek
// case-sensitive, so "X-Rivta-Routing-History" would slip past a Peek for
// "x-rivta-routing-history". It returns nil if the header is absent and a
// non-nil empty slice if it is present but empty: the reference tells the
// two apart (e.g. x-rivta-original-serviceconsumer-hsaid, §2.4).
func peekHeader(h *fasthttp.RequestHeader, name string) []byte {
	if v := h.Peek(name); v != nil {
		return v
	}
	for k, v := range h.All() {
		if equalFoldASCII(k, name) {
			if v == nil {
				return []byte{}
			}
			return v
		}
	}
	return nil
}

// equalFoldASCII is strings.EqualFold for header names, without converting
// b to a string.
func equalFoldASCII(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
