package alerts

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// LoadFile reads the alert rules of a YAML file (see ParseRules). The
// rules are read-only through the API.
func LoadFile(path string) ([]Rule, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("alert rules: %w", err)
	}
	return ParseRules(path, data)
}

// ParseRules parses a rules file; name stands for it in messages and in
// each rule's File. The format:
//
//	rules:
//	  - id: spend              # required, unique: letters, digits, . _ -
//	    name: Daily spend      # default: the id
//	    metric: cost_usd       # cost_usd | error_rate | latency_p95_ms
//	    threshold: 50          # fires when the value exceeds it
//	    window: 1d             # 1m to 7d
//	    scope:                 # optional
//	      model: gpt-4o
//	      user: alice
//	      property: {name: env, value: prod}
//	    webhook_url: https://hooks.example.com/tollgate
//	    cooldown: 2h           # default 1h
//	    enabled: true          # default true
//
// Every problem is reported, one per line, as "name:line: rules[i].field:
// problem". An empty file has no rules.
func ParseRules(name string, data []byte) ([]Rule, error) {
	root, err := yamlDocument(data)
	if err != nil {
		return nil, yamlSyntaxError(name, err)
	}
	p := &fileParser{file: name}
	var rules []Rule
	if root != nil && root.ShortTag() != "!!null" {
		p.keys(root, "", "rules")
		for i := 0; i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value == "rules" {
				rules = p.rules(root.Content[i+1])
			}
		}
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return rules, nil
}

// yamlDocument returns the root node of the only document, nil if empty.
func yamlDocument(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, err
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("yaml: line %d: a second document; the rules are one YAML document", next.Line)
	}
	if len(doc.Content) == 1 {
		return doc.Content[0], nil
	}
	return nil, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// yamlBlockProblems are errors of the YAML parser (not its scanner), for
// which the library counts lines from 0 and names the line of the
// enclosing block rather than of the mistake.
var yamlBlockProblems = map[string]string{
	"did not find expected '-' indicator": " in a list (check the indentation from this line on)",
	"did not find expected key":           " in a mapping (check the indentation from this line on)",
}

// yamlSyntaxError puts the file name (and line, when the library gives
// one) in front of a YAML syntax error.
func yamlSyntaxError(file string, err error) error {
	msg := err.Error()
	m := yamlLine.FindStringSubmatch(msg)
	if m == nil {
		return fmt.Errorf("%s: invalid YAML: %s", file, strings.TrimPrefix(msg, "yaml: "))
	}
	line, _ := strconv.Atoi(m[1])
	problem := msg[len(m[0]):]
	if hint, ok := yamlBlockProblems[problem]; ok {
		line++
		problem += hint
	}
	return fmt.Errorf("%s:%d: invalid YAML: %s", file, line, problem)
}

// fileParser walks the YAML tree by hand so that each problem knows its
// line.
type fileParser struct {
	file string
	errs []lineError
}

type lineError struct {
	line int
	text string
}

func (p *fileParser) fail(n *yaml.Node, path, why string) {
	p.errs = append(p.errs, lineError{n.Line, path + ": " + why})
}

func (p *fileParser) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(p.errs, func(a, b lineError) int { return a.line - b.line })
	errs := make([]error, len(p.errs))
	for i, e := range p.errs {
		errs[i] = fmt.Errorf("%s:%d: %s", p.file, e.line, e.text)
	}
	return errors.Join(errs...)
}

// keys checks that n is a mapping of known keys, each given once; false
// if it is no mapping at all.
func (p *fileParser) keys(n *yaml.Node, path string, known ...string) bool {
	where := strings.TrimSuffix(path, ".")
	if n.Kind != yaml.MappingNode {
		if where == "" {
			where = "file"
		}
		p.fail(n, where, "want a mapping")
		return false
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		switch {
		case !slices.Contains(known, k.Value):
			p.fail(k, path+k.Value, "unknown key (want "+strings.Join(known, ", ")+")")
		case seen[k.Value] != 0:
			p.fail(k, path+k.Value, "repeated key (first at line "+strconv.Itoa(seen[k.Value])+")")
		default:
			seen[k.Value] = k.Line
		}
	}
	return true
}

func (p *fileParser) rules(n *yaml.Node) []Rule {
	if n.ShortTag() == "!!null" {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.fail(n, "rules", "want a list of rules")
		return nil
	}
	var out []Rule
	firstID := map[string]int{}
	for i, item := range n.Content {
		path := "rules[" + strconv.Itoa(i) + "]"
		before := len(p.errs)
		r := p.rule(item, path)
		if r.ID != "" {
			if line, dup := firstID[r.ID]; dup {
				p.fail(item, path+".id", fmt.Sprintf("%q is already the id of the rule at line %d", r.ID, line))
			} else {
				firstID[r.ID] = item.Line
			}
		}
		if len(p.errs) == before {
			out = append(out, r)
		}
	}
	return out
}

// rule reads one rule. lines maps each field to its value's node, so that
// the problems the shared checks find point at the right line.
func (p *fileParser) rule(n *yaml.Node, path string) Rule {
	if !p.keys(n, path+".", fieldOrder...) {
		return Rule{}
	}
	var s ruleSpec
	lines := map[string]*yaml.Node{"": n}
	// failed are the fields already reported: the shared checks would only
	// repeat them.
	failed := map[string]bool{}
	ok := func(field string, good bool) {
		if !good {
			failed[field] = true
		}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, v := n.Content[i].Value, n.Content[i+1]
		lines[key] = v
		if v.ShortTag() == "!!null" {
			continue
		}
		switch key {
		case "id":
			ok(key, p.text(v, path+".id", &s.ID))
		case "name":
			ok(key, p.text(v, path+".name", &s.Name))
		case "metric":
			ok(key, p.text(v, path+".metric", &s.Metric))
		case "webhook_url":
			ok(key, p.text(v, path+".webhook_url", &s.WebhookURL))
		case "window", "cooldown":
			var d string
			ok(key, p.text(v, path+"."+key, &d))
			if key == "window" {
				s.Window = &d
			} else {
				s.Cooldown = &d
			}
		case "threshold":
			var f float64
			if (v.ShortTag() != "!!int" && v.ShortTag() != "!!float") || v.Decode(&f) != nil {
				p.fail(v, path+".threshold", "want a number")
				ok(key, false)
			}
			s.Threshold = &f
		case "enabled":
			var b bool
			if v.ShortTag() != "!!bool" || v.Decode(&b) != nil {
				p.fail(v, path+".enabled", "want true or false")
				ok(key, false)
			}
			s.Enabled = &b
		case "scope":
			ok(key, p.scope(v, path+".scope", &s, lines))
		}
	}
	r, problems := s.rule()
	if s.ID == "" && !failed["id"] {
		problems = append([]FieldError{{"id", "is required"}}, problems...)
	}
	for _, pr := range problems {
		if failed[pr.Field] || failed[strings.SplitN(pr.Field, ".", 2)[0]] {
			continue
		}
		at := n
		for f := pr.Field; f != ""; f = f[:max(strings.LastIndexByte(f, '.'), 0)] {
			if v, ok := lines[f]; ok {
				at = v
				break
			}
		}
		p.fail(at, path+"."+pr.Field, pr.Reason)
	}
	r.File = p.file
	return r
}

func (p *fileParser) scope(n *yaml.Node, path string, s *ruleSpec, lines map[string]*yaml.Node) bool {
	if !p.keys(n, path+".", "model", "user", "property") {
		return false
	}
	before := len(p.errs)
	ok := true
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, v := n.Content[i].Value, n.Content[i+1]
		lines["scope."+key] = v
		if v.ShortTag() == "!!null" {
			continue
		}
		switch key {
		case "model":
			ok = p.text(v, path+".model", &s.Model) && ok
		case "user":
			ok = p.text(v, path+".user", &s.User) && ok
		case "property":
			if !p.keys(v, path+".property.", "name", "value") {
				continue
			}
			var prop Property
			for j := 0; j+1 < len(v.Content); j += 2 {
				pk, pv := v.Content[j].Value, v.Content[j+1]
				lines["scope.property."+pk] = pv
				dst := &prop.Name
				if pk == "value" {
					dst = &prop.Value
				}
				if pv.ShortTag() != "!!null" {
					ok = p.text(pv, path+".property."+pk, dst) && ok
				}
			}
			s.Property = &prop
		}
	}
	return ok && len(p.errs) == before
}

// text reads a scalar as the text written: "value: 2024" is the string
// 2024, as a property value would be.
func (p *fileParser) text(n *yaml.Node, path string, dst *string) bool {
	if n.Kind != yaml.ScalarNode {
		p.fail(n, path, "want a string")
		return false
	}
	*dst = n.Value
	return true
}
