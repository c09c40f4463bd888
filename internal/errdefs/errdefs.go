// Package errdefs is the error vocabulary shared by sbx's packages.
//
// Domain code wraps one of these sentinels with %w ("file %q: %w", path,
// errdefs.ErrNotFound); only the HTTP edges translate a class into a status
// code, and they do it by errors.Is, never by matching message text.
package errdefs

import "errors"

// The error classes. Each maps to exactly one HTTP status at the edge.
var (
	ErrInvalidArgument = errors.New("invalid argument")
	ErrNotFound        = errors.New("not found")
	ErrAlreadyExists   = errors.New("already exists")
	ErrConflict        = errors.New("conflict")
	ErrPermission      = errors.New("permission denied")
	ErrUnauthorized    = errors.New("unauthorized")
	ErrTooLarge        = errors.New("too large")
	// ErrInsufficientStorage is a write the disk (or the user's quota)
	// had no room for: unlike ErrTooLarge, the same request can succeed
	// once space is freed, so a client must not read it as "never".
	ErrInsufficientStorage = errors.New("insufficient storage")
	ErrUnavailable         = errors.New("unavailable")
	ErrNotImplemented      = errors.New("not implemented")
	ErrInternal            = errors.New("internal error")
)

// classError carries a class and a message chosen for the user, so that a
// wrapped error can say exactly what went wrong while still being classified.
type classError struct {
	class error
	msg   string
	cause error
}

func (e *classError) Error() string { return e.msg }

func (e *classError) Is(target error) bool { return target == e.class }

func (e *classError) Unwrap() error { return e.cause }

// New returns an error of the given class whose text is exactly msg.
func New(class error, msg string) error { return &classError{class: class, msg: msg} }

// Wrap returns an error of the given class whose text is exactly msg and
// which unwraps to cause.
func Wrap(class error, msg string, cause error) error {
	return &classError{class: class, msg: msg, cause: cause}
}

// IsInvalidArgument reports whether err is of class ErrInvalidArgument.
func IsInvalidArgument(err error) bool { return errors.Is(err, ErrInvalidArgument) }
