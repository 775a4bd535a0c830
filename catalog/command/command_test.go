package command

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	big := strings.Repeat(`{"x":"abcdefgh"},`, 10000)
	tests := []struct {
		name    string
		typ     Type
		payload any
	}{
		{"mutate", TypeMutate, &Mutate{Meta: Meta{Actor: "a", Source: "admin", UnixNano: 1}, Ops: []Op{{Op: "put", Kind: "contract", Entity: json.RawMessage(`{"namespace":"urn:x"}`)}}}},
		{"order compressed", TypeOrder, &Order{Meta: Meta{Actor: "b"}, Platform: "P", Order: json.RawMessage("[" + big + "1]")}},
		{"rollback", TypeRollback, &Rollback{ToSeq: 7}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Encode(tc.typ, tc.payload)
			if err != nil {
				t.Fatal(err)
			}
			typ, got, err := Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if typ != tc.typ || !reflect.DeepEqual(got, tc.payload) {
				t.Fatalf("got %v %#v, want %v %#v", typ, got, tc.typ, tc.payload)
			}
		})
	}
}

// TestGolden pins the byte form of an entry: changing a tag or a type number
// breaks every node's existing log.
func TestGolden(t *testing.T) {
	b, err := Encode(TypeRollback, &Rollback{Meta: Meta{Actor: "admin", Source: "rollback", UnixNano: 1700000000000000000}, ToSeq: 3})
	if err != nil {
		t.Fatal(err)
	}
	want := append([]byte{4, 0}, `{"meta":{"actor":"admin","source":"rollback","time":1700000000000000000},"toSeq":3}`...)
	if !bytes.Equal(b, want) {
		t.Fatalf("encoding changed:\n got %q\nwant %q", b, want)
	}
}

func TestUnknownType(t *testing.T) {
	if _, _, err := Decode([]byte{42, 0, '{', '}'}); !errors.Is(err, ErrUnknownType) {
		t.Fatalf("err = %v, want ErrUnknownType", err)
	}
	if _, _, err := Decode([]byte{1}); err == nil {
		t.Fatal("short entry accepted")
	}
}

// TestDecodeOrderUnchecked: Decode takes an order's JSON out of the entry
// without reading it; for every payload Encode writes it must give what the
// full decode (DecodeChecked) gives, and payloads in another form must go
// the full way.
func TestDecodeOrderUnchecked(t *testing.T) {
	big := `{"plattform":"P","inkludera":{"logiskadresser":[` + strings.Repeat(`{"hsaId":"SE1","beskrivning":"x"},`, 3000) + `{"hsaId":"SE2"}]}}`
	for _, o := range []*Order{
		{Meta: Meta{Actor: "a", Source: "order", Comment: `c "q" ,"platform":"x","order":`, UnixNano: 5}, Platform: "P", Order: json.RawMessage(`{"plattform":"P"}`)},
		{Meta: Meta{Actor: "<&>"}, Platform: `p","order":{}`, Order: json.RawMessage(`{"a":[1,2,{"order":"x"}]}`)},
		{Platform: "P", Order: json.RawMessage(big)}, // deflated
		{Platform: "P", Order: json.RawMessage(`"just a string"`)},
	} {
		b, err := Encode(TypeOrder, o)
		if err != nil {
			t.Fatal(err)
		}
		_, got, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		_, want, err := DecodeChecked(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Decode %#v, DecodeChecked %#v", got, want)
		}
	}
	// Not as Encode writes it: decoded in full (or refused) either way.
	for _, body := range []string{
		`{"platform":"P","meta":{},"order":{}}`,
		`{"meta":{} ,"platform":"P","order":{}}`,
		`{"meta":{},"platform":7,"order":{}}`,
		`{"meta":{"time":"x"},"platform":"P","order":{}}`,
		`{"meta":{},"platform":"P","order":}`,
	} {
		b := append([]byte{byte(TypeOrder), 0}, body...)
		_, got, gerr := Decode(b)
		_, want, werr := DecodeChecked(b)
		if (gerr == nil) != (werr == nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: Decode %#v %v, DecodeChecked %#v %v", body, got, gerr, want, werr)
		}
	}
	// Unchecked: the caller finds out (tak.ParseOrderExact) and decodes in full.
	b := append([]byte{byte(TypeOrder), 0}, `{"meta":{},"platform":"P","order":{"a":1},"order":{"b":2}}`...)
	_, got, err := Decode(b)
	if err != nil || string(got.(*Order).Order) != `{"a":1},"order":{"b":2}` {
		t.Errorf("Decode: %v %q", err, got.(*Order).Order)
	}
	if _, want, err := DecodeChecked(b); err != nil || string(want.(*Order).Order) != `{"b":2}` {
		t.Errorf("DecodeChecked: %v %+v", err, want)
	}
}
