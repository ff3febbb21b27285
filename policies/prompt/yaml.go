package prompt

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// yamlError is a YAML value that has no JSON form, at a line.
type yamlError struct {
	line    int
	problem string
}

func (e *yamlError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.problem) }

// yamlToJSON converts a YAML node to compact JSON, keeping the key order
// of mappings (a template's messages should reach the model as written).
func yamlToJSON(n *yaml.Node) (json.RawMessage, error) {
	var buf bytes.Buffer
	if err := writeYAMLAsJSON(&buf, n, 0); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// maxYAMLDepth stops alias loops and absurd nesting.
const maxYAMLDepth = 64

func writeYAMLAsJSON(buf *bytes.Buffer, n *yaml.Node, depth int) error {
	if depth > maxYAMLDepth {
		return &yamlError{n.Line, "nested too deeply"}
	}
	switch n.Kind {
	case yaml.AliasNode:
		return writeYAMLAsJSON(buf, n.Alias, depth+1)
	case yaml.DocumentNode:
		if len(n.Content) != 1 {
			return &yamlError{n.Line, "want one value"}
		}
		return writeYAMLAsJSON(buf, n.Content[0], depth+1)
	case yaml.MappingNode:
		buf.WriteByte('{')
		seen := make(map[string]int, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
				if n.Style&yaml.FlowStyle != 0 {
					// content: {{name}} is a YAML mapping, not text.
					return &yamlError{k.Line, `a mapping key that is not a string; quote text with placeholders, as in content: "{{name}}"`}
				}
				return &yamlError{k.Line, "keys must be plain strings"}
			}
			if line, dup := seen[k.Value]; dup {
				return &yamlError{k.Line, fmt.Sprintf("key %q is already defined at line %d", k.Value, line)}
			}
			seen[k.Value] = k.Line
			if i > 0 {
				buf.WriteByte(',')
			}
			writeJSONString(buf, k.Value)
			buf.WriteByte(':')
			if err := writeYAMLAsJSON(buf, n.Content[i+1], depth+1); err != nil {
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
			if err := writeYAMLAsJSON(buf, c, depth+1); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case yaml.ScalarNode:
		return writeYAMLScalar(buf, n)
	default:
		return &yamlError{n.Line, "unsupported YAML node"}
	}
	return nil
}

func writeYAMLScalar(buf *bytes.Buffer, n *yaml.Node) error {
	switch n.ShortTag() {
	case "!!null":
		buf.WriteString("null")
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return &yamlError{n.Line, err.Error()}
		}
		buf.WriteString(fmt.Sprint(b))
	case "!!int", "!!float":
		var v any
		if err := n.Decode(&v); err != nil {
			return &yamlError{n.Line, err.Error()}
		}
		if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			return &yamlError{n.Line, fmt.Sprintf("%s has no JSON form; quote it to mean the text", n.Value)}
		}
		b, err := json.Marshal(v)
		if err != nil {
			return &yamlError{n.Line, err.Error()}
		}
		buf.Write(b)
	default:
		// Strings, and timestamps or binary kept as the text written.
		writeJSONString(buf, n.Value)
	}
	return nil
}

func writeJSONString(buf *bytes.Buffer, s string) {
	buf.Write(appendJSONString(buf.AvailableBuffer(), s))
}

// yamlLineError matches yaml's own syntax errors, "yaml: line 3: …".
var yamlLineError = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)

// yamlParserProblems are the problems yaml's parser (as opposed to its
// scanner) reports, with a hint. For those the library prints a 0-based
// line: that of the enclosing block when it knows one, else of the
// problem.
var yamlParserProblems = map[string]string{
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

// yamlSyntaxError turns an error of yaml's parser into a FileError
// with the file's line.
func yamlSyntaxError(path string, err error) error {
	m := yamlLineError.FindStringSubmatch(err.Error())
	if m == nil {
		return &FileError{File: path, Problem: err.Error()}
	}
	line, _ := strconv.Atoi(m[1])
	problem := m[2]
	if hint, ok := yamlParserProblems[problem]; ok {
		line++
		problem += hint
	}
	return &FileError{File: path, Line: line, Problem: problem}
}

// yamlDeref follows aliases (&anchor / *alias) to the node they
// name.
func yamlDeref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// yamlDuplicateKey returns the second occurrence of a repeated key of a
// mapping, nil when keys are distinct.
func yamlDuplicateKey(m *yaml.Node) *yaml.Node {
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
