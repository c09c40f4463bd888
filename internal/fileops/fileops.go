package fileops

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"

	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/staging"
)

// DefaultMaxReadBytes bounds the files the default-mode read action loads
// (text and data URLs) when Options.MaxReadBytes is zero.
const DefaultMaxReadBytes = 10 << 20

// Options configures Files.
type Options struct {
	// WorkspaceRoot is the server's --working-dir. The editor suggests
	// "Maybe you meant <WorkspaceRoot>/<path>?" for relative paths, and
	// reads and writes resolve relative paths against it when the request
	// carries no Cwd. Empty disables suggestions; otherwise it must be
	// absolute.
	WorkspaceRoot string
	// UID and GID own the files the package creates (the sandbox user;
	// OpenHands passes --user-id for both). -1 leaves that id as the
	// server's. Note that the zero value means root.
	UID, GID int
	// TempDir is where the private undo-history directory is created;
	// empty means os.TempDir().
	TempDir string
	// MaxReadBytes bounds the size of a file a default-mode read loads;
	// zero means DefaultMaxReadBytes, negative means no limit.
	MaxReadBytes int64
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
	// Journal records the staging file of every write, so that the next
	// start of a killed server removes it; nil records nothing.
	Journal *staging.Journal
}

// Files implements the read, write and edit actions. Create one per
// server process with New and release it with Close. It is safe for
// concurrent use: mutations (write, and every editor command but view)
// are serialised, reads run concurrently with them and see either the old
// or the new content of a file because every write is atomic.
type Files struct {
	root     string
	uid, gid int
	maxRead  int64
	log      *slog.Logger
	chown    chownFunc // replaced in tests
	journal  *staging.Journal

	mu   sync.Mutex
	hist *history // nil once closed
}

// New creates the undo-history directory and returns a ready Files.
func New(opts Options) (*Files, error) {
	if opts.WorkspaceRoot != "" && !filepath.IsAbs(opts.WorkspaceRoot) {
		return nil, errdefs.New(errdefs.ErrInvalidArgument,
			fmt.Sprintf("workspace_root must be an absolute path, got: %s", opts.WorkspaceRoot))
	}
	if opts.UID < -1 || opts.GID < -1 {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("invalid owner %d:%d", opts.UID, opts.GID))
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	maxRead := opts.MaxReadBytes
	if maxRead == 0 {
		maxRead = DefaultMaxReadBytes
	}
	h, err := newHistory(opts.TempDir)
	if err != nil {
		return nil, err
	}
	return &Files{
		root:    opts.WorkspaceRoot,
		uid:     opts.UID,
		gid:     opts.GID,
		maxRead: maxRead,
		log:     log,
		chown:   fchown,
		journal: opts.Journal,
		hist:    h,
	}, nil
}

// Close removes the undo history. Later calls fail with ErrUnavailable.
func (f *Files) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.hist == nil {
		return nil
	}
	err := f.hist.close()
	f.hist = nil
	if err != nil {
		return fmt.Errorf("remove undo history: %w", err)
	}
	return nil
}

func (f *Files) closedErr() error {
	return errdefs.New(errdefs.ErrUnavailable, "file operations are closed")
}

// ReadRequest is a FileReadAction.
type ReadRequest struct {
	Path string
	// Start and End select lines in default mode: 0-based, End exclusive,
	// -1 meaning the end of the file. The wire defaults are 0 and -1; the
	// caller must apply them (the zero value of End is not -1).
	Start, End int
	// ImplSource is "oh_aci" for the editor's view; anything else is the
	// default mode.
	ImplSource string
	// ViewRange is the action's view_range as decoded from JSON (used by
	// oh_aci only). See EditRequest.InsertLine for the accepted forms;
	// json.RawMessage is exact.
	ViewRange any
	// Cwd is the shell's current directory, against which default mode
	// resolves a relative path. Empty means Options.WorkspaceRoot.
	Cwd string
}

// ReadResult is the observation to build. Exactly one of these holds:
// Err != nil (OpenHands would fail the request: answer HTTP 500 with
// Err's text), ErrorText != "" (an ErrorObservation with that content), or
// a FileReadObservation with Content, Path and ImplSource.
type ReadResult struct {
	ErrorText  string
	Content    string
	Path       string
	ImplSource string
	Err        error
}

// WriteRequest is a FileWriteAction. Start and End (wire defaults 0 and
// -1, to be applied by the caller) splice Content into an existing file;
// Cwd is as for ReadRequest.
type WriteRequest struct {
	Path, Content string
	Start, End    int
	Cwd           string
}

// WriteResult is the observation to build, with the same three outcomes
// as ReadResult; a FileWriteObservation has empty content and Path.
type WriteResult struct {
	ErrorText string
	Path      string
	Err       error
}

// EditRequest is a FileEditAction in oh_aci mode (the server never sees
// the LLM-based mode).
type EditRequest struct {
	Command string
	Path    string
	// FileText, OldStr and NewStr are nil when the JSON value is null.
	FileText, OldStr, NewStr *string
	// InsertLine is insert_line as decoded from JSON: nil, a bool, a
	// string, a Go integer, a float64 (integral values count as ints), a
	// json.Number, []any or map[string]any; or json.RawMessage holding
	// the raw JSON, which keeps integers and floats apart and object keys
	// in order, exactly as the Python server sees them.
	InsertLine any
}

// EditResult is the FileEditObservation to build (or Err for HTTP 500).
// As in OpenHands, Content is the editor's output or "ERROR:\n<message>",
// Path is the request's path as given, OldContent and NewContent echo the
// request's OldStr and NewStr, PrevExist is always false, and Diff is the
// whole-file unified diff of the change ("" when nothing changed); it is
// never nil.
type EditResult struct {
	Content                      string
	Path                         string
	PrevExist                    bool
	OldContent, NewContent, Diff *string
	Err                          error
}

// checkCtx reports a cancelled context before work starts.
func checkCtx(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("file operation: %w", err)
	}
	return nil
}
