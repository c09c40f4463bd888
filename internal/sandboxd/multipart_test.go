package sandboxd

import (
	"bytes"
	"io"
	"mime/multipart"
	"strings"
	"testing"
)

type field struct{ name, file, body string }

func buildForm(t testing.TB, fields []field) ([]byte, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range fields {
		var w io.Writer
		var err error
		if f.file != "" {
			w, err = mw.CreateFormFile(f.name, f.file)
		} else {
			w, err = mw.CreateFormField(f.name)
		}
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, f.body)
	}
	mw.Close()
	return buf.Bytes(), mw.Boundary()
}

// readAll reads every part with formReader, through small buffers to
// exercise the delimiter split across reads.
func readAll(body []byte, boundary string, bufSize, chunk int) ([]field, error) {
	fr := newFormReader(bytes.NewReader(body), boundary, bufSize)
	var out []field
	var p *formPart
	for {
		var err error
		p, err = fr.next(p)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		var b strings.Builder
		tmp := make([]byte, chunk)
		for {
			n, err := p.Read(tmp)
			b.Write(tmp[:n])
			if err == io.EOF {
				break
			}
			if err != nil {
				return out, err
			}
		}
		out = append(out, field{p.Name, p.FileName, b.String()})
	}
}

func TestFormReader(t *testing.T) {
	fields := []field{
		{"meta", "", "hello"},
		{"file", "a.txt", strings.Repeat("0123456789\r\n--not-a-boundary\r\n", 5000)},
		{"empty", "e.bin", ""},
		{"file2", "b.bin", "\r\n--\r\n"},
	}
	body, boundary := buildForm(t, fields)
	for _, bufSize := range []int{64, 4096, 1 << 20} {
		for _, chunk := range []int{1, 7, 4096, 1 << 18} {
			got, err := readAll(body, boundary, bufSize, chunk)
			if err != nil {
				t.Fatalf("buf %d chunk %d: %v", bufSize, chunk, err)
			}
			if len(got) != len(fields) {
				t.Fatalf("buf %d chunk %d: %d parts", bufSize, chunk, len(got))
			}
			for i := range fields {
				if got[i] != fields[i] {
					t.Fatalf("buf %d chunk %d part %d: %.60q", bufSize, chunk, i, got[i])
				}
			}
		}
	}
}

func TestFormReaderMalformed(t *testing.T) {
	body, boundary := buildForm(t, []field{{"file", "a.txt", "abc"}})
	for _, cut := range []int{10, len(body) / 2, len(body) - 10} {
		if _, err := readAll(body[:cut], boundary, 4096, 4096); err == nil {
			t.Errorf("truncated at %d: no error", cut)
		}
	}
}

// FuzzFormReader checks formReader against mime/multipart: on any body
// the standard library reads completely, ours yields the same parts.
func FuzzFormReader(f *testing.F) {
	body, boundary := buildForm(f, []field{{"file", "a.txt", "x\r\n--y"}, {"n", "", "v"}})
	f.Add(body, boundary)
	f.Add([]byte("--b\r\n\r\n--b--"), "b")
	f.Add([]byte("preamble\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\ndata\r\n--b--\r\n"), "b")
	f.Fuzz(func(t *testing.T, body []byte, boundary string) {
		if boundary == "" || len(boundary) > 70 || strings.ContainsAny(boundary, "\r\n") {
			return
		}
		got, err := readAll(body, boundary, 64, 13)
		mr := multipart.NewReader(bytes.NewReader(body), boundary)
		var want []field
		for {
			p, perr := mr.NextPart()
			if perr == io.EOF {
				break
			}
			if perr != nil {
				return // the standard library rejects it; ours may differ
			}
			b, rerr := io.ReadAll(p)
			if rerr != nil {
				return
			}
			want = append(want, field{p.FormName(), p.FileName(), string(b)})
		}
		if err != nil {
			// A header block cut off by the end of the body is EOF to the
			// standard library and an error to us; both refuse the upload.
			if len(want) > 0 {
				t.Fatalf("stdlib read %d parts, formReader failed: %v", len(want), err)
			}
			return
		}
		if len(got) != len(want) {
			t.Fatalf("parts: got %d, want %d", len(got), len(want))
		}
		for i := range want {
			if got[i].body != want[i].body || got[i].name != want[i].name {
				t.Fatalf("part %d: got %q, want %q", i, got[i], want[i])
			}
		}
	})
}
