package router_test

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"math/big"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vaxel/vaxel/pki"
	"github.com/vaxel/vaxel/router"
)

// identityCA is a throw-away CA for the identity tests.
func identityCA(t *testing.T) *pki.CA {
	t.Helper()
	ca, err := pki.NewCA("identity test CA", pki.ECDSAP256, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// identityCert issues a certificate with an arbitrary subject; pki.Request
// only covers the attributes SITHS uses, and these tests need OU,
// multi-valued RDNs and odd string types. rawSubject, if set, replaces name.
func identityCert(t *testing.T, ca *pki.CA, name pkix.Name, rawSubject []byte) *x509.Certificate {
	t.Helper()
	// The certificate key is irrelevant here; reuse the CA's.
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      name,
		RawSubject:   rawSubject,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, ca.Key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func identityIssue(t *testing.T, ca *pki.CA, cn, hsaID string) *pki.Issued {
	t.Helper()
	is, err := ca.Issue(pki.Request{CommonName: cn, SerialNumber: hsaID, Organization: "Inera AB", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	return is
}

// rdn builds one RDN attribute with an explicit ASN.1 string type.
func rdn(oid asn1.ObjectIdentifier, tag int, content []byte) pkix.AttributeTypeAndValue {
	return pkix.AttributeTypeAndValue{Type: oid, Value: asn1.RawValue{Tag: tag, Bytes: content}}
}

var (
	oidCN     = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidSerial = asn1.ObjectIdentifier{2, 5, 4, 5}
	oidOU     = asn1.ObjectIdentifier{2, 5, 4, 11}
	oidEmail  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
)

func TestSenderIDFromCert(t *testing.T) {
	ca := identityCA(t)
	siths := identityIssue(t, ca, "consumer", "TSTNMT2321000156-B02").Cert
	noSerial := identityIssue(t, ca, "no serial", "").Cert
	ou := identityCert(t, ca, pkix.Name{CommonName: "client", OrganizationalUnit: []string{"tp"}, Organization: []string{"SKL"}, Country: []string{"SE"}}, nil)

	defaultPattern := regexp.MustCompile(`(?:2.5.4.5|SERIALNUMBER)=([^,]+)`)
	tests := []struct {
		name    string
		cert    *x509.Certificate
		pattern *regexp.Regexp
		want    string
		wantOK  bool
	}{
		{name: "SERIALNUMBER attribute", cert: siths, want: "TSTNMT2321000156-B02", wantOK: true},
		// SubjectString renders SERIALNUMBER as 2.5.4.5=#13145453544e4d54323332313030303135362d423032,
		// the reference example, which the hex rule turns back into the HSA-ID.
		{name: "reference default pattern, hex value", cert: siths, pattern: defaultPattern, want: "TSTNMT2321000156-B02", wantOK: true},
		{name: "OU pattern", cert: ou, pattern: regexp.MustCompile(`OU=([^,]+)`), want: "tp", wantOK: true},
		{name: "no SERIALNUMBER", cert: noSerial},
		{name: "no SERIALNUMBER, default pattern", cert: noSerial, pattern: defaultPattern},
		{name: "pattern does not match", cert: siths, pattern: regexp.MustCompile(`OU=([^,]+)`)},
		{name: "pattern without group", cert: siths, pattern: regexp.MustCompile(`CN=consumer`)},
		{name: "empty group", cert: ou, pattern: regexp.MustCompile(`(#?)OU=`)},
		{name: "odd-length hex", cert: siths, pattern: regexp.MustCompile(`2\.5\.4\.5=(#13145)`)},
		{name: "truncated DER", cert: siths, pattern: regexp.MustCompile(`2\.5\.4\.5=(#131454)`)},
		{name: "hex of a non-string", cert: siths, pattern: regexp.MustCompile(`(#)`)},
		{name: "nil certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := router.SenderIDFromCert(tc.cert, tc.pattern)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("SenderIDFromCert = %q, %v; want %q, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestSenderIDFromCertHexForms(t *testing.T) {
	ca := identityCA(t)
	// The pattern picks the hex value whatever attribute it is on; these
	// cover string types and lengths the reference's fixed 2-byte header
	// rule gets wrong or right.
	long := strings.Repeat("X", 200) // long-form DER length
	tests := []struct {
		name string
		attr pkix.AttributeTypeAndValue
		want string
	}{
		{name: "PrintableString", attr: rdn(oidSerial, asn1.TagPrintableString, []byte("SE2321000016-1234")), want: "SE2321000016-1234"},
		{name: "UTF8String", attr: rdn(oidSerial, asn1.TagUTF8String, []byte("SE2321000016-ÅÄÖ")), want: "SE2321000016-ÅÄÖ"},
		{name: "BMPString", attr: rdn(oidSerial, asn1.TagBMPString, []byte{0, 'S', 0, 'E', 0, '1'}), want: "SE1"},
		{name: "long value", attr: rdn(oidSerial, asn1.TagPrintableString, []byte(long)), want: long},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := asn1.Marshal(pkix.RDNSequence{{tc.attr}, {rdn(oidCN, asn1.TagPrintableString, []byte("c"))}})
			if err != nil {
				t.Fatal(err)
			}
			cert := identityCert(t, ca, pkix.Name{}, raw)
			got, ok := router.SenderIDFromCert(cert, regexp.MustCompile(`2\.5\.4\.5=([^,]+)`))
			if !ok || got != tc.want {
				t.Errorf("got %q, %v; want %q (subject %s)", got, ok, tc.want, router.SubjectString(cert))
			}
		})
	}
}

func TestSubjectString(t *testing.T) {
	ca := identityCA(t)
	mustRaw := func(seq pkix.RDNSequence) []byte {
		raw, err := asn1.Marshal(seq)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	tests := []struct {
		name string
		cert *x509.Certificate
		want string
	}{
		{
			name: "SITHS-like, most specific first, SERIALNUMBER as hex",
			cert: identityIssue(t, ca, "consumer", "TSTNMT2321000156-B02").Cert,
			want: "2.5.4.5=#13145453544e4d54323332313030303135362d423032,CN=consumer,O=Inera AB",
		},
		{
			name: "keywords",
			cert: identityCert(t, ca, pkix.Name{
				CommonName: "client", OrganizationalUnit: []string{"tp"}, Organization: []string{"SKL"},
				Locality: []string{"Unknown"}, Province: []string{"GBG"}, Country: []string{"SE"},
			}, nil),
			want: "CN=client,OU=tp,O=SKL,L=Unknown,ST=GBG,C=SE",
		},
		{
			name: "escaping like Java",
			cert: identityCert(t, ca, pkix.Name{CommonName: ` a,b+c=d#e;f<g>h"i\j `}, nil),
			want: `CN=\ a\,b\+c\=d\#e\;f\<g\>h\"i\\j\ `,
		},
		{
			name: "multi-valued RDN, email as OID, UTF8String",
			cert: identityCert(t, ca, pkix.Name{}, mustRaw(pkix.RDNSequence{
				{rdn(oidOU, asn1.TagUTF8String, []byte("Vård"))},
				{rdn(oidCN, asn1.TagPrintableString, []byte("a")), rdn(oidEmail, asn1.TagIA5String, []byte("x@y"))},
			})),
			want: "CN=a+1.2.840.113549.1.9.1=#1603784079,OU=Vård",
		},
		{
			name: "NumericString under a keyword is hex, as in Java",
			cert: identityCert(t, ca, pkix.Name{}, mustRaw(pkix.RDNSequence{
				{rdn(oidCN, asn1.TagNumericString, []byte("42"))},
			})),
			want: "CN=#12023432",
		},
		{
			name: "T61String read as ISO-8859-1",
			cert: identityCert(t, ca, pkix.Name{}, mustRaw(pkix.RDNSequence{
				{rdn(oidCN, asn1.TagT61String, []byte{'V', 0xe5, 'r', 'd'})},
			})),
			want: "CN=Vård",
		},
		{name: "nil", want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := router.SubjectString(tc.cert); got != tc.want {
				t.Errorf("SubjectString =\n %s\nwant\n %s", got, tc.want)
			}
		})
	}
}

func TestCertFromHeader(t *testing.T) {
	ca := identityCA(t)
	leaf := identityIssue(t, ca, "consumer", "SE2321000016-1234")
	pemText := string(leaf.CertPEM)
	b64 := base64.StdEncoding.EncodeToString(leaf.Cert.Raw)
	caB64 := base64.StdEncoding.EncodeToString(ca.Cert.Raw)
	fullyEscaped := strings.ReplaceAll(url.QueryEscape(pemText), "+", "%20")

	ok := []struct {
		name, value string
	}{
		{name: "PEM", value: pemText},
		{name: "PEM without whitespace", value: removeAll(pemText, "\n")},
		{name: "PEM newlines as spaces", value: strings.ReplaceAll(pemText, "\n", " ")},
		{name: "PEM CRLF and tabs", value: strings.ReplaceAll(pemText, "\n", "\r\n\t")},
		{name: "PEM chain, first wins", value: pemText + string(ca.CertPEM)},
		{name: "Traefik base64 DER", value: b64},
		{name: "Traefik chain", value: b64 + "," + caB64},
		{name: "URL-escaped PEM (nginx)", value: fullyEscaped},
		{name: "URL-escaped PEM, path escaping", value: url.PathEscape(pemText)},
		{name: "URL-escaped PEM, lower-case hex", value: strings.ReplaceAll(fullyEscaped, "%0A", "%0a")},
		{name: "Traefik 1.7 escaped base64", value: url.QueryEscape(b64) + "," + url.QueryEscape(caB64)},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			cert, err := router.CertFromHeader(tc.value)
			if err != nil {
				t.Fatalf("CertFromHeader: %v", err)
			}
			if !cert.Equal(leaf.Cert) {
				t.Fatalf("got certificate %q, want the leaf", cert.Subject)
			}
			if id, _ := router.SenderIDFromCert(cert, nil); id != "SE2321000016-1234" {
				t.Errorf("sender id %q", id)
			}
		})
	}

	bad := []struct {
		name, value string
		want        error
	}{
		{name: "empty", value: "", want: router.ErrNoCertificate},
		{name: "blank", value: " \t ", want: router.ErrNoCertificate},
		{name: "unknown type", value: "hello", want: router.ErrUnknownCertType},
		{name: "private key PEM", value: "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----", want: router.ErrUnknownCertType},
		{name: "garbage base64", value: "MIIgarbage!!", want: router.ErrCertParse},
		{name: "valid base64, truncated DER", value: base64.StdEncoding.EncodeToString(leaf.Cert.Raw[:60]), want: router.ErrCertParse},
		{name: "PEM with garbage body", value: "-----BEGIN CERTIFICATE-----\nMIIB@@@\n-----END CERTIFICATE-----", want: router.ErrCertParse},
		{name: "PEM without end", value: pemText[:len(pemText)-30], want: router.ErrCertParse},
		{name: "bad URL escape", value: "-----BEGIN%20CERTIFICATE-----%0AMII%zz", want: router.ErrCertParse},
	}
	all := []error{router.ErrNoCertificate, router.ErrUnknownCertType, router.ErrCertParse}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			cert, err := router.CertFromHeader(tc.value)
			if cert != nil || !errors.Is(err, tc.want) {
				t.Fatalf("CertFromHeader = %v, %v; want %v", cert, err, tc.want)
			}
			for _, other := range all {
				if other != tc.want && errors.Is(err, other) {
					t.Errorf("error %v also matches %v", err, other)
				}
			}
		})
	}
}

func TestIPAllowList(t *testing.T) {
	tests := []struct {
		list, ip string
		want     bool
	}{
		{list: "127.0.0.1,10.", ip: "10.1.2.3", want: true},
		{list: "127.0.0.1,10.", ip: "127.0.0.1", want: true},
		{list: "127.0.0.1,10.", ip: "11.1.2.3"},
		{list: " 127.0.0.1 , 10. ", ip: " 10.1.2.3 ", want: true},
		// Prefix semantics are the reference's, quirks included.
		{list: "10.1", ip: "10.100.0.1", want: true},
		{list: "127.0.0.1", ip: "127.0.0.10", want: true},
		{list: "1.2.3.4,5.6.7.8", ip: "10.20.30.40"},
		// X-Forwarded-For with several addresses is one string.
		{list: "1.2.3.4", ip: "1.2.3.4, 9.9.9.9", want: true},
		{list: "", ip: "127.0.0.1"},
		{list: " , ,", ip: "127.0.0.1"},
		{list: "127.0.0.1,,10.", ip: "192.168.0.1"},
		{list: "127.0.0.1", ip: ""},
		{list: "127.0.0.1", ip: "  "},
	}
	for _, tc := range tests {
		if got := router.ParseIPAllowList(tc.list).Allowed(tc.ip); got != tc.want {
			t.Errorf("ParseIPAllowList(%q).Allowed(%q) = %v, want %v", tc.list, tc.ip, got, tc.want)
		}
	}
	if got := router.ParseIPAllowList(" a ,, b,"); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("ParseIPAllowList = %q, want [a b]", got)
	}
	if (router.IPAllowList{" 10. ", ""}).Allowed("10.0.0.1") != true {
		t.Error("literal list with untrimmed entry")
	}
	if (router.IPAllowList{""}).Allowed("10.0.0.1") {
		t.Error("an empty entry allowed everything")
	}
	var empty router.IPAllowList
	if empty.Allowed("127.0.0.1") {
		t.Error("nil list allowed an address")
	}
}

func removeAll(s, old string) string { return strings.ReplaceAll(s, old, "") }
