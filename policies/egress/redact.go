package egress

import (
	"regexp"
	"strings"
)

var redacted = []byte("[REDACTED]")

// redactor replaces the matches of a policy's patterns. The patterns are
// joined into one alternation so a body is scanned once, whatever their
// number.
type redactor struct {
	res []*regexp.Regexp
}

// newRedactor returns nil for no patterns. Each pattern compiled
// alone, so their alternation can fail only on the size limit; the patterns
// are then applied one after the other.
func newRedactor(pats []*regexp.Regexp) *redactor {
	if len(pats) == 0 {
		return nil
	}
	parts := make([]string, len(pats))
	for i, re := range pats {
		parts[i] = "(?:" + re.String() + ")" // flags stay inside their group
	}
	if re, err := regexp.Compile(strings.Join(parts, "|")); err == nil {
		return &redactor{res: []*regexp.Regexp{re}}
	}
	return &redactor{res: pats}
}

func (r *redactor) apply(body []byte) []byte {
	if r == nil {
		return body
	}
	for _, re := range r.res {
		body = replaceMatches(re, body)
	}
	return body
}

// replaceMatches returns body itself when nothing matches, so the usual
// body with no secret costs one scan and no copy. Empty matches (a pattern
// such as \b) are skipped: they would stamp the text between every word.
func replaceMatches(re *regexp.Regexp, body []byte) []byte {
	locs := re.FindAllIndex(body, -1)
	if locs == nil {
		return body
	}
	out := make([]byte, 0, len(body))
	last := 0
	for _, loc := range locs {
		if loc[0] == loc[1] {
			continue
		}
		out = append(out, body[last:loc[0]]...)
		out = append(out, redacted...)
		last = loc[1]
	}
	if len(out) == 0 {
		return body
	}
	return append(out, body[last:]...)
}
