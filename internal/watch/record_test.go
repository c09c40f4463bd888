package watch

import (
	"bytes"
	"strings"
	"testing"
)

func TestDecodeRecords(t *testing.T) {
	in := []record{
		{wd: 1, mask: 0x100, name: "a"},
		{wd: 2, mask: 0x40, cookie: 9, name: strings.Repeat("n", 255)},
		{wd: -1, mask: 0x4000},
		{wd: 3, mask: 0x2, name: "exactly16bytes.."},
	}
	var b []byte
	for _, r := range in {
		b = encodeRecord(b, r)
	}
	var out []record
	if err := decodeRecords(b, func(r record) error { out = append(out, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("decoded %d records, want %d", len(out), len(in))
	}
	for i := range in {
		if out[i] != in[i] {
			t.Errorf("record %d: got %+v, want %+v", i, out[i], in[i])
		}
	}
	for cut := 1; cut < len(b); cut++ {
		if bytes.Equal(b[:cut], encodeAll(in[:countWhole(in, cut)])) {
			continue // a cut on a record boundary is a valid, shorter read
		}
		if err := decodeRecords(b[:cut], func(record) error { return nil }); err == nil {
			t.Errorf("a read cut at %d of %d bytes decoded without error", cut, len(b))
		}
	}
}

func encodeAll(rs []record) []byte {
	var b []byte
	for _, r := range rs {
		b = encodeRecord(b, r)
	}
	return b
}

// countWhole is how many of rs fit whole in the first n encoded bytes.
func countWhole(rs []record, n int) int {
	size := 0
	for i, r := range rs {
		size += len(encodeRecord(nil, r))
		if size > n {
			return i
		}
	}
	return len(rs)
}

// FuzzDecodeRecords: any bytes decode without panicking, the names carry
// no NUL, and what decodes re-encodes (with the kernel's padding) to bytes
// that decode to the same records.
func FuzzDecodeRecords(f *testing.F) {
	f.Add(encodeAll([]record{{wd: 1, mask: 0x100, name: "a"}}))
	f.Add(encodeAll([]record{{wd: 1, mask: 0x40, cookie: 5, name: "x"}, {wd: 2, mask: 0x80, cookie: 5, name: "y"}}))
	f.Add(encodeAll([]record{{wd: -1, mask: 0x4000}}))
	f.Add([]byte{1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var got []record
		err := decodeRecords(b, func(r record) error {
			if strings.IndexByte(r.name, 0) >= 0 {
				t.Fatalf("name %q holds a NUL", r.name)
			}
			got = append(got, r)
			return nil
		})
		if err != nil {
			return
		}
		var again []record
		if err := decodeRecords(encodeAll(got), func(r record) error { again = append(again, r); return nil }); err != nil {
			t.Fatalf("re-encoded records do not decode: %v", err)
		}
		if len(again) != len(got) {
			t.Fatalf("%d records re-decoded as %d", len(got), len(again))
		}
		for i := range got {
			if again[i] != got[i] {
				t.Fatalf("record %d: %+v re-decoded as %+v", i, got[i], again[i])
			}
		}
	})
}
