package k8s_test

import (
	"strconv"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// TestMigrateJob: migrate/ runs `tollgate migrate` once as a Job, with the
// ClickHouse URL (a DDL user's) from a Secret, under a ServiceAccount of
// its own without a token, bounded in retries and time, and cleaned up
// after; it runs the image the gateway runs. (Non-root, read-only root
// filesystem, resources and pinned images: pods_test.go checks every
// container, the Job's too.)
func TestMigrateJob(t *testing.T) {
	tr := loadTree(t)
	jobs := of[batchv1.Job](tr, "migrate")
	if len(jobs) != 1 {
		t.Fatalf("migrate/: %d Jobs, want 1", len(jobs))
	}
	j := jobs[0]
	spec := j.Spec.Template.Spec
	if spec.RestartPolicy != corev1.RestartPolicyNever && spec.RestartPolicy != corev1.RestartPolicyOnFailure {
		t.Errorf("Job %s: restartPolicy %q", j.Name, spec.RestartPolicy)
	}
	if b := j.Spec.BackoffLimit; b == nil || *b < 1 || *b > 10 {
		t.Errorf("Job %s: backoffLimit must be set, 1 to 10 (ClickHouse may come up after the Job starts)", j.Name)
	}
	if d := j.Spec.ActiveDeadlineSeconds; d == nil || *d <= 0 {
		t.Errorf("Job %s: activeDeadlineSeconds must bound it", j.Name)
	}
	if ttl := j.Spec.TTLSecondsAfterFinished; ttl == nil || *ttl <= 0 {
		t.Errorf("Job %s: ttlSecondsAfterFinished must be set, or the next apply meets the finished, immutable Job", j.Name)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("Job %s: automountServiceAccountToken must be false", j.Name)
	}
	var account *corev1.ServiceAccount
	for _, sa := range of[corev1.ServiceAccount](tr, "migrate") {
		if sa.Name == spec.ServiceAccountName {
			account = sa
		}
	}
	if account == nil || spec.ServiceAccountName == "default" {
		t.Errorf("Job %s: runs as ServiceAccount %q, want one of migrate/'s own", j.Name, spec.ServiceAccountName)
	} else if account.AutomountServiceAccountToken == nil || *account.AutomountServiceAccountToken {
		t.Errorf("ServiceAccount %s: automountServiceAccountToken must be false", account.Name)
	}
	if len(spec.Containers) != 1 || len(spec.InitContainers) != 0 {
		t.Fatalf("Job %s: want one container", j.Name)
	}
	c := spec.Containers[0]
	if !isTollgate(&c) || len(c.Args) == 0 || c.Args[0] != "migrate" {
		t.Errorf("Job %s: runs %s %v, want the Tollgate image's `migrate`", j.Name, c.Image, c.Args)
	}
	if !keyFromSecret(c.Env, "TOLLGATE_CLICKHOUSE") {
		t.Errorf("Job %s: TOLLGATE_CLICKHOUSE must come from a required Secret (it names a user with DDL rights)", j.Name)
	}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef != nil && ef.ConfigMapRef.Name == "tollgate-config" {
			t.Errorf("Job %s: reads tollgate-config, whose TOLLGATE_CLICKHOUSE is the serving user's", j.Name)
		}
	}
	for _, g := range containers(tr, "gateway") {
		if isTollgate(g.c) && g.c.Image != c.Image {
			t.Errorf("Job %s runs %s, the gateway %s: migrate with the version that will serve", j.Name, c.Image, g.c.Image)
		}
	}
}

// TestServingProcessesDoNotMigrate: only the Job changes the schema. No
// `tollgate serve` here (gateway, sidecars) asks for --migrate, by flag,
// variable or the settings ConfigMap.
func TestServingProcessesDoNotMigrate(t *testing.T) {
	tr := loadTree(t)
	on := func(v string) bool { b, err := strconv.ParseBool(v); return err == nil && b }
	serving := 0
	for _, c := range containers(tr, "") {
		if !isTollgate(c.c) || len(c.c.Args) == 0 {
			continue
		}
		if c.c.Args[0] == "migrate" {
			if c.workload != "tollgate-migrate" {
				t.Errorf("%s: runs tollgate migrate; only the Job in migrate/ should", c)
			}
			continue
		}
		if c.c.Args[0] != "serve" {
			continue
		}
		serving++
		for _, a := range c.c.Args {
			if name, val, _ := strings.Cut(strings.TrimLeft(a, "-"), "="); strings.HasPrefix(a, "-") && name == "migrate" && (val == "" || on(val)) {
				t.Errorf("%s: %s: serving processes must not migrate (DDL rights); the Job in migrate/ does", c, a)
			}
		}
		for _, e := range c.c.Env {
			if e.Name == "TOLLGATE_MIGRATE" && on(e.Value) {
				t.Errorf("%s: TOLLGATE_MIGRATE=%s: serving processes must not migrate", c, e.Value)
			}
		}
	}
	for _, cm := range of[corev1.ConfigMap](tr, "") {
		if v, ok := cm.Data["TOLLGATE_MIGRATE"]; ok && on(v) {
			t.Errorf("ConfigMap %s: TOLLGATE_MIGRATE=%s: serving processes must not migrate", cm.Name, v)
		}
	}
	if serving == 0 {
		t.Fatal("no tollgate serve container found")
	}
}
