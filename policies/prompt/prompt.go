// Package prompt holds versioned prompt templates (DESIGN §4, "Prompts"): a
// request names a prompt with Helicone-Prompt-Id (and -Version, else the
// latest), and the template's messages, filled with
// Helicone-Prompt-Variables, replace the request's. Templates come from a
// folder of YAML files (a ConfigMap, files.go) or are published through the
// HTTP API into a Store (storage/redisstore, storage/memstore); Library
// combines both for the request path, and render.go fills them in.
package prompt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate-dev/tollgate/helicone"
)

// MaxIDLen is the longest prompt id.
const MaxIDLen = 128

// Template is the content of one version, as published.
type Template struct {
	// Model applies when the request names none; "" = keep the request's.
	Model string
	// Messages is a non-empty JSON array of message objects.
	Messages json.RawMessage
	// System is Anthropic's top-level system prompt (a JSON string or
	// array of content blocks), nil when the template has none.
	System json.RawMessage
	// Seen marks a version Tollgate made itself from the calls a tenant
	// made naming the prompt (Helicone's automatic versioning) and kept
	// among the published prompts, as it was before seen versions went to
	// a SeenStore (which keeps no template). Library never serves one for
	// rendering.
	Seen bool
}

// Version is one immutable version of a prompt.
type Version struct {
	ID      string
	Version int // from 1, one more per publish
	Template
	// CreatedAt is when the version was published; zero for a version
	// loaded from a file.
	CreatedAt time.Time
	// File names the YAML file (base name) a version was loaded from; ""
	// for a published one.
	File string
}

// Errors of the prompt API. Test with errors.Is; the concrete types below
// carry the details and their Error texts are meant for the client.
var (
	// ErrNotFound: no such prompt id, or no such version of it.
	ErrNotFound = errors.New("prompt not found")
	// ErrReadOnly: the id is defined by a file of the prompt folder
	// and cannot be published to.
	ErrReadOnly = errors.New("prompt is defined by a file")
	// ErrInvalid: a bad id or template (a *FieldError).
	ErrInvalid = errors.New("invalid prompt")
	// ErrNoStore: publishing needs a store and none is configured.
	ErrNoStore = errors.New("no prompt store is configured: prompts can only be loaded from files")
)

// NotFoundError is an unknown id (Version 0: the prompt has no
// version at all) or an unknown version of a known id.
type NotFoundError struct {
	ID      string
	Version int
}

func (e *NotFoundError) Error() string {
	if e.Version == 0 {
		return fmt.Sprintf("prompt %q not found", e.ID)
	}
	return fmt.Sprintf("prompt %q version %d not found", e.ID, e.Version)
}

func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// ReadOnlyError is a publish to an id that a file defines.
type ReadOnlyError struct {
	ID   string
	File string
}

func (e *ReadOnlyError) Error() string {
	return fmt.Sprintf("prompt %q is defined by the file %s of the prompt folder; change the file instead of publishing", e.ID, e.File)
}

func (e *ReadOnlyError) Is(target error) bool { return target == ErrReadOnly }

// FieldError names the field of a prompt that is wrong: "id",
// "model", "messages", "messages[2]" or "system".
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + " " + e.Reason }

func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// ValidateID checks an id: 1–128 characters of A–Z, a–z, 0–9, '.',
// '_' and '-', other than "." and "..". Ids go into Redis keys and URL
// paths as they are, so nothing else is allowed: a path segment "." or
// ".." is cleaned away by HTTP routers (a signed body link to prompt ".."
// would lead to another path).
func ValidateID(id string) error {
	if id == "" {
		return &FieldError{Field: "id", Reason: "is required"}
	}
	if id == "." || id == ".." {
		return &FieldError{Field: "id", Reason: fmt.Sprintf("must not be %q: it is not usable in a URL path", id)}
	}
	if len(id) > MaxIDLen {
		return &FieldError{Field: "id", Reason: fmt.Sprintf("is longer than %d characters", MaxIDLen)}
	}
	pos := 0
	for _, r := range id {
		pos++
		if r >= 0x80 || !isPromptIDByte(byte(r)) {
			return &FieldError{Field: "id", Reason: fmt.Sprintf("has %q at position %d; use only letters, digits, '.', '_' and '-'", r, pos)}
		}
	}
	return nil
}

func isPromptIDByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// NormalizeTemplate checks a template and returns it with Messages
// and System in compact JSON (System nil when absent or null), the form
// stores keep. A problem is a *FieldError.
func NormalizeTemplate(tpl Template) (Template, error) {
	msgs := bytes.TrimSpace(tpl.Messages)
	if len(msgs) == 0 || string(msgs) == "null" {
		return tpl, &FieldError{Field: "messages", Reason: "is required (a non-empty array of message objects)"}
	}
	var items []json.RawMessage
	if msgs[0] != '[' || json.Unmarshal(msgs, &items) != nil {
		return tpl, &FieldError{Field: "messages", Reason: "must be a JSON array of message objects"}
	}
	if len(items) == 0 {
		return tpl, &FieldError{Field: "messages", Reason: "must not be empty"}
	}
	for i, m := range items {
		if m = bytes.TrimSpace(m); len(m) == 0 || m[0] != '{' {
			return tpl, &FieldError{Field: "messages[" + strconv.Itoa(i) + "]", Reason: "must be a JSON object such as {\"role\": \"user\", \"content\": \"…\"}"}
		}
	}
	out := Template{Model: strings.TrimSpace(tpl.Model), Messages: compactJSON(msgs), Seen: tpl.Seen}
	if sys := bytes.TrimSpace(tpl.System); len(sys) > 0 && string(sys) != "null" {
		if (sys[0] != '"' && sys[0] != '[') || !json.Valid(sys) {
			return tpl, &FieldError{Field: "system", Reason: "must be a JSON string or an array of content blocks"}
		}
		out.System = compactJSON(sys)
	}
	return out, nil
}

// ParseVersion reads Helicone-Prompt-Version: "" (or "latest") is 0,
// the latest version; otherwise a positive integer.
func ParseVersion(v string) (int, error) {
	v = strings.TrimSpace(v)
	if v == "" || strings.EqualFold(v, "latest") {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, &helicone.BadHeaderError{Header: helicone.Canonical(helicone.PromptVersion), Reason: "must be a positive integer (or absent for the latest version), got " + strconv.Quote(helicone.Truncate(v, 32))}
	}
	return n, nil
}
