package sandboxd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/textproto"
)

// formReader reads a multipart/form-data body part by part with a large
// buffer. The standard library's reader peeks 4 KiB at a time, which caps
// uploads well below disk speed; this one hands out up to the caller's
// buffer per Read, so a file part streams in large writes.
type formReader struct {
	br       *bufio.Reader
	dashB    []byte // "--" + boundary
	delim    []byte // "\r\n--" + boundary
	started  bool
	finished bool
	// pending is the length of the delimiter the last part body stopped
	// at, still in the stream.
	pending int
}

// maxPartHeaderBytes bounds the header block of one part.
const maxPartHeaderBytes = 64 << 10

var errMalformedForm = errors.New("malformed multipart body")

func newFormReader(r io.Reader, boundary string, bufSize int) *formReader {
	return &formReader{
		br:    bufio.NewReaderSize(r, bufSize),
		dashB: []byte("--" + boundary),
		delim: []byte("\r\n--" + boundary),
	}
}

// formPart is one part: its form field name, file name and body.
type formPart struct {
	Name, FileName string
	body           *partBody
}

func (p *formPart) Read(b []byte) (int, error) { return p.body.Read(b) }

// next skips the rest of the current part, if any, and returns the next
// one, or io.EOF after the closing boundary.
func (f *formReader) next(cur *formPart) (*formPart, error) {
	if f.finished {
		return nil, io.EOF
	}
	if !f.started {
		// The preamble, if any, ends with the first boundary line, which
		// skipPreamble consumes whole.
		f.started = true
		if err := f.skipPreamble(); err != nil {
			return nil, err
		}
	} else {
		if cur != nil {
			if _, err := io.Copy(io.Discard, cur.body); err != nil {
				return nil, err
			}
		}
		// Consume the delimiter left in the stream by the part body; then
		// "--" ends the body and a line end starts the next part.
		if _, err := f.br.Discard(f.pending); err != nil || f.pending == 0 {
			return nil, errMalformedForm
		}
		tail, err := f.br.Peek(2)
		if err == nil && bytes.Equal(tail, []byte("--")) {
			f.finished = true
			return nil, io.EOF
		}
		if err := f.skipLineEnd(); err != nil {
			return nil, err
		}
	}
	hdr, err := f.readHeader()
	if err != nil {
		return nil, err
	}
	p := &formPart{body: &partBody{f: f}}
	if cd := hdr.Get("Content-Disposition"); cd != "" {
		if d, params, err := mime.ParseMediaType(cd); err == nil && d == "form-data" {
			p.Name, p.FileName = params["name"], params["filename"]
		}
	}
	return p, nil
}

func (f *formReader) skipPreamble() error {
	for {
		line, err := f.br.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) && !errors.Is(err, io.EOF) {
			return errMalformedForm
		}
		if bytes.HasPrefix(line, f.dashB) {
			rest := line[len(f.dashB):]
			if bytes.HasPrefix(rest, []byte("--")) {
				f.finished = true
				return io.EOF
			}
			if len(bytes.Trim(rest, " \t\r\n")) == 0 && err == nil {
				return nil
			}
		}
		if errors.Is(err, io.EOF) {
			return errMalformedForm
		}
	}
}

func (f *formReader) skipLineEnd() error {
	// Transport padding (spaces, tabs) may precede the line end.
	for {
		c, err := f.br.ReadByte()
		if err != nil {
			return errMalformedForm
		}
		switch c {
		case ' ', '\t', '\r':
		case '\n':
			return nil
		default:
			return errMalformedForm
		}
	}
}

// readHeader reads the header block of a part, bounded in size.
func (f *formReader) readHeader() (textproto.MIMEHeader, error) {
	var block []byte
	for {
		line, err := f.br.ReadSlice('\n')
		if err != nil {
			return nil, errMalformedForm
		}
		block = append(block, line...)
		if len(block) > maxPartHeaderBytes {
			return nil, fmt.Errorf("%w: part headers over %d bytes", errMalformedForm, maxPartHeaderBytes)
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			break
		}
	}
	hdr, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(block))).ReadMIMEHeader()
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %v", errMalformedForm, err)
	}
	return hdr, nil
}

// partBody reads one part's body up to (not including) the next
// delimiter, which it leaves in the stream.
type partBody struct {
	f       *formReader
	done    bool
	started bool
}

func (p *partBody) Read(b []byte) (int, error) {
	if p.done || len(b) == 0 {
		if p.done {
			return 0, io.EOF
		}
		return 0, nil
	}
	delim := p.f.delim
	if !p.started {
		p.started = true
		// An empty body: the header block's blank line doubles as the
		// CRLF of the delimiter, so "--boundary" follows at once.
		if head, _ := p.f.br.Peek(len(p.f.dashB)); bytes.Equal(head, p.f.dashB) {
			p.done = true
			p.f.pending = len(p.f.dashB)
			return 0, io.EOF
		}
	}
	want := min(len(b)+len(delim), p.f.br.Size())
	peek, err := p.f.br.Peek(want)
	if i := bytes.Index(peek, delim); i >= 0 {
		n := copy(b, peek[:i])
		p.f.br.Discard(n)
		if n == i {
			p.done = true
			p.f.pending = len(delim)
			if n == 0 {
				return 0, io.EOF
			}
		}
		return n, nil
	}
	// Everything but a tail that could start the delimiter is body.
	safe := len(peek) - (len(delim) - 1)
	if safe <= 0 {
		// Either the body ended without its boundary, or the delimiter
		// does not fit the buffer: never return (0, nil) forever.
		return 0, errMalformedForm
	}
	n := copy(b, peek[:safe])
	p.f.br.Discard(n)
	if n == 0 && err != nil {
		return 0, errMalformedForm
	}
	return n, nil
}
