package session

import "fmt"

// Kind classifies a session failure. The server maps each kind to the
// Python exception class SWE-ReX's client re-raises (SWE-agent catches
// them by class), so the kinds follow SWE-ReX's exceptions one to one.
type Kind int

const (
	KindTimeout        Kind = iota + 1 // CommandTimeoutError
	KindSyntax                         // BashIncorrectSyntaxError
	KindNonZeroExit                    // NonZeroExitCodeError
	KindNoExitCode                     // NoExitCodeError
	KindExpectTimeout                  // pexpect TIMEOUT: start-up or interrupt failed
	KindEOF                            // pexpect EOF: the shell is gone
	KindNotInitialized                 // RuntimeError: the runtime was closed
	KindBadPattern                     // re.error: an expect pattern does not compile
	KindInternal                       // anything else
)

// Error is a classified session failure. Extra carries the fields SWE-ReX
// puts in extra_info (bash_stdout and bash_stderr of a syntax check).
type Error struct {
	Kind  Kind
	Msg   string
	Extra map[string]any
	Err   error
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Err }

func errorf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...)}
}
