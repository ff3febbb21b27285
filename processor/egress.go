package processor

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/tollgate-dev/tollgate/policies/egress"
)

// The workload identity headers a trusted mesh sets in gateway mode
// (Options.TrustWorkloadHeaders). A sidecar's identity is its own
// configuration; these headers never reach a provider either way.
const (
	workloadHeaderPrefix         = "x-tollgate-workload-"
	workloadNamespaceHeader      = "x-tollgate-workload-namespace"
	workloadServiceAccountHeader = "x-tollgate-workload-service-account"
	workloadNameHeader           = "x-tollgate-workload-name"
)

// identify sets the record's workload: the mesh's headers when trusted and
// present, else the processor's own (sidecar) identity.
func (s *Server) identify(c *call) egress.Workload {
	w := s.workload
	if s.trustWorkloadHeaders {
		if ns := findHeader(c.reqHeaders, workloadNamespaceHeader); ns != "" {
			w = egress.Workload{
				Namespace:      ns,
				ServiceAccount: findHeader(c.reqHeaders, workloadServiceAccountHeader),
				Name:           findHeader(c.reqHeaders, workloadNameHeader),
			}
		}
	}
	w.ProxyKey = c.proxyKeyID
	rec := c.rec
	rec.WorkloadNamespace, rec.WorkloadServiceAccount, rec.WorkloadName = w.Namespace, w.ServiceAccount, w.Name
	return w
}

// decideEgress applies the egress policy to what the request headers say:
// auth, provider and target origin. The decision stays on the call for the
// model check, limits, cache defaults and body logging.
func (s *Server) decideEgress(c *call, w egress.Workload) *clientError {
	if s.egress == nil {
		return nil
	}
	p := s.egress()
	if p == nil {
		return nil
	}
	d := p.Decide(w)
	c.egress = &d
	rec := c.rec
	rec.PolicyRule, rec.PolicyDecision = d.Rule, "allow"
	if d.RequireAuth && c.helicone.Auth == "" {
		return s.egressDenied(c, &clientError{status: 401, code: "unauthorized",
			message: "Helicone-Auth is required by the egress policy (" + ruleName(d.Rule) + ")"})
	}
	if c.format != "" {
		if err := d.CheckProvider(c.priceProvider()); err != nil {
			return s.egressDenied(c, deniedError(err))
		}
	}
	if rec.TargetURL != "" {
		if err := d.CheckTargetOrigin(rec.TargetURL); err != nil {
			return s.egressDenied(c, deniedError(err))
		}
	}
	return nil
}

// checkEgressModels runs once the body is known: the model the request
// names, the one an Azure deployment serves, and every model a fallback
// entry could switch to.
func (s *Server) checkEgressModels(c *call, body []byte) *clientError {
	d := c.egress
	if d == nil {
		return nil
	}
	model := c.rec.Model
	if model == "" && gjson.ValidBytes(body) {
		// A path Tollgate does not parse (batches, images, …) still names
		// its model at the top level when it has one.
		model = gjson.GetBytes(body, "model").String()
	}
	models := []string{model}
	switch served := s.azureServedModel(c, model); {
	case served == "" || served == model:
	case c.deployment == "":
		// Azure's v1 API: the body's model is the deployment's name, and
		// the model it serves is the one to check.
		models[0] = served
	default:
		models = append(models, served) // Azure serves the deployment's model, whatever the body names
	}
	if c.link != nil && c.link.plan != nil {
		for j, e := range c.link.plan.Entries {
			if f := c.link.crossFormat[entryIndex(c.link.plan, j)]; f != "" {
				// Translated to another provider: its model is that
				// provider's (translated.go), and that provider must be
				// allowed at all.
				if err := d.CheckProvider(f); err != nil {
					return s.egressDenied(c, deniedError(err))
				}
				if err := d.CheckModel(f, entryModel(&e)); err != nil {
					return s.egressDenied(c, deniedError(err))
				}
				continue
			}
			models = append(models, e.Model)
			for _, kv := range e.BodyOverride {
				if kv[0] == "model" {
					var m string
					if json.Unmarshal([]byte(kv[1]), &m) != nil {
						m = kv[1] // not a string: checked as written, so it cannot slip through
					}
					models = append(models, m)
				}
			}
		}
	}
	for _, m := range models {
		if err := d.CheckModel(c.priceProvider(), m); err != nil {
			return s.egressDenied(c, deniedError(err))
		}
	}
	return nil
}

func (s *Server) egressDenied(c *call, e *clientError) *clientError {
	c.rec.PolicyDecision = "deny: " + e.message
	s.metrics.rejected.WithLabelValues("egress_policy").Inc()
	return e
}

func deniedError(err error) *clientError {
	var denied *egress.DeniedError
	status := 403
	if errors.As(err, &denied) {
		status = denied.Status()
	}
	return &clientError{status: status, code: "egress_denied", message: err.Error()}
}

func ruleName(rule string) string {
	if rule == "" {
		return "defaults"
	}
	return "rule " + strconv.Quote(rule)
}

// loggedBody is what the log keeps of the request (or response) body under
// the policy's logging mode (keep, omit, redact).
func loggedBody(d *egress.Decision, response bool, body []byte) []byte {
	if d == nil {
		return body
	}
	if response {
		return d.ForLog(d.ResponseBody, body)
	}
	return d.ForLog(d.RequestBody, body)
}

func isWorkloadHeader(key string) bool { return strings.HasPrefix(key, workloadHeaderPrefix) }
