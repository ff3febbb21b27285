package egress

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/tollgate-dev/tollgate/helicone"
)

// maxErrors bounds the report of a badly broken file: the first
// problems are what a person fixes first.
const maxErrors = 20

// Parse parses and validates a policy file. name stands for the
// file in messages. Every problem found is reported, one per line, as
// "name:line: field.path: problem". An empty file is a policy that allows
// everything.
func Parse(name string, data []byte) (*Policy, error) {
	root, err := yamlDocument(data)
	if err != nil {
		return nil, yamlError(name, data, err)
	}
	p := &parser{file: name}
	var defaults settings
	var rules []ruleSpec
	if root != nil && !isNull(root) {
		p.mapping(root, "",
			field{"defaults", func(v *yaml.Node, path string) {
				p.mapping(v, path, p.settingsFields(&defaults)...)
			}},
			field{"rules", func(v *yaml.Node, path string) { rules = p.rules(v, path) }},
		)
	}
	pol := p.compile(defaults, rules)
	if err := p.err(); err != nil {
		return nil, err
	}
	pol.name = name
	return pol, nil
}

// yamlDocument returns the root node of the only document in data, or
// nil for an empty file.
func yamlDocument(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, nil
		}
		return nil, err
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == io.EOF:
	case err != nil:
		return nil, err
	default:
		return nil, fmt.Errorf("yaml: line %d: a second document; the policy is one YAML document", next.Line)
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		return doc.Content[0], nil
	}
	return nil, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// yamlError puts the file name in front of the YAML library's error,
// in the same file:line form as every other error. The library leaves the
// line out when it is the first one; parsing the text again one line lower
// recovers it. A few errors (an unknown anchor, a control character) carry
// no position at all and are reported without a line.
func yamlError(file string, data []byte, err error) error {
	msg := err.Error()
	line := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	} else if _, err2 := yamlDocument(append([]byte("\n"), data...)); err2 != nil {
		if m := yamlLine.FindStringSubmatch(err2.Error()); m != nil && err2.Error()[len(m[0]):] == strings.TrimPrefix(msg, "yaml: ") {
			line, _ = strconv.Atoi(m[1])
			line--
		}
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	if line <= 0 {
		return fmt.Errorf("%s: invalid YAML: %s", file, msg)
	}
	return fmt.Errorf("%s:%d: invalid YAML: %s", file, line, msg)
}

// parser walks the YAML tree by hand, not through struct tags, so
// that every error knows its line and field path.
type parser struct {
	file string
	errs []parseError
}

type parseError struct {
	line       int
	path, text string
}

func (p *parser) failf(n *yaml.Node, path, format string, args ...any) {
	p.errs = append(p.errs, parseError{n.Line, path, fmt.Sprintf(format, args...)})
}

func (p *parser) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(p.errs, func(a, b parseError) int { return a.line - b.line })
	var errs []error
	for i, e := range p.errs {
		if i == maxErrors {
			errs = append(errs, fmt.Errorf("%s: %d more errors", p.file, len(p.errs)-i))
			break
		}
		where := p.file + ":" + strconv.Itoa(e.line) + ": "
		if e.path != "" {
			where += e.path + ": "
		}
		errs = append(errs, errors.New(where+e.text))
	}
	return errors.Join(errs...)
}

// field is one known key of a mapping and what to do with its value.
type field struct {
	key   string
	parse func(v *yaml.Node, path string)
}

// mapping checks that n is a mapping of known keys, each given once, and
// parses each value. A null value counts as not given.
func (p *parser) mapping(n *yaml.Node, path string, fields ...field) {
	if !p.is(n, yaml.MappingNode, path, "a mapping") {
		return
	}
	seen := make([]int, len(fields)) // line of each key, 0 = not seen
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.failf(k, path, "want a plain key, got %s", describe(k))
			continue
		}
		kpath := joinPath(path, k.Value)
		j := slices.IndexFunc(fields, func(f field) bool { return f.key == k.Value })
		switch {
		case j < 0:
			p.failf(k, kpath, "unknown key (want %s)", knownKeys(fields))
		case seen[j] != 0:
			p.failf(k, kpath, "repeated key (first at line %d)", seen[j])
		default:
			seen[j] = k.Line
			if !isNull(v) {
				fields[j].parse(v, kpath)
			}
		}
	}
}

// items returns the entries of a list.
func (p *parser) items(n *yaml.Node, path string) []*yaml.Node {
	if !p.is(n, yaml.SequenceNode, path, "a list") {
		return nil
	}
	return n.Content
}

func (p *parser) str(n *yaml.Node, path string) (string, bool) {
	if !p.is(n, yaml.ScalarNode, path, "a string") {
		return "", false
	}
	if n.ShortTag() != "!!str" {
		p.failf(n, path, "want a string, got %s (quote it)", describe(n))
		return "", false
	}
	return n.Value, true
}

// eachString calls fn for each string of a list, with its path; entries
// that are not strings are reported.
func (p *parser) eachString(n *yaml.Node, path string, fn func(s string, it *yaml.Node, ipath string)) {
	for i, it := range p.items(n, path) {
		ipath := indexPath(path, i)
		if s, ok := p.str(it, ipath); ok {
			fn(s, it, ipath)
		}
	}
}

func (p *parser) boolean(n *yaml.Node, path string) (bool, bool) {
	var b bool
	if !p.is(n, yaml.ScalarNode, path, "true or false") {
		return false, false
	}
	if n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
		p.failf(n, path, "want true or false, got %s", describe(n))
		return false, false
	}
	return b, true
}

func (p *parser) integer(n *yaml.Node, path string, lo, hi int) (int, bool) {
	var i int
	if !p.is(n, yaml.ScalarNode, path, "a whole number") {
		return 0, false
	}
	if n.ShortTag() != "!!int" || n.Decode(&i) != nil || i < lo || i > hi {
		p.failf(n, path, "want a whole number from %d to %d, got %s", lo, hi, describe(n))
		return 0, false
	}
	return i, true
}

// is checks n's kind. Aliases are refused rather than followed: following
// them would let a small file expand into an enormous walk.
func (p *parser) is(n *yaml.Node, kind yaml.Kind, path, want string) bool {
	switch {
	case n.Kind == yaml.AliasNode:
		p.failf(n, path, "YAML aliases (*%s) are not supported; write the value out", n.Value)
		return false
	case n.Kind != kind:
		p.failf(n, path, "want %s, got %s", want, describe(n))
		return false
	}
	return true
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return strconv.Quote(clip(n.Value))
		case "!!null":
			return "null"
		case "!!int", "!!float":
			return "the number " + clip(n.Value)
		case "!!bool":
			return "the boolean " + n.Value
		}
		return n.ShortTag() + " " + strconv.Quote(clip(n.Value))
	}
	return "nothing"
}

func knownKeys(fields []field) string {
	keys := make([]string, len(fields))
	for i, f := range fields {
		keys[i] = f.key
	}
	if len(keys) == 1 {
		return keys[0]
	}
	return strings.Join(keys[:len(keys)-1], ", ") + " or " + keys[len(keys)-1]
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func indexPath(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// clip shortens a value from the file for an error message.
func clip(s string) string { return helicone.Truncate(s, 64) }
