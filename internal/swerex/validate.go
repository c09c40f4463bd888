package swerex

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// fieldError is one entry of FastAPI's 422 "detail" list, in pydantic 2's
// shape: what went wrong, where, and the offending input.
type fieldError struct {
	Type  string         `json:"type"`
	Loc   []any          `json:"loc"`
	Msg   string         `json:"msg"`
	Input any            `json:"input"`
	Ctx   map[string]any `json:"ctx,omitempty"`
}

// validationError is a 422 answer.
type validationError struct{ Detail []fieldError }

func (v *validationError) Error() string {
	var parts []string
	for _, d := range v.Detail {
		parts = append(parts, fmt.Sprint(d.Loc...)+": "+d.Msg)
	}
	return "invalid request: " + strings.Join(parts, "; ")
}

// object is a decoded JSON body with pydantic's lax rules for reading its
// fields: unknown keys ignored, missing keys take defaults, ints accepted
// for floats, the usual strings accepted for booleans. Errors accumulate
// so that one answer lists every bad field, as FastAPI's does.
type object struct {
	m    map[string]any
	loc  []any
	errs []fieldError
}

// decodeObject reads a JSON object body. A body that is not JSON, or not
// an object, is a 422 like FastAPI's.
func decodeObject(body []byte, loc ...any) (*object, error) {
	loc = append([]any{"body"}, loc...)
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, &validationError{[]fieldError{{Type: "missing", Loc: []any{"body"}, Msg: "Field required", Input: nil}}}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		pos := 0
		if se, ok := err.(*json.SyntaxError); ok {
			pos = int(se.Offset)
		}
		return nil, &validationError{[]fieldError{{Type: "json_invalid", Loc: []any{"body", pos}, Msg: "JSON decode error",
			Input: map[string]any{}, Ctx: map[string]any{"error": err.Error()}}}}
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, &validationError{[]fieldError{{Type: "model_attributes_type", Loc: loc, Msg: "Input should be a valid dictionary or object to extract fields from", Input: sanitize(v)}}}
	}
	return &object{m: m, loc: loc}, nil
}

func (o *object) fail(key, typ, msg string, input any) {
	loc := append(append([]any{}, o.loc...), key)
	o.errs = append(o.errs, fieldError{Type: typ, Loc: loc, Msg: msg, Input: sanitize(input)})
}

// sanitize makes an echoed input encodable: a number beyond float64
// (1e999) goes back as its text, since JSON has no infinity.
func sanitize(v any) any {
	switch x := v.(type) {
	case json.Number:
		if f, err := strconv.ParseFloat(x.String(), 64); err != nil || math.IsInf(f, 0) {
			return x.String()
		}
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = sanitize(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = sanitize(e)
		}
		return out
	}
	return v
}

func (o *object) err() error {
	if len(o.errs) == 0 {
		return nil
	}
	return &validationError{o.errs}
}

func (o *object) missing(key string) { o.fail(key, "missing", "Field required", o.m) }

// inputs wraps a body echoed whole in an error.
func (o *object) input() any { return sanitize(o.m) }

func (o *object) str(key string, def string, required bool) string {
	v, ok := o.m[key]
	if !ok {
		if required {
			o.missing(key)
		}
		return def
	}
	s, ok := v.(string)
	if !ok {
		o.fail(key, "string_type", "Input should be a valid string", v)
	}
	return s
}

func (o *object) optStr(key string) *string {
	v, ok := o.m[key]
	if !ok || v == nil {
		return nil
	}
	s, ok := v.(string)
	if !ok {
		o.fail(key, "string_type", "Input should be a valid string", v)
		return nil
	}
	return &s
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case json.Number:
		// Python reads 1e999 as inf, and pydantic accepts it.
		f, err := strconv.ParseFloat(x.String(), 64)
		return f, err == nil || math.IsInf(f, 0)
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		return f, err == nil || math.IsInf(f, 0)
	}
	return 0, false
}

func (o *object) optFloat(key string) *float64 {
	v, ok := o.m[key]
	if !ok || v == nil {
		return nil
	}
	f, ok := toFloat(v)
	if !ok {
		o.fail(key, "float_parsing", "Input should be a valid number, unable to parse string as a number", v)
		return nil
	}
	return &f
}

func (o *object) float(key string, def float64) float64 {
	v, ok := o.m[key]
	if !ok {
		return def
	}
	f, ok := toFloat(v)
	if !ok {
		o.fail(key, "float_parsing", "Input should be a valid number, unable to parse string as a number", v)
	}
	return f
}

func (o *object) int(key string, def int) int {
	v, ok := o.m[key]
	if !ok {
		return def
	}
	if n, isNum := v.(json.Number); isNum {
		if i, err := strconv.Atoi(n.String()); err == nil {
			return i
		}
		if f, err := n.Float64(); err == nil && f == float64(int(f)) {
			return int(f)
		}
	}
	if s, isStr := v.(string); isStr {
		if i, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
			return i
		}
	}
	o.fail(key, "int_parsing", "Input should be a valid integer", v)
	return def
}

// parseBool is pydantic's lax boolean.
func parseBool(v any) (bool, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case json.Number:
		switch x.String() {
		case "0":
			return false, true
		case "1":
			return true, true
		}
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "1", "on", "t", "true", "y", "yes":
			return true, true
		case "0", "off", "f", "false", "n", "no":
			return false, true
		}
	}
	return false, false
}

func (o *object) bool(key string, def bool) bool {
	v, ok := o.m[key]
	if !ok {
		return def
	}
	b, ok := parseBool(v)
	if !ok {
		o.fail(key, "bool_parsing", "Input should be a valid boolean", v)
	}
	return b
}

func (o *object) strList(key string) []string {
	v, ok := o.m[key]
	if !ok {
		return nil
	}
	l, ok := v.([]any)
	if !ok {
		o.fail(key, "list_type", "Input should be a valid list", v)
		return nil
	}
	out := make([]string, 0, len(l))
	for i, e := range l {
		s, ok := e.(string)
		if !ok {
			o.errs = append(o.errs, fieldError{Type: "string_type", Loc: append(append([]any{}, o.loc...), key, i), Msg: "Input should be a valid string", Input: sanitize(e)})
			continue
		}
		out = append(out, s)
	}
	return out
}

func (o *object) literal(key, def string, allowed ...string) string {
	v, ok := o.m[key]
	if !ok {
		return def
	}
	s, _ := v.(string)
	for _, a := range allowed {
		if s == a && v != nil {
			return s
		}
	}
	quoted := make([]string, len(allowed))
	for i, a := range allowed {
		quoted[i] = "'" + a + "'"
	}
	want := strings.Join(quoted, " or ")
	if len(quoted) > 1 {
		want = strings.Join(quoted[:len(quoted)-1], ", ") + " or " + quoted[len(quoted)-1]
	}
	o.fail(key, "literal_error", "Input should be "+want, v)
	return def
}
