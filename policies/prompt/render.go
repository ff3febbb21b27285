package prompt

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Rendered is a template filled with a request's variables.
type Rendered struct {
	Model    string          // the template's model, "" if it names none
	Messages json.RawMessage // compact JSON array
	System   json.RawMessage // compact JSON, nil when the template has none
}

// Render fills the {{name}} placeholders of a version's messages and
// system prompt with the variables (a Helicone-Prompt-Variables value, see
// ParseVariables). A placeholder is {{name}} with optional spaces
// inside the braces, name of A–Z, a–z, 0–9, '_', '.' and '-'.
//
// Substitution happens inside decoded JSON string values (never object
// keys), which are encoded again afterwards: a value holding quotes,
// backslashes, newlines or "{{x}}" cannot change the JSON structure, and
// inserted text is not expanded again. Every missing variable is reported
// at once in a *VariableMissingError; unused variables are fine.
func Render(v Version, variablesJSON []byte) (Rendered, error) {
	vars, err := ParseVariables(variablesJSON)
	if err != nil {
		return Rendered{}, err
	}
	return RenderVars(v, vars)
}

// RenderVars is Render with variables already parsed.
func RenderVars(v Version, vars map[string]string) (Rendered, error) {
	r := &renderer{vars: vars}
	out := Rendered{Model: v.Model}
	var err error
	if out.Messages, err = r.render(v.Messages, "messages"); err != nil {
		return Rendered{}, err
	}
	if len(bytes.TrimSpace(v.System)) > 0 {
		if out.System, err = r.render(v.System, "system"); err != nil {
			return Rendered{}, err
		}
	}
	if len(r.missing) > 0 {
		return Rendered{}, &VariableMissingError{PromptID: v.ID, Version: v.Version, Names: r.missing}
	}
	return out, nil
}

type renderer struct {
	vars    map[string]string
	missing []string
}

// render copies the JSON document doc compactly, filling placeholders in
// its string values (rewriteStrings).
func (r *renderer) render(doc []byte, field string) (json.RawMessage, error) {
	if !json.Valid(doc) {
		return nil, fmt.Errorf("prompt template %s is not valid JSON", field)
	}
	out, err := rewriteStrings(doc, "{\\<", func(out []byte, s string) ([]byte, bool) {
		filled, changed := r.fill(s)
		if !changed {
			return out, false // keep the template's own escapes
		}
		return appendJSONString(out, filled), true
	})
	if err != nil {
		return nil, fmt.Errorf("prompt template %s: %w", field, err)
	}
	return out, nil
}

// fill replaces the placeholders of s in one pass; changed is false when
// s has none. Besides {{name}}, a template versioned from Helicone-style
// calls holds <helicone-prompt-input key="name" /> markers (markers.go),
// filled the same way.
func (r *renderer) fill(s string) (filled string, changed bool) {
	return substitute(s, newPlaceholders(s).next, func(at string) (int, string, bool) {
		name, n := promptPlaceholderAt(at)
		if n == 0 {
			name, n = selfClosingMarkerAt(at)
		}
		if n == 0 {
			return 0, "", false
		}
		if val, ok := r.vars[name]; ok {
			return n, val, true
		}
		r.noteMissing(name)
		return n, at[:n], true // counts as a change: the string is re-encoded
	})
}

// substitute copies s with each placeholder replaced, in one pass. next is
// where the next placeholder may open at or after a position of s (-1:
// none), asked for positions in increasing order; replace reads the one at
// the start of at: its length n (0: none there, the scan moves on by a
// byte), the text put in its place, and whether that changes s. When
// nothing does, substitute returns s itself and false.
func substitute(s string, next func(from int) int, replace func(at string) (n int, text string, changes bool)) (string, bool) {
	var b strings.Builder
	changed := false
	done, from := 0, 0 // s[:done] is written; placeholders are looked for from from
	for {
		open := next(from)
		if open < 0 {
			break
		}
		n, text, changes := replace(s[open:])
		if n == 0 {
			from = open + 1
			continue
		}
		b.WriteString(s[done:open])
		b.WriteString(text)
		changed = changed || changes
		done, from = open+n, open+n
	}
	if !changed {
		return s, false
	}
	b.WriteString(s[done:])
	return b.String(), true
}

// placeholders is substitute's next for Render: the first "{{" or
// marker opening at or after a position of s. Each is searched with a
// forwardIndex, so that a string of "{" or of marker openings costs one
// pass rather than one pass per candidate.
type placeholders struct{ braces, markers forwardIndex }

func newPlaceholders(s string) *placeholders {
	return &placeholders{braces: newForwardIndex(s, "{{"), markers: newForwardIndex(s, markerOpen)}
}

func (p *placeholders) next(from int) int {
	b, m := p.braces.from(from), p.markers.from(from)
	if m < 0 || b >= 0 && b < m {
		return b
	}
	return m
}

// promptPlaceholderAt parses "{{ name }}" at the start of s and returns
// the name and the placeholder's length, or 0 when s does not start with
// one.
func promptPlaceholderAt(s string) (string, int) {
	if !strings.HasPrefix(s, "{{") {
		return "", 0
	}
	i := 2
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	start := i
	for i < len(s) && isPromptPlaceholderByte(s[i]) {
		i++
	}
	name := s[start:i]
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	if name == "" || !strings.HasPrefix(s[i:], "}}") {
		return "", 0
	}
	return name, i + 2
}

func isPromptPlaceholderByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
}

func (r *renderer) noteMissing(name string) {
	for _, m := range r.missing {
		if m == name {
			return
		}
	}
	r.missing = append(r.missing, name)
}

// Placeholders lists the distinct variable names a version uses, in
// sorted order (for validation and documentation).
func Placeholders(v Version) []string {
	r := &renderer{vars: map[string]string{}}
	_, _ = r.render(v.Messages, "messages")
	if len(bytes.TrimSpace(v.System)) > 0 {
		_, _ = r.render(v.System, "system")
	}
	if r.missing == nil {
		return []string{}
	}
	sort.Strings(r.missing)
	return r.missing
}
