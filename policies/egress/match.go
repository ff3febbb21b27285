package egress

import (
	"errors"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"unicode/utf8"
)

// glob is a compiled wildcard pattern in path.Match's syntax — * any
// run of characters, ? one character, [a-z] / [!a-z] a class, \ an escape —
// except that * also crosses '/', so "*" matches model names such as
// "meta-llama/Llama-3-70b". The common shapes (exact, prefix*, *suffix,
// *infix*, *) skip the regexp.
type glob struct {
	kind globKind
	lit  string
	re   *regexp.Regexp
}

type globKind uint8

const (
	globExact globKind = iota
	globAny
	globPrefix
	globSuffix
	globContains
	globRegexp
)

const globMeta = `*?[\`

func compileGlob(p string) (glob, error) {
	n := len(p)
	switch {
	case !strings.ContainsAny(p, globMeta):
		return glob{kind: globExact, lit: p}, nil
	case strings.Trim(p, "*") == "":
		return glob{kind: globAny}, nil
	case n >= 2 && p[0] == '*' && p[n-1] == '*' && !strings.ContainsAny(p[1:n-1], globMeta):
		return glob{kind: globContains, lit: p[1 : n-1]}, nil
	case p[n-1] == '*' && !strings.ContainsAny(p[:n-1], globMeta):
		return glob{kind: globPrefix, lit: p[:n-1]}, nil
	case p[0] == '*' && !strings.ContainsAny(p[1:], globMeta):
		return glob{kind: globSuffix, lit: p[1:]}, nil
	}
	expr, err := globToRegexp(p)
	if err != nil {
		return glob{}, err
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		var se *syntax.Error
		if errors.As(err, &se) && se.Code == syntax.ErrInvalidCharRange {
			return glob{}, errors.New("bad range in character class")
		}
		return glob{}, errors.New("pattern too complex")
	}
	return glob{kind: globRegexp, re: re}, nil
}

func (g *glob) match(s string) bool {
	switch g.kind {
	case globExact:
		return s == g.lit
	case globAny:
		return true
	case globPrefix:
		return strings.HasPrefix(s, g.lit)
	case globSuffix:
		return strings.HasSuffix(s, g.lit)
	case globContains:
		return strings.Contains(s, g.lit)
	}
	return g.re.MatchString(s)
}

func globToRegexp(p string) (string, error) {
	var b strings.Builder
	b.WriteString(`^(?s:`)
	for i := 0; i < len(p); {
		switch p[i] {
		case '*':
			for i < len(p) && p[i] == '*' {
				i++
			}
			b.WriteString(".*")
		case '?':
			b.WriteByte('.')
			i++
		case '[':
			class, n, err := globClass(p[i:])
			if err != nil {
				return "", err
			}
			b.WriteString(class)
			i += n
		case '\\':
			if i+1 == len(p) {
				return "", errors.New(`ends in a lone \`)
			}
			i++
			fallthrough
		default:
			r, n := utf8.DecodeRuneInString(p[i:])
			b.WriteString(regexp.QuoteMeta(string(r)))
			i += n
		}
	}
	b.WriteByte(')')
	b.WriteByte('$')
	return b.String(), nil
}

// globClass translates the class at the start of p and returns its length
// in p. Every member is written as \x{…}, so no character of the pattern
// can mean something else to the regexp.
func globClass(p string) (string, int, error) {
	var b strings.Builder
	b.WriteByte('[')
	i := 1
	if i < len(p) && (p[i] == '!' || p[i] == '^') {
		b.WriteByte('^')
		i++
	}
	first := i
	for {
		if i >= len(p) {
			return "", 0, errors.New("unclosed [")
		}
		c := p[i]
		switch {
		case c == ']' && i == first:
			return "", 0, errors.New("empty character class")
		case c == ']':
			b.WriteByte(']')
			return b.String(), i + 1, nil
		case c == '-' && i > first && i+1 < len(p) && p[i+1] != ']':
			b.WriteByte('-')
			i++
			continue
		case c == '\\':
			i++
			if i >= len(p) {
				return "", 0, errors.New("unclosed [")
			}
		}
		r, n := utf8.DecodeRuneInString(p[i:])
		b.WriteString(`\x{` + strconv.FormatInt(int64(r), 16) + `}`)
		i += n
	}
}

// globList matches when any of its patterns does.
type globList []glob

func (l globList) match(s string) bool {
	for i := range l {
		if l[i].match(s) {
			return true
		}
	}
	return false
}

// selector is a rule's match: every selector given must match; a
// list matches when any of its entries does; an absent or empty list
// matches everything.
type selector struct {
	namespaces, serviceAccounts, workloads globList
	labels                                 []labelSelector
	// proxyKeys selects calls made with these key-vault proxy keys (by
	// id, policies/vault): per-key limits and budgets.
	proxyKeys globList
}

// labelSelector requires the label to be present with a value
// matching the pattern ("*": present with any value).
type labelSelector struct {
	key   string
	value glob
}

func (s *selector) empty() bool {
	return len(s.namespaces) == 0 && len(s.serviceAccounts) == 0 && len(s.workloads) == 0 && len(s.labels) == 0 && len(s.proxyKeys) == 0
}

func (s *selector) matches(w *Workload) bool {
	if len(s.namespaces) > 0 && !s.namespaces.match(w.Namespace) ||
		len(s.serviceAccounts) > 0 && !s.serviceAccounts.match(w.ServiceAccount) ||
		len(s.workloads) > 0 && !s.workloads.match(w.Name) ||
		len(s.proxyKeys) > 0 && (w.ProxyKey == "" || !s.proxyKeys.match(w.ProxyKey)) {
		return false
	}
	for i := range s.labels {
		v, ok := w.Labels[s.labels[i].key]
		if !ok || !s.labels[i].value.match(v) {
			return false
		}
	}
	return true
}
