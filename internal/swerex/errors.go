package swerex

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"syscall"

	"github.com/sbx-dev/sbx/internal/pyrepr"
	"github.com/sbx-dev/sbx/internal/swerex/session"
)

// Exception is an error the client re-raises as a Python exception: the
// class path must name a class importable on the client whose constructor
// takes one string (spec §3).
type Exception struct {
	ClassPath string
	Message   string
	Extra     map[string]any
	Err       error
}

func (e *Exception) Error() string { return e.ClassPath + ": " + e.Message }
func (e *Exception) Unwrap() error { return e.Err }

func exc(class, msg string) *Exception { return &Exception{ClassPath: class, Message: msg} }

// sessionClasses is the one table from session failure kinds to the
// classes SWE-ReX's Python server raises for them.
var sessionClasses = map[session.Kind]string{
	session.KindTimeout:        "swerex.exceptions.CommandTimeoutError",
	session.KindSyntax:         "swerex.exceptions.BashIncorrectSyntaxError",
	session.KindNonZeroExit:    "swerex.exceptions.NonZeroExitCodeError",
	session.KindNoExitCode:     "swerex.exceptions.NoExitCodeError",
	session.KindExpectTimeout:  "pexpect.exceptions.TIMEOUT",
	session.KindEOF:            "pexpect.exceptions.EOF",
	session.KindNotInitialized: "builtins.RuntimeError",
	session.KindBadPattern:     "re.error",
	session.KindInternal:       "builtins.RuntimeError",
}

// errnoClasses maps an errno to the OSError subclass Python raises for it.
var errnoClasses = map[syscall.Errno]string{
	syscall.ENOENT:  "builtins.FileNotFoundError",
	syscall.EISDIR:  "builtins.IsADirectoryError",
	syscall.ENOTDIR: "builtins.NotADirectoryError",
	syscall.EACCES:  "builtins.PermissionError",
	syscall.EPERM:   "builtins.PermissionError",
	syscall.EEXIST:  "builtins.FileExistsError",
}

// asException turns any error of a handler into what goes on the wire.
func asException(err error) *Exception {
	var e *Exception
	if errors.As(err, &e) {
		return e
	}
	var se *session.Error
	if errors.As(err, &se) {
		return &Exception{ClassPath: sessionClasses[se.Kind], Message: se.Msg, Extra: se.Extra, Err: err}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &Exception{ClassPath: "builtins.TimeoutError", Message: err.Error(), Err: err}
	}
	return &Exception{ClassPath: "builtins.RuntimeError", Message: err.Error(), Err: err}
}

// osError is Python's OSError for a failed file operation on name:
// "[Errno 2] No such file or directory: 'name'".
func osError(err error, name string) *Exception {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		if errors.Is(err, fs.ErrNotExist) {
			errno = syscall.ENOENT
		} else {
			return &Exception{ClassPath: "builtins.OSError", Message: err.Error(), Err: err}
		}
	}
	class, ok := errnoClasses[errno]
	if !ok {
		class = "builtins.OSError"
	}
	text := errno.Error()
	if text != "" {
		text = strings.ToUpper(text[:1]) + text[1:]
	}
	return &Exception{ClassPath: class, Message: "[Errno " + itoa(int(errno)) + "] " + text + ": " + pyrepr.Str(name), Err: err}
}
