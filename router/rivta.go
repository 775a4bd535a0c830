package router

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Profile is the RIV TA profile of a request or a route.
type Profile uint8

const (
	// ProfileUnknown means no addressing element was seen, or a route names
	// a profile the router cannot convert to (the reference answers VP005).
	ProfileUnknown Profile = iota
	// ProfileBP20 is RIVTABP20: the address travels in a WS-Addressing To element.
	ProfileBP20
	// ProfileBP21 is RIVTABP21: the address travels in a
	// urn:riv:itintegration:registry:1 LogicalAddress element.
	ProfileBP21
)

// String returns the lower-case form the reference stores and logs
// ("rivtabp20", "rivtabp21"), or "" for ProfileUnknown.
func (p Profile) String() string {
	switch p {
	case ProfileBP20:
		return "rivtabp20"
	case ProfileBP21:
		return "rivtabp21"
	}
	return ""
}

// ParseProfile parses a TAK rivProfil value such as "RIVTABP21". Case is
// ignored because the reference compares profiles with equalsIgnoreCase.
func ParseProfile(s string) (Profile, bool) {
	switch {
	case strings.EqualFold(s, "RIVTABP20"):
		return ProfileBP20, true
	case strings.EqualFold(s, "RIVTABP21"):
		return ProfileBP21, true
	}
	return ProfileUnknown, false
}

// RequestInfo is what routing needs from a SOAP request.
type RequestInfo struct {
	// Contract is the namespace URI of the first child element of the SOAP
	// Body: "" when the Body is empty or absent, and also when that child
	// has no namespace.
	Contract string
	// ContractFound reports whether a first Body child was seen. The
	// reference keeps a null namespace for an empty Body and prints it as
	// "null" in the VP004 detail, unlike a child without namespace ("").
	ContractFound bool
	// LogicalAddress is the text of the last To/LogicalAddress element in the
	// header, exactly as sent: surrounding whitespace is kept because the
	// reference keeps it (and then hints at it in VP004). It is "" when the
	// element is empty or holds only whitespace.
	LogicalAddress string
	// AddressFound mirrors the reference's "receiverId != null": the last
	// address element had non-whitespace text (or, as in the reference, a
	// comment as its first child, whose text is then the address).
	AddressFound bool
	// Profile is BP20 when the last address element was named To and BP21
	// when it was named LogicalAddress, in any namespace.
	Profile Profile
	// Encoding is the encoding pseudo-attribute of the XML declaration as
	// written. Without one it is "" for UTF-8 input and "UTF-16BE" or
	// "UTF-16LE" for input recognised as UTF-16, because such a body must
	// still be re-encoded to UTF-8 before it is forwarded.
	Encoding string
}

// SyntaxError is a request that is not well-formed XML before the point
// where ReadRequest stops. Its text imitates Woodstox, the StAX parser of
// the reference, because the reference puts that text in the VP015
// detailString and the SoapUI suite compares it verbatim.
type SyntaxError struct {
	Msg string
	// Line and Col are Woodstox's "last character" location: Line is
	// 1-based and Col counts UTF-16 code units on the line up to and
	// including the character that was read last. Line is 0 when the
	// reference reports no location (encoding and limit errors).
	Line, Col int
	// Offset is the byte offset in the UTF-8 form of the document where the
	// parser stood.
	Offset int
}

// Error returns Msg followed by Woodstox's location suffix.
func (e *SyntaxError) Error() string {
	if e.Line == 0 {
		return e.Msg
	}
	return e.Msg + "\n at [row,col {unknown-source}]: [" + strconv.Itoa(e.Line) + "," + strconv.Itoa(e.Col) + "]"
}

// ReadRequest extracts contract, logical address, RIV profile and declared
// encoding from a SOAP envelope, following the reference's streaming rules
// (skltp-vp.md §2.2): it stops at the first child of Body, so anything after
// that start tag is neither parsed nor validated. Input may be UTF-8,
// UTF-16 (BOM or byte pattern), or a declared ISO-8859-1/windows-1252.
// Errors are *SyntaxError.
func ReadRequest(body []byte) (RequestInfo, error) { return readRequest(body, false) }

// readRequest is ReadRequest; with alias, the strings of the result may
// share memory with body instead of being copied (the call handler's
// request path, which reads them only while body is unchanged; see
// inbound.str).
func readRequest(body []byte, alias bool) (RequestInfo, error) {
	var info RequestInfo
	buf, detected, transcoded := rivtaSniffUTF16(body)
	p := rivtaGetParser(buf)
	p.alias = alias
	defer p.release()

	decl, err := p.readDecl()
	if err != nil {
		return info, p.checkedErr(err, transcoded)
	}
	info.Encoding = detected
	if decl.hasEnc {
		info.Encoding = rivtaInternEncoding(buf[decl.enc.s:decl.enc.e])
		if !transcoded {
			// The declaration itself is ASCII, so its offsets survive the
			// conversion of a single-byte encoding.
			if cs := rivtaCharsetOf(info.Encoding); cs.singleByte() && rivtaHasHighBytes(buf) {
				buf = cs.appendUTF8(make([]byte, 0, len(buf)+len(buf)/8), buf)
				p.buf = buf
				transcoded = true
			}
		}
	}
	p.pos = decl.end
	p.xml11 = decl.xml11
	if err := p.scanRequest(&info); err != nil {
		return RequestInfo{Encoding: info.Encoding}, p.checkedErr(err, transcoded)
	}
	if err := p.checkChars(p.pos, p.pos, transcoded); err != nil {
		return RequestInfo{Encoding: info.Encoding}, err
	}
	return info, nil
}

// scanRequest is the reference's PayloadInfoParser loop.
func (p *rivtaParser) scanRequest(info *RequestInfo) error {
	headerFound, bodyFound := false, false
	for {
		k, err := p.next()
		if err != nil {
			return err
		}
		switch k {
		case rivtaTokEOF:
			return nil
		case rivtaTokStart:
		default:
			continue
		}
		local := p.local(p.cur)
		if bodyFound {
			info.Contract = p.elemNamespace(p.cur)
			info.ContractFound = true
			return nil
		}
		switch string(local) {
		case "Body":
			bodyFound = true
		case "Header":
			headerFound = true
		}
		if !headerFound {
			continue
		}
		switch string(local) {
		case "To":
			info.Profile = ProfileBP20
		case "LogicalAddress":
			info.Profile = ProfileBP21
		default:
			continue
		}
		if err := p.readAddress(info); err != nil {
			return err
		}
	}
}

// readAddress is the reference's getReceiver: the value is whatever single
// event follows the address start tag.
func (p *rivtaParser) readAddress(info *RequestInfo) error {
	k, err := p.next()
	if err != nil {
		return err
	}
	info.LogicalAddress, info.AddressFound = "", false
	raw := p.buf[p.content.s:p.content.e]
	switch k {
	case rivtaTokEnd:
		return nil
	case rivtaTokText:
		if i := bytes.Index(raw, []byte("]]>")); i >= 0 {
			// Woodstox defers this error to the following next() call,
			// which the reference always makes.
			return p.failAt(p.content.s+i+3, "String ']]>' not allowed in textual content, except as the end marker of CDATA section")
		}
		if !p.textRefs {
			if rivtaSpaceOnly(raw) {
				return nil
			}
			info.LogicalAddress, info.AddressFound = p.text(raw), true
			return nil
		}
		d := rivtaAppendCharData(make([]byte, 0, len(raw)), raw, false)
		if rivtaSpaceOnly(d) {
			return nil
		}
		info.LogicalAddress, info.AddressFound = string(d), true
	case rivtaTokCDATA:
		if rivtaSpaceOnly(raw) {
			return nil
		}
		info.LogicalAddress, info.AddressFound = p.text(raw), true
	case rivtaTokComment:
		// XMLStreamReader.isWhiteSpace is false for comments and getText
		// returns the comment, so the reference routes on it.
		info.LogicalAddress, info.AddressFound = p.text(raw), true
	default:
		// The reference calls getText on a non-text event, which throws an
		// IllegalStateException (a fault without VP code, not VP015).
		return &SyntaxError{Msg: "Not a textual event (" + k.woodstoxName() + ")", Offset: p.pos}
	}
	return nil
}

// text is rivtaText(raw, true), sharing raw's memory in alias mode when
// there is nothing to normalise.
func (p *rivtaParser) text(raw []byte) string {
	if p.alias && bytes.IndexByte(raw, '\r') < 0 {
		return aliasString(raw)
	}
	return rivtaText(raw, true)
}

func rivtaText(raw []byte, normalizeCR bool) string {
	if !normalizeCR || bytes.IndexByte(raw, '\r') < 0 {
		return string(raw)
	}
	return string(rivtaAppendCharData(make([]byte, 0, len(raw)), raw, false))
}

// rivtaSpaceOnly is Woodstox's whitespace test: every char is <= U+0020.
func rivtaSpaceOnly(b []byte) bool {
	for _, c := range b {
		if c > ' ' {
			return false
		}
	}
	return true
}

// ExtractMTOM returns the SOAP envelope of an MTOM/XOP request the way the
// reference does: when contentType contains application/xop+xml (any case),
// the first match of (?is)(<\w+:Envelope.*</\w+:Envelope>) replaces the body
// and attachments are dropped. For other requests it returns body itself.
// ok is false for an MTOM request without a match (VP015). The result
// aliases body.
func ExtractMTOM(contentType, body []byte) (envelope []byte, isMTOM bool, ok bool) {
	if !rivtaContainsFold(contentType, "application/xop+xml") {
		return body, false, true
	}
	start, from := rivtaEnvelopeOpen(body)
	if start < 0 {
		return nil, true, false
	}
	end := rivtaEnvelopeClose(body, from)
	if end < 0 {
		return nil, true, false
	}
	return body[start:end], true, true
}

func rivtaIsWord(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'z'
}

// rivtaEnvelopeOpen finds the leftmost `<\w+:Envelope` and returns its start
// and the offset just after it.
func rivtaEnvelopeOpen(b []byte) (int, int) {
	for i := 0; i < len(b); i++ {
		j := bytes.IndexByte(b[i:], '<')
		if j < 0 {
			return -1, -1
		}
		i += j
		k := i + 1
		for k < len(b) && rivtaIsWord(b[k]) {
			k++
		}
		if k > i+1 && k < len(b) && b[k] == ':' && rivtaHasPrefixFold(b[k+1:], "envelope") {
			return i, k + 1 + len("envelope")
		}
	}
	return -1, -1
}

// rivtaEnvelopeClose returns the end of the last `</\w+:Envelope>` that
// starts at or after from: the greedy .* of the reference's pattern.
func rivtaEnvelopeClose(b []byte, from int) int {
	const tail = "envelope>"
	for e := len(b) - len(tail); e >= from; e-- {
		if b[e+len(tail)-1] != '>' || !rivtaHasPrefixFold(b[e:], tail) {
			continue
		}
		colon := e - 1
		if colon < from || b[colon] != ':' {
			continue
		}
		w := colon
		for w > from && rivtaIsWord(b[w-1]) {
			w--
		}
		if w == colon || w-2 < from || b[w-1] != '/' || b[w-2] != '<' {
			continue
		}
		return e + len(tail)
	}
	return -1
}

func rivtaHasPrefixFold(b []byte, lower string) bool {
	if len(b) < len(lower) {
		return false
	}
	for i := 0; i < len(lower); i++ {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func rivtaContainsFold(b []byte, lower string) bool {
	for i := 0; i+len(lower) <= len(b); i++ {
		if rivtaHasPrefixFold(b[i:], lower) {
			return true
		}
	}
	return false
}

// ErrUnsupportedCharset is returned by DecodeToUTF8 and EncodeFromUTF8 for
// an encoding they cannot convert.
var ErrUnsupportedCharset = errors.New("unsupported charset")

// DecodeToUTF8 converts a request body to UTF-8 before it is forwarded, as
// the reference does for requests whose declaration names another encoding.
// declared is RequestInfo.Encoding. A BOM or the UTF-16 byte pattern of
// "<?" wins over the declaration; a declaration of UTF-16 on bytes that are
// plainly ASCII-compatible is treated as UTF-8, like the reference's retry.
// ISO-8859-1 and windows-1252 (with the five bytes windows-1252 leaves
// undefined mapped to U+0081 and friends) are supported. The encoding in the
// XML declaration is rewritten to UTF-8. The input is returned unchanged when
// it already is UTF-8.
func DecodeToUTF8(body []byte, declared string) ([]byte, error) {
	if out, _, transcoded := rivtaSniffUTF16(body); transcoded {
		return rivtaRewriteDeclEncoding(out, "UTF-8"), nil
	}
	cs := rivtaCharsetOf(declared)
	var out []byte
	switch cs {
	case rivtaCharsetNone, rivtaCharsetUTF8, rivtaCharsetASCII:
		return body, nil
	case rivtaCharsetUTF16, rivtaCharsetUTF16BE, rivtaCharsetUTF16LE:
		out = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
	case rivtaCharsetLatin1, rivtaCharset1252:
		out = cs.appendUTF8(make([]byte, 0, len(body)+len(body)/8), body)
	default:
		return nil, fmt.Errorf("decode %q: %w", declared, ErrUnsupportedCharset)
	}
	return rivtaRewriteDeclEncoding(out, "UTF-8"), nil
}

// EncodeFromUTF8 converts a UTF-8 response back to the encoding the
// consumer used. "UTF-16" is written big-endian with a BOM, like Java's
// encoder; characters a single-byte encoding cannot hold become '?', and
// invalid UTF-8 is read as U+FFFD, as Java's String conversion does. The
// encoding in an existing XML declaration is set to enc. UTF-8 or "" returns
// body unchanged.
func EncodeFromUTF8(body []byte, enc string) ([]byte, error) {
	cs := rivtaCharsetOf(enc)
	switch cs {
	case rivtaCharsetNone, rivtaCharsetUTF8:
		return body, nil
	case rivtaCharsetUnknown:
		return nil, fmt.Errorf("encode %q: %w", enc, ErrUnsupportedCharset)
	}
	src := rivtaRewriteDeclEncoding(body, enc)
	out := make([]byte, 0, len(src)*2+2)
	if cs == rivtaCharsetUTF16 {
		out = append(out, 0xFE, 0xFF)
	}
	for i := 0; i < len(src); {
		r, n := utf8.DecodeRune(src[i:])
		i += n
		switch cs {
		case rivtaCharsetUTF16, rivtaCharsetUTF16BE, rivtaCharsetUTF16LE:
			if r >= 0x10000 {
				hi, lo := utf16.EncodeRune(r)
				out = rivtaAppendUnit(out, uint16(hi), cs == rivtaCharsetUTF16LE)
				out = rivtaAppendUnit(out, uint16(lo), cs == rivtaCharsetUTF16LE)
			} else {
				out = rivtaAppendUnit(out, uint16(r), cs == rivtaCharsetUTF16LE)
			}
		default:
			out = append(out, cs.encodeByte(r))
		}
	}
	return out, nil
}

func rivtaAppendUnit(b []byte, u uint16, little bool) []byte {
	if little {
		return append(b, byte(u), byte(u>>8))
	}
	return append(b, byte(u>>8), byte(u))
}

type rivtaCharset uint8

const (
	rivtaCharsetNone rivtaCharset = iota
	rivtaCharsetUnknown
	rivtaCharsetUTF8
	rivtaCharsetASCII
	rivtaCharsetUTF16
	rivtaCharsetUTF16BE
	rivtaCharsetUTF16LE
	rivtaCharsetLatin1
	rivtaCharset1252
)

// rivtaCharsetOf maps Java-style charset names and aliases.
func rivtaCharsetOf(name string) rivtaCharset {
	if name == "" {
		return rivtaCharsetNone
	}
	var buf [32]byte
	n := 0
	for i := 0; i < len(name) && n < len(buf); i++ {
		c := name[i]
		switch {
		case c == '-' || c == '_' || c == ' ':
			continue
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		}
		buf[n] = c
		n++
	}
	switch string(buf[:n]) {
	case "UTF8":
		return rivtaCharsetUTF8
	case "USASCII", "ASCII", "ISO646US":
		return rivtaCharsetASCII
	case "UTF16", "UNICODE":
		return rivtaCharsetUTF16
	case "UTF16BE", "UNICODEBIGUNMARKED":
		return rivtaCharsetUTF16BE
	case "UTF16LE", "UNICODELITTLEUNMARKED":
		return rivtaCharsetUTF16LE
	case "ISO88591", "88591", "LATIN1", "L1", "ISOLATIN1", "CP819", "IBM819", "ISOIR100", "CSISOLATIN1":
		return rivtaCharsetLatin1
	case "WINDOWS1252", "CP1252", "CP5348":
		return rivtaCharset1252
	}
	return rivtaCharsetUnknown
}

func (cs rivtaCharset) singleByte() bool {
	return cs == rivtaCharsetLatin1 || cs == rivtaCharset1252
}

// rivta1252 holds windows-1252 bytes 0x80-0x9F; zero entries are the bytes
// the code page leaves undefined, which map to the same code point.
var rivta1252 = [32]rune{
	0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
	0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017D, 0,
	0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
	0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178,
}

func (cs rivtaCharset) appendUTF8(dst, src []byte) []byte {
	for _, c := range src {
		switch {
		case c < utf8.RuneSelf:
			dst = append(dst, c)
		case cs == rivtaCharset1252 && c < 0xA0 && rivta1252[c-0x80] != 0:
			dst = utf8.AppendRune(dst, rivta1252[c-0x80])
		default:
			dst = utf8.AppendRune(dst, rune(c))
		}
	}
	return dst
}

func (cs rivtaCharset) encodeByte(r rune) byte {
	switch {
	case r < utf8.RuneSelf:
		return byte(r)
	case cs == rivtaCharsetASCII:
		return '?'
	case cs == rivtaCharset1252:
		for i, v := range rivta1252 {
			if v == r {
				return byte(0x80 + i)
			}
		}
		if r >= 0x80 && r < 0xA0 && rivta1252[r-0x80] == 0 || r >= 0xA0 && r <= 0xFF {
			return byte(r)
		}
		return '?'
	case r <= 0xFF:
		return byte(r)
	}
	return '?'
}

func rivtaHasHighBytes(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return true
		}
	}
	return false
}

// rivtaSniffUTF16 decodes UTF-16 input (recognised by BOM or by the byte
// pattern of a leading '<') to UTF-8 and drops a UTF-8 BOM. detected names
// the UTF-16 form found.
func rivtaSniffUTF16(b []byte) (out []byte, detected string, transcoded bool) {
	switch {
	case len(b) >= 2 && b[0] == 0xFE && b[1] == 0xFF:
		return rivtaUTF16ToUTF8(b[2:], false), "UTF-16BE", true
	case len(b) >= 2 && b[0] == 0xFF && b[1] == 0xFE:
		return rivtaUTF16ToUTF8(b[2:], true), "UTF-16LE", true
	case len(b) >= 4 && b[0] == 0 && b[1] == '<' && b[2] == 0 && b[3] != 0:
		return rivtaUTF16ToUTF8(b, false), "UTF-16BE", true
	case len(b) >= 4 && b[0] == '<' && b[1] == 0 && b[2] != 0 && b[3] == 0:
		return rivtaUTF16ToUTF8(b, true), "UTF-16LE", true
	case len(b) >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF:
		return b[3:], "", false
	}
	return b, "", false
}

// rivtaUTF16ToUTF8 decodes like Java's replacing decoder: unpaired
// surrogates and a trailing odd byte become U+FFFD.
func rivtaUTF16ToUTF8(b []byte, little bool) []byte {
	out := make([]byte, 0, len(b)/2+len(b)/8)
	unit := func(i int) rune {
		if little {
			return rune(b[i]) | rune(b[i+1])<<8
		}
		return rune(b[i])<<8 | rune(b[i+1])
	}
	i := 0
	for ; i+1 < len(b); i += 2 {
		r := unit(i)
		if utf16.IsSurrogate(r) {
			if r < 0xDC00 && i+3 < len(b) {
				if r2 := unit(i + 2); r2 >= 0xDC00 && r2 < 0xE000 {
					out = utf8.AppendRune(out, utf16.DecodeRune(r, r2))
					i += 2
					continue
				}
			}
			r = utf8.RuneError
		}
		out = utf8.AppendRune(out, r)
	}
	if i < len(b) {
		out = utf8.AppendRune(out, utf8.RuneError)
	}
	return out
}

// rivtaFindDeclEncoding leniently locates the XML declaration and the value
// of its encoding pseudo-attribute in ASCII-compatible input. enc.s < 0
// means the declaration has no encoding.
func rivtaFindDeclEncoding(b []byte) (declEnd int, enc rivtaSpan, ok bool) {
	if len(b) < 6 || string(b[:5]) != "<?xml" || !rivtaIsSpace(b[5]) {
		return 0, rivtaSpan{}, false
	}
	end := bytes.Index(b, []byte("?>"))
	if end < 0 {
		return 0, rivtaSpan{}, false
	}
	decl := b[:end]
	enc = rivtaSpan{-1, -1}
	for i := 5; i+len("encoding") <= len(decl); i++ {
		if string(decl[i:i+len("encoding")]) != "encoding" || !rivtaIsSpace(decl[i-1]) {
			continue
		}
		j := i + len("encoding")
		for j < len(decl) && rivtaIsSpace(decl[j]) {
			j++
		}
		if j >= len(decl) || decl[j] != '=' {
			continue
		}
		j++
		for j < len(decl) && rivtaIsSpace(decl[j]) {
			j++
		}
		if j >= len(decl) || decl[j] != '"' && decl[j] != '\'' {
			continue
		}
		q := bytes.IndexByte(decl[j+1:], decl[j])
		if q < 0 {
			continue
		}
		enc = rivtaSpan{j + 1, j + 1 + q}
		break
	}
	return end + 2, enc, true
}

func rivtaIsSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

// rivtaRewriteDeclEncoding returns b with the encoding of its XML
// declaration set to enc, inserting the pseudo-attribute after version when
// it is missing. Without a declaration b is returned as is; otherwise the
// result is a new slice.
func rivtaRewriteDeclEncoding(b []byte, enc string) []byte {
	declEnd, span, ok := rivtaFindDeclEncoding(b)
	if !ok {
		return b
	}
	if span.s >= 0 {
		if string(b[span.s:span.e]) == enc {
			return b
		}
		out := make([]byte, 0, len(b)-(span.e-span.s)+len(enc))
		out = append(out, b[:span.s]...)
		out = append(out, enc...)
		return append(out, b[span.e:]...)
	}
	// Insert before the standalone pseudo-attribute or the "?>".
	at := declEnd - 2
	if i := bytes.Index(b[:at], []byte("standalone")); i > 0 {
		at = i - 1
	}
	for at > 5 && rivtaIsSpace(b[at-1]) {
		at--
	}
	out := make([]byte, 0, len(b)+len(enc)+len(` encoding=""`))
	out = append(out, b[:at]...)
	out = append(out, ` encoding="`...)
	out = append(out, enc...)
	out = append(out, '"')
	return append(out, b[at:]...)
}

// rivtaInternEncoding avoids allocating for the usual declaration values.
func rivtaInternEncoding(b []byte) string {
	switch string(b) {
	case "UTF-8":
		return "UTF-8"
	case "utf-8":
		return "utf-8"
	case "UTF-16":
		return "UTF-16"
	case "utf-16":
		return "utf-16"
	case "ISO-8859-1":
		return "ISO-8859-1"
	case "iso-8859-1":
		return "iso-8859-1"
	}
	return string(b)
}

// The parser below is a pull tokenizer over the whole input that imitates
// the checks, event boundaries and error texts of Woodstox's
// BasicStreamReader (namespace-aware, non-validating, entities replaced,
// no DTD entity declarations), so that the reference's behaviour and VP015
// details carry over. It keeps offsets into the input instead of copying, so
// the only allocations on the happy path are the strings ReadRequest
// returns.

type rivtaSpan struct{ s, e int }

type rivtaTok uint8

const (
	rivtaTokEOF rivtaTok = iota
	rivtaTokStart
	rivtaTokEnd
	rivtaTokText
	rivtaTokCDATA
	rivtaTokComment
	rivtaTokPI
	rivtaTokDoctype
)

// woodstoxName is the StAX event name, used in the reference's
// IllegalStateException text.
func (k rivtaTok) woodstoxName() string {
	switch k {
	case rivtaTokStart:
		return "START_ELEMENT"
	case rivtaTokEnd:
		return "END_ELEMENT"
	case rivtaTokText:
		return "CHARACTERS"
	case rivtaTokCDATA:
		return "CDATA"
	case rivtaTokComment:
		return "COMMENT"
	case rivtaTokPI:
		return "PROCESSING_INSTRUCTION"
	case rivtaTokDoctype:
		return "DTD"
	}
	return "END_DOCUMENT"
}

const (
	rivtaStProlog uint8 = iota
	rivtaStTree
	rivtaStEpilog
	rivtaStDone
)

// Woodstox's default limits; they also bound the quadratic checks below.
const (
	rivtaMaxAttrs = 1000
	rivtaMaxDepth = 1000
)

type rivtaNS struct {
	prefix    rivtaSpan // empty for the default namespace
	value     rivtaSpan // raw, between the quotes
	norm      bool      // value holds references or tab/CR/LF to normalise
	isDefault bool
}

type rivtaElem struct {
	name   rivtaSpan // qualified name
	colon  int       // offset of ':' in name, or -1
	nsBase int       // len(ns) before this element's declarations
}

type rivtaAttr struct {
	name  rivtaSpan
	colon int
	value rivtaSpan
}

type rivtaParser struct {
	buf        []byte
	pos        int
	state      uint8
	xml11      bool
	doctype    bool
	pendingEnd bool

	// The current token.
	content  rivtaSpan // text, CDATA, comment or PI data
	textRefs bool      // text contains references
	cur      rivtaElem // element of a start or end token
	endName  rivtaSpan // qualified name in an end tag; empty for <x/>

	attrs []rivtaAttr // attributes of the current start tag, without xmlns
	ns    []rivtaNS   // declarations in scope, innermost last
	stack []rivtaElem

	// alias: strings taken from buf share its memory (readRequest).
	alias bool
}

var rivtaParserPool = sync.Pool{New: func() any { return new(rivtaParser) }}

func rivtaGetParser(buf []byte) *rivtaParser {
	p := rivtaParserPool.Get().(*rivtaParser)
	p.buf = buf
	p.pos = 0
	p.state = rivtaStProlog
	p.xml11, p.doctype, p.pendingEnd = false, false, false
	p.content, p.cur, p.endName = rivtaSpan{}, rivtaElem{}, rivtaSpan{}
	p.attrs, p.ns, p.stack = p.attrs[:0], p.ns[:0], p.stack[:0]
	p.alias = false // only readRequest asks for it
	return p
}

func (p *rivtaParser) release() {
	p.buf = nil
	// Do not let one pathological document pin big slices in the pool.
	if cap(p.attrs) > 256 || cap(p.ns) > 256 || cap(p.stack) > 256 {
		return
	}
	rivtaParserPool.Put(p)
}

// Error construction, mirroring Woodstox's throw helpers. ptr is Woodstox's
// input pointer: the offset just after the last character read.

func (p *rivtaParser) failAt(ptr int, msg string) *SyntaxError {
	line, col := rivtaLocation(p.buf, ptr)
	return &SyntaxError{Msg: msg, Line: line, Col: col, Offset: ptr}
}

func (p *rivtaParser) unexpected(ptr int, r rune, suffix string) *SyntaxError {
	e := p.failAt(ptr, "Unexpected character "+rivtaCharDesc(r)+suffix)
	if r > 0xFFFF {
		e.Col-- // Woodstox stops after the high surrogate.
	}
	return e
}

func (p *rivtaParser) invalidSpace(ptr int, r rune) *SyntaxError {
	if r == 0 {
		return p.failAt(ptr, "Illegal character (NULL, unicode 0) encountered: not valid in any content")
	}
	msg := "Illegal character (" + rivtaCharDesc(r) + ")"
	if p.xml11 {
		msg += " [note: in XML 1.1, it could be included via entity expansion]"
	}
	return p.failAt(ptr, msg)
}

func (p *rivtaParser) eof(suffix string) *SyntaxError {
	return p.failAt(len(p.buf), "Unexpected EOF"+suffix)
}

func (p *rivtaParser) eob(suffix string) *SyntaxError {
	return p.failAt(len(p.buf), "Unexpected end of input block"+suffix)
}

// checkedErr turns a syntax error into the character error that precedes
// it, if any: control characters and invalid UTF-8 in text, comments and
// attribute values are only checked afterwards, in one pass.
func (p *rivtaParser) checkedErr(err error, transcoded bool) error {
	var se *SyntaxError
	if !errors.As(err, &se) || se.Line == 0 {
		return err
	}
	// A control character at the error position itself was read by the
	// markup parser, whose message is the one Woodstox gives; invalid UTF-8
	// fails in Woodstox's decoder before the parser sees it.
	if e := p.checkChars(se.Offset-1, se.Offset, transcoded); e != nil {
		return e
	}
	return err
}

// checkChars reports the first control character that XML forbids in
// buf[:ctlLimit] or the first invalid UTF-8 in buf[:utf8Limit], whichever
// comes first. Woodstox rejects both wherever it reads them, with the
// messages used here.
func (p *rivtaParser) checkChars(ctlLimit, utf8Limit int, transcoded bool) error {
	k := -1
	if ctlLimit > 0 {
		k = rivtaBadControl(p.buf[:ctlLimit])
	}
	if !transcoded && utf8Limit > 0 && !utf8.Valid(p.buf[:utf8Limit]) {
		if e := rivtaUTF8Error(p.buf, utf8Limit); e != nil && (k < 0 || e.Offset <= k) {
			return e
		}
	}
	if k >= 0 {
		return p.invalidSpace(k+1, rune(p.buf[k]))
	}
	return nil
}

// rivtaBadControl returns the index of the first byte below U+0020 other
// than tab, LF and CR, or -1. It tests eight bytes at a time with exact
// per-byte masks because it runs over the whole routed prefix of every
// request.
func rivtaBadControl(b []byte) int {
	const lo, hi, low7 = 0x0101010101010101, 0x8080808080808080, 0x7f7f7f7f7f7f7f7f
	eq := func(w uint64, c byte) uint64 {
		x := w ^ lo*uint64(c)
		return ^(x&low7 + low7 | x) & hi
	}
	i := 0
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		below := ^(w&low7 + 0x6060606060606060 | w) & hi // bytes < 0x20
		if below == 0 {
			continue
		}
		if bad := below &^ (eq(w, '\t') | eq(w, '\n') | eq(w, '\r')); bad != 0 {
			return i + bits.TrailingZeros64(bad)/8
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c < ' ' && !rivtaIsSpace(c) {
			return i
		}
	}
	return -1
}

// rivtaCharDesc is Woodstox's getCharDesc for a Java char.
func rivtaCharDesc(r rune) string {
	if r > 0xFFFF {
		r, _ = utf16.EncodeRune(r)
	}
	code := strconv.Itoa(int(r))
	switch {
	case r <= 0x1F || r >= 0x7F && r <= 0x9F:
		return "(CTRL-CHAR, code " + code + ")"
	case r > 255:
		return "'" + string(r) + "' (code " + code + " / 0x" + strconv.FormatInt(int64(r), 16) + ")"
	}
	return "'" + string(r) + "' (code " + code + ")"
}

// rivtaLocation computes Woodstox's row and column for input pointer ptr.
func rivtaLocation(b []byte, ptr int) (line, col int) {
	if ptr > len(b) {
		ptr = len(b)
	}
	line = 1
	for i := 0; i < ptr; {
		c := b[i]
		switch {
		case c == '\n':
			line, col = line+1, 0
			i++
		case c == '\r':
			line, col = line+1, 0
			i++
			if i < len(b) && b[i] == '\n' {
				i++
			}
		case c < utf8.RuneSelf:
			col++
			i++
		default:
			r, n := utf8.DecodeRune(b[i:])
			col++
			if r > 0xFFFF {
				col++
			}
			i += n
		}
	}
	return line, col
}

// rivtaUTF8Error returns the first UTF-8 error before limit, worded like
// Woodstox's UTF8Reader (which reports no location), or nil.
func rivtaUTF8Error(b []byte, limit int) *SyntaxError {
	chars := 0
	for i := 0; i < limit && i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			i++
			chars++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError || n > 1 {
			i += n
			chars++
			if r > 0xFFFF {
				chars++
			}
			continue
		}
		need := 0
		switch {
		case c >= 0xC0 && c < 0xE0:
			need = 2
		case c >= 0xE0 && c < 0xF0:
			need = 3
		case c >= 0xF0 && c < 0xF8:
			need = 4
		}
		if need > 0 {
			for k := 1; k < need; k++ {
				if i+k >= len(b) {
					return &SyntaxError{Offset: i, Msg: fmt.Sprintf("Unexpected EOF in the middle of a multi-byte char: got %d, needed %d, at char #%d, byte #%d)", k, need, chars, len(b))}
				}
				if b[i+k]&0xC0 != 0x80 {
					return &SyntaxError{Offset: i + k, Msg: fmt.Sprintf("Invalid UTF-8 middle byte 0x%x (at char #%d, byte #%d)", b[i+k], chars, i+k)}
				}
			}
		}
		return &SyntaxError{Offset: i, Msg: fmt.Sprintf("Invalid UTF-8 start byte 0x%x (at char #%d, byte #%d)", c, chars+1, i)}
	}
	return nil
}

// Name characters: XML 1.0 for ASCII, Unicode letter classes beyond.
const (
	rivtaNameStart = 1
	rivtaNameChar  = 2
)

var rivtaASCIIName = func() (t [utf8.RuneSelf]uint8) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = rivtaNameStart | rivtaNameChar
		t[c-'a'+'A'] = rivtaNameStart | rivtaNameChar
	}
	t['_'] = rivtaNameStart | rivtaNameChar
	for c := '0'; c <= '9'; c++ {
		t[c] = rivtaNameChar
	}
	t['-'], t['.'] = rivtaNameChar, rivtaNameChar
	return t
}()

func rivtaIsNameStart(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= 0 && rivtaASCIIName[r]&rivtaNameStart != 0
	}
	return rivtaIsNameStartSlow(r)
}

func rivtaIsNameStartSlow(r rune) bool {
	return r != utf8.RuneError && (unicode.IsLetter(r) || unicode.Is(unicode.Nl, r))
}

func rivtaIsNameChar(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= 0 && rivtaASCIIName[r]&rivtaNameChar != 0
	}
	return rivtaIsNameStart(r) || r == 0xB7 || unicode.IsDigit(r) || unicode.In(r, unicode.Mn, unicode.Mc)
}

// runeAt decodes the character at i. Invalid UTF-8 reads as U+FFFD of width
// one; the UTF-8 check reports it before any syntax error it causes.
func (p *rivtaParser) runeAt(i int) (rune, int) {
	if c := p.buf[i]; c < utf8.RuneSelf {
		return rune(c), i + 1
	}
	return p.runeAtSlow(i)
}

func (p *rivtaParser) runeAtSlow(i int) (rune, int) {
	r, n := utf8.DecodeRune(p.buf[i:])
	return r, i + n
}

// afterSpace is Woodstox's getNextInCurrAfterWS: c was read ending at pos.
func (p *rivtaParser) afterSpace(c rune, pos int, suffix string) (rune, int, error) {
	for c <= ' ' {
		if c != ' ' && c != '\n' && c != '\r' && c != '\t' {
			return 0, 0, p.invalidSpace(pos, c)
		}
		if pos >= len(p.buf) {
			return 0, 0, p.eob(suffix)
		}
		c, pos = p.runeAt(pos)
	}
	return c, pos, nil
}

// startOf returns where the character ending at pos starts.
func (p *rivtaParser) startOf(pos int) int {
	_, n := utf8.DecodeLastRune(p.buf[:pos])
	return pos - n
}

// nextChar reads one character within the current construct.
func (p *rivtaParser) nextChar(pos int, suffix string) (rune, int, error) {
	if pos < len(p.buf) && p.buf[pos] < utf8.RuneSelf {
		return rune(p.buf[pos]), pos + 1, nil
	}
	return p.nextCharSlow(pos, suffix)
}

func (p *rivtaParser) nextCharSlow(pos int, suffix string) (rune, int, error) {
	if pos >= len(p.buf) {
		return 0, 0, p.eob(suffix)
	}
	r, n := p.runeAtSlow(pos)
	return r, n, nil
}

// localName parses an NCName starting at start and returns its end.
func (p *rivtaParser) localName(start int) (int, error) {
	r, pos := p.runeAt(start)
	if !rivtaIsNameStart(r) {
		if r == ':' {
			return 0, p.unexpected(pos, r, " (missing namespace prefix?)")
		}
		return 0, p.unexpected(pos, r, " (expected a name start character)")
	}
	b := p.buf
	for pos < len(b) {
		if c := b[pos]; c < utf8.RuneSelf {
			if rivtaASCIIName[c]&rivtaNameChar == 0 {
				break
			}
			pos++
			continue
		}
		r, n := p.runeAt(pos)
		if !rivtaIsNameChar(r) {
			break
		}
		pos = n
	}
	return pos, nil
}

// fnameEnd is Woodstox's parseFNameForError: name characters and colons.
func (p *rivtaParser) fnameEnd(pos int) int {
	for pos < len(p.buf) {
		r, n := p.runeAt(pos)
		if r != ':' && !rivtaIsNameChar(r) {
			break
		}
		pos = n
	}
	return pos
}

// keyword is Woodstox's checkKeyword for the keyword starting at pos: it
// returns the end of what was read and "" on a match, or the text found
// instead.
func (p *rivtaParser) keyword(pos int, expected string) (int, string) {
	b := p.buf
	i := 0
	for i < len(expected) && pos+i < len(b) && b[pos+i] == expected[i] {
		i++
	}
	end := pos + i
	if i == len(expected) {
		if end >= len(b) {
			return end, ""
		}
		if r, _ := p.runeAt(end); !rivtaIsNameChar(r) && r != ':' {
			return end, ""
		}
	} else if end < len(b) {
		_, end = p.runeAt(end)
	}
	for end < len(b) {
		r, n := p.runeAt(end)
		if !rivtaIsNameChar(r) {
			break
		}
		end = n
	}
	return end, string(b[pos:end])
}

type rivtaDecl struct {
	end    int
	enc    rivtaSpan
	hasEnc bool
	xml11  bool
}

// readDecl parses the XML declaration, which Woodstox handles in its
// bootstrapper before the first event.
func (p *rivtaParser) readDecl() (rivtaDecl, error) {
	var d rivtaDecl
	b := p.buf
	if len(b) < 6 || string(b[:5]) != "<?xml" || !rivtaIsSpace(b[5]) {
		return d, nil
	}
	const sfx = " in xml declaration"
	next := func(pos int) (rune, int, error) {
		if pos >= len(b) {
			return 0, 0, p.eof(sfx)
		}
		r, n := p.runeAt(pos)
		return r, n, nil
	}
	afterWS := func(pos int) (rune, int, error) {
		for {
			r, n, err := next(pos)
			if err != nil || r > ' ' {
				return r, n, err
			}
			if !rivtaIsSpace(byte(r)) {
				return 0, 0, p.invalidSpace(n, r)
			}
			pos = n
		}
	}
	// pseudo reads name="value" with c the first character of name, at pos-1.
	pseudo := func(c rune, pos int, name string) (rivtaSpan, int, error) {
		end, wrong := p.keyword(pos-1, name)
		if wrong != "" {
			return rivtaSpan{}, 0, p.failAt(end, `Unexpected keyword "`+wrong+`"; expected "`+name+`"`)
		}
		c, pos, err := afterWS(end)
		if err != nil {
			return rivtaSpan{}, 0, err
		}
		if c != '=' {
			return rivtaSpan{}, 0, p.unexpected(pos, c, sfx+"; expected '=' to follow pseudo-attribute '"+name+"'")
		}
		if c, pos, err = afterWS(pos); err != nil {
			return rivtaSpan{}, 0, err
		}
		if c != '"' && c != '\'' {
			return rivtaSpan{}, 0, p.unexpected(pos, c, sfx+"; waited ' or \" to start a value for pseudo-attribute '"+name+"'")
		}
		q, start := c, pos
		for {
			r, n, err := next(pos)
			if err != nil {
				return rivtaSpan{}, 0, err
			}
			if r == q {
				return rivtaSpan{start, pos}, n, nil
			}
			if r == 0 {
				return rivtaSpan{}, 0, p.invalidSpace(n, 0)
			}
			if r < ' ' || r == '<' {
				return rivtaSpan{}, 0, p.unexpected(n, r, sfx)
			}
			pos = n
		}
	}

	c, pos, err := afterWS(5)
	if err != nil {
		return d, err
	}
	if c != 'v' {
		return d, p.unexpected(pos, c, "; expected keyword 'version'")
	}
	v, pos, err := pseudo(c, pos, "version")
	if err != nil {
		return d, err
	}
	switch string(b[v.s:v.e]) {
	case "1.0":
	case "1.1":
		d.xml11 = true
	default:
		return d, p.failAt(pos, "Unexpected xml version '"+string(b[v.s:v.e])+"'; expected '1.0' or '1.1'")
	}
	if c, pos, err = afterWS(pos); err != nil {
		return d, err
	}
	if c == 'e' {
		if d.enc, pos, err = pseudo(c, pos, "encoding"); err != nil {
			return d, err
		}
		d.hasEnc = true
		if c, pos, err = afterWS(pos); err != nil {
			return d, err
		}
	} else if c != 's' && c != '?' {
		return d, p.unexpected(pos, c, sfx+"; expected either 'encoding' or 'standalone' pseudo-attribute")
	}
	if c == 's' {
		sa, n, err := pseudo(c, pos, "standalone")
		if err != nil {
			return d, err
		}
		if s := string(b[sa.s:sa.e]); s != "yes" && s != "no" {
			return d, p.failAt(n, "Unexpected xml 'standalone' pseudo-attribute value '"+s+"'; expected 'yes' or 'no'")
		}
		if c, pos, err = afterWS(n); err != nil {
			return d, err
		}
	}
	if c != '?' {
		return d, p.unexpected(pos, c, sfx+"; expected '?>' as the end marker")
	}
	if c, pos, err = next(pos); err != nil {
		return d, err
	}
	if c != '>' {
		return d, p.unexpected(pos, c, sfx+"; expected '>' to close the declaration")
	}
	d.end = pos
	return d, nil
}

// next returns the next event.
func (p *rivtaParser) next() (rivtaTok, error) {
	if p.pendingEnd {
		p.pendingEnd = false
		p.pop()
		p.endName = rivtaSpan{}
		return rivtaTokEnd, nil
	}
	switch p.state {
	case rivtaStTree:
		return p.nextInTree()
	case rivtaStProlog, rivtaStEpilog:
		return p.nextOutside()
	}
	return rivtaTokEOF, nil
}

func (p *rivtaParser) pop() {
	n := len(p.stack) - 1
	p.cur = p.stack[n]
	p.stack = p.stack[:n]
	p.ns = p.ns[:p.cur.nsBase]
	if n == 0 {
		p.state = rivtaStEpilog
	}
}

// nextOutside is Woodstox's nextFromProlog: before and after the root.
func (p *rivtaParser) nextOutside() (rivtaTok, error) {
	b := p.buf
	prolog := p.state == rivtaStProlog
	suffix := " in epilog"
	if prolog {
		suffix = " in prolog"
	}
	pos := p.pos
	for pos < len(b) && b[pos] <= ' ' {
		c := b[pos]
		pos++
		if !rivtaIsSpace(c) {
			return rivtaTokEOF, p.invalidSpace(pos, rune(c))
		}
	}
	p.pos = pos
	if pos >= len(b) {
		if prolog {
			return rivtaTokEOF, p.failAt(pos, "Unexpected EOF in prolog")
		}
		p.state = rivtaStDone
		return rivtaTokEOF, nil
	}
	if b[pos] != '<' {
		r, end := p.runeAt(pos)
		return rivtaTokEOF, p.unexpected(end, r, suffix+"; expected '<'")
	}
	pos++
	if pos >= len(b) {
		return rivtaTokEOF, p.eof(suffix)
	}
	switch b[pos] {
	case '?':
		return p.readPI(pos + 1)
	case '!':
		return p.outsideBang(pos+1, prolog, suffix)
	case '/':
		if prolog {
			return rivtaTokEOF, p.failAt(pos+1, "Unexpected character combination '</' in prolog.")
		}
		return rivtaTokEOF, p.failAt(pos+1, "Unexpected character combination '</' in epilog (extra close tag?).")
	}
	r, end := p.runeAt(pos)
	if r != ':' && !rivtaIsNameStart(r) {
		return rivtaTokEOF, p.unexpected(end, r, suffix+", after '<'.")
	}
	if !prolog {
		return rivtaTokEOF, p.failAt(end, "Illegal to have multiple roots (start tag in epilog?).")
	}
	p.state = rivtaStTree
	return p.readStartElem(pos)
}

// outsideBang handles "<!" outside the root: DOCTYPE or comment.
func (p *rivtaParser) outsideBang(pos int, prolog bool, suffix string) (rivtaTok, error) {
	b := p.buf
	if pos >= len(b) {
		return rivtaTokEOF, p.eof(" in prolog")
	}
	switch b[pos] {
	case 'D':
		end, wrong := p.keyword(pos, "DOCTYPE")
		switch {
		case wrong != "":
			return rivtaTokEOF, p.failAt(end, "Unrecognized XML directive '<!"+wrong+"' (misspelled DOCTYPE?).")
		case !prolog:
			return rivtaTokEOF, p.failAt(end, "Can not have DOCTYPE declaration in epilog")
		case p.doctype:
			return rivtaTokEOF, p.failAt(end, "Duplicate DOCTYPE declaration")
		}
		p.doctype = true
		return p.readDoctype(end)
	case '-':
		pos++
		if pos >= len(b) {
			return rivtaTokEOF, p.eof(suffix)
		}
		if r, end := p.runeAt(pos); r != '-' {
			return rivtaTokEOF, p.unexpected(end, '-', " (malformed comment?)")
		}
		return p.readComment(pos + 1)
	case '[':
		pos++
		if pos < len(b) && b[pos] == 'C' {
			return rivtaTokEOF, p.unexpected(pos, 'C', " (CDATA not allowed in prolog/epilog)")
		}
		r := rune(0xFFFF) // Woodstox describes EOF (-1) as a char
		if pos < len(b) {
			r, _ = p.runeAt(pos)
		}
		return rivtaTokEOF, p.unexpected(pos, r, " after '<!' (malformed comment?)")
	}
	r, end := p.runeAt(pos)
	return rivtaTokEOF, p.unexpected(end, r, " after '<!' (malformed comment?)")
}

// readDoctype skips a DOCTYPE declaration. With DTD support off, as in the
// reference, its internal subset declares nothing.
func (p *rivtaParser) readDoctype(pos int) (rivtaTok, error) {
	const sfx = " in DOCTYPE declaration"
	b := p.buf
	nonSpace := func(pos int, sfx string) (rune, int, error) {
		c, pos, err := p.nextChar(pos, sfx)
		if err != nil {
			return 0, 0, err
		}
		return p.afterSpace(c, pos, sfx)
	}
	c, pos, err := nonSpace(pos, sfx)
	if err != nil {
		return rivtaTokEOF, err
	}
	end, err := p.localName(p.startOf(pos))
	if err != nil {
		return rivtaTokEOF, err
	}
	if c, pos, err = p.nextChar(end, sfx); err != nil {
		return rivtaTokEOF, err
	}
	switch {
	case c == ':':
		if pos >= len(b) {
			return rivtaTokEOF, p.eof(sfx)
		}
		if end, err = p.localName(pos); err != nil {
			return rivtaTokEOF, err
		}
	case c > ' ' && c != '[' && c != '>':
		return rivtaTokEOF, p.unexpected(pos, c, sfx+"; expected '[' or white space.")
	}
	if c, pos, err = nonSpace(end, sfx); err != nil {
		return rivtaTokEOF, err
	}
	if c != '[' && c != '>' {
		kw, literals := "SYSTEM", 1
		if c == 'P' {
			kw, literals = "PUBLIC", 2
		}
		end, wrong := p.keyword(p.startOf(pos), kw)
		if wrong != "" {
			if !rivtaIsNameStart(c) {
				return rivtaTokEOF, p.unexpected(pos, c, sfx+"; expected keywords 'PUBLIC' or 'SYSTEM'.")
			}
			return rivtaTokEOF, p.failAt(end, "Unexpected keyword '"+wrong+"'; expected 'PUBLIC' or 'SYSTEM'")
		}
		pos = end
		for n := 0; n < literals; n++ {
			if c, pos, err = nonSpace(pos, sfx); err != nil {
				return rivtaTokEOF, err
			}
			if c != '"' && c != '\'' {
				return rivtaTokEOF, p.unexpected(pos, c, sfx+"; expected a system identifier.")
			}
			i := bytes.IndexByte(b[pos:], byte(c))
			if i < 0 {
				return rivtaTokEOF, p.eof(sfx)
			}
			pos += i + 1
		}
		if c, pos, err = nonSpace(pos, sfx); err != nil {
			return rivtaTokEOF, err
		}
	}
	if c == '[' {
		if pos, err = p.skipInternalSubset(pos); err != nil {
			return rivtaTokEOF, err
		}
		if c, pos, err = nonSpace(pos, " in internal DTD subset"); err != nil {
			return rivtaTokEOF, err
		}
	}
	if c != '>' {
		return rivtaTokEOF, p.unexpected(pos, c, "; expected '>' to finish DOCTYPE declaration.")
	}
	p.pos = pos
	return rivtaTokDoctype, nil
}

// skipInternalSubset returns the offset after the ']' that closes the
// internal subset starting at pos, honouring quotes and comments.
func (p *rivtaParser) skipInternalSubset(pos int) (int, error) {
	b := p.buf
	var quote byte
	for pos < len(b) {
		c := b[pos]
		pos++
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '<' && bytes.HasPrefix(b[pos:], []byte("!--")):
			i := bytes.Index(b[pos+3:], []byte("-->"))
			if i < 0 {
				return 0, p.eof(" in internal DTD subset")
			}
			pos += 3 + i + 3
		case c == ']':
			return pos, nil
		}
	}
	return 0, p.eof(" in internal DTD subset")
}

// readComment scans a comment body starting at pos (after "<!--").
func (p *rivtaParser) readComment(pos int) (rivtaTok, error) {
	b := p.buf
	for i := pos; ; {
		j := bytes.IndexByte(b[i:], '-')
		if j < 0 {
			return rivtaTokEOF, p.eob(" in comment")
		}
		i += j + 1
		if i >= len(b) {
			return rivtaTokEOF, p.eof(" in comment")
		}
		if b[i] != '-' {
			continue
		}
		i++
		if i >= len(b) {
			return rivtaTokEOF, p.eof(" in comment")
		}
		r, n := p.runeAt(i)
		if r != '>' {
			return rivtaTokEOF, p.failAt(n, "String '--' not allowed in comment (missing '>'?)")
		}
		p.content = rivtaSpan{pos, i - 2}
		p.pos = n
		return rivtaTokComment, nil
	}
}

// readPI parses a processing instruction starting at pos (after "<?").
func (p *rivtaParser) readPI(pos int) (rivtaTok, error) {
	const sfx = " in processing instruction"
	b := p.buf
	if pos >= len(b) {
		return rivtaTokEOF, p.eob(sfx)
	}
	colonName := func(start, at int) *SyntaxError {
		end := p.fnameEnd(at)
		return p.failAt(end, `Illegal name "`+string(b[start:end])+`" (PI target, entity/notation name): can not contain a colon (XML Namespaces 1.0#6)`)
	}
	start := pos
	r, n := p.runeAt(pos)
	if !rivtaIsNameStart(r) {
		switch {
		case r == ':':
			return rivtaTokEOF, colonName(n, n)
		case r <= ' ':
			return rivtaTokEOF, p.unexpected(n, r, " (missing name?)")
		}
		return rivtaTokEOF, p.unexpected(n, r, " (expected a name start character)")
	}
	for pos = n; pos < len(b); pos = n {
		if r, n = p.runeAt(pos); r == ':' {
			return rivtaTokEOF, colonName(start, pos)
		}
		if !rivtaIsNameChar(r) {
			break
		}
	}
	if t := b[start:pos]; len(t) == 3 && (t[0]|0x20) == 'x' && (t[1]|0x20) == 'm' && (t[2]|0x20) == 'l' {
		return rivtaTokEOF, p.failAt(pos, `Illegal processing instruction target ("`+string(t)+`"); 'xml' (case insensitive) is reserved by the specs.`)
	}
	c, pos, err := p.nextChar(pos, sfx)
	if err != nil {
		return rivtaTokEOF, err
	}
	if c > ' ' {
		if c == '?' {
			var c2 rune
			if c2, pos, err = p.nextChar(pos, sfx); err != nil {
				return rivtaTokEOF, err
			}
			if c2 == '>' {
				p.content = rivtaSpan{pos - 2, pos - 2} // no data
				p.pos = pos
				return rivtaTokPI, nil
			}
		}
		return rivtaTokEOF, p.unexpected(pos, c, `expected either space or "?>" after PI target`)
	}
	if c, pos, err = p.afterSpace(c, pos, sfx); err != nil {
		return rivtaTokEOF, err
	}
	dataStart := p.startOf(pos)
	i := bytes.Index(b[dataStart:], []byte("?>"))
	if i < 0 {
		return rivtaTokEOF, p.eob(sfx)
	}
	p.content = rivtaSpan{dataStart, dataStart + i}
	p.pos = dataStart + i + 2
	return rivtaTokPI, nil
}

// nextInTree is Woodstox's nextFromTree.
func (p *rivtaParser) nextInTree() (rivtaTok, error) {
	b := p.buf
	pos := p.pos
	if pos >= len(b) {
		top := p.stack[len(p.stack)-1]
		return rivtaTokEOF, p.failAt(pos, "Unexpected EOF; was expecting a close tag for element <"+string(b[top.name.s:top.name.e])+">")
	}
	if b[pos] != '<' {
		return p.readText(pos)
	}
	pos++
	if pos >= len(b) {
		return rivtaTokEOF, p.eof(" in start tag")
	}
	switch c := b[pos]; c {
	case '?':
		return p.readPI(pos + 1)
	case '!':
		return p.treeBang(pos + 1)
	case '/':
		return p.readEndElem(pos + 1)
	case '[':
		return rivtaTokEOF, p.unexpected(pos+1, '[', " in content after '<' (malformed <![CDATA[]] directive?)")
	}
	r, end := p.runeAt(pos)
	if r != ':' && !rivtaIsNameStart(r) {
		return rivtaTokEOF, p.unexpected(end, r, " in content after '<' (malformed start element?).")
	}
	return p.readStartElem(pos)
}

// readText scans character data up to the next markup; references are
// validated here and resolved only when a value is needed.
func (p *rivtaParser) readText(pos int) (rivtaTok, error) {
	b := p.buf
	end := len(b)
	if i := bytes.IndexByte(b[pos:], '<'); i >= 0 {
		end = pos + i
	}
	refs := false
	for i := pos; i < end; {
		j := bytes.IndexByte(b[i:end], '&')
		if j < 0 {
			break
		}
		refs = true
		var err error
		if i, err = p.entity(i + j + 1); err != nil {
			return rivtaTokEOF, err
		}
	}
	p.content = rivtaSpan{pos, end}
	p.textRefs = refs
	p.pos = end
	return rivtaTokText, nil
}

// treeBang handles "<!" inside the root: CDATA or comment.
func (p *rivtaParser) treeBang(pos int) (rivtaTok, error) {
	b := p.buf
	if pos >= len(b) {
		return rivtaTokEOF, p.eob(" in main document content")
	}
	c := b[pos]
	pos++
	switch c {
	case '[':
		const sfx = " in CDATA section"
		if pos >= len(b) {
			return rivtaTokEOF, p.eob(sfx)
		}
		end, wrong := p.keyword(pos, "CDATA")
		if wrong != "" {
			return rivtaTokEOF, p.failAt(end, "Unrecognized XML directive '"+wrong+"'; expected 'CDATA'.")
		}
		r, n, err := p.nextChar(end, sfx)
		if err != nil {
			return rivtaTokEOF, err
		}
		if r != '[' {
			return rivtaTokEOF, p.unexpected(n, r, "expected '[' after '<![CDATA'")
		}
		return p.readCDATA(n)
	case '-':
		if pos >= len(b) {
			return rivtaTokEOF, p.eob(" in main document content")
		}
		c = b[pos]
		pos++
		if c == '-' {
			return p.readComment(pos)
		}
	}
	return rivtaTokEOF, p.failAt(pos, "Unrecognized XML directive; expected CDATA or comment ('<![CDATA[' or '<!--').")
}

// readCDATA scans a CDATA section body starting at pos.
func (p *rivtaParser) readCDATA(pos int) (rivtaTok, error) {
	const sfx = " in CDATA section"
	b := p.buf
	for i := pos; ; {
		j := bytes.IndexByte(b[i:], ']')
		if j < 0 {
			return rivtaTokEOF, p.eob(sfx)
		}
		i += j + 1
		if i >= len(b) {
			return rivtaTokEOF, p.eof(sfx)
		}
		if b[i] != ']' {
			continue
		}
		for i < len(b) && b[i] == ']' {
			i++
		}
		if i >= len(b) {
			return rivtaTokEOF, p.eof(sfx)
		}
		if b[i] == '>' {
			p.content = rivtaSpan{pos, i - 2}
			p.pos = i + 1
			return rivtaTokCDATA, nil
		}
	}
}

// entity validates the reference after the '&' at pos-1 and returns the
// offset after its ';'.
func (p *rivtaParser) entity(pos int) (int, error) {
	const sfx = " in entity reference"
	b := p.buf
	if pos >= len(b) {
		return 0, p.eof(sfx)
	}
	if b[pos] == '#' {
		pos++
		if pos >= len(b) {
			return 0, p.eof(sfx)
		}
		v := 0
		if b[pos] == 'x' {
			pos++
			for {
				r, n, err := p.nextChar(pos, sfx)
				if err != nil {
					return 0, err
				}
				pos = n
				if r == ';' {
					break
				}
				d := rivtaHexVal(r)
				if d < 0 {
					return 0, p.unexpected(pos, r, "; expected a hex digit (0-9a-fA-F).")
				}
				if v = v<<4 | d; v > unicode.MaxRune {
					return 0, p.failAt(pos, "Illegal character entity: value higher than max allowed (0x10ffff)")
				}
			}
		} else {
			for {
				r, n := p.runeAt(pos)
				pos = n
				if r == ';' {
					break
				}
				if r < '0' || r > '9' {
					return 0, p.unexpected(pos, r, "; expected a decimal number.")
				}
				if v = v*10 + int(r-'0'); v > unicode.MaxRune {
					return 0, p.failAt(pos, "Illegal character entity: value higher than max allowed (0x10ffff)")
				}
				if pos >= len(b) {
					return 0, p.eob(sfx)
				}
			}
		}
		switch {
		case v == 0:
			return 0, p.failAt(pos, "Invalid character reference: null character not allowed in XML content.")
		case v >= 0xD800 && v < 0xE000, v == 0xFFFE, v == 0xFFFF,
			v < 0x20 && v != '\t' && v != '\n' && v != '\r' && !p.xml11:
			return 0, p.failAt(pos, "Illegal character entity: expansion character (code 0x"+strconv.FormatInt(int64(v), 16))
		}
		return pos, nil
	}
	start := pos
	r, n := p.runeAt(pos)
	colonName := func(at int) *SyntaxError {
		end := p.fnameEnd(at)
		return p.failAt(end, `Illegal name "`+string(b[start:end])+`" (PI target, entity/notation name): can not contain a colon (XML Namespaces 1.0#6)`)
	}
	if !rivtaIsNameStart(r) {
		switch {
		case r == ':':
			start = n
			return 0, colonName(n)
		case r <= ' ':
			return 0, p.unexpected(n, r, " (missing name?)")
		}
		return 0, p.unexpected(n, r, " (expected a name start character)")
	}
	for pos = n; pos < len(b); pos = n {
		if r, n = p.runeAt(pos); r == ':' {
			return 0, colonName(pos)
		}
		if !rivtaIsNameChar(r) {
			break
		}
	}
	name := b[start:pos]
	if pos >= len(b) {
		return 0, p.failAt(pos, `Missing semicolon after reference for entity "`+string(name)+`"`)
	}
	if r, n = p.runeAt(pos); r != ';' {
		return 0, p.unexpected(n, r, "; expected a semi-colon after the reference for entity '"+string(name)+"'")
	}
	switch string(name) {
	case "amp", "lt", "gt", "apos", "quot":
		return n, nil
	}
	return 0, p.failAt(n, `Undeclared general entity "`+string(name)+`"`)
}

func rivtaHexVal(r rune) int {
	switch {
	case r >= '0' && r <= '9':
		return int(r - '0')
	case r >= 'a' && r <= 'f':
		return int(r-'a') + 10
	case r >= 'A' && r <= 'F':
		return int(r-'A') + 10
	}
	return -1
}

// readStartElem parses a start tag whose name starts at pos; it is
// Woodstox's handleStartElem plus namespace resolution.
func (p *rivtaParser) readStartElem(pos int) (rivtaTok, error) {
	b := p.buf
	if len(p.stack) >= rivtaMaxDepth {
		return rivtaTokEOF, &SyntaxError{Msg: "Maximum Element Depth limit (" + strconv.Itoa(rivtaMaxDepth) + ") exceeded", Offset: pos}
	}
	nameStart := pos
	end, err := p.localName(pos)
	if err != nil {
		return rivtaTokEOF, err
	}
	colon := -1
	c, pos, err := p.nextChar(end, "; expected an identifier")
	if err != nil {
		return rivtaTokEOF, err
	}
	if c == ':' {
		colon = end
		if pos >= len(b) {
			return rivtaTokEOF, p.eob("; expected an identifier")
		}
		if end, err = p.localName(pos); err != nil {
			return rivtaTokEOF, err
		}
		if c, pos, err = p.nextChar(end, " in start tag"); err != nil {
			return rivtaTokEOF, err
		}
	}
	f := rivtaElem{name: rivtaSpan{nameStart, end}, colon: colon, nsBase: len(p.ns)}
	p.attrs = p.attrs[:0]
	empty := false
	if c != '>' {
		if empty, pos, err = p.readAttrs(c, pos, f.nsBase); err != nil {
			return rivtaTokEOF, err
		}
	}
	p.pos = pos
	p.stack = append(p.stack, f)
	if err := p.resolve(f); err != nil {
		return rivtaTokEOF, err
	}
	p.cur = f
	p.pendingEnd = empty
	return rivtaTokStart, nil
}

// readAttrs is Woodstox's handleNsAttrs; c was read ending at pos.
func (p *rivtaParser) readAttrs(c rune, pos, nsBase int) (bool, int, error) {
	const sfx = " in start tag"
	b := p.buf
	for {
		var err error
		if c <= ' ' {
			if c, pos, err = p.afterSpace(c, pos, sfx); err != nil {
				return false, 0, err
			}
		} else if c != '/' && c != '>' {
			return false, 0, p.unexpected(pos, c, ` expected space, or '>' or "/>"`)
		}
		switch c {
		case '/':
			r, n, err := p.nextChar(pos, sfx)
			if err != nil {
				return false, 0, err
			}
			if r != '>' {
				return false, 0, p.unexpected(n, r, " expected '>'")
			}
			return true, n, nil
		case '>':
			return false, pos, nil
		case '<':
			return false, 0, p.failAt(pos, "Unexpected '<' character in element (missing closing '>'?)")
		}
		if len(p.attrs)+len(p.ns)-nsBase >= rivtaMaxAttrs {
			return false, 0, &SyntaxError{Msg: "Maximum attribute count limit (" + strconv.Itoa(rivtaMaxAttrs) + ") exceeded", Offset: pos}
		}
		nameStart := p.startOf(pos)
		end, err := p.localName(nameStart)
		if err != nil {
			return false, 0, err
		}
		colon := -1
		if c, pos, err = p.nextChar(end, "; expected an identifier"); err != nil {
			return false, 0, err
		}
		if c == ':' {
			colon = end
			if pos >= len(b) {
				return false, 0, p.eob("; expected an identifier")
			}
			if end, err = p.localName(pos); err != nil {
				return false, 0, err
			}
		}
		name := rivtaSpan{nameStart, end}
		if c, pos, err = p.nextChar(end, sfx); err != nil {
			return false, 0, err
		}
		if c <= ' ' {
			if c, pos, err = p.afterSpace(c, pos, sfx); err != nil {
				return false, 0, err
			}
		}
		if c != '=' {
			return false, 0, p.unexpected(pos, c, " expected '='")
		}
		if c, pos, err = p.nextChar(pos, sfx); err != nil {
			return false, 0, err
		}
		if c <= ' ' {
			if c, pos, err = p.afterSpace(c, pos, sfx); err != nil {
				return false, 0, err
			}
		}
		if c != '"' && c != '\'' {
			return false, 0, p.unexpected(pos, c, sfx+" Expected a quote")
		}
		isDecl := colon >= 0 && string(b[nameStart:colon]) == "xmlns"
		isDefault := colon < 0 && string(b[nameStart:end]) == "xmlns"
		if isDecl || isDefault {
			var prefix rivtaSpan
			if isDecl {
				prefix = rivtaSpan{colon + 1, end}
			}
			for i := nsBase; i < len(p.ns); i++ {
				d := &p.ns[i]
				if d.isDefault != isDefault || string(b[d.prefix.s:d.prefix.e]) != string(b[prefix.s:prefix.e]) {
					continue
				}
				if isDefault {
					return false, 0, p.failAt(pos, "Duplicate default namespace declaration.")
				}
				return false, 0, p.failAt(pos, "Duplicate declaration for namespace prefix '"+string(b[prefix.s:prefix.e])+"'.")
			}
			valEnd, next, norm, err := p.attrValue(byte(c), pos)
			if err != nil {
				return false, 0, err
			}
			if isDecl && valEnd == pos && !p.xml11 {
				return false, 0, p.failAt(next, "Non-default namespace can not map to empty URI (as per Namespace 1.0 # 2) in XML 1.0 documents")
			}
			p.ns = append(p.ns, rivtaNS{prefix: prefix, value: rivtaSpan{pos, valEnd}, norm: norm, isDefault: isDefault})
			pos = next
		} else {
			valEnd, next, _, err := p.attrValue(byte(c), pos)
			if err != nil {
				return false, 0, err
			}
			p.attrs = append(p.attrs, rivtaAttr{name: name, colon: colon, value: rivtaSpan{pos, valEnd}})
			pos = next
		}
		if c, pos, err = p.nextChar(pos, sfx); err != nil {
			return false, 0, err
		}
	}
}

// attrValue scans a quoted value starting at pos and returns its end, the
// offset after the closing quote and whether it needs normalising.
func (p *rivtaParser) attrValue(q byte, pos int) (int, int, bool, error) {
	b := p.buf
	end := bytes.IndexByte(b[pos:], q)
	if end < 0 {
		end = len(b)
	} else {
		end += pos
	}
	// Woodstox reads up to the quote, so '<' or a bad reference before it
	// is the error, and EOF only after them.
	if i := bytes.IndexByte(b[pos:end], '<'); i >= 0 {
		end = pos + i
	}
	norm := false
	for i := pos; i < end; {
		j := bytes.IndexByte(b[i:end], '&')
		if j < 0 {
			break
		}
		norm = true
		var err error
		if i, err = p.entity(i + j + 1); err != nil {
			return 0, 0, false, err
		}
	}
	switch {
	case end >= len(b):
		return 0, 0, false, p.eof(" in attribute value")
	case b[end] == '<':
		return 0, 0, false, p.unexpected(end+1, '<', " in attribute value")
	}
	return end, end + 1, norm || rivtaHasBelowSpace(b[pos:end]), nil
}

// rivtaHasBelowSpace reports a byte below U+0020 (tab, CR or LF in a
// checked value), which attribute normalisation turns into a space.
func rivtaHasBelowSpace(b []byte) bool {
	const hi, low7 = 0x8080808080808080, 0x7f7f7f7f7f7f7f7f
	i := 0
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		if ^(w&low7+0x6060606060606060|w)&hi != 0 {
			return true
		}
	}
	for ; i < len(b); i++ {
		if b[i] < ' ' {
			return true
		}
	}
	return false
}

const (
	rivtaXMLNS   = "http://www.w3.org/XML/1998/namespace"
	rivtaXMLNSNS = "http://www.w3.org/2000/xmlns/"
)

// resolve checks the namespace constraints of the start tag just read;
// Woodstox reports them at the end of the tag.
func (p *rivtaParser) resolve(f rivtaElem) error {
	b := p.buf
	for i := f.nsBase; i < len(p.ns); i++ {
		d := &p.ns[i]
		if d.isDefault {
			continue
		}
		prefix := string(b[d.prefix.s:d.prefix.e])
		switch {
		case prefix == "xml":
			if v := p.nsValue(i); v != rivtaXMLNS {
				return p.failAt(p.pos, `Trying to redeclare prefix "xml" from its default URI "`+rivtaXMLNS+`" to "`+v+`"`)
			}
		case prefix == "xmlns":
			return p.failAt(p.pos, `Trying to declare prefix "xmlns" (illegal as per NS 1.1 #4)`)
		case p.nsIs(i, rivtaXMLNS):
			return p.failAt(p.pos, `Trying to bind URI "`+rivtaXMLNS+`" to prefix "`+prefix+`" (can only bind to "xml")`)
		case p.nsIs(i, rivtaXMLNSNS):
			return p.failAt(p.pos, `Trying to bind URI "`+rivtaXMLNSNS+`" to prefix "`+prefix+`" (can not be explicitly bound)`)
		}
	}
	if f.colon >= 0 {
		if prefix := b[f.name.s:f.colon]; string(prefix) != "xml" && p.lookup(prefix) < 0 {
			return p.failAt(p.pos, `Undeclared namespace prefix "`+string(prefix)+`"`)
		}
	}
	for i := range p.attrs {
		a := &p.attrs[i]
		if a.colon < 0 {
			continue
		}
		if prefix := b[a.name.s:a.colon]; string(prefix) != "xml" && p.lookup(prefix) < 0 {
			return p.failAt(p.pos, `Undeclared namespace prefix "`+string(prefix)+`" (for attribute "`+string(b[a.colon+1:a.name.e])+`")`)
		}
	}
	if len(p.attrs) < 2 {
		return nil
	}
	if len(p.attrs) <= 32 {
		for i := 1; i < len(p.attrs); i++ {
			for j := 0; j < i; j++ {
				if p.sameAttr(i, j) {
					return p.dupAttr(i)
				}
			}
		}
		return nil
	}
	seen := make(map[string]struct{}, len(p.attrs))
	for i := range p.attrs {
		k := p.attrKey(i)
		if _, dup := seen[k]; dup {
			return p.dupAttr(i)
		}
		seen[k] = struct{}{}
	}
	return nil
}

func (p *rivtaParser) dupAttr(i int) error {
	a := p.attrs[i]
	return p.failAt(p.pos, "Duplicate attribute '"+string(p.buf[a.name.s:a.name.e])+"'.")
}

// attrNS returns the namespace of attribute i ("" for none).
func (p *rivtaParser) attrNS(i int) string {
	a := p.attrs[i]
	if a.colon < 0 {
		return ""
	}
	prefix := p.buf[a.name.s:a.colon]
	if string(prefix) == "xml" {
		return rivtaXMLNS
	}
	return p.nsValue(p.lookup(prefix))
}

func (p *rivtaParser) attrLocal(i int) []byte {
	a := p.attrs[i]
	if a.colon < 0 {
		return p.buf[a.name.s:a.name.e]
	}
	return p.buf[a.colon+1 : a.name.e]
}

func (p *rivtaParser) sameAttr(i, j int) bool {
	if string(p.attrLocal(i)) != string(p.attrLocal(j)) {
		return false
	}
	ai, aj := p.attrs[i], p.attrs[j]
	if (ai.colon < 0) != (aj.colon < 0) {
		return false
	}
	return ai.colon < 0 || p.attrNS(i) == p.attrNS(j)
}

func (p *rivtaParser) attrKey(i int) string {
	return p.attrNS(i) + " " + string(p.attrLocal(i))
}

// lookup returns the index of the innermost declaration of prefix, or -1.
func (p *rivtaParser) lookup(prefix []byte) int {
	for i := len(p.ns) - 1; i >= 0; i-- {
		d := &p.ns[i]
		if !d.isDefault && string(p.buf[d.prefix.s:d.prefix.e]) == string(prefix) {
			return i
		}
	}
	return -1
}

func (p *rivtaParser) lookupDefault() int {
	for i := len(p.ns) - 1; i >= 0; i-- {
		if p.ns[i].isDefault {
			return i
		}
	}
	return -1
}

// elemNSIndex returns the declaration an element's name resolves to, -1
// for no namespace and -2 for the predeclared xml prefix.
func (p *rivtaParser) elemNSIndex(f rivtaElem) int {
	if f.colon < 0 {
		return p.lookupDefault()
	}
	prefix := p.buf[f.name.s:f.colon]
	if string(prefix) == "xml" {
		return -2
	}
	return p.lookup(prefix)
}

func (p *rivtaParser) elemNamespace(f rivtaElem) string {
	switch i := p.elemNSIndex(f); i {
	case -1:
		return ""
	case -2:
		return rivtaXMLNS
	default:
		return p.nsValue(i)
	}
}

// nsValue returns the normalised value of declaration i ("" for i < 0).
func (p *rivtaParser) nsValue(i int) string {
	if i < 0 {
		return ""
	}
	d := &p.ns[i]
	raw := p.buf[d.value.s:d.value.e]
	if !d.norm {
		if p.alias {
			return aliasString(raw)
		}
		return string(raw)
	}
	return string(rivtaAppendCharData(make([]byte, 0, len(raw)), raw, true))
}

// nsIs compares the value of declaration i with s without allocating in the
// common case.
func (p *rivtaParser) nsIs(i int, s string) bool {
	if i < 0 {
		return false
	}
	d := &p.ns[i]
	if !d.norm {
		return string(p.buf[d.value.s:d.value.e]) == s
	}
	return p.nsValue(i) == s
}

func (p *rivtaParser) local(f rivtaElem) []byte {
	if f.colon >= 0 {
		return p.buf[f.colon+1 : f.name.e]
	}
	return p.buf[f.name.s:f.name.e]
}

// readEndElem is Woodstox's readEndElem; pos is just after "</".
func (p *rivtaParser) readEndElem(pos int) (rivtaTok, error) {
	const sfx = " in end tag"
	b := p.buf
	top := p.stack[len(p.stack)-1]
	full := b[top.name.s:top.name.e]
	start := pos
	c, pos, err := p.nextChar(pos, sfx)
	if err != nil {
		return rivtaTokEOF, err
	}
	if c != ':' && !rivtaIsNameStart(c) {
		if c <= ' ' {
			return rivtaTokEOF, p.unexpected(pos, c, "; missing element name?")
		}
		return rivtaTokEOF, p.unexpected(pos, c, "; expected an element name.")
	}
	wrong := func(done int) error {
		// Back up to a character boundary so the reported name is whole.
		for done > 0 && done < len(full) && !utf8.RuneStart(full[done]) {
			done--
		}
		end := p.fnameEnd(start + done)
		return p.failAt(end, "Unexpected close tag </"+string(full[:done])+string(b[start+done:end])+">; expected </"+string(full)+">.")
	}
	// All bytes read so far matched, so comparing bytes is comparing chars.
	n := len(full)
	for i := 0; i < n; i++ {
		if start+i >= len(b) {
			return rivtaTokEOF, p.eob(sfx)
		}
		if b[start+i] != full[i] {
			return rivtaTokEOF, wrong(i)
		}
	}
	pos = start + n
	if c, pos, err = p.nextChar(pos, sfx); err != nil {
		return rivtaTokEOF, err
	}
	if c <= ' ' {
		if c, pos, err = p.afterSpace(c, pos, sfx); err != nil {
			return rivtaTokEOF, err
		}
	} else if c == ':' || rivtaIsNameChar(c) {
		return rivtaTokEOF, wrong(n)
	}
	if c != '>' {
		return rivtaTokEOF, p.unexpected(pos, c, sfx+" Expected '>'.")
	}
	p.pos = pos
	p.endName = rivtaSpan{start, start + n}
	p.pop()
	return rivtaTokEnd, nil
}

// rivtaAppendCharData appends raw character data with references resolved
// and line ends normalised as Woodstox reports them: CR and CRLF become LF
// in text, and tab, CR, LF and CRLF become a space in attribute values.
// Input is assumed validated; malformed references are copied verbatim.
func rivtaAppendCharData(dst, raw []byte, attr bool) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '&':
			if r, n := rivtaDecodeRef(raw[i+1:]); n > 0 {
				dst = utf8.AppendRune(dst, r)
				i += 1 + n
				continue
			}
			dst = append(dst, c)
		case c == '\r':
			if i+1 < len(raw) && raw[i+1] == '\n' {
				i++
			}
			if attr {
				dst = append(dst, ' ')
			} else {
				dst = append(dst, '\n')
			}
		case attr && (c == '\n' || c == '\t'):
			dst = append(dst, ' ')
		default:
			dst = append(dst, c)
		}
		i++
	}
	return dst
}

// rivtaDecodeRef decodes the reference at the start of b (after '&') and
// returns the character and the bytes consumed including ';', or n == 0.
func rivtaDecodeRef(b []byte) (rune, int) {
	semi := bytes.IndexByte(b, ';')
	if semi <= 0 {
		return 0, 0
	}
	name := b[:semi]
	if name[0] == '#' {
		v, base, digits := 0, 10, name[1:]
		if len(digits) > 0 && digits[0] == 'x' {
			base, digits = 16, digits[1:]
		}
		if len(digits) == 0 {
			return 0, 0
		}
		for _, c := range digits {
			d := rivtaHexVal(rune(c))
			if d < 0 || d >= base {
				return 0, 0
			}
			if v = v*base + d; v > unicode.MaxRune {
				return 0, 0
			}
		}
		return rune(v), semi + 1
	}
	switch string(name) {
	case "amp":
		return '&', semi + 1
	case "lt":
		return '<', semi + 1
	case "gt":
		return '>', semi + 1
	case "apos":
		return '\'', semi + 1
	case "quot":
		return '"', semi + 1
	}
	return 0, 0
}
