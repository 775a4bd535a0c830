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
