package egress

import (
	"strconv"
	"strings"

	"github.com/tollgate-dev/tollgate/helicone"
	"github.com/tollgate-dev/tollgate/policies/ratelimit"
)

// DeniedError is a call the egress policy does not allow: answer 403
// with Answer(). Its message names the rule, what was refused and what is
// allowed, so the application team can see why without reading the file:
//
//	egress policy "payments-checkout" does not allow model "gpt-4o" (allowed: gpt-4o-mini)
type DeniedError struct {
	Rule    string   // "" = the policy's defaults
	What    string   // "provider", "model" or "target origin"
	Value   string   // as the request gave it
	Allowed []string // the rule's list, as written in the file
	Why     string   // why the list's "*" does not cover Value; "" if it does not apply
}

func (e *DeniedError) Error() string {
	var b strings.Builder
	if e.Rule == "" {
		b.WriteString("egress policy defaults do not allow ")
	} else {
		b.WriteString("egress policy " + strconv.Quote(e.Rule) + " does not allow ")
	}
	b.WriteString(e.What + " " + strconv.Quote(clip(e.Value)) + " (allowed: ")
	if len(e.Allowed) == 0 {
		b.WriteString("none")
	} else {
		b.WriteString(strings.Join(e.Allowed, ", "))
	}
	b.WriteByte(')')
	if e.Why != "" {
		b.WriteString(": " + e.Why)
	}
	return b.String()
}

// Status is the HTTP status to answer with.
func (e *DeniedError) Status() int { return 403 }

// Answer is the 403 reply, in the providers' JSON error shape.
func (e *DeniedError) Answer() *ratelimit.Answer {
	msg := e.Error()
	b := helicone.AppendErrorBody(make([]byte, 0, 128+len(msg)+len(e.Rule)), helicone.EscapeMinimal,
		"message", msg, "type", "egress_denied", "code", "egress_denied", "rule", e.Rule)
	return &ratelimit.Answer{Status: 403, Body: b, Headers: [][2]string{
		{"content-type", "application/json"},
		{helicone.XHeliconeError, "egress_denied"},
	}}
}

// CheckProvider is nil when the workload may call provider, else an
// *DeniedError.
func (d Decision) CheckProvider(provider string) error {
	if d.AllowsProvider(provider) {
		return nil
	}
	return d.denied("provider", provider, d.eff.providers.written)
}

// CheckModel is nil when the workload may use model at provider, else an
// *DeniedError.
func (d Decision) CheckModel(provider, model string) error {
	if d.AllowsModel(provider, model) {
		return nil
	}
	return d.denied("model", model, d.eff.models.written)
}

// CheckTargetOrigin is nil when the workload may send calls to origin
// (Helicone-Target-URL), else an *DeniedError.
func (d Decision) CheckTargetOrigin(origin string) error {
	if d.AllowsTargetOrigin(origin) {
		return nil
	}
	return &DeniedError{Rule: d.Rule, What: "target origin", Value: origin, Allowed: d.eff.origins.written,
		Why: d.eff.origins.refusal(origin)}
}

func (d Decision) denied(what, value string, allowed []string) error {
	return &DeniedError{Rule: d.Rule, What: what, Value: value, Allowed: allowed}
}
