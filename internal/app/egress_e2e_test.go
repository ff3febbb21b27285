package app

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tollgate-dev/tollgate/internal/testenv"
)

// The egress policy end to end, in sidecar mode: the processor knows its
// pod from the injector's settings and applies the rule that matches it.

const checkoutPolicy = `
defaults:
  allow: {providers: [openai], models: ["gpt-4o-mini"]}
rules:
- name: checkout
  match: {namespaces: [payments], labels: {app: checkout}}
  requireAuth: true
  allow: {models: ["gpt-4o-mini", "gpt-4o"]}
  rateLimits: ["3;w=60"]
  logging: {requestBody: omit, responseBody: redact, redact: ["Hello"]}
`

func TestDevEgressPolicyForASidecar(t *testing.T) {
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	labels := filepath.Join(dir, "labels")
	writeFile(t, policy, checkoutPolicy)
	writeFile(t, labels, "app=\"checkout\"\npod-template-hash=\"5d8f\"\n")
	d := startDev(t, "--egress-policy", policy, "--workload-namespace", "payments",
		"--workload-service-account", "checkout", "--workload-name", "checkout-api", "--workload-labels-file", labels)

	auth := map[string]string{"helicone-auth": "Bearer sk-helicone-team"}
	with := func(extra map[string]string) map[string]string {
		h := map[string]string{"helicone-request-id": uuid.NewString()}
		for k, v := range auth {
			h[k] = v
		}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	allowed := call{path: "/v1/chat/completions", body: chat("gpt-4o"), headers: with(nil)}
	if resp, body := allowed.do(t, d); resp.StatusCode != 200 {
		t.Fatalf("allowed model: %d %s", resp.StatusCode, body)
	}
	deniedModel := call{path: "/v1/chat/completions", body: chat("gpt-4.1"), headers: with(nil)}
	resp, body := deniedModel.do(t, d)
	if resp.StatusCode != 403 || !strings.Contains(body, `egress policy \"checkout\" does not allow model \"gpt-4.1\"`) {
		t.Errorf("denied model: %d %s", resp.StatusCode, body)
	}
	deniedProvider := call{path: "/v1/messages", body: `{"model":"claude-3-5-haiku-latest","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, headers: with(nil)}
	if resp, body = deniedProvider.do(t, d); resp.StatusCode != 403 || !strings.Contains(body, "anthropic") {
		t.Errorf("denied provider: %d %s", resp.StatusCode, body)
	}
	// A fallback cannot smuggle in a model the policy refuses.
	smuggled := call{path: "/v1/chat/completions", body: chat("gpt-4o"), headers: with(map[string]string{"helicone-fallback": `[{"model": "o1"}]`})}
	if resp, body = smuggled.do(t, d); resp.StatusCode != 403 || !strings.Contains(body, "o1") {
		t.Errorf("fallback to a refused model: %d %s", resp.StatusCode, body)
	}
	noAuth := call{path: "/v1/chat/completions", body: chat("gpt-4o"), headers: map[string]string{"helicone-request-id": uuid.NewString()}}
	if resp, body = noAuth.do(t, d); resp.StatusCode != 401 || !strings.Contains(body, "Helicone-Auth is required by the egress policy") {
		t.Errorf("no auth: %d %s", resp.StatusCode, body)
	}
	// 3 per minute for this workload and tenant: the first allowed call
	// took one; two more pass, then the policy's 429.
	var last call
	statuses := []int{}
	for range 3 {
		last = call{path: "/v1/chat/completions", body: chat("gpt-4o-mini"), headers: with(nil)}
		resp, _ := last.do(t, d)
		statuses = append(statuses, resp.StatusCode)
	}
	if statuses[0] != 200 || statuses[1] != 200 || statuses[2] != 429 {
		t.Errorf("statuses under 3;w=60 after one call: %v, want [200 200 429]", statuses)
	}
	// Without configured keys the tenant is only a hash of what the client
	// sends: a new Helicone-Auth must not open a new bucket.
	evasive := call{path: "/v1/chat/completions", body: chat("gpt-4o-mini"), headers: map[string]string{
		"helicone-request-id": uuid.NewString(), "helicone-auth": "Bearer " + uuid.NewString()}}
	if resp, _ := evasive.do(t, d); resp.StatusCode != 429 {
		t.Errorf("a fresh Helicone-Auth escaped the workload's limit: %d", resp.StatusCode)
	}

	recs := d.records(t)
	r := recs[allowed.headers["helicone-request-id"]]
	if r.WorkloadNamespace != "payments" || r.WorkloadServiceAccount != "checkout" || r.WorkloadName != "checkout-api" ||
		r.PolicyRule != "checkout" || r.PolicyDecision != "allow" {
		t.Errorf("record identity %q/%q/%q rule %q decision %q", r.WorkloadNamespace, r.WorkloadServiceAccount, r.WorkloadName, r.PolicyRule, r.PolicyDecision)
	}
	if r.RequestBody != "" || strings.Contains(r.ResponseBody, "Hello") || !strings.Contains(r.ResponseBody, "[REDACTED]") {
		t.Errorf("logged bodies: request %q response %q; want the request omitted and the response redacted", r.RequestBody, r.ResponseBody)
	}
	if r := recs[deniedModel.headers["helicone-request-id"]]; r.Status != 403 || !strings.HasPrefix(r.PolicyDecision, "deny: ") {
		t.Errorf("denied record: status %d decision %q", r.Status, r.PolicyDecision)
	}
	if r := recs[last.headers["helicone-request-id"]]; r.Status != 429 || !r.RateLimited {
		t.Errorf("limited record: status %d rate_limited %v", r.Status, r.RateLimited)
	}
}

func TestDevEgressPolicyReloadKeepsTheLastGoodOne(t *testing.T) {
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	writeFile(t, policy, "defaults:\n  allow: {models: [\"gpt-4o-mini\"]}\n")
	d := startDev(t, "--egress-policy", policy)
	status := func(model string) int {
		resp, _ := call{path: "/v1/chat/completions", body: chat(model), headers: map[string]string{}}.do(t, d)
		return resp.StatusCode
	}
	if status("gpt-4o") != 403 {
		t.Fatal("gpt-4o is not in the policy")
	}
	writeFile(t, policy, "defaults:\n  allow: {models: [\"gpt-4o\"\n")
	// The poller has read the broken file once it reports it, with its line.
	testenv.Eventually(t, 10*time.Second, func() error {
		if !strings.Contains(d.stderr.String(), "policy.yaml:1: invalid YAML") {
			return fmt.Errorf("the broken file is not reported with its line:\n%s", d.stderr)
		}
		return nil
	})
	if s := status("gpt-4o-mini"); s != 200 {
		t.Errorf("after a broken edit: %d, want the last good policy (gpt-4o-mini allowed)", s)
	}
	writeFile(t, policy, "defaults:\n  allow: {models: [\"gpt-4o\"]}\n")
	testenv.WaitFor(t, 10*time.Second, "the fixed policy loaded (gpt-4o allowed)", func() bool { return status("gpt-4o") == 200 })
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
