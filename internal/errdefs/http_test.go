package errdefs

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
)

func TestHTTPStatusTable(t *testing.T) {
	want := map[error]int{
		ErrInvalidArgument:     http.StatusBadRequest,
		ErrNotFound:            http.StatusNotFound,
		ErrAlreadyExists:       http.StatusConflict,
		ErrConflict:            http.StatusPreconditionFailed,
		ErrPermission:          http.StatusForbidden,
		ErrUnauthorized:        http.StatusUnauthorized,
		ErrTooLarge:            http.StatusRequestEntityTooLarge,
		ErrInsufficientStorage: http.StatusInsufficientStorage,
		ErrUnavailable:         http.StatusServiceUnavailable,
		ErrNotImplemented:      http.StatusNotImplemented,
		ErrInternal:            http.StatusInternalServerError,
	}
	classes := Classes()
	if len(classes) != len(want) {
		t.Fatalf("Classes() has %d classes, this test knows %d: add the new class here", len(classes), len(want))
	}
	seen := map[int]error{}
	for _, c := range classes {
		status, ok := want[c]
		if !ok {
			t.Errorf("class %q has no expected status in this test", c)
			continue
		}
		if prev, dup := seen[status]; dup {
			t.Errorf("%q and %q share status %d: a client could not tell them apart", prev, c, status)
		}
		seen[status] = c
		wrapped := fmt.Errorf("doing something: %w", New(c, "it failed"))
		if got := HTTPStatus(wrapped); got != status {
			t.Errorf("HTTPStatus(%q) = %d, want %d", c, got, status)
		}
		// And back: the client sees the server's class and text.
		back := FromHTTP(status, "it failed")
		if !errors.Is(back, c) || back.Error() != "it failed" {
			t.Errorf("FromHTTP(%d) = %q, not of class %q", status, back, c)
		}
		if got := HTTPStatus(back); got != status {
			t.Errorf("HTTPStatus(FromHTTP(%d)) = %d", status, got)
		}
		for _, other := range classes {
			if other != c && errors.Is(back, other) {
				t.Errorf("FromHTTP(%d) is also of class %q", status, other)
			}
		}
	}
}

func TestHTTPStatusMostSpecificFirst(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, http.StatusOK},
		{errors.New("plain"), http.StatusInternalServerError},
		// An upload too large is also an invalid argument; the status names
		// the narrower class.
		{Wrap(ErrInvalidArgument, "bad", New(ErrTooLarge, "too big")), http.StatusRequestEntityTooLarge},
		{Wrap(ErrConflict, "dup", New(ErrAlreadyExists, "exists")), http.StatusConflict},
		{Wrap(ErrPermission, "no", New(ErrUnauthorized, "who")), http.StatusUnauthorized},
		{Wrap(ErrInternal, "x", New(ErrNotFound, "gone")), http.StatusNotFound},
	} {
		if got := HTTPStatus(tc.err); got != tc.want {
			t.Errorf("HTTPStatus(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

func TestFromHTTPOutsideTheTable(t *testing.T) {
	for _, tc := range []struct {
		status int
		class  error
		msg    string
	}{
		{http.StatusUnprocessableEntity, ErrInvalidArgument, "Unprocessable Entity"},
		{http.StatusTeapot, ErrInvalidArgument, "I'm a teapot"},
		{http.StatusBadGateway, ErrUnavailable, "Bad Gateway"},
		{http.StatusGatewayTimeout, ErrUnavailable, "Gateway Timeout"},
		{599, ErrInternal, "internal error"},
		{http.StatusOK, ErrInternal, "OK"},
	} {
		err := FromHTTP(tc.status, "")
		if !errors.Is(err, tc.class) || err.Error() != tc.msg {
			t.Errorf("FromHTTP(%d, \"\") = %q, want %q of class %q", tc.status, err, tc.msg, tc.class)
		}
	}
}
