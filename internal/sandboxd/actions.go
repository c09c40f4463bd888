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
	s.actionMu.Lock()
	defer s.actionMu.Unlock()
	if err := r.Context().Err(); err != nil {
		// The client gave up while waiting for an earlier action; running
		// its action now would surprise whoever retries it.
		return err
	}
	// The action runs to its own timeouts even if the client goes away; the
	// shell keeps its state either way.
	ctx := context.WithoutCancel(r.Context())
	obs, err := s.dispatch(ctx, d)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, obs)
	return nil
}

func (s *Server) dispatch(ctx context.Context, d *decodedAction) (sandboxapi.Observation, error) {
	switch d.typ {
	case sandboxapi.ActionRun:
		return s.run(ctx, d)
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

func (s *Server) run(ctx context.Context, d *decodedAction) (sandboxapi.Observation, error) {
	var a sandboxapi.CmdRunArgs
	if err := bindArgs(d, &a); err != nil {
		return sandboxapi.Observation{}, err
	}
	// blocking is a field of the action whether or not a timeout came with
	// it: blocking without a timeout waits for the command to finish.
	req := shell.Request{Command: a.Command, IsInput: a.IsInput, Hidden: a.Hidden, Blocking: a.Blocking}
	if d.timeout != nil {
		req.Timeout = *d.timeout
	}
	var res shell.Result
	var err error
	if a.IsStatic {
		dir := s.opts.WorkDir
		if a.Cwd != nil && *a.Cwd != "" {
			dir = *a.Cwd
		}
		res, err = s.runStatic(ctx, dir, req)
	} else {
		res, err = s.shell.Run(ctx, req)
	}
	if err != nil {
		// As OpenHands' run(): any failure is an error observation.
		return errorObservation(err.Error()), nil
	}
	if res.Error != "" {
		return errorObservation(res.Error), nil
	}
	md := sandboxapi.CmdOutputMetadata{
		ExitCode: res.Metadata.ExitCode, PID: res.Metadata.PID,
		Username: res.Metadata.Username, Hostname: res.Metadata.Hostname,
		WorkingDir: res.Metadata.WorkingDir, PyInterpreterPath: res.Metadata.PyInterpreterPath,
		Prefix: res.Metadata.Prefix, Suffix: res.Metadata.Suffix,
	}
	ex := sandboxapi.CmdOutputExtras{Command: res.Command, Metadata: md, Hidden: res.Hidden || a.Hidden}
	msg := fmt.Sprintf("Command `%s` executed with exit code %d.", res.Command, md.ExitCode)
	return observation(sandboxapi.ObservationRun, msg, res.Content, ex, boolPtr(md.ExitCode == 0)), nil
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

func (s *Server) runStatic(ctx context.Context, dir string, req shell.Request) (shell.Result, error) {
	if s.static == nil {
		return shell.Result{}, fmt.Errorf("static shells are not available")
	}
	sh, err := s.static(ctx, dir)
	if err != nil {
		return shell.Result{}, err
	}
	defer sh.Close()
	return sh.Run(ctx, req)
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
