package fileops

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestDetectEncoding(t *testing.T) {
	koi8, err := encodeString("Привет, мир! Это тестовая строка", encKOI8R)
	mustDo(t, err)
	tests := []struct {
		name      string
		data      string
		truncated bool
		want      textEncoding
	}{
		{"empty", "", false, encUTF8},
		{"ascii", "hello\n", false, encUTF8},
		{"utf-8", "héllo 中文\n", false, encUTF8},
		{"utf-8 BOM", "\xef\xbb\xbfx", false, encUTF8SIG},
		{"utf-16 LE BOM", "\xff\xfex\x00", false, encUTF16LE},
		{"utf-16 BE BOM", "\xfe\xff\x00x", false, encUTF16BE},
		{"utf-32 LE BOM", "\xff\xfe\x00\x00x\x00\x00\x00", false, encUTF32LE},
		{"utf-32 BE BOM", "\x00\x00\xfe\xff\x00\x00\x00x", false, encUTF32BE},
		{"sequence cut by the sample limit", "ab\xe2\x82", true, encUTF8},
		{"sequence cut at end of file", "ab\xe2\x82", false, encCP1252},
		{"latin-1", "caf\xe9 cr\xe8me br\xfbl\xe9e", false, encCP1252},
		{"cp1251", "\xcf\xf0\xe8\xe2\xe5\xf2, \xec\xe8\xf0! \xdd\xf2\xee \xf2\xe5\xf1\xf2\xee\xe2\xe0\xff", false, encCP1251},
		{"koi8-r", string(koi8), false, encKOI8R},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := detectEncodingBytes([]byte(tc.data), tc.truncated); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			// Feeding byte by byte must give the same answer.
			var s encodingSniffer
			for i := range len(tc.data) {
				s.Write([]byte{tc.data[i]})
			}
			if got := s.result(tc.truncated); got != tc.want {
				t.Errorf("byte-wise: got %v, want %v", got, tc.want)
			}
		})
	}
}

func detectEncodingBytes(b []byte, truncated bool) textEncoding {
	var s encodingSniffer
	s.Write(b)
	return s.result(truncated)
}

func encodeString(s string, enc textEncoding) ([]byte, error) {
	var b bytes.Buffer
	err := encodeText(&b, s, enc)
	return b.Bytes(), err
}

func decodeAll(data []byte, enc textEncoding) (string, error) {
	d := newTextDecoder(bytes.NewReader(data), enc)
	var out strings.Builder
	for {
		chunk, err := d.next()
		if errors.Is(err, io.EOF) {
			return out.String(), nil
		}
		if err != nil {
			return "", err
		}
		out.Write(chunk)
	}
}

// The messages are CPython's for the same bytes.
func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		data string
		enc  textEncoding
		want string
	}{
		{"ab\xff", encUTF8, "'utf-8' codec can't decode byte 0xff in position 2: invalid start byte"},
		{"\xe2\x82A", encUTF8, "'utf-8' codec can't decode bytes in position 0-1: invalid continuation byte"},
		{"ab\xe2\x82", encUTF8, "'utf-8' codec can't decode bytes in position 2-3: unexpected end of data"},
		{"ab\xed\xa0\x80", encUTF8, "'utf-8' codec can't decode byte 0xed in position 2: invalid continuation byte"},
		{"\xef\xbb\xbfab\xff", encUTF8SIG, "'utf-8' codec can't decode byte 0xff in position 2: invalid start byte"},
		{"\xff\xfe\x00\xd8", encUTF16LE, "'utf-16-le' codec can't decode bytes in position 2-3: unexpected end of data"},
		{"\xff\xfe\x00\xdcA\x00", encUTF16LE, "'utf-16-le' codec can't decode bytes in position 2-3: illegal encoding"},
		{"\xff\xfeA", encUTF16LE, "'utf-16-le' codec can't decode byte 0x41 in position 2: truncated data"},
		{"\xfe\xff\x00A\xd8\x00\x00B", encUTF16BE, "'utf-16-be' codec can't decode bytes in position 4-5: illegal UTF-16 surrogate"},
		{"\xff\xfe\x00\x00\x00\x00\x11\x00", encUTF32LE, "'utf-32-le' codec can't decode bytes in position 4-7: code point not in range(0x110000)"},
		{"\xff\xfe\x00\x00\x00\xd8\x00\x00", encUTF32LE, "'utf-32-le' codec can't decode bytes in position 4-7: code point in surrogate code point range(0xd800, 0xe000)"},
		{"\xff\xfe\x00\x00A\x00", encUTF32LE, "'utf-32-le' codec can't decode bytes in position 4-5: truncated data"},
	}
	for _, tc := range tests {
		_, err := decodeAll([]byte(tc.data), tc.enc)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q: got %v, want %q", tc.data, err, tc.want)
		}
	}
}

func TestDecodeAcrossChunks(t *testing.T) {
	// A CRLF and a multi-byte character each split by the read chunk.
	data := strings.Repeat("x", decodeChunk-1) + "\r\n" + strings.Repeat("y", decodeChunk-2) + "é\r"
	got, err := decodeAll([]byte(data), encUTF8)
	mustDo(t, err)
	want := strings.Repeat("x", decodeChunk-1) + "\n" + strings.Repeat("y", decodeChunk-2) + "é\n"
	if got != want {
		t.Errorf("decoded text differs (len %d vs %d)", len(got), len(want))
	}
	lr := newLineReader(strings.NewReader(data), encUTF8)
	var lines []int
	for {
		line, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		mustDo(t, err)
		lines = append(lines, len(line))
	}
	// "x"*(chunk-1) + "\n", then "y"*(chunk-2) + "é" (two bytes) + "\n".
	if len(lines) != 2 || lines[0] != decodeChunk || lines[1] != decodeChunk+1 {
		t.Errorf("line lengths %v", lines)
	}
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		text string
		enc  textEncoding
		want string
	}{
		{"ab中", encCP1252, `'charmap' codec can't encode character '\u4e2d' in position 2: character maps to <undefined>`},
		{"a中中b", encCP1252, "'charmap' codec can't encode characters in position 1-2: character maps to <undefined>"},
		{"a\U0001F600", encKOI8R, `'charmap' codec can't encode character '\U0001f600' in position 1: character maps to <undefined>`},
		{"a\u00e9", encCP1251, `'charmap' codec can't encode character '\xe9' in position 1: character maps to <undefined>`},
	}
	for _, tc := range tests {
		var b bytes.Buffer
		err := encodeText(&b, tc.text, tc.enc)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q: got %v, want %q", tc.text, err, tc.want)
		}
		if b.Len() != 0 {
			t.Errorf("%q: %d bytes written before the error", tc.text, b.Len())
		}
	}
}

func TestSingleByteRoundTrip(t *testing.T) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	for _, enc := range []textEncoding{encCP1252, encCP1251, encKOI8R} {
		// \r is translated on reading, so leave it out.
		data := bytes.ReplaceAll(all, []byte{'\r'}, nil)
		text, err := decodeAll(data, enc)
		mustDo(t, err)
		back, err := encodeString(text, enc)
		mustDo(t, err)
		if !bytes.Equal(back, data) {
			t.Errorf("encoding %d does not round-trip", enc)
		}
	}
	if text, _ := decodeAll([]byte("\xcf\xf0\xe8\xe2\xe5\xf2"), encCP1251); text != "Привет" {
		t.Errorf("cp1251: %q", text)
	}
	if text, _ := decodeAll([]byte("\x80\x9f"), encCP1252); text != "€Ÿ" {
		t.Errorf("cp1252: %q", text)
	}
}

func TestUnicodeRoundTrip(t *testing.T) {
	const text = "a\né中\U0001F600"
	for _, enc := range []textEncoding{encUTF8, encUTF8SIG, encUTF16LE, encUTF16BE, encUTF32LE, encUTF32BE} {
		data, err := encodeString(text, enc)
		mustDo(t, err)
		if !bytes.HasPrefix(data, enc.bom()) {
			t.Errorf("encoding %d: no BOM", enc)
		}
		if got := detectEncodingBytes(data, false); got != enc && !(enc == encUTF8 && got == encUTF8) {
			t.Errorf("encoding %d detected as %d", enc, got)
		}
		back, err := decodeAll(data, enc)
		mustDo(t, err)
		if back != text {
			t.Errorf("encoding %d: %q", enc, back)
		}
	}
}
