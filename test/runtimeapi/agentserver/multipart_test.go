package main

import (
	"io"
	"mime/multipart"
)

// newMultipart writes one file part and returns the Content-Type.
func newMultipart(w io.Writer, field, name, content string) string {
	mw := multipart.NewWriter(w)
	fw, _ := mw.CreateFormFile(field, name)
	io.WriteString(fw, content)
	mw.Close()
	return mw.FormDataContentType()
}
