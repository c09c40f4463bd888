package errdefs

import (
	"errors"
	"net/http"
)

// classStatus pairs a class with the one HTTP status it travels as between
// sbx's host-side servers and clients (sandbox-api and its clients).
// sandboxd does not use this table for its answers: it speaks OpenHands'
// protocol, whose statuses and bodies it must reproduce exactly.
type classStatus struct {
	class  error
	status int
}

// classTable lists every class, most specific first, because an error may
// carry more than one (a class wrapping a cause of another) and the status
// should name the narrower one. Every status is distinct, so a client can
// always recover the class a server sent. ErrAlreadyExists keeps 409, the
// status clients check after a duplicate create; ErrConflict (the resource
// is in a state that forbids the operation: not running, paused, being
// removed) takes 412 so that the two stay apart on the wire.
//
// A function returning an array, not a package-level variable: the table is
// copied, so no caller can change it for the others.
func classTable() [11]classStatus {
	return [...]classStatus{
		{ErrTooLarge, http.StatusRequestEntityTooLarge},
		{ErrInsufficientStorage, http.StatusInsufficientStorage},
		{ErrAlreadyExists, http.StatusConflict},
		{ErrConflict, http.StatusPreconditionFailed},
		{ErrNotFound, http.StatusNotFound},
		{ErrUnauthorized, http.StatusUnauthorized},
		{ErrPermission, http.StatusForbidden},
		{ErrInvalidArgument, http.StatusBadRequest},
		{ErrNotImplemented, http.StatusNotImplemented},
		{ErrUnavailable, http.StatusServiceUnavailable},
		{ErrInternal, http.StatusInternalServerError},
	}
}

// Classes returns every error class, most specific first. Packages that
// re-export the vocabulary (the SDK) test themselves against it.
func Classes() []error {
	t := classTable()
	out := make([]error, len(t))
	for i, r := range t {
		out[i] = r.class
	}
	return out
}

// HTTPStatus is the status a host-side server answers err with: that of the
// most specific class err carries, 500 for an error of no class, 200 for nil.
func HTTPStatus(err error) int {
	if err == nil {
		return http.StatusOK
	}
	for _, r := range classTable() {
		if errors.Is(err, r.class) {
			return r.status
		}
	}
	return http.StatusInternalServerError
}

// FromHTTP turns a failed answer back into an error of the class its status
// stands for, with msg (the server's text) as its message, so a client can
// test it with errors.Is as if the server's error had been returned
// in-process. A status outside the table is classed by its range: other
// 4xx as ErrInvalidArgument, 502 and 504 (a proxy could not reach the
// server) as ErrUnavailable, anything else as ErrInternal; FromHTTP is for
// answers already known to have failed, so it never returns nil.
func FromHTTP(status int, msg string) error {
	class := ErrInternal
	found := false
	for _, r := range classTable() {
		if r.status == status {
			class, found = r.class, true
			break
		}
	}
	if !found {
		switch {
		case status == http.StatusBadGateway || status == http.StatusGatewayTimeout:
			class = ErrUnavailable
		case status >= 400 && status < 500:
			class = ErrInvalidArgument
		}
	}
	if msg == "" {
		msg = http.StatusText(status)
		if msg == "" {
			msg = class.Error()
		}
	}
	return New(class, msg)
}
