package router

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzReadRequest checks that no input makes the parser panic, that errors
// are always *SyntaxError and that a successful read is deterministic. The
// profile conversion shares the parser, so it is exercised on the same input.
func FuzzReadRequest(f *testing.F) {
	names, _ := filepath.Glob(filepath.Join(rivtaExamplesDir, "*.xml"))
	for _, name := range names {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		"",
		`<felaktigt format soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">`,
		rivta20(`<add:To>A&amp;&#x20;<![CDATA[x]]></add:To>`),
		rivtaMTOMEnvelope,
		"<?xml version='1.0' encoding='ISO-8859-1'?><a xmlns:b='c'><b:To>\xe4</b:To></a>",
		"\xff\xfe<\x00a\x00/\x00>\x00",
		"<!DOCTYPE a [<!ENTITY x 'y'>]><a>&x;</a>",
		"<a><!-- - --><?p d?></a>",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := ReadRequest(data)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %T (%v), want *SyntaxError", err, err)
			}
			_ = se.Error()
		} else {
			again, err := ReadRequest(data)
			if err != nil || again != info {
				t.Fatalf("second ReadRequest = %+v, %v; first %+v", again, err, info)
			}
		}
		for _, conv := range [][2]Profile{{ProfileBP20, ProfileBP21}, {ProfileBP21, ProfileBP20}} {
			_, _ = ConvertProfile(data, conv[0], conv[1])
		}
		_, _, _ = ExtractMTOM([]byte("application/xop+xml"), data)
	})
}
