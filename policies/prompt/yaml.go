package policies

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// promptYAMLError is a YAML value that has no JSON form, at a line.
type promptYAMLError struct {
	line    int
	problem string
}

func (e *promptYAMLError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.problem) }

// promptYAMLToJSON converts a YAML node to compact JSON, keeping the key order
// of mappings (a template's messages should reach the model as written).
func promptYAMLToJSON(n *yaml.Node) (json.RawMessage, error) {
	var buf bytes.Buffer
	if err := writePromptYAMLAsJSON(&buf, n, 0); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// maxPromptYAMLDepth stops alias loops and absurd nesting.
const maxPromptYAMLDepth = 64

func writePromptYAMLAsJSON(buf *bytes.Buffer, n *yaml.Node, depth int) error {
	if depth > maxPromptYAMLDepth {
		return &promptYAMLError{n.Line, "nested too deeply"}
	}
	switch n.Kind {
	case yaml.AliasNode:
		return writePromptYAMLAsJSON(buf, n.Alias, depth+1)
	case yaml.DocumentNode:
		if len(n.Content) != 1 {
			return &promptYAMLError{n.Line, "want one value"}
		}
		return writePromptYAMLAsJSON(buf, n.Content[0], depth+1)
	case yaml.MappingNode:
		buf.WriteByte('{')
		seen := make(map[string]int, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
				if n.Style&yaml.FlowStyle != 0 {
					// content: {{name}} is a YAML mapping, not text.
					return &promptYAMLError{k.Line, `a mapping key that is not a string; quote text with placeholders, as in content: "{{name}}"`}
				}
				return &promptYAMLError{k.Line, "keys must be plain strings"}
			}
			if line, dup := seen[k.Value]; dup {
				return &promptYAMLError{k.Line, fmt.Sprintf("key %q is already defined at line %d", k.Value, line)}
			}
			seen[k.Value] = k.Line
			if i > 0 {
				buf.WriteByte(',')
			}
			writePromptJSONString(buf, k.Value)
			buf.WriteByte(':')
			if err := writePromptYAMLAsJSON(buf, n.Content[i+1], depth+1); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case yaml.SequenceNode:
		buf.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writePromptYAMLAsJSON(buf, c, depth+1); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case yaml.ScalarNode:
		return writePromptYAMLScalar(buf, n)
	default:
		return &promptYAMLError{n.Line, "unsupported YAML node"}
	}
	return nil
}

func writePromptYAMLScalar(buf *bytes.Buffer, n *yaml.Node) error {
	switch n.ShortTag() {
	case "!!null":
		buf.WriteString("null")
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return &promptYAMLError{n.Line, err.Error()}
		}
		buf.WriteString(fmt.Sprint(b))
	case "!!int", "!!float":
		var v any
		if err := n.Decode(&v); err != nil {
			return &promptYAMLError{n.Line, err.Error()}
		}
		if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			return &promptYAMLError{n.Line, fmt.Sprintf("%s has no JSON form; quote it to mean the text", n.Value)}
		}
		b, err := json.Marshal(v)
		if err != nil {
			return &promptYAMLError{n.Line, err.Error()}
		}
		buf.Write(b)
	default:
		// Strings, and timestamps or binary kept as the text written.
		writePromptJSONString(buf, n.Value)
	}
	return nil
}

func writePromptJSONString(buf *bytes.Buffer, s string) {
	buf.Write(appendPromptJSONString(buf.AvailableBuffer(), s))
}

// promptYAMLLineError matches yaml's own syntax errors, "yaml: line 3: …".
var promptYAMLLineError = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)

// promptYAMLParserProblems are the problems yaml's parser (as opposed to its
// scanner) reports, with a hint. For those the library prints a 0-based
// line: that of the enclosing block when it knows one, else of the
// problem.
var promptYAMLParserProblems = map[string]string{
	"did not find expected '-' indicator":    " in a list (check the indentation from this line on)",
	"did not find expected key":              " in a mapping (check the indentation from this line on)",
	"did not find expected ',' or ']'":       " (a [ list is not closed)",
	"did not find expected ',' or '}'":       ` (a { mapping is not closed; quote text with placeholders, as in content: "{{name}}")`,
	"did not find expected node content":     "",
	"found undefined tag handle":             "",
	"did not find expected <document start>": "",
	"found duplicate %YAML directive":        "",
	"found incompatible YAML document":       "",
	"found duplicate %TAG directive":         "",
}

// promptYAMLSyntaxError turns an error of yaml's parser into a PromptFileError
// with the file's line.
func promptYAMLSyntaxError(path string, err error) error {
	m := promptYAMLLineError.FindStringSubmatch(err.Error())
	if m == nil {
		return &PromptFileError{File: path, Problem: err.Error()}
	}
	line, _ := strconv.Atoi(m[1])
	problem := m[2]
	if hint, ok := promptYAMLParserProblems[problem]; ok {
		line++
		problem += hint
	}
	return &PromptFileError{File: path, Line: line, Problem: problem}
}

// promptYAMLDeref follows aliases (&anchor / *alias) to the node they
// name.
func promptYAMLDeref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// promptYAMLDuplicateKey returns the second occurrence of a repeated key of a
// mapping, nil when keys are distinct.
func promptYAMLDuplicateKey(m *yaml.Node) *yaml.Node {
	seen := make(map[string]bool, len(m.Content)/2)
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := m.Content[i]
		if seen[k.Value] {
			return k
		}
		seen[k.Value] = true
	}
	return nil
}
