package inject

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// applyPatch applies add and replace operations to decoded JSON (objects as
// map[string]any, arrays as []any), each path taken below prefix. It is the
// CLI's way to the same result the webhook's patch gives in the cluster.
func applyPatch(doc any, prefix string, ops []Operation) (any, error) {
	for _, op := range ops {
		if op.Op != "add" && op.Op != "replace" {
			return nil, fmt.Errorf("patch: unsupported operation %q", op.Op)
		}
		value, err := toJSONValue(op.Value)
		if err != nil {
			return nil, err
		}
		path := prefix + op.Path
		if !strings.HasPrefix(path, "/") {
			return nil, fmt.Errorf("patch: path %q does not start with /", path)
		}
		tokens := strings.Split(path[1:], "/")
		for i, t := range tokens {
			tokens[i] = strings.NewReplacer("~1", "/", "~0", "~").Replace(t)
		}
		if doc, err = setAt(doc, tokens, value, op.Op == "replace"); err != nil {
			return nil, fmt.Errorf("patch: %s %s: %w", op.Op, path, err)
		}
	}
	return doc, nil
}

// setAt returns node with value placed at tokens: arrays grow by inserting
// (or appending at "-"), objects gain or replace a member.
func setAt(node any, tokens []string, value any, replace bool) (any, error) {
	tok, last := tokens[0], len(tokens) == 1
	switch n := node.(type) {
	case map[string]any:
		if last {
			if _, ok := n[tok]; replace && !ok {
				return nil, fmt.Errorf("no member %q to replace", tok)
			}
			n[tok] = value
			return n, nil
		}
		child, ok := n[tok]
		if !ok {
			return nil, fmt.Errorf("no member %q", tok)
		}
		child, err := setAt(child, tokens[1:], value, replace)
		n[tok] = child
		return n, err
	case []any:
		if last && tok == "-" && !replace {
			return append(n, value), nil
		}
		i, err := strconv.Atoi(tok)
		limit := len(n) - 1
		if last && !replace {
			limit = len(n) // adding may insert after the last item
		}
		if err != nil || i < 0 || i > limit {
			return nil, fmt.Errorf("index %q out of range (%d items)", tok, len(n))
		}
		switch {
		case last && replace:
			n[i] = value
			return n, nil
		case last:
			return append(n[:i], append([]any{value}, n[i:]...)...), nil
		}
		child, err := setAt(n[i], tokens[1:], value, replace)
		n[i] = child
		return n, err
	}
	return nil, fmt.Errorf("%q: parent is neither an object nor an array", tok)
}

// toJSONValue turns a Go value into the generic form decodeJSON produces.
func toJSONValue(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return decodeJSON(b)
}

// decodeJSON keeps numbers as written (json.Number), so an unchanged field
// comes back out exactly.
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}
