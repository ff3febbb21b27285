package egress

import (
	"net/url"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/tollgate-dev/tollgate/helicone"
	"github.com/tollgate-dev/tollgate/provider"
)

// knownProvider says whether name is a provider a call is checked as: the
// formats' (openai, anthropic) and the providers routed by path (gemini,
// together, groq and those configured: provider.Registered). A name
// outside them in a policy is a typo that would silently deny, so it is
// refused. Azure OpenAI calls are checked as openai, so azure is not one.
func knownProvider(name string) bool {
	return name != provider.Azure && provider.Known(name)
}

// knownProviders lists them, for the error that refuses another name.
func knownProviders() string {
	var out []string
	for _, n := range provider.KnownNames() {
		if knownProvider(n) {
			out = append(out, n)
		}
	}
	return strings.Join(out, ", ")
}

// Each allow list keeps its entries as written, for the 403 message, and
// any: the list allows everything ("*", or the file never gave it).

type providerList struct {
	any     bool
	names   []string
	written []string
}

func (l *providerList) allows(p string) bool {
	if l.any {
		return true
	}
	for _, n := range l.names {
		if strings.EqualFold(n, p) {
			return true
		}
	}
	return false
}

func (p *parser) providers(n *yaml.Node, path string) providerList {
	l := providerList{written: []string{}}
	p.eachString(n, path, func(s string, it *yaml.Node, ipath string) {
		name := strings.ToLower(strings.TrimSpace(s))
		switch {
		case name == "*":
			l.any = true
		case !knownProvider(name):
			p.failf(it, ipath, "unknown provider %q (want %s or \"*\")", clip(s), knownProviders())
			return
		default:
			l.names = append(l.names, name)
		}
		l.written = append(l.written, s)
	})
	return l
}

// modelList matches model names case-insensitively. A pattern matches the
// model as sent or, for a dated snapshot, its base name; a pattern that
// begins with a provider name and '/' ("anthropic/*") also matches that
// provider's models by their bare name.
type modelList struct {
	any      bool
	patterns []modelPattern
	written  []string
}

type modelPattern struct {
	whole    glob
	provider string // "" unless the pattern starts with "<provider>/"
	rest     glob   // the pattern after "<provider>/"
}

func (m *modelPattern) match(provider, model string) bool {
	return m.whole.match(model) || m.provider != "" && m.provider == provider && m.rest.match(model)
}

func (l *modelList) allows(prov, model string) bool {
	if l.any {
		return true
	}
	model = strings.ToLower(model) // no allocation for the usual lowercase name
	prov = strings.ToLower(prov)
	// Allowing a model allows its dated snapshots.
	base := provider.StripVersion(model)
	for i := range l.patterns {
		if l.patterns[i].match(prov, model) || base != model && l.patterns[i].match(prov, base) {
			return true
		}
	}
	return false
}

func (p *parser) models(n *yaml.Node, path string) modelList {
	l := modelList{written: []string{}}
	p.eachString(n, path, func(s string, it *yaml.Node, ipath string) {
		lower := strings.ToLower(strings.TrimSpace(s))
		whole, err := compileGlob(lower)
		if err != nil {
			p.failf(it, ipath, "bad pattern %q: %v", clip(s), err)
			return
		}
		l.written = append(l.written, s)
		if whole.kind == globAny {
			l.any = true
			return
		}
		mp := modelPattern{whole: whole}
		if prov, rest, ok := strings.Cut(lower, "/"); ok && knownProvider(prov) {
			mp.provider = prov
			mp.rest, _ = compileGlob(rest) // a part of a valid pattern is valid
		}
		l.patterns = append(l.patterns, mp)
	})
	return l
}

// originList holds normalized origins (scheme://host[:port], lowercase,
// default port dropped) and wildcard ones, "https://*.example.com", which
// match any subdomain. "*" (any) covers what it covers in
// --allowed-target-origins: public https:// origins only
// (helicone.WildcardRefusal); an http:// or internal origin must be listed.
// open is a list the file never gives: it narrows nothing.
type originList struct {
	open    bool
	any     bool
	exact   []string
	wild    []originWildcard
	written []string
}

type originWildcard struct{ scheme, suffix string } // "https://", ".example.com"

func (l *originList) allows(origin string) bool {
	if l.open {
		return true
	}
	o := normalizeOrigin(origin)
	if slices.Contains(l.exact, o) {
		return true
	}
	for _, w := range l.wild {
		if strings.HasPrefix(o, w.scheme) && strings.HasSuffix(o, w.suffix) && len(o) > len(w.scheme)+len(w.suffix) &&
			!strings.ContainsAny(o[len(w.scheme):len(o)-len(w.suffix)], "/?#@:") {
			return true
		}
	}
	return l.any && helicone.WildcardRefusal(o) == ""
}

// refusal says why "*" in the list does not cover origin, "" when the list
// has no "*" or "*" covers it.
func (l *originList) refusal(origin string) string {
	if !l.any || l.open {
		return ""
	}
	return helicone.WildcardRefusal(normalizeOrigin(origin))
}

// normalizeOrigin puts an origin in the form the list keeps; it allocates
// only for an origin with upper-case letters.
func normalizeOrigin(o string) string {
	o = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(o)), "/")
	if strings.HasPrefix(o, "https://") {
		return strings.TrimSuffix(o, ":443")
	}
	if strings.HasPrefix(o, "http://") {
		return strings.TrimSuffix(o, ":80")
	}
	return o
}

func (p *parser) origins(n *yaml.Node, path string) originList {
	l := originList{written: []string{}}
	p.eachString(n, path, func(s string, it *yaml.Node, ipath string) {
		if strings.TrimSpace(s) == "*" {
			l.any = true
			l.written = append(l.written, s)
			return
		}
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.User != nil ||
			u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
			p.failf(it, ipath, "want an origin such as https://api.example.com (scheme and host, no path), got %q", clip(s))
			return
		}
		o := normalizeOrigin(u.Scheme + "://" + u.Host)
		host := o[len(u.Scheme)+3:]
		switch {
		case strings.HasPrefix(host, "*.") && !strings.Contains(host[1:], "*"):
			l.wild = append(l.wild, originWildcard{scheme: u.Scheme + "://", suffix: host[1:]})
		case strings.Contains(host, "*"):
			p.failf(it, ipath, "a wildcard origin takes the form https://*.example.com, got %q", clip(s))
			return
		default:
			l.exact = append(l.exact, o)
		}
		l.written = append(l.written, s)
	})
	return l
}
