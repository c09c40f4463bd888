package egress

import (
	"bufio"
	"encoding/binary"
	"errors"
)

// errNotTLS: the stream does not start with a TLS handshake record.
var errNotTLS = errors.New("not a TLS client hello")

// maxHello bounds what is buffered to find a server name; real client
// hellos are well under it (post-quantum key shares make them ~1.8 KiB).
const maxHello = 16 << 10

// peekSNI reads, without consuming, the TLS ClientHello at the start of
// br and returns its server name ("" when it has none). The proxy never
// terminates TLS: it only reads this first, cleartext message to decide
// where the stream may go, then forwards every byte unchanged.
func peekSNI(br *bufio.Reader) (string, error) {
	// One byte first: a protocol that is not TLS may send less than a
	// record header and wait for an answer.
	first, err := br.Peek(1)
	if err != nil {
		return "", err
	}
	if first[0] != 0x16 {
		return "", errNotTLS
	}
	hdr, err := br.Peek(5)
	if err != nil {
		return "", err
	}
	if hdr[0] != 0x16 || hdr[1] != 3 {
		return "", errNotTLS
	}
	n := int(binary.BigEndian.Uint16(hdr[3:5]))
	if n == 0 || 5+n > maxHello {
		return "", errNotTLS
	}
	rec, err := br.Peek(5 + n)
	if err != nil {
		return "", err
	}
	return parseClientHello(rec[5:])
}

// parseClientHello finds the server_name extension of a ClientHello
// handshake message that fits one record (a hello split over records is
// refused: no client this proxy serves sends one, and following it would
// mean buffering unboundedly).
func parseClientHello(b []byte) (string, error) {
	r := reader(b)
	typ, ok := r.u8()
	if !ok || typ != 1 {
		return "", errNotTLS
	}
	n, ok := r.u24()
	if !ok || n > len(r) {
		return "", errNotTLS
	}
	r = r[:n]
	if !r.skip(2 + 32) { // version, random
		return "", errNotTLS
	}
	if !r.skip8() || !r.skip16() || !r.skip8() { // session id, cipher suites, compression
		return "", errNotTLS
	}
	if len(r) == 0 {
		return "", nil // no extensions
	}
	exts, ok := r.sub16()
	if !ok {
		return "", errNotTLS
	}
	for len(exts) > 0 {
		typ, ok1 := exts.u16()
		body, ok2 := exts.sub16()
		if !ok1 || !ok2 {
			return "", errNotTLS
		}
		if typ != 0 { // server_name
			continue
		}
		list, ok := body.sub16()
		if !ok {
			return "", errNotTLS
		}
		for len(list) > 0 {
			nt, ok1 := list.u8()
			name, ok2 := list.sub16()
			if !ok1 || !ok2 {
				return "", errNotTLS
			}
			if nt == 0 {
				if len(name) == 0 {
					return "", errNotTLS
				}
				return string(name), nil
			}
		}
		return "", nil
	}
	return "", nil
}

type reader []byte

func (r *reader) u8() (int, bool) {
	if len(*r) < 1 {
		return 0, false
	}
	v := (*r)[0]
	*r = (*r)[1:]
	return int(v), true
}

func (r *reader) u16() (int, bool) {
	if len(*r) < 2 {
		return 0, false
	}
	v := binary.BigEndian.Uint16(*r)
	*r = (*r)[2:]
	return int(v), true
}

func (r *reader) u24() (int, bool) {
	if len(*r) < 3 {
		return 0, false
	}
	v := int((*r)[0])<<16 | int((*r)[1])<<8 | int((*r)[2])
	*r = (*r)[3:]
	return v, true
}

func (r *reader) skip(n int) bool {
	if len(*r) < n {
		return false
	}
	*r = (*r)[n:]
	return true
}

func (r *reader) skip8() bool {
	n, ok := r.u8()
	return ok && r.skip(n)
}

func (r *reader) skip16() bool {
	n, ok := r.u16()
	return ok && r.skip(n)
}

func (r *reader) sub16() (reader, bool) {
	n, ok := r.u16()
	if !ok || len(*r) < n {
		return nil, false
	}
	s := (*r)[:n]
	*r = (*r)[n:]
	return s, true
}
