package sandboxd

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// stdDecode is the reference: what decodeActionRequest did before it
// decoded in place.
func stdDecode(b []byte) (any, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	err := dec.Decode(&v)
	return v, err
}

func checkInPlace(t *testing.T, in []byte) {
	t.Helper()
	if !json.Valid(in) {
		return
	}
	want, err := stdDecode(in)
	if err != nil {
		t.Fatalf("encoding/json refused a valid text %q: %v", in, err)
	}
	got, err := decodeJSONInPlace(bytes.Clone(in))
	if err != nil {
		t.Fatalf("decodeJSONInPlace(%q): %v", in, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decodeJSONInPlace(%q)\n got %#v\nwant %#v", in, got, want)
	}
}

var inPlaceSeeds = []string{
	`{}`, `[]`, `""`, `0`, `-1.5e+3`, `true`, `false`, `null`, ` { "a" : [ 1 , 2 , { } ] , "b" : null } `,
	`{"action":{"action":"write","args":{"path":"/x","content":"a\nb\tc\"d\\e\/f\u00e9\u20ac\b\f\r"}}}`,
	`"\ud83d\ude00"`, `"\ud800"`, `"\udc00x"`, "\"\xff\xfe\"", "\"caf\xc3\xa9\"", `"\u0000"`, `{"a":1,"a":2}`,
	`[[[["deep"]]]]`, `{"k\n":"v"}`, `[1,"",{},[],true]`, `"\\\\\\""`,
}

func TestDecodeJSONInPlace(t *testing.T) {
	for _, s := range inPlaceSeeds {
		checkInPlace(t, []byte(s))
	}
}

func FuzzDecodeJSONInPlace(f *testing.F) {
	for _, s := range inPlaceSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkInPlace(t, in) })
}
