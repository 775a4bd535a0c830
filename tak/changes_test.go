package tak

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// TestEntityChangeJSONMatchesReflection pins the hand-written MarshalJSON to
// the form encoding/json gave the struct it replaced: snapshots hold these
// bytes.
func TestEntityChangeJSONMatchesReflection(t *testing.T) {
	type plain EntityChange
	reflective := func(e EntityChange) []byte {
		b, err := json.Marshal(struct {
			KindName string `json:"kind,omitempty"`
			plain
		}{kindName(e.Kind), plain(e)})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	d := civil(2024, 2, 29)
	cases := []EntityChange{
		{Op: "create", Kind: KindRoute, ID: 7, After: Route{ID: 7, LogicalAddressID: 1, ContractID: 2, CallAddressID: 3, From: d, To: d.AddYears(100)}},
		{Op: "update", Kind: KindLogicalAddress, ID: 9, Before: LogicalAddress{ID: 9, HSAID: "SE1"}, After: LogicalAddress{ID: 9, HSAID: "SE1", Description: "vård <&> \"x\"\n\u2028"}},
		{Op: "delete", Kind: KindAuthorization, ID: -3, Before: Authorization{ID: -3, Agreement: "a&b"}},
		{Op: "hsa-tree", Summary: "12 units"},
		{Op: "timeouts", Summary: "<odd> \"summary\" \\ \x01 é"},
		{Op: ""},
		{Op: "weird\top<>", Kind: KindCategorization, After: Categorization{Category: "c"}},
	}
	for _, e := range cases {
		got, err := e.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		want := reflective(e)
		if !bytes.Equal(got, want) {
			t.Errorf("MarshalJSON(%+v)\n got %s\nwant %s", e, got, want)
		}
		// And as json.Marshal (which compacts) writes it in a snapshot.
		if viaMarshal, _ := json.Marshal(e); !bytes.Equal(viaMarshal, want) {
			t.Errorf("json.Marshal(%+v)\n got %s\nwant %s", e, viaMarshal, want)
		}
	}
}

func TestIsOrderHSAIDMatchesRegexp(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-zA-Z_\-]+$`)
	for _, s := range []string{"", "SE123-abc_X", "a b", "*", "ÅÄÖ", "x\n", "\xff", "-", "_", "a.b", "a/b", strings.Repeat("Z", 300)} {
		if got, want := isOrderHSAID(s), re.MatchString(s); got != want {
			t.Errorf("isOrderHSAID(%q) = %v, regexp says %v", s, got, want)
		}
	}
}

// TestFoldIntoASCII checks the ASCII shortcut against the general rule (the
// smallest rune of the case-folding orbit) for every ASCII character.
func TestFoldIntoASCII(t *testing.T) {
	for r := rune(0); r < 0x80; r++ {
		min := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < min {
				min = f
			}
		}
		var b strings.Builder
		foldInto(&b, string(r))
		if b.String() != string(min) {
			t.Errorf("foldInto(%q) = %q, want %q", r, b.String(), string(min))
		}
	}
}

func TestParseOrderExact(t *testing.T) {
	const o = `{"plattform":"P","genomforandeTidpunkt":"2026-01-01T00:00:00+0000"}`
	for _, tc := range []struct {
		in    string
		exact bool
	}{
		{o, true},
		{" " + o, false},
		{o + "\n", false},
		{"text " + o + " text", false},
		{o + `,"order":{}`, false}, // what Decode leaves when a key follows order
		{o[:len(o)-1] + `,"x":1}`, false},
		{`{"plattform":`, false},
	} {
		_, exact, _ := ParseOrderExact([]byte(tc.in))
		if exact != tc.exact {
			t.Errorf("ParseOrderExact(%q): exact %v, want %v", tc.in, exact, tc.exact)
		}
	}
}
