package router

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Code is a VP error code. The numbering, fault codes and Swedish texts are
// those of the reference's VpSemanticErrorCodeEnum and vp-messages.properties.
type Code uint8

// The VP error codes (skltp-vp.md §4.2).
const (
	CodeVP001 Code = iota + 1 // RIV version missing
	CodeVP002                 // client certificate problem / no sender id
	CodeVP003                 // no logical address in the RIV header
	CodeVP004                 // no route (vägval)
	CodeVP005                 // producer does not support the RIV version
	CodeVP006                 // more than one route
	CodeVP007                 // no authorization (behörighet)
	CodeVP008                 // no contact with TAK and no local cache
	CodeVP009                 // error contacting the producer
	CodeVP010                 // route without physical address
	CodeVP011                 // caller not on the IP whitelist
	CodeVP012                 // RIV transformation / resources failure
	CodeVP013                 // sender may not set the original consumer header
	CodeVP014                 // routing loop between platforms
	CodeVP015                 // malformed request
)

type faultCodeInfo struct {
	name   string
	server bool
	msg    string
}

var faultCodes = [...]faultCodeInfo{
	CodeVP001: {"VP001", false, "Rivta-version saknas i anrop eller stöds ej av tjänsteplattformen."},
	CodeVP002: {"VP002", false, "Fel i klientcertifikat. Saknas, är av felaktig typ, eller är felaktigt utformad."},
	CodeVP003: {"VP003", false, "Logisk adressat (ReceiverId) saknas i RivHeadern i inkommande meddelande."},
	CodeVP004: {"VP004", false, "Det finns inget vägval i tjänsteadresseringskatalogen som matchar anropets logiska adressat (ReceiverId) och tjänstekontrakt. Kontrollera uppgifterna i anropet och vid behov, beställ konfigurering i aktuell tjänsteplattform."},
	CodeVP005: {"VP005", false, "Tjänsteproducenten stödjer inte anropets angivna rivta-version. Kontrollera uppgifterna."},
	CodeVP006: {"VP006", true, "Internt fel i tjänsteplattformen. Det finns fler än en tjänsteproducent definierad i tjänsteadresseringskatalogen som matchar logisk adressat (ReceiverId), tjänstekontrakt och dagens datum. Tyder på felkonfiguration. Rapportera felet till tjänsteplattformsförvaltningen."},
	CodeVP007: {"VP007", true, "Tjänstekonsumenten saknar behörighet att anropa den logiska adressaten via detta tjänstekontrakt. Kontrollera uppgifterna och vid behov, tillse att det beställs konfiguration i aktuell tjänsteplattform."},
	CodeVP008: {"VP008", true, "Internt fel i tjänsteplattformen. Ingen kontakt med tjänsteadresseringskatalogen. Informera tjänsteplattformsförvaltningen."},
	CodeVP009: {"VP009", true, "Fel vid kontakt med tjänsteproducenten."},
	CodeVP010: {"VP010", true, "Internt fel i tjänsteplattformen. URL saknas för tjänsteproducenten i tjänsteplattformens tjänsteadresseringskatalog."},
	CodeVP011: {"VP011", false, "Anrop har gjorts utanför TLS vilket ej är tillåtet. Tjänstekonsumenten ska alltid använda TLS för säker kommunikation."},
	CodeVP012: {"VP012", true, "Internt fel i tjänsteplattformen. Nödvändiga resurser saknas för att VP skall fungera."},
	CodeVP013: {"VP013", false, "Enligt tjänsteplattformens konfiguration saknar tjänstekonsumenten rätt att använda headern x-rivta-original-serviceconsumer-hsaid. Kontakta tjänsteplattformsförvaltningen."},
	CodeVP014: {"VP014", true, "Anropsförmedlingen för den logiska adressaten har givit upphov till rundgång mellan tjänsteplattformar. Rapportera felet till tjänsteplattformsförvaltningen."},
	CodeVP015: {"VP015", false, "Anrop ej korrekt utformat och kan därför inte behandlas."},
}

func (c Code) valid() bool { return c >= CodeVP001 && int(c) < len(faultCodes) }

// String returns the code as the reference writes it, e.g. "VP007".
func (c Code) String() string {
	if c.valid() {
		return faultCodes[c].name
	}
	s := strconv.Itoa(int(c))
	return "VP" + strings.Repeat("0", max(0, 3-len(s))) + s
}

// FaultCode returns the SOAP 1.1 faultcode: "SOAP-ENV:Server" for the codes
// the reference classes as server errors, "SOAP-ENV:Client" otherwise.
func (c Code) FaultCode() string {
	// Unknown codes are treated like VP009, the reference's default code.
	if !c.valid() || faultCodes[c].server {
		return "SOAP-ENV:Server"
	}
	return "SOAP-ENV:Client"
}

// Message returns the Swedish text that follows "VPnnn [instance] " in the
// faultstring.
func (c Code) Message() string {
	if c.valid() {
		return faultCodes[c].msg
	}
	return ""
}

const (
	faultPrefix = `<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Header/><SOAP-ENV:Body><SOAP-ENV:Fault><faultcode>`
	faultSuffix = `</detailString></detail></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>`
)

// AppendFault appends the SOAP 1.1 fault envelope the reference produces
// with SAAJ (skltp-vp.md §4.1), byte for byte: faultstring
// "VPnnn [instanceName] <message>" and the detail in
// <detail><detailString>, which is present even when detail is empty. Text
// is escaped like the reference's serializer (&, <, > and CR); characters
// XML cannot carry become U+FFFD so the fault stays well-formed.
func AppendFault(dst []byte, c Code, instanceName, detail string) []byte {
	dst = append(dst, faultPrefix...)
	dst = append(dst, c.FaultCode()...)
	dst = append(dst, "</faultcode><faultstring>"...)
	dst = append(dst, c.String()...)
	dst = append(dst, " ["...)
	dst = faultAppendEscaped(dst, instanceName)
	dst = append(dst, "] "...)
	dst = append(dst, c.Message()...)
	dst = append(dst, "</faultstring><detail><detailString>"...)
	dst = faultAppendEscaped(dst, detail)
	return append(dst, faultSuffix...)
}

// faultSpecial marks the ASCII bytes faultAppendEscaped must look at:
// markup characters and the control characters other than tab and LF.
var faultSpecial = func() (t [utf8.RuneSelf]bool) {
	for c := 0; c < ' '; c++ {
		t[c] = c != '\t' && c != '\n'
	}
	t['&'], t['<'], t['>'] = true, true, true
	return t
}()

// faultAppendEscaped copies runs that need no escaping in one append.
func faultAppendEscaped(dst []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf && !faultSpecial[c] {
			i++
			continue
		}
		var repl string
		width := 1
		switch {
		case c == '&':
			repl = "&amp;"
		case c == '<':
			repl = "&lt;"
		case c == '>':
			repl = "&gt;"
		case c == '\r':
			repl = "&#13;"
		case c < ' ':
			repl = "\uFFFD"
		default:
			r, n := utf8.DecodeRuneInString(s[i:])
			width = n
			if r == utf8.RuneError && n == 1 || r == 0xFFFE || r == 0xFFFF {
				repl = "\uFFFD"
			}
		}
		if repl == "" {
			i += width
			continue
		}
		dst = append(dst, s[last:i]...)
		dst = append(dst, repl...)
		i += width
		last = i
	}
	return append(dst, s[last:]...)
}

// IsSOAPFault reports whether a producer response is passed to the consumer
// unchanged instead of becoming VP009: the reference only requires HTTP 500
// and the SOAP 1.1 envelope namespace somewhere in the body.
func IsSOAPFault(status int, body []byte) bool {
	return status == http.StatusInternalServerError && bytes.Contains(body, []byte("http://schemas.xmlsoap.org/soap/envelope/"))
}

// Detail texts of the reference (the English <CODE>_DETAILS strings and the
// messages its processors build), for the detailString of each situation.

// DetailNoRIVVersion is the VP001 detail.
func DetailNoRIVVersion() string { return "No RIV version configured" }

// DetailNoSenderInCert is the VP002 detail on the TLS route when the
// subject of the client certificate yields no sender id.
func DetailNoSenderInCert(dn string) string { return "No senderId found in Certificate: " + dn }

// DetailNoSenderInHeaderCert is the VP002 detail on the HTTP route when the
// certificate from the forwarding header yields no sender id.
func DetailNoSenderInHeaderCert() string { return "No senderId found in Certificate" }

// DetailNoCertInHeader is the VP002 detail when the certificate header is
// missing.
func DetailNoCertInHeader(header string) string {
	return "No certificate found in httpheader " + header
}

// DetailUnknownCertType is the VP002 detail for a certificate header the
// reference cannot classify; the misspelling is the reference's.
func DetailUnknownCertType(header string) string {
	return "Exception, unkown certificate type found in httpheader " + header
}

// DetailCertParse is the VP002 detail for a certificate header that does
// not parse; the misspelling is the reference's.
func DetailCertParse(header string) string {
	return "Exception occured parsing certificate in httpheader " + header
}

// DetailNoSenderForAuthorization is the VP002 detail raised by the
// authorization step when no sender id is known.
func DetailNoSenderForAuthorization(ns, la string) string {
	return "No sender ID (SERIALNUMBER) found in certificate. serviceNamespace: " + ns + ", receiverId: " + la + ", senderId: null"
}

// DetailNoAddress is the VP003 detail, trailing space included.
func DetailNoAddress() string { return "No receiverId (logical address) found in message header. " }

// DetailNoRoute is the VP004 detail. The reference appends a hint when the
// address contains a space character (it checks contains(" "), so other
// whitespace gets no hint).
func DetailNoRoute(ns, la string) string {
	s := "No receiverId (logical address) found for serviceNamespace: " + ns + ", receiverId: " + la
	if strings.Contains(la, " ") {
		s += ". Whitespace detected in incoming request!"
	}
	return s
}

// DetailWrongProfile is the VP005 detail; rivIn is the request's profile
// as the reference stores it, e.g. "rivtabp20".
func DetailWrongProfile(rivIn string) string {
	return "No receiverId (logical address) with matching Riv-version found for " + rivIn
}

// DetailMultipleRoutes is the VP006 detail.
func DetailMultipleRoutes(ns, la string) string {
	return "More than one receiverId (logical address) with matching Riv-version found for serviceNamespace: " + ns + ", receiverId: " + la
}

// DetailNoAuthorization is the VP007 detail.
func DetailNoAuthorization(ns, la, sender string) string {
	return "Authorization missing for serviceNamespace: " + ns + ", receiverId: " + la + ", senderId: " + sender
}

// DetailPlatformNotAllowed is the VP007 detail for a call from a
// federation platform that this platform does not peer with.
func DetailPlatformNotAllowed(platform, sender string) string {
	return "Platform " + platform + " (" + sender + ") is not among the platforms this platform peers with (federation.allow_platforms)"
}

// DetailTooManyHops is the VP014 detail for a call that has crossed more
// platforms than the hop limit allows.
func DetailTooManyHops(platforms, limit int) string {
	return "Routing history shows " + strconv.Itoa(platforms) + " platforms crossed; the limit is " + strconv.Itoa(limit) + " (router.max_hops)"
}

// DetailNoCatalog is the VP008 detail.
func DetailNoCatalog() string {
	return "No contact with TAK at startup, and no local cache to fallback on, not possible to route call"
}

// DetailProducerError is the general VP009 detail for an exception raised
// while calling the producer at url, with the Java class name the reference
// would show.
func DetailProducerError(url, exceptionClass, message string) string {
	return "Error connecting to service producer at address " + url + ". Exception Caught by Camel when contacting producer. Exception information: (" + exceptionClass + ": " + message + ")"
}

// DetailProducerTimeout is the VP009 detail for a producer read timeout.
func DetailProducerTimeout(url string) string {
	return DetailProducerError(url, "io.netty.handler.timeout.ReadTimeoutException", "Timeout when waiting on response from producer.")
}

// DetailProducerStatus is the VP009 detail for a non-2xx producer answer
// that is not a SOAP fault passed through.
func DetailProducerStatus(url string, status int) string {
	code := strconv.Itoa(status)
	return DetailProducerError(url, "org.apache.camel.component.netty.http.NettyHttpOperationFailedException",
		"Netty HTTP operation failed invoking "+url+" with statusCode: "+code) + "\nVP_PRODUCER_EXCEPTION_HTTP_STATUS=" + code
}

// DetailProducerEmpty is the VP009 detail for a producer answer without
// body. An empty reason is filled in with the standard reason phrase, as
// Netty prints the status.
func DetailProducerEmpty(url string, status int, reason string) string {
	if reason == "" {
		reason = http.StatusText(status)
	}
	return "Error connecting to service producer at address " + url + ". Empty message when server responded with status code: " + strconv.Itoa(status) + " " + reason
}

// DetailProducerIO is the VP009 detail for a socket-level failure such as a
// refused connection, shown as the reference's java.net.ConnectException.
func DetailProducerIO(url, errText string) string {
	return DetailProducerError(url, "java.net.ConnectException", errText)
}

// DetailNoCallAddress is the VP010 detail.
func DetailNoCallAddress(ns, la string) string {
	return "Physical Address field is empty in Service Producer for serviceNamespace: " + ns + ", receiverId: " + la
}

// DetailNotWhitelisted is the VP011 detail (with the reference's double
// space); header is "CamelNettyRemoteAddress" or the forwarded-for header.
func DetailNotWhitelisted(ip, header string) string {
	return "Caller was not on the white list of accepted IP-addresses.  IP-address: " + ip + ". HTTP header that caused checking: " + header
}

// DetailOriginalConsumerNotAllowed is the VP013 detail.
func DetailOriginalConsumerNotAllowed() string {
	return "Sender is not approved to set header x-rivta-original-serviceconsumer-hsaid."
}

// DetailMTOMExtraction is the VP015 detail when no envelope can be taken out
// of an MTOM request.
func DetailMTOMExtraction() string {
	return "Inkommande begäran är ej korrekt utformat och kan därför inte behandlas."
}
