package fileops

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/sbx-dev/sbx/internal/errdefs"

	"github.com/sbx-dev/sbx/internal/pyrepr"
)

// view_range and insert_line reach OpenHands' editor as whatever JSON the
// agent sent, unvalidated, and the editor's messages print them with
// Python's str(). pyVal is that JSON value as Python sees it after
// json.loads: integers and floats are distinct, integers are unbounded, and
// objects keep their key order.

type pyKind uint8

const (
	pyNone pyKind = iota
	pyBool
	pyInt
	pyFloat
	pyStr
	pyList
	pyDict
)

type pyVal struct {
	kind  pyKind
	b     bool
	i     int64  // pyInt: the value, saturated to the int64 range
	itext string // pyInt: the exact decimal text
	f     float64
	s     string
	items []pyVal // pyList elements, pyDict values
	keys  []string
}

func pyIntVal(v int64) pyVal { return pyVal{kind: pyInt, i: v, itext: strconv.FormatInt(v, 10)} }

// pyValueOf converts a request field to a pyVal. Accepted: nil, bool,
// string, Go integers, float64 (an integral float64 counts as an int,
// because encoding/json decodes every number to float64 and JSON "5" is
// far more common than "5.0"), json.Number (exact: "5.0" stays a float),
// []any, []int, map[string]any (keys sorted, the original order being
// lost), and json.RawMessage or []byte holding JSON, which is decoded here
// with key order and number text preserved — the exact option.
func pyValueOf(v any) (pyVal, error) {
	switch x := v.(type) {
	case nil:
		return pyVal{kind: pyNone}, nil
	case pyVal:
		return x, nil
	case bool:
		return pyVal{kind: pyBool, b: x}, nil
	case string:
		return pyVal{kind: pyStr, s: x}, nil
	case int:
		return pyIntVal(int64(x)), nil
	case int32:
		return pyIntVal(int64(x)), nil
	case int64:
		return pyIntVal(x), nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<63 {
			return pyIntVal(int64(x)), nil
		}
		return pyVal{kind: pyFloat, f: x}, nil
	case json.Number:
		return pyNumberOf(string(x))
	case []int:
		out := pyVal{kind: pyList}
		for _, e := range x {
			out.items = append(out.items, pyIntVal(int64(e)))
		}
		return out, nil
	case []any:
		out := pyVal{kind: pyList}
		for _, e := range x {
			pv, err := pyValueOf(e)
			if err != nil {
				return pyVal{}, err
			}
			out.items = append(out.items, pv)
		}
		return out, nil
	case map[string]any:
		out := pyVal{kind: pyDict}
		out.keys = make([]string, 0, len(x))
		for k := range x {
			out.keys = append(out.keys, k)
		}
		slices.Sort(out.keys)
		for _, k := range out.keys {
			pv, err := pyValueOf(x[k])
			if err != nil {
				return pyVal{}, err
			}
			out.items = append(out.items, pv)
		}
		return out, nil
	case json.RawMessage:
		return pyValueFromJSON(x)
	case []byte:
		return pyValueFromJSON(x)
	}
	return pyVal{}, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("unsupported value of type %T", v))
}

// pyNumberOf parses a JSON number the way Python's json module does:
// a fraction or exponent makes a float, anything else an int.
func pyNumberOf(text string) (pyVal, error) {
	if strings.ContainsAny(text, ".eE") {
		f, err := strconv.ParseFloat(text, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return pyVal{}, errdefs.Wrap(errdefs.ErrInvalidArgument, fmt.Sprintf("invalid number %q", text), err)
		}
		return pyVal{kind: pyFloat, f: f}, nil
	}
	t, v, ok := pyParseInt(text)
	if !ok {
		return pyVal{}, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("invalid number %q", text))
	}
	return pyVal{kind: pyInt, i: v, itext: t}, nil
}

func pyValueFromJSON(data []byte) (pyVal, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return pyVal{kind: pyNone}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodePyJSON(dec)
	if err != nil {
		return pyVal{}, errdefs.Wrap(errdefs.ErrInvalidArgument, "invalid JSON value: "+err.Error(), err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return pyVal{}, errdefs.New(errdefs.ErrInvalidArgument, "invalid JSON value: trailing data")
	}
	return v, nil
}

func decodePyJSON(dec *json.Decoder) (pyVal, error) {
	tok, err := dec.Token()
	if err != nil {
		return pyVal{}, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '[':
			out := pyVal{kind: pyList}
			for dec.More() {
				e, err := decodePyJSON(dec)
				if err != nil {
					return pyVal{}, err
				}
				out.items = append(out.items, e)
			}
			_, err := dec.Token()
			return out, err
		case '{':
			out := pyVal{kind: pyDict}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return pyVal{}, err
				}
				k, _ := kt.(string)
				e, err := decodePyJSON(dec)
				if err != nil {
					return pyVal{}, err
				}
				// A repeated key keeps its first position and last value,
				// as in a Python dict.
				if i := slices.Index(out.keys, k); i >= 0 {
					out.items[i] = e
					continue
				}
				out.keys = append(out.keys, k)
				out.items = append(out.items, e)
			}
			_, err := dec.Token()
			return out, err
		}
		return pyVal{}, fmt.Errorf("unexpected %v", t)
	case nil:
		return pyVal{kind: pyNone}, nil
	case bool:
		return pyVal{kind: pyBool, b: t}, nil
	case string:
		return pyVal{kind: pyStr, s: t}, nil
	case json.Number:
		return pyNumberOf(string(t))
	}
	return pyVal{}, fmt.Errorf("unexpected token %v", tok)
}

// truthy is Python's bool().
func (v pyVal) truthy() bool {
	switch v.kind {
	case pyBool:
		return v.b
	case pyInt:
		return v.itext != "0"
	case pyFloat:
		return v.f != 0
	case pyStr:
		return v.s != ""
	case pyList, pyDict:
		return len(v.items) > 0
	}
	return false
}

// typeName is type(v).__name__.
func (v pyVal) typeName() string {
	return [...]string{"NoneType", "bool", "int", "float", "str", "list", "dict"}[v.kind]
}

// isInt is isinstance(v, int), which bool satisfies.
func (v pyVal) isInt() bool { return v.kind == pyInt || v.kind == pyBool }

// intValue is int(v) for an int or bool.
func (v pyVal) intValue() int64 {
	if v.kind == pyBool {
		if v.b {
			return 1
		}
		return 0
	}
	return v.i
}

// length is len(v); ok is false where Python raises TypeError.
func (v pyVal) length() (int, bool) {
	switch v.kind {
	case pyStr:
		return runeLen(v.s), true
	case pyList, pyDict:
		return len(v.items), true
	}
	return 0, false
}

// str is Python's str().
func (v pyVal) str() string {
	if v.kind == pyStr {
		return v.s
	}
	return v.repr()
}

// repr is Python's repr().
func (v pyVal) repr() string {
	switch v.kind {
	case pyNone:
		return "None"
	case pyBool:
		if v.b {
			return "True"
		}
		return "False"
	case pyInt:
		return v.itext
	case pyFloat:
		return pyrepr.Float(v.f)
	case pyStr:
		return pyrepr.Str(v.s)
	case pyList:
		parts := make([]string, len(v.items))
		for i, e := range v.items {
			parts[i] = e.repr()
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case pyDict:
		parts := make([]string, len(v.items))
		for i, e := range v.items {
			parts[i] = pyrepr.Str(v.keys[i]) + ": " + e.repr()
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return ""
}

// pyNum is an int or a float taking part in the editor's line arithmetic.
// insert_line may legally be a JSON float, and Python then carries floats
// into the snippet bounds and even the printed line numbers ("   3.0").
type pyNum struct {
	isFloat bool
	i       int64
	f       float64
}

func intNum(i int64) pyNum { return pyNum{i: i} }

func (n pyNum) float() float64 {
	if n.isFloat {
		return n.f
	}
	return float64(n.i)
}

func (n pyNum) add(k int64) pyNum {
	if n.isFloat {
		return pyNum{isFloat: true, f: n.f + float64(k)}
	}
	return pyNum{i: n.i + k}
}

// less is n < m with Python's mixed int/float comparison.
func (n pyNum) less(m pyNum) bool {
	if !n.isFloat && !m.isFloat {
		return n.i < m.i
	}
	return n.float() < m.float()
}

// pyMax and pyMin follow Python's max()/min(): the first argument wins ties.
func pyMax(a, b pyNum) pyNum {
	if a.less(b) {
		return b
	}
	return a
}

func pyMin(a, b pyNum) pyNum {
	if b.less(a) {
		return b
	}
	return a
}

// width6 is f'{n:6}'.
func (n pyNum) width6() string {
	if n.isFloat {
		return fmt.Sprintf("%6s", pyrepr.Float(n.f))
	}
	return fmt.Sprintf("%6d", n.i)
}
