package tokenlimit

import (
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/tollgate-dev/tollgate/provider/tokens"
)

// The cut mark: Helicone's truncate ends a cut text with it
// (truncateTextToLimit); Tollgate's middle-out puts it where a text lost
// its middle.
const mark = "..."

// normalize is Helicone's truncateAndNormalizeText: its NORMALIZATION_PATTERNS
// in their order — HTML comments go, then "id:" or "uuid:" and 36 hex
// digits or dashes between word boundaries (any case), then the spaces
// around , . : ; ( ) { } [ ] = > <; then every run of spaces becomes one
// and the ends are trimmed. Spaces are JavaScript's \s, which Helicone's
// patterns use (Go's \s lacks \v and the Unicode spaces).
//
// It is written out rather than run as regular expressions: Go's regexp
// replaces at 6 to 12 MB/s, which on a body of several megabytes would take
// most of Envoy's message_timeout; each pass here is a linear scan.
// normalizeRegexp in the tests is the patterns themselves, and the fuzz
// test holds the two equal.
func normalize(s string) string {
	if s == "" {
		return s
	}
	s = dropComments(s)
	s = dropIDs(s)
	return squeezeSpaces(s)
}

// dropComments removes each "<!--" through the next "-->" (the lazy
// <!--[\s\S]*?-->): once a "<!--" has no "-->" after it, no later one
// does either.
func dropComments(s string) string {
	i := strings.Index(s, "<!--")
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i >= 0 {
		j := strings.Index(s[i+4:], "-->")
		if j < 0 {
			break
		}
		b.WriteString(s[:i])
		s = s[i+4+j+3:]
		i = strings.Index(s, "<!--")
	}
	b.WriteString(s)
	return b.String()
}

// dropIDs removes \b(id|uuid):[a-f0-9-]{36}\b, ignoring case; \b is
// ASCII's word boundary in JavaScript and in Go alike.
func dropIDs(s string) string {
	if strings.IndexByte(s, ':') < 0 {
		return s
	}
	var b strings.Builder
	kept := 0 // s[:kept] is written or to be written
	for i := 0; i < len(s); i++ {
		if i > 0 && wordByte(s[i-1]) {
			continue
		}
		if n := idAt(s[i:]); n > 0 {
			b.WriteString(s[kept:i])
			kept = i + n
			i = kept - 1
		}
	}
	if kept == 0 {
		return s
	}
	b.WriteString(s[kept:])
	return b.String()
}

// idAt is the length of the id at the start of s, or 0.
func idAt(s string) int {
	var n int
	switch {
	case len(s) >= 3 && strings.EqualFold(s[:3], "id:"):
		n = 3
	case len(s) >= 5 && strings.EqualFold(s[:5], "uuid:"):
		n = 5
	default:
		return 0
	}
	if len(s) < n+36 {
		return 0
	}
	for _, c := range []byte(s[n : n+36]) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' || c == '-') {
			return 0
		}
	}
	n += 36
	if after := n < len(s) && wordByte(s[n]); wordByte(s[n-1]) == after {
		return 0 // no word boundary after
	}
	return n
}

func wordByte(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_'
}

// squeezeSpaces drops each run of spaces next to one of Helicone's
// punctuation marks (its \s*,\s* → "," and the like: a run is taken
// whether it comes before the mark or after it), makes every other run one
// space, and trims the ends. What lies between the runs is copied a run at
// a time, and the squeezed prefix (squeezedTo) at once.
func squeezeSpaces(s string) string {
	i := squeezedTo(s)
	if i == len(s) {
		return s
	}
	for i > 0 && s[i-1] == ' ' { // the run of spaces s[i] is in starts here
		i--
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	for i < len(s) {
		j := i
		for j < len(s) {
			c := s[j]
			if c < utf8.RuneSelf {
				if c <= ' ' && jsSpace(rune(c)) {
					break
				}
				j++
				continue
			}
			r, size := utf8.DecodeRuneInString(s[j:])
			if jsSpace(r) {
				break
			}
			j += size
		}
		b.WriteString(s[i:j])
		if j == len(s) {
			break
		}
		i = j // a run of spaces
		for j < len(s) {
			r, size := utf8.DecodeRuneInString(s[j:])
			if !jsSpace(r) {
				break
			}
			j += size
		}
		if !(i > 0 && punct(s[i-1])) && !(j < len(s) && punct(s[j])) {
			b.WriteByte(' ')
		}
		i = j
	}
	return strings.Trim(b.String(), " ")
}

// squeezedTo is how much of s squeezeSpaces would leave as it is: up to
// the first space that is not a single ' ' between two bytes that are not
// marks; len(s) when there is none. Most texts are squeezed already, and a
// prompt of many of them then costs no copies.
func squeezedTo(s string) int {
	for i := 0; i < len(s); {
		c := s[i]
		if c == ' ' {
			if i == 0 || i == len(s)-1 || punct(s[i-1]) || punct(s[i+1]) || s[i+1] == ' ' {
				return i
			}
			i++
			continue
		}
		if c < utf8.RuneSelf {
			if c <= ' ' && jsSpace(rune(c)) {
				return i
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if jsSpace(r) {
			return i
		}
		i += size
	}
	return len(s)
}

func punct(c byte) bool { return punctMarks[c] }

// punctMarks is a table: punct runs for every byte of every text.
var punctMarks = func() (t [256]bool) {
	for _, c := range []byte(",.:;(){}[]=><") {
		t[c] = true
	}
	return t
}()

// jsSpace is JavaScript's \s.
func jsSpace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\v', '\f', '\r', 0xa0, 0x1680, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000, 0xfeff:
		return true
	}
	return 0x2000 <= r && r <= 0x200a
}

// rounds bounds the re-cuts: a cut text can count a token more than its
// share where the encoding merges across the cut, and each round takes the
// excess off the budget.
const rounds = 4

// truncate is Helicone's truncate: every text normalized; if still too
// large, texts cut at their end, ending in "...". Helicone gives each text
// a share in proportion to its size (applyTruncateStrategy), which cuts a
// short system prompt or the last question as much as a long document;
// Tollgate shares the tokens left after the fixed part fairly instead
// (shares): a text within its share stays whole and the largest ones give
// up the rest. ok is false when there is no text to cut.
func truncate(p *prompt, m measured, c *meter, limit int) (out []string, n int, ok bool) {
	if len(p.texts) == 0 {
		return nil, 0, false
	}
	// The cuts need the token ends of the normalized texts. An exact m
	// has them for the texts as sent, which most stay; an estimated m,
	// of a prompt too large to encode, only counted them, so that it
	// never holds two sets of ends for each text.
	norm := make([]string, len(p.texts))
	ends := make([][]int, len(p.texts))
	for i, t := range p.texts {
		if norm[i] = normalize(t.s); m.ends != nil && norm[i] == t.s {
			ends[i] = m.ends[i]
		} else {
			ends[i] = c.Ends(norm[i])
		}
	}
	base := measured{n: make([]int, len(ends)), ends: ends, fixed: m.fixed}
	for i, e := range ends {
		base.n[i] = len(e)
	}
	if n = base.total(); n <= limit {
		return norm, n, true // normalizing was enough
	}
	avail := limit - m.fixed
	for round := range rounds {
		budget := shares(ends, avail)
		next := make([]string, len(norm))
		for i, s := range norm {
			next[i] = cutEnd(s, ends[i], budget[i])
		}
		if round > 0 && !c.affords(norm, next) {
			break // the previous cut stands, still over: counting another would pass exactWork
		}
		out = next
		if n = countWith(c, norm, base, out); n <= limit {
			break
		}
		avail -= n - limit
	}
	return out, n, true
}

// shares divides avail tokens among texts of len(ends[i]) tokens, smallest
// first: each gets the lesser of its size and an equal part of what is
// left.
func shares(ends [][]int, avail int) []int {
	order := make([]int, len(ends))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return len(ends[a]) - len(ends[b]) })
	out := make([]int, len(ends))
	left := max(avail, 0)
	for k, i := range order {
		give := min(len(ends[i]), left/(len(order)-k))
		out[i] = give
		left -= give
	}
	return out
}

// cutEnd keeps the start of s in budget tokens, the mark included; a cut
// falls back to the last space if that loses under a fifth of the kept text
// (Helicone's truncateTextToLimit).
func cutEnd(s string, ends []int, budget int) string {
	if budget >= len(ends) {
		return s
	}
	keep := budget - 1 // the mark is one token in every encoding used
	if keep <= 0 {
		return ""
	}
	h := tokens.Head(s, ends, keep)
	if i := strings.LastIndexByte(h, ' '); i > len(h)*8/10 {
		h = h[:i]
	}
	return h + mark
}

// middleOut removes the middle of the prompt's text: the texts, in order,
// form one run of tokens, and a window at its centre as wide as the excess
// goes. Texts wholly inside it become empty (render drops a message left
// with none), the ones at its edges keep their start or their end, and a
// text that holds the whole window keeps both, joined by "...". Helicone
// removes a centred window of ~1,000-character chunks the same way
// (middleOutMessagesToFitLimit). ok is false when there is no text.
func middleOut(p *prompt, m measured, c *meter, limit int) (out []string, n int, ok bool) {
	textTokens := 0
	for _, e := range m.ends {
		textTokens += len(e)
	}
	if textTokens == 0 {
		return nil, 0, false
	}
	texts := make([]string, len(p.texts))
	for i, t := range p.texts {
		texts[i] = t.s
	}
	need := m.total() - limit
	for round := range rounds {
		cut := min(need, textTokens)
		a := (textTokens - cut) / 2
		b := a + cut
		next := make([]string, len(texts))
		off := 0
		for i, s := range texts {
			k := len(m.ends[i])
			start, end := off, off+k
			off = end
			if end <= a || start >= b {
				next[i] = s
				continue
			}
			head := tokens.Head(s, m.ends[i], a-start)
			tail := tokens.Tail(s, m.ends[i], end-b)
			if head != "" && tail != "" {
				next[i] = head + mark + tail
			} else {
				next[i] = head + tail
			}
		}
		if round > 0 && !c.affords(texts, next) {
			break // the previous cut stands, still over: counting another would pass exactWork
		}
		out = next
		if n = countWith(c, texts, m, out); n <= limit || cut == textTokens {
			break
		}
		need += n - limit
	}
	return out, n, true
}

// countWith is the prompt's tokens with its texts (base, measured as m)
// set to out: only the texts that changed are counted again.
func countWith(c tokens.Counter, base []string, m measured, out []string) int {
	n := m.fixed
	for i, s := range out {
		if s == base[i] {
			n += m.n[i]
		} else {
			n += c.Count(s)
		}
	}
	return n
}
