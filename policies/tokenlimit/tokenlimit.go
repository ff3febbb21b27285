// Package tokenlimit is Helicone-Token-Limit-Exception-Handler: what to do
// with a prompt too large for its model's context window. Helicone's
// behaviour (worker/src/lib/util/tokenLimitException.ts, applied in
// RequestWrapper.applyTokenLimitExceptionHandler) is the reference:
//
//   - The allowed prompt is the context window less the output the request
//     reserves: the first positive max_completion_tokens, max_tokens,
//     max_output_tokens (or Gemini's maxOutputTokens), else a tenth of the
//     window.
//   - truncate normalizes every text (whitespace, HTML comments, "id:<uuid>",
//     spaces around punctuation) and, if the prompt is still too large, cuts
//     texts at their end, marking the cut with "..." (Helicone cuts every
//     text in proportion to its size; Tollgate cuts the largest first).
//   - middle-out removes the middle of the prompt's text, keeping its start
//     and its end; a message left with no text is dropped.
//   - fallback reads the body's model as a comma-separated list: over the
//     limit (or with no known window) the second model is sent, otherwise
//     the first.
//
// Tollgate counts with the model's own tokenizer where it is public
// (provider/tokens; Helicone estimates four characters a token for every
// model) and measures each cut with it.
package tokenlimit

import (
	"math"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/tollgate-dev/tollgate/provider/tokens"
)

// Mode is a Helicone-Token-Limit-Exception-Handler value.
type Mode string

const (
	Truncate  Mode = "truncate"
	MiddleOut Mode = "middle-out"
	Fallback  Mode = "fallback"
)

// ParseMode reads the header value, ignoring case and surrounding space;
// ok is false for any other value (Helicone then does nothing).
func ParseMode(v string) (Mode, bool) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(v))); m {
	case Truncate, MiddleOut, Fallback:
		return m, true
	}
	return "", false
}

// Outcome is what Apply did, as the record notes it.
type Outcome string

const (
	Fits           Outcome = "fits"            // within the limit: sent as is (fallback: as the list's first model)
	Truncated      Outcome = "truncated"       // truncate rewrote the texts
	MiddledOut     Outcome = "middle-out"      // middle-out removed the middle
	FellBack       Outcome = "fallback"        // the list's second model is sent
	Over           Outcome = "over"            // over the limit, nothing to cut or no second model: sent as is
	UnknownContext Outcome = "unknown-context" // no context window known for the model: sent as is
	NoRoom         Outcome = "no-room"         // the reserved output fills the window: sent as is
	Skipped        Outcome = "skipped"         // no prompt or no model in the body: sent as is
)

// Request is one call's body and what Apply needs to judge it.
type Request struct {
	Mode Mode
	Body []byte
	// Model is measured against when the body names none
	// (Helicone-Model-Override, as in Helicone's resolvePrimaryModel).
	Model string
	// Context returns a model's context window in tokens.
	Context func(model string) (int, bool)
}

// Result says what was done. Body is nil when the body goes unchanged.
type Result struct {
	Body     []byte
	Outcome  Outcome
	Model    string // the model measured against (the list's first)
	Sent     string // fallback: the model sent, when it changed
	Counter  string // how tokens were counted (tokens.Counter.Name)
	Context  int    // the model's window; 0 when unknown
	Limit    int    // the prompt tokens allowed
	Tokens   int    // the prompt's tokens as counted; 0 when not counted (clearly within the limit)
	SentSize int    // the rewritten prompt's tokens
}

// maxExactBytes bounds the text counted with a byte-pair encoding: past
// it the prompt is estimated (four characters a token), which is linear
// and cheap, so that the reply comes within Envoy's message_timeout (2 s
// in envoy/) whatever the body size. An encoding counts 7 to 13 MB/s on a
// small shared machine (go test -bench . ./provider/tokens) and truncate
// encodes the text about three times.
const maxExactBytes = 1 << 20

// Apply measures the prompt of req.Body against its model's context window
// and applies req.Mode when it does not fit.
func Apply(req Request) Result {
	body := string(req.Body)
	modelField := gjson.Get(body, "model")
	candidates := modelCandidates(modelField)
	primary := req.Model
	if len(candidates) > 0 {
		primary = candidates[0]
	}
	p, ok := parsePrompt(body)
	if !ok || primary == "" {
		return Result{Outcome: Skipped, Model: primary}
	}
	res := Result{Model: primary}
	if req.Context != nil {
		res.Context, _ = req.Context(primary)
	}
	if res.Context > 0 {
		reserve := reservedOutput(body)
		if reserve == 0 {
			reserve = res.Context - res.Context*9/10 // a tenth, rounded up
		}
		res.Limit = res.Context - reserve
	}

	// fallback rewrites the model whenever the body lists several, as
	// Helicone's applyFallbackStrategy does even within the limit.
	setModel := func(m string) []byte {
		if m == modelField.String() || modelField.Type != gjson.String {
			return nil
		}
		start, end, ok := p.at(modelField)
		if !ok {
			return nil
		}
		return []byte(splice(body, 0, []edit{{start, end, jsonString(m)}}))
	}
	var fallbackTo string
	if len(candidates) > 1 {
		fallbackTo = candidates[1]
	}

	if res.Context == 0 {
		if req.Mode == Fallback && fallbackTo != "" {
			// Helicone: "tokenLimit is null (model not in registry) → use
			// the fallback" (applyFallbackStrategy).
			res.Outcome, res.Sent, res.Body = FellBack, fallbackTo, setModel(fallbackTo)
			return res
		}
		res.Outcome = UnknownContext
		return res
	}
	if res.Limit <= 0 {
		res.Outcome = NoRoom
		return res
	}
	over := func(n int) bool {
		if req.Mode == Fallback {
			return n >= res.Limit // Helicone's applyFallbackStrategy: estimatedTokens >= tokenLimit
		}
		return n > res.Limit
	}

	// A token is at least one byte: a prompt whose bytes fit needs no count.
	if !over(p.upperBound()) {
		res.Outcome = Fits
		if req.Mode == Fallback && len(candidates) > 0 {
			res.Body = setModel(primary)
		}
		return res
	}
	counter := tokens.ForModel(primary)
	if p.textBytes() > maxExactBytes {
		counter = tokens.Estimate
	}
	res.Counter = counter.Name()
	m := p.measure(counter, req.Mode != Fallback)
	res.Tokens = m.total()
	if !over(res.Tokens) {
		res.Outcome = Fits
		if req.Mode == Fallback && len(candidates) > 0 {
			res.Body = setModel(primary)
		}
		return res
	}
	switch req.Mode {
	case Fallback:
		if fallbackTo == "" {
			res.Outcome = Over
			return res
		}
		res.Outcome, res.Sent, res.Body = FellBack, fallbackTo, setModel(fallbackTo)
	case Truncate:
		out, n, cut := truncate(p, m, counter, res.Limit)
		if !cut {
			res.Outcome = Over
			return res
		}
		res.Outcome, res.SentSize, res.Body = Truncated, n, []byte(p.render(out, false))
	case MiddleOut:
		out, n, cut := middleOut(p, m, counter, res.Limit)
		if !cut {
			res.Outcome = Over
			return res
		}
		res.Outcome, res.SentSize, res.Body = MiddledOut, n, []byte(p.render(out, true))
	}
	return res
}

// modelCandidates splits the body's model on commas (Helicone's
// extractModelCandidates).
func modelCandidates(model gjson.Result) []string {
	if model.Type != gjson.String {
		return nil
	}
	var out []string
	for _, c := range strings.Split(model.String(), ",") {
		if c = strings.TrimSpace(c); c != "" {
			out = append(out, c)
		}
	}
	return out
}

// reservedOutput is the first positive output limit the body asks for, in
// Helicone's order; 0 when none.
func reservedOutput(body string) int {
	for _, path := range []string{
		"max_completion_tokens", "max_tokens", "max_output_tokens", "maxOutputTokens",
		"response.max_tokens", "response.max_output_tokens", "response.maxOutputTokens",
		"generation_config.max_output_tokens", "generation_config.maxOutputTokens",
		"generationConfig.max_output_tokens", "generationConfig.maxOutputTokens",
	} {
		v := gjson.Get(body, path)
		if v.Type == gjson.Number && v.Num > 0 && !math.IsInf(v.Num, 0) {
			if v.Num >= math.MaxInt32 {
				return math.MaxInt32
			}
			return int(v.Num)
		}
	}
	return 0
}

// upperBound is a count no tokenizer exceeds: a token is at least a byte.
func (p *prompt) upperBound() int {
	n := p.overhead
	for _, f := range p.fixed {
		n += len(f)
	}
	return n + p.textBytes()
}

func (p *prompt) textBytes() int {
	n := 0
	for _, t := range p.texts {
		n += len(t.s)
	}
	return n
}

// measured is a prompt counted: each text's tokens (and where they end,
// when the texts may be cut), and the tokens of everything else.
type measured struct {
	n     []int
	ends  [][]int // nil when only counted
	fixed int
}

func (m measured) total() int {
	n := m.fixed
	for _, k := range m.n {
		n += k
	}
	return n
}

// measure counts the prompt; with ends, it also finds where each text's
// tokens end (an encoding's full output, which costs more than a count:
// only the modes that cut need it).
func (p *prompt) measure(c tokens.Counter, ends bool) measured {
	m := measured{n: make([]int, len(p.texts)), fixed: p.overhead}
	if ends {
		m.ends = make([][]int, len(p.texts))
	}
	for _, f := range p.fixed {
		m.fixed += c.Count(f)
	}
	for i, t := range p.texts {
		if ends {
			m.ends[i] = c.Ends(t.s)
			m.n[i] = len(m.ends[i])
		} else {
			m.n[i] = c.Count(t.s)
		}
	}
	return m
}
