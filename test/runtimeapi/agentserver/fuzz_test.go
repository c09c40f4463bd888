package main

import (
	"bytes"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
)

// FuzzConversations sends arbitrary bodies and ids to the conversation
// routes and arbitrary counts to the stream: the stand-in must answer
// every one with a status, never panic, and reject what it cannot parse.
func FuzzConversations(f *testing.F) {
	f.Add([]byte(`{"conversation_id":"0123456789abcdef0123456789abcdef"}`), "0123-4567", "2")
	f.Add([]byte(`{"conversation_id":7}`), "%zz", "-1")
	f.Add([]byte(``), "", "x")
	f.Fuzz(func(t *testing.T, body []byte, id, count string) {
		h := newServer(t.Context(), []string{"k"}, slog.New(slog.DiscardHandler)).routes()
		send := func(method, target string, b []byte) int {
			req := httptest.NewRequest(method, "http://x/", bytes.NewReader(b))
			req.URL.Path, req.URL.RawQuery = target, ""
			if path, q, ok := cut(target); ok {
				req.URL.Path, req.URL.RawQuery = path, q
			}
			req.Header.Set("X-Session-API-Key", "k")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			return rec.Code
		}
		if c := send("POST", "/api/conversations", body); c != 200 && c != 422 {
			t.Fatalf("create answered %d", c)
		}
		esc := url.PathEscape(id)
		if c := send("GET", "/api/conversations/"+esc, nil); c != 200 && c != 404 && c != 400 && c != 301 {
			t.Fatalf("get %q answered %d", id, c)
		}
		if n, err := strconv.Atoi(count); count == "" || err == nil && n > 2 {
			return // no count is an endless stream; long ones are not what this looks for
		}
		if c := send("GET", "/api/stream?count="+url.QueryEscape(count), nil); c != 200 && c != 422 {
			t.Fatalf("stream count %q answered %d", count, c)
		}
	})
}

func cut(target string) (string, string, bool) {
	for i := 0; i < len(target); i++ {
		if target[i] == '?' {
			return target[:i], target[i+1:], true
		}
	}
	return target, "", false
}
