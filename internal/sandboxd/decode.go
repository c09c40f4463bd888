package sandboxd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/pyliteral"
	"github.com/sbx-dev/sbx/sandboxapi"

	"github.com/sbx-dev/sbx/internal/pyrepr"
)

// knownActions are the action types OpenHands' deserializer knows, in its
// registry order. Only some of them can run in a sandbox.
var knownActions = []string{
	"null", "run", "run_ipython", "browse", "browse_interactive", "read", "write", "edit",
	"think", "finish", "reject", "delegate", "recall", "change_agent_state", "message",
	"system", "condensation", "condensation_request", "call_tool_mcp", "task_tracking", "loop_recovery",
}

// requiredArgs are the dataclass fields without a default, per action type.
var requiredArgs = map[string][]string{
	"run":                {"command"},
	"run_ipython":        {"code"},
	"read":               {"path"},
	"write":              {"path", "content"},
	"edit":               {"path"},
	"browse":             {"url"},
	"browse_interactive": {"browser_actions"},
}

var actionClass = map[string]string{
	"run": "CmdRunAction", "run_ipython": "IPythonRunCellAction", "read": "FileReadAction",
	"write": "FileWriteAction", "edit": "FileEditAction", "browse": "BrowseURLAction",
	"browse_interactive": "BrowseInteractiveAction",
}

// decodedAction is an action after OpenHands' lenient decoding.
type decodedAction struct {
	typ        string
	args       map[string]any
	hasTimeout bool
	timeout    *float64       // nil when absent or null
	raw        map[string]any // the whole action, for error messages
}

// requestError is an error answered with a status and a detail, in the
// shapes of spec §2.4.
type requestError struct {
	status int
	detail string
	errors string // only for 422
}

func (e *requestError) Error() string { return e.detail }

func internalError(msg string) *requestError {
	return &requestError{status: 500, detail: "Internal server error: " + msg}
}

// fileOpError is the answer to a failed file action: OpenHands' 500
// ("Internal server error: …"), except that a full disk answers 507 with
// the same detail. OpenHands has no ErrorObservation for ENOSPC (§4.2
// lists the ones it has; any other OSError escapes as the 500), and an
// observation would tell the agent the action ran; the status tells the
// client the sandbox needs space, on every route that writes files.
func fileOpError(err error) *requestError {
	re := internalError(err.Error())
	if errors.Is(err, errdefs.ErrInsufficientStorage) {
		re.status = errdefs.HTTPStatus(errdefs.ErrInsufficientStorage)
	}
	return re
}

func validationError(errs string) *requestError {
	return &requestError{status: 422, detail: "Invalid request parameters", errors: errs}
}

// decodeActionRequest validates the body of /execute_action and decodes the
// action as OpenHands' event deserializer does (spec §3.1).
//
// body is decoded in place (decodeJSONInPlace) and must not be used
// again; only an invalid body goes through encoding/json's decoder, whose
// error text the 422 quotes.
func decodeActionRequest(body []byte) (*decodedAction, error) {
	var top any
	var err error
	bad := false
	if json.Valid(body) {
		top, err = decodeJSONInPlace(body)
		bad = err != nil
	} else {
		// As before the in-place decoder, to the letter: a stray closing
		// bracket after the value ("{} }") is still accepted.
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		err = dec.Decode(&top)
		bad = err != nil || dec.More()
	}
	if bad {
		return nil, validationError(fmt.Sprintf("[{'type': 'json_invalid', 'loc': ('body', 0), 'msg': 'JSON decode error', 'input': {}, 'ctx': {'error': %s}}]", pyRepr(jsonErrText(err))))
	}
	obj, ok := top.(map[string]any)
	if !ok {
		return nil, validationError(fmt.Sprintf("[{'type': 'model_attributes_type', 'loc': ('body',), 'msg': 'Input should be a valid dictionary or object to extract fields from', 'input': %s}]", pyRepr(top)))
	}
	av, ok := obj["action"]
	if !ok {
		return nil, validationError(fmt.Sprintf("[{'type': 'missing', 'loc': ('body', 'action'), 'msg': 'Field required', 'input': %s}]", pyRepr(obj)))
	}
	action, ok := av.(map[string]any)
	if !ok {
		return nil, validationError(fmt.Sprintf("[{'type': 'dict_type', 'loc': ('body', 'action'), 'msg': 'Input should be a valid dictionary', 'input': %s}]", pyRepr(av)))
	}
	return decodeAction(action)
}

func jsonErrText(err error) string {
	if err == nil {
		return "Extra data"
	}
	return err.Error()
}

func decodeAction(action map[string]any) (*decodedAction, error) {
	// OpenHands decodes with event_from_dict: an observation is a valid
	// event but not an action, and anything else is an unknown event.
	tv, ok := action["action"]
	if !ok {
		if _, isObs := action["observation"]; isObs {
			return nil, internalError("400: Invalid action type")
		}
		return nil, internalError(fmt.Sprintf("Unknown event type: %s", pyRepr(action)))
	}
	typ, ok := tv.(string)
	if !ok || !slices.Contains(knownActions, typ) {
		return nil, internalError(fmt.Sprintf("'action['action']=%s' is not defined. Available actions: dict_keys(%s)", pyRepr(tv), pyRepr(toAny(knownActions))))
	}
	args := map[string]any{}
	if a, present := action["args"]; present && a != nil {
		m, ok := a.(map[string]any)
		if !ok {
			return nil, internalError(fmt.Sprintf("action=%s has the wrong arguments: args must be an object", pyRepr(action)))
		}
		for k, v := range m {
			args[k] = v
		}
	}
	// Backward-compatible spellings (spec §3.1).
	delete(args, "timestamp")
	if v, ok := args["is_confirmed"]; ok {
		delete(args, "is_confirmed")
		if v != nil {
			args["confirmation_state"] = v
		}
	}
	if v, ok := args["images_urls"]; ok {
		delete(args, "images_urls")
		args["image_urls"] = v
	}
	delete(args, "keep_prompt")
	delete(args, "task_completed")
	if code, ok := args["translated_ipython_code"]; ok {
		delete(args, "translated_ipython_code")
		if s, ok := code.(string); ok {
			mergeFileEditorCall(s, args)
		}
	}
	if v, ok := args["security_risk"]; ok {
		if n, ok := asInt(v); !ok || n < -1 || n > 2 {
			delete(args, "security_risk")
		}
	}
	for _, f := range requiredArgs[typ] {
		if _, ok := args[f]; !ok {
			return nil, internalError(fmt.Sprintf("action=%s has the wrong arguments: %s.__init__() missing 1 required positional argument: '%s'", pyRepr(action), actionClass[typ], f))
		}
	}
	d := &decodedAction{typ: typ, args: args, raw: action}
	if t, ok := action["timeout"]; ok {
		d.hasTimeout = true
		if t != nil {
			f, ok := asFloat(t)
			if !ok {
				return nil, internalError(fmt.Sprintf("action=%s has the wrong arguments: timeout must be a number of seconds", pyRepr(action)))
			}
			d.timeout = &f
		}
	}
	return d, nil
}

// mergeFileEditorCall folds a legacy `print(file_editor(**{...}))` into the
// args, as OpenHands' deserializer does.
func mergeFileEditorCall(code string, args map[string]any) {
	const prefix = "print(file_editor(**"
	if !strings.HasPrefix(code, prefix) || !strings.HasSuffix(code, "))") {
		return
	}
	v, err := pyliteral.Parse(code[len(prefix) : len(code)-2])
	if err != nil {
		return
	}
	m, ok := v.(map[string]any)
	if !ok {
		return
	}
	for k, val := range m {
		args[k] = val
	}
	if args["command"] == "view" {
		delete(args, "command")
	}
}

// bindArgs decodes args into a typed struct. Unknown keys are ignored (a
// newer client may send fields this server does not know); a value of the
// wrong type is an error naming the field.
func bindArgs(d *decodedAction, out any) error {
	args, moved := d.args, movableStrings(d.args)
	if len(moved) > 0 {
		// Large strings (a write's content, an edit's file_text) skip the
		// JSON round trip, which would copy each twice, and are moved
		// into their fields afterwards; an empty string in their place
		// keeps the type errors the round trip reports.
		args = maps.Clone(d.args)
		for k := range moved {
			args[k] = ""
		}
	}
	b, err := json.Marshal(args)
	if err != nil {
		return internalError(err.Error())
	}
	if err := json.Unmarshal(b, out); err != nil {
		msg := err.Error()
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			msg = fmt.Sprintf("argument %q must be %s, not %s", te.Field, goTypeName(te.Type.String()), te.Value)
		}
		return internalError(fmt.Sprintf("action=%s has the wrong arguments: %s", pyRepr(d.raw), msg))
	}
	for k, v := range moved {
		setStringField(out, k, v)
	}
	return nil
}

// movedStringBytes is the size from which bindArgs moves a string rather
// than round-tripping it.
const movedStringBytes = 64 << 10

// movableStrings are the large string args that bindArgs can move: those
// whose key no other key matches case-insensitively, since encoding/json
// binds keys that way and the last of several would win.
func movableStrings(args map[string]any) map[string]string {
	var out map[string]string
	for k, v := range args {
		s, ok := v.(string)
		if !ok || len(s) < movedStringBytes {
			continue
		}
		unique := true
		for k2 := range args {
			if k2 != k && strings.EqualFold(k2, k) {
				unique = false
			}
		}
		if unique {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = s
		}
	}
	return out
}

// setStringField stores s in the string or *string field of the struct
// *out that encoding/json binds key to (exact tag first, then ignoring
// case); a key of no field is ignored, as Unmarshal ignores it.
func setStringField(out any, key, s string) {
	v := reflect.ValueOf(out).Elem()
	t := v.Type()
	field := -1
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name == "" {
			name = t.Field(i).Name
		}
		if name == key {
			field = i
			break
		}
		if field < 0 && strings.EqualFold(name, key) {
			field = i
		}
	}
	if field < 0 {
		return
	}
	f := v.Field(field)
	switch {
	case f.Kind() == reflect.String:
		f.SetString(s)
	case f.Kind() == reflect.Pointer && f.Type().Elem().Kind() == reflect.String:
		f.Set(reflect.ValueOf(&s))
	case f.Kind() == reflect.Interface && f.NumMethod() == 0:
		f.Set(reflect.ValueOf(s))
	}
}

func goTypeName(t string) string {
	switch {
	case strings.Contains(t, "int"):
		return "an integer"
	case strings.Contains(t, "float"):
		return "a number"
	case strings.Contains(t, "string"):
		return "a string"
	case strings.Contains(t, "bool"):
		return "a boolean"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	}
	return t
}

func toAny(list []string) []any {
	out := make([]any, len(list))
	for i, s := range list {
		out[i] = s
	}
	return out
}

func asFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case json.Number:
		f, err := n.Float64()
		return f, err == nil && !math.IsInf(f, 0) && !math.IsNaN(f)
	case float64:
		return n, true
	case int64:
		return float64(n), true
	case int:
		return float64(n), true
	}
	return 0, false
}

func asInt(v any) (int64, bool) {
	switch n := v.(type) {
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	case int64:
		return n, true
	case int:
		return int64(n), true
	}
	return 0, false
}

// pyRepr renders a decoded JSON value the way Python's repr() shows the
// equivalent object, for error texts that quote the request.
func pyRepr(v any) string {
	var b strings.Builder
	writeRepr(&b, v)
	return b.String()
}

func writeRepr(b *strings.Builder, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("None")
	case bool:
		if x {
			b.WriteString("True")
		} else {
			b.WriteString("False")
		}
	case json.Number:
		s := x.String()
		if strings.ContainsAny(s, ".eE") {
			if f, err := x.Float64(); err == nil {
				s = strconv.FormatFloat(f, 'f', -1, 64)
				if !strings.Contains(s, ".") {
					s += ".0"
				}
			}
		}
		b.WriteString(s)
	case float64:
		b.WriteString(strconv.FormatFloat(x, 'f', -1, 64))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case string:
		b.WriteString(pyrepr.Str(x))
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			writeRepr(b, e)
		}
		b.WriteByte(']')
	case map[string]any:
		// Python keeps insertion order; JSON objects decoded in Go do not
		// have one, so sort for a stable text.
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(pyrepr.Str(k))
			b.WriteString(": ")
			writeRepr(b, x[k])
		}
		b.WriteByte('}')
	default:
		fmt.Fprintf(b, "%v", x)
	}
}

// observation builds a wire observation with typed extras.
func observation(typ, message, content string, extras any, success *bool) sandboxapi.Observation {
	b, err := marshalNoEscape(extras)
	if err != nil {
		b = []byte("{}")
	}
	return sandboxapi.Observation{Message: message, Observation: typ, Content: content, Extras: b, Success: success}
}

func errorObservation(content string) sandboxapi.Observation {
	return observation(sandboxapi.ObservationError, content, content, sandboxapi.ErrorExtras{}, nil)
}

func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
