package provider

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// Upstream is a provider Tollgate routes to by path, besides OpenAI and
// Anthropic (whose paths are the defaults) and Azure (reached through a
// configured origin): Google's Gemini API, and every OpenAI-compatible
// provider. This one list is what the data planes route by (the dev data
// plane's routes; envoy/ has a route and two clusters per built-in entry,
// checked against Builtins by its tests), what the processor names in a
// record's provider, what the egress policy accepts in its provider lists,
// and what price sections are read under (prices.yaml, --prices-file).
type Upstream struct {
	// Name is the provider's name in records, prices and policies:
	// lowercase letters, digits, '-' and '_'.
	Name string
	// Origin is where calls go: scheme://host[:port].
	Origin string
	// Prefix is the provider's own API path prefix ("/v1", Groq's
	// "/openai/v1"); an OpenAI path under it is read as OpenAI's
	// ("/v1/chat/completions" …). "" for Gemini, whose paths are its own.
	Prefix string
	// Route is the path prefix clients send to Tollgate: "/together" (the
	// data plane strips it, so /together/v1/chat/completions reaches
	// https://api.together.xyz/v1/chat/completions), or, for Gemini, its
	// own "/v1beta", kept on the way up.
	Route string
	// RouteRegex, when set, is a second route to the provider: paths that
	// match it as a whole, query excluded (RE2, as Envoy's safe_regex
	// reads it), go there unchanged. Gemini's stable API
	// (GeminiStableRoute), whose /v1/models/… paths only the method after
	// the colon tells from OpenAI's.
	RouteRegex string
	// Format is the wire format: OpenAI, or Gemini for Google's native API.
	Format string
}

// StripRoute reports whether the data plane removes Route from the path
// before the call goes upstream (every OpenAI-compatible entry; Gemini's
// route is its API's own path).
func (u Upstream) StripRoute() bool { return u.Format != Gemini }

// Gemini is Google's Gemini API (generativelanguage.googleapis.com): the
// provider recorded for its native paths and its OpenAI-compatible
// endpoint, and the format of the native ones.
const Gemini = "gemini"

// Together and Groq are the OpenAI-compatible providers built in.
const (
	Together = "together"
	Groq     = "groq"
)

// builtins are the providers routed by path out of the box.
var builtins = []Upstream{
	{Name: Gemini, Origin: "https://generativelanguage.googleapis.com", Route: "/v1beta", RouteRegex: GeminiStableRoute, Format: Gemini},
	{Name: Together, Origin: "https://api.together.xyz", Prefix: "/v1", Route: "/together", Format: OpenAI},
	{Name: Groq, Origin: "https://api.groq.com", Prefix: "/openai/v1", Route: "/groq", Format: OpenAI},
}

// Builtins returns the built-in entries (a copy).
func Builtins() []Upstream { return slices.Clone(builtins) }

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// reserved names cannot be taken by a configured provider: they are
// routed (or recorded) otherwise.
var reserved = []string{OpenAI, Anthropic, Azure, Gemini, "v1", "v1beta", "openai"}

// ParseCompatible reads an OpenAI-compatible provider given as
// "name=origin[/prefix]" (--openai-compatible): mistral=https://api.mistral.ai/v1.
// Clients reach it at /name/prefix/… (/mistral/v1/chat/completions). An
// entry named like a built-in OpenAI-compatible one (together, groq)
// replaces it, which points it elsewhere (a local mock, a proxy).
func ParseCompatible(entry string) (Upstream, error) {
	name, raw, ok := strings.Cut(entry, "=")
	name, raw = strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(raw)
	if !ok || name == "" || raw == "" {
		return Upstream{}, fmt.Errorf("want name=origin[/prefix] such as mistral=https://api.mistral.ai/v1, got %q", entry)
	}
	if !nameRE.MatchString(name) {
		return Upstream{}, fmt.Errorf("provider name %q: want a lowercase letter, then up to 31 letters, digits, '-' or '_'", name)
	}
	if slices.Contains(reserved, name) {
		return Upstream{}, fmt.Errorf("provider name %q is taken (built in or a path Tollgate routes)", name)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return Upstream{}, fmt.Errorf("provider %s: want an origin such as https://api.mistral.ai, optionally with a path prefix (/v1), got %q", name, raw)
	}
	return Upstream{
		Name:   name,
		Origin: u.Scheme + "://" + strings.ToLower(u.Host),
		Prefix: strings.TrimRight(u.EscapedPath(), "/"),
		Route:  "/" + name,
		Format: OpenAI,
	}, nil
}

// Upstreams is a provider list: the built-ins plus configured entries.
type Upstreams []Upstream

// WithCompatible returns the built-in list with configured entries added
// (one named like a built-in replaces it).
func WithCompatible(extra []Upstream) Upstreams {
	out := Upstreams(Builtins())
	for _, e := range extra {
		if i := slices.IndexFunc(out, func(u Upstream) bool { return u.Name == e.Name }); i >= 0 {
			out[i] = e
		} else {
			out = append(out, e)
		}
	}
	return out
}

// registered is the list the processor and the egress policy read
// (Register). It starts as the built-ins.
var registered struct {
	sync.RWMutex
	list  Upstreams
	names map[string]bool // every name ever registered: policies keep parsing
}

func init() {
	registered.list = Builtins()
	registered.names = map[string]bool{OpenAI: true, Anthropic: true, Azure: true}
	for _, u := range builtins {
		registered.names[u.Name] = true
	}
}

// Register adds list's entries to the providers routed by path (Resolve,
// ByOrigin), an entry replacing the one of its name, and their names to
// the known ones (Known). A process calls it once at start with its
// configuration. Nothing is ever removed: a policy that parsed keeps
// parsing, and servers started in one process (tests) do not take each
// other's providers away.
func Register(list Upstreams) {
	registered.Lock()
	defer registered.Unlock()
	for _, u := range list {
		if i := slices.IndexFunc(registered.list, func(r Upstream) bool { return r.Name == u.Name }); i >= 0 {
			registered.list[i] = u
		} else {
			registered.list = append(registered.list, u)
		}
		registered.names[u.Name] = true
	}
}

// Registered returns the providers routed by path (a copy).
func Registered() Upstreams {
	registered.RLock()
	defer registered.RUnlock()
	return slices.Clone(registered.list)
}

// Known reports whether name is a provider Tollgate records: openai,
// anthropic, azure, a built-in or a registered one. Names ignore case.
func Known(name string) bool {
	registered.RLock()
	defer registered.RUnlock()
	return registered.names[strings.ToLower(name)]
}

// KnownNames lists the known provider names, sorted, for messages.
func KnownNames() []string {
	registered.RLock()
	defer registered.RUnlock()
	out := make([]string, 0, len(registered.names))
	for n := range registered.names {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// ByOrigin returns the registered provider whose origin is origin
// (scheme://host[:port], as Helicone-Target-URL gives it).
func ByOrigin(origin string) (Upstream, bool) {
	registered.RLock()
	defer registered.RUnlock()
	for _, u := range registered.list {
		if strings.EqualFold(u.Origin, origin) {
			return u, true
		}
	}
	return Upstream{}, false
}

// routeOf returns the registered entry whose Route is path's first
// segments (a path-separated prefix match, as Envoy's
// path_separated_prefix), and the path with the route stripped when the
// entry strips it.
func routeOf(path string) (Upstream, string, bool) {
	registered.RLock()
	defer registered.RUnlock()
	for _, u := range registered.list {
		rest, ok := strings.CutPrefix(path, u.Route)
		if !ok || (rest != "" && rest[0] != '/') {
			continue
		}
		if u.StripRoute() {
			return u, rest, true
		}
		return u, path, true
	}
	return Upstream{}, "", false
}
