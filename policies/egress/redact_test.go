package egress_test

import (
	"testing"

	"github.com/tollgate-dev/tollgate/policies/egress"
)

func TestEgressLogging(t *testing.T) {
	p := parseEgress(t, `
defaults:
  logging:
    requestBody: redact
    responseBody: keep
    redact: ["sk-[A-Za-z0-9_-]{20,}", "\\b\\d{13,16}\\b", "(?i)password=\\S+"]
rules:
- name: quiet
  match: {namespaces: [quiet]}
  logging: {requestBody: omit, responseBody: omit}
- name: cards-only
  match: {namespaces: [shop]}
  logging: {redact: ["\\b\\d{13,16}\\b"], responseBody: redact}
`)
	body := []byte(`{"key":"sk-proj_ABCDEFGHIJKLMNOPQRSTUV","card":"4111111111111111","note":"PASSWORD=hunter2 ok","id":"1234"}`)
	tests := []struct {
		ns             string
		request, reply string // what goes into the log; "<nil>" = omitted
	}{
		{"web",
			`{"key":"[REDACTED]","card":"[REDACTED]","note":"[REDACTED] ok","id":"1234"}`,
			string(body)},
		{"quiet", "<nil>", "<nil>"},
		{"shop",
			`{"key":"sk-proj_ABCDEFGHIJKLMNOPQRSTUV","card":"[REDACTED]","note":"PASSWORD=hunter2 ok","id":"1234"}`,
			`{"key":"sk-proj_ABCDEFGHIJKLMNOPQRSTUV","card":"[REDACTED]","note":"PASSWORD=hunter2 ok","id":"1234"}`},
	}
	show := func(b []byte) string {
		if b == nil {
			return "<nil>"
		}
		return string(b)
	}
	for _, tt := range tests {
		t.Run(tt.ns, func(t *testing.T) {
			d := p.Decide(egress.Workload{Namespace: tt.ns})
			orig := string(body)
			if got := show(d.ForLog(d.RequestBody, body)); got != tt.request {
				t.Errorf("request body logged as\n%s\nwant\n%s", got, tt.request)
			}
			if got := show(d.ForLog(d.ResponseBody, body)); got != tt.reply {
				t.Errorf("response body logged as\n%s\nwant\n%s", got, tt.reply)
			}
			if string(body) != orig {
				t.Fatal("the body was modified in place")
			}
		})
	}
}

func TestEgressRedactEdges(t *testing.T) {
	d := parseEgress(t, `
defaults:
  logging:
    redact: ["secret", "\\bx?"]
`).Decide(egress.Workload{})
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"nothing here", "nothing here"},         // \bx? matches empty at word edges: skipped
		{"secretsecret", "[REDACTED][REDACTED]"}, // adjacent matches
		{"a secret.", "a [REDACTED]."},
		{"x marks", "[REDACTED] marks"},
	} {
		if got := string(d.Redact([]byte(tt.in))); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	in := []byte("no match at all")
	if out := d.Redact(in); &out[0] != &in[0] {
		t.Error("a body with nothing to redact was copied")
	}
}
