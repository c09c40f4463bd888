package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

// startRequest is POST /start's body as the three clients send it
// (spec/runtime-api.md §4.1). Unknown fields are ignored.
type startRequest struct {
	Image           string            `json:"image"`
	Command         command           `json:"command"`
	WorkingDir      string            `json:"working_dir"`
	Environment     map[string]string `json:"environment"`
	SessionID       string            `json:"session_id"`
	ResourceFactor  *float64          `json:"resource_factor"`
	RuntimeClass    *string           `json:"runtime_class"`
	RunAsUser       *int              `json:"run_as_user"`
	RunAsGroup      *int              `json:"run_as_group"`
	FSGroup         *int              `json:"fs_group"`
	ImagePullPolicy string            `json:"image_pull_policy"`
	// Labels is sbx's extension: stored and returned as given (never put
	// on the sandbox, so a tenant cannot forge the service's own labels).
	Labels map[string]string `json:"labels"`
}

// command is a string (the SDK; split into words as a POSIX shell would,
// without expansions) or an array of strings (the app server, V0).
type command []string

func (c *command) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*c = nil
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		w, err := splitWords(s)
		if err != nil {
			return err
		}
		*c = w
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("command: a string or an array of strings")
	}
	*c = list
	return nil
}

// splitWords splits a command line into words with the shell's quoting
// rules ('…', "…" with \ before $ ` " \ and newline, \ outside quotes)
// and nothing else: no variables, globs or substitutions, since the
// string is a program and its arguments, not a script.
func splitWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("command: unterminated ' quote")
			}
			w.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("$`\"\\\n", s[i+1]) >= 0 {
					i++
					if s[i] == '\n' {
						continue
					}
				}
				w.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("command: unterminated \" quote")
			}
			inWord = true
		case c == '\\':
			if i+1 >= len(s) {
				return nil, fmt.Errorf("command: a trailing backslash escapes nothing")
			}
			i++
			if s[i] != '\n' {
				w.WriteByte(s[i])
				inWord = true
			}
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

// decodeStart reads and checks a /start body.
func decodeStart(b []byte) (startRequest, error) {
	var r startRequest
	if err := json.Unmarshal(b, &r); err != nil {
		return r, errdefs.New(errdefs.ErrInvalidArgument, "invalid /start body: "+err.Error())
	}
	switch {
	case r.Image == "":
		return r, errdefs.New(errdefs.ErrInvalidArgument, "image is required")
	case r.SessionID == "":
		return r, errdefs.New(errdefs.ErrInvalidArgument, "session_id is required")
	case len(r.SessionID) > 256:
		return r, errdefs.New(errdefs.ErrInvalidArgument, "session_id is longer than 256 bytes")
	case len(r.Command) == 0:
		return r, errdefs.New(errdefs.ErrInvalidArgument, "command is required (a string or an array of strings)")
	case r.WorkingDir != "" && !strings.HasPrefix(r.WorkingDir, "/"):
		return r, errdefs.New(errdefs.ErrInvalidArgument, "working_dir must be absolute")
	}
	if r.ResourceFactor != nil {
		switch *r.ResourceFactor {
		case 1, 2, 4, 8:
		default:
			return r, errdefs.New(errdefs.ErrInvalidArgument, "resource_factor must be 1, 2, 4 or 8")
		}
	}
	switch r.ImagePullPolicy {
	case "", "Always", "IfNotPresent", "Never":
	default:
		return r, errdefs.New(errdefs.ErrInvalidArgument, "image_pull_policy must be Always, IfNotPresent or Never")
	}
	for _, id := range []*int{r.RunAsUser, r.RunAsGroup, r.FSGroup} {
		if id != nil && (*id < 0 || *id > 1<<31-2) {
			return r, errdefs.New(errdefs.ErrInvalidArgument, "run_as_user, run_as_group and fs_group are ids from 0 to 2147483646")
		}
	}
	if len(r.Labels) > 64 {
		return r, errdefs.New(errdefs.ErrInvalidArgument, "labels: at most 64")
	}
	for k, v := range r.Labels {
		if k == "" || len(k) > 256 || len(v) > 1024 {
			return r, errdefs.New(errdefs.ErrInvalidArgument, "labels: names of 1 to 256 bytes, values of at most 1024")
		}
	}
	for k := range r.Environment {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return r, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("environment: invalid variable name %q", k))
		}
	}
	for _, v := range r.Environment {
		if strings.ContainsRune(v, 0) {
			return r, errdefs.New(errdefs.ErrInvalidArgument, "environment: a value holds a NUL byte")
		}
	}
	for _, a := range r.Command {
		if strings.ContainsRune(a, 0) {
			return r, errdefs.New(errdefs.ErrInvalidArgument, "command: an argument holds a NUL byte")
		}
	}
	return r, nil
}

// runtimeObject is the runtime as every route returns it (spec §5): every
// field on every route, pod_status always.
type runtimeObject struct {
	RuntimeID      string            `json:"runtime_id"`
	SessionID      string            `json:"session_id"`
	URL            string            `json:"url"`
	SessionAPIKey  string            `json:"session_api_key"`
	Status         string            `json:"status"`
	PodStatus      string            `json:"pod_status"`
	RestartCount   int               `json:"restart_count"`
	RestartReasons []string          `json:"restart_reasons"`
	WorkHosts      map[string]int    `json:"work_hosts"`
	Image          string            `json:"image"`
	Reason         string            `json:"reason,omitempty"`
	Labels         map[string]string `json:"labels"`
	CreatedAt      string            `json:"created_at"`
	UpdatedAt      string            `json:"updated_at"`
}

// runtimeIDBody is /pause, /resume and /stop's body.
type runtimeIDBody struct {
	RuntimeID string `json:"runtime_id"`
}
