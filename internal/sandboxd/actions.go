package sandboxd

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode"

	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/fileops"
	"github.com/sbx-dev/sbx/internal/shell"
	"github.com/sbx-dev/sbx/sandboxapi"
)

// FileOps is what the server needs for read, write and edit actions.
type FileOps interface {
	Read(ctx context.Context, r fileops.ReadRequest) fileops.ReadResult
	Write(ctx context.Context, r fileops.WriteRequest) fileops.WriteResult
	Edit(ctx context.Context, r fileops.EditRequest) fileops.EditResult
}

func (s *Server) executeAction(w http.ResponseWriter, r *http.Request) error {
	body, release, err := s.readBody(r, s.opts.MaxActionBytes)
	var re *requestError
	if errors.As(err, &re) || errors.Is(err, errdefs.ErrUnavailable) || errors.Is(err, context.Canceled) {
		return err
	}
	if err != nil {
		return validationError(fmt.Sprintf("[{'type': 'json_invalid', 'loc': ('body', 0), 'msg': 'could not read the body: %s'}]", err))
	}
	// The action's strings are the body's bytes (decoded in place): its
	// share of the budget is held until the action has run.
	defer release()
	d, err := decodeActionRequest(body)
	if err != nil {
		return err
	}
	// An action that arrives during start-up waits for the shell instead of
	// failing: a client that skipped /alive still gets its answer.
	select {
	case <-s.readyCh:
	case <-r.Context().Done():
		return r.Context().Err()
	}
	s.lastExec.Store(s.opts.Now().UnixNano())
	if d.typ == sandboxapi.ActionRun {
		return s.executeRun(w, r, d)
	}
	s.actionMu.Lock()
	defer s.actionMu.Unlock()
	if err := r.Context().Err(); err != nil {
		// The client gave up while waiting for an earlier action; running
		// its action now would surprise whoever retries it.
		return err
	}
	// A file action runs to its end even if the client goes away: a write
	// is never left half done.
	ctx := context.WithoutCancel(r.Context())
	obs, err := s.dispatch(ctx, d)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, obs)
	return nil
}

// executeRun is a run action. Its session's shell serialises it; only the
// default session also takes the one-action lock, as OpenHands' server
// does. A signal key (C-c) is delivered before any lock is waited for, so
// an interrupt never queues behind the command it is meant to stop.
func (s *Server) executeRun(w http.ResponseWriter, r *http.Request, d *decodedAction) error {
	var a sandboxapi.CmdRunArgs
	if err := bindArgs(d, &a); err != nil {
		return err
	}
	if d.timeout != nil && *d.timeout < 0 {
		// OpenHands would time the command out at its first poll and show
		// its output in the next observation; sbx refuses instead.
		writeJSON(w, http.StatusOK, errorObservation(fmt.Sprintf("ERROR: the timeout of a command must not be negative (got %s); use 0 or leave it out for no hard timeout.", pyRepr(*d.timeout))))
		return nil
	}
	if a.IsStatic {
		s.actionMu.Lock()
		defer s.actionMu.Unlock()
		obs, err := s.runStatic(r, d, a)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, obs)
		return nil
	}
	ss, err := s.reg.get(a.Session)
	if err != nil {
		writeJSON(w, http.StatusOK, errorObservation(err.Error()))
		return nil
	}
	if a.IsInput {
		ss.sh.Preempt(a.Command)
	}
	if ss.name == DefaultSession {
		s.actionMu.Lock()
		defer s.actionMu.Unlock()
		if err := r.Context().Err(); err != nil {
			return err
		}
	}
	var timeout float64
	if d.timeout != nil {
		timeout = *d.timeout
	}
	writeJSON(w, http.StatusOK, s.runInSession(r, ss, a, timeout, nil))
	return nil
}

func (s *Server) dispatch(ctx context.Context, d *decodedAction) (sandboxapi.Observation, error) {
	switch d.typ {
	case sandboxapi.ActionRead:
		return s.read(ctx, d)
	case sandboxapi.ActionWrite:
		return s.write(ctx, d)
	case sandboxapi.ActionEdit:
		return s.edit(ctx, d)
	case sandboxapi.ActionBrowse, sandboxapi.ActionBrowseInteractive:
		return errorObservation("Browser functionality is not supported or disabled."), nil
	case sandboxapi.ActionRunIPython:
		if !slices.Contains(s.opts.Plugins, "jupyter") || s.opts.IPython == nil {
			return sandboxapi.Observation{}, internalError("JupyterRequirement not found. Unable to run IPython action.")
		}
		return s.runIPython(ctx, d)
	}
	return sandboxapi.Observation{}, internalError(fmt.Sprintf("'ActionExecutor' object has no attribute '%s'", d.typ))
}

func boolPtr(b bool) *bool { return &b }

// runObservation turns a shell's answer into the run observation.
func runObservation(res shell.Result, err error, a sandboxapi.CmdRunArgs) sandboxapi.Observation {
	if err != nil {
		// As OpenHands' run(): any failure is an error observation.
		return errorObservation(err.Error())
	}
	if res.Error != "" {
		return errorObservation(res.Error)
	}
	md := sandboxapi.CmdOutputMetadata{
		ExitCode: res.Metadata.ExitCode, PID: res.Metadata.PID,
		Username: res.Metadata.Username, Hostname: res.Metadata.Hostname,
		WorkingDir: res.Metadata.WorkingDir, PyInterpreterPath: res.Metadata.PyInterpreterPath,
		Prefix: res.Metadata.Prefix, Suffix: res.Metadata.Suffix,
	}
	ex := sandboxapi.CmdOutputExtras{Command: res.Command, Metadata: md, Hidden: res.Hidden || a.Hidden}
	msg := fmt.Sprintf("Command `%s` executed with exit code %d.", res.Command, md.ExitCode)
	return observation(sandboxapi.ObservationRun, msg, res.Content, ex, boolPtr(md.ExitCode == 0))
}

// runIPython runs a cell in the kernel, which follows the shell's working
// directory, and adds the Jupyter footer of spec §4.4.
func (s *Server) runIPython(ctx context.Context, d *decodedAction) (sandboxapi.Observation, error) {
	a := sandboxapi.IPythonArgs{IncludeExtra: true}
	if err := bindArgs(d, &a); err != nil {
		return sandboxapi.Observation{}, err
	}
	var timeout float64
	if d.timeout != nil {
		timeout = *d.timeout
	}
	cwd := s.shell.Cwd()
	res, err := s.opts.IPython.Run(ctx, a.Code, cwd, timeout)
	if err != nil {
		return sandboxapi.Observation{}, internalError(err.Error())
	}
	content := strings.TrimRightFunc(res.Text, unicode.IsSpace)
	if a.IncludeExtra {
		content += "\n[Jupyter current working directory: " + cwd + "]"
		content += "\n[Jupyter Python interpreter: " + res.Interpreter + "]"
	}
	ex := sandboxapi.IPythonExtras{Code: a.Code, ImageURLs: res.Images}
	if len(ex.ImageURLs) == 0 {
		ex.ImageURLs = nil
	}
	return observation(sandboxapi.ObservationIPython, "Code executed in IPython cell.", content, ex, boolPtr(true)), nil
}

// runStatic runs an is_static command in a throw-away shell in its cwd.
func (s *Server) runStatic(r *http.Request, d *decodedAction, a sandboxapi.CmdRunArgs) (sandboxapi.Observation, error) {
	if s.factory == nil {
		return errorObservation("static shells are not available"), nil
	}
	dir := s.opts.WorkDir
	if a.Cwd != nil && *a.Cwd != "" {
		dir = *a.Cwd
	}
	ctx := r.Context()
	sh, err := s.factory(ctx, ShellOptions{Dir: dir})
	if err != nil {
		return errorObservation(err.Error()), nil
	}
	if !s.reg.addStatic(sh) {
		sh.Close()
		return errorObservation("sandboxd is shutting down"), nil
	}
	defer func() {
		s.reg.dropStatic(sh)
		sh.Close()
	}()
	req := shell.Request{Command: a.Command, IsInput: a.IsInput, Hidden: a.Hidden, Blocking: a.Blocking}
	if d.timeout != nil {
		req.Timeout = *d.timeout
	}
	res, err := sh.Run(ctx, req)
	return runObservation(res, err, a), nil
}

func (s *Server) read(ctx context.Context, d *decodedAction) (sandboxapi.Observation, error) {
	a := sandboxapi.FileReadArgs{End: -1, ImplSource: "default"}
	if err := bindArgs(d, &a); err != nil {
		return sandboxapi.Observation{}, err
	}
	res := s.opts.Files.Read(ctx, fileops.ReadRequest{
		Path: a.Path, Start: a.Start, End: a.End, ImplSource: a.ImplSource,
		ViewRange: d.args["view_range"], Cwd: s.shell.Cwd(),
	})
	if res.Err != nil {
		return sandboxapi.Observation{}, internalError(res.Err.Error())
	}
	if res.ErrorText != "" {
		return errorObservation(res.ErrorText), nil
	}
	ex := sandboxapi.FileReadExtras{Path: res.Path, ImplSource: res.ImplSource}
	return observation(sandboxapi.ObservationRead, "I read the file "+res.Path+".", res.Content, ex, nil), nil
}

func (s *Server) write(ctx context.Context, d *decodedAction) (sandboxapi.Observation, error) {
	a := sandboxapi.FileWriteArgs{End: -1}
	if err := bindArgs(d, &a); err != nil {
		return sandboxapi.Observation{}, err
	}
	res := s.opts.Files.Write(ctx, fileops.WriteRequest{Path: a.Path, Content: a.Content, Start: a.Start, End: a.End, Cwd: s.shell.Cwd()})
	if res.Err != nil {
		return sandboxapi.Observation{}, fileOpError(res.Err)
	}
	if res.ErrorText != "" {
		return errorObservation(res.ErrorText), nil
	}
	ex := sandboxapi.FileWriteExtras{Path: res.Path}
	return observation(sandboxapi.ObservationWrite, "I wrote to the file "+res.Path+".", "", ex, nil), nil
}

func (s *Server) edit(ctx context.Context, d *decodedAction) (sandboxapi.Observation, error) {
	a := sandboxapi.FileEditArgs{Start: 1, End: -1, ImplSource: "oh_aci"}
	// insert_line and view_range arrive in shapes JSON typing cannot hold
	// (a string, a float); the editor validates them itself.
	args := map[string]any{}
	for k, v := range d.args {
		if k != "insert_line" && k != "view_range" {
			args[k] = v
		}
	}
	dd := *d
	dd.args = args
	if err := bindArgs(&dd, &a); err != nil {
		return sandboxapi.Observation{}, err
	}
	if a.ImplSource != "oh_aci" {
		return sandboxapi.Observation{}, internalError(fmt.Sprintf("edits with impl_source=%q are applied by the client (OpenHands' LLM-based editor), not by the runtime", a.ImplSource))
	}
	res := s.opts.Files.Edit(ctx, fileops.EditRequest{
		Command: a.Command, Path: a.Path, FileText: a.FileText, OldStr: a.OldStr, NewStr: a.NewStr,
		InsertLine: d.args["insert_line"],
	})
	if res.Err != nil {
		return sandboxapi.Observation{}, fileOpError(res.Err)
	}
	ex := sandboxapi.FileEditExtras{
		Path: a.Path, PrevExist: res.PrevExist, OldContent: a.OldStr, NewContent: a.NewStr,
		ImplSource: "oh_aci", Diff: res.Diff,
	}
	return observation(sandboxapi.ObservationEdit, "I edited the file "+a.Path+".", res.Content, ex, nil), nil
}

// trimmedLower is used when parsing FastAPI-style booleans.
func trimmedLower(s string) string { return strings.ToLower(strings.TrimSpace(s)) }
