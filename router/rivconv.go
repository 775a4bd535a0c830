package router

import (
	"bytes"
	"errors"
	"fmt"
)

// ErrUnsupportedConversion is returned by ConvertProfile for any pair other
// than RIVTABP20 <-> RIVTABP21 (the reference answers VP005).
var ErrUnsupportedConversion = errors.New("unsupported RIV TA profile conversion")

const (
	rivconvAddressingNS = "http://www.w3.org/2005/08/addressing"
	rivconvRegistryNS   = "urn:riv:itintegration:registry:1"
	rivconvDecl         = `<?xml version="1.0" encoding="UTF-8"?>`
)

// ConvertProfile rewrites the addressing header of a request from one RIV
// TA profile to the other (skltp-vp.md §3.6). For 20→21, declarations of
// http://www.w3.org/2005/08/addressing on the Envelope, on the Header and on
// the address element become urn:riv:itintegration:registry:1, and an
// element To in either namespace is renamed LogicalAddress, keeping its
// prefix; 21→20 is the reverse. Unlike the reference, which re-serialises
// the whole document with StAX, everything else stays byte-identical, and
// nothing after the Body start tag is looked at. The result is UTF-8 and
// starts with an XML declaration that replaces any existing one; input in
// another encoding is decoded first. Equal profiles return body unchanged.
func ConvertProfile(body []byte, from, to Profile) ([]byte, error) {
	out, _, err := convertProfile(body, from, to)
	return out, err
}

// convertProfile is ConvertProfile that also reports whether it stopped at
// the Body start tag. When it did, everything after that tag was copied
// unchanged, so converting a prefix of a UTF-8 document that reaches the
// Body and appending the rest of the document gives the same bytes as
// converting the whole document; the router relies on this to convert a
// streamed request from its first bytes.
func convertProfile(body []byte, from, to Profile) ([]byte, bool, error) {
	if from == to {
		return body, false, nil
	}
	var fromNS, toNS, fromElem, toElem string
	switch {
	case from == ProfileBP20 && to == ProfileBP21:
		fromNS, toNS, fromElem, toElem = rivconvAddressingNS, rivconvRegistryNS, "To", "LogicalAddress"
	case from == ProfileBP21 && to == ProfileBP20:
		fromNS, toNS, fromElem, toElem = rivconvRegistryNS, rivconvAddressingNS, "LogicalAddress", "To"
	default:
		return nil, false, fmt.Errorf("convert %q to %q: %w", from.String(), to.String(), ErrUnsupportedConversion)
	}

	buf, err := rivconvUTF8(body)
	if err != nil {
		return nil, false, fmt.Errorf("convert %s to %s: %w", from, to, err)
	}
	p := rivtaGetParser(buf)
	defer p.release()
	decl, err := p.readDecl()
	if err != nil {
		return nil, false, fmt.Errorf("convert %s to %s: %w", from, to, err)
	}
	p.pos = decl.end
	p.xml11 = decl.xml11

	out := make([]byte, 0, len(buf)+len(rivconvDecl)+32)
	out = append(out, rivconvDecl...)
	copied := decl.end
	splice := func(s rivtaSpan, repl string) {
		out = append(out, buf[copied:s.s]...)
		out = append(out, repl...)
		copied = s.e
	}

	// renamed parallels p.stack: whether the element's end tag must be
	// renamed too. open counts renamed elements not yet closed.
	var renamed []bool
	open := 0
	atBody := false
loop:
	for {
		k, err := p.next()
		if err != nil {
			return nil, false, fmt.Errorf("convert %s to %s: %w", from, to, err)
		}
		switch k {
		case rivtaTokEOF:
			break loop
		case rivtaTokStart:
			f := p.cur
			local := string(p.local(f))
			if local == "Body" && open == 0 {
				atBody = true
				break loop
			}
			rename := false
			if local == fromElem {
				i := p.elemNSIndex(f)
				rename = p.nsIs(i, fromNS) || p.nsIs(i, toNS)
			}
			if rename {
				local = toElem
			}
			qualifies := local == "Envelope" || local == "Header" || local == toElem
			if rename {
				splice(p.localSpan(f), toElem)
				open++
			}
			for j := f.nsBase; j < len(p.ns) && qualifies; j++ {
				if p.nsIs(j, fromNS) {
					splice(p.ns[j].value, toNS)
				}
			}
			renamed = append(renamed, rename)
			if p.pendingEnd {
				// <x/>: the virtual end tag has nothing to rename.
				if _, err := p.next(); err != nil {
					return nil, false, fmt.Errorf("convert %s to %s: %w", from, to, err)
				}
				renamed = renamed[:len(renamed)-1]
				if rename {
					open--
				}
			}
		case rivtaTokEnd:
			n := len(renamed) - 1
			if n < 0 {
				continue
			}
			if renamed[n] {
				f := p.cur
				start := p.endName.s
				if f.colon >= 0 {
					start += f.colon - f.name.s + 1
				}
				splice(rivtaSpan{start, p.endName.e}, toElem)
				open--
			}
			renamed = renamed[:n]
		}
	}
	return append(out, buf[copied:]...), atBody, nil
}

// localSpan is the local part of an element's name in its start tag.
func (p *rivtaParser) localSpan(f rivtaElem) rivtaSpan {
	if f.colon >= 0 {
		return rivtaSpan{f.colon + 1, f.name.e}
	}
	return f.name
}

// rivconvUTF8 returns the document as UTF-8 without BOM, decoding UTF-16
// and declared single-byte encodings.
func rivconvUTF8(body []byte) ([]byte, error) {
	if out, _, transcoded := rivtaSniffUTF16(body); transcoded {
		return out, nil
	}
	b := bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
	_, enc, ok := rivtaFindDeclEncoding(b)
	if !ok || enc.s < 0 {
		return b, nil
	}
	return DecodeToUTF8(b, string(b[enc.s:enc.e]))
}
