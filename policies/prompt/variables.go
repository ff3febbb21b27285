package prompt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/tollgate-dev/tollgate/helicone"
)

// ParseVariables reads a Helicone-Prompt-Variables value: a JSON
// object. String values are their text; numbers, booleans and null their
// JSON text; objects and arrays their compact JSON. An empty value means
// no variables. Anything else is a *helicone.BadHeaderError.
func ParseVariables(variablesJSON []byte) (map[string]string, error) {
	raw := bytes.TrimSpace(variablesJSON)
	if len(raw) == 0 {
		return map[string]string{}, nil
	}
	if raw[0] != '{' || !json.Valid(raw) {
		return nil, &helicone.BadHeaderError{Header: helicone.Canonical(helicone.PromptVariables), Reason: `must be a JSON object such as {"name": "value"}`}
	}
	// A walk over the validated object: encoding/json's reflection costs
	// several times more on the request path.
	vars := make(map[string]string)
	for i := skipSpace(raw, 1); raw[i] != '}'; {
		end := stringEnd(raw, i)
		key, err := unquoteString(raw[i:end])
		if err != nil {
			return nil, &helicone.BadHeaderError{Header: helicone.Canonical(helicone.PromptVariables), Reason: "has an unreadable name"}
		}
		i = skipSpace(raw, skipSpace(raw, end)+1) // past the colon
		end = valueEnd(raw, i)
		val := raw[i:end]
		if val[0] == '"' {
			s, err := unquoteString(val)
			if err != nil {
				return nil, &helicone.BadHeaderError{Header: helicone.Canonical(helicone.PromptVariables), Reason: "has an unreadable value for " + strconv.Quote(key)}
			}
			vars[key] = s
		} else {
			vars[key] = string(compactJSON(val))
		}
		i = skipSpace(raw, end)
		if raw[i] == ',' {
			i = skipSpace(raw, i+1)
		}
	}
	return vars, nil
}

// ErrVariableMissing: the template has a placeholder the variables
// do not set (a *VariableMissingError).
var ErrVariableMissing = errors.New("prompt variable missing")

// VariableMissingError names the variables a template needs and the
// request did not send.
type VariableMissingError struct {
	PromptID string
	Version  int
	Names    []string // in order of first use in the template
}

func (e *VariableMissingError) Error() string {
	quoted := make([]string, len(e.Names))
	for i, n := range e.Names {
		quoted[i] = strconv.Quote(n)
	}
	what := "variable " + quoted[0] + " is"
	if len(quoted) > 1 {
		what = "variables " + strings.Join(quoted, ", ") + " are"
	}
	return fmt.Sprintf("prompt %q version %d: %s missing from Helicone-Prompt-Variables", e.PromptID, e.Version, what)
}

func (e *VariableMissingError) Is(target error) bool { return target == ErrVariableMissing }

// Status is the HTTP status to answer with.
func (e *VariableMissingError) Status() int { return 400 }
