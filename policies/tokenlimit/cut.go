package tokenlimit

import (
	"regexp"
	"slices"
	"strings"

	"github.com/tollgate-dev/tollgate/provider/tokens"
)

// The cut mark: Helicone's truncate ends a cut text with it
// (truncateTextToLimit); Tollgate's middle-out puts it where a text lost
// its middle.
const mark = "..."

// jsSpace is JavaScript's \s, which Helicone's patterns use: Go's \s lacks
// \v and the Unicode spaces.
const jsSpace = `\s\v\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}\x{feff}`

// Helicone's NORMALIZATION_PATTERNS, applied in its order. Its separate
// patterns for each punctuation mark (\s*,\s* → "," and so on) are one
// pattern here: each removes the spaces around its mark whatever the
// others did, so one pass gives the same text.
var (
	htmlComment = regexp.MustCompile(`<!--(?s:.*?)-->`)
	idUUID      = regexp.MustCompile(`(?i)\b(?:id|uuid):[a-f0-9-]{36}\b`)
	punctSpace  = regexp.MustCompile(`[` + jsSpace + `]*([,.:;(){}\[\]=><])[` + jsSpace + `]*`)
	spaceRun    = regexp.MustCompile(`[` + jsSpace + `]+`)
)

// normalize is Helicone's truncateAndNormalizeText.
func normalize(s string) string {
	if s == "" {
		return s
	}
	s = htmlComment.ReplaceAllLiteralString(s, "")
	s = idUUID.ReplaceAllLiteralString(s, "")
	s = punctSpace.ReplaceAllString(s, "$1")
	s = spaceRun.ReplaceAllLiteralString(s, " ")
	return strings.TrimFunc(s, func(r rune) bool { return r == ' ' })
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
func truncate(p *prompt, m measured, c tokens.Counter, limit int) (out []string, n int, ok bool) {
	if len(p.texts) == 0 {
		return nil, 0, false
	}
	norm := make([]string, len(p.texts))
	ends := make([][]int, len(p.texts))
	for i, t := range p.texts {
		norm[i], ends[i] = normalize(t.s), m.ends[i]
		if norm[i] != t.s {
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
	for range rounds {
		budget := shares(ends, avail)
		out = make([]string, len(norm))
		for i, s := range norm {
			out[i] = cutEnd(s, ends[i], budget[i])
		}
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
func middleOut(p *prompt, m measured, c tokens.Counter, limit int) (out []string, n int, ok bool) {
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
	for range rounds {
		cut := min(need, textTokens)
		a := (textTokens - cut) / 2
		b := a + cut
		out = make([]string, len(texts))
		off := 0
		for i, s := range texts {
			k := len(m.ends[i])
			start, end := off, off+k
			off = end
			if end <= a || start >= b {
				out[i] = s
				continue
			}
			head := tokens.Head(s, m.ends[i], a-start)
			tail := tokens.Tail(s, m.ends[i], end-b)
			if head != "" && tail != "" {
				out[i] = head + mark + tail
			} else {
				out[i] = head + tail
			}
		}
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
