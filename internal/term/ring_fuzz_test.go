package term

import (
	"bytes"
	"testing"
)

// FuzzRing checks the ring against a model that keeps everything: any
// sequence of writes leaves exactly the tail of the written bytes, at the
// offsets they were written at, and a read from any offset returns the
// bytes that were there or says how many were lost.
func FuzzRing(f *testing.F) {
	f.Add(uint8(8), []byte("abcdefghij"), uint8(3), uint16(0))
	f.Add(uint8(1), []byte("xy"), uint8(1), uint16(1))
	f.Add(uint8(16), []byte("a\x00b\xffc"), uint8(2), uint16(7))
	f.Fuzz(func(t *testing.T, size uint8, data []byte, chunk uint8, from uint16) {
		r := NewRing(int(size) + 1)
		var all []byte
		step := int(chunk) + 1
		for i := 0; i < len(data); i += step {
			j := min(i+step, len(data))
			r.Write(data[i:j])
			all = append(all, data[i:j]...)
		}
		if r.End() != int64(len(all)) {
			t.Fatalf("end %d, wrote %d", r.End(), len(all))
		}
		off := int64(from) % (int64(len(all)) + 1)
		p := make([]byte, len(all)+1)
		n, got, _, _ := r.TryRead(off, -1, p)
		if got < off && got != r.Start() {
			t.Fatalf("read from %d started at %d", off, got)
		}
		if got > off && got != r.Start() {
			t.Fatalf("lost bytes but did not start at the ring's start: %d vs %d", got, r.Start())
		}
		if !bytes.Equal(p[:n], all[got:]) {
			t.Fatalf("read %q from %d, want %q", p[:n], got, all[got:])
		}
	})
}
