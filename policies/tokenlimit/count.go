package tokenlimit

import "github.com/tollgate-dev/tollgate/provider/tokens"

// CountPrompt counts the prompt of a request body as Apply measures it —
// texts, roles, names, tool calls and definitions, the chat overhead,
// tokens.PerMediaPart a media part — with model's counter (the body's
// model when model is ""), up to exactWork bytes encoded exactly and
// estimated past it. ok is false when the body holds no prompt. It is
// what a call whose provider never reported usage is charged for its
// input (a stream cut before its usage chunk).
func CountPrompt(body []byte, model string) (n int, ok bool) {
	s := string(body)
	top, ok := parseTop(s)
	if !ok {
		return 0, false
	}
	if model == "" {
		if c := modelCandidates(top[topModel]); len(c) > 0 {
			model = c[0]
		}
	}
	p, ok := parsePrompt(s, top, false)
	if !ok {
		return 0, false
	}
	c := tokens.ForModel(model)
	if fixed, texts := p.work(); fixed+texts > exactWork {
		c = tokens.Estimate
	}
	return p.measure(c, false).total(), true
}
