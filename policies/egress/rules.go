package egress

import (
	"regexp"

	"go.yaml.in/yaml/v3"
)

// ruleSpec is one entry of rules as written.
type ruleSpec struct {
	name     string
	path     string
	node     *yaml.Node
	sel      selector
	selBad   bool // the match had errors: it is no catch-all, whatever is left of it
	settings settings
}

// Rule names go into messages, metrics and bucket keys: Kubernetes-style
// names keep all three readable.
var ruleName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9._]{0,61}[a-z0-9])?$`)

func (p *parser) rules(n *yaml.Node, path string) []ruleSpec {
	items := p.items(n, path)
	specs := make([]ruleSpec, 0, len(items))
	firstLine := map[string]int{}
	for i, it := range items {
		r := ruleSpec{path: indexPath(path, i), node: it}
		named := false
		fields := append([]field{
			{"name", func(v *yaml.Node, path string) {
				named = true
				name, ok := p.str(v, path)
				switch {
				case !ok:
				case !ruleName.MatchString(name):
					p.failf(v, path, "%q is not a valid name (lowercase letters, digits, '-', '.', '_'; at most 63)", clip(name))
				case firstLine[name] != 0:
					p.failf(v, path, "rule %q is already defined at line %d", name, firstLine[name])
				default:
					firstLine[name] = v.Line
					r.name = name
				}
			}},
			{"match", func(v *yaml.Node, path string) {
				errs := len(p.errs)
				p.selector(&r.sel, v, path)
				r.selBad = len(p.errs) > errs
			}},
		}, p.settingsFields(&r.settings)...)
		p.mapping(it, r.path, fields...)
		if it.Kind == yaml.MappingNode && !named {
			p.failf(it, r.path, "name is required")
		}
		specs = append(specs, r)
	}
	return specs
}

func (p *parser) selector(s *selector, n *yaml.Node, path string) {
	p.mapping(n, path,
		field{"namespaces", func(v *yaml.Node, path string) { s.namespaces = p.globs(v, path) }},
		field{"serviceAccounts", func(v *yaml.Node, path string) { s.serviceAccounts = p.globs(v, path) }},
		field{"workloads", func(v *yaml.Node, path string) { s.workloads = p.globs(v, path) }},
		field{"labels", func(v *yaml.Node, path string) { s.labels = p.labelSelectors(v, path) }},
		field{"proxyKeys", func(v *yaml.Node, path string) { s.proxyKeys = p.globs(v, path) }},
	)
}

func (p *parser) globs(n *yaml.Node, path string) []glob {
	var gs []glob
	p.eachString(n, path, func(s string, it *yaml.Node, ipath string) {
		if g, ok := p.glob(s, it, ipath); ok {
			gs = append(gs, g)
		}
	})
	return gs
}

func (p *parser) glob(s string, n *yaml.Node, path string) (glob, bool) {
	g, err := compileGlob(s)
	if err != nil {
		p.failf(n, path, "bad pattern %q: %v", clip(s), err)
		return glob{}, false
	}
	return g, true
}

func (p *parser) labelSelectors(n *yaml.Node, path string) []labelSelector {
	if !p.is(n, yaml.MappingNode, path, "a mapping of label: value") {
		return nil
	}
	var ls []labelSelector
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key, ok := p.str(k, path)
		if !ok {
			continue
		}
		if key == "" {
			p.failf(k, path, "empty label name")
			continue
		}
		vpath := joinPath(path, key)
		if seen[key] {
			p.failf(k, vpath, "repeated label")
			continue
		}
		seen[key] = true
		if val, ok := p.str(v, vpath); ok {
			if g, ok := p.glob(val, v, vpath); ok {
				ls = append(ls, labelSelector{key: key, value: g})
			}
		}
	}
	return ls
}

// compile merges each rule over the defaults, field by field, and checks
// what only the merged settings can show.
func (p *parser) compile(defaults settings, specs []ruleSpec) *Policy {
	p.checkRedact(&defaults, &defaults)
	pol := &Policy{defaults: newEffective("", &defaults)}
	catchAll := -1
	for i := range specs {
		r := &specs[i]
		merged := defaults
		merged.overlay(&r.settings)
		p.checkRedact(&merged, &r.settings)
		if catchAll >= 0 {
			p.failf(r.node, r.path, "never matches: %s (%q) has no match selectors and matches every workload",
				specs[catchAll].path, specs[catchAll].name)
			catchAll = -2 // one report is enough
		}
		if catchAll == -1 && r.sel.empty() && !r.selBad {
			catchAll = i
		}
		pol.rules = append(pol.rules, compiledRule{name: r.name, sel: r.sel, eff: newEffective(r.name, &merged)})
	}
	return pol
}
