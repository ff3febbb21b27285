package egress_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/policies/egress"
	"github.com/tollgate-dev/tollgate/policies/ratelimit"
)

var errorLine = regexp.MustCompile(`^policy\.yaml(:[1-9]\d*: |: invalid YAML: |: \d+ more errors$)`)

// FuzzParseEgressPolicy: the parser never panics, every error line names
// the file (and, but for a few YAML syntax errors, the line), and a policy
// it accepts can be used.
func FuzzParseEgressPolicy(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "egress", "*.yaml"))
	invalid, _ := filepath.Glob(filepath.Join("testdata", "egress", "invalid", "*.yaml"))
	for _, file := range append(files, invalid...) {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := egress.Parse("policy.yaml", data)
		if err != nil {
			if p != nil {
				t.Fatal("a policy and an error")
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !errorLine.MatchString(line) {
					t.Fatalf("error line without file and line: %q", line)
				}
			}
			return
		}
		for _, w := range []egress.Workload{
			{},
			{Namespace: "payments", ServiceAccount: "checkout", Name: "api", Labels: map[string]string{"app": "checkout", "tier": "research"}},
			{Namespace: "team-x", Name: "nightly-batch"},
		} {
			d := p.Decide(w)
			_ = d.CheckProvider("openai")
			_ = d.CheckModel("anthropic", "claude-3-5-haiku-20241022")
			_ = d.CheckTargetOrigin("https://llm.example.com")
			_ = d.ForLog(d.RequestBody, []byte(`{"k":"sk-abcdefghijklmnopqrstuvwxyz 4111111111111111"}`))
			for _, l := range d.Limits(&ratelimit.Caller{UserID: "u"}) {
				if l.Bucket.Capacity < 1 || l.Bucket.Window <= 0 || (l.Budget && l.Policy.Unit != ratelimit.UnitCents) {
					t.Fatalf("bad limit %+v", l)
				}
			}
		}
	})
}
