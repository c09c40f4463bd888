package watch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

// recordHeader is the size of struct inotify_event before its name: wd,
// mask, cookie, len, each 32 bits in the machine's byte order.
const recordHeader = 16

// maxNameLen bounds a record's name field. NAME_MAX is 255, and the kernel
// pads the name to a multiple of the header size, so a larger length can
// only be corruption; refusing it keeps a bad length from swallowing the
// records after it.
const maxNameLen = 256 + recordHeader

// record is one decoded inotify event.
type record struct {
	wd     int32
	mask   uint32
	cookie uint32
	name   string // "" for an event on the watched directory itself
}

var errTruncated = errors.New("truncated inotify record")

// decodeRecords calls fn for each record in b, which holds what one read(2)
// of an inotify descriptor returned, and stops at fn's first error. The
// kernel never splits a record across reads, so a partial record at the
// end is an error.
func decodeRecords(b []byte, fn func(record) error) error {
	for len(b) > 0 {
		if len(b) < recordHeader {
			return fmt.Errorf("%w: %d header bytes: %w", errTruncated, len(b), errdefs.ErrInternal)
		}
		r := record{
			wd:     int32(binary.NativeEndian.Uint32(b[0:])),
			mask:   binary.NativeEndian.Uint32(b[4:]),
			cookie: binary.NativeEndian.Uint32(b[8:]),
		}
		n := binary.NativeEndian.Uint32(b[12:])
		if n > maxNameLen {
			return fmt.Errorf("inotify record name of %d bytes: %w", n, errdefs.ErrInternal)
		}
		if uint32(len(b)-recordHeader) < n {
			return fmt.Errorf("%w: name of %d bytes, %d left: %w", errTruncated, n, len(b)-recordHeader, errdefs.ErrInternal)
		}
		name := b[recordHeader : recordHeader+n]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		r.name = string(name)
		if err := fn(r); err != nil {
			return err
		}
		b = b[recordHeader+n:]
	}
	return nil
}

// encodeRecord is decodeRecords' inverse, padding the name as the kernel
// does; the tests and the fuzz target build reads with it.
func encodeRecord(dst []byte, r record) []byte {
	n := 0
	if r.name != "" {
		n = (len(r.name) + 1 + recordHeader - 1) / recordHeader * recordHeader
	}
	var h [recordHeader]byte
	binary.NativeEndian.PutUint32(h[0:], uint32(r.wd))
	binary.NativeEndian.PutUint32(h[4:], r.mask)
	binary.NativeEndian.PutUint32(h[8:], r.cookie)
	binary.NativeEndian.PutUint32(h[12:], uint32(n))
	dst = append(dst, h[:]...)
	dst = append(dst, r.name...)
	return append(dst, make([]byte, n-len(r.name))...)
}
