package prompt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// Helicone's newer prompts: a chat completion body names a stored prompt
// itself, with prompt_id (and version_id or environment) and fills its
// typed variables, {{hc:name:type}}, from inputs. The stored messages come
// first, the request's after them; the request's other fields win over
// the stored ones; these four fields never reach the provider.

// bodyPromptFields are the fields Helicone reads and removes.
var bodyPromptFields = [...]string{"prompt_id", "version_id", "environment", "inputs"}

// BodyPrompt is the prompt reference of a chat completion body.
type BodyPrompt struct {
	ID          string
	VersionID   string // as sent, "" when absent
	Environment string
	// Inputs holds each input's JSON, compact; nil without inputs.
	Inputs map[string]json.RawMessage
}

// ErrNoPromptID: the body sets version_id, environment or inputs but
// no prompt_id. The text is Helicone's.
var ErrNoPromptID = errors.New("No prompt ID provided")

// ErrInputsNotObject: inputs is not a JSON object.
var ErrInputsNotObject = errors.New("inputs must be a JSON object of variable values")

// ParseBodyPrompt reads the prompt fields of a JSON body. ok is false
// when the body sets none of them to a value JavaScript counts as true
// (Helicone's test): a missing field, null, false, 0 and "" do not count.
func ParseBodyPrompt(body []byte) (p BodyPrompt, ok bool, err error) {
	if !bytes.Contains(body, []byte("prompt_id")) && !bytes.Contains(body, []byte("version_id")) &&
		!bytes.Contains(body, []byte("environment")) && !bytes.Contains(body, []byte("inputs")) {
		return BodyPrompt{}, false, nil
	}
	fields := gjson.GetManyBytes(body, bodyPromptFields[:]...)
	for _, f := range fields {
		ok = ok || truthy(f)
	}
	if !ok {
		return BodyPrompt{}, false, nil
	}
	p.ID, p.VersionID, p.Environment = scalarText(fields[0]), scalarText(fields[1]), scalarText(fields[2])
	if in := fields[3]; truthy(in) {
		if !in.IsObject() {
			return p, true, ErrInputsNotObject
		}
		p.Inputs = map[string]json.RawMessage{}
		in.ForEach(func(k, v gjson.Result) bool {
			p.Inputs[k.String()] = compactJSON([]byte(v.Raw))
			return true
		})
	}
	if p.ID == "" {
		return p, true, ErrNoPromptID
	}
	return p, true, nil
}

func truthy(r gjson.Result) bool {
	switch r.Type {
	case gjson.Null:
		return false
	case gjson.False:
		return false
	case gjson.Number:
		return r.Num != 0
	case gjson.String:
		return r.Str != ""
	}
	return true // true, objects and arrays
}

// scalarText is a string field's text, a number's JSON text, else "".
func scalarText(r gjson.Result) string {
	switch r.Type {
	case gjson.String:
		return r.Str
	case gjson.Number:
		return r.Raw
	}
	return ""
}

// VersionNumber reads version_id as one of Tollgate's versions of the
// prompt: "3", 3, or "<prompt_id>@3"; 0 when it is none of these (a
// Helicone version id, a uuid, names nothing here).
func (p BodyPrompt) VersionNumber() int {
	v := strings.TrimSpace(p.VersionID)
	if id, n, ok := strings.Cut(v, "@"); ok {
		if id != p.ID {
			return 0
		}
		v = n
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0
	}
	return n
}

// InputText is how an input is written into text and logged: a string
// as itself, anything else as its JSON.
func InputText(raw json.RawMessage) string {
	if len(raw) > 0 && raw[0] == '"' {
		if s, err := unquoteString(raw); err == nil {
			return s
		}
	}
	return string(raw)
}

// TypeMismatch is an input that does not fit its variable's type.
type TypeMismatch struct {
	Variable, Expected, Got string
}

// InvalidInputsError lists the inputs that do not fit; its text is
// Helicone's, one line per variable.
type InvalidInputsError struct{ Mismatches []TypeMismatch }

func (e *InvalidInputsError) Error() string {
	lines := make([]string, len(e.Mismatches))
	for i, m := range e.Mismatches {
		lines[i] = fmt.Sprintf("Variable '%s' is '%s' but got '%s'", m.Variable, m.Expected, m.Got)
	}
	return strings.Join(lines, "\n")
}

// Compile merges version v into a chat completion body as Helicone's
// gateway does: the body loses its prompt fields; its messages are v's
// followed by its own, with every {{hc:name:type}} in their strings
// replaced by the input's text; v's model applies when the body names
// none; {{hc:…}} in the body's tools and response_format are replaced
// too, a string that is nothing but the variable by the input's JSON
// value. An input of the wrong type is an *InvalidInputsError; so is a
// variable of tools or response_format with no input. A variable of the
// messages with no input stays as written, as with Helicone.
func Compile(body []byte, v Version, inputs map[string]json.RawMessage) ([]byte, error) {
	out := body
	var err error
	for _, f := range bodyPromptFields {
		if out, err = sjson.DeleteBytes(out, f); err != nil {
			return nil, err
		}
	}
	c := &compiler{inputs: inputs}
	msgs := joinArrays(v.Messages, []byte(gjson.GetBytes(out, "messages").Raw))
	if msgs, err = c.substitute(msgs, false); err != nil {
		return nil, err
	}
	if out, err = sjson.SetRawBytes(out, "messages", msgs); err != nil {
		return nil, err
	}
	if v.Model != "" && gjson.GetBytes(out, "model").String() == "" {
		if out, err = sjson.SetBytes(out, "model", v.Model); err != nil {
			return nil, err
		}
	}
	for _, field := range [...]string{"tools", "response_format"} {
		r := gjson.GetBytes(out, field)
		if !r.Exists() || !strings.Contains(r.Raw, "hc") {
			continue
		}
		sub, err := c.substitute([]byte(r.Raw), true)
		if err != nil {
			return nil, err
		}
		if out, err = sjson.SetRawBytes(out, field, sub); err != nil {
			return nil, err
		}
	}
	if len(c.mismatches) > 0 {
		return nil, &InvalidInputsError{Mismatches: c.mismatches}
	}
	return out, nil
}

// joinArrays concatenates two JSON arrays (either may be empty or
// absent).
func joinArrays(a, b []byte) []byte {
	ia, ib := arrayInner(a), arrayInner(b)
	out := make([]byte, 0, len(ia)+len(ib)+3)
	out = append(out, '[')
	out = append(out, ia...)
	if len(ia) > 0 && len(ib) > 0 {
		out = append(out, ',')
	}
	out = append(out, ib...)
	return append(out, ']')
}

func arrayInner(a []byte) []byte {
	a = bytes.TrimSpace(a)
	if len(a) < 2 || a[0] != '[' {
		return nil
	}
	return bytes.TrimSpace(a[1 : len(a)-1])
}

type compiler struct {
	inputs     map[string]json.RawMessage
	mismatches []TypeMismatch
}

// substitute fills the {{hc:…}} variables of doc's string values in one
// pass (inserted text is not looked at again). typed: a string that is
// only a variable becomes the input's JSON value, and a variable without
// an input is a mismatch.
func (c *compiler) substitute(doc []byte, typed bool) ([]byte, error) {
	if !json.Valid(doc) {
		return nil, errNotJSON
	}
	return rewriteStrings(doc, "{\\", func(out []byte, s string) ([]byte, bool) {
		if !strings.Contains(s, "{{") {
			return out, false
		}
		if typed {
			if name, typ, n := hcVariableAt(s); n == len(s) {
				raw, ok := c.input(name)
				if !ok {
					c.mismatches = append(c.mismatches, TypeMismatch{Variable: name, Expected: typ, Got: "undefined"})
					return out, false
				}
				if c.check(name, typ, raw) {
					return append(out, raw...), true
				}
				return out, false
			}
		}
		filled, changed := c.fill(s, typed)
		if !changed {
			return out, false
		}
		return appendJSONString(out, filled), true
	})
}

func (c *compiler) input(name string) (json.RawMessage, bool) {
	raw, ok := c.inputs[name]
	if !ok || string(raw) == "null" {
		return nil, false
	}
	return raw, true
}

// check notes a mismatch of raw against typ and reports whether it fits.
func (c *compiler) check(name, typ string, raw json.RawMessage) bool {
	if InputFits(raw, typ) {
		return true
	}
	c.mismatches = append(c.mismatches, TypeMismatch{Variable: name, Expected: typ, Got: InputText(raw)})
	return false
}

func (c *compiler) fill(s string, typed bool) (string, bool) {
	braces := newForwardIndex(s, "{{")
	return substitute(s, braces.from, func(at string) (int, string, bool) {
		name, typ, n := hcVariableAt(at)
		if n == 0 {
			return 0, "", false
		}
		raw, ok := c.input(name)
		switch {
		case !ok:
			if typed {
				c.mismatches = append(c.mismatches, TypeMismatch{Variable: name, Expected: typ, Got: "undefined"})
			}
			return n, at[:n], false
		case c.check(name, typ, raw):
			return n, InputText(raw), true
		default:
			return n, at[:n], false
		}
	})
}

// hcVariableAt parses {{hc:name:type}} at the start of s, with optional
// white space around each part; name and type are a letter, '_' or '-'
// followed by letters, digits, '_' and '-'. n is its length, 0 when s
// does not start with one.
func hcVariableAt(s string) (name, typ string, n int) {
	if !strings.HasPrefix(s, "{{") {
		return "", "", 0
	}
	i := skipHCSpace(s, 2)
	if !strings.HasPrefix(s[i:], "hc") {
		return "", "", 0
	}
	i = skipHCSpace(s, i+2)
	if i >= len(s) || s[i] != ':' {
		return "", "", 0
	}
	var ok bool
	if name, i, ok = hcIdent(s, skipHCSpace(s, i+1)); !ok {
		return "", "", 0
	}
	i = skipHCSpace(s, i)
	if i >= len(s) || s[i] != ':' {
		return "", "", 0
	}
	if typ, i, ok = hcIdent(s, skipHCSpace(s, i+1)); !ok {
		return "", "", 0
	}
	i = skipHCSpace(s, i)
	if !strings.HasPrefix(s[i:], "}}") {
		return "", "", 0
	}
	return name, typ, i + 2
}

func skipHCSpace(s string, i int) int {
	for i < len(s) && strings.IndexByte(" \t\n\r\f\v", s[i]) >= 0 {
		i++
	}
	return i
}

func hcIdent(s string, i int) (string, int, bool) {
	start := i
	for i < len(s) {
		c := s[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '-'
		if !letter && (i == start || c < '0' || c > '9') {
			break
		}
		i++
	}
	return s[start:i], i, i > start
}

// InputFits reports whether an input (JSON) fits a variable type as
// Helicone's check has it: "number" takes a number, a boolean or a string
// JavaScript's Number() reads; "boolean" a boolean or one of true, false,
// yes, no (any case); any other type takes anything.
func InputFits(raw json.RawMessage, typ string) bool {
	r := gjson.ParseBytes(raw)
	switch typ {
	case "number":
		switch r.Type {
		case gjson.Number, gjson.True, gjson.False, gjson.Null:
			return true
		case gjson.String:
			return jsNumberString(r.Str)
		}
		return false
	case "boolean":
		switch r.Type {
		case gjson.True, gjson.False:
			return true
		case gjson.String:
			switch strings.ToLower(r.Str) {
			case "true", "false", "yes", "no":
				return true
			}
		}
		return false
	}
	return true
}

// jsNumberString reports whether JavaScript's Number(s) is not NaN.
func jsNumberString(s string) bool {
	s = strings.TrimFunc(s, isJSSpace)
	if s == "" {
		return true
	}
	switch s {
	case "Infinity", "+Infinity", "-Infinity":
		return true
	}
	if len(s) > 2 && s[0] == '0' {
		base := 0
		switch s[1] {
		case 'x', 'X':
			base = 16
		case 'o', 'O':
			base = 8
		case 'b', 'B':
			base = 2
		}
		if base != 0 {
			for _, c := range s[2:] {
				if d := digitValue(c); d < 0 || d >= base {
					return false
				}
			}
			return true
		}
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
			return false // Go's parser takes "inf", "nan", '_' and hex floats; JavaScript does not
		}
	}
	_, err := strconv.ParseFloat(s, 64)
	return err == nil || errors.Is(err, strconv.ErrRange)
}

func digitValue(c rune) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
