package inject

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// Injected processors never migrate the schema (that needs DDL rights,
// which belong to tollgate migrate alone): a setting asking for it is
// refused, naming the fix; one turning it off is fine.
func TestInjectRefusesMigrate(t *testing.T) {
	for _, c := range []Config{
		{Args: []string{"--migrate"}},
		{Args: []string{"-migrate=true"}},
		{Args: []string{"--migrate=1"}},
		{Args: []string{"--migrate="}},
		{Env: []corev1.EnvVar{{Name: "TOLLGATE_MIGRATE", Value: "true"}}},
		{Env: []corev1.EnvVar{{Name: "TOLLGATE_MIGRATE", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{Key: "m"}}}}},
	} {
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "tollgate migrate") {
			t.Errorf("args %q env %v: %v", c.Args, c.Env, err)
		}
	}
	for _, c := range []Config{
		{Args: []string{"--migrate=false"}},
		{Env: []corev1.EnvVar{{Name: "TOLLGATE_MIGRATE", Value: "false"}}},
	} {
		if err := c.Validate(); err != nil {
			t.Errorf("args %q env %v refused: %v", c.Args, c.Env, err)
		}
	}
	// The processor the injector adds asks for no migration either.
	for _, a := range processorContainer(Workload{}, Config{}).Args {
		if strings.Contains(a, "migrate") {
			t.Errorf("the injected tollgate container runs with %q", a)
		}
	}
}
