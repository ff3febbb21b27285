package k8s_test

import (
	"context"
	"os"
	"path"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/tollgate-dev/tollgate/policies/egress"
	"github.com/tollgate-dev/tollgate/policies/prompt"
)

// TestExampleEgressPolicy: the policy the gateway is given parses with
// Tollgate's own parser and decides as its comments say.
func TestExampleEgressPolicy(t *testing.T) {
	file := gatewayFile(t, "--egress-policy")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := egress.Parse(file, data)
	if err != nil {
		t.Fatal(err)
	}
	bot := pol.Decide(egress.Workload{Namespace: "support", ServiceAccount: "chatbot", Name: "chatbot"})
	if bot.Rule != "support-bot" || !bot.RequireAuth || !bot.AllowsModel("openai", "gpt-4o") {
		t.Errorf("the support bot: rule %q, auth %v, gpt-4o %v", bot.Rule, bot.RequireAuth, bot.AllowsModel("openai", "gpt-4o"))
	}
	other := pol.Decide(egress.Workload{Namespace: "team-a", ServiceAccount: "default", Name: "web"})
	if other.Rule != "" || other.AllowsModel("openai", "gpt-4o") || !other.AllowsModel("openai", "gpt-4o-mini") {
		t.Errorf("another workload: rule %q, gpt-4o %v", other.Rule, other.AllowsModel("openai", "gpt-4o"))
	}
}

// TestExamplePrompts: the gateway's prompt folder loads with Tollgate's own
// loader, and each file is named after its prompt.
func TestExamplePrompts(t *testing.T) {
	dir := gatewayFile(t, "--prompts-dir")
	lib, err := prompt.NewLibrary(prompt.LibraryOptions{Dir: dir, PollInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer lib.Close()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		id := strings.TrimSuffix(e.Name(), path.Ext(e.Name()))
		v, err := lib.PromptVersion(context.Background(), id, 0)
		if err != nil {
			t.Errorf("%s: %v (is the file named after its id?)", e.Name(), err)
			continue
		}
		if v.Version < 1 || len(v.Messages) == 0 {
			t.Errorf("%s: latest version %d has no messages", e.Name(), v.Version)
		}
	}
	if len(entries) == 0 {
		t.Fatal("no example prompt")
	}
}

// gatewayFile resolves a path flag of the gateway's Tollgate container to
// the file (or folder) in k8s/gateway its ConfigMap is made from.
func gatewayFile(t *testing.T, flag string) string {
	t.Helper()
	const base = "gateway"
	tr := loadTree(t)
	for _, c := range containers(tr, base) {
		if !isTollgate(c.c) {
			continue
		}
		p := flagValue(c.c.Args, flag)
		cm, key, ok := mountedConfigMap(c.pod, c.c, p)
		if !ok {
			t.Fatalf("%s %q is not in a ConfigMap volume", flag, p)
		}
		if key != "" {
			return generatorFile(t, base, cm, key)
		}
		// A folder: the generator's files, all from one folder of the base.
		var dir string
		for _, g := range tr.bases[base].ConfigMapGenerator {
			for _, f := range g.Files {
				if g.Name == cm && (dir == "" || dir == path.Join(base, path.Dir(f))) {
					dir = path.Join(base, path.Dir(f))
				} else if g.Name == cm {
					t.Fatalf("ConfigMap %s mixes folders", cm)
				}
			}
		}
		if dir == "" {
			t.Fatalf("no generator makes ConfigMap %s", cm)
		}
		return dir
	}
	t.Fatal("no Tollgate container in the gateway")
	return ""
}

var settingKey = regexp.MustCompile(`^TOLLGATE_[A-Z][A-Z0-9_]*$`)

// TestSettingsConfigMap: tollgate-config holds TOLLGATE_<FLAG> settings
// and no secret.
func TestSettingsConfigMap(t *testing.T) {
	tr := loadTree(t)
	found := false
	for _, cm := range of[corev1.ConfigMap](tr, "") {
		if cm.Name != "tollgate-config" {
			continue
		}
		found = true
		for _, key := range []string{"TOLLGATE_REDIS", "TOLLGATE_CLICKHOUSE"} {
			if cm.Data[key] == "" {
				t.Errorf("tollgate-config: %s is required", key)
			}
		}
		for k := range cm.Data {
			if !settingKey.MatchString(k) {
				t.Errorf("tollgate-config: key %q is not TOLLGATE_<FLAG>", k)
			}
			if strings.Contains(k, "KEY") || strings.Contains(k, "PASSWORD") || strings.Contains(k, "SECRET") {
				t.Errorf("tollgate-config: %s belongs in a Secret", k)
			}
		}
	}
	if !found {
		t.Fatal("no ConfigMap tollgate-config")
	}
}

// TestRequiredSecretsDocumented: a Secret a pod cannot start without is
// one the README tells the user to create.
func TestRequiredSecretsDocumented(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range containers(loadTree(t), "") {
		var required []string
		for _, e := range c.c.Env {
			if r := e.ValueFrom; r != nil && r.SecretKeyRef != nil && (r.SecretKeyRef.Optional == nil || !*r.SecretKeyRef.Optional) {
				required = append(required, r.SecretKeyRef.Name)
			}
		}
		for _, v := range c.pod.Volumes {
			if v.Secret != nil && (v.Secret.Optional == nil || !*v.Secret.Optional) {
				required = append(required, v.Secret.SecretName)
			}
		}
		for _, name := range required {
			if !strings.Contains(string(readme), name) {
				t.Errorf("%s needs Secret %s; README.md must say how to create it", c, name)
			}
		}
	}
}
