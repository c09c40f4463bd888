package fileops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

// Editor limits and texts (openhands-aci 0.3.2).
const (
	maxFileSize     = 10 * 1024 * 1024
	maxResponseLen  = 16000
	snippetContext  = 4
	editorToolName  = "oh_editor"
	allowedCommands = "view, create, str_replace, insert, undo_edit"

	textClipNotice      = "<response clipped><NOTE>Due to the max output limit, only part of this file has been shown to you. You should retry this tool after you have searched inside the file with `grep -n` in order to find the line numbers of what you are looking for.</NOTE>"
	binaryClipNotice    = "<response clipped><NOTE>Due to the max output limit, only part of this file has been shown to you. Please use Python libraries to view the entire file or search for specific content within the file.</NOTE>"
	directoryClipNotice = "<response clipped><NOTE>Due to the max output limit, only part of this directory has been shown to you. You should use `ls -la` instead to view large directories incrementally.</NOTE>"
	genericClipNotice   = "<response clipped><NOTE>Due to the max output limit, only part of the full response has been shown to you.</NOTE>"
)

// supportedBinarySuffixes may be viewed (as Markdown) but not edited.
func isSupportedBinary(p string) bool {
	switch strings.ToLower(pySuffix(p)) {
	case ".docx", ".xlsx", ".pptx", ".pdf", ".mp3", ".wav", ".m4a", ".flac":
		return true
	}
	return false
}

// toolError is an editor ToolError: its message reaches the agent as
// "ERROR:\n<message>" inside a normal observation. Any other error from
// the editor is a failed request.
type toolError struct{ msg string }

func (e *toolError) Error() string { return e.msg }

func errMissing(command, param string) error {
	return &toolError{fmt.Sprintf("Parameter `%s` is required for command: %s.", param, command)}
}

func errInvalid(param, value, hint string) error {
	if hint == "" {
		return &toolError{fmt.Sprintf("Invalid `%s` parameter: %s.", param, value)}
	}
	return &toolError{fmt.Sprintf("Invalid `%s` parameter: %s. %s", param, value, hint)}
}

func errValidation(path, reason string) error {
	return &toolError{fmt.Sprintf("File validation failed for %s: %s", path, reason)}
}

// errIO words an I/O failure as the editor's read_file/write_file do;
// cancellation stays a request failure.
func errIO(err error, path, doing string) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("file operation: %w", err)
	}
	var de *decodeError
	var ee *encodeError
	var te *toolError
	msg := ""
	switch {
	case errors.As(err, &te):
		return err
	case errors.As(err, &de):
		msg = de.Error()
	case errors.As(err, &ee):
		msg = ee.Error()
	case isNoSpace(err):
		// Not a tool error folded into "ERROR:\n…" content: a full disk
		// is the sandbox's condition, not the agent's mistake, and the
		// client must see its class (507) to free space or retry.
		return errdefs.Wrap(errdefs.ErrInsufficientStorage,
			fmt.Sprintf("Ran into %s while trying to %s %s", pyOSError(err, path), doing, path), err)
	default:
		msg = pyOSError(err, path)
	}
	return &toolError{fmt.Sprintf("Ran into %s while trying to %s %s", msg, doing, path)}
}

type editorCall struct {
	command                  string
	path                     string
	fileText, oldStr, newStr *string
	insertLine, viewRange    pyVal
}

type editorOutput struct {
	content string
	// oldText and newText are the file texts before and after the command,
	// from which the observation's diff is computed; nil when unchanged.
	oldText, newText *string
}

// Edit performs the edit action (spec §4.3 and §6).
func (f *Files) Edit(ctx context.Context, r EditRequest) EditResult {
	noDiff := ""
	res := EditResult{Path: r.Path, OldContent: r.OldStr, NewContent: r.NewStr, Diff: &noDiff}
	if err := checkCtx(ctx); err != nil {
		res.Err = err
		return res
	}
	il, err := pyValueOf(r.InsertLine)
	if err != nil {
		res.Err = fmt.Errorf("insert_line: %w", err)
		return res
	}
	// OpenHands converts a string insert_line with int() before calling
	// the editor, whatever the command.
	if il.kind == pyStr {
		text, v, ok := pyParseInt(il.s)
		if !ok {
			res.Content = fmt.Sprintf("ERROR:\nInvalid insert_line value: '%s'. Expected an integer.", il.s)
			return res
		}
		il = pyVal{kind: pyInt, i: v, itext: text}
	}
	if r.Command != "view" {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.hist == nil {
			res.Err = f.closedErr()
			return res
		}
	} else if f.isClosed() {
		res.Err = f.closedErr()
		return res
	}
	out, err := f.runEditor(ctx, editorCall{
		command: r.Command, path: r.Path,
		fileText: r.FileText, oldStr: r.OldStr, newStr: r.NewStr,
		insertLine: il,
	})
	if err != nil {
		res.Err = err
		return res
	}
	res.Content = out.content
	if out.oldText != nil || out.newText != nil {
		d, err := unifiedDiff(ctx, deref(out.oldText), deref(out.newText), r.Path)
		if err != nil {
			res.Err = fmt.Errorf("diff: %w", err)
			return res
		}
		res.Diff = &d
	}
	return res
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// runEditor runs one editor command, folding tool errors into the output
// as OpenHands' _execute_file_editor does. The caller holds f.mu for every
// command but view.
func (f *Files) runEditor(ctx context.Context, c editorCall) (editorOutput, error) {
	out, err := f.editor(ctx, c)
	var te *toolError
	if errors.As(err, &te) {
		return editorOutput{content: "ERROR:\n" + te.msg}, nil
	}
	return out, err
}

func (f *Files) editor(ctx context.Context, c editorCall) (editorOutput, error) {
	p := pyPath(c.path)
	if err := f.validatePath(c.command, p); err != nil {
		return editorOutput{}, err
	}
	switch c.command {
	case "view":
		content, err := f.view(ctx, p, c.viewRange)
		return editorOutput{content: content}, err
	case "create":
		return f.create(ctx, p, c.fileText)
	case "str_replace":
		if c.oldStr == nil {
			return editorOutput{}, errMissing(c.command, "old_str")
		}
		if c.newStr != nil && *c.newStr == *c.oldStr {
			return editorOutput{}, errInvalid("new_str", *c.newStr,
				"No replacement was performed. `new_str` and `old_str` must be different.")
		}
		return f.strReplace(ctx, p, *c.oldStr, deref(c.newStr))
	case "insert":
		if c.insertLine.kind == pyNone {
			return editorOutput{}, errMissing(c.command, "insert_line")
		}
		if c.newStr == nil {
			return editorOutput{}, errMissing(c.command, "new_str")
		}
		return f.insert(ctx, p, c.insertLine, *c.newStr)
	case "undo_edit":
		return f.undo(ctx, p)
	}
	return editorOutput{}, &toolError{fmt.Sprintf("Unrecognized command %s. The allowed commands for the %s tool are: %s",
		c.command, editorToolName, allowedCommands)}
}

// validatePath is OHEditor.validate_path; p is already normalised.
func (f *Files) validatePath(command, p string) error {
	if !strings.HasPrefix(p, "/") {
		hint := "The path should be an absolute path, starting with `/`."
		if f.root != "" {
			suggested := pyJoin(f.root, p)
			if ok, _ := pyExists(suggested); ok {
				hint += " Maybe you meant " + suggested + "?"
			}
		}
		return errInvalid("path", p, hint)
	}
	exists, err := pyExists(p)
	if err != nil {
		return pyError(err, p)
	}
	if command == "create" && exists {
		return errInvalid("path", p, fmt.Sprintf("File already exists at: %s. Cannot overwrite files using command `create`.", p))
	}
	if command != "create" && !exists {
		return errInvalid("path", p, fmt.Sprintf("The path %s does not exist. Please provide a valid path.", p))
	}
	if command != "view" {
		if isDirPath(p) {
			return errInvalid("path", p, fmt.Sprintf("The path %s is a directory and only the `view` command can be used on directories.", p))
		}
		if isSupportedBinary(p) {
			return errInvalid("path", p, fmt.Sprintf("The path %s points to a binary file (%s) and only the `view` command can be used on supported binary files.", p, pySuffix(p)))
		}
	}
	return nil
}

func isDirPath(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// validateFile is OHEditor.validate_file: size, then binary content, for
// an existing file. OpenHands skips anything that is not a regular file;
// sbx refuses FIFOs, sockets and devices, which Python would block on or
// read forever.
func (f *Files) validateFile(p string) error {
	st, err := os.Stat(p)
	if err != nil || st.IsDir() {
		return nil
	}
	if !st.Mode().IsRegular() {
		return errValidation(p, "Not a regular file. Only regular files and directories can be viewed or edited by this tool.")
	}
	if st.Size() > maxFileSize {
		return errValidation(p, fmt.Sprintf("File is too large (%.1fMB). Maximum allowed size is %dMB.",
			float64(st.Size())/1024/1024, maxFileSize/1024/1024))
	}
	if isSupportedBinary(p) {
		return nil
	}
	if isBinaryPath(p) {
		return errValidation(p, "File appears to be binary and this file type cannot be read or edited by this tool.")
	}
	return nil
}

// makeOutput is OHEditor._make_output for text: clip at 16 000
// characters, then number every "\n"-separated line from start.
func makeOutput(snippet, description string, start pyNum) string {
	s, clipped := truncateRunes(snippet, maxResponseLen)
	if clipped {
		s += textClipNotice
	}
	var b strings.Builder
	b.Grow(len(s) + len(s)/8 + 128)
	b.WriteString("Here's the result of running `cat -n` on " + description + ":\n")
	line := 0
	for {
		i := strings.IndexByte(s, '\n')
		if line > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(start.add(int64(line)).width6())
		b.WriteByte('\t')
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		s = s[i+1:]
		line++
	}
	b.WriteByte('\n')
	return b.String()
}

func clip(s, notice string) string {
	if t, clipped := truncateRunes(s, maxResponseLen); clipped {
		return t + notice
	}
	return s
}

// ---- create ----

func (f *Files) create(ctx context.Context, p string, fileText *string) (editorOutput, error) {
	if fileText == nil {
		return editorOutput{}, errMissing("create", "file_text")
	}
	if err := f.writeText(ctx, p, *fileText, encUTF8); err != nil {
		return editorOutput{}, err
	}
	if err := f.hist.push(p, *fileText); err != nil {
		return editorOutput{}, err
	}
	return editorOutput{content: "File created successfully at: " + p, newText: fileText}, nil
}

// writeText writes text to p in enc, atomically. An existing file keeps
// its mode and owner; a new one gets mode 0664 and the sandbox user.
// Symbolic links are written through, as Python's open() does.
func (f *Files) writeText(ctx context.Context, p, text string, enc textEncoding) error {
	target, err := resolveFinalSymlinks(p)
	if err != nil {
		return errIO(err, p, "write to")
	}
	attrs := fileAttrs{mode: newFileMode, uid: f.uid, gid: f.gid}
	if st, err := os.Stat(target); err == nil {
		attrs = attrsOf(st)
	}
	attrErr, err := writeAtomic(ctx, f.journal, target, attrs, f.chown, func(w io.Writer) error {
		return encodeText(w, text, enc)
	})
	if err != nil {
		return errIO(err, p, "write to")
	}
	if attrErr != nil {
		f.log.Warn("editor wrote file but could not set its owner or mode", "path", p, "err", attrErr)
	}
	return nil
}

// readText validates and decodes a whole file (OHEditor.read_file).
func (f *Files) readText(ctx context.Context, p string) (string, textEncoding, error) {
	if err := f.validateFile(p); err != nil {
		return "", 0, err
	}
	if err := checkCtx(ctx); err != nil {
		return "", 0, err
	}
	enc, err := detectEncoding(p)
	if err != nil {
		return "", 0, errIO(err, p, "read")
	}
	text, err := readAllText(p, enc)
	if err != nil {
		return "", 0, errIO(err, p, "read")
	}
	return text, enc, nil
}

// ---- str_replace ----

func (f *Files) strReplace(ctx context.Context, p, oldStr, newStr string) (editorOutput, error) {
	content, enc, err := f.readText(ctx, p)
	if err != nil {
		return editorOutput{}, err
	}
	idx, lines := findOccurrences(content, oldStr)
	if len(lines) == 0 {
		// Retry without surrounding whitespace, which models often add.
		oldStr, newStr = pyStrip(oldStr), pyStrip(newStr)
		idx, lines = findOccurrences(content, oldStr)
		if len(lines) == 0 {
			return editorOutput{}, &toolError{fmt.Sprintf("No replacement was performed, old_str `%s` did not appear verbatim in %s.", oldStr, p)}
		}
	}
	if len(lines) > 1 || idx < 0 {
		return editorOutput{}, &toolError{fmt.Sprintf("No replacement was performed. Multiple occurrences of old_str `%s` in lines %s. Please ensure it is unique.", oldStr, pyListOfInts(lines...))}
	}
	newContent := content[:idx] + newStr + content[idx+len(oldStr):]
	if err := f.writeText(ctx, p, newContent, enc); err != nil {
		return editorOutput{}, err
	}
	if err := f.hist.push(p, content); err != nil {
		return editorOutput{}, err
	}
	line := strings.Count(content[:idx], "\n") + 1
	start := max(0, line-snippetContext)
	end := line + snippetContext + strings.Count(newStr, "\n")
	snippet := linesBetween(translateNewlines(newContent), intNum(int64(start+1)), intNum(int64(end)))
	out := "The file " + p + " has been edited. " +
		makeOutput(snippet, "a snippet of "+p, intNum(int64(start+1))) +
		"Review the changes and make sure they are as expected. Edit the file again if necessary."
	return editorOutput{content: out, oldText: &content, newText: &newContent}, nil
}

// findOccurrences finds the non-overlapping, left-to-right matches of old
// in content (re.finditer of the escaped string). It returns the byte index
// of the match when there is exactly one (else -1) and the sorted, distinct
// 1-based lines where matches start. An empty old matches at every
// position, so it is unique only in an empty file.
func findOccurrences(content, old string) (idx int, lines []int) {
	if old == "" {
		if content == "" {
			return 0, []int{1}
		}
		n := strings.Count(content, "\n") + 1
		lines = make([]int, n)
		for i := range lines {
			lines[i] = i + 1
		}
		return -1, lines
	}
	idx = -1
	count := 0
	line, scanned := 1, 0
	for pos := 0; ; {
		i := strings.Index(content[pos:], old)
		if i < 0 {
			break
		}
		at := pos + i
		line += strings.Count(content[scanned:at], "\n")
		scanned = at
		if len(lines) == 0 || lines[len(lines)-1] != line {
			lines = append(lines, line)
		}
		if count == 0 {
			idx = at
		}
		count++
		pos = at + len(old)
	}
	if count != 1 {
		idx = -1
	}
	return idx, lines
}

// linesBetween returns the lines i (1-based, with their "\n") for which
// from <= i <= to, as read_file(start_line, end_line) does.
func linesBetween(text string, from, to pyNum) string {
	var b strings.Builder
	i := int64(1)
	for len(text) > 0 {
		j := strings.IndexByte(text, '\n')
		line := text
		if j >= 0 {
			line = text[:j+1]
		}
		text = text[len(line):]
		n := intNum(i)
		if to.less(n) {
			break
		}
		if !n.less(from) {
			b.WriteString(line)
		}
		i++
	}
	return b.String()
}

// ---- insert ----

func (f *Files) insert(ctx context.Context, p string, insertLine pyVal, newStr string) (editorOutput, error) {
	content, enc, err := f.readText(ctx, p)
	if err != nil {
		return editorOutput{}, err
	}
	lines := splitKeepNewlines(content)
	numLines := len(lines)
	var at pyNum
	switch insertLine.kind {
	case pyInt, pyBool:
		at = intNum(insertLine.intValue())
	case pyFloat:
		at = pyNum{isFloat: true, f: insertLine.f}
	default:
		return editorOutput{}, &toolError{fmt.Sprintf("'<' not supported between instances of '%s' and 'int'", insertLine.typeName())}
	}
	if at.less(intNum(0)) || intNum(int64(numLines)).less(at) {
		return editorOutput{}, errInvalid("insert_line", insertLine.str(),
			"It should be within the range of allowed values: "+pyListOfInts(0, numLines))
	}
	// Lines numbered i <= insert_line come before the new text.
	k := numLines
	for i := 1; i <= numLines; i++ {
		if at.less(intNum(int64(i))) {
			k = i - 1
			break
		}
	}
	newLines := strings.Split(newStr, "\n")
	var b strings.Builder
	b.Grow(len(content) + len(newStr) + 1)
	for _, l := range lines[:k] {
		b.WriteString(l)
	}
	for _, l := range newLines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	for _, l := range lines[k:] {
		b.WriteString(l)
	}
	newText := b.String()
	if err := f.writeText(ctx, p, newText, enc); err != nil {
		return editorOutput{}, err
	}
	reread := translateNewlines(newText)
	nl := int64(len(newLines))
	start := pyMax(intNum(0), at.add(-snippetContext))
	end := pyMin(intNum(int64(numLines)+nl), at.add(snippetContext+nl))
	snippet := linesBetween(reread, start.add(1), end)
	if err := f.hist.push(p, content); err != nil {
		return editorOutput{}, err
	}
	out := "The file " + p + " has been edited. " +
		makeOutput(snippet, "a snippet of the edited file", pyMax(intNum(1), at.add(-snippetContext+1))) +
		"Review the changes and make sure they are as expected (correct indentation, no duplicate lines, etc). Edit the file again if necessary."
	return editorOutput{content: out, oldText: &content, newText: &reread}, nil
}

// splitKeepNewlines splits text after each "\n" (a Python file's lines).
func splitKeepNewlines(text string) []string {
	var lines []string
	for len(text) > 0 {
		j := strings.IndexByte(text, '\n')
		if j < 0 {
			lines = append(lines, text)
			break
		}
		lines = append(lines, text[:j+1])
		text = text[j+1:]
	}
	return lines
}

// ---- undo_edit ----

func (f *Files) undo(ctx context.Context, p string) (editorOutput, error) {
	current, enc, err := f.readText(ctx, p)
	if err != nil {
		return editorOutput{}, err
	}
	old, ok, err := f.hist.pop(p)
	if err != nil {
		return editorOutput{}, err
	}
	if !ok {
		return editorOutput{}, &toolError{fmt.Sprintf("No edit history found for %s.", p)}
	}
	if err := f.writeText(ctx, p, old, enc); err != nil {
		// Keep the entry: nothing was undone.
		if perr := f.hist.push(p, old); perr != nil {
			f.log.Warn("could not restore undo entry", "path", p, "err", perr)
		}
		return editorOutput{}, err
	}
	out := "Last edit to " + p + " undone successfully. " + makeOutput(old, p, intNum(1))
	return editorOutput{content: out, oldText: &current, newText: &old}, nil
}

// ---- view ----

func (f *Files) view(ctx context.Context, p string, viewRange pyVal) (string, error) {
	if isDirPath(p) {
		return f.viewDir(ctx, p, viewRange)
	}
	if err := f.validateFile(p); err != nil {
		return "", err
	}
	if isSupportedBinary(p) {
		md, err := convertToMarkdown(ctx, p, strings.ToLower(pySuffix(p)))
		if err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return "", fmt.Errorf("file operation: %w", err)
			}
			return "", &toolError{fmt.Sprintf("Error in converting file to Markdown: %s. Please use Python code to read %s", err, p)}
		}
		return "Here's the content of the file " + p + " displayed in Markdown format:\n" + clip(md, binaryClipNotice) + "\n", nil
	}
	enc, err := detectEncoding(p)
	if err != nil {
		return "", errIO(err, p, "read")
	}
	if !viewRange.truthy() {
		head, err := readHead(ctx, p, enc, maxResponseLen+1)
		if err != nil {
			return "", errIO(err, p, "read")
		}
		return makeOutput(head, p, intNum(1)), nil
	}
	numLines, err := countLines(ctx, p, enc)
	if err != nil {
		return "", errIO(err, p, "read")
	}
	size, ok := viewRange.length()
	if !ok {
		return "", &toolError{fmt.Sprintf("object of type '%s' has no len()", viewRange.typeName())}
	}
	if size != 2 || viewRange.kind != pyList || !viewRange.items[0].isInt() || !viewRange.items[1].isInt() {
		return "", errInvalid("view_range", viewRange.str(), "It should be a list of two integers.")
	}
	first, second := viewRange.items[0], viewRange.items[1]
	start := first.intValue()
	if start < 1 || start > int64(numLines) {
		return "", errInvalid("view_range", viewRange.str(), fmt.Sprintf(
			"Its first element `%s` should be within the range of lines of the file: %s.", first.str(), pyListOfInts(1, numLines)))
	}
	end, endText := second.intValue(), second.str()
	warning := ""
	switch {
	case end == -1:
		end, endText = int64(numLines), strconv.Itoa(numLines)
	case end > int64(numLines):
		warning = fmt.Sprintf("We only show up to %d since there're only %d lines in this file.", numLines, numLines)
		end, endText = int64(numLines), strconv.Itoa(numLines)
	}
	if end < start {
		return "", errInvalid("view_range", viewRange.str(), fmt.Sprintf(
			"Its second element `%s` should be greater than or equal to the first element `%s`.", endText, first.str()))
	}
	window, err := readLineWindow(ctx, p, enc, start, end, maxResponseLen+2)
	if err != nil {
		return "", errIO(err, p, "read")
	}
	out := makeOutput(strings.Join(pySplitlines(window), "\n"), p, intNum(start))
	if warning != "" {
		out = "NOTE: " + warning + "\n" + out
	}
	return out, nil
}

func (f *Files) viewDir(ctx context.Context, p string, viewRange pyVal) (string, error) {
	if viewRange.truthy() {
		return "", errInvalid("view_range", viewRange.str(), "The `view_range` parameter is not allowed when `path` points to a directory.")
	}
	l, err := listDir(ctx, p)
	if err != nil {
		return "", pyError(err, p)
	}
	if l.stderr != "" {
		return "", &toolError{clip(l.stderr, genericClipNotice)}
	}
	stdout := pyStrip(clip(l.stdout, directoryClipNotice))
	var paths []string
	if stdout != "" {
		paths = strings.Split(stdout, "\n")
	}
	for i, q := range paths {
		if l.isDir[q] {
			paths[i] = q + "/"
		}
	}
	out := "Here's the files and directories up to 2 levels deep in " + p + ", excluding hidden items:\n" + strings.Join(paths, "\n")
	if l.hidden > 0 {
		out += fmt.Sprintf("\n\n%d hidden files/directories in this directory are excluded. You can use 'ls -la %s' to see them.", l.hidden, p)
	}
	return out, nil
}

// readHead decodes the whole file, keeping only its first limit characters.
func readHead(ctx context.Context, p string, enc textEncoding, limit int) (string, error) {
	file, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer file.Close()
	d := newTextDecoder(&ctxReader{ctx: ctx, r: file}, enc)
	var b strings.Builder
	kept := 0
	for {
		chunk, err := d.next()
		if errors.Is(err, io.EOF) {
			return b.String(), nil
		}
		if err != nil {
			return "", err
		}
		if kept < limit {
			s, _ := truncateRunes(string(chunk), limit-kept)
			b.WriteString(s)
			kept += runeLen(s)
		}
	}
}

func countLines(ctx context.Context, p string, enc textEncoding) (int, error) {
	file, err := os.Open(p)
	if err != nil {
		return 0, err
	}
	defer file.Close()
	return countLinesIn(ctx, file, enc)
}

// readLineWindow returns lines from..to (1-based, inclusive, with their
// "\n"), stopping once limit characters are collected: the caller only
// shows the first 16 000.
func readLineWindow(ctx context.Context, p string, enc textEncoding, from, to int64, limit int) (string, error) {
	file, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer file.Close()
	lr := newLineReader(&ctxReader{ctx: ctx, r: file}, enc)
	var b strings.Builder
	kept := 0
	for i := int64(1); i <= to && kept < limit; i++ {
		line, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", err
		}
		if i >= from {
			s, _ := truncateRunes(string(line), limit-kept)
			b.WriteString(s)
			kept += runeLen(s)
		}
	}
	return b.String(), nil
}
