package attempts

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/tollgate-dev/tollgate/helicone"
)

// MaxFallbacks bounds a fallback list (each entry may be a paid call).
const MaxFallbacks = MaxRetries

// CodeRange is an inclusive range of HTTP statuses.
type CodeRange struct{ From, To int }

// FallbackEntry is one attempt's changes to the request.
type FallbackEntry struct {
	Model        string      // replaces the body's model
	TargetOrigin string      // scheme://host[:port] of target-url, lowercased; "" = the request's route
	Headers      [][2]string // set on the attempt (e.g. another provider key)
	OnCodes      []CodeRange // statuses that move on to the next entry; nil = RetriableStatusCodes
	BodyOverride [][2]string // top-level body keys set to raw JSON values (Helicone's bodyKeyOverride)
}

// FallbackPlan is a parsed fallback header.
type FallbackPlan struct {
	Entries []FallbackEntry
	// OriginalFirst: attempt 1 sends the request unchanged and Entries
	// start at index 1 (Helicone-Fallback). Otherwise Entries[0] already
	// applies to attempt 1 (Helicone-Fallbacks).
	OriginalFirst bool
	// ServerErrorsBefore: the attempts of fallback indexes below it move
	// on only on a 5xx (or, through the routes' retry_on, a reset or a
	// connect failure), never on a 429 or another 4xx, whatever their
	// onCodes say. Set for the entries before one the gateway pays for (a
	// translated fallback, sent on the gateway's key): a client must not
	// reach it by failing its own attempt on purpose (a junk model, a key
	// with no quota that answers 429 to every call).
	ServerErrorsBefore int
}

// ParseFallbacks reads Helicone-Fallback or Helicone-Fallbacks; both absent
// is (nil, nil). Helicone-Fallback is the short form: the request as sent is
// attempt 0 and each entry is the next one. Helicone-Fallbacks is Helicone's
// gateway form: every attempt, the first included, is an entry. Errors name the header and the
// entry at fault.
func ParseFallbacks(short, gateway string) (*FallbackPlan, error) {
	short, gateway = strings.TrimSpace(short), strings.TrimSpace(gateway)
	switch {
	case short == "" && gateway == "":
		return nil, nil
	case short != "" && gateway != "":
		return nil, &helicone.BadHeaderError{Header: helicone.Canonical(helicone.Fallback), Reason: "and " + helicone.Canonical(helicone.Fallbacks) + " cannot both be sent"}
	case short != "":
		if short[0] != '[' && short[0] != '{' {
			entries, err := parseModelList(short)
			if err != nil {
				return nil, err
			}
			return &FallbackPlan{Entries: entries, OriginalFirst: true}, nil
		}
		entries, err := parseFallbackList(helicone.Fallback, short)
		if err != nil {
			return nil, err
		}
		return &FallbackPlan{Entries: entries, OriginalFirst: true}, nil
	}
	entries, err := parseFallbackList(helicone.Fallbacks, gateway)
	if err != nil {
		return nil, err
	}
	return &FallbackPlan{Entries: entries}, nil
}

// parseModelList reads the plainest short form, a comma-separated list of
// model names (`Helicone-Fallback: claude-sonnet-4-5, gpt-4o-mini`): the
// same as [{"model": …}, …]. A name is printable ASCII without spaces,
// quotes or commas.
func parseModelList(v string) ([]FallbackEntry, error) {
	bad := func(format string, args ...any) error {
		return &helicone.BadHeaderError{Header: helicone.Canonical(helicone.Fallback), Reason: fmt.Sprintf(format, args...)}
	}
	names := strings.Split(v, ",")
	if len(names) > MaxFallbacks {
		return nil, bad("lists %d entries; at most %d are allowed", len(names), MaxFallbacks)
	}
	entries := make([]FallbackEntry, len(names))
	for i, n := range names {
		n = strings.TrimSpace(n)
		if n == "" || len(n) > 256 || strings.ContainsFunc(n, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == '"' }) {
			return nil, bad(`entry %d: %q is not a model name (give a list of model names, or a JSON array such as [{"model": "gpt-4o-mini"}])`, i, clip(n))
		}
		entries[i] = FallbackEntry{Model: n}
	}
	return entries, nil
}

// rawFallbackEntry is the wire form. Helicone spells target-url with a
// hyphen; the camel-case spelling is accepted too.
type rawFallbackEntry struct {
	Model           *string                    `json:"model"`
	TargetURL       *string                    `json:"target-url"`
	TargetURLCamel  *string                    `json:"targetUrl"`
	Headers         map[string]string          `json:"headers"`
	OnCodes         []json.RawMessage          `json:"onCodes"`
	BodyKeyOverride map[string]json.RawMessage `json:"bodyKeyOverride"`
}

func parseFallbackList(header, v string) ([]FallbackEntry, error) {
	bad := func(format string, args ...any) error {
		return &helicone.BadHeaderError{Header: helicone.Canonical(header), Reason: fmt.Sprintf(format, args...)}
	}
	var raw []json.RawMessage
	if err := json.Unmarshal([]byte(v), &raw); err != nil {
		return nil, bad(`must be a JSON array of objects such as [{"model": "gpt-4o-mini"}]: %v`, err)
	}
	if len(raw) == 0 {
		return nil, bad("must list at least one entry")
	}
	if len(raw) > MaxFallbacks {
		return nil, bad("lists %d entries; at most %d are allowed", len(raw), MaxFallbacks)
	}
	entries := make([]FallbackEntry, len(raw))
	for i, r := range raw {
		dec := json.NewDecoder(bytes.NewReader(r))
		dec.DisallowUnknownFields()
		var e rawFallbackEntry
		if err := dec.Decode(&e); err != nil {
			return nil, bad("entry %d: %v", i, err)
		}
		entry, err := e.entry()
		if err != nil {
			return nil, bad("entry %d: %v", i, err)
		}
		entries[i] = entry
	}
	return entries, nil
}

func (e rawFallbackEntry) entry() (FallbackEntry, error) {
	var out FallbackEntry
	if e.Model != nil {
		out.Model = strings.TrimSpace(*e.Model)
		if out.Model == "" || len(out.Model) > 256 {
			return out, fmt.Errorf(`"model" must be a non-empty model name`)
		}
	}
	target := e.TargetURL
	if target == nil {
		target = e.TargetURLCamel
	}
	if target != nil {
		u, err := url.Parse(strings.TrimSpace(*target))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			return out, fmt.Errorf(`"target-url" must be an absolute http(s) URL, got %q`, clip(*target))
		}
		out.TargetOrigin = strings.ToLower(u.Scheme + "://" + u.Host)
	}
	names := make([]string, 0, len(e.Headers))
	for name := range e.Headers {
		names = append(names, name)
	}
	slices.Sort(names) // deterministic mutations
	for _, name := range names {
		value := e.Headers[name]
		if err := checkFallbackHeader(name, value); err != nil {
			return out, err
		}
		out.Headers = append(out.Headers, [2]string{strings.ToLower(name), value})
	}
	for _, c := range e.OnCodes {
		r, err := parseCodeRange(c)
		if err != nil {
			return out, err
		}
		out.OnCodes = append(out.OnCodes, r)
	}
	keys := make([]string, 0, len(e.BodyKeyOverride))
	for k := range e.BodyKeyOverride {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if k == "" || strings.ContainsAny(k, ".*?|#@:\\") {
			return out, fmt.Errorf(`"bodyKeyOverride" key %q must be a plain top-level field name`, clip(k))
		}
		val := e.BodyKeyOverride[k]
		if !json.Valid(val) {
			return out, fmt.Errorf(`"bodyKeyOverride" %q is not valid JSON`, k)
		}
		out.BodyOverride = append(out.BodyOverride, [2]string{k, string(val)})
	}
	return out, nil
}

// checkFallbackHeader keeps an entry from touching what routes, frames or
// identifies the request: only provider-facing headers may change.
func checkFallbackHeader(name, value string) error {
	lk := strings.ToLower(name)
	if !validHeaderName(lk) {
		return fmt.Errorf(`"headers": %q is not a valid header name`, clip(name))
	}
	switch {
	case lk == "host" || lk == "content-length" || lk == "transfer-encoding" || lk == "connection",
		strings.HasPrefix(lk, helicone.Prefix), strings.HasPrefix(lk, "x-envoy-"), strings.HasPrefix(lk, "x-tollgate-"):
		return fmt.Errorf(`"headers": %q cannot be set by a fallback`, name)
	}
	if strings.ContainsAny(value, "\r\n\x00") {
		return fmt.Errorf(`"headers": the value of %q contains a control character`, name)
	}
	return nil
}

func validHeaderName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func parseCodeRange(raw json.RawMessage) (CodeRange, error) {
	var n int
	if err := json.Unmarshal(raw, &n); err == nil {
		if n < 100 || n > 599 {
			return CodeRange{}, fmt.Errorf(`"onCodes": %d is not an HTTP status`, n)
		}
		return CodeRange{n, n}, nil
	}
	var r struct {
		From *int `json:"from"`
		To   *int `json:"to"`
	}
	if err := json.Unmarshal(raw, &r); err != nil || r.From == nil || r.To == nil {
		return CodeRange{}, fmt.Errorf(`"onCodes" entries are statuses or {"from": 500, "to": 599}, got %s`, clip(string(raw)))
	}
	if *r.From < 100 || *r.To > 599 || *r.From > *r.To {
		return CodeRange{}, fmt.Errorf(`"onCodes": {"from": %d, "to": %d} is not a range of HTTP statuses`, *r.From, *r.To)
	}
	return CodeRange{*r.From, *r.To}, nil
}

// Retries is how many retries the plan needs to try every entry.
func (p *FallbackPlan) Retries() int {
	if p.OriginalFirst {
		return len(p.Entries)
	}
	return len(p.Entries) - 1
}

// Index is the fallback index of an attempt (1-based, Envoy's
// x-envoy-attempt-count): 0 is the first attempt. Attempts past the list
// (when Helicone-Retry-Num asks for more) stay on the last entry.
func (p *FallbackPlan) Index(attempt int) int {
	return min(max(attempt, 1)-1, p.Retries())
}

// Entry is the change made for a fallback index; nil for the request as
// sent (index 0 of the short form).
func (p *FallbackPlan) Entry(index int) *FallbackEntry {
	if p.OriginalFirst {
		index--
	}
	if index < 0 || index >= len(p.Entries) {
		return nil
	}
	return &p.Entries[index]
}

// MovesOn reports whether a response with this status should be answered by
// the next entry instead. The last entry's response is always kept.
func (p *FallbackPlan) MovesOn(index, status int) bool {
	if index >= p.Retries() {
		return false
	}
	if index < p.ServerErrorsBefore && status < 500 {
		return false
	}
	if e := p.Entry(index); e != nil && e.OnCodes != nil {
		for _, r := range e.OnCodes {
			if status >= r.From && status <= r.To {
				return true
			}
		}
		return false
	}
	return slices.Contains(RetriableStatusCodes, status)
}

// AttemptOrigins is the origin of every attempt the plan makes, in order
// (attempt 1 first): an entry's target origin, or route for the request as
// sent and for entries without a target-url.
func (p *FallbackPlan) AttemptOrigins(route string) []string {
	out := make([]string, p.Retries()+1)
	for i := range out {
		out[i] = route
		if e := p.Entry(i); e != nil && e.TargetOrigin != "" {
			out[i] = e.TargetOrigin
		}
	}
	return out
}

// Rewrite returns the body for a fallback entry: the model replaced and the
// bodyKeyOverride keys set, starting from the body the first attempt sent.
// A body that is not a JSON object is returned unchanged.
func (e *FallbackEntry) Rewrite(body []byte) ([]byte, error) {
	if e.Model == "" && len(e.BodyOverride) == 0 {
		return body, nil
	}
	if !gjson.ValidBytes(body) || !gjson.ParseBytes(body).IsObject() {
		return body, nil
	}
	out := bytes.Clone(body)
	var err error
	if e.Model != "" {
		if out, err = sjson.SetBytes(out, "model", e.Model); err != nil {
			return body, err
		}
	}
	for _, kv := range e.BodyOverride {
		if out, err = sjson.SetRawBytes(out, kv[0], []byte(kv[1])); err != nil {
			return body, err
		}
	}
	return out, nil
}
