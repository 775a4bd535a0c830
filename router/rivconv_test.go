package router

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// The §3.6 example, RIVTABP21 form and RIVTABP20 form.
const (
	rivconvPing21 = `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:add="urn:riv:itintegration:registry:1"
                  xmlns:urn="urn:riv:itintegration:monitoring:PingForConfigurationResponder:1">
   <soapenv:Header><add:LogicalAddress>local-ping-producer</add:LogicalAddress></soapenv:Header>
   <soapenv:Body><urn:PingForConfiguration/></soapenv:Body>
</soapenv:Envelope>`
	rivconvPing20 = `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:add="http://www.w3.org/2005/08/addressing"
                  xmlns:urn="urn:riv:itintegration:monitoring:PingForConfigurationResponder:1">
   <soapenv:Header><add:To>local-ping-producer</add:To></soapenv:Header>
   <soapenv:Body><urn:PingForConfiguration/></soapenv:Body>
</soapenv:Envelope>`
)

func TestConvertProfile(t *testing.T) {
	const decl = `<?xml version="1.0" encoding="UTF-8"?>`
	tests := []struct {
		name     string
		in       string
		from, to Profile
		want     string
	}{
		{"§3.6 21 to 20", rivconvPing21, ProfileBP21, ProfileBP20, decl + rivconvPing20},
		{"§3.6 20 to 21", rivconvPing20, ProfileBP20, ProfileBP21, decl + rivconvPing21},
		{"existing declaration replaced", `<?xml version='1.0' encoding='utf-8'?>` + "\n" + rivconvPing20, ProfileBP20, ProfileBP21, decl + "\n" + rivconvPing21},
		{"declaration on the address element, default namespace",
			`<s:Envelope xmlns:s="S"><s:Header><To xmlns="http://www.w3.org/2005/08/addressing">A</To></s:Header><s:Body><c:X xmlns:c="C"/></s:Body></s:Envelope>`,
			ProfileBP20, ProfileBP21,
			decl + `<s:Envelope xmlns:s="S"><s:Header><LogicalAddress xmlns="urn:riv:itintegration:registry:1">A</LogicalAddress></s:Header><s:Body><c:X xmlns:c="C"/></s:Body></s:Envelope>`},
		{"declaration on Header, self-closing address",
			`<s:Envelope xmlns:s="S"><s:Header xmlns:r="urn:riv:itintegration:registry:1"><r:LogicalAddress/></s:Header><s:Body/></s:Envelope>`,
			ProfileBP21, ProfileBP20,
			decl + `<s:Envelope xmlns:s="S"><s:Header xmlns:r="http://www.w3.org/2005/08/addressing"><r:To/></s:Header><s:Body/></s:Envelope>`},
		{"To in another namespace is left alone",
			`<s:Envelope xmlns:s="S" xmlns:o="other"><s:Header><o:To>A</o:To></s:Header><s:Body/></s:Envelope>`,
			ProfileBP20, ProfileBP21,
			decl + `<s:Envelope xmlns:s="S" xmlns:o="other"><s:Header><o:To>A</o:To></s:Header><s:Body/></s:Envelope>`},
		{"To already in the target namespace is renamed",
			`<s:Envelope xmlns:s="S" xmlns:r="urn:riv:itintegration:registry:1"><s:Header><r:To>A</r:To></s:Header><s:Body/></s:Envelope>`,
			ProfileBP20, ProfileBP21,
			decl + `<s:Envelope xmlns:s="S" xmlns:r="urn:riv:itintegration:registry:1"><s:Header><r:LogicalAddress>A</r:LogicalAddress></s:Header><s:Body/></s:Envelope>`},
		{"other header blocks, comments and body untouched",
			"<!-- lead -->\n" + `<s:Envelope xmlns:s="S" xmlns:a="http://www.w3.org/2005/08/addressing" xmlns:u="U"><s:Header><u:ArgosHeader a:x='1'/><!-- a:To --><a:To >B</a:To ></s:Header><s:Body><u:Req xmlns:a="http://www.w3.org/2005/08/addressing"><a:To>body</a:To></u:Req></s:Body></s:Envelope>` + "\n",
			ProfileBP20, ProfileBP21,
			decl + "<!-- lead -->\n" + `<s:Envelope xmlns:s="S" xmlns:a="urn:riv:itintegration:registry:1" xmlns:u="U"><s:Header><u:ArgosHeader a:x='1'/><!-- a:To --><a:LogicalAddress >B</a:LogicalAddress ></s:Header><s:Body><u:Req xmlns:a="http://www.w3.org/2005/08/addressing"><a:To>body</a:To></u:Req></s:Body></s:Envelope>` + "\n"},
		{"no Body", `<s:Envelope xmlns:s="S"><s:Header><a:To xmlns:a="http://www.w3.org/2005/08/addressing">A</a:To></s:Header></s:Envelope>`,
			ProfileBP20, ProfileBP21,
			decl + `<s:Envelope xmlns:s="S"><s:Header><a:LogicalAddress xmlns:a="urn:riv:itintegration:registry:1">A</a:LogicalAddress></s:Header></s:Envelope>`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ConvertProfile([]byte(tc.in), tc.from, tc.to)
			if err != nil {
				t.Fatalf("ConvertProfile: %v", err)
			}
			if string(got) != tc.want {
				t.Errorf("ConvertProfile =\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// The reference examples come in RIVTABP20/21 pairs that differ only in the
// addressing header, so converting one must give the other.
func TestConvertProfileExamplePairs(t *testing.T) {
	const decl = `<?xml version="1.0" encoding="UTF-8"?>`
	pairs := []struct{ bp20, bp21 string }{
		{"pingforconfiguration-request-rivtabp20.xml", "pingforconfiguration-request-rivtabp21.xml"},
		{"rivtabp20-request-GetSubjectOfCareSchedule.xml", "rivtabp21-request-GetSubjectOfCareSchedule.xml"},
	}
	for _, pair := range pairs {
		b20, b21 := rivtaExample(t, pair.bp20), rivtaExample(t, pair.bp21)
		stripDecl := func(b []byte) []byte {
			return b[bytes.Index(b, []byte("?>"))+2:]
		}
		for _, tc := range []struct {
			name     string
			in, want []byte
			from, to Profile
		}{
			{pair.bp21 + " to 20", b21, b20, ProfileBP21, ProfileBP20},
			{pair.bp20 + " to 21", b20, b21, ProfileBP20, ProfileBP21},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := ConvertProfile(tc.in, tc.from, tc.to)
				if err != nil {
					t.Fatalf("ConvertProfile: %v", err)
				}
				// The GetSubjectOfCareSchedule pair also differs in the
				// address value itself.
				wantInfo, _ := ReadRequest(tc.want)
				inInfo, _ := ReadRequest(tc.in)
				body := bytes.Replace(stripDecl(tc.want), []byte(">"+wantInfo.LogicalAddress+"<"), []byte(">"+inInfo.LogicalAddress+"<"), 1)
				want := append([]byte(decl), body...)
				if !bytes.Equal(got, want) {
					t.Errorf("ConvertProfile =\n%s\nwant\n%s", got, want)
				}
				before, err1 := ReadRequest(tc.in)
				after, err2 := ReadRequest(got)
				if err1 != nil || err2 != nil || after.Profile != tc.to || after.LogicalAddress != before.LogicalAddress || after.Contract != before.Contract {
					t.Errorf("ReadRequest before %+v (%v), after %+v (%v)", before, err1, after, err2)
				}
			})
		}
	}
}

func TestConvertProfileEdgeCases(t *testing.T) {
	t.Run("same profile returns the input", func(t *testing.T) {
		in := []byte(rivconvPing21)
		got, err := ConvertProfile(in, ProfileBP21, ProfileBP21)
		if err != nil || &got[0] != &in[0] || len(got) != len(in) {
			t.Errorf("ConvertProfile = %q, %v; want the input itself", got, err)
		}
	})
	for _, pair := range [][2]Profile{{ProfileBP20, ProfileUnknown}, {ProfileUnknown, ProfileBP21}} {
		t.Run("unsupported "+pair[0].String()+"->"+pair[1].String(), func(t *testing.T) {
			if _, err := ConvertProfile([]byte(rivconvPing20), pair[0], pair[1]); !errors.Is(err, ErrUnsupportedConversion) {
				t.Errorf("ConvertProfile error %v, want ErrUnsupportedConversion", err)
			}
		})
	}
	t.Run("UTF-16 input becomes UTF-8", func(t *testing.T) {
		in := rivtaUTF16(`<?xml version="1.0" encoding="UTF-16"?>`+rivconvPing21, true, true)
		got, err := ConvertProfile(in, ProfileBP21, ProfileBP20)
		if want := `<?xml version="1.0" encoding="UTF-8"?>` + rivconvPing20; err != nil || string(got) != want {
			t.Errorf("ConvertProfile = %q, %v; want %q", got, err, want)
		}
	})
	t.Run("ISO-8859-1 input becomes UTF-8", func(t *testing.T) {
		in := []byte("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><!-- V\xe4xj\xf6 -->" + rivconvPing21)
		got, err := ConvertProfile(in, ProfileBP21, ProfileBP20)
		if want := `<?xml version="1.0" encoding="UTF-8"?><!-- Växjö -->` + rivconvPing20; err != nil || string(got) != want {
			t.Errorf("ConvertProfile = %q, %v; want %q", got, err, want)
		}
	})
	t.Run("malformed header", func(t *testing.T) {
		_, err := ConvertProfile([]byte(strings.Replace(rivconvPing20, "</add:To>", "</add:Tx>", 1)), ProfileBP20, ProfileBP21)
		var se *SyntaxError
		if !errors.As(err, &se) || !strings.Contains(se.Msg, "Unexpected close tag </add:Tx>") {
			t.Errorf("ConvertProfile error %v, want a *SyntaxError about the close tag", err)
		}
	})
}
