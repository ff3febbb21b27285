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
// Helicone estimates every prompt (0.2 tokens a character for
// gpt-3.5-turbo, 0.25 for any other model) and counts only string
// contents and the tools. Tollgate counts with the model's own tokenizer
// where it is public (provider/tokens) and measures each cut with it, up to
// a bound on the work (exactWork); past it, and for models whose tokenizer
// is not public, it estimates four characters a token. It counts what the
// model reads — text parts, roles, names, tool calls — and each image,
// audio or file part as tokens.PerMediaPart, never by its bytes.
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
	// TooManyTexts: the prompt holds more than MaxTexts texts or
	// messages, so truncate and middle-out left it as sent (Over) although
	// it did not fit.
	TooManyTexts bool

	work int // bytes encoded exactly, callCost a string included (tests hold it within exactWork)
}

// exactWork bounds what one call may encode with a byte-pair encoding, in
// bytes: everything counted (texts and the fixed part together), each cut's
// re-check included, and callCost more for every string encoded (an encoder
// call costs as much as a few dozen bytes; a prompt of many tiny messages
// makes many). A prompt whose count could pass it is estimated instead
// (four characters a token), which is linear and cheap.
//
// The bound is set by the slowest input, not by prose: an encoding reads
// prose at 8 to 12 MB/s on one core of a small shared machine, but one long
// piece of its split pattern — random letters, base64, a run of spaces — at
// 2.2 to 3.5 MB/s (go test -bench Adversarial ./policies/tokenlimit). 96 KiB
// is then at most ~45 ms, which leaves Envoy's message_timeout (2 s for the
// whole body-phase reply, which also waits for the prompt store, the gate's
// Redis and the screens) to the rest, and costs little: a prompt whose
// bytes fit the limit is never counted, so exact counts only ever decide
// windows of a few tens of thousands of tokens.
const (
	exactWork = 96 << 10
	callCost  = 32
)

// MaxTexts bounds the texts, and the messages, truncate and middle-out
// rewrite. Past exactWork their bytes are estimated, which is linear, but
// cutting and rendering still cost allocations for each: a 7 MiB body of
// ~230,000 tiny messages took 220 ms and 195 MB to truncate, in the body
// phase, within Envoy's message_timeout that the prompt store, the gate and
// the screens share. A conversation has hundreds of messages; ten thousand
// is a script's, and over its window it is sent as is (Over, TooManyTexts)
// rather than rewritten. fallback only swaps the model and has no bound.
const MaxTexts = 10_000

// passes is how many times the worst case of mode encodes the texts:
// fallback counts them; middle-out finds their token ends and counts the
// cut ones again; truncate also encodes the normalized ones. Re-cuts past
// the first are made only while the work left allows (meter.affords).
func passes(mode Mode) int {
	switch mode {
	case Truncate:
		return 3
	case MiddleOut:
		return 2
	}
	return 1
}

// Apply measures the prompt of req.Body against its model's context window
// and applies req.Mode when it does not fit.
func Apply(req Request) (res Result) {
	body := string(req.Body)
	top, ok := parseTop(body)
	if !ok {
		return Result{Outcome: Skipped, Model: req.Model}
	}
	modelField := top[topModel]
	candidates := modelCandidates(modelField)
	primary := req.Model
	if len(candidates) > 0 {
		primary = candidates[0]
	}
	p, ok := parsePrompt(body, top, req.Mode != Fallback)
	if !ok || primary == "" {
		return Result{Outcome: Skipped, Model: primary}
	}
	res = Result{Model: primary}
	if req.Context != nil {
		res.Context, _ = req.Context(primary)
	}
	if res.Context > 0 {
		reserve := reservedOutput(top[topOutputLimits:])
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
	tooMany := req.Mode != Fallback && (len(p.texts) > MaxTexts || p.nmsgs > MaxTexts)
	counter := &meter{Counter: tokens.ForModel(primary), left: exactWork}
	if fixed, texts := p.work(); tooMany || fixed+passes(req.Mode)*texts > exactWork {
		counter.Counter = tokens.Estimate
	}
	res.Counter = counter.Name()
	if counter.Exact() {
		defer func() { res.work = exactWork - counter.left }()
	}
	m := p.measure(counter, !tooMany && (req.Mode == MiddleOut || req.Mode == Truncate && counter.Exact()))
	res.Tokens = m.total()
	if !over(res.Tokens) {
		res.Outcome = Fits
		if req.Mode == Fallback && len(candidates) > 0 {
			res.Body = setModel(primary)
		}
		return res
	}
	if tooMany {
		res.Outcome, res.TooManyTexts = Over, true
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
		res.Outcome, res.SentSize, res.Body = Truncated, n, p.render(out, false)
	case MiddleOut:
		out, n, cut := middleOut(p, m, counter, res.Limit)
		if !cut {
			res.Outcome = Over
			return res
		}
		res.Outcome, res.SentSize, res.Body = MiddledOut, n, p.render(out, true)
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
// Helicone's order; 0 when none. limits are the body's outputLimits members.
func reservedOutput(limits []gjson.Result) int {
	var values [11]gjson.Result
	copy(values[:4], limits[:4])
	fields(limits[4], values[4:7], "max_tokens", "max_output_tokens", "maxOutputTokens") // response
	fields(limits[5], values[7:9], "max_output_tokens", "maxOutputTokens")               // generation_config
	fields(limits[6], values[9:], "max_output_tokens", "maxOutputTokens")                // generationConfig
	for _, v := range values {
		if v.Type == gjson.Number && v.Num > 0 && !math.IsInf(v.Num, 0) {
			if v.Num >= math.MaxInt32 {
				return math.MaxInt32
			}
			return int(v.Num)
		}
	}
	return 0
}

// upperBound is a count no tokenizer exceeds: a token is at least a byte
// (and a media part is a constant, in overhead).
func (p *prompt) upperBound() int {
	fixed, texts := 0, 0
	for _, f := range p.fixed {
		fixed += len(f)
	}
	for _, t := range p.texts {
		texts += len(t.s)
	}
	return p.overhead + fixed + texts
}

// work is what encoding the fixed part and the texts once costs (cost).
func (p *prompt) work() (fixed, texts int) {
	for _, f := range p.fixed {
		fixed += cost(f)
	}
	for _, t := range p.texts {
		texts += cost(t.s)
	}
	return fixed, texts
}

func cost(s string) int { return len(s) + callCost }

// meter is a call's counter, keeping account of the work exactWork
// bounds. Apply picks the encoding only when the passes its mode needs fit;
// left tells the cuts whether one more re-check does.
type meter struct {
	tokens.Counter
	left int
}

func (m *meter) Count(s string) int {
	m.left -= cost(s)
	return m.Counter.Count(s)
}

func (m *meter) Ends(s string) []int {
	m.left -= cost(s)
	return m.Counter.Ends(s)
}

// affords says whether counting the texts of out that differ from base
// stays within the work left; an estimate always does.
func (m *meter) affords(base, out []string) bool {
	if !m.Exact() {
		return true
	}
	need := 0
	for i, s := range out {
		if s != base[i] {
			need += cost(s)
		}
	}
	return need <= m.left
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
// tokens end (an encoding's full output, which costs more than a count
// and holds an int a token: only the modes that cut need it).
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
